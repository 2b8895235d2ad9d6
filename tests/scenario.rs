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
        let prefix = common::unique("s");
        let state = std::env::temp_dir().join(format!("{prefix}-state"));
        let s = Scenario { prefix, state };
        let out = Command::new("bash")
            .arg(Self::script())
            .args([
                "up",
                "--prefix",
                &s.prefix,
                "--bin",
                env!("CARGO_BIN_EXE_vxtund"),
                "--state",
            ])
            .arg(&s.state)
            .output()
            .unwrap();
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
        Command::new("ip")
            .args([
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
            ])
            .status()
            .unwrap()
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
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains(&format!("port {port}")))
            .unwrap();
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

#[test]
fn scenario_ping_and_ping6_between_every_pair() {
    if !common::require_root("scenario_ping_and_ping6_between_every_pair") {
        return;
    }
    let s = Scenario::up();
    let hosts = [("k1", 1), ("l1", 2), ("m1", 3)];
    let mut failures = Vec::new();
    for (from, a) in hosts {
        for (to, b) in hosts {
            if a == b {
                continue;
            }
            for target in [format!("172.31.{b}.1"), format!("fc00:0:0:{b}::1")] {
                if !s.ping(from, &target) {
                    failures.push(format!("{from} -> {to} ({target})"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "pings failed: {failures:?}\nseg1 log:\n{}",
        s.log("seg1")
    );

    // l1 <-> m1 crossed the hub: in on tun_kl (port 2), out on tun_km (port 3), and back.
    let relayed_out = s.port_counter("seg1", "3 tun_km", "tx_packets");
    let relayed_in = s.port_counter("seg1", "2 tun_kl", "rx_packets");
    assert!(s.ping("l1", "172.31.3.1"));
    assert!(s.port_counter("seg1", "3 tun_km", "tx_packets") >= relayed_out + 3);
    assert!(s.port_counter("seg1", "2 tun_kl", "rx_packets") >= relayed_in + 3);
}

#[test]
fn sigterm_exits_cleanly_and_removes_the_tap() {
    if !common::require_root("sigterm_exits_cleanly_and_removes_the_tap") {
        return;
    }
    let s = Scenario::up();
    let ns = s.ns("seg2");
    let tap_present = || {
        Command::new("ip")
            .args(["-n", &ns, "link", "show", "vxt0"])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(tap_present());
    let pid = s.pid("seg2");
    // SAFETY: kill with the PID the scenario script recorded for this run's daemon.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        assert!(Instant::now() < deadline, "vxtund did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!tap_present(), "the TAP vxtund created is still there");
    assert!(s.log("seg2").contains("removing the TAP device"));
}
