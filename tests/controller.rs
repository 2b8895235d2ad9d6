//! vxtund under OpenFlow controllers nobody here wrote: the reference scenario with no flows
//! in any file, every segment dialling a controller that starts after the daemons. Two
//! independent controllers: Open vSwitch's `ovs-testcontroller` (Debian's
//! openvswitch-testcontroller) and a learning-switch app on Debian's `osken-manager`
//! (python3-os-ken, the app is `config/osken/learning_switch.py`). Also: the controller killed
//! and restarted under both fail modes, flow expiry with FLOW_REMOVED seen by the controller,
//! and a host flooding unknown frames while iperf3 runs. Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::{Pair, Pki};
use common::scenario::{run_in, vxtunctl, Scenario};
use common::KillOnDrop;

fn have(tool: &str, package: &str, test: &str) -> bool {
    common::require_tools(test, &[(tool, package)])
}

/// The shipped config with its `[flows]` removed and `controllers`/`fail_mode` added.
fn under_controller(text: &str, target: &str, fail_mode: &str, extra: &str) -> String {
    let start = text.find("\n[flows]").expect("a [flows] table");
    let end = start + text[start..].find("\n]\n").expect("the end of rules") + 3;
    let text = format!("{}{}", &text[..start + 1], &text[end..]);
    text.replace(
        "[openflow]",
        &format!(
            "[openflow]\ncontrollers = [\"{target}\"]\nfail_mode = \"{fail_mode}\"\n\
             inactivity_probe = 2\nmax_backoff = 2\n{extra}"
        ),
    )
}

/// ovs-testcontroller on a Unix socket in `dir` (no network of its own).
fn ovs_testcontroller(dir: &Path) -> KillOnDrop {
    let child = Command::new("ovs-testcontroller")
        .args(["-O", "OpenFlow13", "--wildcards", "--max-idle=60"])
        .arg(format!("--unixctl={}", dir.join("tc.ctl").display()))
        .arg(format!("punix:{}", dir.join("ctl.sock").display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("testcontroller.log")).unwrap())
        .spawn()
        .expect("starting ovs-testcontroller");
    KillOnDrop(child)
}

/// The os-ken learning switch in the hub's namespace, listening on the hub's underlay address.
fn osken(s: &Scenario, log: &Path) -> KillOnDrop {
    osken_with(s, log, &["--ofp-tcp-listen-port".into(), "6653".into()])
}

/// The os-ken learning switch in the hub's namespace with `options` (the listener's).
fn osken_with(s: &Scenario, log: &Path, options: &[String]) -> KillOnDrop {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/osken/learning_switch.py");
    let child = Command::new("ip")
        .args(["netns", "exec", &s.ns("seg1"), "osken-manager"])
        .args(["--ofp-listen-host", "192.168.200.101"])
        .args(options)
        .arg(&app)
        .env("LEARNING_SWITCH_LOG", log)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log.with_extension("stderr")).unwrap())
        .spawn()
        .expect("starting osken-manager");
    KillOnDrop(child)
}

/// Waits until every segment says a controller is connected.
fn wait_connected(s: &Scenario, within: Duration) {
    let deadline = Instant::now() + within;
    for seg in ["seg1", "seg2", "seg3"] {
        loop {
            let show = vxtunctl(s, seg, &["show"]);
            if show.contains("(1 connected)") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{seg} did not connect to its controller:\n{show}\n{}",
                s.log(seg)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn dump(s: &Scenario, seg: &str) -> String {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "dump-flows", &s.mgmt(seg)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sum of n_packets over the flows a controller installed (those with a non-zero priority or
/// a match; the table-miss flow is left out).
fn learnt_packets(dump: &str) -> u64 {
    dump.lines()
        .filter(|l| l.contains("actions=") && !l.contains("priority=0 "))
        .filter_map(|l| {
            l.split([',', ' '])
                .find_map(|f| f.strip_prefix("n_packets="))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

fn state_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique(tag));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn ovs_testcontroller_drives_the_star_and_secure_mode_keeps_its_flows() {
    let name = "ovs_testcontroller_drives_the_star_and_secure_mode_keeps_its_flows";
    if !common::require_root(name)
        || !have("ovs-testcontroller", "openvswitch-testcontroller", name)
    {
        return;
    }
    let _serial = common::one_at_a_time();
    let dir = state_dir("tc");
    let target = format!("unix:{}", dir.join("ctl.sock").display());
    let s = Scenario::up_with(|t| under_controller(t, &target, "secure", ""), false);
    assert!(
        s.ready("seg1").contains("vxtund ready"),
        "{}",
        s.log("seg1")
    );
    // No controller yet, secure, no flows: nothing crosses.
    assert!(
        !s.ping("k1", "172.31.2.1"),
        "an empty table forwards nothing"
    );
    let controller = ovs_testcontroller(&dir);
    wait_connected(&s, Duration::from_secs(10));
    s.assert_every_pair_pings();
    for seg in ["seg1", "seg2", "seg3"] {
        let flows = dump(&s, seg);
        assert!(
            learnt_packets(&flows) > 0,
            "{seg}: the controller's flows count the traffic:\n{flows}"
        );
    }
    // The controller goes: secure keeps the learnt flows, which keep forwarding.
    drop(controller);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        s.ping("l1", "172.31.3.1"),
        "learnt paths work without the controller"
    );
    // It comes back and the segments reconnect within the backoff (2 s here).
    let _controller = ovs_testcontroller(&dir);
    wait_connected(&s, Duration::from_secs(8));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A one-shot iperf3 server on m1, killed on drop; ready when this returns.
fn iperf_server(s: &Scenario) -> KillOnDrop {
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("m1"),
            "iperf3",
            "-s",
            "-1",
            "-B",
            "172.31.3.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    KillOnDrop(server)
}

/// Waits until `log` has a line containing every one of `needles`.
fn wait_for_line(log: &Path, needles: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needles:?} in {}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn osken_learns_the_star_expires_its_flows_and_standalone_falls_back_to_normal() {
    let name = "osken_learns_the_star_expires_its_flows_and_standalone_falls_back_to_normal";
    if !common::require_root(name) || !have("osken-manager", "python3-os-ken", name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up_with(
        |t| under_controller(t, "tcp:192.168.200.101:6653", "standalone", ""),
        false,
    );
    // Standalone with no controller yet: `normal` forwards.
    assert!(s.ping("k1", "172.31.2.1"), "fail-open: normal forwarding");
    assert!(vxtunctl(&s, "seg1", &["show"]).contains("fail_open"));
    let log = s.state.join("osken.log");
    let controller = {
        std::env::set_var("LEARNING_SWITCH_IDLE", "3");
        osken(&s, &log)
    };
    wait_connected(&s, Duration::from_secs(15));
    for seg in ["seg1", "seg2", "seg3"] {
        assert!(
            !vxtunctl(&s, seg, &["show"]).contains("fail_open"),
            "{seg} left fail-open"
        );
    }
    s.assert_every_pair_pings();
    for seg in ["seg1", "seg2", "seg3"] {
        let flows = dump(&s, seg);
        assert!(
            learnt_packets(&flows) > 0,
            "{seg}: the controller's flows count the traffic:\n{flows}"
        );
        assert!(flows.contains("idle_timeout=3"), "{flows}");
    }
    // Without traffic the learnt flows expire after 3 s; the controller hears of it.
    let removed = wait_for_line(
        &log,
        &["flow_removed", "reason=IDLE_TIMEOUT"],
        Duration::from_secs(15),
    );
    assert!(removed.contains("packets="), "{removed}");
    // The controller dies: standalone falls back to normal forwarding.
    drop(controller);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !vxtunctl(&s, "seg2", &["show"]).contains("fail_open") {
        assert!(
            Instant::now() < deadline,
            "seg2 did not fall back to normal"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        s.ping("l1", "172.31.3.1"),
        "normal forwarding without a controller"
    );
    assert!(s.ping("m1", "fc00:0:0:2::1"), "and IPv6");
    // It comes back: the segments reconnect within the backoff (2 s here).
    let _controller = osken(&s, &log);
    wait_connected(&s, Duration::from_secs(15));
    assert!(s.ping("l1", "172.31.3.1"), "under the controller again");
}

#[test]
fn a_host_flooding_unknown_frames_cannot_starve_the_data_path() {
    let name = "a_host_flooding_unknown_frames_cannot_starve_the_data_path";
    if !common::require_root(name)
        || !have("ovs-testcontroller", "openvswitch-testcontroller", name)
    {
        return;
    }
    let _serial = common::one_at_a_time();
    let dir = state_dir("flood");
    let target = format!("unix:{}", dir.join("ctl.sock").display());
    let s = Scenario::up_with(
        |t| {
            under_controller(
                t,
                &target,
                "secure",
                "packet_in_rate = 200\npacket_in_burst = 50\n",
            )
        },
        false,
    );
    let _controller = ovs_testcontroller(&dir);
    wait_connected(&s, Duration::from_secs(10));
    assert!(s.ping("l1", "172.31.3.1") && s.ping("m1", "172.31.2.1"));
    let _server = iperf_server(&s);
    let iperf = |s: &Scenario| -> f64 {
        let (ok, out) = run_in(s, "l1", &["iperf3", "-c", "172.31.3.1", "-t", "5", "-J"]);
        assert!(ok, "{out}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or_else(|| panic!("no throughput in:\n{out}"))
    };
    let quiet = iperf(&s);
    // Again, with k1 flooding frames nobody knows (each a table miss on seg1).
    let _server = iperf_server(&s);
    let rx_before = s.port_counter("seg1", "1 vxt0", "rx_packets");
    let before = s.port_counter("seg1", "controller", "packet_in");
    let limited_before = s.port_counter("seg1", "controller", "packet_in_rate_limited");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/flood.py");
    let flood = Command::new("ip")
        .args(["netns", "exec", &s.ns("k1"), "/usr/bin/python3"])
        .arg(&script)
        .args(["eth0", "7", "30000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut flood = KillOnDrop(flood);
    let started = Instant::now();
    let loaded = iperf(&s);
    let mut printed = String::new();
    if let Some(mut out) = flood.0.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut printed);
    }
    let _ = flood.0.wait();
    let elapsed = started.elapsed().as_secs_f64().max(7.0);
    let sent: u64 = printed.trim().parse().unwrap_or(0);
    let packet_ins = s.port_counter("seg1", "controller", "packet_in") - before;
    let rx = s.port_counter("seg1", "1 vxt0", "rx_packets") - rx_before;
    let limited = s.port_counter("seg1", "controller", "packet_in_rate_limited") - limited_before;
    eprintln!(
        "flood: {sent} frames in 7 s (30,000/s asked); seg1 packet-ins {packet_ins}, rate-limited {limited}; \
         iperf3 l1 -> m1 {:.2} Gbit/s quiet, {:.2} Gbit/s under the flood ({:.0} %)",
        quiet / 1e9,
        loaded / 1e9,
        100.0 * loaded / quiet
    );
    assert!(sent > 100_000, "the flood ran: {sent}");
    assert!(rx > 100_000, "the flood reached the hub: {rx} frames");
    assert!(limited > 1_000, "the limit dropped packet-ins: {limited}");
    assert!(
        (packet_ins as f64) <= 200.0 * (elapsed + 2.0) + 50.0,
        "the limit held: {packet_ins} packet-ins in {elapsed:.1} s"
    );
    assert!(
        loaded >= 0.6 * quiet,
        "iperf3 kept most of its throughput: {loaded} of {quiet}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid("seg1"))).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        rss_kib < 64 * 1024,
        "the hub's memory stayed bounded: {rss_kib} KiB"
    );
    eprintln!("seg1 VmRSS after the flood: {rss_kib} KiB");
    let _ = std::fs::remove_dir_all(&dir);
}

/// ovs-testcontroller in the hub's namespace on `pssl:6653:192.168.200.101`, proving itself
/// with `pair` and trusting `ca` (the switches' CA).
fn ovs_testcontroller_tls(s: &Scenario, dir: &Path, pair: &Pair, ca: &Path) -> KillOnDrop {
    let child = Command::new("ip")
        .args(["netns", "exec", &s.ns("seg1"), "ovs-testcontroller"])
        .args(["-O", "OpenFlow13", "--wildcards", "--max-idle=60"])
        .arg(format!("--unixctl={}", dir.join("tc.ctl").display()))
        .args(Pki::ovs_options(pair, ca))
        .arg("pssl:6653:192.168.200.101")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("testcontroller.log")).unwrap())
        .spawn()
        .expect("starting ovs-testcontroller");
    KillOnDrop(child)
}

/// The number after `tls handshakes refused` in `seg`'s `vxtunctl show`.
fn tls_refused(s: &Scenario, seg: &str) -> u64 {
    let show = vxtunctl(s, seg, &["show"]);
    show.split("tls handshakes refused ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no TLS refusals in {seg}'s show:\n{show}"))
}

#[test]
fn ovs_testcontroller_over_ssl_drives_the_star_and_a_stranger_is_refused() {
    let name = "ovs_testcontroller_over_ssl_drives_the_star_and_a_stranger_is_refused";
    if !common::require_root(name)
        || !have("ovs-testcontroller", "openvswitch-testcontroller", name)
    {
        return;
    }
    // Alone, the PKI's key generation included: it takes a core for seconds.
    let _serial = common::one_at_a_time();
    let Some(pki) = Pki::new(name) else { return };
    let (stranger, _) = pki.stranger();
    let dir = state_dir("tctls");
    let keys = pki.vxtund_keys();
    let s = Scenario::up_with(
        |t| under_controller(t, "ssl:192.168.200.101:6653", "secure", &keys),
        false,
    );
    // A controller whose certificate another CA signed: the segments refuse it.
    let impostor = ovs_testcontroller_tls(&s, &dir, &stranger, &pki.switch_ca());
    let deadline = Instant::now() + Duration::from_secs(10);
    for seg in ["seg1", "seg2", "seg3"] {
        while tls_refused(&s, seg) == 0 {
            assert!(Instant::now() < deadline, "{seg}:\n{}", s.log(seg));
            std::thread::sleep(Duration::from_millis(200));
        }
        let show = vxtunctl(&s, seg, &["show"]);
        assert!(show.contains("(0 connected)"), "{seg}: {show}");
    }
    assert!(!s.ping("k1", "172.31.2.1"), "secure, nobody in control");
    drop(impostor);
    // The controller of the PKI: every segment connects over TLS and the star works.
    let _controller = ovs_testcontroller_tls(&s, &dir, &pki.controller(), &pki.switch_ca());
    wait_connected(&s, Duration::from_secs(15));
    s.assert_every_pair_pings();
    for seg in ["seg1", "seg2", "seg3"] {
        let flows = dump(&s, seg);
        assert!(
            learnt_packets(&flows) > 0,
            "{seg}: the controller's flows count the traffic:\n{flows}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn osken_over_ssl_learns_the_star() {
    let name = "osken_over_ssl_learns_the_star";
    if !common::require_root(name) || !have("osken-manager", "python3-os-ken", name) {
        return;
    }
    // Alone, the PKI's key generation included: it takes a core for seconds.
    let _serial = common::one_at_a_time();
    let Some(pki) = Pki::new(name) else { return };
    let keys = pki.vxtund_keys();
    let s = Scenario::up_with(
        |t| under_controller(t, "ssl:192.168.200.101:6653", "secure", &keys),
        false,
    );
    let ctl = pki.controller();
    let options: Vec<String> = [
        "--ofp-ssl-listen-port".to_owned(),
        "6653".to_owned(),
        "--ctl-privkey".to_owned(),
        ctl.key.display().to_string(),
        "--ctl-cert".to_owned(),
        ctl.cert.display().to_string(),
        "--ca-certs".to_owned(),
        pki.switch_ca().display().to_string(),
    ]
    .into();
    let log = s.state.join("osken.log");
    let _controller = osken_with(&s, &log, &options);
    wait_connected(&s, Duration::from_secs(20));
    s.assert_every_pair_pings();
    for seg in ["seg1", "seg2", "seg3"] {
        let flows = dump(&s, seg);
        assert!(
            learnt_packets(&flows) > 0,
            "{seg}: the controller's flows count the traffic:\n{flows}"
        );
        assert_eq!(tls_refused(&s, seg), 0, "{seg}");
    }
}
