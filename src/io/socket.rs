//! Underlay sockets with `recvmmsg` / `sendmmsg` batching: UDP for VXLAN, raw IP protocol 47
//! for GRE (one per address family, shared by every GRE tunnel of that family).
//!
//! Sends gather two pieces per packet (the encapsulation header and the frame, wherever each
//! lives), so one frame flooded to several tunnels is never copied. The kernel builds the outer
//! IP header (and the UDP header and checksum, mandatory over IPv6), except for IPv4 GRE with
//! DF, whose outer header the sender writes.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use thiserror::Error;

use super::steer;
use crate::wire::{IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// Most datagrams moved by one system call.
pub const BATCH: usize = 32;
/// Largest UDP payload.
pub const MAX_DATAGRAM: usize = 65_535;
/// Socket buffer size asked for (bursts of a fast sender must not overflow it).
const SOCKET_BUFFER: usize = 4 << 20;

/// IP protocol number of GRE.
const IPPROTO_GRE: i32 = 47;
/// A raw IPv4 socket of this protocol sends whole IP packets, header included (`IP_HDRINCL`),
/// and is handed no received packet.
const IPPROTO_RAW: i32 = 255;
/// Control message (linux/in.h) giving the protocol a header-included packet is routed and
/// matched against IPsec policies by; without it that is IPPROTO_RAW, not the header's.
const IP_PROTOCOL: libc::c_int = 52;
/// Socket option (linux/in6.h): the sender writes the IPv6 header (Linux 4.5+). On a socket
/// of protocol GRE the kernel routes by that protocol, as `IP_PROTOCOL` makes it for IPv4.
const IPV6_HDRINCL: libc::c_int = 36;
/// sendmsg flag (linux/socket.h): route the message, send nothing.
const MSG_PROBE: libc::c_int = 0x10;
/// UDP socket options (linux/udp.h): send several equal datagrams as one (GSO), receive
/// several as one (GRO).
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
/// Most datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS).
const GSO_MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO send (all datagrams' UDP payloads; the IPv4 limit is 65,507).
const GSO_MAX_BYTES: usize = 65_000;
/// Most iovecs one `send_batch` call hands to the kernel.
const MAX_IOVECS: usize = 2 * 256;
/// Most messages one `sendmmsg` call carries: without GSO every datagram is a message, so a
/// split superframe (about 45 datagrams) and more go in one call.
const SEND_MESSAGES: usize = 128;
/// Room for three control messages carrying an int each (`3 * CMSG_SPACE(4)`), 8-byte
/// aligned: on send a GSO size, a TOS and a TTL (or `IP_PROTOCOL`); on receive the GRO size
/// and the TOS.
type Cmsg = [u64; 9];
/// Room for one control message carrying an int (`CMSG_SPACE(4)`), in `u64`s.
const CMSG_ONE: usize = 3;
/// Socket options (linux/in.h, linux/in6.h) asking for the outer TOS / traffic class of
/// received packets as a control message.
const IP_RECVTOS: libc::c_int = 13;
const IPV6_RECVTCLASS: libc::c_int = 66;

/// Failures while opening an underlay socket.
#[derive(Debug, Error)]
pub enum SocketError {
    /// bind() or socket setup failed.
    #[error("binding UDP {addr}: {source}{}", bind_hint(source))]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's answer.
        source: io::Error,
    },
    /// The raw GRE socket could not be opened or bound.
    #[error("opening a raw GRE socket on {local}: {source}{hint}")]
    Gre {
        /// The local address.
        local: IpAddr,
        /// The system's answer.
        source: io::Error,
        /// A hint when the cause is a missing capability.
        hint: &'static str,
    },
}

/// What to do about a UDP port in use.
fn bind_hint(source: &io::Error) -> &'static str {
    if source.kind() == io::ErrorKind::AddrInUse {
        " (another vxtund or a kernel vxlan device has this port on this address: stop it, or \
         give the tunnel another dst_port)"
    } else {
        ""
    }
}

/// What an underlay socket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// VXLAN over UDP on this local port.
    Udp(u16),
    /// Ethernet over GRE (raw IP protocol 47).
    Gre,
}

/// A socket bound to one local address: UDP on a port, or raw GRE.
pub struct UnderlaySocket {
    sock: Socket,
    kind: SocketKind,
    local: IpAddr,
    df: bool,
    receives: bool,
    /// A receiving socket that gets only datagrams whose outer checksum the kernel verified
    /// (a UDP socket over IPv6, or the second half of an IPv4 group, see
    /// [`UnderlaySocket::udp_group`]).
    outer_checksum_verified: bool,
    /// UDP GSO: consecutive equal datagrams to one destination go as one send. Turned off for
    /// good when the kernel answers a GSO send with EIO (no checksum offload on the route).
    gso: AtomicBool,
    /// UDP GRO: the kernel may hand over several datagrams of one sender as one buffer.
    gro: bool,
    /// A sending IPv4 GRE socket with DF: the sender writes the outer IPv4 header (see
    /// [`UnderlaySocket::outer_header`]).
    writes_header: bool,
    /// For a VXLAN sender of a source-port pool: the pool's range and this socket's place in it.
    pool: Option<(SourcePorts, usize)>,
    /// For a sending IPv6 GRE socket: the socket through which ICMPv6 Packet Too Big updates
    /// the kernel's path MTU (see [`path_mtu_listener`]).
    _pmtu: Option<Socket>,
}

/// The outer UDP source ports VXLAN senders are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePorts {
    /// Whatever the kernel picks (`net.ipv4.ip_local_port_range`).
    Kernel,
    /// Inside this inclusive range.
    Range(u16, u16),
}

/// Receive buffers for one batch, reused from call to call. With UDP GRO one buffer may hold
/// several datagrams back to back; packets are numbered across buffers.
pub struct RecvBatch {
    bufs: Vec<Box<[u8]>>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<Cmsg>,
    /// Per packet of the last call: its buffer (sender, TOS) and where it lies, in that
    /// buffer or (`true`) in `split`.
    packets: Vec<(usize, usize, usize, bool)>,
    /// Datagrams made by splitting a received tunnel superframe (see [`split_superframe`]).
    split: Vec<u8>,
    /// The largest inner IP packet the receiver passes on: a received TCP superframe is split
    /// to it (0: never split).
    pub split_mtu: usize,
    /// The segment sizes of the flows whose handshakes the switch saw: a superframe of such a
    /// flow is split no larger than its sender's segments.
    pub segments: Option<std::sync::Arc<crate::segments::SegmentSizes>>,
    /// Scratch for the split.
    segs: Vec<u8>,
    seg_ranges: Vec<std::ops::Range<usize>>,
    /// Per buffer of the last call: the outer TOS / traffic class, where the socket reports it.
    tos: [u8; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: (0..BATCH)
                .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
                .collect(),
            // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            cmsgs: vec![[0; 9]; BATCH],
            packets: Vec::with_capacity(BATCH * GSO_MAX_SEGMENTS),
            split: Vec::new(),
            split_mtu: 0,
            segments: None,
            segs: Vec::new(),
            seg_ranges: Vec::new(),
            tos: [0; BATCH],
        }
    }
}

impl RecvBatch {
    /// Packet `i` of the last batch and its sender, writable (for in-place MSS clamping).
    pub fn get_mut(&mut self, i: usize) -> Option<(IpAddr, &mut [u8])> {
        let &(buf, start, len, split) = self.packets.get(i)?;
        let src = sockaddr_ip(&self.addrs[buf])?;
        match split {
            true => Some((src, &mut self.split[start..start + len])),
            false => Some((src, &mut self.bufs[buf][start..start + len])),
        }
    }

    /// The outer TOS byte (IPv4) or traffic class (IPv6) of packet `i` of the last batch, as
    /// the kernel reported it (0 when it did not: raw IPv4 sockets hand over the header itself).
    pub fn outer_tos(&self, i: usize) -> u8 {
        self.packets.get(i).map_or(0, |&(buf, ..)| self.tos[buf])
    }

    /// Packet `i` of the last batch and its sender.
    pub fn get(&self, i: usize) -> Option<(IpAddr, &[u8])> {
        let &(buf, start, len, split) = self.packets.get(i)?;
        let src = sockaddr_ip(&self.addrs[buf])?;
        match split {
            true => Some((src, &self.split[start..start + len])),
            false => Some((src, &self.bufs[buf][start..start + len])),
        }
    }
}

/// A VXLAN datagram or GRE packet whose inner frame is one TCP superframe (its IP length spans
/// the whole packet and exceeds `batch.split_mtu`): what a sender on the same host (the
/// kernel's vxlan, vxtund's fast path) hands over a veth as one tunnel GSO packet, and what
/// GRO may merge GRE packets into, which a UDP or raw socket receives whole, with no segment
/// size. Splits it into segments that fit `split_mtu` and are no larger than the flow's
/// handshake allows (`batch.segments`: as its sender's were, where the switch saw the
/// handshake; TCP may be resegmented), headers and checksums as the kernel's GSO makes
/// them, each behind the same tunnel header (`header` bytes: VXLAN's, or GRE's after the outer
/// IPv4 header a raw IPv4 socket hands over), into `batch.split`; returns false (nothing
/// pushed) for anything else.
fn split_superframe(batch: &mut RecvBatch, buf: usize, len: usize, header: usize) -> bool {
    use crate::wire::ip::IpView;
    use crate::wire::offload::{self, VnetHdr};
    let data = &mut batch.bufs[buf][..len];
    let Some(inner) = data.get_mut(header..) else {
        return false;
    };
    let Some(ip) = IpView::parse(inner) else {
        return false;
    };
    if ip.proto != 6 || ip.l3 + ip.total_len != inner.len() || ip.total_len <= batch.split_mtu {
        return false;
    }
    let tcp_header = inner
        .get(ip.l3 + ip.header_len + 12)
        .map_or(20, |&b| usize::from(b >> 4) * 4);
    let mut mss = batch.split_mtu.saturating_sub(ip.header_len + tcp_header);
    // Cut larger than its sender did, a segment may not fit a host further on.
    if let Some(limit) = batch
        .segments
        .as_ref()
        .and_then(|t| t.payload_limit(inner, &ip))
    {
        mss = mss.min(limit);
    }
    if mss == 0 {
        return false;
    }
    let hdr = VnetHdr {
        gso_type: if ip.version == 4 {
            offload::GSO_TCPV4
        } else {
            offload::GSO_TCPV6
        },
        gso_size: u16::try_from(mss).unwrap_or(u16::MAX),
        ..VnetHdr::default()
    };
    batch.segs.clear();
    batch.seg_ranges.clear();
    if offload::segment(&hdr, inner, &mut batch.segs, &mut batch.seg_ranges).is_err() {
        return false;
    }
    let header = &batch.bufs[buf][..header];
    for r in &batch.seg_ranges {
        let start = batch.split.len();
        batch.split.extend_from_slice(header);
        batch.split.extend_from_slice(&batch.segs[r.clone()]);
        batch
            .packets
            .push((buf, start, batch.split.len() - start, true));
    }
    true
}

/// One packet to send: `header` then `payload`, to `dst`.
pub struct SendItem<'a> {
    /// Destination address and port.
    pub dst: &'a SockAddr,
    /// First piece (the VXLAN header).
    pub header: &'a [u8],
    /// Second piece (the frame).
    pub payload: &'a [u8],
    /// Handed back to the error callback (the egress port number).
    pub tag: u32,
    /// The outer TOS / traffic class; 0 for the socket's (a sender writing the IPv4 header
    /// puts it there itself).
    pub tos: u8,
    /// The outer TTL / hop limit; 0 for the socket's.
    pub ttl: u8,
}

impl UnderlaySocket {
    /// Binds UDP `local:port` with large buffers, on its own (or beside other sockets of the
    /// port, the kernel spreading datagrams over them by its hash). Outer IPv4 packets carry
    /// DF when `df`; over IPv6 the kernel never fragments them.
    ///
    /// With `offload`, uses UDP GSO and GRO where the kernel has them (see [`Self::offloads`]).
    pub fn udp(
        local: IpAddr,
        port: u16,
        df: bool,
        offload: bool,
    ) -> Result<UnderlaySocket, SocketError> {
        UnderlaySocket::udp_member(local, port, df, offload, None, local.is_ipv6())
    }

    /// The receiving sockets of a VXLAN port: one per worker over IPv6, where the kernel
    /// refuses datagrams with a zero UDP checksum, so every one was verified; two per worker
    /// over IPv4, the first `workers` for datagrams that came without an outer checksum, the
    /// rest for those with one, which the kernel verified (see [`crate::io::steer`]). Worker
    /// `w` reads sockets `w` and `workers + w` ([`Self::outer_checksum_verified`] tells them
    /// apart). Datagrams are spread over the workers by the outer source address and port.
    /// Bound in that order, which is the order the program indexes them by.
    pub fn udp_group(
        local: IpAddr,
        port: u16,
        workers: usize,
        offload: bool,
    ) -> Result<Vec<UnderlaySocket>, SocketError> {
        let workers = workers.max(1);
        let count = u32::try_from(workers).unwrap_or(u32::MAX);
        // The program goes on the first socket, before it binds: the group runs it from its
        // first datagram on.
        if local.is_ipv6() {
            return (0..workers)
                .map(|i| {
                    let program = (i == 0).then(|| steer::group_program_v6(count));
                    UnderlaySocket::udp_member(local, port, true, offload, program, true)
                })
                .collect();
        }
        (0..2 * workers)
            .map(|i| {
                let program = (i == 0).then(|| steer::group_program(count));
                UnderlaySocket::udp_member(local, port, true, offload, program, i >= workers)
            })
            .collect()
    }

    fn udp_member(
        local: IpAddr,
        port: u16,
        df: bool,
        offload: bool,
        program: Option<Vec<libc::sock_filter>>,
        outer_checksum_verified: bool,
    ) -> Result<UnderlaySocket, SocketError> {
        let addr = SocketAddr::new(local, port);
        let bind = move || -> io::Result<Socket> {
            let domain = if local.is_ipv4() {
                Domain::IPV4
            } else {
                Domain::IPV6
            };
            let sock = Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
            if local.is_ipv6() {
                sock.set_only_v6(true)?;
            }
            grow_buffers(&sock)?;
            set_df(&sock, local, df)?;
            no_flow_label(&sock, local)?;
            receive_tos(&sock, local)?;
            sock.set_reuse_port(true)?;
            if let Some(program) = program {
                steer::attach_group_program(&sock, program)?;
            }
            if outer_checksum_verified && local.is_ipv4() {
                steer::attach_checksummed_only_filter(&sock)?;
            }
            sock.bind(&addr.into())?;
            Ok(sock)
        };
        let sock = bind().map_err(|source| SocketError::Bind { addr, source })?;
        let (gso, gro) = if offload {
            (
                set_option(&sock, libc::SOL_UDP, UDP_SEGMENT, 0).is_ok(),
                set_option(&sock, libc::SOL_UDP, UDP_GRO, 1).is_ok(),
            )
        } else {
            (false, false)
        };
        Ok(UnderlaySocket {
            sock,
            kind: SocketKind::Udp(port),
            local,
            df,
            receives: true,
            outer_checksum_verified,
            gso: AtomicBool::new(gso),
            gro,
            writes_header: false,
            pool: None,
            _pmtu: None,
        })
    }

    /// Opens `count` send-only UDP sockets on `local` for VXLAN to port `port`, each bound to
    /// a source port of `ports` (all distinct; fewer when the range holds fewer free ports, at
    /// least one): the pool over which inner flows are spread by their hash (RFC 7348 section
    /// 5). They receive nothing: a filter drops whatever comes to their ports; the receiving
    /// socket stays on the tunnel's port.
    pub fn udp_pool(
        local: IpAddr,
        port: u16,
        ports: SourcePorts,
        count: usize,
        df: bool,
        offload: bool,
    ) -> Result<Vec<UnderlaySocket>, SocketError> {
        let open = |source: u16| -> io::Result<Socket> {
            let domain = if local.is_ipv4() {
                Domain::IPV4
            } else {
                Domain::IPV6
            };
            let sock = Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
            if local.is_ipv6() {
                sock.set_only_v6(true)?;
            }
            drop_all_received(&sock)?;
            grow_buffers(&sock)?;
            set_df(&sock, local, df)?;
            no_flow_label(&sock, local)?;
            sock.bind(&SocketAddr::new(local, source).into())?;
            Ok(sock)
        };
        let mut socks = Vec::with_capacity(count);
        match ports {
            SourcePorts::Kernel => {
                for _ in 0..count {
                    let sock = open(0).map_err(|source| SocketError::Bind {
                        addr: SocketAddr::new(local, 0),
                        source,
                    })?;
                    socks.push(sock);
                }
            }
            SourcePorts::Range(min, max) => {
                // Spread over the range; then, for ports in use, any other port of it. The
                // step is one more than a multiple of 16, so that consecutive ports of the
                // pool have consecutive residues modulo 16: the turns of
                // `flow_spread = "balance"` (see `crate::spread::turn_table`).
                let span = u32::from(max - min) + 1;
                let even = (span / count.max(1) as u32).max(1);
                let step = even - (even - 1) % 16;
                let spread: Vec<u32> = (0..count as u32).map(|i| (i * step) % span).collect();
                let mut last_err = None;
                let rest = (0..span).filter(|o| !spread.contains(o));
                for (k, offset) in spread.iter().copied().chain(rest).enumerate() {
                    if socks.len() == count {
                        break;
                    }
                    if k < spread.len() && spread[..k].contains(&offset) {
                        continue;
                    }
                    let p = (u32::from(min) + offset) as u16;
                    match open(p) {
                        Ok(sock) => socks.push(sock),
                        Err(e) => last_err = Some((p, e)),
                    }
                }
                if socks.is_empty() {
                    let (p, source) = last_err.unwrap_or((
                        min,
                        io::Error::new(io::ErrorKind::AddrInUse, "no free port"),
                    ));
                    return Err(SocketError::Bind {
                        addr: SocketAddr::new(local, p),
                        source,
                    });
                }
            }
        }
        Ok(socks
            .into_iter()
            .enumerate()
            .map(|(i, sock)| {
                let gso = offload && set_option(&sock, libc::SOL_UDP, UDP_SEGMENT, 0).is_ok();
                UnderlaySocket {
                    sock,
                    kind: SocketKind::Udp(port),
                    local,
                    df,
                    receives: false,
                    outer_checksum_verified: false,
                    gso: AtomicBool::new(gso),
                    gro: false,
                    writes_header: false,
                    pool: Some((ports, i)),
                    _pmtu: None,
                }
            })
            .collect())
    }

    /// For a sender of a source-port pool: the pool's range and this socket's place in it.
    pub fn pool(&self) -> Option<(SourcePorts, usize)> {
        self.pool
    }

    /// The local UDP port it is bound to (0 for raw sockets).
    pub fn local_port(&self) -> u16 {
        self.sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(0, |a| a.port())
    }

    /// Opens a raw GRE socket bound to `local`: it receives GRE packets addressed to `local`
    /// (over IPv4 with their IP header in front, over IPv6 without) and sends GRE packets from it.
    /// With `receive` false the socket only sends: a filter drops every packet the kernel would
    /// copy to it, so that a second raw socket (for the other DF setting) duplicates nothing.
    ///
    /// A sending IPv4 socket with DF is of protocol `IPPROTO_RAW`: the sender writes the outer
    /// IPv4 header ([`UnderlaySocket::outer_header`]). The kernel then skips its own header
    /// building and copies without a checksum pass, and, as the socket matches no protocol,
    /// received GRE packets are no longer copied to it only to be dropped. Its packets are never
    /// fragmented, which DF asks for anyway. Sockets without DF leave fragmentation to the
    /// kernel, and so keep the kernel's header.
    ///
    /// The kernel routes such packets (and matches IPsec policies and `ip rule ipproto`) by
    /// the protocol in an `IP_PROTOCOL` control message, which every send carries. A kernel
    /// that does not take that message (a probe at open says so) gets the classic socket.
    ///
    /// Over IPv6 the sending socket is of protocol GRE with `IPV6_HDRINCL`: the sender writes
    /// the IPv6 header, payload length included (the kernel fills in nothing), and the kernel
    /// routes by the socket's protocol, 47. A kernel without the option gets the classic socket.
    pub fn gre(local: IpAddr, df: bool, receive: bool) -> Result<UnderlaySocket, SocketError> {
        let writes_header = df && !receive;
        let open = |writes_header: bool| -> io::Result<Socket> {
            let domain = if local.is_ipv4() {
                Domain::IPV4
            } else {
                Domain::IPV6
            };
            let protocol = if writes_header && local.is_ipv4() {
                IPPROTO_RAW
            } else {
                IPPROTO_GRE
            };
            let sock = Socket::new(domain, Type::RAW.cloexec(), Some(Protocol::from(protocol)))?;
            if !receive {
                drop_all_received(&sock)?;
            } else if local.is_ipv6() {
                receive_tos(&sock, local)?;
            }
            grow_buffers(&sock)?;
            set_df(&sock, local, df)?;
            sock.bind(&SocketAddr::new(local, 0).into())?;
            Ok(sock)
        };
        let opened = match writes_header {
            true if local.is_ipv6() => open(true).map(|sock| {
                match set_option(&sock, libc::IPPROTO_IPV6, IPV6_HDRINCL, 1) {
                    Ok(()) => (sock, true),
                    Err(e) => {
                        tracing::info!(
                            "IPV6_HDRINCL refused ({e}): GRE from {local} goes out with the \
                             kernel's IPv6 header"
                        );
                        (sock, false)
                    }
                }
            }),
            true => open(true).and_then(|sock| match takes_ip_protocol(&sock, local) {
                true => Ok((sock, true)),
                false => {
                    tracing::info!(
                        "the kernel routes header-included packets by IPPROTO_RAW only: \
                         GRE from {local} goes out with the kernel's IPv4 header"
                    );
                    open(false).map(|sock| (sock, false))
                }
            }),
            false => open(false).map(|sock| (sock, false)),
        };
        let (sock, writes_header) = opened.map_err(|source| {
            let hint = if source.kind() == io::ErrorKind::PermissionDenied {
                " (GRE tunnels need CAP_NET_RAW)"
            } else {
                ""
            };
            SocketError::Gre {
                local,
                source,
                hint,
            }
        })?;
        Ok(UnderlaySocket {
            sock,
            kind: SocketKind::Gre,
            local,
            df,
            receives: receive,
            outer_checksum_verified: false,
            gso: AtomicBool::new(false),
            gro: false,
            writes_header,
            pool: None,
            _pmtu: match !receive && local.is_ipv6() {
                true => Some(path_mtu_listener(local).map_err(|source| SocketError::Gre {
                    local,
                    source,
                    hint: "",
                })?),
                false => None,
            },
        })
    }

    /// For a socket whose sender writes the outer IPv4 header: that header for packets to
    /// `dst`, to go in front of the GRE header. It carries DF, protocol GRE, both addresses and
    /// the TTL the kernel would give now (`net.ipv4.ip_default_ttl`, read again at every
    /// reload; a route's `hoplimit` metric is not looked at). The kernel fills in the total
    /// length, an identification and the header checksum, all left zero here. `None` for every
    /// other socket.
    pub fn outer_header(&self, dst: IpAddr) -> Option<[u8; IPV4_HEADER_LEN]> {
        let (IpAddr::V4(src), IpAddr::V4(dst), true) = (self.local, dst, self.writes_header) else {
            return None;
        };
        let ttl = self.sock.ttl_v4().map_or(64, |t| t.clamp(1, 255) as u8);
        Some(gre_ipv4_header(src, dst, ttl))
    }

    /// For a socket whose sender writes the outer IPv6 header: that header for packets to
    /// `dst`: version, next header GRE, both addresses and the hop limit the kernel would give
    /// (the socket's, else 64). Traffic class, flow label and payload length are the sender's
    /// to fill in per packet. `None` for every other socket.
    pub fn outer_header_v6(&self, dst: IpAddr) -> Option<[u8; IPV6_HEADER_LEN]> {
        let (IpAddr::V6(src), IpAddr::V6(dst), true) = (self.local, dst, self.writes_header) else {
            return None;
        };
        let hops = self
            .sock
            .unicast_hops_v6()
            .ok()
            .filter(|&h| (1..=255).contains(&h))
            .map_or(64, |h| h as u8);
        let mut h = [0u8; IPV6_HEADER_LEN];
        h[0] = 0x60;
        h[6] = IPPROTO_GRE as u8;
        h[7] = hops;
        h[8..24].copy_from_slice(&src.octets());
        h[24..40].copy_from_slice(&dst.octets());
        Some(h)
    }

    /// Whether the sender writes the outer IP header ([`UnderlaySocket::outer_header`],
    /// [`UnderlaySocket::outer_header_v6`]).
    pub fn writes_ip_header(&self) -> bool {
        self.writes_header
    }

    /// What the socket carries.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// Whether outer IPv4 packets it sends carry DF (always true over IPv6).
    pub fn df(&self) -> bool {
        self.df
    }

    /// Whether every datagram it receives came with an outer UDP checksum, which the kernel
    /// verified over the whole VXLAN payload (see [`UnderlaySocket::udp_group`]).
    pub fn outer_checksum_verified(&self) -> bool {
        self.outer_checksum_verified
    }

    /// Whether packets are read from it (a send-only raw GRE socket is never polled).
    pub fn receives(&self) -> bool {
        self.receives
    }

    /// Whether UDP GSO (send) and UDP GRO (receive) are on.
    pub fn offloads(&self) -> (bool, bool) {
        (self.gso.load(Ordering::Relaxed), self.gro)
    }

    /// The local address it is bound to.
    pub fn local(&self) -> IpAddr {
        self.local
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Receives up to [`BATCH`] buffers without waiting; returns how many packets they hold
    /// (0 when none): with GRO a buffer may hold several datagrams of one sender.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            let iov = iovs[i].write(libc::iovec {
                iov_base: batch.bufs[i].as_mut_ptr().cast(),
                iov_len: batch.bufs[i].len(),
            });
            hdrs[i].msg_hdr.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            hdrs[i].msg_hdr.msg_iov = iov;
            hdrs[i].msg_hdr.msg_iovlen = 1;
            batch.cmsgs[i] = [0; 9];
            hdrs[i].msg_hdr.msg_control = batch.cmsgs[i].as_mut_ptr().cast();
            hdrs[i].msg_hdr.msg_controllen = std::mem::size_of::<Cmsg>();
        }
        batch.packets.clear();
        batch.split.clear();
        loop {
            // SAFETY: every header points at a live buffer, address slot, control buffer and
            // iovec owned by `batch` or this frame, each with its true length; the kernel writes
            // within them.
            let rc = unsafe {
                libc::recvmmsg(
                    self.fd(),
                    hdrs.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if rc < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(0),
                    _ => return Err(e),
                }
            }
            for (buf, hdr) in hdrs.iter().enumerate().take(rc as usize) {
                let len = hdr.msg_len as usize;
                let (gro, tos) = read_cmsgs(&hdr.msg_hdr);
                batch.tos[buf] = tos;
                let stride = match self.gro {
                    true => gro.unwrap_or(len),
                    false => len,
                };
                if gro.is_none()
                    && batch.split_mtu > 0
                    && self
                        .tunnel_header_len(&batch.bufs[buf][..len])
                        .is_some_and(|h| split_superframe(batch, buf, len, h))
                {
                    continue;
                }
                let mut start = 0;
                while start < len {
                    let n = stride.max(1).min(len - start);
                    batch.packets.push((buf, start, n, false));
                    start += n;
                }
                if len == 0 {
                    batch.packets.push((buf, 0, 0, false));
                }
            }
            return Ok(batch.packets.len());
        }
    }

    /// What comes before the inner frame in `packet` as this socket receives it: the VXLAN
    /// header, or a GRE header without checksum (after the outer IPv4 header, which raw IPv4
    /// sockets hand over); `None` for anything else (a superframe behind a GRE checksum is not
    /// split: its segments would not match it).
    fn tunnel_header_len(&self, packet: &[u8]) -> Option<usize> {
        match self.kind {
            SocketKind::Udp(_) => Some(crate::wire::vxlan::HEADER_LEN),
            SocketKind::Gre => {
                let ip = match self.local {
                    IpAddr::V4(_) => usize::from(packet.first()? & 0x0f) * 4,
                    IpAddr::V6(_) => 0,
                };
                let gre = packet.get(ip..)?;
                if gre.first()? & 0x80 != 0 {
                    return None; // a checksum (decoding would verify it over everything)
                }
                let (_, len) = crate::wire::gre::Header::decode(gre).ok()?;
                Some(ip + len)
            }
        }
    }

    /// Sends every item, up to [`SEND_MESSAGES`] messages per system call, and calls
    /// `on_error(tag, error)` for each item the kernel refused, going on with the next. With
    /// GSO, consecutive items to one destination of one size (the last may be shorter) go as
    /// one message that the kernel cuts into datagrams. Builds nothing on the heap.
    pub fn send_batch<'a>(
        &self,
        items: impl IntoIterator<Item = SendItem<'a>>,
        mut on_error: impl FnMut(u32, io::Error),
    ) {
        /// One message: its first iovec, datagram count and size, bytes, and whether a short
        /// datagram ended it.
        #[derive(Clone, Copy)]
        struct Msg {
            dst: *const SockAddr,
            iov: usize,
            segs: usize,
            size: usize,
            bytes: usize,
            closed: bool,
            tos: u8,
            ttl: u8,
        }
        let mut items = items.into_iter().peekable();
        let gso = self.gso.load(Ordering::Relaxed);
        while items.peek().is_some() {
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOVECS];
            let mut tags = [0u32; MAX_IOVECS / 2];
            let mut msgs = [Msg {
                dst: std::ptr::null(),
                iov: 0,
                segs: 0,
                size: 0,
                bytes: 0,
                closed: false,
                tos: 0,
                ttl: 0,
            }; SEND_MESSAGES];
            let mut count = 0;
            let mut n_iov = 0;
            while let Some(item) = items.peek() {
                let len = item.header.len() + item.payload.len();
                let joins = gso && count > 0 && {
                    let m = &msgs[count - 1];
                    std::ptr::eq(m.dst, item.dst)
                        && m.tos == item.tos
                        && m.ttl == item.ttl
                        && !m.closed
                        && m.segs < GSO_MAX_SEGMENTS
                        && len <= m.size
                        && m.bytes + len <= GSO_MAX_BYTES
                };
                if (!joins && count == SEND_MESSAGES) || n_iov + 2 > MAX_IOVECS {
                    break;
                }
                let Some(item) = items.next() else { break };
                if joins {
                    let m = &mut msgs[count - 1];
                    m.segs += 1;
                    m.bytes += len;
                    m.closed = len < m.size;
                } else {
                    msgs[count] = Msg {
                        dst: item.dst,
                        iov: n_iov,
                        segs: 1,
                        size: len,
                        bytes: len,
                        closed: false,
                        tos: item.tos,
                        ttl: item.ttl,
                    };
                    count += 1;
                }
                iovs[n_iov] = libc::iovec {
                    iov_base: item.header.as_ptr() as *mut _,
                    iov_len: item.header.len(),
                };
                iovs[n_iov + 1] = libc::iovec {
                    iov_base: item.payload.as_ptr() as *mut _,
                    iov_len: item.payload.len(),
                };
                tags[n_iov / 2] = item.tag;
                n_iov += 2;
            }
            let mut cmsgs: [Cmsg; SEND_MESSAGES] = [[0; 9]; SEND_MESSAGES];
            // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
            let mut hdrs: [libc::mmsghdr; SEND_MESSAGES] = unsafe { std::mem::zeroed() };
            for ((hdr, m), cmsg) in hdrs.iter_mut().zip(&msgs).zip(cmsgs.iter_mut()).take(count) {
                // SAFETY: `m.dst` came from a `&SockAddr` of an item, alive for 'a.
                let dst = unsafe { &*m.dst };
                hdr.msg_hdr.msg_name = dst.as_ptr() as *mut _;
                hdr.msg_hdr.msg_namelen = dst.len();
                hdr.msg_hdr.msg_iov = iovs[m.iov..].as_mut_ptr();
                hdr.msg_hdr.msg_iovlen = 2 * m.segs;
                let gso_size = (m.segs > 1).then_some(m.size as u16);
                self.control(&mut hdr.msg_hdr, cmsg, gso_size, m.tos, m.ttl);
            }
            let mut start = 0;
            while start < count {
                // SAFETY: headers start..count point at iovecs, control buffers and, through
                // them, at buffers and addresses that all live until the end of this loop;
                // sendmmsg only reads them.
                let rc = unsafe {
                    libc::sendmmsg(
                        self.fd(),
                        hdrs[start..].as_mut_ptr(),
                        (count - start) as u32,
                        0,
                    )
                };
                if rc >= 0 {
                    start += rc as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let m = msgs[start];
                if m.segs == 1 {
                    on_error(tags[m.iov / 2], e);
                } else {
                    // The kernel refused the GSO send (a datagram above the path MTU, say):
                    // send its datagrams one by one; on EIO it never will take one.
                    if e.raw_os_error() == Some(libc::EIO) {
                        self.gso.store(false, Ordering::Relaxed);
                    }
                    let mut cmsg: Cmsg = [0; 9];
                    for k in 0..m.segs {
                        let mut one = hdrs[start];
                        one.msg_hdr.msg_iov = iovs[m.iov + 2 * k..].as_mut_ptr();
                        one.msg_hdr.msg_iovlen = 2;
                        self.control(&mut one.msg_hdr, &mut cmsg, None, m.tos, m.ttl);
                        // SAFETY: as above, for one message of two iovecs.
                        let rc = unsafe { libc::sendmsg(self.fd(), &one.msg_hdr, 0) };
                        if rc < 0 {
                            on_error(tags[m.iov / 2 + k], io::Error::last_os_error());
                        }
                    }
                }
                start += 1;
            }
        }
    }
}

impl UnderlaySocket {
    /// Hangs the control messages of one send on `msg`, in `cmsg`: the GSO size, and the
    /// outer TOS and TTL when not the socket's (0); for a socket writing the IPv4 header, the
    /// `IP_PROTOCOL` it is routed by instead (TOS and TTL are in that header).
    fn control(
        &self,
        msg: &mut libc::msghdr,
        cmsg: &mut Cmsg,
        gso_size: Option<u16>,
        tos: u8,
        ttl: u8,
    ) {
        msg.msg_control = std::ptr::null_mut();
        msg.msg_controllen = 0;
        let v4 = self.local.is_ipv4();
        if let Some(size) = gso_size {
            add_cmsg(msg, cmsg, (libc::SOL_UDP, UDP_SEGMENT), &size.to_ne_bytes());
        }
        if self.writes_header {
            if v4 {
                let gre = IPPROTO_GRE.to_ne_bytes();
                add_cmsg(msg, cmsg, (libc::IPPROTO_IP, IP_PROTOCOL), &gre);
            }
            return;
        }
        if tos != 0 {
            let kind = match v4 {
                true => (libc::IPPROTO_IP, libc::IP_TOS),
                false => (libc::IPPROTO_IPV6, libc::IPV6_TCLASS),
            };
            add_cmsg(msg, cmsg, kind, &i32::from(tos).to_ne_bytes());
        }
        if ttl != 0 {
            let kind = match v4 {
                true => (libc::IPPROTO_IP, libc::IP_TTL),
                false => (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT),
            };
            add_cmsg(msg, cmsg, kind, &i32::from(ttl).to_ne_bytes());
        }
    }
}

/// Puts one control message, `(level, type)` with `data` (at most 4 bytes: a `UDP_SEGMENT`
/// size or an int), into `cmsg` as the only one and hangs it on `msg`.
fn set_cmsg(msg: &mut libc::msghdr, cmsg: &mut Cmsg, kind: (i32, i32), data: &[u8]) {
    msg.msg_controllen = 0;
    add_cmsg(msg, cmsg, kind, data);
}

/// Appends one control message (as [`set_cmsg`]) after those `msg` already has in `cmsg`;
/// nothing when `cmsg` is full.
fn add_cmsg(msg: &mut libc::msghdr, cmsg: &mut Cmsg, (level, kind): (i32, i32), data: &[u8]) {
    let len = data.len().min(4);
    let used = msg.msg_controllen / 8;
    if used + CMSG_ONE > cmsg.len() {
        return;
    }
    msg.msg_control = cmsg.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation (CMSG_SPACE(4) is CMSG_ONE u64s).
    msg.msg_controllen += unsafe { libc::CMSG_SPACE(len as u32) } as usize;
    // SAFETY: `used` u64s into `cmsg` is 8-byte aligned and leaves CMSG_ONE u64s, room for a
    // cmsghdr and `len` <= 4 bytes of data; msg_controllen now covers them.
    unsafe {
        let c = cmsg.as_mut_ptr().add(used).cast::<libc::cmsghdr>();
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(len as u32) as usize;
        std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(c), len);
    }
}

/// A raw IPv6 GRE socket on `local` that only lets ICMPv6 Packet Too Big for GRE teach the
/// kernel the path MTU: for a raw IPv6 socket that is not connected the kernel updates its
/// route cache only with `IPV6_RECVERR` on (`rawv6_err`; IPv4's `raw_err` and UDP do it
/// regardless). It is never read, written or polled: a filter drops the packets it would
/// receive and a minimal receive buffer bounds its error queue. Being apart from the sender,
/// the error the kernel leaves on it after any ICMPv6 error fails no send.
fn path_mtu_listener(local: IpAddr) -> io::Result<Socket> {
    let sock = Socket::new(
        Domain::IPV6,
        Type::RAW.cloexec(),
        Some(Protocol::from(IPPROTO_GRE)),
    )?;
    drop_all_received(&sock)?;
    set_option(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)?;
    set_option(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, 0)?;
    sock.bind(&SocketAddr::new(local, 0).into())?;
    Ok(sock)
}

/// Asks for the outer TOS (IPv4) or traffic class (IPv6) of every received packet.
fn receive_tos(sock: &Socket, local: IpAddr) -> io::Result<()> {
    match local {
        IpAddr::V4(_) => set_option(sock, libc::IPPROTO_IP, IP_RECVTOS, 1),
        IpAddr::V6(_) => set_option(sock, libc::IPPROTO_IPV6, IPV6_RECVTCLASS, 1),
    }
}

/// An outer IPv4 header with DF for GRE from `src` to `dst`, as a header-included socket
/// sends it: total length, identification and checksum left zero for the kernel to fill in.
fn gre_ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> [u8; IPV4_HEADER_LEN] {
    let mut h = [0u8; IPV4_HEADER_LEN];
    h[0] = 0x45;
    h[6] = 0x40; // DF
    h[8] = ttl;
    h[9] = IPPROTO_GRE as u8;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    h
}

/// Whether the kernel takes `IP_PROTOCOL` for header-included sends on `sock`: a bare IPv4
/// header to `local` itself, sent with `MSG_PROBE`, is routed but never sent. Kernels without
/// the message refuse it with EINVAL.
fn takes_ip_protocol(sock: &Socket, local: IpAddr) -> bool {
    let IpAddr::V4(addr) = local else {
        return false;
    };
    let mut header = gre_ipv4_header(addr, addr, 64);
    let dst = SockAddr::from(SocketAddr::new(local, 0));
    let mut iov = libc::iovec {
        iov_base: header.as_mut_ptr().cast(),
        iov_len: header.len(),
    };
    let mut cmsg: Cmsg = [0; 9];
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = dst.as_ptr() as *mut _;
    msg.msg_namelen = dst.len();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    set_cmsg(
        &mut msg,
        &mut cmsg,
        (libc::IPPROTO_IP, IP_PROTOCOL),
        &IPPROTO_GRE.to_ne_bytes(),
    );
    // SAFETY: msg points at the address, the iovec over `header` and the control buffer, all
    // alive for the call; sendmsg only reads them.
    unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, MSG_PROBE) >= 0 }
}

/// From the control messages of a receive: the datagram size of a GRO-coalesced buffer
/// (`UDP_GRO`), and the outer TOS / traffic class (`IP_TOS`, one byte; `IPV6_TCLASS`, an int),
/// 0 when absent.
fn read_cmsgs(msg: &libc::msghdr) -> (Option<usize>, u8) {
    let (mut stride, mut tos) = (None, 0);
    if msg.msg_control.is_null() {
        return (stride, tos);
    }
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* macros walk within them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let mut v = [0u8; 4];
            let n = ((*c).cmsg_len as usize)
                .saturating_sub(libc::CMSG_LEN(0) as usize)
                .min(4);
            std::ptr::copy_nonoverlapping(libc::CMSG_DATA(c), v.as_mut_ptr(), n);
            let int = match n {
                4 => i32::from_ne_bytes(v) as usize,
                2 | 3 => usize::from(u16::from_ne_bytes([v[0], v[1]])),
                _ => usize::from(v[0]),
            };
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_UDP, UDP_GRO) => stride = (int > 0).then_some(int),
                (libc::IPPROTO_IP, libc::IP_TOS) | (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
                    tos = int as u8
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    (stride, tos)
}

/// DF on outer IPv4 packets (`IP_PMTUDISC_DO`: set, and never fragment locally) or not
/// (`IP_PMTUDISC_DONT`); over IPv6, never fragment locally.
/// `IPV6_AUTOFLOWLABEL` (linux/in6.h).
const IPV6_AUTOFLOWLABEL: libc::c_int = 70;

/// Over IPv6, VXLAN datagrams leave with flow label 0, as the kernel's vxlan sends them unless
/// told otherwise (its `flowlabel`), rather than one the kernel derives from a hash with a
/// secret seed: the fast path must put the same label on a flow's datagrams, and the UDP
/// source port already carries the inner flow's entropy (RFC 7348).
fn no_flow_label(sock: &Socket, local: IpAddr) -> io::Result<()> {
    match local {
        IpAddr::V4(_) => Ok(()),
        IpAddr::V6(_) => set_option(sock, libc::IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, 0),
    }
}

fn set_df(sock: &Socket, local: IpAddr, df: bool) -> io::Result<()> {
    let (level, name, value) = match (local, df) {
        (IpAddr::V4(_), true) => (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        ),
        (IpAddr::V4(_), false) => (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        ),
        (IpAddr::V6(_), _) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DO,
        ),
    };
    set_option(sock, level, name, value)
}

/// Attaches a one-instruction classic BPF program (`ret #0`) that drops every packet.
fn drop_all_received(sock: &Socket) -> io::Result<()> {
    let drop_all = libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0,
    };
    steer::attach_filter(sock, vec![drop_all])
}

/// Privileged daemons may exceed rmem_max/wmem_max; others fall back to the capped size.
fn grow_buffers(sock: &Socket) -> io::Result<()> {
    let size = libc::c_int::try_from(SOCKET_BUFFER).unwrap_or(libc::c_int::MAX);
    if set_option(sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
        sock.set_recv_buffer_size(SOCKET_BUFFER)?;
    }
    if set_option(sock, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size).is_err() {
        sock.set_send_buffer_size(SOCKET_BUFFER)?;
    }
    Ok(())
}

fn set_option(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt reads a c_int from a live local of that size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr_ip(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in, which it is large enough for.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(u32::from_be(sin.sin_addr.s_addr).into()))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(sin6.sin6_addr.s6_addr.into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Receives until `want` packets arrived (or two seconds passed).
    fn receive(socket: &UnderlaySocket, want: usize) -> Vec<Vec<u8>> {
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.len() < want && Instant::now() < deadline {
            let n = socket.recv_batch(&mut batch).unwrap();
            for i in 0..n {
                got.push(batch.get(i).unwrap().1.to_vec());
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        got
    }

    #[test]
    fn a_pool_over_a_range_has_every_residue_modulo_16_for_the_turns() {
        // Unprivileged: loopback, above the kernel's ephemeral ports (32768-60999).
        let base = 61_000 + (std::process::id() % 3) as u16 * 1_000;
        let local = IpAddr::from([127, 0, 0, 1]);
        let range = SourcePorts::Range(base, base + 999);
        let pool = UnderlaySocket::udp_pool(local, 8472, range, 16, true, false).unwrap();
        let ports: Vec<u16> = pool.iter().map(|s| s.local_port()).collect();
        let residues: std::collections::HashSet<u16> = ports.iter().map(|p| p % 16).collect();
        assert_eq!(residues.len(), 16, "{ports:?}");
        assert!(
            ports.iter().all(|p| (base..=base + 999).contains(p)),
            "{ports:?}"
        );
        let turns = crate::spread::turn_table(&ports);
        for (turn, &i) in turns.iter().enumerate() {
            assert_eq!(usize::from(ports[usize::from(i)]) % 16, turn, "{ports:?}");
        }
    }

    #[test]
    fn a_source_port_pool_binds_inside_its_range_and_tos_travels_per_datagram() {
        // Unprivileged: loopback, ports of this test's own, above the kernel's ephemeral ones.
        let base = 64_000 + (std::process::id() % 60) as u16 * 8;
        let local = IpAddr::from([127, 0, 0, 1]);
        let rx = UnderlaySocket::udp(local, base + 7, true, true).unwrap();
        let range = SourcePorts::Range(base, base + 5);
        let pool = UnderlaySocket::udp_pool(local, base + 7, range, 4, true, true).unwrap();
        let ports: std::collections::HashSet<u16> = pool.iter().map(|s| s.local_port()).collect();
        assert_eq!(ports.len(), 4, "distinct ports");
        assert!(
            ports.iter().all(|p| (base..=base + 5).contains(p)),
            "{ports:?}"
        );
        assert!(pool.iter().all(|s| !s.receives() && s.pool().is_some()));
        let dst = SockAddr::from(SocketAddr::new(local, base + 7));
        let header = [0u8; 8];
        // Two GSO-sized runs of different TOS: they must not merge.
        let items = (0..6).map(|i| SendItem {
            dst: &dst,
            header: &header,
            payload: &[1u8; 1000],
            tag: i,
            tos: if i < 3 { 0x02 } else { 0x03 },
            ttl: 9,
        });
        let mut errors = 0;
        pool[0].send_batch(items, |_, _| errors += 1);
        assert_eq!(errors, 0);
        let mut batch = RecvBatch::default();
        let mut tos = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while tos.len() < 6 && Instant::now() < deadline {
            let n = rx.recv_batch(&mut batch).unwrap();
            tos.extend((0..n).map(|i| batch.outer_tos(i)));
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert_eq!(
            tos,
            [2, 2, 2, 3, 3, 3],
            "each datagram's own TOS (ECN bits included)"
        );
    }

    #[test]
    fn gso_sends_and_gro_receives_keep_every_datagram_and_its_bytes() {
        // Unprivileged: loopback, ports of this test's own.
        let local = IpAddr::from([127, 0, 0, 1]);
        for offload in [true, false] {
            let port = crate::testing::free_udp_port();
            let tx = UnderlaySocket::udp(local, 0, true, offload).unwrap();
            let rx = UnderlaySocket::udp(local, port, true, offload).unwrap();
            if offload {
                assert_eq!(tx.offloads(), (true, true), "loopback has UDP GSO and GRO");
            }
            let dst = SockAddr::from(SocketAddr::new(local, port));
            let header = [0xaa; 8];
            // 40 equal datagrams, a short one, then 5 more: at least three GSO messages.
            let payloads: Vec<Vec<u8>> = (0..46)
                .map(|i: usize| {
                    let len = if i == 40 { 300 } else { 1400 };
                    (0..len).map(|b| (b + i) as u8).collect()
                })
                .collect();
            let mut errors = 0;
            tx.send_batch(
                payloads.iter().enumerate().map(|(i, p)| SendItem {
                    dst: &dst,
                    header: &header,
                    payload: p,
                    tag: i as u32,
                    tos: 0,
                    ttl: 0,
                }),
                |_, _| errors += 1,
            );
            assert_eq!(errors, 0);
            let got = receive(&rx, payloads.len());
            let expected: Vec<Vec<u8>> =
                payloads.iter().map(|p| [&header[..], p].concat()).collect();
            assert_eq!(
                got, expected,
                "offload {offload}: every datagram, in order, intact"
            );
        }
    }
}
