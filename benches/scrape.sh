#!/usr/bin/env bash
# What scraping /metrics costs the data path: iperf3 TCP through vxtund (VXLAN, offloads on)
# between two namespaces, RUNS runs of DURATION s without scrapes and RUNS with a scrape every
# 100 ms, interleaved in one invocation; prints the median of each and their ratio.
#
#   benches/scrape.sh                (as root; DURATION=5 RUNS=3 by default)
#
# Underlay 10.202.0.0/24 on a veth (MTU 1500), overlay 10.98.0.0/24 on the TAPs. The scraper
# is curl against the sender's [metrics] listen (127.0.0.1:9477 in its namespace). Every
# process is stopped by PID and both namespaces removed, also on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "scrape.sh: needs root" >&2; exit 1; }
"$here/scripts/setup.sh"
if [ -z "${BIN:-}" ]; then (cd "$here" && cargo build --release -q); fi
bin=${BIN:-$here/target/release/vxtund}
p=vxscr$$
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$p-a" 2>/dev/null || true
    ip netns del "$p-b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$p-a"
ip netns add "$p-b"
ip link add ul0 netns "$p-a" type veth peer name ul0 netns "$p-b"
for side in a b; do
    n=$([ $side = a ] && echo 1 || echo 2)
    other=$([ $side = a ] && echo 2 || echo 1)
    ip -n "$p-$side" link set lo up
    ip -n "$p-$side" addr add "10.202.0.$n/24" dev ul0
    ip -n "$p-$side" link set ul0 up
    cat >"$work/$side.toml" <<EOF
[device]
name = "vxt0"
addresses = ["10.98.0.$n/24"]
[underlay]
local = "10.202.0.$n"
[[tunnel]]
name = "peer"
type = "vxlan"
remote = "10.202.0.$other"
[control]
socket = "$work/$side.sock"
[openflow]
listen = []
EOF
    if [ $side = a ]; then printf '[metrics]\nlisten = "127.0.0.1:9477"\n' >>"$work/a.toml"; fi
    ip netns exec "$p-$side" "$bin" --config "$work/$side.toml" >"$work/$side.out" 2>"$work/$side.log" &
    pids+=($!)
done
for side in a b; do
    for _ in $(seq 100); do grep -q "vxtund ready" "$work/$side.out" && break; sleep 0.1; done
    grep -q "vxtund ready" "$work/$side.out" || { cat "$work/$side.log" >&2; exit 1; }
done
ip netns exec "$p-a" ping -c 3 -i 0.2 -q 10.98.0.2 >/dev/null

run() { # $1: scrape or quiet; prints Gbit/s
    local scraper=
    if [ "$1" = scrape ]; then
        ip netns exec "$p-a" bash -c 'end=$((SECONDS + '"$((DURATION + 2))"'))
            n=0; while [ $SECONDS -lt $end ]; do
                curl -s -o /dev/null --max-time 1 http://127.0.0.1:9477/metrics && n=$((n + 1))
                sleep 0.1; done; echo $n >'"$work/scrapes" &
        scraper=$!
        pids+=("$scraper")
    fi
    ip netns exec "$p-b" iperf3 -s -1 >/dev/null 2>&1 &
    local server=$!
    pids+=("$server")
    sleep 0.3
    ip netns exec "$p-a" iperf3 -c 10.98.0.2 -t "$DURATION" -J >"$work/run.json"
    wait "$server" 2>/dev/null || true
    if [ -n "$scraper" ]; then wait "$scraper" 2>/dev/null || true; fi
    python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))' "$work/run.json"
}
quiet=() scraped=() counts=()
for i in $(seq "$RUNS"); do
    quiet+=("$(run quiet)")
    scraped+=("$(run scrape)")
    counts+=("$(cat "$work/scrapes")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
mq=$(median "${quiet[@]}")
ms=$(median "${scraped[@]}")
echo "TCP through vxtund, $RUNS run(s) of $DURATION s each, interleaved:"
echo "  no scrapes:              ${quiet[*]} Gbit/s (median $mq)"
echo "  a scrape every 100 ms:   ${scraped[*]} Gbit/s (median $ms; scrapes answered per run: ${counts[*]})"
python3 -c "import sys; print('  ratio scraped/quiet: %.3f' % (float(sys.argv[2]) / float(sys.argv[1])))" "$mq" "$ms"
