//! EVPN at fabric scale through the real daemon (issue #26, "Scale"): a BGP speaker of our own
//! announces 1,000 remote VTEPs (type-3) and 100,000 MACs (type-2, 100 per UPDATE) to a
//! vxtund in a network namespace, and this measures
//!
//! * the time from vxtund's start, and from the session's Established, until its flood list
//!   (`vxtund_evpn_remote_vteps`: VTEP ports in force) and MAC table (`vxtund_evpn_remote_macs`:
//!   remote entries installed) hold everything, polled every 5 ms on `/metrics`;
//! * VmRSS and VmHWM after the install, and the sockets the daemon holds (1,000 VTEPs must not
//!   be 1,000 sockets);
//! * the core's MAC lookup (`normal` to a remote MAC) with 100 and 100,000 remote MACs;
//! * one broadcast frame flooded to the 1,000 VTEPs: the core's decision, and the daemon's CPU
//!   time per frame written into its TAP (and that 1,000 copies left per frame);
//! * one TCP stream (iperf3) through the tunnel to the one real VTEP (the kernel's vxlan in a
//!   namespace, with the host's MAC announced behind it) without churn and while the speaker
//!   moves MACs between VTEPs at 10,000 route changes a second (each move is the new route,
//!   with the next MAC mobility sequence number, and the old one's withdrawal).
//!
//! The topology: namespace `vxe<pid>-d` holds vxtund (TAP `vxt0`, 10.99.0.1/24; underlay
//! 10.210.0.1 on a veth) and a veth `sink0` routing the 999 made-up VTEPs (10.211.0.0/16) to
//! its other end, which has no address and drops what it is sent; namespace `vxe<pid>-p` holds the speaker
//! (10.210.0.2, port 179), the kernel's vxlan `vx0` (VNI 100, the one real VTEP, 10.99.0.2/24)
//! and iperf3's server. Everything is removed at the end, also on a panic; processes are killed
//! by PID.
//!
//! Run (root; iperf3 installed, `scripts/setup.sh`):
//! `cargo bench --bench evpn_scale`; `FAST_PATH=off cargo bench --bench evpn_scale` for the
//! userspace path; `IPERF_SECS` (10) and `RUNS` (2, interleaved without and with churn) change
//! the TCP runs. Under `cargo test` it runs once with 2 s TCP runs, as a check.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use netgauze_bgp_pkt::nlri::RouteDistinguisher;
use netgauze_bgp_pkt::BgpMessage;
use vxtund::bgp::message::encode;
use vxtund::bgp::{Event, Session, SessionConfig, State};
use vxtund::evpn::route::{announce, end_of_rib, withdraw, Advert, RouteKey, RouteTarget};
use vxtund::fdb::{MacTable, DEFAULT_AGEING, DEFAULT_CAPACITY};
use vxtund::flow::{parse_flow, FlowTable, PortNames, PortNo};
use vxtund::switch::{Action, Port, PortKind, PortOptions, Switch, VxlanTunnel};
use vxtund::wire::ethernet::Mac;

const VTEPS: u32 = 1000;
const MACS: u32 = 100_000;
/// Routes per UPDATE, as a busy speaker packs them.
const PER_UPDATE: u32 = 100;
/// Route changes a second while churning: each 10 ms, 50 MACs move (50 announced, 50 withdrawn).
const CHURN_RATE: u32 = 10_000;
const CHURN_TICK: Duration = Duration::from_millis(10);
const VNI: u32 = 100;
const DAEMON_UL: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 1);
const SPEAKER: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 2);
const METRICS: &str = "127.0.0.1:9477";
/// Broadcast frames written into the TAP, and their rate.
const FLOOD_FRAMES: u32 = 1000;
const FLOOD_RATE: u32 = 250;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("evpn_scale: *** SKIPPED: needs root (namespaces) ***");
        return;
    }
    let fast_path = std::env::var("FAST_PATH").unwrap_or_else(|_| "auto".into());
    // Under `cargo test` (no `--bench`), one short round: the same checks, quickly.
    let bench = std::env::args().any(|a| a == "--bench");
    let iperf_secs: u32 = env_or("IPERF_SECS", if bench { 10 } else { 2 });
    let runs: u32 = env_or("RUNS", if bench { 2 } else { 1 });
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "evpn_scale: {VTEPS} VTEPs, {MACS} MACs (+1 real host), fast_path = {fast_path}, commit {commit}"
    );
    core_costs();

    let net = Net::new();
    let host_mac = net.host_mac();
    let initial = initial_stream(host_mac);
    let listener = in_ns(&net.p, || {
        TcpListener::bind((SPEAKER, 179)).expect("binding :179")
    })
    .join()
    .expect("listener thread");
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let (report_tx, report_rx) = mpsc::channel();
    let speaker = {
        let p = net.p.clone();
        let bytes = initial.bytes;
        thread::spawn(move || {
            enter(&p);
            speak(listener, bytes, cmd_rx, report_tx)
        })
    };

    let config = net.dir.join("vxtund.toml");
    fs::write(
        &config,
        format!(
            "[device]\nname = \"vxt0\"\nmtu = 1450\naddresses = [\"10.99.0.1/24\"]\nfast_path = \"{fast_path}\"\n\
             [underlay]\nlocal = \"{DAEMON_UL}\"\n\
             [evpn]\nasn = 65000\nneighbors = [\"{SPEAKER}\"]\nvni = {VNI}\n\
             [control]\nsocket = \"{}\"\n[metrics]\nlisten = \"{METRICS}\"\n",
            net.dir.join("ctl.sock").display()
        ),
    )
    .expect("writing the config");
    let log = File::create(net.dir.join("vxtund.log")).expect("log file");
    let start = Instant::now();
    let daemon = {
        let d = net.d.clone();
        let log2 = log.try_clone().expect("log file");
        in_ns(&d, move || {
            Command::new(env!("CARGO_BIN_EXE_vxtund"))
                .arg("--config")
                .arg(config)
                .args(["--log-level", "info"])
                .stdin(Stdio::null())
                .stdout(log2)
                .stderr(log)
                .spawn()
                .expect("starting vxtund")
        })
        .join()
        .expect("spawn thread")
    };
    let daemon = Killed::new(daemon, true);
    let pid = daemon.pid();

    let established = match report_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Report::Established(at)) => at,
        other => panic!("no session within 30 s: {other:?}; log {:?}", net.log()),
    };
    let sent = match report_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Report::Sent(at)) => at,
        other => panic!("the speaker did not send: {other:?}"),
    };
    let cpu_start = cpu_seconds(pid);
    let metrics = Metrics::new(&net.d);
    let want_macs = u64::from(MACS) + 1;
    let installed = loop {
        let m = metrics.read();
        if m.vteps == u64::from(VTEPS) && m.macs == want_macs {
            break Instant::now();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not installed after 120 s: {m:?}; log {:?}",
            net.log()
        );
        thread::sleep(Duration::from_millis(5));
    };
    let cpu_install = cpu_seconds(pid) - cpu_start;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let sockets = socket_fds(pid);
    let threads = status_field(&status, "Threads:");
    println!(
        "install: session Established {:.0} ms after start; {} UPDATEs ({:.1} MiB) written by {:.0} ms; \
         all {VTEPS} VTEPs and {want_macs} MACs installed {:.0} ms after start, {:.0} ms after Established \
         (vxtund CPU {:.2} s, at least, the part before Established not counted)",
        ms(established - start),
        initial.updates,
        initial.len as f64 / 1048576.0,
        ms(sent - start),
        ms(installed - start),
        ms(installed - established),
        cpu_install,
    );
    println!(
        "memory: VmRSS {:.1} MiB, VmHWM {:.1} MiB after install; sockets held: {sockets} (threads {threads})",
        status_field(&status, "VmRSS:") as f64 / 1024.0,
        status_field(&status, "VmHWM:") as f64 / 1024.0,
    );
    println!("swaps: {}", net.swap_lines());

    thread::sleep(Duration::from_secs(1));
    println!("memory 1 s later: {}", memory(pid));
    flood(&net, pid);
    println!("memory after the flood: {}", memory(pid));

    // The host's MAC is known; its ARP entry is made by a first ping.
    let ping = net.exec_d("ping", &["-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2"]);
    assert!(
        ping.status.success(),
        "no ping to the real VTEP's host: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let server = Killed::new(
        in_ns(&net.p, || {
            Command::new("iperf3")
                .args(["-s", "-B", "10.99.0.2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("iperf3 -s")
        })
        .join()
        .expect("spawn thread"),
        false,
    );
    thread::sleep(Duration::from_millis(300));
    let (mut calm, mut churned) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let c0 = cpu_seconds(pid);
        let gbit = iperf(&net, iperf_secs);
        let c1 = cpu_seconds(pid);
        println!(
            "run {}: TCP without churn {gbit:.2} Gbit/s (vxtund CPU {:.0} %); {}",
            run + 1,
            (c1 - c0) * 100.0 / f64::from(iperf_secs),
            memory(pid)
        );
        calm.push(gbit);
        cmd_tx
            .send(Cmd::Churn(Duration::from_secs(u64::from(iperf_secs) + 1)))
            .expect("speaker");
        thread::sleep(Duration::from_millis(500));
        let c0 = cpu_seconds(pid);
        let gbit = iperf(&net, iperf_secs);
        let c1 = cpu_seconds(pid);
        let changes = match report_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Report::Churned { changes, secs }) => f64::from(changes) / secs,
            other => panic!("the speaker did not churn: {other:?}"),
        };
        println!(
            "run {}: TCP with churn {gbit:.2} Gbit/s (vxtund CPU {:.0} %), {changes:.0} route changes/s; {}",
            run + 1,
            (c1 - c0) * 100.0 / f64::from(iperf_secs),
            memory(pid)
        );
        churned.push(gbit);
        let m = metrics.read();
        assert_eq!(
            (m.vteps, m.macs),
            (u64::from(VTEPS), want_macs),
            "after churn"
        );
    }
    let (c, w) = (median(&mut calm), median(&mut churned));
    println!(
        "churn: TCP median {c:.2} Gbit/s without, {w:.2} with {CHURN_RATE} changes/s: {:.0} % kept (target 90 %)",
        w / c * 100.0
    );
    println!(
        "memory at the end: {}; sockets held: {}",
        memory(pid),
        socket_fds(pid)
    );
    drop(server);
    drop(daemon);
    let _ = cmd_tx.send(Cmd::Stop);
    let _ = speaker.join();
}

/// The per-frame costs in the core alone: `normal` to a remote MAC with 100 and 100,000 remote
/// entries, and the flood decision for a broadcast with 1,000 VTEP ports.
fn core_costs() {
    let vtep_ports: Vec<Port> = std::iter::once(Port {
        no: PortNo(1),
        name: "vxt0".into(),
        kind: PortKind::Local,
        options: PortOptions::default(),
    })
    .chain((0..VTEPS).map(|i| Port {
        no: PortNo(4096 + i),
        name: format!("evpn-{}", 4096 + i),
        kind: PortKind::Vxlan(VxlanTunnel {
            remote: vtep(i),
            vni: VNI,
            dst_port: 8472,
        }),
        options: PortOptions {
            split_horizon: Some("evpn".into()),
            ..PortOptions::default()
        },
    }))
    .collect();
    let normal = || FlowTable::new(vec![parse_flow("actions=normal", &AnyPort).expect("flow")]);
    let mut line = String::from("core: normal to a remote MAC:");
    for n in [100u32, 100_000] {
        let sw = Switch::new(
            vtep_ports.clone(),
            normal(),
            MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
        );
        let wanted = (0..n).map(|m| (mac(m), PortNo(4096 + m % VTEPS))).collect();
        sw.fdb_mut().sync_remote(&wanted);
        let mut sw = sw;
        let frames: Vec<Vec<u8>> = (0..64)
            .map(|k| frame(mac(k * (n / 64)), [2, 0, 0, 0xee, 0, 1]))
            .collect();
        let per = time_per(200_000, |i, now| {
            let mut f = frames[i % frames.len()].clone();
            matches!(
                sw.handle_frame(PortNo(1), &mut f, now),
                Action::Forward(p) if p.len() == 1
            )
        });
        line += &format!(" {per:.0} ns with {n} remote MACs;");
    }
    println!("{}", line.trim_end_matches(';'));
    let mut sw = Switch::new(
        vtep_ports,
        normal(),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    );
    let bcast = frame(Mac([0xff; 6]), [2, 0, 0, 0xee, 0, 1]);
    let per = time_per(20_000, |_, now| {
        let mut f = bcast.clone();
        matches!(
            sw.handle_frame(PortNo(1), &mut f, now),
            Action::Forward(p) if p.len() == VTEPS as usize
        )
    });
    println!("core: the flood decision for a broadcast to {VTEPS} VTEP ports: {per:.0} ns");
}

/// Nanoseconds per call of `f`, each with a new instant (no decision is repeated from a
/// batch); panics when `f` says the decision was not the expected one.
fn time_per(n: usize, mut f: impl FnMut(usize, Instant) -> bool) -> f64 {
    let base = Instant::now();
    let start = Instant::now();
    for i in 0..n {
        assert!(
            f(i, base + Duration::from_nanos(i as u64 + 1)),
            "wrong decision"
        );
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

struct AnyPort;

impl PortNames for AnyPort {
    fn resolve(&self, _: &str) -> Option<PortNo> {
        None
    }
    fn exists(&self, _: PortNo) -> bool {
        true
    }
}

fn frame(dst: Mac, src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x88b5u16.to_be_bytes());
    f.resize(60, 0);
    f
}

/// The VTEP of index `i`: the real one (the speaker's namespace) first, then made-up ones.
fn vtep(i: u32) -> IpAddr {
    match i {
        0 => IpAddr::V4(SPEAKER),
        i => IpAddr::V4(Ipv4Addr::from(0x0ad3_0000 + i)),
    }
}

fn rd(i: u32) -> RouteDistinguisher {
    let IpAddr::V4(ip) = vtep(i) else {
        unreachable!()
    };
    RouteDistinguisher::Ipv4Administrator { ip, number: 100 }
}

/// MAC number `m` (block `m / 100` starts behind VTEP `m / 100`).
fn mac(m: u32) -> Mac {
    let b = m.to_be_bytes();
    Mac([2, 0x5c, b[0], b[1], b[2], b[3]])
}

fn route_targets() -> Vec<RouteTarget> {
    vec!["65000:100".parse().expect("route target")]
}

fn advert(vtep_index: u32, seq: u32) -> Advert {
    Advert {
        vtep: vtep(vtep_index),
        vni: VNI,
        route_targets: route_targets(),
        seq,
    }
}

fn mac_key(vtep_index: u32, m: Mac) -> RouteKey {
    RouteKey::MacIp {
        rd: rd(vtep_index),
        mac: m,
        ip: None,
    }
}

struct Stream {
    bytes: Vec<u8>,
    updates: usize,
    len: usize,
}

/// What the speaker sends once Established: every VTEP's type-3, then the MACs 100 per UPDATE
/// behind their VTEP, the real host's MAC behind the real VTEP, End-of-RIB.
fn initial_stream(host: Mac) -> Stream {
    let mut updates = Vec::new();
    for v in 0..VTEPS {
        let key = RouteKey::Imet {
            rd: rd(v),
            originator: vtep(v),
        };
        updates.push(announce(&[key], &advert(v, 0)));
    }
    let per_vtep = MACS / VTEPS;
    for v in 0..VTEPS {
        for chunk in (0..per_vtep)
            .collect::<Vec<_>>()
            .chunks(PER_UPDATE as usize)
        {
            let keys: Vec<RouteKey> = chunk
                .iter()
                .map(|m| mac_key(v, mac(v * per_vtep + m)))
                .collect();
            updates.push(announce(&keys, &advert(v, 0)));
        }
    }
    updates.push(announce(&[mac_key(0, host)], &advert(0, 0)));
    updates.push(end_of_rib());
    let mut bytes = Vec::new();
    for u in &updates {
        bytes.extend(encode(&BgpMessage::Update(u.clone())).expect("our UPDATE encodes"));
    }
    Stream {
        updates: updates.len(),
        len: bytes.len(),
        bytes,
    }
}

#[derive(Debug)]
enum Cmd {
    Churn(Duration),
    Stop,
}

#[derive(Debug)]
enum Report {
    Established(Instant),
    Sent(Instant),
    Churned { changes: u32, secs: f64 },
}

/// The speaker: accepts vxtund's connection, brings the session up with the project's own
/// state machine, sends `initial`, then keeps the session alive (reading and discarding what
/// vxtund advertises) and churns when told.
fn speak(listener: TcpListener, initial: Vec<u8>, cmds: Receiver<Cmd>, reports: Sender<Report>) {
    let (mut stream, _) = listener.accept().expect("accepting vxtund");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_millis(2)))
        .expect("timeout");
    let mut session = Session::new(SessionConfig {
        local_as: 65000,
        peer_as: 65000,
        router_id: SPEAKER,
        hold_time: 90,
    });
    session.connected(Instant::now());
    let mut buf = vec![0u8; 65536];
    let mut initial = Some(initial);
    let mut churn: Option<Churn> = None;
    // Where each block of 50 MACs is now: its VTEP and sequence number.
    let blocks = MACS / 50;
    let mut owner: Vec<u32> = (0..blocks).map(|b| b * 50 / (MACS / VTEPS)).collect();
    let mut seq: Vec<u32> = vec![0; blocks as usize];
    let mut next_block = 0u32;
    loop {
        if session.has_transmit() && stream.write_all(&session.take_transmit()).is_err() {
            return;
        }
        match cmds.try_recv() {
            Ok(Cmd::Churn(d)) => {
                let now = Instant::now();
                churn = Some(Churn {
                    until: now + d,
                    start: now,
                    next: now,
                    changes: 0,
                })
            }
            Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => session.receive(&buf[..n], Instant::now()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        session.tick(Instant::now());
        while let Some(event) = session.poll_event() {
            match event {
                Event::Established { .. } => {
                    let _ = reports.send(Report::Established(Instant::now()));
                    if let Some(bytes) = initial.take() {
                        if stream.write_all(&bytes).is_err() {
                            return;
                        }
                        let _ = reports.send(Report::Sent(Instant::now()));
                    }
                }
                Event::Closed(reason) => {
                    if !matches!(reason, vxtund::bgp::CloseReason::Stopped) {
                        eprintln!("speaker: session closed: {reason}");
                    }
                    return;
                }
                _ => {}
            }
        }
        if session.state() != State::Established {
            continue;
        }
        if let Some(c) = &mut churn {
            let now = Instant::now();
            if now >= c.until {
                let secs = (now - c.start).as_secs_f64();
                let _ = reports.send(Report::Churned {
                    changes: c.changes,
                    secs,
                });
                churn = None;
                continue;
            }
            while c.next <= now {
                // One tick: 50 MACs move to the next VTEP with the next sequence number;
                // the old routes are withdrawn.
                let per_tick = CHURN_RATE / 2 / (1000 / CHURN_TICK.as_millis() as u32);
                let mut moved = 0;
                while moved < per_tick {
                    let b = next_block as usize;
                    next_block = (next_block + 1) % blocks;
                    let macs: Vec<Mac> = (0..50).map(|k| mac(b as u32 * 50 + k)).collect();
                    let from = owner[b];
                    let to = (from + 1) % VTEPS;
                    owner[b] = to;
                    seq[b] += 1;
                    let new: Vec<RouteKey> = macs.iter().map(|&m| mac_key(to, m)).collect();
                    let old: Vec<RouteKey> = macs.iter().map(|&m| mac_key(from, m)).collect();
                    session.send_update(announce(&new, &advert(to, seq[b])), now);
                    session.send_update(withdraw(&old), now);
                    moved += 50;
                    c.changes += 100;
                }
                c.next += CHURN_TICK;
            }
        }
    }
}

struct Churn {
    until: Instant,
    start: Instant,
    next: Instant,
    changes: u32,
}

/// Broadcast frames written into vxtund's TAP from its namespace (a packet socket on `vxt0`):
/// vxtund's CPU time per frame, and the copies that reached the underlay.
fn flood(net: &Net, pid: u32) {
    let sink_before = net.tx_packets("sink0");
    let ul_before = net.tx_packets("ul0");
    let c0 = cpu_seconds(pid);
    let d = net.d.clone();
    let sent = in_ns(&d, move || {
        // SAFETY: plain socket calls on an fd this closure owns and closes.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "packet socket");
            let name = std::ffi::CString::new("vxt0").expect("name");
            let ifindex = libc::if_nametoindex(name.as_ptr());
            assert!(ifindex > 0, "vxt0's index");
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = ifindex as i32;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&[0xff; 6]);
            let f = frame(Mac([0xff; 6]), [2, 0, 0, 0xee, 0, 1]);
            let start = Instant::now();
            let mut sent = 0;
            for i in 0..FLOOD_FRAMES {
                let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(FLOOD_RATE));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                let n = libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                if n == f.len() as isize {
                    sent += 1;
                }
            }
            libc::close(fd);
            sent
        }
    })
    .join()
    .expect("flood thread");
    thread::sleep(Duration::from_millis(500));
    let cpu = cpu_seconds(pid) - c0;
    let (sink, ul) = (
        net.tx_packets("sink0") - sink_before,
        net.tx_packets("ul0") - ul_before,
    );
    let copies = sink + ul;
    println!(
        "flood: {sent} broadcast frames at {FLOOD_RATE}/s into the TAP: {:.2} copies per frame reached the underlay \
         ({sink} to the 999 made-up VTEPs, {ul} packets on the real VTEP's veth); vxtund CPU {:.0} us per frame, {:.2} us per copy \
         (so one core floods about {:.0} such frames a second)",
        copies as f64 / f64::from(sent),
        cpu * 1e6 / f64::from(sent),
        cpu * 1e6 / copies.max(1) as f64,
        f64::from(sent) / cpu
    );
}

/// One iperf3 TCP stream from vxtund's namespace to the real VTEP's host, in Gbit/s.
fn iperf(net: &Net, secs: u32) -> f64 {
    let out = net.exec_d(
        "timeout",
        &[
            &(secs + 20).to_string(),
            "iperf3",
            "-c",
            "10.99.0.2",
            "-t",
            &secs.to_string(),
            "-f",
            "g",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.contains("receiver"))
        .find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "Gbits/sec")?;
            words.get(at - 1)?.parse().ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "iperf3 said: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The two namespaces and their devices, deleted on drop.
struct Net {
    d: String,
    p: String,
    dir: PathBuf,
}

impl Net {
    fn new() -> Net {
        let pid = std::process::id();
        let net = Net {
            d: format!("vxe{pid}-d"),
            p: format!("vxe{pid}-p"),
            dir: std::env::temp_dir().join(format!("vxe{pid}")),
        };
        fs::create_dir_all(&net.dir).expect("temp dir");
        let (d, p) = (net.d.as_str(), net.p.as_str());
        run("ip", &["netns", "add", d]);
        run("ip", &["netns", "add", p]);
        run(
            "ip",
            &[
                "link", "add", "ul0", "netns", d, "type", "veth", "peer", "name", "ul0", "netns", p,
            ],
        );
        for (ns, addr) in [(d, "10.210.0.1/24"), (p, "10.210.0.2/24")] {
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run("ip", &["-n", ns, "addr", "add", addr, "dev", "ul0"]);
            run("ip", &["-n", ns, "link", "set", "ul0", "up"]);
        }
        // The made-up VTEPs: one static neighbour, a veth whose other end has no address,
        // so that what is sent there is counted and dropped without a peer's work.
        run(
            "ip",
            &[
                "-n", d, "link", "add", "sink0", "type", "veth", "peer", "name", "sink1",
            ],
        );
        for dev in ["sink0", "sink1"] {
            run("ip", &["-n", d, "link", "set", dev, "up"]);
        }
        let out = run("ip", &["-n", d, "-j", "link", "show", "sink1"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
        let sink1 = json[0]["address"].as_str().expect("sink1's MAC").to_owned();
        run(
            "ip",
            &[
                "-n",
                d,
                "neigh",
                "add",
                "10.211.255.254",
                "lladdr",
                &sink1,
                "dev",
                "sink0",
                "nud",
                "permanent",
            ],
        );
        run(
            "ip",
            &[
                "-n",
                d,
                "route",
                "add",
                "10.211.0.0/16",
                "via",
                "10.211.255.254",
                "dev",
                "sink0",
                "onlink",
            ],
        );
        run(
            "ip",
            &[
                "-n",
                p,
                "link",
                "add",
                "vx0",
                "type",
                "vxlan",
                "id",
                "100",
                "dstport",
                "8472",
                "local",
                "10.210.0.2",
                "dev",
                "ul0",
            ],
        );
        run("ip", &["-n", p, "link", "set", "vx0", "mtu", "1450", "up"]);
        run(
            "ip",
            &["-n", p, "addr", "add", "10.99.0.2/24", "dev", "vx0"],
        );
        run(
            "bridge",
            &[
                "-n",
                p,
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vx0",
                "dst",
                "10.210.0.1",
            ],
        );
        net
    }

    fn host_mac(&self) -> Mac {
        let out = run("ip", &["-n", &self.p, "-o", "link", "show", "vx0"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == "link/ether")
            .expect("vx0's MAC");
        let bytes: Vec<u8> = words[at + 1]
            .split(':')
            .map(|h| u8::from_str_radix(h, 16).expect("hex"))
            .collect();
        Mac(bytes.try_into().expect("6 bytes"))
    }

    fn exec_d(&self, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.d, program];
        all.extend_from_slice(args);
        Command::new("ip")
            .args(all)
            .output()
            .expect("ip netns exec")
    }

    /// Packets sent by `dev` in vxtund's namespace.
    fn tx_packets(&self, dev: &str) -> u64 {
        let out = run("ip", &["-n", &self.d, "-j", "-s", "link", "show", dev]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
        json[0]["stats64"]["tx"]["packets"]
            .as_u64()
            .expect("TX packets")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("vxtund.log")).unwrap_or_default()
    }

    /// vxtund's log lines about VTEP port swaps, summarised: how many, and the last.
    fn swap_lines(&self) -> String {
        let log = self.log();
        let swaps: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("remote VTEP(s); ports added"))
            .collect();
        let counts: Vec<String> = swaps
            .iter()
            .filter_map(|l| {
                let at = l.find("EVPN: ")? + 6;
                l[at..].split_whitespace().next().map(str::to_owned)
            })
            .collect();
        format!(
            "{} port swap(s) (VTEPs after each: {})",
            swaps.len(),
            counts.join(", ")
        )
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.d, &self.p] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A child process, stopped by PID on drop (SIGTERM and a wait of 3 s, then SIGKILL).
struct Killed(Child, bool);

impl Killed {
    fn new(child: Child, gently: bool) -> Killed {
        Killed(child, gently)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        if self.1 {
            // SAFETY: signalling our own child by its PID.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/metrics`, read from vxtund's namespace by a thread that lives there.
struct Metrics {
    ask: Sender<Sender<Counts>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    vteps: u64,
    macs: u64,
}

impl Metrics {
    fn new(ns: &str) -> Metrics {
        let (ask, asks) = mpsc::channel::<Sender<Counts>>();
        let ns = ns.to_owned();
        thread::spawn(move || {
            enter(&ns);
            for reply in asks {
                let _ = reply.send(scrape());
            }
        });
        Metrics { ask }
    }

    fn read(&self) -> Counts {
        let (tx, rx) = mpsc::channel();
        self.ask.send(tx).expect("metrics thread");
        rx.recv().expect("metrics thread")
    }
}

fn scrape() -> Counts {
    let Ok(mut s) = TcpStream::connect(METRICS.parse::<SocketAddr>().expect("address")) else {
        return Counts::default();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    Counts {
        vteps: value("vxtund_evpn_remote_vteps"),
        macs: value("vxtund_evpn_remote_macs"),
    }
}

/// Moves the calling thread into network namespace `ns` (a thread's own; the process's other
/// threads stay where they are).
fn enter(ns: &str) {
    let f = File::open(Path::new("/run/netns").join(ns)).expect("namespace file");
    // SAFETY: setns with a namespace fd we hold open; it changes only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

/// Runs `f` on a new thread inside namespace `ns` (sockets it opens and processes it starts
/// are there).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let ns = ns.to_owned();
    thread::spawn(move || {
        enter(&ns);
        f()
    })
}

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// User and system CPU seconds of process `pid`, all its threads.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis: utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / hz
}

/// VmRSS and VmHWM of `pid`, in words.
fn memory(pid: u32) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    format!(
        "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        status_field(&status, "VmRSS:") as f64 / 1024.0,
        status_field(&status, "VmHWM:") as f64 / 1024.0
    )
}

fn socket_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
