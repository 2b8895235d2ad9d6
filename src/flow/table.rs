//! The flow table: picks the flow for a frame.
//!
//! Flows are grouped by priority (highest first). Inside a group, flows with a destination prefix
//! sit in a prefix trie (`prefix-trie`, one for IPv4 and ARP targets, one for IPv6), so a lookup
//! walks only the prefixes that cover the frame's destination, never the whole table; flows
//! without a destination prefix are checked one by one (they are few in practice). Among the
//! flows of the first group that has a match, the most specific wins (longest destination prefix,
//! then longest source prefix, then most exact fields), then the one added first.

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
    use crate::wire::ethernet::{Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
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
            dl_dst: Mac([2, 0, 0, 0, 0, 2]),
            dl_src: Mac([2, 0, 0, 0, 0, 1]),
            dl_type: ETHERTYPE_IPV4,
            l3: L3::Ipv4 {
                src: Ipv4Addr::new(172, 31, 1, 1),
                dst: dst.parse().unwrap(),
                proto,
            },
        }
    }

    fn v6(dst: &str, proto: u8) -> FrameKey {
        FrameKey {
            dl_dst: Mac([0x33, 0x33, 0, 0, 0, 1]),
            dl_src: Mac([2, 0, 0, 0, 0, 1]),
            dl_type: ETHERTYPE_IPV6,
            l3: L3::Ipv6 {
                src: Ipv6Addr::LOCALHOST,
                dst: dst.parse().unwrap(),
                proto,
            },
        }
    }

    fn arp(tpa: &str) -> FrameKey {
        FrameKey {
            dl_dst: Mac::BROADCAST,
            dl_src: Mac([2, 0, 0, 0, 0, 1]),
            dl_type: ETHERTYPE_ARP,
            l3: L3::Arp {
                spa: Ipv4Addr::new(172, 31, 1, 1),
                tpa: tpa.parse().unwrap(),
            },
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
}
