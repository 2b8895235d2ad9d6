//! How fast frames come out of a TAP queue: one `read(2)` per frame (what vxtund does) against
//! one `io_uring_enter(2)` per 32 frames (hard-linked reads with `RWF_NOWAIT`, so that they run
//! in order and the ones past the last queued frame end at once with EAGAIN), with plain and
//! with registered buffers. The TAP's ring is filled with `N` UDP datagrams first (the program
//! sends them to a neighbour behind the TAP), then drained; the time per frame is the drain's.
//! Every frame's sequence number is checked, so a method that reorders fails loudly.
//!
//! Usage (as root, in a network namespace of its own; `bench.sh` does this):
//! `tap_read_uring METHOD ROUNDS` with METHOD one of `read`, `uring`, `fixed`.

use io_uring::{opcode, squeue, types, IoUring};
use std::net::UdpSocket;
use std::process::Command;
use std::time::Instant;

/// Frames queued per round (the TAP's ring is set to hold them all).
const N: usize = 4000;
/// Reads per `io_uring_enter`, as vxtund's batch.
const CHAIN: usize = 32;
/// Buffer per read, as vxtund's (a TSO superframe fits).
const LEN: usize = 65_600;
/// UDP payload per datagram.
const PAYLOAD: usize = 1400;
/// Where the sequence number lies in a frame: Ethernet 14 + IPv4 20 + UDP 8.
const SEQ_AT: usize = 42;

fn main() {
    let mut args = std::env::args().skip(1);
    let method = args.next().unwrap_or_else(|| "read".into());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let name = format!("tru{}", std::process::id() % 100_000);
    let fd = open_tap(&name);
    let sh = |c: &str| {
        assert!(Command::new("sh")
            .arg("-c")
            .arg(c)
            .status()
            .unwrap()
            .success())
    };
    sh(&format!(
        "ip link set {name} txqueuelen {q} up && ip addr add 10.77.0.1/24 dev {name} && \
         ip neigh add 10.77.0.2 lladdr 02:00:00:00:00:02 dev {name}",
        q = N + 100
    ));
    let sock = UdpSocket::bind("10.77.0.1:0").unwrap();
    let mut bufs: Vec<Vec<u8>> = (0..CHAIN).map(|_| vec![0u8; LEN]).collect();
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(64)
        .unwrap();
    ring.submitter().register_files(&[fd]).unwrap();
    let iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: LEN,
        })
        .collect();
    // SAFETY: the buffers outlive the ring's use of them (both live to the end of main).
    unsafe { ring.submitter().register_buffers(&iovs).unwrap() };

    let mut per_frame = Vec::new();
    let (mut calls, mut seq_next) = (0usize, 0u32);
    for _ in 0..rounds {
        let mut payload = [0u8; PAYLOAD];
        for _ in 0..N {
            payload[..4].copy_from_slice(&seq_next.wrapping_add(0).to_be_bytes());
            sock.send_to(&payload, "10.77.0.2:9").unwrap();
            seq_next = seq_next.wrapping_add(1);
        }
        let mut expect = seq_next.wrapping_sub(N as u32);
        let mut check = |buf: &[u8], len: usize| {
            // Only our datagrams count (an IPv6 router solicitation may come by).
            if len == SEQ_AT + PAYLOAD && buf[12..14] == [8, 0] {
                let seq = u32::from_be_bytes(buf[SEQ_AT..SEQ_AT + 4].try_into().unwrap());
                assert_eq!(seq, expect, "{method}: frame out of order");
                expect = expect.wrapping_add(1);
                1
            } else {
                0
            }
        };
        let t = Instant::now();
        let mut got = 0usize;
        if method == "read" {
            loop {
                // SAFETY: the buffer is LEN bytes long.
                let r = unsafe { libc::read(fd, bufs[0].as_mut_ptr().cast(), LEN) };
                calls += 1;
                if r < 0 {
                    break;
                }
                got += check(&bufs[0], r as usize);
            }
        } else {
            let fixed = method == "fixed";
            loop {
                for (i, b) in bufs.iter_mut().enumerate() {
                    let e = if fixed {
                        opcode::ReadFixed::new(
                            types::Fixed(0),
                            b.as_mut_ptr(),
                            LEN as u32,
                            i as u16,
                        )
                        .rw_flags(libc::RWF_NOWAIT)
                        .build()
                    } else {
                        opcode::Read::new(types::Fd(fd), b.as_mut_ptr(), LEN as u32)
                            .rw_flags(libc::RWF_NOWAIT)
                            .build()
                    };
                    let e = if i + 1 < CHAIN {
                        e.flags(squeue::Flags::IO_HARDLINK)
                    } else {
                        e
                    };
                    // SAFETY: buffer i stays untouched until its completion is reaped below.
                    unsafe { ring.submission().push(&e.user_data(i as u64)).unwrap() };
                }
                ring.submit_and_wait(CHAIN).unwrap();
                calls += 1;
                let mut done: Vec<(u64, i32)> = ring
                    .completion()
                    .map(|c| (c.user_data(), c.result()))
                    .collect();
                // Hard links run in order; completions are read in that order too.
                done.sort_by_key(|&(i, _)| i);
                let mut empty = false;
                for (i, res) in done {
                    if res >= 0 {
                        got += check(&bufs[i as usize], res as usize);
                    } else {
                        assert_eq!(res, -libc::EAGAIN, "{method}: read failed");
                        empty = true;
                    }
                }
                if empty {
                    break;
                }
            }
        }
        let el = t.elapsed();
        assert_eq!(got, N, "{method}: frames lost");
        per_frame.push(el.as_nanos() as f64 / got as f64);
    }
    per_frame.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{method:>5}: {:.0} ns per frame (median of {rounds} drains of {N}; min {:.0}, max {:.0}), \
         {:.1} frames per system call",
        per_frame[per_frame.len() / 2],
        per_frame[0],
        per_frame[per_frame.len() - 1],
        (N * rounds) as f64 / calls as f64,
    );
}

/// Opens TAP `name` (no packet information, non-blocking), as vxtund opens one queue.
fn open_tap(name: &str) -> i32 {
    // SAFETY: a valid path and flags.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK) };
    assert!(
        fd >= 0,
        "open /dev/net/tun: {}",
        std::io::Error::last_os_error()
    );
    let mut ifr = [0u8; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a 40-byte struct ifreq.
    let rc = unsafe { libc::ioctl(fd, libc::TUNSETIFF, ifr.as_mut_ptr()) };
    assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    fd
}
