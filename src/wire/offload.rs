//! Offloads between vxtund and the TAP device: the virtio-net header that prefixes every frame
//! when the TAP has `IFF_VNET_HDR`, and turning what the kernel hands over (a frame whose
//! checksum is left to us, or a TCP/UDP superframe of up to 64 KiB) into complete frames that a
//! tunnel can carry.
//!
//! Splitting follows what the kernel's own GSO does for TCP and UDP: every segment gets a copy
//! of the Ethernet, IP and transport headers, with the IPv4 total length, identification and
//! header checksum (or the IPv6 payload length) set for its size, TCP sequence numbers advanced,
//! FIN and PSH kept for the last segment only and CWR for the first only, and a full transport
//! checksum.

use std::ops::Range;

use super::checksum;
use super::ip::IpView;

/// Bytes of the virtio-net header (`struct virtio_net_hdr`, without `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;
/// `flags`: the transport checksum is to be completed from `csum_start` on.
pub const F_NEEDS_CSUM: u8 = 1;
/// `gso_type`: not a superframe.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: a TCP over IPv4 superframe.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: a TCP over IPv6 superframe.
pub const GSO_TCPV6: u8 = 4;
/// `gso_type`: a UDP superframe (IPv4 or IPv6), split per `gso_size` datagram payload.
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP superframe has ECN (CWR) set.
pub const GSO_ECN: u8 = 0x80;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// The virtio-net header, in the host's byte order (the TAP default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// [`F_NEEDS_CSUM`] and friends.
    pub flags: u8,
    /// [`GSO_NONE`], [`GSO_TCPV4`], [`GSO_TCPV6`] or [`GSO_UDP_L4`], maybe with [`GSO_ECN`].
    pub gso_type: u8,
    /// Length of the headers (a hint; vxtund parses them itself).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed part starts (from the Ethernet header).
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum goes.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Option<VnetHdr> {
        let b = buf.get(..VNET_HDR_LEN)?;
        let word = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        })
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// What [`segment`] made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmented {
    /// The frame is complete where it lies (its checksum finished if it needed one).
    Whole,
    /// The frame was a superframe: its segments were appended to the output buffer.
    Split,
}

/// Why a frame from the TAP could not be made complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadError {
    /// A checksum position outside the frame.
    BadChecksumOffsets,
    /// A superframe whose headers are not the TCP or UDP its type says, or whose segment size
    /// is zero.
    BadSuperframe,
    /// A GSO type vxtund does not know.
    UnknownGsoType,
}

/// Completes `frame` (the bytes after the virtio-net header `hdr`): finishes a checksum left
/// to us in place, or splits a superframe into complete frames appended to `out`, each range
/// pushed to `ranges` (neither is cleared first).
pub fn segment(
    hdr: &VnetHdr,
    frame: &mut [u8],
    out: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> Result<Segmented, OffloadError> {
    match hdr.gso_type & !GSO_ECN {
        GSO_NONE => {
            if hdr.flags & F_NEEDS_CSUM != 0 {
                finish_checksum(frame, hdr.csum_start.into(), hdr.csum_offset.into())?;
            }
            Ok(Segmented::Whole)
        }
        GSO_TCPV4 | GSO_TCPV6 => {
            split(frame, IPPROTO_TCP, hdr.gso_size.into(), out, ranges)?;
            Ok(Segmented::Split)
        }
        GSO_UDP_L4 => {
            split(frame, IPPROTO_UDP, hdr.gso_size.into(), out, ranges)?;
            Ok(Segmented::Split)
        }
        _ => Err(OffloadError::UnknownGsoType),
    }
}

/// Finishes the TCP or UDP checksum of a frame received from a tunnel when its checksum field
/// holds the pseudo-header sum alone: what a sender on the same host leaves for offload
/// (`CHECKSUM_PARTIAL`), the kernel's vxlan or vxtund's fast path, when its datagram crosses a
/// veth to a socket. The kernel finishes such frames itself where it delivers them; bytes read
/// from a socket carry no such mark, so a frame vxtund writes to its TAP alone or sends on to
/// another tunnel would reach its host with a checksum it refuses. Returns whether it wrote.
///
/// A complete checksum equal to the pseudo-header sum stays what it is (it is recomputed over
/// the same bytes); only a corrupted frame whose checksum field happens to equal that sum (one
/// in 65,536 of the corrupted ones, on underlays without an outer checksum) is made to look
/// intact.
pub fn finish_partial_checksum(frame: &mut [u8]) -> bool {
    let Some(ip) = IpView::parse(frame) else {
        return false;
    };
    let offset = match ip.proto {
        IPPROTO_TCP => 16,
        IPPROTO_UDP => 6,
        _ => return false,
    };
    let (l4, end) = (ip.l3 + ip.header_len, ip.l3 + ip.total_len);
    let field = l4 + offset;
    if !ip.has_transport_header() || field + 2 > end || end > frame.len() {
        return false;
    }
    let Some(addrs) = ip.addresses(frame) else {
        return false;
    };
    let pseudo = checksum::add(
        checksum::add(checksum::add(0, addrs), &((end - l4) as u32).to_be_bytes()),
        &[0, 0, 0, ip.proto],
    );
    let seed = !checksum::finish(pseudo);
    let now = u16::from_be_bytes([frame[field], frame[field + 1]]);
    if now != seed || (ip.proto == IPPROTO_UDP && now == 0) {
        return false;
    }
    frame[field..field + 2].copy_from_slice(&[0, 0]);
    let mut sum = checksum::finish(checksum::add(pseudo, &frame[l4..end]));
    if sum == 0 && ip.proto == IPPROTO_UDP {
        sum = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Finishes a partial checksum: the field at `start + offset` holds the pseudo-header sum; the
/// checksum covers everything from `start` to the end of the IP packet.
fn finish_checksum(frame: &mut [u8], start: usize, offset: usize) -> Result<(), OffloadError> {
    let end = IpView::parse(frame).map_or(frame.len(), |ip| ip.l3 + ip.total_len);
    let field = start + offset;
    if field + 2 > end || end > frame.len() {
        return Err(OffloadError::BadChecksumOffsets);
    }
    let mut sum = checksum::finish(checksum::add(0, &frame[start..end]));
    if sum == 0 && offset == 6 {
        sum = 0xffff; // UDP sends a computed zero as all ones
    }
    frame[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Splits a TCP or UDP superframe into frames carrying at most `mss` payload bytes each.
fn split(
    frame: &[u8],
    proto: u8,
    mss: usize,
    out: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> Result<(), OffloadError> {
    let bad = OffloadError::BadSuperframe;
    let ip = IpView::parse(frame).ok_or(bad)?;
    if ip.proto != proto || mss == 0 || (ip.version == 4 && ip.frag & 0x3fff != 0) {
        return Err(bad);
    }
    let l4 = ip.l3 + ip.header_len;
    let end = ip.l3 + ip.total_len;
    let l4_len = match proto {
        IPPROTO_TCP => usize::from(frame.get(l4 + 12).ok_or(bad)? >> 4) * 4,
        _ => super::UDP_HEADER_LEN,
    };
    let headers = l4 + l4_len;
    let min = if proto == IPPROTO_TCP {
        20
    } else {
        super::UDP_HEADER_LEN
    };
    if l4_len < min || headers > end {
        return Err(bad);
    }
    let payload = &frame[headers..end];
    let count = payload.len().div_ceil(mss).max(1);
    let seq0 = u32::from_be_bytes(frame[l4 + 4..l4 + 8].try_into().map_err(|_| bad)?);
    let id0 = u16::from_be_bytes([frame[ip.l3 + 4], frame[ip.l3 + 5]]);
    for i in 0..count {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let start = out.len();
        out.extend_from_slice(&frame[..headers]);
        out.extend_from_slice(chunk);
        let seg = &mut out[start..];
        let l4_total = l4_len + chunk.len();
        if ip.version == 4 {
            let h = &mut seg[ip.l3..l4];
            h[2..4].copy_from_slice(&((ip.header_len + l4_total) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let sum = checksum::of(&[h]);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
        } else {
            let payload_len = (ip.header_len - super::IPV6_HEADER_LEN + l4_total) as u16;
            seg[ip.l3 + 4..ip.l3 + 6].copy_from_slice(&payload_len.to_be_bytes());
        }
        let field = if proto == IPPROTO_TCP {
            let seq = seq0.wrapping_add((i * mss) as u32);
            seg[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
            if i + 1 < count {
                seg[l4 + 13] &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                seg[l4 + 13] &= !TCP_CWR;
            }
            l4 + 16
        } else {
            seg[l4 + 4..l4 + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
            l4 + 6
        };
        seg[field..field + 2].copy_from_slice(&[0, 0]);
        let mut sum = transport_checksum(seg, &ip, l4, proto);
        if sum == 0 && proto == IPPROTO_UDP {
            sum = 0xffff;
        }
        seg[field..field + 2].copy_from_slice(&sum.to_be_bytes());
        ranges.push(start..out.len());
    }
    Ok(())
}

/// The TCP or UDP checksum of the transport segment at `l4` in `frame` (its checksum field
/// zeroed), with the pseudo-header of `ip`.
fn transport_checksum(frame: &[u8], ip: &IpView, l4: usize, proto: u8) -> u16 {
    let segment = &frame[l4..];
    let len = segment.len() as u32;
    let mut sum = if ip.version == 4 {
        checksum::add(0, &frame[ip.l3 + 12..ip.l3 + 20])
    } else {
        checksum::add(0, &frame[ip.l3 + 8..ip.l3 + 40])
    };
    sum = checksum::add(sum, &len.to_be_bytes());
    sum = checksum::add(sum, &[0, 0, 0, proto]);
    checksum::finish(checksum::add(sum, segment))
}

/// Most header bytes a coalesced superframe keeps in front of its payloads (Ethernet with two
/// VLAN tags, IPv4 with options or IPv6, TCP with options).
pub const MAX_HEADERS: usize = 22 + 60 + 60;
/// Most frames in one coalesced write (each is an iovec; the kernel takes at most 1,024).
pub const MAX_RUN: usize = 64;

/// Consecutive frames to be written to the TAP as one TCP or UDP superframe: the frames
/// `frames[first..first + count]` of [`plan_runs`]' input, whose payloads follow `headers`.
#[derive(Debug, Clone)]
pub struct Run {
    /// Index of the first frame.
    pub first: usize,
    /// How many frames (1: write the frame as it is, with a plain header).
    pub count: usize,
    /// The virtio-net header to write first.
    pub hdr: VnetHdr,
    /// The superframe's headers: the first frame's, with lengths, IPv4 checksum, PSH and the
    /// transport pseudo-header sum set for the whole.
    pub headers: [u8; MAX_HEADERS],
    /// How many bytes of `headers` are used.
    pub headers_len: usize,
}

/// Where a frame's TCP segment or UDP datagram lies, for coalescing.
#[derive(Debug, Clone, Copy)]
struct Piece {
    ip: IpView,
    l4: usize,
    headers: usize,
    end: usize,
    /// TCP sequence number (0 for UDP).
    seq: u32,
    /// TCP flags (0 for UDP).
    flags: u8,
    /// IPv4 identification (0 for IPv6).
    id: u16,
}

impl Piece {
    /// A TCP segment that may join a superframe (plain ACK, maybe PSH, with data) or, with
    /// `udp`, a UDP datagram with data and a checksum: not a fragment, IPv4 without options,
    /// IPv6 without extension headers (as the kernel's GRO wants), and with correct checksums
    /// (checked only with `verify`).
    fn parse(frame: &[u8], udp: bool, verify: bool) -> Option<Piece> {
        let ip = IpView::parse(frame)?;
        if (ip.version == 4 && (ip.frag & 0x3fff != 0 || ip.header_len != super::IPV4_HEADER_LEN))
            || (ip.version == 6 && ip.header_len != super::IPV6_HEADER_LEN)
        {
            return None;
        }
        let l4 = ip.l3 + ip.header_len;
        let end = ip.l3 + ip.total_len;
        let (headers, flags) = match ip.proto {
            IPPROTO_TCP => {
                let thl = usize::from(frame.get(l4 + 12)? >> 4) * 4;
                let flags = *frame.get(l4 + 13)?;
                if thl < 20 || flags & !TCP_PSH != 0x10 {
                    return None;
                }
                (l4 + thl, flags)
            }
            IPPROTO_UDP if udp => {
                let field = |at: usize| {
                    let b = frame[..end].get(at..at + 2)?;
                    Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
                };
                // The length must say what IP says, and a checksum must be there to redo.
                if field(l4 + 4)? != end.checked_sub(l4)? || field(l4 + 6)? == 0 {
                    return None;
                }
                (l4 + 8, 0)
            }
            _ => return None,
        };
        if headers >= end || headers > MAX_HEADERS {
            return None;
        }
        if verify
            && ((ip.version == 4 && checksum::of(&[&frame[ip.l3..l4]]) != 0)
                || transport_checksum(&frame[..end], &ip, l4, ip.proto) != 0)
        {
            return None;
        }
        let seq = match ip.proto {
            IPPROTO_TCP => u32::from_be_bytes(frame[l4 + 4..l4 + 8].try_into().ok()?),
            _ => 0,
        };
        let id = match ip.version {
            4 => u16::from_be_bytes([frame[ip.l3 + 4], frame[ip.l3 + 5]]),
            _ => 0,
        };
        Some(Piece {
            ip,
            l4,
            headers,
            end,
            seq,
            flags,
            id,
        })
    }

    fn payload_len(&self) -> usize {
        self.end - self.headers
    }

    /// Whether `next` (in `b`) continues this run (first frame `a`, last piece `self`).
    fn continued_by(&self, first: (&Piece, &[u8]), next: (&Piece, &[u8])) -> bool {
        let ((f, a), (n, b)) = (first, next);
        let same = |r: Range<usize>| a.get(r.clone()) == b.get(r);
        let ip_same = if f.ip.version == 4 {
            // All but total length, identification and header checksum.
            same(0..f.ip.l3 + 2) && same(f.ip.l3 + 6..f.ip.l3 + 10) && same(f.ip.l3 + 12..f.l4)
        } else {
            same(0..f.ip.l3 + 4) && same(f.ip.l3 + 6..f.l4)
        };
        let transport_same = if f.ip.proto == IPPROTO_TCP {
            // Acknowledgement, data offset, window, urgent pointer and options (the ports are
            // compared below, for UDP too);
            // the sequence number follows on.
            same(f.l4 + 8..f.l4 + 13)
                && same(f.l4 + 14..f.l4 + 16)
                && same(f.l4 + 18..f.headers)
                && self.flags & TCP_PSH == 0
                && n.seq == self.seq.wrapping_add(self.payload_len() as u32)
        } else {
            true
        };
        ip_same
            && n.ip.l3 == f.ip.l3
            && n.l4 == f.l4
            && n.headers == f.headers
            && same(f.l4..f.l4 + 4)
            && transport_same
            && self.payload_len() == f.payload_len()
            && n.payload_len() <= f.payload_len()
            && (f.ip.version == 6 || ids_follow(self, n))
    }
}

/// Whether IPv4 `next` has the identification after `last`'s. The kernel numbers the segments
/// of a superframe on from the first one's (the virtio-net header cannot ask it to keep them
/// fixed, as its GRO may do under DF), so only frames numbered that way come out unchanged.
fn ids_follow(last: &Piece, next: &Piece) -> bool {
    next.id == last.id.wrapping_add(1)
}

/// Groups `frames` (complete frames bound for the TAP, in order) into runs: consecutive
/// segments of one TCP flow, equal-sized but the last, become one superframe (as the kernel's
/// GRO would make); with `udp` (the TAP takes UDP superframes), so do consecutive datagrams of
/// one UDP flow. Every other frame is a run of one. Appends to `runs`.
///
/// The kernel finishes a superframe's checksums itself, so a segment must have correct ones to
/// join: they are verified, costing a pass over every byte.
pub fn plan_runs(frames: &[&[u8]], udp: bool, runs: &mut Vec<Run>) {
    plan_runs_checked(frames, udp, true, runs);
}

/// [`plan_runs`], verifying the checksums of the segments only with `verify`: without, for
/// frames that a verified checksum already covered (a VXLAN datagram whose non-zero outer UDP
/// checksum the kernel checked covers the whole inner frame).
pub fn plan_runs_checked(frames: &[&[u8]], udp: bool, verify: bool, runs: &mut Vec<Run>) {
    let mut i = 0;
    while i < frames.len() {
        let Some(first) = Piece::parse(frames[i], udp, verify) else {
            runs.push(single(i));
            i += 1;
            continue;
        };
        let mut last = first;
        let mut total = first.payload_len();
        let mut count = 1;
        while let Some(next) = frames
            .get(i + count)
            .and_then(|f| Piece::parse(f, udp, verify))
        {
            let fits = first.headers - first.ip.l3 + total + next.payload_len() <= 65_535;
            if !fits
                || count == MAX_RUN
                || !last.continued_by((&first, frames[i]), (&next, frames[i + count]))
            {
                break;
            }
            total += next.payload_len();
            last = next;
            count += 1;
        }
        if count == 1 {
            runs.push(single(i));
        } else {
            runs.push(superframe(frames[i], &first, &last, count, i, total));
        }
        i += count;
    }
}

fn single(i: usize) -> Run {
    Run {
        first: i,
        count: 1,
        hdr: VnetHdr::default(),
        headers: [0; MAX_HEADERS],
        headers_len: 0,
    }
}

fn superframe(frame: &[u8], f: &Piece, last: &Piece, count: usize, i: usize, total: usize) -> Run {
    let mut headers = [0u8; MAX_HEADERS];
    let h = &mut headers[..f.headers];
    h.copy_from_slice(&frame[..f.headers]);
    let l4_len = f.headers - f.l4 + total;
    if f.ip.version == 4 {
        let ip = &mut h[f.ip.l3..f.l4];
        ip[2..4].copy_from_slice(&((f.ip.header_len + l4_len) as u16).to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum::of(&[ip]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
    } else {
        h[f.ip.l3 + 4..f.ip.l3 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    let tcp = f.ip.proto == IPPROTO_TCP;
    let csum_offset = if tcp {
        h[f.l4 + 13] |= last.flags & TCP_PSH;
        16
    } else {
        h[f.l4 + 4..f.l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        6
    };
    // The pseudo-header sum, not complemented: the kernel finishes the checksum per segment.
    let addrs = if f.ip.version == 4 {
        &frame[f.ip.l3 + 12..f.ip.l3 + 20]
    } else {
        &frame[f.ip.l3 + 8..f.ip.l3 + 40]
    };
    let pseudo = checksum::add(
        checksum::add(checksum::add(0, addrs), &(l4_len as u32).to_be_bytes()),
        &[0, 0, 0, f.ip.proto],
    );
    h[f.l4 + csum_offset..f.l4 + csum_offset + 2]
        .copy_from_slice(&(!checksum::finish(pseudo)).to_be_bytes());
    let gso_type = match (tcp, f.ip.version) {
        (false, _) => GSO_UDP_L4,
        (true, 4) => GSO_TCPV4,
        (true, _) => GSO_TCPV6,
    };
    Run {
        first: i,
        count,
        hdr: VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: f.headers as u16,
            gso_size: f.payload_len() as u16,
            csum_start: f.l4 as u16,
            csum_offset: csum_offset as u16,
        },
        headers,
        headers_len: f.headers,
    }
}

/// The payload a frame contributes to a superframe run (its TCP or UDP data, without padding).
pub fn run_payload<'a>(run: &Run, frame: &'a [u8]) -> &'a [u8] {
    let ip = IpView::parse(frame);
    let end = ip.map_or(frame.len(), |ip| ip.l3 + ip.total_len);
    frame.get(run.headers_len..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// A TCP superframe as the TAP hands it over: full lengths, the checksum field holding
    /// whatever (here zero).
    fn tcp_superframe(v6: bool, data: &[u8], flags: (bool, bool, bool)) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B);
        let builder = if v6 {
            builder.ipv6(
                [0xfc, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xfc; 16],
                64,
            )
        } else {
            builder.ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
        };
        let mut builder = builder.tcp(40000, 5201, 0xffff_ff00, 501).ack(7);
        if flags.0 {
            builder = builder.fin();
        }
        if flags.1 {
            builder = builder.psh();
        }
        if flags.2 {
            builder = builder.cwr();
        }
        let mut f = Vec::new();
        builder.write(&mut f, data).unwrap();
        f
    }

    /// A segment as the tests look at it: sequence number, (FIN, PSH, CWR), payload.
    type Seg = (u32, (bool, bool, bool), Vec<u8>);

    /// Checks every segment with etherparse's own checksum code, and returns (seq, flags,
    /// payload) per segment.
    fn check_segments(out: &[u8], ranges: &[Range<usize>]) -> Vec<Seg> {
        ranges
            .iter()
            .map(|r| {
                let seg = &out[r.clone()];
                let p = SlicedPacket::from_ethernet(seg).expect("segment parses");
                let Some(TransportSlice::Tcp(tcp)) = p.transport else {
                    panic!("not TCP")
                };
                let expected = match &p.net {
                    Some(etherparse::NetSlice::Ipv4(ip)) => {
                        let h = ip.header();
                        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                        assert_eq!(usize::from(h.total_len()), seg.len() - 14);
                        tcp.to_header()
                            .calc_checksum_ipv4(&h.to_header(), tcp.payload())
                            .unwrap()
                    }
                    Some(etherparse::NetSlice::Ipv6(ip)) => {
                        assert_eq!(usize::from(ip.header().payload_length()), seg.len() - 54);
                        tcp.to_header()
                            .calc_checksum_ipv6(&ip.header().to_header(), tcp.payload())
                            .unwrap()
                    }
                    _ => panic!("not IP"),
                };
                assert_eq!(tcp.checksum(), expected, "TCP checksum");
                (
                    tcp.sequence_number(),
                    (tcp.fin(), tcp.psh(), tcp.cwr()),
                    tcp.payload().to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn header_round_trips_in_host_order() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1398,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::decode(&h.encode()), Some(h));
        assert_eq!(VnetHdr::decode(&[0; 9]), None);
    }

    #[test]
    fn tcp_superframes_split_into_mss_segments_with_valid_checksums() {
        for v6 in [false, true] {
            let data = payload(4000);
            let mut frame = tcp_superframe(v6, &data, (true, true, true));
            let hdr = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 | GSO_ECN },
                gso_size: 1398,
                ..Default::default()
            };
            let (mut out, mut ranges) = (Vec::new(), Vec::new());
            assert_eq!(
                segment(&hdr, &mut frame, &mut out, &mut ranges),
                Ok(Segmented::Split)
            );
            let segs = check_segments(&out, &ranges);
            assert_eq!(segs.len(), 3, "v6 {v6}");
            let seqs: Vec<u32> = segs.iter().map(|s| s.0).collect();
            assert_eq!(
                seqs,
                [
                    0xffff_ff00,
                    0xffff_ff00u32.wrapping_add(1398),
                    0xffff_ff00u32.wrapping_add(2796)
                ],
                "sequence numbers advance (and wrap)"
            );
            let flags: Vec<_> = segs.iter().map(|s| s.1).collect();
            assert_eq!(
                flags,
                [
                    (false, false, true),
                    (false, false, false),
                    (true, true, false)
                ],
                "FIN/PSH on the last only, CWR on the first only"
            );
            let joined: Vec<u8> = segs.iter().flat_map(|s| s.2.clone()).collect();
            assert_eq!(joined, data, "payload intact, in order");
            assert_eq!(segs[2].2.len(), 4000 - 2 * 1398);
        }
    }

    /// Splits an IPv4 TCP superframe with segments of `mss` payload bytes.
    fn split_tso4(frame: &mut [u8], mss: u16) -> (Vec<u8>, Vec<Range<usize>>) {
        let hdr = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: mss,
            ..Default::default()
        };
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        segment(&hdr, frame, &mut out, &mut ranges).unwrap();
        (out, ranges)
    }

    #[test]
    fn ipv4_identification_advances_per_segment() {
        let mut frame = tcp_superframe(false, &payload(3000), (false, false, false));
        frame[18..20].copy_from_slice(&0xfffeu16.to_be_bytes());
        let (out, ranges) = split_tso4(&mut frame, 1000);
        let ids: Vec<u16> = ranges
            .iter()
            .map(|r| u16::from_be_bytes([out[r.start + 18], out[r.start + 19]]))
            .collect();
        assert_eq!(ids, [0xfffe, 0xffff, 0]);
        check_segments(&out, &ranges);
    }

    #[test]
    fn udp_superframes_split_per_datagram() {
        let data = payload(2500);
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
            .udp(5000, 5201)
            .write(&mut frame, &data)
            .unwrap();
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            gso_size: 1000,
            ..Default::default()
        };
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        segment(&hdr, &mut frame, &mut out, &mut ranges).unwrap();
        assert_eq!(ranges.len(), 3);
        let mut joined = Vec::new();
        for r in &ranges {
            let p = SlicedPacket::from_ethernet(&out[r.clone()]).unwrap();
            let (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(udp))) =
                (&p.net, &p.transport)
            else {
                panic!("not UDP over IPv4")
            };
            let expected = udp
                .to_header()
                .calc_checksum_ipv4(&ip.header().to_header(), udp.payload())
                .unwrap();
            assert_eq!(udp.checksum(), expected);
            assert_eq!(usize::from(udp.length()), udp.payload().len() + 8);
            joined.extend_from_slice(udp.payload());
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn a_partial_checksum_is_finished_in_place() {
        let data = payload(333);
        let mut full = tcp_superframe(false, &data, (false, true, false));
        let good = u16::from_be_bytes([full[50], full[51]]);
        // What the kernel hands over: the pseudo-header sum, not complemented, in the field.
        let src_dst = &full[26..34];
        let tcp_len = (full.len() - 34) as u32;
        let pseudo = checksum::add(
            checksum::add(checksum::add(0, src_dst), &tcp_len.to_be_bytes()),
            &[0, 0, 0, 6],
        );
        let folded = !checksum::finish(pseudo);
        full[50..52].copy_from_slice(&folded.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        assert_eq!(
            segment(&hdr, &mut full, &mut out, &mut ranges),
            Ok(Segmented::Whole)
        );
        assert_eq!(u16::from_be_bytes([full[50], full[51]]), good);
        assert!(out.is_empty() && ranges.is_empty());
    }

    #[test]
    fn nonsense_is_refused_not_panicked_on() {
        let mut short = vec![0u8; 20];
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        let csum = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 60000,
            csum_offset: 16,
            ..Default::default()
        };
        assert_eq!(
            segment(&csum, &mut short, &mut out, &mut ranges),
            Err(OffloadError::BadChecksumOffsets)
        );
        let tso = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: 1000,
            ..Default::default()
        };
        assert_eq!(
            segment(&tso, &mut short, &mut out, &mut ranges),
            Err(OffloadError::BadSuperframe)
        );
        let mut udp_as_tcp = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(1, 2)
            .write(&mut udp_as_tcp, &[0; 100])
            .unwrap();
        assert_eq!(
            segment(&tso, &mut udp_as_tcp, &mut out, &mut ranges),
            Err(OffloadError::BadSuperframe)
        );
        let zero = VnetHdr { gso_size: 0, ..tso };
        let mut tcp = tcp_superframe(false, &payload(10), (false, false, false));
        assert_eq!(
            segment(&zero, &mut tcp, &mut out, &mut ranges),
            Err(OffloadError::BadSuperframe)
        );
        let odd = VnetHdr { gso_type: 9, ..tso };
        assert_eq!(
            segment(&odd, &mut tcp, &mut out, &mut ranges),
            Err(OffloadError::UnknownGsoType)
        );
        assert!(out.is_empty());
    }

    /// Splits a superframe of `len` payload bytes (MSS 1000) with [`segment`].
    fn segments_of(v6: bool, len: usize, push: bool) -> Vec<Vec<u8>> {
        segments_mss(v6, len, push, 1000)
    }

    fn segments_mss(v6: bool, len: usize, push: bool, mss: u16) -> Vec<Vec<u8>> {
        let mut frame = tcp_superframe(v6, &payload(len), (false, push, false));
        let hdr = VnetHdr {
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            gso_size: mss,
            ..Default::default()
        };
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        segment(&hdr, &mut frame, &mut out, &mut ranges).unwrap();
        ranges.iter().map(|r| out[r.clone()].to_vec()).collect()
    }

    /// What the kernel makes of a run's superframe: the frames it splits it into.
    fn resplit(run: &Run, frames: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut superframe = written(run, frames);
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        segment(&run.hdr, &mut superframe, &mut out, &mut ranges).unwrap();
        ranges.iter().map(|r| out[r.clone()].to_vec()).collect()
    }

    /// A run's superframe with its transport checksum completed as one frame.
    fn completed(run: &Run, frames: &[&[u8]]) -> Vec<u8> {
        let mut whole = written(run, frames);
        let hdr = VnetHdr {
            gso_type: GSO_NONE,
            ..run.hdr
        };
        segment(&hdr, &mut whole, &mut Vec::new(), &mut Vec::new()).unwrap();
        whole
    }

    /// The TCP or UDP checksum `frame` carries, and the one etherparse computes for it.
    fn checksums(frame: &[u8]) -> (u16, u16) {
        use etherparse::NetSlice;
        let p = SlicedPacket::from_ethernet(frame).expect("frame parses");
        let (v4, v6) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => (Some(ip.header().to_header()), None),
            Some(NetSlice::Ipv6(ip)) => (None, Some(ip.header().to_header())),
            _ => panic!("not IP"),
        };
        match (&p.transport, v4, v6) {
            (Some(TransportSlice::Tcp(t)), Some(h), _) => (
                t.checksum(),
                t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap(),
            ),
            (Some(TransportSlice::Tcp(t)), _, Some(h)) => (
                t.checksum(),
                t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap(),
            ),
            (Some(TransportSlice::Udp(u)), Some(h), _) => (
                u.checksum(),
                u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap(),
            ),
            (Some(TransportSlice::Udp(u)), _, Some(h)) => (
                u.checksum(),
                u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap(),
            ),
            _ => panic!("not TCP or UDP"),
        }
    }

    /// The bytes a run writes to the TAP after its virtio-net header.
    fn written(run: &Run, frames: &[&[u8]]) -> Vec<u8> {
        if run.count == 1 {
            return frames[run.first].to_vec();
        }
        let mut out = run.headers[..run.headers_len].to_vec();
        for f in &frames[run.first..run.first + run.count] {
            out.extend_from_slice(run_payload(run, f));
        }
        out
    }

    #[test]
    fn consecutive_segments_coalesce_and_split_back_to_the_same_frames() {
        for v6 in [false, true] {
            let frames = segments_of(v6, 4500, true);
            let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
            let mut runs = Vec::new();
            plan_runs(&refs, false, &mut runs);
            assert_eq!(runs.len(), 1, "v6 {v6}");
            let run = &runs[0];
            assert_eq!((run.first, run.count), (0, 5));
            assert_eq!(run.hdr.gso_size, 1000);
            assert_eq!(run.hdr.flags, F_NEEDS_CSUM);
            // What the kernel will do with it: segment it again.
            assert_eq!(
                resplit(run, &refs),
                frames,
                "v6 {v6}: the same frames, byte for byte"
            );
            // And the pseudo-header sum is what the kernel expects to finish.
            let (carried, expected) = checksums(&completed(run, &refs));
            assert_eq!(carried, expected, "v6 {v6}");
        }
    }

    #[test]
    fn only_what_the_kernel_would_merge_is_merged() {
        let runs_of = |frames: &[Vec<u8>]| {
            let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
            let mut runs = Vec::new();
            plan_runs(&refs, false, &mut runs);
            runs.iter().map(|r| r.count).collect::<Vec<_>>()
        };
        let segs = segments_of(false, 4500, false);
        assert_eq!(runs_of(&segs), [5]);
        // A gap in the sequence numbers ends a run.
        let gap = vec![
            segs[0].clone(),
            segs[1].clone(),
            segs[3].clone(),
            segs[4].clone(),
        ];
        assert_eq!(runs_of(&gap), [2, 2]);
        // A short segment ends a run; the next starts another.
        let mut short_first = segments_of(false, 1500, false);
        short_first.extend(segments_of(false, 2000, false));
        assert_eq!(
            runs_of(&short_first),
            [2, 2],
            "the short segment ends the first run"
        );
        // Another flow (port) in between.
        let other = {
            let mut f = segs[1].clone();
            f[34] ^= 1;
            f
        };
        assert_eq!(
            runs_of(&[segs[0].clone(), other, segs[1].clone()]),
            [1, 1, 1]
        );
        // A corrupt segment is not merged (the kernel will drop it on its own).
        let mut bad = segs.clone();
        let last = bad[2].len() - 1;
        bad[2][last] ^= 0xff;
        assert_eq!(runs_of(&bad), [2, 1, 2]);
        // PSH ends a run; FIN, SYN and non-TCP frames are never merged.
        let pushed = segments_of(false, 2000, true);
        let mut after = pushed.clone();
        after.push(segs[0].clone());
        assert_eq!(runs_of(&after), [2, 1]);
        let mut fin = segments_of(false, 2000, false);
        fin[1][47] |= TCP_FIN;
        assert_eq!(runs_of(&fin), [1, 1]);
        let arp = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        assert_eq!(runs_of(&[arp.clone(), segs[0].clone(), arp]), [1, 1, 1]);
        // IPv4 identifications must follow one by one (the kernel renumbers what it splits),
        // and the IPv4 header checksum must be right.
        let set_id = |f: &mut Vec<u8>, id: u16| {
            f[18..20].copy_from_slice(&id.to_be_bytes());
            f[24..26].copy_from_slice(&[0, 0]);
            let sum = checksum::of(&[&f[14..34]]);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
        };
        let mut jumpy = segs.clone();
        set_id(&mut jumpy[2], 999);
        assert_eq!(runs_of(&jumpy), [2, 1, 2]);
        let mut broken = segs.clone();
        broken[1][22] ^= 1; // TTL, which only the IPv4 header checksum covers
        assert_eq!(runs_of(&broken), [1, 1, 3]);
        // At most MAX_RUN frames per write.
        assert_eq!(
            runs_of(&segments_mss(false, 7000, false, 100)),
            [MAX_RUN, 70 - MAX_RUN]
        );
    }

    /// The datagrams of a UDP superframe of `len` payload bytes split at `size` by
    /// [`segment`], as a sender's UDP_SEGMENT would put them on the wire.
    fn datagrams_of(v6: bool, len: usize, size: u16) -> Vec<Vec<u8>> {
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B);
        let builder = if v6 {
            builder.ipv6([0xfc; 16], [0xfd; 16], 64)
        } else {
            builder.ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
        };
        let mut frame = Vec::new();
        builder
            .udp(5000, 5201)
            .write(&mut frame, &payload(len))
            .unwrap();
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            gso_size: size,
            ..Default::default()
        };
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        segment(&hdr, &mut frame, &mut out, &mut ranges).unwrap();
        ranges.iter().map(|r| out[r.clone()].to_vec()).collect()
    }

    #[test]
    fn consecutive_datagrams_coalesce_and_split_back_to_the_same_frames() {
        for v6 in [false, true] {
            let frames = datagrams_of(v6, 4500, 1000);
            let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
            let mut runs = Vec::new();
            plan_runs(&refs, false, &mut runs);
            assert_eq!(
                runs.len(),
                5,
                "v6 {v6}: no UDP superframes unless the TAP takes them"
            );
            runs.clear();
            plan_runs(&refs, true, &mut runs);
            assert_eq!(runs.len(), 1, "v6 {v6}");
            let run = &runs[0];
            assert_eq!((run.first, run.count), (0, 5));
            assert_eq!(
                (run.hdr.gso_type, run.hdr.gso_size, run.hdr.flags),
                (GSO_UDP_L4, 1000, F_NEEDS_CSUM)
            );
            assert_eq!(run.hdr.csum_offset, 6);
            // What the kernel will do with it: split it again.
            assert_eq!(
                resplit(run, &refs),
                frames,
                "v6 {v6}: the same frames, byte for byte"
            );
            // The UDP length covers the whole, and the pseudo-header sum is the one the
            // kernel finishes: completing it gives the checksum etherparse computes.
            let whole = completed(run, &refs);
            let p = SlicedPacket::from_ethernet(&whole).unwrap();
            let Some(TransportSlice::Udp(udp)) = p.transport else {
                panic!("not UDP")
            };
            assert_eq!(usize::from(udp.length()), 8 + 4500);
            let (carried, expected) = checksums(&whole);
            assert_eq!(carried, expected, "v6 {v6}");
        }
    }

    #[test]
    fn unverified_planning_merges_the_same_runs_and_skips_only_the_checksum_pass() {
        for v6 in [false, true] {
            let mut frames = datagrams_of(v6, 4500, 1000);
            let plan = |frames: &[Vec<u8>], verify: bool| {
                let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
                let mut runs = Vec::new();
                plan_runs_checked(&refs, true, verify, &mut runs);
                runs.iter().map(|r| (r.first, r.count)).collect::<Vec<_>>()
            };
            assert_eq!(plan(&frames, true), plan(&frames, false), "v6 {v6}");
            // A payload byte damaged on the way: verifying keeps the datagram apart (the
            // kernel will check it); trusting an outer checksum that covered it merges it.
            let last = frames[2].len() - 1;
            frames[2][last] ^= 0xff;
            assert_eq!(plan(&frames, true), vec![(0, 2), (2, 1), (3, 2)], "v6 {v6}");
            assert_eq!(plan(&frames, false), vec![(0, 5)], "v6 {v6}");
        }
    }

    #[test]
    fn only_datagrams_the_kernel_would_merge_are_merged() {
        let runs_of = |frames: &[Vec<u8>]| {
            let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
            let mut runs = Vec::new();
            plan_runs(&refs, true, &mut runs);
            runs.iter().map(|r| r.count).collect::<Vec<_>>()
        };
        let dgrams = datagrams_of(false, 5000, 1000);
        assert_eq!(runs_of(&dgrams), [5]);
        // A short datagram ends a run.
        let mut short_first = datagrams_of(false, 1500, 1000);
        short_first.extend(datagrams_of(false, 2000, 1000));
        assert_eq!(runs_of(&short_first), [2, 2]);
        // Another destination port in between.
        let mut other = dgrams[1].clone();
        other[37] ^= 1;
        assert_eq!(
            runs_of(&[dgrams[0].clone(), other, dgrams[1].clone()]),
            [1, 1, 1]
        );
        // A corrupt datagram is not merged, nor one without a checksum (IPv4 allows it, and
        // the kernel would give it one), nor one whose UDP length disagrees with IP's.
        let mut bad = dgrams.clone();
        let last = bad[2].len() - 1;
        bad[2][last] ^= 0xff;
        assert_eq!(runs_of(&bad), [2, 1, 2]);
        let mut unsummed = dgrams.clone();
        unsummed[2][40..42].copy_from_slice(&[0, 0]);
        assert_eq!(runs_of(&unsummed), [2, 1, 2]);
        let mut lying = dgrams.clone();
        lying[2][38..40].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(runs_of(&lying), [2, 1, 2]);
        // IPv4 identifications must follow.
        let mut jumpy = dgrams.clone();
        jumpy[3][18..20].copy_from_slice(&999u16.to_be_bytes());
        jumpy[3][24..26].copy_from_slice(&[0, 0]);
        let sum = checksum::of(&[&jumpy[3][14..34]]);
        jumpy[3][24..26].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(runs_of(&jumpy), [3, 1, 1]);
        // Equal identifications under DF (what Linux gives an unconnected socket's datagrams)
        // would come out renumbered: not merged.
        let mut fixed = dgrams.clone();
        for f in &mut fixed {
            f[18..22].copy_from_slice(&[0, 0, 0x40, 0]);
            f[24..26].copy_from_slice(&[0, 0]);
            let sum = checksum::of(&[&f[14..34]]);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
        }
        assert_eq!(runs_of(&fixed), [1; 5]);
        // TCP and UDP of the same hosts never share a run.
        let mut mixed = dgrams[..2].to_vec();
        mixed.extend(segments_of(false, 2000, false));
        assert_eq!(runs_of(&mixed), [2, 2]);
    }

    #[test]
    fn superframes_behind_service_and_customer_tags_split_too() {
        for tags in [
            &[0x88, 0xa8, 0, 5][..],
            &[0x88, 0xa8, 0, 5, 0x81, 0, 0, 7][..],
        ] {
            let plain = tcp_superframe(false, &payload(3000), (false, false, false));
            let mut frame = plain[..12].to_vec();
            frame.extend_from_slice(tags);
            frame.extend_from_slice(&plain[12..]);
            let (out, ranges) = split_tso4(&mut frame, 1000);
            assert_eq!(ranges.len(), 3);
            for r in &ranges {
                let seg = &out[r.clone()];
                assert_eq!(&seg[12..12 + tags.len()], tags, "tags kept");
                let ip = IpView::parse(seg).unwrap();
                assert_eq!(ip.l3, 14 + tags.len());
                assert_eq!(checksum::of(&[&seg[ip.l3..ip.l3 + 20]]), 0, "IPv4 header");
                let l4 = ip.l3 + ip.header_len;
                assert_eq!(transport_checksum(seg, &ip, l4, IPPROTO_TCP), 0, "TCP");
            }
        }
    }

    #[test]
    fn short_udp_frames_are_passed_over_without_panicking() {
        // IP lengths that leave the UDP header cut short, with nothing behind the IP packet.
        for (v6, l4_len) in [(false, 5), (false, 7), (true, 5), (true, 7)] {
            let mut frame = datagrams_of(v6, 20, 1000).remove(0);
            let l3 = 14;
            if v6 {
                frame[l3 + 4..l3 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                frame.truncate(l3 + 40 + l4_len);
            } else {
                frame[l3 + 2..l3 + 4].copy_from_slice(&(20 + l4_len as u16).to_be_bytes());
                frame.truncate(l3 + 20 + l4_len);
            }
            let mut runs = Vec::new();
            plan_runs(&[&frame, &frame], true, &mut runs);
            assert_eq!(runs.iter().map(|r| r.count).collect::<Vec<_>>(), [1, 1]);
        }
    }

    proptest::proptest! {
        #[test]
        fn plan_runs_never_panics(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..6),
        ) {
            let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
            let mut runs = Vec::new();
            plan_runs(&refs, true, &mut runs);
            let covered: usize = runs.iter().map(|r| r.count).sum();
            proptest::prop_assert_eq!(covered, frames.len());
        }

        #[test]
        fn segment_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            head in proptest::collection::vec(proptest::prelude::any::<u8>(), 10),
        ) {
            let hdr = VnetHdr::decode(&head).unwrap();
            let mut frame = bytes;
            let _ = segment(&hdr, &mut frame, &mut Vec::new(), &mut Vec::new());
        }
    }

    #[test]
    fn a_partial_checksum_from_a_same_host_sender_is_finished_and_a_complete_one_kept() {
        for v6 in [false, true] {
            let mut frame = Vec::new();
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let b = if v6 {
                b.ipv6([0xfc; 16], [0xfd; 16], 64)
            } else {
                b.ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
            };
            b.tcp(40000, 5201, 7, 1000)
                .write(&mut frame, &[9u8; 300])
                .unwrap();
            let complete = frame.clone();
            let mut kept = frame.clone();
            assert!(!finish_partial_checksum(&mut kept));
            assert_eq!(kept, complete);
            // What the sending kernel leaves for offload: the pseudo-header sum.
            let ip = IpView::parse(&frame).unwrap();
            let l4 = ip.l3 + ip.header_len;
            let len = (ip.l3 + ip.total_len - l4) as u32;
            let addrs = if v6 {
                frame[ip.l3 + 8..ip.l3 + 40].to_vec()
            } else {
                frame[ip.l3 + 12..ip.l3 + 20].to_vec()
            };
            let pseudo = checksum::add(
                checksum::add(checksum::add(0, &addrs), &len.to_be_bytes()),
                &[0, 0, 0, IPPROTO_TCP],
            );
            frame[l4 + 16..l4 + 18].copy_from_slice(&(!checksum::finish(pseudo)).to_be_bytes());
            assert_ne!(frame, complete);
            assert!(finish_partial_checksum(&mut frame));
            assert_eq!(frame, complete);
        }
    }

    proptest::proptest! {
        /// Whatever the bytes, no panic, and a frame it changes then verifies.
        #[test]
        fn finishing_partial_checksums_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut frame = bytes.clone();
            let _ = finish_partial_checksum(&mut frame);
        }
    }
}
