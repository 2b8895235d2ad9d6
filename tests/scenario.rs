//! The reference scenario of docs/scenario.md, for real: three vxtund processes in namespaces,
//! hosts with on-link default routes, built by `scripts/scenario.sh` (the same script the
//! README's five-minute tour runs). Needs root.

mod common;

use std::time::Duration;

use common::scenario::{run_in, Scenario};

const TO_GRE: (&str, &str) = ("type = \"vxlan\"", "type = \"gre\"");

fn to_v6_underlay(text: &str) -> String {
    text.replace("\"192.168.200.10", "\"2001:db8:200::10")
}

#[test]
fn scenario_over_gre() {
    if !common::require_root("scenario_over_gre") {
        return;
    }
    let s = Scenario::up_with(|t| t.replace(TO_GRE.0, TO_GRE.1), false);
    assert!(
        s.ready("seg1")
            .contains("tun_kl (gre 192.168.200.102 no key mtu 1462,"),
        "{}",
        s.ready("seg1")
    );
    s.assert_every_pair_pings();
}

#[test]
fn scenario_over_gre_with_keys_checksums_and_sequence_numbers() {
    if !common::require_root("scenario_over_gre_with_keys_checksums_and_sequence_numbers") {
        return;
    }
    let s = Scenario::up_with(
        |t| {
            t.replace(
                TO_GRE.0,
                "type = \"gre\"\nkey = 1001\ncsum = true\nseq = true",
            )
        },
        false,
    );
    assert!(
        s.ready("seg2")
            .contains("(gre 192.168.200.101 key 1001,csum,seq mtu 1450,"),
        "{}",
        s.ready("seg2")
    );
    s.assert_every_pair_pings();
}

#[test]
fn scenario_mixed_seg2_vxlan_seg3_gre_with_key() {
    if !common::require_root("scenario_mixed_seg2_vxlan_seg3_gre_with_key") {
        return;
    }
    // tun_km (hub -> seg3) and tun_mk (seg3 -> hub) become GRE with key 3; tun_kl/tun_lk stay VXLAN.
    let gre_for_seg3 = |t: &str| {
        t.replace(
            "name = \"tun_km\"              # port 3: to seg3\ntype = \"vxlan\"",
            "name = \"tun_km\"\ntype = \"gre\"\nkey = 3",
        )
        .replace(
            "name = \"tun_mk\"                # port 2: to the hub\ntype = \"vxlan\"",
            "name = \"tun_mk\"\ntype = \"gre\"\nkey = 3",
        )
    };
    let s = Scenario::up_with(gre_for_seg3, false);
    assert!(
        s.ready("seg1").contains("tun_kl (vxlan") && s.ready("seg1").contains("tun_km (gre"),
        "{}",
        s.ready("seg1")
    );
    assert!(s.ready("seg2").contains("(vxlan"), "{}", s.ready("seg2"));
    assert!(
        s.ready("seg3").contains("(gre 192.168.200.101 key 3"),
        "{}",
        s.ready("seg3")
    );
    s.assert_every_pair_pings();
}

#[test]
fn scenario_over_an_ipv6_only_underlay_vxlan() {
    if !common::require_root("scenario_over_an_ipv6_only_underlay_vxlan") {
        return;
    }
    let s = Scenario::up_with(to_v6_underlay, true);
    assert!(
        s.ready("seg1")
            .contains("(vxlan [2001:db8:200::102]:8472 vni 0 mtu 1430,"),
        "{}",
        s.ready("seg1")
    );
    s.assert_every_pair_pings();
}

#[test]
fn scenario_over_an_ipv6_only_underlay_gre() {
    if !common::require_root("scenario_over_an_ipv6_only_underlay_gre") {
        return;
    }
    let s = Scenario::up_with(|t| to_v6_underlay(t).replace(TO_GRE.0, TO_GRE.1), true);
    assert!(
        s.ready("seg1")
            .contains("(gre 2001:db8:200::102 no key mtu 1442,"),
        "{}",
        s.ready("seg1")
    );
    s.assert_every_pair_pings();
}

#[test]
fn scenario_ping_and_ping6_between_every_pair() {
    if !common::require_root("scenario_ping_and_ping6_between_every_pair") {
        return;
    }
    let s = Scenario::up();
    s.assert_every_pair_pings();

    // l1 <-> m1 crossed the hub: in on tun_kl (port 2), out on tun_km (port 3), and back.
    let relayed_out = s.port_counter("seg1", "3 tun_km", "tx_packets");
    let relayed_in = s.port_counter("seg1", "2 tun_kl", "rx_packets");
    assert!(s.ping("l1", "172.31.3.1"));
    assert!(s.port_counter("seg1", "3 tun_km", "tx_packets") >= relayed_out + 3);
    assert!(s.port_counter("seg1", "2 tun_kl", "rx_packets") >= relayed_in + 3);
}

/// The device MTU 1500 above the tunnels: hosts bridged with MTU 1500, vxtund enforcing each
/// tunnel's MTU itself (the setup for bridged hosts in docs/datapath.md).
fn bridged_1500(text: &str) -> String {
    text.replacen("[device]\n", "[device]\nmtu = 1500\n", 1)
}

/// For one encapsulation and underlay: the tunnel MTU in the ready line is the expected one, the
/// largest `ping -M do -s N` gets through (IPv4 and IPv6), and N+1 brings the sender the kernel's
/// "Frag needed" / "Packet too big" report.
fn check_largest_pings(edit: impl Fn(&str) -> String, underlay6: bool, mtu: u16) {
    let s = Scenario::up_full(|t| bridged_1500(&edit(t)), underlay6, Some(1500));
    assert!(
        s.ready("seg1").contains("tun_kl (") && s.ready("seg1").contains(&format!("mtu {mtu},")),
        "{}",
        s.ready("seg1")
    );
    let (v4, v6) = (mtu - 28, mtu - 48);
    // Resolve the neighbours first with small pings.
    assert!(s.ping("k1", "172.31.2.1") && s.ping("k1", "fc00:0:0:2::1"));
    let ping = |target: &str, size: u16| {
        let size = size.to_string();
        let family = if target.contains(':') { "-6" } else { "-4" };
        run_in(
            &s,
            "k1",
            &[
                "ping", family, "-M", "do", "-s", &size, "-c", "1", "-W", "3", target,
            ],
        )
    };
    let (ok, out) = ping("172.31.2.1", v4);
    assert!(ok, "ping -s {v4} must fit:\n{out}");
    let (ok, out) = ping("172.31.2.1", v4 + 1);
    assert!(
        !ok && out.contains(&format!("Frag needed and DF set (mtu = {mtu})")),
        "ping -s {}:\n{out}",
        v4 + 1
    );
    let (ok, out) = ping("fc00:0:0:2::1", v6);
    assert!(ok, "ping -6 -s {v6} must fit:\n{out}");
    let (ok, out) = ping("fc00:0:0:2::1", v6 + 1);
    assert!(
        !ok && out.contains(&format!("Packet too big: mtu={mtu}")),
        "ping -6 -s {}:\n{out}",
        v6 + 1
    );
    assert!(
        mtu_counter(&s, "seg1", "too_big_sent") >= 2,
        "the two answers came from vxtund"
    );
}

fn gre(t: &str) -> String {
    t.replace(TO_GRE.0, TO_GRE.1)
}

fn gre_key(t: &str) -> String {
    t.replace(TO_GRE.0, "type = \"gre\"\nkey = 9")
}

macro_rules! largest_ping_tests {
    ($($name:ident: $edit:expr, $v6:expr, $mtu:expr;)*) => {$(
        #[test]
        fn $name() {
            if !common::require_root(stringify!($name)) {
                return;
            }
            check_largest_pings($edit, $v6, $mtu);
        }
    )*};
}

largest_ping_tests! {
    largest_ping_vxlan_ipv4_underlay: str::to_owned, false, 1450;
    largest_ping_gre_ipv4_underlay: gre, false, 1462;
    largest_ping_gre_key_ipv4_underlay: gre_key, false, 1458;
    largest_ping_vxlan_ipv6_underlay: to_v6_underlay, true, 1430;
    largest_ping_gre_ipv6_underlay: |t: &str| gre(&to_v6_underlay(t)), true, 1442;
    largest_ping_gre_key_ipv6_underlay: |t: &str| gre_key(&to_v6_underlay(t)), true, 1438;
}

#[test]
fn bridged_1500_hosts_big_pings_and_tcp_transfers_work() {
    if !common::require_root("bridged_1500_hosts_big_pings_and_tcp_transfers_work") {
        return;
    }
    let s = Scenario::up_full(bridged_1500, false, Some(1500));
    assert!(s.ping("k1", "172.31.2.1") && s.ping("k1", "fc00:0:0:2::1"));
    // IPv4 without DF: the host fragments to 1500, vxtund fragments again to 1450.
    let (ok, out) = run_in(
        &s,
        "k1",
        &[
            "ping",
            "-4",
            "-s",
            "3000",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "3",
            "172.31.2.1",
        ],
    );
    assert!(ok && out.contains("3 received"), "ping -s 3000:\n{out}");
    // IPv6: the first tries teach both senders the path MTU (the request's sender k1, then the
    // reply's sender l1, each by a Packet Too Big from vxtund); after that pings pass.
    let warm_up = [
        "ping",
        "-6",
        "-s",
        "3000",
        "-c",
        "2",
        "-i",
        "0.3",
        "-W",
        "2",
        "fc00:0:0:2::1",
    ];
    let (_, first) = run_in(&s, "k1", &warm_up);
    assert!(
        first.contains("Packet too big: mtu=1450"),
        "the sender hears Packet Too Big:\n{first}"
    );
    let (ok, out) = run_in(
        &s,
        "k1",
        &[
            "ping",
            "-6",
            "-s",
            "3000",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "3",
            "fc00:0:0:2::1",
        ],
    );
    assert!(
        ok && out.contains("3 received"),
        "ping -6 -s 3000 after learning the path MTU:\nfirst: {first}\nthen: {out}"
    );

    // 20 MB of TCP each way over a path whose MTU is below the hosts': MSS clamping at work.
    let (ok, out) = run_in(
        &s,
        "l1",
        &[
            "iperf3",
            "-s",
            "-D",
            "-B",
            "172.31.2.1",
            "--pidfile",
            &format!("/tmp/{}-iperf.pid", s.prefix),
        ],
    );
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_millis(500));
    for direction in [&[][..], &["-R"][..]] {
        let mut args = vec!["timeout", "60", "iperf3", "-c", "172.31.2.1", "-n", "20M"];
        args.extend_from_slice(direction);
        let (ok, out) = run_in(&s, "k1", &args);
        assert!(ok, "20 MB transfer {direction:?} must complete:\n{out}");
    }
    if let Ok(pid) = std::fs::read_to_string(format!("/tmp/{}-iperf.pid", s.prefix)) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: kill with the PID iperf3 wrote for the server this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let clamped = mtu_counter(&s, "seg1", "mss_clamped");
    assert!(clamped >= 2, "SYNs clamped at the hub: {clamped}");
    assert!(
        mtu_counter(&s, "seg2", "mss_clamped") >= 1,
        "SYN-ACKs clamped on the way back, at seg2"
    );
    assert!(
        mtu_counter(&s, "seg1", "fragments") >= 2,
        "IPv4 fragments made"
    );
    assert!(
        mtu_counter(&s, "seg1", "too_big_sent") >= 1,
        "Packet Too Big sent"
    );
}

/// A counter of the `mtu:` line of `seg`'s report.
fn mtu_counter(s: &Scenario, seg: &str, name: &str) -> u64 {
    s.port_counter(seg, "mtu", name)
}

/// Runs `tests/scripts/SCRIPT` as a receiver on host `to` (`recv ARGS...`, which prints
/// "ready", then one result line) and as a sender on host `from` (`send ARGS...`). Returns the
/// receiver's result line and the sender's output, once the sender succeeded.
fn sender_and_receiver(
    s: &Scenario,
    script: &str,
    (from, to): (&str, &str),
    args: &[&str],
) -> (String, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(script);
    let mut rx = common::KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", &s.ns(to), "/usr/bin/python3"])
            .arg(&script)
            .arg("recv")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(rx.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let tx = Command::new("ip")
        .args(["netns", "exec", &s.ns(from), "/usr/bin/python3"])
        .arg(&script)
        .arg("send")
        .args(args)
        .output()
        .unwrap();
    assert!(
        tx.status.success(),
        "{from} -> {to}: {}",
        String::from_utf8_lossy(&tx.stderr)
    );
    let mut received = String::new();
    out.read_line(&mut received).unwrap();
    (received, String::from_utf8_lossy(&tx.stdout).into_owned())
}

/// Sends `bytes` over TCP from host `from` to `addr` on host `to` and checks that the receiver
/// got exactly the bytes sent (count and SHA-256).
fn tcp_transfer_intact(s: &Scenario, from: &str, to: &str, addr: &str, bytes: usize) {
    let (received, sent) = sender_and_receiver(
        s,
        "tcp_check.py",
        (from, to),
        &[addr, "7000", &bytes.to_string()],
    );
    assert_eq!(
        received.trim(),
        sent.trim(),
        "{from} -> {to} ({addr}): what arrived is what was sent"
    );
    assert!(sent.starts_with(&format!("{bytes} ")), "{sent}");
}

/// TCP transfers between hosts, direct from the hub and relayed by it, IPv4 and IPv6.
fn check_tcp_transfers(s: &Scenario) {
    for (from, to, addr) in [
        ("k1", "l1", "172.31.2.1"),
        ("l1", "m1", "172.31.3.1"),
        ("m1", "k1", "fc00:0:0:1::1"),
        ("l1", "k1", "fc00:0:0:1::1"),
    ] {
        tcp_transfer_intact(s, from, to, addr, 20_000_000);
    }
}

fn without_offloads(text: &str) -> String {
    text.replacen("[device]\n", "[device]\noffload = false\n", 1)
        .replacen("[underlay]\n", "[underlay]\noffload = false\n", 1)
}

#[test]
fn tcp_transfers_arrive_intact_with_offloads() {
    if !common::require_root("tcp_transfers_arrive_intact_with_offloads") {
        return;
    }
    let s = Scenario::up();
    assert!(
        s.log("seg1").contains("offloads: checksum, TSO4, TSO6"),
        "{}",
        s.log("seg1")
    );
    assert!(
        s.log("seg1").contains("UDP GSO on, UDP GRO on"),
        "{}",
        s.log("seg1")
    );
    check_tcp_transfers(&s);
    // The offloads were used: superframes split on the way in, coalesced on the way out, by
    // the userspace path (the kernel fast path, when in force, carries them whole: the run
    // with `fast_path = "off"` checks this).
    let show = common::scenario::vxtunctl(&s, "seg1", &["show"]);
    if !show.contains("fast path: userspace") {
        return;
    }
    for seg in ["seg1", "seg2", "seg3"] {
        let split = s.port_counter(seg, "offload", "split_segments");
        let coalesced = s.port_counter(seg, "offload", "coalesced_segments");
        assert!(
            split > 1000 && coalesced > 1000,
            "{seg}: {split} {coalesced}"
        );
    }
}

/// Sends `count` numbered UDP datagrams (`tests/scripts/udp_check.py`) from host `from` to
/// `addr` on host `to`; returns what the receiver counted: (received, intact, distinct).
fn udp_datagrams(s: &Scenario, from: &str, to: &str, addr: &str, count: usize) -> [usize; 3] {
    let (received, _) = sender_and_receiver(
        s,
        "udp_check.py",
        (from, to),
        &[addr, "7001", &count.to_string()],
    );
    let counts: Vec<usize> = received
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    counts.try_into().unwrap_or_else(|_| panic!("{received:?}"))
}

#[test]
fn udp_datagrams_arrive_intact_through_coalescing() {
    if !common::require_root("udp_datagrams_arrive_intact_through_coalescing") {
        return;
    }
    // The userspace path's coalescing, counted: without the kernel fast path, which would
    // carry these flows whole.
    let s = Scenario::up_with(
        |t| t.replacen("[device]\n", "[device]\nfast_path = \"off\"\n", 1),
        false,
    );
    assert!(
        s.log("seg2").contains("USO4, USO6"),
        "the TAP takes UDP superframes: {}",
        s.log("seg2")
    );
    // Direct (seg1 -> seg2) and relayed by the hub (seg2 -> seg1 -> seg3), IPv4 and IPv6.
    for (from, to, seg, addr) in [
        ("k1", "l1", "seg2", "172.31.2.1"),
        ("l1", "m1", "seg3", "fc00:0:0:3::1"),
    ] {
        let before = s.port_counter(seg, "offload", "coalesced_segments");
        let count = 5000;
        let [received, intact, distinct] = udp_datagrams(&s, from, to, addr, count);
        assert_eq!(
            intact, received,
            "{from} -> {to}: every datagram byte for byte"
        );
        assert_eq!(distinct, received, "{from} -> {to}: none twice");
        assert!(
            received >= count * 99 / 100,
            "{from} -> {to}: {received} of {count} arrived"
        );
        // Most went to the TAP in UDP superframes, which the kernel split again.
        let coalesced = s.port_counter(seg, "offload", "coalesced_segments") - before;
        assert!(
            coalesced >= count as u64 / 2,
            "{from} -> {to}: {coalesced} datagrams coalesced"
        );
    }
}

#[test]
fn tcp_transfers_arrive_intact_without_offloads() {
    if !common::require_root("tcp_transfers_arrive_intact_without_offloads") {
        return;
    }
    let s = Scenario::up_with(without_offloads, false);
    assert!(s.log("seg1").contains("offloads: off"), "{}", s.log("seg1"));
    assert!(
        s.log("seg1").contains("UDP GSO off, UDP GRO off"),
        "{}",
        s.log("seg1")
    );
    check_tcp_transfers(&s);
    for seg in ["seg1", "seg2", "seg3"] {
        assert_eq!(s.port_counter(seg, "offload", "split"), 0, "{seg}");
        assert_eq!(s.port_counter(seg, "offload", "coalesced"), 0, "{seg}");
    }
}

#[test]
fn tcp_transfers_arrive_intact_over_gre_with_offloads() {
    if !common::require_root("tcp_transfers_arrive_intact_over_gre_with_offloads") {
        return;
    }
    let s = Scenario::up_with(gre, false);
    check_tcp_transfers(&s);
}
