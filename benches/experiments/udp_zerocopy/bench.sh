#!/bin/bash
# Runs udp_zerocopy's three send modes, alternating, over a veth between two network
# namespaces of its own (deleted afterwards, with the processes in them killed by PID).
# Root only; bounded: ROUNDS (default 3) x 3 modes x SECS seconds (default 5), about a minute.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root (network namespaces, a veth)" >&2; exit 1; }
secs=${SECS:-5}
cargo build -q --release --manifest-path "$here/Cargo.toml"
bin=$here/target/release/udp_zerocopy
a=uzc-a-$$ b=uzc-b-$$ rx=
cleanup() {
    [ -n "$rx" ] && kill "$rx" 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add ul0 netns "$a" type veth peer ul0 netns "$b"
ip -n "$a" addr add 10.205.0.1/24 dev ul0
ip -n "$b" addr add 10.205.0.2/24 dev ul0
ip -n "$a" link set ul0 up
ip -n "$b" link set ul0 up
# Busy jiffies of the whole machine (user, nice, system, irq, softirq, steal).
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
hz=$(getconf CLK_TCK)
printf '| mode | Gbit/s received | machine CPU s per Gbit | sender CPU s (user / system) | zerocopy sends completed / copied |\n|---|---|---|---|---|\n'
for _ in $(seq "${ROUNDS:-3}"); do
    for mode in copy copy256 zerocopy; do
        out=$(mktemp)
        ip netns exec "$b" "$bin" recv 9000 "$(echo "$secs + 1.5" | bc)" >"$out" &
        rx=$!
        until grep -q ready "$out"; do sleep 0.05; done
        before=$(busy)
        line=$(ip netns exec "$a" "$bin" send "$mode" 10.205.0.2:9000 "$secs")
        after=$(busy)
        wait "$rx"
        rx=
        got=$(awk '/^received/{print $2}' "$out")
        rm -f "$out"
        echo "$line" | awk -v m="$mode" -v got="$got" -v secs="$secs" -v cpu="$(( after - before ))" -v hz="$hz" '{
            gbit = got * 8 / secs / 1e9
            for (i = 1; i <= NF; i++) {
                if ($i == "user") u = $(i+1)
                if ($i == "system") s = $(i+1)
                if ($i == "completed") c = $(i+1)
                if ($i == "copied") k = $(i+1)
            }
            gsub(",", "", u); gsub(";", "", s); gsub(",", "", c)
            printf "| %s | %.2f | %.3f | %s / %s | %s |\n", m, gbit, cpu / hz / (gbit * secs), u, s, (m == "zerocopy" ? c " / " k : "-")
        }'
    done
done
