//! The ovs-ofctl flow syntax: `priority=100,ip,nw_dst=172.31.2.0/24,actions=output:2`.
//!
//! Fields and actions are separated by commas or white space; `actions=` comes last. Printing
//! gives the canonical form, which parses back to the same flow.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{Action, Flow, MacMatch, Match, PortNames, PortNo, VlanMatch, DEFAULT_PRIORITY};
use crate::wire::ethernet::{Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// The flag keywords, in the order ovs-ofctl prints them.
const FLAG_NAMES: [(u16, &str); 5] = [
    (Flow::SEND_FLOW_REM, "send_flow_rem"),
    (Flow::CHECK_OVERLAP, "check_overlap"),
    (Flow::RESET_COUNTS, "reset_counts"),
    (Flow::NO_PKT_COUNTS, "no_packet_counts"),
    (Flow::NO_BYT_COUNTS, "no_byte_counts"),
];

/// A flow that does not parse: where in the text, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowParseError {
    /// Byte offset of the offending token in the flow text.
    pub offset: usize,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for FlowParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.offset + 1, self.message)
    }
}

impl std::error::Error for FlowParseError {}

/// Parses one flow, resolving port names with `ports`.
pub fn parse_flow(text: &str, ports: &dyn PortNames) -> Result<Flow, FlowParseError> {
    let parts = parse_parts(text, ports, Mode::Flow)?;
    let actions = parts.actions.ok_or_else(|| FlowParseError {
        offset: text.len(),
        message: "missing `actions=` (every flow needs one, e.g. actions=drop)".into(),
    })?;
    Ok(Flow {
        priority: parts.priority.unwrap_or(DEFAULT_PRIORITY),
        matches: parts.matches,
        actions,
        cookie: parts.cookie.map_or(0, |(c, _)| c),
        idle_timeout: parts.idle_timeout,
        hard_timeout: parts.hard_timeout,
        flags: parts.flags,
    })
}

/// What [`parse_parts`] is reading: a flow to add, or a pattern for del-flows and mod-flows
/// (which may carry `out_port=` and a cookie mask, and need no actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Flow,
    Pattern,
}

/// Everything a flow or pattern text says, before it is made a [`Flow`] or a pattern.
#[derive(Debug, Clone, Default)]
pub(super) struct Parts {
    pub priority: Option<u16>,
    pub matches: Match,
    pub actions: Option<Vec<Action>>,
    /// `cookie=VALUE` or (patterns only) `cookie=VALUE/MASK`.
    pub cookie: Option<(u64, Option<u64>)>,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    /// `out_port=` (patterns only).
    pub out_port: Option<PortNo>,
}

/// A field that only makes sense with something else in the match (ovs-ofctl's prerequisites).
#[derive(Debug, Clone, Copy)]
enum Needs {
    /// `arp_spa`, `arp_tpa`: `arp`.
    Arp(&'static str),
    /// Ports: one of these protocols.
    Proto(&'static str, &'static [u8], &'static str),
}

pub(super) fn parse_parts(
    text: &str,
    ports: &dyn PortNames,
    mode: Mode,
) -> Result<Parts, FlowParseError> {
    let mut parts = Parts::default();
    let mut needs: Vec<(usize, Needs)> = Vec::new();
    let mut actions_at = 0;

    for (offset, token) in tokens(text) {
        let err = |message: String| FlowParseError { offset, message };
        if let Some(list) = parts.actions.as_mut() {
            list.push(parse_action(token, ports).map_err(err)?);
            continue;
        }
        if let Some(first) = token.strip_prefix("actions=") {
            actions_at = offset;
            let mut list = Vec::new();
            if !first.is_empty() {
                let first_offset = offset + "actions=".len();
                list.push(
                    parse_action(first, ports).map_err(|message| FlowParseError {
                        offset: first_offset,
                        message,
                    })?,
                );
            }
            parts.actions = Some(list);
            continue;
        }
        parse_field(token, &mut parts, mode, ports, |n| needs.push((offset, n))).map_err(err)?;
    }

    if let Some(actions) = parts.actions.as_mut() {
        if actions.contains(&Action::Drop) && actions.len() > 1 {
            return Err(FlowParseError {
                offset: actions_at,
                message: "`drop` cannot be combined with other actions".into(),
            });
        }
        if actions == &[Action::Drop] {
            actions.clear();
        }
    }
    let m = &parts.matches;
    for (offset, need) in needs {
        let message = match need {
            Needs::Arp(name) if m.dl_type != Some(ETHERTYPE_ARP) => {
                format!("`{name}` needs `arp` in the match")
            }
            Needs::Proto(name, protos, spelled)
                if !m.nw_proto.is_some_and(|p| protos.contains(&p)) =>
            {
                format!("`{name}` needs {spelled} in the match")
            }
            _ => continue,
        };
        return Err(FlowParseError { offset, message });
    }
    check_prerequisites(m).map_err(|message| FlowParseError { offset: 0, message })?;
    parts.matches.normalize();
    Ok(parts)
}

/// Splits on commas and white space, keeping each token's byte offset.
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let is_separator = |c: char| c == ',' || c.is_whitespace();
    text.char_indices()
        .filter(move |&(i, c)| {
            !is_separator(c) && text[..i].chars().next_back().is_none_or(is_separator)
        })
        .map(move |(start, _)| {
            let end = text[start..]
                .find(is_separator)
                .map_or(text.len(), |e| start + e);
            (start, &text[start..end])
        })
}

fn parse_field(
    token: &str,
    parts: &mut Parts,
    mode: Mode,
    ports: &dyn PortNames,
    mut needs: impl FnMut(Needs),
) -> Result<(), String> {
    const TCP_OR_UDP: &[u8] = &[PROTO_TCP, PROTO_UDP];
    const TCP_OR_UDP_TEXT: &str = "`tcp`, `udp`, `tcp6` or `udp6` (nw_proto 6 or 17)";
    let m = &mut parts.matches;
    let Some((key, value)) = token.split_once('=') else {
        return match token {
            "send_flow_rem" => set_flag(&mut parts.flags, Flow::SEND_FLOW_REM),
            "check_overlap" => set_flag(&mut parts.flags, Flow::CHECK_OVERLAP),
            "reset_counts" => set_flag(&mut parts.flags, Flow::RESET_COUNTS),
            "no_packet_counts" => set_flag(&mut parts.flags, Flow::NO_PKT_COUNTS),
            "no_byte_counts" => set_flag(&mut parts.flags, Flow::NO_BYT_COUNTS),
            _ => parse_shorthand(token, m),
        };
    };
    match key {
        // What dump-flows prints beside a flow: accepted and ignored, so its output pastes back
        // into add-flow (as with ovs-ofctl).
        "n_packets" | "n_bytes" | "duration" | "idle_age" | "hard_age" => Ok(()),
        "table" if value == "0" => Ok(()),
        "table" => Err(format!("`table={value}`: vxtund has one table, table 0")),
        "cookie" => {
            let (cookie, mask) = match value.split_once('/') {
                None => (parse_u64(value)?, None),
                Some(_) if mode == Mode::Flow => {
                    return Err(format!(
                        "`cookie={value}`: a cookie mask selects flows in del-flows and \
                         mod-flows; a flow to add takes cookie=VALUE"
                    ))
                }
                Some((c, mask)) => (parse_u64(c)?, Some(parse_u64(mask)?)),
            };
            set_once(&mut parts.cookie, (cookie, mask), "cookie")
        }
        "idle_timeout" => set_timeout(&mut parts.idle_timeout, key, value),
        "hard_timeout" => set_timeout(&mut parts.hard_timeout, key, value),
        "out_port" if mode == Mode::Pattern => {
            set_once(&mut parts.out_port, parse_port(value, ports)?, "out_port")
        }
        "out_port" => Err("`out_port` selects flows in del-flows and mod-flows only".into()),
        "priority" => {
            let p = value
                .parse::<u16>()
                .map_err(|_| format!("priority `{value}`: expected a number from 0 to 65535"))?;
            set_once(&mut parts.priority, p, "priority")
        }
        "in_port" => set_once(&mut m.in_port, parse_port(value, ports)?, "in_port"),
        "dl_src" => set_once(&mut m.dl_src, parse_mac_match(value)?, "dl_src"),
        "dl_dst" => set_once(&mut m.dl_dst, parse_mac_match(value)?, "dl_dst"),
        "dl_type" => set_once(&mut m.dl_type, parse_number_u16(value)?, "dl_type"),
        "dl_vlan" => {
            let vid = value
                .parse::<u16>()
                .ok()
                .filter(|v| *v <= 0x0fff)
                .ok_or_else(|| format!("dl_vlan `{value}`: expected a VLAN ID from 0 to 4095"))?;
            set_once(&mut m.vlan_vid, VlanMatch::vid(vid), "vlan")
        }
        "vlan_tci" => set_once(&mut m.vlan_vid, parse_vlan_tci(value)?, "vlan"),
        "nw_proto" | "ip_proto" => {
            let p = value
                .parse::<u8>()
                .map_err(|_| format!("nw_proto `{value}`: expected a number from 0 to 255"))?;
            set_once(&mut m.nw_proto, p, "nw_proto")
        }
        "nw_src" | "ip_src" => set_once(&mut m.nw_src, parse_v4_net(value)?, "nw_src"),
        "nw_dst" | "ip_dst" => set_once(&mut m.nw_dst, parse_v4_net(value)?, "nw_dst"),
        "arp_spa" => {
            needs(Needs::Arp("arp_spa"));
            set_once(&mut m.nw_src, parse_v4_net(value)?, "arp_spa")
        }
        "arp_tpa" => {
            needs(Needs::Arp("arp_tpa"));
            set_once(&mut m.nw_dst, parse_v4_net(value)?, "arp_tpa")
        }
        "ipv6_src" => set_once(&mut m.ipv6_src, parse_v6_net(value)?, "ipv6_src"),
        "ipv6_dst" => set_once(&mut m.ipv6_dst, parse_v6_net(value)?, "ipv6_dst"),
        "tp_src" | "tp_dst" | "tcp_src" | "tcp_dst" | "udp_src" | "udp_dst" => {
            let (protos, spelled, name): (&[u8], _, _) = match key {
                "tp_src" => (TCP_OR_UDP, TCP_OR_UDP_TEXT, "tp_src"),
                "tp_dst" => (TCP_OR_UDP, TCP_OR_UDP_TEXT, "tp_dst"),
                "tcp_src" => (&[PROTO_TCP], "`tcp` or `tcp6`", "tcp_src"),
                "tcp_dst" => (&[PROTO_TCP], "`tcp` or `tcp6`", "tcp_dst"),
                "udp_src" => (&[PROTO_UDP], "`udp` or `udp6`", "udp_src"),
                _ => (&[PROTO_UDP], "`udp` or `udp6`", "udp_dst"),
            };
            needs(Needs::Proto(name, protos, spelled));
            let port = parse_number_u16(value)
                .map_err(|_| format!("{key} `{value}`: expected a port number from 0 to 65535"))?;
            let slot = if key.ends_with("_src") {
                &mut m.tp_src
            } else {
                &mut m.tp_dst
            };
            set_once(slot, port, key)
        }
        _ => Err(format!(
            "unknown field `{key}` (known: priority, cookie, idle_timeout, hard_timeout, \
             in_port, dl_src, dl_dst, dl_type, dl_vlan, vlan_tci, nw_proto, nw_src, nw_dst, \
             arp_spa, arp_tpa, \
             ipv6_src, ipv6_dst, tp_src, tp_dst, tcp_src, tcp_dst, udp_src, udp_dst)"
        )),
    }
}

fn set_flag(flags: &mut u16, flag: u16) -> Result<(), String> {
    *flags |= flag;
    Ok(())
}

fn set_timeout(slot: &mut u16, key: &str, value: &str) -> Result<(), String> {
    *slot = value
        .parse::<u16>()
        .map_err(|_| format!("{key} `{value}`: expected seconds from 0 to 65535"))?;
    Ok(())
}

fn parse_u64(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|_| format!("`{text}`: expected a 64-bit number such as 0x1f or 31"))
}

fn parse_shorthand(token: &str, m: &mut Match) -> Result<(), String> {
    let (dl_type, proto) = match token {
        "arp" => (ETHERTYPE_ARP, None),
        "ip" => (ETHERTYPE_IPV4, None),
        "ipv6" | "ip6" => (ETHERTYPE_IPV6, None),
        "icmp" => (ETHERTYPE_IPV4, Some(PROTO_ICMP)),
        "tcp" => (ETHERTYPE_IPV4, Some(PROTO_TCP)),
        "udp" => (ETHERTYPE_IPV4, Some(PROTO_UDP)),
        "icmp6" => (ETHERTYPE_IPV6, Some(PROTO_ICMPV6)),
        "tcp6" => (ETHERTYPE_IPV6, Some(PROTO_TCP)),
        "udp6" => (ETHERTYPE_IPV6, Some(PROTO_UDP)),
        _ => {
            return Err(format!(
                "unknown keyword `{token}` (known: arp, ip, ipv6, ip6, icmp, icmp6, tcp, udp, \
                 tcp6, udp6; fields are written name=value)"
            ))
        }
    };
    set_once(&mut m.dl_type, dl_type, token)?;
    if let Some(p) = proto {
        set_once(&mut m.nw_proto, p, token)?;
    }
    Ok(())
}

fn set_once<T: PartialEq + fmt::Debug>(
    slot: &mut Option<T>,
    value: T,
    what: &str,
) -> Result<(), String> {
    match slot {
        Some(old) if *old != value => Err(format!("`{what}` conflicts with an earlier field")),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

fn check_prerequisites(m: &Match) -> Result<(), String> {
    let is = |t: u16| m.dl_type == Some(t);
    if (m.nw_src.is_some() || m.nw_dst.is_some()) && !is(ETHERTYPE_IPV4) && !is(ETHERTYPE_ARP) {
        return Err("nw_src/nw_dst need `ip` or `arp` in the match".into());
    }
    if (m.ipv6_src.is_some() || m.ipv6_dst.is_some()) && !is(ETHERTYPE_IPV6) {
        return Err("ipv6_src/ipv6_dst need `ipv6` (or `ip6`, `icmp6` ...) in the match".into());
    }
    if m.nw_proto.is_some() && !is(ETHERTYPE_IPV4) && !is(ETHERTYPE_IPV6) {
        return Err("nw_proto needs `ip` or `ipv6` in the match".into());
    }
    Ok(())
}

fn parse_action(token: &str, ports: &dyn PortNames) -> Result<Action, String> {
    if let Some(port) = token
        .strip_prefix("output:")
        .or_else(|| token.strip_prefix("output="))
    {
        if port.eq_ignore_ascii_case("local") {
            return Ok(Action::Local);
        }
        if port.eq_ignore_ascii_case("controller") {
            return Ok(Action::Controller(Action::CONTROLLER_NO_BUFFER));
        }
        return Ok(Action::Output(parse_port(port, ports)?));
    }
    let lower = token.to_ascii_lowercase();
    if let Some(len) = lower.strip_prefix("controller:") {
        return len.parse().map(Action::Controller).map_err(|_| {
            format!("`{token}`: the controller's max_len is a number from 0 to 65535")
        });
    }
    match token.to_ascii_lowercase().as_str() {
        "flood" => Ok(Action::Flood),
        "all" => Ok(Action::All),
        "normal" => Ok(Action::Normal),
        "drop" => Ok(Action::Drop),
        "in_port" => Ok(Action::InPort),
        "local" => Ok(Action::Local),
        "controller" => Ok(Action::Controller(Action::CONTROLLER_NO_BUFFER)),
        _ if token.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Action::Output(parse_port(token, ports)?))
        }
        _ => Err(format!(
            "unknown action `{token}` (known: output:PORT, LOCAL, flood, all, in_port, normal, \
             controller[:MAX_LEN], drop)"
        )),
    }
}

fn parse_port(text: &str, ports: &dyn PortNames) -> Result<PortNo, String> {
    if let Ok(n) = text.parse::<u32>() {
        let port = PortNo(n);
        return if ports.exists(port) {
            Ok(port)
        } else {
            Err(format!("unknown port {n}"))
        };
    }
    ports
        .resolve(text)
        .ok_or_else(|| format!("unknown port `{text}`"))
}

fn parse_number_u16(text: &str) -> Result<u16, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => text.parse::<u16>(),
    };
    parsed.map_err(|_| format!("`{text}`: expected a 16-bit number such as 0x0800"))
}

/// `vlan_tci=TCI[/MASK]` as Open vSwitch reads it: the CFI bit (0x1000) says a tag is
/// present, the low 12 bits are the VID; priority bits (0xe000) cannot be matched here.
fn parse_vlan_tci(text: &str) -> Result<VlanMatch, String> {
    let (value, mask) = match text.split_once('/') {
        Some((v, m)) => (parse_number_u16(v)?, parse_number_u16(m)?),
        None => (parse_number_u16(text)?, 0xffff),
    };
    let pcp = 0xe000;
    if value & mask & pcp != 0 || (mask & pcp != 0 && mask & pcp != pcp) {
        return Err(format!(
            "vlan_tci `{text}`: vxtund does not match VLAN priority bits (0xe000)"
        ));
    }
    // A whole-TCI match of zero means "no tag"; of a tag, its priority must be left out.
    if mask & pcp == pcp && value & VlanMatch::PRESENT != 0 {
        return Err(format!(
            "vlan_tci `{text}`: give a mask without the priority bits, e.g. 0x1005/0x1fff"
        ));
    }
    let mask = mask & VlanMatch::ALL;
    let value = value & mask;
    if mask & VlanMatch::PRESENT != 0 && value & VlanMatch::PRESENT == 0 && value != 0 {
        return Err(format!(
            "vlan_tci `{text}`: a VID without the CFI bit (0x1000) matches no frame; \
             write 0x1000|VID (or dl_vlan=VID)"
        ));
    }
    Ok(VlanMatch { value, mask })
}

fn parse_mac_match(text: &str) -> Result<MacMatch, String> {
    let (addr, mask) = match text.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (text, None),
    };
    let addr: Mac = addr.parse().map_err(|e| format!("`{text}`: {e}"))?;
    let mask: Mac = match mask {
        Some(m) => m.parse().map_err(|e| format!("mask `{m}`: {e}"))?,
        None => Mac::BROADCAST,
    };
    let mut masked = addr;
    for i in 0..6 {
        masked.0[i] &= mask.0[i];
    }
    Ok(MacMatch { addr: masked, mask })
}

fn parse_v4_net(text: &str) -> Result<Ipv4Net, String> {
    let bad = || format!("`{text}`: expected an IPv4 address or prefix such as 172.31.1.0/24");
    let (addr, len) = match text.split_once('/') {
        None => (text.parse::<Ipv4Addr>().map_err(|_| bad())?, 32),
        Some((a, l)) => {
            let addr = a.parse::<Ipv4Addr>().map_err(|_| bad())?;
            let len = match l.parse::<u8>() {
                Ok(len) => len,
                Err(_) => {
                    let mask = l.parse::<Ipv4Addr>().map_err(|_| bad())?;
                    ipnet::ipv4_mask_to_prefix(mask)
                        .map_err(|_| format!("`{l}`: the mask is not contiguous"))?
                }
            };
            (addr, len)
        }
    };
    Ipv4Net::new(addr, len)
        .map(|n| n.trunc())
        .map_err(|_| bad())
}

fn parse_v6_net(text: &str) -> Result<Ipv6Net, String> {
    let bad = || format!("`{text}`: expected an IPv6 address or prefix such as fc00:0:0:1::/64");
    let (addr, len) = match text.split_once('/') {
        None => (text.parse::<Ipv6Addr>().map_err(|_| bad())?, 128),
        Some((a, l)) => (
            a.parse::<Ipv6Addr>().map_err(|_| bad())?,
            l.parse::<u8>().map_err(|_| bad())?,
        ),
    };
    Ipv6Net::new(addr, len)
        .map(|n| n.trunc())
        .map_err(|_| bad())
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.cookie != 0 {
            parts.push(format!("cookie={:#x}", self.cookie));
        }
        if self.idle_timeout != 0 {
            parts.push(format!("idle_timeout={}", self.idle_timeout));
        }
        if self.hard_timeout != 0 {
            parts.push(format!("hard_timeout={}", self.hard_timeout));
        }
        for (flag, name) in FLAG_NAMES {
            if self.has_flag(flag) {
                parts.push(name.into());
            }
        }
        if self.priority != DEFAULT_PRIORITY {
            parts.push(format!("priority={}", self.priority));
        }
        let m = &self.matches;
        let mut proto_printed = false;
        match (m.dl_type, m.nw_proto) {
            (Some(ETHERTYPE_ARP), _) => parts.push("arp".into()),
            (Some(ETHERTYPE_IPV4), p) => {
                parts.push(
                    match p {
                        Some(PROTO_ICMP) => "icmp",
                        Some(PROTO_TCP) => "tcp",
                        Some(PROTO_UDP) => "udp",
                        _ => "ip",
                    }
                    .into(),
                );
                proto_printed = matches!(p, Some(PROTO_ICMP | PROTO_TCP | PROTO_UDP));
            }
            (Some(ETHERTYPE_IPV6), p) => {
                parts.push(
                    match p {
                        Some(PROTO_ICMPV6) => "icmp6",
                        Some(PROTO_TCP) => "tcp6",
                        Some(PROTO_UDP) => "udp6",
                        _ => "ipv6",
                    }
                    .into(),
                );
                proto_printed = matches!(p, Some(PROTO_ICMPV6 | PROTO_TCP | PROTO_UDP));
            }
            (Some(t), _) => parts.push(format!("dl_type=0x{t:04x}")),
            (None, _) => {}
        }
        if let Some(p) = m.in_port {
            parts.push(format!("in_port={p}"));
        }
        match m.vlan_vid {
            Some(VlanMatch::NONE) => parts.push("vlan_tci=0x0000".into()),
            Some(v) if v.mask == VlanMatch::ALL && v.value & VlanMatch::PRESENT != 0 => {
                parts.push(format!("dl_vlan={}", v.value & 0x0fff))
            }
            Some(v) => parts.push(format!("vlan_tci={:#06x}/{:#06x}", v.value, v.mask)),
            None => {}
        }
        for (name, mac) in [("dl_src", m.dl_src), ("dl_dst", m.dl_dst)] {
            match mac {
                Some(mm) if mm.is_exact() => parts.push(format!("{name}={}", mm.addr)),
                Some(mm) => parts.push(format!("{name}={}/{}", mm.addr, mm.mask)),
                None => {}
            }
        }
        if let (Some(p), false) = (m.nw_proto, proto_printed) {
            parts.push(format!("nw_proto={p}"));
        }
        let (src, dst) = if m.dl_type == Some(ETHERTYPE_ARP) {
            ("arp_spa", "arp_tpa")
        } else {
            ("nw_src", "nw_dst")
        };
        for (name, net) in [(src, m.nw_src), (dst, m.nw_dst)] {
            if let Some(n) = net {
                parts.push(format!("{name}={n}"));
            }
        }
        for (name, net) in [("ipv6_src", m.ipv6_src), ("ipv6_dst", m.ipv6_dst)] {
            if let Some(n) = net {
                parts.push(format!("{name}={n}"));
            }
        }
        for (name, port) in [("tp_src", m.tp_src), ("tp_dst", m.tp_dst)] {
            if let Some(p) = port {
                parts.push(format!("{name}={p}"));
            }
        }
        let actions: Vec<String> = if self.actions.is_empty() {
            vec!["drop".into()]
        } else {
            self.actions.iter().map(|a| a.to_string()).collect()
        };
        parts.push(format!("actions={}", actions.join(",")));
        f.write_str(&parts.join(","))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output(p) => write!(f, "output:{p}"),
            Action::InPort => f.write_str("in_port"),
            Action::Flood => f.write_str("flood"),
            Action::All => f.write_str("all"),
            Action::Normal => f.write_str("normal"),
            Action::Drop => f.write_str("drop"),
            Action::Local => f.write_str("LOCAL"),
            Action::Controller(len) => write!(f, "CONTROLLER:{len}"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The ports of the scenario's hub: 1 vxt0/LOCAL, 2 tun_kl, 3 tun_km.
    pub(crate) struct HubPorts;

    impl PortNames for HubPorts {
        fn resolve(&self, name: &str) -> Option<PortNo> {
            match name {
                "LOCAL" | "vxt0" => Some(PortNo(1)),
                "tun_kl" => Some(PortNo(2)),
                "tun_km" => Some(PortNo(3)),
                _ => None,
            }
        }
        fn exists(&self, port: PortNo) -> bool {
            (1..=3).contains(&port.0)
        }
    }

    fn parse(text: &str) -> Result<Flow, FlowParseError> {
        parse_flow(text, &HubPorts)
    }

    #[test]
    fn parses_the_scenario_flows() {
        let f = parse("ip,nw_dst=172.31.2.0/24,actions=output:tun_kl").unwrap();
        assert_eq!(f.priority, DEFAULT_PRIORITY);
        assert_eq!(f.matches.dl_type, Some(ETHERTYPE_IPV4));
        assert_eq!(f.matches.nw_dst, Some("172.31.2.0/24".parse().unwrap()));
        assert_eq!(f.actions, vec![Action::Output(PortNo(2))]);

        let f = parse("icmp6,ipv6_dst=ff00::/8,actions=flood").unwrap();
        assert_eq!(f.matches.nw_proto, Some(PROTO_ICMPV6));
        assert_eq!(f.actions, vec![Action::Flood]);

        let f = parse("ip6,ipv6_dst=fc00:0:0:1::/64,actions=output:LOCAL").unwrap();
        assert_eq!(f.actions, vec![Action::Local]);
        assert_eq!(
            parse("arp,actions=flood").unwrap().matches.dl_type,
            Some(ETHERTYPE_ARP)
        );
    }

    #[test]
    fn accepts_ovs_spellings() {
        let f = parse("priority=200 tcp, in_port=2 nw_src=10.0.0.0/255.0.0.0 actions=1,3").unwrap();
        assert_eq!(f.priority, 200);
        assert_eq!(f.matches.in_port, Some(PortNo(2)));
        assert_eq!(f.matches.nw_src, Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!(
            f.actions,
            vec![Action::Output(PortNo(1)), Action::Output(PortNo(3))]
        );
        let f = parse("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=FLOOD").unwrap();
        assert!(!f.matches.dl_dst.unwrap().is_exact());
        assert_eq!(parse("actions=").unwrap().actions, vec![]);
        assert_eq!(parse("actions=drop").unwrap().actions, vec![]);
        assert_eq!(
            parse("ip,nw_dst=172.31.1.9/24,actions=normal")
                .unwrap()
                .matches
                .nw_dst,
            Some("172.31.1.0/24".parse().unwrap())
        );
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse("ip,nw_dst=172.31.2.0/24,actions=output:9").unwrap_err();
        assert_eq!(e.offset, 32);
        assert!(e.message.contains("unknown port 9"), "{e}");
        let e = parse("ip,nw_dst=172.31.2.0/24,actions=output:tun_xx").unwrap_err();
        assert!(e.message.contains("unknown port `tun_xx`"), "{e}");
        let e = parse("ip,nw_dts=1.2.3.4,actions=drop").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("unknown field `nw_dts`"), "{e}");
        let e = parse("ip,nw_dst=172.31.2.0/33,actions=drop").unwrap_err();
        assert!(e.message.contains("IPv4 address or prefix"), "{e}");
        assert!(parse("ip,nw_dst=1.2.3.4")
            .unwrap_err()
            .message
            .contains("missing `actions=`"));
        assert!(parse("nw_dst=1.2.3.4,actions=drop")
            .unwrap_err()
            .message
            .contains("need `ip` or `arp`"));
        assert!(parse("ip,ipv6_dst=::1,actions=drop")
            .unwrap_err()
            .message
            .contains("need `ipv6`"));
        assert!(parse("arp,ip,actions=drop")
            .unwrap_err()
            .message
            .contains("conflicts"));
        assert!(parse("ip,actions=drop,flood")
            .unwrap_err()
            .message
            .contains("cannot be combined"));
        assert!(parse("ip,actions=jump")
            .unwrap_err()
            .message
            .contains("unknown action"));
        assert!(parse("priority=70000,actions=drop")
            .unwrap_err()
            .message
            .contains("0 to 65535"));
        assert!(parse("dl_src=00:11,actions=drop")
            .unwrap_err()
            .message
            .contains("MAC address"));
    }

    #[test]
    fn offsets_are_byte_positions_after_any_white_space() {
        let e = parse("ip,\u{a0}\u{2003}nw_dts=1.2.3.4,actions=drop").unwrap_err();
        assert_eq!(e.offset, "ip,\u{a0}\u{2003}".len());
        assert_eq!(
            &"ip,\u{a0}\u{2003}nw_dts=1.2.3.4,actions=drop"[e.offset..e.offset + 6],
            "nw_dts"
        );
    }

    #[test]
    fn dump_flows_counters_are_accepted_and_ignored() {
        let dumped = "duration=12.5s, n_packets=3, n_bytes=294, priority=10,ip,nw_dst=172.31.2.0/24,actions=output:2";
        assert_eq!(
            parse(dumped).unwrap(),
            parse("priority=10,ip,nw_dst=172.31.2.0/24,actions=output:2").unwrap()
        );
        assert!(parse("table=1,actions=drop")
            .unwrap_err()
            .message
            .contains("one table"));
        assert!(parse("table=0,cookie=0x0,actions=drop").is_ok());
    }

    #[test]
    fn reads_cookie_timeouts_and_flags() {
        let f = parse(
            "cookie=0x5,idle_timeout=10,hard_timeout=300,send_flow_rem,check_overlap,\
             reset_counts,no_packet_counts,no_byte_counts,ip,actions=normal",
        )
        .unwrap();
        assert_eq!(f.cookie, 5);
        assert_eq!((f.idle_timeout, f.hard_timeout), (10, 300));
        assert_eq!(f.flags, 0x1f);
        assert!(f.has_flag(Flow::CHECK_OVERLAP | Flow::RESET_COUNTS));
        assert_eq!(parse("cookie=31,actions=drop").unwrap().cookie, 31);
        assert_eq!(
            parse("cookie=0xffffffffffffffff,actions=drop")
                .unwrap()
                .cookie,
            u64::MAX
        );
        for (bad, why) in [
            ("cookie=0x5/0xff,actions=drop", "cookie mask"),
            ("cookie=0x1ffffffffffffffff,actions=drop", "64-bit number"),
            ("idle_timeout=-1,actions=drop", "seconds from 0 to 65535"),
            ("hard_timeout=65536,actions=drop", "seconds from 0 to 65535"),
            ("out_port=2,actions=drop", "del-flows and mod-flows only"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn reads_transport_ports_and_arp_addresses() {
        let f = parse("tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=drop").unwrap();
        assert_eq!((f.matches.tp_src, f.matches.tp_dst), (None, Some(80)));
        let f = parse("udp6,udp_src=53,udp_dst=0x35,actions=drop").unwrap();
        assert_eq!((f.matches.tp_src, f.matches.tp_dst), (Some(53), Some(53)));
        assert_eq!(
            parse("tcp_dst=22,tcp6,actions=drop")
                .unwrap()
                .matches
                .tp_dst,
            Some(22),
            "prerequisites hold for the whole match, in any order"
        );
        let f = parse("arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/24,actions=flood").unwrap();
        assert_eq!(f.matches.nw_src, Some("10.0.0.1/32".parse().unwrap()));
        assert_eq!(f.matches.nw_dst, Some("10.0.0.0/24".parse().unwrap()));
        assert_eq!(
            parse("arp,nw_dst=10.0.0.0/24,actions=flood").unwrap(),
            f.clone().with_src(None),
            "nw_dst is arp_tpa for ARP"
        );
    }

    impl Flow {
        fn with_src(mut self, src: Option<Ipv4Net>) -> Flow {
            self.matches.nw_src = src;
            self
        }
    }

    #[test]
    fn port_and_arp_fields_need_their_protocols() {
        for (bad, offset, why) in [
            (
                "tp_dst=80,actions=drop",
                0,
                "`tp_dst` needs `tcp`, `udp`, `tcp6` or `udp6`",
            ),
            (
                "ip,tp_src=80,actions=drop",
                3,
                "`tp_src` needs `tcp`, `udp`",
            ),
            ("icmp,tp_dst=80,actions=drop", 5, "nw_proto 6 or 17"),
            (
                "udp,tcp_dst=80,actions=drop",
                4,
                "`tcp_dst` needs `tcp` or `tcp6`",
            ),
            (
                "tcp6,udp_src=80,actions=drop",
                5,
                "`udp_src` needs `udp` or `udp6`",
            ),
            (
                "ip,arp_tpa=10.0.0.1,actions=drop",
                3,
                "`arp_tpa` needs `arp`",
            ),
            ("arp_spa=10.0.0.1,actions=drop", 0, "`arp_spa` needs `arp`"),
            ("tcp,tp_dst=http,actions=drop", 4, "port number"),
            ("tcp,tp_dst=80,tcp_dst=81,actions=drop", 14, "conflicts"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {e}");
            assert_eq!(e.offset, offset, "{bad}: {e}");
        }
    }

    #[test]
    fn local_is_its_own_action() {
        for text in ["actions=LOCAL", "actions=local", "actions=output:LOCAL"] {
            assert_eq!(parse(text).unwrap().actions, vec![Action::Local], "{text}");
        }
        assert_eq!(
            parse("actions=output:1").unwrap().actions,
            vec![Action::Output(PortNo(1))]
        );
        assert_eq!(
            parse("actions=output:vxt0").unwrap().actions,
            vec![Action::Output(PortNo(1))],
            "the device's name is the port number"
        );
    }

    #[test]
    fn prints_canonical_form() {
        let cases = [
            ("arp,actions=flood", "arp,actions=flood"),
            (
                "ip6,ipv6_dst=fc00:0:0:1::/64,actions=output:LOCAL",
                "ipv6,ipv6_dst=fc00:0:0:1::/64,actions=LOCAL",
            ),
            (
                "tp_dst=80,nw_dst=10.0.0.0/8,tcp,actions=output:2",
                "tcp,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:2",
            ),
            (
                "udp6,udp_dst=53,udp_src=5353,actions=drop",
                "udp6,tp_src=5353,tp_dst=53,actions=drop",
            ),
            (
                "arp,nw_src=10.0.0.1,nw_dst=10.0.0.2,actions=flood",
                "arp,arp_spa=10.0.0.1/32,arp_tpa=10.0.0.2/32,actions=flood",
            ),
            (
                "priority=5,no_byte_counts,send_flow_rem,hard_timeout=9,idle_timeout=0,\
                 cookie=31,ip,actions=normal",
                "cookie=0x1f,hard_timeout=9,send_flow_rem,no_byte_counts,priority=5,ip,\
                 actions=normal",
            ),
            (
                "priority=10,ip,nw_proto=47,actions=drop",
                "priority=10,ip,nw_proto=47,actions=drop",
            ),
            ("actions=normal", "actions=normal"),
            (
                "tcp6,in_port=tun_km,actions=in_port",
                "tcp6,in_port=3,actions=in_port",
            ),
            ("dl_type=0x88cc,actions=drop", "dl_type=0x88cc,actions=drop"),
        ];
        for (input, printed) in cases {
            assert_eq!(parse(input).unwrap().to_string(), printed);
        }
    }

    fn arb_flow() -> impl Strategy<Value = Flow> {
        let v4 = (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc());
        let v6 = (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc());
        let mac =
            (any::<[u8; 6]>(), any::<bool>(), any::<[u8; 6]>()).prop_map(|(m, exact, mask)| {
                let mask = if exact { Mac::BROADCAST } else { Mac(mask) };
                let mut addr = Mac(m);
                for i in 0..6 {
                    addr.0[i] &= mask.0[i];
                }
                MacMatch { addr, mask }
            });
        let action = prop_oneof![
            (1u32..=3).prop_map(|p| Action::Output(PortNo(p))),
            Just(Action::Flood),
            Just(Action::All),
            Just(Action::Normal),
            Just(Action::InPort),
            Just(Action::Local),
            any::<u16>().prop_map(Action::Controller),
        ];
        let extras = (
            prop_oneof![Just(0u64), any::<u64>()],
            prop_oneof![Just(0u16), any::<u16>()],
            prop_oneof![Just(0u16), any::<u16>()],
            0u16..0x20,
            prop::option::of(any::<u16>()),
            prop::option::of(any::<u16>()),
        );
        (
            any::<u16>(),
            prop::option::of(1u32..=3),
            (prop::option::of(mac.clone()), prop::option::of(mac)),
            0..5u8,
            prop::option::of(prop_oneof![
                Just(1u8),
                Just(6),
                Just(17),
                Just(58),
                Just(47)
            ]),
            (prop::option::of(v4.clone()), prop::option::of(v4)),
            (prop::option::of(v6.clone()), prop::option::of(v6)),
            prop::collection::vec(action, 0..3),
            extras,
        )
            .prop_map(
                |(
                    priority,
                    in_port,
                    (dl_src, dl_dst),
                    kind,
                    proto,
                    (s4, d4),
                    (s6, d6),
                    actions,
                    (cookie, idle_timeout, hard_timeout, flags, tp_src, tp_dst),
                )| {
                    let mut m = Match {
                        in_port: in_port.map(PortNo),
                        dl_src,
                        dl_dst,
                        ..Match::default()
                    };
                    match kind {
                        0 => {}
                        1 => {
                            m.dl_type = Some(ETHERTYPE_ARP);
                            m.nw_src = s4;
                            m.nw_dst = d4;
                        }
                        2 => {
                            m.dl_type = Some(ETHERTYPE_IPV4);
                            m.nw_proto = proto;
                            m.nw_src = s4;
                            m.nw_dst = d4;
                        }
                        3 => {
                            m.dl_type = Some(0x88cc);
                        }
                        _ => {
                            m.dl_type = Some(ETHERTYPE_IPV6);
                            m.nw_proto = proto;
                            m.ipv6_src = s6;
                            m.ipv6_dst = d6;
                        }
                    }
                    if matches!(m.nw_proto, Some(PROTO_TCP | PROTO_UDP)) {
                        m.tp_src = tp_src;
                        m.tp_dst = tp_dst;
                    }
                    // As stored: a field that matches everything (a /0 prefix, an all-zero
                    // mask) is no field.
                    m.normalize();
                    Flow {
                        priority,
                        matches: m,
                        actions,
                        cookie,
                        idle_timeout,
                        hard_timeout,
                        flags,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(flow in arb_flow()) {
            let text = flow.to_string();
            prop_assert_eq!(parse(&text).unwrap(), flow, "{}", text);
        }

        #[test]
                fn parser_never_panics(text in "[a-zA-Z0-9_=:,./ \\-\u{a0}\u{2003}é]{0,60}") {
            let _ = parse(&text);
        }
    }
}
