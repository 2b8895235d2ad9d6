//! The reference scenario of docs/scenario.md for the privileged tests: three vxtund processes in
//! namespaces, hosts with on-link default routes, built by `scripts/scenario.sh` (the same
//! script the README's five-minute tour runs), with helpers to read counters and drive vxtunctl.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Scenario {
    pub prefix: String,
    pub state: PathBuf,
}

impl Scenario {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/scenario.sh")
    }

    pub fn up() -> Scenario {
        Scenario::up_with(str::to_owned, false)
    }

    pub fn up_with(edit: impl Fn(&str) -> String, underlay6: bool) -> Scenario {
        Scenario::up_full(edit, underlay6, None)
    }

    /// The scenario with each shipped config passed through `edit`, on an IPv6-only underlay
    /// when `underlay6`.
    pub fn up_full(
        edit: impl Fn(&str) -> String,
        underlay6: bool,
        host_mtu: Option<u16>,
    ) -> Scenario {
        Scenario::up_from("config", edit, underlay6, host_mtu)
    }

    /// Like `up_full`, with the configs `DIR/seg{1,2,3}.toml` (DIR relative to the crate).
    pub fn up_from(
        dir: &str,
        edit: impl Fn(&str) -> String,
        underlay6: bool,
        host_mtu: Option<u16>,
    ) -> Scenario {
        Scenario::up_bin(dir, edit, underlay6, host_mtu, env!("CARGO_BIN_EXE_vxtund"))
    }

    /// Like `up_from`, the daemons started as `bin` (a wrapper around this build's vxtund).
    pub fn up_bin(
        dir: &str,
        edit: impl Fn(&str) -> String,
        underlay6: bool,
        host_mtu: Option<u16>,
        bin: &str,
    ) -> Scenario {
        let prefix = super::unique("s");
        let state = std::env::temp_dir().join(format!("{prefix}-state"));
        let configs = state.join("configs");
        std::fs::create_dir_all(&configs).unwrap();
        for n in 1..=3 {
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{dir}/seg{n}.toml"));
            let text = edit(&std::fs::read_to_string(shipped).unwrap());
            // Each run's daemons get control sockets of their own (runs go side by side).
            let socket = state.join(format!("seg{n}.sock"));
            let text = text.replace(
                &format!("/run/vxtund/seg{n}.sock"),
                socket.to_str().unwrap(),
            );
            let mgmt = state.join(format!("seg{n}.mgmt"));
            let text = text.replace(&format!("/run/vxtund/seg{n}.mgmt"), mgmt.to_str().unwrap());
            let text = super::with_fast_path(&text);
            super::write_private(&configs.join(format!("seg{n}.toml")), &text);
        }
        let s = Scenario { prefix, state };
        let mut cmd = Command::new("bash");
        cmd.arg(Self::script())
            .args(["up", "--prefix", &s.prefix, "--bin", bin, "--state"])
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

    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    pub fn ping(&self, from: &str, target: &str) -> bool {
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

    /// The OpenFlow management socket of `seg`, as `ovs-ofctl` takes it.
    pub fn mgmt(&self, seg: &str) -> String {
        format!("unix:{}", self.state.join(format!("{seg}.mgmt")).display())
    }

    pub fn pid(&self, seg: &str) -> i32 {
        std::fs::read_to_string(self.state.join(format!("{seg}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    pub fn log(&self, seg: &str) -> String {
        std::fs::read_to_string(self.state.join(format!("{seg}.log"))).unwrap_or_default()
    }

    /// The `port N NAME` counter line of `seg`, after asking for a fresh report.
    pub fn port_counter(&self, seg: &str, port: &str, counter: &str) -> u64 {
        let before = self.log(seg).matches(" drops:").count();
        // SAFETY: kill with the PID the scenario script recorded for this run's daemon.
        unsafe { libc::kill(self.pid(seg), libc::SIGUSR1) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.log(seg).matches(" drops:").count() == before {
            assert!(Instant::now() < deadline, "no stats from {seg}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.log(seg);
        let needle = if port == "mtu" || port == "offload" || port == "controller" {
            format!("{port}: ")
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
    pub fn assert_every_pair_pings(&self) {
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
    pub fn ready(&self, seg: &str) -> String {
        std::fs::read_to_string(self.state.join(format!("{seg}.out"))).unwrap_or_default()
    }
}

/// Runs a command in a host of the scenario and returns its exit success and output.
pub fn run_in(s: &Scenario, host: &str, args: &[&str]) -> (bool, String) {
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

/// The scenario plus a direct tunnel seg2 <-> seg3 (`tun_lm` / `tun_ml`, port 3 on each spoke),
/// not used by any flow yet. ARP and neighbour discovery still go through the hub only: the
/// spokes send them from the host to the hub and from any tunnel to the host, so the triangle
/// has no flooding loop.
pub fn with_direct_spoke_tunnel(text: &str) -> String {
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

/// vxtunctl against `seg`'s control socket; panics unless it succeeds. Returns its output.
pub fn vxtunctl(s: &Scenario, seg: &str, args: &[&str]) -> String {
    let (ok, text, err) = vxtunctl_may_fail(s, seg, args);
    assert!(ok, "vxtunctl {args:?}: {text}{err}");
    text
}

/// vxtunctl against `seg`, failure allowed: (success, stdout, stderr).
pub fn vxtunctl_may_fail(s: &Scenario, seg: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vxtunctl"))
        .arg("-s")
        .arg(s.state.join(format!("{seg}.sock")))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// n_packets of the flow printed as `flow` in `seg`'s dump-flows.
pub fn flow_packets(s: &Scenario, seg: &str, flow: &str) -> u64 {
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
