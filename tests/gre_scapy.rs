//! GRE checked against an implementation nobody here wrote: scapy (Debian's python3-scapy) is
//! the far end. It sends Ethernet-over-GRE packets, with and without key, checksum and sequence
//! number, that vxtund must decapsulate, and dissects what vxtund sends back. Needs root.

mod common;

use std::path::Path;

use common::{Daemon, Netns};
use serde_json::Value;

const PEER_MAC: &str = "02:00:00:00:00:02";

/// Makes `ip`, on the TAP's side, the peer's MAC for good: frames to it leave by the tunnel
/// without ARP.
fn peer_neighbour(ns: &Netns, ip: &str) {
    ns.ip(&[
        "neigh",
        "add",
        ip,
        "lladdr",
        PEER_MAC,
        "dev",
        "vxt0",
        "nud",
        "permanent",
    ]);
}

fn scapy_available() -> bool {
    let ok = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import scapy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "\n*** FAILING: /usr/bin/python3 has no scapy (apt-get install python3-scapy; scripts/setup.sh does) ***\n");
    }
    ok
}

#[test]
fn scapy_gre_packets_are_decapsulated_and_vxtund_output_dissects_cleanly() {
    if !common::require_root(
        "scapy_gre_packets_are_decapsulated_and_vxtund_output_dissects_cleanly",
    ) {
        return;
    }
    assert!(scapy_available(), "scapy is needed for this test");
    let (a, b) = common::two_hosts("g", "192.168.203.1/24", "192.168.203.2/24");
    let mut daemon = Daemon::start(
        &a,
        r#"
        [device]
        name = "vxt0"
        addresses = ["10.78.0.1/24"]
        [underlay]
        local = "192.168.203.1"
        [[tunnel]]
        name = "plain"
        type = "gre"
        remote = "192.168.203.2"
        [[tunnel]]
        name = "keyed"
        type = "gre"
        remote = "192.168.203.2"
        key = 77
        csum = true
        seq = true
        df = "unset"
        "#,
    );
    peer_neighbour(&a, "10.78.0.2");
    let link = String::from_utf8(a.ip(&["-o", "link", "show", "vxt0"]).stdout).unwrap();
    let tap_mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap()
        .to_string();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scapy/gre_peer.py");
    let out = b.exec(
        "/usr/bin/python3",
        &[
            script.to_str().unwrap(),
            &tap_mac,
            "192.168.203.2",
            "192.168.203.1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scapy peer failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let echo_replies = |name: &str| -> Vec<Value> {
        let case = cases
            .iter()
            .find(|c| c["case"] == name)
            .unwrap_or_else(|| panic!("no case {name}: {stdout}"));
        case["replies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["icmp_id"] == 0x4242)
            .cloned()
            .collect()
    };

    // Every reply: Ethernet over GRE v0, no routing, from our local to the peer, and an
    // ICMP echo reply carrying the request's id, sequence and payload to the peer's MAC.
    let mut seqs = Vec::new();
    for (n, name) in ["plain", "key", "key_csum", "key_csum_seq"]
        .iter()
        .enumerate()
    {
        let replies = echo_replies(name);
        assert_eq!(
            replies.len(),
            1,
            "{name}: one echo reply expected: {stdout}\n{}",
            daemon.log()
        );
        let r = &replies[0];
        assert_eq!(r["proto"], 0x6558, "{name}: {r}");
        assert_eq!(r["version"], 0, "{name}: {r}");
        assert_eq!(r["routing_present"], 0, "{name}: {r}");
        assert_eq!(
            (r["outer_src"].as_str(), r["outer_dst"].as_str()),
            (Some("192.168.203.1"), Some("192.168.203.2"))
        );
        assert_eq!(r["inner_dst"], PEER_MAC, "{name}: {r}");
        assert_eq!(r["inner_src"], tap_mac.as_str(), "{name}: {r}");
        assert_eq!(
            (r["icmp_type"].as_u64(), r["icmp_seq"].as_u64()),
            (Some(0), Some(n as u64 + 1)),
            "{name}: {r}"
        );
        assert_eq!(r["payload_ok"], true, "{name}: {r}");
        // The plain tunnel keeps the default df = "set"; the keyed one says df = "unset".
        // The first has its outer header written by vxtund, the second by the kernel: both
        // must be sound, with the namespace's default TTL.
        assert_eq!(r["outer_df"], *name == "plain", "{name}: outer DF: {r}");
        assert_eq!(r["outer_header_ok"], true, "{name}: {r}");
        assert_eq!(r["outer_ttl"], 64, "{name}: {r}");
        if *name == "plain" {
            // Answered by the tunnel without key: no options at all.
            assert_eq!(
                (
                    r["key"].is_null(),
                    r["csum_present"].as_bool(),
                    r["seq"].is_null()
                ),
                (true, Some(false), true),
                "{r}"
            );
        } else {
            // Answered by the keyed tunnel: key 77, a checksum scapy finds correct, a sequence number.
            assert_eq!(r["key"], 77, "{name}: {r}");
            assert_eq!(r["csum_present"], true, "{name}: {r}");
            assert_eq!(r["csum_ok"], true, "{name}: {r}");
            seqs.push(r["seq"].as_u64().expect("a sequence number"));
        }
    }
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "sequence numbers must increase: {seqs:?}"
    );

    for name in [
        "wrong_key",
        "bad_checksum",
        "version_1",
        "routing",
        "not_ethernet",
    ] {
        assert!(
            echo_replies(name).is_empty(),
            "{name} must not be answered: {stdout}"
        );
    }
    let stats = daemon.stats();
    let drops = &stats["drops"];
    assert_eq!(drops["gre_wrong_key"], 6, "{drops:?}");
    assert_eq!(drops["gre_bad_checksum"], 6, "{drops:?}");
    assert_eq!(
        drops["gre_bad_header"], 12,
        "version 1 and routing: {drops:?}"
    );
    assert_eq!(drops["gre_not_ethernet"], 6, "{drops:?}");
    assert_eq!(stats["port 2 plain"]["rx_packets"], 1, "{stats:?}");
    assert_eq!(stats["port 3 keyed"]["rx_packets"], 3, "{stats:?}");
}

#[test]
fn without_cap_net_raw_gre_fails_with_a_clear_message() {
    if !common::require_root("without_cap_net_raw_gre_fails_with_a_clear_message") {
        return;
    }
    let (a, _b) = common::two_hosts("c", "192.168.204.1/24", "192.168.204.2/24");
    let dir = std::env::temp_dir().join(common::unique("cap"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gre.toml");
    std::fs::write(&config, "underlay.local = \"192.168.204.1\"\n[[tunnel]]\nname = \"g\"\ntype = \"gre\"\nremote = \"192.168.204.2\"\n").unwrap();
    let out = a.exec(
        "setpriv",
        &[
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            env!("CARGO_BIN_EXE_vxtund"),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "vxtund must refuse to run: {stderr}");
    assert!(
        stderr.contains("opening a raw GRE socket on 192.168.204.1")
            && stderr.contains("GRE tunnels need CAP_NET_RAW"),
        "{stderr}"
    );
    assert!(
        !a.exec("ip", &["link", "show", "vxt0"]).status.success(),
        "no TAP left behind"
    );
}

#[test]
fn gre_with_df_is_routed_by_its_protocol() {
    // vxtund writes the outer header of IPv4 GRE with DF itself; the kernel must still route
    // those packets (and match IPsec policies) as GRE, as it does those it builds: here an
    // `ip rule ipproto gre` sends them into a blackhole, and every send must fail.
    if !common::require_root("gre_with_df_is_routed_by_its_protocol") {
        return;
    }
    let (a, _b) = common::two_hosts("p", "192.168.205.1/24", "192.168.205.2/24");
    let mut daemon = Daemon::start(
        &a,
        r#"
        [device]
        name = "vxt0"
        addresses = ["10.79.0.1/24"]
        [underlay]
        local = "192.168.205.1"
        [[tunnel]]
        name = "g"
        type = "gre"
        remote = "192.168.205.2"
        "#,
    );
    peer_neighbour(&a, "10.79.0.2");
    let ping = || {
        a.exec("ping", &["-c", "2", "-i", "0.2", "-W", "1", "10.79.0.2"]);
    };
    let counter = |daemon: &mut Daemon, name: &str| daemon.stats()["port 2 g"][name];
    ping();
    assert!(counter(&mut daemon, "tx_packets") >= 2);
    assert_eq!(counter(&mut daemon, "tx_errors"), 0, "{}", daemon.log());
    a.ip(&[
        "rule", "add", "ipproto", "gre", "table", "100", "pref", "100",
    ]);
    a.ip(&["route", "add", "blackhole", "192.168.205.2", "table", "100"]);
    ping();
    assert!(
        counter(&mut daemon, "tx_errors") >= 2,
        "GRE sends must meet the ipproto gre rule: {:?}",
        daemon.stats()["port 2 g"]
    );
}
