//! Steering among the receiving VXLAN sockets of one IPv4 address and port: a classic BPF
//! program (`SO_ATTACH_REUSEPORT_CBPF`) picks the socket of the `SO_REUSEPORT` group for each
//! datagram, by two things the socket itself never sees:
//!
//! * whether the outer UDP checksum was zero. The kernel verifies a non-zero one over the
//!   whole datagram (VXLAN header and inner frame), in the NIC or before the datagram is
//!   queued to the socket, and drops it if it is wrong; a zero one (allowed over IPv4, the
//!   kernel's vxlan default) vouches for nothing. UDP GRO merges no datagram without a
//!   checksum into one with. Datagrams without
//!   a checksum go to the group's first half, those with one to its second half, so the
//!   worker reading a socket knows which it holds without seeing the header.
//! * the outer source address and port, for the worker: the per-flow source ports (RFC 7348
//!   section 5) spread flows over the workers, and keep each flow on one. The port counts
//!   modulo the workers, offset by a hash of the address, so that a sender that gives
//!   consecutive connections consecutive ports (`flow_spread = "balance"`) spreads them
//!   evenly.
//!
//! The group's sockets are indexed in the order they were bound. [`group_program`] assumes
//! the group is exactly the sockets vxtund binds for it, zero-checksum ones first: while
//! only some are bound, an index past the end falls back to the kernel's hash among those
//! bound, which are then the zero-checksum ones, whose datagrams are verified (the safe side).
//! A failed load (a datagram too short to hold the headers) makes the program return 0: the
//! first zero-checksum socket, verified too. Where the kernel cannot run the program at all (a
//! shared packet, as a capture makes it, that it fails to clone for want of memory), it picks
//! by hash among every socket of the group; so the second half's sockets also carry a socket
//! filter ([`checksummed_only_filter`]) that drops a datagram without a checksum rather than
//! let it pass as verified.
//!
//! A group's sockets live and die together (a reload takes the group over whole), and the
//! kernel refuses a socket with a program of its own beside another group on the same port:
//! a second daemon on the port fails to bind instead of sharing its datagrams.

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// `linux/filter.h`: the base of loads relative to the network header.
const SKF_NET_OFF: u32 = (-0x0010_0000i32) as u32;
/// Socket option (`asm-generic/socket.h`): a classic BPF program that picks the socket of a
/// reuseport group.
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
const LD_H_IND: u16 = 0x48; // BPF_LD | BPF_H | BPF_IND
const LD_MEM: u16 = 0x60; // BPF_LD | BPF_MEM
const LDX_B_MSH: u16 = 0xb1; // BPF_LDX | BPF_B | BPF_MSH
const LDX_IMM: u16 = 0x01; // BPF_LDX | BPF_W | BPF_IMM
const LDX_MEM: u16 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const ST: u16 = 0x02; // BPF_ST
const ALU_MUL_K: u16 = 0x24; // BPF_ALU | BPF_MUL | BPF_K
const ALU_RSH_K: u16 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU_MOD_K: u16 = 0x94; // BPF_ALU | BPF_MOD | BPF_K
const ALU_ADD_X: u16 = 0x0c; // BPF_ALU | BPF_ADD | BPF_X
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const RET_A: u16 = 0x16; // BPF_RET | BPF_A
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Knuth's multiplicative hash constant (2^32 / the golden ratio).
const GOLDEN: u32 = 0x9e37_79b1;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Instructions that leave the worker in A: `(hash(source address) + source port) % workers`,
/// the address's 32 bits loaded from `address` (relative to the network header), the port by
/// the instructions `port`, which must leave it in A and M[0] alone. Uses M[0] and X.
fn worker(address: u32, port: &[libc::sock_filter], workers: u32) -> Vec<libc::sock_filter> {
    let mut program = vec![
        // M[0] = a hash of the source address: where its sender's ports start counting.
        op(LD_W_ABS, 0, 0, address),
        op(ALU_MUL_K, 0, 0, GOLDEN),
        op(ALU_RSH_K, 0, 0, 16),
        op(ST, 0, 0, 0),
    ];
    // A = the source port.
    program.extend_from_slice(port);
    program.extend([
        op(LDX_MEM, 0, 0, 0),
        op(ALU_ADD_X, 0, 0, 0),
        op(ALU_MOD_K, 0, 0, workers),
    ]);
    program
}

/// Instructions that load an IPv4 packet's UDP checksum into A (X = the IPv4 header's length).
fn ipv4_udp_checksum() -> [libc::sock_filter; 2] {
    [
        op(LDX_B_MSH, 0, 0, SKF_NET_OFF),
        op(LD_H_IND, 0, 0, SKF_NET_OFF + 6),
    ]
}

/// The program for a group of `2 * workers` IPv4 sockets: index `w` for a datagram whose
/// outer UDP checksum was zero, `workers + w` for one whose checksum was present (and so
/// verified), where the worker `w` is `(hash(source address) + source port) % workers`:
/// consecutive source ports of one sender go to consecutive workers (see [`crate::spread`]),
/// and different senders start at different workers.
pub fn group_program(workers: u32) -> Vec<libc::sock_filter> {
    let workers = workers.max(1);
    // The source port follows the IPv4 header, whose length MSH puts in X.
    let port = [
        op(LDX_B_MSH, 0, 0, SKF_NET_OFF),
        op(LD_H_IND, 0, 0, SKF_NET_OFF),
    ];
    let mut program = worker(SKF_NET_OFF + 12, &port, workers);
    program.push(op(ST, 0, 0, 0));
    program.extend(ipv4_udp_checksum());
    program.extend([
        // X = 0 if the checksum is zero, `workers` if not; A = M[0] + X.
        op(JEQ_K, 0, 2, 0),
        op(LDX_IMM, 0, 0, 0),
        op(JA, 0, 0, 1),
        op(LDX_IMM, 0, 0, workers),
        op(LD_MEM, 0, 0, 0),
        op(ALU_ADD_X, 0, 0, 0),
        op(RET_A, 0, 0, 0),
    ]);
    program
}

/// The program for a group of `workers` IPv6 sockets: index `(hash(source address) + source
/// port) % workers`, the address's last 32 bits hashed. Every datagram had a checksum (the
/// kernel refuses zero over IPv6), so there is one half only. The UDP header is taken to
/// follow the fixed header; behind extension headers (which VXLAN senders do not add) the
/// "port" is other bytes, and the datagram still goes to one of the workers.
pub fn group_program_v6(workers: u32) -> Vec<libc::sock_filter> {
    let port = [op(LD_H_ABS, 0, 0, SKF_NET_OFF + 40)];
    let mut program = worker(SKF_NET_OFF + 20, &port, workers.max(1));
    program.push(op(RET_A, 0, 0, 0));
    program
}

/// Attaches `program` (one of the above) to `sock`, which has `SO_REUSEPORT` set and is not
/// bound yet: the group it then founds runs the program from its first datagram on.
pub fn attach_group_program(sock: &Socket, program: Vec<libc::sock_filter>) -> io::Result<()> {
    attach(sock, SO_ATTACH_REUSEPORT_CBPF, program)
}

/// The socket filter of an IPv4 socket of the second half: it keeps only datagrams that came
/// with an outer checksum. The group's program sends it no other; this holds where the kernel
/// could not run that program and picked by hash (see the module's documentation): such a
/// datagram is dropped rather than taken as verified.
pub fn checksummed_only_filter() -> Vec<libc::sock_filter> {
    let mut program = ipv4_udp_checksum().to_vec();
    program.extend([
        op(JEQ_K, 0, 1, 0),
        op(RET_K, 0, 0, 0),
        op(RET_K, 0, 0, u32::MAX),
    ]);
    program
}

/// Attaches [`checksummed_only_filter`] to `sock`.
pub fn attach_checksummed_only_filter(sock: &Socket) -> io::Result<()> {
    attach_filter(sock, checksummed_only_filter())
}

/// Attaches `program` to `sock` as its socket filter (`SO_ATTACH_FILTER`): what it returns
/// is how many bytes of a packet the socket keeps, 0 dropping it.
pub(super) fn attach_filter(sock: &Socket, program: Vec<libc::sock_filter>) -> io::Result<()> {
    attach(sock, libc::SO_ATTACH_FILTER, program)
}

fn attach(
    sock: &Socket,
    option: libc::c_int,
    mut program: Vec<libc::sock_filter>,
) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).unwrap_or(u16::MAX),
        filter: program.as_mut_ptr(),
    };
    // SAFETY: the option reads a sock_fprog pointing at `program`; both outlive the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::socket::{RecvBatch, UnderlaySocket};
    use std::net::{IpAddr, UdpSocket};
    use std::time::{Duration, Instant};

    /// `SO_NO_CHECK` (asm-generic/socket.h): send IPv4 UDP with a zero checksum.
    const SO_NO_CHECK: libc::c_int = 11;

    /// A sender on its own source port, with or without UDP checksums.
    fn sender(checksum: bool) -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        if !checksum {
            let on: libc::c_int = 1;
            // SAFETY: the option reads one int that outlives the call.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    SO_NO_CHECK,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        }
        s
    }

    #[test]
    fn datagrams_are_steered_by_outer_checksum_and_kept_per_source() {
        // Unprivileged: loopback, a port of this test's own.
        let port = crate::testing::free_udp_port();
        let local = IpAddr::from([127, 0, 0, 1]);
        let group = UnderlaySocket::udp_group(local, port, 2, false).unwrap();
        let roles: Vec<bool> = group.iter().map(|s| s.outer_checksum_verified()).collect();
        assert_eq!(roles, [false, false, true, true]);
        // 16 sources with checksums, 16 without, 4 datagrams each, tagged with the source.
        let senders: Vec<(bool, UdpSocket)> =
            (0..32).map(|i| (i % 2 == 0, sender(i % 2 == 0))).collect();
        for (id, (_, s)) in senders.iter().enumerate() {
            for _ in 0..4 {
                s.send_to(&[id as u8; 100], ("127.0.0.1", port)).unwrap();
            }
        }
        // Where each source's datagrams arrived.
        let mut arrived: Vec<Vec<usize>> = vec![Vec::new(); senders.len()];
        let mut batch = RecvBatch::default();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut total = 0;
        while total < 4 * senders.len() && Instant::now() < deadline {
            for (k, socket) in group.iter().enumerate() {
                let n = socket.recv_batch(&mut batch).unwrap();
                for i in 0..n {
                    let (_, data) = batch.get(i).unwrap();
                    arrived[usize::from(data[0])].push(k);
                }
                total += n;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(total, 4 * senders.len(), "every datagram arrived once");
        let mut workers_seen = [[false; 2]; 2];
        for (id, (checksum, _)) in senders.iter().enumerate() {
            let at = &arrived[id];
            assert!(
                at.iter().all(|&k| k == at[0]),
                "source {id} stayed on one socket: {at:?}"
            );
            assert_eq!(
                group[at[0]].outer_checksum_verified(),
                *checksum,
                "source {id} (checksum {checksum}) reached socket {}",
                at[0]
            );
            workers_seen[usize::from(*checksum)][at[0] % 2] = true;
        }
        // 16 sources of each kind over two workers: all on one would be a 1 in 2^15 chance.
        assert_eq!(
            workers_seen, [[true; 2]; 2],
            "sources spread over both workers"
        );
    }

    #[test]
    fn consecutive_source_ports_of_one_sender_go_to_consecutive_workers() {
        // Unprivileged: loopback, ports of this test's own.
        let port = crate::testing::free_udp_port();
        let v4 = IpAddr::from([127, 0, 0, 1]);
        let v6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        for (local, workers) in [(v4, 2usize), (v4, 3), (v6, 2)] {
            let group = UnderlaySocket::udp_group(local, port, workers, false).unwrap();
            // IPv4: the second half holds the datagrams that came with a checksum.
            let first = if local.is_ipv4() { workers } else { 0 };
            // Above the kernel's ephemeral ports (32768-60999), apart from other tests'.
            let base = 64_500 + (std::process::id() % 80) as u16 * 12;
            let mut batch = RecvBatch::default();
            let mut worker_of = Vec::new();
            for p in base..base + 6 {
                let s = UdpSocket::bind((local, p)).unwrap();
                s.send_to(&[1; 64], (local, port)).unwrap();
                let deadline = Instant::now() + Duration::from_secs(2);
                let at = loop {
                    let hit = group
                        .iter()
                        .position(|g| g.recv_batch(&mut batch).unwrap() > 0);
                    if let Some(k) = hit {
                        break k;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "datagram from port {p} not received"
                    );
                };
                assert!(group[at].outer_checksum_verified(), "sent with a checksum");
                worker_of.push(at - first);
            }
            for pair in worker_of.windows(2) {
                assert_eq!(
                    pair[1],
                    (pair[0] + 1) % workers,
                    "{local}, {workers} workers: {worker_of:?}"
                );
            }
        }
    }

    /// Runs a classic BPF program of the opcodes above as the kernel does, over an IP packet
    /// (`net`, from the network header on) whose UDP payload is not used: loads relative to
    /// the network header only; one out of bounds ends the program with 0.
    fn run(program: &[libc::sock_filter], net: &[u8]) -> u32 {
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let load = |k: u32, size: usize| -> Option<u32> {
            let off = usize::try_from(k.wrapping_sub(SKF_NET_OFF) as i32).ok()?;
            let bytes = net.get(off..off + size)?;
            Some(bytes.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
        };
        let mut pc = 0;
        while let Some(i) = program.get(pc) {
            pc += 1;
            let k = i.k;
            match i.code {
                LD_W_ABS => match load(k, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_ABS => match load(k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_IND => match load(k.wrapping_add(x), 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LDX_B_MSH => match load(k, 1) {
                    Some(v) => x = 4 * (v & 0xf),
                    None => return 0,
                },
                LD_MEM => a = mem[k as usize],
                LDX_MEM => x = mem[k as usize],
                LDX_IMM => x = k,
                ST => mem[k as usize] = a,
                ALU_MUL_K => a = a.wrapping_mul(k),
                ALU_RSH_K => a >>= k,
                ALU_MOD_K => a %= k,
                ALU_ADD_X => a = a.wrapping_add(x),
                JEQ_K => pc += usize::from(if a == k { i.jt } else { i.jf }),
                JA => pc += k as usize,
                RET_A => return a,
                RET_K => return k,
                other => panic!("opcode {other:#x} not modelled"),
            }
        }
        panic!("fell off the end");
    }

    proptest::proptest! {
        /// Any IPv4 header length (options included), any addresses, ports and checksum, and
        /// packets cut anywhere: the index is the worker's socket in the half the checksum
        /// says, and 0 (a zero-checksum socket, verified) when the headers are not all there.
        #[test]
        fn the_ipv4_program_indexes_its_group(
            ihl in 5u8..=15,
            saddr: u32,
            sport: u16,
            checksum: u16,
            workers in 1u32..=8,
            cut in 0usize..=80,
        ) {
            let mut net = vec![0u8; usize::from(ihl) * 4 + 8];
            net[0] = 0x40 | ihl;
            net[12..16].copy_from_slice(&saddr.to_be_bytes());
            let l4 = usize::from(ihl) * 4;
            net[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
            net[l4 + 6..l4 + 8].copy_from_slice(&checksum.to_be_bytes());
            let whole = net.len();
            net.truncate(cut.min(whole));
            let index = run(&group_program(workers), &net);
            if net.len() < whole {
                proptest::prop_assert_eq!(index, 0);
            } else {
                let worker = ((saddr.wrapping_mul(GOLDEN) >> 16) + u32::from(sport)) % workers;
                let half = if checksum == 0 { 0 } else { workers };
                proptest::prop_assert_eq!(index, half + worker);
                proptest::prop_assert!(index < 2 * workers);
            }
        }

        #[test]
        fn the_filter_keeps_only_datagrams_with_a_checksum(ihl in 5u8..=15, checksum: u16) {
            let mut net = vec![0u8; usize::from(ihl) * 4 + 8];
            net[0] = 0x40 | ihl;
            let l4 = usize::from(ihl) * 4;
            net[l4 + 6..l4 + 8].copy_from_slice(&checksum.to_be_bytes());
            let kept = run(&checksummed_only_filter(), &net);
            proptest::prop_assert_eq!(kept, if checksum == 0 { 0 } else { u32::MAX });
            proptest::prop_assert_eq!(run(&checksummed_only_filter(), &net[..l4 + 6]), 0);
        }

        #[test]
        fn the_ipv6_program_indexes_its_group(
            saddr_low: u32,
            sport: u16,
            workers in 1u32..=8,
            cut in 0usize..=48,
        ) {
            let mut net = vec![0u8; 48];
            net[0] = 0x60;
            net[20..24].copy_from_slice(&saddr_low.to_be_bytes());
            net[40..42].copy_from_slice(&sport.to_be_bytes());
            net.truncate(cut);
            let index = run(&group_program_v6(workers), &net);
            if net.len() < 42 {
                proptest::prop_assert_eq!(index, 0);
            } else {
                let worker = ((saddr_low.wrapping_mul(GOLDEN) >> 16) + u32::from(sport)) % workers;
                proptest::prop_assert_eq!(index, worker);
            }
        }
    }

    #[test]
    fn the_filter_drops_datagrams_without_a_checksum_in_the_kernel() {
        // Unprivileged: loopback, a port the kernel picks.
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sock = socket2::SockRef::from(&rx);
        attach_checksummed_only_filter(&sock).unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let to = rx.local_addr().unwrap();
        sender(false).send_to(b"without", to).unwrap();
        sender(true).send_to(b"with", to).unwrap();
        sender(false).send_to(b"without", to).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"with");
        assert!(rx.recv_from(&mut buf).is_err(), "nothing else came");
    }

    #[test]
    fn the_program_passes_the_classic_bpf_checker_for_any_worker_count() {
        // The kernel checks it on attach: jumps in range, a return at the end, no division by
        // zero (a worker count of 0 is taken as 1).
        for workers in [0, 1, 2, 3, 64] {
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .unwrap();
            sock.set_reuse_port(true).unwrap();
            attach_group_program(&sock, group_program(workers)).unwrap();
            let sock = socket2::Socket::new(
                socket2::Domain::IPV6,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .unwrap();
            sock.set_reuse_port(true).unwrap();
            attach_group_program(&sock, group_program_v6(workers)).unwrap();
        }
        let program = group_program(2);
        assert_eq!(program.last().map(|i| i.code), Some(RET_A));
    }
}
