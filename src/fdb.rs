//! The MAC learning table behind the `normal` action: which port each source MAC was last seen
//! on, with ageing and a bounded size.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::flow::PortNo;
use crate::wire::ethernet::Mac;

/// Default time after which an entry not refreshed is forgotten (as in the kernel and OVS).
pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);
/// Default number of entries (as OVS's `mac-table-size`).
pub const DEFAULT_CAPACITY: usize = 8192;
/// How often at most the whole table is swept for aged entries.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How often at most a full table is swept before evicting the entry learnt longest ago.
const FULL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A learnt MAC, as listed by [`MacTable::entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacEntry {
    /// The port the MAC was last seen on.
    pub port: PortNo,
    /// When it was last seen.
    pub seen: Instant,
}

/// A bounded MAC table. When it is full, aged entries go first, then the one seen longest ago
/// (approximately: a second-chance queue, so each frame costs O(1)).
#[derive(Debug)]
pub struct MacTable {
    /// aHash rather than SipHash: looked up twice per frame, with keys from the network, so it
    /// is keyed at random per table (collisions cannot be planned) but several times faster.
    entries: HashMap<Mac, MacEntry, ahash::RandomState>,
    /// Eviction queue, oldest first, with when each MAC was queued; may name MACs already
    /// removed (they are skipped). An entry seen since it was queued is queued again.
    order: VecDeque<(Mac, Instant)>,
    capacity: usize,
    ageing: Duration,
    last_sweep: Option<Instant>,
}

impl MacTable {
    /// An empty table.
    pub fn new(capacity: usize, ageing: Duration) -> MacTable {
        MacTable {
            entries: HashMap::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ageing,
            last_sweep: None,
        }
    }

    /// Records that `mac` was seen on `port` at `now`.
    pub fn learn(&mut self, mac: Mac, port: PortNo, now: Instant) {
        if let Some(entry) = self.entries.get_mut(&mac) {
            entry.port = port;
            entry.seen = now;
            return;
        }
        // A full table first sheds aged entries, but sweeps at most once a second so that a
        // flood of new source MACs costs O(1) per frame, not O(table).
        if self.entries.len() >= self.capacity
            && self
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= FULL_SWEEP_INTERVAL)
        {
            self.sweep(now);
        }
        while self.entries.len() >= self.capacity {
            let Some((old, queued)) = self.order.pop_front() else {
                break;
            };
            match self.entries.get(&old) {
                None => {}
                Some(e) if e.seen > queued => self.order.push_back((old, e.seen)),
                Some(_) => {
                    self.entries.remove(&old);
                }
            }
        }
        self.entries.insert(mac, MacEntry { port, seen: now });
        self.order.push_back((mac, now));
        if self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_INTERVAL)
        {
            self.sweep(now);
        }
    }

    /// Whether `mac` is known on `port`, seen less than `within` before `now`: learning it
    /// again would change nothing that matters.
    pub fn is_fresh(&self, mac: Mac, port: PortNo, now: Instant, within: Duration) -> bool {
        self.entries
            .get(&mac)
            .is_some_and(|e| e.port == port && now.saturating_duration_since(e.seen) < within)
    }

    /// The port `mac` was last seen on, unless it has aged out.
    pub fn lookup(&self, mac: Mac, now: Instant) -> Option<PortNo> {
        self.entries
            .get(&mac)
            .filter(|e| now.saturating_duration_since(e.seen) < self.ageing)
            .map(|e| e.port)
    }

    /// When `mac`'s entry ages out, unless it is refreshed before; `None` if it is not learnt
    /// (or already aged).
    pub fn expires(&self, mac: Mac, now: Instant) -> Option<Instant> {
        self.entries
            .get(&mac)
            .map(|e| e.seen + self.ageing)
            .filter(|&t| t > now)
    }

    /// The live entries.
    pub fn entries(&self, now: Instant) -> impl Iterator<Item = (Mac, MacEntry)> + '_ {
        self.entries
            .iter()
            .filter(move |(_, e)| now.saturating_duration_since(e.seen) < self.ageing)
            .map(|(m, e)| (*m, *e))
    }

    /// Number of entries held (aged ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is learnt.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything.
    pub fn flush(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    fn sweep(&mut self, now: Instant) {
        let ageing = self.ageing;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.seen) < ageing);
        let entries = &self.entries;
        self.order.retain(|(m, _)| entries.contains_key(m));
        self.last_sweep = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        Mac([2, 0, b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn learns_moves_and_ages() {
        let t0 = Instant::now();
        let mut t = MacTable::new(16, Duration::from_secs(300));
        t.learn(mac(1), PortNo(2), t0);
        assert_eq!(t.lookup(mac(1), t0), Some(PortNo(2)));
        t.learn(mac(1), PortNo(3), t0 + Duration::from_secs(10));
        assert_eq!(
            t.lookup(mac(1), t0 + Duration::from_secs(10)),
            Some(PortNo(3))
        );
        assert_eq!(
            t.lookup(mac(1), t0 + Duration::from_secs(309)),
            Some(PortNo(3))
        );
        assert_eq!(t.lookup(mac(1), t0 + Duration::from_secs(310)), None);
        assert_eq!(t.lookup(mac(2), t0), None);
    }

    #[test]
    fn full_table_drops_aged_entries_first_then_the_oldest() {
        let t0 = Instant::now();
        let mut t = MacTable::new(3, Duration::from_secs(300));
        t.learn(mac(1), PortNo(1), t0);
        t.learn(mac(2), PortNo(1), t0 + Duration::from_secs(200));
        t.learn(mac(3), PortNo(1), t0 + Duration::from_secs(200));
        // mac(1) has aged by now: it goes, mac(2) stays.
        let later = t0 + Duration::from_secs(301);
        t.learn(mac(4), PortNo(2), later);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(mac(1), later), None);
        assert_eq!(t.lookup(mac(2), later), Some(PortNo(1)));
        // Nothing aged: the one learnt longest ago (mac(2)) goes.
        t.learn(mac(5), PortNo(2), later);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(mac(2), later), None);
        assert_eq!(t.lookup(mac(3), later), Some(PortNo(1)));
        assert_eq!(t.lookup(mac(5), later), Some(PortNo(2)));
    }

    #[test]
    fn a_busy_station_outlives_idle_ones_when_the_table_is_full() {
        let t0 = Instant::now();
        let mut t = MacTable::new(3, Duration::from_secs(300));
        t.learn(mac(1), PortNo(1), t0); // the gateway, learnt first
        t.learn(mac(2), PortNo(1), t0 + Duration::from_secs(1));
        t.learn(mac(3), PortNo(1), t0 + Duration::from_secs(2));
        t.learn(mac(1), PortNo(1), t0 + Duration::from_secs(3)); // the gateway talks again
        let now = t0 + Duration::from_secs(4);
        t.learn(mac(4), PortNo(2), now);
        assert_eq!(
            t.lookup(mac(1), now),
            Some(PortNo(1)),
            "recently seen: kept"
        );
        assert_eq!(t.lookup(mac(2), now), None, "seen longest ago: evicted");
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn stays_bounded_under_a_flood_of_new_macs() {
        let t0 = Instant::now();
        let mut t = MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING);
        for i in 0..50_000 {
            t.learn(mac(i), PortNo(2), t0);
        }
        assert_eq!(t.len(), DEFAULT_CAPACITY);
        assert!(t.order.len() <= DEFAULT_CAPACITY);
        assert_eq!(t.lookup(mac(49_999), t0), Some(PortNo(2)));
        assert_eq!(t.lookup(mac(0), t0), None);
    }
}
