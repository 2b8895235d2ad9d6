//! TCP MD5 signatures (RFC 2385) on a socket: `setsockopt(TCP_MD5SIG)` with the key for one
//! peer address, as BGP speakers (FRR's `neighbor X password`) protect their sessions.
//!
//! Once a key is set for a peer, the kernel signs every segment to that peer and drops, without
//! a word to the application, every segment from it whose signature is missing or wrong (it
//! counts them as `TCPMD5Failure` / `TCPMD5NotFound` in `nstat`). So a password that differs on
//! the two sides looks like a peer that never answers: the connect times out.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// `struct tcp_md5sig` of linux/tcp.h (the libc crate has the option, not the struct).
#[repr(C)]
struct TcpMd5Sig {
    /// The peer's address, a `sockaddr_in` or `sockaddr_in6` (the port is ignored).
    addr: libc::sockaddr_storage,
    /// `TCP_MD5SIG_FLAG_*`; used with `TCP_MD5SIG_EXT` only.
    flags: u8,
    /// Prefix length; used with `TCP_MD5SIG_EXT` only.
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; libc::TCP_MD5SIG_MAXKEYLEN],
}

/// Sets (or, with an empty `key`, removes) the TCP MD5 key `socket` uses with `peer`. Set it
/// before `connect` (or, on a listener, before the peer's SYN arrives). The socket's family
/// must be `peer`'s. Keys are 1 to 80 bytes.
pub fn set_key(socket: &impl AsRawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > libc::TCP_MD5SIG_MAXKEYLEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a TCP MD5 key is at most {} bytes",
                libc::TCP_MD5SIG_MAXKEYLEN
            ),
        ));
    }
    // SAFETY: all-zero is a valid value of this plain C struct (AF_UNSPEC address, no key).
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    match peer {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut sig.addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut sig.addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.octets();
        }
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: setsockopt reads size_of::<TcpMd5Sig>() bytes from a live local of that type.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&sig as *const TcpMd5Sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    //! Over loopback, no root needed: the kernel's own MD5 checks on both ends.

    use super::*;
    use socket2::{Domain, SockAddr, Socket, Type};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::time::Duration;

    /// A listener on `ip` with `listen_key` for `ip` (the client comes from the same address),
    /// a client with `client_key`: whether the client connects and a byte goes through.
    fn connects(ip: IpAddr, listen_key: Option<&[u8]>, client_key: Option<&[u8]>) -> bool {
        let domain = Domain::for_address(SocketAddr::new(ip, 0));
        let listener = Socket::new(domain, Type::STREAM, None).unwrap();
        if let Some(key) = listen_key {
            set_key(&listener, ip, key).unwrap();
        }
        listener
            .bind(&SockAddr::from(SocketAddr::new(ip, 0)))
            .unwrap();
        listener.listen(1).unwrap();
        let at = listener.local_addr().unwrap().as_socket().unwrap();
        let listener: TcpListener = listener.into();
        let client = Socket::new(domain, Type::STREAM, None).unwrap();
        if let Some(key) = client_key {
            set_key(&client, ip, key).unwrap();
        }
        // The kernel drops unsigned or wrongly signed SYNs silently: the connect times out.
        if client
            .connect_timeout(&SockAddr::from(at), Duration::from_millis(500))
            .is_err()
        {
            return false;
        }
        let mut client: std::net::TcpStream = client.into();
        client.write_all(b"x").unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut byte = [0u8; 1];
        accepted.read_exact(&mut byte).unwrap();
        byte == *b"x"
    }

    #[test]
    fn the_same_key_connects_and_a_different_or_missing_one_does_not() {
        for ip in ["127.0.0.1", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(connects(ip, None, None), "{ip}: no keys");
            assert!(connects(ip, Some(b"secret"), Some(b"secret")), "{ip}: same");
            assert!(
                !connects(ip, Some(b"secret"), Some(b"other")),
                "{ip}: differ"
            );
            assert!(
                !connects(ip, Some(b"secret"), None),
                "{ip}: client has none"
            );
            assert!(
                !connects(ip, None, Some(b"secret")),
                "{ip}: listener has none"
            );
        }
    }

    #[test]
    fn keys_longer_than_80_bytes_are_refused() {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(set_key(&socket, peer, &[b'k'; 80]).is_ok());
        let e = set_key(&socket, peer, &[b'k'; 81]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
