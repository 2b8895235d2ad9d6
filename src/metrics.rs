//! The Prometheus exposition of vxtund's counters, as a pure function: a [`Snapshot`] of the
//! numbers (the switch's [`Counters`], in the daemon the sum of the shards' read without their
//! locks, and a few small structs, nothing formatted) taken from a switch, then [`render`]ed
//! into the classic text format (version 0.0.4) that Debian's `promtool check metrics`
//! accepts.
//!
//! Names follow Prometheus' conventions: one `vxtund_` prefix, base units (bytes, seconds),
//! `_total` on counters, `_info` for metadata. Label values are bounded: ports are the
//! configured ones, drop reasons a fixed list, and flows are exported one series each only for
//! the first [`MAX_FLOW_SERIES`] flows of the table (in table order), the rest summed into one
//! series labelled `match="(other flows)"`, so that a 100,000-flow table does not become
//! 100,000 series.

use std::fmt::Write;

use crate::flow::{Flow, Match};
use crate::switch::{Counters, DropReason, PortStats, Switch};

/// Most flows exported as series of their own; the rest are summed into one.
pub const MAX_FLOW_SERIES: usize = 100;

/// The label value of the series that sums the flows past [`MAX_FLOW_SERIES`].
pub const OTHER_FLOWS: &str = "(other flows)";

/// The switch's counters and what they are counters of, and the daemon's own.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The switch's counters (in port slot and table order).
    pub counters: Counters,
    /// Per port slot: name and tunnel MTU (`None` for the TAP).
    pub ports: Vec<(String, Option<u16>)>,
    /// The first flows' priority and match.
    pub flows: Vec<(u16, Match)>,
    /// Flows in the table.
    pub flow_count: usize,
    /// Learnt MACs.
    pub mac_entries: usize,
    /// Whether every frame takes `normal` (standalone with no controller connected).
    pub fail_open: bool,
    /// Frames received per data-path thread (`tap-rx-0`, `net-rx-0`, ...): how the workers
    /// share the load.
    pub threads: Vec<(String, u64)>,
    /// Reloads applied and refused.
    pub reloads: (u64, u64),
    /// Requests the metrics endpoint refused, by reason (kept by the HTTP side).
    pub http_refused: Vec<(&'static str, u64)>,
    /// The kernel fast path's counters.
    pub fast_path: FastPathStats,
    /// The daemon's version.
    pub version: &'static str,
    /// Seconds since the Unix epoch when the daemon started.
    pub start_time_seconds: f64,
}

/// The kernel fast path's counters, as the metrics show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastPathStats {
    /// Whether it is in force.
    pub active: bool,
    /// Cache entries at the last sweep.
    pub entries: u64,
    /// Frames forwarded in the kernel: encapsulated, decapsulated.
    pub hits: [u64; 2],
    /// Cacheable frames that found no valid entry and went to vxtund: encap, decap side.
    pub upcalls: [u64; 2],
    /// Frames the cache never holds, sent to vxtund: uncacheable, too big, ECN CE over
    /// Not-ECT, helper errors.
    pub passed: [u64; 4],
    /// Installs: made, refused by the kernel, skipped by the rate limit.
    pub installs: [u64; 3],
    /// Entries removed: idle, stale.
    pub evictions: [u64; 2],
    /// Lookups that found an entry of an older generation or past its deadline.
    pub stale: u64,
}

impl Snapshot {
    /// Takes the switch's counters, port names and MTUs and the first flows' matches, nothing
    /// formatted. The daemon calls it on the sum of its shards (see `Shared::query`), read
    /// without their locks.
    pub fn take(sw: &Switch) -> Snapshot {
        let table = sw.table().flows();
        Snapshot {
            counters: Counters::clone(sw.counters()),
            ports: sw
                .ports()
                .iter()
                .map(|p| (p.name.clone(), sw.mtu(p.no)))
                .collect(),
            flows: table
                .iter()
                .take(MAX_FLOW_SERIES)
                .map(|f| (f.priority, f.matches))
                .collect(),
            flow_count: table.len(),
            mac_entries: sw.fdb().len(),
            fail_open: sw.fail_open(),
            ..Snapshot::default()
        }
    }
}

/// The snapshot in the Prometheus text format.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096 + 160 * s.flows.len());
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let c = &s.counters;
    let port = |name: &str| labels(&[("port", name)]);
    let per_port = |f: &dyn Fn(&PortStats) -> u64| -> Vec<(String, String)> {
        s.ports
            .iter()
            .enumerate()
            .map(|(slot, (name, _))| (port(name), f(&c.port(slot).unwrap_or_default()).to_string()))
            .collect()
    };
    family(
        "vxtund_port_rx_packets_total",
        "counter",
        "Frames received on the port (before any drop).",
        &per_port(&|p| p.rx_packets),
    );
    family(
        "vxtund_port_rx_bytes_total",
        "counter",
        "Bytes of the frames received on the port (inner Ethernet frames for tunnels).",
        &per_port(&|p| p.rx_bytes),
    );
    family(
        "vxtund_port_tx_packets_total",
        "counter",
        "Frames sent out of the port.",
        &per_port(&|p| p.tx_packets),
    );
    family(
        "vxtund_port_tx_bytes_total",
        "counter",
        "Bytes of the frames sent out of the port (inner Ethernet frames for tunnels).",
        &per_port(&|p| p.tx_bytes),
    );
    family(
        "vxtund_port_tx_errors_total",
        "counter",
        "Frames the kernel refused to send out of the port.",
        &per_port(&|p| p.tx_errors),
    );
    let mtus: Vec<(String, String)> = s
        .ports
        .iter()
        .filter_map(|(name, mtu)| mtu.map(|m| (port(name), m.to_string())))
        .collect();
    family(
        "vxtund_tunnel_mtu",
        "gauge",
        "The largest inner IP packet the tunnel carries (its MTU).",
        &mtus,
    );
    let drops: Vec<(String, String)> = DropReason::ALL
        .iter()
        .map(|&r| (labels(&[("reason", r.name())]), c.drops(r).to_string()))
        .collect();
    family(
        "vxtund_drops_total",
        "counter",
        "Frames and datagrams dropped, by reason.",
        &drops,
    );
    let mut flow_packets = Vec::with_capacity(s.flows.len() + 1);
    let mut flow_bytes = Vec::with_capacity(s.flows.len() + 1);
    let stats = |i: usize| c.flow(i).unwrap_or_default();
    for (i, (priority, matches)) in s.flows.iter().enumerate() {
        let l = labels(&[
            ("priority", &priority.to_string()),
            ("match", &match_text(matches)),
        ]);
        flow_packets.push((l.clone(), stats(i).n_packets.to_string()));
        flow_bytes.push((l, stats(i).n_bytes.to_string()));
    }
    if s.flow_count > s.flows.len() {
        let (mut packets, mut bytes) = (0, 0);
        for i in s.flows.len()..s.flow_count {
            packets += stats(i).n_packets;
            bytes += stats(i).n_bytes;
        }
        let l = labels(&[("priority", "any"), ("match", OTHER_FLOWS)]);
        flow_packets.push((l.clone(), packets.to_string()));
        flow_bytes.push((l, bytes.to_string()));
    }
    family(
        "vxtund_flow_packets_total",
        "counter",
        "Frames that matched the flow (the first 100 flows of the table; the rest summed).",
        &flow_packets,
    );
    family(
        "vxtund_flow_bytes_total",
        "counter",
        "Bytes of the frames that matched the flow (the first 100 flows; the rest summed).",
        &flow_bytes,
    );
    let threads: Vec<(String, String)> = s
        .threads
        .iter()
        .map(|(thread, n)| (labels(&[("thread", thread)]), n.to_string()))
        .collect();
    family(
        "vxtund_thread_rx_frames_total",
        "counter",
        "Frames each data-path thread received (a worker per TAP queue, a thread per \
         direction; with worker_threads = 1, each side of a worker's one thread; `control` for \
         the frames controllers sent).",
        &threads,
    );
    let plain = |v: u64| vec![(String::new(), v.to_string())];
    family(
        "vxtund_flows",
        "gauge",
        "Flows in the table.",
        &plain(s.flow_count as u64),
    );
    family(
        "vxtund_mac_table_entries",
        "gauge",
        "MAC addresses learnt by actions=normal.",
        &plain(s.mac_entries as u64),
    );
    let m = &c.mtu();
    for (name, help, v) in [
        (
            "vxtund_mss_clamped_total",
            "TCP SYNs whose MSS was lowered to fit a tunnel.",
            m.mss_clamped,
        ),
        (
            "vxtund_too_big_sent_total",
            "ICMP fragmentation-needed and ICMPv6 packet-too-big answers sent.",
            m.too_big_sent,
        ),
        (
            "vxtund_too_big_rate_limited_total",
            "Too-big answers not sent because of the per-source rate limit.",
            m.too_big_rate_limited,
        ),
        (
            "vxtund_fragmented_packets_total",
            "IPv4 packets without DF fragmented to fit a tunnel.",
            m.fragmented,
        ),
        (
            "vxtund_fragments_total",
            "Fragments those packets became.",
            m.fragments,
        ),
    ] {
        family(name, "counter", help, &plain(v));
    }
    let o = &c.offload();
    for (name, help, v) in [
        (
            "vxtund_offload_split_total",
            "TCP/UDP superframes read from the TAP and split.",
            o.split,
        ),
        (
            "vxtund_offload_split_segments_total",
            "Frames the superframes were split into.",
            o.split_segments,
        ),
        (
            "vxtund_offload_coalesced_total",
            "Superframes written to the TAP.",
            o.coalesced,
        ),
        (
            "vxtund_offload_coalesced_segments_total",
            "Frames the written superframes were made of.",
            o.coalesced_segments,
        ),
        (
            "vxtund_offload_repeated_total",
            "Frames that took the decision of the frame before them without a flow lookup.",
            o.repeated,
        ),
    ] {
        family(name, "counter", help, &plain(v));
    }
    for (name, help, v) in [
        (
            "vxtund_packet_ins_total",
            "Frames handed to the OpenFlow controllers (PACKET_IN).",
            c.packet_in().sent,
        ),
        (
            "vxtund_packet_ins_rate_limited_total",
            "Frames a controller action asked for beyond the packet-in rate limit.",
            c.packet_in().rate_limited,
        ),
    ] {
        family(name, "counter", help, &plain(v));
    }
    family(
        "vxtund_fail_open",
        "gauge",
        "1 while every frame takes normal because no controller is connected (fail_mode standalone).",
        &plain(u64::from(s.fail_open)),
    );
    let fp = &s.fast_path;
    let dirs = |v: [u64; 2]| {
        vec![
            (labels(&[("direction", "encap")]), v[0].to_string()),
            (labels(&[("direction", "decap")]), v[1].to_string()),
        ]
    };
    family(
        "vxtund_fast_path_active",
        "gauge",
        "1 while the kernel fast path (BPF) forwards the flows vxtund has decided.",
        &plain(u64::from(fp.active)),
    );
    family(
        "vxtund_fast_path_entries",
        "gauge",
        "Flows in the kernel fast path's cache.",
        &plain(fp.entries),
    );
    family(
        "vxtund_fast_path_hits_total",
        "counter",
        "Frames the kernel fast path forwarded, by direction.",
        &dirs(fp.hits),
    );
    family(
        "vxtund_fast_path_upcalls_total",
        "counter",
        "Cacheable frames with no valid cache entry, decided by vxtund (misses), by direction.",
        &dirs(fp.upcalls),
    );
    let passed: Vec<(String, String)> = ["uncacheable", "too_big", "ecn_ce_not_ect", "error"]
        .iter()
        .zip(fp.passed)
        .map(|(r, n)| (labels(&[("reason", r)]), n.to_string()))
        .collect();
    family(
        "vxtund_fast_path_passed_total",
        "counter",
        "Frames the kernel fast path left to vxtund whatever the cache holds, by reason.",
        &passed,
    );
    let installs: Vec<(String, String)> = ["installed", "refused", "rate_limited"]
        .iter()
        .zip(fp.installs)
        .map(|(r, n)| (labels(&[("result", r)]), n.to_string()))
        .collect();
    family(
        "vxtund_fast_path_installs_total",
        "counter",
        "Cache entries vxtund installed after deciding a flow, by result.",
        &installs,
    );
    let evictions: Vec<(String, String)> = ["idle", "stale"]
        .iter()
        .zip(fp.evictions)
        .map(|(r, n)| (labels(&[("reason", r)]), n.to_string()))
        .collect();
    family(
        "vxtund_fast_path_evictions_total",
        "counter",
        "Cache entries removed: unused for 10 s (idle) or decided before a change (stale).",
        &evictions,
    );
    family(
        "vxtund_config_reloads_total",
        "counter",
        "Reloads of the config file (SIGHUP or vxtunctl reload), by result.",
        &[
            (labels(&[("result", "applied")]), s.reloads.0.to_string()),
            (labels(&[("result", "refused")]), s.reloads.1.to_string()),
        ],
    );
    let refused: Vec<(String, String)> = s
        .http_refused
        .iter()
        .map(|(reason, n)| (labels(&[("reason", reason)]), n.to_string()))
        .collect();
    family(
        "vxtund_metrics_requests_refused_total",
        "counter",
        "Requests and connections the metrics endpoint refused, by reason.",
        &refused,
    );
    family(
        "vxtund_start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the Unix epoch.",
        &[(String::new(), format!("{:.3}", s.start_time_seconds))],
    );
    family(
        "vxtund_build_info",
        "gauge",
        "Always 1; the version of the running vxtund as a label.",
        &[(labels(&[("version", s.version)]), "1".into())],
    );
    out
}

/// The match part of a flow as ovs-ofctl prints it, without priority and actions (`any` for
/// the empty match).
pub fn match_text(m: &Match) -> String {
    let flow = Flow::new(crate::flow::DEFAULT_PRIORITY, *m, Vec::new());
    let text = flow.to_string();
    let cut = text.rfind("actions=").map_or(text.as_str(), |i| &text[..i]);
    match cut.trim_end_matches(',') {
        "" => "any".into(),
        m => m.into(),
    }
}

/// `{a="x",b="y"}` with values escaped as the text format asks.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::PortNo;
    use crate::testing::hub as switch;
    use std::time::Instant;

    #[test]
    fn every_counter_is_exported_with_help_type_and_labels() {
        let mut sw = switch(&["arp,actions=flood", "priority=5,actions=normal"]);
        let mut arp = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        let _ = sw.handle_frame(PortNo(2), &mut arp, Instant::now());
        let mut snapshot = Snapshot::take(&sw);
        snapshot.version = "1.2.3";
        snapshot.reloads = (2, 1);
        let text = render(&snapshot);
        for needle in [
            "# TYPE vxtund_port_rx_packets_total counter\n",
            "vxtund_port_rx_packets_total{port=\"tun_kl\"} 1\n",
            "vxtund_port_tx_packets_total{port=\"vxt0\"} 1\n",
            "vxtund_port_tx_errors_total{port=\"vxt0\"} 0\n",
            "vxtund_tunnel_mtu{port=\"tun_kl\"} 1450\n",
            "vxtund_drops_total{reason=\"wrong_vni\"} 0\n",
            "vxtund_drops_total{reason=\"bad_offload\"} 0\n",
            "vxtund_flow_packets_total{priority=\"32768\",match=\"arp\"} 1\n",
            "vxtund_flow_packets_total{priority=\"5\",match=\"any\"} 0\n",
            "vxtund_mac_table_entries 0\n",
            "vxtund_mss_clamped_total 0\n",
            "vxtund_offload_repeated_total 0\n",
            "vxtund_config_reloads_total{result=\"applied\"} 2\n",
            "vxtund_config_reloads_total{result=\"refused\"} 1\n",
            "vxtund_build_info{version=\"1.2.3\"} 1\n",
            "# TYPE vxtund_packet_ins_total counter\n",
            "vxtund_packet_ins_rate_limited_total 0\n",
            "vxtund_fail_open 0\n",
        ] {
            assert!(text.contains(needle), "`{needle}` in:\n{text}");
        }
        assert!(!text.contains(OTHER_FLOWS));
        for reason in DropReason::ALL {
            assert!(text.contains(&format!("reason=\"{}\"", reason.name())));
        }
    }

    #[test]
    fn flows_past_the_limit_are_summed_into_one_series() {
        let texts: Vec<String> = (0..250)
            .map(|i| format!("ip,nw_dst=10.{}.{}.0/24,actions=output:2", i / 256, i % 256))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let snapshot = Snapshot::take(&switch(&refs));
        let text = render(&snapshot);
        let series = text
            .lines()
            .filter(|l| l.starts_with("vxtund_flow_packets_total{"))
            .count();
        assert_eq!(series, MAX_FLOW_SERIES + 1);
        assert!(text.contains("vxtund_flows 250\n"), "{text}");
        assert!(text.contains(&format!("match=\"{OTHER_FLOWS}\"")));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("a", "x\"y\\z\n"), ("b", "c")]),
            "{a=\"x\\\"y\\\\z\\n\",b=\"c\"}"
        );
    }
}
