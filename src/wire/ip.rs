//! The inner IP packet of an Ethernet frame, as MTU handling needs it: where the IP header
//! starts, its length fields, DF, and where the transport header is.

use super::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN, HEADER_LEN};
use super::{IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// IPv4 "don't fragment" flag in the flags/fragment-offset word.
pub const IPV4_DF: u16 = 0x4000;
/// IPv4 "more fragments" flag.
pub const IPV4_MF: u16 = 0x2000;
/// IPv4 fragment offset mask (in 8-byte units).
pub const IPV4_OFFSET_MASK: u16 = 0x1fff;

/// The IP packet inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpView {
    /// Offset of the IP header in the frame (14; 18 or 22 behind one or two VLAN tags).
    pub l3: usize,
    /// IP version: 4 or 6.
    pub version: u8,
    /// IP header length: IHL × 4 for IPv4; 40 plus extension headers for IPv6.
    pub header_len: usize,
    /// Length of the IP packet by its header (may be shorter than the frame: padding).
    pub total_len: usize,
    /// Upper-layer protocol.
    pub proto: u8,
    /// IPv4: the flags/fragment-offset word; IPv6: 0.
    pub frag: u16,
}

impl IpView {
    /// Reads the IP packet of an Ethernet frame; `None` for non-IP or malformed frames.
    pub fn parse(frame: &[u8]) -> Option<IpView> {
        let mut l3 = HEADER_LEN;
        let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        // Up to two tags: 802.1Q, or an 802.1ad service tag with a customer tag inside.
        for _ in 0..2 {
            if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
                break;
            }
            ethertype = u16::from_be_bytes([*frame.get(l3 + 2)?, *frame.get(l3 + 3)?]);
            l3 += 4;
        }
        let p = frame.get(l3..)?;
        match ethertype {
            ETHERTYPE_IPV4 if p.len() >= IPV4_HEADER_LEN && p[0] >> 4 == 4 => {
                let header_len = usize::from(p[0] & 0x0f) * 4;
                let total_len = usize::from(u16::from_be_bytes([p[2], p[3]]));
                if header_len < IPV4_HEADER_LEN || total_len < header_len || total_len > p.len() {
                    return None;
                }
                Some(IpView {
                    l3,
                    version: 4,
                    header_len,
                    total_len,
                    proto: p[9],
                    frag: u16::from_be_bytes([p[6], p[7]]),
                })
            }
            ETHERTYPE_IPV6 if p.len() >= IPV6_HEADER_LEN && p[0] >> 4 == 6 => {
                let total_len = IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([p[4], p[5]]));
                if total_len > p.len() {
                    return None;
                }
                let (proto, header_len) = ipv6_upper(p, total_len);
                Some(IpView {
                    l3,
                    version: 6,
                    header_len,
                    total_len,
                    proto,
                    frag: 0,
                })
            }
            _ => None,
        }
    }

    /// IPv4 with DF set, or any IPv6 (which routers never fragment).
    pub fn dont_fragment(&self) -> bool {
        self.version == 6 || self.frag & IPV4_DF != 0
    }

    /// The first fragment or an unfragmented packet: the transport header is here.
    pub fn has_transport_header(&self) -> bool {
        self.frag & IPV4_OFFSET_MASK == 0
    }

    /// The packet's source address then its destination, as they lie in `frame` (8 bytes for
    /// IPv4, 32 for IPv6); `None` if `frame` is not the one this view was read from.
    pub fn addresses<'a>(&self, frame: &'a [u8]) -> Option<&'a [u8]> {
        match self.version {
            4 => frame.get(self.l3 + 12..self.l3 + 20),
            _ => frame.get(self.l3 + 8..self.l3 + 40),
        }
    }
}

/// The upper-layer protocol of an IPv6 packet and the offset of its header, walking hop-by-hop,
/// routing and destination-options headers. A fragment header ends the walk (protocol 44).
fn ipv6_upper(p: &[u8], total: usize) -> (u8, usize) {
    let mut next = p[6];
    let mut offset = IPV6_HEADER_LEN;
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => match (p.get(offset), p.get(offset + 1)) {
                (Some(&n), Some(&len)) if offset + (usize::from(len) + 1) * 8 <= total => {
                    next = n;
                    offset += (usize::from(len) + 1) * 8;
                }
                _ => break,
            },
            _ => break,
        }
    }
    (next, offset)
}

/// Splits the IPv4 packet of `frame` (which must not have DF set) into fragments whose IP
/// packets fit `mtu` (RFC 791): each is a complete frame appended to `out`, its range pushed to
/// `ranges`. Options are copied into the first fragment whole, into the others only where their
/// copied flag is set. Returns false when `mtu` leaves no room for 8 bytes of data.
pub fn fragment_ipv4(
    frame: &[u8],
    ip: &IpView,
    mtu: usize,
    out: &mut Vec<u8>,
    ranges: &mut Vec<std::ops::Range<usize>>,
) -> bool {
    out.clear();
    ranges.clear();
    let header = &frame[ip.l3..ip.l3 + ip.header_len];
    let payload = &frame[ip.l3 + ip.header_len..ip.l3 + ip.total_len];
    let mut later_header = [0u8; 60];
    let later_len = copied_options_header(header, &mut later_header);
    let first_chunk = mtu.saturating_sub(header.len()) / 8 * 8;
    let later_chunk = mtu.saturating_sub(later_len) / 8 * 8;
    if first_chunk == 0 || later_chunk == 0 {
        return false;
    }
    let base_offset = usize::from(ip.frag & IPV4_OFFSET_MASK) * 8;
    // Offsets count 8-byte units in 13 bits: a fragment reaching past 65535 cannot be cut again.
    if base_offset + payload.len() + header.len() > usize::from(u16::MAX) {
        return false;
    }
    let more_after = ip.frag & IPV4_MF != 0;
    let mut pos = 0;
    while pos < payload.len() {
        let h: &[u8] = if pos == 0 {
            header
        } else {
            &later_header[..later_len]
        };
        let chunk = if pos == 0 { first_chunk } else { later_chunk };
        let end = (pos + chunk).min(payload.len());
        let start = out.len();
        out.extend_from_slice(&frame[..ip.l3]);
        let ip_start = out.len();
        out.extend_from_slice(h);
        out.extend_from_slice(&payload[pos..end]);
        let total = (h.len() + end - pos) as u16;
        let mf = if end < payload.len() || more_after {
            IPV4_MF
        } else {
            0
        };
        let frag = (ip.frag & !(IPV4_MF | IPV4_OFFSET_MASK))
            | mf
            | (((base_offset + pos) / 8) as u16 & IPV4_OFFSET_MASK);
        out[ip_start + 2..ip_start + 4].copy_from_slice(&total.to_be_bytes());
        out[ip_start + 6..ip_start + 8].copy_from_slice(&frag.to_be_bytes());
        out[ip_start + 10..ip_start + 12].fill(0);
        let sum = super::checksum::of(&[&out[ip_start..ip_start + h.len()]]);
        out[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
        ranges.push(start..out.len());
        pos = end;
    }
    true
}

/// The IPv4 header for non-first fragments: the fixed part and the options whose copied flag
/// is set, padded to a multiple of 4 bytes. Returns its length.
fn copied_options_header(header: &[u8], out: &mut [u8; 60]) -> usize {
    out[..IPV4_HEADER_LEN].copy_from_slice(&header[..IPV4_HEADER_LEN]);
    let mut len = IPV4_HEADER_LEN;
    let mut i = IPV4_HEADER_LEN;
    while i < header.len() {
        let kind = header[i];
        let opt_len = match kind {
            0 => break,
            1 => 1,
            _ => match header.get(i + 1) {
                Some(&l) if l >= 2 && i + usize::from(l) <= header.len() => usize::from(l),
                _ => break,
            },
        };
        if kind & 0x80 != 0 {
            out[len..len + opt_len].copy_from_slice(&header[i..i + opt_len]);
            len += opt_len;
        }
        i += opt_len;
    }
    while len % 4 != 0 {
        out[len] = 0;
        len += 1;
    }
    out[0] = 0x40 | (len / 4) as u8;
    len
}
