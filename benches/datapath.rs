//! Per-frame costs of the core: the decision for a frame from the TAP to a tunnel (flow lookup,
//! counters, choosing the tunnel's precomputed VXLAN header: all the per-frame work of
//! encapsulation, since the header and frame then go to the kernel as two iovecs), the same
//! for a VXLAN datagram from a tunnel (header checks, sender and VNI lookup), flow lookup with
//! 10, 1,000 and 100,000 prefixes and with 10, 1,000 and 100,000 TCP/UDP port flows
//! (`tcp,tp_dst=N` and `udp,tp_dst=N`, no prefix), the decision with 1,000 tunnels and 100,000 flows, MSS
//! clamping of a SYN, and the offloads: splitting a 64 KiB TCP superframe from the TAP and
//! planning the coalescing of 32 segments for it.
//!
//! Run with `cargo bench --bench datapath`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vxtund::fdb::{MacTable, DEFAULT_AGEING, DEFAULT_CAPACITY};
use vxtund::flow::{parse_flow, FlowTable, PortNames, PortNo};
use vxtund::switch::{Action, Port, PortKind, Switch, VxlanTunnel};
use vxtund::wire::ethernet::FrameKey;
use vxtund::wire::{offload, vxlan};

struct Ports(u32);

impl PortNames for Ports {
    fn resolve(&self, _: &str) -> Option<PortNo> {
        None
    }
    fn exists(&self, port: PortNo) -> bool {
        (1..=self.0).contains(&port.0)
    }
}

fn ports(tunnels: u32) -> Vec<Port> {
    let mut ports = vec![Port {
        no: PortNo(1),
        name: "vxt0".into(),
        kind: PortKind::Local,
        options: Default::default(),
    }];
    for i in 0..tunnels {
        ports.push(Port {
            no: PortNo(2 + i),
            name: format!("t{i}"),
            kind: PortKind::Vxlan(VxlanTunnel {
                remote: IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i + 2)),
                vni: 0,
                dst_port: 8472,
            }),
            options: Default::default(),
        });
    }
    ports
}

/// `n` /24 prefixes under 10.0.0.0/8 (and 11.0.0.0/8 ... past 65,536) pointing at ports 2 and
/// 3, plus an ARP flood flow.
fn prefix_flows(n: u32) -> FlowTable {
    let names = Ports(3);
    let mut flows: Vec<_> = (0..n)
        .map(|i| {
            let text = format!(
                "ip,nw_dst=10.{}.{}.0/24,actions=output:{}",
                (i >> 8) & 0xff,
                i & 0xff,
                2 + i % 2
            );
            let text = if i >= 65536 {
                text.replacen("10.", &format!("{}.", 11 + (i >> 16)), 1)
            } else {
                text
            };
            parse_flow(&text, &names).unwrap()
        })
        .collect();
    flows.push(parse_flow("arp,actions=flood", &names).unwrap());
    FlowTable::new(flows)
}

fn frame_to(dst: [u8; 4], payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([172, 31, 1, 1], dst, 64)
        .udp(5000, 5001)
        .write(&mut f, &vec![0u8; payload])
        .unwrap();
    f
}

/// `n` flows on destination ports without a prefix: `tcp,tp_dst=N` and `udp,tp_dst=N` for N
/// from 1 up (ports run out at 65,535, so both protocols), plus an `ip` catch-all.
fn port_flows(n: u32) -> FlowTable {
    let names = Ports(3);
    let mut flows: Vec<_> = (0..n)
        .map(|i| {
            let proto = if i % 2 == 0 { "tcp" } else { "udp" };
            let text = format!("{proto},tp_dst={},actions=output:{}", 1 + i / 2, 2 + i % 2);
            parse_flow(&text, &names).unwrap()
        })
        .collect();
    flows.push(parse_flow("ip,actions=output:2", &names).unwrap());
    FlowTable::new(flows)
}

fn udp_frame_to_port(dst_port: u16) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([172, 31, 1, 1], [10, 0, 0, 7], 64)
        .udp(5000, dst_port)
        .write(&mut f, &[0u8; 64])
        .unwrap();
    f
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for n in [10u32, 1_000, 100_000] {
        let table = prefix_flows(n);
        let key = FrameKey::parse(&frame_to([10, 0, (n / 2 % 256) as u8, 7], 64)).unwrap();
        assert!(table.lookup(PortNo(1), &key).is_some());
        group.bench_with_input(BenchmarkId::from_parameter(n), &key, |b, key| {
            b.iter(|| table.lookup(PortNo(1), black_box(key)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("lookup_ports");
    for n in [10u32, 1_000, 100_000] {
        let table = port_flows(n);
        // The UDP flow in the middle of the table.
        let key = FrameKey::parse(&udp_frame_to_port((1 + n / 4) as u16)).unwrap();
        assert_eq!(
            table.lookup(PortNo(1), &key),
            Some((2 * (n / 4) + 1) as usize)
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &key, |b, key| {
            b.iter(|| table.lookup(PortNo(1), black_box(key)))
        });
    }
    group.finish();
}

/// A clock for the benches: one nanosecond later at every call. The switch repeats the last
/// decision for a frame with the same headers within one instant (one batch); a new instant
/// per iteration makes every iteration decide from scratch.
fn ticking() -> impl FnMut() -> Instant {
    let mut now = Instant::now();
    move || {
        now += Duration::from_nanos(1);
        now
    }
}

fn encap_decap(c: &mut Criterion) {
    let mut now = ticking();
    let mut frame = frame_to([10, 0, 3, 7], 1400);
    let mut group = c.benchmark_group("datapath");
    group.throughput(Throughput::Bytes(frame.len() as u64));

    let mut sw = Switch::new(
        ports(2),
        prefix_flows(10),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    );
    let headers = [
        vxlan::Header { vni: 0 }.encode(),
        vxlan::Header { vni: 1 }.encode(),
    ];
    group.bench_function("encap_1400B", |b| {
        b.iter(
            || match sw.handle_frame(PortNo(1), black_box(&mut frame), now()) {
                Action::Forward(ports) => black_box(&headers[(ports[0].0 - 2) as usize]).len(),
                _ => 0,
            },
        )
    });

    let mut datagram = vxlan::Header { vni: 0 }.encode().to_vec();
    datagram.extend_from_slice(&frame);
    let src = IpAddr::V4(Ipv4Addr::from(0xc0a8_0002));
    let mut sw = Switch::new(
        ports(2),
        prefix_flows(10),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    );
    group.bench_function("decap_1400B", |b| {
        b.iter(|| {
            matches!(
                sw.handle_vxlan(8472, src, black_box(&mut datagram), now()),
                Action::Forward(_)
            )
        })
    });

    // The later segments of a received GRO batch: same headers, same instant.
    let batch = Instant::now();
    group.bench_function("decap_1400B_same_headers", |b| {
        b.iter(|| {
            matches!(
                sw.handle_vxlan(8472, src, black_box(&mut datagram), batch),
                Action::Forward(_)
            )
        })
    });

    let mut many = Switch::new(
        ports(1000),
        prefix_flows(10),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    );
    let far = IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + 999 + 2));
    group.bench_function("decap_1400B_1000_tunnels", |b| {
        b.iter(|| {
            matches!(
                many.handle_vxlan(8472, far, black_box(&mut datagram), now()),
                Action::Forward(_)
            )
        })
    });
    group.finish();
}

fn scale_and_offloads(c: &mut Criterion) {
    let mut now = ticking();
    let mut group = c.benchmark_group("datapath");
    let mut datagram = vxlan::Header { vni: 0 }.encode().to_vec();
    datagram.extend_from_slice(&frame_to([10, 0, 3, 7], 1400));
    let far = IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + 999 + 2));
    let mut big = Switch::new(
        ports(1000),
        prefix_flows(100_000),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    );
    group.bench_function("decap_1400B_1000_tunnels_100k_flows", |b| {
        b.iter(|| {
            matches!(
                big.handle_vxlan(8472, far, black_box(&mut datagram), now()),
                Action::Forward(_)
            )
        })
    });

    let mut syn = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([172, 31, 1, 1], [10, 0, 3, 7], 64)
        .tcp(40000, 5201, 1, 64240)
        .syn()
        .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
        .unwrap()
        .write(&mut syn, &[])
        .unwrap();
    let mut sw = Switch::new(
        ports(2),
        prefix_flows(10),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    );
    sw.set_mtu(PortNo(2), 1450);
    sw.set_mtu(PortNo(3), 1450);
    group.bench_function("encap_syn_mss_clamp", |b| {
        b.iter(|| {
            // Restore the MSS so that every iteration clamps.
            let at = syn.len() - 2;
            syn[at..].copy_from_slice(&1460u16.to_be_bytes());
            matches!(
                sw.handle_frame(PortNo(1), black_box(&mut syn), now()),
                Action::Forward(_)
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("offload");
    let mut superframe = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([172, 31, 1, 1], [10, 0, 3, 7], 64)
        .tcp(40000, 5201, 1, 64240)
        .ack(1)
        .write(&mut superframe, &vec![7u8; 64_000])
        .unwrap();
    group.throughput(Throughput::Bytes(superframe.len() as u64));
    let hdr = offload::VnetHdr {
        gso_type: offload::GSO_TCPV4,
        gso_size: 1398,
        ..Default::default()
    };
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    group.bench_function("split_64KB_tso", |b| {
        b.iter(|| {
            out.clear();
            ranges.clear();
            offload::segment(&hdr, black_box(&mut superframe), &mut out, &mut ranges).unwrap();
            ranges.len()
        })
    });
    let frames: Vec<&[u8]> = ranges.iter().take(32).map(|r| &out[r.clone()]).collect();
    let mut runs = Vec::new();
    group.throughput(Throughput::Bytes(
        frames.iter().map(|f| f.len() as u64).sum(),
    ));
    group.bench_function("coalesce_plan_32_segments", |b| {
        b.iter(|| {
            runs.clear();
            offload::plan_runs(black_box(&frames), true, &mut runs);
            runs.len()
        })
    });
    // The same plan without verifying the segments' checksums (`inner_checksum`: an outer
    // checksum the kernel verified already covered them).
    group.bench_function("coalesce_plan_32_segments_unverified", |b| {
        b.iter(|| {
            runs.clear();
            offload::plan_runs_checked(black_box(&frames), true, false, &mut runs);
            runs.len()
        })
    });
    group.finish();
}

criterion_group!(benches, lookup, encap_decap, scale_and_offloads);
criterion_main!(benches);
