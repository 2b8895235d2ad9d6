//! The MAC learning table behind the `normal` action: which port each source MAC was last seen
//! on, with ageing and a bounded size; and beside the learnt entries, remote entries that a
//! control plane (BGP EVPN) installs: never aged, replaced only by that control plane.
//!
//! A learnt entry wins over a remote one (a host that shows up locally is local at once; the
//! EVPN side then claims it with a higher MAC mobility sequence number); installing a remote
//! entry forgets the learnt entry of that MAC (the control plane says it moved).
//!
//! A remote entry remembers the generation ([`crate::switch::Generation`]) of the last
//! decision that used it ([`MacTable::lookup_deciding`]), so that the control plane can change
//! a remote entry no cached decision depends on without staling every cached decision
//! ([`MacTable::apply_remote`] says whether one may depend on it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Entries installed by a control plane (EVPN): MAC -> tunnel port. Not aged, not bounded
    /// here (the control plane bounds them).
    remote: HashMap<Mac, Remote, ahash::RandomState>,
}

/// A remote entry.
#[derive(Debug)]
struct Remote {
    port: PortNo,
    /// The highest generation of a decision that used it (0: none). Written under the read
    /// lock by the deciding threads, read under the write lock by the control plane.
    decided: AtomicU64,
}

impl Remote {
    fn new(port: PortNo) -> Remote {
        Remote {
            port,
            decided: AtomicU64::new(0),
        }
    }
}

/// What [`MacTable::apply_remote`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteApplied {
    /// Entries installed or changed.
    pub set: usize,
    /// Entries removed.
    pub removed: usize,
    /// A decision of the current generation may have used an entry that changed (or a learnt
    /// entry it forgot): the caller must bump the generation.
    pub stale: bool,
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
            remote: HashMap::default(),
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

    /// The port `mac` was last seen on, unless it has aged out; else the port of its remote
    /// entry.
    pub fn lookup(&self, mac: Mac, now: Instant) -> Option<PortNo> {
        self.entries
            .get(&mac)
            .filter(|e| now.saturating_duration_since(e.seen) < self.ageing)
            .map(|e| e.port)
            .or_else(|| self.remote.get(&mac).map(|r| r.port))
    }

    /// As [`MacTable::lookup`], for a decision made in `generation` (read after the one its
    /// cached copy will carry): a remote entry it uses remembers that generation.
    pub fn lookup_deciding(&self, mac: Mac, now: Instant, generation: u64) -> Option<PortNo> {
        if let Some(e) = self
            .entries
            .get(&mac)
            .filter(|e| now.saturating_duration_since(e.seen) < self.ageing)
        {
            return Some(e.port);
        }
        let r = self.remote.get(&mac)?;
        // Most frames find their generation there already: a load, no write.
        if r.decided.load(Ordering::Relaxed) < generation {
            r.decided.fetch_max(generation, Ordering::Relaxed);
        }
        Some(r.port)
    }

    /// Makes the remote entries exactly `wanted`; a MAC whose remote port is new or changed
    /// loses its learnt entry. Returns how many entries were installed or changed, and how
    /// many removed.
    pub fn sync_remote(&mut self, wanted: &HashMap<Mac, PortNo>) -> (usize, usize) {
        let before = self.remote.len();
        self.remote.retain(|mac, _| wanted.contains_key(mac));
        let removed = before - self.remote.len();
        let mut changed = 0;
        for (&mac, &port) in wanted {
            if self.remote.get(&mac).map(|r| r.port) != Some(port) {
                self.remote.insert(mac, Remote::new(port));
                changed += 1;
                self.entries.remove(&mac);
            }
        }
        (changed, removed)
    }

    /// Sets (`Some`) or removes (`None`) the remote entries of these MACs, as
    /// [`MacTable::sync_remote`] would for them, in O(changes). `generation` is the one in
    /// force, read under this table's write lock: whether a decision of it used what changed.
    pub fn apply_remote(
        &mut self,
        changes: impl IntoIterator<Item = (Mac, Option<PortNo>)>,
        generation: u64,
    ) -> RemoteApplied {
        let mut done = RemoteApplied::default();
        for (mac, port) in changes {
            let old = self.remote.get(&mac);
            if old.map(|r| r.port) == port {
                continue;
            }
            done.stale |= old.is_some_and(|r| r.decided.load(Ordering::Relaxed) >= generation);
            match port {
                Some(port) => {
                    self.remote.insert(mac, Remote::new(port));
                    done.set += 1;
                    // A learnt entry some decision may have used goes: the MAC moved.
                    done.stale |= self.entries.remove(&mac).is_some();
                }
                None => {
                    self.remote.remove(&mac);
                    done.removed += 1;
                }
            }
        }
        done
    }

    /// Forgets the learnt entry of `mac` if it is on `port` (the control plane says the MAC
    /// moved away from there).
    pub fn forget(&mut self, mac: Mac, port: PortNo) {
        if self.entries.get(&mac).is_some_and(|e| e.port == port) {
            self.entries.remove(&mac);
        }
    }

    /// The remote entries.
    pub fn remote_entries(&self) -> impl Iterator<Item = (Mac, PortNo)> + '_ {
        self.remote.iter().map(|(m, r)| (*m, r.port))
    }

    /// Number of remote entries.
    pub fn remote_len(&self) -> usize {
        self.remote.len()
    }

    /// Copies `old`'s remote entries whose port `keep` says is still the same.
    pub fn take_remote(&mut self, old: &MacTable, keep: impl Fn(PortNo) -> bool) {
        // A new switch starts a new generation: no decision used these entries yet.
        self.remote = old
            .remote
            .iter()
            .filter(|(_, r)| keep(r.port))
            .map(|(m, r)| (*m, Remote::new(r.port)))
            .collect();
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

    /// Forgets everything learnt (remote entries stay: they belong to the control plane).
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
    fn remote_entries_are_not_aged_and_yield_to_learnt_ones() {
        let t0 = Instant::now();
        let mut t = MacTable::new(16, Duration::from_secs(300));
        t.learn(mac(1), PortNo(2), t0);
        let wanted = HashMap::from([(mac(1), PortNo(7)), (mac(2), PortNo(8))]);
        assert_eq!(t.sync_remote(&wanted), (2, 0));
        // Installing forgot the learnt entry: the control plane says where mac(1) is.
        assert_eq!(t.lookup(mac(1), t0), Some(PortNo(7)));
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(t.lookup(mac(2), later), Some(PortNo(8)), "never aged");
        // Seen locally: the learnt entry wins until the control plane says otherwise.
        t.learn(mac(2), PortNo::LOCAL, later);
        assert_eq!(t.lookup(mac(2), later), Some(PortNo::LOCAL));
        assert_eq!(
            t.sync_remote(&wanted),
            (0, 0),
            "unchanged: learnt entry kept"
        );
        assert_eq!(t.lookup(mac(2), later), Some(PortNo::LOCAL));
        t.forget(mac(2), PortNo::LOCAL);
        assert_eq!(t.lookup(mac(2), later), Some(PortNo(8)));
        t.flush();
        assert_eq!(t.remote_len(), 2, "flush leaves remote entries");
        assert_eq!(t.sync_remote(&HashMap::from([(mac(2), PortNo(9))])), (1, 1));
        assert_eq!(t.lookup(mac(1), later), None);
        let mut next = MacTable::new(16, Duration::from_secs(300));
        next.take_remote(&t, |p| p != PortNo(9));
        assert_eq!(next.remote_len(), 0);
        next.take_remote(&t, |_| true);
        assert_eq!(next.lookup(mac(2), later), Some(PortNo(9)));
    }

    #[test]
    fn a_remote_change_is_stale_only_when_a_decision_of_this_generation_used_it() {
        let t0 = Instant::now();
        let mut t = MacTable::new(16, Duration::from_secs(300));
        let r = t.apply_remote([(mac(1), Some(PortNo(7))), (mac(2), Some(PortNo(8)))], 5);
        assert_eq!(
            r,
            RemoteApplied {
                set: 2,
                removed: 0,
                stale: false
            },
            "new entries: what went there before flooded, and floods are not cached"
        );
        assert_eq!(t.lookup_deciding(mac(1), t0, 5), Some(PortNo(7)));
        assert_eq!(t.lookup(mac(2), t0), Some(PortNo(8)), "not a decision");
        let r = t.apply_remote([(mac(2), Some(PortNo(9)))], 5);
        assert!(!r.stale && r.set == 1, "mac(2) was used by no decision");
        let r = t.apply_remote([(mac(1), Some(PortNo(7)))], 5);
        assert_eq!(r, RemoteApplied::default(), "unchanged");
        assert!(
            t.apply_remote([(mac(1), None)], 5).stale,
            "used in generation 5"
        );
        t.apply_remote([(mac(1), Some(PortNo(7)))], 5);
        t.lookup_deciding(mac(1), t0, 5);
        assert!(
            !t.apply_remote([(mac(1), Some(PortNo(8)))], 6).stale,
            "used in an older generation: its cached copies are stale already"
        );
        t.learn(mac(3), PortNo::LOCAL, t0);
        assert!(
            t.apply_remote([(mac(3), Some(PortNo(7)))], 6).stale,
            "a learnt entry forgotten"
        );
        assert_eq!(t.lookup(mac(3), t0), Some(PortNo(7)));
        let full = HashMap::from([(mac(2), PortNo(9)), (mac(3), PortNo(7))]);
        assert_eq!(t.sync_remote(&full), (0, 1), "the two ways agree");
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
