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
    let tunnel = |no: u32, name: &str, last: u8| Port {
        no: PortNo(no),
        name: name.into(),
        kind: PortKind::Vxlan(VxlanTunnel {
            remote: format!("192.168.200.{last}").parse().unwrap(),
            vni: 0,
            dst_port: 8472,
        }),
        options: options.clone(),
    };
    let ports = vec![
        Port {
            no: PortNo(1),
            name: "vxt0".into(),
            kind: PortKind::Local,
            options: PortOptions::default(),
        },
        tunnel(2, "tun_kl", 102),
        tunnel(3, "tun_km", 103),
    ];
    let names = PortTable(&ports);
    let flows = flows
        .iter()
        .map(|r| parse_flow(r, &names).unwrap())
        .collect();
    let mut sw = Switch::new(
        ports,
        FlowTable::new(flows),
        MacTable::new(DEFAULT_CAPACITY, DEFAULT_AGEING),
    );
    sw.set_mtu(PortNo(2), 1450);
    sw.set_mtu(PortNo(3), 1450);
    sw
}
