//! Configuration: the shipped scenario files load, and every class of mistake is reported with
//! the file, line and column and a message saying what is wrong.

mod common;

use std::path::Path;

use vxtund::config::{Config, ConfigError, FlowSpread, InnerChecksum, Neighbor};
use vxtund::flow::PortNo;
use vxtund::switch::PortKind;

const BASE: &str = r#"
[device]
name = "vxt0"

[underlay]
local = "192.168.200.101"

[[tunnel]]
name = "tun_kl"
type = "vxlan"
remote = "192.168.200.102"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("seg.toml"), text)
}

/// Asserts that `text` fails at `line:col` with a message containing `needle`.
fn fails(text: &str, line: usize, col: usize, needle: &str) {
    let e = parse(text).expect_err("config should be refused");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("seg.toml:{line}:{col}: ")),
        "wrong position: {shown}"
    );
    assert!(shown.contains(needle), "message lacks `{needle}`: {shown}");
}

#[test]
fn shipped_scenario_configs_load() {
    for (file, tunnels) in [("seg1.toml", 2), ("seg2.toml", 1), ("seg3.toml", 1)] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(file);
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tunnels().count(), tunnels, "{file}");
        assert_eq!(c.device.bridge.as_deref(), Some("br-lan"));
        assert_eq!(c.flows.len(), if tunnels == 2 { 8 } else { 6 });
    }
}

#[test]
fn defaults_and_port_numbering() {
    let c = parse(&format!(
        "{BASE}\n[[tunnel]]\nname = \"b\"\ntype = \"vxlan\"\nremote = \"192.168.200.9\"\nport = 2\nvni = 77\ndst_port = 4789\n"
    ))
    .unwrap();
    let kl = c.ports.iter().find(|p| p.name == "tun_kl").unwrap();
    let b = c.ports.iter().find(|p| p.name == "b").unwrap();
    assert_eq!(
        (kl.no, b.no),
        (PortNo(3), PortNo(2)),
        "explicit numbers are kept, others skip them"
    );
    let PortKind::Vxlan(t) = &kl.kind else {
        panic!()
    };
    assert_eq!((t.vni, t.dst_port), (0, 8472));
    let PortKind::Vxlan(t) = &b.kind else {
        panic!()
    };
    assert_eq!((t.vni, t.dst_port), (77, 4789));
    assert_eq!(c.flows.len(), 1);
    assert_eq!(
        c.flows[0].to_string(),
        "actions=normal",
        "no [flows] means a learning switch"
    );
}

#[test]
fn syntax_error() {
    fails("[device\nname = 1\n", 1, 8, "");
}

#[test]
fn unknown_key() {
    fails(
        &BASE.replace("name = \"vxt0\"", "name = \"vxt0\"\nmtuu = 1400"),
        4,
        1,
        "unknown field `mtuu`",
    );
}

/// `config::accepted_keys` is what the parser takes: each key it lists gets past serde (set to
/// a value of the wrong type, it is refused for its value, never as unknown), and a key it
/// does not list is refused as unknown in every table.
#[test]
fn accepted_keys_are_the_keys_the_parser_takes() {
    let every_table = format!(
        "{BASE}\n[flows]\n[control]\n[openflow]\n[metrics]\n[evpn]\nasn = 65000\n\
         neighbors = [\"192.168.200.1\"]\nvni = 100\n"
    );
    let base: toml::Table = every_table.parse().unwrap();
    assert!(parse(&every_table).is_ok());
    let with = |table: &str, key: &str| {
        let mut doc = base.clone();
        let section = match doc.get_mut(table) {
            Some(toml::Value::Table(t)) => t,
            Some(toml::Value::Array(a)) => a[0].as_table_mut().unwrap(),
            _ => panic!("no table `{table}` in the test's config"),
        };
        section.insert(key.to_owned(), toml::Value::Table(toml::Table::new()));
        toml::to_string(&doc).unwrap()
    };
    let keys = vxtund::config::accepted_keys();
    let mut tables: Vec<&str> = keys.iter().map(|(t, _)| *t).collect();
    tables.dedup();
    assert_eq!(
        tables,
        ["device", "underlay", "tunnel", "flows", "control", "openflow", "metrics", "evpn"]
    );
    for (table, key) in &keys {
        if let Err(e) = parse(&with(table, key)) {
            assert!(
                !e.to_string().contains("unknown field"),
                "{table}.{key}: {e}"
            );
        }
    }
    for table in tables {
        let e = parse(&with(table, "no_such_key")).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `no_such_key`"),
            "{table}: {e}"
        );
    }
}

#[test]
fn missing_section() {
    let e = parse("[device]\nname = \"vxt0\"\n").unwrap_err();
    assert!(e.to_string().contains("missing field `underlay`"), "{e}");
}

#[test]
fn bad_addresses() {
    fails(
        &BASE.replace("\"192.168.200.102\"", "\"192.168.200.300\""),
        11,
        10,
        "not an IPv4 or IPv6 address",
    );
    fails(
        &BASE.replace("local = \"192.168.200.101\"", "local = \"here\""),
        6,
        9,
        "`here` is not an IPv4",
    );
    fails(
        &BASE.replace("\"192.168.200.102\"", "\"2001:db8::2\""),
        11,
        10,
        "underlay.local has no IPv6 address",
    );
    fails(
        &BASE.replace("\"192.168.200.102\"", "\"192.168.200.101\""),
        11,
        10,
        "another host's unicast",
    );
    fails(
        &BASE.replace(
            "name = \"vxt0\"",
            "name = \"vxt0\"\naddresses = [\"10.0.0.1\"]",
        ),
        4,
        14,
        "ADDRESS/PREFIX",
    );
}

#[test]
fn duplicate_tunnel_name_and_endpoint() {
    let dup = format!(
        "{BASE}\n[[tunnel]]\nname = \"tun_kl\"\ntype = \"vxlan\"\nremote = \"192.168.200.9\"\n"
    );
    fails(&dup, 14, 8, "duplicate tunnel name `tun_kl`");
    let same = format!(
        "{BASE}\n[[tunnel]]\nname = \"x\"\ntype = \"vxlan\"\nremote = \"192.168.200.102\"\n"
    );
    fails(
        &same,
        13,
        1,
        "another tunnel already goes to 192.168.200.102 port 8472 with vni 0",
    );
}

#[test]
fn bad_tunnel_fields() {
    fails(
        &BASE.replace("type = \"vxlan\"", "type = \"geneve\""),
        10,
        8,
        "unknown tunnel type `geneve`",
    );
    fails(
        &format!("{BASE}vni = 16777216\n"),
        12,
        7,
        "larger than 16777215",
    );
    fails(&format!("{BASE}dst_port = 70000\n"), 12, 12, "");
    fails(&format!("{BASE}port = 1\n"), 12, 8, "numbered from 2");
    fails(
        &BASE.replace("name = \"tun_kl\"", "name = \"LOCAL\""),
        9,
        8,
        "taken by the device",
    );
    fails(
        &BASE.replace("name = \"tun_kl\"", "name = \"42\""),
        9,
        8,
        "must not be a number",
    );
    fails(
        &BASE.replace("name = \"tun_kl\"", "name = \"a,b\""),
        9,
        8,
        "may only hold",
    );
    fails(
        &BASE.replace("name = \"vxt0\"", "name = \"a-very-long-device-name\""),
        3,
        8,
        "1 to 15 bytes",
    );
}

#[test]
fn bad_flows_point_into_the_rule() {
    let flows = |rule: &str| {
        format!("{BASE}\n[flows]\nrules = [\n  \"arp,actions=flood\",\n  \"{rule}\",\n]\n")
    };
    fails(
        &flows("ip,actions=output:tun_xx"),
        16,
        15,
        "unknown port `tun_xx`",
    );
    fails(&flows("ip,actions=output:7"), 16, 15, "unknown port 7");
    fails(
        &flows("ip,nw_dst=172.31.2.0/40,actions=drop"),
        16,
        7,
        "IPv4 address or prefix",
    );
    fails(&flows("ipx,actions=drop"), 16, 4, "unknown keyword `ipx`");
    fails(
        &flows("ip,nw_dst=172.31.2.0/24"),
        16,
        27,
        "missing `actions=`",
    );
}

#[test]
fn flows_with_ports_arp_addresses_cookies_and_local() {
    let c = parse(&format!(
        "{BASE}\n[flows]\nrules = [\n  \"arp,arp_tpa=172.31.2.0/24,actions=output:tun_kl\",\n  \"cookie=0x7,priority=200,tcp,nw_dst=172.31.1.0/24,tp_dst=22,actions=LOCAL\",\n  \"udp,udp_dst=53,actions=drop\",\n]\n"
    ))
    .unwrap();
    let printed: Vec<String> = c.flows.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        printed,
        [
            "arp,arp_tpa=172.31.2.0/24,actions=output:2",
            "cookie=0x7,priority=200,tcp,nw_dst=172.31.1.0/24,tp_dst=22,actions=LOCAL",
            "udp,tp_dst=53,actions=drop",
        ]
    );
    assert_eq!(c.flows[1].cookie, 7);
    assert_eq!(c.flows[2].matches.tp_dst, Some(53));
    let flows = |rule: &str| {
        format!("{BASE}\n[flows]\nrules = [\n  \"arp,actions=flood\",\n  \"{rule}\",\n]\n")
    };
    fails(
        &flows("ip,tp_dst=80,actions=drop"),
        16,
        7,
        "`tp_dst` needs `tcp`, `udp`, `tcp6` or `udp6`",
    );
    fails(
        &flows("ip,arp_tpa=10.0.0.1,actions=drop"),
        16,
        7,
        "`arp_tpa` needs `arp`",
    );
}

#[test]
fn bad_mtu_and_learning_settings() {
    fails(
        &BASE.replace("name = \"vxt0\"", "name = \"vxt0\"\nmtu = 10"),
        4,
        7,
        "below the minimum",
    );
    fails(
        &format!("{BASE}\n[flows]\nmac_ageing = 0\n"),
        14,
        14,
        "at least 1 second",
    );
}

#[test]
fn unreadable_file_names_the_file() {
    let e = Config::load(Path::new("/nonexistent/seg9.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/seg9.toml: cannot read the file"),
        "{e}"
    );
}

#[test]
fn tunnel_mtu_follows_the_encapsulation_and_underlay_family() {
    use vxtund::config::tunnel_mtu;
    use vxtund::switch::{GreTunnel, VxlanTunnel};
    let v4 = "192.168.200.102".parse().unwrap();
    let v6 = "2001:db8::2".parse().unwrap();
    let vxlan = |remote| {
        PortKind::Vxlan(VxlanTunnel {
            remote,
            vni: 0,
            dst_port: 8472,
        })
    };
    let gre = |remote, key: Option<u32>, csum, seq| {
        PortKind::Gre(GreTunnel {
            remote,
            key,
            csum,
            seq,
        })
    };
    // The rows of docs/scenario.md's overhead table, and their IPv6-underlay twins (20 bytes
    // more).
    assert_eq!(tunnel_mtu(1500, &vxlan(v4)), 1450);
    assert_eq!(tunnel_mtu(1500, &gre(v4, None, false, false)), 1462);
    assert_eq!(tunnel_mtu(1500, &gre(v4, Some(1), false, false)), 1458);
    assert_eq!(tunnel_mtu(1500, &vxlan(v6)), 1430);
    assert_eq!(tunnel_mtu(1500, &gre(v6, None, false, false)), 1442);
    assert_eq!(tunnel_mtu(1500, &gre(v6, Some(1), false, false)), 1438);
    assert_eq!(
        tunnel_mtu(1500, &gre(v4, Some(1), true, true)),
        1450,
        "key, csum and seq: 4 bytes each"
    );
    assert_eq!(tunnel_mtu(9000, &vxlan(v4)), 8950);
}

#[test]
fn gre_tunnels_and_both_address_families() {
    let c = parse(
        r#"
        [underlay]
        local = ["192.168.200.101", "2001:db8:200::101"]
        [[tunnel]]
        name = "v6"
        type = "vxlan"
        remote = "2001:db8:200::102"
        [[tunnel]]
        name = "g"
        type = "gre"
        remote = "192.168.200.103"
        key = 42
        csum = true
        seq = true
        [[tunnel]]
        name = "g2"
        type = "gre"
        remote = "192.168.200.103"
        "#,
    )
    .unwrap();
    assert_eq!(c.underlay.local.len(), 2);
    let g = c.ports.iter().find(|p| p.name == "g").unwrap();
    assert_eq!(
        g.kind,
        PortKind::Gre(vxtund::switch::GreTunnel {
            remote: "192.168.200.103".parse().unwrap(),
            key: Some(42),
            csum: true,
            seq: true
        })
    );
    assert_eq!(
        c.underlay.local_for("2001:db8:200::102".parse().unwrap()),
        Some("2001:db8:200::101".parse().unwrap())
    );
}

#[test]
fn gre_and_family_mistakes() {
    let gre = BASE.replace("type = \"vxlan\"", "type = \"gre\"");
    fails(
        &format!("{gre}vni = 5\n"),
        12,
        7,
        "`vni` applies only to vxlan tunnels",
    );
    fails(
        &format!("{gre}dst_port = 5\n"),
        12,
        12,
        "`dst_port` applies only to vxlan",
    );
    fails(
        &format!("{BASE}key = 5\n"),
        12,
        7,
        "`key` applies only to gre tunnels",
    );
    fails(
        &format!("{BASE}csum = true\n"),
        12,
        8,
        "`csum` applies only to gre",
    );
    fails(&format!("{gre}key = -1\n"), 12, 7, "");
    let twin =
        format!("{gre}\n[[tunnel]]\nname = \"x\"\ntype = \"gre\"\nremote = \"192.168.200.102\"\n");
    fails(&twin, 13, 1, "tell them apart by key");
    let keyed = format!("{gre}key = 1\n\n[[tunnel]]\nname = \"x\"\ntype = \"gre\"\nremote = \"192.168.200.102\"\nkey = 2\n");
    assert!(
        parse(&keyed).is_ok(),
        "two GRE tunnels to one remote, told apart by key"
    );
    fails(
        &BASE.replace(
            "local = \"192.168.200.101\"",
            "local = [\"192.168.200.101\", \"10.0.0.1\"]",
        ),
        6,
        9,
        "at most one IPv4 and one IPv6",
    );
    fails(
        &BASE.replace("local = \"192.168.200.101\"", "local = 5"),
        6,
        9,
        "an address or a list",
    );
    fails(
        &BASE.replace("local = \"192.168.200.101\"", "local = []"),
        6,
        9,
        "at least one address",
    );
}

#[test]
fn flows_without_rules_mean_normal_and_empty_rules_are_refused() {
    let c = parse(&format!("{BASE}\n[flows]\nmac_ageing = 60\n")).unwrap();
    assert_eq!(c.flows.len(), 1);
    assert_eq!(c.flows[0].to_string(), "actions=normal");
    assert_eq!(c.fdb_ageing, std::time::Duration::from_secs(60));
    fails(
        &format!("{BASE}\n[flows]\nrules = []\n"),
        14,
        9,
        "would drop every frame",
    );
}

#[test]
fn mtu_options_per_tunnel() {
    use vxtund::switch::{DfMode, MssClamp};
    let c = parse(&format!("{BASE}mss_clamp = 1360\ndf = \"inherit\"\n")).unwrap();
    let t = &c.ports[1].options;
    assert_eq!(
        (t.mss_clamp, t.df),
        (MssClamp::Fixed(1360), DfMode::Inherit)
    );
    let c = parse(&format!("{BASE}mss_clamp = \"off\"\ndf = \"unset\"\n")).unwrap();
    assert_eq!(
        (c.ports[1].options.mss_clamp, c.ports[1].options.df),
        (MssClamp::Off, DfMode::Unset)
    );
    let c = parse(BASE).unwrap();
    assert_eq!(
        (c.ports[1].options.mss_clamp, c.ports[1].options.df),
        (MssClamp::Auto, DfMode::Set),
        "defaults"
    );
    fails(
        &format!("{BASE}mss_clamp = \"sometimes\"\n"),
        12,
        13,
        "expected \"auto\", \"off\" or an MSS",
    );
    fails(
        &format!("{BASE}mss_clamp = 40\n"),
        12,
        13,
        "from 88 to 65495",
    );
    fails(
        &format!("{BASE}df = \"maybe\"\n"),
        12,
        6,
        "expected \"set\", \"unset\" or \"inherit\"",
    );
}

#[test]
fn shipped_full_mesh_configs_put_every_tunnel_in_one_split_horizon_group() {
    for n in 1..=3 {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/mesh/seg{n}.toml"));
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let groups: Vec<_> = c
            .tunnels()
            .map(|(p, _)| p.options.split_horizon.as_deref())
            .collect();
        assert_eq!(groups, [Some("mesh"), Some("mesh")], "seg{n}");
    }
}

#[test]
fn split_horizon_and_control_group() {
    let c = parse(&format!(
        "{BASE}split_horizon = \"dc-1\"\n\n[control]\ngroup = \"netadm\"\n"
    ))
    .unwrap();
    assert_eq!(c.ports[1].options.split_horizon.as_deref(), Some("dc-1"));
    assert_eq!(c.control_group.as_deref(), Some("netadm"));
    assert_eq!(parse(BASE).unwrap().ports[1].options.split_horizon, None);
    assert_eq!(parse(BASE).unwrap().control_group, None);
    fails(
        &format!("{BASE}split_horizon = \"a b\"\n"),
        12,
        17,
        "group `a b` must be 1 to 32 letters",
    );
    fails(
        &format!("{BASE}\n[control]\ngroup = \"\"\n"),
        14,
        9,
        "group `` must be",
    );
}

#[test]
fn openflow_targets_controllers_and_fail_modes() {
    use vxtund::config::{ControllerTarget, FailMode, ListenTarget};
    // Defaults: the management socket named after the file, standalone, OVS's timers.
    let c = parse(BASE).unwrap();
    assert_eq!(
        c.openflow.listen,
        vec![ListenTarget::Unix("/run/vxtund/seg.mgmt".into())]
    );
    assert!(c.openflow.controllers.is_empty());
    assert_eq!(c.openflow.fail_mode, FailMode::Standalone);
    assert_eq!(c.openflow.inactivity_probe.as_secs(), 5);
    assert_eq!(c.openflow.max_backoff.as_secs(), 8);
    assert_eq!(c.flows.len(), 1, "no [flows] and no controller: normal");

    let c = parse(&format!(
        "{BASE}\n[openflow]\nlisten = [\"ptcp:6653:127.0.0.1\", \"ptcp:16653:[::1]\"]\n\
         controllers = [\"tcp:192.0.2.10\", \"tcp:[2001:db8::1]:6633\", \"unix:/run/ctl.sock\"]\n\
         fail_mode = \"secure\"\ninactivity_probe = 2\nmax_backoff = 4\n\
         packet_in_rate = 50\npacket_in_burst = 5\ndatapath_id = \"00000000000000ab\"\n"
    ))
    .unwrap();
    let of = &c.openflow;
    assert_eq!(of.listen.len(), 2);
    assert_eq!(
        of.controllers,
        vec![
            ControllerTarget::Tcp("192.0.2.10:6653".parse().unwrap()),
            ControllerTarget::Tcp("[2001:db8::1]:6633".parse().unwrap()),
            ControllerTarget::Unix("/run/ctl.sock".into()),
        ]
    );
    assert_eq!(of.controllers[1].to_string(), "tcp:[2001:db8::1]:6633");
    assert_eq!(
        (of.fail_mode, of.datapath_id),
        (FailMode::Secure, Some(0xab))
    );
    assert_eq!((of.packet_in_rate, of.packet_in_burst), (50, 5));
    assert!(
        c.flows.is_empty(),
        "with a controller and no [flows], the table starts empty"
    );

    let of = "\n[openflow]\n";
    fails(
        &format!("{BASE}{of}controllers = [\"ssl:192.0.2.1\"]\n"),
        14,
        16,
        "`ssl:192.0.2.1` needs private_key, certificate and ca_cert",
    );
    fails(
        &format!("{BASE}{of}controllers = [\"tcp:nowhere\"]\n"),
        14,
        16,
        "not an IP address",
    );
    fails(
        &format!("{BASE}{of}fail_mode = \"open\"\n"),
        14,
        13,
        "expected \"secure\" or \"standalone\"",
    );
    fails(
        &format!("{BASE}{of}listen = [\"tcp:6653\"]\n"),
        14,
        11,
        "expected punix:PATH, ptcp:PORT[:IP] or pssl:PORT[:IP]",
    );
    fails(
        &format!("{BASE}{of}inactivity_probe = 0\n"),
        14,
        20,
        "from 1 to 3600",
    );
    fails(
        &format!("{BASE}{of}datapath_id = \"xyz\"\n"),
        14,
        15,
        "16 hex digits",
    );
}

#[test]
fn vlan_matches_and_controller_actions_read_as_ovs_ofctl_writes_them() {
    let c = parse(&format!(
        "{BASE}\n[flows]\nrules = [\"vlan_tci=0x0000,actions=output:2\", \"dl_vlan=10,actions=controller\", \
         \"priority=0,actions=controller:128\"]\n"
    ))
    .unwrap();
    let shown: Vec<String> = c.flows.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        shown,
        [
            "vlan_tci=0x0000,actions=output:2",
            "dl_vlan=10,actions=CONTROLLER:65535",
            "priority=0,actions=CONTROLLER:128"
        ]
    );
    fails(
        &format!("{BASE}\n[flows]\nrules = [\"vlan_tci=0x2005/0xefff,actions=drop\"]\n"),
        14,
        11,
        "priority bits",
    );
    fails(
        &format!("{BASE}\n[flows]\nrules = [\"dl_vlan=5000,actions=drop\"]\n"),
        14,
        11,
        "from 0 to 4095",
    );
    fails(
        &format!("{BASE}\n[flows]\nrules = [\"vlan_tci=0x0005,actions=drop\"]\n"),
        14,
        11,
        "without the CFI bit",
    );
}

#[test]
fn default_sockets_are_named_after_the_config_file_not_the_device() {
    let c = Config::parse(Path::new("/etc/vxtund/seg1.toml"), BASE).unwrap();
    assert_eq!(c.control_socket, Path::new("/run/vxtund/seg1.sock"));
    assert_eq!(
        c.openflow.listen,
        vec![vxtund::config::ListenTarget::Unix(
            "/run/vxtund/seg1.mgmt".into()
        )]
    );
    let other = Config::parse(Path::new("/etc/vxtund/seg2.toml"), BASE).unwrap();
    assert_eq!(other.device.name, c.device.name, "same device name");
    assert_ne!(other.control_socket, c.control_socket, "different sockets");
    assert_eq!(c.metrics_listen, None, "metrics are off unless configured");
}

#[test]
fn metrics_listen() {
    let c = parse(&format!("{BASE}\n[metrics]\nlisten = \"127.0.0.1:9477\"\n")).unwrap();
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9477".parse().unwrap()));
    let c = parse(&format!("{BASE}\n[metrics]\nlisten = \"[::1]:9477\"\n")).unwrap();
    assert_eq!(c.metrics_listen, Some("[::1]:9477".parse().unwrap()));
    fails(
        &format!("{BASE}\n[metrics]\nlisten = \"localhost\"\n"),
        14,
        10,
        "expected IP:PORT",
    );
    fails(
        &format!("{BASE}\n[metrics]\nport = 1\n"),
        14,
        1,
        "unknown field `port`",
    );
}

#[test]
fn device_mac_given_or_derived() {
    let with = |mac: &str| {
        BASE.replace(
            "name = \"vxt0\"\n",
            &format!("name = \"vxt0\"\nmac = \"{mac}\"\n"),
        )
    };
    let config = parse(&with("02:aa:bb:cc:dd:ee")).unwrap();
    let given = config.device.mac_for("m1", &config.underlay);
    assert_eq!(
        given.to_string(),
        "02:aa:bb:cc:dd:ee",
        "the configured MAC, whatever the machine"
    );

    let config = parse(BASE).unwrap();
    let derived = config
        .device
        .mac_for("0123456789abcdef0123456789abcdef", &config.underlay);
    assert_eq!(
        derived,
        config
            .device
            .mac_for("0123456789abcdef0123456789abcdef", &config.underlay),
        "stable"
    );
    assert_eq!(
        derived.0[0] & 0x03,
        0x02,
        "locally administered unicast: {derived}"
    );
    assert_ne!(
        derived,
        config.device.mac_for("another machine", &config.underlay)
    );
    let other_segment = parse(&BASE.replace("192.168.200.101", "192.168.200.103")).unwrap();
    assert_ne!(
        derived,
        other_segment
            .device
            .mac_for("0123456789abcdef0123456789abcdef", &other_segment.underlay),
        "segments sharing a machine id (namespaces) differ"
    );

    fails(
        &with("02:aa:bb"),
        4,
        7,
        "mac `02:aa:bb`: expected a MAC address",
    );
    fails(&with("01:00:5e:00:00:01"), 4, 7, "unicast");
    fails(&with("00:00:00:00:00:00"), 4, 7, "unicast");
}

#[test]
fn tos_ttl_and_source_ports() {
    use vxtund::wire::tunnel::{TosMode, TtlMode};
    let c = parse(&format!(
        "[device]\nname = \"vxt0\"\n[underlay]\nlocal = \"192.168.200.101\"\n\
         src_port_range = [50000, 50999]\n[[tunnel]]\nname = \"a\"\ntype = \"vxlan\"\n\
         remote = \"192.168.200.102\"\ntos = \"inherit\"\nttl = 9\nsrc_port_range = [4000, 4001]\n\
         [[tunnel]]\nname = \"g\"\ntype = \"gre\"\nremote = \"192.168.200.103\"\nttl = \"inherit\"\n\
         tos = 32\n[[tunnel]]\nname = \"b\"\ntype = \"vxlan\"\nremote = \"192.168.200.104\"\n{}",
        ""
    ))
    .unwrap();
    assert_eq!(c.underlay.src_port_range, Some((50000, 50999)));
    let a = &c.ports[1].options;
    assert_eq!((a.tos, a.ttl), (TosMode::Inherit, TtlMode::Fixed(9)));
    assert_eq!(a.src_port_range, Some((4000, 4001)));
    let g = &c.ports[2].options;
    assert_eq!((g.tos, g.ttl), (TosMode::Fixed(32), TtlMode::Inherit));
    assert_eq!(g.src_port_range, None, "GRE has no source ports");
    let b = &c.ports[3].options;
    assert_eq!(
        b.src_port_range,
        Some((50000, 50999)),
        "the underlay's range"
    );
    let defaults = parse(BASE).unwrap();
    let d = &defaults.ports[1].options;
    assert_eq!((d.tos, d.ttl), (TosMode::Fixed(0), TtlMode::Default));
    assert_eq!(defaults.underlay.src_port_range, None);

    fails(
        &format!("{BASE}tos = \"high\"\n"),
        12,
        7,
        "tos: expected \"inherit\"",
    );
    fails(
        &format!("{BASE}tos = 256\n"),
        12,
        7,
        "TOS value from 0 to 255",
    );
    fails(&format!("{BASE}ttl = 0\n"), 12, 7, "TTL from 1 to 255");
    fails(
        &format!("{BASE}src_port_range = [2000, 1000]\n"),
        12,
        18,
        "1 <= MIN <= MAX <= 65535",
    );
    fails(
        &BASE
            .replace("type = \"vxlan\"", "type = \"gre\"")
            .to_string()
            .replace(
                "remote = \"192.168.200.102\"\n",
                "remote = \"192.168.200.102\"\nsrc_port_range = [1, 2]\n",
            ),
        12,
        18,
        "`src_port_range` applies only to vxlan tunnels",
    );
}

#[test]
fn data_path_workers_and_their_techniques() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.device.queues, None, "one per core unless configured");
    assert!(c.device.queue_count() >= 1);
    assert_eq!(c.device.batch_wait_us, 0, "off");
    assert_eq!(c.device.busy_poll_us, 0, "off");
    assert_eq!(c.device.worker_threads, 2, "a thread per direction");
    assert_eq!(c.device.txqueuelen, None, "the device's own");
    assert_eq!(c.underlay.inner_checksum, InnerChecksum::Auto);
    assert!(
        InnerChecksum::Auto.verify(false),
        "a zero outer checksum tells nothing"
    );
    assert!(
        !InnerChecksum::Auto.verify(true),
        "a verified outer checksum covers the inner frame"
    );
    assert!(InnerChecksum::Verify.verify(true) && !InnerChecksum::Trust.verify(false));

    let text = BASE
        .replace(
            "name = \"vxt0\"",
            "name = \"vxt0\"\nqueues = 3\nbatch_wait_us = 50\ntxqueuelen = 10000\n\
             worker_threads = 1\nbusy_poll_us = 10000",
        )
        .replace("[underlay]", "[underlay]\ninner_checksum = \"trust\"");
    let c = parse(&text).unwrap();
    assert_eq!((c.device.queues, c.device.queue_count()), (Some(3), 3));
    assert_eq!(c.device.batch_wait_us, 50);
    assert_eq!(c.device.busy_poll_us, 10_000);
    assert_eq!(c.device.worker_threads, 1);
    assert_eq!(c.device.txqueuelen, Some(10_000));
    assert_eq!(c.underlay.inner_checksum, InnerChecksum::Trust);

    let queues =
        |n: &str| BASE.replace("name = \"vxt0\"", &format!("name = \"vxt0\"\nqueues = {n}"));
    fails(&queues("0"), 4, 10, "queues 0: expected 1 to 64");
    fails(&queues("65"), 4, 10, "queues 65: expected 1 to 64");
    let txq = |n: &str| {
        BASE.replace(
            "name = \"vxt0\"",
            &format!("name = \"vxt0\"\ntxqueuelen = {n}"),
        )
    };
    fails(&txq("0"), 4, 14, "txqueuelen 0: expected 1 to 100000");
    fails(
        &txq("100001"),
        4,
        14,
        "txqueuelen 100001: expected 1 to 100000",
    );
    fails(
        &BASE.replace("name = \"vxt0\"", "name = \"vxt0\"\nworker_threads = 3"),
        4,
        18,
        "worker_threads 3: expected 1 (both directions in one loop) or 2",
    );
    fails(
        &BASE.replace("name = \"vxt0\"", "name = \"vxt0\"\nbatch_wait_us = 5000"),
        4,
        17,
        "batch_wait_us 5000: at most 1000",
    );
    fails(
        &BASE.replace("name = \"vxt0\"", "name = \"vxt0\"\nbusy_poll_us = 10001"),
        4,
        16,
        "busy_poll_us 10001: at most 10000 (0 turns it off)",
    );
    fails(
        &BASE.replace("[underlay]", "[underlay]\ninner_checksum = \"never\""),
        6,
        18,
        "inner_checksum `never`: expected \"auto\", \"verify\" or \"trust\"",
    );
    assert_eq!(
        parse(BASE).unwrap().underlay.flow_spread,
        FlowSpread::Balance
    );
    let spread =
        |v: &str| BASE.replace("[underlay]", &format!("[underlay]\nflow_spread = \"{v}\""));
    assert_eq!(
        parse(&spread("hash")).unwrap().underlay.flow_spread,
        FlowSpread::Hash
    );
    fails(
        &spread("even"),
        6,
        15,
        "flow_spread `even`: expected \"hash\" or \"balance\"",
    );
}

const EVPN_ONLY: &str = r#"[underlay]
local = "192.168.77.12"

[evpn]
asn = 65000
neighbors = ["192.168.77.1"]
vni = 100
"#;

#[test]
fn evpn_alone_is_a_valid_config_with_defaults() {
    let c = parse(EVPN_ONLY).unwrap();
    assert_eq!(c.tunnels().count(), 0, "the TAP alone");
    assert_eq!(c.flows.len(), 1, "actions=normal");
    let e = c.evpn.expect("[evpn]");
    assert_eq!(e.asn, 65000);
    assert_eq!(
        e.neighbors,
        vec![Neighbor {
            address: "192.168.77.1".parse().unwrap(),
            password: None
        }]
    );
    assert_eq!(
        e.router_id,
        "192.168.77.12".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(e.vtep, "192.168.77.12".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(e.route_targets.len(), 1);
    assert_eq!(e.route_targets[0].to_string(), "65000:100");
    assert_eq!((e.hold_time, e.dst_port), (90, 8472));
    assert_eq!((e.max_routes, e.max_vteps), (200_000, 4096));
    assert!(parse(BASE).unwrap().evpn.is_none());
}

#[test]
fn evpn_settings_and_ipv6_neighbours() {
    let c = parse(
        r#"[underlay]
local = ["192.168.77.12", "fd00::12"]
[evpn]
asn = 4200000000
neighbors = ["fd00::1", "192.168.77.1"]
vni = 7
router_id = "10.0.0.12"
route_targets = ["4200000000:7", "192.0.2.1:7", "4200000000:7"]
hold_time = 0
dst_port = 4789
max_routes = 10
max_vteps = 2
"#,
    )
    .unwrap();
    let e = c.evpn.unwrap();
    assert_eq!(
        e.vtep,
        "fd00::12".parse::<std::net::IpAddr>().unwrap(),
        "first neighbour's family"
    );
    assert_eq!(e.router_id.to_string(), "10.0.0.12");
    assert_eq!(e.route_targets.len(), 2, "duplicates dropped");
    assert_eq!(
        (e.hold_time, e.dst_port, e.max_routes, e.max_vteps),
        (0, 4789, 10, 2)
    );
}

#[test]
fn evpn_mistakes_name_the_line() {
    let with = |extra: &str| format!("{EVPN_ONLY}{extra}");
    fails(&with("hold_time = 2\n"), 8, 13, "at least 3 seconds");
    fails(&with("dst_port = 0\n"), 8, 12, "must not be 0");
    fails(
        &with("max_routes = 0\n"),
        8,
        14,
        "max_routes must be at least 1",
    );
    fails(
        &with("route_targets = [\"65000\"]\n"),
        8,
        18,
        "route target `65000`",
    );
    fails(&with("route_targets = []\n"), 8, 17, "leave it out");
    fails(
        &with("router_id = \"fd00::1\"\n"),
        8,
        13,
        "not an IPv4 address",
    );
    fails(&with("color = 1\n"), 8, 1, "unknown field `color`");
    let text = EVPN_ONLY.replace("vni = 100", "vni = 16777216");
    fails(&text, 7, 7, "24 bits");
    let text = EVPN_ONLY.replace("[\"192.168.77.1\"]", "[]");
    fails(&text, 6, 13, "name at least one BGP peer");
    let text = EVPN_ONLY.replace("[\"192.168.77.1\"]", "[\"fd00::1\"]");
    fails(&text, 6, 14, "underlay.local has no IPv6 address");
    let text = EVPN_ONLY.replace("[\"192.168.77.1\"]", "[\"192.168.77.1\", \"192.168.77.1\"]");
    fails(&text, 6, 30, "listed twice");
    let text = EVPN_ONLY.replace("asn = 65000", "asn = 0");
    fails(&text, 5, 7, "reserved");
    let text = EVPN_ONLY.replace("asn = 65000\n", "");
    fails(&text, 4, 1, "missing field `asn`");
    let text = EVPN_ONLY
        .replace("asn = 65000", "asn = 4200000000")
        .replace("vni = 100", "vni = 70000");
    fails(&text, 7, 7, "set `route_targets`");
    let named = BASE.replace("name = \"tun_kl\"", "name = \"evpn-4096\"");
    fails(&named, 9, 8, "kept for the ports of the VTEPs");
    let v6 = "[underlay]\nlocal = \"fd00::12\"\n[evpn]\nasn = 65000\nneighbors = [\"fd00::1\"]\nvni = 1\n";
    fails(v6, 3, 1, "needs `router_id`");
}

#[test]
fn evpn_passwords_for_every_neighbor_or_one() {
    let c = parse(
        r#"[underlay]
local = ["192.168.77.12", "fd00::12"]
[evpn]
asn = 65000
neighbors = ["192.168.77.1", { address = "fd00::1", password = "its own" }, { address = "192.168.77.2" }]
password = "shared secret"
vni = 100
"#,
    )
    .unwrap();
    let e = c.evpn.unwrap();
    let keys: Vec<(String, Option<&[u8]>)> = e
        .neighbors
        .iter()
        .map(|n| {
            (
                n.address.to_string(),
                n.password.as_ref().map(|p| p.as_bytes()),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("192.168.77.1".into(), Some(&b"shared secret"[..])),
            ("fd00::1".into(), Some(&b"its own"[..])),
            ("192.168.77.2".into(), Some(&b"shared secret"[..])),
        ]
    );
    // The secret never shows in what the config prints (a refused reload prints [evpn]).
    let shown = format!("{e:?}");
    assert!(
        !shown.contains("secret") && !shown.contains("its own"),
        "{shown}"
    );
    assert!(shown.contains("Password(..)"), "{shown}");
    // No password: no TCP MD5.
    let plain = parse(EVPN_ONLY).unwrap().evpn.unwrap();
    assert!(plain.neighbors.iter().all(|n| n.password.is_none()));
}

#[test]
fn evpn_password_mistakes_name_the_line() {
    let with = |extra: &str| format!("{EVPN_ONLY}{extra}");
    fails(&with("password = \"\"\n"), 8, 12, "the password is empty");
    fails(
        &with(&format!("password = \"{}\"\n", "x".repeat(81))),
        8,
        12,
        "81 bytes long; TCP MD5 keys are at most 80",
    );
    assert!(parse(&with(&format!("password = \"{}\"\n", "x".repeat(80)))).is_ok());
    fails(&with("password = 7\n"), 8, 12, "invalid type");
    let neighbor = |entry: &str| EVPN_ONLY.replace("[\"192.168.77.1\"]", &format!("[{entry}]"));
    fails(
        &neighbor("{ address = \"192.168.77.1\", pasword = \"x\" }"),
        6,
        14,
        "unknown key `pasword` in a neighbor",
    );
    fails(
        &neighbor("{ password = \"x\" }"),
        6,
        14,
        "a neighbor needs `address`",
    );
    fails(
        &neighbor("{ address = \"192.168.77.1\", password = \"\" }"),
        6,
        14,
        "neighbor 192.168.77.1: the password is empty",
    );
    fails(
        &neighbor("{ address = \"192.168.77.999\" }"),
        6,
        14,
        "`192.168.77.999` is not an IPv4 or IPv6 address",
    );
    fails(&neighbor("7"), 6, 14, "a neighbor is \"IP\" or { address");
    fails(
        &neighbor("\"192.168.77.1\", { address = \"192.168.77.1\", password = \"x\" }"),
        6,
        30,
        "listed twice",
    );
}

/// Writes `text` to a fresh file with `mode`; loads it.
fn load_with_mode(text: &str, mode: u32) -> (Result<Config, ConfigError>, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vxt-secret-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seg1.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    let loaded = Config::load(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    (loaded, path)
}

#[test]
fn a_file_with_a_password_readable_by_group_or_others_is_refused() {
    let secret = format!("{EVPN_ONLY}password = \"s3cret\"\n");
    for (mode, who) in [
        (0o644, "readable by group and others (mode 0644)"),
        (0o640, "readable by its group (mode 0640)"),
        (0o604, "readable by others (mode 0604)"),
    ] {
        let (loaded, path) = load_with_mode(&secret, mode);
        let shown = loaded.expect_err("refused").to_string();
        assert!(
            shown.starts_with(&format!(
                "{}: holds a secret ([evpn] password) but is ",
                path.display()
            )),
            "{shown}"
        );
        assert!(
            shown.contains(who) && shown.contains("chmod 600"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    // A neighbor's own password is a secret too.
    let own = EVPN_ONLY.replace(
        "[\"192.168.77.1\"]",
        "[{ address = \"192.168.77.1\", password = \"s3cret\" }]",
    );
    assert!(load_with_mode(&own, 0o644).0.is_err());
    // Owner only: taken; without a secret, any mode is.
    for mode in [0o600, 0o400] {
        assert!(load_with_mode(&secret, mode).0.is_ok(), "{mode:o}");
    }
    assert!(load_with_mode(EVPN_ONLY, 0o644).0.is_ok());
}

#[test]
fn vxtund_check_refuses_a_password_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("vxt-check-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seg1.toml");
    std::fs::write(&path, format!("{EVPN_ONLY}password = \"s3cret\"\n")).unwrap();
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vxtund"))
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap()
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = check();
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let taken = check();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: holds a secret ([evpn] password)",
            path.display()
        )),
        "{stderr}"
    );
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
}

#[test]
fn tls_targets_need_the_three_files_which_go_together() {
    use vxtund::config::{ControllerTarget, ListenTarget};
    let tls = "private_key = \"/etc/vxtund/key.pem\"\ncertificate = \"cert.pem\"\n\
               ca_cert = \"/etc/vxtund/ca.pem\"\n";
    let c = Config::parse(
        Path::new("/etc/vxtund/seg.toml"),
        &format!(
            "{BASE}\n[openflow]\nlisten = [\"pssl:6653:192.0.2.1\", \"pssl:16653:[::1]\"]\n\
             controllers = [\"ssl:192.0.2.10\", \"ssl:[2001:db8::1]:6633\"]\n{tls}"
        ),
    )
    .unwrap();
    let of = &c.openflow;
    assert_eq!(
        of.listen,
        vec![
            ListenTarget::Ssl("192.0.2.1:6653".parse().unwrap()),
            ListenTarget::Ssl("[::1]:16653".parse().unwrap()),
        ]
    );
    assert_eq!(of.listen[1].to_string(), "pssl:16653:[::1]");
    assert_eq!(
        of.controllers,
        vec![
            ControllerTarget::Ssl("192.0.2.10:6653".parse().unwrap()),
            ControllerTarget::Ssl("[2001:db8::1]:6633".parse().unwrap()),
        ]
    );
    assert_eq!(of.controllers[1].to_string(), "ssl:[2001:db8::1]:6633");
    let files = of.tls.as_ref().expect("the TLS files");
    assert_eq!(files.private_key, Path::new("/etc/vxtund/key.pem"));
    assert_eq!(
        files.certificate,
        Path::new("/etc/vxtund/cert.pem"),
        "a relative path is taken from the config file's directory"
    );
    assert_eq!(
        vxtund::config::secret_keys(&c),
        vec!["[openflow] private_key"]
    );
    assert!(
        vxtund::config::secret_keys(&parse(BASE).unwrap()).is_empty(),
        "no secret, no demand on the file's mode"
    );
    // Plain targets beyond loopback are the ones vxtund warns about.
    let plain = |t: &str| ListenTarget::parse(t).unwrap().is_plain_beyond_loopback();
    assert!(plain("ptcp:6653") && plain("ptcp:6653:192.0.2.1"));
    assert!(!plain("ptcp:6653:127.0.0.1") && !plain("ptcp:6653:[::1]"));
    assert!(!plain("pssl:6653") && !plain("punix:/run/x.mgmt"));

    let of = "\n[openflow]\n";
    fails(
        &format!("{BASE}{of}listen = [\"pssl:6653:127.0.0.1\"]\n"),
        14,
        11,
        "`pssl:6653:127.0.0.1` needs private_key, certificate and ca_cert",
    );
    fails(
        &format!("{BASE}{of}listen = [\"pssl:x\"]\n{tls}"),
        14,
        11,
        "`x` is not a TCP port (pssl:PORT[:IP]",
    );
    fails(
        &format!("{BASE}{of}certificate = \"c.pem\"\nlisten = []\n"),
        14,
        15,
        "private_key, certificate and ca_cert go together: private_key and ca_cert missing",
    );
    fails(
        &format!("{BASE}{of}private_key = \"\"\n"),
        14,
        15,
        "openflow.private_key must not be empty",
    );
}

/// A self-signed certificate and its key (P-256) made by openssl in `dir`, as `NAME-key.pem`
/// and `NAME-cert.pem`, the key with mode 0600; `None` (and a loud SKIPPED) without openssl.
fn openssl_pair(dir: &Path, name: &str, test: &str) -> Option<()> {
    if !common::require_tools(test, &[("openssl", "openssl")]) {
        return None;
    }
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name} id:0"),
        ])
        .arg("-keyout")
        .arg(dir.join(format!("{name}-key.pem")))
        .arg("-out")
        .arg(dir.join(format!("{name}-cert.pem")))
        .output();
    match made {
        Ok(out) if out.status.success() => {
            chmod(&dir.join(format!("{name}-key.pem")), 0o600);
            Some(())
        }
        Ok(out) => panic!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("running openssl: {e}"),
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_file_with_a_secret_and_a_private_key_must_be_private_and_the_files_must_fit() {
    let name = "a_file_with_a_secret_and_a_private_key_must_be_private_and_the_files_must_fit";
    let dir = std::env::temp_dir().join(format!("vxtund-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if openssl_pair(&dir, "a", name).is_none() || openssl_pair(&dir, "b", name).is_none() {
        return;
    }
    let path = dir.join("seg.toml");
    let write = |key: &str, cert: &str, ca: &str, mode: u32| {
        std::fs::write(
            &path,
            format!(
                "{BASE}\n[openflow]\nlisten = [\"pssl:6653:127.0.0.1\"]\n\
                 private_key = \"{key}\"\ncertificate = \"{cert}\"\nca_cert = \"{ca}\"\n"
            ),
        )
        .unwrap();
        chmod(&path, mode);
    };
    let refused = |needle: &str| {
        let e = Config::load(&path).expect_err("refused").to_string();
        assert!(e.contains(needle), "`{needle}` in: {e}");
        e
    };

    // Private files that go together: loaded.
    write("a-key.pem", "a-cert.pem", "b-cert.pem", 0o600);
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.openflow.tls.unwrap().ca_cert, dir.join("b-cert.pem"));

    // The config file readable by group or others: refused, whichever bit.
    for mode in [0o644, 0o640, 0o604] {
        chmod(&path, mode);
        let e = refused("holds a secret ([openflow] private_key) but is readable by");
        assert!(
            e.contains(&format!("(mode {mode:04o})")) && e.contains("chmod 600"),
            "{e}"
        );
        assert!(e.starts_with(&path.display().to_string()), "{e}");
    }
    // `vxtund --check` (and the start, which loads the file the same way) says so and exits 2.
    chmod(&path, 0o644);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vxtund"))
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("holds a secret ([openflow] private_key)"),
        "{err}"
    );
    // The private key readable by others: refused at its line.
    chmod(&path, 0o600);
    chmod(&dir.join("a-key.pem"), 0o644);
    let e = refused("lets group or others read the private key");
    assert!(
        e.starts_with(&format!("{}:15:15: openflow.private_key", path.display())),
        "{e}"
    );
    chmod(&dir.join("a-key.pem"), 0o600);

    // Files that do not hold what their keys say.
    write("a-key.pem", "b-cert.pem", "b-cert.pem", 0o600);
    refused("16:15: openflow.certificate");
    refused("does not go with private_key");
    std::fs::copy(dir.join("a-cert.pem"), dir.join("not-a-key.pem")).unwrap();
    chmod(&dir.join("not-a-key.pem"), 0o600);
    write("not-a-key.pem", "a-cert.pem", "b-cert.pem", 0o600);
    refused("no private key in it");
    write("a-key.pem", "a-cert.pem", "a-key.pem", 0o600);
    refused("openflow.ca_cert");
    write("a-key.pem", "a-cert.pem", "missing.pem", 0o600);
    refused("cannot read it");
    let _ = std::fs::remove_dir_all(&dir);
}
