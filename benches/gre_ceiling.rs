//! The ceiling for GRE sent one packet per system-call message, as vxtund must send it (raw
//! sockets have no segmentation offload, and the virtio-net header of TAP and packet sockets
//! has no GRE type): how many 1500-byte GRE packets per second one core pushes into a second
//! network namespace over a veth, with nothing else running. No TAP, no TCP, no iperf3, no
//! switch; the sender is pinned to one core and the receiver, which reads without ever
//! sleeping, to the other. Two senders:
//! - `raw IP`: vxtund's own send path ([`UnderlaySocket::gre`] with DF and
//!   [`UnderlaySocket::send_batch`]), packets as `benches/iperf.sh` has vxtund send them (GRE
//!   with key 42);
//! - `packet`: an `AF_PACKET` socket given the same packets as whole Ethernet frames, which
//!   skips the sender's route lookup and IP output, and with them the host's firewall, IPsec
//!   policies and policy routing. For comparison only: vxtund does not send this way.
//!
//! The receiver is vxtund's receiving GRE socket ([`UnderlaySocket::recv_batch`]). Both
//! counts are printed: a receiver that fell behind shows as fewer received than sent.
//! Packets per second are also given as the TCP payload they would carry through the tunnel.
//!
//! Run with `sudo cargo bench --bench gre_ceiling` (`RUNS`, default 3, and `DURATION` in
//! seconds, default 5). Under `cargo test` it makes one short run of each sender and checks
//! that the packets arrived. It needs root: without it, it says SKIPPED and stops (and fails
//! under CI, which runs as root), as the namespace tests do; their helpers in `tests/common`
//! build and remove its namespaces.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use socket2::SockAddr;
use vxtund::io::socket::{RecvBatch, SendItem, UnderlaySocket};
use vxtund::wire::{checksum, ethernet, gre, ip, IPV4_HEADER_LEN};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{veth, KillOnDrop, Netns};

/// Underlay MTU, and so the size of every packet: outer IPv4, GRE and the inner frame.
const PACKET_LEN: usize = 1500;
/// The GRE header the benchmark's tunnels use (`key = 42` in `benches/iperf.sh`).
const GRE_HEADER: gre::Header = gre::Header {
    csum: false,
    key: Some(42),
    seq: None,
};
/// Inner IPv4 (20), TCP (20) and the TCP timestamp option (12).
const INNER_HEADERS: usize = 20 + 20 + 12;
/// The IP protocol number of GRE.
const PROTO_GRE: u8 = 47;
/// Packets per `sendmmsg` from the packet sender (vxtund's `send_batch` sends up to 128).
const BATCH: usize = 128;
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 1);
const RECEIVER: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 2);
/// The receiver stops once no packet came for this long after the first.
const QUIET: Duration = Duration::from_millis(300);
/// How much longer than the sender the receiver may run at most.
const RECEIVER_SLACK: f64 = 2.0;
/// Time given the receiver to open its socket before the sender starts.
const RECEIVER_START: Duration = Duration::from_millis(300);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["receive", secs] => receive(seconds(secs)),
        ["send-raw", secs] => send_raw(seconds(secs)),
        ["send-packet", secs, peer_mac] => send_packet(seconds(secs), peer_mac),
        _ => orchestrate(args.contains(&"--bench")),
    }
}

/// A duration given in seconds on the command line (by [`orchestrate`], always valid).
fn seconds(arg: &str) -> Duration {
    Duration::from_secs_f64(arg.parse().expect("a number of seconds"))
}

/// Runs each sender `RUNS` times in fresh namespaces, removed at the end, and prints a table.
fn orchestrate(bench: bool) {
    if !common::require_root("gre_ceiling") {
        return;
    }
    let env = |name: &str| std::env::var(name).ok();
    let (runs, secs) = if bench {
        (
            env("RUNS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3usize)
                .max(1),
            env("DURATION")
                .and_then(|v| v.parse().ok())
                .unwrap_or(5.0f64),
        )
    } else {
        (1, 0.5)
    };
    // TCP payload per packet: the inner frame less its Ethernet, IPv4 and TCP headers.
    let tcp_payload =
        PACKET_LEN - IPV4_HEADER_LEN - GRE_HEADER.len() - ethernet::HEADER_LEN - INNER_HEADERS;
    let a = Netns::new("gc");
    let b = Netns::new("gc");
    veth(
        &a,
        "ul0",
        &format!("{SENDER}/24"),
        &b,
        "ul0",
        &format!("{RECEIVER}/24"),
    );
    // Resolves the receiver's address, which the raw IP sender's kernel would otherwise do
    // during the first run.
    assert!(
        a.pings(&RECEIVER.to_string()),
        "gre_ceiling: no ping over the veth"
    );
    let peer_mac = stdout(b.exec("cat", &["/sys/class/net/ul0/address"]));
    println!(
        "| sender ({runs} run(s) of {secs} s) | packets/s received: median (min-max) \
         | sent | as TCP payload, Gbit/s |"
    );
    println!("|---|---|---|---|");
    for (name, role) in [("raw IP (vxtund's)", "send-raw"), ("packet", "send-packet")] {
        let (mut received, mut sent) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let limit = (secs + RECEIVER_SLACK).to_string();
            let mut receiver = KillOnDrop(
                in_role(&b, 1, &["receive", &limit])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("starting the receiver"),
            );
            std::thread::sleep(RECEIVER_START);
            let secs_arg = secs.to_string();
            let mut args = vec![role, secs_arg.as_str()];
            if role == "send-packet" {
                args.push(peer_mac.trim());
            }
            let sender = stdout(in_role(&a, 0, &args).output().expect("running the sender"));
            // The receiver ends by itself once the packets stop; KillOnDrop only reaps it.
            let mut counts = String::new();
            if let Some(mut out) = receiver.0.stdout.take() {
                let _ = out.read_to_string(&mut counts);
            }
            assert!(
                matches!(receiver.0.wait(), Ok(s) if s.success()),
                "gre_ceiling: {name}: the receiver failed"
            );
            let (count, elapsed) = parse_counts(&counts);
            assert!(count > 0, "gre_ceiling: {name}: nothing arrived");
            received.push(count as f64 / elapsed);
            let (count, elapsed) = parse_counts(&sender);
            sent.push(count as f64 / elapsed);
        }
        let (median, min, max) = spread(&mut received);
        let (sent, _, _) = spread(&mut sent);
        let gbit = median * (tcp_payload * 8) as f64 / 1e9;
        println!(
            "| {name} | {:.0}k ({:.0}k-{:.0}k) | {:.0}k | {gbit:.2} |",
            median / 1e3,
            min / 1e3,
            max / 1e3,
            sent / 1e3
        );
    }
    println!(
        "{tcp_payload} bytes of TCP payload per {PACKET_LEN}-byte packet: each Gbit/s is {:.1}k packets/s",
        1e9 / (tcp_payload * 8) as f64 / 1e3
    );
}

/// Median (the lower one of an even count), minimum and maximum.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[(values.len() - 1) / 2],
        values[0],
        values[values.len() - 1],
    )
}

/// "COUNT SECONDS", as both roles print it.
fn parse_counts(line: &str) -> (u64, f64) {
    let mut words = line.split_whitespace();
    let count = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let elapsed: f64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0.0);
    (count, elapsed.max(1e-3))
}

/// This program in role `role`, inside `ns`, pinned to `cpu`.
fn in_role(ns: &Netns, cpu: usize, role: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("own path");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name, "taskset", "-c", &cpu.to_string()])
        .arg(exe)
        .args(role);
    c
}

/// The standard output of a command that must have succeeded.
fn stdout(out: Output) -> String {
    assert!(
        out.status.success(),
        "gre_ceiling: a command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads GRE packets with vxtund's receiving socket, without ever sleeping, until `limit` has
/// passed or none came for [`QUIET`] after the first; prints how many full-sized ones came
/// from the sender, and the time from the first batch to the last.
fn receive(limit: Duration) {
    let socket = UnderlaySocket::gre(RECEIVER.into(), true, true).expect("receiving GRE socket");
    let mut batch = RecvBatch::default();
    let start = Instant::now();
    let (mut count, mut first, mut last) = (0u64, None, start);
    while start.elapsed() < limit {
        let n = socket.recv_batch(&mut batch).unwrap_or(0);
        if n > 0 {
            let now = Instant::now();
            first.get_or_insert(now);
            last = now;
            count += (0..n)
                .filter_map(|i| batch.get(i))
                .filter(|&(src, p)| src == IpAddr::V4(SENDER) && p.len() == PACKET_LEN)
                .count() as u64;
        } else if first.is_some() && last.elapsed() > QUIET {
            break;
        }
    }
    let elapsed = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    println!("{count} {elapsed}");
}

/// The GRE header of every packet, and an inner frame that fills the packet to [`PACKET_LEN`].
fn gre_and_frame() -> (Vec<u8>, Vec<u8>) {
    let mut room = [0u8; gre::MAX_LEN];
    let len = GRE_HEADER.encode(&[], &mut room);
    let frame = vec![0u8; PACKET_LEN - IPV4_HEADER_LEN - len];
    (room[..len].to_vec(), frame)
}

/// Sends through vxtund's socket for IPv4 GRE with DF for `limit`; prints the count and time.
fn send_raw(limit: Duration) {
    let socket = UnderlaySocket::gre(SENDER.into(), true, false).expect("sending GRE socket");
    let (gre_header, frame) = gre_and_frame();
    let mut header = socket
        .outer_header(RECEIVER.into())
        .map(Vec::from)
        .unwrap_or_default();
    header.extend_from_slice(&gre_header);
    let dst = SockAddr::from(SocketAddr::new(RECEIVER.into(), 0));
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < limit {
        let mut failed = 0;
        let items = (0..BATCH).map(|_| SendItem {
            dst: &dst,
            header: &header,
            payload: &frame,
            tag: 0,
            tos: 0,
            ttl: 0,
        });
        socket.send_batch(items, |_, _| failed += 1);
        count += (BATCH - failed) as u64;
    }
    println!("{count} {}", start.elapsed().as_secs_f64());
}

/// Sends the same packets as [`send_raw`] as Ethernet frames to `peer_mac` through an
/// `AF_PACKET` socket on `ul0`, for `limit`; prints the count and time.
fn send_packet(limit: Duration, peer_mac: &str) {
    let mac = |text: &str| -> [u8; 6] {
        let mut m = [0u8; 6];
        for (b, h) in m.iter_mut().zip(text.trim().split(':')) {
            *b = u8::from_str_radix(h, 16).expect("a MAC address");
        }
        m
    };
    let own = std::fs::read_to_string("/sys/class/net/ul0/address").expect("ul0's address");
    let (gre_header, inner) = gre_and_frame();
    let mut outer = [0u8; IPV4_HEADER_LEN];
    outer[0] = 0x45;
    outer[2..4].copy_from_slice(&(PACKET_LEN as u16).to_be_bytes());
    outer[6..8].copy_from_slice(&ip::IPV4_DF.to_be_bytes());
    outer[8] = 64;
    outer[9] = PROTO_GRE;
    outer[12..16].copy_from_slice(&SENDER.octets());
    outer[16..20].copy_from_slice(&RECEIVER.octets());
    let sum = checksum::of(&[&outer]);
    outer[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = Vec::with_capacity(ethernet::HEADER_LEN + PACKET_LEN);
    frame.extend_from_slice(&mac(peer_mac));
    frame.extend_from_slice(&mac(&own));
    frame.extend_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(&outer);
    frame.extend_from_slice(&gre_header);
    frame.extend_from_slice(&inner);
    let start = Instant::now();
    let count = packet_send_loop(&frame, || start.elapsed() < limit);
    println!("{count} {}", start.elapsed().as_secs_f64());
}

/// Sends `frame` on `ul0` through an `AF_PACKET` socket, [`BATCH`] copies per `sendmmsg`,
/// while `go` says so; returns how many went.
fn packet_send_loop(frame: &[u8], mut go: impl FnMut() -> bool) -> u64 {
    // SAFETY: plain socket creation; protocol 0 receives nothing.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: an all-zero sockaddr_ll is valid; the fields are then set.
    let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = ethernet::ETHERTYPE_IPV4.to_be();
    // SAFETY: a NUL-terminated name.
    ll.sll_ifindex = unsafe { libc::if_nametoindex(c"ul0".as_ptr()) } as i32;
    let mut bufs = vec![frame.to_vec(); BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut hdrs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
        h.msg_hdr.msg_name = (&mut ll as *mut libc::sockaddr_ll).cast();
        h.msg_hdr.msg_namelen = std::mem::size_of_val(&ll) as u32;
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    let mut count = 0u64;
    while go() {
        // SAFETY: every header points at `ll` and at one iovec over a buffer of `bufs`, all
        // alive and unmoved until the function returns; the kernel reads them and writes only
        // the headers' msg_len.
        let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), BATCH as u32, 0) };
        assert!(n >= 0, "sendmmsg: {}", std::io::Error::last_os_error());
        count += n as u64;
    }
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    count
}
