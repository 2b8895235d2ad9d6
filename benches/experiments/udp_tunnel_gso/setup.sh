#!/bin/bash
# setup.sh MODE  (tun|tap)   -- namespaces utA (sender) and utB (receiver), veth ua0<->ub0,
# a persistent tunnel-GSO device ut0 in utA that forwards to ua0.
# teardown: setup.sh down
set -e
cd "$(dirname "$0")"
A=utA B=utB
if [ "$1" = down ]; then
	ip netns del $A 2>/dev/null || true
	ip netns del $B 2>/dev/null || true
	exit 0
fi
MODE=${1:-tap}
ip netns add $A
ip netns add $B
ip link add ua0 netns $A type veth peer name ub0 netns $B
ip -n $A link set lo up
ip -n $B link set lo up
ip -n $A addr add 10.201.0.1/24 dev ua0
ip -n $B addr add 10.201.0.2/24 dev ub0
ip -n $A link set ua0 up
ip -n $B link set ub0 up
# B answers nothing, but its rp_filter/route must accept the non-local source 10.201.1.2
ip -n $B route add 10.201.1.0/30 via 10.201.0.1
# the underlay TUN/TAP in A
ip netns exec $A ./udptnl mkdev -m "$MODE" -i ut0 2>/dev/null
ip -n $A link set ut0 up
ip -n $A addr add 10.201.1.1/30 dev ut0
# forwarding only on the input device (IPv4 checks the input device's conf), no rp_filter,
# and accept_local so the outer source may be A's own underlay address 10.201.0.1
ip netns exec $A sysctl -qw net.ipv4.conf.ut0.forwarding=1
ip netns exec $A sysctl -qw net.ipv4.conf.ut0.rp_filter=0 net.ipv4.conf.all.rp_filter=0
ip netns exec $A sysctl -qw net.ipv4.conf.ut0.accept_local=1
ip -n $A neigh flush dev ua0 2>/dev/null || true
ip netns exec $A ping -c1 -W1 10.201.0.2 >/dev/null   # resolve ARP once
echo "setup $MODE ok"
