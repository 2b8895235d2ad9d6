#!/usr/bin/env bash
# The whole test suite: unit, simulated-fabric, config and docs tests (no root needed), and the
# end-to-end tests in network namespaces and the Debian package's build, install and purge
# (tests/package.rs) (root needed; without root they print SKIPPED).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
if [ "$(id -u)" != 0 ]; then
    echo "*** not root: the network-namespace tests will be SKIPPED (run as root to run them) ***" >&2
fi
cd "$here"
# Every test runs even when one fails (--no-fail-fast, and the second pass after a failed
# first), so that one run shows every failure; the exit status says whether any failed.
# Four tests at a time: the namespace tests mostly wait (pings, timers, daemons starting);
# those that measure or bring up whole scenarios take their binary's lock
# (common::one_at_a_time) and run alone.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
status=0
cargo test --no-fail-fast --all-targets "$@" || status=$?
# The namespace suites ran with the kernel fast path wherever it loads (fast_path = "auto");
# they run again with the userspace path alone, so both paths are proven. Not gre_scapy (GRE
# takes the userspace path either way), transfer (its matrix pins fast_path = "off" in both
# passes; its fast-path case ran above) or ops (systemd, logs, manuals: no data path); nor,
# to keep CI under 30 minutes, openflow and controller (2.5 minutes, each test alone): they
# ran on the userspace path until the fast path came, and their frames that the fast path
# never carries (packet-ins, PACKET_OUTs, relays) take it in the pass above.
if [ "$(id -u)" = 0 ] && [ $# -eq 0 ]; then
    echo "*** the namespace suites again with fast_path = \"off\" (the userspace path alone) ***"
    VXTUND_TEST_FAST_PATH=off cargo test --no-fail-fast --test scenario \
        --test paths --test underlay --test faults --test interop --test encrypted_underlay \
        || status=$?
fi
exit "$status"
