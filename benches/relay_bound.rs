//! The bound on what vxtund's design can carry on this machine: a VXLAN relay that does only
//! what any TAP-and-socket tunnel must, with vxtund's own I/O and offload code, and nothing
//! that makes vxtund a switch. Per direction one thread:
//! - TAP -> underlay: read frames from a one-queue TAP with its offloads on, split TSO and USO
//!   superframes into segments ([`offload::segment`]), put an 8-byte VXLAN header (VNI 42) in
//!   front of each and send them to the one remote with UDP GSO
//!   ([`UnderlaySocket::send_batch`]);
//! - underlay -> TAP: receive with UDP GRO ([`UnderlaySocket::recv_batch`]), drop the VXLAN
//!   header, coalesce consecutive segments of a flow ([`offload::plan_runs_checked`], trusting
//!   their checksums as vxtund's `inner_checksum = "auto"` does for datagrams that came with an
//!   outer checksum) and write them to the TAP as superframes.
//!
//! No flow table, MAC learning, counters, ECN, MSS clamping, source-port spreading, checks of
//! the VXLAN header or of the sender, reload or control plane: what vxtund does beyond this
//! relay is its price per byte. One queue, so one flow's bound (vxtund spreads several flows
//! over workers).
//!
//! `benches/iperf.sh` runs it as the path `bound` (`PATHS="kernel vxtund bound"`), measured in
//! the same rounds as the kernel's vxlan and vxtund: `relay_bound relay LOCAL REMOTE ADDRESS`
//! (as root, in the namespace of its underlay address LOCAL) creates the TAP `vxt0` with
//! ADDRESS, prints `relay ready` and relays until killed; `RELAY_BUSY_POLL_US` makes both
//! threads poll that long before they sleep, as vxtund's `busy_poll_us`.
//!
//! Run alone (`sudo cargo bench --bench relay_bound`, or under `cargo test`), it builds two
//! namespaces joined by a veth, starts a relay in each and checks that a ping and a TCP
//! transfer (iperf3, 2 s; 5 s under `cargo bench`) cross them, printing the transfer's rate.
//! Without root it says SKIPPED and stops (and fails under CI, which runs as root), as the
//! namespace tests do.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use ipnet::IpNet;
use socket2::SockAddr;
use vxtund::io::socket::{RecvBatch, SendItem, UnderlaySocket, BATCH, MAX_DATAGRAM};
use vxtund::io::tap::{MacChoice, Rings, Tap};
use vxtund::io::Poller;
use vxtund::wire::offload::{self, Segmented, VnetHdr, VNET_HDR_LEN};
use vxtund::wire::vxlan;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{veth, KillOnDrop, Netns};

/// The VXLAN port, as vxtund's default.
const PORT: u16 = 8472;
/// The TAP's MTU: a 1500-byte underlay less IPv4, UDP, VXLAN and the inner Ethernet header.
const MTU: u16 = 1450;
/// Bytes read from the TAP before a batch is sent, as vxtund's.
const TAP_READ_BUDGET: usize = 192 * 1024;
/// A TAP read buffer: the virtio-net header, an Ethernet header with a VLAN tag, a superframe.
const TAP_BUFFER: usize = VNET_HDR_LEN + 18 + MAX_DATAGRAM;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["relay", local, remote, address] => relay(
            local.parse().expect("LOCAL: an IP address"),
            remote.parse().expect("REMOTE: an IP address"),
            address
                .parse()
                .expect("ADDRESS: an address with its prefix"),
        ),
        _ => check(std::env::args().any(|a| a == "--bench")),
    }
}

/// Relays between the TAP `vxt0` (created with `address`) and `remote` over UDP from `local`,
/// until killed.
fn relay(local: IpAddr, remote: IpAddr, address: IpNet) {
    let tap = Tap::open(
        "vxt0",
        MTU,
        &[address],
        None,
        true,
        MacChoice::Kernel,
        Rings {
            queues: 1,
            txqueuelen: None,
        },
    )
    .expect("opening the TAP");
    assert!(tap.vnet(), "the TAP has no offloads here");
    let socket = UnderlaySocket::udp(local, PORT, true, true).expect("the VXLAN socket");
    let remote = SockAddr::from(SocketAddr::new(remote, PORT));
    let spin = std::env::var("RELAY_BUSY_POLL_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&us: &u64| us > 0)
        .map(Duration::from_micros);
    println!("relay ready");
    io::stdout().flush().expect("stdout");
    std::thread::scope(|s| {
        s.spawn(|| tap_to_underlay(&tap, &socket, &remote, spin));
        s.spawn(|| underlay_to_tap(&tap, &socket, spin));
    });
}

/// Sleeps in `poll` until the descriptor is ready, polling `spin` long first if set.
fn wait(poller: &mut Poller, spin: Option<Duration>) {
    let waited = match spin {
        Some(spin) => poller.wait_spinning(spin, None),
        None => poller.wait(),
    };
    waited.expect("poll");
}

/// TAP -> underlay, batch after batch.
fn tap_to_underlay(tap: &Tap, socket: &UnderlaySocket, remote: &SockAddr, spin: Option<Duration>) {
    let header = vxlan::Header { vni: 42 }.encode();
    let mut bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; TAP_BUFFER].into_boxed_slice())
        .collect();
    let mut lens = [0usize; BATCH];
    let (mut segs, mut ranges) = (Vec::new(), Vec::new());
    // Per frame read: its segments in `ranges`, or None to send the frame as it is.
    let mut shapes: Vec<Option<std::ops::Range<usize>>> = Vec::with_capacity(BATCH);
    let mut poller = Poller::new(&[tap.fd(0)]);
    loop {
        let (mut n, mut bytes) = (0, 0);
        while n < BATCH && bytes < TAP_READ_BUDGET {
            match tap.recv(0, &mut bufs[n]) {
                Ok(len) if len > VNET_HDR_LEN => {
                    lens[n] = len;
                    bytes += len;
                    n += 1;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading the TAP: {e}"),
            }
        }
        if n == 0 {
            wait(&mut poller, spin);
            continue;
        }
        segs.clear();
        ranges.clear();
        shapes.clear();
        for (buf, &len) in bufs.iter_mut().zip(&lens).take(n) {
            let first = ranges.len();
            let shape = VnetHdr::decode(buf).and_then(|hdr| {
                offload::segment(&hdr, &mut buf[VNET_HDR_LEN..len], &mut segs, &mut ranges).ok()
            });
            shapes.push(match shape {
                Some(Segmented::Split) => Some(first..ranges.len()),
                _ => None,
            });
        }
        let frames = shapes.iter().enumerate().flat_map(|(i, shape)| {
            let whole = std::iter::once(&bufs[i][VNET_HDR_LEN..lens[i]]);
            let split = shape
                .clone()
                .into_iter()
                .flat_map(|r| ranges[r].iter().map(|s| &segs[s.clone()]));
            // A superframe goes as its segments, any other frame as it is.
            whole.filter(move |_| shape.is_none()).chain(split)
        });
        socket.send_batch(
            frames.map(|payload| SendItem {
                dst: remote,
                header: &header,
                payload,
                tag: 0,
                tos: 0,
                ttl: 0,
            }),
            |_, e| eprintln!("relay: send failed: {e}"),
        );
    }
}

/// Underlay -> TAP, batch after batch.
fn underlay_to_tap(tap: &Tap, socket: &UnderlaySocket, spin: Option<Duration>) {
    let mut batch = RecvBatch::default();
    let mut runs = Vec::new();
    let udp = tap.offloads().udp;
    let mut poller = Poller::new(&[socket.fd()]);
    loop {
        // An ICMP error reported on the socket (the far relay not up yet, say) is no reason
        // to stop.
        let n = socket.recv_batch(&mut batch).unwrap_or_else(|e| {
            eprintln!("relay: receive failed: {e}");
            0
        });
        if n == 0 {
            wait(&mut poller, spin);
            continue;
        }
        let frames: Vec<&[u8]> = (0..n)
            .filter_map(|i| batch.get(i))
            .filter_map(|(_, datagram)| datagram.get(vxlan::HEADER_LEN..))
            .collect();
        runs.clear();
        offload::plan_runs_checked(&frames, udp, false, &mut runs);
        for run in &runs {
            let sent = if run.count == 1 {
                tap.send(0, frames[run.first])
            } else {
                tap.send_superframe(
                    0,
                    &run.hdr,
                    &run.headers[..run.headers_len],
                    frames[run.first..run.first + run.count]
                        .iter()
                        .map(|f| offload::run_payload(run, f)),
                )
            };
            if let Err(e) = sent {
                eprintln!("relay: TAP write failed: {e}");
            }
        }
    }
}

/// Two namespaces, a relay in each, a ping and a TCP transfer across them.
fn check(bench: bool) {
    if !common::require_root("relay_bound") {
        return;
    }
    let a = Netns::new("rb");
    let b = Netns::new("rb");
    veth(&a, "ul0", "10.204.0.1/24", &b, "ul0", "10.204.0.2/24");
    let exe = std::env::current_exe().expect("own path");
    let start = |ns: &Netns, local: &str, remote: &str, address: &str| {
        let mut child = KillOnDrop(
            Command::new("ip")
                .args(["netns", "exec", &ns.name])
                .arg(&exe)
                .args(["relay", local, remote, address])
                .stdout(Stdio::piped())
                .spawn()
                .expect("starting a relay"),
        );
        let mut line = String::new();
        let out = child.0.stdout.take().expect("the relay's output");
        io::BufRead::read_line(&mut io::BufReader::new(out), &mut line).expect("reading");
        assert_eq!(
            line.trim(),
            "relay ready",
            "relay_bound: the relay did not start"
        );
        child
    };
    let _relay_a = start(&a, "10.204.0.1", "10.204.0.2", "10.98.0.1/24");
    let _relay_b = start(&b, "10.204.0.2", "10.204.0.1", "10.98.0.2/24");
    assert!(
        (0..20).any(|_| a.pings("10.98.0.2")),
        "relay_bound: no ping across the relays"
    );
    let _server = KillOnDrop(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &b.name,
                "iperf3",
                "-s",
                "-1",
                "-B",
                "10.98.0.2",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting iperf3 -s"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let secs = if bench { "5" } else { "2" };
    let out = a.exec("iperf3", &["-c", "10.98.0.2", "-t", secs, "-J"]);
    assert!(out.status.success(), "relay_bound: iperf3 failed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3's JSON");
    let bits = json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("iperf3's received rate");
    // Even a debug build on a busy machine carries far more than this; nothing carried fails.
    assert!(
        bits > 1e8,
        "relay_bound: only {bits} bit/s crossed the relays"
    );
    println!(
        "relay_bound: one TCP stream across the relays, {secs} s: {:.2} Gbit/s",
        bits / 1e9
    );
}
