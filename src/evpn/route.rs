//! EVPN routes for VXLAN (RFC 7432, RFC 8365) and their UPDATEs: reading what a peer
//! announced or withdrew ([`read_update`]) and building vxtund's own announcements and
//! withdrawals ([`announce`], [`withdraw`]). The PMSI tunnel attribute (RFC 6514 section 5,
//! type 22) and the encapsulation extended community (RFC 9012, tunnel type 8 = VXLAN) are
//! built and read here: `netgauze-bgp-pkt` keeps them raw.
//!
//! Labels are VNIs in all 24 bits, as FRR and GoBGP send them (RFC 8365 section 5.1.3).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use netgauze_bgp_pkt::community::{
    EvpnExtendedCommunity, ExtendedCommunity, TransitiveFourOctetExtendedCommunity,
    TransitiveIpv4ExtendedCommunity, TransitiveOpaqueExtendedCommunity,
    TransitiveTwoOctetExtendedCommunity,
};
use netgauze_bgp_pkt::nlri::{
    EthernetSegmentIdentifier, EthernetTag, InclusiveMulticastEthernetTagRoute, L2EvpnAddress,
    L2EvpnRoute, MacAddress, MacIpAdvertisement, MplsLabel, RouteDistinguisher,
};
use netgauze_bgp_pkt::path_attribute::{
    As4PathSegment, AsPath, ExtendedCommunities, LocalPreference, MpReach, MpUnreach, Origin,
    PathAttribute, PathAttributeValue, UnknownAttribute,
};
use netgauze_bgp_pkt::update::BgpUpdateMessage;

use crate::wire::ethernet::Mac;

/// Path attribute type of the PMSI tunnel attribute (RFC 6514).
pub const PMSI_TUNNEL: u8 = 22;
/// PMSI tunnel type: ingress replication.
pub const INGRESS_REPLICATION: u8 = 6;
/// Encapsulation extended community: transitive opaque (0x03), sub-type 0x0c.
const ENCAPSULATION_SUBTYPE: u8 = 0x0c;
/// Tunnel type VXLAN in the encapsulation community (RFC 9012).
pub const TUNNEL_VXLAN: u16 = 8;
/// LOCAL_PREF of our routes, as FRR's default.
const LOCAL_PREF: u32 = 100;
/// The largest VNI (24 bits).
const VNI_MAX: u32 = 0xff_ffff;

/// A route target (RFC 4360): `ASN:N` or `IPv4:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// 2-octet AS, 4-octet number.
    As2 {
        /// The AS.
        asn: u16,
        /// The assigned number.
        value: u32,
    },
    /// IPv4 address, 2-octet number.
    Ipv4 {
        /// The address.
        ip: Ipv4Addr,
        /// The assigned number.
        value: u16,
    },
    /// 4-octet AS, 2-octet number.
    As4 {
        /// The AS.
        asn: u32,
        /// The assigned number.
        value: u16,
    },
}

impl RouteTarget {
    /// The default route target of `vni` in AS `asn`, as FRR derives it (`AS:VNI`); `None`
    /// when a 4-octet AS leaves no room for the VNI.
    pub fn derived(asn: u32, vni: u32) -> Option<RouteTarget> {
        match (u16::try_from(asn), u16::try_from(vni)) {
            (Ok(asn), _) => Some(RouteTarget::As2 { asn, value: vni }),
            (Err(_), Ok(value)) => Some(RouteTarget::As4 { asn, value }),
            (Err(_), Err(_)) => None,
        }
    }

    /// As an extended community.
    pub fn community(self) -> ExtendedCommunity {
        match self {
            RouteTarget::As2 { asn, value } => ExtendedCommunity::TransitiveTwoOctet(
                TransitiveTwoOctetExtendedCommunity::RouteTarget {
                    global_admin: asn,
                    local_admin: value,
                },
            ),
            RouteTarget::Ipv4 { ip, value } => {
                ExtendedCommunity::TransitiveIpv4(TransitiveIpv4ExtendedCommunity::RouteTarget {
                    global_admin: ip,
                    local_admin: value,
                })
            }
            RouteTarget::As4 { asn, value } => ExtendedCommunity::TransitiveFourOctet(
                TransitiveFourOctetExtendedCommunity::RouteTarget {
                    global_admin: asn,
                    local_admin: value,
                },
            ),
        }
    }

    /// The route target an extended community is, if it is one.
    pub fn from_community(c: &ExtendedCommunity) -> Option<RouteTarget> {
        match *c {
            ExtendedCommunity::TransitiveTwoOctet(
                TransitiveTwoOctetExtendedCommunity::RouteTarget {
                    global_admin,
                    local_admin,
                },
            ) => Some(RouteTarget::As2 {
                asn: global_admin,
                value: local_admin,
            }),
            ExtendedCommunity::TransitiveIpv4(TransitiveIpv4ExtendedCommunity::RouteTarget {
                global_admin,
                local_admin,
            }) => Some(RouteTarget::Ipv4 {
                ip: global_admin,
                value: local_admin,
            }),
            ExtendedCommunity::TransitiveFourOctet(
                TransitiveFourOctetExtendedCommunity::RouteTarget {
                    global_admin,
                    local_admin,
                },
            ) => Some(RouteTarget::As4 {
                asn: global_admin,
                value: local_admin,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::As2 { asn, value } => write!(f, "{asn}:{value}"),
            RouteTarget::Ipv4 { ip, value } => write!(f, "{ip}:{value}"),
            RouteTarget::As4 { asn, value } => write!(f, "{asn}:{value}"),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = String;

    /// `65000:100` (a 2-octet AS takes a 4-octet number), `4200000000:100` (a 4-octet AS
    /// takes a 2-octet number) or `192.0.2.1:100`.
    fn from_str(text: &str) -> Result<RouteTarget, String> {
        let bad = || {
            format!("route target `{text}`: expected ASN:NUMBER or IPV4:NUMBER, e.g. \"65000:100\"")
        };
        let (admin, number) = text.rsplit_once(':').ok_or_else(bad)?;
        if let Ok(ip) = admin.parse::<Ipv4Addr>() {
            let value = number.parse::<u16>().map_err(|_| bad())?;
            return Ok(RouteTarget::Ipv4 { ip, value });
        }
        let asn = admin.parse::<u32>().map_err(|_| bad())?;
        match u16::try_from(asn) {
            Ok(asn) => Ok(RouteTarget::As2 {
                asn,
                value: number.parse().map_err(|_| bad())?,
            }),
            Err(_) => Ok(RouteTarget::As4 {
                asn,
                value: number.parse().map_err(|_| {
                    format!("route target `{text}`: after a 4-octet AS the number has 16 bits")
                })?,
            }),
        }
    }
}

/// What identifies an EVPN route (its NLRI less the label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKey {
    /// Type 3, inclusive multicast Ethernet tag: a VTEP's membership of the VNI.
    Imet {
        /// Route distinguisher.
        rd: RouteDistinguisher,
        /// The originating router's IP (the VTEP).
        originator: IpAddr,
    },
    /// Type 2, MAC/IP advertisement.
    MacIp {
        /// Route distinguisher.
        rd: RouteDistinguisher,
        /// The MAC.
        mac: Mac,
        /// The IP bound to it, if any.
        ip: Option<IpAddr>,
    },
}

/// The PMSI tunnel attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pmsi {
    /// Flags (leaf information required).
    pub flags: u8,
    /// Tunnel type (6: ingress replication).
    pub tunnel_type: u8,
    /// The label field: the VNI.
    pub label: u32,
    /// Where to send BUM traffic.
    pub endpoint: IpAddr,
}

impl Pmsi {
    /// The attribute's value (flags, type, label, endpoint).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.flags, self.tunnel_type];
        v.extend_from_slice(&self.label.to_be_bytes()[1..]);
        match self.endpoint {
            IpAddr::V4(ip) => v.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => v.extend_from_slice(&ip.octets()),
        }
        v
    }

    /// Reads the attribute's value; `None` if malformed (RFC 7606 section 7.18 wants the
    /// attribute discarded then: the route has no BUM endpoint).
    pub fn decode(value: &[u8]) -> Option<Pmsi> {
        let (head, endpoint) = value.split_at_checked(5)?;
        let endpoint = match endpoint.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(endpoint).ok()?),
            16 => IpAddr::from(<[u8; 16]>::try_from(endpoint).ok()?),
            _ => return None,
        };
        Some(Pmsi {
            flags: head[0],
            tunnel_type: head[1],
            label: u32::from_be_bytes([0, head[2], head[3], head[4]]),
            endpoint,
        })
    }
}

/// The attributes of a received route that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// MP_REACH's next hop: the VTEP of a MAC.
    pub next_hop: IpAddr,
    /// Label 1 of a type-2 route, the PMSI label of a type-3 one: the VNI.
    pub vni: u32,
    /// The route targets.
    pub route_targets: Vec<RouteTarget>,
    /// MAC mobility sequence number (0 without the community).
    pub seq: u32,
    /// The MAC mobility community's sticky flag.
    pub sticky: bool,
    /// The PMSI tunnel attribute.
    pub pmsi: Option<Pmsi>,
    /// ORIGINATOR_ID (set by route reflectors).
    pub originator_id: Option<Ipv4Addr>,
    /// The encapsulation communities' tunnel types.
    pub encapsulations: Vec<u16>,
}

/// One route change read from an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Announced (or replaced).
    Announce(RouteKey, Attributes),
    /// Withdrawn (also a treat-as-withdraw).
    Withdraw(RouteKey),
    /// A route type vxtund does not use (1, 4, 5, unknown), announced or withdrawn.
    Unsupported(u8),
}

/// The EVPN route changes in `update`. With `malformed` (RFC 7606: an attribute could not be
/// parsed) every announced route is treated as withdrawn.
pub fn read_update(update: &BgpUpdateMessage, malformed: bool) -> Vec<Change> {
    let mut attrs = Attributes {
        next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        vni: 0,
        route_targets: Vec::new(),
        seq: 0,
        sticky: false,
        pmsi: None,
        originator_id: None,
        encapsulations: Vec::new(),
    };
    let mut announced: &[L2EvpnAddress] = &[];
    let mut withdrawn: &[L2EvpnAddress] = &[];
    for attribute in update.path_attributes() {
        match attribute.value() {
            PathAttributeValue::MpReach(MpReach::L2Evpn { next_hop, nlri }) => {
                attrs.next_hop = *next_hop;
                announced = nlri;
            }
            PathAttributeValue::MpUnreach(MpUnreach::L2Evpn { nlri }) => withdrawn = nlri,
            PathAttributeValue::ExtendedCommunities(c) => {
                for community in c.communities() {
                    if let Some(rt) = RouteTarget::from_community(community) {
                        attrs.route_targets.push(rt);
                    }
                    match community {
                        ExtendedCommunity::Evpn(EvpnExtendedCommunity::MacMobility {
                            flags,
                            seq_no,
                        }) => {
                            attrs.seq = *seq_no;
                            attrs.sticky = flags & 1 == 1;
                        }
                        ExtendedCommunity::TransitiveOpaque(
                            TransitiveOpaqueExtendedCommunity::Unassigned { sub_type, value },
                        ) if *sub_type == ENCAPSULATION_SUBTYPE => {
                            attrs
                                .encapsulations
                                .push(u16::from_be_bytes([value[4], value[5]]));
                        }
                        _ => {}
                    }
                }
            }
            PathAttributeValue::UnknownAttribute(u) if u.code() == PMSI_TUNNEL => {
                attrs.pmsi = Pmsi::decode(u.value());
            }
            PathAttributeValue::Originator(o) => attrs.originator_id = Some(o.id()),
            _ => {}
        }
    }
    let mut changes = Vec::with_capacity(announced.len() + withdrawn.len());
    for address in withdrawn {
        changes.push(match key_of(address.route()) {
            Ok((key, _)) => Change::Withdraw(key),
            Err(kind) => Change::Unsupported(kind),
        });
    }
    for address in announced {
        changes.push(match key_of(address.route()) {
            Ok((key, _)) if malformed => Change::Withdraw(key),
            Ok((key, label)) => {
                let mut a = attrs.clone();
                a.vni = match key {
                    RouteKey::MacIp { .. } => label,
                    RouteKey::Imet { .. } => a.pmsi.map_or(0, |p| p.label),
                };
                Change::Announce(key, a)
            }
            Err(kind) => Change::Unsupported(kind),
        });
    }
    changes
}

/// The key and label of a route of a type used here, or the route type.
fn key_of(route: &L2EvpnRoute) -> Result<(RouteKey, u32), u8> {
    match route {
        L2EvpnRoute::MacIpAdvertisement(r) => {
            let l = r.mpls_label1().value();
            Ok((
                RouteKey::MacIp {
                    rd: r.rd(),
                    mac: Mac(*r.mac().value()),
                    ip: r.ip(),
                },
                u32::from_be_bytes([0, l[0], l[1], l[2]]),
            ))
        }
        L2EvpnRoute::InclusiveMulticastEthernetTagRoute(r) => Ok((
            RouteKey::Imet {
                rd: r.rd(),
                originator: r.ip(),
            },
            0,
        )),
        L2EvpnRoute::EthernetAutoDiscovery(_) => Err(1),
        L2EvpnRoute::EthernetSegmentRoute(_) => Err(4),
        L2EvpnRoute::IpPrefixRoute(_) => Err(5),
        L2EvpnRoute::Unknown { code, .. } => Err(*code),
    }
}

/// What vxtund advertises for a route besides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Our VTEP address: MP_REACH's next hop and the PMSI endpoint.
    pub vtep: IpAddr,
    /// The VNI.
    pub vni: u32,
    /// Export route targets.
    pub route_targets: Vec<RouteTarget>,
    /// MAC mobility sequence number (the community is sent only when above 0, as FRR does).
    pub seq: u32,
}

fn label(vni: u32) -> MplsLabel {
    let b = (vni & VNI_MAX).to_be_bytes();
    MplsLabel::new([b[1], b[2], b[3]])
}

fn nlri(key: &RouteKey, vni: u32) -> L2EvpnAddress {
    let route = match *key {
        RouteKey::Imet { rd, originator } => L2EvpnRoute::InclusiveMulticastEthernetTagRoute(
            InclusiveMulticastEthernetTagRoute::new(rd, EthernetTag::new(0), originator),
        ),
        RouteKey::MacIp { rd, mac, ip } => {
            L2EvpnRoute::MacIpAdvertisement(MacIpAdvertisement::new(
                rd,
                EthernetSegmentIdentifier::new([0; 10]),
                EthernetTag::new(0),
                MacAddress::new(mac.0),
                ip,
                label(vni),
                None,
            ))
        }
    };
    L2EvpnAddress::new(None, route)
}

fn attribute(
    optional: bool,
    transitive: bool,
    extended: bool,
    value: PathAttributeValue,
) -> Option<PathAttribute> {
    PathAttribute::from(optional, transitive, false, extended, value).ok()
}

/// One UPDATE announcing `keys`, which share `advert` (type-3 routes get the PMSI attribute),
/// with the attributes in FRR's order and flags, so that the bytes equal FRR's.
pub fn announce(keys: &[RouteKey], advert: &Advert) -> BgpUpdateMessage {
    let nlri: Vec<L2EvpnAddress> = keys.iter().map(|k| nlri(k, advert.vni)).collect();
    let mut communities = vec![ExtendedCommunity::TransitiveOpaque(
        TransitiveOpaqueExtendedCommunity::Unassigned {
            sub_type: ENCAPSULATION_SUBTYPE,
            value: {
                let t = TUNNEL_VXLAN.to_be_bytes();
                [0, 0, 0, 0, t[0], t[1]]
            },
        },
    )];
    communities.extend(advert.route_targets.iter().map(|rt| rt.community()));
    if advert.seq > 0 {
        communities.push(ExtendedCommunity::Evpn(
            EvpnExtendedCommunity::MacMobility {
                flags: 0,
                seq_no: advert.seq,
            },
        ));
    }
    let mut attributes = vec![
        attribute(
            true,
            false,
            true,
            PathAttributeValue::MpReach(MpReach::L2Evpn {
                next_hop: advert.vtep,
                nlri: nlri.into(),
            }),
        ),
        attribute(false, true, false, PathAttributeValue::Origin(Origin::IGP)),
        attribute(
            false,
            true,
            true,
            PathAttributeValue::AsPath(AsPath::As4PathSegments(
                Vec::<As4PathSegment>::new().into(),
            )),
        ),
        attribute(
            false,
            true,
            false,
            PathAttributeValue::LocalPreference(LocalPreference::new(LOCAL_PREF)),
        ),
        attribute(
            true,
            true,
            false,
            PathAttributeValue::ExtendedCommunities(ExtendedCommunities::new(communities)),
        ),
    ];
    if keys.iter().any(|k| matches!(k, RouteKey::Imet { .. })) {
        let pmsi = Pmsi {
            flags: 0,
            tunnel_type: INGRESS_REPLICATION,
            label: advert.vni,
            endpoint: advert.vtep,
        };
        attributes.push(attribute(
            true,
            true,
            false,
            PathAttributeValue::UnknownAttribute(UnknownAttribute::new(PMSI_TUNNEL, pmsi.encode())),
        ));
    }
    let attributes: Vec<PathAttribute> = attributes.into_iter().flatten().collect();
    BgpUpdateMessage::new(vec![], attributes, vec![])
}

/// One UPDATE withdrawing `keys` (labels 0, as FRR sends them).
pub fn withdraw(keys: &[RouteKey]) -> BgpUpdateMessage {
    let nlri: Vec<L2EvpnAddress> = keys.iter().map(|k| nlri(k, 0)).collect();
    // FRR sets the extended length flag on withdrawals, not on the End-of-RIB.
    let unreach = attribute(
        true,
        false,
        !keys.is_empty(),
        PathAttributeValue::MpUnreach(MpUnreach::L2Evpn { nlri: nlri.into() }),
    );
    BgpUpdateMessage::new(vec![], unreach.into_iter().collect::<Vec<_>>(), vec![])
}

/// The End-of-RIB marker for L2VPN EVPN: an empty MP_UNREACH.
pub fn end_of_rib() -> BgpUpdateMessage {
    withdraw(&[])
}

/// Our route distinguisher: `router-id:N` (type 1), N the VNI's low 16 bits.
pub fn local_rd(router_id: Ipv4Addr, vni: u32) -> RouteDistinguisher {
    RouteDistinguisher::Ipv4Administrator {
        ip: router_id,
        number: (vni & 0xffff) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::message::{encode, Decoder};
    use netgauze_bgp_pkt::BgpMessage;

    const FRR_TYPE2: &[u8] = include_bytes!("vectors/frr_type2.bin");
    const FRR_TYPE3: &[u8] = include_bytes!("vectors/frr_type3.bin");
    const FRR_EOR: &[u8] = include_bytes!("vectors/frr_eor.bin");
    const FRR_MOBILITY: &[u8] = include_bytes!("vectors/frr_type2_mobility.bin");
    const FRR_WITHDRAW: &[u8] = include_bytes!("vectors/frr_type2_withdraw.bin");
    const RR_REFLECTED: &[u8] = include_bytes!("vectors/rr_type2_reflected.bin");
    const GOBGP_TYPE2: &[u8] = include_bytes!("vectors/gobgp_type2.bin");
    const GOBGP_TYPE3: &[u8] = include_bytes!("vectors/gobgp_type3.bin");

    fn update(bytes: &[u8]) -> BgpUpdateMessage {
        match Decoder::new(true).decode(bytes) {
            Ok((BgpMessage::Update(u), ignored)) => {
                assert!(ignored.path_attr_errors().is_empty());
                u
            }
            other => panic!("not an UPDATE: {other:?}"),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn rd(router: &str, number: u16) -> RouteDistinguisher {
        RouteDistinguisher::Ipv4Administrator {
            ip: router.parse().unwrap(),
            number,
        }
    }

    fn rt() -> Vec<RouteTarget> {
        vec![RouteTarget::As2 {
            asn: 65000,
            value: 100,
        }]
    }

    fn mac(text: &str) -> Mac {
        text.parse().unwrap()
    }

    #[test]
    fn frr_type2_is_built_byte_for_byte() {
        let key = RouteKey::MacIp {
            rd: rd("192.168.77.11", 2),
            mac: mac("02:00:00:00:01:01"),
            ip: None,
        };
        let advert = Advert {
            vtep: ip("192.168.77.11"),
            vni: 100,
            route_targets: rt(),
            seq: 0,
        };
        let built = encode(&BgpMessage::Update(announce(&[key], &advert))).unwrap();
        assert_eq!(built, FRR_TYPE2);
        let read = read_update(&update(FRR_TYPE2), false);
        assert_eq!(
            read,
            vec![Change::Announce(
                key,
                Attributes {
                    next_hop: ip("192.168.77.11"),
                    vni: 100,
                    route_targets: rt(),
                    seq: 0,
                    sticky: false,
                    pmsi: None,
                    originator_id: None,
                    encapsulations: vec![TUNNEL_VXLAN],
                }
            )]
        );
    }

    #[test]
    fn frr_type3_with_pmsi_is_built_byte_for_byte() {
        let key = RouteKey::Imet {
            rd: rd("192.168.77.11", 2),
            originator: ip("192.168.77.11"),
        };
        let advert = Advert {
            vtep: ip("192.168.77.11"),
            vni: 100,
            route_targets: rt(),
            seq: 0,
        };
        let built = encode(&BgpMessage::Update(announce(&[key], &advert))).unwrap();
        assert_eq!(built, FRR_TYPE3);
        let read = read_update(&update(FRR_TYPE3), false);
        let [Change::Announce(k, a)] = &read[..] else {
            panic!("one announcement expected: {read:?}");
        };
        assert_eq!(*k, key);
        assert_eq!(a.vni, 100);
        assert_eq!(
            a.pmsi,
            Some(Pmsi {
                flags: 0,
                tunnel_type: INGRESS_REPLICATION,
                label: 100,
                endpoint: ip("192.168.77.11")
            })
        );
        assert_eq!(encode(&BgpMessage::Update(end_of_rib())).unwrap(), FRR_EOR);
    }

    #[test]
    fn mac_mobility_and_withdrawal_are_built_byte_for_byte() {
        let key = |m: &str| RouteKey::MacIp {
            rd: rd("192.168.77.12", 2),
            mac: mac(m),
            ip: None,
        };
        let advert = Advert {
            vtep: ip("192.168.77.12"),
            vni: 100,
            route_targets: rt(),
            seq: 1,
        };
        let built = encode(&BgpMessage::Update(announce(
            &[key("02:00:00:00:01:01")],
            &advert,
        )));
        assert_eq!(built.unwrap(), FRR_MOBILITY);
        let read = read_update(&update(FRR_MOBILITY), false);
        assert!(matches!(&read[..], [Change::Announce(_, a)] if a.seq == 1 && !a.sticky));
        let both = [key("02:00:00:00:01:01"), key("02:00:00:00:02:02")];
        assert_eq!(
            encode(&BgpMessage::Update(withdraw(&both))).unwrap(),
            FRR_WITHDRAW
        );
        assert_eq!(
            read_update(&update(FRR_WITHDRAW), false),
            vec![Change::Withdraw(both[0]), Change::Withdraw(both[1])]
        );
    }

    #[test]
    fn reflected_and_gobgp_updates_are_read() {
        let read = read_update(&update(RR_REFLECTED), false);
        let [Change::Announce(_, a)] = &read[..] else {
            panic!("{read:?}");
        };
        assert_eq!(a.originator_id, Some("192.168.77.11".parse().unwrap()));
        assert_eq!(a.next_hop, ip("192.168.77.11"));
        let read = read_update(&update(GOBGP_TYPE2), false);
        let [Change::Announce(RouteKey::MacIp { mac: m, .. }, a)] = &read[..] else {
            panic!("{read:?}");
        };
        assert_eq!(*m, mac("02:00:00:00:99:99"));
        assert_eq!((a.next_hop, a.vni), (ip("192.168.77.20"), 100));
        let read = read_update(&update(GOBGP_TYPE3), false);
        let [Change::Announce(RouteKey::Imet { originator, .. }, a)] = &read[..] else {
            panic!("{read:?}");
        };
        assert_eq!(*originator, ip("192.168.77.20"));
        assert_eq!(
            a.pmsi.map(|p| (p.label, p.endpoint)),
            Some((100, ip("192.168.77.20")))
        );
    }

    #[test]
    fn malformed_updates_withdraw_what_they_announce() {
        let read = read_update(&update(FRR_TYPE2), true);
        assert!(matches!(
            &read[..],
            [Change::Withdraw(RouteKey::MacIp { .. })]
        ));
    }

    #[test]
    fn ipv6_vteps_round_trip() {
        let key = RouteKey::Imet {
            rd: rd("192.0.2.1", 7),
            originator: ip("2001:db8::1"),
        };
        let advert = Advert {
            vtep: ip("2001:db8::1"),
            vni: 0xabcdef,
            route_targets: vec![
                "4200000000:7".parse().unwrap(),
                "192.0.2.1:9".parse().unwrap(),
            ],
            seq: 3,
        };
        let bytes = encode(&BgpMessage::Update(announce(&[key], &advert))).unwrap();
        let read = read_update(&update(&bytes), false);
        let [Change::Announce(k, a)] = &read[..] else {
            panic!("{read:?}");
        };
        assert_eq!(*k, key);
        assert_eq!(a.next_hop, ip("2001:db8::1"));
        assert_eq!(a.vni, 0xabcdef);
        assert_eq!(a.seq, 3);
        assert_eq!(a.route_targets, advert.route_targets);
        assert_eq!(a.pmsi.map(|p| p.endpoint), Some(ip("2001:db8::1")));
    }

    #[test]
    fn route_targets_parse_and_print() {
        for text in ["65000:100", "4200000000:7", "192.0.2.1:9", "0:4294967295"] {
            let rt: RouteTarget = text.parse().unwrap();
            assert_eq!(rt.to_string(), text);
        }
        for bad in [
            "",
            "65000",
            "x:1",
            "4200000000:70000",
            "1.2.3.4:70000",
            "65000:-1",
        ] {
            assert!(bad.parse::<RouteTarget>().is_err(), "{bad}");
        }
        assert_eq!(
            RouteTarget::derived(65000, 100),
            Some(RouteTarget::As2 {
                asn: 65000,
                value: 100
            })
        );
        assert_eq!(RouteTarget::derived(4_200_000_000, 70_000), None);
    }

    #[test]
    fn pmsi_decoding_refuses_bad_lengths() {
        assert_eq!(Pmsi::decode(&[0, 6, 0, 0, 100, 1, 2, 3]), None);
        assert_eq!(Pmsi::decode(&[]), None);
        assert!(Pmsi::decode(&[0, 6, 0, 0, 100, 1, 2, 3, 4]).is_some());
    }
}
