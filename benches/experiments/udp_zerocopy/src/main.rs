//! Does `MSG_ZEROCOPY` take a copy off vxtund's UDP GSO sends when the underlay is a veth to
//! another namespace on the same host, as in `benches/iperf.sh`?
//!
//! `udp_zerocopy recv PORT SECS` counts what a UDP GRO socket receives for SECS seconds and
//! prints `received BYTES`. `udp_zerocopy send MODE ADDR:PORT SECS` sends 63,000-byte UDP GSO
//! batches (45 segments of 1,400 bytes, as vxtund sends a split superframe) for SECS seconds:
//! - `copy`: `send(2)` from 4 buffers that stay in the cache, as vxtund's batch buffers do;
//! - `copy256`: the same from 256 buffers (16 MB, so from memory rather than the cache);
//! - `zerocopy`: `MSG_ZEROCOPY` from 256 buffers, a buffer reused only once the kernel has
//!   reported its send complete on the error queue.
//!
//! It prints `sent BYTES`, the sender's own CPU seconds and, for `zerocopy`, how many sends
//! the kernel reported complete and how many of those it had copied after all
//! (`SO_EE_CODE_ZEROCOPY_COPIED`).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Bytes of UDP payload per segment, as vxtund's VXLAN datagrams on a 1500-byte underlay.
const SEGMENT: usize = 1400;
/// One send: the segments of a 64 KB superframe.
const SEND: usize = SEGMENT * 45;
/// Buffers in flight for `zerocopy` and `copy256`.
const RING: usize = 256;
/// From linux/errqueue.h.
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let args: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let secs = |s: &str| Duration::from_secs_f64(s.parse().expect("SECS: seconds"));
    match args.as_slice() {
        ["recv", port, s] => receive(port.parse().expect("PORT"), secs(s)),
        ["send", mode, addr, s] => send(mode, addr.parse().expect("ADDR:PORT"), secs(s)),
        _ => {
            eprintln!(
                "usage: udp_zerocopy recv PORT SECS | send copy|copy256|zerocopy ADDR:PORT SECS"
            );
            std::process::exit(2);
        }
    }
}

fn check(ret: libc::c_int, what: &str) -> libc::c_int {
    if ret < 0 {
        panic!("{what}: {}", io::Error::last_os_error());
    }
    ret
}

fn setsockopt(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int, what: &str) {
    // SAFETY: `value` is a live c_int and its size is passed with it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(ret, what);
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = addr.port().to_be();
    sa.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sa
}

/// `bind(2)` or `connect(2)`: `call` on `fd` with `addr`.
fn with_address(
    fd: RawFd,
    addr: SocketAddrV4,
    call: unsafe extern "C" fn(libc::c_int, *const libc::sockaddr, libc::socklen_t) -> libc::c_int,
    what: &str,
) {
    let sa = sockaddr(addr);
    // SAFETY: `sa` is a live sockaddr_in and its size is passed with it.
    let ret = unsafe {
        call(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    check(ret, what);
}

fn udp_socket() -> RawFd {
    // SAFETY: plain socket(2) call.
    check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) },
        "socket",
    )
}

/// Receives with UDP GRO for `secs`, then prints what arrived.
fn receive(port: u16, secs: Duration) {
    let fd = udp_socket();
    setsockopt(fd, libc::SOL_UDP, libc::UDP_GRO, 1, "UDP_GRO");
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        4 << 20,
        "SO_RCVBUFFORCE",
    );
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: `tv` is a live timeval and its size is passed with it.
    check(
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        },
        "SO_RCVTIMEO",
    );
    with_address(
        fd,
        SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, port),
        libc::bind,
        "bind",
    );
    println!("ready");
    let mut buf = vec![0u8; 65536];
    let (mut bytes, end) = (0u64, Instant::now() + secs);
    while Instant::now() < end {
        // SAFETY: `buf` is live and writable for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n > 0 {
            bytes += n as u64;
        }
    }
    println!("received {bytes}");
}

/// Sends GSO batches to `dst` for `secs` in `mode`, then prints what it sent and what it cost.
fn send(mode: &str, dst: SocketAddrV4, secs: Duration) {
    let (zerocopy, buffers) = match mode {
        "copy" => (false, 4),
        "copy256" => (false, RING),
        "zerocopy" => (true, RING),
        _ => panic!("MODE: copy, copy256 or zerocopy"),
    };
    let fd = udp_socket();
    setsockopt(
        fd,
        libc::SOL_UDP,
        libc::UDP_SEGMENT,
        SEGMENT as i32,
        "UDP_SEGMENT",
    );
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        4 << 20,
        "SO_SNDBUFFORCE",
    );
    if zerocopy {
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_ZEROCOPY, 1, "SO_ZEROCOPY");
    }
    with_address(fd, dst, libc::connect, "connect");
    let mut ring: Vec<u8> = (0..buffers * SEND).map(|i| i as u8).collect();
    let flags = if zerocopy { libc::MSG_ZEROCOPY } else { 0 };
    let mut done = Completions::default();
    let (mut sends, mut bytes) = (0u64, 0u64);
    let (start, end) = (Instant::now(), Instant::now() + secs);
    while Instant::now() < end {
        if zerocopy {
            // The buffer of send `sends` is the one of send `sends - RING`: it must be done.
            while sends - done.completed >= RING as u64 {
                done.wait(fd);
            }
        }
        let slot = (sends % buffers as u64) as usize * SEND;
        let buf = &mut ring[slot..slot + SEND];
        // SAFETY: `buf` is live for its length; with MSG_ZEROCOPY it is not written or freed
        // before the kernel reports the send complete (above, and `done.wait` at the end).
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // Zerocopy notifications take option memory; when it is short, drain and retry.
                Some(libc::ENOBUFS) if zerocopy => done.wait(fd),
                Some(libc::ECONNREFUSED) => {}
                _ => panic!("send: {e}"),
            }
            continue;
        }
        sends += 1;
        bytes += n as u64;
    }
    let elapsed = start.elapsed();
    if zerocopy {
        let deadline = Instant::now() + Duration::from_secs(2);
        while done.completed < sends && Instant::now() < deadline {
            done.wait(fd);
        }
    }
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { zeroed() };
    check(
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) },
        "getrusage",
    );
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    println!(
        "sent {bytes} in {:.3} s, {sends} sends; own CPU user {:.3} s, system {:.3} s; completed {}, copied {}",
        elapsed.as_secs_f64(),
        cpu(ru.ru_utime),
        cpu(ru.ru_stime),
        done.completed,
        done.copied
    );
    drop(ring);
}

/// Zerocopy completions read from the socket's error queue.
#[derive(Default)]
struct Completions {
    /// Sends the kernel has reported complete (they are reported in ranges, in order).
    completed: u64,
    /// Of those, the ones it reported as copied after all.
    copied: u64,
}

impl Completions {
    /// Waits up to 100 ms for the error queue and reads what is on it.
    fn wait(&mut self, fd: RawFd) {
        let mut pfd = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one live pollfd. POLLERR is reported without being asked for.
        unsafe { libc::poll(&mut pfd, 1, 100) };
        loop {
            let mut control = [0u64; 16];
            // SAFETY: msghdr is plain data; all-zero is a valid value.
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 16]>();
            // SAFETY: `msg` points at `control`, live and writable for its length.
            let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
            if n < 0 {
                return;
            }
            // SAFETY: walking the control messages the kernel wrote into `control`.
            let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
            while !cmsg.is_null() {
                // SAFETY: `cmsg` is a header inside `control`; an IP_RECVERR one carries a
                // sock_extended_err.
                let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
                if level == libc::SOL_IP && kind == libc::IP_RECVERR {
                    let ee: libc::sock_extended_err =
                        unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                    if ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                        let range = u64::from(ee.ee_data.wrapping_sub(ee.ee_info)) + 1;
                        self.completed += range;
                        if ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0 {
                            self.copied += range;
                        }
                    }
                }
                // SAFETY: as above.
                cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
            }
        }
    }
}
