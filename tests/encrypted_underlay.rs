//! VXLAN and GRE over WireGuard: the tunnels' remotes are WireGuard addresses, so every outer
//! packet vxtund sends is encrypted before it reaches the wire (docs/encrypted-underlay.md).
//!
//! Two namespaces joined by a veth (192.168.94.1 and .2); WireGuard on top of it (10.99.0.1 and
//! .2, MTU 1420) run by Debian's `wireguard-go` inside each namespace (this kernel has no
//! wireguard module), configured with `wg`; vxtund in each namespace with one tunnel to the
//! other's WireGuard address and the hosts' addresses on its TAP (10.94.0.1/.2, fd94::1/::2),
//! MTU 1500 so that vxtund, not the host, answers what is too big for the tunnel. The tests
//! show that the overlay works (IPv4 and IPv6 pings, a checksummed TCP transfer), that the
//! tunnel MTU follows WireGuard's 1420 (1370 for VXLAN, 1382 for GRE), and that the veth carries
//! WireGuard's UDP alone: no VXLAN, no GRE, and not the pings' payload pattern, which the
//! capture on the WireGuard device does see in clear.
//!
//! wireguard-go's control sockets (/var/run/wireguard/IFNAME.sock) are global, so each
//! interface has a name unique to the run, and its socket is removed when it is stopped. Every process is a child of the test killed by PID
//! on drop, every namespace is deleted on drop (its interfaces with it). Needs root, and
//! wireguard-go and wg (`scripts/setup.sh` installs them); otherwise SKIPPED, loudly.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::capture::Capture;
use common::{require_root, unique, write_private, Daemon, KillOnDrop, Netns, Pair};

/// WireGuard's MTU (wg-quick's default over a 1500-byte IPv4 or IPv6 path).
const WG_MTU: u16 = 1420;
/// WireGuard's UDP port, both sides.
const WG_PORT: &str = "51820";
/// The pings' payload pattern, looked for in clear on both captures.
const PATTERN: &str = "5678deadbeefcafe5678deadbeefcafe";
/// Bytes of the checksummed TCP transfer.
const TRANSFER_BYTES: usize = 20_000_000;

/// True when root and wireguard-go and wg are installed; otherwise says so loudly.
fn require_tools(test: &str) -> bool {
    require_root(test)
        && common::require_tools(
            test,
            &[("wireguard-go", "wireguard-go"), ("wg", "wireguard-tools")],
        )
}

/// Runs `program` with `args` and `input` on standard input; its standard output, trimmed.
fn output_of(program: &str, args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `done` every 100 ms for up to `limit`; whether it ever held.
fn holds_within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// The WireGuard under a pair's tunnels: its wireguard-go processes, their interfaces on A and
/// B (names unique to the run) and the directory of their keys and logs.
struct WireGuard {
    _go: Vec<WireGuardGo>,
    a: String,
    b: String,
    dir: PathBuf,
}

/// Two namespaces, a veth between them, WireGuard over it, vxtund over WireGuard.
impl Pair<WireGuard> {
    /// The pair with one tunnel of `kind` ("vxlan" or "gre") each way.
    fn over_wireguard(kind: &str) -> Pair<WireGuard> {
        let (a, b) = common::two_hosts("wa", "192.168.94.1/24", "192.168.94.2/24");
        let dir = std::env::temp_dir().join(unique("wg"));
        std::fs::create_dir_all(&dir).unwrap();
        let (wg_a, wg_b) = (unique("wa"), unique("wb"));
        let wg = vec![
            WireGuardGo::start(&a, &wg_a, &dir),
            WireGuardGo::start(&b, &wg_b, &dir),
        ];
        let key = |name: &str| {
            let private = output_of("wg", &["genkey"], None);
            let public = output_of("wg", &["pubkey"], Some(&private));
            let path = dir.join(format!("{name}.key"));
            write_private(&path, &private);
            (path, public)
        };
        let (key_a, pub_a) = key("a");
        let (key_b, pub_b) = key("b");
        for (ns, dev, me, key, peer_pub, peer) in [
            (&a, &wg_a, 1, &key_a, &pub_b, 2),
            (&b, &wg_b, 2, &key_b, &pub_a, 1),
        ] {
            // AllowedIPs: the peer's WireGuard address, which is all vxtund sends to.
            let out = ns.exec(
                "wg",
                &[
                    "set",
                    dev,
                    "listen-port",
                    WG_PORT,
                    "private-key",
                    key.to_str().unwrap(),
                    "peer",
                    peer_pub,
                    "allowed-ips",
                    &format!("10.99.0.{peer}/32"),
                    "endpoint",
                    &format!("192.168.94.{peer}:{WG_PORT}"),
                ],
            );
            assert!(out.status.success(), "wg set: {out:?}");
            ns.ip(&["addr", "add", &format!("10.99.0.{me}/24"), "dev", dev]);
            ns.ip(&["link", "set", dev, "mtu", &WG_MTU.to_string(), "up"]);
        }
        assert!(
            a.pings("10.99.0.2"),
            "WireGuard itself does not carry pings"
        );
        let wireguard = WireGuard {
            _go: wg,
            a: wg_a,
            b: wg_b,
            dir,
        };
        let config = |me: u8, peer: u8| {
            let vni = if kind == "vxlan" { "vni = 94\n" } else { "" };
            format!(
                "[device]\nname = \"vxt0\"\nmtu = 1500\n\
                 addresses = [\"10.94.0.{me}/24\", \"fd94::{me}/64\"]\n\
                 [underlay]\nlocal = \"10.99.0.{me}\"\n\
                 [[tunnel]]\nname = \"t\"\ntype = \"{kind}\"\nremote = \"10.99.0.{peer}\"\n{vni}"
            )
        };
        Pair::up((a, b), config).with(wireguard)
    }

    /// What `show` says of the fast path (its two lines), for the log.
    fn fast_path(&self, d: &Daemon) -> String {
        let show = d.show();
        let lines: Vec<&str> = show.lines().collect();
        match lines.iter().position(|l| l.starts_with("fast path")) {
            Some(i) => lines[i..(i + 2).min(lines.len())].join("\n"),
            None => String::new(),
        }
    }

    /// The overlay carries IPv4 and IPv6 pings both ways.
    fn assert_pings(&self) {
        for (from, to) in [(&self.a, "2"), (&self.b, "1")] {
            assert!(
                from.pings(&format!("10.94.0.{to}")),
                "-> 10.94.0.{to}\n{}",
                self.da.show()
            );
            assert!(
                from.pings(&format!("fd94::{to}")),
                "-> fd94::{to}\n{}",
                self.da.show()
            );
        }
    }

    /// The tunnel MTU is `mtu` (WireGuard's less the encapsulation), in the ready line and in
    /// `show`; the largest DF pings of that size pass, one byte more brings vxtund's too-big
    /// answer (IPv4 "Frag needed", IPv6 "Packet too big").
    fn assert_mtu(&self, mtu: u16) {
        for d in [&self.da, self.db()] {
            let ready = d.ready_line();
            assert!(ready.contains(&format!(" mtu {mtu},")), "{ready}");
            let show = d.show();
            assert!(show.contains(&format!("mtu {mtu}")), "{show}");
        }
        let ping = |target: &str, size: u16| {
            let family = if target.contains(':') { "-6" } else { "-4" };
            let out = self.a.exec(
                "ping",
                &[
                    family,
                    "-M",
                    "do",
                    "-s",
                    &size.to_string(),
                    "-c",
                    "1",
                    "-W",
                    "3",
                    target,
                ],
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            (out.status.success(), text)
        };
        let (v4, v6) = (mtu - 28, mtu - 48);
        let (ok, out) = ping("10.94.0.2", v4);
        assert!(ok, "ping -s {v4} must fit:\n{out}");
        let (ok, out) = ping("10.94.0.2", v4 + 1);
        assert!(
            !ok && out.contains(&format!("Frag needed and DF set (mtu = {mtu})")),
            "ping -s {}:\n{out}",
            v4 + 1
        );
        let (ok, out) = ping("fd94::2", v6);
        assert!(ok, "ping -6 -s {v6} must fit:\n{out}");
        let (ok, out) = ping("fd94::2", v6 + 1);
        assert!(
            !ok && out.contains(&format!("Packet too big: mtu={mtu}")),
            "ping -6 -s {}:\n{out}",
            v6 + 1
        );
    }

    /// A TCP transfer A -> B whose bytes are checked end to end (count and SHA-256).
    fn assert_transfer(&self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/tcp_check.py");
        let mut rx = KillOnDrop(
            Command::new("ip")
                .args(["netns", "exec", &self.b.name, "timeout", "90"])
                .arg("/usr/bin/python3")
                .arg(&script)
                .args(["recv", "10.94.0.2", "7000"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut out = BufReader::new(rx.0.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "receiver");
        let started = Instant::now();
        let tx = Command::new("ip")
            .args(["netns", "exec", &self.a.name, "timeout", "60"])
            .arg("/usr/bin/python3")
            .arg(&script)
            .args(["send", "10.94.0.2", "7000", &TRANSFER_BYTES.to_string()])
            .output()
            .unwrap();
        assert!(
            tx.status.success(),
            "sender failed or stalled ({}): {}\n{}",
            tx.status,
            String::from_utf8_lossy(&tx.stderr),
            self.da.show()
        );
        let mut received = String::new();
        out.read_line(&mut received).unwrap();
        let sent = String::from_utf8_lossy(&tx.stdout);
        assert!(
            received.trim() == sent.trim() && sent.starts_with(&format!("{TRANSFER_BYTES} ")),
            "sent {sent}, received {received}"
        );
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{TRANSFER_BYTES} bytes intact in {secs:.2} s ({:.0} Mbit/s)",
            TRANSFER_BYTES as f64 * 8.0 / secs / 1e6
        );
    }

    /// While pings with [`PATTERN`] cross, the veth carries WireGuard's UDP and nothing of the
    /// tunnel in clear (no VXLAN, no GRE, not the pattern), while the WireGuard device does
    /// carry the tunnel with the pattern in it.
    fn assert_wire_is_encrypted(&self, kind: &str) {
        let wire = Capture::start(&self.a, "ul0", "");
        let inside = Capture::start(&self.a, &self.extra.a, "");
        for target in ["10.94.0.2", "fd94::2"] {
            let out = self.a.exec(
                "ping",
                &[
                    "-c", "5", "-i", "0.1", "-W", "2", "-s", "200", "-p", PATTERN, target,
                ],
            );
            assert!(out.status.success(), "pings to {target}: {out:?}");
        }
        // The wire's capture spans the other's (started before it, stopped after it): every
        // tunnel packet seen inside crossed the wire while it was captured.
        let inside = inside.packets();
        let wire = wire.packets();
        let pattern: Vec<u8> = (0..PATTERN.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&PATTERN[i..i + 2], 16).unwrap())
            .collect();
        let has_pattern = |p: &[u8]| p.windows(pattern.len()).any(|w| w == pattern);
        // On the WireGuard device (raw IP, no link header): the tunnel, pattern in clear.
        let tunnel_inside = inside
            .iter()
            .filter(|p| match kind {
                "vxlan" => udp_ports(p, 0).is_some_and(|(_, d)| d == 8472),
                _ => ip_protocol(p, 0) == Some(47),
            })
            .count();
        assert!(
            tunnel_inside >= 20 && inside.iter().any(|p| has_pattern(p)),
            "the capture on {} saw {tunnel_inside} {kind} packets of {}",
            self.extra.a,
            inside.len()
        );
        // On the veth (Ethernet): WireGuard's UDP, and no packet of the tunnel or with the
        // pattern.
        let mut wireguard = 0;
        for p in &wire {
            assert!(
                !has_pattern(p),
                "the pattern in clear on the wire: {p:02x?}"
            );
            if ip_protocol(p, 14) == Some(47) {
                panic!("GRE in clear on the wire: {p:02x?}");
            }
            match udp_ports(p, 14) {
                Some((s, d)) if s == 51820 && d == 51820 => wireguard += 1,
                Some(ports) => panic!("UDP {ports:?} other than WireGuard's on the wire: {p:02x?}"),
                None => {}
            }
        }
        assert!(
            wireguard >= tunnel_inside,
            "{wireguard} WireGuard packets on the wire for {tunnel_inside} tunnel packets"
        );
        eprintln!(
            "{kind}: {tunnel_inside} tunnel packets on {}, {wireguard} WireGuard packets and no \
             tunnel packet on the veth ({} frames)",
            self.extra.a,
            wire.len()
        );
    }
}

impl Drop for WireGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `wireguard-go -f NAME` in a namespace (foreground, a child of the test). On drop it gets
/// SIGTERM (then SIGKILL if it lingers), by PID, and its control socket goes, which a killed
/// wireguard-go leaves behind in the global /var/run/wireguard.
struct WireGuardGo {
    child: Option<std::process::Child>,
    socket: PathBuf,
}

impl WireGuardGo {
    /// Starts it and waits for its interface and control socket.
    fn start(ns: &Netns, name: &str, dir: &Path) -> WireGuardGo {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "wireguard-go", "-f", name])
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting wireguard-go");
        let wg = WireGuardGo {
            child: Some(child),
            socket: Path::new("/var/run/wireguard").join(format!("{name}.sock")),
        };
        let up = holds_within(Duration::from_secs(10), || {
            wg.socket.exists() && !ns.link_attr(name, "mtu").is_empty()
        });
        assert!(
            up,
            "wireguard-go {name}: no interface or socket\n{}",
            std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
        );
        wg
    }
}

impl Drop for WireGuardGo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill with the PID of our own, not yet reaped child (`ip netns exec`
            // became wireguard-go).
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let exited = holds_within(Duration::from_secs(2), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The IP protocol of the packet at `at` (IPv4 or IPv6, by its version nibble).
fn ip_protocol(p: &[u8], at: usize) -> Option<u8> {
    match p.get(at)? >> 4 {
        4 => p.get(at + 9).copied(),
        6 => p.get(at + 6).copied(),
        _ => None,
    }
}

/// The UDP ports of the packet at `at`, if it is UDP.
fn udp_ports(p: &[u8], at: usize) -> Option<(u16, u16)> {
    let l4 = match p.get(at)? >> 4 {
        4 => at + usize::from(p[at] & 0x0f) * 4,
        6 => at + 40,
        _ => return None,
    };
    if ip_protocol(p, at)? != 17 {
        return None;
    }
    let port = |o: usize| Some(u16::from_be_bytes([*p.get(l4 + o)?, *p.get(l4 + o + 1)?]));
    Some((port(0)?, port(2)?))
}

fn over_wireguard(test: &str, kind: &str, mtu: u16) {
    if !require_tools(test) {
        return;
    }
    let pair = Pair::over_wireguard(kind);
    pair.assert_pings();
    pair.assert_mtu(mtu);
    pair.assert_transfer();
    pair.assert_wire_is_encrypted(kind);
    // The kernel fast path (when in force: auto, with CAP_BPF) encapsulates to the WireGuard
    // device, but does not decapsulate from it: the device has no Ethernet header, so the
    // program is not attached there and no decapsulation entry is made. What arrives takes
    // the userspace path.
    for (d, wg) in [(&pair.da, &pair.extra.a), (pair.db(), &pair.extra.b)] {
        let fast_path = pair.fast_path(d);
        eprintln!("{test}: {fast_path}");
        if fast_path.starts_with("fast path: kernel") {
            assert!(
                fast_path.contains(&format!("no decapsulation: {wg} has no Ethernet header")),
                "{fast_path}"
            );
            assert!(
                fast_path.contains("decap 0); upcalls") && fast_path.contains("decap 0); passed"),
                "{fast_path}"
            );
        }
    }
}

#[test]
fn vxlan_over_wireguard_is_encrypted_and_follows_its_mtu() {
    // 1420 - (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14).
    over_wireguard(
        "vxlan_over_wireguard_is_encrypted_and_follows_its_mtu",
        "vxlan",
        1370,
    );
}

#[test]
fn gre_over_wireguard_is_encrypted_and_follows_its_mtu() {
    // 1420 - (outer IPv4 20 + GRE 4 + inner Ethernet 14).
    over_wireguard(
        "gre_over_wireguard_is_encrypted_and_follows_its_mtu",
        "gre",
        1382,
    );
}
