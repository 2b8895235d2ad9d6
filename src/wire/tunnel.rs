//! What an encapsulator reads from the inner frame for the outer headers, and what a
//! decapsulator writes back: the flow hash behind the outer UDP source port (RFC 7348 section
//! 5, the kernel's `udp_flow_src_port()`), the outer TOS and TTL (the kernel's vxlan `tos` and
//! `ttl` options) with ECN per RFC 6040, and ECN carried back into the inner header.

use super::ip::{IpView, IPV4_MF, IPV4_OFFSET_MASK};
use super::tcp::checksum_update;

/// The two ECN bits of the IPv4 TOS byte / IPv6 traffic class (RFC 3168).
pub const ECN_MASK: u8 = 0b11;
/// Not ECN-capable transport.
pub const NOT_ECT: u8 = 0b00;
/// ECN-capable transport, ECT(1).
pub const ECT_1: u8 = 0b01;
/// ECN-capable transport, ECT(0).
pub const ECT_0: u8 = 0b10;
/// Congestion experienced.
pub const CE: u8 = 0b11;

/// Offset of the TOS byte in an IPv4 header.
const V4_TOS: usize = 1;
/// Offset of the TTL in an IPv4 header.
const V4_TTL: usize = 8;
/// Offset of the header checksum in an IPv4 header.
const V4_CHECKSUM: usize = 10;
/// Offset of the hop limit in an IPv6 header.
const V6_HOP_LIMIT: usize = 7;
/// Bytes of the two Ethernet addresses at the start of a frame.
const MACS: usize = 12;
/// IP protocol numbers whose first four transport bytes are the two ports.
const PORTED: [u8; 4] = [6, 17, 132, 136]; // TCP, UDP, SCTP, UDP-Lite

/// The outer TOS (IPv4) or traffic class (IPv6) of a tunnel, as the kernel's vxlan `tos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TosMode {
    /// A fixed DSCP (the ECN bits of the value are ignored); the default is 0, as the
    /// kernel's. The ECN field follows the inner packet either way.
    Fixed(u8),
    /// Copied from the inner IP header (0 for frames that are not IP).
    Inherit,
}

impl Default for TosMode {
    fn default() -> Self {
        TosMode::Fixed(0)
    }
}

/// The outer TTL (IPv4) or hop limit (IPv6) of a tunnel, as the kernel's vxlan `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlMode {
    /// What the kernel gives the underlay socket (`net.ipv4.ip_default_ttl`, 64 by default).
    #[default]
    Default,
    /// This value.
    Fixed(u8),
    /// Copied from the inner IP header (the default for frames that are not IP).
    Inherit,
}

/// The outer TOS byte for `frame` under `mode`: the DSCP of the mode (or the inner packet's, for
/// `inherit`), and the ECN field set from the inner one as RFC 6040 (normal mode) and the
/// kernel's `INET_ECN_encapsulate` do: Not-ECT stays Not-ECT, ECT(0) and ECT(1) are copied, CE
/// becomes ECT(0).
pub fn outer_tos(mode: TosMode, frame: &[u8], ip: Option<&IpView>) -> u8 {
    let inner = ip.and_then(|ip| inner_tos(frame, ip)).unwrap_or(0);
    let dscp = match mode {
        TosMode::Fixed(v) => v & !ECN_MASK,
        TosMode::Inherit => inner & !ECN_MASK,
    };
    let ecn = match inner & ECN_MASK {
        CE => ECT_0,
        e => e,
    };
    dscp | ecn
}

/// The outer TTL / hop limit for `frame` under `mode`; 0 means "the socket's default".
pub fn outer_ttl(mode: TtlMode, frame: &[u8], ip: Option<&IpView>) -> u8 {
    match mode {
        TtlMode::Default => 0,
        TtlMode::Fixed(t) => t,
        TtlMode::Inherit => ip
            .and_then(|ip| {
                let at = match ip.version {
                    4 => ip.l3 + V4_TTL,
                    _ => ip.l3 + V6_HOP_LIMIT,
                };
                frame.get(at).copied()
            })
            .unwrap_or(0),
    }
}

/// The TOS byte / traffic class of the inner IP header.
fn inner_tos(frame: &[u8], ip: &IpView) -> Option<u8> {
    match ip.version {
        4 => frame.get(ip.l3 + V4_TOS).copied(),
        _ => {
            let b = frame.get(ip.l3..ip.l3 + 2)?;
            Some((b[0] << 4) | (b[1] >> 4))
        }
    }
}

/// What decapsulation did to the inner ECN field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcnDecap {
    /// Nothing to change.
    Unchanged,
    /// The inner header was rewritten (CE, or ECT(1)), checksum fixed.
    Marked,
    /// CE outside over a Not-ECT inner packet: RFC 6040 says drop.
    Drop,
}

/// Carries the outer ECN field `outer` (the two low bits of the outer TOS / traffic class) into
/// the inner IP header of `frame` as RFC 6040 section 4.2 and the kernel's
/// `INET_ECN_decapsulate` do: outer CE over ECT(0)/ECT(1) marks the inner CE, outer ECT(1) over
/// ECT(0) makes it ECT(1), outer CE over Not-ECT is dropped; everything else is left alone
/// (frames that are not IP too). The IPv4 header checksum is patched (RFC 1624).
pub fn decapsulate_ecn(outer: u8, frame: &mut [u8]) -> EcnDecap {
    let outer = outer & ECN_MASK;
    if outer == NOT_ECT || outer == ECT_0 {
        return EcnDecap::Unchanged;
    }
    let Some(ip) = IpView::parse(frame) else {
        return EcnDecap::Unchanged;
    };
    let Some(tos) = inner_tos(frame, &ip) else {
        return EcnDecap::Unchanged;
    };
    let new_ecn = match (tos & ECN_MASK, outer) {
        (NOT_ECT, CE) => return EcnDecap::Drop,
        (NOT_ECT, _) | (CE, _) => return EcnDecap::Unchanged,
        (_, CE) => CE,
        (ECT_0, ECT_1) => ECT_1,
        _ => return EcnDecap::Unchanged,
    };
    let new_tos = (tos & !ECN_MASK) | new_ecn;
    match ip.version {
        4 => {
            let at = ip.l3;
            let old_word = u16::from_be_bytes([frame[at], frame[at + V4_TOS]]);
            frame[at + V4_TOS] = new_tos;
            let new_word = u16::from_be_bytes([frame[at], new_tos]);
            let c = at + V4_CHECKSUM;
            let sum = u16::from_be_bytes([frame[c], frame[c + 1]]);
            let sum = checksum_update(sum, old_word, new_word);
            frame[c..c + 2].copy_from_slice(&sum.to_be_bytes());
        }
        _ => {
            let at = ip.l3;
            frame[at] = (frame[at] & 0xf0) | (new_tos >> 4);
            frame[at + 1] = (frame[at + 1] & 0x0f) | (new_tos << 4);
        }
    }
    EcnDecap::Marked
}

/// A hash of the inner flow of `frame`, stable per flow: the IP addresses, the protocol and
/// (where the packet has them and is no fragment) the transport ports; for frames that are not
/// IP, the two MAC addresses, as the kernel's vxlan falls back to. Folded as
/// `udp_flow_src_port()` folds it, so that its high bits, which [`pick`] uses, depend on all.
pub fn flow_hash(frame: &[u8], ip: Option<&IpView>) -> u32 {
    let mut h = Fnv::default();
    match ip {
        Some(ip) => {
            h.write(ip.addresses(frame).unwrap_or(&[]));
            h.write(&[ip.proto]);
            let fragment = ip.version == 4 && ip.frag & (IPV4_MF | IPV4_OFFSET_MASK) != 0;
            if PORTED.contains(&ip.proto) && !fragment {
                let l4 = ip.l3 + ip.header_len;
                h.write(frame.get(l4..l4 + 4).unwrap_or(&[]));
            }
        }
        None => h.write(frame.get(..MACS).unwrap_or(frame)),
    }
    let hash = h.0;
    hash ^ (hash << 16)
}

/// Scales a [`flow_hash`] into `0..n`, as `udp_flow_src_port()` scales it into its port range.
pub fn pick(hash: u32, n: usize) -> usize {
    ((u64::from(hash) * n as u64) >> 32) as usize
}

/// FNV-1a, 32 bits: small, no table, no allocation.
struct Fnv(u32);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0x811c_9dc5)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(tos: u8, sport: u16, df: bool) -> Vec<u8> {
        crate::testing::udp4(tos, 61, df, sport)
    }

    fn tcp6(tclass: u8, sport: u16) -> Vec<u8> {
        crate::testing::tcp6(tclass, 33, sport)
    }

    fn view(f: &[u8]) -> IpView {
        IpView::parse(f).unwrap()
    }

    #[test]
    fn encapsulation_copies_ect_turns_ce_into_ect0_and_keeps_not_ect() {
        for (inner, outer) in [
            (NOT_ECT, NOT_ECT),
            (ECT_0, ECT_0),
            (ECT_1, ECT_1),
            (CE, ECT_0),
        ] {
            let f = udp4(0xb8 | inner, 1, true);
            assert_eq!(outer_tos(TosMode::Fixed(0), &f, Some(&view(&f))), outer);
            assert_eq!(
                outer_tos(TosMode::Inherit, &f, Some(&view(&f))),
                0xb8 | outer,
                "inherit copies the DSCP too"
            );
            assert_eq!(
                outer_tos(TosMode::Fixed(0x20), &f, Some(&view(&f))),
                0x20 | outer
            );
            let f = tcp6(0x48 | inner, 1);
            assert_eq!(
                outer_tos(TosMode::Inherit, &f, Some(&view(&f))),
                0x48 | outer
            );
        }
        let arp = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        assert_eq!(outer_tos(TosMode::Inherit, &arp, None), 0);
        assert_eq!(outer_tos(TosMode::Fixed(0x11), &arp, None), 0x10);
    }

    #[test]
    fn ttl_modes() {
        let f = udp4(0, 1, true);
        assert_eq!(outer_ttl(TtlMode::Default, &f, Some(&view(&f))), 0);
        assert_eq!(outer_ttl(TtlMode::Fixed(9), &f, Some(&view(&f))), 9);
        assert_eq!(outer_ttl(TtlMode::Inherit, &f, Some(&view(&f))), 61);
        let f = tcp6(0, 1);
        assert_eq!(outer_ttl(TtlMode::Inherit, &f, Some(&view(&f))), 33);
        assert_eq!(outer_ttl(TtlMode::Inherit, &f[..10], None), 0);
    }

    #[test]
    fn decapsulation_follows_rfc_6040_and_keeps_checksums_right() {
        // (inner, outer) -> inner after, or None for a drop.
        let table = [
            (NOT_ECT, NOT_ECT, Some(NOT_ECT)),
            (NOT_ECT, ECT_0, Some(NOT_ECT)),
            (NOT_ECT, ECT_1, Some(NOT_ECT)),
            (NOT_ECT, CE, None),
            (ECT_0, NOT_ECT, Some(ECT_0)),
            (ECT_0, ECT_0, Some(ECT_0)),
            (ECT_0, ECT_1, Some(ECT_1)),
            (ECT_0, CE, Some(CE)),
            (ECT_1, ECT_0, Some(ECT_1)),
            (ECT_1, ECT_1, Some(ECT_1)),
            (ECT_1, CE, Some(CE)),
            (CE, NOT_ECT, Some(CE)),
            (CE, CE, Some(CE)),
        ];
        for (inner, outer, after) in table {
            let mut f = udp4(0x28 | inner, 7, true);
            let result = decapsulate_ecn(outer, &mut f);
            match after {
                None => assert_eq!(result, EcnDecap::Drop),
                Some(a) => {
                    assert_eq!(f[15], 0x28 | a, "inner {inner} outer {outer}");
                    let (ip, _) = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap();
                    assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "checksum");
                }
            }
            let mut f = tcp6(0x28 | inner, 7);
            let result = decapsulate_ecn(outer, &mut f);
            match after {
                None => assert_eq!(result, EcnDecap::Drop),
                Some(a) => {
                    let tc = (f[14] << 4) | (f[15] >> 4);
                    assert_eq!(tc, 0x28 | a, "v6 inner {inner} outer {outer}");
                    assert_eq!(f[14] >> 4, 6, "version kept");
                }
            }
        }
        let mut arp = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        assert_eq!(decapsulate_ecn(CE, &mut arp), EcnDecap::Unchanged);
    }

    #[test]
    fn flow_hash_is_per_flow_and_spreads() {
        let a = udp4(0, 1000, true);
        let b = udp4(ECT_0, 1000, false);
        assert_eq!(
            flow_hash(&a, Some(&view(&a))),
            flow_hash(&b, Some(&view(&b))),
            "TOS and DF are no part of the flow"
        );
        let mut picks = std::collections::HashSet::new();
        for sport in 0..64 {
            let f = udp4(0, 40_000 + sport, true);
            picks.insert(pick(flow_hash(&f, Some(&view(&f))), 16));
            let g = tcp6(0, 40_000 + sport);
            picks.insert(pick(flow_hash(&g, Some(&view(&g))), 16));
        }
        assert!(
            picks.len() >= 14,
            "128 flows reach most of 16 sockets: {picks:?}"
        );
        assert!(picks.iter().all(|&p| p < 16));
        let arp = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        assert_eq!(flow_hash(&arp, None), flow_hash(&arp, None));
        assert_eq!(
            flow_hash(&[], None),
            flow_hash(&[], None),
            "no panic on nothing"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), outer in 0u8..4) {
            let mut f = bytes.clone();
            let ip = IpView::parse(&f);
            let _ = flow_hash(&f, ip.as_ref());
            let _ = outer_tos(TosMode::Inherit, &f, ip.as_ref());
            let _ = outer_ttl(TtlMode::Inherit, &f, ip.as_ref());
            let _ = decapsulate_ecn(outer, &mut f);
        }
    }
}
