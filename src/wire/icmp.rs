//! "Too big" answers: ICMP Destination Unreachable / Fragmentation Needed (RFC 792, RFC 1191)
//! and ICMPv6 Packet Too Big (RFC 4443), built as complete Ethernet frames addressed back to the
//! sender as if from the original destination (MACs and IP addresses swapped).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::ip::IpView;
use super::{IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// An ICMPv4 error quotes at most this much of the packet, so the answer stays within 576 bytes
/// (RFC 1812 4.3.2.3).
const ICMP4_QUOTE_MAX: usize = 576 - IPV4_HEADER_LEN - 8;
/// An ICMPv6 error stays within the IPv6 minimum MTU (RFC 4443 2.4(c)).
const ICMP6_QUOTE_MAX: usize = 1280 - IPV6_HEADER_LEN - 8;
/// The smallest MTU a Packet Too Big may announce (the IPv6 minimum link MTU).
pub const IPV6_MIN_MTU: u32 = 1280;
const TTL: u8 = 64;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// Builds into `out` a Fragmentation Needed answer to the IPv4 packet in `frame`, announcing
/// `mtu`. Returns false (and builds nothing) where RFC 1122 forbids an answer: the packet is an
/// ICMP error, a non-first fragment, from a source that is not a unicast host, or sent to a
/// link-layer broadcast or multicast address (RFC 1122 3.2.2).
pub fn frag_needed(frame: &[u8], ip: &IpView, mtu: u16, out: &mut Vec<u8>) -> bool {
    let p = &frame[ip.l3..ip.l3 + ip.total_len];
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    if !ip.has_transport_header()
        || src.is_unspecified()
        || src.is_multicast()
        || src.is_broadcast()
        || src.is_loopback()
        || dst.is_multicast()
        || dst.is_broadcast()
        || frame[0] & 1 != 0
        || (ip.proto == PROTO_ICMP && p.get(ip.header_len).is_some_and(|&t| is_icmp4_error(t)))
    {
        return false;
    }
    let quote = &p[..p.len().min(ICMP4_QUOTE_MAX)];
    out.clear();
    push_swapped_l2(frame, ip.l3, out);
    let ip_start = out.len();
    let total = IPV4_HEADER_LEN + 8 + quote.len();
    out.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, TTL, PROTO_ICMP, 0, 0]);
    out[ip_start + 2..ip_start + 4].copy_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(&src.octets());
    let sum = checksum::of(&[&out[ip_start..]]);
    out[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
    let icmp_start = out.len();
    out.extend_from_slice(&[3, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(quote);
    let sum = checksum::of(&[&out[icmp_start..]]);
    out[icmp_start + 2..icmp_start + 4].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Builds into `out` a Packet Too Big answer to the IPv6 packet in `frame`, announcing `mtu`
/// (never below 1280). Returns false where RFC 4443 forbids an answer: the packet is an ICMPv6
/// error, or its source is not a unicast address, or its destination (IP or link layer) is
/// multicast.
pub fn packet_too_big(frame: &[u8], ip: &IpView, mtu: u32, out: &mut Vec<u8>) -> bool {
    let p = &frame[ip.l3..ip.l3 + ip.total_len];
    let src = v6(&p[8..24]);
    let dst = v6(&p[24..40]);
    if src.is_unspecified()
        || src.is_multicast()
        || src.is_loopback()
        || dst.is_multicast()
        || frame[0] & 1 != 0
        || (ip.proto == PROTO_ICMPV6 && p.get(ip.header_len).is_some_and(|&t| t < 128))
    {
        return false;
    }
    let quote = &p[..p.len().min(ICMP6_QUOTE_MAX)];
    out.clear();
    push_swapped_l2(frame, ip.l3, out);
    let len = (8 + quote.len()) as u16;
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[PROTO_ICMPV6, TTL]);
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(&src.octets());
    let icmp_start = out.len();
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(&mtu.max(IPV6_MIN_MTU).to_be_bytes());
    out.extend_from_slice(quote);
    let pseudo_len = u32::from(len).to_be_bytes();
    let sum = checksum::of(&[
        &dst.octets(),
        &src.octets(),
        &pseudo_len,
        &[0, 0, 0, PROTO_ICMPV6],
        &out[icmp_start..],
    ]);
    out[icmp_start + 2..icmp_start + 4].copy_from_slice(&sum.to_be_bytes());
    true
}

fn is_icmp4_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

/// The frame's L2 header (and VLAN tag) with source and destination MACs swapped.
fn push_swapped_l2(frame: &[u8], l3: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&frame[6..12]);
    out.extend_from_slice(&frame[0..6]);
    out.extend_from_slice(&frame[12..l3]);
}
