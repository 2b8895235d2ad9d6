//! The EVPN table of one VNI, sans-IO: routes learnt from every peer, and what follows from
//! them for the data plane: the remote VTEPs (type-3 routes: the flood list, head-end
//! replication) and the remote MACs (type-2 routes; the highest MAC mobility sequence number
//! wins, RFC 7432 section 15), against the MACs learnt locally, which vxtund advertises.
//!
//! Routes are imported when one of their route targets is ours, their VNI is ours, they are
//! not our own (next hop, originator or ORIGINATOR_ID), and the limits allow: every refusal
//! is counted by reason. A MAC is installed only while its VTEP has a type-3 route (a VTEP
//! becomes a port when its type-3 route arrives).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use super::route::{local_rd, Advert, Attributes, Change, RouteKey, RouteTarget};
use crate::wire::ethernet::Mac;

/// Which peer (session) a route came from.
pub type PeerId = usize;

/// Why a route was refused; each has a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// No route target of ours.
    RouteTarget,
    /// Another VNI.
    Vni,
    /// Our own route, reflected back.
    Own,
    /// A type-3 route whose PMSI is not ingress replication.
    TunnelType,
    /// The route limit was reached.
    RouteLimit,
    /// The VTEP limit was reached.
    VtepLimit,
    /// A malformed attribute: treated as withdrawn (RFC 7606).
    Malformed,
    /// A route type not used here (1, 4, 5).
    RouteType,
}

impl Refusal {
    /// Every reason.
    pub const ALL: [Refusal; 8] = [
        Refusal::RouteTarget,
        Refusal::Vni,
        Refusal::Own,
        Refusal::TunnelType,
        Refusal::RouteLimit,
        Refusal::VtepLimit,
        Refusal::Malformed,
        Refusal::RouteType,
    ];

    /// The label in metrics and listings.
    pub fn word(self) -> &'static str {
        match self {
            Refusal::RouteTarget => "route_target",
            Refusal::Vni => "vni",
            Refusal::Own => "own_route",
            Refusal::TunnelType => "tunnel_type",
            Refusal::RouteLimit => "route_limit",
            Refusal::VtepLimit => "vtep_limit",
            Refusal::Malformed => "malformed",
            Refusal::RouteType => "route_type",
        }
    }
}

/// The table's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// The VNI.
    pub vni: u32,
    /// Our VTEP address (next hop of our routes).
    pub vtep: IpAddr,
    /// Our BGP identifier (RD of our routes, ORIGINATOR_ID check).
    pub router_id: Ipv4Addr,
    /// Route targets imported and exported.
    pub route_targets: Vec<RouteTarget>,
    /// Most routes held, over all peers.
    pub max_routes: usize,
    /// Most remote VTEPs.
    pub max_vteps: usize,
}

/// A remote MAC as the data plane uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteMac {
    /// The VTEP behind which it is.
    pub vtep: IpAddr,
    /// Its MAC mobility sequence number.
    pub seq: u32,
}

/// What a change to the table means for the data plane and the sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// The set of remote VTEPs changed: ports come or go.
    pub vteps: bool,
    /// Remote MACs changed.
    pub macs: bool,
    /// Our advertisements changed.
    pub local: bool,
    /// Local MACs that moved to a remote VTEP (a higher sequence number): forget them in the
    /// MAC table, they are withdrawn.
    pub moved_away: Vec<Mac>,
    /// Routes refused by this change.
    pub refused: usize,
}

impl Effects {
    fn add(&mut self, other: Effects) {
        self.vteps |= other.vteps;
        self.macs |= other.macs;
        self.local |= other.local;
        self.moved_away.extend(other.moved_away);
        self.refused += other.refused;
    }
}

/// What changed in the remote MACs the data plane uses since it last asked
/// ([`Table::take_remote_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteChanges {
    /// The set of VTEPs changed (or nothing was asked yet): take [`Table::remote_macs`] whole.
    All,
    /// These MACs changed; each with its remote entry now (`None`: it has none).
    Macs(Vec<(Mac, Option<RemoteMac>)>),
}

/// The table.
#[derive(Debug)]
pub struct Table {
    config: TableConfig,
    rib: HashMap<(PeerId, RouteKey), Attributes>,
    /// MAC -> the (peer, key) of its type-2 routes.
    by_mac: HashMap<Mac, Vec<(PeerId, RouteKey)>>,
    /// VTEP -> how many type-3 routes name it.
    vteps: BTreeMap<IpAddr, usize>,
    /// The winning remote route of each MAC.
    best: HashMap<Mac, RemoteMac>,
    /// MACs learnt on the local side, with our sequence number.
    local: BTreeMap<Mac, u32>,
    refused: BTreeMap<Refusal, u64>,
    /// MACs whose remote entry may have changed since the data plane last asked.
    changed: HashSet<Mac>,
    /// The VTEPs changed since the data plane last asked: it must take everything again.
    changed_all: bool,
}

impl Table {
    /// An empty table.
    pub fn new(config: TableConfig) -> Table {
        Table {
            config,
            rib: HashMap::new(),
            by_mac: HashMap::new(),
            vteps: BTreeMap::new(),
            best: HashMap::new(),
            local: BTreeMap::new(),
            refused: BTreeMap::new(),
            changed: HashSet::new(),
            changed_all: true,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// Applies the changes of one UPDATE from `peer`.
    pub fn apply(&mut self, peer: PeerId, changes: Vec<Change>, malformed: bool) -> Effects {
        let mut effects = Effects::default();
        for change in changes {
            match change {
                Change::Announce(key, attrs) => effects.add(self.announce(peer, key, attrs)),
                Change::Withdraw(key) => {
                    if malformed {
                        self.refuse(Refusal::Malformed, &mut effects);
                    }
                    effects.add(self.remove(peer, key));
                }
                Change::Unsupported(_) => self.refuse(Refusal::RouteType, &mut effects),
            }
        }
        effects
    }

    /// Forgets every route of `peer` (its session ended).
    pub fn drop_peer(&mut self, peer: PeerId) -> Effects {
        let keys: Vec<RouteKey> = self
            .rib
            .keys()
            .filter(|(p, _)| *p == peer)
            .map(|(_, k)| *k)
            .collect();
        let mut effects = Effects::default();
        for key in keys {
            effects.add(self.remove(peer, key));
        }
        effects
    }

    /// The MACs now learnt on the local side. New ones are advertised (with the sequence
    /// number after a remote one's, RFC 7432 section 15), gone ones withdrawn.
    pub fn set_local_macs(&mut self, macs: &HashSet<Mac>) -> Effects {
        let mut effects = Effects::default();
        let gone: Vec<Mac> = self
            .local
            .keys()
            .filter(|m| !macs.contains(m))
            .copied()
            .collect();
        for mac in gone {
            self.local.remove(&mac);
            effects.local = true;
            if self.best.contains_key(&mac) {
                effects.macs = true;
                self.touch(mac);
            }
        }
        for &mac in macs {
            if self.local.contains_key(&mac) {
                continue;
            }
            let seq = self.best.get(&mac).map_or(0, |r| r.seq.saturating_add(1));
            self.local.insert(mac, seq);
            effects.local = true;
            if self.best.contains_key(&mac) {
                effects.macs = true;
                self.touch(mac);
            }
        }
        effects
    }

    /// What changed in [`Table::remote_macs`] since the last call, so that the data plane
    /// applies a MAC move in O(changes), not O(table); and forgets it.
    pub fn take_remote_changes(&mut self) -> RemoteChanges {
        let changed = std::mem::take(&mut self.changed);
        if std::mem::take(&mut self.changed_all) {
            return RemoteChanges::All;
        }
        RemoteChanges::Macs(
            changed
                .into_iter()
                .map(|mac| (mac, self.remote_mac(mac)))
                .collect(),
        )
    }

    /// The remote entry the data plane uses for `mac`, as [`Table::remote_macs`] says it.
    pub fn remote_mac(&self, mac: Mac) -> Option<RemoteMac> {
        self.best
            .get(&mac)
            .filter(|r| !self.local.contains_key(&mac) && self.vteps.contains_key(&r.vtep))
            .copied()
    }

    /// The remote VTEPs (with a type-3 route), in address order.
    pub fn remote_vteps(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vteps.keys().copied()
    }

    /// Whether `vtep` has a type-3 route.
    pub fn has_vtep(&self, vtep: IpAddr) -> bool {
        self.vteps.contains_key(&vtep)
    }

    /// The remote MACs the data plane uses: not learnt locally, behind a known VTEP.
    pub fn remote_macs(&self) -> impl Iterator<Item = (Mac, RemoteMac)> + '_ {
        self.best
            .iter()
            .filter(|(m, r)| !self.local.contains_key(m) && self.vteps.contains_key(&r.vtep))
            .map(|(m, r)| (*m, *r))
    }

    /// The local MACs and their sequence numbers.
    pub fn local_macs(&self) -> impl Iterator<Item = (Mac, u32)> + '_ {
        self.local.iter().map(|(m, s)| (*m, *s))
    }

    /// Routes held (all peers).
    pub fn route_count(&self) -> usize {
        self.rib.len()
    }

    /// Refusals by reason.
    pub fn refused(&self, reason: Refusal) -> u64 {
        self.refused.get(&reason).copied().unwrap_or(0)
    }

    /// What we advertise: our type-3 route, then a type-2 route per local MAC.
    pub fn local_routes(&self) -> Vec<(RouteKey, Advert)> {
        let c = &self.config;
        let rd = local_rd(c.router_id, c.vni);
        let advert = |seq| Advert {
            vtep: c.vtep,
            vni: c.vni,
            route_targets: c.route_targets.clone(),
            seq,
        };
        let mut routes = Vec::with_capacity(self.local.len() + 1);
        routes.push((
            RouteKey::Imet {
                rd,
                originator: c.vtep,
            },
            advert(0),
        ));
        for (&mac, &seq) in &self.local {
            routes.push((RouteKey::MacIp { rd, mac, ip: None }, advert(seq)));
        }
        routes
    }

    /// Notes that `mac`'s remote entry may have changed (unless everything will be taken).
    fn touch(&mut self, mac: Mac) {
        if !self.changed_all {
            self.changed.insert(mac);
        }
    }

    fn refuse(&mut self, reason: Refusal, effects: &mut Effects) {
        *self.refused.entry(reason).or_default() += 1;
        effects.refused += 1;
    }

    fn announce(&mut self, peer: PeerId, key: RouteKey, attrs: Attributes) -> Effects {
        let mut effects = Effects::default();
        let c = &self.config;
        let reason = if !attrs
            .route_targets
            .iter()
            .any(|rt| c.route_targets.contains(rt))
        {
            Some(Refusal::RouteTarget)
        } else if attrs.vni != c.vni {
            Some(Refusal::Vni)
        } else if attrs.next_hop == c.vtep
            || attrs.originator_id == Some(c.router_id)
            || matches!(key, RouteKey::Imet { originator, .. } if originator == c.vtep)
        {
            Some(Refusal::Own)
        } else if matches!(key, RouteKey::Imet { .. })
            && attrs
                .pmsi
                .is_some_and(|p| p.tunnel_type != super::route::INGRESS_REPLICATION)
        {
            Some(Refusal::TunnelType)
        } else if !self.rib.contains_key(&(peer, key)) && self.rib.len() >= c.max_routes {
            Some(Refusal::RouteLimit)
        } else if let RouteKey::Imet { .. } = key {
            let vtep = vtep_of(&key, &attrs);
            let known = self.vteps.contains_key(&vtep);
            (!known && self.vteps.len() >= c.max_vteps).then_some(Refusal::VtepLimit)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.refuse(reason, &mut effects);
            // A route replaced by one we refuse is gone: its old version must not linger.
            effects.add(self.remove(peer, key));
            return effects;
        }
        if let Some(old) = self.rib.remove(&(peer, key)) {
            self.unindex(peer, &key, &old, &mut effects);
        }
        self.index(peer, &key, &attrs, &mut effects);
        self.rib.insert((peer, key), attrs);
        effects
    }

    fn remove(&mut self, peer: PeerId, key: RouteKey) -> Effects {
        let mut effects = Effects::default();
        if let Some(old) = self.rib.remove(&(peer, key)) {
            self.unindex(peer, &key, &old, &mut effects);
        }
        effects
    }

    fn index(&mut self, peer: PeerId, key: &RouteKey, attrs: &Attributes, effects: &mut Effects) {
        match *key {
            RouteKey::Imet { .. } => {
                let count = self.vteps.entry(vtep_of(key, attrs)).or_default();
                *count += 1;
                if *count == 1 {
                    effects.vteps = true;
                    effects.macs = true;
                    self.changed_all = true;
                }
            }
            RouteKey::MacIp { mac, .. } => {
                self.by_mac.entry(mac).or_default().push((peer, *key));
                self.rebest(mac, Some(attrs), effects);
            }
        }
    }

    fn unindex(&mut self, peer: PeerId, key: &RouteKey, old: &Attributes, effects: &mut Effects) {
        match *key {
            RouteKey::Imet { .. } => {
                let vtep = vtep_of(key, old);
                if let Some(count) = self.vteps.get_mut(&vtep) {
                    *count -= 1;
                    if *count == 0 {
                        self.vteps.remove(&vtep);
                        effects.vteps = true;
                        effects.macs = true;
                        self.changed_all = true;
                    }
                }
            }
            RouteKey::MacIp { mac, .. } => {
                if let Some(routes) = self.by_mac.get_mut(&mac) {
                    routes.retain(|r| *r != (peer, *key));
                    if routes.is_empty() {
                        self.by_mac.remove(&mac);
                    }
                }
                self.rebest(mac, None, effects);
            }
        }
    }

    /// Picks the winning route of `mac` again: the highest sequence number, then the lowest
    /// VTEP address (RFC 7432 section 15.1). `pending` is a route being inserted.
    fn rebest(&mut self, mac: Mac, pending: Option<&Attributes>, effects: &mut Effects) {
        let candidates = self
            .by_mac
            .get(&mac)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rib.get(id))
            .chain(pending)
            .map(|a| RemoteMac {
                vtep: a.next_hop,
                seq: a.seq,
            });
        let best = candidates.min_by(|a, b| b.seq.cmp(&a.seq).then(a.vtep.cmp(&b.vtep)));
        let before = match best {
            Some(b) => self.best.insert(mac, b),
            None => self.best.remove(&mac),
        };
        if before != best {
            effects.macs = true;
            self.touch(mac);
        }
        if let (Some(b), Some(&ours)) = (best, self.local.get(&mac)) {
            if b.seq > ours {
                // The MAC moved behind another VTEP.
                self.local.remove(&mac);
                effects.local = true;
                effects.macs = true;
                self.touch(mac);
                effects.moved_away.push(mac);
            }
        }
    }
}

/// The VTEP a type-3 route names: the PMSI endpoint, else the next hop.
fn vtep_of(key: &RouteKey, attrs: &Attributes) -> IpAddr {
    match (key, attrs.pmsi) {
        (RouteKey::Imet { .. }, Some(p)) => p.endpoint,
        _ => attrs.next_hop,
    }
}

#[cfg(test)]
mod tests {
    use super::super::route::{Pmsi, INGRESS_REPLICATION};
    use super::*;
    use netgauze_bgp_pkt::nlri::RouteDistinguisher;
    use proptest::prelude::*;

    fn rt() -> RouteTarget {
        RouteTarget::As2 {
            asn: 65000,
            value: 100,
        }
    }

    fn config() -> TableConfig {
        TableConfig {
            vni: 100,
            vtep: ip(12),
            router_id: Ipv4Addr::new(192, 168, 77, 12),
            route_targets: vec![rt()],
            max_routes: 1000,
            max_vteps: 10,
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 77, n))
    }

    fn rd(n: u8) -> RouteDistinguisher {
        RouteDistinguisher::Ipv4Administrator {
            ip: Ipv4Addr::new(192, 168, 77, n),
            number: 2,
        }
    }

    fn mac(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }

    fn attrs(vtep: u8, seq: u32) -> Attributes {
        Attributes {
            next_hop: ip(vtep),
            vni: 100,
            route_targets: vec![rt()],
            seq,
            sticky: false,
            pmsi: Some(Pmsi {
                flags: 0,
                tunnel_type: INGRESS_REPLICATION,
                label: 100,
                endpoint: ip(vtep),
            }),
            originator_id: None,
            encapsulations: vec![8],
        }
    }

    fn imet(vtep: u8) -> Change {
        Change::Announce(
            RouteKey::Imet {
                rd: rd(vtep),
                originator: ip(vtep),
            },
            attrs(vtep, 0),
        )
    }

    fn type2(vtep: u8, m: u8, seq: u32) -> Change {
        Change::Announce(
            RouteKey::MacIp {
                rd: rd(vtep),
                mac: mac(m),
                ip: None,
            },
            attrs(vtep, seq),
        )
    }

    fn macs(t: &Table) -> Vec<(Mac, IpAddr, u32)> {
        let mut v: Vec<_> = t.remote_macs().map(|(m, r)| (m, r.vtep, r.seq)).collect();
        v.sort();
        v
    }

    #[test]
    fn type3_routes_make_vteps_and_type2_routes_macs_behind_them() {
        let mut t = Table::new(config());
        let e = t.apply(0, vec![type2(11, 1, 0)], false);
        assert!(e.macs && !e.vteps);
        assert!(macs(&t).is_empty(), "no VTEP yet: not installed");
        let e = t.apply(0, vec![imet(11)], false);
        assert!(e.vteps);
        assert_eq!(t.remote_vteps().collect::<Vec<_>>(), vec![ip(11)]);
        assert_eq!(macs(&t), vec![(mac(1), ip(11), 0)]);
        // The same VTEP from a second route reflector; one withdrawal keeps it.
        t.apply(1, vec![imet(11)], false);
        let key = RouteKey::Imet {
            rd: rd(11),
            originator: ip(11),
        };
        assert!(!t.apply(0, vec![Change::Withdraw(key)], false).vteps);
        assert!(t.apply(1, vec![Change::Withdraw(key)], false).vteps);
        assert_eq!(t.remote_vteps().count(), 0);
        assert!(macs(&t).is_empty());
    }

    #[test]
    fn foreign_own_and_odd_routes_are_refused_and_counted() {
        let mut t = Table::new(config());
        let mut other_rt = attrs(11, 0);
        other_rt.route_targets = vec![RouteTarget::As2 {
            asn: 65000,
            value: 200,
        }];
        let mut other_vni = attrs(11, 0);
        other_vni.vni = 200;
        let mut reflected = attrs(13, 0);
        reflected.originator_id = Some(Ipv4Addr::new(192, 168, 77, 12));
        let mut multicast = attrs(14, 0);
        multicast.pmsi = multicast.pmsi.map(|p| Pmsi {
            tunnel_type: 3,
            ..p
        });
        let key = |n| RouteKey::Imet {
            rd: rd(n),
            originator: ip(n),
        };
        t.apply(
            0,
            vec![
                Change::Announce(key(11), other_rt),
                Change::Announce(key(11), other_vni),
                Change::Announce(key(12), attrs(12, 0)),
                Change::Announce(key(13), reflected),
                Change::Announce(key(14), multicast),
                Change::Unsupported(5),
            ],
            false,
        );
        for (reason, n) in [
            (Refusal::RouteTarget, 1),
            (Refusal::Vni, 1),
            (Refusal::Own, 2),
            (Refusal::TunnelType, 1),
            (Refusal::RouteType, 1),
        ] {
            assert_eq!(t.refused(reason), n, "{reason:?}");
        }
        assert_eq!(t.route_count(), 0);
    }

    #[test]
    fn limits_bound_routes_and_vteps() {
        let mut t = Table::new(TableConfig {
            max_routes: 5,
            max_vteps: 2,
            ..config()
        });
        t.apply(0, vec![imet(1), imet(2), imet(3)], false);
        assert_eq!(t.remote_vteps().count(), 2);
        assert_eq!(t.refused(Refusal::VtepLimit), 1);
        let e = t.apply(0, (1..=5).map(|m| type2(1, m, 0)).collect(), false);
        assert_eq!(e.refused, 2);
        assert_eq!(t.route_count(), 5);
        assert_eq!(t.refused(Refusal::RouteLimit), 2);
        // Replacing a route already held is not a new one.
        t.apply(0, vec![type2(1, 1, 1)], false);
        assert_eq!(t.refused(Refusal::RouteLimit), 2);
    }

    #[test]
    fn mac_mobility_highest_sequence_wins_both_ways() {
        let mut t = Table::new(config());
        t.apply(0, vec![imet(11), imet(13), type2(11, 1, 0)], false);
        assert_eq!(macs(&t), vec![(mac(1), ip(11), 0)]);
        // The MAC moves to VTEP 13, which advertises sequence 1: it wins even before 11
        // withdraws.
        t.apply(0, vec![type2(13, 1, 1)], false);
        assert_eq!(macs(&t), vec![(mac(1), ip(13), 1)]);
        // Then it shows up here: we claim it with sequence 2.
        let e = t.set_local_macs(&HashSet::from([mac(1)]));
        assert!(e.local && e.macs);
        assert!(macs(&t).is_empty());
        let ours: Vec<_> = t.local_routes().into_iter().map(|(_, a)| a.seq).collect();
        assert_eq!(ours, vec![0, 2]);
        // It moves back behind 11 with sequence 3: we forget and withdraw ours.
        let e = t.apply(0, vec![type2(11, 1, 3)], false);
        assert_eq!(e.moved_away, vec![mac(1)]);
        assert!(e.local);
        assert_eq!(t.local_routes().len(), 1);
        assert_eq!(macs(&t), vec![(mac(1), ip(11), 3)]);
        // Equal sequence numbers: the lower VTEP address wins.
        let mut t = Table::new(config());
        t.apply(
            0,
            vec![imet(11), imet(13), type2(13, 2, 5), type2(11, 2, 5)],
            false,
        );
        assert_eq!(macs(&t), vec![(mac(2), ip(11), 5)]);
    }

    #[test]
    fn a_lost_session_takes_its_routes_along() {
        let mut t = Table::new(config());
        t.apply(0, vec![imet(11), type2(11, 1, 0)], false);
        t.apply(1, vec![imet(13), type2(13, 2, 0)], false);
        let e = t.drop_peer(0);
        assert!(e.vteps && e.macs);
        assert_eq!(macs(&t), vec![(mac(2), ip(13), 0)]);
        assert_eq!(t.route_count(), 2);
    }

    #[test]
    fn a_malformed_update_withdraws_and_is_counted() {
        let mut t = Table::new(config());
        t.apply(0, vec![imet(11)], false);
        let key = RouteKey::Imet {
            rd: rd(11),
            originator: ip(11),
        };
        let e = t.apply(0, vec![Change::Withdraw(key)], true);
        assert!(e.vteps);
        assert_eq!(t.refused(Refusal::Malformed), 1);
    }

    proptest! {
        /// Whatever the order of announcements and withdrawals, the table's views equal those
        /// computed from scratch over the routes it holds, and the limits hold.
        #[test]
        fn views_match_a_recomputation(ops in proptest::collection::vec(
            (0usize..2, 0u8..4, 0u8..6, 0u32..4, any::<bool>(), any::<bool>()), 0..60)) {
            let mut t = Table::new(TableConfig { max_routes: 12, max_vteps: 3, ..config() });
            let mut held: HashMap<(PeerId, RouteKey), Attributes> = HashMap::new();
            for (peer, vtep, m, seq, is_imet, withdraw) in ops {
                let vtep = vtep + 20;
                let change = if is_imet { imet(vtep) } else { type2(vtep, m, seq) };
                let Change::Announce(key, a) = change.clone() else { unreachable!() };
                if withdraw {
                    t.apply(peer, vec![Change::Withdraw(key)], false);
                    held.remove(&(peer, key));
                } else {
                    let before = t.route_count();
                    let refused = t.apply(peer, vec![change], false).refused;
                    if refused == 0 { held.insert((peer, key), a); } else { held.remove(&(peer, key)); }
                    prop_assert!(t.route_count() <= 12);
                    prop_assert!(refused == 0 || t.route_count() <= before);
                }
                prop_assert!(t.remote_vteps().count() <= 3);
            }
            prop_assert_eq!(t.route_count(), held.len());
            let vteps: HashSet<IpAddr> = held.iter()
                .filter(|((_, k), _)| matches!(k, RouteKey::Imet { .. }))
                .map(|(_, a)| a.next_hop).collect();
            prop_assert_eq!(t.remote_vteps().collect::<HashSet<_>>(), vteps.clone());
            let mut expect: HashMap<Mac, RemoteMac> = HashMap::new();
            for ((_, k), a) in &held {
                if let RouteKey::MacIp { mac, .. } = k {
                    let r = RemoteMac { vtep: a.next_hop, seq: a.seq };
                    let e = expect.entry(*mac).or_insert(r);
                    if (r.seq, std::cmp::Reverse(r.vtep)) > (e.seq, std::cmp::Reverse(e.vtep)) { *e = r; }
                }
            }
            expect.retain(|_, r| vteps.contains(&r.vtep));
            prop_assert_eq!(t.remote_macs().collect::<HashMap<_, _>>(), expect);
        }

        /// A data plane that applies only what `take_remote_changes` reports, after any mix of
        /// routes, withdrawals, local MACs and a dropped peer, holds exactly `remote_macs`.
        #[test]
        fn the_changes_keep_a_copy_equal_to_the_table(ops in proptest::collection::vec(
            (0usize..2, 0u8..4, 0u8..6, 0u32..4, 0u8..8, any::<bool>()), 0..80)) {
            let mut t = Table::new(TableConfig { max_routes: 30, max_vteps: 3, ..config() });
            let mut copy: HashMap<Mac, RemoteMac> = HashMap::new();
            let mut local: HashSet<Mac> = HashSet::new();
            let apply = |t: &mut Table, copy: &mut HashMap<Mac, RemoteMac>| {
                match t.take_remote_changes() {
                    RemoteChanges::All => *copy = t.remote_macs().collect(),
                    RemoteChanges::Macs(changes) => {
                        for (mac, r) in changes {
                            match r {
                                Some(r) => copy.insert(mac, r),
                                None => copy.remove(&mac),
                            };
                        }
                    }
                }
            };
            for (peer, vtep, m, seq, what, check) in ops {
                let vtep = vtep + 20;
                match what {
                    0 => { t.apply(peer, vec![imet(vtep)], false); }
                    1 => {
                        let Change::Announce(key, _) = imet(vtep) else { unreachable!() };
                        t.apply(peer, vec![Change::Withdraw(key)], false);
                    }
                    2 => {
                        let Change::Announce(key, _) = type2(vtep, m, seq) else { unreachable!() };
                        t.apply(peer, vec![Change::Withdraw(key)], false);
                    }
                    3 => {
                        if !local.remove(&mac(m)) { local.insert(mac(m)); }
                        t.set_local_macs(&local);
                    }
                    4 => { t.drop_peer(peer); }
                    _ => { t.apply(peer, vec![type2(vtep, m, seq)], false); }
                }
                local = t.local_macs().map(|(m, _)| m).collect();
                if check {
                    apply(&mut t, &mut copy);
                    prop_assert_eq!(&copy, &t.remote_macs().collect::<HashMap<_, _>>());
                }
            }
            apply(&mut t, &mut copy);
            prop_assert_eq!(&copy, &t.remote_macs().collect::<HashMap<_, _>>());
        }
    }

    #[test]
    fn a_mac_move_is_one_change_and_a_new_vtep_means_all() {
        let mut t = Table::new(config());
        assert_eq!(
            t.take_remote_changes(),
            RemoteChanges::All,
            "nothing taken yet"
        );
        t.apply(
            0,
            vec![imet(11), imet(13), type2(11, 1, 0), type2(11, 2, 0)],
            false,
        );
        assert_eq!(t.take_remote_changes(), RemoteChanges::All);
        assert_eq!(t.take_remote_changes(), RemoteChanges::Macs(vec![]));
        t.apply(0, vec![type2(13, 1, 1)], false);
        let moved = RemoteMac {
            vtep: ip(13),
            seq: 1,
        };
        assert_eq!(
            t.take_remote_changes(),
            RemoteChanges::Macs(vec![(mac(1), Some(moved))])
        );
        let Change::Announce(key, _) = type2(11, 2, 0) else {
            unreachable!()
        };
        t.apply(0, vec![Change::Withdraw(key)], false);
        assert_eq!(
            t.take_remote_changes(),
            RemoteChanges::Macs(vec![(mac(2), None)])
        );
        t.apply(0, vec![imet(14)], false);
        assert_eq!(t.take_remote_changes(), RemoteChanges::All);
    }
}
