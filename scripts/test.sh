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
cargo test --all-targets "$@"
# The namespace suites ran with the kernel fast path wherever it loads (fast_path = "auto");
# they run again with the userspace path alone, so both paths are proven.
if [ "$(id -u)" = 0 ] && [ $# -eq 0 ]; then
    echo "*** the namespace suites again with fast_path = \"off\" (the userspace path alone) ***"
    VXTUND_TEST_FAST_PATH=off cargo test --test scenario --test paths --test underlay \
        --test transfer --test faults --test openflow --test controller --test interop \
        --test gre_scapy --test ops --test encrypted_underlay
fi
