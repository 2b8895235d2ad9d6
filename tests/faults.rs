//! Underlay faults survived: the link down and up, the local address removed and added back,
//! the route to the peer removed and restored, the peer killed with SIGKILL and restarted while
//! ICMP errors storm back. Each test asserts that pings across the tunnel work again within
//! a few seconds of the underlay's return, that vxtund is still running, that the errors were
//! counted per reason and that the incident was logged once, not once per packet. Each runs
//! over an IPv4 and over an IPv6 underlay. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Netns, Pair};

/// How soon after the underlay's return pings must get through again.
const RECOVERY: Duration = Duration::from_secs(3);

/// The underlay's addresses: a's, b's, and the prefix length.
#[derive(Clone, Copy)]
struct Underlay {
    a: &'static str,
    b: &'static str,
    len: u8,
}

const V4: Underlay = Underlay {
    a: "192.168.202.1",
    b: "192.168.202.2",
    len: 24,
};

const V6: Underlay = Underlay {
    a: "fd00:202::1",
    b: "fd00:202::2",
    len: 64,
};

impl Underlay {
    /// a's address with its prefix length.
    fn a_cidr(self) -> String {
        format!("{}/{}", self.a, self.len)
    }

    /// The underlay's subnet.
    fn subnet(self) -> &'static str {
        match self.len {
            24 => "192.168.202.0/24",
            _ => "fd00:202::/64",
        }
    }
}

/// What a pair of this suite is made of: one tunnel of `kind` over `underlay`.
#[derive(Clone, Copy)]
struct Link {
    kind: &'static str,
    underlay: Underlay,
}

fn config(kind: &str, local: &str, remote: &str, tap: &str) -> String {
    format!(
        r#"
        [device]
        name = "vxt0"
        addresses = ["{tap}/24"]
        [underlay]
        local = "{local}"
        [[tunnel]]
        name = "peer"
        type = "{kind}"
        remote = "{remote}"
        [flows]
        rules = ["actions=normal"]
        "#
    )
}

/// Two segments, `a` (TAP 10.78.0.1) and `b` (TAP 10.78.0.2), each a vxtund whose TAP holds
/// the host address (no bridge), joined by one tunnel of `kind` over `underlay`.
impl Pair<Link> {
    fn of_link(kind: &'static str, underlay: Underlay) -> Pair<Link> {
        let (ua, ub) = (
            underlay.a_cidr(),
            format!("{}/{}", underlay.b, underlay.len),
        );
        let hosts = common::two_hosts("fa", &ua, &ub);
        let a = config(kind, underlay.a, underlay.b, "10.78.0.1");
        let mut p = Pair::one_sided(hosts, &a).with(Link { kind, underlay });
        p.start_b();
        assert!(
            p.a.pings("10.78.0.2"),
            "a -> b before any fault\n{}",
            p.da.log()
        );
        p
    }

    fn start_b(&mut self) {
        let Link { kind, underlay } = self.extra;
        self.db = Some(Daemon::start(
            &self.b,
            &config(kind, underlay.b, underlay.a, "10.78.0.2"),
        ));
    }

    /// Sends pings from a to b for a while (at most `secs`), whatever they get back.
    fn traffic(&self, secs: &str) {
        self.a.exec(
            "ping",
            &["-q", "-i", "0.02", "-W", "0.1", "-w", secs, "10.78.0.2"],
        );
    }

    /// Pings b from a until one answer comes back; how long that took. Panics after 30 s.
    fn time_to_recover(&self) -> Duration {
        let start = Instant::now();
        loop {
            let ok = self
                .a
                .exec("ping", &["-c", "1", "-W", "0.2", "-q", "10.78.0.2"])
                .status
                .success();
            if ok {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no answer 30 s after the underlay came back\n{}",
                self.da.log()
            );
        }
    }

    /// Asserts that pings work again within [`RECOVERY`], then keeps traffic going past the
    /// incidents' quiet time so that the recovery is logged.
    fn assert_recovers(&self, fault: &str) {
        let took = self.time_to_recover();
        eprintln!("{fault}: pings answered {took:?} after the underlay's return");
        assert!(
            took <= RECOVERY,
            "{fault}: pings came back after {took:?}\n{}",
            self.da.log()
        );
        self.traffic("3");
        assert!(self.a.pings("10.78.0.2"), "{fault}: steady again");
    }
}

/// Whether process `pid` is alive (not gone, not a zombie).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Lines of `log` containing `what`.
fn count(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

/// One fault on a's side of the underlay: `break_it`, traffic into the broken underlay,
/// `mend_it`; then pings must recover, vxtund must be up, its send errors on the tunnel port
/// counted under `reason` and logged as one incident.
fn survives(
    test: &str,
    underlay: Underlay,
    break_it: &[&[&str]],
    mend_it: &[&[&str]],
    reason: &str,
) {
    if !common::require_root(test) {
        return;
    }
    let mut p = Pair::of_link("vxlan", underlay);
    if underlay.len != 24 {
        let keep = "net.ipv6.conf.ul0.keep_addr_on_down=1";
        assert!(p.a.exec("sysctl", &["-qw", keep]).status.success());
    }
    for args in break_it {
        p.a.ip(args);
    }
    p.traffic("2");
    for args in mend_it {
        p.a.ip(args);
    }
    p.assert_recovers(test);
    assert!(running(p.da.pid()), "{test}: vxtund is still running");
    let stats = p.da.stats();
    let port = &stats["port 2 peer"];
    let key = format!("tx_errors_{reason}");
    assert!(
        port.get(&key).copied().unwrap_or(0) >= 10 && port["tx_errors"] >= port[&key],
        "{test}: send errors counted as {key}: {port:?}"
    );
    let log = p.da.log();
    if std::env::var_os("FAULTS_LOG").is_some() {
        eprintln!("{log}");
    }
    assert_eq!(
        count(&log, "sends failing"),
        1,
        "{test}: one incident, logged once\n{log}"
    );
    assert_eq!(
        count(&log, "sends recovered after"),
        1,
        "{test}: its end logged once\n{log}"
    );
    assert!(
        log.contains(&format!("(first: {reason})")),
        "{test}: the reason\n{log}"
    );
}

/// The link down and up. Over IPv6 the kernel flushes a link's addresses when it goes down
/// (`keep_addr_on_down` = 0) and does not put them back: nothing could send from them again,
/// vxtund no more than the kernel's vxlan. So the IPv6 underlay keeps them, as a host that
/// wants its underlay to survive a link flap is set up (or its network manager adds them back,
/// which `ipv6_local_address_removed_and_added_back` covers).
fn link_down_and_up(test: &str, underlay: Underlay) {
    survives(
        test,
        underlay,
        &[&["link", "set", "ul0", "down"]],
        &[&["link", "set", "ul0", "up"]],
        "enetunreach",
    );
}

#[test]
fn underlay_link_down_and_up() {
    link_down_and_up("underlay_link_down_and_up", V4);
}

#[test]
fn ipv6_underlay_link_down_and_up() {
    link_down_and_up("ipv6_underlay_link_down_and_up", V6);
}

fn address_removed_and_added_back(test: &str, underlay: Underlay, reason: &str) {
    let cidr = underlay.a_cidr();
    survives(
        test,
        underlay,
        &[&["addr", "del", &cidr, "dev", "ul0"]],
        &[&["addr", "add", &cidr, "dev", "ul0"]],
        reason,
    );
}

#[test]
fn local_address_removed_and_added_back() {
    address_removed_and_added_back("local_address_removed_and_added_back", V4, "enetunreach");
}

#[test]
fn ipv6_local_address_removed_and_added_back() {
    address_removed_and_added_back(
        "ipv6_local_address_removed_and_added_back",
        V6,
        "enetunreach",
    );
}

fn route_removed_and_restored(test: &str, underlay: Underlay) {
    let subnet = underlay.subnet();
    let restore: Vec<&str> = match underlay.len {
        24 => vec![
            "route", "add", subnet, "dev", "ul0", "proto", "kernel", "scope", "link", "src",
            underlay.a,
        ],
        _ => vec![
            "route", "add", subnet, "dev", "ul0", "proto", "kernel", "metric", "256",
        ],
    };
    survives(
        test,
        underlay,
        &[&["route", "del", subnet, "dev", "ul0"]],
        &[&restore],
        "enetunreach",
    );
}

#[test]
fn route_to_the_peer_removed_and_restored() {
    route_removed_and_restored("route_to_the_peer_removed_and_restored", V4);
}

#[test]
fn ipv6_route_to_the_peer_removed_and_restored() {
    route_removed_and_restored("ipv6_route_to_the_peer_removed_and_restored", V6);
}

/// The MAC of b's TAP.
fn tap_mac(ns: &Netns) -> String {
    let out = ns.ip(&["-brief", "link", "show", "vxt0"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned()
}

/// The peer killed with SIGKILL, a flood of pings at it while it is away (ICMP errors come
/// back: port unreachable for VXLAN, protocol unreachable for GRE), then restarted: its TAP
/// has the same MAC as before, so a's neighbour entry still holds and pings get through
/// within a couple of seconds (with a new random MAC it took about 25 s); a logs a bounded
/// number of lines.
fn peer_killed_and_restarted(test: &str, kind: &'static str, underlay: Underlay) {
    if !common::require_root(test) {
        return;
    }
    let mut p = Pair::of_link(kind, underlay);
    let mac = tap_mac(&p.b);
    // Dropping the daemon kills it with SIGKILL (and reaps it).
    drop(p.db.take());
    let lines_before = p.da.log().lines().count();
    p.a.exec("ping", &["-q", "-f", "-w", "3", "10.78.0.2"]);
    p.start_b();
    assert_eq!(
        tap_mac(&p.b),
        mac,
        "{test}: the restarted TAP keeps its MAC"
    );
    p.assert_recovers(test);
    assert!(running(p.da.pid()), "{test}: vxtund is still running");
    let log = p.da.log();
    if std::env::var_os("FAULTS_LOG").is_some() {
        eprintln!("{log}");
    }
    let new_lines = log.lines().count() - lines_before;
    assert!(
        new_lines <= 6,
        "{test}: {new_lines} log lines for one peer restart\n{log}"
    );
    let stats = p.da.stats();
    assert!(
        stats["port 2 peer"]["tx_packets"] > 100,
        "{test}: the flood went out: {stats:?}"
    );
}

#[test]
fn vxlan_peer_killed_and_restarted() {
    peer_killed_and_restarted("vxlan_peer_killed_and_restarted", "vxlan", V4);
}

#[test]
fn gre_peer_killed_and_restarted() {
    peer_killed_and_restarted("gre_peer_killed_and_restarted", "gre", V4);
}

#[test]
fn vxlan_peer_killed_and_restarted_over_ipv6() {
    peer_killed_and_restarted("vxlan_peer_killed_and_restarted_over_ipv6", "vxlan", V6);
}

#[test]
fn gre_peer_killed_and_restarted_over_ipv6() {
    peer_killed_and_restarted("gre_peer_killed_and_restarted_over_ipv6", "gre", V6);
}

/// The MAC choice on a TAP vxtund did not create: without `device.mac` it keeps its own, with
/// it it gets the configured one; a TAP vxtund creates gets the derived MAC, the same at every
/// start.
#[test]
fn tap_mac_configured_derived_or_kept() {
    if !common::require_root("tap_mac_configured_derived_or_kept") {
        return;
    }
    let (a, _b) = common::two_hosts("fm", "192.168.202.1/24", "192.168.202.2/24");
    let mac_of = |name: &str| {
        let out = a.ip(&["-brief", "link", "show", name]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned()
    };
    let config = |name: &str, mac: &str| {
        format!(
            "[device]\nname = \"{name}\"\n{mac}\n[underlay]\nlocal = \"192.168.202.1\"\n\
             [[tunnel]]\nname = \"b\"\ntype = \"vxlan\"\nremote = \"192.168.202.2\"\n"
        )
    };
    // Created by vxtund: derived, the same at the next start.
    let mut derived = Vec::new();
    for _ in 0..2 {
        let d = Daemon::start(&a, &config("vxt0", ""));
        derived.push(mac_of("vxt0"));
        assert!(d.stop().success());
    }
    assert_eq!(derived[0], derived[1], "stable across restarts");
    assert!(
        u8::from_str_radix(&derived[0][..2], 16).unwrap() & 3 == 2,
        "locally administered unicast: {}",
        derived[0]
    );
    // A persistent TAP keeps its own MAC unless the config names one.
    a.ip(&["tuntap", "add", "dev", "vxt9", "mode", "tap"]);
    a.ip(&["link", "set", "vxt9", "address", "02:11:22:33:44:55"]);
    let d = Daemon::start(&a, &config("vxt9", ""));
    assert_eq!(mac_of("vxt9"), "02:11:22:33:44:55");
    assert!(d.stop().success());
    let d = Daemon::start(&a, &config("vxt9", "mac = \"02:66:77:88:99:aa\""));
    assert_eq!(mac_of("vxt9"), "02:66:77:88:99:aa");
    assert!(d.stop().success());
}

/// `txqueuelen` on a persistent TAP (one vxtund did not create, already up) is set too, and
/// stays when vxtund stops; unset, such a device keeps its own (not vxtund's default).
#[test]
fn txqueuelen_on_a_persistent_tap() {
    if !common::require_root("txqueuelen_on_a_persistent_tap") {
        return;
    }
    let (a, _b) = common::two_hosts("fq", "192.168.206.1/24", "192.168.206.2/24");
    let config = |len: u32| {
        format!(
            "[device]\nname = \"vxt9\"\ntxqueuelen = {len}\n[underlay]\n\
             local = \"192.168.206.1\"\n[[tunnel]]\nname = \"b\"\ntype = \"vxlan\"\n\
             remote = \"192.168.206.2\"\n"
        )
    };
    let qlen = || a.link_attr("vxt9", "tx_queue_len");
    a.ip(&["tuntap", "add", "dev", "vxt9", "mode", "tap"]);
    a.ip(&["link", "set", "vxt9", "up"]);
    let d = Daemon::start(&a, &config(3000));
    assert_eq!(qlen(), "3000", "{}", d.log());
    assert!(d.stop().success());
    assert_eq!(
        qlen(),
        "3000",
        "the device outlives vxtund, its length with it"
    );
    // Unset: a device vxtund did not create keeps its own length (the default is for the
    // TAPs it creates).
    let unset = config(0).replace("txqueuelen = 0\n", "");
    let d = Daemon::start(&a, &unset);
    assert_eq!(qlen(), "3000", "{}", d.log());
    assert!(d.stop().success());
}
