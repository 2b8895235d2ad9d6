//! The ceiling for GRE sent one packet per system-call message, as vxtund must send it (raw
//! sockets have no segmentation offload, and the virtio-net header of TAP and packet sockets
//! has no GRE type): how many 1500-byte GRE packets per second one core pushes into a second
//! network namespace over a veth, with nothing else running. No TAP, no TCP, no iperf3, no
//! encapsulation work; the receiver is a raw GRE socket read without ever sleeping, so it has
//! the other core to itself. Two senders:
//! - `raw IP`: what vxtund uses for IPv4 GRE with DF, an `IPPROTO_RAW` socket with the outer
//!   header written by the sender and an `IP_PROTOCOL` control message, 64 packets per
//!   `sendmmsg`;
//! - `packet`: an `AF_PACKET` socket given whole Ethernet frames, which skips the route lookup
//!   and IP output, and with them the host's firewall, IPsec policies and policy routing; for
//!   comparison only, vxtund does not send this way.
//!
//! Packets per second are also given as the TCP payload they would carry through a GRE tunnel
//! at this underlay MTU: 1410 bytes each (1500 - outer IPv4 20 - GRE 4 - Ethernet 14 - IPv4 20
//! - TCP 20 - timestamps 12).
//!
//! Run with `sudo cargo bench --bench gre_ceiling` (`RUNS`, default 3, and `DURATION` in
//! seconds, default 5). Under `cargo test` it makes one short run of each sender and checks
//! that the packets arrived. It needs root, and says so and stops when it is not.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Underlay packet size: outer IPv4 header, GRE header and the inner frame.
const PACKET_LEN: usize = 1500;
const IPV4_LEN: usize = 20;
const GRE_LEN: usize = 4;
const ETHERNET_LEN: usize = 14;
/// TCP payload per packet: the inner frame less Ethernet, IPv4, TCP and the timestamp option.
const TCP_PAYLOAD: usize = PACKET_LEN - IPV4_LEN - GRE_LEN - ETHERNET_LEN - 20 - 20 - 12;
const IPPROTO_GRE: i32 = 47;
const ETH_P_TEB: u16 = 0x6558;
/// `IP_PROTOCOL` (linux/in.h): the protocol a header-included send is routed by.
const IP_PROTOCOL: i32 = 52;
const BATCH: usize = 64;
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 1);
const RECEIVER: Ipv4Addr = Ipv4Addr::new(10, 203, 0, 2);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("receive") => receive(seconds(&args[1])),
        Some("send-raw") => send_raw(seconds(&args[1])),
        Some("send-packet") => send_packet(seconds(&args[1]), &args[2]),
        _ => orchestrate(args.iter().any(|a| a == "--bench")),
    }
}

fn seconds(arg: &str) -> Duration {
    Duration::from_secs_f64(arg.parse().expect("a number of seconds"))
}

/// The two senders, `runs` times each, in fresh namespaces removed at the end.
fn orchestrate(bench: bool) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("gre_ceiling: SKIPPED: needs root (it builds two network namespaces)");
        return;
    }
    let env = |name: &str, default: f64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (runs, secs) = if bench {
        (env("RUNS", 3.0) as usize, env("DURATION", 5.0))
    } else {
        (1, 0.5)
    };
    let ns = Namespaces::new();
    let peer_mac = ns.run_b(&["cat", "/sys/class/net/ul0/address"]);
    println!("| sender ({runs} run(s) of {secs} s, median) | packets/s received | as TCP payload, Gbit/s |");
    println!("|---|---|---|");
    for (name, role) in [("raw IP (vxtund's)", "send-raw"), ("packet", "send-packet")] {
        let mut rates = Vec::new();
        for _ in 0..runs {
            // The receiver waits up to two seconds longer, and stops once the packets stop.
            let receiver = ns.spawn_b(&["receive", &(secs + 2.0).to_string()]);
            std::thread::sleep(Duration::from_millis(300));
            let sent = ns.run_a_self(&[role, &secs.to_string(), peer_mac.trim()]);
            let received = wait_output(receiver);
            let (count, elapsed) = parse_received(&received);
            assert!(
                count > 0,
                "gre_ceiling: {name}: nothing arrived (sender said {sent:?})"
            );
            rates.push(count as f64 / elapsed);
        }
        rates.sort_by(f64::total_cmp);
        let pps = rates[rates.len() / 2];
        let gbit = pps * (TCP_PAYLOAD * 8) as f64 / 1e9;
        println!("| {name} | {:.0}k | {gbit:.2} |", pps / 1e3);
    }
    println!(
        "each Gbit/s of TCP payload over GRE is {:.1}k packets/s at a {PACKET_LEN}-byte underlay MTU",
        1e9 / (TCP_PAYLOAD * 8) as f64 / 1e3
    );
}

/// Two namespaces joined by a veth `ul0`, deleted on drop.
struct Namespaces {
    a: String,
    b: String,
}

impl Namespaces {
    fn new() -> Namespaces {
        let pid = std::process::id();
        let ns = Namespaces {
            a: format!("vxgc{pid}-a"),
            b: format!("vxgc{pid}-b"),
        };
        ip(&["netns", "add", &ns.a]);
        ip(&["netns", "add", &ns.b]);
        ip(&[
            "link", "add", "ul0", "netns", &ns.a, "type", "veth", "peer", "name", "ul0", "netns",
            &ns.b,
        ]);
        for (name, addr) in [(&ns.a, SENDER), (&ns.b, RECEIVER)] {
            ip(&["-n", name, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "ul0",
            ]);
            ip(&["-n", name, "link", "set", "ul0", "up"]);
        }
        // The sender's neighbour entry, so that the packet sender has nothing to resolve.
        let ping = Command::new("ip")
            .args(["netns", "exec", &ns.a, "ping", "-c", "1", "-W", "2"])
            .arg(RECEIVER.to_string())
            .stdout(Stdio::null())
            .status();
        assert!(
            matches!(ping, Ok(s) if s.success()),
            "gre_ceiling: no ping over the veth"
        );
        ns
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }

    fn run_b(&self, args: &[&str]) -> String {
        output(self.exec(&self.b, args).output())
    }

    fn spawn_b(&self, role: &[&str]) -> Child {
        let exe = std::env::current_exe().expect("own path");
        let exe = exe.to_str().expect("a UTF-8 path");
        let mut args = vec![exe];
        args.extend_from_slice(role);
        self.exec(&self.b, &args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the receiver")
    }

    fn run_a_self(&self, role: &[&str]) -> String {
        let exe = std::env::current_exe().expect("own path");
        let exe = exe.to_str().expect("a UTF-8 path");
        let mut args = vec![exe];
        args.extend_from_slice(role);
        output(self.exec(&self.a, &args).output())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "gre_ceiling: ip {}",
        args.join(" ")
    );
}

fn output(out: std::io::Result<std::process::Output>) -> String {
    let out = out.expect("running a command");
    assert!(
        out.status.success(),
        "gre_ceiling: a command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_output(child: Child) -> String {
    output(child.wait_with_output())
}

/// "COUNT SECONDS" as the receiver prints it.
fn parse_received(line: &str) -> (u64, f64) {
    let mut words = line.split_whitespace();
    let count = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let elapsed: f64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(1.0);
    (count, elapsed.max(1e-3))
}

/// Reads GRE packets from the sender without sleeping until `limit` has passed or none came
/// for 300 ms after the first; prints how many full-sized ones came and over how long.
fn receive(limit: Duration) {
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            IPPROTO_GRE,
        )
    };
    assert!(
        fd >= 0,
        "raw GRE socket: {}",
        std::io::Error::last_os_error()
    );
    let mut bufs = vec![[0u8; 2048]; BATCH];
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
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    let start = Instant::now();
    let (mut count, mut first, mut last) = (0u64, None, start);
    while start.elapsed() < limit {
        // SAFETY: every header points at one iovec over a live buffer of its length.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n > 0 {
            let now = Instant::now();
            first.get_or_insert(now);
            last = now;
            for (h, buf) in hdrs.iter().zip(&bufs).take(n as usize) {
                let from_sender = buf[12..16] == SENDER.octets();
                if h.msg_len as usize == PACKET_LEN && from_sender {
                    count += 1;
                }
            }
        } else if first.is_some() && last.elapsed() > Duration::from_millis(300) {
            break;
        }
    }
    let elapsed = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    println!("{count} {elapsed}");
}

/// A GRE packet with DF from the sender to the receiver: header checksum and total length set.
fn gre_packet() -> Vec<u8> {
    let mut p = vec![0u8; PACKET_LEN];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(PACKET_LEN as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = IPPROTO_GRE as u8;
    p[12..16].copy_from_slice(&SENDER.octets());
    p[16..20].copy_from_slice(&RECEIVER.octets());
    let sum = p[..IPV4_LEN]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let folded = (folded & 0xffff) + (folded >> 16);
    p[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    p[IPV4_LEN + 2..IPV4_LEN + GRE_LEN].copy_from_slice(&ETH_P_TEB.to_be_bytes());
    p
}

/// Sends `packet` copies from `fd` to `addr`, `BATCH` per `sendmmsg`, for `limit`; prints the
/// count. `cmsg` is an `IP_PROTOCOL` message for every send, when given.
fn send_loop(
    fd: i32,
    packet: &[u8],
    addr: (*const libc::sockaddr, u32),
    cmsg: Option<&mut [u64; 3]>,
    limit: Duration,
) {
    let mut bufs = vec![packet.to_vec(); BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let (control, control_len) = match cmsg {
        // SAFETY: an all-zero msghdr is valid; the CMSG_* macros only walk the 24-byte buffer
        // `c`, which has room for one header and an int.
        Some(c) => unsafe {
            let mut m: libc::msghdr = std::mem::zeroed();
            m.msg_control = c.as_mut_ptr().cast();
            m.msg_controllen = libc::CMSG_SPACE(4) as usize;
            let h = libc::CMSG_FIRSTHDR(&m);
            (*h).cmsg_level = libc::IPPROTO_IP;
            (*h).cmsg_type = IP_PROTOCOL;
            (*h).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::copy_nonoverlapping(
                IPPROTO_GRE.to_ne_bytes().as_ptr(),
                libc::CMSG_DATA(h),
                4,
            );
            (m.msg_control, m.msg_controllen)
        },
        None => (std::ptr::null_mut(), 0),
    };
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut hdrs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
        h.msg_hdr.msg_name = addr.0 as *mut _;
        h.msg_hdr.msg_namelen = addr.1;
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_control = control;
        h.msg_hdr.msg_controllen = control_len;
    }
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < limit {
        // SAFETY: every header points at the address, one iovec over a live buffer and the
        // control buffer, all alive for the call; sendmmsg only reads them.
        let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), BATCH as u32, 0) };
        assert!(n >= 0, "sendmmsg: {}", std::io::Error::last_os_error());
        count += n as u64;
    }
    println!("{count}");
}

fn send_raw(limit: Duration) {
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    assert!(
        fd >= 0,
        "raw IP socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: an all-zero sockaddr_in is valid; the fields are then set.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as u16;
    sin.sin_addr.s_addr = u32::from_ne_bytes(RECEIVER.octets());
    let mut packet = gre_packet();
    // As vxtund sends: the kernel fills in the length, identification and checksum.
    packet[2..4].fill(0);
    packet[10..12].fill(0);
    let mut cmsg = [0u64; 3];
    let addr = (&sin as *const libc::sockaddr_in).cast();
    send_loop(
        fd,
        &packet,
        (addr, std::mem::size_of_val(&sin) as u32),
        Some(&mut cmsg),
        limit,
    );
}

fn send_packet(limit: Duration, peer_mac: &str) {
    let mac = |text: &str| -> [u8; 6] {
        let mut m = [0u8; 6];
        for (b, h) in m.iter_mut().zip(text.trim().split(':')) {
            *b = u8::from_str_radix(h, 16).expect("a MAC address");
        }
        m
    };
    let own = std::fs::read_to_string("/sys/class/net/ul0/address").expect("ul0's address");
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
    ll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: a NUL-terminated name.
    ll.sll_ifindex = unsafe { libc::if_nametoindex(c"ul0".as_ptr()) } as i32;
    let mut frame = Vec::with_capacity(ETHERNET_LEN + PACKET_LEN);
    frame.extend_from_slice(&mac(peer_mac));
    frame.extend_from_slice(&mac(&own));
    frame.extend_from_slice(&(libc::ETH_P_IP as u16).to_be_bytes());
    frame.extend_from_slice(&gre_packet());
    let addr = (&ll as *const libc::sockaddr_ll).cast();
    send_loop(
        fd,
        &frame,
        (addr, std::mem::size_of_val(&ll) as u32),
        None,
        limit,
    );
}
