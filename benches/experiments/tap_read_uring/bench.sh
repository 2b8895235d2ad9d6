#!/bin/bash
# Runs tap_read_uring's three methods, alternating, each in a network namespace of its own
# that is deleted afterwards (the TAP goes with the process). Root only; bounded: 3 x 3 runs
# of 20 drains of 4000 frames, a few seconds in all.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root (network namespaces, a TAP device)" >&2; exit 1; }
cargo build -q --release --manifest-path "$here/Cargo.toml"
bin=$here/target/release/tap_read_uring
for _ in 1 2 3; do
    for m in read uring fixed; do
        ns=tru-$$-$m
        ip netns add "$ns"
        trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
        ip netns exec "$ns" "$bin" "$m" 20
        ip netns del "$ns"
        trap - EXIT
    done
done
