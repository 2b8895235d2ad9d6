//! Every counter of a switch shard, as words that its thread writes and anyone reads.
//!
//! Each data-path thread counts into the [`Counters`] of its own shard, under its shard's
//! lock, so there is one writer at a time and a count is a load and a store
//! ([`crate::flow::counters::bump`]). The words are atomics, so a control plane reads them
//! without that lock: the daemon keeps every shard's `Arc<Counters>` where its readers find
//! them, and a read adds them up ([`Counters::sum`]) into a `Counters` of its own, which
//! `show`, the metrics and the stats report render. A table change or a reload gives each
//! shard new counters (carried over from the old, [`Counters::carried`]) under the shards'
//! locks; readers take either every shard's old counters or every shard's new ones.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use super::{DropReason, MtuStats, OffloadStats, PortStats};
use crate::flow::counters::{bump, FlowCounters, FlowStats};
use crate::incident::{ErrorReason, ReasonCounts};
use crate::packet_in::PacketInStats;

/// The switch-wide counters besides drops and underlay errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// See [`MtuStats::mss_clamped`].
    MssClamped,
    /// See [`MtuStats::too_big_sent`].
    TooBigSent,
    /// See [`MtuStats::too_big_rate_limited`].
    TooBigRateLimited,
    /// See [`MtuStats::fragmented`].
    Fragmented,
    /// See [`MtuStats::fragments`].
    Fragments,
    /// See [`MtuStats::too_big_skipped`].
    TooBigSkipped,
    /// See [`MtuStats::ecn_marked`].
    EcnMarked,
    /// See [`OffloadStats::split`].
    Split,
    /// See [`OffloadStats::split_segments`].
    SplitSegments,
    /// See [`OffloadStats::coalesced`].
    Coalesced,
    /// See [`OffloadStats::coalesced_segments`].
    CoalescedSegments,
    /// See [`OffloadStats::repeated`].
    Repeated,
    /// See [`PacketInStats::sent`].
    PacketIns,
    /// See [`PacketInStats::rate_limited`].
    PacketInsRateLimited,
}

const COUNTS: usize = Count::PacketInsRateLimited as usize + 1;
const DROPS: usize = COUNTS;
const RX_ERRORS: usize = DROPS + DropReason::ALL.len();
const PORTS: usize = RX_ERRORS + ErrorReason::ALL.len();

/// A port's words: packets and bytes each way, send errors, and those by reason.
const RX_PACKETS: usize = 0;
const RX_BYTES: usize = 1;
const TX_PACKETS: usize = 2;
const TX_BYTES: usize = 3;
const TX_ERRORS: usize = 4;
const TX_REASONS: usize = 5;
const PORT_WORDS: usize = TX_REASONS + ErrorReason::ALL.len();

/// Every counter of a switch shard (or the sum of several): per port, per flow, per drop
/// reason, MTU handling, offloads, packet-ins and underlay receive errors.
pub struct Counters {
    /// Port slots (the switch's ports in number order).
    ports: usize,
    words: Box<[AtomicU64]>,
    flows: FlowCounters,
}

impl Counters {
    /// All zero, for `ports` port slots and `flows`.
    pub fn new(ports: usize, flows: FlowCounters) -> Counters {
        Counters {
            ports,
            words: (0..PORTS + ports * PORT_WORDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            flows,
        }
    }

    /// The sum of `shards`, counters of the shards of one switch: packets, bytes and counts
    /// added, a flow's last use the latest. `None` for no shards, or shards of different
    /// shapes (which a caller that reads them as it should never sees).
    pub fn sum<'a>(shards: impl IntoIterator<Item = &'a Counters>) -> Option<Counters> {
        let mut shards = shards.into_iter();
        let first = shards.next()?;
        let sum = first.zero_like();
        sum.add(first);
        for shard in shards {
            if shard.ports != sum.ports || shard.flows.len() != sum.flows.len() {
                return None;
            }
            sum.add(shard);
        }
        Some(sum)
    }

    /// The counters for a new shape: port slot `i` takes those of old slot `ports[i]` (or
    /// starts at zero), flow `i` those of old flow `carry[i]` (or starts at zero, added `now`,
    /// as do those in `reset`); the switch-wide counters are kept.
    pub fn carried(
        &self,
        ports: &[Option<usize>],
        carry: &[Option<usize>],
        reset: &[usize],
        now: Instant,
    ) -> Counters {
        let new = Counters::new(ports.len(), self.flows.carried(carry, reset, now));
        for (mine, theirs) in new.words[..PORTS].iter().zip(&self.words[..PORTS]) {
            mine.store(theirs.load(Relaxed), Relaxed);
        }
        for (slot, old) in ports.iter().enumerate() {
            if let Some(old) = old.filter(|&o| o < self.ports) {
                for (mine, theirs) in new.port_words(slot).iter().zip(self.port_words(old)) {
                    mine.store(theirs.load(Relaxed), Relaxed);
                }
            }
        }
        new
    }

    /// Zero counters of this shape, for another shard: only when each flow was added is kept.
    pub fn cleared(&self) -> Counters {
        Counters::new(self.ports, self.flows.cleared())
    }

    /// Counts `n` on `count`.
    #[inline]
    pub fn count(&self, count: Count, n: u64) {
        bump(&self.words[count as usize], n);
    }

    /// Counts a drop for `reason`.
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        bump(&self.words[DROPS + reason.index()], 1);
    }

    /// Counts `packets` frames of `bytes` in all received on port slot `slot`.
    #[inline]
    pub fn rx(&self, slot: usize, packets: u64, bytes: u64) {
        let w = self.port_words(slot);
        bump(&w[RX_PACKETS], packets);
        bump(&w[RX_BYTES], bytes);
    }

    /// Counts `packets` frames of `bytes` in all sent out of port slot `slot`.
    #[inline]
    pub fn tx(&self, slot: usize, packets: u64, bytes: u64) {
        let w = self.port_words(slot);
        bump(&w[TX_PACKETS], packets);
        bump(&w[TX_BYTES], bytes);
    }

    /// Counts a send that failed on port slot `slot`, and why if the shell said.
    pub fn tx_error(&self, slot: usize, reason: Option<ErrorReason>) {
        let w = self.port_words(slot);
        bump(&w[TX_ERRORS], 1);
        if let Some(reason) = reason {
            bump(&w[TX_REASONS + reason.index()], 1);
        }
    }

    /// Counts a receive error of an underlay socket.
    pub fn rx_error(&self, reason: ErrorReason) {
        bump(&self.words[RX_ERRORS + reason.index()], 1);
    }

    /// The flows' counters (to count on them too).
    pub fn flows(&self) -> &FlowCounters {
        &self.flows
    }

    /// Port slots.
    pub fn port_count(&self) -> usize {
        self.ports
    }

    /// The counters of port slot `slot`.
    pub fn port(&self, slot: usize) -> Option<PortStats> {
        if slot >= self.ports {
            return None;
        }
        let w = self.port_words(slot);
        let get = |i: usize| w[i].load(Relaxed);
        Some(PortStats {
            rx_packets: get(RX_PACKETS),
            rx_bytes: get(RX_BYTES),
            tx_packets: get(TX_PACKETS),
            tx_bytes: get(TX_BYTES),
            tx_errors: get(TX_ERRORS),
            tx_error_reasons: reasons(&w[TX_REASONS..]),
        })
    }

    /// Frames received on every port.
    pub fn rx_frames(&self) -> u64 {
        (0..self.ports)
            .map(|s| self.port_words(s)[RX_PACKETS].load(Relaxed))
            .sum()
    }

    /// The counters of flow `id`.
    pub fn flow(&self, id: usize) -> Option<FlowStats> {
        self.flows.get(id)
    }

    /// How many frames were dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.get(DROPS + reason.index())
    }

    /// The MTU counters.
    pub fn mtu(&self) -> MtuStats {
        MtuStats {
            mss_clamped: self.get(Count::MssClamped as usize),
            too_big_sent: self.get(Count::TooBigSent as usize),
            too_big_rate_limited: self.get(Count::TooBigRateLimited as usize),
            fragmented: self.get(Count::Fragmented as usize),
            fragments: self.get(Count::Fragments as usize),
            too_big_skipped: self.get(Count::TooBigSkipped as usize),
            ecn_marked: self.get(Count::EcnMarked as usize),
        }
    }

    /// The offload counters.
    pub fn offload(&self) -> OffloadStats {
        OffloadStats {
            split: self.get(Count::Split as usize),
            split_segments: self.get(Count::SplitSegments as usize),
            coalesced: self.get(Count::Coalesced as usize),
            coalesced_segments: self.get(Count::CoalescedSegments as usize),
            repeated: self.get(Count::Repeated as usize),
        }
    }

    /// The packet-in counters.
    pub fn packet_in(&self) -> PacketInStats {
        PacketInStats {
            sent: self.get(Count::PacketIns as usize),
            rate_limited: self.get(Count::PacketInsRateLimited as usize),
        }
    }

    /// Receive errors of the underlay sockets, by reason.
    pub fn rx_errors(&self) -> ReasonCounts {
        reasons(&self.words[RX_ERRORS..PORTS])
    }

    /// Adds `other`'s (same shape) to these.
    fn add(&self, other: &Counters) {
        for (mine, theirs) in self.words.iter().zip(&other.words) {
            bump(mine, theirs.load(Relaxed));
        }
        self.flows.absorb(&other.flows);
    }

    /// Zero counters of this shape.
    fn zero_like(&self) -> Counters {
        Counters::new(self.ports, self.flows.zeroed())
    }

    fn get(&self, word: usize) -> u64 {
        self.words[word].load(Relaxed)
    }

    fn port_words(&self, slot: usize) -> &[AtomicU64] {
        &self.words[PORTS + slot * PORT_WORDS..PORTS + (slot + 1) * PORT_WORDS]
    }
}

/// Error counts read from their words, in [`ErrorReason::ALL`] order.
fn reasons(words: &[AtomicU64]) -> ReasonCounts {
    let mut counts = ReasonCounts::default();
    for (reason, word) in ErrorReason::ALL.into_iter().zip(words) {
        counts.add_n(reason, word.load(Relaxed));
    }
    counts
}

impl Default for Counters {
    /// No ports, no flows.
    fn default() -> Counters {
        Counters::new(0, FlowCounters::new(0, Instant::now()))
    }
}

impl Clone for Counters {
    fn clone(&self) -> Counters {
        let copy = self.zero_like();
        copy.add(self);
        copy
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters")
            .field(
                "ports",
                &(0..self.ports).map(|s| self.port(s)).collect::<Vec<_>>(),
            )
            .field("flows", &self.flows.len())
            .field("mtu", &self.mtu())
            .field("offload", &self.offload())
            .finish_non_exhaustive()
    }
}
