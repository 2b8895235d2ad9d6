#!/usr/bin/env bash
# The reference scenario of docs/scenario.md on one machine, in network namespaces.
#
#   scripts/scenario.sh            build vxtund, bring everything up, show the pings, wait for
#                                  Ctrl-C, then remove everything it made
#   scripts/scenario.sh --configs config/mesh    the same as a full mesh (split horizon)
#   scripts/scenario.sh up|down|ping [--prefix P] [--bin PATH] [--state DIR] [--configs DIR]
#                                    [--underlay6] [--host-mtu N]
#
# Namespaces (P defaults to "vxt"): P-ul holds the underlay bridge (192.168.200.0/24, or with
# --underlay6 an IPv6-only 2001:db8:200::/64, for configs that use those addresses);
# P-seg1..3 each run one vxtund with config/segN.toml, its TAP enslaved to the bridge br-lan;
# P-k1, P-l1, P-m1 are the hosts, each with eth0 on its segment's br-lan and on-link default
# routes, so ARP and neighbour discovery cross the tunnels. The hosts' MTU is 1450 (the VXLAN
# tunnels') unless --host-mtu says otherwise (1500 with device.mtu = 1500 is the bridged-hosts
# setup of docs/datapath.md). Daemons are stopped by PID.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cmd=run
prefix=vxt
bin=""
state=""
configs="$here/config"
underlay6=no
host_mtu=1450
while [ $# -gt 0 ]; do
    case "$1" in
        up|down|ping|run) cmd=$1 ;;
        --prefix) prefix=$2; shift ;;
        --bin) bin=$2; shift ;;
        --state) state=$2; shift ;;
        --configs) configs=$2; shift ;;
        --underlay6) underlay6=yes ;;
        --host-mtu) host_mtu=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "scenario.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
state=${state:-/tmp/$prefix-scenario}
hosts=(k1 l1 m1)

ns() { ip netns exec "$prefix-$1" "${@:2}"; }

up() {
    [ -n "$bin" ] || { echo "scenario.sh: --bin is required for up" >&2; exit 2; }
    [ "$(id -u)" = 0 ] || { echo "scenario.sh: needs root (network namespaces)" >&2; exit 1; }
    mkdir -p "$state"
    ip netns add "$prefix-ul"
    ns ul ip link add br0 type bridge
    ns ul ip link set br0 up
    for n in 1 2 3; do
        local seg=seg$n host=${hosts[$((n - 1))]}
        ip netns add "$prefix-$seg"
        ip netns add "$prefix-$host"
        ns "$seg" ip link set lo up
        ns "$host" ip link set lo up
        # underlay: seg's ul0 <-> port s$n on the underlay bridge
        ip link add ul0 netns "$prefix-$seg" type veth peer name "s$n" netns "$prefix-ul"
        ns ul ip link set "s$n" master br0 up
        if [ "$underlay6" = yes ]; then
            ns "$seg" ip addr add "2001:db8:200::10$n/64" dev ul0 nodad
        else
            ns "$seg" ip addr add "192.168.200.10$n/24" dev ul0
        fi
        ns "$seg" ip link set ul0 up
        # the segment's LAN: bridge br-lan with the host's eth0 on it
        ns "$seg" ip link add br-lan type bridge
        ns "$seg" ip link set br-lan up
        ip link add h0 netns "$prefix-$seg" type veth peer name eth0 netns "$prefix-$host"
        ns "$seg" ip link set h0 master br-lan up
        ns "$host" ip link set eth0 mtu "$host_mtu" up
        ns "$host" ip addr add "172.31.$n.1/24" dev eth0
        ns "$host" ip addr add "fc00:0:0:$n::1/64" dev eth0 nodad
        ns "$host" ip route add default dev eth0
        ns "$host" ip -6 route add default dev eth0
    done
    for n in 1 2 3; do
        ip netns exec "$prefix-seg$n" "$bin" --config "$configs/seg$n.toml" \
            >"$state/seg$n.out" 2>"$state/seg$n.log" &
        echo $! >"$state/seg$n.pid"
    done
    for n in 1 2 3; do
        for _ in $(seq 100); do
            grep -q "vxtund ready" "$state/seg$n.out" 2>/dev/null && break
            kill -0 "$(cat "$state/seg$n.pid")" 2>/dev/null || { cat "$state/seg$n.log" >&2; exit 1; }
            sleep 0.1
        done
        grep -q "vxtund ready" "$state/seg$n.out" || { echo "seg$n did not start" >&2; exit 1; }
        echo "seg$n: $(cat "$state/seg$n.out")"
    done
}

down() {
    for n in 1 2 3; do
        local pidfile="$state/seg$n.pid"
        if [ -f "$pidfile" ]; then
            local pid
            pid=$(cat "$pidfile")
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
    for name in ul seg1 seg2 seg3 "${hosts[@]}"; do
        ip netns del "$prefix-$name" 2>/dev/null || true
    done
}

ping_all() {
    local fail=0
    for a in 1 2 3; do
        for b in 1 2 3; do
            [ "$a" = "$b" ] && continue
            for target in "172.31.$b.1" "fc00:0:0:$b::1"; do
                if ns "${hosts[$((a - 1))]}" ping -c 3 -i 0.2 -w 6 -q "$target" >/dev/null 2>&1; then
                    echo "ok    ${hosts[$((a - 1))]} -> ${hosts[$((b - 1))]} ($target)"
                else
                    echo "FAIL  ${hosts[$((a - 1))]} -> ${hosts[$((b - 1))]} ($target)"
                    fail=1
                fi
            done
        done
    done
    return $fail
}

case "$cmd" in
    up) up ;;
    down) down ;;
    ping) ping_all ;;
    run)
        [ "$(id -u)" = 0 ] || { echo "scenario.sh: needs root (network namespaces)" >&2; exit 1; }
        "$here/scripts/setup.sh"
        (cd "$here" && cargo build --release)
        bin="$here/target/release/vxtund"
        trap down EXIT
        trap 'exit 130' INT TERM
        up
        echo
        ping_all || echo "some pings failed: see $state/seg*.log"
        cat <<MSG

The scenario is running. Try, for example:
  ip netns exec $prefix-l1 ping fc00:0:0:3::1         # l1 -> m1 (through the hub in the star)
  $here/target/release/vxtunctl -s /run/vxtund/seg1.sock show          # ports, MTUs, counters
  $here/target/release/vxtunctl -s /run/vxtund/seg1.sock dump-flows    # flows with counters
  kill -HUP \$(cat $state/seg1.pid)                    # reload seg1 after editing its config
  ip netns exec $prefix-seg1 tcpdump -ni ul0 udp port 8472
Press Ctrl-C to stop and remove everything.
MSG
        while true; do sleep 3600; done
        ;;
esac
