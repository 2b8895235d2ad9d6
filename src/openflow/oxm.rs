//! OXM, the OpenFlow Extensible Match: the match of FLOW_MOD, flow statistics, PACKET_IN and
//! FLOW_REMOVED as a list of type-length-value entries, and the field of a SET_FIELD action.
//!
//! ```text
//! ofp_match:  | type = OFPMT_OXM (2) | length (2, excluding padding) | OXM TLVs | pad to 8 |
//! OXM TLV:    | oxm_class (2) | oxm_field (7 bits) | oxm_hasmask (1 bit) | oxm_length (1) |
//!             | value | mask (as long as the value, if hasmask) |
//! ```
//!
//! Entries of the OPENFLOW_BASIC class are checked against the specification's table of
//! fields (payload length, maskable or not); other classes are kept as they come, the payload
//! of a masked one split in halves.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::buf::{padded8, Put};
use super::{DecodeError, OFPBMC_BAD_FIELD, OFPBMC_BAD_LEN, OFPBMC_BAD_MASK, OFPBMC_BAD_TYPE};
use super::{OFPBMC_DUP_FIELD, OFPET_BAD_MATCH};

/// The standard (OpenFlow 1.1) match type, deprecated.
pub const OFPMT_STANDARD: u16 = 0;
/// The OpenFlow Extensible Match type.
pub const OFPMT_OXM: u16 = 1;
/// Length of the `ofp_match` header (type, length).
pub const MATCH_HEADER_LEN: usize = 4;
/// Length of an OXM TLV header.
pub const OXM_HEADER_LEN: usize = 4;

/// Backward-compatible Nicira class 0.
pub const OFPXMC_NXM_0: u16 = 0x0000;
/// Backward-compatible Nicira class 1.
pub const OFPXMC_NXM_1: u16 = 0x0001;
/// The basic class: the fields of the specification.
pub const OFPXMC_OPENFLOW_BASIC: u16 = 0x8000;
/// Experimenter class.
pub const OFPXMC_EXPERIMENTER: u16 = 0xffff;

/// Switch input port (4 bytes).
pub const OFPXMT_OFB_IN_PORT: u8 = 0;
/// Switch physical input port (4 bytes).
pub const OFPXMT_OFB_IN_PHY_PORT: u8 = 1;
/// Metadata passed between tables (8 bytes, maskable).
pub const OFPXMT_OFB_METADATA: u8 = 2;
/// Ethernet destination address (6 bytes, maskable).
pub const OFPXMT_OFB_ETH_DST: u8 = 3;
/// Ethernet source address (6 bytes, maskable).
pub const OFPXMT_OFB_ETH_SRC: u8 = 4;
/// Ethernet frame type (2 bytes).
pub const OFPXMT_OFB_ETH_TYPE: u8 = 5;
/// VLAN id (2 bytes, maskable).
pub const OFPXMT_OFB_VLAN_VID: u8 = 6;
/// VLAN priority (1 byte).
pub const OFPXMT_OFB_VLAN_PCP: u8 = 7;
/// IP DSCP, 6 bits in the ToS field (1 byte).
pub const OFPXMT_OFB_IP_DSCP: u8 = 8;
/// IP ECN, 2 bits in the ToS field (1 byte).
pub const OFPXMT_OFB_IP_ECN: u8 = 9;
/// IP protocol (1 byte).
pub const OFPXMT_OFB_IP_PROTO: u8 = 10;
/// IPv4 source address (4 bytes, maskable).
pub const OFPXMT_OFB_IPV4_SRC: u8 = 11;
/// IPv4 destination address (4 bytes, maskable).
pub const OFPXMT_OFB_IPV4_DST: u8 = 12;
/// TCP source port (2 bytes).
pub const OFPXMT_OFB_TCP_SRC: u8 = 13;
/// TCP destination port (2 bytes).
pub const OFPXMT_OFB_TCP_DST: u8 = 14;
/// UDP source port (2 bytes).
pub const OFPXMT_OFB_UDP_SRC: u8 = 15;
/// UDP destination port (2 bytes).
pub const OFPXMT_OFB_UDP_DST: u8 = 16;
/// SCTP source port (2 bytes).
pub const OFPXMT_OFB_SCTP_SRC: u8 = 17;
/// SCTP destination port (2 bytes).
pub const OFPXMT_OFB_SCTP_DST: u8 = 18;
/// ICMP type (1 byte).
pub const OFPXMT_OFB_ICMPV4_TYPE: u8 = 19;
/// ICMP code (1 byte).
pub const OFPXMT_OFB_ICMPV4_CODE: u8 = 20;
/// ARP opcode (2 bytes).
pub const OFPXMT_OFB_ARP_OP: u8 = 21;
/// ARP source IPv4 address (4 bytes, maskable).
pub const OFPXMT_OFB_ARP_SPA: u8 = 22;
/// ARP target IPv4 address (4 bytes, maskable).
pub const OFPXMT_OFB_ARP_TPA: u8 = 23;
/// ARP source hardware address (6 bytes, maskable).
pub const OFPXMT_OFB_ARP_SHA: u8 = 24;
/// ARP target hardware address (6 bytes, maskable).
pub const OFPXMT_OFB_ARP_THA: u8 = 25;
/// IPv6 source address (16 bytes, maskable).
pub const OFPXMT_OFB_IPV6_SRC: u8 = 26;
/// IPv6 destination address (16 bytes, maskable).
pub const OFPXMT_OFB_IPV6_DST: u8 = 27;
/// IPv6 flow label (4 bytes, maskable).
pub const OFPXMT_OFB_IPV6_FLABEL: u8 = 28;
/// ICMPv6 type (1 byte).
pub const OFPXMT_OFB_ICMPV6_TYPE: u8 = 29;
/// ICMPv6 code (1 byte).
pub const OFPXMT_OFB_ICMPV6_CODE: u8 = 30;
/// Target address for neighbour discovery (16 bytes).
pub const OFPXMT_OFB_IPV6_ND_TARGET: u8 = 31;
/// Source link-layer address for neighbour discovery (6 bytes).
pub const OFPXMT_OFB_IPV6_ND_SLL: u8 = 32;
/// Target link-layer address for neighbour discovery (6 bytes).
pub const OFPXMT_OFB_IPV6_ND_TLL: u8 = 33;
/// MPLS label (4 bytes).
pub const OFPXMT_OFB_MPLS_LABEL: u8 = 34;
/// MPLS traffic class (1 byte).
pub const OFPXMT_OFB_MPLS_TC: u8 = 35;
/// MPLS bottom-of-stack bit (1 byte).
pub const OFPXMT_OFB_MPLS_BOS: u8 = 36;
/// PBB I-SID (3 bytes, maskable).
pub const OFPXMT_OFB_PBB_ISID: u8 = 37;
/// Logical port metadata (8 bytes, maskable).
pub const OFPXMT_OFB_TUNNEL_ID: u8 = 38;
/// IPv6 extension header pseudo-field (2 bytes, maskable).
pub const OFPXMT_OFB_IPV6_EXTHDR: u8 = 39;

/// (value length, maskable) of each OPENFLOW_BASIC field of OpenFlow 1.3, by field number.
const BASIC_FIELDS: [(u8, bool); 40] = [
    (4, false),  // IN_PORT
    (4, false),  // IN_PHY_PORT
    (8, true),   // METADATA
    (6, true),   // ETH_DST
    (6, true),   // ETH_SRC
    (2, false),  // ETH_TYPE
    (2, true),   // VLAN_VID
    (1, false),  // VLAN_PCP
    (1, false),  // IP_DSCP
    (1, false),  // IP_ECN
    (1, false),  // IP_PROTO
    (4, true),   // IPV4_SRC
    (4, true),   // IPV4_DST
    (2, false),  // TCP_SRC
    (2, false),  // TCP_DST
    (2, false),  // UDP_SRC
    (2, false),  // UDP_DST
    (2, false),  // SCTP_SRC
    (2, false),  // SCTP_DST
    (1, false),  // ICMPV4_TYPE
    (1, false),  // ICMPV4_CODE
    (2, false),  // ARP_OP
    (4, true),   // ARP_SPA
    (4, true),   // ARP_TPA
    (6, true),   // ARP_SHA
    (6, true),   // ARP_THA
    (16, true),  // IPV6_SRC
    (16, true),  // IPV6_DST
    (4, true),   // IPV6_FLABEL
    (1, false),  // ICMPV6_TYPE
    (1, false),  // ICMPV6_CODE
    (16, false), // IPV6_ND_TARGET
    (6, false),  // IPV6_ND_SLL
    (6, false),  // IPV6_ND_TLL
    (4, false),  // MPLS_LABEL
    (1, false),  // MPLS_TC
    (1, false),  // MPLS_BOS
    (3, true),   // PBB_ISID
    (8, true),   // TUNNEL_ID
    (2, true),   // IPV6_EXTHDR
];

/// The value length and whether a mask is allowed, for an OPENFLOW_BASIC field of OpenFlow
/// 1.3; `None` for a field number the specification does not define.
pub fn basic_field(field: u8) -> Option<(usize, bool)> {
    BASIC_FIELDS
        .get(usize::from(field))
        .map(|&(len, maskable)| (usize::from(len), maskable))
}

/// The 32-bit OXM header: class, field, hasmask and payload length (value plus mask). Table
/// features properties list fields by these headers.
pub const fn oxm_header(class: u16, field: u8, hasmask: bool, length: u8) -> u32 {
    ((class as u32) << 16)
        | (((field & 0x7f) as u32) << 9)
        | ((hasmask as u32) << 8)
        | length as u32
}

/// One OXM TLV: a match field (or the field a SET_FIELD action writes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Oxm {
    /// `OFPXMC_*`: `OFPXMC_OPENFLOW_BASIC` for the specification's fields.
    pub class: u16,
    /// The field within the class (`OFPXMT_OFB_*` for the basic class), 7 bits.
    pub field: u8,
    /// The value, big-endian as on the wire.
    pub value: Vec<u8>,
    /// The mask, as long as the value: a 1 bit means the value's bit must match.
    pub mask: Option<Vec<u8>>,
}

impl Oxm {
    /// A basic-class field with an exact value.
    pub fn basic(field: u8, value: Vec<u8>) -> Oxm {
        Oxm {
            class: OFPXMC_OPENFLOW_BASIC,
            field,
            value,
            mask: None,
        }
    }

    /// A basic-class field with a value and mask.
    pub fn basic_masked(field: u8, value: Vec<u8>, mask: Vec<u8>) -> Oxm {
        Oxm {
            mask: Some(mask),
            ..Oxm::basic(field, value)
        }
    }

    /// IN_PORT = `port`.
    pub fn in_port(port: u32) -> Oxm {
        Oxm::basic(OFPXMT_OFB_IN_PORT, port.to_be_bytes().to_vec())
    }

    /// ETH_DST = `mac`.
    pub fn eth_dst(mac: [u8; 6]) -> Oxm {
        Oxm::basic(OFPXMT_OFB_ETH_DST, mac.to_vec())
    }

    /// ETH_DST = `mac`/`mask`.
    pub fn eth_dst_masked(mac: [u8; 6], mask: [u8; 6]) -> Oxm {
        Oxm::basic_masked(OFPXMT_OFB_ETH_DST, mac.to_vec(), mask.to_vec())
    }

    /// ETH_SRC = `mac`.
    pub fn eth_src(mac: [u8; 6]) -> Oxm {
        Oxm::basic(OFPXMT_OFB_ETH_SRC, mac.to_vec())
    }

    /// ETH_SRC = `mac`/`mask`.
    pub fn eth_src_masked(mac: [u8; 6], mask: [u8; 6]) -> Oxm {
        Oxm::basic_masked(OFPXMT_OFB_ETH_SRC, mac.to_vec(), mask.to_vec())
    }

    /// ETH_TYPE = `ethertype`.
    pub fn eth_type(ethertype: u16) -> Oxm {
        Oxm::basic(OFPXMT_OFB_ETH_TYPE, ethertype.to_be_bytes().to_vec())
    }

    /// IP_PROTO = `proto`.
    pub fn ip_proto(proto: u8) -> Oxm {
        Oxm::basic(OFPXMT_OFB_IP_PROTO, vec![proto])
    }

    /// IPV4_SRC = `addr`.
    pub fn ipv4_src(addr: Ipv4Addr) -> Oxm {
        Oxm::basic(OFPXMT_OFB_IPV4_SRC, addr.octets().to_vec())
    }

    /// IPV4_SRC = `addr`/`mask`.
    pub fn ipv4_src_masked(addr: Ipv4Addr, mask: Ipv4Addr) -> Oxm {
        Oxm::basic_masked(
            OFPXMT_OFB_IPV4_SRC,
            addr.octets().to_vec(),
            mask.octets().to_vec(),
        )
    }

    /// IPV4_DST = `addr`.
    pub fn ipv4_dst(addr: Ipv4Addr) -> Oxm {
        Oxm::basic(OFPXMT_OFB_IPV4_DST, addr.octets().to_vec())
    }

    /// IPV4_DST = `addr`/`mask`.
    pub fn ipv4_dst_masked(addr: Ipv4Addr, mask: Ipv4Addr) -> Oxm {
        Oxm::basic_masked(
            OFPXMT_OFB_IPV4_DST,
            addr.octets().to_vec(),
            mask.octets().to_vec(),
        )
    }

    /// IPV6_SRC = `addr`.
    pub fn ipv6_src(addr: Ipv6Addr) -> Oxm {
        Oxm::basic(OFPXMT_OFB_IPV6_SRC, addr.octets().to_vec())
    }

    /// IPV6_SRC = `addr`/`mask`.
    pub fn ipv6_src_masked(addr: Ipv6Addr, mask: Ipv6Addr) -> Oxm {
        Oxm::basic_masked(
            OFPXMT_OFB_IPV6_SRC,
            addr.octets().to_vec(),
            mask.octets().to_vec(),
        )
    }

    /// IPV6_DST = `addr`.
    pub fn ipv6_dst(addr: Ipv6Addr) -> Oxm {
        Oxm::basic(OFPXMT_OFB_IPV6_DST, addr.octets().to_vec())
    }

    /// IPV6_DST = `addr`/`mask`.
    pub fn ipv6_dst_masked(addr: Ipv6Addr, mask: Ipv6Addr) -> Oxm {
        Oxm::basic_masked(
            OFPXMT_OFB_IPV6_DST,
            addr.octets().to_vec(),
            mask.octets().to_vec(),
        )
    }

    /// TCP_SRC = `port`.
    pub fn tcp_src(port: u16) -> Oxm {
        Oxm::basic(OFPXMT_OFB_TCP_SRC, port.to_be_bytes().to_vec())
    }

    /// TCP_DST = `port`.
    pub fn tcp_dst(port: u16) -> Oxm {
        Oxm::basic(OFPXMT_OFB_TCP_DST, port.to_be_bytes().to_vec())
    }

    /// UDP_SRC = `port`.
    pub fn udp_src(port: u16) -> Oxm {
        Oxm::basic(OFPXMT_OFB_UDP_SRC, port.to_be_bytes().to_vec())
    }

    /// UDP_DST = `port`.
    pub fn udp_dst(port: u16) -> Oxm {
        Oxm::basic(OFPXMT_OFB_UDP_DST, port.to_be_bytes().to_vec())
    }

    /// ARP_SPA = `addr`.
    pub fn arp_spa(addr: Ipv4Addr) -> Oxm {
        Oxm::basic(OFPXMT_OFB_ARP_SPA, addr.octets().to_vec())
    }

    /// ARP_TPA = `addr`.
    pub fn arp_tpa(addr: Ipv4Addr) -> Oxm {
        Oxm::basic(OFPXMT_OFB_ARP_TPA, addr.octets().to_vec())
    }

    /// The payload length on the wire (value plus mask), at most 255.
    fn payload_len(&self) -> usize {
        (self.value.len() + self.mask.as_ref().map_or(0, Vec::len)).min(usize::from(u8::MAX))
    }

    /// This entry's 32-bit OXM header.
    pub fn header(&self) -> u32 {
        oxm_header(
            self.class,
            self.field,
            self.mask.is_some(),
            self.payload_len() as u8,
        )
    }

    /// The big-endian value as an unsigned integer, if it is 1 to 8 bytes long.
    pub fn value_uint(&self) -> Option<u64> {
        uint(&self.value)
    }

    /// The big-endian mask as an unsigned integer, if there is one of 1 to 8 bytes.
    pub fn mask_uint(&self) -> Option<u64> {
        self.mask.as_deref().and_then(uint)
    }
}

fn uint(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// What is wrong with one OXM TLV; the caller picks the error code of its context (a match
/// or a SET_FIELD action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OxmFault {
    /// Truncated, or a payload length that does not fit the field.
    Len,
    /// A basic-class field the specification does not define.
    Field,
    /// A mask on a field that takes none.
    Mask,
}

/// Decodes the OXM TLV at the start of `bytes`; returns it and its length on the wire.
pub(crate) fn decode_oxm(bytes: &[u8]) -> Result<(Oxm, usize), (OxmFault, String)> {
    let Some(header) = bytes.get(..OXM_HEADER_LEN) else {
        return Err((
            OxmFault::Len,
            format!("OXM header truncated ({} bytes)", bytes.len()),
        ));
    };
    let class = u16::from_be_bytes([header[0], header[1]]);
    let field = header[2] >> 1;
    let hasmask = header[2] & 1 != 0;
    let len = usize::from(header[3]);
    let Some(payload) = bytes.get(OXM_HEADER_LEN..OXM_HEADER_LEN + len) else {
        return Err((
            OxmFault::Len,
            format!(
                "OXM {class:#06x}:{field} of {len} bytes runs past the {} left",
                bytes.len() - OXM_HEADER_LEN
            ),
        ));
    };
    if class == OFPXMC_OPENFLOW_BASIC {
        let Some((value_len, maskable)) = basic_field(field) else {
            return Err((OxmFault::Field, format!("unknown OXM basic field {field}")));
        };
        if hasmask && !maskable {
            return Err((
                OxmFault::Mask,
                format!("OXM basic field {field} takes no mask"),
            ));
        }
        let want = if hasmask { 2 * value_len } else { value_len };
        if len != want {
            return Err((
                OxmFault::Len,
                format!("OXM basic field {field} has {len} bytes, not {want}"),
            ));
        }
    } else if hasmask && len % 2 != 0 {
        return Err((
            OxmFault::Len,
            format!("masked OXM {class:#06x}:{field} has an odd length {len}"),
        ));
    }
    let (value, mask) = if hasmask {
        let (value, mask) = payload.split_at(len / 2);
        (value.to_vec(), Some(mask.to_vec()))
    } else {
        (payload.to_vec(), None)
    };
    Ok((
        Oxm {
            class,
            field,
            value,
            mask,
        },
        OXM_HEADER_LEN + len,
    ))
}

/// Appends one OXM TLV (a payload longer than 255 bytes is cut to 255).
pub(crate) fn encode_oxm(out: &mut Vec<u8>, oxm: &Oxm) {
    let len = oxm.payload_len();
    out.put_u32(oxm.header());
    let start = out.len();
    out.extend_from_slice(&oxm.value);
    if let Some(mask) = &oxm.mask {
        out.extend_from_slice(mask);
    }
    out.truncate(start + len);
}

/// Decodes the `ofp_match` at the start of `bytes`; returns its fields and its length with
/// padding (where what follows the match starts).
pub(crate) fn decode_match(bytes: &[u8]) -> Result<(Vec<Oxm>, usize), DecodeError> {
    let bad = |code, detail: String| DecodeError::new(OFPET_BAD_MATCH, code, detail);
    let Some(header) = bytes.get(..MATCH_HEADER_LEN) else {
        return Err(bad(
            OFPBMC_BAD_LEN,
            format!("match header truncated ({} bytes)", bytes.len()),
        ));
    };
    let match_type = u16::from_be_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if match_type != OFPMT_OXM {
        return Err(bad(
            OFPBMC_BAD_TYPE,
            format!("match type {match_type}, not OXM"),
        ));
    }
    if len < MATCH_HEADER_LEN || padded8(len) > bytes.len() {
        return Err(bad(
            OFPBMC_BAD_LEN,
            format!(
                "match length {len} (padded {}) does not fit the {} bytes left",
                padded8(len),
                bytes.len()
            ),
        ));
    }
    let mut fields = Vec::new();
    let mut rest = &bytes[MATCH_HEADER_LEN..len];
    while !rest.is_empty() {
        let (oxm, used) = decode_oxm(rest).map_err(|(fault, detail)| {
            let code = match fault {
                OxmFault::Len => OFPBMC_BAD_LEN,
                OxmFault::Field => OFPBMC_BAD_FIELD,
                OxmFault::Mask => OFPBMC_BAD_MASK,
            };
            bad(code, format!("match: {detail}"))
        })?;
        fields.push(oxm);
        rest = &rest[used..];
    }
    let mut keys: Vec<(u16, u8)> = fields.iter().map(|f| (f.class, f.field)).collect();
    keys.sort_unstable();
    if let Some(dup) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(
            OFPBMC_DUP_FIELD,
            format!("match has field {:#06x}:{} twice", dup[0].0, dup[0].1),
        ));
    }
    Ok((fields, padded8(len)))
}

/// Appends an `ofp_match` of type OXM holding `fields`, padded to 8 bytes.
pub(crate) fn encode_match(out: &mut Vec<u8>, fields: &[Oxm]) {
    let start = out.len();
    out.put_u16(OFPMT_OXM);
    out.put_u16(0);
    for oxm in fields {
        encode_oxm(out, oxm);
    }
    out.patch_len(start, 2);
    out.pad_to_8(start);
}
