//! Flows in the ovs-ofctl syntax: parsing and printing ([`syntax`]) and the table that picks the
//! flow for a frame ([`table`]).
//!
//! A flow is a priority, a match over the fields of [`FrameKey`](crate::wire::ethernet::FrameKey)
//! and the ingress port, and a list of actions naming ports.

pub mod counters;
pub mod edit;
pub mod syntax;
pub mod table;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::wire::ethernet::{FrameKey, Mac, L3};

pub use syntax::{parse_flow, FlowParseError};
pub use table::FlowTable;

/// An OpenFlow port number. Port 1 is the local side (the TAP device); tunnels are 2 and up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortNo(pub u32);

impl PortNo {
    /// The local side: the TAP device.
    pub const LOCAL: PortNo = PortNo(1);
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Resolves the port names a flow may use (tunnel names, the device name, `LOCAL`) to numbers.
pub trait PortNames {
    /// The port called `name`, if there is one.
    fn resolve(&self, name: &str) -> Option<PortNo>;
    /// Whether a port with this number exists.
    fn exists(&self, port: PortNo) -> bool;
}

/// OpenFlow's default flow priority.
pub const DEFAULT_PRIORITY: u16 = 32768;

/// One flow: the highest priority matching flow decides a frame's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// 0 to 65535; higher wins.
    pub priority: u16,
    /// What the flow matches.
    pub matches: Match,
    /// What it does with a matching frame. Empty means drop.
    pub actions: Vec<Action>,
    /// `cookie=`: an opaque value chosen by whoever added the flow; edits can select by it.
    pub cookie: u64,
    /// `idle_timeout=`: seconds without a match before the flow expires (0 never). Stored and
    /// reported only: vxtund does not expire flows yet.
    pub idle_timeout: u16,
    /// `hard_timeout=`: seconds after which the flow expires (0 never). Stored only, as above.
    pub hard_timeout: u16,
    /// OpenFlow 1.3 `OFPFF_*` bits: [`Flow::SEND_FLOW_REM`], [`Flow::CHECK_OVERLAP`] ...
    pub flags: u16,
}

impl Flow {
    /// `send_flow_rem`: tell the controller when the flow goes (OFPFF_SEND_FLOW_REM).
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    /// `check_overlap`: refuse to add the flow over an overlapping one (OFPFF_CHECK_OVERLAP).
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    /// `reset_counts`: a replaced or modified flow's counters restart (OFPFF_RESET_COUNTS).
    pub const RESET_COUNTS: u16 = 1 << 2;
    /// `no_packet_counts`: the packet counter need not be kept (OFPFF_NO_PKT_COUNTS).
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    /// `no_byte_counts`: the byte counter need not be kept (OFPFF_NO_BYT_COUNTS).
    pub const NO_BYT_COUNTS: u16 = 1 << 4;

    /// A flow with no cookie, timeouts or flags.
    pub fn new(priority: u16, matches: Match, actions: Vec<Action>) -> Flow {
        Flow {
            priority,
            matches,
            actions,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
        }
    }

    /// Whether flag bit(s) `flag` are set.
    pub fn has_flag(&self, flag: u16) -> bool {
        self.flags & flag == flag
    }

    /// Whether the flow outputs to `port` (`output:PORT`, or `LOCAL` for port 1).
    pub fn outputs_to(&self, port: PortNo) -> bool {
        self.actions.iter().any(|a| match a {
            Action::Output(p) => *p == port,
            Action::Local => port == PortNo::LOCAL,
            _ => false,
        })
    }
}

/// A MAC address with a mask (all ones for an exact match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacMatch {
    /// The address, already masked.
    pub addr: Mac,
    /// Bits that must match.
    pub mask: Mac,
}

impl MacMatch {
    fn matches(&self, mac: Mac) -> bool {
        (0..6).all(|i| mac.0[i] & self.mask.0[i] == self.addr.0[i])
    }

    fn is_exact(&self) -> bool {
        self.mask == Mac::BROADCAST
    }
}

/// A match on the 802.1Q tag in OpenFlow 1.3's `vlan_vid` encoding: a frame's value is
/// [`VlanMatch::PRESENT`] | VID when it has a tag and 0 when it has none, and it matches when
/// `value & mask == self.value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanMatch {
    /// The value, already masked.
    pub value: u16,
    /// Bits that must match (within `PRESENT | 0xfff`).
    pub mask: u16,
}

impl VlanMatch {
    /// OpenFlow's OFPVID_PRESENT: the frame has a tag.
    pub const PRESENT: u16 = 0x1000;
    /// Every bit of the encoding.
    pub const ALL: u16 = 0x1fff;
    /// Frames without a tag (`vlan_tci=0x0000`).
    pub const NONE: VlanMatch = VlanMatch {
        value: 0,
        mask: VlanMatch::ALL,
    };

    /// Frames tagged with `vid` (`dl_vlan=VID`).
    pub fn vid(vid: u16) -> VlanMatch {
        VlanMatch {
            value: VlanMatch::PRESENT | (vid & 0x0fff),
            mask: VlanMatch::ALL,
        }
    }

    /// Whether a frame with this tag (or none) matches.
    pub fn matches(&self, vlan: Option<u16>) -> bool {
        let value = vlan.map_or(0, |v| VlanMatch::PRESENT | v);
        value & self.mask == self.value
    }

    /// Whether every frame `other` matches is matched by `self` too.
    pub fn covers(&self, other: &VlanMatch) -> bool {
        other.mask & self.mask == self.mask && other.value & self.mask == self.value
    }

    /// Whether some frame matches both.
    pub fn overlaps(&self, other: &VlanMatch) -> bool {
        let both = self.mask & other.mask;
        self.value & both == other.value & both
    }
}

/// The match part of a flow. `None` is a wildcard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Match {
    /// `in_port=`
    pub in_port: Option<PortNo>,
    /// `dl_src=`
    pub dl_src: Option<MacMatch>,
    /// `dl_dst=`
    pub dl_dst: Option<MacMatch>,
    /// `dl_type=`, or implied by `arp`, `ip`, `ipv6` ...
    pub dl_type: Option<u16>,
    /// `dl_vlan=`, `vlan_tci=`: the 802.1Q tag (or its absence), in OpenFlow's `vlan_vid`
    /// encoding.
    pub vlan_vid: Option<VlanMatch>,
    /// `nw_proto=`, or implied by `icmp`, `tcp6` ...
    pub nw_proto: Option<u8>,
    /// `nw_src=` (for ARP: the sender protocol address)
    pub nw_src: Option<Ipv4Net>,
    /// `nw_dst=` (for ARP: the target protocol address)
    pub nw_dst: Option<Ipv4Net>,
    /// `ipv6_src=`
    pub ipv6_src: Option<Ipv6Net>,
    /// `ipv6_dst=`
    pub ipv6_dst: Option<Ipv6Net>,
    /// `tp_src=` (or `tcp_src=`, `udp_src=`): the TCP or UDP source port.
    pub tp_src: Option<u16>,
    /// `tp_dst=` (or `tcp_dst=`, `udp_dst=`): the TCP or UDP destination port.
    pub tp_dst: Option<u16>,
}

impl Match {
    /// Drops the fields that match every value (a /0 prefix, an all-zero MAC or VLAN mask),
    /// as Open vSwitch does: they are the same as no field, and only one form may be stored
    /// so that the same match always compares equal, however it was written.
    pub fn normalize(&mut self) {
        if self.nw_src.is_some_and(|n| n.prefix_len() == 0) {
            self.nw_src = None;
        }
        if self.nw_dst.is_some_and(|n| n.prefix_len() == 0) {
            self.nw_dst = None;
        }
        if self.ipv6_src.is_some_and(|n| n.prefix_len() == 0) {
            self.ipv6_src = None;
        }
        if self.ipv6_dst.is_some_and(|n| n.prefix_len() == 0) {
            self.ipv6_dst = None;
        }
        let zero = Mac([0; 6]);
        if self.dl_src.is_some_and(|m| m.mask == zero) {
            self.dl_src = None;
        }
        if self.dl_dst.is_some_and(|m| m.mask == zero) {
            self.dl_dst = None;
        }
        if self.vlan_vid.is_some_and(|v| v.mask == 0) {
            self.vlan_vid = None;
        }
    }

    /// Whether a frame with `key` arriving on `in_port` matches.
    pub fn matches(&self, in_port: PortNo, key: &FrameKey) -> bool {
        if self.in_port.is_some_and(|p| p != in_port)
            || self.dl_src.is_some_and(|m| !m.matches(key.dl_src))
            || self.dl_dst.is_some_and(|m| !m.matches(key.dl_dst))
            || self.dl_type.is_some_and(|t| t != key.dl_type)
            || self.vlan_vid.is_some_and(|v| !v.matches(key.vlan))
        {
            return false;
        }
        if (self.tp_src.is_some() || self.tp_dst.is_some())
            && !key.ports.is_some_and(|p| {
                self.tp_src.is_none_or(|s| s == p.src) && self.tp_dst.is_none_or(|d| d == p.dst)
            })
        {
            return false;
        }
        if self.nw_proto.is_none()
            && self.nw_src.is_none()
            && self.nw_dst.is_none()
            && self.ipv6_src.is_none()
            && self.ipv6_dst.is_none()
        {
            return true;
        }
        match key.l3 {
            L3::Arp { spa, tpa } => {
                self.nw_proto.is_none()
                    && self.ipv6_src.is_none()
                    && self.ipv6_dst.is_none()
                    && v4_in(self.nw_src, spa)
                    && v4_in(self.nw_dst, tpa)
            }
            L3::Ipv4 { src, dst, proto } => {
                self.nw_proto.is_none_or(|p| p == proto)
                    && self.ipv6_src.is_none()
                    && self.ipv6_dst.is_none()
                    && v4_in(self.nw_src, src)
                    && v4_in(self.nw_dst, dst)
            }
            L3::Ipv6 { src, dst, proto } => {
                self.nw_proto.is_none_or(|p| p == proto)
                    && self.nw_src.is_none()
                    && self.nw_dst.is_none()
                    && v6_in(self.ipv6_src, src)
                    && v6_in(self.ipv6_dst, dst)
            }
            L3::Other => false,
        }
    }

    /// How specific the match is, for choosing among flows of equal priority: the destination
    /// prefix length first, then the source prefix length, then the number of exact fields.
    pub fn specificity(&self) -> (u8, u8, u8) {
        let dst = self
            .nw_dst
            .map(|n| n.prefix_len())
            .or(self.ipv6_dst.map(|n| n.prefix_len()))
            .unwrap_or(0);
        let src = self
            .nw_src
            .map(|n| n.prefix_len())
            .or(self.ipv6_src.map(|n| n.prefix_len()))
            .unwrap_or(0);
        let exact = u8::from(self.in_port.is_some())
            + u8::from(self.dl_src.is_some_and(|m| m.is_exact()))
            + u8::from(self.dl_dst.is_some_and(|m| m.is_exact()))
            + u8::from(self.dl_type.is_some())
            + u8::from(self.vlan_vid.is_some_and(|v| v.mask == VlanMatch::ALL))
            + u8::from(self.nw_proto.is_some())
            + u8::from(self.tp_src.is_some())
            + u8::from(self.tp_dst.is_some());
        (dst, src, exact)
    }
}

fn v4_in(net: Option<Ipv4Net>, addr: Ipv4Addr) -> bool {
    net.is_none_or(|n| n.contains(&addr))
}

fn v6_in(net: Option<Ipv6Net>, addr: Ipv6Addr) -> bool {
    net.is_none_or(|n| n.contains(&addr))
}

/// An action of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `output:PORT`. Never sends back out of the ingress port (use `in_port` for that).
    Output(PortNo),
    /// `in_port`: back out of the ingress port.
    InPort,
    /// `flood`: every port but the ingress.
    Flood,
    /// `all`: every port but the ingress (no port is excluded from flooding yet, so the same
    /// set as `flood`).
    All,
    /// `normal`: a MAC-learning L2 switch.
    Normal,
    /// `LOCAL` (`output:LOCAL`, `local`): to the local side, port 1, like `output:1`, but
    /// kept apart so that it reads back as OpenFlow's reserved port LOCAL.
    Local,
    /// `controller`, `controller:MAX_LEN` (`output:CONTROLLER`): the frame goes to the OpenFlow
    /// controllers as a PACKET_IN (whole: vxtund keeps no buffers; `MAX_LEN` is kept as given).
    Controller(u16),
    /// `drop`.
    Drop,
}

impl Action {
    /// `controller` without a length: OpenFlow's OFPCML_NO_BUFFER, the whole frame.
    pub const CONTROLLER_NO_BUFFER: u16 = 0xffff;
}
