//! `vxtunctl trace`: what the switch would do with a frame, as `ovs-appctl ofproto/trace`
//! shows for Open vSwitch, without sending or counting anything.
//!
//! [`frame_for`] builds the frame from a description in flow syntax (or takes one in hex);
//! [`trace`] follows it through a read-only view of the switch: the checks before the flows,
//! the flow that matches (with its counters), its actions, the egress ports, and what MTU
//! handling and MSS clamping would do (run on a copy of the frame with the very functions the
//! data path uses). Pure: no I/O, and the switch is only read.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crate::flow::edit::parse_pattern;
use crate::flow::{Action, PortNo};
use crate::switch::{
    too_big_answer, DropReason, Fit, NormalLookup, Port, PortTable, Rules, Source, Switch, Verdict,
};
use crate::wire::ethernet::{FrameKey, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::ip::{fragment_ipv4, IpView};
use crate::wire::{checksum, ethernet, tcp};

const PROTO_ICMP: u8 = 1;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
/// The MSS option a traced SYN carries unless `mss=` says otherwise.
const DEFAULT_MSS: u16 = 1460;

/// The ingress port and the frame a description stands for.
pub fn frame_for(
    description: &str,
    packet: Option<&str>,
    ports: &[Port],
) -> Result<(PortNo, Vec<u8>), String> {
    let mut extra = Extra::default();
    let mut rest = Vec::new();
    for field in description
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        let (name, value) = field.split_once('=').unwrap_or((field, ""));
        let number = |what: &str| -> Result<u16, String> {
            value
                .parse()
                .map_err(|_| format!("`{field}`: {what} must be a number from 0 to 65535"))
        };
        match name {
            "tcp_flags" => match value.trim_start_matches('+') {
                "syn" => extra.syn = true,
                _ => return Err(format!("`{field}`: a trace knows tcp_flags=syn only")),
            },
            "mss" => extra.mss = Some(number("mss")?),
            "ip_len" => extra.ip_len = Some(number("ip_len")?),
            "df" => match value {
                "yes" | "true" => extra.df = Some(true),
                "no" | "false" => extra.df = Some(false),
                _ => return Err(format!("`{field}`: df=yes or df=no")),
            },
            _ => rest.push(field),
        }
    }
    let rest = rest.join(",");
    let pattern = parse_pattern(&rest, &PortTable(ports))
        .map_err(|e| format!("description `{rest}`: {e}"))?;
    if pattern.actions.is_some() || pattern.priority.is_some() || pattern.out_port.is_some() {
        return Err("a trace describes a frame: no actions, priority or out_port".into());
    }
    let m = pattern.matches;
    let in_port = m.in_port.unwrap_or(PortNo::LOCAL);
    if !ports.iter().any(|p| p.no == in_port) {
        return Err(format!("in_port={in_port}: no such port"));
    }
    if let Some(hex) = packet {
        let only_port = crate::flow::Match {
            in_port: m.in_port,
            ..Default::default()
        };
        if m != only_port || extra != Extra::default() {
            return Err("with a PACKET, the description gives only in_port".into());
        }
        return Ok((in_port, parse_hex(hex)?));
    }
    let single = |m: Option<crate::flow::MacMatch>, field: &str| -> Result<Option<Mac>, String> {
        match m {
            Some(mm) if mm.mask != Mac::BROADCAST => {
                Err(format!("{field} has a mask: a trace takes one address"))
            }
            Some(mm) => Ok(Some(mm.addr)),
            None => Ok(None),
        }
    };
    let v4 = |n: Option<ipnet::Ipv4Net>, field: &str| -> Result<Ipv4Addr, String> {
        match n {
            Some(n) if n.prefix_len() != 32 => Err(format!(
                "{field}={n} is a prefix: a trace takes one address"
            )),
            Some(n) => Ok(n.addr()),
            None => Ok(Ipv4Addr::UNSPECIFIED),
        }
    };
    let v6 = |n: Option<ipnet::Ipv6Net>, field: &str| -> Result<Ipv6Addr, String> {
        match n {
            Some(n) if n.prefix_len() != 128 => Err(format!(
                "{field}={n} is a prefix: a trace takes one address"
            )),
            Some(n) => Ok(n.addr()),
            None => Ok(Ipv6Addr::UNSPECIFIED),
        }
    };
    let dl_src = single(m.dl_src, "dl_src")?.unwrap_or(Mac([2, 0, 0, 0, 0, 1]));
    let dl_dst = single(m.dl_dst, "dl_dst")?;
    let is_ip = matches!(m.dl_type, Some(ETHERTYPE_IPV4 | ETHERTYPE_IPV6));
    if !is_ip && (extra.ip_len.is_some() || extra.df.is_some()) {
        return Err("ip_len and df describe IP packets: say ip or ipv6".into());
    }
    let proto = m.nw_proto;
    if (extra.syn || extra.mss.is_some()) && proto != Some(tcp::PROTO_TCP) {
        return Err("tcp_flags and mss describe TCP segments: say tcp or tcp6".into());
    }
    if extra.mss.is_some() && !extra.syn {
        return Err("mss= is the option of a SYN: add tcp_flags=syn".into());
    }
    let mut frame = Vec::with_capacity(128);
    let l4 = |proto: u8, v6: bool| l4_header(proto, v6, m.tp_src, m.tp_dst, &extra);
    match m.dl_type {
        Some(ETHERTYPE_ARP) => {
            let dst = dl_dst.unwrap_or(Mac::BROADCAST);
            ethernet_header(&mut frame, dst, dl_src, ETHERTYPE_ARP);
            frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            frame.extend_from_slice(&dl_src.0);
            frame.extend_from_slice(&v4(m.nw_src, "nw_src")?.octets());
            frame.extend_from_slice(&[0; 6]);
            frame.extend_from_slice(&v4(m.nw_dst, "nw_dst")?.octets());
        }
        Some(ETHERTYPE_IPV4) => {
            let (src, dst) = (v4(m.nw_src, "nw_src")?, v4(m.nw_dst, "nw_dst")?);
            let dl_dst = dl_dst.unwrap_or(match dst.octets() {
                [a, b, c, d] if (224..240).contains(&a) => Mac([1, 0, 0x5e, b & 0x7f, c, d]),
                _ => Mac([2, 0, 0, 0, 0, 2]),
            });
            let proto = proto.unwrap_or(PROTO_ICMP);
            let payload = l4(proto, false);
            let len = ip_length(20, payload.len(), extra.ip_len)?;
            ethernet_header(&mut frame, dl_dst, dl_src, ETHERTYPE_IPV4);
            let flags: u16 = if extra.df.unwrap_or(true) { 0x4000 } else { 0 };
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            h[6..8].copy_from_slice(&flags.to_be_bytes());
            h[8] = 64;
            h[9] = proto;
            h[12..16].copy_from_slice(&src.octets());
            h[16..20].copy_from_slice(&dst.octets());
            let sum = checksum::of(&[&h]);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&h);
            frame.extend_from_slice(&payload);
            frame.resize(ethernet::HEADER_LEN + len, 0);
        }
        Some(ETHERTYPE_IPV6) => {
            if extra.df == Some(false) {
                return Err("df=no: IPv6 packets are never fragmented on the way".into());
            }
            let (src, dst) = (v6(m.ipv6_src, "ipv6_src")?, v6(m.ipv6_dst, "ipv6_dst")?);
            let dl_dst = dl_dst.unwrap_or(match dst.octets() {
                [0xff, .., a, b, c, d] => Mac([0x33, 0x33, a, b, c, d]),
                _ => Mac([2, 0, 0, 0, 0, 2]),
            });
            let proto = proto.unwrap_or(PROTO_ICMPV6);
            let payload = l4(proto, true);
            let len = ip_length(40, payload.len(), extra.ip_len)?;
            ethernet_header(&mut frame, dl_dst, dl_src, ETHERTYPE_IPV6);
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&((len - 40) as u16).to_be_bytes());
            frame.extend_from_slice(&[proto, 64]);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&dst.octets());
            frame.extend_from_slice(&payload);
            frame.resize(ethernet::HEADER_LEN + len, 0);
        }
        other => {
            // As ovs-appctl: a frame of that EtherType (0 when none is given), 46 zero bytes.
            ethernet_header(
                &mut frame,
                dl_dst.unwrap_or(Mac([2, 0, 0, 0, 0, 2])),
                dl_src,
                other.unwrap_or(0),
            );
            frame.resize(ethernet::HEADER_LEN + 46, 0);
        }
    }
    Ok((in_port, frame))
}

/// What the switch would do with `frame` arriving on `in_port`. Reads the switch only.
pub fn trace(sw: &Switch, in_port: PortNo, frame: &[u8], now: Instant) -> String {
    let mut out = String::new();
    let name = |p: PortNo| {
        sw.ports()
            .iter()
            .find(|q| q.no == p)
            .map_or_else(|| p.to_string(), |q| format!("{p} {}", q.name))
    };
    let _ = writeln!(
        out,
        "Frame: in_port={}, {} bytes",
        name(in_port),
        frame.len()
    );
    let key = match FrameKey::parse(frame) {
        Ok(key) => key,
        Err(_) => {
            out.push_str("Drop: truncated_frame (shorter than an Ethernet header)\n");
            return out;
        }
    };
    let _ = writeln!(out, "  {}", describe(&key, frame));
    let mut egress: Vec<PortNo> = Vec::new();
    let decision = sw.xlate(in_port, &key, now, Rules::Table, false, &mut egress);
    let actions: &[Action] = match decision.source {
        None => {
            let reason = match decision.verdict {
                Verdict::Drop(DropReason::MulticastSource) => {
                    "multicast_source (a group address as source MAC)"
                }
                Verdict::Drop(DropReason::NoMatchingFlow) => {
                    out.push_str("Flow: none matches\n");
                    "no_matching_flow"
                }
                Verdict::Drop(reason) => reason.name(),
                _ => "",
            };
            let _ = writeln!(out, "Drop: {reason}");
            return out;
        }
        Some(Source::FailOpen) => {
            out.push_str("Flow: none (failed open, no controller: every frame takes normal)\n");
            &[Action::Normal]
        }
        Some(Source::PacketOut) => &[],
        Some(Source::Flow(id)) => {
            let flow = &sw.table().flows()[id];
            let stats = sw.flow_stats(id).unwrap_or_default();
            let _ = writeln!(
                out,
                "Flow: {flow}\n  priority={}, n_packets={}, n_bytes={}",
                flow.priority, stats.n_packets, stats.n_bytes
            );
            &flow.actions
        }
    };
    let listed: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(
        out,
        "Actions: {}",
        if listed.is_empty() {
            "drop".to_owned()
        } else {
            listed.join(",")
        }
    );
    for action in actions {
        match *action {
            Action::Output(p) if p == in_port => {
                let _ = writeln!(
                    out,
                    "  output:{p} is the ingress port: skipped (say in_port to send it back)"
                );
            }
            Action::Controller(max_len) => {
                let _ = writeln!(
                    out,
                    "  controller: a PACKET_IN to the controllers (the whole frame; max_len \
                     {max_len}), within the packet-in rate limit"
                );
            }
            _ => {}
        }
    }
    if let Some(normal) = decision.normal {
        let dst = key.dl_dst;
        let note = match normal {
            NormalLookup::Group => "normal: group address, flooded".to_owned(),
            NormalLookup::BehindIngress => format!("normal: {dst} is behind the ingress port"),
            NormalLookup::SplitHorizon(p) => format!(
                "normal: {dst} is behind {}, in the ingress port's split-horizon group",
                name(p)
            ),
            NormalLookup::Learnt(p) => format!("normal: {dst} learnt on {}", name(p)),
            NormalLookup::Unknown => format!("normal: {dst} not learnt, flooded"),
        };
        let _ = writeln!(out, "  {note}");
    }
    match decision.verdict {
        Verdict::Drop(reason) => {
            let _ = writeln!(out, "Drop: {}", reason.name());
            return out;
        }
        Verdict::ControllerOnly => {
            out.push_str("Egress: none (to the controllers only)\n");
            out.push_str("(traced only: nothing was sent or counted)\n");
            return out;
        }
        Verdict::Forward => {}
    }
    let names: Vec<String> = egress
        .iter()
        .map(|&p| {
            let mtu = sw.mtu(p).map_or(String::new(), |m| format!(" (mtu {m})"));
            format!("{}{mtu}", name(p))
        })
        .collect();
    let _ = writeln!(out, "Egress: {}", names.join(", "));
    if let Some(sent) = mtu_and_mss(sw, in_port, &mut egress, frame, &mut out) {
        encapsulations(sw, &egress, &sent, &name, &mut out);
    }
    let _ = writeln!(out, "{}", depends(&decision));
    out.push_str("(traced only: nothing was sent or counted)\n");
    out
}

/// What a decision read beyond the frame's headers and in_port, and so what a cached copy of
/// it (the kernel fast path's) goes stale with: as Open vSwitch's trace ends with the
/// megaflow it would install.
fn depends(decision: &crate::switch::Decision) -> String {
    let mut read = vec!["the headers and in_port", "the flow table"];
    if decision.depends.mac_table {
        read.push("the MAC table");
    }
    if decision.depends.flood {
        read.push("the ports flooded");
    }
    let cache = match decision.cacheable() {
        true => "cacheable until one of them changes",
        false => "not cacheable: normal found no entry for dl_dst, and a learning would change it",
    };
    format!("Depends on: {} ({cache})", read.join(", "))
}

/// How the frame leaves by each tunnel it is sent to: [`Switch::encapsulation`] of `sent` (the
/// frame as it leaves, or its first fragment; the others' are the same), as the data path
/// sends it.
fn encapsulations(
    sw: &Switch,
    egress: &[PortNo],
    sent: &Sent,
    name: &impl Fn(PortNo) -> String,
    out: &mut String,
) {
    let ip = IpView::parse(&sent.frame);
    let mut lines = sw
        .encapsulations(egress, &sent.frame, ip.as_ref())
        .peekable();
    if lines.peek().is_none() {
        return;
    }
    out.push_str(match sent.fragments {
        true => "Encapsulation (of each fragment):\n",
        false => "Encapsulation:\n",
    });
    for (p, encap) in lines {
        let _ = writeln!(out, "  -> {}: {encap}", name(p));
    }
}

/// The frame as the data path sends it, after MSS clamping and MTU handling.
struct Sent {
    /// The frame, or its first fragment.
    frame: Vec<u8>,
    /// Whether it goes as fragments.
    fragments: bool,
}

/// What MSS clamping and the tunnel MTU would do, decided by the switch's own functions and
/// run on a copy of the frame; what is sent to the egress ports (which lose those the frame
/// does not fit), or `None` when nothing is.
fn mtu_and_mss(
    sw: &Switch,
    in_port: PortNo,
    egress: &mut Vec<PortNo>,
    frame: &[u8],
    out: &mut String,
) -> Option<Sent> {
    let ip = IpView::parse(frame);
    let mut copy = frame.to_vec();
    if let Some(ip) = &ip {
        let tag = (ip.l3 - ethernet::HEADER_LEN) as u16;
        let mss_limit = sw.mss_limit(in_port, egress, ip.version, tag);
        match mss_limit
            .and_then(|limit| tcp::clamp_mss(&mut copy, ip, limit).map(|old| (old, limit)))
        {
            Some((old, limit)) => {
                let _ = writeln!(out, "MSS: clamped from {old} to {limit}");
            }
            None if ip.proto == tcp::PROTO_TCP => {
                let _ = writeln!(
                    out,
                    "MSS: unchanged (not a SYN with an MSS above {})",
                    mss_limit.map_or("any limit".into(), |l| l.to_string())
                );
            }
            None => {}
        }
    }
    let size = frame.len() - ip.as_ref().map_or(ethernet::HEADER_LEN, |ip| ip.l3);
    let what = if ip.is_some() {
        "IP packet"
    } else {
        "frame payload (not IP)"
    };
    let sent = Sent {
        frame: copy,
        fragments: false,
    };
    match sw.fit(frame, ip.as_ref(), egress) {
        Fit::Fits { .. } if ip.is_none() => out.push_str("MTU: fits\n"),
        Fit::Fits { limit } => match limit {
            Some(m) => {
                let _ = writeln!(out, "MTU: {size}-byte {what} fits ({m})");
            }
            None => {
                let _ = writeln!(out, "MTU: {size}-byte {what}; no tunnel on the way");
            }
        },
        Fit::Trimmed(n) => {
            let _ = writeln!(
                out,
                "MTU: {size}-byte {what} too big for {n} of the egress ports and not \
                 fragmentable: sent only to those it fits ({})",
                egress
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Fit::TooBig { limit } => return too_big(frame, ip.as_ref(), limit, size, in_port, out),
    }
    Some(sent)
}

/// What happens to a frame of `size` bytes (IP packet or, without `ip`, frame payload) too
/// big for its egress ports' `limit`: fragments (the first of which is returned), an answer,
/// or a drop.
fn too_big(
    frame: &[u8],
    ip: Option<&IpView>,
    limit: usize,
    size: usize,
    in_port: PortNo,
    out: &mut String,
) -> Option<Sent> {
    match ip {
        None => {
            let _ = writeln!(
                out,
                "MTU: not IP and larger than {limit}: dropped (oversize)"
            );
        }
        Some(ip) if !ip.dont_fragment() => {
            let (mut frags, mut ranges) = (Vec::new(), Vec::new());
            if fragment_ipv4(frame, ip, limit, &mut frags, &mut ranges) {
                let _ = writeln!(
                    out,
                    "MTU: {size}-byte IP packet larger than {limit}, no DF: sent as {} \
                         fragments",
                    ranges.len()
                );
                return Some(Sent {
                    frame: frags[ranges[0].clone()].to_vec(),
                    fragments: true,
                });
            } else {
                let _ = writeln!(
                    out,
                    "MTU: larger than {limit}, cannot fragment: dropped (oversize)"
                );
            }
        }
        Some(ip) => {
            let answer = if ip.version == 4 {
                "ICMP fragmentation needed"
            } else {
                "ICMPv6 packet too big"
            };
            if too_big_answer(frame, ip, limit, &mut Vec::new()) {
                let _ = writeln!(
                    out,
                    "MTU: {size}-byte IP packet larger than {limit}: dropped (too_big), \
                         answered with {answer} (mtu {}) out of in_port {in_port} \
                         (rate-limited per source)",
                    if ip.version == 6 {
                        limit.max(1280)
                    } else {
                        limit
                    }
                );
            } else {
                let _ = writeln!(
                    out,
                    "MTU: {size}-byte IP packet larger than {limit}, and no {answer} may \
                         answer it: dropped (oversize)"
                );
            }
        }
    }
    None
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Extra {
    syn: bool,
    mss: Option<u16>,
    ip_len: Option<u16>,
    df: Option<bool>,
}

fn ethernet_header(frame: &mut Vec<u8>, dst: Mac, src: Mac, ethertype: u16) {
    frame.extend_from_slice(&dst.0);
    frame.extend_from_slice(&src.0);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

/// The upper-layer header (and, for echo requests, ping's 56 bytes of data).
fn l4_header(proto: u8, v6: bool, src: Option<u16>, dst: Option<u16>, extra: &Extra) -> Vec<u8> {
    let ports = |h: &mut Vec<u8>| {
        h.extend_from_slice(&src.unwrap_or(0).to_be_bytes());
        h.extend_from_slice(&dst.unwrap_or(0).to_be_bytes());
    };
    let mut h = Vec::new();
    match proto {
        tcp::PROTO_TCP => {
            ports(&mut h);
            h.extend_from_slice(&[0; 8]);
            let words: u8 = if extra.syn { 6 } else { 5 };
            h.push(words << 4);
            h.push(if extra.syn { 0x02 } else { 0x10 });
            h.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
            if extra.syn {
                h.extend_from_slice(&[2, 4]);
                h.extend_from_slice(&extra.mss.unwrap_or(DEFAULT_MSS).to_be_bytes());
            }
        }
        PROTO_UDP => {
            ports(&mut h);
            h.extend_from_slice(&[0, 8, 0, 0]);
        }
        PROTO_ICMP | PROTO_ICMPV6 if proto == PROTO_ICMPV6 || !v6 => {
            h.extend_from_slice(&[if v6 { 128 } else { 8 }, 0, 0, 0, 0, 1, 0, 1]);
            h.resize(8 + 56, 0);
        }
        _ => {}
    }
    h
}

/// The IP packet's length: `ip_len` if given (at least the headers), else headers + payload.
fn ip_length(header: usize, payload: usize, ip_len: Option<u16>) -> Result<usize, String> {
    match ip_len.map(usize::from) {
        Some(n) if n < header + payload.min(20) => Err(format!(
            "ip_len={n} is shorter than the packet's headers ({} bytes)",
            header + payload.min(20)
        )),
        Some(n) => Ok(n),
        None => Ok(header + payload),
    }
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("PACKET must be an Ethernet frame in hex digits".into());
    }
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect();
    if bytes.len() < ethernet::HEADER_LEN {
        return Err(format!(
            "PACKET has {} bytes: an Ethernet header alone is {}",
            bytes.len(),
            ethernet::HEADER_LEN
        ));
    }
    Ok(bytes)
}

/// One line: MACs, EtherType, addresses, protocol.
fn describe(key: &FrameKey, frame: &[u8]) -> String {
    use crate::wire::ethernet::L3;
    let mut text = format!("{} > {}", key.dl_src, key.dl_dst);
    match key.l3 {
        L3::Arp { spa, tpa } => {
            let _ = write!(text, ", ARP {spa} > {tpa}");
        }
        L3::Ipv4 { src, dst, proto } => {
            let _ = write!(text, ", IPv4 {src} > {dst}, {}", proto_name(proto));
        }
        L3::Ipv6 { src, dst, proto } => {
            let _ = write!(text, ", IPv6 {src} > {dst}, {}", proto_name(proto));
        }
        L3::Other => {
            let _ = write!(text, ", dl_type=0x{:04x}", key.dl_type);
        }
    }
    if let Some(p) = key.ports {
        let _ = write!(text, " {} > {}", p.src, p.dst);
    }
    if let Some(ip) = IpView::parse(frame) {
        let _ = write!(text, ", IP length {}", ip.total_len);
        if ip.version == 4 {
            text.push_str(if ip.dont_fragment() {
                ", DF"
            } else {
                ", no DF"
            });
        }
    }
    text
}

fn proto_name(proto: u8) -> String {
    match proto {
        PROTO_ICMP => "icmp".into(),
        tcp::PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        PROTO_ICMPV6 => "icmp6".into(),
        p => format!("nw_proto={p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Switch {
        crate::testing::hub(&[
            "arp,actions=flood",
            "ip,nw_dst=172.31.1.0/24,actions=output:1",
            "ip,nw_dst=172.31.2.0/24,actions=output:2",
            "ip,nw_dst=172.31.3.0/24,actions=output:3",
            "icmp6,ipv6_dst=ff00::/8,actions=flood",
            "ip6,ipv6_dst=fc00:0:0:3::/64,actions=output:3",
        ])
    }

    fn run(sw: &Switch, text: &str) -> String {
        let (port, frame) = frame_for(text, None, sw.ports()).unwrap();
        trace(sw, port, &frame, Instant::now())
    }

    #[test]
    fn an_ipv4_frame_from_a_spoke_is_relayed_to_the_other() {
        let sw = hub();
        let out = run(&sw, "in_port=tun_kl,ip,nw_src=172.31.2.1,nw_dst=172.31.3.1");
        for needle in [
            "Frame: in_port=2 tun_kl, 98 bytes",
            "IPv4 172.31.2.1 > 172.31.3.1, icmp",
            "Flow: ip,nw_dst=172.31.3.0/24,actions=output:3",
            "priority=32768, n_packets=0, n_bytes=0",
            "Actions: output:3",
            "Egress: 3 tun_km (mtu 1450)",
            "MTU: 84-byte IP packet fits (1450)",
            // As docs/operations.md shows it (there, the VNI is seg1.toml's).
            "  -> 3 tun_km: vxlan vni 1193046 to 192.168.200.103:8472, tos 0x00, ttl auto, df, \
             flow hash 0x87785ad3",
            "Depends on: the headers and in_port, the flow table (cacheable until one of them",
        ] {
            assert!(out.contains(needle), "`{needle}` in:\n{out}");
        }
        assert_eq!(sw.flow_stats(3).unwrap().n_packets, 0, "nothing counted");
    }

    #[test]
    fn normal_says_whether_its_decision_may_be_cached() {
        let mut sw = crate::testing::hub(&["actions=normal"]);
        let to = "in_port=tun_kl,dl_src=02:00:00:00:00:02,dl_dst=02:00:00:00:00:03,ip,\
                  nw_src=172.31.2.1,nw_dst=172.31.3.1";
        let out = run(&sw, to);
        assert!(
            out.contains(
                "Depends on: the headers and in_port, the flow table, the MAC table, \
                 the ports flooded (not cacheable: normal found no entry"
            ),
            "{out}"
        );
        // 02:..:03 learnt behind tun_km: now the decision holds until that entry changes.
        let (port, mut frame) = frame_for(
            "in_port=tun_km,dl_src=02:00:00:00:00:03,dl_dst=02:00:00:00:00:02,ip,\
             nw_src=172.31.3.1,nw_dst=172.31.2.1",
            None,
            sw.ports(),
        )
        .unwrap();
        let _ = sw.handle_frame(port, &mut frame, Instant::now());
        let out = run(&sw, to);
        assert!(
            out.contains("normal: 02:00:00:00:00:03 learnt on 3 tun_km")
                && out.contains("the MAC table (cacheable until one of them changes)"),
            "{out}"
        );
    }

    #[test]
    fn mss_and_mtu_are_shown() {
        let sw = hub();
        let out = run(
            &sw,
            "in_port=LOCAL,tcp,nw_dst=172.31.3.1,tp_dst=80,tcp_flags=syn,mss=1460",
        );
        assert!(out.contains("MSS: clamped from 1460 to 1410"), "{out}");
        let big = run(&sw, "ip,nw_src=172.31.1.1,nw_dst=172.31.2.1,ip_len=1500");
        assert!(
            big.contains("dropped (too_big)") && big.contains("mtu 1450"),
            "{big}"
        );
        let frag = run(&sw, "ip,nw_dst=172.31.2.1,ip_len=1500,df=no");
        assert!(frag.contains("sent as 2 fragments"), "{frag}");
        let v6 = run(
            &sw,
            "in_port=tun_kl,ipv6,ipv6_src=fc00:0:0:2::1,ipv6_dst=fc00:0:0:3::1,ip_len=1500",
        );
        assert!(v6.contains("ICMPv6 packet too big (mtu 1450)"), "{v6}");
        let ns = run(&sw, "in_port=LOCAL,icmp6,ipv6_dst=ff02::1:ff00:1");
        assert!(
            ns.contains("33:33:ff:00:00:01")
                && ns.contains("Egress: 2 tun_kl (mtu 1450), 3 tun_km"),
            "{ns}"
        );
    }

    #[test]
    fn drops_are_named() {
        let sw = hub();
        assert!(run(&sw, "ip,nw_dst=10.0.0.1").contains("Drop: no_matching_flow"));
        assert!(run(&sw, "in_port=tun_kl,ip,nw_dst=172.31.2.1").contains("Drop: no_egress"));
        assert!(run(&sw, "dl_src=01:00:00:00:00:01,arp").contains("Drop: multicast_source"));
    }

    #[test]
    fn impossible_descriptions_are_refused() {
        let sw = hub();
        for (text, why) in [
            ("ip,nw_dst=172.31.3.0/24", "is a prefix"),
            ("udp,tcp_flags=syn", "describe TCP segments"),
            ("tcp,mss=1400", "add tcp_flags=syn"),
            ("arp,ip_len=100", "describe IP packets"),
            ("ipv6,df=no", "never fragmented"),
            ("ip,ip_len=10", "shorter than the packet's headers"),
            ("in_port=tun_xx,ip", "unknown port"),
            ("tp_dst=80", "tp_dst"),
            ("ip,actions=drop", "no actions"),
        ] {
            let e = frame_for(text, None, sw.ports()).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        assert!(frame_for("in_port=2", Some("zz"), sw.ports()).is_err());
        assert!(frame_for("ip", Some("ffffffffffff"), sw.ports()).is_err());
    }

    #[test]
    fn a_frame_in_hex_is_traced() {
        let sw = hub();
        let (_, built) = frame_for("ip,nw_dst=172.31.3.1", None, sw.ports()).unwrap();
        let hex: String = built.iter().map(|b| format!("{b:02x}")).collect();
        let (port, frame) = frame_for("in_port=tun_kl", Some(&hex), sw.ports()).unwrap();
        assert_eq!((port, &frame), (PortNo(2), &built));
        assert!(trace(&sw, port, &frame, Instant::now()).contains("Egress: 3 tun_km"));
    }

    /// What the data path did with a frame, in the words a trace uses for it.
    fn datapath_words(action: &crate::switch::Action<'_>) -> String {
        use crate::switch::Action as A;
        match action {
            A::Forward([]) => "to the controllers only".into(),
            A::Forward(ports) => ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            A::Fragments { .. } => "fragments".into(),
            A::Reply { .. } | A::Drop(DropReason::TooBig) => "too_big".into(),
            A::Drop(reason) => format!("Drop: {}", reason.name()),
        }
    }

    /// The same, read from a trace's text.
    fn trace_words(text: &str) -> String {
        if let Some(line) = text.lines().find(|l| l.starts_with("Drop: ")) {
            return line.split(' ').take(2).collect::<Vec<_>>().join(" ");
        }
        if text.contains("to the controllers only") {
            return "to the controllers only".into();
        }
        if text.contains("fragments\n") {
            return "fragments".into();
        }
        if text.contains("(too_big)") {
            return "too_big".into();
        }
        if text.contains("dropped (oversize)") {
            return "Drop: oversize".into();
        }
        let ports = |s: &str| {
            s.split(", ")
                .map(|p| p.split(' ').next().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
                .join(",")
        };
        if let Some(at) = text.find("sent only to those it fits (") {
            let rest = &text[at + "sent only to those it fits (".len()..];
            return ports(&rest[..rest.find(')').unwrap_or(0)]);
        }
        let egress = text
            .lines()
            .find_map(|l| l.strip_prefix("Egress: "))
            .unwrap_or("");
        ports(egress)
    }

    const FLOW_POOL: [&str; 12] = [
        "arp,actions=flood",
        "ip,nw_dst=172.31.1.0/24,actions=output:1",
        "ip,nw_dst=172.31.2.0/24,actions=output:2",
        "priority=40000,ip,nw_dst=172.31.3.0/24,actions=output:3",
        "icmp6,ipv6_dst=ff00::/8,actions=flood",
        "ip6,ipv6_dst=fc00:0:0:3::/64,actions=output:3,output:1",
        "priority=50000,tcp,tp_dst=80,actions=controller",
        "priority=50000,udp,tp_dst=53,actions=drop",
        "priority=1,actions=normal",
        "priority=45000,ip,nw_src=172.31.9.0/24,actions=controller,output:2",
        "priority=45000,ip6,ipv6_src=fc00:0:0:9::/64,actions=in_port",
        "priority=44000,ip,nw_dst=172.31.4.0/24,actions=flood",
    ];

    const FRAME_POOL: [&str; 12] = [
        "arp,nw_src=172.31.1.1,nw_dst=172.31.2.1",
        "ip,nw_src=172.31.1.1,nw_dst=172.31.2.1",
        "ip,nw_src=172.31.2.1,nw_dst=172.31.3.1",
        "tcp,nw_src=172.31.1.1,nw_dst=172.31.3.1,tcp_flags=syn,mss=1460",
        "tcp,nw_src=172.31.1.1,nw_dst=172.31.5.1,tp_dst=80",
        "udp,nw_src=172.31.1.1,nw_dst=172.31.3.1,tp_dst=53",
        "ip,nw_src=172.31.9.1,nw_dst=172.31.7.1",
        "ipv6,ipv6_src=fc00:0:0:1::1,ipv6_dst=fc00:0:0:3::1",
        "ipv6,ipv6_src=fc00:0:0:9::1,ipv6_dst=fc00:0:0:7::1",
        "icmp6,ipv6_src=fc00:0:0:1::1,ipv6_dst=ff02::1:ff00:1",
        "ip,nw_src=172.31.1.1,nw_dst=172.31.4.1",
        "dl_type=0x88b5",
    ];

    /// The frame's inner TOS byte / traffic class and TTL / hop limit set to `tos` and `ttl`
    /// (the IPv4 header checksum kept right).
    fn set_tos_and_ttl(frame: &mut [u8], tos: u8, ttl: u8) {
        match u16::from_be_bytes([frame[12], frame[13]]) {
            ETHERTYPE_IPV4 => {
                frame[15] = tos;
                frame[22] = ttl;
                frame[24..26].fill(0);
                let sum = checksum::of(&[&frame[14..34]]);
                frame[24..26].copy_from_slice(&sum.to_be_bytes());
            }
            ETHERTYPE_IPV6 => {
                frame[14] = (frame[14] & 0xf0) | (tos >> 4);
                frame[15] = (frame[15] & 0x0f) | (tos << 4);
                frame[21] = ttl;
            }
            _ => {}
        }
    }

    /// What the data path sends to each tunnel, in the words of a trace's encapsulation lines:
    /// for every frame it sends (the frame, or each fragment) and every egress port, that
    /// port's [`Switch::encapsulation`] of the frame, as `deliver` works it out.
    fn datapath_encapsulations(
        sw: &Switch,
        ports: &[PortNo],
        frames: &[Vec<u8>],
    ) -> Vec<Vec<String>> {
        frames
            .iter()
            .map(|frame| {
                let ip = IpView::parse(frame);
                ports
                    .iter()
                    .filter_map(|&p| {
                        let encap = sw.encapsulation(p, frame, ip.as_ref())?;
                        let name = &sw.ports().iter().find(|q| q.no == p)?.name;
                        Some(format!("  -> {p} {name}: {encap}"))
                    })
                    .collect()
            })
            .collect()
    }

    /// The encapsulation lines of a trace.
    fn traced_encapsulations(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("  -> "))
            .map(str::to_owned)
            .collect()
    }

    proptest::proptest! {
        /// Whatever the table, fail mode, split horizon, MAC table, MTU, tunnel options and
        /// frame, a trace says what the data path then does with the same frame: the same drop
        /// reason, the same egress ports, the same MTU outcome, and for every tunnel egress the
        /// same encapsulation (tunnel, remote, outer TOS, TTL, DF, flow hash).
        #[test]
        fn a_trace_says_what_the_data_path_does(
            flows in proptest::sample::subsequence(FLOW_POOL.to_vec(), 0..=FLOW_POOL.len()),
            frames in proptest::collection::vec((0..FRAME_POOL.len(), 1u32..4, 0u8..4, proptest::option::of(60u16..1600), proptest::bool::ANY, proptest::prelude::any::<u8>(), 1u8..=255), 1..12),
            fail_open: bool,
            horizon: bool,
            mtu in 1200u16..1500,
            tos in proptest::option::of(proptest::prelude::any::<u8>()),
            ttl in (0u8..3, 1u8..=255),
            df in 0u8..3,
            gre in proptest::option::of(proptest::option::of(proptest::prelude::any::<u32>())),
        ) {
            use crate::switch::{DfMode, GreTunnel, PortKind};
            use crate::wire::tunnel::{TosMode, TtlMode};
            let options = crate::switch::PortOptions {
                split_horizon: horizon.then(|| "spokes".to_owned()),
                tos: tos.map_or(TosMode::Inherit, TosMode::Fixed),
                ttl: match ttl {
                    (0, _) => TtlMode::Default,
                    (1, t) => TtlMode::Fixed(t),
                    _ => TtlMode::Inherit,
                },
                df: [DfMode::Set, DfMode::Unset, DfMode::Inherit][usize::from(df)],
                src_port_range: Some((50000, 50999)),
                ..Default::default()
            };
            let mut ports = crate::testing::hub_ports(&options);
            if let Some(key) = gre {
                ports[2].kind = PortKind::Gre(GreTunnel {
                    remote: "192.168.200.103".parse().unwrap(),
                    key,
                    csum: key.is_some_and(|k| k & 1 == 1),
                    seq: key.is_some_and(|k| k & 2 == 2),
                });
                ports[2].options.src_port_range = None;
            }
            let mut sw = crate::testing::switch_with(ports, &flows);
            sw.set_mtu(PortNo(2), 1450);
            sw.set_mtu(PortNo(3), mtu);
            sw.set_fail_open(fail_open);
            let now = Instant::now();
            for (which, port, mac, ip_len, df, inner_tos, inner_ttl) in frames {
                let mut text = format!("in_port={port},dl_src=02:00:00:00:00:0{mac},{}", FRAME_POOL[which]);
                let is_ip = FRAME_POOL[which].starts_with("ip")
                    || FRAME_POOL[which].starts_with("tcp")
                    || FRAME_POOL[which].starts_with("udp")
                    || FRAME_POOL[which].starts_with("icmp6");
                if let (Some(len), true) = (ip_len, is_ip && !text.contains("syn")) {
                    text.push_str(&format!(",ip_len={len}"));
                    if !df && !text.contains("ipv6") && !text.contains("icmp6") {
                        text.push_str(",df=no");
                    }
                }
                if (mac & 1) == 1 && !text.contains("dl_dst") {
                    // Unicast to a MAC the table may have learnt.
                    text.push_str(&format!(",dl_dst=02:00:00:00:00:0{}", mac ^ 1));
                }
                let (in_port, mut frame) = frame_for(&text, None, sw.ports()).unwrap();
                set_tos_and_ttl(&mut frame, inner_tos, inner_ttl);
                let traced = trace(&sw, in_port, &frame, now);
                let action = sw.handle_frame(in_port, &mut frame, now);
                let done = datapath_words(&action);
                // What was sent where, copied out of the switch's buffers.
                let (egress, sent): (Vec<PortNo>, Vec<Vec<u8>>) = match action {
                    crate::switch::Action::Forward(ports) => (ports.to_vec(), vec![frame.clone()]),
                    crate::switch::Action::Fragments { ports, frames, ranges } => (
                        ports.to_vec(),
                        ranges.iter().map(|r| frames[r.clone()].to_vec()).collect(),
                    ),
                    _ => (Vec::new(), Vec::new()),
                };
                proptest::prop_assert_eq!(trace_words(&traced), done, "{}\n{}", text, traced);
                // Every frame sent (each fragment) leaves each tunnel as the trace says.
                let lines = traced_encapsulations(&traced);
                for expected in datapath_encapsulations(&sw, &egress, &sent) {
                    proptest::prop_assert_eq!(&lines, &expected, "{}\n{}", text, traced);
                }
                if sent.is_empty() {
                    proptest::prop_assert!(lines.is_empty(), "nothing sent: {}\n{}", text, traced);
                }
                // What the fast path was offered to cache, the trace says may be cached.
                if sw.take_cache_hint().is_some() {
                    proptest::prop_assert!(traced.contains("(cacheable"), "{}\n{}", text, traced);
                }
            }
        }
    }

    #[test]
    fn each_tunnel_egress_shows_its_encapsulation() {
        let sw = hub();
        let out = run(
            &sw,
            "in_port=LOCAL,udp,nw_src=172.31.1.1,nw_dst=172.31.3.1,tp_src=5000,tp_dst=53",
        );
        let (_, frame) = frame_for(
            "in_port=LOCAL,udp,nw_src=172.31.1.1,nw_dst=172.31.3.1,tp_src=5000,tp_dst=53",
            None,
            sw.ports(),
        )
        .unwrap();
        let hash = crate::wire::tunnel::flow_hash(&frame, IpView::parse(&frame).as_ref());
        let line = format!(
            "Encapsulation:\n  -> 3 tun_km: vxlan vni 1193046 to 192.168.200.103:8472, tos 0x00, \
             ttl auto, df, flow hash 0x{hash:08x}\n"
        );
        assert!(out.contains(&line), "{line} in:\n{out}");
        let flood = run(&sw, "in_port=LOCAL,arp,nw_src=172.31.1.1,nw_dst=172.31.2.1");
        assert_eq!(traced_encapsulations(&flood).len(), 2, "{flood}");
        let frag = run(&sw, "ip,nw_dst=172.31.2.1,ip_len=1500,df=no");
        assert!(
            frag.contains("Encapsulation (of each fragment):\n  -> 2 tun_kl"),
            "{frag}"
        );
        let big = run(&sw, "ip,nw_src=172.31.1.1,nw_dst=172.31.2.1,ip_len=1500");
        assert!(
            traced_encapsulations(&big).is_empty(),
            "nothing sent: {big}"
        );
    }
}
