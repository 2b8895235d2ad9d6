//! Ethernet frames and the fields the flow table matches on.
//!
//! [`FrameKey::parse`] reads the L2 header (skipping one 802.1Q tag), and for ARP, IPv4 and IPv6
//! the addresses and upper-layer protocol, and for TCP and UDP the ports. A frame whose L3 header
//! is cut short still has a key: its L3 part is [`L3::Other`], so it can match L2 flows but never
//! an address flow. A cut (or non-first fragment's) transport header leaves the ports out.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Length of an Ethernet header without a VLAN tag.
pub const HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of an 802.1ad service (outer) VLAN tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

const DST_OFFSET: usize = 0;
const SRC_OFFSET: usize = 6;
const ETHERTYPE_OFFSET: usize = 12;
const VLAN_TAG_LEN: usize = 4;
/// The VLAN ID bits of an 802.1Q tag control information field.
const VLAN_VID_MASK: u16 = 0x0fff;

const ARP_LEN: usize = 28;
const ARP_SPA_OFFSET: usize = 14;
const ARP_TPA_OFFSET: usize = 24;

const IPV4_FRAG_OFFSET: usize = 6;
/// The fragment offset bits of the IPv4 flags-and-offset field.
const IPV4_FRAG_OFFSET_MASK: u16 = 0x1fff;
const IPV4_PROTO_OFFSET: usize = 9;
const IPV4_SRC_OFFSET: usize = 12;
const IPV4_DST_OFFSET: usize = 16;
const IPV6_NEXT_HEADER_OFFSET: usize = 6;
const IPV6_SRC_OFFSET: usize = 8;
const IPV6_DST_OFFSET: usize = 24;

/// IPv6 extension headers walked to find the upper-layer protocol (RFC 8200 section 4).
const IPV6_EXT_HOP_BY_HOP: u8 = 0;
const IPV6_EXT_ROUTING: u8 = 43;
const IPV6_EXT_FRAGMENT: u8 = 44;
const IPV6_EXT_DEST_OPTS: u8 = 60;
/// The fragment offset bits of the IPv6 fragment header's offset-and-flags field.
const IPV6_FRAG_OFFSET_MASK: u16 = 0xfff8;
/// Transport protocols whose first four bytes are the source and destination ports.
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// At most this many extension headers are walked; a longer chain keeps the last one's number.
const IPV6_EXT_MAX: usize = 8;

/// An Ethernet (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// True for group (multicast and broadcast) addresses: the I/G bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    fn read(bytes: &[u8], offset: usize) -> Mac {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&bytes[offset..offset + 6]);
        Mac(mac)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text is not six colon-separated hex octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a MAC address like 0a:1b:2c:3d:4e:5f")
    }
}

impl FromStr for Mac {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Mac, ParseMacError> {
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for octet in mac.iter_mut() {
            let part = parts.next().ok_or(ParseMacError)?;
            if part.is_empty() || part.len() > 2 {
                return Err(ParseMacError);
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| ParseMacError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(Mac(mac))
    }
}

/// The L3 part of a frame's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    /// ARP over IPv4: sender and target protocol addresses.
    Arp {
        /// Sender protocol address (OpenFlow `nw_src` for ARP).
        spa: Ipv4Addr,
        /// Target protocol address (OpenFlow `nw_dst` for ARP).
        tpa: Ipv4Addr,
    },
    /// IPv4 with its protocol number.
    Ipv4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
        /// IP protocol (1 ICMP, 6 TCP, 17 UDP ...).
        proto: u8,
    },
    /// IPv6 with the upper-layer protocol found after the extension headers.
    Ipv6 {
        /// Source address.
        src: Ipv6Addr,
        /// Destination address.
        dst: Ipv6Addr,
        /// Upper-layer protocol (58 ICMPv6, 6 TCP, 17 UDP ...).
        proto: u8,
    },
    /// Any other EtherType, or an L3 header too short to read.
    Other,
}

/// The fields of a frame that flows match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameKey {
    /// Destination MAC.
    pub dl_dst: Mac,
    /// Source MAC.
    pub dl_src: Mac,
    /// EtherType (the inner one, after an 802.1Q tag).
    pub dl_type: u16,
    /// The VLAN ID of the 802.1Q tag, if the frame has one (OpenFlow `vlan_vid`).
    pub vlan: Option<u16>,
    /// Addresses and protocol, where the frame carries them.
    pub l3: L3,
    /// TCP or UDP ports, where the frame carries them: IPv4 or IPv6 (after its extension
    /// headers) with protocol 6 or 17, not a non-first fragment, the ports not cut off.
    pub ports: Option<L4Ports>,
}

/// The source and destination ports of a TCP or UDP header (OpenFlow `tp_src`, `tp_dst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct L4Ports {
    /// Source port.
    pub src: u16,
    /// Destination port.
    pub dst: u16,
}

/// The frame is shorter than an Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncatedFrame;

impl FrameKey {
    /// Reads the key of an Ethernet frame.
    pub fn parse(frame: &[u8]) -> Result<FrameKey, TruncatedFrame> {
        if frame.len() < HEADER_LEN {
            return Err(TruncatedFrame);
        }
        let dl_dst = Mac::read(frame, DST_OFFSET);
        let dl_src = Mac::read(frame, SRC_OFFSET);
        let mut dl_type = read_u16(frame, ETHERTYPE_OFFSET);
        let mut l3_start = HEADER_LEN;
        let mut vlan = None;
        if dl_type == ETHERTYPE_VLAN {
            if frame.len() < HEADER_LEN + VLAN_TAG_LEN {
                return Err(TruncatedFrame);
            }
            vlan = Some(read_u16(frame, HEADER_LEN) & VLAN_VID_MASK);
            dl_type = read_u16(frame, ETHERTYPE_OFFSET + VLAN_TAG_LEN);
            l3_start += VLAN_TAG_LEN;
        }
        let (l3, ports) = parse_l3(dl_type, &frame[l3_start..]);
        Ok(FrameKey {
            dl_dst,
            dl_src,
            dl_type,
            vlan,
            l3,
            ports,
        })
    }
}

fn parse_l3(dl_type: u16, p: &[u8]) -> (L3, Option<L4Ports>) {
    match dl_type {
        ETHERTYPE_ARP if p.len() >= ARP_LEN && p[4] == 6 && p[5] == 4 => (
            L3::Arp {
                spa: read_v4(p, ARP_SPA_OFFSET),
                tpa: read_v4(p, ARP_TPA_OFFSET),
            },
            None,
        ),
        ETHERTYPE_IPV4 if p.len() >= super::IPV4_HEADER_LEN && p[0] >> 4 == 4 => {
            let proto = p[IPV4_PROTO_OFFSET];
            let header_len = usize::from(p[0] & 0x0f) * 4;
            let first = read_u16(p, IPV4_FRAG_OFFSET) & IPV4_FRAG_OFFSET_MASK == 0;
            let ports = if first && header_len >= super::IPV4_HEADER_LEN {
                l4_ports(proto, p, header_len)
            } else {
                None
            };
            (
                L3::Ipv4 {
                    src: read_v4(p, IPV4_SRC_OFFSET),
                    dst: read_v4(p, IPV4_DST_OFFSET),
                    proto,
                },
                ports,
            )
        }
        ETHERTYPE_IPV6 if p.len() >= super::IPV6_HEADER_LEN && p[0] >> 4 == 6 => {
            let (proto, upper) = ipv6_upper_protocol(p);
            (
                L3::Ipv6 {
                    src: read_v6(p, IPV6_SRC_OFFSET),
                    dst: read_v6(p, IPV6_DST_OFFSET),
                    proto,
                },
                upper.and_then(|offset| l4_ports(proto, p, offset)),
            )
        }
        _ => (L3::Other, None),
    }
}

/// The ports of a TCP or UDP header at `offset`, if it is one and its first four bytes are there.
fn l4_ports(proto: u8, p: &[u8], offset: usize) -> Option<L4Ports> {
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return None;
    }
    let b = p.get(offset..offset.checked_add(4)?)?;
    Some(L4Ports {
        src: u16::from_be_bytes([b[0], b[1]]),
        dst: u16::from_be_bytes([b[2], b[3]]),
    })
}

/// Walks the IPv6 extension headers; stops at the first header that is not one, or that is cut.
/// Returns the protocol found and where its header starts: `None` when the walk stopped inside
/// the extension headers or the packet is a non-first fragment (its upper header is elsewhere).
fn ipv6_upper_protocol(p: &[u8]) -> (u8, Option<usize>) {
    let mut next = p[IPV6_NEXT_HEADER_OFFSET];
    let mut offset = super::IPV6_HEADER_LEN;
    let mut first_fragment = true;
    for _ in 0..IPV6_EXT_MAX {
        let len = match next {
            IPV6_EXT_HOP_BY_HOP | IPV6_EXT_ROUTING | IPV6_EXT_DEST_OPTS => {
                match p.get(offset + 1) {
                    Some(&units) => (usize::from(units) + 1) * 8,
                    None => return (next, None),
                }
            }
            IPV6_EXT_FRAGMENT => {
                // A cut fragment header may still name the protocol; its ports are unknown.
                first_fragment &= matches!(
                    (p.get(offset + 2), p.get(offset + 3)),
                    (Some(&hi), Some(&lo)) if u16::from_be_bytes([hi, lo]) & IPV6_FRAG_OFFSET_MASK == 0
                );
                8
            }
            _ => return (next, first_fragment.then_some(offset)),
        };
        match p.get(offset) {
            Some(&n) => next = n,
            None => return (next, None),
        }
        offset += len;
    }
    (next, first_fragment.then_some(offset))
}

fn read_u16(b: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([b[offset], b[offset + 1]])
}

fn read_v4(b: &[u8], offset: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[offset], b[offset + 1], b[offset + 2], b[offset + 3])
}

fn read_v6(b: &[u8], offset: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[offset..offset + 16]);
    Ipv6Addr::from(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vectors::{KERNEL_ARP, KERNEL_MLD, KERNEL_NS};
    use proptest::prelude::*;

    const INNER: usize = crate::wire::vxlan::HEADER_LEN;

    #[test]
    fn parses_kernel_arp() {
        let key = FrameKey::parse(&KERNEL_ARP[INNER..]).unwrap();
        assert_eq!(key.dl_dst, Mac::BROADCAST);
        assert_eq!(key.dl_src, "4e:5b:1d:12:a0:01".parse().unwrap());
        assert_eq!(key.dl_type, ETHERTYPE_ARP);
        assert_eq!(
            key.l3,
            L3::Arp {
                spa: Ipv4Addr::new(10, 9, 0, 1),
                tpa: Ipv4Addr::new(10, 9, 0, 2)
            }
        );
    }

    #[test]
    fn parses_kernel_neighbour_solicitation() {
        let key = FrameKey::parse(&KERNEL_NS[INNER..]).unwrap();
        assert!(key.dl_dst.is_multicast());
        assert_eq!(
            key.l3,
            L3::Ipv6 {
                src: Ipv6Addr::UNSPECIFIED,
                dst: "ff02::1:ff12:a001".parse().unwrap(),
                proto: 58
            }
        );
    }

    #[test]
    fn finds_icmpv6_behind_hop_by_hop_header() {
        let key = FrameKey::parse(&KERNEL_MLD[INNER..]).unwrap();
        assert!(matches!(key.l3, L3::Ipv6 { proto: 58, .. }));
    }

    #[test]
    fn skips_one_vlan_tag() {
        let inner = &KERNEL_ARP[INNER..];
        let mut tagged = inner[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&inner[12..]);
        let key = FrameKey::parse(&tagged).unwrap();
        assert_eq!(key.dl_type, ETHERTYPE_ARP);
        assert!(matches!(key.l3, L3::Arp { .. }));
    }

    #[test]
    fn short_l3_is_other_and_short_l2_is_truncated() {
        let key = FrameKey::parse(&KERNEL_NS[INNER..INNER + 30]).unwrap();
        assert_eq!(key.dl_type, ETHERTYPE_IPV6);
        assert_eq!(key.l3, L3::Other);
        assert_eq!(
            FrameKey::parse(&KERNEL_NS[INNER..INNER + 13]),
            Err(TruncatedFrame)
        );
    }

    #[test]
    fn agrees_with_etherparse_on_an_ipv4_udp_frame() {
        let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
            .udp(4000, 5000);
        let mut frame = Vec::new();
        builder.write(&mut frame, b"hello").unwrap();
        let key = FrameKey::parse(&frame).unwrap();
        assert_eq!(
            key.l3,
            L3::Ipv4 {
                src: Ipv4Addr::new(172, 31, 1, 1),
                dst: Ipv4Addr::new(172, 31, 2, 1),
                proto: 17
            }
        );
    }

    fn udp4(src: u16, dst: u16) -> Vec<u8> {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
            .udp(src, dst)
            .write(&mut frame, b"hello")
            .unwrap();
        frame
    }

    /// IPv6 behind `ext` (hop-by-hop, then a fragment header with `frag_offset` when
    /// Some), then a TCP header from port 40000 to 80.
    fn tcp6(frag_offset: Option<u16>) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[6] = IPV6_EXT_HOP_BY_HOP;
        ip[7] = 64;
        f.extend_from_slice(&ip);
        let after_hop = if frag_offset.is_some() { 44 } else { 6 };
        f.extend_from_slice(&[after_hop, 0, 1, 4, 0, 0, 0, 0]);
        if let Some(off) = frag_offset {
            let field = (off << 3) | 1;
            f.extend_from_slice(&[6, 0]);
            f.extend_from_slice(&field.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 9]);
        }
        f.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn reads_tcp_and_udp_ports() {
        let key = FrameKey::parse(&udp4(4000, 5000)).unwrap();
        assert_eq!(
            key.ports,
            Some(L4Ports {
                src: 4000,
                dst: 5000
            })
        );
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6([0xfc; 16], [0xfd; 16], 64)
            .tcp(443, 55000, 1, 1000)
            .write(&mut frame, b"")
            .unwrap();
        let key = FrameKey::parse(&frame).unwrap();
        assert_eq!(
            key.ports,
            Some(L4Ports {
                src: 443,
                dst: 55000
            })
        );
        assert_eq!(FrameKey::parse(&KERNEL_ARP[INNER..]).unwrap().ports, None);
        assert_eq!(
            FrameKey::parse(&KERNEL_MLD[INNER..]).unwrap().ports,
            None,
            "ICMPv6 has no ports"
        );
    }

    #[test]
    fn ipv4_ports_come_after_options_and_only_from_the_first_fragment() {
        let mut frame = udp4(4000, 5000);
        frame[20] = 0x20; // MF set, offset 0: the first fragment has the header
        assert!(FrameKey::parse(&frame).unwrap().ports.is_some());
        frame[21] = 0x01; // offset 8 bytes: a later fragment, payload where ports would be
        let key = FrameKey::parse(&frame).unwrap();
        assert_eq!(key.ports, None);
        assert!(matches!(key.l3, L3::Ipv4 { proto: 17, .. }));
        // Four bytes of options (IHL 6): the ports move along.
        let mut frame = udp4(4000, 5000);
        frame[14] = 0x46;
        frame.splice(34..34, [1, 1, 1, 1]);
        assert_eq!(
            FrameKey::parse(&frame).unwrap().ports,
            Some(L4Ports {
                src: 4000,
                dst: 5000
            })
        );
        let mut frame = udp4(4000, 5000);
        frame[14] = 0x44; // IHL 4: not a valid header, no ports
        assert_eq!(FrameKey::parse(&frame).unwrap().ports, None);
    }

    #[test]
    fn a_cut_transport_header_has_no_ports() {
        let frame = udp4(4000, 5000);
        assert!(FrameKey::parse(&frame[..38]).unwrap().ports.is_some());
        let key = FrameKey::parse(&frame[..37]).unwrap();
        assert_eq!(key.ports, None);
        assert!(matches!(key.l3, L3::Ipv4 { proto: 17, .. }));
        let frame = tcp6(Some(0));
        assert!(FrameKey::parse(&frame).unwrap().ports.is_some());
        assert_eq!(
            FrameKey::parse(&frame[..frame.len() - 5]).unwrap().ports,
            None
        );
    }

    #[test]
    fn ipv6_ports_come_after_extension_headers_and_not_from_later_fragments() {
        let want = Some(L4Ports {
            src: 40000,
            dst: 80,
        });
        assert_eq!(FrameKey::parse(&tcp6(None)).unwrap().ports, want);
        assert_eq!(FrameKey::parse(&tcp6(Some(0))).unwrap().ports, want);
        let key = FrameKey::parse(&tcp6(Some(185))).unwrap();
        assert!(matches!(key.l3, L3::Ipv6 { proto: 6, .. }));
        assert_eq!(key.ports, None, "a later fragment carries no TCP header");
    }

    #[test]
    fn mac_text_round_trip_and_errors() {
        let mac: Mac = "0a:1b:2c:3d:4e:5f".parse().unwrap();
        assert_eq!(mac.to_string(), "0a:1b:2c:3d:4e:5f");
        for bad in [
            "",
            "0a:1b:2c:3d:4e",
            "0a:1b:2c:3d:4e:5f:00",
            "0a:1b:2c:3d:4e:zz",
            "123:0:0:0:0:0",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = FrameKey::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_ipv6_ext_chains(tail in proptest::collection::vec(any::<u8>(), 0..96)) {
            let mut frame = KERNEL_MLD[INNER..INNER + 54].to_vec();
            frame[20] = 0; // next header: hop-by-hop, then whatever the bytes say
            frame.extend_from_slice(&tail);
            let _ = FrameKey::parse(&frame);
        }
    }
}
