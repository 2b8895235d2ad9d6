//! The encapsulation of a frame leaving by a tunnel port: which tunnel (VXLAN VNI or GRE key),
//! to which remote, and the outer TOS, TTL and DF and the flow hash that the outer headers
//! take from the port's configuration and the inner frame.
//!
//! [`Port::encapsulation`] is the one place this is worked out. The data path sends with it
//! (`daemon::datapath::route_of`), `vxtunctl trace` prints it, and the kernel fast path's
//! entries are made from it, so that the three cannot disagree. What is left to the I/O
//! shell is I/O: which socket of a pool the flow hash (or a `flow_spread = "balance"` turn)
//! picks, header templates, GRE sequence numbers.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::{DfMode, Port, PortKind, Switch};
use crate::flow::PortNo;
use crate::wire::ip::IpView;
use crate::wire::tunnel::{self, TosMode, TtlMode};

/// How a frame leaves by a tunnel port: the result of [`Port::encapsulation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encapsulation {
    /// The tunnel and its identifier.
    pub tunnel: Tunnel,
    /// The remote's underlay address.
    pub remote: IpAddr,
    /// The outer TOS byte (IPv4) or traffic class (IPv6): the port's DSCP (or the inner
    /// packet's, for `tos = "inherit"`) and the inner ECN field per RFC 6040.
    pub tos: u8,
    /// The outer TTL (IPv4) or hop limit (IPv6); `None`: the underlay's default (what the
    /// kernel gives the sending socket, `net.ipv4.ip_default_ttl`), for `ttl = "auto"` and for
    /// `ttl = "inherit"` with a frame that is not IP.
    pub ttl: Option<u8>,
    /// Whether the outer IPv4 header has DF set. Always true over IPv6, which has no DF bit
    /// and whose packets are never fragmented on the way.
    pub df: bool,
    /// The inner flow's hash (RFC 7348 section 5): the sender picks the socket of its pool,
    /// and so the outer UDP source port, from it; GRE over IPv6 makes its flow label of it
    /// (RFC 6438).
    pub flow_hash: u32,
    /// The outer UDP source ports a VXLAN tunnel sends from (the tunnel's or `[underlay]
    /// src_port_range`); `None`: ports the kernel picks, and GRE.
    pub src_ports: Option<(u16, u16)>,
    /// Which of these follow the inner packet rather than the port: what a cache that
    /// recomputes them per packet (the kernel fast path) must copy.
    pub inherit: Inherit,
}

/// The tunnel a frame leaves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    /// VXLAN (RFC 7348) with this VNI, to this UDP port on the remote.
    Vxlan {
        /// The VXLAN Network Identifier.
        vni: u32,
        /// The remote's UDP port.
        dst_port: u16,
    },
    /// Ethernet over GRE (RFC 2784, 2890).
    Gre {
        /// The key, if the tunnel has one.
        key: Option<u32>,
        /// Whether a checksum is sent.
        csum: bool,
        /// Whether sequence numbers are sent.
        seq: bool,
    },
}

/// Which outer fields are copied from the inner packet (the port's `inherit` modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inherit {
    /// The DSCP (`tos = "inherit"`); the ECN field follows the inner packet always.
    pub dscp: bool,
    /// The TTL / hop limit (`ttl = "inherit"`).
    pub ttl: bool,
    /// The DF bit (`df = "inherit"`).
    pub df: bool,
}

impl Port {
    /// How `frame` (`ip`, its IP header, if it is IP) leaves by this port; `None` for the
    /// local port, which encapsulates nothing.
    pub fn encapsulation(&self, frame: &[u8], ip: Option<&IpView>) -> Option<Encapsulation> {
        let (tunnel, remote) = match &self.kind {
            PortKind::Local => return None,
            PortKind::Vxlan(t) => (
                Tunnel::Vxlan {
                    vni: t.vni,
                    dst_port: t.dst_port,
                },
                t.remote,
            ),
            PortKind::Gre(t) => (
                Tunnel::Gre {
                    key: t.key,
                    csum: t.csum,
                    seq: t.seq,
                },
                t.remote,
            ),
        };
        let options = &self.options;
        Some(Encapsulation {
            tunnel,
            remote,
            tos: tunnel::outer_tos(options.tos, frame, ip),
            ttl: Some(tunnel::outer_ttl(options.ttl, frame, ip)).filter(|&t| t != 0),
            df: outer_df(options.df, ip),
            flow_hash: tunnel::flow_hash(frame, ip),
            src_ports: match tunnel {
                Tunnel::Vxlan { .. } => options.src_port_range,
                Tunnel::Gre { .. } => None,
            },
            inherit: Inherit {
                dscp: options.tos == TosMode::Inherit,
                ttl: options.ttl == TtlMode::Inherit,
                df: options.df == DfMode::Inherit,
            },
        })
    }
}

impl Switch {
    /// How `frame` (`ip`, its IP header, if it is IP) leaves by `port`: [`Port::encapsulation`]
    /// of the switch's port. `None` for the local port and for a port the switch does not have.
    pub fn encapsulation(
        &self,
        port: PortNo,
        frame: &[u8],
        ip: Option<&IpView>,
    ) -> Option<Encapsulation> {
        self.ports[self.slot(port)?].encapsulation(frame, ip)
    }

    /// The encapsulation of `frame` by each tunnel among `egress` (a decision's egress ports,
    /// as [`Switch::xlate`] and [`Switch::fit`] left them), in their order; the local port is
    /// left out.
    pub fn encapsulations<'a>(
        &'a self,
        egress: &'a [PortNo],
        frame: &'a [u8],
        ip: Option<&'a IpView>,
    ) -> impl Iterator<Item = (PortNo, Encapsulation)> + 'a {
        egress
            .iter()
            .filter_map(move |&p| Some((p, self.encapsulation(p, frame, ip)?)))
    }
}

/// Whether a frame goes out with DF under `df`: `inherit` copies an inner IPv4 packet's DF and
/// sets it for everything else (inner IPv6, frames that are not IP).
fn outer_df(df: DfMode, ip: Option<&IpView>) -> bool {
    match df {
        DfMode::Set => true,
        DfMode::Unset => false,
        DfMode::Inherit => ip.is_none_or(|ip| ip.dont_fragment()),
    }
}

/// One line, as `vxtunctl trace` prints it: `vxlan vni 42 to 10.0.0.1:4789, tos 0x00, ttl
/// auto, df, flow hash 0x1234abcd, source ports 50000-50999` (see docs/operations.md).
impl fmt::Display for Encapsulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tunnel {
            Tunnel::Vxlan { vni, dst_port } => {
                write!(
                    f,
                    "vxlan vni {vni} to {}",
                    SocketAddr::new(self.remote, dst_port)
                )?;
            }
            Tunnel::Gre { key, csum, seq } => {
                match key {
                    Some(k) => write!(f, "gre key {k}")?,
                    None => f.write_str("gre no key")?,
                }
                if csum {
                    f.write_str(" csum")?;
                }
                if seq {
                    f.write_str(" seq")?;
                }
                write!(f, " to {}", self.remote)?;
            }
        }
        let inherited = |yes: bool| if yes { " (inherited)" } else { "" };
        write!(
            f,
            ", tos 0x{:02x}{}",
            self.tos,
            inherited(self.inherit.dscp)
        )?;
        match self.ttl {
            Some(t) => write!(f, ", ttl {t}{}", inherited(self.inherit.ttl))?,
            None => f.write_str(", ttl auto")?,
        }
        if self.remote.is_ipv4() {
            let df = if self.df { "df" } else { "no df" };
            write!(f, ", {df}{}", inherited(self.inherit.df))?;
        }
        write!(f, ", flow hash 0x{:08x}", self.flow_hash)?;
        if let Some((min, max)) = self.src_ports {
            write!(f, ", source ports {min}-{max}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::{GreTunnel, PortOptions, VxlanTunnel};
    use crate::wire::tunnel::{CE, ECT_0, ECT_1, NOT_ECT};

    fn udp4(tos: u8, ttl: u8, df: bool) -> Vec<u8> {
        crate::testing::udp4(tos, ttl, df, 4000)
    }

    fn tcp6(tclass: u8, hop_limit: u8) -> Vec<u8> {
        crate::testing::tcp6(tclass, hop_limit, 4000)
    }

    fn arp() -> Vec<u8> {
        crate::wire::vectors::KERNEL_ARP[8..].to_vec()
    }

    fn vxlan(options: PortOptions) -> Port {
        Port {
            no: PortNo(2),
            name: "v".into(),
            kind: PortKind::Vxlan(VxlanTunnel {
                remote: "192.0.2.1".parse().unwrap(),
                vni: 42,
                dst_port: 4789,
            }),
            options,
        }
    }

    fn gre(key: Option<u32>, remote: &str) -> Port {
        Port {
            no: PortNo(3),
            name: "g".into(),
            kind: PortKind::Gre(GreTunnel {
                remote: remote.parse().unwrap(),
                key,
                csum: key.is_some(),
                seq: false,
            }),
            options: PortOptions::default(),
        }
    }

    fn of(port: &Port, frame: &[u8]) -> Encapsulation {
        port.encapsulation(frame, IpView::parse(frame).as_ref())
            .unwrap()
    }

    fn with(tos: TosMode, ttl: TtlMode, df: DfMode) -> Port {
        vxlan(PortOptions {
            tos,
            ttl,
            df,
            ..Default::default()
        })
    }

    #[test]
    fn the_local_port_encapsulates_nothing() {
        let local = crate::testing::local();
        assert_eq!(local.encapsulation(&udp4(0, 64, true), None), None);
        let sw = crate::testing::hub(&[]);
        assert_eq!(sw.encapsulation(PortNo::LOCAL, &arp(), None), None);
        assert_eq!(
            sw.encapsulation(PortNo(9), &arp(), None),
            None,
            "no such port"
        );
        assert!(sw.encapsulation(PortNo(2), &arp(), None).is_some());
    }

    #[test]
    fn tos_fixed_or_inherited_with_ecn_per_rfc_6040() {
        let fixed = with(TosMode::Fixed(0x23), TtlMode::Default, DfMode::Set);
        let inherit = with(TosMode::Inherit, TtlMode::Default, DfMode::Set);
        for (inner, outer) in [
            (NOT_ECT, NOT_ECT),
            (ECT_0, ECT_0),
            (ECT_1, ECT_1),
            (CE, ECT_0),
        ] {
            // The fixed value's own ECN bits are ignored; CE outside would lose a mark.
            assert_eq!(of(&fixed, &udp4(0xb8 | inner, 64, true)).tos, 0x20 | outer);
            assert_eq!(
                of(&inherit, &udp4(0xb8 | inner, 64, true)).tos,
                0xb8 | outer
            );
            assert_eq!(of(&inherit, &tcp6(0x48 | inner, 64)).tos, 0x48 | outer);
            assert_eq!(of(&fixed, &tcp6(0x48 | inner, 64)).tos, 0x20 | outer);
        }
        assert_eq!(of(&inherit, &arp()).tos, 0, "not IP: nothing to inherit");
        assert_eq!(of(&fixed, &arp()).tos, 0x20);
        assert!(of(&inherit, &arp()).inherit.dscp && !of(&fixed, &arp()).inherit.dscp);
    }

    #[test]
    fn ttl_auto_fixed_or_inherited() {
        let auto = with(TosMode::default(), TtlMode::Default, DfMode::Set);
        let fixed = with(TosMode::default(), TtlMode::Fixed(9), DfMode::Set);
        let inherit = with(TosMode::default(), TtlMode::Inherit, DfMode::Set);
        for frame in [udp4(0, 61, true), tcp6(0, 33), arp()] {
            assert_eq!(of(&auto, &frame).ttl, None);
            assert_eq!(of(&fixed, &frame).ttl, Some(9));
        }
        assert_eq!(of(&inherit, &udp4(0, 61, true)).ttl, Some(61));
        assert_eq!(of(&inherit, &tcp6(0, 33)).ttl, Some(33), "the hop limit");
        assert_eq!(of(&inherit, &arp()).ttl, None, "not IP: the default");
        assert!(of(&inherit, &arp()).inherit.ttl);
        assert!(!of(&fixed, &arp()).inherit.ttl && !of(&auto, &arp()).inherit.ttl);
    }

    #[test]
    fn df_set_unset_or_inherited() {
        let port = |df| with(TosMode::default(), TtlMode::Default, df);
        for frame in [udp4(0, 64, true), udp4(0, 64, false), tcp6(0, 64), arp()] {
            assert!(of(&port(DfMode::Set), &frame).df);
            assert!(!of(&port(DfMode::Unset), &frame).df);
        }
        let inherit = port(DfMode::Inherit);
        assert!(of(&inherit, &udp4(0, 64, true)).df, "inner DF copied");
        assert!(
            !of(&inherit, &udp4(0, 64, false)).df,
            "inner DF clear copied"
        );
        assert!(of(&inherit, &tcp6(0, 64)).df, "inner IPv6: set");
        assert!(of(&inherit, &arp()).df, "not IP: set");
        assert!(of(&inherit, &arp()).inherit.df);
        assert!(!of(&port(DfMode::Unset), &arp()).inherit.df);
    }

    #[test]
    fn vxlan_and_gre_with_and_without_key() {
        let frame = udp4(0, 64, true);
        let v = of(
            &vxlan(PortOptions {
                src_port_range: Some((50000, 50999)),
                ..Default::default()
            }),
            &frame,
        );
        assert_eq!(
            v.tunnel,
            Tunnel::Vxlan {
                vni: 42,
                dst_port: 4789
            }
        );
        assert_eq!(v.remote, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(v.src_ports, Some((50000, 50999)));
        assert_eq!(
            v.flow_hash,
            tunnel::flow_hash(&frame, IpView::parse(&frame).as_ref())
        );
        let keyed = of(&gre(Some(7), "192.0.2.2"), &frame);
        assert_eq!(
            keyed.tunnel,
            Tunnel::Gre {
                key: Some(7),
                csum: true,
                seq: false
            }
        );
        assert_eq!(keyed.src_ports, None, "GRE has no ports");
        assert_eq!(keyed.flow_hash, v.flow_hash, "the hash is the inner flow's");
        let plain = of(&gre(None, "2001:db8::2"), &tcp6(0, 64));
        assert_eq!(
            plain.tunnel,
            Tunnel::Gre {
                key: None,
                csum: false,
                seq: false
            }
        );
        assert!(plain.df, "over IPv6: never fragmented on the way");
    }

    #[test]
    fn printed_as_trace_shows_it() {
        let frame = udp4(0xb9, 61, false);
        let port = vxlan(PortOptions {
            tos: TosMode::Inherit,
            ttl: TtlMode::Fixed(9),
            df: DfMode::Inherit,
            src_port_range: Some((50000, 50999)),
            ..Default::default()
        });
        let e = of(&port, &frame);
        assert_eq!(
            e.to_string(),
            format!(
                "vxlan vni 42 to 192.0.2.1:4789, tos 0xb9 (inherited), ttl 9, no df \
                 (inherited), flow hash 0x{:08x}, source ports 50000-50999",
                e.flow_hash
            )
        );
        let e = of(&gre(Some(7), "2001:db8::2"), &arp());
        assert_eq!(
            e.to_string(),
            format!(
                "gre key 7 csum to 2001:db8::2, tos 0x00, ttl auto, flow hash 0x{:08x}",
                e.flow_hash
            )
        );
        let e = of(&gre(None, "192.0.2.2"), &arp());
        assert!(e
            .to_string()
            .starts_with("gre no key to 192.0.2.2, tos 0x00, ttl auto, df,"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let port = with(TosMode::Inherit, TtlMode::Inherit, DfMode::Inherit);
            let ip = IpView::parse(&bytes);
            let _ = port.encapsulation(&bytes, ip.as_ref()).map(|e| e.to_string());
        }
    }
}
