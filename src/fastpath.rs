//! The kernel fast path's cache, as data: the key and entry layouts the BPF programs in
//! `bpf/fastpath.c` read, the keys of frames (built exactly as the programs build them), and
//! what an entry says. Pure: the loader and the map operations are in `io/bpf.rs`, the
//! installing and sweeping in `daemon/fastpath.rs`.
//!
//! The cache is keyed exactly (a microflow cache, not a megaflow one): every field a flow can
//! match (MACs, EtherType, addresses, protocol, ports) plus, for frames from VXLAN, the outer
//! source and destination, the UDP port and the VNI. Every TCP connection's SYN goes to vxtund
//! anyway (it clamps the MSS), and the RFC 7348 source port is a per-flow hash, so a
//! wildcarded entry would save no upcall for TCP and would need the hash recomputed in the
//! kernel; an exact key is one hash lookup, and strangers' packets (another source, VNI or
//! port) can never match an entry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::ethernet::{FrameKey, L4Ports, Mac, L3};

/// `dir`: a frame from the TAP.
pub const DIR_TAP: u8 = 0;
/// `dir`: a frame decapsulated from VXLAN.
pub const DIR_VXLAN: u8 = 1;
/// Entry action: encapsulate in VXLAN over IPv4 and send out of the underlay device.
pub const ACT_ENCAP: u32 = 1;
/// Entry action: decapsulate and deliver into the TAP.
pub const ACT_DECAP: u32 = 2;
/// Outer DF: clear.
pub const DF_UNSET: u8 = 0;
/// Outer DF: set.
pub const DF_SET: u8 = 1;
/// Outer DF: the inner IPv4 packet's (set for anything else).
pub const DF_INHERIT: u8 = 2;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const ETH_LEN: usize = 14;
const TCP_SYN: u8 = 0x02;

/// The cache's key (`struct fp_key`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Key {
    /// [`DIR_TAP`] or [`DIR_VXLAN`].
    pub dir: u8,
    /// 4 or 6.
    pub l3: u8,
    /// The IP protocol.
    pub proto: u8,
    /// Zero.
    pub pad0: u8,
    /// From VXLAN: the VNI.
    pub vni: u32,
    /// From VXLAN: the remote's IPv4 address.
    pub outer_src: [u8; 4],
    /// From VXLAN: the local IPv4 address.
    pub outer_dst: [u8; 4],
    /// From VXLAN: the local UDP port.
    pub outer_port: u16,
    /// The EtherType.
    pub dl_type: u16,
    /// Destination MAC.
    pub dl_dst: [u8; 6],
    /// Source MAC.
    pub dl_src: [u8; 6],
    /// Source address (IPv4 in the first four bytes).
    pub nw_src: [u8; 16],
    /// Destination address.
    pub nw_dst: [u8; 16],
    /// TCP or UDP source port, else 0.
    pub tp_src: u16,
    /// TCP or UDP destination port, else 0.
    pub tp_dst: u16,
}

/// A cache entry (`struct fp_val`): counters the programs add to, the generation and deadline
/// that make it valid, and how to send.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Value {
    /// Frames forwarded by this entry (segments of a superframe each count).
    pub packets: u64,
    /// Their bytes (inner Ethernet frames).
    pub bytes: u64,
    /// The generation the decision was made in: an entry of another is a miss.
    pub gen: u64,
    /// CLOCK_MONOTONIC nanoseconds after which the entry is a miss (the expiry of the MAC table
    /// entry the decision read); 0 for none.
    pub deadline_ns: u64,
    /// [`ACT_ENCAP`] or [`ACT_DECAP`].
    pub action: u32,
    /// Encap: the underlay device; decap: the TAP.
    pub ifindex: u32,
    /// Encap: the largest inner IP packet the tunnel carries (0: no limit).
    pub mtu: u32,
    /// Encap: the VNI.
    pub vni: u32,
    /// Encap: the outer IPv4 source.
    pub saddr: [u8; 4],
    /// Encap: the outer IPv4 destination.
    pub daddr: [u8; 4],
    /// Encap: the outer UDP source port.
    pub sport: u16,
    /// Encap: the outer UDP destination port.
    pub dport: u16,
    /// Encap: 1 to copy the inner DSCP.
    pub tos_inherit: u8,
    /// Encap: the fixed DSCP (ECN follows the inner packet either way).
    pub tos: u8,
    /// Encap: 1 to copy the inner TTL / hop limit.
    pub ttl_inherit: u8,
    /// Encap: the fixed TTL.
    pub ttl: u8,
    /// Encap: `DF_*`.
    pub df: u8,
    /// 1 while vxtund may still hold frames of the flow: the programs treat it as a miss.
    pub pending: u8,
    /// Zero.
    pub pad: [u8; 6],
}

const _: () = assert!(std::mem::size_of::<Key>() == 68);
const _: () = assert!(std::mem::size_of::<Value>() == 72);

/// The programs' counters (the `stats` per-CPU array), in index order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Frames from the TAP encapsulated in the kernel.
    EncapHit,
    /// Datagrams decapsulated in the kernel.
    DecapHit,
    /// Cacheable frames from the TAP with no valid entry: upcalls.
    EncapMiss,
    /// Cacheable VXLAN datagrams with no valid entry: upcalls.
    DecapMiss,
    /// Entries found but of an older generation or past their deadline.
    Stale,
    /// Frames the cache never holds (non-IP, SYNs, fragments, ...): to vxtund.
    Uncacheable,
    /// Frames too big for the tunnel: to vxtund, which answers them.
    TooBig,
    /// Helper failures (a frame the kernel would not resize).
    Error,
    /// CE over a Not-ECT inner packet: to vxtund, which drops and counts it.
    EcnDrop,
}

impl Stat {
    /// Every counter, in index order.
    pub const ALL: [Stat; 9] = [
        Stat::EncapHit,
        Stat::DecapHit,
        Stat::EncapMiss,
        Stat::DecapMiss,
        Stat::Stale,
        Stat::Uncacheable,
        Stat::TooBig,
        Stat::Error,
        Stat::EcnDrop,
    ];
}

/// The key of a frame from the TAP, as `vxt_encap` builds it; `None` for a frame the cache
/// never holds.
pub fn tap_key(frame: &[u8]) -> Option<Key> {
    let mut key = Key {
        dir: DIR_TAP,
        ..Key::default()
    };
    parse(frame, &mut key)?;
    Some(key)
}

/// The key of a frame decapsulated from a VXLAN datagram from `remote` to `local`:`port` with
/// `vni`, as `vxt_decap` builds it.
pub fn vxlan_key(
    remote: Ipv4Addr,
    local: Ipv4Addr,
    port: u16,
    vni: u32,
    inner: &[u8],
) -> Option<Key> {
    let mut key = Key {
        dir: DIR_VXLAN,
        vni,
        outer_src: remote.octets(),
        outer_dst: local.octets(),
        outer_port: port,
        ..Key::default()
    };
    parse(inner, &mut key)?;
    Some(key)
}

/// The programs' `parse_frame`: untagged IPv4 (not a fragment) or IPv6 whose next header is
/// TCP, UDP or ICMPv6, from a unicast source, and not a TCP SYN.
fn parse(frame: &[u8], key: &mut Key) -> Option<()> {
    let eth = frame.get(..ETH_LEN)?;
    key.dl_dst.copy_from_slice(&eth[0..6]);
    key.dl_src.copy_from_slice(&eth[6..12]);
    if key.dl_src[0] & 1 != 0 {
        return None;
    }
    key.dl_type = u16::from_be_bytes([eth[12], eth[13]]);
    let l4 = match key.dl_type {
        ETHERTYPE_IPV4 => {
            let ip = frame.get(ETH_LEN..ETH_LEN + 20)?;
            let ihl = usize::from(ip[0] & 0x0f);
            if ip[0] >> 4 != 4 || ihl < 5 {
                return None;
            }
            if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                return None;
            }
            key.l3 = 4;
            key.proto = ip[9];
            key.nw_src[..4].copy_from_slice(&ip[12..16]);
            key.nw_dst[..4].copy_from_slice(&ip[16..20]);
            ETH_LEN + ihl * 4
        }
        ETHERTYPE_IPV6 => {
            let ip = frame.get(ETH_LEN..ETH_LEN + 40)?;
            if ip[0] >> 4 != 6 || ![PROTO_TCP, PROTO_UDP, PROTO_ICMPV6].contains(&ip[6]) {
                return None;
            }
            key.l3 = 6;
            key.proto = ip[6];
            key.nw_src.copy_from_slice(&ip[8..24]);
            key.nw_dst.copy_from_slice(&ip[24..40]);
            ETH_LEN + 40
        }
        _ => return None,
    };
    match key.proto {
        PROTO_TCP => {
            let tcp = frame.get(l4..l4 + 20)?;
            if tcp[13] & TCP_SYN != 0 {
                return None;
            }
            key.tp_src = u16::from_be_bytes([tcp[0], tcp[1]]);
            key.tp_dst = u16::from_be_bytes([tcp[2], tcp[3]]);
        }
        PROTO_UDP => {
            let udp = frame.get(l4..l4 + 8)?;
            key.tp_src = u16::from_be_bytes([udp[0], udp[1]]);
            key.tp_dst = u16::from_be_bytes([udp[2], udp[3]]);
        }
        _ => {}
    }
    Some(())
}

impl Key {
    /// The flow key of the frames this key stands for: what the flow table matches them on.
    pub fn frame_key(&self) -> FrameKey {
        let l3 = match self.l3 {
            4 => {
                let v4 = |b: &[u8; 16]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                L3::Ipv4 {
                    src: v4(&self.nw_src),
                    dst: v4(&self.nw_dst),
                    proto: self.proto,
                }
            }
            _ => L3::Ipv6 {
                src: Ipv6Addr::from(self.nw_src),
                dst: Ipv6Addr::from(self.nw_dst),
                proto: self.proto,
            },
        };
        FrameKey {
            dl_dst: Mac(self.dl_dst),
            dl_src: Mac(self.dl_src),
            dl_type: self.dl_type,
            vlan: None,
            l3,
            ports: matches!(self.proto, PROTO_TCP | PROTO_UDP).then_some(L4Ports {
                src: self.tp_src,
                dst: self.tp_dst,
            }),
        }
    }

    /// From VXLAN: the remote that sent the frames.
    pub fn remote(&self) -> Option<IpAddr> {
        (self.dir == DIR_VXLAN).then(|| IpAddr::from(self.outer_src))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::FrameKey;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn tcp4(frag: bool) -> Vec<u8> {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(A, B)
            .ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
            .tcp(40000, 5201, 1, 1000)
            .write(&mut f, &[1, 2, 3])
            .unwrap();
        if frag {
            f[ETH_LEN + 6] = 0x20; // MF
        }
        f
    }

    #[test]
    fn a_tcp_frame_has_the_key_the_flow_table_reads() {
        let f = tcp4(false);
        let key = tap_key(&f).unwrap();
        assert_eq!(key.dir, DIR_TAP);
        assert_eq!(
            (key.l3, key.proto, key.tp_src, key.tp_dst),
            (4, 6, 40000, 5201)
        );
        assert_eq!(key.frame_key(), FrameKey::parse(&f).unwrap());
    }

    #[test]
    fn syns_fragments_and_non_ip_are_never_cached() {
        let mut syn = tcp4(false);
        syn[ETH_LEN + 20 + 13] |= TCP_SYN;
        assert_eq!(tap_key(&syn), None);
        assert_eq!(tap_key(&tcp4(true)), None);
        let mut arp = tcp4(false);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(tap_key(&arp), None);
        let mut group = tcp4(false);
        group[6] |= 1;
        assert_eq!(tap_key(&group), None);
        assert_eq!(tap_key(&[0; 13]), None);
    }

    #[test]
    fn ipv6_with_extension_headers_is_not_cached_and_without_is() {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(A, B)
            .ipv6([0xfc; 16], [0xfd; 16], 64)
            .udp(1, 2)
            .write(&mut f, &[0; 4])
            .unwrap();
        let key = tap_key(&f).unwrap();
        assert_eq!(key.frame_key(), FrameKey::parse(&f).unwrap());
        f[ETH_LEN + 6] = 0; // hop-by-hop options
        assert_eq!(tap_key(&f), None);
    }

    #[test]
    fn a_vxlan_key_names_its_sender_and_vni() {
        let f = tcp4(false);
        let key = vxlan_key(
            Ipv4Addr::new(192, 168, 200, 102),
            Ipv4Addr::new(192, 168, 200, 101),
            8472,
            7,
            &f,
        )
        .unwrap();
        assert_eq!(key.remote(), Some(IpAddr::from([192, 168, 200, 102])));
        assert_ne!(key, tap_key(&f).unwrap());
        assert_eq!(key.frame_key(), FrameKey::parse(&f).unwrap());
    }

    proptest::proptest! {
        /// Any bytes: no panic, and a key, when there is one, matches what the flow table reads.
        #[test]
        fn keys_agree_with_the_flow_key(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Some(key) = tap_key(&bytes) {
                proptest::prop_assert_eq!(Some(key.frame_key()), FrameKey::parse(&bytes).ok());
            }
        }
    }
}
