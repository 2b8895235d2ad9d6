//! The reference scenario simulated in memory: three switches built from the shipped
//! `config/seg*.toml` (or variants of them), joined by tunnels that really encapsulate and
//! decapsulate (VXLAN or GRE), with no root and no kernel. Proves the flows of docs/scenario.md
//! deliver ARP, neighbour discovery, IPv4 and IPv6 between every pair of hosts, l1 <-> m1
//! through the hub, over each encapsulation and underlay family. Every action the switches
//! take is carried out: forwards, fragments (IPv4 without DF, over a tunnel's MTU, which each
//! tunnel has as the daemon sets it from a 1500-byte underlay) and answers back out of the
//! ingress (ICMP too big).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use vxtund::config::{self, Config};
use vxtund::fdb::MacTable;
use vxtund::flow::{FlowTable, PortNo};
use vxtund::switch::{Action, PortKind, Switch};
use vxtund::wire::{gre, vxlan};

struct Segment {
    switch: Switch,
    local: Vec<IpAddr>,
    /// Frames delivered to the local side (the host).
    delivered: Vec<Vec<u8>>,
}

/// How a packet arrives at a segment: from its host, or over a tunnel from an underlay address.
enum Arrival {
    Host,
    Vxlan(IpAddr),
    Gre(IpAddr),
}

struct Fabric {
    segs: Vec<Segment>,
    /// Packets that crossed the underlay: (from segment, to segment).
    underlay_log: Vec<(usize, usize)>,
}

impl Fabric {
    /// The scenario with each shipped config text passed through `edit` first.
    fn scenario_with(edit: impl Fn(&str) -> String) -> Fabric {
        Fabric::from_configs("config", edit)
    }

    /// Three segments from `DIR/seg{1,2,3}.toml` (DIR relative to the crate), each config text
    /// passed through `edit` first.
    fn from_configs(dir: &str, edit: impl Fn(&str) -> String) -> Fabric {
        let segs = (1..=3)
            .map(|n| {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{dir}/seg{n}.toml"));
                let text = edit(&std::fs::read_to_string(&path).unwrap());
                let c = Config::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
                let mut switch = Switch::new(
                    c.ports.clone(),
                    FlowTable::new(c.flows.clone()),
                    MacTable::new(c.fdb_max_entries, c.fdb_ageing),
                );
                for port in &c.ports {
                    if port.kind != PortKind::Local {
                        switch.set_mtu(port.no, config::tunnel_mtu(UNDERLAY_MTU, &port.kind));
                    }
                }
                Segment {
                    switch,
                    local: c.underlay.local,
                    delivered: Vec::new(),
                }
            })
            .collect();
        Fabric {
            segs,
            underlay_log: Vec::new(),
        }
    }

    fn scenario() -> Fabric {
        Fabric::scenario_with(str::to_owned)
    }

    /// Host of segment `seg` (0-based) sends `frame`; runs the fabric until nothing moves.
    fn send(&mut self, seg: usize, frame: Vec<u8>) {
        assert!(self.run(seg, frame, 100), "forwarding loop");
    }

    /// Like `send`, but gives up after `max_steps` decisions: false when the frames were still
    /// moving then (a loop).
    fn run(&mut self, seg: usize, frame: Vec<u8>, max_steps: usize) -> bool {
        let now = Instant::now();
        let mut queue: VecDeque<(usize, Arrival, Vec<u8>)> =
            VecDeque::from([(seg, Arrival::Host, frame)]);
        let mut steps = 0;
        while let Some((s, from, mut bytes)) = queue.pop_front() {
            steps += 1;
            if steps > max_steps {
                return false;
            }
            let sw = &mut self.segs[s].switch;
            let (action, inner_start) = match from {
                Arrival::Host => (sw.handle_frame(PortNo::LOCAL, &mut bytes, now), 0),
                Arrival::Vxlan(src) => (
                    sw.handle_vxlan(8472, src, &mut bytes, now),
                    vxlan::HEADER_LEN,
                ),
                Arrival::Gre(src) => sw.handle_gre(src, &mut bytes, now),
            };
            // What goes out, and where: (ports, frames).
            let out: Vec<(Vec<PortNo>, Vec<Vec<u8>>)> = match action {
                Action::Forward(ports) => {
                    vec![(ports.to_vec(), vec![bytes[inner_start..].to_vec()])]
                }
                Action::Fragments {
                    ports,
                    frames,
                    ranges,
                } => vec![(
                    ports.to_vec(),
                    ranges.iter().map(|r| frames[r.clone()].to_vec()).collect(),
                )],
                Action::Reply { port, frame } => vec![(vec![port], vec![frame.to_vec()])],
                Action::Drop(_) => Vec::new(),
            };
            for (ports, frames) in out {
                for port in ports {
                    for inner in &frames {
                        self.emit(s, port, inner.clone(), &mut queue);
                    }
                }
            }
        }
        true
    }

    /// Sends `inner` out of `port` of segment `s`: to its host, or encapsulated over the
    /// underlay to the segment that owns the tunnel's remote (queued).
    fn emit(
        &mut self,
        s: usize,
        port: PortNo,
        inner: Vec<u8>,
        queue: &mut VecDeque<(usize, Arrival, Vec<u8>)>,
    ) {
        let kind = self.segs[s]
            .switch
            .ports()
            .iter()
            .find(|p| p.no == port)
            .unwrap()
            .kind
            .clone();
        match kind {
            PortKind::Local => self.segs[s].delivered.push(inner),
            PortKind::Vxlan(t) => {
                let (to, src) = self.route(s, t.remote);
                let datagram = [&vxlan::Header { vni: t.vni }.encode()[..], &inner].concat();
                self.underlay_log.push((s, to));
                queue.push_back((to, Arrival::Vxlan(src), datagram));
            }
            PortKind::Gre(t) => {
                let (to, src) = self.route(s, t.remote);
                let header = gre::Header {
                    csum: t.csum,
                    key: t.key,
                    seq: t.seq.then_some(1),
                };
                let mut out = [0u8; gre::MAX_LEN];
                let len = header.encode(&inner, &mut out);
                self.underlay_log.push((s, to));
                queue.push_back((to, Arrival::Gre(src), [&out[..len], &inner[..]].concat()));
            }
        }
    }

    /// The segment that owns `remote`, and the sender's local address of that family.
    fn route(&self, from: usize, remote: IpAddr) -> (usize, IpAddr) {
        let to = self
            .segs
            .iter()
            .position(|x| x.local.contains(&remote))
            .expect("a segment owns the remote");
        let src = *self.segs[from]
            .local
            .iter()
            .find(|l| l.is_ipv4() == remote.is_ipv4())
            .unwrap();
        (to, src)
    }

    fn take_delivered(&mut self, seg: usize) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.segs[seg].delivered)
    }
}

/// The underlay MTU every tunnel's MTU comes from.
const UNDERLAY_MTU: u16 = 1500;

fn mac(n: usize) -> [u8; 6] {
    [2, 0, 0, 0, 0, n as u8 + 1]
}

fn v4(n: usize) -> [u8; 4] {
    [172, 31, n as u8 + 1, 1]
}

fn v6(n: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfc;
    a[7] = n as u8 + 1;
    a[15] = 1;
    a
}

fn arp_request(from: usize, to: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac(from));
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac(from));
    f.extend_from_slice(&v4(from));
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&v4(to));
    f
}

/// The ARP reply of host `from` to host `to`, unicast.
fn arp_reply(from: usize, to: usize) -> Vec<u8> {
    let mut f = mac(to).to_vec();
    f.extend_from_slice(&mac(from));
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&mac(from));
    f.extend_from_slice(&v4(from));
    f.extend_from_slice(&mac(to));
    f.extend_from_slice(&v4(to));
    f
}

fn icmp4(from: usize, to: usize) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(from), mac(to))
        .ipv4(v4(from), v4(to), 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut f, b"ping")
        .unwrap();
    f
}

fn neighbour_solicitation(from: usize, to: usize) -> Vec<u8> {
    let t = v6(to);
    let group = [
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ];
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(from), [0x33, 0x33, 0xff, t[13], t[14], t[15]])
        .ipv6(v6(from), group, 255)
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: 135,
            code_u8: 0,
            bytes5to8: [0; 4],
        })
        .write(&mut f, &t)
        .unwrap();
    f
}

fn icmp6(from: usize, to: usize) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(from), mac(to))
        .ipv6(v6(from), v6(to), 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut f, b"ping")
        .unwrap();
    f
}

#[test]
fn every_host_reaches_every_other_over_ipv4_and_ipv6() {
    check_every_pair(Fabric::scenario());
}

#[test]
fn the_same_over_gre_with_keys_checksums_and_sequence_numbers() {
    check_every_pair(Fabric::scenario_with(|t| {
        t.replace(
            "type = \"vxlan\"",
            "type = \"gre\"\nkey = 7\ncsum = true\nseq = true",
        )
    }));
}

#[test]
fn the_same_mixed_seg2_vxlan_seg3_gre_over_an_ipv6_underlay() {
    check_every_pair(Fabric::scenario_with(|t| {
        let t = t.replace("\"192.168.200.10", "\"2001:db8:200::10");
        let t = t.replace(
            "name = \"tun_km\"              # port 3: to seg3\ntype = \"vxlan\"",
            "name = \"tun_km\"\ntype = \"gre\"",
        );
        let t = t.replace(
            "name = \"tun_mk\"                # port 2: to the hub\ntype = \"vxlan\"",
            "name = \"tun_mk\"\ntype = \"gre\"",
        );
        assert!(!t.contains("192.168."));
        t
    }));
    let f = Fabric::scenario_with(|t| {
        t.replace(
            "name = \"tun_km\"              # port 3: to seg3\ntype = \"vxlan\"",
            "name = \"tun_km\"\ntype = \"gre\"",
        )
    });
    assert!(
        matches!(f.segs[0].switch.ports()[2].kind, PortKind::Gre(_)),
        "the edit took effect"
    );
}

fn check_every_pair(mut fabric: Fabric) {
    for from in 0..3 {
        for to in 0..3 {
            if from == to {
                continue;
            }
            for (what, frame) in [
                ("ARP request", arp_request(from, to)),
                ("neighbour solicitation", neighbour_solicitation(from, to)),
            ] {
                fabric.send(from, frame.clone());
                let got = fabric.take_delivered(to);
                assert_eq!(
                    got,
                    vec![frame],
                    "{what} {from} -> {to} must reach the target once"
                );
                for other in 0..3 {
                    fabric.take_delivered(other);
                }
            }
            for (what, frame) in [("IPv4", icmp4(from, to)), ("IPv6", icmp6(from, to))] {
                fabric.underlay_log.clear();
                fabric.send(from, frame.clone());
                assert_eq!(
                    fabric.take_delivered(to),
                    vec![frame],
                    "{what} {from} -> {to}"
                );
                for other in 0..3 {
                    assert!(
                        fabric.take_delivered(other).is_empty(),
                        "{what} {from} -> {to} leaked to {other}"
                    );
                }
                let spoke_to_spoke = from != 0 && to != 0;
                let expected = if spoke_to_spoke {
                    vec![(from, 0), (0, to)]
                } else {
                    vec![(from, to)]
                };
                assert_eq!(fabric.underlay_log, expected, "{what} {from} -> {to} path");
            }
        }
    }
}

#[test]
fn a_frame_for_an_unknown_prefix_is_dropped_at_the_hub_and_counted() {
    let mut fabric = Fabric::scenario();
    let mut frame = icmp4(0, 1);
    frame[30..34].copy_from_slice(&[10, 9, 9, 9]);
    fabric.send(0, frame);
    assert!(fabric.underlay_log.is_empty());
    assert_eq!(
        fabric.segs[0]
            .switch
            .drops(vxtund::switch::DropReason::NoMatchingFlow),
        1
    );
}

#[test]
fn a_full_mesh_with_split_horizon_delivers_a_broadcast_once_and_without_it_storms() {
    let mut mesh = Fabric::from_configs("config/mesh", str::to_owned);
    assert!(mesh.run(0, arp_request(1, 2), 1000), "no loop");
    assert_eq!(mesh.take_delivered(1), [arp_request(1, 2)], "l1 once");
    assert_eq!(mesh.take_delivered(2), [arp_request(1, 2)], "m1 once");
    assert!(mesh.take_delivered(0).is_empty(), "not back to k1");
    assert_eq!(mesh.underlay_log, [(0, 1), (0, 2)], "one copy per tunnel");
    // The answer is unicast to a learnt MAC, over the direct tunnel only.
    mesh.underlay_log.clear();
    mesh.send(1, arp_reply(2, 1));
    assert_eq!(mesh.take_delivered(0), [arp_reply(2, 1)]);
    assert_eq!(mesh.underlay_log, [(1, 0)]);

    // The same mesh without the groups: the broadcast goes round the triangle for ever.
    let mut storm = Fabric::from_configs("config/mesh", |t| {
        t.replace("split_horizon = \"mesh\"\n", "")
    });
    assert!(!storm.run(0, arp_request(1, 2), 1000), "a storm");
    assert!(storm.take_delivered(1).len() > 100);
}

/// An echo request of `payload` bytes from host `from` to host `to`, DF set or not.
fn big_icmp4(from: usize, to: usize, payload: usize, df: bool) -> Vec<u8> {
    let data: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    let mut f = Vec::new();
    let mut ip =
        etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::ICMP, v4(from), v4(to)).unwrap();
    ip.dont_fragment = df;
    etherparse::PacketBuilder::ethernet2(mac(from), mac(to))
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .icmpv4_echo_request(1, 1)
        .write(&mut f, &data)
        .unwrap();
    f
}

fn big_icmp6(from: usize, to: usize, payload: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(from), mac(to))
        .ipv6(v6(from), v6(to), 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut f, &data)
        .unwrap();
    f
}

/// The IPv4 payload of `fragments` (Ethernet frames of one datagram) put back together;
/// panics if a fragment's IP packet is over `mtu`, or fragments leave a gap or overlap.
fn reassemble(fragments: &[Vec<u8>], mtu: usize) -> Vec<u8> {
    let mut parts: Vec<(usize, Vec<u8>)> = fragments
        .iter()
        .map(|f| {
            let (ip, rest) = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap();
            assert!(
                f.len() - 14 <= mtu,
                "a fragment of {} over {mtu}",
                f.len() - 14
            );
            let len = usize::from(ip.total_len) - ip.header_len();
            (
                usize::from(ip.fragment_offset.value()) * 8,
                rest[..len].to_vec(),
            )
        })
        .collect();
    parts.sort();
    let mut whole = Vec::new();
    for (offset, bytes) in parts {
        assert_eq!(offset, whole.len(), "no gap, no overlap");
        whole.extend(bytes);
    }
    whole
}

#[test]
fn too_big_with_df_is_answered_to_the_sender_without_df_fragmented_to_the_target() {
    for (name, edit) in [
        ("VXLAN", str::to_owned as fn(&str) -> String),
        ("GRE with a key", |t: &str| {
            t.replace("type = \"vxlan\"", "type = \"gre\"\nkey = 7")
        }),
    ] {
        let mut fabric = Fabric::scenario_with(edit);
        // l1 (segment 1) to m1 (segment 2), through the hub.
        let mtu = fabric.segs[1].switch.mtu(PortNo(2)).expect("a tunnel MTU");
        let big = 1472;
        assert!(usize::from(mtu) < 20 + 8 + big, "{name}: {mtu}");

        // DF: nothing crosses; l1 hears "fragmentation needed" with the tunnel's MTU.
        fabric.send(1, big_icmp4(1, 2, big, true));
        assert!(fabric.underlay_log.is_empty(), "{name}");
        let answers = fabric.take_delivered(1);
        assert_eq!(answers.len(), 1, "{name}: {answers:?}");
        let (ip, icmp) = etherparse::Ipv4Header::from_slice(&answers[0][14..]).unwrap();
        assert_eq!(ip.destination, v4(1), "{name}: to the sender");
        assert_eq!(&answers[0][..6], &mac(1), "{name}: to the sender's MAC");
        assert_eq!((icmp[0], icmp[1]), (3, 4), "{name}: fragmentation needed");
        assert_eq!(
            u16::from_be_bytes([icmp[6], icmp[7]]),
            mtu,
            "{name}: the MTU"
        );
        assert!(fabric.take_delivered(2).is_empty(), "{name}");

        // No DF: fragments cross, each within the MTU, and make the datagram again.
        let frame = big_icmp4(1, 2, big, false);
        fabric.send(1, frame.clone());
        let got = fabric.take_delivered(2);
        assert!(got.len() >= 2, "{name}: {} fragment(s)", got.len());
        let original = etherparse::Ipv4Header::from_slice(&frame[14..]).unwrap().1;
        assert_eq!(reassemble(&got, usize::from(mtu)), original, "{name}");
        assert_eq!(
            fabric.underlay_log.len(),
            2 * got.len(),
            "{name}: via the hub"
        );

        // IPv6: packet too big, to the sender, with the MTU.
        fabric.underlay_log.clear();
        fabric.send(1, big_icmp6(1, 2, big));
        assert!(fabric.underlay_log.is_empty(), "{name}");
        let answers = fabric.take_delivered(1);
        assert_eq!(answers.len(), 1, "{name}: {answers:?}");
        let icmp6 = &answers[0][14 + 40..];
        assert_eq!((icmp6[0], icmp6[1]), (2, 0), "{name}: packet too big");
        assert_eq!(
            u32::from_be_bytes([icmp6[4], icmp6[5], icmp6[6], icmp6[7]]),
            u32::from(mtu),
            "{name}: the MTU"
        );
    }
}
