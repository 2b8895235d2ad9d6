//! The ovs-ofctl flow syntax: `priority=100,ip,nw_dst=172.31.2.0/24,actions=output:2`.
//!
//! Fields and actions are separated by commas or white space; `actions=` comes last. Printing
//! gives the canonical form, which parses back to the same flow.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{Action, Flow, MacMatch, Match, PortNames, PortNo, DEFAULT_PRIORITY};
use crate::wire::ethernet::{Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

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
    let mut priority = None;
    let mut m = Match::default();
    let mut actions: Option<Vec<Action>> = None;

    for (offset, token) in tokens(text) {
        let err = |message: String| FlowParseError { offset, message };
        if let Some(list) = actions.as_mut() {
            list.push(parse_action(token, ports).map_err(err)?);
            continue;
        }
        if let Some(first) = token.strip_prefix("actions=") {
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
            actions = Some(list);
            continue;
        }
        parse_field(token, &mut m, &mut priority, ports).map_err(err)?;
    }

    let end = text.len();
    let mut actions = actions.ok_or_else(|| FlowParseError {
        offset: end,
        message: "missing `actions=` (every flow needs one, e.g. actions=drop)".into(),
    })?;
    if actions.contains(&Action::Drop) && actions.len() > 1 {
        return Err(FlowParseError {
            offset: text.find("actions=").unwrap_or(0),
            message: "`drop` cannot be combined with other actions".into(),
        });
    }
    if actions == [Action::Drop] {
        actions.clear();
    }
    check_prerequisites(&m).map_err(|message| FlowParseError { offset: 0, message })?;
    Ok(Flow {
        priority: priority.unwrap_or(DEFAULT_PRIORITY),
        matches: m,
        actions,
    })
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
    m: &mut Match,
    priority: &mut Option<u16>,
    ports: &dyn PortNames,
) -> Result<(), String> {
    let Some((key, value)) = token.split_once('=') else {
        return parse_shorthand(token, m);
    };
    match key {
        // What dump-flows prints beside a flow: accepted and ignored, so its output pastes back
        // into add-flow (as with ovs-ofctl).
        "n_packets" | "n_bytes" | "duration" | "idle_age" | "hard_age" => Ok(()),
        "cookie" if value == "0x0" || value == "0" => Ok(()),
        "table" if value == "0" => Ok(()),
        "cookie" | "table" => Err(format!(
            "`{key}={value}`: vxtund has one table and no cookies"
        )),
        "priority" => {
            let p = value
                .parse::<u16>()
                .map_err(|_| format!("priority `{value}`: expected a number from 0 to 65535"))?;
            set_once(priority, p, "priority")
        }
        "in_port" => set_once(&mut m.in_port, parse_port(value, ports)?, "in_port"),
        "dl_src" => set_once(&mut m.dl_src, parse_mac_match(value)?, "dl_src"),
        "dl_dst" => set_once(&mut m.dl_dst, parse_mac_match(value)?, "dl_dst"),
        "dl_type" => set_once(&mut m.dl_type, parse_number_u16(value)?, "dl_type"),
        "nw_proto" | "ip_proto" => {
            let p = value
                .parse::<u8>()
                .map_err(|_| format!("nw_proto `{value}`: expected a number from 0 to 255"))?;
            set_once(&mut m.nw_proto, p, "nw_proto")
        }
        "nw_src" | "ip_src" => set_once(&mut m.nw_src, parse_v4_net(value)?, "nw_src"),
        "nw_dst" | "ip_dst" => set_once(&mut m.nw_dst, parse_v4_net(value)?, "nw_dst"),
        "ipv6_src" => set_once(&mut m.ipv6_src, parse_v6_net(value)?, "ipv6_src"),
        "ipv6_dst" => set_once(&mut m.ipv6_dst, parse_v6_net(value)?, "ipv6_dst"),
        _ => Err(format!(
            "unknown field `{key}` (known: priority, in_port, dl_src, dl_dst, dl_type, nw_proto, \
             nw_src, nw_dst, ipv6_src, ipv6_dst)"
        )),
    }
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
        return Ok(Action::Output(parse_port(port, ports)?));
    }
    match token.to_ascii_lowercase().as_str() {
        "flood" => Ok(Action::Flood),
        "all" => Ok(Action::All),
        "normal" => Ok(Action::Normal),
        "drop" => Ok(Action::Drop),
        "in_port" => Ok(Action::InPort),
        "local" => Ok(Action::Output(PortNo::LOCAL)),
        _ if token.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Action::Output(parse_port(token, ports)?))
        }
        _ => Err(format!(
            "unknown action `{token}` (known: output:PORT, flood, all, in_port, normal, drop)"
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
        for (name, net) in [("nw_src", m.nw_src), ("nw_dst", m.nw_dst)] {
            if let Some(n) = net {
                parts.push(format!("{name}={n}"));
            }
        }
        for (name, net) in [("ipv6_src", m.ipv6_src), ("ipv6_dst", m.ipv6_dst)] {
            if let Some(n) = net {
                parts.push(format!("{name}={n}"));
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
        assert_eq!(f.actions, vec![Action::Output(PortNo::LOCAL)]);
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
        assert!(parse("cookie=0x5,actions=drop")
            .unwrap_err()
            .message
            .contains("no cookies"));
        assert!(parse("table=0,cookie=0x0,actions=drop").is_ok());
    }

    #[test]
    fn prints_canonical_form() {
        let cases = [
            ("arp,actions=flood", "arp,actions=flood"),
            (
                "ip6,ipv6_dst=fc00:0:0:1::/64,actions=output:LOCAL",
                "ipv6,ipv6_dst=fc00:0:0:1::/64,actions=output:1",
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
        ];
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
                    Flow {
                        priority,
                        matches: m,
                        actions,
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
