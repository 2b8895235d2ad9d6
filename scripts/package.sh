#!/usr/bin/env bash
# Builds the Debian package of this checkout and prints the .deb's path as its last line.
#
# The tool is Debian's own: dpkg-buildpackage running debian/rules (debhelper), not cargo-deb.
# debhelper comes from Debian (scripts/setup.sh installs it; nothing to compile or fetch from
# crates.io first) and applies Debian's rules itself: maintainer scripts for the systemd unit,
# compressed manual pages and changelog, stripped binaries and a -dbgsym package, dependencies
# on the shared libraries the binaries use. What goes where, and why: docs/packaging.md.
#
# Everything it writes goes to target/debian/ (the .deb, the -dbgsym .ddeb, .buildinfo and
# .changes); debhelper's staging files under debian/ are cleaned when it ends. The release
# build shares cargo's target/ with the developer's own builds.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if ! command -v cargo >/dev/null; then
    echo "package.sh: no cargo on PATH (Rust 1.85 or later, from rustup; under sudo, PATH is reset)" >&2
    exit 1
fi
version=$(dpkg-parsechangelog --show-field Version)
crate=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
case "$version" in
    "$crate" | "$crate"+*) ;;
    *)
        echo "package.sh: debian/changelog is at $version but Cargo.toml at $crate; add a changelog entry (dch -v $crate)" >&2
        exit 1
        ;;
esac
arch=$(dpkg-architecture --query DEB_HOST_ARCH)
out="$here/target/debian"
mkdir -p "$out"
rm -f "$out"/vxtund_"$version"_"$arch".* "$out"/vxtund-dbgsym_"$version"_"$arch".*
# dpkg-buildpackage's own output goes to standard error: standard output is the path alone.
VXTUND_DEB_DIR="$out" dpkg-buildpackage --build=binary --no-sign --post-clean \
    --buildinfo-file="$out/vxtund_${version}_${arch}.buildinfo" --buildinfo-option="-u$out" \
    --changes-file="$out/vxtund_${version}_${arch}.changes" --changes-option="-u$out" >&2
deb="$out/vxtund_${version}_${arch}.deb"
test -f "$deb"
echo "$deb"
