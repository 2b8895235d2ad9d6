//! The kernel fast path's cache, as data: the key and entry layouts the BPF programs in
//! `bpf/fastpath.c` read, the keys of frames (built exactly as the programs build them), and
//! what an entry says. Pure: the loader and the map operations are in `io/bpf.rs`, the
//! installing and sweeping in `daemon/fastpath.rs`.
//!
//! The cache is keyed exactly (a microflow cache, not a megaflow one): every field a flow can
//! match (MACs, EtherType, addresses, protocol, ports) plus, for frames from a tunnel, the
//! outer source and destination and the UDP port and VNI (VXLAN) or the key (GRE). Every TCP connection's SYN goes to vxtund
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
/// `dir`: a frame decapsulated from Ethernet over GRE.
pub const DIR_GRE: u8 = 2;
/// Entry `tunnel`: VXLAN.
pub const TUN_VXLAN: u8 = 0;
/// Entry `tunnel`: Ethernet over GRE (without checksum or sequence numbers).
pub const TUN_GRE: u8 = 1;
/// GRE's flags and version word with the key bit (RFC 2890), and nothing else.
pub const GRE_KEYED: u16 = 0x2000;
/// Entry action: encapsulate and send out of the underlay device.
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
    /// [`DIR_TAP`], [`DIR_VXLAN`] or [`DIR_GRE`].
    pub dir: u8,
    /// 4 or 6.
    pub l3: u8,
    /// The IP protocol.
    pub proto: u8,
    /// From a tunnel: 4 or 6, the underlay's IP version.
    pub outer_l3: u8,
    /// From VXLAN: the VNI; from GRE: the key (0 without one).
    pub vni: u32,
    /// From a tunnel: the remote's address (IPv4 in the first four bytes).
    pub outer_src: [u8; 16],
    /// From a tunnel: the local address.
    pub outer_dst: [u8; 16],
    /// From VXLAN: the local UDP port; from GRE: the flags word ([`GRE_KEYED`] or 0).
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
    /// Encap: the VNI, or the GRE key.
    pub vni: u32,
    /// Encap: the outer source address (IPv4 in the first four bytes).
    pub saddr: [u8; 16],
    /// Encap: the outer destination address.
    pub daddr: [u8; 16],
    /// Encap over IPv6: the outer flow label.
    pub flow_label: u32,
    /// Encap, VXLAN: the outer UDP source port.
    pub sport: u16,
    /// Encap: VXLAN's outer UDP destination port; GRE's flags word ([`GRE_KEYED`] or 0).
    pub dport: u16,
    /// Encap: 1 to copy the inner DSCP.
    pub tos_inherit: u8,
    /// Encap: the fixed DSCP (ECN follows the inner packet either way).
    pub tos: u8,
    /// Encap: 1 to copy the inner TTL / hop limit.
    pub ttl_inherit: u8,
    /// Encap: the fixed TTL.
    pub ttl: u8,
    /// Encap over IPv4: `DF_*`.
    pub df: u8,
    /// 1 while vxtund may still hold frames of the flow: the programs treat it as a miss.
    pub pending: u8,
    /// Encap: [`TUN_VXLAN`] or [`TUN_GRE`].
    pub tunnel: u8,
    /// Encap: 4 or 6, the underlay's IP version.
    pub outer_l3: u8,
}

const _: () = assert!(std::mem::size_of::<Key>() == 92);
const _: () = assert!(std::mem::size_of::<Value>() == 96);

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

/// How a frame reached vxtund from the underlay: what its cache key holds beyond the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A VXLAN datagram to local UDP `port` with `vni`.
    Vxlan {
        /// The local UDP port.
        port: u16,
        /// The VNI.
        vni: u32,
    },
    /// An Ethernet-over-GRE packet without checksum or sequence number, with `key` if any.
    Gre {
        /// The GRE key.
        key: Option<u32>,
    },
}

/// The key of a frame decapsulated from a packet from `remote` to `local` that came `via` a
/// tunnel, as `vxt_decap` builds it; `None` for a frame the cache never holds, and for
/// addresses of two IP versions.
pub fn tunnel_key(remote: IpAddr, local: IpAddr, via: Via, inner: &[u8]) -> Option<Key> {
    let (outer_l3, outer_src, outer_dst) = match (remote, local) {
        (IpAddr::V4(r), IpAddr::V4(l)) => (4, padded(r), padded(l)),
        (IpAddr::V6(r), IpAddr::V6(l)) => (6, r.octets(), l.octets()),
        _ => return None,
    };
    let (dir, vni, outer_port) = match via {
        Via::Vxlan { port, vni } => (DIR_VXLAN, vni, port),
        Via::Gre { key: Some(k) } => (DIR_GRE, k, GRE_KEYED),
        Via::Gre { key: None } => (DIR_GRE, 0, 0),
    };
    let mut key = Key {
        dir,
        outer_l3,
        vni,
        outer_src,
        outer_dst,
        outer_port,
        ..Key::default()
    };
    parse(inner, &mut key)?;
    Some(key)
}

/// An IPv4 address in the programs' 16-byte address fields: its four bytes first.
pub fn padded(a: Ipv4Addr) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&a.octets());
    out
}

/// The address in a 16-byte field of the programs, IPv4 when `l3` is 4.
pub fn address(l3: u8, bytes: [u8; 16]) -> IpAddr {
    match l3 {
        4 => IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
        _ => IpAddr::from(bytes),
    }
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

    /// From a tunnel: the remote that sent the frames.
    pub fn remote(&self) -> Option<IpAddr> {
        (self.dir != DIR_TAP).then(|| address(self.outer_l3, self.outer_src))
    }

    /// From a tunnel: how the frames came.
    pub fn via(&self) -> Option<Via> {
        match self.dir {
            DIR_VXLAN => Some(Via::Vxlan {
                port: self.outer_port,
                vni: self.vni,
            }),
            DIR_GRE => Some(Via::Gre {
                key: (self.outer_port == GRE_KEYED).then_some(self.vni),
            }),
            _ => None,
        }
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
        let via = Via::Vxlan { port: 8472, vni: 7 };
        let key = tunnel_key(
            IpAddr::from([192, 168, 200, 102]),
            IpAddr::from([192, 168, 200, 101]),
            via,
            &f,
        )
        .unwrap();
        assert_eq!(key.remote(), Some(IpAddr::from([192, 168, 200, 102])));
        assert_eq!(key.via(), Some(via));
        assert_ne!(key, tap_key(&f).unwrap());
        assert_eq!(key.frame_key(), FrameKey::parse(&f).unwrap());
    }

    #[test]
    fn gre_keys_tell_keyed_from_unkeyed_and_ipv6_remotes_are_whole() {
        let f = tcp4(false);
        let remote: IpAddr = "fd00::2".parse().unwrap();
        let local: IpAddr = "fd00::1".parse().unwrap();
        let keyed = tunnel_key(remote, local, Via::Gre { key: Some(0) }, &f).unwrap();
        let unkeyed = tunnel_key(remote, local, Via::Gre { key: None }, &f).unwrap();
        assert_ne!(keyed, unkeyed, "key 0 is not no key");
        assert_eq!(keyed.via(), Some(Via::Gre { key: Some(0) }));
        assert_eq!(unkeyed.via(), Some(Via::Gre { key: None }));
        assert_eq!(keyed.remote(), Some(remote));
        assert_eq!((keyed.dir, keyed.outer_l3), (DIR_GRE, 6));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(tunnel_key(remote, v4, Via::Gre { key: None }, &f), None);
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
