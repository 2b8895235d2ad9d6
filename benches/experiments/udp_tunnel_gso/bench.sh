#!/bin/bash
# bench.sh PROFILE "<recv args>" "<sender args>"  -- one 3 s run, prints sender, receiver and
# machine CPU (/proc/stat: busy cores over the run, everything on the machine included).
# PROFILE (features of ua0, A's underlay veth, i.e. "the NIC"):
#   full : veth defaults: checksum + UDP GSO + UDP-tunnel TSO offloaded (segments pass as GSO)
#   csum : checksum offloaded, no segmentation offload (kernel segments in software in A)
#   none : nothing offloaded: kernel segments and computes every checksum (wire-exact)
cd "$(dirname "$0")"
case $1 in
full) F="tx-checksum-ip-generic on tx-udp_tnl-segmentation on tx-udp_tnl-csum-segmentation on tx-udp-segmentation on tx-tcp-segmentation on" ;;
csum) F="tx-checksum-ip-generic on tx-udp_tnl-segmentation off tx-udp_tnl-csum-segmentation off tx-udp-segmentation off tx-tcp-segmentation off" ;;
none) F="tx-checksum-ip-generic off tx-udp_tnl-segmentation off tx-udp_tnl-csum-segmentation off tx-udp-segmentation off tx-tcp-segmentation off" ;;
esac
ip netns exec utA ethtool -K ua0 $F >/dev/null 2>&1
ksirq() { local t=0; for p in $(pgrep ksoftirqd); do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t+$1+$2)); done; echo $t; }
# SINK=1: B's socket is bound but never read (datagrams are dropped at its full queue,
# UdpRcvbufErrors): the sender-side cost without a reader
stat() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t}' /proc/stat; }
[ -n "$SINK" ] && set -- "$1" "-z -g -T 3.6" "$3"
nice -n 10 ip netns exec utB ./udptnl recv $2 > /tmp/ut_recv.txt 2>&1 &
RP=$!
sleep 0.3
read b0 t0 < <(stat); s0=$(date +%s.%N); k0=$(ksirq)
${PERF:+perf record -q -g -o $PERF --} nice -n 10 ip netns exec utA ./udptnl $3 2>/tmp/ut_send.err > /tmp/ut_send.txt
read b1 t1 < <(stat); s1=$(date +%s.%N); k1=$(ksirq)
wait $RP
echo "== profile=$1 sink=${SINK:-0} recv=[$2] send=[$3]"
cat /tmp/ut_send.txt
grep -v ready /tmp/ut_recv.txt
awk -v b=$((b1-b0)) -v t=$((t1-t0)) -v s="$(echo "$s1 - $s0" | bc)" -v hz=$(getconf CLK_TCK) -v k=$((k1-k0)) \
  'BEGIN{printf "machine busy_cores=%.2f of %d over %.2fs ksoftirqd_cpu=%.3f\n", b/hz/s, t/hz/s+0.5, s, k/hz}'
