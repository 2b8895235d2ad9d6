//! Fixtures shared by the unit tests of several modules (compiled for tests only).

use crate::fdb::{MacTable, DEFAULT_AGEING, DEFAULT_CAPACITY};
use crate::flow::{parse_flow, FlowTable, PortNo};
use crate::switch::{Port, PortKind, PortOptions, PortTable, Switch, VxlanTunnel};

/// A UDP port on 127.0.0.1 that nothing has bound (the kernel's pick, let go at once): unit
/// tests that bind ports of their own take these, so that they never share one.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port on loopback")
}

/// The scenario's hub: `vxt0` (port 1), VXLAN tunnels `tun_kl` (2, to 192.168.200.102) and
/// `tun_km` (3, to .103), each with MTU 1450, and `flows` (port names allowed).
pub fn hub(flows: &[&str]) -> Switch {
    hub_with(flows, &PortOptions::default())
}

/// [`hub`] with `options` on both tunnels (a split-horizon group, MSS clamping...).
pub fn hub_with(flows: &[&str], options: &PortOptions) -> Switch {
    let mut sw = switch_with(hub_ports(options), flows);
    sw.set_mtu(PortNo(2), 1450);
    sw.set_mtu(PortNo(3), 1450);
    sw
}

/// [`hub`] without tunnel MTUs: nothing is too big for a tunnel and no SYN is clamped.
pub fn bare_hub(flows: &[&str]) -> Switch {
    switch_with(hub_ports(&PortOptions::default()), flows)
}

/// The hub's ports: [`local`], `tun_kl` (2, to .102) and `tun_km` (3, to .103) with
/// `options`.
pub fn hub_ports(options: &PortOptions) -> Vec<Port> {
    let with = |port: Port| Port {
        options: options.clone(),
        ..port
    };
    vec![
        local(),
        with(tunnel(2, "tun_kl", 102)),
        with(tunnel(3, "tun_km", 103)),
    ]
}

/// Port 1, the TAP `vxt0`.
pub fn local() -> Port {
    Port {
        no: PortNo(1),
        name: "vxt0".into(),
        kind: PortKind::Local,
        options: PortOptions::default(),
    }
}

/// A VXLAN tunnel port of the hub's underlay: port `no` named `name`, to 192.168.200.`last`,
/// UDP port 8472, VNI 0x123456 (the VNI of the datagrams in [`crate::wire::vectors`]).
pub fn tunnel(no: u32, name: &str, last: u8) -> Port {
    Port {
        no: PortNo(no),
        name: name.into(),
        kind: PortKind::Vxlan(VxlanTunnel {
            remote: format!("192.168.200.{last}").parse().unwrap(),
            vni: 0x123456,
            dst_port: 8472,
        }),
        options: PortOptions::default(),
    }
}

/// A switch with `ports` and `flows` (their port names allowed), MTUs unset.
pub fn switch_with(ports: Vec<Port>, flows: &[&str]) -> Switch {
    let names = PortTable(&ports);
    let flows = flows
        .iter()
        .map(|r| parse_flow(r, &names).unwrap())
        .collect();
    Switch::new(
        ports,
        FlowTable::new(flows),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    )
}

/// An Ethernet frame with an IPv4 UDP datagram (10.0.0.1:`sport` to 10.0.0.2:53, 7 bytes of
/// payload) with TOS byte `tos`, TTL `ttl` and DF as `df`.
pub fn udp4(tos: u8, ttl: u8, df: bool, sport: u16) -> Vec<u8> {
    let mut ip = etherparse::Ipv4Header::new(
        0,
        ttl,
        etherparse::IpNumber::UDP,
        [10, 0, 0, 1],
        [10, 0, 0, 2],
    )
    .unwrap();
    ip.dscp = etherparse::IpDscp::try_new(tos >> 2).unwrap();
    ip.ecn = etherparse::IpEcn::try_new(tos & 3).unwrap();
    ip.dont_fragment = df;
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .udp(sport, 53)
        .write(&mut f, b"payload")
        .unwrap();
    f
}

/// An Ethernet frame with an IPv6 TCP segment (fcfc::...:`sport` to fdfd::...:80, 4 bytes of
/// payload) with traffic class `tclass` and hop limit `hop_limit`.
pub fn tcp6(tclass: u8, hop_limit: u8, sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv6([0xfc; 16], [0xfd; 16], hop_limit)
        .tcp(sport, 80, 1, 1000)
        .write(&mut f, b"data")
        .unwrap();
    f[14] = (f[14] & 0xf0) | (tclass >> 4);
    f[15] = (f[15] & 0x0f) | (tclass << 4);
    f
}
