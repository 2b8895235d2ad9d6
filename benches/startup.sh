#!/usr/bin/env bash
# Startup time and per-tunnel scale: vxtund with 1,000 VXLAN tunnels and 100,000 flows in a
# network namespace, timed from exec to its ready line; then the same config's --check.
#
#   benches/startup.sh               (as root)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "startup.sh: needs root" >&2; exit 1; }
bin=${BIN:-$here/target/release/vxtund}
if [ -z "${BIN:-}" ]; then (cd "$here" && cargo build --release -q); fi
ns=vxs$$
tmp=$(mktemp -d)
cleanup() {
    [ -f "$tmp/pid" ] && kill "$(cat "$tmp/pid")" 2>/dev/null || true
    sleep 0.3
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add ul0 type veth peer name ul1
ip -n "$ns" addr add 10.200.0.1/16 dev ul0
ip -n "$ns" link set ul0 up
python3 - "$tmp" >"$tmp/scale.toml" <<'PY'
import sys
tmp = sys.argv[1]
print('[device]\nname = "vxt0"\nmtu = 1450\n[underlay]\nlocal = "10.200.0.1"\n')
for i in range(1000):
    print(f'[[tunnel]]\nname = "t{i}"\ntype = "vxlan"\nremote = "10.200.{4 + i // 250}.{1 + i % 250}"\nvni = {i}\n')
print("[flows]\nrules = [")
for i in range(100_000):
    print(f'  "ip,nw_dst=10.{(i >> 8) & 0xff}.{i & 0xff}.0/24,actions=output:t{i % 1000}",' if i < 65536
          else f'  "ip,nw_dst=11.{(i >> 8) & 0xff}.{i & 0xff}.0/24,actions=output:t{i % 1000}",')
print('  "arp,actions=flood",\n]')
print(f'[control]\nsocket = "{tmp}/ctl.sock"')
PY
start=$(date +%s.%N)
ip netns exec "$ns" "$bin" --config "$tmp/scale.toml" --log-level warn >"$tmp/out" 2>"$tmp/log" &
echo $! >"$tmp/pid"
for _ in $(seq 600); do grep -q "vxtund ready" "$tmp/out" 2>/dev/null && break; sleep 0.01; done
ready=$(date +%s.%N)
grep -q "vxtund ready" "$tmp/out" || { cat "$tmp/log"; exit 1; }
rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$(cat "$tmp/pid")/status")
c0=$(date +%s.%N)
"$bin" --check --config "$tmp/scale.toml" >/dev/null
c1=$(date +%s.%N)
python3 -c "print(f'1,000 tunnels, 100,000 flows: ready after {($ready - $start) * 1000:.0f} ms (RSS {$rss / 1024:.1f} MiB); --check {($c1 - $c0) * 1000:.0f} ms')"
