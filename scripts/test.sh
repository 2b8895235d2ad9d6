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
