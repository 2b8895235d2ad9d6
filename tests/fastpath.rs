//! The kernel fast path in the reference scenario, as root: frames of decided flows are
//! forwarded by the BPF programs and counted where the userspace path counts them; a flow edit
//! stops the cached path before it returns; the outer headers are the same from both paths;
//! a SIGKILLed daemon leaves no program behind. (The other namespace suites run with the fast
//! path in force, `auto`, and again with it off: see `scripts/test.sh`.)

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::scenario::{flow_packets, run_in, vxtunctl, Scenario};

/// The shipped config with the fast path required.
fn on(text: &str) -> String {
    text.replacen("[device]\n", "[device]\nfast_path = \"on\"\n", 1)
}

/// A number from `seg`'s `show`: the word after `label` in the fast path's lines.
fn show_number(s: &Scenario, seg: &str, label: &str) -> u64 {
    number_after(&vxtunctl(s, seg, &["show"]), label)
}

/// The number after `label` in `show`'s text.
fn number_after(show: &str, label: &str) -> u64 {
    let at = show
        .find(label)
        .unwrap_or_else(|| panic!("no `{label}` in:\n{show}"));
    show[at + label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{label}` in:\n{show}"))
}

/// Waits for the sweeper (every 100 ms) to have folded in the kernel's counters.
fn settle() {
    std::thread::sleep(Duration::from_millis(400));
}

#[test]
fn the_scenario_runs_in_the_kernel_and_is_counted_as_on_the_userspace_path() {
    if !common::require_root("fastpath::the_scenario_runs_in_the_kernel") {
        return;
    }
    // It counts frames in the kernel or compares timings: alone.
    let _serial = common::one_at_a_time();
    let s = Scenario::up_with(on, false);
    let show = vxtunctl(&s, "seg1", &["show"]);
    assert!(show.contains("fast path: kernel"), "{show}");
    s.assert_every_pair_pings();
    let (ok, out) = run_in(&s, "l1", &["iperf3", "-s", "-1", "-D", "-p", "5301"]);
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, out) = run_in(
        &s,
        "k1",
        &[
            "timeout",
            "20",
            "iperf3",
            "-c",
            "172.31.2.1",
            "-p",
            "5301",
            "-t",
            "2",
        ],
    );
    assert!(ok, "iperf3: {out}");
    settle();
    let hits = show_number(&s, "seg1", "hits ");
    assert!(hits > 10_000, "the kernel forwarded only {hits} frames");
    // What the kernel forwarded is counted on the flow and the ports, as the userspace path
    // counts: segments, not superframes.
    let flow = flow_packets(&s, "seg1", "ip,nw_dst=172.31.2.0/24,actions=output:2");
    assert!(
        flow > 100_000,
        "the flow counted {flow} packets for a 2 s TCP stream"
    );
    let tx = s.port_counter("seg1", "2", "tx_packets");
    assert!(
        tx >= flow,
        "tun_kl sent {tx} packets, its flow matched {flow}"
    );
    let rx = s.port_counter("seg2", "2", "rx_packets");
    assert!(rx > 100_000, "seg2's tunnel received {rx} packets");
    // l1 <-> m1 through the hub: relayed by vxtund (tunnel to tunnel), still every way.
    assert!(s.ping("l1", "fc00:0:0:3::1"));
}

/// tcpdump on seg1's underlay device with `flag` (`-tt` for times, `-v` for headers), `filter`.
fn capture(s: &Scenario, flag: &str, filter: &str) -> std::process::Child {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("seg1"),
            "tcpdump",
            "-i",
            "ul0",
            "-n",
            "-l",
        ])
        .args([flag, filter])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The epoch times of the packets in `capture` (tcpdump -tt -n text).
fn times(capture: &str) -> Vec<f64> {
    capture
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn a_flow_edit_stops_the_cached_path_before_it_returns() {
    if !common::require_root("fastpath::a_flow_edit_stops_the_cached_path") {
        return;
    }
    // It counts frames in the kernel or compares timings: alone.
    let _serial = common::one_at_a_time();
    let s = Scenario::up_with(on, false);
    assert!(s.ping("k1", "172.31.2.1"));
    // Every VXLAN datagram seg1 sends to seg2, with its time.
    let dump = capture(
        &s,
        "-tt",
        "udp and dst host 192.168.200.102 and greater 120",
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s.ns("k1"),
            "ping",
            "-q",
            "-i",
            "0.005",
            "-s",
            "100",
        ])
        .args(["-w", "4", "172.31.2.1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let before = show_number(&s, "seg1", "hits ");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        show_number(&s, "seg1", "hits ") > before,
        "the pings are not on the fast path"
    );
    vxtunctl(
        &s,
        "seg1",
        &["mod-flows", "ip,nw_dst=172.31.2.0/24,actions=drop"],
    );
    let returned = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let _ = ping.wait();
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: SIGTERM to the tcpdump this test started, by its PID.
    unsafe { libc::kill(dump.id() as i32, libc::SIGTERM) };
    let out = dump.wait_with_output().unwrap();
    let sent = times(&String::from_utf8_lossy(&out.stdout));
    let early = sent.iter().filter(|&&t| t < returned).count();
    // A datagram encapsulated just before the return may reach the capture a moment later.
    let late: Vec<f64> = sent
        .iter()
        .copied()
        .filter(|&t| t > returned + 0.002)
        .collect();
    assert!(early > 100, "only {early} pings crossed before the edit");
    assert!(
        late.is_empty(),
        "{} datagrams left for seg2 after the edit returned (at {returned}): {late:?}",
        late.len()
    );
}

#[test]
fn both_paths_put_the_same_outer_headers_on_a_flow() {
    if !common::require_root("fastpath::both_paths_put_the_same_outer_headers") {
        return;
    }
    // It counts frames in the kernel or compares timings: alone.
    let _serial = common::one_at_a_time();
    // The inner DSCP copied out, so that the outer TOS depends on the frame.
    let s = Scenario::up_with(
        |t| on(t).replace("name = \"tun_kl\"", "name = \"tun_kl\"\ntos = \"inherit\""),
        false,
    );
    assert!(s.ping("k1", "172.31.2.1"));
    // The echo requests alone: 180 bytes of data make a 258-byte outer packet.
    let dump = capture(
        &s,
        "-v",
        "udp and dst host 192.168.200.102 and ip[2:2] = 258",
    );
    std::thread::sleep(Duration::from_millis(500));
    let upcalls = show_number(&s, "seg1", "upcalls ");
    // CE inside: the outer header carries ECT(0) and the DSCP (RFC 6040).
    let (ok, out) = run_in(
        &s,
        "k1",
        &[&["ping"][..], &marked_pings("172.31.2.1")].concat(),
    );
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: SIGTERM to the tcpdump this test started, by its PID.
    unsafe { libc::kill(dump.id() as i32, libc::SIGTERM) };
    let text = String::from_utf8_lossy(&dump.wait_with_output().unwrap().stdout).into_owned();
    settle();
    assert!(
        show_number(&s, "seg1", "upcalls ") > upcalls,
        "the first echo request was not decided by vxtund"
    );
    // tcpdump -v: "IP (tos 0xba, ttl 64, id 0, offset 0, flags [DF], ...)" then
    // "    192.168.200.101.PORT > 192.168.200.102.8472: ...".
    let lines: Vec<&str> = text.lines().collect();
    let mut headers = Vec::new();
    for pair in lines.windows(2) {
        // The outer header's line, followed by its addresses (tcpdump then shows the inner
        // packet the same way: skip that).
        if !pair[1].contains("> 192.168.200.102.8472") {
            continue;
        }
        if let Some(rest) = pair[0].split("IP (").nth(1) {
            let fields: Vec<&str> = rest
                .split(", ")
                .filter(|f| f.starts_with("tos") || f.starts_with("ttl") || f.starts_with("flags"))
                .collect();
            let sport = pair[1]
                .split_whitespace()
                .next()
                .and_then(|a| a.rsplit('.').next())
                .unwrap_or("");
            headers.push(format!("{} sport {sport}", fields.join(", ")));
        }
    }
    assert!(
        headers.len() >= 30,
        "captured {} datagrams:\n{text}",
        headers.len()
    );
    assert!(
        headers.iter().all(|h| h == &headers[0]),
        "outer headers differ within the flow:\n{}",
        headers.join("\n")
    );
    assert!(headers[0].contains("tos 0xba"), "{}", headers[0]);
    assert!(headers[0].contains("[DF]"), "{}", headers[0]);
}

/// The BPF programs process `pid` holds, by id (its descriptors' `prog_id`).
fn programs_of(pid: i32) -> Vec<u32> {
    let mut ids = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("prog_id:"))
            .and_then(|v| v.trim().parse().ok())
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// Whether the kernel still has program `id`.
fn program_exists(id: u32) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn a_killed_daemon_leaves_no_program_behind() {
    if !common::require_root("fastpath::a_killed_daemon_leaves_no_program_behind") {
        return;
    }
    let s = Scenario::up_with(on, false);
    assert!(s.ping("k1", "172.31.2.1"));
    let pid = s.pid("seg1");
    let ids = programs_of(pid);
    // vxt_encap on the TAP, vxt_decap on the underlay (and the links that hold them).
    assert!(ids.len() >= 2, "vxtund {pid} holds programs {ids:?}");
    assert!(ids.iter().all(|&id| program_exists(id)));
    // SAFETY: SIGKILL to the daemon this scenario started, by its recorded PID.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "vxtund {pid} did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The kernel detached and freed the programs with the process's last descriptor.
    let deadline = Instant::now() + Duration::from_secs(2);
    while ids.iter().any(|&id| program_exists(id)) {
        assert!(
            Instant::now() < deadline,
            "a dead daemon's programs {ids:?} are still in the kernel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Nothing forwards for the dead hub any more.
    assert!(!s.ping("l1", "172.31.1.1"));
}

#[test]
fn a_stopped_daemon_leaves_no_program_behind() {
    if !common::require_root("fastpath::a_stopped_daemon_leaves_no_program_behind") {
        return;
    }
    let s = Scenario::up_with(on, false);
    let pid = s.pid("seg2");
    let ids = programs_of(pid);
    assert!(ids.len() >= 2, "vxtund {pid} holds programs {ids:?}");
    // SAFETY: SIGTERM to the daemon this scenario started, by its recorded PID.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        || ids.iter().any(|&id| program_exists(id))
    {
        assert!(
            Instant::now() < deadline,
            "programs {ids:?} outlived vxtund {pid}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_cap_bpf_auto_falls_back_to_the_userspace_path() {
    if !common::require_root("fastpath::without_cap_bpf_auto_falls_back") {
        return;
    }
    // vxtund as root but without the capabilities that load BPF programs (as under a unit
    // that does not grant CAP_BPF).
    let dir = std::env::temp_dir().join(common::unique("nobpf"));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("vxtund");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec setpriv --bounding-set -bpf,-sys_admin,-perfmon -- {} \"$@\"\n",
            env!("CARGO_BIN_EXE_vxtund")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = Scenario::up_bin(
        "config",
        str::to_owned,
        false,
        None,
        wrapper.to_str().unwrap(),
    );
    let show = vxtunctl(&s, "seg1", &["show"]);
    assert!(
        show.contains("fast path: userspace (fast_path = \"auto\": loading the BPF programs"),
        "{show}"
    );
    assert_eq!(
        s.log("seg1").matches("fast path off").count(),
        1,
        "one log line says why:\n{}",
        s.log("seg1")
    );
    s.assert_every_pair_pings();
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_daemons_share_one_underlay_device() {
    if !common::require_root("fastpath::two_daemons_share_one_underlay_device") {
        return;
    }
    // It counts frames in the kernel or compares timings: alone.
    let _serial = common::one_at_a_time();
    use common::Daemon;
    let (a, b) = common::two_hosts("fa", "192.168.95.1/24", "192.168.95.2/24");
    a.ip(&["addr", "add", "192.168.95.3/24", "dev", "ul0"]);
    b.ip(&["addr", "add", "192.168.95.4/24", "dev", "ul0"]);
    let mut daemons = Vec::new();
    for (n, local, remote) in [
        (1, "192.168.95.1", "192.168.95.2"),
        (2, "192.168.95.3", "192.168.95.4"),
    ] {
        // The kernel's vxlan as each daemon's peer, one VNI each, on the same port.
        let dev = format!("vx{n}");
        b.ip(&[
            "link",
            "add",
            &dev,
            "type",
            "vxlan",
            "id",
            &n.to_string(),
            "dstport",
            "8472",
            "local",
            remote,
            "remote",
            local,
            "dev",
            "ul0",
        ]);
        b.ip(&["addr", "add", &format!("10.95.{n}.2/24"), "dev", &dev]);
        b.ip(&["link", "set", &dev, "up"]);
        daemons.push(Daemon::start(
            &a,
            &format!(
                "[device]\nname = \"vxt{n}\"\nfast_path = \"on\"\naddresses = [\"10.95.{n}.1/24\"]\n\
                 [underlay]\nlocal = \"{local}\"\n\
                 [[tunnel]]\nname = \"peer\"\ntype = \"vxlan\"\nremote = \"{remote}\"\nvni = {n}\n"
            ),
        ));
    }
    for n in 1..=2 {
        let out = a.exec(
            "ping",
            &[
                "-q",
                "-c",
                "50",
                "-i",
                "0.01",
                "-w",
                "10",
                &format!("10.95.{n}.2"),
            ],
        );
        assert!(out.status.success(), "ping through daemon {n}: {out:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    for (n, d) in daemons.iter().enumerate() {
        let show = d.show();
        // Both directions of each daemon's flow in the kernel: its own decapsulation program
        // took its datagrams on the shared device and left the other's alone.
        let number = |label: &str| number_after(&show, label);
        // Of 50 each way: the first of each direction go up (and wait while their entry is
        // pending); most stay in the kernel.
        assert!(number("(encap ") >= 25, "daemon {}: {show}", n + 1);
        assert!(number(", decap ") >= 25, "daemon {}: {show}", n + 1);
        assert!(
            show.contains("wrong_vni=0") && show.contains("unknown_remote=0"),
            "{show}"
        );
    }
}

/// The encapsulation program sends through the neighbour layer, past IPsec's policies: with
/// any xfrm policy in force, `auto` keeps the userspace path (whose sockets the policies
/// cover) and says why, and `on` refuses to start.
#[test]
fn ipsec_policies_keep_the_tunnels_on_the_userspace_path() {
    if !common::require_root("fastpath::ipsec_policies_keep_the_tunnels_on_the_userspace_path") {
        return;
    }
    use common::Daemon;
    let (a, _b) = common::two_hosts("xa", "192.168.96.1/24", "192.168.96.2/24");
    let policy = [
        "xfrm",
        "policy",
        "add",
        "src",
        "192.168.96.1",
        "dst",
        "192.168.96.2",
        "proto",
        "udp",
        "dport",
        "8472",
        "dir",
        "out",
        "tmpl",
        "src",
        "192.168.96.1",
        "dst",
        "192.168.96.2",
        "proto",
        "esp",
        "mode",
        "transport",
    ];
    let added = a.ip(&policy);
    assert!(added.status.success(), "{added:?}");
    let config = |mode: &str| {
        format!(
            "[device]\nname = \"vxt0\"\nfast_path = \"{mode}\"\n[underlay]\nlocal = \"192.168.96.1\"\n\
             [[tunnel]]\nname = \"peer\"\ntype = \"vxlan\"\nremote = \"192.168.96.2\"\n"
        )
    };
    let d = Daemon::start(&a, &config("auto"));
    let show = d.show();
    assert!(
        show.contains(
            "fast path: userspace (fast_path = \"auto\": 1 IPsec (xfrm) policy is in force"
        ),
        "{show}"
    );
    drop(d);

    let dir = std::env::temp_dir().join(common::unique("xfrm"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("on.toml");
    common::write_private(&path, &config("on"));
    let mut child = a
        .vxtund(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fast_path = \"on\" started despite the IPsec policy");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        !status.success() && stderr.contains("IPsec (xfrm) polic"),
        "{status}: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tunnel for [`every_tunnel_and_underlay_is_carried_in_the_kernel`]: its lines in both
/// configs (with `REMOTE` for the peer's underlay address), the underlay's addresses, and
/// whether the receiving daemon keeps the userspace path.
struct TunnelCase {
    what: &'static str,
    tunnel: &'static str,
    underlay: [&'static str; 2],
    receiver_userspace: bool,
}

/// VXLAN over IPv6 and Ethernet over GRE over IPv4 and IPv6 (keyed and not) stay in the
/// kernel once decided: pings both ways and the TCP transfers' decapsulation are forwarded by
/// the programs and the bytes arrive intact. TCP's encapsulation stays with vxtund for VXLAN
/// over IPv6 (the outer UDP checksum); GRE's leaves from the kernel as superframes, which a
/// GRE peer on the userspace path receives whole and cuts (see
/// `a_superframe_received_whole_is_cut_no_larger_than_its_sender_cut_it`): every byte arrives.
#[test]
fn every_tunnel_and_underlay_is_carried_in_the_kernel() {
    if !common::require_root("fastpath::every_tunnel_and_underlay_is_carried_in_the_kernel") {
        return;
    }
    // It counts frames in the kernel: alone.
    let _serial = common::one_at_a_time();
    use common::Daemon;
    let cases = [
        TunnelCase {
            what: "VXLAN over IPv6",
            tunnel: "type = \"vxlan\"\nvni = 96\n",
            underlay: ["fd96::1", "fd96::2"],
            receiver_userspace: false,
        },
        TunnelCase {
            what: "GRE over IPv4",
            tunnel: "type = \"gre\"\n",
            underlay: ["192.168.96.1", "192.168.96.2"],
            receiver_userspace: false,
        },
        TunnelCase {
            what: "GRE over IPv6 with a key",
            tunnel: "type = \"gre\"\nkey = 7\n",
            underlay: ["fd96::1", "fd96::2"],
            receiver_userspace: false,
        },
        TunnelCase {
            what: "GRE over IPv4 to a peer on the userspace path",
            tunnel: "type = \"gre\"\nkey = 8\n",
            underlay: ["192.168.96.1", "192.168.96.2"],
            receiver_userspace: true,
        },
    ];
    for case in &cases {
        let prefix = if case.underlay[0].contains(':') {
            64
        } else {
            24
        };
        let (a, b) = common::two_hosts(
            "fg",
            &format!("{}/{prefix}", case.underlay[0]),
            &format!("{}/{prefix}", case.underlay[1]),
        );
        let config = |me: usize, userspace: bool| {
            format!(
                "[device]\nname = \"vxt0\"\nfast_path = \"{}\"\n\
                 addresses = [\"10.96.0.{}/24\", \"fd97::{}/64\"]\n\
                 [underlay]\nlocal = \"{}\"\n\
                 [[tunnel]]\nname = \"peer\"\nremote = \"{}\"\n{}",
                if userspace { "off" } else { "on" },
                me + 1,
                me + 1,
                case.underlay[me],
                case.underlay[1 - me],
                case.tunnel
            )
        };
        let da = Daemon::start(&a, &config(0, false));
        let db = Daemon::start(&b, &config(1, case.receiver_userspace));
        // The underlay's neighbours first (an IPv6 one takes about a second).
        let out = a.exec("ping", &["-q", "-c", "2", "-w", "5", case.underlay[1]]);
        assert!(
            out.status.success(),
            "{}: underlay ping: {out:?}",
            case.what
        );
        let out = a.exec(
            "ping",
            &["-q", "-c", "50", "-i", "0.01", "-w", "10", "10.96.0.2"],
        );
        assert!(out.status.success(), "{}: ping: {out:?}", case.what);
        for (from, to, addr) in [(&a, &b, "10.96.0.2"), (&b, &a, "fd97::1")] {
            if let Err(e) = common::tcp_transfer(from, to, addr, 20_000_000) {
                panic!(
                    "{}: to {addr}: {e}\nA:\n{}\nB:\n{}",
                    case.what,
                    da.show(),
                    db.show()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(400));
        let show_a = da.show();
        let show_b = db.show();
        let what = case.what;
        // Hits count what the programs forwarded, superframes once: of 50 pings each way, the
        // first of each direction go up and most stay in the kernel (and GRE's TCP);
        // decapsulations add the transfer from B (some 300 superframes, or its segments).
        let minimum = 25;
        let encap = number_after(&show_a, "(encap ");
        assert!(
            encap >= minimum,
            "{what}: A encapsulated {encap}:\n{show_a}"
        );
        let decap = number_after(&show_a, ", decap ");
        assert!(decap >= 200, "{what}: A decapsulated {decap}:\n{show_a}");
        if case.receiver_userspace {
            assert!(show_b.contains("fast path: userspace"), "{what}: {show_b}");
        } else {
            let decap = number_after(&show_b, ", decap ");
            assert!(decap >= 200, "{what}: B decapsulated {decap}:\n{show_b}");
        }
        drop((da, db));
    }
}

/// A GRE superframe the kernel path sends out of a veth reaches a peer on the same host whole,
/// and a raw socket does not say what segments it was made of. The receiving vxtund cuts it
/// no larger than the connection's handshake allows (`vxtund::segments`), not at its own,
/// larger, MTU: A's TAP has an MTU of 1400 (its host's segments are 1400-byte packets), B's
/// tunnel MTU is 1462. Before, B re-cut A's segments to 1462 bytes, which a host beyond it
/// with A's MTU would drop. B writes every segment to its TAP as a frame of its own (offloads
/// off), where a capture sees each one's size.
#[test]
fn a_superframe_received_whole_is_cut_no_larger_than_its_sender_cut_it() {
    let test = "fastpath::a_superframe_received_whole_is_cut_no_larger_than_its_sender_cut_it";
    if !common::require_root(test) || !common::require_tools(test, &[("tcpdump", "tcpdump")]) {
        return;
    }
    let _serial = common::one_at_a_time();
    use common::Daemon;
    let (a, b) = common::two_hosts("fh", "192.168.97.1/24", "192.168.97.2/24");
    let config = |me: usize, device: &str| {
        format!(
            "[device]\nname = \"vxt0\"\naddresses = [\"10.97.0.{}/24\"]\n{device}\n\
             [underlay]\nlocal = \"192.168.97.{}\"\n\
             [[tunnel]]\nname = \"peer\"\ntype = \"gre\"\nremote = \"192.168.97.{}\"\n",
            me + 1,
            me + 1,
            2 - me
        )
    };
    let da = Daemon::start(&a, &config(0, "fast_path = \"on\"\nmtu = 1400"));
    let db = Daemon::start(&b, &config(1, "fast_path = \"off\"\noffload = false"));
    assert!(a.pings("10.97.0.2"), "no ping through the tunnel");
    // Every TCP frame from A that B writes to its TAP, written to a file as it comes (a
    // capture printed line by line falls behind and loses frames), read afterwards.
    let pcap = std::env::temp_dir().join(format!("vxtund-{}-fh.pcap", std::process::id()));
    let dump = Command::new("ip")
        .args([
            "netns", "exec", &b.name, "tcpdump", "-i", "vxt0", "-B", "32768", "-w",
        ])
        .arg(&pcap)
        .args(["tcp and src host 10.97.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    if let Err(e) = common::tcp_transfer(&a, &b, "10.97.0.2", 20_000_000) {
        panic!("to B: {e}\nA:\n{}\nB:\n{}", da.show(), db.show());
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: SIGTERM to the tcpdump this test started, by its PID.
    unsafe { libc::kill(dump.id() as i32, libc::SIGTERM) };
    let _ = dump.wait_with_output();
    let read = Command::new("tcpdump")
        .args(["-r"])
        .arg(&pcap)
        .args(["-n", "-e"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&pcap);
    let text = String::from_utf8_lossy(&read.stdout).into_owned();
    // "... ethertype IPv4 (0x0800), length 1414: 10.97.0.1.40000 > ..."
    let lengths: Vec<usize> = text
        .lines()
        .filter_map(|l| l.split(", length ").nth(1)?.split(':').next()?.parse().ok())
        .collect();
    let largest = lengths.iter().copied().max().unwrap_or(0);
    let show_a = da.show();
    // The transfer's segments left A from the kernel, as superframes.
    let encap = number_after(&show_a, "(encap ");
    assert!(encap >= 100, "A encapsulated {encap}:\n{show_a}");
    assert!(
        lengths.len() > 10_000,
        "B wrote {} TCP frames:\n{text}",
        lengths.len()
    );
    assert_eq!(
        largest,
        14 + 1400,
        "the largest TCP frame B wrote, in bytes (A's are 1,414)"
    );
    drop((da, db));
}

/// The outer header fields that must not change within a flow, from one line of `tcpdump -vv
/// -t -n` (IPv4: TOS, TTL, DF; IPv6: traffic class, flow label, hop limit; and a VXLAN
/// datagram's source port), or `None` for a line that is not an outer header.
fn outer_fields(line: &str) -> Option<String> {
    let (kind, rest) = if let Some(r) = line.strip_prefix("IP6 (") {
        ("IP6", r)
    } else {
        ("IP", line.strip_prefix("IP (")?)
    };
    // "... payload length: 238) fd96::1.40000 > fd96::2.8472: ..." for VXLAN;
    // "...) fd96::1 > fd96::2: GREv0, ..." for GRE.
    let (head, tail) = rest.split_once(" > ")?;
    let (inside, source) = head.rsplit_once(' ')?;
    let keep = ["tos", "ttl", "flags", "class", "flowlabel", "hlim"];
    let fields: Vec<&str> = inside
        .split(", ")
        .filter(|f| keep.iter().any(|k| f.starts_with(k)))
        .collect();
    let sport = match tail.split_whitespace().next()?.ends_with(".8472:") {
        true => source.rsplit('.').next().unwrap_or(""),
        false => "-",
    };
    Some(format!("{kind} {} sport {sport}", fields.join(", ")))
}

/// VXLAN over IPv6 and GRE over IPv4 and IPv6: a flow's outer headers are the same whether
/// vxtund sent them (its first packets) or the kernel path (the rest): TOS or traffic class
/// (the inner DSCP copied, CE carried out as ECT(0)), TTL or hop limit, DF, the IPv6 flow label
/// (0 for VXLAN, the inner flow's hash for GRE) and VXLAN's source port; and the UDP checksum the program
/// computes over IPv6 is right.
#[test]
fn ipv6_and_gre_outer_headers_are_the_same_from_both_paths() {
    if !common::require_root("fastpath::ipv6_and_gre_outer_headers_are_the_same_from_both_paths") {
        return;
    }
    // It counts frames in the kernel: alone.
    let _serial = common::one_at_a_time();
    use common::Daemon;
    // The echo requests alone: 180 bytes of data make a 222-byte inner frame.
    let cases = [
        (
            "VXLAN over IPv6",
            "type = \"vxlan\"\nvni = 96\n",
            ["fd96::1", "fd96::2"],
            "ip6[4:2] = 238",
        ),
        (
            "GRE over IPv6 with a key",
            "type = \"gre\"\nkey = 7\n",
            ["fd96::1", "fd96::2"],
            "ip6[4:2] = 230",
        ),
        (
            "GRE over IPv4",
            "type = \"gre\"\n",
            ["192.168.96.1", "192.168.96.2"],
            "ip[2:2] = 246",
        ),
    ];
    for (what, tunnel, underlay, filter) in cases {
        let prefix = if underlay[0].contains(':') { 64 } else { 24 };
        let (a, b) = common::two_hosts(
            "fh",
            &format!("{}/{prefix}", underlay[0]),
            &format!("{}/{prefix}", underlay[1]),
        );
        let config = |me: usize| {
            format!(
                "[device]\nname = \"vxt0\"\nfast_path = \"on\"\naddresses = [\"10.96.0.{}/24\"]\n\
                 [underlay]\nlocal = \"{}\"\n\
                 [[tunnel]]\nname = \"peer\"\nremote = \"{}\"\ntos = \"inherit\"\n{tunnel}",
                me + 1,
                underlay[me],
                underlay[1 - me],
            )
        };
        let da = Daemon::start(&a, &config(0));
        let _db = Daemon::start(&b, &config(1));
        let out = a.exec("ping", &["-q", "-c", "2", "-w", "5", underlay[1]]);
        assert!(out.status.success(), "{what}: underlay ping: {out:?}");
        assert!(a.pings("10.96.0.2"), "{what}: no ping through the tunnel");
        // A new flow (another ICMP identifier): its first requests go up.
        let dump = Command::new("ip")
            .args([
                "netns", "exec", &a.name, "tcpdump", "-i", "ul0", "-n", "-l", "-t",
            ])
            .args(["-vv", &format!("dst host {} and {filter}", underlay[1])])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let encap_before = number_after(&da.show(), "(encap ");
        let out = a.exec("ping", &marked_pings("10.96.0.2"));
        assert!(out.status.success(), "{what}: ping: {out:?}");
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: SIGTERM to the tcpdump this test started, by its PID.
        unsafe { libc::kill(dump.id() as i32, libc::SIGTERM) };
        let text = String::from_utf8_lossy(&dump.wait_with_output().unwrap().stdout).into_owned();
        settle();
        let encap = number_after(&da.show(), "(encap ") - encap_before;
        assert!(
            encap >= 20,
            "{what}: the kernel sent {encap} of 30:\n{}",
            da.show()
        );
        // tcpdump -v puts an IPv4 header's addresses on the next line: one line per packet.
        let mut joined: Vec<String> = Vec::new();
        let mut raw = text.lines().peekable();
        while let Some(line) = raw.next() {
            match line.starts_with("IP (") && !line.contains(" > ") {
                true => joined.push(format!("{line} {}", raw.next().unwrap_or("").trim())),
                false => joined.push(line.to_owned()),
            }
        }
        let lines: Vec<&str> = joined
            .iter()
            .map(String::as_str)
            .filter(|l| l.contains(&format!("> {}", underlay[1])) && outer_fields(l).is_some())
            .collect();
        let headers: Vec<String> = lines.iter().filter_map(|l| outer_fields(l)).collect();
        assert!(
            headers.len() >= 30,
            "{what}: captured {}:\n{text}",
            headers.len()
        );
        assert!(
            headers.iter().all(|h| h == &headers[0]),
            "{what}: outer headers differ within the flow:\n{}",
            headers.join("\n")
        );
        let first = &headers[0];
        assert!(first.contains("0xba"), "{what}: {first}");
        if first.starts_with("IP6") {
            // VXLAN: label 0, as the kernel's vxlan sends (tcpdump leaves it out); GRE: the
            // inner flow's hash.
            let labelled = first.contains("flowlabel 0x");
            assert_eq!(labelled, what.starts_with("GRE"), "{what}: {first}");
        } else {
            assert!(first.contains("[DF]"), "{what}: {first}");
        }
        if what.starts_with("VXLAN") {
            // The kernel path's datagrams (the last ones) carry a UDP checksum that is right.
            for line in &lines[lines.len() - 20..] {
                assert!(line.contains("[udp sum ok]"), "{what}: {line}\n{text}");
            }
        }
    }
}

/// `ping`'s arguments for the captures that compare both paths' outer headers: 30 requests
/// of a new flow (the first go up, the later stay in the kernel) with DSCP 0x2e and CE inside
/// (TOS 0xbb), which the outer header must carry as the DSCP and ECT(0) (RFC 6040).
fn marked_pings(target: &str) -> [&str; 10] {
    [
        "-q", "-c", "30", "-i", "0.02", "-s", "180", "-Q", "0xbb", target,
    ]
}
