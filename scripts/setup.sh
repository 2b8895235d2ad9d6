#!/usr/bin/env bash
# Installs what vxtund's scenario, tests and benchmarks need on a fresh Debian machine:
# iproute2 (ip), ping, iperf3, tcpdump, python3 (the garbage-datagram test sends with it) and
# python3-scapy (the GRE peer of tests/gre_scapy.rs) and openvswitch-common (ovs-ofctl, the
# OpenFlow client of tests/openflow.rs), openvswitch-testcontroller and python3-os-ken (the
# controllers of tests/controller.rs); for tests/ops.rs curl (scrapes), gdb (stops a thread),
# prometheus (promtool check metrics), groff (reads the manual pages) and systemd (systemd-analyze verify of the
# unit); clang, libbpf-dev and bpftool for the fast path's BPF programs; for the Debian
# package (scripts/package.sh, tests/package.rs) dpkg-dev and debhelper (build it), lintian
# (checks it) and man-db (man -w finds its manual pages); frr (zebra, bgpd, vtysh) and gobgpd
# (gobgpd, gobgp), the EVPN peers of tests/evpn.rs; wireguard-go and wireguard-tools (wg), the
# encrypted underlay of tests/encrypted_underlay.rs; openssl for the TLS tests' certificates.
# Does nothing for tools already there.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v python3 >/dev/null || need+=(python3)
# The GRE test's peer is scapy, from Debian, run by Debian's own interpreter.
/usr/bin/python3 -c 'import scapy' 2>/dev/null || need+=(python3-scapy)
# Debian's own ovs-ofctl manages vxtund over OpenFlow in tests/openflow.rs.
command -v ovs-ofctl >/dev/null || need+=(openvswitch-common)
# The two controllers of tests/controller.rs: Open vSwitch's and an os-ken app.
command -v ovs-testcontroller >/dev/null || need+=(openvswitch-testcontroller)
command -v osken-manager >/dev/null || need+=(python3-os-ken)
# OpenFlow over TLS (tests/openflow.rs, tests/controller.rs, tests/config.rs): ovs-pki
# (openvswitch-common, above) makes the PKI with openssl, which also signs an expired certificate.
command -v openssl >/dev/null || need+=(openssl)
# tests/ops.rs: scrapes, the metrics lint, the manual pages, the unit's check, and gdb, which
# holds a data-path thread mid-batch while the counters are read.
command -v curl >/dev/null || need+=(curl)
command -v gdb >/dev/null || need+=(gdb)
command -v promtool >/dev/null || need+=(prometheus)
command -v groff >/dev/null || need+=(groff-base)
command -v systemd-analyze >/dev/null || need+=(systemd)
# The kernel fast path: its BPF programs are built from C during the build (build.rs) with
# clang and libbpf's headers; tests/fastpath.rs lists attached programs with bpftool.
command -v clang >/dev/null || need+=(clang)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v bpftool >/dev/null || need+=(bpftool)
# scripts/package.sh and tests/package.rs: build the .deb, check it, find its manuals.
command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev)
command -v dh >/dev/null || need+=(debhelper)
command -v lintian >/dev/null || need+=(lintian)
command -v man >/dev/null || need+=(man-db)
# tests/evpn.rs: FRR's route reflector and VTEP, and GoBGP injecting routes. Debian's frr does
# not start its daemons here without systemd; the test runs its own per namespace.
[ -x /usr/lib/frr/bgpd ] || need+=(frr)
command -v gobgpd >/dev/null || need+=(gobgpd)
# tests/encrypted_underlay.rs: WireGuard under the tunnels, in userspace (wireguard-go), since
# a kernel without the wireguard module is enough for it; wg configures it.
command -v wireguard-go >/dev/null || need+=(wireguard-go)
command -v wg >/dev/null || need+=(wireguard-tools)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: missing ${need[*]}; install them (as root: apt-get install ${need[*]})" >&2
        exit 0
    fi
    echo "setup.sh: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
