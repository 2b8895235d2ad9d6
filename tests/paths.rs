//! Path control at run time, for real (issue 5): flows moved with vxtunctl while traffic runs,
//! asymmetric paths, reload by SIGHUP and `vxtunctl reload`, traffic untouched by flow churn,
//! and a full mesh kept loop-free by split horizon. Three vxtund processes in namespaces, as in
//! the scenario tests. Needs root.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::scenario::{
    flow_packets, vxtunctl, vxtunctl_may_fail, with_direct_spoke_tunnel, Scenario,
};

#[test]
fn path_moves_from_the_hub_to_a_direct_tunnel_and_back_without_loss() {
    if !common::require_root("path_moves_from_the_hub_to_a_direct_tunnel_and_back_without_loss") {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up_with(with_direct_spoke_tunnel, false);
    assert!(
        s.ready("seg2").contains("3 tun_lm (vxlan 192.168.200.103"),
        "{}",
        s.ready("seg2")
    );
    assert!(s.ping("l1", "172.31.3.1"), "via the hub first");
    // A capture on seg2's underlay side, written packet by packet.
    let pcap = s.state.join("seg2-ul0.pcap");
    let capture = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("seg2"),
            "tcpdump",
            "-Z",
            "root",
            "-i",
            "ul0",
            "-n",
            "-U",
            "-w",
        ])
        .arg(&pcap)
        .args(["udp", "port", "8472"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.state.join("tcpdump.log")).unwrap())
        .spawn()
        .unwrap();
    let capture = common::KillOnDrop(capture);
    std::thread::sleep(Duration::from_millis(1000));
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("l1"),
            "ping",
            "-c",
            "60",
            "-i",
            "0.1",
            "-W",
            "2",
            "172.31.3.1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The hub's flow towards seg3, and the direct tunnel's frames: each phase is measured only
    // after its change is in place, so pings in flight across a change do not blur it.
    let hub = |s: &Scenario| flow_packets(s, "seg1", "ip,nw_dst=172.31.3.0/24,actions=output:3");
    let direct = |s: &Scenario| s.port_counter("seg2", "3 tun_lm", "tx_packets");
    std::thread::sleep(Duration::from_millis(1000));

    vxtunctl(
        &s,
        "seg2",
        &["add-flow", "ip,nw_dst=172.31.3.0/24,actions=output:tun_lm"],
    );
    vxtunctl(
        &s,
        "seg3",
        &["add-flow", "ip,nw_dst=172.31.2.0/24,actions=output:tun_ml"],
    );
    let (h0, d0) = (hub(&s), direct(&s));
    std::thread::sleep(Duration::from_millis(1500));
    let (h1, d1) = (hub(&s), direct(&s));
    assert!(
        d1 >= d0 + 10,
        "direct: traffic takes the direct tunnel: {d0} -> {d1}"
    );
    assert!(h1 <= h0 + 1, "direct: the hub is bypassed: {h0} -> {h1}");
    let dumped = vxtunctl(&s, "seg2", &["dump-flows"]);
    assert!(
        dumped.contains("ip,nw_dst=172.31.3.0/24,actions=output:3"),
        "{dumped}"
    );

    vxtunctl(
        &s,
        "seg2",
        &["del-flows", "--strict", "ip,nw_dst=172.31.3.0/24"],
    );
    vxtunctl(
        &s,
        "seg3",
        &["del-flows", "--strict", "ip,nw_dst=172.31.2.0/24"],
    );
    let (h2, d2) = (hub(&s), direct(&s));
    std::thread::sleep(Duration::from_millis(1500));
    let (h3, d3) = (hub(&s), direct(&s));
    assert!(h3 >= h2 + 10, "back: through the hub again: {h2} -> {h3}");
    assert!(
        d3 <= d2 + 1,
        "back: the direct tunnel is idle: {d2} -> {d3}"
    );

    let out = ping.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("60 packets transmitted, 60 received"),
        "a change that keeps a valid path loses nothing:\n{text}"
    );

    // On the wire: seg2 sent to the hub, and for a while straight to seg3.
    drop(capture);
    let read = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    let wire = String::from_utf8_lossy(&read.stdout);
    // From any source port: the outer source port follows the inner flow (RFC 7348).
    let count = |to: &str| {
        wire.lines()
            .filter(|l| l.contains(" 192.168.200.102.") && l.contains(&format!(" > {to}.8472:")))
            .count()
    };
    let log = std::fs::read_to_string(s.state.join("tcpdump.log")).unwrap_or_default();
    assert!(count("192.168.200.103") >= 10, "direct:\n{wire}\n{log}");
    assert!(count("192.168.200.101") >= 20, "through the hub:\n{wire}");
}

#[test]
fn asymmetric_path_direct_one_way_through_the_hub_the_other() {
    if !common::require_root("asymmetric_path_direct_one_way_through_the_hub_the_other") {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up_with(with_direct_spoke_tunnel, false);
    assert!(s.ping("l1", "172.31.3.1"));
    vxtunctl(
        &s,
        "seg2",
        &["add-flow", "ip,nw_dst=172.31.3.0/24,actions=output:tun_lm"],
    );
    let counters = |s: &Scenario| {
        (
            s.port_counter("seg2", "3 tun_lm", "tx_packets"),
            s.port_counter("seg3", "3 tun_ml", "tx_packets"),
            flow_packets(s, "seg1", "ip,nw_dst=172.31.2.0/24,actions=output:2"),
            flow_packets(s, "seg1", "ip,nw_dst=172.31.3.0/24,actions=output:3"),
        )
    };
    let before = counters(&s);
    assert!(s.ping("l1", "172.31.3.1"));
    let after = counters(&s);
    assert!(
        after.0 >= before.0 + 3,
        "l1 -> m1 direct: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.1, before.1,
        "m1 -> l1 not direct: {before:?} -> {after:?}"
    );
    assert!(
        after.2 >= before.2 + 3,
        "m1 -> l1 relayed by the hub's flow to seg2: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.3, before.3,
        "the hub's flow towards seg3 carries nothing: {before:?} -> {after:?}"
    );
}

fn config_path(s: &Scenario, seg: &str) -> PathBuf {
    s.state.join("configs").join(format!("{seg}.toml"))
}

/// Sends SIGHUP to `seg` and waits until its log has one more line containing `outcome`.
fn sighup(s: &Scenario, seg: &str, outcome: &str) {
    let before = s.log(seg).matches(outcome).count();
    // SAFETY: kill with the PID the scenario script recorded for this run's daemon.
    assert_eq!(unsafe { libc::kill(s.pid(seg), libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.log(seg).matches(outcome).count() == before {
        assert!(
            Instant::now() < deadline,
            "no `{outcome}` from {seg} after SIGHUP:\n{}",
            s.log(seg)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The interface index of the TAP in `seg`: the same number means the same device.
fn tap_ifindex(s: &Scenario, seg: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns(seg),
            "cat",
            "/sys/class/net/vxt0/ifindex",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The scenario's spoke config plus the direct tunnel, with the flow that sends the other
/// spoke's prefix over it first.
fn direct_path_config(text: &str) -> String {
    let flow = if text.contains("tun_lk") {
        "ip,nw_dst=172.31.3.0/24,actions=output:tun_lm"
    } else {
        "ip,nw_dst=172.31.2.0/24,actions=output:tun_ml"
    };
    with_direct_spoke_tunnel(text).replacen(
        "rules = [\n",
        &format!("rules = [\n  \"{flow}\",\n"),
        1,
    )
}

#[test]
fn reload_adds_a_tunnel_and_moves_the_path_and_a_broken_file_changes_nothing() {
    if !common::require_root(
        "reload_adds_a_tunnel_and_moves_the_path_and_a_broken_file_changes_nothing",
    ) {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up();
    assert!(s.ping("l1", "172.31.3.1"), "via the hub first");
    let ifindex = tap_ifindex(&s, "seg2");
    let shipped: Vec<String> = ["seg2", "seg3"]
        .iter()
        .map(|seg| std::fs::read_to_string(config_path(&s, seg)).unwrap())
        .collect();

    // Add the direct tunnel and the flows that use it in both spokes' files, then SIGHUP.
    for (seg, text) in ["seg2", "seg3"].iter().zip(&shipped) {
        std::fs::write(config_path(&s, seg), direct_path_config(text)).unwrap();
        sighup(&s, seg, "reloaded");
    }
    assert!(
        s.log("seg2")
            .contains("ports added: 3 tun_lm; removed: none; changed: none; 9 flows"),
        "{}",
        s.log("seg2")
    );
    let hub = |s: &Scenario| {
        flow_packets(s, "seg1", "ip,nw_dst=172.31.3.0/24,actions=output:3")
            + flow_packets(s, "seg1", "ip,nw_dst=172.31.2.0/24,actions=output:2")
    };
    let direct = |s: &Scenario| {
        (
            s.port_counter("seg2", "3 tun_lm", "tx_packets"),
            s.port_counter("seg3", "3 tun_ml", "tx_packets"),
        )
    };
    let (h0, d0) = (hub(&s), direct(&s));
    assert!(s.ping("l1", "172.31.3.1"), "over the new tunnel");
    let (h1, d1) = (hub(&s), direct(&s));
    assert!(
        d1.0 >= d0.0 + 3 && d1.1 >= d0.1 + 3,
        "direct both ways: {d0:?} -> {d1:?}"
    );
    assert_eq!(h1, h0, "the hub relays none of it");
    assert_eq!(
        tap_ifindex(&s, "seg2"),
        ifindex,
        "the device was not recreated"
    );

    // A broken file: refused with the --check message, the running config stays.
    let good = std::fs::read_to_string(config_path(&s, "seg2")).unwrap();
    let broken = good.replace("actions=output:tun_lm\"", "actions=output:tun_nowhere\"");
    assert_ne!(broken, good);
    std::fs::write(config_path(&s, "seg2"), &broken).unwrap();
    sighup(&s, "seg2", "reload refused");
    let check = Command::new(env!("CARGO_BIN_EXE_vxtund"))
        .arg("--check")
        .arg("--config")
        .arg(config_path(&s, "seg2"))
        .output()
        .unwrap();
    assert!(!check.status.success());
    let message = String::from_utf8_lossy(&check.stderr)
        .lines()
        .find(|l| l.contains("tun_nowhere"))
        .map(|l| {
            l.trim_start_matches("vxtund: ")
                .trim_start_matches("error: ")
                .to_owned()
        })
        .unwrap_or_else(|| panic!("--check: {}", String::from_utf8_lossy(&check.stderr)));
    assert!(message.contains("seg2.toml:"), "{message}");
    assert!(
        s.log("seg2").contains(&message),
        "logged as --check says it:\n{message}\n{}",
        s.log("seg2")
    );
    let (ok, _, err) = vxtunctl_may_fail(&s, "seg2", &["reload"]);
    assert!(!ok && err.contains(&message), "vxtunctl reload: {err}");
    let d2 = direct(&s);
    assert!(s.ping("l1", "172.31.3.1"), "still working");
    assert!(direct(&s).0 >= d2.0 + 3, "still on the direct tunnel");

    // Back to the shipped files with vxtunctl reload: the tunnel goes, the hub relays again.
    for (seg, text) in ["seg2", "seg3"].iter().zip(&shipped) {
        std::fs::write(config_path(&s, seg), text).unwrap();
        let answer = vxtunctl(&s, seg, &["reload"]);
        assert!(answer.contains("removed: 3 tun_"), "{answer}");
    }
    let h2 = hub(&s);
    assert!(s.ping("l1", "172.31.3.1"), "through the hub again");
    assert!(hub(&s) >= h2 + 6, "the hub relays both ways");
    let shown = vxtunctl(&s, "seg2", &["show"]);
    assert!(!shown.contains("tun_lm"), "{shown}");
    assert_eq!(
        tap_ifindex(&s, "seg2"),
        ifindex,
        "the device was not recreated"
    );
}

/// Counts frames of `l2frame.py` carrying `nonce` on a host for `seconds`.
fn start_counting(s: &Scenario, host: &str, seconds: u32, nonce: &str) -> Child {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &s.ns(host), "/usr/bin/python3"])
        .arg(l2frame())
        .args(["count", &seconds.to_string(), nonce])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "counter on {host}");
    child
}

fn l2frame() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/l2frame.py")
}

/// Sum of rx_packets over the tunnels of all three daemons.
fn tunnel_rx_total(s: &Scenario) -> u64 {
    ["seg1", "seg2", "seg3"]
        .iter()
        .map(|seg| {
            vxtunctl(s, seg, &["show"])
                .lines()
                .filter(|l| l.contains("(vxlan "))
                .filter_map(|l| {
                    l.split_whitespace()
                        .find_map(|kv| kv.strip_prefix("rx_packets="))
                        .and_then(|n| n.parse::<u64>().ok())
                })
                .sum::<u64>()
        })
        .sum()
}

#[test]
fn full_mesh_with_split_horizon_delivers_a_broadcast_once_to_each_host() {
    if !common::require_root("full_mesh_with_split_horizon_delivers_a_broadcast_once_to_each_host")
    {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up_from("config/mesh", str::to_owned, false, None);
    s.assert_every_pair_pings();

    let nonce = format!("vxtund-{}", std::process::id());
    let counters: Vec<(&str, Child)> = ["k1", "l1", "m1"]
        .into_iter()
        .map(|h| (h, start_counting(&s, h, 3, &nonce)))
        .collect();
    let before = tunnel_rx_total(&s);
    let sent = Command::new("ip")
        .args(["netns", "exec", &s.ns("k1"), "/usr/bin/python3"])
        .arg(l2frame())
        .args(["send", &nonce])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut seen = Vec::new();
    for (host, child) in counters {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        seen.push((host, text.trim().parse::<u32>().unwrap_or(u32::MAX)));
    }
    assert_eq!(
        seen,
        [("k1", 0), ("l1", 1), ("m1", 1)],
        "the broadcast reaches each other host once and never comes back"
    );
    // Quiet afterwards: no frame keeps circling (a storm would add thousands a second).
    let after = tunnel_rx_total(&s);
    std::thread::sleep(Duration::from_secs(1));
    let later = tunnel_rx_total(&s);
    assert!(after - before < 100, "{before} -> {after}");
    assert!(later - after < 20, "bounded: {after} -> {later}");
    let shown = vxtunctl(&s, "seg2", &["show"]);
    assert!(
        shown.contains("to_seg1 (vxlan 192.168.200.101:8472 vni 0 mtu 1450 split_horizon mesh)"),
        "{shown}"
    );
}

#[test]
fn traffic_that_a_flow_change_does_not_touch_loses_nothing() {
    if !common::require_root("traffic_that_a_flow_change_does_not_touch_loses_nothing") {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up();
    assert!(s.ping("k1", "172.31.2.1"));
    let table = |s: &Scenario| {
        (
            vxtunctl(s, "seg1", &["dump-flows", "--config-format"]),
            vxtunctl(s, "seg2", &["dump-flows", "--config-format"]),
        )
    };
    let tables = table(&s);
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("l1"),
            "iperf3",
            "-s",
            "-1",
            "-B",
            "172.31.2.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = common::KillOnDrop(server);
    std::thread::sleep(Duration::from_millis(500));
    // 10 s of UDP at 10 Mbit/s k1 -> l1, through the hub.
    let client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("k1"),
            "iperf3",
            "-c",
            "172.31.2.1",
            "-u",
            "-b",
            "10M",
        ])
        .args(["-l", "1000", "-t", "10", "-J"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile, 100 times: add and delete flows for m1's prefix on the hub and on seg2.
    let started = Instant::now();
    for _ in 0..100 {
        vxtunctl(
            &s,
            "seg1",
            &[
                "add-flow",
                "priority=200,ip,nw_dst=172.31.3.0/24,actions=output:tun_km",
            ],
        );
        vxtunctl(
            &s,
            "seg2",
            &[
                "add-flow",
                "priority=200,ipv6,ipv6_dst=fc00:0:0:3::/64,actions=output:tun_lk",
            ],
        );
        vxtunctl(
            &s,
            "seg1",
            &[
                "del-flows",
                "--strict",
                "priority=200,ip,nw_dst=172.31.3.0/24",
            ],
        );
        vxtunctl(
            &s,
            "seg2",
            &[
                "del-flows",
                "--strict",
                "priority=200,ipv6,ipv6_dst=fc00:0:0:3::/64",
            ],
        );
    }
    let churn = started.elapsed();
    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        churn < Duration::from_secs(9),
        "the changes overlapped the traffic: {churn:?}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sum = &report["end"]["sum"];
    let (packets, lost) = (
        sum["packets"].as_u64().unwrap(),
        sum["lost_packets"].as_u64().unwrap(),
    );
    assert!(packets > 10_000, "{sum}");
    assert_eq!(
        lost, 0,
        "k1 -> l1 lost datagrams during 400 flow changes: {sum}"
    );
    assert_eq!(table(&s), tables, "the tables are back as they were");
}

/// Whether anything in `seg` listens on UDP port 8472.
fn vxlan_port_open(s: &Scenario, seg: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", &s.ns(seg), "ss", "-Hunl", "sport = :8472"])
        .output()
        .unwrap();
    assert!(out.status.success());
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn reload_changes_every_tunnel_to_gre_and_back() {
    if !common::require_root("reload_changes_every_tunnel_to_gre_and_back") {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up();
    let segs = ["seg1", "seg2", "seg3"];
    let shipped: Vec<String> = segs
        .iter()
        .map(|seg| std::fs::read_to_string(config_path(&s, seg)).unwrap())
        .collect();
    assert!(vxlan_port_open(&s, "seg1"));
    for (seg, text) in segs.iter().zip(&shipped) {
        let gre = text.replace("type = \"vxlan\"", "type = \"gre\"");
        std::fs::write(config_path(&s, seg), gre).unwrap();
        sighup(&s, seg, "reloaded");
    }
    let shown = vxtunctl(&s, "seg1", &["show"]);
    assert!(
        shown.contains("2 tun_kl (gre 192.168.200.102 no key mtu 1462)"),
        "{shown}"
    );
    assert!(!vxlan_port_open(&s, "seg1"), "the VXLAN socket is closed");
    s.assert_every_pair_pings();
    let gre_rx = s.port_counter("seg1", "2 tun_kl", "rx_packets");

    for (seg, text) in segs.iter().zip(&shipped) {
        std::fs::write(config_path(&s, seg), text).unwrap();
        assert!(vxtunctl(&s, seg, &["reload"]).contains("changed: "));
    }
    assert!(vxlan_port_open(&s, "seg1"));
    s.assert_every_pair_pings();
    assert!(
        s.port_counter("seg1", "2 tun_kl", "rx_packets") > gre_rx,
        "counters carried across both reloads"
    );
}
