//! The counters of every flow in a table, as one switch shard keeps them.
//!
//! Each data-path thread counts into a shard of its own (see [`crate::switch::Switch::shard`]),
//! so a table of 100,000 flows has its counters several times over. They are stored flat, as
//! 64-bit words in chunks of [`CHUNK`] flows, each allocated the first time one of its flows
//! has something to count: shards of a big table take memory only for the flows that frames
//! match (or that carry counters over from the table before).
//!
//! The words are atomics with one writer at a time (the shard's thread, or whoever holds the
//! shard's lock), so a count is a plain load and store, never a locked read-modify-write; a
//! reader anywhere loads them without that lock (see [`crate::switch::Counters`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::FlowTable;

/// Words per flow: packets, bytes, when last used, when added.
const WORDS: usize = 4;
/// Flows per chunk of counters (8 KiB).
const CHUNK: usize = 256;
/// The bit that tells a stored time from "none" (0).
const SET: u64 = 1 << 63;

/// Adds `n` to a counter that only the caller writes (whoever holds the lock of the shard it
/// belongs to): a load and a store, which readers see whole, without the cost of an atomic
/// read-modify-write.
#[inline]
pub fn bump(word: &AtomicU64, n: u64) {
    word.store(word.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Packet and byte counters of one flow, and its times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Frames that matched.
    pub n_packets: u64,
    /// Bytes of those frames.
    pub n_bytes: u64,
    /// When the flow was put in the table (`None` for the flows the switch started with).
    pub added: Option<Instant>,
    /// When a frame last matched it (for `idle_timeout`).
    pub last_used: Option<Instant>,
}

impl FlowStats {
    /// Adds `other`'s counters, of the same flow in another shard: packets and bytes summed,
    /// the latest use, the earliest addition.
    pub fn add(&mut self, other: &FlowStats) {
        self.n_packets += other.n_packets;
        self.n_bytes += other.n_bytes;
        self.last_used = self.last_used.max(other.last_used);
        self.added = match (self.added, other.added) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Where the counters of each flow of a new table come from: for each new flow, the index of
/// the flow with the same priority and match in the old table, if any (each old flow's
/// counters go to one new flow at most, should a table hold the same flow twice). Worked out
/// once per table change, outside the data path's locks; each shard then only gathers.
pub fn carry_map(old: &FlowTable, new: &FlowTable) -> Vec<Option<usize>> {
    let mut index: std::collections::HashMap<(u16, &super::Match), usize, ahash::RandomState> = old
        .flows()
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.priority, &f.matches), i))
        .collect();
    new.flows()
        .iter()
        .map(|f| index.remove(&(f.priority, &f.matches)))
        .collect()
}

/// The counters of the flows of one table, in table order.
pub struct FlowCounters {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    len: usize,
    /// Times are stored as nanoseconds from here (either way).
    epoch: Instant,
}

impl FlowCounters {
    /// Zero counters for `flows` flows, none added or used.
    pub fn new(flows: usize, epoch: Instant) -> FlowCounters {
        FlowCounters {
            chunks: (0..flows.div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
            len: flows,
            epoch,
        }
    }

    /// How many flows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no flows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counts a frame of `len` bytes matching flow `id`, at `now` (`None`: without touching
    /// its last use, for the frames that repeat a decision).
    #[inline]
    pub fn hit(&self, id: usize, len: u64, now: Option<Instant>) {
        let time = now.map(|t| self.encode(Some(t)));
        if let Some(w) = self.words_to_write(id) {
            bump(&w[0], 1);
            bump(&w[1], len);
            if let Some(t) = time {
                w[2].store(t, Relaxed);
            }
        }
    }

    /// Counts `packets` frames of `bytes` in all on flow `id`, used at `now`.
    pub fn hit_many(&self, id: usize, packets: u64, bytes: u64, now: Instant) {
        let time = self.encode(Some(now));
        if let Some(w) = self.words_to_write(id) {
            bump(&w[0], packets);
            bump(&w[1], bytes);
            w[2].store(time, Relaxed);
        }
    }

    /// The counters of flow `id`.
    pub fn get(&self, id: usize) -> Option<FlowStats> {
        if id >= self.len {
            return None;
        }
        let Some(w) = self.words(id) else {
            return Some(FlowStats::default());
        };
        Some(FlowStats {
            n_packets: w[0].load(Relaxed),
            n_bytes: w[1].load(Relaxed),
            last_used: self.decode(w[2].load(Relaxed)),
            added: self.decode(w[3].load(Relaxed)),
        })
    }

    /// Sets the counters of flow `id` (a flow set to nothing takes no memory).
    pub fn set(&self, id: usize, s: FlowStats) {
        let values = [
            s.n_packets,
            s.n_bytes,
            self.encode(s.last_used),
            self.encode(s.added),
        ];
        let words = match values == [0; WORDS] {
            true => self.words(id),
            false => self.words_to_write(id),
        };
        if let Some(w) = words {
            for (word, value) in w.iter().zip(values) {
                word.store(value, Relaxed);
            }
        }
    }

    /// The counters for a new table: flow `i` takes those of old flow `carry[i]` (see
    /// [`carry_map`]), or starts at zero, added `now`; so do the flows in `reset`.
    pub fn carried(&self, carry: &[Option<usize>], reset: &[usize], now: Instant) -> FlowCounters {
        let new = FlowCounters::new(carry.len(), self.epoch);
        let fresh = FlowStats {
            added: Some(now),
            ..Default::default()
        };
        for (i, from) in carry.iter().enumerate() {
            match from.and_then(|o| self.get(o)) {
                Some(s) => new.set(i, s),
                None => new.set(i, fresh),
            }
        }
        for &i in reset {
            new.set(i, fresh);
        }
        new
    }

    /// Adds `other`'s counters (a shard of the same table): packets and bytes summed, the
    /// latest use, the earliest addition. Only the flows `other` has counters for are read.
    pub fn absorb(&self, other: &FlowCounters) {
        for (c, chunk) in other.chunks.iter().enumerate() {
            if chunk.get().is_none() {
                continue;
            }
            for id in c * CHUNK..((c + 1) * CHUNK).min(self.len.min(other.len)) {
                let (Some(mut mine), Some(theirs)) = (self.get(id), other.get(id)) else {
                    continue;
                };
                if theirs == FlowStats::default() {
                    continue;
                }
                mine.add(&theirs);
                self.set(id, mine);
            }
        }
    }

    /// The same flows with zero counters and no times.
    pub fn zeroed(&self) -> FlowCounters {
        FlowCounters::new(self.len, self.epoch)
    }

    /// The same flows with zero counters and nobody's times but when each was added.
    pub fn cleared(&self) -> FlowCounters {
        let new = FlowCounters::new(self.len, self.epoch);
        for id in 0..self.len {
            if let Some(added) = self.get(id).and_then(|s| s.added) {
                new.set(
                    id,
                    FlowStats {
                        added: Some(added),
                        ..Default::default()
                    },
                );
            }
        }
        new
    }

    /// The words of flow `id`, if its chunk has any.
    fn words(&self, id: usize) -> Option<&[AtomicU64]> {
        let chunk = self.chunks.get(id / CHUNK)?.get()?;
        chunk.get((id % CHUNK) * WORDS..(id % CHUNK + 1) * WORDS)
    }

    /// The words of flow `id`, its chunk allocated if it was not yet.
    fn words_to_write(&self, id: usize) -> Option<&[AtomicU64]> {
        if id >= self.len {
            return None;
        }
        let chunk = self.chunks[id / CHUNK]
            .get_or_init(|| (0..CHUNK * WORDS).map(|_| AtomicU64::new(0)).collect());
        chunk.get((id % CHUNK) * WORDS..(id % CHUNK + 1) * WORDS)
    }

    fn encode(&self, t: Option<Instant>) -> u64 {
        let Some(t) = t else { return 0 };
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let offset = match t.checked_duration_since(self.epoch) {
            Some(d) => nanos(d),
            None => -nanos(self.epoch.duration_since(t)),
        };
        (offset as u64) ^ SET
    }

    fn decode(&self, word: u64) -> Option<Instant> {
        if word == 0 {
            return None;
        }
        let offset = (word ^ SET) as i64;
        let d = Duration::from_nanos(offset.unsigned_abs());
        if offset >= 0 {
            self.epoch.checked_add(d)
        } else {
            self.epoch.checked_sub(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_either_side_of_the_epoch_and_none_is_zero() {
        let epoch = Instant::now();
        let c = FlowCounters::new(3, epoch);
        assert_eq!(c.get(0), Some(FlowStats::default()));
        assert_eq!(c.get(3), None);
        let before = epoch.checked_sub(Duration::from_secs(5)).unwrap_or(epoch);
        let after = epoch + Duration::from_millis(1500);
        let s = FlowStats {
            n_packets: 3,
            n_bytes: 4500,
            added: Some(before),
            last_used: Some(after),
        };
        c.set(1, s);
        assert_eq!(c.get(1), Some(s));
        c.set(
            2,
            FlowStats {
                added: Some(epoch),
                ..Default::default()
            },
        );
        assert_eq!(
            c.get(2).unwrap().added,
            Some(epoch),
            "the epoch itself is not `none`"
        );
        c.hit(1, 100, None);
        c.hit(1, 100, Some(after + Duration::from_secs(1)));
        let s = c.get(1).unwrap();
        assert_eq!((s.n_packets, s.n_bytes), (5, 4700));
        assert_eq!(s.last_used, Some(after + Duration::from_secs(1)));
    }

    #[test]
    fn only_the_chunks_of_flows_with_counters_take_memory() {
        let epoch = Instant::now();
        let c = FlowCounters::new(100_000, epoch);
        let allocated = |c: &FlowCounters| c.chunks.iter().filter(|k| k.get().is_some()).count();
        c.hit(99_999, 60, Some(epoch));
        c.set(5, FlowStats::default());
        assert_eq!(allocated(&c), 1, "the last flow's chunk only");
        let sum = c.zeroed();
        sum.absorb(&c);
        assert_eq!((allocated(&sum), sum.get(99_999).unwrap().n_bytes), (1, 60));
        assert_eq!(c.get(100_000), None);
    }

    #[test]
    fn carried_counters_follow_the_map_and_shards_add_up() {
        let epoch = Instant::now();
        let t = epoch + Duration::from_secs(2);
        let a = FlowCounters::new(2, epoch);
        let b = FlowCounters::new(2, epoch);
        a.hit(0, 10, Some(epoch));
        b.hit(0, 20, Some(t));
        b.hit(1, 5, Some(t));
        a.absorb(&b);
        let s = a.get(0).unwrap();
        assert_eq!((s.n_packets, s.n_bytes, s.last_used), (2, 30, Some(t)));
        // New table: old flow 1 first, then a new flow; flow 0 is gone.
        let later = t + Duration::from_secs(1);
        let c = a.carried(&[Some(1), None], &[], later);
        assert_eq!(c.get(0).unwrap().n_bytes, 5);
        assert_eq!(
            c.get(0).unwrap().added,
            None,
            "kept its (absent) time of adding"
        );
        assert_eq!(c.get(1).unwrap().added, Some(later), "new");
        let r = a.carried(&[Some(1), None], &[0], later);
        assert_eq!(r.get(0).unwrap().n_packets, 0, "reset");
        assert_eq!(r.cleared().get(1).unwrap().added, Some(later));
        assert_eq!(r.cleared().get(0).unwrap().n_packets, 0);
    }
}
