//! Netdev operations through ioctls and socket options: enslaving to a bridge, a device's
//! transmit queue length, and reading the MTU of the route to a remote.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// `SIOCBRADDIF` from linux/sockios.h: add an interface to a bridge.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// Enslaves the interface with index `ifindex` to the Linux bridge `bridge`.
pub fn enslave(bridge: &str, ifindex: u32) -> io::Result<()> {
    let mut req = ifreq(bridge)?;
    req.ifr_ifru.ifru_ifindex = ifindex as libc::c_int;
    // SAFETY: SIOCBRADDIF reads the bridge's name and the index from the ifreq, nothing else.
    unsafe { ioctl(SIOCBRADDIF, &mut req) }
}

/// The transmit queue length of interface `name` (`SIOCGIFTXQLEN`).
pub fn txqueuelen(name: &str) -> io::Result<u32> {
    let mut req = ifreq(name)?;
    // SAFETY: SIOCGIFTXQLEN reads the name and writes the length into the ifreq, nothing else.
    unsafe { ioctl(libc::SIOCGIFTXQLEN, &mut req)? };
    // SAFETY: after a successful SIOCGIFTXQLEN the union holds the length in its int
    // (`ifr_qlen`, which shares `ifru_ifindex`'s place).
    let len = unsafe { req.ifr_ifru.ifru_ifindex };
    // The kernel's length is unsigned; it copies it into this int as it is.
    Ok(len as u32)
}

/// Sets the transmit queue length of interface `name` (`SIOCSIFTXQLEN`, as `ip link set NAME
/// txqueuelen LEN`); a TAP resizes its rings at once.
pub fn set_txqueuelen(name: &str, len: u32) -> io::Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_ifindex = libc::c_int::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length out of range"))?;
    // SAFETY: SIOCSIFTXQLEN reads the name and the length from the ifreq, nothing else.
    unsafe { ioctl(libc::SIOCSIFTXQLEN, &mut req) }
}

/// The MTU of the route from `local` to `remote` (the outgoing interface's, or a learnt path
/// MTU), read with IP_MTU / IPV6_MTU on a connected UDP socket. Sends nothing.
pub fn route_mtu(local: IpAddr, remote: IpAddr) -> io::Result<u16> {
    let domain = if remote.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    sock.bind(&SocketAddr::new(local, 0).into())?;
    sock.connect(&SocketAddr::new(remote, 9).into())?;
    let (level, name) = if remote.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_MTU)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    };
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `mtu`, a live c_int.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&mut mtu as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    u16::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "MTU out of range"))
}

/// The MAC address of interface `name` (`SIOCGIFHWADDR`).
pub fn mac_address(name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq(name)?;
    // SAFETY: SIOCGIFHWADDR reads the name and writes the address into the ifreq, nothing else.
    unsafe { ioctl(libc::SIOCGIFHWADDR, &mut req)? };
    // SAFETY: after a successful SIOCGIFHWADDR the union holds `ifru_hwaddr`.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, &src) in mac.iter_mut().zip(data.iter()) {
        *dst = src as u8;
    }
    Ok(mac)
}

/// Whether interface `name` has Ethernet headers (`SIOCGIFHWADDR` says `ARPHRD_ETHER`): a veth
/// or a NIC does, an L3 device such as WireGuard's (kernel or wireguard-go's TUN) does not.
pub fn is_ethernet(name: &str) -> io::Result<bool> {
    let mut req = ifreq(name)?;
    // SAFETY: SIOCGIFHWADDR reads the name and writes the address into the ifreq, nothing else.
    unsafe { ioctl(libc::SIOCGIFHWADDR, &mut req)? };
    // SAFETY: after a successful SIOCGIFHWADDR the union holds `ifru_hwaddr`.
    let family = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    Ok(family == libc::ARPHRD_ETHER)
}

/// An all-zero `ifreq` naming interface `name`.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: an all-zero ifreq is a valid value of this plain C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// Runs the interface ioctl `request` on `req`, through a throwaway socket.
///
/// # Safety
///
/// `request` must be an ioctl that reads and writes nothing but the `ifreq` it is given (no
/// pointer inside it, as `ifru_data` would be).
unsafe fn ioctl(request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    let sock = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
    // SAFETY: by the caller's promise the kernel touches only `req`, a valid, NUL-terminated
    // ifreq that outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the interface that holds the address `ip`, if one does (`getifaddrs`).
pub fn device_with_address(ip: IpAddr) -> io::Result<Option<String>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list`; it is freed below, once.
    if unsafe { libc::getifaddrs(&mut list) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = None;
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a live node of the list getifaddrs made; its fields are valid until
        // freeifaddrs.
        let ifa = unsafe { &*at };
        at = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points at a sockaddr whose family says which kind it is.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    Some(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()))
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    Some(IpAddr::from(a.sin6_addr.s6_addr))
                }
                _ => None,
            }
        };
        if addr == Some(ip) {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
            found = Some(name.to_string_lossy().into_owned());
            break;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once; nothing borrowed from it remains.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

/// The index of interface `name`.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a device name"))?;
    // SAFETY: if_nametoindex reads the NUL-terminated name and nothing else.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        i => Ok(i),
    }
}

/// A netlink socket that hears of every change to links, addresses and routes (IPv4 and IPv6):
/// what may move a tunnel's traffic to another device, or to none.
pub struct RouteMonitor {
    fd: std::os::fd::OwnedFd,
}

/// `RTMGRP_*` from linux/rtnetlink.h.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

impl RouteMonitor {
    /// Subscribes to the changes.
    pub fn open() -> io::Result<RouteMonitor> {
        use std::os::fd::FromRawFd;
        // SAFETY: socket(2) with constant arguments; the descriptor is owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_nl is valid; its fields are set below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_groups = RTMGRP_LINK
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV6_ROUTE;
        // SAFETY: bind reads a sockaddr_nl of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RouteMonitor { fd })
    }

    /// The descriptor, to poll.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads every pending notification; whether there was any (an overrun counts as one).
    pub fn changed(&self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        loop {
            // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                any = true;
                continue;
            }
            let e = io::Error::last_os_error();
            return any || (n < 0 && e.raw_os_error() == Some(libc::ENOBUFS));
        }
    }
}

/// `XFRM_MSG_GETPOLICY` and `XFRM_MSG_NEWPOLICY` from linux/xfrm.h.
const XFRM_MSG_NEWPOLICY: u16 = 0x13;
const XFRM_MSG_GETPOLICY: u16 = 0x15;

/// How many IPsec (xfrm) policies the kernel holds in this network namespace (not counting
/// per-socket ones): a dump of `XFRM_MSG_GETPOLICY` over `NETLINK_XFRM` (needs
/// `CAP_NET_ADMIN`), as `ip xfrm policy` lists them.
pub fn xfrm_policies() -> io::Result<usize> {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) with constant arguments; the descriptor is owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_XFRM,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    // A dump request is the header alone: the kernel starts the dump before it parses a body.
    let header = libc::nlmsghdr {
        nlmsg_len: std::mem::size_of::<libc::nlmsghdr>() as u32,
        nlmsg_type: XFRM_MSG_GETPOLICY,
        nlmsg_flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
        nlmsg_seq: 1,
        nlmsg_pid: 0,
    };
    // SAFETY: send reads `nlmsg_len` bytes of the header, which is that long.
    let sent = unsafe {
        libc::send(
            fd.as_raw_fd(),
            (&header as *const libc::nlmsghdr).cast(),
            header.nlmsg_len as usize,
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: setsockopt reads a timeval of the size given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let mut buf = vec![0u8; 32 * 1024];
    let mut policies = 0;
    loop {
        // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut rest = &buf[..n as usize];
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if len < 16 || len > rest.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a truncated netlink message",
                ));
            }
            match kind {
                k if k == libc::NLMSG_DONE as u16 => return Ok(policies),
                k if k == libc::NLMSG_ERROR as u16 => {
                    let code = rest
                        .get(16..20)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if code == 0 {
                        return Ok(policies);
                    }
                    return Err(io::Error::from_raw_os_error(-code));
                }
                XFRM_MSG_NEWPOLICY => policies += 1,
                _ => {}
            }
            // Messages are 4-byte aligned.
            let step = (len + 3) & !3;
            rest = rest.get(step..).unwrap_or(&[]);
        }
    }
}
