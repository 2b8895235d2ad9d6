//! Editing a flow list the way `ovs-ofctl` does: `add-flow` replaces a flow with the same match
//! and priority; `del-flows` and `mod-flows` act on every flow a pattern covers (non-strict) or
//! on the one flow with exactly that match and priority (`--strict`).
//!
//! Edits produce a new list; the switch then swaps in a table built from it in one step, so a
//! frame sees either the whole old table or the whole new one.

use super::{Action, Flow, MacMatch, Match};

/// Adds `flow`, replacing a flow with the same match and priority. Returns true if it replaced one.
pub fn add(flows: &mut Vec<Flow>, flow: Flow) -> bool {
    match flows
        .iter_mut()
        .find(|f| f.priority == flow.priority && f.matches == flow.matches)
    {
        Some(existing) => {
            *existing = flow;
            true
        }
        None => {
            flows.push(flow);
            false
        }
    }
}

/// Which flows a `del-flows` or `mod-flows` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// Every flow whose match the pattern covers, at any priority (ovs-ofctl's default).
    Loose(Match),
    /// The flow with exactly this match and priority (`--strict`).
    Strict(Match, u16),
}

impl Selector {
    /// Whether the selector picks `flow`.
    pub fn selects(&self, flow: &Flow) -> bool {
        match self {
            Selector::Loose(pattern) => pattern.covers(&flow.matches),
            Selector::Strict(m, priority) => flow.priority == *priority && flow.matches == *m,
        }
    }
}

/// Deletes the selected flows; returns how many went.
pub fn delete(flows: &mut Vec<Flow>, selector: &Selector) -> usize {
    let before = flows.len();
    flows.retain(|f| !selector.selects(f));
    before - flows.len()
}

/// Replaces the actions of the selected flows; returns how many changed.
pub fn modify(flows: &mut [Flow], selector: &Selector, actions: &[Action]) -> usize {
    let mut n = 0;
    for flow in flows.iter_mut().filter(|f| selector.selects(f)) {
        flow.actions = actions.to_vec();
        n += 1;
    }
    n
}

impl Match {
    /// Whether every frame `other` matches is also matched by `self` as a pattern: each field
    /// `self` sets, `other` sets to the same value or (for prefixes and masked MACs) to a
    /// narrower one. The empty pattern covers every flow.
    pub fn covers(&self, other: &Match) -> bool {
        fn exact<T: PartialEq>(p: Option<T>, o: Option<T>) -> bool {
            p.is_none() || p == o
        }
        fn mac(p: Option<MacMatch>, o: Option<MacMatch>) -> bool {
            match (p, o) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(p), Some(o)) => (0..6).all(|i| {
                    o.mask.0[i] & p.mask.0[i] == p.mask.0[i]
                        && o.addr.0[i] & p.mask.0[i] == p.addr.0[i]
                }),
            }
        }
        fn net<N: Copy>(p: Option<N>, o: Option<N>, contains: impl Fn(&N, &N) -> bool) -> bool {
            match (p, o) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(p), Some(o)) => contains(&p, &o),
            }
        }
        exact(self.in_port, other.in_port)
            && mac(self.dl_src, other.dl_src)
            && mac(self.dl_dst, other.dl_dst)
            && exact(self.dl_type, other.dl_type)
            && exact(self.nw_proto, other.nw_proto)
            && net(self.nw_src, other.nw_src, |p, o| p.contains(o))
            && net(self.nw_dst, other.nw_dst, |p, o| p.contains(o))
            && net(self.ipv6_src, other.ipv6_src, |p, o| p.contains(o))
            && net(self.ipv6_dst, other.ipv6_dst, |p, o| p.contains(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::parse_flow;
    use crate::flow::syntax::tests::HubPorts;
    use crate::flow::PortNo;

    fn flows(rules: &[&str]) -> Vec<Flow> {
        rules
            .iter()
            .map(|r| parse_flow(r, &HubPorts).unwrap())
            .collect()
    }

    fn pattern(text: &str) -> Match {
        parse_flow(&format!("{text},actions=drop"), &HubPorts)
            .unwrap()
            .matches
    }

    const HUB: [&str; 5] = [
        "arp,actions=flood",
        "ip,nw_dst=172.31.2.0/24,actions=output:2",
        "ip,nw_dst=172.31.3.0/24,actions=output:3",
        "priority=100,ip,nw_dst=172.31.3.0/24,actions=drop",
        "ip6,ipv6_dst=fc00:0:0:3::/64,actions=output:3",
    ];

    #[test]
    fn add_replaces_the_same_match_and_priority_only() {
        let mut f = flows(&HUB);
        assert!(add(
            &mut f,
            parse_flow("ip,nw_dst=172.31.3.0/24,actions=output:2", &HubPorts).unwrap()
        ));
        assert_eq!(f.len(), 5);
        assert_eq!(f[2].actions, vec![Action::Output(PortNo(2))]);
        assert_eq!(f[3].actions, vec![], "the priority-100 twin is untouched");
        assert!(!add(
            &mut f,
            parse_flow("ip,nw_dst=172.31.4.0/24,actions=output:2", &HubPorts).unwrap()
        ));
        assert_eq!(f.len(), 6);
    }

    #[test]
    fn loose_delete_takes_every_covered_flow_at_any_priority() {
        let mut f = flows(&HUB);
        assert_eq!(
            delete(&mut f, &Selector::Loose(pattern("ip,nw_dst=172.31.3.0/24"))),
            2
        );
        assert_eq!(f.len(), 3);
        let mut f = flows(&HUB);
        assert_eq!(
            delete(&mut f, &Selector::Loose(pattern("ip,nw_dst=172.31.0.0/16"))),
            3,
            "narrower prefixes are covered"
        );
        let mut f = flows(&HUB);
        assert_eq!(
            delete(&mut f, &Selector::Loose(Match::default())),
            5,
            "an empty pattern deletes all"
        );
        let mut f = flows(&HUB);
        assert_eq!(
            delete(&mut f, &Selector::Loose(pattern("ip,nw_dst=172.31.3.7"))),
            0,
            "a wider flow is not covered"
        );
    }

    #[test]
    fn strict_delete_and_modify_need_the_exact_match_and_priority() {
        let mut f = flows(&HUB);
        let m = pattern("ip,nw_dst=172.31.3.0/24");
        assert_eq!(delete(&mut f, &Selector::Strict(m, 100)), 1);
        assert_eq!(f.len(), 4);
        assert_eq!(
            modify(
                &mut f,
                &Selector::Strict(m, 32768),
                &[Action::Output(PortNo(2))]
            ),
            1
        );
        assert_eq!(f[2].actions, vec![Action::Output(PortNo(2))]);
        assert_eq!(modify(&mut f, &Selector::Strict(m, 7), &[Action::Drop]), 0);
    }

    #[test]
    fn loose_modify_changes_actions_of_covered_flows() {
        let mut f = flows(&HUB);
        assert_eq!(
            modify(
                &mut f,
                &Selector::Loose(pattern("ip6")),
                &[Action::Output(PortNo(2))]
            ),
            1
        );
        assert_eq!(f[4].actions, vec![Action::Output(PortNo(2))]);
        assert_eq!(
            f[4].matches,
            pattern("ip6,ipv6_dst=fc00:0:0:3::/64"),
            "matches stay"
        );
    }

    #[test]
    fn covers_masked_macs_and_exact_fields() {
        let multicast = pattern("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00");
        assert!(multicast.covers(&pattern("dl_dst=33:33:00:00:00:01")));
        assert!(!multicast.covers(&pattern("dl_dst=02:00:00:00:00:01")));
        assert!(!multicast.covers(&Match::default()));
        assert!(pattern("in_port=2").covers(&pattern("ip,in_port=2,nw_dst=10.0.0.0/8")));
        assert!(!pattern("in_port=2").covers(&pattern("ip,in_port=3")));
    }
}
