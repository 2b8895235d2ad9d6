//! BGP EVPN in network namespaces with real peers: FRR (Debian's `frr`: zebra and bgpd run per
//! namespace, as a route reflector and as a VTEP with the kernel's vxlan in a bridge) and
//! GoBGP (Debian's `gobgpd`), and vxtund VTEPs configured with `[evpn]` and no tunnels.
//!
//! Every FRR and GoBGP daemon runs in the foreground as a child of the test, inside a
//! namespace of the test (so it listens only there), and is killed by PID on drop; every
//! namespace is deleted on drop, also when the test fails. The tests skip loudly when not
//! root or when FRR or GoBGP is missing (`scripts/setup.sh` installs them).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require_root, run, unique, Daemon, KillOnDrop, Netns};

const ZEBRA: &str = "/usr/lib/frr/zebra";
const BGPD: &str = "/usr/lib/frr/bgpd";

/// True when FRR (and, with `gobgp`, GoBGP) is installed; otherwise says so loudly.
fn require_tools(test: &str, gobgp: bool) -> bool {
    if !require_root(test) {
        return false;
    }
    let frr = [(ZEBRA, "frr"), (BGPD, "frr"), ("/usr/bin/vtysh", "frr")];
    let gobgpd = [("gobgpd", "gobgpd")];
    let tools: Vec<(&str, &str)> = match gobgp {
        true => frr.iter().chain(&gobgpd).copied().collect(),
        false => frr.to_vec(),
    };
    common::require_tools(test, &tools)
}

/// zebra and bgpd of one namespace, killed by PID on drop (with their directory).
struct Frr {
    dir: PathBuf,
    _daemons: Vec<KillOnDrop>,
}

impl Frr {
    fn start(ns: &Netns, conf: &str) -> Frr {
        let dir = std::env::temp_dir().join(unique("frr"));
        fs::create_dir_all(&dir).unwrap();
        let conf_path = dir.join("frr.conf");
        fs::write(&conf_path, conf).unwrap();
        // The daemons run as the frr user: their directory and config must be theirs.
        run("chown", &["-R", "frr:frr", dir.to_str().unwrap()]);
        let d = dir.to_str().unwrap();
        let zserv = format!("{d}/zserv.api");
        let spawn = |program: &str, extra: &[&str]| {
            let log = fs::File::create(dir.join(format!(
                "{}.log",
                Path::new(program).file_name().unwrap().to_str().unwrap()
            )))
            .unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", &ns.name, program, "-P", "0", "-f"])
                .arg(&conf_path)
                .args([
                    "-i",
                    &format!("{d}/{}.pid", program.rsplit('/').next().unwrap()),
                ])
                .args(["--vty_socket", d, "-z", &zserv])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {program}: {e}"));
            KillOnDrop(child)
        };
        let zebra = spawn(ZEBRA, &["-s", "90000000"]);
        wait_until(Duration::from_secs(10), "zebra's zserv socket", || {
            Path::new(&zserv).exists()
        });
        let bgpd = spawn(BGPD, &[]);
        let frr = Frr {
            dir,
            _daemons: vec![bgpd, zebra],
        };
        wait_until(Duration::from_secs(10), "bgpd's vty socket", || {
            frr.dir.join("bgpd.vty").exists()
        });
        frr
    }

    fn vtysh(&self, command: &str) -> String {
        let out = Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.dir)
            .args(["-c", command])
            .output()
            .expect("running vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        // The daemons (fields) are killed after this; their directory goes then too.
        let dir = self.dir.clone();
        let _ = fs::remove_dir_all(dir);
    }
}

/// Polls `done` every 100 ms until it holds or `limit` passed (then panics naming `what`).
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if done() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `done` for `limit`; whether it ever held.
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

/// The underlay: a bridge in a namespace of its own, every node on it with `eth0`,
/// 192.168.77.N/24 and fd77::N/64.
struct Underlay {
    hub: Netns,
}

impl Underlay {
    fn new() -> Underlay {
        let hub = Netns::new("evu");
        hub.ip(&["link", "add", "br0", "type", "bridge"]);
        hub.ip(&["link", "set", "br0", "up"]);
        Underlay { hub }
    }

    /// A node namespace on the underlay with host number `n`.
    fn node(&self, tag: &str, n: u8) -> Netns {
        let ns = Netns::new(tag);
        let port = format!("u{n}");
        run(
            "ip",
            &[
                "link",
                "add",
                &port,
                "netns",
                &self.hub.name,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns.name,
            ],
        );
        self.hub.ip(&["link", "set", &port, "master", "br0", "up"]);
        ns.ip(&["addr", "add", &format!("192.168.77.{n}/24"), "dev", "eth0"]);
        ns.ip(&["addr", "add", &format!("fd77::{n}/64"), "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns
    }
}

/// A host: a namespace whose `eth0` (MAC `mac`, 172.31.0.N/24 and fc00::N/64) is the far end
/// of a veth whose near end `port` is in `bridge` of `on`.
fn host(tag: &str, mac: &str, n: u8, on: &Netns, bridge: &str, port: &str) -> Netns {
    let ns = Netns::new(tag);
    plug(&ns, mac, n, on, bridge, port);
    ns
}

/// (Re)connects host `ns` to `bridge` of `on` with a new veth pair.
fn plug(ns: &Netns, mac: &str, n: u8, on: &Netns, bridge: &str, port: &str) {
    run(
        "ip",
        &[
            "link", "add", port, "netns", &on.name, "type", "veth", "peer", "name", "eth0",
            "netns", &ns.name,
        ],
    );
    on.ip(&["link", "set", port, "master", bridge, "up"]);
    ns.ip(&["link", "set", "eth0", "address", mac]);
    ns.ip(&["addr", "add", &format!("172.31.0.{n}/24"), "dev", "eth0"]);
    ns.ip(&["addr", "add", &format!("fc00::{n}/64"), "dev", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
}

/// gobgpd in a namespace (gRPC on the namespace's 127.0.0.1:50051), killed by PID on drop.
struct GoBgp {
    dir: PathBuf,
    ns: String,
    _daemon: KillOnDrop,
}

impl GoBgp {
    fn start(ns: &Netns, conf: &str) -> GoBgp {
        let dir = std::env::temp_dir().join(unique("gobgp"));
        fs::create_dir_all(&dir).unwrap();
        let conf_path = dir.join("gobgpd.toml");
        fs::write(&conf_path, conf).unwrap();
        let log = fs::File::create(dir.join("gobgpd.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "gobgpd", "-t", "toml"])
            .args(["--api-hosts", "127.0.0.1:50051", "--pprof-disable", "-f"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting gobgpd");
        GoBgp {
            dir,
            ns: ns.name.clone(),
            _daemon: KillOnDrop(child),
        }
    }

    /// `gobgp ARGS` against it: what it printed (standard output and error).
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "gobgp",
                "-u",
                "127.0.0.1",
                "-p",
                "50051",
            ])
            .args(args)
            .output()
            .expect("running gobgp");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const RR_CONF: &str = "frr defaults datacenter
hostname rr
router bgp 65000
 bgp router-id 192.168.77.1
 no bgp default ipv4-unicast
 neighbor FAB peer-group
 neighbor FAB remote-as 65000
 bgp listen range 192.168.77.0/24 peer-group FAB
 bgp listen range fd77::/64 peer-group FAB
 address-family l2vpn evpn
  neighbor FAB activate
  neighbor FAB route-reflector-client
 exit-address-family
";

const VTEP_CONF: &str = "frr defaults datacenter
hostname f1
router bgp 65000
 bgp router-id 192.168.77.11
 no bgp default ipv4-unicast
 neighbor 192.168.77.1 remote-as 65000
 address-family l2vpn evpn
  neighbor 192.168.77.1 activate
  advertise-all-vni
 exit-address-family
";

/// An FRR VTEP: bridge br100 with the kernel's vxlan100 (VNI 100, port 8472, no learning).
fn frr_vtep(ns: &Netns) -> Frr {
    ns.ip(&["link", "add", "br100", "type", "bridge"]);
    ns.ip(&["link", "set", "br100", "up"]);
    ns.ip(&[
        "link",
        "add",
        "vxlan100",
        "type",
        "vxlan",
        "id",
        "100",
        "local",
        "192.168.77.11",
        "dstport",
        "8472",
        "nolearning",
    ]);
    ns.ip(&[
        "link",
        "set",
        "vxlan100",
        "master",
        "br100",
        "addrgenmode",
        "none",
    ]);
    ns.ip(&[
        "link",
        "set",
        "vxlan100",
        "type",
        "bridge_slave",
        "learning",
        "off",
    ]);
    ns.ip(&["link", "set", "vxlan100", "up"]);
    Frr::start(ns, VTEP_CONF)
}

/// vxtund's `[evpn]` config (no tunnels, no flows), with `device` and `underlay` lines.
fn vxtund_config(device: &str, underlay: &str, neighbor: &str, extra: &str) -> String {
    format!(
        "[device]\nname = \"vxt0\"\n{device}\n[underlay]\n{underlay}\n[evpn]\nasn = 65000\n\
         neighbors = [\"{neighbor}\"]\nvni = 100\nhold_time = 9\n{extra}"
    )
}

/// FRR's FDB of vxlan100 (`bridge fdb show dev vxlan100`).
fn frr_fdb(ns: &Netns) -> String {
    String::from_utf8_lossy(
        &ns.exec("bridge", &["fdb", "show", "dev", "vxlan100"])
            .stdout,
    )
    .into_owned()
}

/// Whether FRR's FDB points `mac` (lower case) at VTEP `dst`.
fn fdb_points(fdb: &str, mac: &str, dst: &str) -> bool {
    fdb.lines()
        .any(|l| l.starts_with(mac) && l.contains(&format!("dst {dst} ")))
}

/// FRR's line for `mac` in `show evpn mac vni 100` (local, or remote with its VTEP).
fn frr_mac(frr: &Frr, mac: &str) -> String {
    frr.vtysh("show evpn mac vni 100")
        .lines()
        .find(|l| l.starts_with(mac))
        .unwrap_or_default()
        .to_owned()
}

/// The MAC of `dev` in `ns`.
fn mac_of(ns: &Netns, dev: &str) -> String {
    ns.link_attr(dev, "address")
}

/// vxtund's EVPN section lists `mac` behind VTEP `vtep`.
fn vxtund_has(d: &Daemon, mac: &str, vtep: &str) -> bool {
    d.show()
        .lines()
        .any(|l| l.contains(mac) && l.contains(&format!("remote VTEP {vtep} ")))
}

#[test]
fn frr_fabric_pings_learns_moves_and_forgets() {
    if !require_tools("frr_fabric_pings_learns_moves_and_forgets", false) {
        return;
    }
    let underlay = Underlay::new();
    let rr_ns = underlay.node("evr", 1);
    let f1 = underlay.node("evf", 11);
    let v1 = underlay.node("eva", 12);
    let v2 = underlay.node("evb", 13);
    let rr = Frr::start(&rr_ns, RR_CONF);
    let frr = frr_vtep(&f1);
    let h1 = host("evh", "02:00:00:00:00:11", 11, &f1, "br100", "h1");
    // vxtund 1: its TAP in a bridge with the host address on the bridge (a host `hm` will
    // move in); vxtund 2: the host address on the TAP itself.
    v1.ip(&["link", "add", "brv", "type", "bridge"]);
    v1.ip(&["link", "set", "brv", "address", "02:00:00:00:00:12"]);
    v1.ip(&["addr", "add", "172.31.0.12/24", "dev", "brv"]);
    v1.ip(&["addr", "add", "fc00::12/64", "dev", "brv"]);
    v1.ip(&["link", "set", "brv", "up"]);
    let d1 = Daemon::start(
        &v1,
        &vxtund_config(
            "bridge = \"brv\"",
            "local = \"192.168.77.12\"",
            "192.168.77.1",
            "",
        ),
    );
    let d2 = Daemon::start(
        &v2,
        &vxtund_config(
            "addresses = [\"172.31.0.13/24\", \"fc00::13/64\"]",
            "local = \"192.168.77.13\"",
            "192.168.77.1",
            "",
        ),
    );
    let v2_mac = mac_of(&v2, "vxt0");

    // Every session up, every VTEP known.
    wait_until(Duration::from_secs(20), "vxtund sessions and VTEPs", || {
        let (s1, s2) = (d1.show(), d2.show());
        s1.contains("Established")
            && s2.contains("Established")
            && s1.contains("192.168.77.11 port")
            && s1.contains("192.168.77.13 port")
            && s2.contains("192.168.77.11 port")
            && s2.contains("192.168.77.12 port")
    });
    // The reflector's End-of-RIB arrived.
    wait_until(Duration::from_secs(5), "End-of-RIB from FRR", || {
        d1.show().contains("End-of-RIB received") && d2.show().contains("End-of-RIB received")
    });
    // `vxtunctl evpn` says the same as the section of `show`.
    let out = Command::new(env!("CARGO_BIN_EXE_vxtunctl"))
        .arg("-s")
        .arg(d1.control_socket())
        .arg("evpn")
        .output()
        .unwrap();
    let evpn = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{evpn}");
    assert!(
        evpn.starts_with("evpn: AS 65000 router-id 192.168.77.12 VTEP 192.168.77.12 VNI 100"),
        "{evpn}"
    );
    assert!(
        evpn.contains("neighbor 192.168.77.1 Established for"),
        "{evpn}"
    );
    let summary = rr.vtysh("show bgp l2vpn evpn summary");
    for peer in ["192.168.77.11", "192.168.77.12", "192.168.77.13"] {
        assert!(summary.contains(peer), "{summary}");
    }

    // Every host pings every other, IPv4 and IPv6.
    let hosts = [(&h1, "11"), (&v1, "12"), (&v2, "13")];
    for (from, a) in hosts {
        for (_, b) in hosts.iter().filter(|(_, b)| *b != a) {
            assert!(from.pings(&format!("172.31.0.{b}")), "{a} -> 172.31.0.{b}");
            assert!(from.pings(&format!("fc00::{b}")), "{a} -> fc00::{b}");
        }
    }

    // A reload (SIGHUP) keeps the VTEP ports and the remote MACs (`fdb-show`: `evpn`).
    let fdb_show = |d: &Daemon| {
        let out = Command::new(env!("CARGO_BIN_EXE_vxtunctl"))
            .arg("-s")
            .arg(d.control_socket())
            .arg("fdb-show")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let remote_h1 = |text: &str| {
        text.lines()
            .any(|l| l.contains("02:00:00:00:00:11") && l.ends_with("evpn"))
    };
    assert!(remote_h1(&fdb_show(&d2)), "{}", fdb_show(&d2));
    let mut d2 = d2;
    d2.reload("reloaded");
    let show = d2.show();
    assert!(
        show.contains("192.168.77.11 port") && show.contains("192.168.77.12 port"),
        "{show}"
    );
    assert!(
        vxtund_has(&d2, "02:00:00:00:00:11", "192.168.77.11"),
        "{show}"
    );
    assert!(v2.pings("172.31.0.11") && v2.pings("fc00::12"));

    // FRR's kernel FDB points vxtund's MACs at vxtund's address, with both in the flood
    // list; vxtund points FRR's host at FRR.
    wait_until(
        Duration::from_secs(5),
        "FRR's FDB has vxtund's MACs",
        || {
            let fdb = frr_fdb(&f1);
            fdb_points(&fdb, "02:00:00:00:00:12", "192.168.77.12")
                && fdb_points(&fdb, &v2_mac, "192.168.77.13")
                && fdb_points(&fdb, "00:00:00:00:00:00", "192.168.77.12")
                && fdb_points(&fdb, "00:00:00:00:00:00", "192.168.77.13")
        },
    );
    assert!(
        vxtund_has(&d1, "02:00:00:00:00:11", "192.168.77.11"),
        "{}",
        d1.show()
    );
    assert!(
        vxtund_has(&d2, "02:00:00:00:00:11", "192.168.77.11"),
        "{}",
        d2.show()
    );
    let flood = frr.vtysh("show evpn vni 100");
    assert!(
        flood.contains("192.168.77.12") && flood.contains("192.168.77.13"),
        "{flood}"
    );

    // A MAC moves from the FRR segment to vxtund 1's and back, converging within 2 s each
    // way (FRR's FDB and vxtund 2's table both follow).
    let hm = host("evm", "02:00:00:00:00:50", 50, &f1, "br100", "hm");
    assert!(hm.pings("172.31.0.13"));
    wait_until(
        Duration::from_secs(5),
        "the moving MAC known behind FRR",
        || vxtund_has(&d2, "02:00:00:00:00:50", "192.168.77.11"),
    );
    f1.ip(&["link", "del", "hm"]);
    plug(&hm, "02:00:00:00:00:50", 50, &v1, "brv", "hm");
    let moved = Instant::now();
    assert!(hm.pings("172.31.0.13"), "from its new place");
    let there = wait_until(Duration::from_secs(2), "the move to vxtund 1", || {
        vxtund_has(&d2, "02:00:00:00:00:50", "192.168.77.12")
            && fdb_points(&frr_fdb(&f1), "02:00:00:00:00:50", "192.168.77.12")
            && frr_mac(&frr, "02:00:00:00:00:50").contains("remote")
    });
    eprintln!("moved to vxtund within {:?} of its first frame", there);
    let _ = moved;
    v1.ip(&["link", "del", "hm"]);
    plug(&hm, "02:00:00:00:00:50", 50, &f1, "br100", "hm");
    assert!(hm.pings("172.31.0.13"), "back at FRR's");
    let start = Instant::now();
    let back = holds_within(Duration::from_secs(2), || {
        vxtund_has(&d2, "02:00:00:00:00:50", "192.168.77.11")
            && vxtund_has(&d1, "02:00:00:00:00:50", "192.168.77.11")
            && frr_mac(&frr, "02:00:00:00:00:50").contains("local")
    });
    assert!(
        back,
        "the move back to FRR: not within 2 s\nvxtund 1:\n{}\nvxtund 2:\n{}\nFRR:\n{}\n{}",
        d1.show(),
        d2.show(),
        frr.vtysh("show evpn mac vni 100"),
        rr.vtysh("show bgp l2vpn evpn route type macip")
    );
    eprintln!("moved back within {:?}", start.elapsed());
    let routes = rr.vtysh("show bgp l2vpn evpn route type macip");
    assert!(routes.contains("02:00:00:00:00:50"), "{routes}");
    assert!(hm.pings("172.31.0.12") && hm.pings("fc00::13"));

    // Stopping vxtund 2 withdraws its routes: FRR's flood list and FDB forget it at once.
    assert!(d2.stop().success());
    let gone = wait_until(
        Duration::from_secs(2),
        "FRR forgets the stopped vxtund",
        || {
            let fdb = frr_fdb(&f1);
            !fdb_points(&fdb, "00:00:00:00:00:00", "192.168.77.13")
                && !fdb_points(&fdb, &v2_mac, "192.168.77.13")
        },
    );
    eprintln!("stopped vxtund forgotten within {gone:?}");
    wait_until(Duration::from_secs(3), "vxtund 1 forgets it too", || {
        !d1.show().contains("192.168.77.13 port")
    });

    // A SIGKILLed vxtund whose host is cut off (no FIN reaches the fabric) is forgotten when
    // its hold timer (9 s) expires, not before.
    v1.ip(&["link", "set", "eth0", "down"]);
    let pid = d1.pid();
    // SAFETY: kill with the PID of our own child and a valid signal number.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let killed = Instant::now();
    // (FRR's zebra leaves a stale entry for a MAC that moved back, so the flood list and
    // vxtund's own MAC are what tell.)
    let knows_v1 = |fdb: &str| {
        fdb_points(fdb, "00:00:00:00:00:00", "192.168.77.12")
            || fdb_points(fdb, "02:00:00:00:00:12", "192.168.77.12")
    };
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        knows_v1(&frr_fdb(&f1)),
        "forgotten before its hold timer expired"
    );
    wait_until(
        Duration::from_secs(15),
        "FRR forgets the killed vxtund",
        || !knows_v1(&frr_fdb(&f1)),
    );
    let held = killed.elapsed();
    eprintln!("killed vxtund forgotten after {held:?}");
    assert!(held >= Duration::from_secs(5), "{held:?}");
    drop(d1);
    drop(frr);
    drop(rr);
}

#[test]
fn gobgp_injected_routes_are_used() {
    if !require_tools("gobgp_injected_routes_are_used", true) {
        return;
    }
    let underlay = Underlay::new();
    let rr_ns = underlay.node("evr", 1);
    let v1 = underlay.node("eva", 12);
    let g = underlay.node("evg", 20);
    let _rr = Frr::start(&rr_ns, RR_CONF);
    let gobgpd = GoBgp::start(
        &g,
        "[global.config]\n  as = 65000\n  router-id = \"192.168.77.20\"\n  port = -1\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"192.168.77.1\"\n    \
         peer-as = 65000\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
         afi-safi-name = \"l2vpn-evpn\"\n",
    );
    let gobgp = |args: &[&str]| gobgpd.cli(args);
    wait_until(
        Duration::from_secs(20),
        "GoBGP's session with the RR",
        || gobgp(&["neighbor"]).contains("Establ"),
    );
    let d1 = Daemon::start(
        &v1,
        &vxtund_config(
            "addresses = [\"172.31.0.12/24\", \"fc00::12/64\"]",
            "local = \"192.168.77.12\"",
            "192.168.77.1",
            "[metrics]\nlisten = \"127.0.0.1:9477\"\n",
        ),
    );
    // A second vxtund VTEP, so that a flood and a unicast frame can be told apart.
    let v2 = underlay.node("evb", 13);
    let _d2 = Daemon::start(
        &v2,
        &vxtund_config(
            "addresses = [\"172.31.0.13/24\", \"fc00::13/64\"]",
            "local = \"192.168.77.13\"",
            "192.168.77.1",
            "",
        ),
    );
    // GoBGP announces VTEP .20 with MAC 02:00:00:00:99:99 behind it: a frame to the MAC must
    // go to .20 alone.
    let vtep = "192.168.77.20";
    let out = gobgp(&[
        "global",
        "rib",
        "-a",
        "evpn",
        "add",
        "multicast",
        vtep,
        "etag",
        "0",
        "rd",
        &format!("{vtep}:1"),
        "rt",
        "65000:100",
        "encap",
        "vxlan",
        "pmsi",
        "ingress-repl",
        "100",
        vtep,
    ]);
    assert!(!out.contains("rror"), "{out}");
    let out = gobgp(&[
        "global",
        "rib",
        "-a",
        "evpn",
        "add",
        "macadv",
        "02:00:00:00:99:99",
        "0.0.0.0",
        "etag",
        "0",
        "label",
        "100",
        "rd",
        "192.168.77.20:1",
        "rt",
        "65000:100",
        "encap",
        "vxlan",
    ]);
    assert!(!out.contains("rror"), "{out}");
    let learnt = holds_within(Duration::from_secs(10), || {
        let show = d1.show();
        vxtund_has(&d1, "02:00:00:00:99:99", "192.168.77.20") && show.contains("192.168.77.13 port")
    });
    assert!(
        learnt,
        "vxtund did not learn GoBGP's routes:\n{}\nGoBGP:\n{}\nRR:\n{}",
        d1.show(),
        gobgp(&["global", "rib", "-a", "evpn"]),
        _rr.vtysh("show bgp l2vpn evpn route")
    );
    // The metrics say so, in a form promtool accepts.
    let scrape = || {
        let out = v1.exec(
            "curl",
            &["-sS", "--max-time", "5", "http://127.0.0.1:9477/metrics"],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // What the metrics must say, from the table `show` lists: the MACs are GoBGP's and the
    // FRR VTEP's hosts, and whatever else each side's namespaces send from (a bridge's own
    // address, say); vxtund's own routes (its MACs and its type-3) come back reflected.
    let expected = || {
        let show = d1.show();
        let remote = show.lines().filter(|l| l.contains(" remote VTEP ")).count();
        let local = show.lines().filter(|l| l.ends_with(" local seq 0")).count();
        [
            "vxtund_bgp_session_up{neighbor=\"192.168.77.1\"} 1".to_owned(),
            "vxtund_evpn_remote_vteps 2".to_owned(),
            format!("vxtund_evpn_remote_macs {remote}"),
            format!("vxtund_evpn_local_macs {local}"),
            format!(
                "vxtund_evpn_routes_refused_total{{reason=\"own_route\"}} {}",
                local + 1
            ),
            "vxtund_evpn_routes_refused_total{reason=\"route_limit\"} 0".to_owned(),
        ]
    };
    let all_there = |m: &str| expected().iter().all(|line| m.lines().any(|l| l == line));
    holds_within(Duration::from_secs(5), || all_there(&scrape()));
    let metrics = scrape();
    let show = d1.show();
    assert!(
        show.contains("02:00:00:00:99:99 remote VTEP 192.168.77.20")
            && show
                .lines()
                .filter(|l| l.contains(" remote VTEP 192.168.77.13 "))
                .count()
                >= 1
            && show.lines().any(|l| l.ends_with(" local seq 0")),
        "GoBGP's MAC, the FRR VTEP's and one of our own: {show}"
    );
    for line in expected() {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}\nSHOW:\n{show}"
        );
    }
    assert!(
        metrics.contains("vxtund_bgp_updates_received_total "),
        "{metrics}"
    );
    let file = gobgpd.dir.join("metrics.txt");
    fs::write(&file, &metrics).unwrap();
    if let Ok(lint) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&file).unwrap())
        .output()
    {
        assert!(
            lint.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
    }

    // GoBGP holds vxtund's routes too (reflected).
    let rib = gobgp(&["global", "rib", "-a", "evpn"]);
    assert!(rib.contains("192.168.77.12"), "{rib}");

    // Frames to the MAC leave as VXLAN to GoBGP's address, and to nowhere else.
    let capture = gobgpd.dir.join("capture.txt");
    let tcpdump = KillOnDrop(
        Command::new("ip")
            .args([
                "netns", "exec", &g.name, "tcpdump", "-i", "eth0", "-n", "-l", "-c", "3",
            ])
            .args([
                "-x",
                "udp",
                "dst",
                "port",
                "8472",
                "and",
                "src",
                "host",
                "192.168.77.12",
            ])
            // Only frames whose inner destination (after UDP 8 and VXLAN 8 bytes) is the MAC.
            .args([
                "and",
                "udp[16:4]",
                "=",
                "0x02000000",
                "and",
                "udp[20:2]",
                "=",
                "0x9999",
            ])
            .stdout(fs::File::create(&capture).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tcpdump"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let before = d1.show();
    v1.ip(&[
        "neigh",
        "replace",
        "172.31.0.99",
        "lladdr",
        "02:00:00:00:99:99",
        "dev",
        "vxt0",
    ]);
    let _ = v1.exec("ping", &["-c", "3", "-i", "0.2", "-W", "1", "172.31.0.99"]);
    let seen = holds_within(Duration::from_secs(5), || {
        fs::read_to_string(&capture)
            .unwrap_or_default()
            .matches("192.168.77.20.8472")
            .count()
            >= 3
    });
    drop(tcpdump);
    let text = fs::read_to_string(&capture).unwrap_or_default();
    assert!(seen, "no VXLAN to GoBGP's VTEP:\n{text}\n{}", d1.show());
    // The inner destination MAC (after the outer IPv4 20, UDP 8 and VXLAN 8 bytes).
    let hex: String = text
        .lines()
        .filter(|l| l.trim_start().starts_with("0x"))
        .flat_map(|l| l.split_whitespace().skip(1))
        .collect();
    assert!(hex.contains("020000009999"), "{text}");
    let show = d1.show();
    let tx_to = |show: &str, vtep: &str| -> u64 {
        show.lines()
            .find(|l| l.contains(&format!("vxlan {vtep}:8472")))
            .and_then(|l| l.split("tx_packets=").nth(1))
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no port to {vtep}:\n{show}"))
    };
    // Floods (IPv6 multicast from the TAP) reach both VTEPs alike; the unicast frames only
    // GoBGP's.
    let to_20 = tx_to(&show, "192.168.77.20") - tx_to(&before, "192.168.77.20");
    let to_13 = tx_to(&show, "192.168.77.13") - tx_to(&before, "192.168.77.13");
    assert!(
        to_20 >= to_13 + 3,
        "unicast, not flooded: {to_20} vs {to_13}\n{show}"
    );
    drop(d1);
}

/// FRR 8.4 refuses type-3 routes with an IPv6 originator ("Error in processing EVPN type-3
/// NLRI", a NOTIFICATION 3/9), so over an IPv6 underlay GoBGP is the route reflector.
#[test]
fn vxtund_vteps_over_an_ipv6_underlay() {
    if !require_tools("vxtund_vteps_over_an_ipv6_underlay", true) {
        return;
    }
    let underlay = Underlay::new();
    let rr_ns = underlay.node("evr", 1);
    let v1 = underlay.node("eva", 12);
    let v2 = underlay.node("evb", 13);
    let mut conf = String::from(
        "[global.config]\n  as = 65000\n  router-id = \"192.168.77.1\"\n  \
         local-address-list = [\"fd77::1\"]\n",
    );
    for n in [12, 13] {
        conf.push_str(&format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"fd77::{n}\"\n    \
             peer-as = 65000\n  [neighbors.transport.config]\n    passive-mode = true\n  \
             [neighbors.route-reflector.config]\n    route-reflector-client = true\n    \
             route-reflector-cluster-id = \"192.168.77.1\"\n  [[neighbors.afi-safis]]\n    \
             [neighbors.afi-safis.config]\n      afi-safi-name = \"l2vpn-evpn\"\n"
        ));
    }
    let rr = GoBgp::start(&rr_ns, &conf);
    let config = |n: u8| {
        vxtund_config(
            &format!("addresses = [\"172.31.0.{n}/24\", \"fc00::{n}/64\"]"),
            &format!("local = \"fd77::{n}\""),
            "fd77::1",
            &format!("router_id = \"192.168.77.{n}\"\n"),
        )
    };
    let d1 = Daemon::start(&v1, &config(12));
    let d2 = Daemon::start(&v2, &config(13));
    let up = holds_within(Duration::from_secs(30), || {
        d1.show().contains("fd77::13 port") && d2.show().contains("fd77::12 port")
    });
    assert!(
        up,
        "VTEPs over IPv6:\n{}\n{}\n{}\n{}",
        d1.show(),
        d2.show(),
        rr.cli(&["neighbor"]),
        rr.cli(&["global", "rib", "-a", "evpn"])
    );
    // The next hops and PMSI endpoints are the VTEPs' IPv6 addresses.
    let rib = rr.cli(&["global", "rib", "-a", "evpn"]);
    assert!(
        rib.contains("tunnel-id: fd77::12") && rib.contains("tunnel-id: fd77::13"),
        "{rib}"
    );
    for (from, to) in [(&v1, "13"), (&v2, "12")] {
        assert!(from.pings(&format!("172.31.0.{to}")), "-> 172.31.0.{to}");
        assert!(from.pings(&format!("fc00::{to}")), "-> fc00::{to}");
    }
    let mac2 = mac_of(&v2, "vxt0");
    wait_until(
        Duration::from_secs(3),
        "vxtund 1 has vxtund 2's MAC",
        || vxtund_has(&d1, &mac2, "fd77::13"),
    );
}

/// The TCP MD5 password of the MD5 tests (FRR's `neighbor X password`, GoBGP's
/// `auth-password`, vxtund's `password`).
const MD5_PASSWORD: &str = "vxt-md5-s3cret";

/// The config of an MD5 test's vxtund VTEP on the underlay's node `n`: host address
/// 172.31.0.`n`, underlay address 192.168.77.`n` (`fd77::n` with `v6`, and then a router id,
/// which no IPv4 address gives), the reflector at `.1` its one neighbor, and `password` if any.
fn md5_vtep_config(n: u8, v6: bool, password: Option<&str>) -> String {
    let (local, neighbor, router_id) = match v6 {
        false => (format!("192.168.77.{n}"), "192.168.77.1", String::new()),
        true => (
            format!("fd77::{n}"),
            "fd77::1",
            format!("router_id = \"192.168.77.{n}\"\n"),
        ),
    };
    let password = password.map_or(String::new(), |p| format!("password = \"{p}\"\n"));
    vxtund_config(
        &format!("addresses = [\"172.31.0.{n}/24\", \"fc00::{n}/64\"]"),
        &format!("local = \"{local}\""),
        neighbor,
        &format!("{router_id}{password}"),
    )
}

/// How long a session with a password mismatch is watched staying down.
const MISMATCH_WATCH: Duration = Duration::from_secs(12);

/// Counters of the kernel's MD5 checks in `ns` (`nstat`): segments dropped for a wrong
/// signature, and for a missing one.
fn md5_drops(ns: &Netns) -> (u64, u64) {
    let out = ns.exec(
        "nstat",
        &["-asz", "TcpExtTCPMD5Failure", "TcpExtTCPMD5NotFound"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (value("TcpExtTCPMD5Failure"), value("TcpExtTCPMD5NotFound"))
}

/// Watches the daemons in `down` for [`MISMATCH_WATCH`]: none may ever be Established; then
/// each one's log must name the neighbor and say what the failure looks like (`why`).
fn assert_stay_down(down: &[(&Daemon, &str, &str)]) {
    let start = Instant::now();
    while start.elapsed() < MISMATCH_WATCH {
        for (d, neighbor, _) in down {
            let show = d.show();
            assert!(
                !show.contains("Established"),
                "a session with a password mismatch came up:\n{show}"
            );
            assert!(show.contains(&format!("neighbor {neighbor} ")), "{show}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (d, neighbor, why) in down {
        let log = d.log();
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("neighbor={neighbor}"))
                    && l.contains("EVPN: connecting: no answer within 5s")
                    && l.contains(why)),
            "no line naming {neighbor} and `{why}`:\n{log}"
        );
        assert!(
            !log.contains(MD5_PASSWORD),
            "the password in the log:\n{log}"
        );
        assert!(
            d.show().contains("(last: no answer within 5s"),
            "{}",
            d.show()
        );
    }
}

/// FRR's route reflector with `neighbor X password`: vxtund with the same password (`[evpn]
/// password`) comes up and exchanges routes; with another one (a neighbor's own `password`)
/// or none it never does, and its log says why as far as the kernel lets it know.
#[test]
fn md5_with_frr_the_right_password_peers_and_a_wrong_or_missing_one_never_does() {
    let test = "md5_with_frr_the_right_password_peers_and_a_wrong_or_missing_one_never_does";
    if !require_tools(test, false) {
        return;
    }
    let underlay = Underlay::new();
    let rr_ns = underlay.node("evr", 1);
    let f1 = underlay.node("evf", 11);
    let v1 = underlay.node("eva", 12);
    let v2 = underlay.node("evb", 13);
    let v3 = underlay.node("evc", 14);
    // The vxtund VTEPs are explicit passive neighbours with a password (vxtund dials; it does
    // not listen); the FRR VTEP has none.
    let mut conf = String::from(
        "frr defaults datacenter\nhostname rr\nrouter bgp 65000\n bgp router-id 192.168.77.1\n \
         no bgp default ipv4-unicast\n",
    );
    for n in [11, 12, 13, 14] {
        conf.push_str(&format!(" neighbor 192.168.77.{n} remote-as 65000\n"));
        if n != 11 {
            conf.push_str(&format!(
                " neighbor 192.168.77.{n} password {MD5_PASSWORD}\n neighbor 192.168.77.{n} passive\n"
            ));
        }
    }
    conf.push_str(" address-family l2vpn evpn\n");
    for n in [11, 12, 13, 14] {
        conf.push_str(&format!(
            "  neighbor 192.168.77.{n} activate\n  neighbor 192.168.77.{n} route-reflector-client\n"
        ));
    }
    conf.push_str(" exit-address-family\n");
    let rr = Frr::start(&rr_ns, &conf);
    let _frr = frr_vtep(&f1);
    let _h1 = host("evh", "02:00:00:00:00:11", 11, &f1, "br100", "h1");
    let right = Daemon::start(&v1, &md5_vtep_config(12, false, Some(MD5_PASSWORD)));
    // A neighbor's own password, in the table form, differing from FRR's.
    let wrong = Daemon::start(
        &v2,
        &md5_vtep_config(13, false, None).replace(
            "neighbors = [\"192.168.77.1\"]",
            "neighbors = [{ address = \"192.168.77.1\", password = \"not-the-one\" }]",
        ),
    );
    let none = Daemon::start(&v3, &md5_vtep_config(14, false, None));
    let (drops_before, _) = md5_drops(&rr_ns);

    // The right password: Established, FRR's VTEP learnt (a route from FRR), vxtund's route
    // at the reflector (a route to FRR), and a ping over the EVPN tunnel.
    let up = holds_within(Duration::from_secs(20), || {
        let show = right.show();
        show.contains("neighbor 192.168.77.1 Established") && show.contains("192.168.77.11 port")
    });
    assert!(
        up,
        "the session with the right password:\n{}\n{}",
        right.show(),
        rr.vtysh("show bgp l2vpn evpn summary")
    );
    assert!(right.show().contains(", TCP MD5"), "{}", right.show());
    wait_until(Duration::from_secs(5), "vxtund's route at FRR", || {
        rr.vtysh("show bgp l2vpn evpn route type multicast")
            .contains("192.168.77.12")
    });
    assert!(v1.pings("172.31.0.11"), "over EVPN to FRR's host");

    // A wrong password and none: never Established, for MISMATCH_WATCH.
    assert_stay_down(&[
        (
            &wrong,
            "192.168.77.1",
            "TCP MD5 is configured for this neighbor (`password`): a neighbor whose password \
             differs, or that has none, drops our segments without a word",
        ),
        (
            &none,
            "192.168.77.1",
            "no TCP MD5 `password` is configured: a neighbor that requires one drops our \
             segments without a word",
        ),
    ]);
    // FRR saw neither, and its kernel says why: wrong signatures, and missing ones.
    let summary = rr.vtysh("show bgp l2vpn evpn summary");
    let established = |peer: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(peer))
            .is_some_and(|l| !l.contains("Active") && !l.contains("Idle") && !l.contains("Connect"))
    };
    assert!(established("192.168.77.12"), "{summary}");
    assert!(
        !established("192.168.77.13") && !established("192.168.77.14"),
        "{summary}"
    );
    let routes = rr.vtysh("show bgp l2vpn evpn route");
    assert!(
        !routes.contains("192.168.77.13") && !routes.contains("192.168.77.14"),
        "routes from the VTEPs without the right password:\n{routes}"
    );
    let show = right.show();
    assert!(
        !show.contains("192.168.77.13 port") && !show.contains("192.168.77.14 port"),
        "{show}"
    );
    let (failures, not_found) = md5_drops(&rr_ns);
    assert!(
        failures > drops_before && not_found > 0,
        "FRR's kernel counted {failures} wrong and {not_found} missing signatures"
    );
    eprintln!("FRR's kernel dropped {failures} wrongly signed and {not_found} unsigned segments");
}

/// The same over an IPv6 underlay, with GoBGP (`auth-password`, passive) as the reflector
/// (FRR 8.4 refuses IPv6 type-3 originators): the right password peers and exchanges routes,
/// a wrong one never peers.
#[test]
fn md5_over_ipv6_with_gobgp() {
    if !require_tools("md5_over_ipv6_with_gobgp", true) {
        return;
    }
    let underlay = Underlay::new();
    let rr_ns = underlay.node("evr", 1);
    let v1 = underlay.node("eva", 12);
    let v2 = underlay.node("evb", 13);
    let mut conf = String::from(
        "[global.config]\n  as = 65000\n  router-id = \"192.168.77.1\"\n  \
         local-address-list = [\"fd77::1\"]\n",
    );
    for n in [12, 13] {
        conf.push_str(&format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"fd77::{n}\"\n    \
             peer-as = 65000\n    auth-password = \"{MD5_PASSWORD}\"\n  \
             [neighbors.transport.config]\n    passive-mode = true\n  \
             [neighbors.route-reflector.config]\n    route-reflector-client = true\n    \
             route-reflector-cluster-id = \"192.168.77.1\"\n  [[neighbors.afi-safis]]\n    \
             [neighbors.afi-safis.config]\n      afi-safi-name = \"l2vpn-evpn\"\n"
        ));
    }
    let rr = GoBgp::start(&rr_ns, &conf);
    let right = Daemon::start(&v1, &md5_vtep_config(12, true, Some(MD5_PASSWORD)));
    let wrong = Daemon::start(&v2, &md5_vtep_config(13, true, Some("not-the-one")));
    let up = holds_within(Duration::from_secs(20), || {
        right.show().contains("neighbor fd77::1 Established")
    });
    assert!(
        up,
        "the session with the right password:\n{}\n{}",
        right.show(),
        rr.cli(&["neighbor"])
    );
    // Routes both ways: vxtund's type-3 at GoBGP; GoBGP's own type-3 at vxtund.
    wait_until(Duration::from_secs(5), "vxtund's route at GoBGP", || {
        rr.cli(&["global", "rib", "-a", "evpn"])
            .contains("tunnel-id: fd77::12")
    });
    let out = rr.cli(&[
        "global",
        "rib",
        "-a",
        "evpn",
        "add",
        "multicast",
        "fd77::20",
        "etag",
        "0",
        "rd",
        "192.168.77.20:1",
        "rt",
        "65000:100",
        "encap",
        "vxlan",
        "pmsi",
        "ingress-repl",
        "100",
        "fd77::20",
    ]);
    assert!(!out.contains("rror"), "{out}");
    wait_until(Duration::from_secs(5), "GoBGP's route at vxtund", || {
        right.show().contains("fd77::20 port")
    });
    assert_stay_down(&[(
        &wrong,
        "fd77::1",
        "TCP MD5 is configured for this neighbor (`password`)",
    )]);
    let rib = rr.cli(&["global", "rib", "-a", "evpn"]);
    assert!(!rib.contains("fd77::13"), "{rib}");
    let (failures, _) = md5_drops(&rr_ns);
    assert!(failures > 0, "GoBGP's kernel counted no wrong signature");
}
