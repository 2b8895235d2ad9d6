//! The checks the fuzz targets make on one input, shared by the cargo-fuzz targets
//! (`fuzz_targets/*.rs`, nightly) and by `tests/fuzz_corpus.rs`, which replays every corpus
//! through them on stable. Each takes arbitrary bytes and panics on a finding: a parser that
//! panics, or an invariant that does not hold (what decodes re-encodes to the same thing, what
//! prints parses back, split frames are well-formed).

#![allow(dead_code)]

use std::path::Path;

use vxtund::bgp::{Event, Session, SessionConfig, State};
use vxtund::config::Config;
use vxtund::control::{Request, Response};
use vxtund::evpn::{route, Change, Table, TableConfig};
use vxtund::flow::edit::parse_pattern;
use vxtund::flow::{parse_flow, PortNames, PortNo};
use vxtund::wire::ethernet::FrameKey;
use vxtund::wire::ip::IpView;
use vxtund::wire::offload::{self, VnetHdr, VNET_HDR_LEN};
use vxtund::wire::{gre, vxlan};

/// A check on one input (panics on a finding).
pub type Check = fn(&[u8]);

/// Every check, by fuzz target name.
pub const CHECKS: &[(&str, Check)] = &[
    ("vxlan_decode", vxlan_decode),
    ("gre_decode", gre_decode),
    ("frame_key", frame_key),
    ("ip_view", ip_view),
    ("offload_segment", offload_segment),
    ("plan_runs", plan_runs),
    ("flow_parse", flow_parse),
    ("config_parse", config_parse),
    ("control_protocol", control_protocol),
    ("openflow_agent", openflow_agent),
    ("evpn_update", evpn_update),
    ("segment_sizes", segment_sizes),
];

/// VXLAN: a header that decodes re-encodes to the same VNI.
pub fn vxlan_decode(data: &[u8]) {
    if let Ok(h) = vxlan::Header::decode(data) {
        assert!(h.vni <= 0x00ff_ffff, "VNI {} beyond 24 bits", h.vni);
        let mut again = h.encode().to_vec();
        again.extend_from_slice(&data[vxlan::HEADER_LEN..]);
        assert_eq!(vxlan::Header::decode(&again), Ok(h));
    }
}

/// GRE: a header that decodes lies inside the packet, and re-encoded for the same payload
/// (its checksum recomputed) decodes to the same header and length.
pub fn gre_decode(data: &[u8]) {
    if let Ok((h, len)) = gre::Header::decode(data) {
        assert!(len <= data.len() && len == h.len(), "header length {len}");
        let payload = &data[len..];
        let mut out = [0u8; gre::MAX_LEN];
        let n = h.encode(payload, &mut out);
        let mut again = out[..n].to_vec();
        again.extend_from_slice(payload);
        assert_eq!(gre::Header::decode(&again), Ok((h, len)));
    }
}

/// The frame key flows match on: never a panic; a frame of an Ethernet header or more parses.
pub fn frame_key(data: &[u8]) {
    let key = FrameKey::parse(data);
    if data.len() >= 18 {
        assert!(key.is_ok(), "a frame of {} bytes has a key", data.len());
    }
    // The kernel fast path's key of the same frame, when it has one, stands for exactly the
    // key the flows match on.
    if let Some(fast) = vxtund::fastpath::tap_key(data) {
        assert_eq!(Some(fast.frame_key()), key.ok());
    }
}

/// The inner IP view: what it finds lies inside the frame.
pub fn ip_view(data: &[u8]) {
    if let Some(ip) = IpView::parse(data) {
        assert!(ip.version == 4 || ip.version == 6);
        assert!(ip.header_len <= ip.total_len, "{ip:?}");
        assert!(
            ip.l3 + ip.total_len <= data.len(),
            "{ip:?} in {}",
            data.len()
        );
        let _ = ip.dont_fragment();
        let _ = ip.has_transport_header();
        // Finishing a partial checksum rewrites the checksum field alone.
        let mut finished = data.to_vec();
        if vxtund::wire::offload::finish_partial_checksum(&mut finished) {
            assert_eq!(IpView::parse(&finished), Some(ip));
            assert_eq!(finished.len(), data.len());
        }
    }
}

/// The handshake MSS table (`vxtund::segments`): learning from any frame never panics, and
/// what a SYN teaches bounds its own connection's segments by its MSS.
pub fn segment_sizes(data: &[u8]) {
    let table = vxtund::segments::SegmentSizes::new();
    if let Some(ip) = IpView::parse(data) {
        table.learn(data, &ip);
        if let Some(limit) = table.payload_limit(data, &ip) {
            let mss = vxtund::wire::tcp::syn_mss(data, &ip)
                .unwrap_or_else(|| panic!("a limit learnt from no SYN: {limit}"));
            assert!(limit <= usize::from(mss), "{limit} over the MSS {mss}");
        }
    }
}

/// The virtio-net header and superframe split: every frame it makes is a whole IP packet (its
/// length fields agree with its size) of the superframe's protocol, and none is larger than
/// the headers plus the segment size.
pub fn offload_segment(data: &[u8]) {
    let Some(hdr) = VnetHdr::decode(data) else {
        return;
    };
    assert_eq!(VnetHdr::decode(&hdr.encode()), Some(hdr));
    let mut frame = data[VNET_HDR_LEN..].to_vec();
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    match offload::segment(&hdr, &mut frame, &mut out, &mut ranges) {
        Ok(offload::Segmented::Whole) => assert!(ranges.is_empty()),
        Ok(offload::Segmented::Split) => {
            let first = IpView::parse(&data[VNET_HDR_LEN..]);
            for r in &ranges {
                let seg = &out[r.clone()];
                let ip = IpView::parse(seg).unwrap_or_else(|| panic!("segment {r:?} is not IP"));
                assert_eq!(ip.l3 + ip.total_len, seg.len(), "segment {r:?}: {ip:?}");
                if let Some(first) = first {
                    assert_eq!((ip.version, ip.proto), (first.version, first.proto));
                }
            }
        }
        Err(_) => {}
    }
}

/// The coalescing planner, on frames cut from the input (each frame prefixed by a length byte
/// pair): runs cover the frames in order, each run's superframe (headers, then each frame's
/// payload) splits back into as many frames, carrying the same payloads. The first byte's
/// bit 0 says whether UDP coalesces, bit 1 whether checksums are left unverified (as for
/// frames an outer checksum already covered).
pub fn plan_runs(data: &[u8]) {
    let (udp, verify, mut rest) = match data.split_first() {
        Some((b, rest)) => (b & 1 == 1, b & 2 == 0, rest),
        None => return,
    };
    let mut frames: Vec<&[u8]> = Vec::new();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        frames.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    let mut runs = Vec::new();
    offload::plan_runs_checked(&frames, udp, verify, &mut runs);
    let mut next = 0;
    for run in &runs {
        assert_eq!(run.first, next, "runs in order, none skipped");
        assert!((1..=offload::MAX_RUN).contains(&run.count));
        next += run.count;
        if run.count == 1 {
            continue;
        }
        let members = &frames[run.first..run.first + run.count];
        let mut superframe = run.headers[..run.headers_len].to_vec();
        for f in members {
            superframe.extend_from_slice(offload::run_payload(run, f));
        }
        assert!(
            superframe.len() <= 65_535 + 22,
            "superframe of {}",
            superframe.len()
        );
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        let split = offload::segment(&run.hdr, &mut superframe, &mut out, &mut ranges);
        assert_eq!(split, Ok(offload::Segmented::Split), "{:?}", run.hdr);
        assert_eq!(ranges.len(), run.count, "{:?}", run.hdr);
        for (r, f) in ranges.iter().zip(members) {
            assert_eq!(
                offload::run_payload(run, &out[r.clone()]),
                offload::run_payload(run, f),
                "a segment carries its frame's payload"
            );
        }
    }
    assert_eq!(next, frames.len(), "every frame in a run");
}

/// Port names of the flow checks: 1 the device, 2 and 3 tunnels.
struct Ports;

impl PortNames for Ports {
    fn resolve(&self, name: &str) -> Option<PortNo> {
        match name {
            "vxt0" => Some(PortNo(1)),
            "tun_a" => Some(PortNo(2)),
            "tun_b" => Some(PortNo(3)),
            _ => None,
        }
    }

    fn exists(&self, port: PortNo) -> bool {
        (1..=3).contains(&port.0)
    }
}

/// Flow syntax: a flow that parses prints to text that parses to the same flow, and prints
/// the same again; the del/mod pattern parser never panics.
pub fn flow_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(flow) = parse_flow(text, &Ports) {
        let printed = flow.to_string();
        let again = parse_flow(&printed, &Ports)
            .unwrap_or_else(|e| panic!("`{text}` prints as `{printed}`, which fails: {e}"));
        assert_eq!(again, flow, "`{text}` -> `{printed}`");
        assert_eq!(again.to_string(), printed);
    }
    let _ = parse_pattern(text, &Ports);
}

/// The config: arbitrary text is parsed or refused, never a panic.
pub fn config_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(Path::new("fuzz.toml"), text);
    }
}

/// The control protocol: a request that parses encodes to text that parses to the same
/// request; any answer decodes, and re-encoded decodes the same.
pub fn control_protocol(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = Request::parse(text) {
        let encoded = request.encode();
        assert_eq!(Request::parse(&encoded), Ok(request), "{encoded:?}");
    }
    let response = Response::decode(text);
    assert_eq!(Response::decode(&response.encode()), response, "{text:?}");
}

/// A switch of three ports whose table is a list: what the OpenFlow agent edits and reads.
#[derive(Default)]
struct ListDatapath {
    flows: Vec<vxtund::flow::Flow>,
}

impl vxtund::openflow::agent::Datapath for ListDatapath {
    fn description(&self) -> String {
        "fuzz".into()
    }
    fn ports(&self) -> Vec<vxtund::openflow::agent::PortInfo> {
        (1..=3)
            .map(|no| vxtund::openflow::agent::PortInfo {
                no: PortNo(no),
                name: format!("p{no}"),
                hw_addr: [2, 0, 0, 0, 0, no as u8],
                stats: Default::default(),
                age: std::time::Duration::ZERO,
            })
            .collect()
    }
    fn flows(&self) -> Vec<vxtund::openflow::agent::FlowEntry> {
        self.flows
            .iter()
            .map(|f| vxtund::openflow::agent::FlowEntry {
                flow: f.clone(),
                packets: 0,
                bytes: 0,
                age: std::time::Duration::ZERO,
            })
            .collect()
    }
    fn table_counts(&self) -> (u64, u64) {
        (0, 0)
    }
    fn edit(
        &mut self,
        edit: vxtund::flow::edit::FlowEdit,
    ) -> Result<vxtund::flow::edit::Edited, vxtund::flow::edit::EditError> {
        let edited = vxtund::flow::edit::apply(&self.flows, &edit)?;
        self.flows = edited.flows.clone();
        Ok(edited)
    }
    fn packet_out(
        &mut self,
        _in_port: PortNo,
        _frame: Vec<u8>,
        _actions: Option<Vec<vxtund::flow::Action>>,
    ) {
    }
    fn request_role(
        &mut self,
        _session: u64,
        _role: u32,
        _generation: u64,
    ) -> Result<(), vxtund::openflow::convert::OfError> {
        Ok(())
    }
    fn master(&self) -> Option<u64> {
        None
    }
}

/// The OpenFlow agent after HELLO, fed the input as a stream of messages (cut by their length
/// fields): never a panic, every answer decodes, and every flow it put in the table goes to
/// the wire (OXM and instructions) and back unchanged.
pub fn openflow_agent(data: &[u8]) {
    use vxtund::openflow::{agent::Agent, convert, Message, HEADER_LEN};
    let mut dp = ListDatapath::default();
    let mut agent = Agent::new(1, 1);
    let hello = Message::Hello {
        versions: Some(1 << 4),
    }
    .encode(0);
    agent.handle(&mut dp, &hello);
    let mut messages = Vec::new();
    let mut rest = data;
    while rest.len() >= HEADER_LEN {
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]])).clamp(HEADER_LEN, rest.len());
        messages.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    let outcome = agent.handle_batch(&mut dp, &messages);
    for reply in &outcome.replies {
        assert!(
            Message::decode(reply).is_ok(),
            "an answer that does not decode: {reply:02x?}"
        );
    }
    for flow in &dp.flows {
        let m = convert::match_to_wire(&flow.matches);
        assert_eq!(convert::match_from_wire(&m), Ok(flow.matches), "{flow}");
        let exists = |p: PortNo| (1..=3).contains(&p.0);
        let actions = convert::actions_from_wire(&convert::actions_to_wire(&flow.actions), &exists);
        assert_eq!(actions, Ok(flow.actions.clone()), "{flow}");
    }
}

/// FRR's OPEN, which the `evpn_update` target's session is established with first.
const FRR_OPEN: &[u8] = include_bytes!("../src/evpn/vectors/frr_open_rr.bin");

/// BGP EVPN: the input is what an established peer sends (any bytes, cut anywhere). The
/// session never panics; every UPDATE it accepts goes through `read_update` into a table with
/// small limits, which hold; every announced route re-encodes (as we would announce it) to an
/// UPDATE that reads back to the same route; remote MACs are always behind known VTEPs.
pub fn evpn_update(data: &[u8]) {
    let now = std::time::Instant::now();
    let router_id = std::net::Ipv4Addr::new(192, 168, 77, 12);
    let mut session = Session::new(SessionConfig {
        local_as: 65000,
        peer_as: 65000,
        router_id,
        hold_time: 90,
    });
    session.connected(now);
    session.receive(FRR_OPEN, now);
    session.receive(&vxtund::bgp::message::keepalive(), now);
    assert_eq!(session.state(), State::Established);
    let mut table = Table::new(TableConfig {
        vni: 100,
        vtep: std::net::IpAddr::V4(router_id),
        router_id,
        route_targets: vec!["65000:100".parse().expect("route target")],
        max_routes: 64,
        max_vteps: 8,
    });
    // Cut the input into reads of varying sizes, as TCP would.
    let mut rest = data;
    while !rest.is_empty() {
        let take = (usize::from(rest[0]) % 97 + 1).min(rest.len());
        session.receive(&rest[..take], now);
        rest = &rest[take..];
        while let Some(event) = session.poll_event() {
            let Event::Update { update, malformed } = event else {
                continue;
            };
            let changes = route::read_update(&update, !malformed.is_empty());
            for change in &changes {
                let Change::Announce(key, attrs) = change else {
                    continue;
                };
                let advert = route::Advert {
                    vtep: attrs.next_hop,
                    vni: attrs.vni & 0xff_ffff,
                    route_targets: attrs.route_targets.clone(),
                    seq: attrs.seq,
                };
                let bytes = vxtund::bgp::message::encode(&netgauze_bgp_pkt::BgpMessage::Update(
                    route::announce(&[*key], &advert),
                ));
                let Ok(bytes) = bytes else {
                    continue;
                };
                let mut decoder = vxtund::bgp::message::Decoder::new(true);
                let Ok((netgauze_bgp_pkt::BgpMessage::Update(again), _)) = decoder.decode(&bytes)
                else {
                    panic!("our announcement of {key:?} does not decode");
                };
                let read = route::read_update(&again, false);
                assert!(
                    matches!(&read[..], [Change::Announce(k, _)] if k == key),
                    "{key:?} re-read as {read:?}"
                );
            }
            table.apply(0, changes, !malformed.is_empty());
            assert!(table.route_count() <= 64);
            assert!(table.remote_vteps().count() <= 8);
            for (_, remote) in table.remote_macs() {
                assert!(table.has_vtep(remote.vtep));
            }
        }
    }
    table.drop_peer(0);
    assert_eq!(table.route_count(), 0);
    assert_eq!(table.remote_macs().count(), 0);
}
