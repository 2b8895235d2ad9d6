#!/usr/bin/env bash
# Throughput of vxtund against the kernel's vxlan, measured in the same run.
#
#   benches/iperf.sh                 (as root; DURATION=10 RUNS=1 by default)
#
# Three namespace pairs, each joined by a veth underlay (MTU 1500): one with the kernel's vxlan
# device (id 42, dstport 8472, MTU 1450), one with a vxtund on each side over VXLAN (TAP MTU
# 1450), one with vxtund over GRE (TAP MTU 1462). iperf3 runs TCP one stream in each direction
# and UDP with 1400-byte datagrams over each, RUNS times (the median is reported), and prints a
# Markdown table with the ratio to the kernel's vxlan and the CPU the two vxtund processes used.
# Every process is stopped by PID and every namespace removed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
RUNS=${RUNS:-1}
[ "$(id -u)" = 0 ] || { echo "iperf.sh: needs root" >&2; exit 1; }
"$here/scripts/setup.sh"
bin=${BIN:-$here/target/release/vxtund}
if [ -z "${BIN:-}" ]; then (cd "$here" && cargo build --release -q); fi

p=vxb$$
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for f in "$tmp"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    sleep 0.3
    for n in ka kb va vb ga gb; do ip netns del "$p-$n" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

pair() { # pair A B: namespaces joined by ul0 <-> ul0, 10.201.0.1 / .2
    ip netns add "$p-$1"; ip netns add "$p-$2"
    ip link add ul0 netns "$p-$1" type veth peer name ul0 netns "$p-$2"
    local i=1
    for n in "$1" "$2"; do
        ip -n "$p-$n" link set lo up
        ip -n "$p-$n" addr add "10.201.0.$i/24" dev ul0
        ip -n "$p-$n" link set ul0 up
        i=$((i + 1))
    done
}

pair ka kb
for i in 1 2; do
    n=$([ $i = 1 ] && echo ka || echo kb); r=$((3 - i))
    ip -n "$p-$n" link add vx0 type vxlan id 42 dstport 8472 local "10.201.0.$i" remote "10.201.0.$r" dev ul0
    ip -n "$p-$n" addr add "10.99.0.$i/24" dev vx0
    ip -n "$p-$n" link set vx0 up
done

vxtund_pair() { # vxtund_pair A B TYPE: two vxtund daemons with a TYPE tunnel between them
    pair "$1" "$2"
    local i=1 n
    for n in "$1" "$2"; do
        local r=$((3 - i)) id="vni = 42"
        [ "$3" = gre ] && id="key = 42"
        cat >"$tmp/$n.toml" <<CONF
[device]
name = "vxt0"
addresses = ["10.99.0.$i/24"]
[underlay]
local = "10.201.0.$i"
[[tunnel]]
name = "peer"
type = "$3"
remote = "10.201.0.$r"
$id
[control]
socket = "$tmp/$n.sock"
CONF
        ip netns exec "$p-$n" "$bin" --config "$tmp/$n.toml" --log-level warn >"$tmp/$n.out" 2>"$tmp/$n.log" &
        pids+=($!)
        echo $! >"$tmp/$n.daemon"
        i=$((i + 1))
    done
    for n in "$1" "$2"; do
        for _ in $(seq 100); do grep -q "vxtund ready" "$tmp/$n.out" && break; sleep 0.1; done
        grep -q "vxtund ready" "$tmp/$n.out" || { cat "$tmp/$n.log"; exit 1; }
    done
}
vxtund_pair va vb vxlan
vxtund_pair ga gb gre

for n in kb vb gb; do
    ip netns exec "$p-$n" iperf3 -s -D --pidfile "$tmp/iperf-$n.pid" -B 10.99.0.2
done
sleep 0.5
ip netns exec "$p-ka" ping -c 2 -W 2 -q 10.99.0.2 >/dev/null
ip netns exec "$p-va" ping -c 2 -W 2 -q 10.99.0.2 >/dev/null
ip netns exec "$p-ga" ping -c 2 -W 2 -q 10.99.0.2 >/dev/null

cpu_ticks() { # cpu_ticks A B: user + system ticks of the two vxtund processes of a pair
    local total=0 n
    for n in "$1" "$2"; do
        read -r -a f <"/proc/$(cat "$tmp/$n.daemon")/stat"
        total=$((total + f[13] + f[14]))
    done
    echo "$total"
}

measure() { # measure NS TEST RUN -> writes JSON to $tmp/NS-TEST-RUN.json, CPU ticks used
    local ns=$1 test=$2 run=$3 args=()
    case "$test" in
        tcp) args=() ;;
        tcp_rev) args=(-R) ;;
        udp) args=(-u -b 0 -l 1400) ;;
    esac
    local before=0 peer=${ns/a/b}
    [ "$ns" != ka ] && before=$(cpu_ticks "$ns" "$peer")
    ip netns exec "$p-$ns" timeout $((DURATION + 20)) iperf3 -c 10.99.0.2 -t "$DURATION" -J "${args[@]}" \
        >"$tmp/$ns-$test-$run.json" 2>>"$tmp/iperf.err" || true
    if [ "$ns" != ka ]; then echo $(($(cpu_ticks "$ns" "$peer") - before)) >"$tmp/$ns-$test-$run.cpu"; fi
}

for run in $(seq "$RUNS"); do
    for test in tcp tcp_rev udp; do
        # alternate the order so neither path always runs first
        if [ $((run % 2)) = 1 ]; then order="ka va ga"; else order="ga va ka"; fi
        for ns in $order; do measure "$ns" "$test" "$run"; done
    done
done

python3 - "$tmp" "$RUNS" "$DURATION" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
tmp, runs, duration, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])

def value(ns, test, run):
    try:
        with open(f"{tmp}/{ns}-{test}-{run}.json") as f:
            j = json.load(f)
        if test == "udp":
            s = j["end"]["sum"]
            return (s["packets"] - s["lost_packets"]) / s["seconds"] / 1000, s["lost_percent"]
        return j["end"]["sum_received"]["bits_per_second"] / 1e9, None
    except Exception:
        return 0.0, None

names = {"tcp": "TCP 1 stream, Gbit/s", "tcp_rev": "TCP 1 stream reverse (-R), Gbit/s", "udp": "UDP 1400 B, kpps received (loss %)"}
paths = [("va", "vxtund VXLAN"), ("ga", "vxtund GRE")]
head = "| test (%d run(s) of %.0f s, median) | kernel vxlan |" % (runs, duration)
for _, label in paths:
    head += f" {label} | / kernel | CPU % |"
print(head)
print("|---|---|" + "---|---|---|" * len(paths))

def show(xs, m):
    loss = [x[1] for x in xs if x[1] is not None]
    return f"{m:.2f}" + (f" ({statistics.median(loss):.1f} %)" if loss else "")

for test in ("tcp", "tcp_rev", "udp"):
    k = [value("ka", test, r) for r in range(1, runs + 1)]
    km = statistics.median(x[0] for x in k)
    row = f"| {names[test]} | {show(k, km)} |"
    for ns, _ in paths:
        v = [value(ns, test, r) for r in range(1, runs + 1)]
        vm = statistics.median(x[0] for x in v)
        cpu = statistics.median(int(open(f"{tmp}/{ns}-{test}-{r}.cpu").read()) / hz / duration * 100 for r in range(1, runs + 1))
        row += f" {show(v, vm)} | {vm / km if km else 0:.2f} | {cpu:.0f} |"
    print(row)
print()
print("CPU %: both vxtund processes of the pair together; 200 = both cores.")
PY
