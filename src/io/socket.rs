//! Underlay sockets with `recvmmsg` / `sendmmsg` batching: UDP for VXLAN, raw IP protocol 47
//! for GRE (one per address family, shared by every GRE tunnel of that family).
//!
//! Sends gather two pieces per packet (the encapsulation header and the frame, wherever each
//! lives), so one frame flooded to several tunnels is never copied. The kernel builds the outer
//! IP header (and the UDP header and checksum, mandatory over IPv6).

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use thiserror::Error;

/// Most datagrams moved by one system call.
pub const BATCH: usize = 32;
/// Largest UDP payload.
pub const MAX_DATAGRAM: usize = 65_535;
/// Socket buffer size asked for (bursts of a fast sender must not overflow it).
const SOCKET_BUFFER: usize = 4 << 20;

/// IP protocol number of GRE.
const IPPROTO_GRE: i32 = 47;

/// Failures while opening an underlay socket.
#[derive(Debug, Error)]
pub enum SocketError {
    /// bind() or socket setup failed.
    #[error("binding UDP {addr}: {source}")]
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
}

/// Receive buffers for one batch, reused from call to call.
pub struct RecvBatch {
    bufs: Vec<Box<[u8]>>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
    /// How many packets the last call received.
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: (0..BATCH)
                .map(|_| vec![0u8; MAX_DATAGRAM].into_boxed_slice())
                .collect(),
            // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            lens: vec![0; BATCH],
            count: 0,
        }
    }
}

impl RecvBatch {
    /// Packet `i` of the last batch and its sender, writable (for in-place MSS clamping).
    pub fn get_mut(&mut self, i: usize) -> Option<(IpAddr, &mut [u8])> {
        if i >= self.count {
            return None;
        }
        let src = sockaddr_ip(&self.addrs[i])?;
        Some((src, &mut self.bufs[i][..self.lens[i]]))
    }

    /// Packet `i` of the last batch and its sender.
    pub fn get(&self, i: usize) -> Option<(IpAddr, &[u8])> {
        if i >= self.count {
            return None;
        }
        let len = self.lens[i];
        let src = sockaddr_ip(&self.addrs[i])?;
        Some((src, &self.bufs[i][..len]))
    }
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
}

impl UnderlaySocket {
    /// Binds UDP `local:port` with large buffers. Outer IPv4 packets carry DF when `df`; over
    /// IPv6 the kernel never fragments them. Several sockets may share the port (one per DF
    /// setting); the kernel spreads received datagrams over them, and all are read.
    pub fn udp(local: IpAddr, port: u16, df: bool) -> Result<UnderlaySocket, SocketError> {
        let addr = SocketAddr::new(local, port);
        let bind = || -> io::Result<Socket> {
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
            sock.set_reuse_port(true)?;
            sock.bind(&addr.into())?;
            Ok(sock)
        };
        let sock = bind().map_err(|source| SocketError::Bind { addr, source })?;
        Ok(UnderlaySocket {
            sock,
            kind: SocketKind::Udp(port),
            local,
            df,
            receives: true,
        })
    }

    /// Opens a raw GRE socket bound to `local`: it receives GRE packets addressed to `local`
    /// (over IPv4 with their IP header in front, over IPv6 without) and sends GRE packets from it.
    /// With `receive` false the socket only sends: a filter drops every packet the kernel would
    /// copy to it, so that a second raw socket (for the other DF setting) duplicates nothing.
    pub fn gre(local: IpAddr, df: bool, receive: bool) -> Result<UnderlaySocket, SocketError> {
        let open = || -> io::Result<Socket> {
            let domain = if local.is_ipv4() {
                Domain::IPV4
            } else {
                Domain::IPV6
            };
            let sock = Socket::new(
                domain,
                Type::RAW.cloexec(),
                Some(Protocol::from(IPPROTO_GRE)),
            )?;
            if !receive {
                drop_all_received(&sock)?;
            }
            grow_buffers(&sock)?;
            set_df(&sock, local, df)?;
            sock.bind(&SocketAddr::new(local, 0).into())?;
            Ok(sock)
        };
        let sock = open().map_err(|source| {
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
        })
    }

    /// What the socket carries.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// Whether outer IPv4 packets it sends carry DF (always true over IPv6).
    pub fn df(&self) -> bool {
        self.df
    }

    /// Whether packets are read from it (a send-only raw GRE socket is never polled).
    pub fn receives(&self) -> bool {
        self.receives
    }

    /// The local address it is bound to.
    pub fn local(&self) -> IpAddr {
        self.local
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Receives up to [`BATCH`] packets without waiting; returns how many (0 when none).
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
        }
        batch.count = 0;
        loop {
            // SAFETY: every header points at a live buffer, address slot and iovec owned by
            // `batch` or this frame, each with its true length; the kernel writes within them.
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
            let n = rc as usize;
            for (len, hdr) in batch.lens.iter_mut().zip(&hdrs[..n]) {
                *len = hdr.msg_len as usize;
            }
            batch.count = n;
            return Ok(n);
        }
    }

    /// Sends every item, [`BATCH`] per system call, and calls `on_error(tag, error)` for each
    /// item the kernel refused, going on with the next. Builds nothing on the heap.
    pub fn send_batch<'a>(
        &self,
        items: impl IntoIterator<Item = SendItem<'a>>,
        mut on_error: impl FnMut(u32, io::Error),
    ) {
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let mut iovs = [[libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; 2]; BATCH];
            let mut tags = [0u32; BATCH];
            // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let mut count = 0;
            for item in items.by_ref().take(BATCH) {
                iovs[count] = [
                    libc::iovec {
                        iov_base: item.header.as_ptr() as *mut _,
                        iov_len: item.header.len(),
                    },
                    libc::iovec {
                        iov_base: item.payload.as_ptr() as *mut _,
                        iov_len: item.payload.len(),
                    },
                ];
                tags[count] = item.tag;
                hdrs[count].msg_hdr.msg_name = item.dst.as_ptr() as *mut _;
                hdrs[count].msg_hdr.msg_namelen = item.dst.len();
                count += 1;
            }
            for (hdr, iov) in hdrs.iter_mut().zip(iovs.iter_mut()).take(count) {
                hdr.msg_hdr.msg_iov = iov.as_mut_ptr();
                hdr.msg_hdr.msg_iovlen = 2;
            }
            let mut start = 0;
            while start < count {
                // SAFETY: headers start..count point at iovecs, and through them at buffers and
                // addresses, that all live until the end of this loop; sendmmsg only reads them.
                let rc = unsafe {
                    libc::sendmmsg(
                        self.fd(),
                        hdrs[start..].as_mut_ptr(),
                        (count - start) as u32,
                        0,
                    )
                };
                if rc < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    on_error(tags[start], e);
                    start += 1;
                } else {
                    start += rc as usize;
                }
            }
        }
    }
}

/// DF on outer IPv4 packets (`IP_PMTUDISC_DO`: set, and never fragment locally) or not
/// (`IP_PMTUDISC_DONT`); over IPv6, never fragment locally.
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
    let mut program = [libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let fprog = libc::sock_fprog {
        len: 1,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: SO_ATTACH_FILTER reads a sock_fprog pointing at `program`; both outlive the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
