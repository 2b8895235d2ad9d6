//! vxtund as an OpenFlow 1.3 switch managed by Debian's own `ovs-ofctl` (openvswitch-common):
//! the reference scenario's daemons in namespaces, driven over their `punix:` management
//! sockets and over `ptcp:`, with real traffic counted, paths moved, an L4 flow, replace/diff,
//! refused flow mods, hostile bytes and a 100,000-flow dump. Needs root and ovs-ofctl.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::pki::Pki;
use common::scenario::{run_in, vxtunctl, Scenario};
use common::{Daemon, KillOnDrop, Netns};

fn ofctl(args: &[&str]) -> Output {
    Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running ovs-ofctl (scripts/setup.sh installs openvswitch-common)")
}

/// ovs-ofctl, which must succeed; its standard output.
fn ofctl_ok(args: &[&str]) -> String {
    let out = ofctl(args);
    assert!(
        out.status.success(),
        "ovs-ofctl {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The flows of a dump-flows, without the counters and durations that change between dumps.
fn flows_only(dump: &str) -> Vec<String> {
    let mut flows: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("actions="))
        .map(|l| {
            l.split([',', ' '])
                .filter(|f| {
                    !f.is_empty()
                        && ![
                            "duration=",
                            "n_packets=",
                            "n_bytes=",
                            "idle_age=",
                            "hard_age=",
                        ]
                        .iter()
                        .any(|k| f.starts_with(k))
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    flows.sort();
    flows
}

/// The packet count ovs-ofctl's dump-flows shows for the flow whose text contains `needle`.
fn n_packets(dump: &str, needle: &str) -> u64 {
    let line = dump
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no flow with `{needle}` in:\n{dump}"));
    line.split([',', ' '])
        .find_map(|f| f.strip_prefix("n_packets="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no n_packets in `{line}`"))
}

fn have_ofctl(test: &str) -> bool {
    common::require_tools(test, &[("ovs-ofctl", "openvswitch-common")])
}

#[test]
fn ovs_ofctl_reads_and_edits_the_hub_while_traffic_flows() {
    let name = "ovs_ofctl_reads_and_edits_the_hub_while_traffic_flows";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up();
    let hub = s.mgmt("seg1");

    // show: the datapath, one table, no buffers, and the ports by name.
    let show = ofctl_ok(&["show", &hub]);
    for needle in [
        "dpid:",
        "n_tables:1",
        "n_buffers:0",
        "1(vxt0)",
        "2(tun_kl)",
        "3(tun_km)",
    ] {
        assert!(show.contains(needle), "`{needle}` in show:\n{show}");
    }
    // Each segment has its own datapath id.
    let dpid = |show: &str| {
        show.split_whitespace()
            .find_map(|w| w.strip_prefix("dpid:"))
            .map(str::to_owned)
    };
    let spoke = ofctl_ok(&["show", &s.mgmt("seg2")]);
    assert_ne!(dpid(&show), dpid(&spoke), "datapath ids differ per segment");

    // dump-flows counts real traffic: l1 -> m1 crosses the hub's flow to seg3.
    let dump = ofctl_ok(&["--names", "dump-flows", &hub]);
    assert!(
        dump.contains("nw_dst=172.31.3.0/24 actions=output:\"tun_km\""),
        "port names in actions:\n{dump}"
    );
    let before = n_packets(&dump, "nw_dst=172.31.3.0/24");
    assert!(s.ping("l1", "172.31.3.1"), "l1 -> m1 through the hub");
    let after = n_packets(
        &ofctl_ok(&["dump-flows", &hub, "ip,nw_dst=172.31.3.0/24"]),
        "nw_dst=172.31.3.0/24",
    );
    assert!(
        after >= before + 3,
        "flow counted the pings: {before} -> {after}"
    );

    // dump-ports reports what vxtunctl show reports, for the same port.
    let ports = ofctl_ok(&["dump-ports", &hub, "3"]);
    let rx = s.port_counter("seg1", "3 tun_km", "rx_packets");
    assert!(
        ports.contains(&format!("rx pkts={rx},")),
        "rx_packets {rx} of vxtunctl show in:\n{ports}"
    );
    let aggregate = ofctl_ok(&["dump-aggregate", &hub]);
    assert!(aggregate.contains("flow_count=8"), "{aggregate}");
    let tables = ofctl_ok(&["dump-tables", &hub]);
    assert!(tables.contains("active=8"), "{tables}");
    let desc = ofctl_ok(&["dump-ports-desc", &hub]);
    assert!(desc.contains("tun_kl") && desc.contains("tun_km"), "{desc}");

    // The path moves: without the hub's flow to seg3, k1 no longer reaches m1; a flow written
    // with the port's name brings it back.
    ofctl_ok(&["del-flows", "--strict", &hub, "ip,nw_dst=172.31.3.0/24"]);
    assert!(!s.ping("k1", "172.31.3.1"), "no flow to seg3: no path");
    ofctl_ok(&[
        "add-flow",
        &hub,
        "ip,nw_dst=172.31.3.0/24,actions=output:tun_km",
    ]);
    assert!(s.ping("k1", "172.31.3.1"), "the flow is back");
    let listed = vxtunctl(&s, "seg1", &["dump-flows"]);
    assert!(
        listed.contains("ip,nw_dst=172.31.3.0/24,actions=output:3"),
        "vxtunctl sees the same table:\n{listed}"
    );

    // mod-flows changes the actions of the flows it covers and keeps their counters.
    let kept = n_packets(&ofctl_ok(&["dump-flows", &hub]), "nw_dst=172.31.2.0/24");
    ofctl_ok(&[
        "mod-flows",
        &hub,
        "ip,nw_dst=172.31.2.0/24,actions=output:tun_kl,output:LOCAL",
    ]);
    let dump = ofctl_ok(&["dump-flows", &hub, "ip,nw_dst=172.31.2.0/24"]);
    assert!(dump.contains("actions=output:2,LOCAL"), "{dump}");
    assert!(n_packets(&dump, "nw_dst=172.31.2.0/24") >= kept, "{dump}");
    ofctl_ok(&[
        "mod-flows",
        "--strict",
        &hub,
        "ip,nw_dst=172.31.2.0/24,actions=output:tun_kl",
    ]);
}

#[test]
fn an_l4_flow_drops_one_tcp_port_and_not_another() {
    let name = "an_l4_flow_drops_one_tcp_port_and_not_another";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up();
    let listener = Command::new("ip")
        .args(["netns", "exec", &s.ns("m1"), "python3", "-c"])
        .arg(
            "import socket, threading\n\
             def serve(port):\n\
             \x20   l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             \x20   l.bind(('172.31.3.1', port)); l.listen(8)\n\
             \x20   while True: l.accept()[0].close()\n\
             for p in (5001, 5002): threading.Thread(target=serve, args=(p,)).start()\n",
        )
        .spawn()
        .unwrap();
    let _listener = KillOnDrop(listener);
    std::thread::sleep(Duration::from_millis(500));
    let connects = |port: &str| {
        run_in(
            &s,
            "l1",
            &[
                "python3",
                "-c",
                "import socket, sys; socket.create_connection(('172.31.3.1', int(sys.argv[1])), timeout=3)",
                port,
            ],
        )
        .0
    };
    assert!(
        connects("5001") && connects("5002"),
        "both ports open first"
    );
    ofctl_ok(&[
        "add-flow",
        &s.mgmt("seg2"),
        "priority=40000,tcp,nw_dst=172.31.3.1,tp_dst=5001,actions=drop",
    ]);
    assert!(!connects("5001"), "tcp port 5001 is dropped at seg2");
    assert!(connects("5002"), "tcp port 5002 still passes");
    let dump = ofctl_ok(&["dump-flows", &s.mgmt("seg2"), "tcp"]);
    assert!(
        dump.contains("tcp,nw_dst=172.31.3.1,tp_dst=5001 actions=drop"),
        "{dump}"
    );
    assert!(n_packets(&dump, "tp_dst=5001") >= 1, "{dump}");
}

#[test]
fn replace_flows_then_diff_flows_finds_nothing_and_refused_mods_change_nothing() {
    let name = "replace_flows_then_diff_flows_finds_nothing_and_refused_mods_change_nothing";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up();
    let hub = s.mgmt("seg1");
    let file = s.state.join("hub.flows");
    std::fs::write(
        &file,
        "arp,actions=flood\n\
         cookie=0x2a,ip,nw_dst=172.31.1.0/24,actions=LOCAL\n\
         idle_timeout=300,hard_timeout=3600,send_flow_rem,ip,nw_dst=172.31.2.0/24,actions=output:tun_kl\n\
         priority=100,ip,nw_dst=172.31.3.0/24,actions=output:tun_km\n\
         tcp,nw_dst=172.31.3.0/24,tp_dst=22,actions=output:tun_km\n\
         udp6,ipv6_dst=fc00:0:0:3::/64,tp_src=53,actions=output:tun_km\n\
         dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=normal\n\
         icmp6,ipv6_dst=ff00::/8,actions=flood\n\
         ip6,ipv6_dst=fc00:0:0:1::/64,actions=LOCAL\n\
         ip6,ipv6_dst=fc00:0:0:2::/64,actions=output:tun_kl\n\
         ip6,ipv6_dst=fc00:0:0:3::/64,actions=output:tun_km\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    ofctl_ok(&["replace-flows", &hub, file]);
    let diff = ofctl(&["--names", "diff-flows", &hub, file]);
    assert!(
        diff.status.success() && diff.stdout.is_empty(),
        "diff-flows after replace-flows: {}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(
        s.ping("k1", "172.31.3.1") && s.ping("k1", "fc00:0:0:2::1"),
        "the new table forwards"
    );

    let table = flows_only(&ofctl_ok(&["dump-flows", &hub]));
    for refused in [
        "actions=meter:1",
        "actions=group:1",
        "table=1,actions=drop",
        "ip,actions=mod_nw_tos:4",
        "actions=goto_table:1",
        "ip,nw_tos=4,actions=drop",
        "actions=output:9",
    ] {
        let out = ofctl(&["add-flow", &hub, refused]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "`{refused}` must fail: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("OFPT_ERROR"),
            "`{refused}`: an OpenFlow error is printed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        flows_only(&ofctl_ok(&["dump-flows", &hub])),
        table,
        "table unchanged"
    );

    // A reload with the file's flows unchanged keeps what OpenFlow put in the table.
    let reloaded = vxtunctl(&s, "seg1", &["reload"]);
    assert!(reloaded.contains("the table in force stays"), "{reloaded}");
    assert_eq!(
        flows_only(&ofctl_ok(&["dump-flows", &hub])),
        table,
        "a reload of an unchanged file keeps run-time flows"
    );
    // A reload after the file's [flows] changed applies the file's.
    let config = s.state.join("configs").join("seg1.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "\"arp,actions=flood\",",
            "\"arp,actions=flood\", \"priority=1,actions=drop\",",
        ),
    )
    .unwrap();
    vxtunctl(&s, "seg1", &["reload"]);
    let after = ofctl_ok(&["dump-flows", &hub]);
    assert!(after.contains("priority=1 actions=drop"), "{after}");
    assert!(
        !after.contains("tp_dst=22"),
        "the file's flows replaced the table:\n{after}"
    );
}

#[test]
fn hostile_bytes_on_the_openflow_socket_change_nothing() {
    let name = "hostile_bytes_on_the_openflow_socket_change_nothing";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let ns = Netns::new("of");
    let daemon = Daemon::start(
        &ns,
        &loopback_config(TO_T, "[openflow]\nlisten = [\"ptcp:6653:127.0.0.1\"]\n"),
    );
    let ofctl_in_ns = |args: &[&str]| {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ovs-ofctl", "-O", "OpenFlow13"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let target = "tcp:127.0.0.1:6653";
    let before = flows_only(&ofctl_in_ns(&["dump-flows", target]));
    assert_eq!(before.len(), 1, "{before:?}");
    let report = script_report(&ns, "of_hostile.py", &["127.0.0.1", "6653"]);
    // Every probe got an error or a close, never a hang.
    for needle in [
        "random: closed or error",
        "lying length: closed or error",
        "oxm past match: error",
        "unknown type: error BAD_REQUEST/BAD_TYPE",
        "version 1 hello: HELLO_FAILED",
        "echo flood: answered",
        "idle connections: held",
    ] {
        assert!(report.contains(needle), "`{needle}` in:\n{report}");
    }
    assert_eq!(
        flows_only(&ofctl_in_ns(&["dump-flows", target])),
        before,
        "the table is unchanged"
    );
    assert!(
        Path::new(&format!("/proc/{}", daemon.pid())).exists(),
        "the daemon is still running:\n{}",
        daemon.log()
    );
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
}

#[test]
fn dump_flows_of_100000_flows_arrives_whole() {
    let name = "dump_flows_of_100000_flows_arrives_whole";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let ns = Netns::new("big");
    let rules: Vec<String> = (0..100_000u32)
        .map(|i| {
            format!(
                "\"ip,nw_dst=10.{}.{}.0/24,actions=output:t\"",
                i >> 8 & 0xff,
                i & 0xff
            )
            .replace("10.", &format!("{}.", 10 + (i >> 16)))
        })
        .collect();
    let daemon = Daemon::start(&ns, &loopback_config(&rules.join(",\n"), ""));
    let socket = format!("unix:{}", daemon.mgmt_socket().display());
    let dump = ofctl_ok(&["dump-flows", &socket]);
    let flows = dump
        .lines()
        .filter(|l| l.contains("actions=output:2"))
        .count();
    assert_eq!(flows, 100_000, "every flow, over many REPLY_MORE parts");
    let aggregate = ofctl_ok(&["dump-aggregate", &socket]);
    assert!(aggregate.contains("flow_count=100000"), "{aggregate}");
}

#[test]
fn the_management_socket_is_private_takes_over_a_stale_one_and_refuses_a_live_one() {
    let name = "the_management_socket_is_private_takes_over_a_stale_one_and_refuses_a_live_one";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let ns = Netns::new("mg");
    let dir = std::env::temp_dir().join(common::unique("mgmt"));
    std::fs::create_dir_all(&dir).unwrap();
    let mgmt = dir.join("seg.mgmt");
    // A socket left behind by a daemon that died: bound, never removed.
    let stale = Command::new("python3")
        .args([
            "-c",
            "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
        ])
        .arg(&mgmt)
        .status()
        .unwrap();
    assert!(stale.success() && mgmt.exists());
    // Each daemon has a VXLAN port of its own: a second one on the same port stops at binding
    // it, before it gets to the management socket.
    let config = |device: &str, port: u16| {
        format!(
            "[device]\nname = \"{device}\"\n[underlay]\nlocal = \"127.0.0.1\"\n[[tunnel]]\n\
             name = \"t\"\ntype = \"vxlan\"\nremote = \"127.0.0.2\"\ndst_port = {port}\n[openflow]\n\
             listen = [\"punix:{}\"]\n",
            mgmt.display()
        )
    };
    let daemon = Daemon::start(&ns, &config("vxt0", 8472));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&mgmt).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner only, like the control socket");

    // Another daemon with `text` for its config (and a control socket of its own) must fail to
    // start: what it says.
    let refused = |name: &str, text: String| {
        let file = dir.join(format!("{name}.toml"));
        let control = dir.join(format!("{name}.sock"));
        let text = text + &format!("[control]\nsocket = \"{}\"\n", control.display());
        std::fs::write(&file, text).unwrap();
        let out = ns.vxtund(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{err}");
        err
    };
    // A second daemon on the same path must not steal it.
    let err = refused("second", config("vxt1", 8473));
    assert!(
        err.contains("OpenFlow listener") && err.contains("another vxtund is listening there"),
        "{err}"
    );
    // Nor its VXLAN port: a daemon on the same port is refused there, once, with a hint (a
    // socket of its own would otherwise share the port and take some of the datagrams).
    let other_mgmt = format!("punix:{}", dir.join("third.mgmt").display());
    let err = refused(
        "third",
        config("vxt2", 8472).replace(&format!("punix:{}", mgmt.display()), &other_mgmt),
    );
    assert!(
        err.contains("binding UDP 127.0.0.1:8472: Address already in use")
            && err.contains("another vxtund or a kernel vxlan device has this port")
            && err.matches("Address already in use").count() == 1,
        "{err}"
    );

    // add-flows from a file, through the socket that stayed the first daemon's.
    let target = format!("unix:{}", mgmt.display());
    let file = dir.join("flows");
    std::fs::write(
        &file,
        "ip,nw_dst=10.1.0.0/16,actions=output:2\n\
         # a comment\n\
         priority=10,udp,tp_dst=4789,actions=drop\n",
    )
    .unwrap();
    ofctl_ok(&["add-flows", &target, file.to_str().unwrap()]);
    let dump = ofctl_ok(&["dump-flows", &target]);
    assert!(
        dump.contains("ip,nw_dst=10.1.0.0/16 actions=output:2")
            && dump.contains("priority=10,udp,tp_dst=4789 actions=drop"),
        "{dump}"
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reload_that_adds_and_removes_a_tunnel_sends_port_status() {
    let name = "a_reload_that_adds_and_removes_a_tunnel_sends_port_status";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let s = Scenario::up();
    let log = s.state.join("monitor.log");
    // `monitor` with a miss length asks for asynchronous messages, as a service connection must.
    let unixctl = format!("--unixctl={}", s.state.join("monitor.ctl").display());
    let monitor = Command::new("ovs-ofctl")
        .args([
            "-O",
            "OpenFlow13",
            &unixctl,
            "monitor",
            &s.mgmt("seg2"),
            "128",
        ])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(s.state.join("monitor.err")).unwrap())
        .spawn()
        .unwrap();
    let mut monitor = KillOnDrop(monitor);
    std::thread::sleep(Duration::from_millis(500));
    let config = s.state.join("configs").join("seg2.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let added = common::scenario::with_direct_spoke_tunnel(&text);
    std::fs::write(&config, &added).unwrap();
    let answer = vxtunctl(&s, "seg2", &["reload"]);
    assert!(answer.contains("ports added: 3 tun_lm"), "{answer}");
    std::fs::write(&config, &text).unwrap();
    vxtunctl(&s, "seg2", &["reload"]);
    std::thread::sleep(Duration::from_millis(1000));
    // ovs-ofctl writes its output out when it exits: stop it (by its PID) and read.
    // SAFETY: a signal to the child this test started and still owns.
    unsafe { libc::kill(monitor.0.id() as i32, libc::SIGTERM) };
    let _ = monitor.0.wait();
    // It prints the messages on standard error.
    let seen = std::fs::read_to_string(&log).unwrap_or_default()
        + &std::fs::read_to_string(s.state.join("monitor.err")).unwrap_or_default();
    assert!(
        seen.contains("OFPT_PORT_STATUS")
            && seen.contains("ADD: 3(tun_lm)")
            && seen.contains("DEL: 3(tun_lm)"),
        "PORT_STATUS ADD and DEL for tun_lm in:\n{seen}"
    );
}

#[test]
fn timeouts_expire_flows_without_a_controller() {
    let name = "timeouts_expire_flows_without_a_controller";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let ns = Netns::new("to");
    let daemon = Daemon::start(&ns, &loopback_config(TO_T, ""));
    let target = format!("unix:{}", daemon.mgmt_socket().display());
    ofctl_ok(&[
        "add-flow",
        &target,
        "hard_timeout=1,ip,nw_dst=10.1.0.0/16,actions=drop",
    ]);
    ofctl_ok(&[
        "add-flow",
        &target,
        "idle_timeout=1,ip,nw_dst=10.2.0.0/16,actions=drop",
    ]);
    ofctl_ok(&[
        "add-flow",
        &target,
        "hard_timeout=60,ip,nw_dst=10.3.0.0/16,actions=drop",
    ]);
    assert_eq!(flows_only(&ofctl_ok(&["dump-flows", &target])).len(), 4);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = flows_only(&ofctl_ok(&["dump-flows", &target]));
        if left.len() == 2 {
            assert!(
                left.iter().any(|f| f.contains("nw_dst=10.0.0.0/8"))
                    && left.iter().any(|f| f.contains("hard_timeout=60")),
                "the hard and idle timeouts of 1 s went, the others stay: {left:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "flows did not expire: {left:?}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.log().contains("flow(s) expired"), "{}", daemon.log());
}

/// The one flow of most loopback daemons: 10.0.0.0/8 to their tunnel.
const TO_T: &str = "\"ip,nw_dst=10.0.0.0/8,actions=output:t\"";

/// The config of a daemon alone on loopback: one VXLAN tunnel `t` to 127.0.0.2, the flows
/// `rules` (TOML strings, comma-separated), then `more`.
fn loopback_config(rules: &str, more: &str) -> String {
    format!(
        "[underlay]\nlocal = \"127.0.0.1\"\n[[tunnel]]\nname = \"t\"\ntype = \"vxlan\"\n\
         remote = \"127.0.0.2\"\n[flows]\nrules = [{rules}]\n{more}"
    )
}

/// What `tests/scripts/SCRIPT ARGS` printed, run in `ns`; fails the test if it failed.
fn script_report(ns: &Netns, script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scripts")
        .join(script);
    let mut all = vec![path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = ns.exec("python3", &all);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// A daemon in `ns` listening on `pssl:6653:127.0.0.1` (and the `extra` targets) with the
/// PKI's switch certificate, trusting its controller CA.
fn tls_daemon(ns: &Netns, pki: &Pki, extra: &str) -> Daemon {
    let listen = format!(
        "[openflow]\nlisten = [\"pssl:6653:127.0.0.1\"{extra}]\n{}",
        pki.vxtund_keys()
    );
    Daemon::start(ns, &loopback_config(TO_T, &listen))
}

/// ovs-ofctl in `ns` with the TLS options `tls` against `ssl:127.0.0.1:6653`.
fn ofctl_tls(ns: &Netns, tls: &[String], args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &ns.name, "ovs-ofctl", "-O", "OpenFlow13"])
        .args(tls)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ovs-ofctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `tls handshakes refused` in `vxtunctl show`.
fn tls_refused(daemon: &Daemon) -> u64 {
    let show = daemon.show();
    show.split("tls handshakes refused ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no TLS refusals in show:\n{show}"))
}

const SSL: &str = "ssl:127.0.0.1:6653";

#[test]
fn ovs_ofctl_manages_the_switch_over_pssl_and_strangers_are_refused() {
    let name = "ovs_ofctl_manages_the_switch_over_pssl_and_strangers_are_refused";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    // Alone, the PKI's key generation included: it takes a core for seconds.
    let _serial = common::one_at_a_time();
    let Some(pki) = Pki::new(name) else { return };
    let ns = Netns::new("tls");
    let daemon = tls_daemon(&ns, &pki, ", \"ptcp:6654\"");
    let good = Pki::ovs_options(&pki.controller(), &pki.switch_ca());

    // Debian's ovs-ofctl, with ovs-pki's certificates, manages the switch over TLS.
    let flow = "priority=40000,tcp,nw_dst=10.1.0.0/16,tp_dst=22,actions=drop";
    stdout_of(&ofctl_tls(&ns, &good, &["add-flow", SSL, flow]));
    let dump = stdout_of(&ofctl_tls(&ns, &good, &["dump-flows", SSL]));
    assert!(dump.contains("tp_dst=22 actions=drop"), "{dump}");
    assert!(
        dump.contains("nw_dst=10.0.0.0/8 actions=output:2"),
        "{dump}"
    );
    let show = stdout_of(&ofctl_tls(&ns, &good, &["show", SSL]));
    assert!(show.contains("2(t)"), "{show}");

    // A certificate from another CA, an expired one, and plain TCP: refused.
    let (stranger, other_ca) = pki.stranger();
    let out = ofctl_tls(
        &ns,
        &Pki::ovs_options(&stranger, &pki.switch_ca()),
        &["dump-flows", SSL],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // ovs-pki names a CA after the second it was made: another CA made in the same second as
    // ours has our CA's name, and the chain check then fails on the signature (decrypt error)
    // instead of finding no issuer (unknown ca). Either way the chain does not lead to ca_cert.
    assert!(
        !out.status.success() && (err.contains("unknown ca") || err.contains("decrypt error")),
        "another CA's client: {err}"
    );
    let old = pki.expired_controller();
    let out = ofctl_tls(
        &ns,
        &Pki::ovs_options(&old, &pki.switch_ca()),
        &["dump-flows", SSL],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("certificate expired"),
        "an expired client certificate: {err}"
    );
    let out = ofctl_tls(&ns, &[], &["dump-flows", "tcp:127.0.0.1:6653"]);
    assert!(!out.status.success(), "plain TCP on the TLS port");
    // And ovs-ofctl, trusting another switch CA, refuses vxtund's certificate.
    let out = ofctl_tls(
        &ns,
        &Pki::ovs_options(&pki.controller(), &other_ca),
        &["dump-flows", SSL],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("certificate verify failed"),
        "{err}"
    );
    assert!(tls_refused(&daemon) >= 4, "{}", daemon.show());
    // Nothing a stranger did changed the table.
    let after = stdout_of(&ofctl_tls(&ns, &good, &["dump-flows", SSL]));
    assert_eq!(flows_only(&after), flows_only(&dump));

    // Plain TCP beyond loopback: one warning at start, naming that target only.
    let log = daemon.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("without TLS beyond loopback"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("on ptcp:6654:0.0.0.0:") && !warnings[0].contains("pssl:6653"),
        "{}",
        warnings[0]
    );
}

#[test]
fn certificates_are_read_again_on_reload_without_a_restart() {
    let name = "certificates_are_read_again_on_reload_without_a_restart";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let (Some(old), Some(new)) = (Pki::new(name), Pki::new(name)) else {
        return;
    };
    let ns = Netns::new("rot");
    let mut daemon = tls_daemon(&ns, &old, "");
    let pid = daemon.pid();
    let old_client = Pki::ovs_options(&old.controller(), &old.switch_ca());
    let new_client = Pki::ovs_options(&new.controller(), &new.switch_ca());
    stdout_of(&ofctl_tls(&ns, &old_client, &["dump-flows", SSL]));

    // The new PKI's files take the old ones' places: nothing changes until the reload.
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to).unwrap();
    };
    copy(&new.switch().key, &old.switch().key);
    copy(&new.switch().cert, &old.switch().cert);
    copy(&new.controller_ca(), &old.controller_ca());
    stdout_of(&ofctl_tls(&ns, &old_client, &["dump-flows", SSL]));
    daemon.reload("(read again)");
    assert!(
        daemon.log().contains("OpenFlow TLS: certificate"),
        "{}",
        daemon.log()
    );
    stdout_of(&ofctl_tls(&ns, &new_client, &["dump-flows", SSL]));
    let out = ofctl_tls(&ns, &old_client, &["dump-flows", SSL]);
    assert!(!out.status.success(), "the old PKI no longer gets in");

    // A broken rotation is refused as a whole: the certificates in force stay.
    std::fs::write(old.controller_ca(), "not a certificate\n").unwrap();
    daemon.reload("reload refused");
    assert!(
        daemon.log().contains("openflow.ca_cert"),
        "the refusal names the file:\n{}",
        daemon.log()
    );
    stdout_of(&ofctl_tls(&ns, &new_client, &["dump-flows", SSL]));
    assert_eq!(daemon.pid(), pid, "no restart");
}

#[test]
fn hostile_tls_clients_are_refused_and_bounded() {
    let name = "hostile_tls_clients_are_refused_and_bounded";
    if !common::require_root(name) || !have_ofctl(name) {
        return;
    }
    let _serial = common::one_at_a_time();
    let Some(pki) = Pki::new(name) else { return };
    let _ = pki.stranger();
    let _ = pki.expired_controller();
    let _ = pki.oversized_controller();
    let _ = pki.oversized_chain();
    let ns = Netns::new("tlsh");
    let daemon = tls_daemon(&ns, &pki, "");
    let dir = pki.dir.to_str().unwrap();
    let report = script_report(&ns, "of_tls_hostile.py", &["127.0.0.1", "6653", dir]);
    for needle in [
        "good certificate: welcome",
        "no certificate: refused",
        "other CA: refused",
        "expired: refused",
        "oversized certificate: refused",
        "oversized chain: refused",
        "plain openflow: closed",
        "garbage: closed",
        "idle connections: held",
    ] {
        assert!(report.contains(needle), "`{needle}` in:\n{report}");
    }
    // Handshakes that never finish are closed after 10 s.
    for probe in ["silent", "partial"] {
        let seconds: u64 = report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{probe} handshake: closed after ")))
            .and_then(|rest| rest.trim_end_matches(" s").parse().ok())
            .unwrap_or_else(|| panic!("{probe} handshake closed, in:\n{report}"));
        assert!((9..=14).contains(&seconds), "{probe}: {seconds} s");
    }
    assert!(tls_refused(&daemon) >= 8, "{}", daemon.show());
    assert!(
        Path::new(&format!("/proc/{}", daemon.pid())).exists(),
        "the daemon is still running:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.matches("TLS handshake refused").count() <= 2,
        "refusals are logged at most once a minute:\n{log}"
    );
    assert!(
        !log.contains("without TLS"),
        "no warning for a TLS listener on loopback"
    );
}
