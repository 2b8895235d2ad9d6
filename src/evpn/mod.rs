//! BGP EVPN for VXLAN (RFC 7432, RFC 8365), sans-IO: the routes and their UPDATEs
//! ([`route`]), the table that turns routes into remote VTEPs and MACs ([`table`]), and what a
//! session must send to bring a peer from what it was sent to what we advertise now
//! ([`Outbox`]). The daemon (`daemon/evpn.rs`) runs the sessions and applies the effects to
//! the switch.

pub mod route;
pub mod table;

use std::collections::HashMap;

use netgauze_bgp_pkt::update::BgpUpdateMessage;

pub use route::{Advert, Change, RouteKey, RouteTarget};
pub use table::{Effects, PeerId, Refusal, RemoteChanges, RemoteMac, Table, TableConfig};

/// Routes packed in one UPDATE: 100 type-2 NLRIs of 37 bytes and the attributes stay well
/// under the 4096-byte message limit.
const ROUTES_PER_UPDATE: usize = 100;

/// One session's Adj-RIB-Out: what the peer was sent.
#[derive(Debug, Default)]
pub struct Outbox {
    sent: HashMap<RouteKey, Advert>,
}

impl Outbox {
    /// An empty one, for a new session.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// The UPDATEs that take the peer from what it was sent to `routes` (withdrawals first,
    /// then announcements grouped by identical attributes), and remembers `routes` as sent.
    pub fn sync(&mut self, routes: &[(RouteKey, Advert)]) -> Vec<BgpUpdateMessage> {
        let now: HashMap<RouteKey, &Advert> = routes.iter().map(|(k, a)| (*k, a)).collect();
        let mut gone: Vec<RouteKey> = self
            .sent
            .keys()
            .filter(|k| !now.contains_key(k))
            .copied()
            .collect();
        // Type-2 first, the type-3 last: a withdrawn VTEP's MACs go before it does.
        gone.sort_by_key(|k| matches!(k, RouteKey::Imet { .. }));
        let mut updates: Vec<BgpUpdateMessage> = gone
            .chunks(ROUTES_PER_UPDATE)
            .map(route::withdraw)
            .collect();
        for k in &gone {
            self.sent.remove(k);
        }
        // Type-3 first: a peer learns the VTEP before the MACs behind it.
        let mut groups: Vec<(&Advert, bool, Vec<RouteKey>)> = Vec::new();
        for (key, advert) in routes {
            if self.sent.get(key) == Some(advert) {
                continue;
            }
            let imet = matches!(key, RouteKey::Imet { .. });
            match groups
                .iter_mut()
                .find(|(a, i, keys)| *a == advert && *i == imet && keys.len() < ROUTES_PER_UPDATE)
            {
                Some((_, _, keys)) => keys.push(*key),
                None => groups.push((advert, imet, vec![*key])),
            }
            self.sent.insert(*key, advert.clone());
        }
        groups.sort_by_key(|(_, imet, _)| !imet);
        updates.extend(
            groups
                .iter()
                .map(|(advert, _, keys)| route::announce(keys, advert)),
        );
        updates
    }

    /// Withdrawals of everything sent (on shutdown).
    pub fn withdraw_all(&mut self) -> Vec<BgpUpdateMessage> {
        self.sync(&[])
    }

    /// Forgets what was sent (a ROUTE-REFRESH asks for everything again).
    pub fn clear(&mut self) {
        self.sent.clear();
    }

    /// How many routes the peer holds from us.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether the peer holds none.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::message::{encode, Decoder};
    use netgauze_bgp_pkt::BgpMessage;
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr};

    fn table() -> Table {
        Table::new(TableConfig {
            vni: 100,
            vtep: IpAddr::V4(Ipv4Addr::new(192, 168, 77, 12)),
            router_id: Ipv4Addr::new(192, 168, 77, 12),
            route_targets: vec!["65000:100".parse().unwrap()],
            max_routes: 1000,
            max_vteps: 100,
        })
    }

    /// What a peer holds after reading `updates`, by replaying them through the decoder and
    /// `read_update` as a receiving table would.
    fn replay(held: &mut HashMap<RouteKey, u32>, updates: &[BgpUpdateMessage]) {
        for u in updates {
            let bytes = encode(&BgpMessage::Update(u.clone())).unwrap();
            assert!(bytes.len() <= 4096);
            let Ok((BgpMessage::Update(u), _)) = Decoder::new(true).decode(&bytes) else {
                panic!("our UPDATE does not decode");
            };
            for change in route::read_update(&u, false) {
                match change {
                    Change::Announce(k, a) => {
                        held.insert(k, a.seq);
                    }
                    Change::Withdraw(k) => {
                        held.remove(&k);
                    }
                    Change::Unsupported(_) => panic!("we sent an unsupported route"),
                }
            }
        }
    }

    #[test]
    fn the_peer_ends_up_holding_exactly_what_we_advertise() {
        let mut t = table();
        let mut out = Outbox::new();
        let mut held = HashMap::new();
        let macs: HashSet<_> = (0..250u16)
            .map(|i| crate::wire::ethernet::Mac([2, 0, 0, 0, (i >> 8) as u8, i as u8]))
            .collect();
        t.set_local_macs(&macs);
        let updates = out.sync(&t.local_routes());
        assert_eq!(updates.len(), 4, "type-3 alone, then 250 MACs in 3 UPDATEs");
        replay(&mut held, &updates);
        assert_eq!(held.len(), 251);
        assert!(out.sync(&t.local_routes()).is_empty(), "nothing changed");
        let fewer: HashSet<_> = macs.iter().take(10).copied().collect();
        t.set_local_macs(&fewer);
        replay(&mut held, &out.sync(&t.local_routes()));
        assert_eq!(held.len(), 11);
        replay(&mut held, &out.withdraw_all());
        assert!(held.is_empty());
        assert!(out.is_empty());
    }
}
