//! The EVPN core at fabric scale, without I/O: 1,000 remote VTEPs (type-3 routes) and
//! 100,000 MACs (type-2, 100 per UPDATE as a busy speaker packs them) arrive as bytes through
//! an established session (`bgp::Session`), are read (`evpn::route::read_update`) and applied
//! to the table (`evpn::Table`); then every MAC moves once (a higher sequence number). Prints
//! the times. What the daemon adds on top (the port swap, writing the MAC table) is not here.
//!
//! Run with `cargo bench --bench evpn_table`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use netgauze_bgp_pkt::nlri::RouteDistinguisher;
use netgauze_bgp_pkt::BgpMessage;
use vxtund::bgp::message::{encode, keepalive};
use vxtund::bgp::{Event, Session, SessionConfig};
use vxtund::evpn::route::{announce, Advert, RouteKey};
use vxtund::evpn::{Table, TableConfig};
use vxtund::wire::ethernet::Mac;

const VTEPS: u32 = 1000;
const MACS: u32 = 100_000;

fn vtep(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i + 1))
}

fn rd(i: u32) -> RouteDistinguisher {
    RouteDistinguisher::Ipv4Administrator {
        ip: Ipv4Addr::from(0x0a00_0000 + i + 1),
        number: 100,
    }
}

/// The stream a route reflector would send: every VTEP's type-3, then the MACs.
fn stream(seq: u32) -> Vec<u8> {
    let rt = vec!["65000:100".parse().expect("route target")];
    let mut bytes = Vec::new();
    for v in 0..VTEPS {
        let advert = Advert {
            vtep: vtep(v),
            vni: 100,
            route_targets: rt.clone(),
            seq: 0,
        };
        let key = RouteKey::Imet {
            rd: rd(v),
            originator: vtep(v),
        };
        bytes.extend(encode(&BgpMessage::Update(announce(&[key], &advert))).expect("encodes"));
    }
    let per_vtep = MACS / VTEPS;
    for v in 0..VTEPS {
        let advert = Advert {
            vtep: vtep(v),
            vni: 100,
            route_targets: rt.clone(),
            seq,
        };
        let keys: Vec<RouteKey> = (0..per_vtep)
            .map(|m| {
                let b = (v * per_vtep + m).to_be_bytes();
                RouteKey::MacIp {
                    rd: rd(v),
                    mac: Mac([2, 0, b[0], b[1], b[2], b[3]]),
                    ip: None,
                }
            })
            .collect();
        // After a move, each MAC is behind the next VTEP.
        let owner = if seq == 0 { v } else { (v + 1) % VTEPS };
        let advert = Advert {
            vtep: vtep(owner),
            ..advert
        };
        bytes.extend(encode(&BgpMessage::Update(announce(&keys, &advert))).expect("encodes"));
    }
    bytes
}

fn main() {
    let first = stream(0);
    let moved = stream(1);
    let router_id = Ipv4Addr::new(192, 168, 77, 12);
    let mut session = Session::new(SessionConfig {
        local_as: 65000,
        peer_as: 65000,
        router_id,
        hold_time: 90,
    });
    let now = Instant::now();
    session.connected(now);
    session.receive(include_bytes!("../src/evpn/vectors/frr_open_rr.bin"), now);
    session.receive(&keepalive(), now);
    let mut table = Table::new(TableConfig {
        vni: 100,
        vtep: IpAddr::V4(router_id),
        router_id,
        route_targets: vec!["65000:100".parse().expect("route target")],
        max_routes: 200_000,
        max_vteps: 4096,
    });
    for (what, bytes) in [("initial table", &first), ("every MAC moved", &moved)] {
        let start = Instant::now();
        let mut updates = 0;
        for chunk in bytes.chunks(65536) {
            session.receive(chunk, now);
            while let Some(event) = session.poll_event() {
                if let Event::Update { update, malformed } = event {
                    updates += 1;
                    let changes = vxtund::evpn::route::read_update(&update, !malformed.is_empty());
                    table.apply(0, changes, !malformed.is_empty());
                }
            }
        }
        let took = start.elapsed();
        println!(
            "{what}: {updates} UPDATEs ({:.1} MiB) decoded and applied in {:.0} ms; {} routes, {} VTEPs, {} remote MACs",
            bytes.len() as f64 / (1024.0 * 1024.0),
            took.as_secs_f64() * 1000.0,
            table.route_count(),
            table.remote_vteps().count(),
            table.remote_macs().count()
        );
    }
}
