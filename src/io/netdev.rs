//! Netdev operations through ioctls and socket options: enslaving to a bridge, and reading the
//! MTU of the route to a remote.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// `SIOCBRADDIF` from linux/sockios.h: add an interface to a bridge.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// Enslaves the interface with index `ifindex` to the Linux bridge `bridge`.
pub fn enslave(bridge: &str, ifindex: u32) -> io::Result<()> {
    let sock = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
    // SAFETY: an all-zero ifreq is a valid value of this plain C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = bridge.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bridge name too long",
        ));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_ifindex = ifindex as libc::c_int;
    // SAFETY: SIOCBRADDIF reads an ifreq; `req` is a valid, NUL-terminated one that outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCBRADDIF as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
    let sock = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
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
    // SAFETY: SIOCGIFHWADDR reads the name from and writes the address into `req`, a valid,
    // NUL-terminated ifreq that outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: after a successful SIOCGIFHWADDR the union holds `ifru_hwaddr`.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, &src) in mac.iter_mut().zip(data.iter()) {
        *dst = src as u8;
    }
    Ok(mac)
}
