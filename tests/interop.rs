//! vxtund against the Linux kernel's own vxlan device, and against a peer that sends garbage.
//! Needs root.

mod common;

use common::{Daemon, Netns, Pair};

/// vxtund in `a` (TAP 10.77.0.1, fd77::1) and the kernel's vxlan in `b` (10.77.0.2, fd77::2),
/// VNI 5000, over the underlay 192.168.201.0/24 or, with `v6`, 2001:db8:201::/64.
impl Pair {
    fn kernel_peer() -> Pair {
        Pair::kernel_peer_over(false)
    }

    fn kernel_peer_over(v6: bool) -> Pair {
        Pair::kernel_peer_with(v6, "")
    }

    /// With `device` lines added to the `[device]` section.
    fn kernel_peer_with(v6: bool, device: &str) -> Pair {
        let (ul_a, ul_b, ul_b2, local, remote) = if v6 {
            (
                "2001:db8:201::1/64",
                "2001:db8:201::2/64",
                "2001:db8:201::3/64",
                "2001:db8:201::1",
                "2001:db8:201::2",
            )
        } else {
            (
                "192.168.201.1/24",
                "192.168.201.2/24",
                "192.168.201.3/24",
                "192.168.201.1",
                "192.168.201.2",
            )
        };
        let (a, b) = common::two_hosts("a", ul_a, ul_b);
        b.ip(&["addr", "add", ul_b2, "dev", "ul0"]);
        b.ip(&[
            "link", "add", "vx0", "type", "vxlan", "id", "5000", "dstport", "8472", "local",
            remote, "remote", local, "dev", "ul0",
        ]);
        b.ip(&["addr", "add", "10.77.0.2/24", "dev", "vx0"]);
        b.ip(&["addr", "add", "fd77::2/64", "dev", "vx0"]);
        b.ip(&["link", "set", "vx0", "up"]);
        Pair::one_sided(
            (a, b),
            &format!(
                r#"
            [device]
            {device}
            name = "vxt0"
            addresses = ["10.77.0.1/24", "fd77::1/64"]
            [underlay]
            local = "{local}"
            [[tunnel]]
            name = "kernel"
            type = "vxlan"
            remote = "{remote}"
            vni = 5000
            "#
            ),
        )
    }
}

#[test]
fn kernel_vxlan_peer_over_an_ipv6_underlay() {
    if !common::require_root("kernel_vxlan_peer_over_an_ipv6_underlay") {
        return;
    }
    let mut p = Pair::kernel_peer_over(true);
    assert!(
        p.da.ready_line()
            .contains("kernel (vxlan [2001:db8:201::2]:8472 vni 5000 mtu 1430,"),
        "{}",
        p.da.ready_line()
    );
    assert!(
        p.a.pings("10.77.0.2"),
        "vxtund -> kernel, IPv4 over IPv6\n{}",
        p.da.log()
    );
    assert!(p.b.pings("10.77.0.1"), "kernel -> vxtund, IPv4 over IPv6");
    assert!(p.a.pings("fd77::2"), "vxtund -> kernel, IPv6 over IPv6");
    assert!(p.b.pings("fd77::1"), "kernel -> vxtund, IPv6 over IPv6");
    assert!(p.da.stats()["port 2 kernel"]["rx_packets"] >= 12);
}

#[test]
fn kernel_vxlan_peer_ping_and_ping6_both_ways() {
    if !common::require_root("kernel_vxlan_peer_ping_and_ping6_both_ways") {
        return;
    }
    let mut p = Pair::kernel_peer();
    assert!(
        p.da.ready_line()
            .contains("kernel (vxlan 192.168.201.2:8472 vni 5000 mtu 1450,"),
        "{}",
        p.da.ready_line()
    );
    assert!(
        p.a.pings("10.77.0.2"),
        "vxtund -> kernel, IPv4\n{}",
        p.da.log()
    );
    assert!(p.b.pings("10.77.0.1"), "kernel -> vxtund, IPv4");
    assert!(p.a.pings("fd77::2"), "vxtund -> kernel, IPv6");
    assert!(p.b.pings("fd77::1"), "kernel -> vxtund, IPv6");
    let stats = p.da.stats();
    assert!(stats["port 2 kernel"]["rx_packets"] >= 12, "{stats:?}");
    assert_eq!(stats["drops"]["wrong_vni"], 0);
    let daemon = p.da;
    assert!(daemon.stop().success(), "vxtund should exit 0 on SIGTERM");
    drop(p.a);
    drop(p.b);
}

/// Sends `count` UDP datagrams holding `payload` (hex) from `src` to vxtund's port 8472.
fn send_udp(ns: &Netns, src: &str, payload_hex: &str, count: u32) {
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{src}',0))\n\
         for _ in range({count}): s.sendto(bytes.fromhex('{payload_hex}'),('192.168.201.1',8472))\n"
    );
    let out = ns.exec("python3", &["-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn garbage_and_foreign_datagrams_are_counted_and_the_tunnel_keeps_working() {
    if !common::require_root(
        "garbage_and_foreign_datagrams_are_counted_and_the_tunnel_keeps_working",
    ) {
        return;
    }
    let mut p = Pair::kernel_peer();
    assert!(p.a.pings("10.77.0.2"));

    // A valid inner frame (broadcast ARP) behind different VXLAN headers.
    let frame =
        "ffffffffffff020000000001080600010800060400010200000000010a4d00090000000000000a4d0001";
    send_udp(&p.b, "192.168.201.2", "00", 5); // truncated
    send_udp(&p.b, "192.168.201.2", &"de".repeat(40), 6); // flags wrong: garbage
    send_udp(
        &p.b,
        "192.168.201.2",
        &format!("0800000000000700{frame}"),
        7,
    ); // VNI 7, not 5000
    send_udp(
        &p.b,
        "192.168.201.3",
        &format!("0800000000138800{frame}"),
        8,
    ); // right VNI, unknown sender

    let stats = p.da.stats();
    let drops = &stats["drops"];
    assert_eq!(drops["vxlan_truncated"], 5, "{drops:?}");
    assert_eq!(drops["vxlan_bad_flags"], 6, "{drops:?}");
    assert_eq!(drops["wrong_vni"], 7, "{drops:?}");
    assert_eq!(drops["unknown_remote"], 8, "{drops:?}");

    assert!(p.a.pings("10.77.0.2"), "the tunnel must keep working");
    assert!(p.b.pings("fd77::1"), "the tunnel must keep working");
    assert!(p.da.log().contains("TAP device ready"));
}

/// Sends bursts of consecutive TCP segments to vxtund (`tests/scripts/vxlan_segments.py`) and
/// returns how many of them vxtund coalesced into superframes for its TAP.
fn coalesced(p: &mut Pair, outer: &str, inner: &str) -> u64 {
    let count = |p: &mut Pair| p.da.stats()["offload"]["coalesced_segments"];
    let received = |p: &mut Pair| p.da.stats()["port 2 kernel"]["rx_packets"];
    let (before, arrived) = (count(p), received(p));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/vxlan_segments.py"
    );
    let mac = p.a.link_attr("vxt0", "address");
    let out = p.b.exec(
        "python3",
        &[
            script,
            "192.168.201.2",
            "192.168.201.1",
            "5000",
            &mac,
            outer,
            inner,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every datagram handled (the port counts it once decided) before the count is read.
    let sent: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received(p) < arrived + sent {
        assert!(
            std::time::Instant::now() < deadline,
            "not all {sent} datagrams arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let merged = count(p) - before;
    eprintln!("coalesced {outer}/{inner}: {merged} of {sent}");
    merged
}

/// `inner_checksum = "auto"` over IPv4: segments that came with an outer UDP checksum (which the
/// kernel verified over the whole inner frame) are coalesced without a second look; segments
/// that came without one (the kernel's vxlan default) have their TCP checksums verified first,
/// and damaged ones are not merged (the kernel would otherwise finish the superframe's checksum
/// over the damage). The receiving sockets tell the two apart (`src/io/steer.rs`).
#[test]
fn inner_checksums_are_verified_only_where_no_outer_checksum_vouches_for_them() {
    if !common::require_root(
        "inner_checksums_are_verified_only_where_no_outer_checksum_vouches_for_them",
    ) {
        return;
    }
    // What vxtund's userspace path does with the segments it receives and writes to its TAP;
    // with the kernel fast path, segments of a cached flow never reach it (and are not
    // verified, as the kernel's vxlan verifies none): so this test runs without it.
    let mut p = Pair::kernel_peer_with(false, "fast_path = \"off\"");
    assert!(p.a.pings("10.77.0.2"));
    // 6 bursts of 32: most segments of a burst arrive in one read and are merged.
    let trusted = coalesced(&mut p, "checksum", "bad");
    assert!(
        trusted >= 32,
        "outer checksum, inner damaged: trusted, merged ({trusted})"
    );
    let verified = coalesced(&mut p, "zero", "good");
    assert!(
        verified >= 32,
        "no outer checksum, inner intact: verified, merged ({verified})"
    );
    let refused = coalesced(&mut p, "zero", "bad");
    assert_eq!(
        refused, 0,
        "no outer checksum, inner damaged: verified, not merged"
    );
    // The kernel's vxlan sends no outer checksum: its traffic is verified and still flows.
    assert!(p.b.pings("10.77.0.1"));
    let log = p.da.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn an_existing_persistent_tap_is_opened_left_in_place_and_reused() {
    if !common::require_root("an_existing_persistent_tap_is_opened_left_in_place_and_reused") {
        return;
    }
    let (a, _b) = common::two_hosts("p", "192.168.202.1/24", "192.168.202.2/24");
    a.ip(&["tuntap", "add", "dev", "vxt9", "mode", "tap"]);
    a.ip(&["link", "add", "br0", "type", "bridge"]);
    let config = r#"
        [device]
        name = "vxt9"
        bridge = "br0"
        addresses = ["10.79.0.1/24"]
        [underlay]
        local = "192.168.202.1"
        [[tunnel]]
        name = "b"
        type = "vxlan"
        remote = "192.168.202.2"
        "#;
    // The second start finds the address and the bridge already in place from the first.
    for run in 1..=2 {
        let daemon = Daemon::start(&a, config);
        assert!(
            daemon.log().contains("created=false"),
            "run {run}: {}",
            daemon.log()
        );
        let link = String::from_utf8(a.ip(&["-o", "link", "show", "vxt9"]).stdout).unwrap();
        assert!(
            link.contains("mtu 1450") && link.contains("master br0"),
            "run {run}: {link}"
        );
        assert!(daemon.stop().success(), "run {run}");
        assert!(
            a.exec("ip", &["link", "show", "vxt9"]).status.success(),
            "a TAP vxtund did not create must stay"
        );
    }
}

#[test]
fn losing_the_tap_stops_the_daemon_with_an_error() {
    if !common::require_root("losing_the_tap_stops_the_daemon_with_an_error") {
        return;
    }
    let p = Pair::kernel_peer();
    assert!(p.a.pings("10.77.0.2"));
    p.a.ip(&["link", "del", "vxt0"]);
    let (status, log) = p.da.wait_exit();
    assert!(
        !status.success(),
        "the exit status must tell systemd to restart it"
    );
    assert!(log.contains("reading from the TAP device"), "{log}");
    assert!(log.contains("the data path stopped"), "{log}");
}

#[test]
fn sigterm_and_sigint_exit_cleanly_and_the_tap_goes() {
    if !common::require_root("sigterm_and_sigint_exit_cleanly_and_the_tap_goes") {
        return;
    }
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let p = Pair::kernel_peer();
        assert!(p.a.pings("10.77.0.2"));
        let (status, log) = p.da.signal_and_wait(signal);
        assert!(
            status.success(),
            "signal {signal}: exit status {status}\n{log}"
        );
        let stopping = log.find("stopping").expect("a stopping line");
        let report = log.rfind(" drops:").expect("a final counter report");
        let removing = log.find("removing the TAP device").expect("a removal line");
        assert!(
            stopping < report && report < removing,
            "shutdown order:\n{log}"
        );
        assert!(
            log.contains("port 2 kernel: rx_packets="),
            "the final report has the counters:\n{log}"
        );
        assert!(
            !p.a.exec("ip", &["link", "show", "vxt0"]).status.success(),
            "the TAP must be gone"
        );
    }
}

#[test]
fn reload_puts_new_addresses_on_the_device_and_takes_old_ones_off() {
    if !common::require_root("reload_puts_new_addresses_on_the_device_and_takes_old_ones_off") {
        return;
    }
    let mut p = Pair::kernel_peer();
    assert!(p.b.pings("10.77.0.1"));
    let path = p.da.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replace("\"10.77.0.1/24\"", "\"10.77.0.11/24\"");
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
    p.da.reload("reloaded");
    let shown = p.a.exec("ip", &["-o", "addr", "show", "dev", "vxt0"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("10.77.0.11/24"), "{shown}");
    assert!(!shown.contains("10.77.0.1/24"), "{shown}");
    assert!(shown.contains("fd77::1/64"), "untouched: {shown}");
    assert!(
        p.b.pings("10.77.0.11"),
        "the new address answers over the tunnel"
    );
}

#[test]
fn control_socket_with_a_group_is_shared_with_that_group_only() {
    if !common::require_root("control_socket_with_a_group_is_shared_with_that_group_only") {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Debian's base system has the group `daemon` (GID 1).
    let group = std::fs::read_to_string("/etc/group").unwrap();
    let gid: u32 = group
        .lines()
        .find_map(|l| l.strip_prefix("daemon:x:"))
        .and_then(|rest| rest.split(':').next())
        .and_then(|g| g.parse().ok())
        .expect("group daemon in /etc/group");
    let a = Netns::new("g");
    a.ip(&["link", "set", "lo", "up"]);
    let daemon = Daemon::start(
        &a,
        r#"
        [underlay]
        local = "127.0.0.1"
        [[tunnel]]
        name = "t"
        type = "vxlan"
        remote = "127.0.0.2"
        [control]
        group = "daemon"
        "#,
    );
    let meta = std::fs::metadata(daemon.control_socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    assert_eq!(meta.uid(), 0);
}

#[test]
fn a_reload_that_fails_on_the_device_undoes_what_it_did_and_an_mtu_change_applies() {
    if !common::require_root(
        "a_reload_that_fails_on_the_device_undoes_what_it_did_and_an_mtu_change_applies",
    ) {
        return;
    }
    let mut p = Pair::kernel_peer();
    let device = |p: &Pair| {
        let out = p.a.exec("ip", &["-o", "addr", "show", "dev", "vxt0"]);
        let link = p.a.exec("ip", &["-o", "link", "show", "dev", "vxt0"]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&link.stdout),
            String::from_utf8_lossy(&out.stdout)
        )
    };
    // With IPv6 off on the device, adding the IPv6 address fails after the MTU and the new
    // IPv4 address were applied.
    p.a.exec("sysctl", &["-qw", "net.ipv6.conf.vxt0.disable_ipv6=1"]);
    let before = device(&p);
    assert!(
        before.contains("mtu 1450") && before.contains("10.77.0.1/24"),
        "{before}"
    );
    let path = p.da.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let failing = text
        .replace("name = \"vxt0\"", "name = \"vxt0\"\n            mtu = 1400")
        .replace(
            "[\"10.77.0.1/24\", \"fd77::1/64\"]",
            "[\"10.77.0.11/24\", \"fd77::11/64\"]",
        );
    std::fs::write(&path, &failing).unwrap();
    p.da.reload("reload refused");
    assert!(
        p.da.log().contains("adding address fd77::11/64"),
        "{}",
        p.da.log()
    );
    let after = device(&p);
    assert!(after.contains("mtu 1450"), "MTU restored: {after}");
    assert!(after.contains("10.77.0.1/24"), "old address back: {after}");
    assert!(!after.contains("10.77.0.11"), "new address gone: {after}");
    assert!(p.b.pings("10.77.0.1"), "still working");

    // Only the MTU (and IPv6 back on, so the IPv6 address is put back too): applied in place.
    p.a.exec("sysctl", &["-qw", "net.ipv6.conf.vxt0.disable_ipv6=0"]);
    let mtu_only = text.replace("name = \"vxt0\"", "name = \"vxt0\"\n            mtu = 1400");
    std::fs::write(&path, mtu_only).unwrap();
    p.da.reload("reloaded");
    let after = device(&p);
    assert!(after.contains("mtu 1400"), "{after}");
    assert!(
        after.contains("fd77::1/64"),
        "the configured IPv6 address is back: {after}"
    );
    assert!(p.b.pings("10.77.0.1"));
}
