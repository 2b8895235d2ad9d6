//! The reference scenario of SCENARIO.md, for real: three vxtund processes in namespaces, hosts
//! with on-link default routes, built by `scripts/scenario.sh` (the same script the README's
//! first command runs). Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Scenario {
    prefix: String,
    state: PathBuf,
}

impl Scenario {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/scenario.sh")
    }

    fn up() -> Scenario {
        Scenario::up_with(str::to_owned, false)
    }

    fn up_with(edit: impl Fn(&str) -> String, underlay6: bool) -> Scenario {
        Scenario::up_full(edit, underlay6, None)
    }

    /// The scenario with each shipped config passed through `edit`, on an IPv6-only underlay
    /// when `underlay6`.
    fn up_full(edit: impl Fn(&str) -> String, underlay6: bool, host_mtu: Option<u16>) -> Scenario {
        let prefix = common::unique("s");
        let state = std::env::temp_dir().join(format!("{prefix}-state"));
        let configs = state.join("configs");
        std::fs::create_dir_all(&configs).unwrap();
        for n in 1..=3 {
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/seg{n}.toml"));
            let text = edit(&std::fs::read_to_string(shipped).unwrap());
            // Each run's daemons get control sockets of their own (runs go side by side).
            let socket = state.join(format!("seg{n}.sock"));
            let text = text.replace(
                &format!("/run/vxtund/seg{n}.sock"),
                socket.to_str().unwrap(),
            );
            std::fs::write(configs.join(format!("seg{n}.toml")), text).unwrap();
        }
        let s = Scenario { prefix, state };
        let mut cmd = Command::new("bash");
        cmd.arg(Self::script())
            .args([
                "up",
                "--prefix",
                &s.prefix,
                "--bin",
                env!("CARGO_BIN_EXE_vxtund"),
                "--state",
            ])
            .arg(&s.state)
            .arg("--configs")
            .arg(&configs);
        if underlay6 {
            cmd.arg("--underlay6");
        }
        if let Some(mtu) = host_mtu {
            cmd.arg("--host-mtu").arg(mtu.to_string());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "scenario up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        s
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn ping(&self, from: &str, target: &str) -> bool {
        let args = [
            "netns",
            "exec",
            &self.ns(from),
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-w",
            "6",
            "-q",
            target,
        ];
        Command::new("ip")
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    }

    fn pid(&self, seg: &str) -> i32 {
        std::fs::read_to_string(self.state.join(format!("{seg}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn log(&self, seg: &str) -> String {
        std::fs::read_to_string(self.state.join(format!("{seg}.log"))).unwrap_or_default()
    }

    /// The `port N NAME` counter line of `seg`, after asking for a fresh report.
    fn port_counter(&self, seg: &str, port: &str, counter: &str) -> u64 {
        let before = self.log(seg).matches(" drops:").count();
        // SAFETY: kill with the PID the scenario script recorded for this run's daemon.
        unsafe { libc::kill(self.pid(seg), libc::SIGUSR1) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.log(seg).matches(" drops:").count() == before {
            assert!(Instant::now() < deadline, "no stats from {seg}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.log(seg);
        let needle = if port == "mtu" {
            "mtu: ".to_owned()
        } else {
            format!("port {port}")
        };
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no `{needle}` line in:\n{log}"));
        let value = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{counter}=")))
            .unwrap();
        value.parse().unwrap()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["down", "--prefix", &self.prefix, "--state"])
            .arg(&self.state)
            .status();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

impl Scenario {
    /// Pings (IPv4 and IPv6) between all six directed pairs of hosts; panics listing failures.
    fn assert_every_pair_pings(&self) {
        let hosts = [("k1", 1), ("l1", 2), ("m1", 3)];
        let mut failures = Vec::new();
        for (from, a) in hosts {
            for (to, b) in hosts {
                if a == b {
                    continue;
                }
                for target in [format!("172.31.{b}.1"), format!("fc00:0:0:{b}::1")] {
                    if !self.ping(from, &target) {
                        failures.push(format!("{from} -> {to} ({target})"));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "pings failed: {failures:?}\nseg1 log:\n{}",
            self.log("seg1")
        );
    }

    /// The ready line of `seg`.
    fn ready(&self, seg: &str) -> String {
        std::fs::read_to_string(self.state.join(format!("{seg}.out"))).unwrap_or_default()
    }
}

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

/// Runs a command in a host of the scenario and returns its exit success and output.
fn run_in(s: &Scenario, host: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &s.ns(host)])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The device MTU 1500 above the tunnels: hosts bridged with MTU 1500, vxtund enforcing each
/// tunnel's MTU itself (the README's setup for bridged hosts).
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

/// The scenario plus a direct tunnel seg2 <-> seg3 (`tun_lm` / `tun_ml`, port 3 on each spoke),
/// not used by any flow yet. ARP and neighbour discovery still go through the hub only: the
/// spokes send them from the host to the hub and from any tunnel to the host, so the triangle
/// has no flooding loop.
fn with_direct_spoke_tunnel(text: &str) -> String {
    let direct = |name: &str, remote: &str| {
        format!("\n[[tunnel]]\nname = \"{name}\"\ntype = \"vxlan\"\nremote = \"{remote}\"\nport = 3\n\n[flows]")
    };
    let text = if text.contains("tun_lk") {
        text.replacen("\n[flows]", &direct("tun_lm", "192.168.200.103"), 1)
    } else if text.contains("tun_mk") {
        text.replacen("\n[flows]", &direct("tun_ml", "192.168.200.102"), 1)
    } else {
        return text.to_owned();
    };
    text.replace("\"arp,actions=flood\",", "\"arp,in_port=1,actions=output:2\", \"arp,actions=output:1\",")
        .replace("\"icmp6,ipv6_dst=ff00::/8,actions=flood\",", "\"icmp6,in_port=1,ipv6_dst=ff00::/8,actions=output:2\", \"icmp6,ipv6_dst=ff00::/8,actions=output:1\",")
}

fn vxtunctl(s: &Scenario, seg: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vxtunctl"))
        .arg("-s")
        .arg(s.state.join(format!("{seg}.sock")))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vxtunctl {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn path_moves_from_the_hub_to_a_direct_tunnel_and_back_without_loss() {
    if !common::require_root("path_moves_from_the_hub_to_a_direct_tunnel_and_back_without_loss") {
        return;
    }
    let s = Scenario::up_with(with_direct_spoke_tunnel, false);
    assert!(
        s.ready("seg2").contains("3 tun_lm (vxlan 192.168.200.103"),
        "{}",
        s.ready("seg2")
    );
    assert!(s.ping("l1", "172.31.3.1"), "via the hub first");
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
}

#[test]
fn asymmetric_path_direct_one_way_through_the_hub_the_other() {
    if !common::require_root("asymmetric_path_direct_one_way_through_the_hub_the_other") {
        return;
    }
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

/// n_packets of the flow printed as `flow` in `seg`'s dump-flows.
fn flow_packets(s: &Scenario, seg: &str, flow: &str) -> u64 {
    let dump = vxtunctl(s, seg, &["dump-flows"]);
    let line = dump
        .lines()
        .find(|l| l.ends_with(&format!(" {flow}")))
        .unwrap_or_else(|| panic!("no `{flow}` in:\n{dump}"));
    let n = line
        .split(", ")
        .find_map(|kv| kv.strip_prefix("n_packets="))
        .unwrap();
    n.parse().unwrap()
}
