//! The segment sizes of TCP flows, learnt from their handshakes.
//!
//! A TCP superframe that reaches vxtund whole through a tunnel socket (a sender on the same
//! host handed one tunnel GSO packet over a veth, or GRO merged GRE packets) says nothing of
//! the segments it was made of: it has to be cut again before it leaves by a port with an MTU.
//! Cut at the largest size this switch's MTUs allow, segments may come out larger than the
//! sender made them, and a host further on with a smaller MTU drops them. Every SYN and
//! SYN-ACK crosses vxtund's switch (the kernel fast path never carries them), so the switch
//! records the MSS each advertises, after clamping. A sender's segments are no larger than its
//! peer's MSS, nor (its own MSS being its MTU's) than its own: a superframe of a connection
//! whose handshake the switch saw is cut no larger than the smaller of the two, which is never
//! larger than its sender's segments were.
//!
//! The table is direct-mapped and lock-free: the switch writes it under a shard's lock, the
//! receive threads read it without any. A collision forgets a flow, whose superframes are then
//! cut by the MTUs alone, as without the table.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::ip::IpView;
use crate::wire::tcp;

/// The ACK bit of the TCP flags byte: a SYN with it answers one.
const FLAG_ACK: u8 = 0x10;

/// Flows remembered at once (a power of two).
const SLOTS: usize = 4096;

/// What the handshakes of the flows crossing the switch advertised.
pub struct SegmentSizes {
    /// Per slot: the flow's tag in the high 48 bits, its MSS in the low 16; 0 when empty.
    slots: Box<[AtomicU64]>,
    hasher: ahash::RandomState,
}

impl Default for SegmentSizes {
    fn default() -> SegmentSizes {
        SegmentSizes::new()
    }
}

impl std::fmt::Debug for SegmentSizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentSizes").finish_non_exhaustive()
    }
}

impl SegmentSizes {
    /// An empty table.
    pub fn new() -> SegmentSizes {
        SegmentSizes {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: ahash::RandomState::new(),
        }
    }

    /// Records the MSS that the SYN or SYN-ACK in `frame` (`ip`, its IP header) advertises:
    /// a SYN starts its connection's entry afresh, a SYN-ACK lowers it to its own MSS.
    /// Anything else is ignored.
    pub fn learn(&self, frame: &[u8], ip: &IpView) {
        let Some(mss) = tcp::syn_mss(frame, ip) else {
            return;
        };
        let Some(tag) = self.tag(frame, ip) else {
            return;
        };
        let slot = &self.slots[slot(tag)];
        let answer = frame
            .get(ip.l3 + ip.header_len + 13)
            .is_some_and(|&flags| flags & FLAG_ACK != 0);
        let old = slot.load(Ordering::Relaxed);
        let mss = match old >> 16 == tag && answer {
            true => mss.min((old & 0xffff) as u16),
            false => mss,
        };
        slot.store(tag << 16 | u64::from(mss), Ordering::Relaxed);
    }

    /// The most TCP payload one segment of the connection of `frame` (a TCP segment, `ip` its
    /// IP header) carries: the smaller MSS of its handshake, less the options in `frame`'s TCP
    /// header (which every segment cut from a superframe repeats). `None` when the handshake
    /// was not seen (or another connection took its slot).
    pub fn payload_limit(&self, frame: &[u8], ip: &IpView) -> Option<usize> {
        let tag = self.tag(frame, ip)?;
        let entry = self.slots[slot(tag)].load(Ordering::Relaxed);
        if entry >> 16 != tag {
            return None;
        }
        let tcp_header = frame
            .get(ip.l3 + ip.header_len + 12)
            .map(|&b| usize::from(b >> 4) * 4)?;
        let mss = (entry & 0xffff) as usize;
        mss.checked_sub(tcp_header.saturating_sub(20))
            .filter(|&n| n > 0)
    }

    /// The connection's 48-bit tag (never 0), from its addresses and ports, the same from both
    /// directions.
    fn tag(&self, frame: &[u8], ip: &IpView) -> Option<u64> {
        if ip.proto != tcp::PROTO_TCP || !ip.has_transport_header() {
            return None;
        }
        let addresses = ip.addresses(frame)?;
        let (src, dst) = addresses.split_at(addresses.len() / 2);
        let ports = ip.l3 + ip.header_len;
        let one = (src, frame.get(ports..ports + 2)?);
        let other = (dst, frame.get(ports + 2..ports + 4)?);
        let hash = self.hasher.hash_one((one.min(other), one.max(other)));
        Some((hash >> 16).max(1))
    }
}

fn slot(tag: u64) -> usize {
    (tag as usize) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with a TCP segment from `src`:`sport` to `dst`:`dport` (IPv4), with
    /// `flags`, `options` and `payload` bytes.
    fn segment(
        src: [u8; 4],
        dst: [u8; 4],
        ports: (u16, u16),
        flags: u8,
        options: &[u8],
        payload: usize,
    ) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let tcp_len = 20 + options.len();
        let total = 20 + tcp_len + payload;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&ports.0.to_be_bytes());
        f.extend_from_slice(&ports.1.to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.push(((tcp_len / 4) as u8) << 4);
        f.push(flags);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(options);
        f.resize(14 + total, 0xab);
        f
    }

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];
    const MSS_1410: [u8; 4] = [2, 4, 0x05, 0x82];
    /// NOP, NOP, timestamps: the 12 bytes of options of every segment of a Linux flow.
    const TIMESTAMPS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];

    /// `table` after A's SYN advertising `a` and B's SYN-ACK advertising `b`.
    fn handshake(table: &SegmentSizes, a: u16, b: u16) {
        for (from, to, ports, flags, mss) in
            [(A, B, (40000, 80), 0x02, a), (B, A, (80, 40000), 0x12, b)]
        {
            let [hi, lo] = mss.to_be_bytes();
            let f = segment(from, to, ports, flags, &[2, 4, hi, lo], 0);
            table.learn(&f, &IpView::parse(&f).unwrap());
        }
    }

    fn limit(table: &SegmentSizes, from: [u8; 4], to: [u8; 4], ports: (u16, u16)) -> Option<usize> {
        let data = segment(from, to, ports, 0x10, &TIMESTAMPS, 60_000);
        table.payload_limit(&data, &IpView::parse(&data).unwrap())
    }

    #[test]
    fn the_smaller_mss_of_a_handshake_limits_both_directions() {
        let table = SegmentSizes::new();
        // B advertises 1410: A's segments are no larger; nor are B's, whose peer said 1460.
        handshake(&table, 1460, 1410);
        // Each segment repeats the 12 bytes of timestamps, which come out of the MSS.
        assert_eq!(limit(&table, A, B, (40000, 80)), Some(1398));
        assert_eq!(limit(&table, B, A, (80, 40000)), Some(1398));
        // A's own MTU is the smaller: its segments are no larger than it advertised.
        handshake(&table, 1360, 1410);
        assert_eq!(limit(&table, A, B, (40000, 80)), Some(1348));
        // Another connection between the same hosts was not seen.
        assert_eq!(limit(&table, A, B, (40001, 80)), None);
    }

    #[test]
    fn segments_without_a_syn_or_its_mss_teach_nothing() {
        let table = SegmentSizes::new();
        for (flags, options) in [(0x10, &MSS_1410[..]), (0x02, &TIMESTAMPS[..])] {
            let f = segment(B, A, (80, 40000), flags, options, 0);
            table.learn(&f, &IpView::parse(&f).unwrap());
        }
        let data = segment(A, B, (40000, 80), 0x10, &[], 60_000);
        assert_eq!(
            table.payload_limit(&data, &IpView::parse(&data).unwrap()),
            None
        );
    }

    #[test]
    fn a_new_syn_starts_the_connection_afresh() {
        let table = SegmentSizes::new();
        handshake(&table, 1200, 1200);
        // The same addresses and ports again, later: the old connection's MSS is forgotten.
        handshake(&table, 1460, 1410);
        assert_eq!(limit(&table, A, B, (40000, 80)), Some(1398));
    }

    proptest::proptest! {
        /// Whatever an IPv4 or IPv6 packet holds, learning and asking never panic.
        #[test]
        fn any_packet_is_harmless(
            v6 in proptest::bool::ANY,
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let table = SegmentSizes::new();
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
            frame.extend_from_slice(&bytes);
            if let Some(ip) = IpView::parse(&frame) {
                table.learn(&frame, &ip);
                let _ = table.payload_limit(&frame, &ip);
            }
        }
    }
}
