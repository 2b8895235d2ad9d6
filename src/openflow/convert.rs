//! Between OpenFlow 1.3's wire forms and vxtund's flows: OXM matches and [`Match`],
//! instructions and [`flow::Action`]s, FLOW_MOD and [`Flow`], and back for the flow stats.
//!
//! Everything vxtund's table cannot do is refused here with the OpenFlow error that fits, so
//! that nothing half-understood reaches the table: fields outside the supported set
//! (BAD_MATCH/BAD_FIELD), non-prefix IP masks (BAD_MATCH/BAD_MASK), missing prerequisites
//! (BAD_MATCH/BAD_PREREQ), instructions other than APPLY_ACTIONS (BAD_INSTRUCTION), and actions
//! other than OUTPUT to a port or to IN_PORT, FLOOD, ALL, NORMAL and LOCAL (BAD_ACTION).
//!
//! vxtund's TAP is port 1; OpenFlow's LOCAL names it too. `actions=LOCAL` keeps its name
//! ([`flow::Action::Local`]) so that it comes back as written; `in_port=LOCAL` becomes
//! `in_port=1`.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{
    Action as WireAction, FlowMod, FlowStats, Instruction, Oxm, OFPBAC_BAD_OUT_GROUP,
    OFPBAC_BAD_OUT_PORT, OFPBAC_BAD_SET_TYPE, OFPBAC_BAD_TYPE, OFPBIC_BAD_TABLE_ID,
    OFPBIC_UNKNOWN_INST, OFPBIC_UNSUP_INST, OFPBIC_UNSUP_METADATA, OFPBMC_BAD_FIELD,
    OFPBMC_BAD_MASK, OFPBMC_BAD_PREREQ, OFPBMC_BAD_VALUE, OFPET_BAD_ACTION, OFPET_BAD_INSTRUCTION,
    OFPET_BAD_MATCH, OFPET_FLOW_MOD_FAILED, OFPFMFC_BAD_FLAGS, OFPP_ALL, OFPP_CONTROLLER,
    OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_MAX, OFPP_NORMAL, OFPXMC_OPENFLOW_BASIC,
    OFPXMT_OFB_ARP_SPA, OFPXMT_OFB_ARP_TPA, OFPXMT_OFB_ETH_DST, OFPXMT_OFB_ETH_SRC,
    OFPXMT_OFB_ETH_TYPE, OFPXMT_OFB_IN_PORT, OFPXMT_OFB_IPV4_DST, OFPXMT_OFB_IPV4_SRC,
    OFPXMT_OFB_IPV6_DST, OFPXMT_OFB_IPV6_SRC, OFPXMT_OFB_IP_PROTO, OFPXMT_OFB_TCP_DST,
    OFPXMT_OFB_TCP_SRC, OFPXMT_OFB_UDP_DST, OFPXMT_OFB_UDP_SRC, OFPXMT_OFB_VLAN_VID,
};
use crate::flow::{self, Flow, MacMatch, Match, PortNo, VlanMatch};
use crate::wire::ethernet::{Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Every `OFPFF_*` flag OpenFlow 1.3 defines.
const KNOWN_FLAGS: u16 = Flow::SEND_FLOW_REM
    | Flow::CHECK_OVERLAP
    | Flow::RESET_COUNTS
    | Flow::NO_PKT_COUNTS
    | Flow::NO_BYT_COUNTS;

/// The fields vxtund matches on, as `(field, maskable)`: what the TABLE_FEATURES reply lists.
pub const SUPPORTED_FIELDS: [(u8, bool); 16] = [
    (OFPXMT_OFB_IN_PORT, false),
    (OFPXMT_OFB_VLAN_VID, true),
    (OFPXMT_OFB_ETH_DST, true),
    (OFPXMT_OFB_ETH_SRC, true),
    (OFPXMT_OFB_ETH_TYPE, false),
    (OFPXMT_OFB_IP_PROTO, false),
    (OFPXMT_OFB_IPV4_SRC, true),
    (OFPXMT_OFB_IPV4_DST, true),
    (OFPXMT_OFB_TCP_SRC, false),
    (OFPXMT_OFB_TCP_DST, false),
    (OFPXMT_OFB_UDP_SRC, false),
    (OFPXMT_OFB_UDP_DST, false),
    (OFPXMT_OFB_ARP_SPA, true),
    (OFPXMT_OFB_ARP_TPA, true),
    (OFPXMT_OFB_IPV6_SRC, true),
    (OFPXMT_OFB_IPV6_DST, true),
];

/// An OpenFlow error to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfError {
    /// `OFPET_*`.
    pub err_type: u16,
    /// The code within the type.
    pub code: u16,
}

impl OfError {
    /// The error `(err_type, code)`.
    pub const fn new(err_type: u16, code: u16) -> OfError {
        OfError { err_type, code }
    }
}

const fn bad_match(code: u16) -> OfError {
    OfError::new(OFPET_BAD_MATCH, code)
}

/// vxtund's port for an OpenFlow port number in a match: LOCAL is port 1, reserved ports none.
pub fn port_from_wire(port: u32) -> Option<PortNo> {
    match port {
        OFPP_LOCAL => Some(PortNo::LOCAL),
        1..=OFPP_MAX => Some(PortNo(port)),
        _ => None,
    }
}

/// A match from its OXM fields.
pub fn match_from_wire(fields: &[Oxm]) -> Result<Match, OfError> {
    let mut m = Match::default();
    // Which protocol the port fields asked for, to check against ip_proto.
    let mut l4: Option<u8> = None;
    let mut arp = false;
    let mut v4 = false;
    for oxm in fields {
        if oxm.class != OFPXMC_OPENFLOW_BASIC {
            return Err(bad_match(OFPBMC_BAD_FIELD));
        }
        let value = oxm.value.as_slice();
        let mask = oxm.mask.as_deref();
        match oxm.field {
            OFPXMT_OFB_IN_PORT => {
                let port = port_from_wire(be32(value)).ok_or(bad_match(OFPBMC_BAD_VALUE))?;
                m.in_port = Some(port);
            }
            OFPXMT_OFB_ETH_DST => m.dl_dst = Some(mac_match(value, mask)),
            OFPXMT_OFB_ETH_SRC => m.dl_src = Some(mac_match(value, mask)),
            OFPXMT_OFB_ETH_TYPE => m.dl_type = Some(be16(value)),
            OFPXMT_OFB_VLAN_VID => {
                let mask = mask.map_or(VlanMatch::ALL, be16) & VlanMatch::ALL;
                let value = be16(value);
                // A VID without OFPVID_PRESENT, where the mask asks for presence, matches
                // no frame: OpenFlow calls it a bad value.
                let vid_without_tag = mask & VlanMatch::PRESENT != 0
                    && value & VlanMatch::PRESENT == 0
                    && value & mask != 0;
                if value & !VlanMatch::ALL != 0 || vid_without_tag {
                    return Err(bad_match(OFPBMC_BAD_VALUE));
                }
                m.vlan_vid = Some(VlanMatch {
                    value: value & mask,
                    mask,
                });
            }
            OFPXMT_OFB_IP_PROTO => m.nw_proto = value.first().copied(),
            OFPXMT_OFB_IPV4_SRC | OFPXMT_OFB_ARP_SPA => {
                m.nw_src = Some(v4_net(value, mask)?);
                arp |= oxm.field == OFPXMT_OFB_ARP_SPA;
                v4 |= oxm.field == OFPXMT_OFB_IPV4_SRC;
            }
            OFPXMT_OFB_IPV4_DST | OFPXMT_OFB_ARP_TPA => {
                m.nw_dst = Some(v4_net(value, mask)?);
                arp |= oxm.field == OFPXMT_OFB_ARP_TPA;
                v4 |= oxm.field == OFPXMT_OFB_IPV4_DST;
            }
            OFPXMT_OFB_IPV6_SRC => m.ipv6_src = Some(v6_net(value, mask)?),
            OFPXMT_OFB_IPV6_DST => m.ipv6_dst = Some(v6_net(value, mask)?),
            OFPXMT_OFB_TCP_SRC | OFPXMT_OFB_TCP_DST | OFPXMT_OFB_UDP_SRC | OFPXMT_OFB_UDP_DST => {
                let proto = match oxm.field {
                    OFPXMT_OFB_TCP_SRC | OFPXMT_OFB_TCP_DST => PROTO_TCP,
                    _ => PROTO_UDP,
                };
                if l4.is_some_and(|p| p != proto) {
                    return Err(bad_match(OFPBMC_BAD_PREREQ));
                }
                l4 = Some(proto);
                match oxm.field {
                    OFPXMT_OFB_TCP_SRC | OFPXMT_OFB_UDP_SRC => m.tp_src = Some(be16(value)),
                    _ => m.tp_dst = Some(be16(value)),
                }
            }
            _ => return Err(bad_match(OFPBMC_BAD_FIELD)),
        }
    }
    let ip = matches!(m.dl_type, Some(ETHERTYPE_IPV4 | ETHERTYPE_IPV6));
    let prerequisites_met = (m.nw_proto.is_none() || ip)
        && (!v4 || m.dl_type == Some(ETHERTYPE_IPV4))
        && (!arp || m.dl_type == Some(ETHERTYPE_ARP))
        && (m.ipv6_src.is_none() && m.ipv6_dst.is_none() || m.dl_type == Some(ETHERTYPE_IPV6))
        && l4.is_none_or(|p| ip && m.nw_proto == Some(p));
    if !prerequisites_met {
        return Err(bad_match(OFPBMC_BAD_PREREQ));
    }
    m.normalize();
    Ok(m)
}

/// The OXM fields of a match, prerequisites first.
pub fn match_to_wire(m: &Match) -> Vec<Oxm> {
    let mut out = Vec::new();
    if let Some(p) = m.in_port {
        out.push(Oxm::in_port(p.0));
    }
    if let Some(d) = m.dl_dst {
        out.push(match d.mask == Mac::BROADCAST {
            true => Oxm::eth_dst(d.addr.0),
            false => Oxm::eth_dst_masked(d.addr.0, d.mask.0),
        });
    }
    if let Some(s) = m.dl_src {
        out.push(match s.mask == Mac::BROADCAST {
            true => Oxm::eth_src(s.addr.0),
            false => Oxm::eth_src_masked(s.addr.0, s.mask.0),
        });
    }
    if let Some(t) = m.dl_type {
        out.push(Oxm::eth_type(t));
    }
    if let Some(v) = m.vlan_vid {
        let value = v.value.to_be_bytes().to_vec();
        out.push(match v.mask == VlanMatch::ALL {
            true => Oxm::basic(OFPXMT_OFB_VLAN_VID, value),
            false => Oxm::basic_masked(OFPXMT_OFB_VLAN_VID, value, v.mask.to_be_bytes().to_vec()),
        });
    }
    if let Some(p) = m.nw_proto {
        out.push(Oxm::ip_proto(p));
    }
    let arp = m.dl_type == Some(ETHERTYPE_ARP);
    for (net, src) in [(m.nw_src, true), (m.nw_dst, false)] {
        let Some(net) = net.filter(|n| n.prefix_len() > 0) else {
            continue;
        };
        let (addr, mask) = (net.network(), net.netmask());
        let exact = net.prefix_len() == 32;
        out.push(match (arp, src, exact) {
            (true, true, _) => masked_or_exact(Oxm::arp_spa(addr), exact, &mask.octets()),
            (true, false, _) => masked_or_exact(Oxm::arp_tpa(addr), exact, &mask.octets()),
            (false, true, true) => Oxm::ipv4_src(addr),
            (false, true, false) => Oxm::ipv4_src_masked(addr, mask),
            (false, false, true) => Oxm::ipv4_dst(addr),
            (false, false, false) => Oxm::ipv4_dst_masked(addr, mask),
        });
    }
    for (net, src) in [(m.ipv6_src, true), (m.ipv6_dst, false)] {
        let Some(net) = net.filter(|n| n.prefix_len() > 0) else {
            continue;
        };
        let (addr, mask) = (net.network(), net.netmask());
        out.push(match (src, net.prefix_len() == 128) {
            (true, true) => Oxm::ipv6_src(addr),
            (true, false) => Oxm::ipv6_src_masked(addr, mask),
            (false, true) => Oxm::ipv6_dst(addr),
            (false, false) => Oxm::ipv6_dst_masked(addr, mask),
        });
    }
    let udp = m.nw_proto == Some(PROTO_UDP);
    if let Some(p) = m.tp_src {
        out.push(if udp {
            Oxm::udp_src(p)
        } else {
            Oxm::tcp_src(p)
        });
    }
    if let Some(p) = m.tp_dst {
        out.push(if udp {
            Oxm::udp_dst(p)
        } else {
            Oxm::tcp_dst(p)
        });
    }
    out
}

fn masked_or_exact(mut oxm: Oxm, exact: bool, mask: &[u8]) -> Oxm {
    if !exact {
        oxm.mask = Some(mask.to_vec());
    }
    oxm
}

/// The actions of a flow from FLOW_MOD instructions: one APPLY_ACTIONS at most; none is drop.
/// `exists` tells which port numbers are ports of this switch.
pub fn actions_from_wire(
    instructions: &[Instruction],
    exists: &dyn Fn(PortNo) -> bool,
) -> Result<Vec<flow::Action>, OfError> {
    let mut out = Vec::new();
    let mut applied = false;
    for inst in instructions {
        let list = match inst {
            Instruction::ApplyActions(list) if !applied => list,
            Instruction::GotoTable(_) => {
                return Err(OfError::new(OFPET_BAD_INSTRUCTION, OFPBIC_BAD_TABLE_ID))
            }
            Instruction::WriteMetadata { .. } => {
                return Err(OfError::new(OFPET_BAD_INSTRUCTION, OFPBIC_UNSUP_METADATA))
            }
            Instruction::Unknown { .. } => {
                return Err(OfError::new(OFPET_BAD_INSTRUCTION, OFPBIC_UNKNOWN_INST))
            }
            _ => return Err(OfError::new(OFPET_BAD_INSTRUCTION, OFPBIC_UNSUP_INST)),
        };
        applied = true;
        for action in list {
            out.push(action_from_wire(action, exists)?);
        }
    }
    Ok(out)
}

/// One action in a flow. `TABLE` is refused: it is for PACKET_OUT only.
pub fn action_from_wire(
    action: &WireAction,
    exists: &dyn Fn(PortNo) -> bool,
) -> Result<flow::Action, OfError> {
    let bad = |code| OfError::new(OFPET_BAD_ACTION, code);
    match action {
        WireAction::Output { port, max_len } => match *port {
            OFPP_IN_PORT => Ok(flow::Action::InPort),
            OFPP_FLOOD => Ok(flow::Action::Flood),
            OFPP_ALL => Ok(flow::Action::All),
            OFPP_NORMAL => Ok(flow::Action::Normal),
            OFPP_LOCAL => Ok(flow::Action::Local),
            OFPP_CONTROLLER => Ok(flow::Action::Controller(*max_len)),
            p if (1..=OFPP_MAX).contains(&p) && exists(PortNo(p)) => {
                Ok(flow::Action::Output(PortNo(p)))
            }
            _ => Err(bad(OFPBAC_BAD_OUT_PORT)),
        },
        WireAction::Group(_) => Err(bad(OFPBAC_BAD_OUT_GROUP)),
        WireAction::SetField(_) => Err(bad(OFPBAC_BAD_SET_TYPE)),
        WireAction::Other { .. } => Err(bad(OFPBAC_BAD_TYPE)),
    }
}

/// The instructions that carry `actions`: none for drop, else one APPLY_ACTIONS.
pub fn actions_to_wire(actions: &[flow::Action]) -> Vec<Instruction> {
    if actions.is_empty() {
        return Vec::new();
    }
    let output = |port| WireAction::Output { port, max_len: 0 };
    let list = actions
        .iter()
        .filter_map(|a| match a {
            flow::Action::Output(p) => Some(output(p.0)),
            flow::Action::Local => Some(output(OFPP_LOCAL)),
            flow::Action::InPort => Some(output(OFPP_IN_PORT)),
            flow::Action::Flood => Some(output(OFPP_FLOOD)),
            flow::Action::All => Some(output(OFPP_ALL)),
            flow::Action::Normal => Some(output(OFPP_NORMAL)),
            flow::Action::Controller(max_len) => Some(WireAction::Output {
                port: OFPP_CONTROLLER,
                max_len: *max_len,
            }),
            flow::Action::Drop => None,
        })
        .collect();
    vec![Instruction::ApplyActions(list)]
}

/// The flow a FLOW_MOD describes (its match, actions, priority, cookie, timeouts and flags).
pub fn flow_from_wire(fm: &FlowMod, exists: &dyn Fn(PortNo) -> bool) -> Result<Flow, OfError> {
    if fm.flags & !KNOWN_FLAGS != 0 {
        return Err(OfError::new(OFPET_FLOW_MOD_FAILED, OFPFMFC_BAD_FLAGS));
    }
    Ok(Flow {
        priority: fm.priority,
        matches: match_from_wire(&fm.match_)?,
        actions: actions_from_wire(&fm.instructions, exists)?,
        cookie: fm.cookie,
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        flags: fm.flags,
    })
}

/// A flow's entry in a FLOW stats reply.
pub fn flow_stats(flow: &Flow, packets: u64, bytes: u64, age: std::time::Duration) -> FlowStats {
    FlowStats {
        table_id: 0,
        duration_sec: u32::try_from(age.as_secs()).unwrap_or(u32::MAX),
        duration_nsec: age.subsec_nanos(),
        priority: flow.priority,
        idle_timeout: flow.idle_timeout,
        hard_timeout: flow.hard_timeout,
        flags: flow.flags,
        cookie: flow.cookie,
        packet_count: packets,
        byte_count: bytes,
        match_: match_to_wire(&flow.matches),
        instructions: actions_to_wire(&flow.actions),
    }
}

fn be16(v: &[u8]) -> u16 {
    v.iter()
        .take(2)
        .fold(0, |acc, &b| (acc << 8) | u16::from(b))
}

fn be32(v: &[u8]) -> u32 {
    v.iter()
        .take(4)
        .fold(0, |acc, &b| (acc << 8) | u32::from(b))
}

fn mac_match(value: &[u8], mask: Option<&[u8]>) -> MacMatch {
    let mut addr = [0u8; 6];
    let mut m = [0xffu8; 6];
    addr.iter_mut().zip(value).for_each(|(a, v)| *a = *v);
    if let Some(mask) = mask {
        m.iter_mut().zip(mask).for_each(|(a, v)| *a = *v);
    }
    for i in 0..6 {
        addr[i] &= m[i];
    }
    MacMatch {
        addr: Mac(addr),
        mask: Mac(m),
    }
}

/// A prefix from an address and an optional mask; a mask that is not a prefix is refused.
fn v4_net(value: &[u8], mask: Option<&[u8]>) -> Result<Ipv4Net, OfError> {
    let addr = Ipv4Addr::from(be32(value));
    let len = match mask {
        None => 32,
        Some(mask) => prefix_len(mask)?,
    };
    Ipv4Net::new(addr, len)
        .map(|n| n.trunc())
        .map_err(|_| bad_match(OFPBMC_BAD_MASK))
}

fn v6_net(value: &[u8], mask: Option<&[u8]>) -> Result<Ipv6Net, OfError> {
    let mut octets = [0u8; 16];
    octets.iter_mut().zip(value).for_each(|(a, v)| *a = *v);
    let len = match mask {
        None => 128,
        Some(mask) => prefix_len(mask)?,
    };
    Ipv6Net::new(Ipv6Addr::from(octets), len)
        .map(|n| n.trunc())
        .map_err(|_| bad_match(OFPBMC_BAD_MASK))
}

/// The prefix length of a contiguous mask (ones, then zeros).
fn prefix_len(mask: &[u8]) -> Result<u8, OfError> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let contiguous = mask.iter().enumerate().all(|(i, &b)| {
        let before = (i as u32) * 8;
        let want = ones.saturating_sub(before).min(8);
        b == (0xffu16 << (8 - want)) as u8
    });
    match contiguous {
        true => u8::try_from(ones).map_err(|_| bad_match(OFPBMC_BAD_MASK)),
        false => Err(bad_match(OFPBMC_BAD_MASK)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::parse_flow;
    use crate::flow::syntax::tests::HubPorts;

    fn flow(text: &str) -> Flow {
        parse_flow(text, &HubPorts).unwrap()
    }

    #[test]
    fn every_supported_match_goes_to_the_wire_and_back() {
        for text in [
            "actions=drop",
            "in_port=2,actions=output:3",
            "dl_dst=02:00:00:00:00:01,actions=normal",
            "dl_src=01:00:00:00:00:00/01:00:00:00:00:00,actions=flood",
            "arp,actions=flood",
            "arp,arp_tpa=172.31.1.0/24,actions=output:1",
            "arp,arp_spa=172.31.1.7,actions=all",
            "ip,nw_dst=172.31.2.0/24,actions=output:2",
            "ip,nw_src=10.0.0.1,nw_dst=172.31.2.0/24,actions=output:2",
            "icmp6,ipv6_dst=ff00::/8,actions=flood",
            "ip6,ipv6_src=fc00:0:0:1::1,ipv6_dst=fc00:0:0:2::/64,actions=LOCAL",
            "tcp,nw_dst=172.31.3.0/24,tp_dst=80,actions=output:3",
            "udp6,tp_src=53,actions=in_port",
            "vlan_tci=0x0000,dl_dst=02:00:00:00:00:01,actions=output:2",
            "dl_vlan=100,actions=flood",
            "vlan_tci=0x1000/0x1000,actions=drop",
            "priority=0,actions=CONTROLLER:128",
            "arp,actions=controller,flood",
            "priority=7,cookie=0x2a,idle_timeout=10,hard_timeout=20,send_flow_rem,tcp,tp_src=22,actions=output:2,output:3",
        ] {
            let f = flow(text);
            let wire = match_to_wire(&f.matches);
            assert_eq!(match_from_wire(&wire), Ok(f.matches), "{text}");
            let back = actions_from_wire(&actions_to_wire(&f.actions), &|p| p.0 <= 3).unwrap();
            assert_eq!(back, f.actions, "{text}");
        }
    }

    #[test]
    fn what_the_table_cannot_do_is_refused_with_the_fitting_error() {
        let pcp = Oxm::basic(super::super::OFPXMT_OFB_VLAN_PCP, vec![3]);
        assert_eq!(match_from_wire(&[pcp]), Err(bad_match(OFPBMC_BAD_FIELD)));
        for bad in [[0x20, 0x05], [0x00, 0x05]] {
            let vid = Oxm::basic(OFPXMT_OFB_VLAN_VID, bad.to_vec());
            assert_eq!(
                match_from_wire(&[vid]),
                Err(bad_match(OFPBMC_BAD_VALUE)),
                "{bad:?}"
            );
        }
        let odd_mask =
            Oxm::ipv4_dst_masked(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(255, 0, 255, 0));
        assert_eq!(
            match_from_wire(&[Oxm::eth_type(ETHERTYPE_IPV4), odd_mask]),
            Err(bad_match(OFPBMC_BAD_MASK))
        );
        assert_eq!(
            match_from_wire(&[Oxm::ipv4_dst(Ipv4Addr::new(10, 0, 0, 1))]),
            Err(bad_match(OFPBMC_BAD_PREREQ)),
            "no eth_type"
        );
        assert_eq!(
            match_from_wire(&[Oxm::eth_type(ETHERTYPE_IPV4), Oxm::tcp_dst(80)]),
            Err(bad_match(OFPBMC_BAD_PREREQ)),
            "no ip_proto"
        );
        assert_eq!(
            match_from_wire(&[
                Oxm::eth_type(ETHERTYPE_IPV4),
                Oxm::ip_proto(PROTO_UDP),
                Oxm::tcp_dst(80)
            ]),
            Err(bad_match(OFPBMC_BAD_PREREQ)),
            "tcp_dst over udp"
        );
        let exists = |p: PortNo| p.0 <= 3;
        let refuse =
            |a: WireAction| actions_from_wire(&[Instruction::ApplyActions(vec![a])], &exists);
        use super::super::OFPP_TABLE;
        for port in [OFPP_TABLE, 4, 0] {
            assert_eq!(
                refuse(WireAction::Output { port, max_len: 0 }),
                Err(OfError::new(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT)),
                "port {port:#x}"
            );
        }
        assert_eq!(
            refuse(WireAction::Group(1)),
            Err(OfError::new(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_GROUP))
        );
        assert_eq!(
            actions_from_wire(&[Instruction::GotoTable(1)], &exists),
            Err(OfError::new(OFPET_BAD_INSTRUCTION, OFPBIC_BAD_TABLE_ID))
        );
        assert_eq!(
            actions_from_wire(&[Instruction::ClearActions], &exists),
            Err(OfError::new(OFPET_BAD_INSTRUCTION, OFPBIC_UNSUP_INST))
        );
    }

    #[test]
    fn fields_that_match_everything_are_stored_as_no_field() {
        let any_source = Oxm::ipv4_src_masked(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::UNSPECIFIED);
        let m = match_from_wire(&[Oxm::eth_type(ETHERTYPE_IPV4), any_source]).unwrap();
        assert_eq!(m, flow("ip,actions=drop").matches);
        assert_eq!(
            flow("ip,nw_src=0.0.0.0/0,actions=drop").matches,
            m,
            "text: the same"
        );
        let any_mac = Oxm::eth_dst_masked([1, 2, 3, 4, 5, 6], [0; 6]);
        assert_eq!(match_from_wire(&[any_mac]), Ok(Match::default()));
    }

    #[test]
    fn prefix_masks_are_told_from_others() {
        assert_eq!(prefix_len(&[255, 255, 255, 0]), Ok(24));
        assert_eq!(prefix_len(&[255, 255, 254, 0]), Ok(23));
        assert_eq!(prefix_len(&[0; 4]), Ok(0));
        assert!(prefix_len(&[255, 0, 255, 0]).is_err());
        assert!(prefix_len(&[0x7f, 0, 0, 0]).is_err());
    }
}
