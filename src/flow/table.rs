//! The flow table: picks the flow for a frame.
//!
//! Flows are grouped by priority (highest first). Inside a group, flows with a destination prefix
//! sit in a prefix trie (`prefix-trie`, one for IPv4 and ARP targets, one for IPv6), so a lookup
//! walks only the prefixes that cover the frame's destination, never the whole table; flows
//! without a destination prefix but with a TCP/UDP destination port sit in a hash map by that
//! port; the others are checked one by one (they are few in practice). Among the flows of the
//! first group that has a match, the most specific wins (longest destination prefix, then
//! longest source prefix, then most exact fields), then the one added first. Every candidate is
//! weighed by that rule whatever structure it came from, so the structures decide only which
//! flows are looked at, never which one wins.

use std::collections::HashMap;

use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use super::{Flow, PortNo};
use crate::wire::ethernet::{FrameKey, L3};

/// An immutable set of flows with a fast lookup. Build a new one to change the flows.
#[derive(Clone)]
pub struct FlowTable {
    flows: Vec<Flow>,
    specificity: Vec<(u8, u8, u8)>,
    groups: Vec<PriorityGroup>,
}

#[derive(Clone)]
struct PriorityGroup {
    priority: u16,
    v4_dst: PrefixMap<Ipv4Net, Vec<u32>>,
    v6_dst: PrefixMap<Ipv6Net, Vec<u32>>,
    /// Flows without a destination prefix that match one TCP/UDP destination port.
    tp_dst: HashMap<u16, Vec<u32>>,
    rest: Vec<u32>,
}

impl FlowTable {
    /// Builds the lookup structures for `flows`; a flow's index in this list is its id.
    pub fn new(flows: Vec<Flow>) -> FlowTable {
        let mut groups: Vec<PriorityGroup> = Vec::new();
        let mut order: Vec<usize> = (0..flows.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(flows[i].priority));
        for i in order {
            let flow = &flows[i];
            if groups.last().is_none_or(|g| g.priority != flow.priority) {
                groups.push(PriorityGroup {
                    priority: flow.priority,
                    v4_dst: PrefixMap::new(),
                    v6_dst: PrefixMap::new(),
                    tp_dst: HashMap::new(),
                    rest: Vec::new(),
                });
            }
            let Some(group) = groups.last_mut() else {
                continue;
            };
            let id = i as u32;
            if let Some(net) = flow.matches.nw_dst {
                group.v4_dst.entry(net).or_default().push(id);
            } else if let Some(net) = flow.matches.ipv6_dst {
                group.v6_dst.entry(net).or_default().push(id);
            } else if let Some(port) = flow.matches.tp_dst {
                group.tp_dst.entry(port).or_default().push(id);
            } else {
                group.rest.push(id);
            }
        }
        let specificity = flows.iter().map(|f| f.matches.specificity()).collect();
        FlowTable {
            flows,
            specificity,
            groups,
        }
    }

    /// The flows, in the order given (a flow's index is its id).
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// The id of the flow that decides a frame with `key` arriving on `in_port`, if any matches.
    pub fn lookup(&self, in_port: PortNo, key: &FrameKey) -> Option<usize> {
        for group in &self.groups {
            let mut best: Option<u32> = None;
            let mut consider = |id: u32| {
                let flow = &self.flows[id as usize];
                if !flow.matches.matches(in_port, key) {
                    return;
                }
                let better = match best {
                    None => true,
                    Some(b) => {
                        let (new, old) =
                            (self.specificity[id as usize], self.specificity[b as usize]);
                        new > old || (new == old && id < b)
                    }
                };
                if better {
                    best = Some(id);
                }
            };
            match key.l3 {
                L3::Ipv4 { dst, .. } | L3::Arp { tpa: dst, .. } if !group.v4_dst.is_empty() => {
                    for (_, ids) in group.v4_dst.cover(&Ipv4Net::from(dst)) {
                        ids.iter().for_each(|&id| consider(id));
                    }
                }
                L3::Ipv6 { dst, .. } if !group.v6_dst.is_empty() => {
                    for (_, ids) in group.v6_dst.cover(&Ipv6Net::from(dst)) {
                        ids.iter().for_each(|&id| consider(id));
                    }
                }
                _ => {}
            }
            if let Some(ports) = key.ports.filter(|_| !group.tp_dst.is_empty()) {
                if let Some(ids) = group.tp_dst.get(&ports.dst) {
                    ids.iter().for_each(|&id| consider(id));
                }
            }
            group.rest.iter().for_each(|&id| consider(id));
            if let Some(id) = best {
                return Some(id as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::parse_flow;
    use crate::flow::syntax::tests::HubPorts;
    use crate::flow::{Flow, Match};
    use crate::wire::ethernet::{L4Ports, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn table(rules: &[&str]) -> FlowTable {
        FlowTable::new(
            rules
                .iter()
                .map(|r| parse_flow(r, &HubPorts).unwrap())
                .collect(),
        )
    }

    fn v4(dst: &str, proto: u8) -> FrameKey {
        FrameKey {
            vlan: None,
            dl_dst: Mac([2, 0, 0, 0, 0, 2]),
            dl_src: Mac([2, 0, 0, 0, 0, 1]),
            dl_type: ETHERTYPE_IPV4,
            l3: L3::Ipv4 {
                src: Ipv4Addr::new(172, 31, 1, 1),
                dst: dst.parse().unwrap(),
                proto,
            },
            ports: None,
        }
    }

    fn v6(dst: &str, proto: u8) -> FrameKey {
        FrameKey {
            vlan: None,
            dl_dst: Mac([0x33, 0x33, 0, 0, 0, 1]),
            dl_src: Mac([2, 0, 0, 0, 0, 1]),
            dl_type: ETHERTYPE_IPV6,
            l3: L3::Ipv6 {
                src: Ipv6Addr::LOCALHOST,
                dst: dst.parse().unwrap(),
                proto,
            },
            ports: None,
        }
    }

    fn arp(tpa: &str) -> FrameKey {
        FrameKey {
            vlan: None,
            dl_dst: Mac::BROADCAST,
            dl_src: Mac([2, 0, 0, 0, 0, 1]),
            dl_type: ETHERTYPE_ARP,
            l3: L3::Arp {
                spa: Ipv4Addr::new(172, 31, 1, 1),
                tpa: tpa.parse().unwrap(),
            },
            ports: None,
        }
    }

    const HUB: [&str; 8] = [
        "arp,actions=flood",
        "ip,nw_dst=172.31.1.0/24,actions=output:1",
        "ip,nw_dst=172.31.2.0/24,actions=output:2",
        "ip,nw_dst=172.31.3.0/24,actions=output:3",
        "icmp6,ipv6_dst=ff00::/8,actions=flood",
        "ip6,ipv6_dst=fc00:0:0:1::/64,actions=output:1",
        "ip6,ipv6_dst=fc00:0:0:2::/64,actions=output:2",
        "ip6,ipv6_dst=fc00:0:0:3::/64,actions=output:3",
    ];

    #[test]
    fn scenario_hub_table_picks_each_prefix() {
        let t = table(&HUB);
        assert_eq!(t.lookup(PortNo(1), &arp("172.31.2.1")), Some(0));
        assert_eq!(t.lookup(PortNo(1), &v4("172.31.2.1", 1)), Some(2));
        assert_eq!(t.lookup(PortNo(2), &v4("172.31.3.7", 6)), Some(3));
        assert_eq!(t.lookup(PortNo(3), &v6("ff02::1:ff00:1", 58)), Some(4));
        assert_eq!(t.lookup(PortNo(2), &v6("fc00:0:0:1::1", 58)), Some(5));
        assert_eq!(t.lookup(PortNo(1), &v6("fc00:0:0:3::1", 6)), Some(7));
        assert_eq!(t.lookup(PortNo(1), &v4("10.0.0.1", 1)), None);
        assert_eq!(
            t.lookup(PortNo(1), &v6("ff02::1", 17)),
            None,
            "multicast UDP is not icmp6"
        );
    }

    #[test]
    fn longest_prefix_wins_within_a_priority() {
        let t = table(&[
            "ip,nw_dst=0.0.0.0/0,actions=output:1",
            "ip,nw_dst=172.31.0.0/16,actions=output:2",
            "ip,nw_dst=172.31.3.0/24,actions=output:3",
            "ip,actions=drop",
        ]);
        assert_eq!(t.lookup(PortNo(1), &v4("172.31.3.9", 1)), Some(2));
        assert_eq!(t.lookup(PortNo(1), &v4("172.31.9.9", 1)), Some(1));
        assert_eq!(
            t.lookup(PortNo(1), &v4("8.8.8.8", 1)),
            Some(0),
            "/0 beats no prefix by order"
        );
    }

    #[test]
    fn highest_priority_wins_over_longer_prefix() {
        let t = table(&[
            "ip,nw_dst=172.31.3.0/24,actions=output:3",
            "priority=40000,ip,nw_dst=172.31.0.0/16,actions=output:2",
            "priority=50000,icmp,actions=drop",
        ]);
        assert_eq!(t.lookup(PortNo(1), &v4("172.31.3.9", 1)), Some(2));
        assert_eq!(t.lookup(PortNo(1), &v4("172.31.3.9", 6)), Some(1));
    }

    #[test]
    fn a_longer_prefix_that_fails_other_fields_falls_back_to_a_shorter_one() {
        let t = table(&[
            "ip,in_port=2,nw_dst=172.31.3.0/24,actions=output:3",
            "ip,nw_dst=172.31.0.0/16,actions=output:1",
        ]);
        assert_eq!(t.lookup(PortNo(2), &v4("172.31.3.9", 1)), Some(0));
        assert_eq!(t.lookup(PortNo(1), &v4("172.31.3.9", 1)), Some(1));
    }

    #[test]
    fn equal_flows_resolve_to_the_first_given() {
        let t = table(&["ip,actions=output:2", "ip,actions=output:3"]);
        assert_eq!(t.lookup(PortNo(1), &v4("1.2.3.4", 1)), Some(0));
    }

    #[test]
    fn arp_flows_match_the_target_address() {
        let t = table(&[
            "arp,nw_dst=172.31.3.0/24,actions=output:3",
            "arp,actions=flood",
        ]);
        assert_eq!(t.lookup(PortNo(1), &arp("172.31.3.1")), Some(0));
        assert_eq!(t.lookup(PortNo(1), &arp("172.31.2.1")), Some(1));
        assert_eq!(
            t.lookup(PortNo(1), &v4("172.31.3.1", 1)),
            None,
            "arp flows do not match IP"
        );
    }

    #[test]
    fn large_table_still_finds_the_longest_prefix() {
        let mut rules: Vec<String> = (0..5000u32)
            .map(|i| {
                format!(
                    "ip,nw_dst=10.{}.{}.0/24,actions=output:{}",
                    i >> 8,
                    i & 0xff,
                    2 + i % 2
                )
            })
            .collect();
        rules.push("ip,nw_dst=10.0.0.0/8,actions=output:1".into());
        let t = FlowTable::new(
            rules
                .iter()
                .map(|r| parse_flow(r, &HubPorts).unwrap())
                .collect(),
        );
        assert_eq!(
            t.lookup(PortNo(1), &v4("10.19.136.5", 1)),
            Some((19 << 8) + 136)
        );
        assert_eq!(t.lookup(PortNo(1), &v4("10.200.0.1", 1)), Some(5000));
    }

    fn with_ports(mut key: FrameKey, src: u16, dst: u16) -> FrameKey {
        key.ports = Some(L4Ports { src, dst });
        key
    }

    #[test]
    fn port_flows_match_only_frames_with_those_ports() {
        let t = table(&[
            "tcp,tp_dst=80,actions=output:2",
            "tcp,tp_src=9,tp_dst=80,actions=output:3",
            "udp,tp_dst=80,actions=output:1",
            "tcp,nw_dst=172.31.3.0/24,tp_dst=22,actions=drop",
            "tcp6,tp_dst=80,actions=output:3",
            "ip,actions=normal",
        ]);
        let tcp = |dst, sp, dp| with_ports(v4(dst, 6), sp, dp);
        assert_eq!(t.lookup(PortNo(1), &tcp("10.0.0.1", 5000, 80)), Some(0));
        assert_eq!(
            t.lookup(PortNo(1), &tcp("10.0.0.1", 9, 80)),
            Some(1),
            "two exact ports beat one"
        );
        assert_eq!(
            t.lookup(PortNo(1), &with_ports(v4("10.0.0.1", 17), 5000, 80)),
            Some(2)
        );
        assert_eq!(t.lookup(PortNo(1), &tcp("172.31.3.1", 1, 22)), Some(3));
        assert_eq!(t.lookup(PortNo(1), &tcp("172.31.2.1", 1, 22)), Some(5));
        assert_eq!(
            t.lookup(PortNo(1), &with_ports(v6("fc00::1", 6), 1, 80)),
            Some(4)
        );
        assert_eq!(
            t.lookup(PortNo(1), &v4("10.0.0.1", 6)),
            Some(5),
            "a frame without ports (a later fragment) never matches a port flow"
        );
    }

    #[test]
    fn many_port_flows_still_find_the_port() {
        let rules: Vec<String> = (0..20_000u32)
            .map(|i| {
                let proto = if i % 2 == 0 { "tcp" } else { "udp" };
                format!("{proto},tp_dst={},actions=output:{}", i / 2, 2 + i % 2)
            })
            .collect();
        let t = FlowTable::new(
            rules
                .iter()
                .map(|r| parse_flow(r, &HubPorts).unwrap())
                .collect(),
        );
        assert_eq!(
            t.lookup(PortNo(1), &with_ports(v4("1.2.3.4", 17), 1, 4321)),
            Some(8643)
        );
        assert_eq!(
            t.lookup(PortNo(1), &with_ports(v4("1.2.3.4", 6), 1, 10_000)),
            None
        );
    }

    /// Flows and frames over small domains, so that matches, ties and fall-backs are common.
    fn arb_match() -> impl Strategy<Value = Match> {
        let net = prop_oneof![
            Just("10.0.0.0/8"),
            Just("10.1.0.0/16"),
            Just("10.1.2.0/24"),
            Just("10.1.2.3/32"),
            Just("10.2.0.0/16"),
        ]
        .prop_map(|n| n.parse::<Ipv4Net>().unwrap());
        let port = prop::option::of(1u16..=3);
        (
            prop::option::of(1u32..=2),
            prop::option::of(Just(ETHERTYPE_IPV4)),
            prop::option::of(prop_oneof![Just(6u8), Just(17)]),
            prop::option::of(net.clone()),
            prop::option::of(net),
            port.clone(),
            port,
        )
            .prop_map(
                |(in_port, dl_type, nw_proto, nw_src, nw_dst, tp_src, tp_dst)| Match {
                    in_port: in_port.map(PortNo),
                    dl_type,
                    nw_proto,
                    nw_src,
                    nw_dst,
                    tp_src,
                    tp_dst,
                    ..Match::default()
                },
            )
    }

    fn arb_key() -> impl Strategy<Value = (PortNo, FrameKey)> {
        let addr = prop_oneof![
            Just("10.1.2.3"),
            Just("10.1.2.4"),
            Just("10.1.9.9"),
            Just("10.2.0.1"),
            Just("11.0.0.1"),
        ];
        (
            1u32..=2,
            addr.clone(),
            addr,
            prop_oneof![Just(6u8), Just(17), Just(1)],
            prop::option::of((1u16..=3, 1u16..=3)),
        )
            .prop_map(|(in_port, src, dst, proto, ports)| {
                let mut key = v4(dst, proto);
                if let L3::Ipv4 { src: s, .. } = &mut key.l3 {
                    *s = src.parse().unwrap();
                }
                key.ports = ports.map(|(src, dst)| L4Ports { src, dst });
                (PortNo(in_port), key)
            })
    }

    /// What the table must answer: the highest priority, then most specific, then first flow.
    fn brute_force(flows: &[Flow], in_port: PortNo, key: &FrameKey) -> Option<usize> {
        flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.matches.matches(in_port, key))
            .max_by_key(|(i, f)| (f.priority, f.matches.specificity(), std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
    }

    proptest! {
        #[test]
        fn lookup_agrees_with_a_scan_of_every_flow(
            flows in prop::collection::vec(
                (1u16..=3, arb_match()).prop_map(|(p, m)| Flow::new(p, m, vec![])),
                0..40,
            ),
            keys in prop::collection::vec(arb_key(), 1..20),
        ) {
            let t = FlowTable::new(flows.clone());
            for (in_port, key) in keys {
                prop_assert_eq!(
                    t.lookup(in_port, &key),
                    brute_force(&flows, in_port, &key),
                    "{:?} {:?}", in_port, key
                );
            }
        }
    }
}
