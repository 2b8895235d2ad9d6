//! The core of vxtund: decides, for every frame, which ports it leaves by.
//!
//! [`Switch::handle_frame`] takes a frame, the port it came in on and the time, and returns an
//! [`Action`]: the egress ports, or a [`DropReason`]. [`Switch::handle_vxlan`] does the same for a
//! VXLAN datagram received from the underlay, after checking who sent it. Nothing here touches a
//! socket or the clock, and nothing here allocates per frame once the output buffer has grown to
//! the number of ports.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::fdb::MacTable;
pub use crate::flow::counters::FlowStats;
use crate::flow::counters::{carry_map, FlowCounters};
use crate::flow::{self, FlowTable, PortNo};
use crate::incident::{ErrorReason, ReasonCounts};
use crate::packet_in::{PacketInLimiter, PacketInMeta, PacketInReason, PacketInStats};
use crate::ratelimit::RateLimiter;
use crate::segments::SegmentSizes;
use crate::wire::ethernet::{FrameKey, Mac};
use crate::wire::ip::{self, IpView};
use crate::wire::tcp::{self, clamp_mss};
use crate::wire::tunnel::{self, EcnDecap, TosMode, TtlMode};
use crate::wire::{ethernet, gre, icmp, vxlan};
pub use counters::{Count, Counters};

mod counters;
mod encap;
mod generation;
mod xlate;
pub use encap::{Encapsulation, Inherit, Tunnel};
pub use generation::{Generation, Publisher};

pub use xlate::{Decision, Depends, Fit, NormalLookup, Rules, Source, Verdict};

/// A port of the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// OpenFlow port number.
    pub no: PortNo,
    /// The device name for port 1, the tunnel name otherwise.
    pub name: String,
    /// What is behind the port.
    pub kind: PortKind,
    /// MTU policies of a tunnel port (ignored for the local port).
    pub options: PortOptions,
}

/// Policies of a tunnel port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortOptions {
    /// TCP MSS clamping for SYNs crossing this tunnel.
    pub mss_clamp: MssClamp,
    /// The DF bit of outer IPv4 packets.
    pub df: DfMode,
    /// The split-horizon group: `flood`, `all` and `normal` never send a frame that came in on a
    /// tunnel of this group out of another tunnel of the same group.
    pub split_horizon: Option<String>,
    /// The outer TOS / traffic class (the kernel's vxlan `tos`); ECN follows RFC 6040 always.
    pub tos: TosMode,
    /// The outer TTL / hop limit (the kernel's vxlan `ttl`).
    pub ttl: TtlMode,
    /// The outer UDP source ports of a VXLAN tunnel: its own `src_port_range`, or else
    /// `[underlay] src_port_range`; `None`: ports the kernel picks.
    pub src_port_range: Option<(u16, u16)>,
}

/// How SYNs crossing a tunnel have their MSS clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MssClamp {
    /// To the tunnel MTU minus 40 (IPv4) or 60 (IPv6).
    #[default]
    Auto,
    /// Not at all.
    Off,
    /// To this value.
    Fixed(u16),
}

/// The DF bit of outer IPv4 packets (as the kernel's vxlan `df` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DfMode {
    /// Always set: the underlay never fragments (RFC 7348 asks VTEPs not to fragment).
    #[default]
    Set,
    /// Never set.
    Unset,
    /// Copied from the inner IPv4 packet (set for inner IPv6 and non-IP frames).
    Inherit,
}

/// What is behind a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// The TAP device.
    Local,
    /// A VXLAN tunnel to one remote VTEP.
    Vxlan(VxlanTunnel),
    /// An Ethernet-over-GRE tunnel to one remote.
    Gre(GreTunnel),
}

/// Resolves port names against a list of ports: `LOCAL` (or `local`) and the device name are
/// port 1, tunnel names their ports.
pub struct PortTable<'a>(pub &'a [Port]);

impl crate::flow::PortNames for PortTable<'_> {
    fn resolve(&self, name: &str) -> Option<PortNo> {
        if name == "LOCAL" || name == "local" {
            return Some(PortNo::LOCAL);
        }
        self.0.iter().find(|p| p.name == name).map(|p| p.no)
    }

    fn exists(&self, port: PortNo) -> bool {
        self.0.iter().any(|p| p.no == port)
    }
}

impl PortKind {
    /// Type, remote and identifier (VNI, or key and GRE options), for listings.
    pub fn summary(&self) -> (&'static str, String, String) {
        match self {
            PortKind::Local => ("local", "-".into(), "-".into()),
            PortKind::Vxlan(t) => (
                "vxlan",
                std::net::SocketAddr::new(t.remote, t.dst_port).to_string(),
                format!("vni {}", t.vni),
            ),
            PortKind::Gre(t) => {
                let mut id = t.key.map_or("no key".to_owned(), |k| format!("key {k}"));
                if t.csum {
                    id.push_str(",csum");
                }
                if t.seq {
                    id.push_str(",seq");
                }
                ("gre", t.remote.to_string(), id)
            }
        }
    }

    /// The remote's underlay address, for tunnels.
    pub fn remote(&self) -> Option<IpAddr> {
        match self {
            PortKind::Local => None,
            PortKind::Vxlan(t) => Some(t.remote),
            PortKind::Gre(t) => Some(t.remote),
        }
    }
}

/// The far end of an Ethernet-over-GRE tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreTunnel {
    /// The remote's underlay address.
    pub remote: IpAddr,
    /// The key sent and expected (RFC 2890); `None` for no key on either side.
    pub key: Option<u32>,
    /// Whether to send a GRE checksum (received checksums are always verified).
    pub csum: bool,
    /// Whether to send sequence numbers (received ones are accepted and ignored).
    pub seq: bool,
}

/// The far end of a VXLAN tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanTunnel {
    /// The remote VTEP's underlay address.
    pub remote: IpAddr,
    /// The VXLAN Network Identifier sent and expected.
    pub vni: u32,
    /// UDP destination port on the remote, and the port we listen on for it.
    pub dst_port: u16,
}

/// Why a frame or datagram was dropped. Each has a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    TruncatedFrame,
    /// The source MAC is a group address, which no station may send from.
    MulticastSource,
    /// No flow matched.
    NoMatchingFlow,
    /// The matching flow's action is `drop`.
    FlowDrop,
    /// The flow's outputs were all the ingress port, or there was no other port to flood to.
    NoEgress,
    /// A datagram too short to hold the VXLAN header and an Ethernet header.
    VxlanTruncated,
    /// The VXLAN I flag is clear or a reserved flag is set.
    VxlanBadFlags,
    /// The datagram came from an address that is no tunnel's remote.
    UnknownRemote,
    /// The sender is a tunnel's remote, but no tunnel to it has this VNI.
    WrongVni,
    /// A GRE packet too short for its header and an Ethernet header.
    GreTruncated,
    /// GRE version not 0, or routing / obsolete RFC 1701 bits set.
    GreBadHeader,
    /// A GRE payload other than Ethernet (protocol type not 0x6558).
    GreNotEthernet,
    /// The GRE checksum is wrong.
    GreBadChecksum,
    /// The sender is a GRE remote, but no tunnel to it has this key (or lack of key).
    GreWrongKey,
    /// Larger than an egress tunnel carries; answered with ICMP "too big" (or rate-limited).
    TooBig,
    /// Larger than an egress tunnel carries, and neither answerable nor fragmentable.
    Oversize,
    /// `normal` would send the frame to a tunnel of the ingress tunnel's split-horizon group.
    SplitHorizon,
    /// A frame from the TAP whose offload (virtio-net) header made no sense.
    BadOffload,
    /// Decapsulated with CE in the outer header over a Not-ECT inner packet (RFC 6040).
    EcnCeNotEct,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 19] = [
        DropReason::TruncatedFrame,
        DropReason::MulticastSource,
        DropReason::NoMatchingFlow,
        DropReason::FlowDrop,
        DropReason::NoEgress,
        DropReason::VxlanTruncated,
        DropReason::VxlanBadFlags,
        DropReason::UnknownRemote,
        DropReason::WrongVni,
        DropReason::GreTruncated,
        DropReason::GreBadHeader,
        DropReason::GreNotEthernet,
        DropReason::GreBadChecksum,
        DropReason::GreWrongKey,
        DropReason::TooBig,
        DropReason::Oversize,
        DropReason::SplitHorizon,
        DropReason::BadOffload,
        DropReason::EcnCeNotEct,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::TruncatedFrame => "truncated_frame",
            DropReason::MulticastSource => "multicast_source",
            DropReason::NoMatchingFlow => "no_matching_flow",
            DropReason::FlowDrop => "flow_drop",
            DropReason::NoEgress => "no_egress",
            DropReason::VxlanTruncated => "vxlan_truncated",
            DropReason::VxlanBadFlags => "vxlan_bad_flags",
            DropReason::UnknownRemote => "unknown_remote",
            DropReason::WrongVni => "wrong_vni",
            DropReason::GreTruncated => "gre_truncated",
            DropReason::GreBadHeader => "gre_bad_header",
            DropReason::GreNotEthernet => "gre_not_ethernet",
            DropReason::GreBadChecksum => "gre_bad_checksum",
            DropReason::GreWrongKey => "gre_wrong_key",
            DropReason::TooBig => "too_big",
            DropReason::Oversize => "oversize",
            DropReason::SplitHorizon => "split_horizon",
            DropReason::BadOffload => "bad_offload",
            DropReason::EcnCeNotEct => "ecn_ce_not_ect",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What to do with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send it (its TCP MSS perhaps clamped in place) out of these ports (never empty).
    Forward(&'a [PortNo]),
    /// Send these fragments of it instead, each out of these ports: `frames[range]` per fragment.
    Fragments {
        /// The egress ports.
        ports: &'a [PortNo],
        /// The fragments' bytes, back to back.
        frames: &'a [u8],
        /// Where each fragment lies in `frames`.
        ranges: &'a [Range<usize>],
    },
    /// Drop it, and send this answer (an ICMP "too big") out of `port`, the ingress.
    Reply {
        /// The port the frame came in on.
        port: PortNo,
        /// The answer.
        frame: &'a [u8],
    },
    /// Drop it; the reason has been counted.
    Drop(DropReason),
}

/// Counters of MTU handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtuStats {
    /// SYNs whose MSS was lowered.
    pub mss_clamped: u64,
    /// ICMP Fragmentation Needed / ICMPv6 Packet Too Big answers sent.
    pub too_big_sent: u64,
    /// Answers not sent because their source was over its rate.
    pub too_big_rate_limited: u64,
    /// Packets fragmented (IPv4 without DF), and fragments made of them.
    pub fragmented: u64,
    /// Fragments made.
    pub fragments: u64,
    /// Egress ports left out of a multi-port output (a flood) because the frame was too big
    /// for them while it fitted others, which still got it.
    pub too_big_skipped: u64,
    /// Inner packets whose ECN field decapsulation changed (outer CE or ECT(1), RFC 6040).
    pub ecn_marked: u64,
}

/// Counters of the TAP offloads (kept by the I/O shell, shown with the others).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// Superframes read from the TAP and split.
    pub split: u64,
    /// Frames those were split into.
    pub split_segments: u64,
    /// Superframes written to the TAP.
    pub coalesced: u64,
    /// Frames those were made of.
    pub coalesced_segments: u64,
    /// Frames sent where the frame before them went, without a flow lookup: the next segments
    /// of a split superframe, and frames whose headers equal the last forwarded frame's.
    pub repeated: u64,
}

impl fmt::Display for OffloadStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "offload: split={} split_segments={} coalesced={} coalesced_segments={} repeated={}",
            self.split, self.split_segments, self.coalesced, self.coalesced_segments, self.repeated
        )
    }
}

/// The underlay MTU a tunnel's MTU was computed from, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnderlayMtu {
    /// The underlay (outer) MTU.
    pub mtu: u16,
    /// Where it came from, in words: "configured", "from the route", "path MTU learnt"...
    pub source: &'static str,
}

/// Packet and byte counters of one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received on the port (before any drop).
    pub rx_packets: u64,
    /// Bytes of those frames (inner Ethernet frames for tunnels).
    pub rx_bytes: u64,
    /// Frames the switch sent out of the port.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Sends that the device or socket refused.
    pub tx_errors: u64,
    /// Those refusals by reason (`errno`), where the shell said why.
    pub tx_error_reasons: ReasonCounts,
}

/// The switch: ports, flows, the MAC table and every counter.
pub struct Switch {
    ports: Vec<Port>,
    table: Arc<FlowTable>,
    /// This shard's counters, which readers reach without its lock (see [`Counters`]).
    counters: Arc<Counters>,
    /// What this switch shares with its shards: the MAC table and the rate limiters.
    common: Arc<Common>,
    /// (remote, local UDP port) -> the (VNI, port) pairs of the tunnels to that remote.
    vxlan_rx: HashMap<(IpAddr, u16), Vec<(u32, PortNo)>, ahash::RandomState>,
    /// remote -> the (key, port) pairs of the GRE tunnels to that remote.
    gre_rx: HashMap<IpAddr, Vec<(Option<u32>, PortNo)>, ahash::RandomState>,
    out: Vec<PortNo>,
    /// Per port slot: the split-horizon group, as an index into the groups' names.
    groups: Vec<Option<u16>>,
    /// Per port slot: the tunnel MTU (largest inner IP packet), `None` for the local port.
    mtu: Vec<Option<u16>>,
    /// Per port slot: the underlay MTU the tunnel MTU came from, and where that came from.
    underlay: Vec<Option<UnderlayMtu>>,
    /// The last frame forwarded, for [`Switch::repeat`] and the same decision for a frame
    /// with the same headers.
    last_forward: Option<LastForward>,
    /// Forward every frame as `normal`, ignoring the table (standalone fail mode with no
    /// controller connected).
    fail_open: bool,
    /// The next frame is a PACKET_OUT: `Some(None)` through the table, `Some(Some(actions))`
    /// with these actions; either way not counted as received.
    packet_out: Option<Option<Vec<flow::Action>>>,
    /// The frame just decided goes to the controllers too.
    packet_in: Option<PacketInMeta>,
    /// Scratch space for answers and fragments handed out in an [`Action`].
    scratch: Vec<u8>,
    scratch_ranges: Vec<Range<usize>>,
    /// Bumped by every change that may alter a decision; shared by the shards.
    generation: Arc<Generation>,
    /// Where the MSS of every SYN forwarded is recorded (see [`crate::segments`]).
    segments: Arc<SegmentSizes>,
    /// What the fast path may cache of the frame just decided (see [`Switch::take_cache_hint`]).
    cache_hint: Option<CacheHint>,
}

/// A decision the fast path may cache: the frame just decided went to exactly one port,
/// whole, with nothing else to do (no controller, no answer, no fragments). Its encapsulation
/// is that port's [`Port::encapsulation`] of the frame, as for every send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHint {
    /// The one egress port.
    pub egress: PortNo,
    /// The generation read before deciding.
    pub generation: u64,
    /// When the MAC table entry the decision read expires, if it read one.
    pub expires: Option<Instant>,
    /// The egress tunnel's MTU (largest inner IP packet), if it has one.
    pub mtu: Option<u16>,
}

/// What the shards of one switch share (see [`Switch::shard`]): the MAC table, and the rate
/// limiters of "too big" answers and packet-ins. The MAC table is read by every `normal`
/// decision and written only when a MAC is new, moves, or was last refreshed a while ago, so
/// shards on different cores mostly only read it.
#[derive(Debug)]
struct Common {
    fdb: RwLock<MacTable>,
    limiter: Mutex<RateLimiter>,
    packet_in_limiter: Mutex<PacketInLimiter>,
}

/// How stale a MAC table entry's time may get before a frame from it refreshes it: ageing
/// works in seconds, so refreshing on every frame would only make the shards write.
const FDB_REFRESH: Duration = Duration::from_millis(500);

impl Common {
    fn fdb_read(&self) -> RwLockReadGuard<'_, MacTable> {
        self.fdb.read().unwrap_or_else(|p| p.into_inner())
    }

    fn fdb_mut(&self) -> RwLockWriteGuard<'_, MacTable> {
        self.fdb.write().unwrap_or_else(|p| p.into_inner())
    }

    fn packet_in_limiter(&self) -> MutexGuard<'_, PacketInLimiter> {
        lock(&self.packet_in_limiter)
    }

    /// Learns that `src` is behind `ingress` and says where `dst` is (MAC learning for
    /// `normal`), taking the write lock only when the entry for `src` must change; and whether
    /// `src` moved (was known behind another port). `generation`: the decision's (see
    /// [`MacTable::lookup_deciding`]).
    fn learn_and_lookup(
        &self,
        src: Mac,
        ingress: PortNo,
        dst: Mac,
        now: Instant,
        generation: u64,
    ) -> (Option<PortNo>, bool) {
        {
            let fdb = self.fdb_read();
            if fdb.is_fresh(src, ingress, now, FDB_REFRESH) {
                return (fdb.lookup_deciding(dst, now, generation), false);
            }
        }
        let mut fdb = self.fdb_mut();
        let moved = fdb.lookup(src, now).is_some_and(|p| p != ingress);
        fdb.learn(src, ingress, now);
        (fdb.lookup_deciding(dst, now, generation), moved)
    }
}

/// A lock, also after a thread panicked while holding it (the state stays usable: counters and
/// limiters).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Switch {
    /// A switch with these ports (port 1 must be the local side) and flows.
    pub fn new(mut ports: Vec<Port>, table: FlowTable, fdb: MacTable) -> Switch {
        ports.sort_by_key(|p| p.no);
        let mut vxlan_rx: HashMap<_, Vec<(u32, PortNo)>, ahash::RandomState> = HashMap::default();
        let mut gre_rx: HashMap<_, Vec<(Option<u32>, PortNo)>, ahash::RandomState> =
            HashMap::default();
        for port in &ports {
            match &port.kind {
                PortKind::Vxlan(t) => vxlan_rx
                    .entry((t.remote, t.dst_port))
                    .or_default()
                    .push((t.vni, port.no)),
                PortKind::Gre(t) => gre_rx.entry(t.remote).or_default().push((t.key, port.no)),
                PortKind::Local => {}
            }
        }
        let flow_count = table.flows().len();
        let port_count = ports.len();
        let mut names: Vec<&str> = Vec::new();
        let groups = ports
            .iter()
            .map(|p| {
                let name = p.options.split_horizon.as_deref()?;
                let i = names.iter().position(|n| *n == name).unwrap_or_else(|| {
                    names.push(name);
                    names.len() - 1
                });
                u16::try_from(i).ok()
            })
            .collect();
        Switch {
            groups,
            counters: Arc::new(Counters::new(
                ports.len(),
                FlowCounters::new(flow_count, Instant::now()),
            )),
            out: Vec::with_capacity(ports.len()),
            ports,
            table: Arc::new(table),
            common: Arc::new(Common {
                fdb: RwLock::new(fdb),
                limiter: Mutex::new(RateLimiter::default()),
                packet_in_limiter: Mutex::new(PacketInLimiter::default()),
            }),
            vxlan_rx,
            gre_rx,
            mtu: vec![None; port_count],
            underlay: vec![None; port_count],
            last_forward: None,
            fail_open: false,
            packet_out: None,
            packet_in: None,
            scratch: Vec::new(),
            scratch_ranges: Vec::new(),
            generation: Arc::new(Generation::new()),
            segments: Arc::default(),
            cache_hint: None,
        }
    }

    /// Shares `generation` (the daemon's, kept across reloads) instead of this switch's own;
    /// call it before making shards.
    pub fn set_generation(&mut self, generation: Arc<Generation>) {
        self.generation = generation;
    }

    /// Records the MSS of the SYNs this switch forwards into `segments` (which the receive
    /// path reads to cut superframes), instead of a table of its own.
    pub fn set_segment_sizes(&mut self, segments: Arc<SegmentSizes>) {
        self.segments = segments;
    }

    /// The generation this switch bumps.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// The cache hint of the frame [`Switch::handle_frame`] just decided, if it may be cached.
    pub fn take_cache_hint(&mut self) -> Option<CacheHint> {
        self.cache_hint.take()
    }

    /// Sets the MTU of tunnel `port`: the largest inner IP packet it carries. Larger ones are
    /// answered with "too big", fragmented or dropped; SYNs crossing it are clamped to fit.
    pub fn set_mtu(&mut self, port: PortNo, mtu: u16) {
        if let Some(slot) = self.slot(port) {
            if self.ports[slot].kind != PortKind::Local && self.mtu[slot] != Some(mtu) {
                self.mtu[slot] = Some(mtu);
                self.generation.bump();
            }
        }
        self.last_forward = None;
    }

    /// The MTU of tunnel `port`, if set.
    pub fn mtu(&self, port: PortNo) -> Option<u16> {
        self.slot(port).and_then(|s| self.mtu[s])
    }

    /// Records the underlay MTU behind tunnel `port`'s MTU and where it came from (for
    /// `vxtunctl show`); the tunnel MTU itself is set with [`Switch::set_mtu`].
    pub fn set_underlay_mtu(&mut self, port: PortNo, underlay: UnderlayMtu) {
        if let Some(slot) = self.slot(port) {
            self.underlay[slot] = Some(underlay);
        }
    }

    /// The underlay MTU recorded for tunnel `port`.
    pub fn underlay_mtu(&self, port: PortNo) -> Option<UnderlayMtu> {
        self.slot(port).and_then(|s| self.underlay[s])
    }

    /// Forgets every learnt MAC.
    pub fn flush_fdb(&mut self) {
        self.common.fdb_mut().flush();
        self.generation.bump();
        self.last_forward = None;
    }

    /// The MTU counters.
    pub fn mtu_stats(&self) -> MtuStats {
        self.counters.mtu()
    }

    /// The offload counters.
    pub fn offload_stats(&self) -> OffloadStats {
        self.counters.offload()
    }

    /// Counts a superframe from the TAP split into `segments` frames.
    pub fn record_split(&mut self, segments: usize) {
        self.counters.count(Count::Split, 1);
        self.counters.count(Count::SplitSegments, segments as u64);
    }

    /// Counts a superframe of `segments` frames written to the TAP.
    pub fn record_coalesced(&mut self, segments: usize) {
        self.counters.count(Count::Coalesced, 1);
        self.counters
            .count(Count::CoalescedSegments, segments as u64);
    }

    /// Whether a frame of `len` bytes from `ingress` can take the last frame's decision through
    /// [`Switch::repeat`]: the last frame was forwarded from the same port and was not shorter.
    /// Only for segments split from one superframe, which share every header the flows, the
    /// MAC table and MSS clamping look at (superframes carry no SYN).
    pub fn can_repeat(&self, ingress: PortNo, len: usize) -> bool {
        self.last_forward
            .as_ref()
            .is_some_and(|l| l.ingress == ingress && len <= l.len)
    }

    /// Forwards the next segment of a superframe where the last one went (see
    /// [`Switch::can_repeat`]), counting it as [`Switch::handle_frame`] would.
    pub fn repeat(&mut self, len: usize) -> Action<'_> {
        let Some(LastForward { ingress, id, .. }) = self.last_forward else {
            return self.drop(DropReason::NoEgress);
        };
        let len = len as u64;
        if let Some(slot) = self.slot(ingress) {
            self.counters.rx(slot, 1, len);
        }
        self.counters.flows().hit(id, len, None);
        self.count_tx(len);
        self.counters.count(Count::Repeated, 1);
        Action::Forward(&self.out)
    }

    /// Decides where a frame that came in on `ingress` goes.
    pub fn handle_frame(&mut self, ingress: PortNo, frame: &mut [u8], now: Instant) -> Action<'_> {
        self.packet_in = None;
        self.cache_hint = None;
        let generation = self.generation.current();
        let packet_out = self.packet_out.take();
        if packet_out.is_none()
            && self
                .last_forward
                .as_ref()
                .is_some_and(|l| l.decides(ingress, frame, now))
        {
            return self.repeat(frame.len());
        }
        self.last_forward = None;
        let len = frame.len() as u64;
        if let (None, Some(slot)) = (&packet_out, self.slot(ingress)) {
            self.counters.rx(slot, 1, len);
        }
        let key = match FrameKey::parse(frame) {
            Ok(key) => key,
            Err(_) => return self.drop(DropReason::TruncatedFrame),
        };
        let rules = match &packet_out {
            Some(Some(actions)) => Rules::Actions(actions),
            _ => Rules::Table,
        };
        let mut out = std::mem::take(&mut self.out);
        let decision = self.xlate(ingress, &key, now, rules, true, &mut out);
        self.out = out;
        let id = decision.flow();
        if let Some(id) = id {
            self.counters.flows().hit(id, len, Some(now));
        }
        if let Some(max_len) = decision.packet_in {
            self.queue_packet_in(ingress, id, max_len, now);
        }
        match decision.verdict {
            Verdict::Drop(reason) => return self.drop(reason),
            Verdict::ControllerOnly => return Action::Forward(&self.out),
            Verdict::Forward => {}
        }
        let ip = IpView::parse(frame);
        if let Some(ip) = &ip {
            // A VLAN tag takes 4 bytes of the tunnel MTU too.
            let tag = (ip.l3 - ethernet::HEADER_LEN) as u16;
            if let Some(mss) = self.mss_limit(ingress, &self.out, ip.version, tag) {
                if clamp_mss(frame, ip, mss).is_some() {
                    self.counters.count(Count::MssClamped, 1);
                }
            }
            self.segments.learn(frame, ip);
        }
        let mut out = std::mem::take(&mut self.out);
        let fit = self.fit(frame, ip.as_ref(), &mut out);
        self.out = out;
        match fit {
            Fit::TooBig { limit } => return self.too_big(ingress, frame, ip, limit, now),
            Fit::Trimmed(skipped) => {
                self.counters.count(Count::TooBigSkipped, skipped as u64);
                // A shorter frame with these headers may fit every port: decide it afresh.
                self.count_tx(len);
                return Action::Forward(&self.out);
            }
            Fit::Fits { .. } => {}
        }
        self.count_tx(len);
        // Only table decisions repeat, and none that also goes to the controllers.
        if let (Some(id), None) = (id, decision.packet_in) {
            self.last_forward = Some(LastForward::new(ingress, id, frame, ip, now));
        }
        if packet_out.is_none() && decision.packet_in.is_none() && self.out.len() == 1 {
            self.cache_hint = self.hint(self.out[0], generation, &decision, &key, now);
        }
        Action::Forward(&self.out)
    }

    /// What the fast path may cache of a decision to send a frame with `key` to `egress` alone
    /// (see [`Decision::cacheable`]).
    fn hint(
        &self,
        egress: PortNo,
        generation: u64,
        decision: &Decision,
        key: &FrameKey,
        now: Instant,
    ) -> Option<CacheHint> {
        if !decision.cacheable() {
            return None;
        }
        let slot = self.slot(egress);
        let expires = match decision.normal {
            Some(NormalLookup::Learnt(_)) => self.common.fdb_read().expires(key.dl_dst, now),
            _ => None,
        };
        Some(CacheHint {
            egress,
            generation,
            expires,
            mtu: slot.and_then(|s| self.mtu[s]),
        })
    }

    /// Queues the frame just decided for the controllers, within the rate limit.
    fn queue_packet_in(&mut self, ingress: PortNo, id: Option<usize>, max_len: u16, now: Instant) {
        if !self.common.packet_in_limiter().allow(now) {
            self.counters.count(Count::PacketInsRateLimited, 1);
            return;
        }
        let flow = id.and_then(|id| self.table.flows().get(id));
        let table_miss =
            flow.is_some_and(|f| f.priority == 0 && f.matches == flow::Match::default());
        self.counters.count(Count::PacketIns, 1);
        self.packet_in = Some(PacketInMeta {
            in_port: ingress,
            reason: if table_miss {
                PacketInReason::NoMatch
            } else {
                PacketInReason::Action
            },
            cookie: flow.map_or(0, |f| f.cookie),
            max_len,
        });
    }

    /// The PACKET_IN the last decided frame asked for, if any (take it right after
    /// [`Switch::handle_frame`], and copy the frame then).
    pub fn take_packet_in(&mut self) -> Option<PacketInMeta> {
        self.packet_in.take()
    }

    /// Decides a frame a controller sent (PACKET_OUT) as if it came in on `in_port`: with
    /// `actions`, as those actions say; without, through the table (OpenFlow's TABLE port).
    /// It is not counted as received; what it sends is counted on the egress ports.
    pub fn packet_out(
        &mut self,
        in_port: PortNo,
        frame: &mut [u8],
        actions: Option<Vec<flow::Action>>,
        now: Instant,
    ) -> Action<'_> {
        self.packet_out = Some(actions);
        self.handle_frame(in_port, frame, now)
    }

    /// Makes every frame take `normal` (`true`), or the table again (`false`): Open vSwitch's
    /// fail-open, for the standalone fail mode while no controller is connected.
    pub fn set_fail_open(&mut self, on: bool) {
        if self.fail_open != on {
            self.generation.bump();
        }
        self.fail_open = on;
        self.last_forward = None;
    }

    /// Whether frames take `normal` instead of the table.
    pub fn fail_open(&self) -> bool {
        self.fail_open
    }

    /// Sets the packet-in rate limit: frames per second and burst.
    pub fn set_packet_in_limit(&mut self, rate: u32, burst: u32) {
        *self.common.packet_in_limiter() = PacketInLimiter::new(rate, burst);
    }

    /// The packet-in counters.
    pub fn packet_in_stats(&self) -> PacketInStats {
        self.counters.packet_in()
    }

    /// A frame larger than `limit` (the IP MTU towards `self.out`): answer, fragment or drop.
    fn too_big(
        &mut self,
        ingress: PortNo,
        frame: &[u8],
        ip: Option<IpView>,
        limit: usize,
        now: Instant,
    ) -> Action<'_> {
        let Some(ip) = ip else {
            return self.drop(DropReason::Oversize);
        };
        if !ip.dont_fragment() {
            let mtu = limit.min(usize::from(u16::MAX));
            if !ip::fragment_ipv4(frame, &ip, mtu, &mut self.scratch, &mut self.scratch_ranges) {
                return self.drop(DropReason::Oversize);
            }
            self.counters.count(Count::Fragmented, 1);
            self.counters
                .count(Count::Fragments, self.scratch_ranges.len() as u64);
            for r in 0..self.scratch_ranges.len() {
                let len = self.scratch_ranges[r].len() as u64;
                self.count_tx(len);
            }
            return Action::Fragments {
                ports: &self.out,
                frames: &self.scratch,
                ranges: &self.scratch_ranges,
            };
        }
        let source = match (
            ip.version,
            frame.get(ip.l3 + 12..ip.l3 + 16),
            frame.get(ip.l3 + 8..ip.l3 + 24),
        ) {
            (4, Some(a), _) => IpAddr::from([a[0], a[1], a[2], a[3]]),
            (_, _, Some(a)) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(a);
                IpAddr::from(b)
            }
            _ => return self.drop(DropReason::Oversize),
        };
        let built = too_big_answer(frame, &ip, limit, &mut self.scratch);
        if !built {
            return self.drop(DropReason::Oversize);
        }
        self.counters.count_drop(DropReason::TooBig);
        if !lock(&self.common.limiter).allow(source, now) {
            self.counters.count(Count::TooBigRateLimited, 1);
            return Action::Drop(DropReason::TooBig);
        }
        self.counters.count(Count::TooBigSent, 1);
        if let Some(slot) = self.slot(ingress) {
            self.counters.tx(slot, 1, self.scratch.len() as u64);
        }
        Action::Reply {
            port: ingress,
            frame: &self.scratch,
        }
    }

    fn count_tx(&mut self, len: u64) {
        for i in 0..self.out.len() {
            if let Some(slot) = self.slot(self.out[i]) {
                self.counters.tx(slot, 1, len);
            }
        }
    }

    /// Checks a VXLAN datagram received on local UDP port `local_port` from `src`, and decides
    /// where its inner frame (`datagram[vxlan::HEADER_LEN..]`) goes.
    pub fn handle_vxlan(
        &mut self,
        local_port: u16,
        src: IpAddr,
        datagram: &mut [u8],
        now: Instant,
    ) -> Action<'_> {
        self.handle_vxlan_ecn(local_port, src, tunnel::NOT_ECT, datagram, now)
    }

    /// [`Switch::handle_vxlan`] for a datagram whose outer IP header carried the ECN field
    /// `outer_ecn`: it is carried into the inner header as RFC 6040 says (and a CE over a
    /// Not-ECT inner packet dropped) once the sender and VNI are checked.
    pub fn handle_vxlan_ecn(
        &mut self,
        local_port: u16,
        src: IpAddr,
        outer_ecn: u8,
        datagram: &mut [u8],
        now: Instant,
    ) -> Action<'_> {
        let header = match vxlan::Header::decode(datagram) {
            Ok(h) => h,
            Err(vxlan::DecodeError::Truncated) => return self.drop(DropReason::VxlanTruncated),
            Err(vxlan::DecodeError::BadFlags) => return self.drop(DropReason::VxlanBadFlags),
        };
        let Some(tunnels) = self.vxlan_rx.get(&(src, local_port)) else {
            return self.drop(DropReason::UnknownRemote);
        };
        let Some(&(_, port)) = tunnels.iter().find(|(vni, _)| *vni == header.vni) else {
            return self.drop(DropReason::WrongVni);
        };
        self.handle_decapsulated(port, outer_ecn, &mut datagram[vxlan::HEADER_LEN..], now)
    }

    /// Checks a GRE packet (the IP payload) received from `src`, and decides where its inner
    /// frame goes. Returns the action and where the inner frame starts in `packet`.
    pub fn handle_gre(
        &mut self,
        src: IpAddr,
        packet: &mut [u8],
        now: Instant,
    ) -> (Action<'_>, usize) {
        self.handle_gre_ecn(src, tunnel::NOT_ECT, packet, now)
    }

    /// [`Switch::handle_gre`] for a packet whose outer IP header carried the ECN field
    /// `outer_ecn` (see [`Switch::handle_vxlan_ecn`]).
    pub fn handle_gre_ecn(
        &mut self,
        src: IpAddr,
        outer_ecn: u8,
        packet: &mut [u8],
        now: Instant,
    ) -> (Action<'_>, usize) {
        let decoded = gre::Header::decode(packet);
        self.handle_gre_decoded(src, outer_ecn, decoded, packet, now)
    }

    /// [`Switch::handle_gre_ecn`] for a packet whose header the caller decoded already
    /// (`decoded`: [`gre::Header::decode`] of `packet`), so that the data path, which reads
    /// the header for its cache key, decodes it once.
    pub fn handle_gre_decoded(
        &mut self,
        src: IpAddr,
        outer_ecn: u8,
        decoded: Result<(gre::Header, usize), gre::DecodeError>,
        packet: &mut [u8],
        now: Instant,
    ) -> (Action<'_>, usize) {
        let (header, offset) = match decoded {
            Ok(h) => h,
            Err(e) => {
                let reason = match e {
                    gre::DecodeError::Truncated => DropReason::GreTruncated,
                    gre::DecodeError::BadHeader => DropReason::GreBadHeader,
                    gre::DecodeError::NotEthernet => DropReason::GreNotEthernet,
                    gre::DecodeError::BadChecksum => DropReason::GreBadChecksum,
                };
                return (self.drop(reason), 0);
            }
        };
        let Some(tunnels) = self.gre_rx.get(&src) else {
            return (self.drop(DropReason::UnknownRemote), 0);
        };
        let Some(&(_, port)) = tunnels.iter().find(|(key, _)| *key == header.key) else {
            return (self.drop(DropReason::GreWrongKey), 0);
        };
        (
            self.handle_decapsulated(port, outer_ecn, &mut packet[offset..], now),
            offset,
        )
    }

    /// A frame decapsulated from tunnel `port`: ECN first (RFC 6040), then as any frame.
    fn handle_decapsulated(
        &mut self,
        port: PortNo,
        outer_ecn: u8,
        frame: &mut [u8],
        now: Instant,
    ) -> Action<'_> {
        match tunnel::decapsulate_ecn(outer_ecn, frame) {
            EcnDecap::Unchanged => {}
            EcnDecap::Marked => self.counters.count(Count::EcnMarked, 1),
            EcnDecap::Drop => {
                if let Some(slot) = self.slot(port) {
                    self.counters.rx(slot, 1, frame.len() as u64);
                }
                return self.drop(DropReason::EcnCeNotEct);
            }
        }
        self.handle_frame(port, frame, now)
    }

    /// Swaps in a new flow table in one step: a frame sees the whole old table or the whole new
    /// one. Build `table` before taking the switch's lock; this only remaps counters. Flows
    /// with the same priority and match keep their counters (as after ovs-ofctl `mod-flows`),
    /// except those whose index is in `reset` (an edit with `reset_counts`, see
    /// [`crate::flow::edit::Edited::reset`]); new ones start at zero, added `now`.
    /// Returns the old table, to be dropped after the lock is released.
    pub fn replace_table(
        &mut self,
        table: impl Into<Arc<FlowTable>>,
        reset: &[usize],
        now: Instant,
    ) -> Arc<FlowTable> {
        let table = table.into();
        let carry = carry_map(&self.table, &table);
        self.replace_table_with(table, &carry, reset, now)
    }

    /// [`Switch::replace_table`] with the counters' [`carry_map`] from the table in force to
    /// `table` worked out by the caller (once for every shard, outside their locks).
    pub fn replace_table_with(
        &mut self,
        table: Arc<FlowTable>,
        carry: &[Option<usize>],
        reset: &[usize],
        now: Instant,
    ) -> Arc<FlowTable> {
        let ports: Vec<Option<usize>> = (0..self.ports.len()).map(Some).collect();
        self.counters = Arc::new(self.counters.carried(&ports, carry, reset, now));
        self.last_forward = None;
        let old = std::mem::replace(&mut self.table, table);
        self.generation.bump();
        old
    }

    /// The flow table in force, to share.
    pub fn table_arc(&self) -> &Arc<FlowTable> {
        &self.table
    }

    /// Takes over from `old`, the switch running until now, what a reload keeps: the counters
    /// of ports with the same number and name, of flows with the same priority and match (new
    /// flows start at zero, added `now`), every drop and MTU counter, the "too big" rate
    /// limiter, and the learnt MACs of ports that are still there unchanged. MACs learnt on a
    /// removed or changed tunnel are forgotten: their hosts may now be behind another port.
    /// Build `self` before taking the lock; this only copies state, then `self` replaces `old`.
    pub fn take_over(&mut self, old: &mut Switch, now: Instant) {
        self.take_over_common(old, now);
        let carry = carry_map(&old.table, &self.table);
        self.take_over_counters(old, &carry, now);
    }

    /// The part of [`Switch::take_over`] that the shards share (the MAC table and the rate
    /// limiters): once per switch, from any one shard of the old switch.
    pub fn take_over_common(&mut self, old: &Switch, now: Instant) {
        *lock(&self.common.limiter) = std::mem::take(&mut *lock(&old.common.limiter));
        *self.common.packet_in_limiter() = old.common.packet_in_limiter().clone();
        let mut kept: Vec<_> = old
            .fdb()
            .entries(now)
            .filter(|(_, e)| {
                let now = self.identity(e.port);
                now.is_some() && now == old.identity(e.port)
            })
            .collect();
        kept.sort_by_key(|(_, e)| e.seen);
        let mut fdb = self.common.fdb_mut();
        for (mac, e) in kept {
            fdb.learn(mac, e.port, e.seen);
        }
        // Remote entries (EVPN) of ports still there unchanged.
        fdb.take_remote(&old.fdb(), |p| {
            let now = self.identity(p);
            now.is_some() && now == old.identity(p)
        });
    }

    /// The part of [`Switch::take_over`] that each shard keeps on its own: the counters, the
    /// flows' along `carry` (the [`carry_map`] from `old`'s table to this one's).
    pub fn take_over_counters(&mut self, old: &Switch, carry: &[Option<usize>], now: Instant) {
        let ports: Vec<Option<usize>> = self
            .ports
            .iter()
            .map(|port| {
                old.slot(port.no)
                    .filter(|&o| old.ports[o].name == port.name)
            })
            .collect();
        self.counters = Arc::new(old.counters.carried(&ports, carry, &[], now));
        self.fail_open = old.fail_open;
        self.last_forward = None;
        self.generation = Arc::clone(&old.generation);
        self.generation.bump();
    }

    /// A shard of this switch, for another data-path thread: the same ports, flow table, MTUs
    /// and fail mode, sharing the MAC table and the rate limiters, with counters of its own
    /// (all zero). Threads that each decide with their own shard never wait for each other;
    /// a read adds up the shards' counters ([`Counters::sum`]).
    pub fn shard(&self) -> Switch {
        self.sibling(Arc::new(self.counters.cleared()))
    }

    /// A copy of this switch (ports, table, MTUs, fail mode, what the shards share) that reads
    /// as `counters`: what a control plane reads and renders, the sum of the shards' counters,
    /// made without any shard's lock.
    pub fn reading(&self, counters: Counters) -> Switch {
        self.sibling(Arc::new(counters))
    }

    /// This shard's counters, for readers that do not hold its lock (see [`Counters`]). A
    /// table change or a reload gives the shard new ones.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// A switch with this one's ports, table, MTUs and fail mode, sharing what the shards
    /// share, with `counters`.
    fn sibling(&self, counters: Arc<Counters>) -> Switch {
        Switch {
            ports: self.ports.clone(),
            table: Arc::clone(&self.table),
            counters,
            common: Arc::clone(&self.common),
            vxlan_rx: self.vxlan_rx.clone(),
            gre_rx: self.gre_rx.clone(),
            out: Vec::with_capacity(self.ports.len()),
            groups: self.groups.clone(),
            mtu: self.mtu.clone(),
            underlay: self.underlay.clone(),
            last_forward: None,
            fail_open: self.fail_open,
            packet_out: None,
            packet_in: None,
            scratch: Vec::new(),
            scratch_ranges: Vec::new(),
            generation: Arc::clone(&self.generation),
            segments: Arc::clone(&self.segments),
            cache_hint: None,
        }
    }

    /// Counts what the kernel fast path forwarded for a cached decision since the last count:
    /// `packets` frames of `bytes` with `key` from `ingress` to `egress`, on the ports, on the
    /// flow that matches them now (not while failed open), and as use of the flow at `now`
    /// (for idle timeouts). A source MAC the table knows behind `ingress` is refreshed, as the
    /// frames would have refreshed it on the userspace path.
    pub fn record_cached(
        &mut self,
        ingress: PortNo,
        egress: PortNo,
        key: &FrameKey,
        packets: u64,
        bytes: u64,
        now: Instant,
    ) {
        if let Some(slot) = self.slot(ingress) {
            self.counters.rx(slot, packets, bytes);
        }
        if let Some(slot) = self.slot(egress) {
            self.counters.tx(slot, packets, bytes);
        }
        if !self.fail_open {
            if let Some(id) = self.table.lookup(ingress, key) {
                self.counters.flows().hit_many(id, packets, bytes, now);
            }
        }
        let known = {
            let fdb = self.common.fdb_read();
            fdb.lookup(key.dl_src, now) == Some(ingress)
                && !fdb.is_fresh(key.dl_src, ingress, now, FDB_REFRESH)
        };
        if known {
            self.common.fdb_mut().learn(key.dl_src, ingress, now);
        }
    }

    /// The VXLAN tunnel port to `remote` on UDP port `udp_port` with `vni`.
    pub fn vxlan_port(&self, remote: IpAddr, udp_port: u16, vni: u32) -> Option<PortNo> {
        self.vxlan_rx
            .get(&(remote, udp_port))?
            .iter()
            .find(|(v, _)| *v == vni)
            .map(|&(_, p)| p)
    }

    /// The GRE tunnel port to `remote` with `key`.
    pub fn gre_port(&self, remote: IpAddr, key: Option<u32>) -> Option<PortNo> {
        self.gre_rx
            .get(&remote)?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, p)| p)
    }

    /// Counts a frame dropped before it reached the switch (by the I/O shell).
    pub fn record_drop(&mut self, reason: DropReason) {
        self.counters.count_drop(reason);
    }

    /// Counts a send that failed on `port`.
    pub fn record_tx_error(&mut self, port: PortNo) {
        if let Some(slot) = self.slot(port) {
            self.counters.tx_error(slot, None);
        }
    }

    /// Counts a send that failed on `port` for `reason` (in `tx_errors` and by reason).
    pub fn record_send_error(&mut self, port: PortNo, reason: ErrorReason) {
        if let Some(slot) = self.slot(port) {
            self.counters.tx_error(slot, Some(reason));
        }
    }

    /// Counts a receive error of an underlay socket.
    pub fn record_rx_error(&mut self, reason: ErrorReason) {
        self.counters.rx_error(reason);
    }

    /// Receive errors of the underlay sockets, by reason.
    pub fn rx_errors(&self) -> ReasonCounts {
        self.counters.rx_errors()
    }

    /// The ports, by number.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// The counters of `port`.
    pub fn port_stats(&self, port: PortNo) -> Option<PortStats> {
        self.slot(port).and_then(|s| self.counters.port(s))
    }

    /// How many frames were dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.counters.drops(reason)
    }

    /// The flow table.
    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// The counters of flow `id` (its index in the table).
    pub fn flow_stats(&self, id: usize) -> Option<FlowStats> {
        self.counters.flow(id)
    }

    /// The MAC learning table, to change (EVPN's remote entries).
    pub fn fdb_mut(&self) -> RwLockWriteGuard<'_, MacTable> {
        self.common.fdb_mut()
    }

    /// The MAC table, to read.
    pub fn fdb(&self) -> RwLockReadGuard<'_, MacTable> {
        self.common.fdb_read()
    }

    /// Every counter, one line per port and one line of drops, as logged on SIGUSR1 and at exit.
    pub fn stats_report(&self) -> StatsReport<'_> {
        StatsReport(self)
    }

    fn slot(&self, port: PortNo) -> Option<usize> {
        self.ports.binary_search_by_key(&port, |p| p.no).ok()
    }

    /// The name and kind of `port`: what must not change for its learnt MACs to stay valid.
    fn identity(&self, port: PortNo) -> Option<(&str, &PortKind)> {
        self.slot(port)
            .map(|s| (self.ports[s].name.as_str(), &self.ports[s].kind))
    }

    /// Whether ports `a` and `b` are in one split-horizon group.
    fn same_group(&self, a: PortNo, b: PortNo) -> bool {
        let group = |p| self.slot(p).and_then(|s| self.groups[s]);
        group(a).is_some() && group(a) == group(b)
    }

    fn drop(&mut self, reason: DropReason) -> Action<'static> {
        self.counters.count_drop(reason);
        Action::Drop(reason)
    }
}

/// Builds into `out` the answer to `frame` (`ip`, its IP header), too big for the IP MTU
/// `limit` and not to be fragmented: ICMP "fragmentation needed" or ICMPv6 "packet too big".
/// False where none may be sent (RFC 1812, RFC 4443: an ICMP error, a group address...).
pub fn too_big_answer(frame: &[u8], ip: &IpView, limit: usize, out: &mut Vec<u8>) -> bool {
    let mtu = u16::try_from(limit).unwrap_or(u16::MAX);
    if ip.version == 4 {
        icmp::frag_needed(frame, ip, mtu, out)
    } else {
        icmp::packet_too_big(frame, ip, u32::from(mtu), out)
    }
}

/// Every port but the ingress and, when the ingress is in a split-horizon group, that group's
/// other ports.
fn flood(ports: &[Port], groups: &[Option<u16>], ingress: PortNo, out: &mut Vec<PortNo>) {
    let group = ports
        .binary_search_by_key(&ingress, |p| p.no)
        .ok()
        .and_then(|s| groups[s]);
    out.extend(
        ports
            .iter()
            .zip(groups)
            .filter(|(p, g)| p.no != ingress && (group.is_none() || **g != group))
            .map(|(p, _)| p.no),
    );
}

/// The counters of a switch, printable.
pub struct StatsReport<'a>(&'a Switch);

impl fmt::Display for StatsReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sw = self.0;
        for (slot, port) in sw.ports.iter().enumerate() {
            let s = sw.counters.port(slot).unwrap_or_default();
            writeln!(f, "port {} {}: {s}", port.no, port.name)?;
        }
        for (id, flow) in sw.table.flows().iter().enumerate() {
            let s = sw.counters.flow(id).unwrap_or_default();
            writeln!(
                f,
                "flow {id}: n_packets={} n_bytes={} {flow}",
                s.n_packets, s.n_bytes
            )?;
        }
        write!(f, "{}", sw.totals(""))
    }
}

/// The switch-wide lines of the counters (MTU handling, offloads, the controller side,
/// underlay receive errors, drops), each after an indent: shared by [`StatsReport`] and
/// `vxtunctl show`.
pub struct Totals<'a> {
    counters: &'a Counters,
    fail_open: bool,
    indent: &'a str,
}

impl Switch {
    /// The switch-wide lines of the counters, each after `indent`.
    pub fn totals<'a>(&'a self, indent: &'a str) -> Totals<'a> {
        Totals {
            counters: &self.counters,
            fail_open: self.fail_open,
            indent,
        }
    }
}

impl fmt::Display for Totals<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, i) = (self.counters, self.indent);
        let m = c.mtu();
        writeln!(
            f,
            "{i}mtu: mss_clamped={} too_big_sent={} too_big_rate_limited={} fragmented={} fragments={} too_big_skipped={} ecn_marked={}",
            m.mss_clamped, m.too_big_sent, m.too_big_rate_limited, m.fragmented, m.fragments,
            m.too_big_skipped, m.ecn_marked
        )?;
        writeln!(f, "{i}{}", c.offload())?;
        let p = c.packet_in();
        writeln!(
            f,
            "{i}controller: packet_in={} packet_in_rate_limited={}{}",
            p.sent,
            p.rate_limited,
            if self.fail_open { " fail_open" } else { "" }
        )?;
        let rx = c.rx_errors();
        writeln!(
            f,
            "{i}underlay: rx_errors={}{}",
            rx.total(),
            ErrorsByReason("rx_errors", &rx)
        )?;
        write!(f, "{i}drops:")?;
        for reason in DropReason::ALL {
            write!(f, " {}={}", reason.name(), c.drops(reason))?;
        }
        writeln!(f)
    }
}

impl fmt::Display for PortStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx_packets={} rx_bytes={} tx_packets={} tx_bytes={} tx_errors={}{}",
            self.rx_packets,
            self.rx_bytes,
            self.tx_packets,
            self.tx_bytes,
            self.tx_errors,
            ErrorsByReason("tx_errors", &self.tx_error_reasons)
        )
    }
}

/// Error counts by reason as ` PREFIX_REASON=N` words (the non-zero ones), after a total.
pub struct ErrorsByReason<'a>(pub &'a str, pub &'a ReasonCounts);

impl fmt::Display for ErrorsByReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for reason in ErrorReason::ALL {
            let n = self.1.get(reason);
            if n > 0 {
                write!(f, " {}_{}={n}", self.0, reason.name())?;
            }
        }
        Ok(())
    }
}

/// Most header bytes a frame may have for its decision to be repeated by header comparison.
const REPEAT_HEADERS: usize = 128;

/// The last frame [`Switch::handle_frame`] forwarded: what [`Switch::repeat`] needs to send
/// another the same way, and that frame's headers, so that a frame with the same headers is
/// recognised as deciding the same.
///
/// Received GRO batches are runs of segments of one inner flow: this saves the flow lookup,
/// the MAC table and the header parsing for all but the first of each run.
#[derive(Debug, Clone, Copy)]
struct LastForward {
    ingress: PortNo,
    /// The flow it matched.
    id: usize,
    /// Its length: longer frames may be too big where it was not.
    len: usize,
    /// When it was decided. The MAC table ages by this clock, so only frames decided at the
    /// same instant (one batch) may share a decision.
    now: Instant,
    /// Its IP header, if it is an IP packet with a transport header; otherwise no frame repeats
    /// it by comparison.
    ip: Option<IpView>,
    /// Its bytes up to and including the transport ports (or ICMP type, code and checksum).
    headers: [u8; REPEAT_HEADERS],
}

impl LastForward {
    fn new(ingress: PortNo, id: usize, frame: &[u8], ip: Option<IpView>, now: Instant) -> Self {
        let mut headers = [0; REPEAT_HEADERS];
        // IPv6 stopped at an extension header (a fragment header, a chain cut short or too
        // long): the flow key walks further than `IpView`, so equal bytes up to here do not
        // make an equal key.
        let ext = |ip: &IpView| ip.version == 6 && matches!(ip.proto, 0 | 43 | 44 | 60);
        let ip = ip.filter(|ip| {
            ip.has_transport_header()
                && !ext(ip)
                && Self::headers_end(ip) <= frame.len().min(REPEAT_HEADERS)
        });
        if let Some(ip) = &ip {
            let end = Self::headers_end(ip);
            headers[..end].copy_from_slice(&frame[..end]);
        }
        LastForward {
            ingress,
            id,
            len: frame.len(),
            now,
            ip,
            headers,
        }
    }

    /// Where the compared headers end: four bytes into the transport header.
    fn headers_end(ip: &IpView) -> usize {
        ip.l3 + ip.header_len + 4
    }

    /// Whether `frame`, from `ingress` at `now`, would be decided exactly as this one was.
    ///
    /// Every byte the decision reads is equal: MACs, tags, EtherType, the IP header and the
    /// ports. Only what differs between segments of one flow may differ: the IPv4 total
    /// length, identification and header checksum, the IPv6 payload length. The frame must
    /// be no longer (the MTU check), and no TCP SYN (MSS clamping rewrites those).
    fn decides(&self, ingress: PortNo, frame: &[u8], now: Instant) -> bool {
        let Some(last) = &self.ip else {
            return false;
        };
        if ingress != self.ingress || now != self.now || frame.len() > self.len {
            return false;
        }
        let end = Self::headers_end(last);
        let (l3, then) = (last.l3, &self.headers);
        let same = |r: Range<usize>| frame.get(r.clone()) == then.get(r);
        let headers_same = match last.version {
            4 => same(0..l3 + 2) && same(l3 + 6..l3 + 10) && same(l3 + 12..end),
            _ => same(0..l3 + 4) && same(l3 + 6..end),
        };
        if !headers_same {
            return false;
        }
        // The same header bytes parse the same way, unless the new frame is too short for
        // the length its IP header now claims.
        let Some(ip) = IpView::parse(frame) else {
            return false;
        };
        let syn = ip.proto == tcp::PROTO_TCP
            && frame
                .get(end + 9)
                .is_none_or(|flags| flags & tcp::FLAG_SYN != 0);
        ip.l3 == l3 && ip.header_len == last.header_len && ip.proto == last.proto && !syn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdb::DEFAULT_AGEING;
    use crate::flow::parse_flow;
    use crate::flow::syntax::tests::HubPorts;
    use crate::testing::{bare_hub, local, switch_with, tunnel};
    use crate::wire::ethernet::Mac;
    use crate::wire::vectors::{KERNEL_ARP, KERNEL_NS};
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const INNER: usize = vxlan::HEADER_LEN;

    /// The hub of [`crate::testing`] without tunnel MTUs.
    fn hub(rules: &[&str]) -> Switch {
        bare_hub(rules)
    }

    fn ipv4_frame(src_mac: [u8; 6], dst_mac: [u8; 6], dst: [u8; 4]) -> Vec<u8> {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
            .ipv4([172, 31, 1, 1], dst, 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut frame, b"ping")
            .unwrap();
        frame
    }

    fn forward(action: Action<'_>) -> Vec<u32> {
        match action {
            Action::Forward(ports) => ports.iter().map(|p| p.0).collect(),
            other => panic!("not forwarded: {other:?}"),
        }
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    #[test]
    fn controller_actions_hand_the_frame_up_with_reason_and_cookie() {
        let mut sw = hub(&[
            "priority=0,actions=controller:128",
            "cookie=0x7,ip,nw_dst=172.31.2.0/24,actions=output:2,controller",
        ]);
        let now = Instant::now();
        // The table-miss flow: nothing else goes out, the reason is NO_MATCH.
        assert!(
            forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [10, 0, 0, 1]), now))
                .is_empty()
        );
        assert_eq!(
            sw.take_packet_in(),
            Some(PacketInMeta {
                in_port: PortNo(1),
                reason: PacketInReason::NoMatch,
                cookie: 0,
                max_len: 128
            })
        );
        assert_eq!(sw.drops(DropReason::NoEgress), 0, "not a drop");
        // Another flow's controller action: forwarded and handed up, reason ACTION.
        let mut frame = ipv4_frame(A, B, [172, 31, 2, 1]);
        assert_eq!(forward(sw.handle_frame(PortNo(1), &mut frame, now)), [2]);
        let meta = sw.take_packet_in().unwrap();
        assert_eq!((meta.reason, meta.cookie), (PacketInReason::Action, 7));
        // Taken once; and such a decision is never repeated without its packet-in.
        assert_eq!(sw.take_packet_in(), None);
        forward(sw.handle_frame(PortNo(1), &mut frame, now));
        assert!(
            sw.take_packet_in().is_some(),
            "the same headers again: handed up again"
        );
        assert_eq!(sw.packet_in_stats().sent, 3);
    }

    #[test]
    fn packet_ins_beyond_the_rate_are_counted_not_handed_up() {
        let mut sw = hub(&["priority=0,actions=controller"]);
        sw.set_packet_in_limit(10, 5);
        let now = Instant::now();
        let mut handed = 0;
        for i in 0..100u8 {
            sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [10, 0, 0, i]), now);
            handed += usize::from(sw.take_packet_in().is_some());
        }
        assert_eq!(handed, 5, "the burst");
        let stats = sw.packet_in_stats();
        assert_eq!((stats.sent, stats.rate_limited), (5, 95));
    }

    #[test]
    fn fail_open_forwards_as_normal_and_leaves_the_table_alone() {
        let mut sw = hub(&[]);
        let now = Instant::now();
        sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [10, 0, 0, 1]), now);
        assert_eq!(
            sw.drops(DropReason::NoMatchingFlow),
            1,
            "an empty table drops"
        );
        sw.set_fail_open(true);
        assert_eq!(
            forward(sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [10, 0, 0, 1]), now)),
            [1, 3],
            "normal floods an unknown destination"
        );
        assert_eq!(
            forward(sw.handle_frame(PortNo(3), &mut ipv4_frame(B, A, [10, 0, 0, 2]), now)),
            [2],
            "and has learnt A behind port 2"
        );
        sw.set_fail_open(false);
        sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [10, 0, 0, 1]), now);
        assert_eq!(sw.drops(DropReason::NoMatchingFlow), 2, "the table again");
    }

    #[test]
    fn packet_outs_go_where_they_say_and_count_only_on_the_way_out() {
        let mut sw = hub(&["ip,nw_dst=172.31.3.0/24,actions=output:3"]);
        let now = Instant::now();
        let controller = PortNo(0xffff_fffd);
        let mut frame = ipv4_frame(A, B, [172, 31, 2, 1]);
        let flood = sw.packet_out(controller, &mut frame, Some(vec![flow::Action::Flood]), now);
        assert_eq!(
            forward(flood),
            [1, 2, 3],
            "from the controller, flood is every port"
        );
        let out = sw.packet_out(PortNo(2), &mut frame, Some(vec![flow::Action::Flood]), now);
        assert_eq!(forward(out), [1, 3], "from port 2: not back to it");
        assert_eq!(
            sw.port_stats(PortNo(2)).unwrap().rx_packets,
            0,
            "not received"
        );
        assert_eq!(sw.port_stats(PortNo(3)).unwrap().tx_packets, 2, "sent");
        // TABLE: the flows decide, and the flow counts it.
        let mut frame = ipv4_frame(A, B, [172, 31, 3, 7]);
        assert_eq!(
            forward(sw.packet_out(PortNo(1), &mut frame, None, now)),
            [3]
        );
        assert_eq!(sw.flow_stats(0).unwrap().n_packets, 1);
        assert_eq!(sw.port_stats(PortNo(1)).unwrap().rx_packets, 0);
    }

    #[test]
    fn flood_goes_everywhere_but_the_ingress() {
        let mut sw = hub(&["arp,actions=flood"]);
        let now = Instant::now();
        assert_eq!(
            forward(sw.handle_frame(PortNo(2), &mut KERNEL_ARP[INNER..].to_vec(), now)),
            [1, 3]
        );
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut KERNEL_ARP[INNER..].to_vec(), now)),
            [2, 3]
        );
        let s = sw.port_stats(PortNo(3)).unwrap();
        assert_eq!((s.tx_packets, s.tx_bytes), (2, 84));
        assert_eq!(
            sw.flow_stats(0),
            Some(FlowStats {
                n_packets: 2,
                n_bytes: 84,
                added: None,
                last_used: sw.flow_stats(0).and_then(|s| s.last_used)
            })
        );
    }

    #[test]
    fn output_picks_the_prefix_and_never_reflects() {
        let mut sw = hub(&[
            "ip,nw_dst=172.31.2.0/24,actions=output:2",
            "ip,nw_dst=172.31.3.0/24,actions=output:3",
            "ip,nw_dst=172.31.9.0/24,actions=in_port",
        ]);
        let now = Instant::now();
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [172, 31, 3, 1]), now)),
            [3]
        );
        assert_eq!(
            forward(sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [172, 31, 3, 1]), now)),
            [3]
        );
        assert_eq!(
            forward(sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [172, 31, 9, 1]), now)),
            [2]
        );
        assert_eq!(
            sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [172, 31, 2, 1]), now),
            Action::Drop(DropReason::NoEgress)
        );
        assert_eq!(sw.drops(DropReason::NoEgress), 1);
    }

    #[test]
    fn normal_learns_floods_unknown_and_forgets_after_ageing() {
        let mut sw = hub(&["actions=normal"]);
        let t0 = Instant::now();
        // B unknown: flood. A learnt on 2.
        assert_eq!(
            forward(sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 1]), t0)),
            [1, 3]
        );
        // The reply to A goes to 2 only; B learnt on 1.
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(B, A, [1, 1, 1, 1]), t0)),
            [2]
        );
        assert_eq!(
            forward(sw.handle_frame(PortNo(3), &mut ipv4_frame(A, B, [1, 1, 1, 1]), t0)),
            [1]
        );
        // A moved to 3.
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(B, A, [1, 1, 1, 1]), t0)),
            [3]
        );
        // Broadcast and multicast always flood.
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut KERNEL_NS[INNER..].to_vec(), t0)),
            [2, 3]
        );
        // After ageing A is unknown again.
        let later = t0 + DEFAULT_AGEING + Duration::from_secs(1);
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(B, A, [1, 1, 1, 1]), later)),
            [2, 3]
        );
        // A frame to a MAC on its own ingress port goes nowhere.
        sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [1, 1, 1, 1]), later);
        assert_eq!(
            sw.handle_frame(PortNo(1), &mut ipv4_frame(B, A, [1, 1, 1, 1]), later),
            Action::Drop(DropReason::NoEgress)
        );
    }

    /// Local port 1; tunnels 2 and 3 in split-horizon group `mesh`, tunnel 4 in none.
    fn mesh(rules: &[&str]) -> Switch {
        let grouped = |no, name, last| Port {
            options: PortOptions {
                split_horizon: Some("mesh".into()),
                ..Default::default()
            },
            ..tunnel(no, name, last)
        };
        let ports = vec![
            local(),
            grouped(2, "tun_kl", 102),
            grouped(3, "tun_km", 103),
            tunnel(4, "tun4", 104),
        ];
        switch_with(ports, rules)
    }

    #[test]
    fn split_horizon_keeps_floods_from_crossing_between_tunnels_of_one_group() {
        let now = Instant::now();
        for rules in [["actions=flood"], ["actions=all"], ["actions=normal"]] {
            let mut sw = mesh(&rules);
            let arp = || KERNEL_ARP[INNER..].to_vec();
            assert_eq!(
                forward(sw.handle_frame(PortNo(2), &mut arp(), now)),
                [1, 4],
                "{rules:?}: from the group, not to its other member"
            );
            assert_eq!(
                forward(sw.handle_frame(PortNo(1), &mut arp(), now)),
                [2, 3, 4],
                "{rules:?}: from the host, to every tunnel"
            );
            assert_eq!(
                forward(sw.handle_frame(PortNo(4), &mut arp(), now)),
                [1, 2, 3],
                "{rules:?}: from outside the group, into it"
            );
        }
        // An explicit output is the operator's choice and is not filtered.
        let mut sw = mesh(&["actions=output:3"]);
        assert_eq!(
            forward(sw.handle_frame(PortNo(2), &mut KERNEL_ARP[INNER..].to_vec(), now)),
            [3]
        );
    }

    #[test]
    fn split_horizon_drops_a_learnt_unicast_into_the_same_group() {
        let mut sw = mesh(&["actions=normal"]);
        let now = Instant::now();
        // B is learnt behind tunnel 3; A, behind tunnel 2, sends to it.
        sw.handle_frame(PortNo(3), &mut ipv4_frame(B, A, [1, 1, 1, 1]), now);
        assert_eq!(
            sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 1]), now),
            Action::Drop(DropReason::SplitHorizon)
        );
        assert_eq!(sw.drops(DropReason::SplitHorizon), 1);
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [1, 1, 1, 1]), now)),
            [3],
            "from the host it goes"
        );
        assert_eq!(
            forward(sw.handle_frame(PortNo(4), &mut ipv4_frame(A, B, [1, 1, 1, 1]), now)),
            [3],
            "from outside the group it goes"
        );
    }

    #[test]
    fn shards_share_the_mac_table_and_their_counters_add_up() {
        let t0 = Instant::now();
        let sw = hub(&["arp,actions=flood", "actions=normal"]);
        let (mut a, mut b) = (sw.shard(), sw.shard());
        // A learnt by shard a (from tunnel 2); shard b sends a frame to A there at once.
        a.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 1]), t0);
        let action = b.handle_frame(PortNo(3), &mut ipv4_frame(B, A, [1, 1, 1, 1]), t0);
        assert_eq!(
            forward(action),
            vec![2],
            "shard b knows what shard a learnt"
        );
        b.handle_frame(PortNo(1), &mut [0u8; 3], t0);
        assert_eq!(a.fdb().len(), 2, "one table: B learnt by b shows in a");

        let sum = summed(&sw, &[&sw, &a, &b]);
        assert_eq!(sum.port_stats(PortNo(2)).unwrap().rx_packets, 1);
        assert_eq!(sum.port_stats(PortNo(3)).unwrap().rx_packets, 1);
        assert_eq!(sum.port_stats(PortNo(2)).unwrap().tx_packets, 1);
        assert_eq!(sum.drops(DropReason::TruncatedFrame), 1);
        let normal = sum.flow_stats(1).unwrap();
        assert_eq!(normal.n_packets, 2, "a's frame and b's");
        assert_eq!(normal.last_used, Some(t0));
        assert_eq!(
            a.flow_stats(1).unwrap().n_packets,
            1,
            "each shard counts its own"
        );

        // A table swapped into every shard keeps each one's counters of the flows that stay.
        let table = Arc::new(FlowTable::new(
            ["actions=normal"]
                .iter()
                .map(|r| parse_flow(r, &PortTable(sw.ports())).unwrap())
                .collect(),
        ));
        for shard in [&mut a, &mut b] {
            shard.replace_table(Arc::clone(&table), &[], t0);
        }
        let sum = summed(&a, &[&a, &b]);
        assert_eq!(sum.table().flows().len(), 1);
        assert_eq!(sum.flow_stats(0).unwrap().n_packets, 2);
    }

    /// `template` reading as the sum of `shards`' counters, as a control plane reads.
    fn summed(template: &Switch, shards: &[&Switch]) -> Switch {
        template.reading(Counters::sum(shards.iter().map(|s| &**s.counters())).unwrap())
    }

    #[test]
    fn counters_are_read_while_a_shard_is_locked_mid_batch() {
        // Shards behind their locks, as the daemon's data-path threads keep them, and each
        // one's counters where readers find them without that lock.
        let sw = hub(&["ip,actions=output:3"]);
        let shards: Vec<Mutex<Switch>> = (0..2).map(|_| Mutex::new(sw.shard())).collect();
        let published: Vec<Arc<Counters>> = shards
            .iter()
            .map(|s| Arc::clone(lock(s).counters()))
            .collect();
        let now = Instant::now();
        let frame = || ipv4_frame(A, B, [172, 31, 3, 1]);
        for _ in 0..7 {
            forward(lock(&shards[1]).handle_frame(PortNo(1), &mut frame(), now));
        }
        let (counted, counted_rx) = std::sync::mpsc::channel();
        let (read, read_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            // Shard 0's thread takes its lock for a batch and, mid-batch, stops.
            let (held, frame) = (&shards[0], &frame);
            scope.spawn(move || {
                let mut shard = lock(held);
                for _ in 0..1000 {
                    forward(shard.handle_frame(PortNo(1), &mut frame(), now));
                }
                counted.send(()).unwrap();
                read_rx.recv().unwrap();
            });
            counted_rx.recv().unwrap();
            assert!(shards[0].try_lock().is_err(), "shard 0 is held");
            let sum = Counters::sum(published.iter().map(|c| &**c)).unwrap();
            read.send(()).unwrap();
            let tunnel = sum.port(2).unwrap();
            assert_eq!(
                (tunnel.tx_packets, sum.port(0).unwrap().rx_packets),
                (1007, 1007)
            );
            assert_eq!(sum.flow(0).unwrap().n_packets, 1007);
            assert_eq!(
                sum.offload().repeated,
                1005,
                "all but each shard's first frame"
            );
        });
    }

    #[test]
    fn a_flow_listed_twice_takes_the_old_counters_once() {
        let t0 = Instant::now();
        let mut sw = hub(&["actions=normal"]);
        sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 1]), t0);
        let twice: Vec<_> = ["actions=normal", "actions=normal"]
            .iter()
            .map(|r| parse_flow(r, &PortTable(sw.ports())).unwrap())
            .collect();
        sw.replace_table(FlowTable::new(twice), &[], t0);
        let total: u64 = (0..2).map(|i| sw.flow_stats(i).unwrap().n_packets).sum();
        assert_eq!(total, 1, "not counted twice");
    }

    #[test]
    fn a_mac_seen_again_soon_is_not_written_again() {
        let t0 = Instant::now();
        let sw = hub(&["actions=normal"]);
        let mut a = sw.shard();
        a.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 1]), t0);
        let seen = |sw: &Switch| sw.fdb().entries(t0).find(|(m, _)| *m == Mac(A)).unwrap().1;
        let soon = t0 + FDB_REFRESH / 2;
        a.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 2]), soon);
        assert_eq!(seen(&sw).seen, t0, "fresh enough: not refreshed");
        let later = t0 + FDB_REFRESH;
        a.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 3]), later);
        assert_eq!(seen(&sw).seen, later, "refreshed");
        a.handle_frame(PortNo(3), &mut ipv4_frame(A, B, [1, 1, 1, 4]), later);
        assert_eq!(seen(&sw).port, PortNo(3), "a move is learnt at once");
    }

    #[test]
    fn take_over_keeps_counters_and_the_macs_of_unchanged_ports() {
        let t0 = Instant::now();
        let mut old = hub(&["arp,actions=flood", "actions=normal"]);
        old.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [1, 1, 1, 1]), t0);
        old.handle_frame(PortNo(3), &mut ipv4_frame(B, A, [1, 1, 1, 1]), t0);
        old.handle_frame(PortNo(1), &mut [0u8; 3], t0);
        assert_eq!(old.fdb().len(), 2);

        // Tunnel 2 stays, tunnel 3 moves to another remote, tunnel 5 is new; one flow stays.
        let ports = vec![
            old.ports()[0].clone(),
            tunnel(2, "tun_kl", 102),
            tunnel(3, "tun_km", 33),
            tunnel(5, "tun5", 105),
        ];
        let mut new = switch_with(ports, &["actions=normal", "ip,actions=output:5"]);
        let t1 = t0 + Duration::from_secs(1);
        new.take_over(&mut old, t1);

        assert_eq!(new.port_stats(PortNo(2)).unwrap().rx_packets, 1);
        assert_eq!(
            new.port_stats(PortNo(3)).unwrap().rx_packets,
            1,
            "same name"
        );
        assert_eq!(new.port_stats(PortNo(5)).unwrap(), PortStats::default());
        assert_eq!(new.drops(DropReason::TruncatedFrame), 1);
        let normal = new.flow_stats(0).unwrap();
        assert_eq!((normal.n_packets, normal.added), (2, None), "kept");
        let fresh = new.flow_stats(1).unwrap();
        assert_eq!((fresh.n_packets, fresh.added), (0, Some(t1)), "new");
        assert_eq!(new.fdb().lookup(Mac(A), t1), Some(PortNo(2)), "kept");
        assert_eq!(
            new.fdb().lookup(Mac(B), t1),
            None,
            "learnt on a tunnel that changed: forgotten"
        );
    }

    #[test]
    fn repeating_a_decision_counts_like_deciding_each_segment() {
        let rules = [
            "ip,nw_dst=172.31.3.0/24,actions=output:3",
            "arp,actions=flood",
        ];
        let now = Instant::now();
        let (mut each, mut once) = (hub(&rules), hub(&rules));
        let segments = [1400usize, 1400, 900].map(|n| {
            let mut f = ipv4_frame(A, B, [172, 31, 3, 1]);
            f.resize(n, 0);
            f
        });
        for seg in &segments {
            assert_eq!(
                forward(each.handle_frame(PortNo(1), &mut seg.clone(), now)),
                [3]
            );
        }
        assert!(!once.can_repeat(PortNo(1), 1400), "nothing decided yet");
        assert_eq!(
            forward(once.handle_frame(PortNo(1), &mut segments[0].clone(), now)),
            [3]
        );
        assert!(!once.can_repeat(PortNo(2), 1400), "another ingress");
        assert!(!once.can_repeat(PortNo(1), 1401), "longer than the first");
        for seg in &segments[1..] {
            assert!(once.can_repeat(PortNo(1), seg.len()));
            assert_eq!(forward(once.repeat(seg.len())), [3]);
        }
        for port in [1, 3] {
            assert_eq!(once.port_stats(PortNo(port)), each.port_stats(PortNo(port)));
        }
        assert_eq!(once.flow_stats(0), each.flow_stats(0));
        once.handle_frame(PortNo(1), &mut [0u8; 5], now);
        assert!(!once.can_repeat(PortNo(1), 5), "not after a drop");
    }

    /// One frame of a sequence for the proptest below: who sends it, and its headers.
    #[derive(Debug, Clone, Copy)]
    struct Shape {
        ingress: u32,
        src: bool,
        /// 0: A, 1: B, 2: broadcast.
        dst: u8,
        vlan: bool,
        v6: bool,
        /// The last octet's network: 172.31.{1,2,3}.1 (fc00:0:0:{1,2,3}::1).
        net: u8,
        tcp: bool,
        syn: bool,
        df: bool,
        /// To the service port (TCP 443, UDP 53) rather than TCP 80, UDP 2.
        service: bool,
    }

    fn shaped(s: Shape, payload: usize, id: u16) -> Vec<u8> {
        let mac = |i: u8| match i {
            0 => A,
            1 => B,
            _ => [0xff; 6],
        };
        let b = etherparse::PacketBuilder::ethernet2(mac(u8::from(s.src)), mac(s.dst));
        let ip = if s.v6 {
            let at = |n: u8| [0xfc, 0, 0, 0, 0, 0, 0, n, 0, 0, 0, 0, 0, 0, 0, 1];
            etherparse::IpHeaders::Ipv6(
                etherparse::Ipv6Header {
                    source: at(9),
                    destination: at(s.net),
                    hop_limit: 64,
                    ..Default::default()
                },
                Default::default(),
            )
        } else {
            let mut h = etherparse::Ipv4Header::new(
                0,
                64,
                etherparse::IpNumber::UDP,
                [172, 31, 9, 1],
                [172, 31, s.net, 1],
            )
            .unwrap();
            h.dont_fragment = s.df;
            h.identification = id;
            etherparse::IpHeaders::Ipv4(h, Default::default())
        };
        let mut f = Vec::new();
        let data = vec![0x5a; payload];
        let ip = match s.vlan {
            true => b.single_vlan(7.try_into().unwrap()).ip(ip),
            false => b.ip(ip),
        };
        if s.tcp {
            let t = ip.tcp(40000, if s.service { 443 } else { 80 }, 1, 64240);
            let t = match s.syn {
                true => t
                    .syn()
                    .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
                    .unwrap(),
                false => t.ack(1),
            };
            t.write(&mut f, &data).unwrap();
        } else {
            ip.udp(1, if s.service { 53 } else { 2 })
                .write(&mut f, &data)
                .unwrap();
        }
        f
    }

    fn shape() -> impl proptest::strategy::Strategy<Value = Shape> {
        use proptest::prelude::*;
        (
            (1u32..4, any::<bool>(), 0u8..3, any::<bool>(), any::<bool>()),
            (
                any::<bool>(),
                1u8..4,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
        )
            .prop_map(
                |((ingress, src, dst, vlan, service), (v6, net, tcp, syn, df))| Shape {
                    ingress,
                    src,
                    dst,
                    vlan,
                    v6,
                    net,
                    tcp,
                    syn,
                    df,
                    service,
                },
            )
    }

    /// A sequence of frames for the repeat proptest: a shape, how it relates to the frame
    /// before (0: a new shape; 1: the same; 2-6: one header changed), payload length, IPv4 ID.
    type Steps = Vec<(Shape, usize, usize, u16)>;

    fn steps() -> impl proptest::strategy::Strategy<Value = Steps> {
        proptest::collection::vec(
            (
                shape(),
                0usize..7,
                0usize..1500,
                proptest::prelude::any::<u16>(),
            ),
            1..24,
        )
    }

    /// Runs `steps` through a switch that repeats decisions and one that never does (every
    /// frame at a new instant), and requires the same actions, frames as sent and counters.
    /// Returns how many decisions the first repeated.
    fn repeat_matches_reference(
        steps: &Steps,
    ) -> Result<u64, proptest::test_runner::TestCaseError> {
        let rules = [
            "priority=40000,tcp,tp_dst=443,actions=output:3",
            "priority=40000,udp6,tp_dst=53,actions=LOCAL",
            "ip,nw_dst=172.31.2.0/24,actions=output:2",
            "ip,nw_dst=172.31.3.0/24,actions=normal",
            "ip6,actions=output:3",
            "actions=normal",
        ];
        let (mut fast, mut reference) = (hub(&rules), hub(&rules));
        for sw in [&mut fast, &mut reference] {
            sw.set_mtu(PortNo(2), 1450);
            sw.set_mtu(PortNo(3), 1400);
        }
        let t0 = Instant::now();
        let mut last = None;
        for (i, &(new, keep, payload, id)) in steps.iter().enumerate() {
            let s = match (keep, last) {
                (0, _) | (_, None) => new,
                (1, Some(l)) => l,
                (2, Some(l)) => Shape { syn: new.syn, ..l },
                (3, Some(l)) => Shape { net: new.net, ..l },
                (4, Some(l)) => Shape { dst: new.dst, ..l },
                (5, Some(l)) => Shape { df: new.df, ..l },
                (_, Some(l)) => Shape {
                    service: new.service,
                    ..l
                },
            };
            last = Some(s);
            let frame = shaped(s, payload, id);
            let (mut a, mut b) = (frame.clone(), frame);
            let ingress = PortNo(s.ingress);
            let later = t0 + Duration::from_nanos(i as u64);
            let got = fast.handle_frame(ingress, &mut a, t0);
            let want = reference.handle_frame(ingress, &mut b, later);
            proptest::prop_assert_eq!(got, want, "step {}: {:?}", i, s);
            proptest::prop_assert_eq!(&a, &b, "step {}: the frame as sent", i);
        }
        for p in 1..4 {
            proptest::prop_assert_eq!(fast.port_stats(PortNo(p)), reference.port_stats(PortNo(p)));
        }
        // The reference decides each frame at an instant of its own, so only the counters
        // compare, not when a flow was last used.
        let counts = |s: Option<FlowStats>| s.map(|s| (s.n_packets, s.n_bytes, s.added));
        for f in 0..rules.len() {
            proptest::prop_assert_eq!(counts(fast.flow_stats(f)), counts(reference.flow_stats(f)));
        }
        for r in DropReason::ALL {
            proptest::prop_assert_eq!(fast.drops(r), reference.drops(r));
        }
        proptest::prop_assert_eq!(fast.mtu_stats(), reference.mtu_stats());
        proptest::prop_assert_eq!(reference.offload_stats().repeated, 0);
        Ok(fast.offload_stats().repeated)
    }

    proptest::proptest! {
        /// Frames decided by header comparison (same instant, same headers) go exactly where
        /// deciding each one from scratch sends them, with the same answers, the same MSS
        /// clamping and the same counters.
        #[test]
        fn a_repeated_decision_is_the_decision(steps in steps()) {
            repeat_matches_reference(&steps)?;
        }
    }

    #[test]
    fn the_repeat_proptest_exercises_the_repeat() {
        use std::cell::Cell;
        let (cases, repeated) = (Cell::new(0u64), Cell::new(0u64));
        proptest::test_runner::TestRunner::deterministic()
            .run(&steps(), |steps| {
                repeated.set(repeated.get() + repeat_matches_reference(&steps)?);
                cases.set(cases.get() + 1);
                Ok(())
            })
            .unwrap();
        assert!(
            repeated.get() >= cases.get(),
            "{} decisions repeated in {} cases: the generator must make runs",
            repeated.get(),
            cases.get()
        );
    }

    #[test]
    fn frames_with_the_last_forwarded_headers_take_its_decision() {
        let mut sw = hub(&["actions=normal"]);
        let now = Instant::now();
        let s = Shape {
            ingress: 1,
            src: false,
            dst: 1,
            vlan: true,
            v6: false,
            net: 2,
            tcp: true,
            syn: false,
            df: true,
            service: false,
        };
        // B is behind port 2; a run of segments A -> B from the TAP.
        forward(sw.handle_frame(
            PortNo(2),
            &mut shaped(
                Shape {
                    src: true,
                    dst: 0,
                    ..s
                },
                0,
                1,
            ),
            now,
        ));
        for (n, id) in [(1400, 7), (1400, 8), (600, 9)] {
            assert_eq!(
                forward(sw.handle_frame(PortNo(1), &mut shaped(s, n, id), now)),
                [2]
            );
        }
        assert_eq!(
            sw.offload_stats().repeated,
            2,
            "the second and third segment"
        );
        // Not repeated: longer, another ingress, other headers, a SYN, a later instant.
        let other = [
            (shaped(s, 1401, 10), PortNo(1), now),
            (shaped(s, 100, 11), PortNo(3), now),
            (shaped(Shape { net: 3, ..s }, 100, 12), PortNo(1), now),
            (shaped(Shape { syn: true, ..s }, 0, 13), PortNo(1), now),
            (shaped(s, 100, 14), PortNo(1), now + Duration::from_nanos(1)),
        ];
        for (mut f, ingress, at) in other {
            sw.handle_frame(ingress, &mut f, at);
        }
        assert_eq!(sw.offload_stats().repeated, 2);
        // Forgetting the MACs forgets the decision too: B is unknown again, so flooded.
        sw.handle_frame(PortNo(1), &mut shaped(s, 100, 15), now);
        sw.flush_fdb();
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut shaped(s, 100, 16), now)),
            [2, 3]
        );
    }

    #[test]
    fn ipv6_behind_a_fragment_header_is_never_repeated() {
        // IPv6, fragment header, destination options, then TCP or UDP: the flow key sees the
        // protocol past the fragment header, the IP view stops at it.
        let frame = |proto: u8| {
            let mut f = Vec::new();
            f.extend_from_slice(&B);
            f.extend_from_slice(&A);
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(8u16 + 8 + 8).to_be_bytes());
            ip[6] = 44;
            ip[7] = 64;
            f.extend_from_slice(&ip);
            f.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 1]); // fragment: offset 0, more
            f.extend_from_slice(&[proto, 0, 1, 4, 0, 0, 0, 0]); // destination options
            f.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 0]); // ports, and more
            f
        };
        let mut sw = hub(&["udp6,actions=drop", "actions=output:2"]);
        let now = Instant::now();
        assert_eq!(forward(sw.handle_frame(PortNo(1), &mut frame(6), now)), [2]);
        assert_eq!(
            sw.handle_frame(PortNo(1), &mut frame(17), now),
            Action::Drop(DropReason::FlowDrop),
            "the UDP behind the same headers meets its own flow"
        );
        assert_eq!(sw.offload_stats().repeated, 0);
    }

    #[test]
    fn changing_an_mtu_forgets_the_last_decision() {
        let mut sw = hub(&["ip,actions=output:2"]);
        let now = Instant::now();
        let mut f = udp_frame(false, 1000, true);
        forward(sw.handle_frame(PortNo(1), &mut f.clone(), now));
        sw.set_mtu(PortNo(2), 600);
        assert!(
            matches!(
                sw.handle_frame(PortNo(1), &mut f, now),
                Action::Reply { .. }
            ),
            "too big for the new MTU: answered, not repeated"
        );
    }

    #[test]
    fn drop_reasons_are_listed_in_counter_order() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
        }
    }

    #[test]
    fn every_frame_drop_reason_is_counted() {
        let mut sw = hub(&[
            "ip,nw_dst=172.31.0.0/16,actions=drop",
            "arp,actions=output:1",
        ]);
        let now = Instant::now();
        let cases: [(Vec<u8>, PortNo, DropReason); 5] = [
            (vec![0u8; 13], PortNo(1), DropReason::TruncatedFrame),
            (
                ipv4_frame([3, 0, 0, 0, 0, 1], B, [172, 31, 1, 1]),
                PortNo(1),
                DropReason::MulticastSource,
            ),
            (
                ipv4_frame(A, B, [10, 0, 0, 1]),
                PortNo(1),
                DropReason::NoMatchingFlow,
            ),
            (
                ipv4_frame(A, B, [172, 31, 1, 1]),
                PortNo(1),
                DropReason::FlowDrop,
            ),
            (
                KERNEL_ARP[INNER..].to_vec(),
                PortNo(1),
                DropReason::NoEgress,
            ),
        ];
        for (frame, port, reason) in cases {
            assert_eq!(
                sw.handle_frame(port, &mut frame.clone(), now),
                Action::Drop(reason)
            );
            assert_eq!(sw.drops(reason), 1, "{reason:?}");
        }
        assert_eq!(sw.port_stats(PortNo(1)).unwrap().rx_packets, 5);
    }

    #[test]
    fn vxlan_accepts_only_known_remotes_with_their_vni() {
        let mut sw = hub(&["arp,actions=flood"]);
        let now = Instant::now();
        let from = |last| IpAddr::V4(Ipv4Addr::new(192, 168, 200, last));
        assert_eq!(
            forward(sw.handle_vxlan(8472, from(103), &mut KERNEL_ARP.clone(), now)),
            [1, 2]
        );

        let mut other_vni = KERNEL_ARP;
        other_vni[6] = 0x57;
        let mut bad_flags = KERNEL_ARP;
        bad_flags[0] = 0x0c;
        let cases: [(u16, IpAddr, &[u8], DropReason); 5] = [
            (
                8472,
                from(102),
                &mut KERNEL_ARP[..20].to_vec(),
                DropReason::VxlanTruncated,
            ),
            (8472, from(102), &bad_flags, DropReason::VxlanBadFlags),
            (8472, from(99), &KERNEL_ARP, DropReason::UnknownRemote),
            (4789, from(102), &KERNEL_ARP, DropReason::UnknownRemote),
            (8472, from(102), &other_vni, DropReason::WrongVni),
        ];
        for (port, src, datagram, reason) in cases {
            assert_eq!(
                sw.handle_vxlan(port, src, &mut datagram.to_vec(), now),
                Action::Drop(reason),
                "{reason:?}"
            );
        }
        assert_eq!(sw.drops(DropReason::UnknownRemote), 2);
        // The data path still works after all that.
        assert_eq!(
            forward(sw.handle_vxlan(8472, from(102), &mut KERNEL_ARP.clone(), now)),
            [1, 3]
        );
    }

    #[test]
    fn gre_accepts_only_known_remotes_with_their_key() {
        let mut ports = vec![local()];
        for (no, key) in [(2, None), (3, Some(7))] {
            ports.push(Port {
                no: PortNo(no),
                name: format!("gre{no}"),
                kind: PortKind::Gre(GreTunnel {
                    remote: IpAddr::V4(Ipv4Addr::new(192, 168, 200, 102)),
                    key,
                    csum: false,
                    seq: false,
                }),
                options: Default::default(),
            });
        }
        let mut sw = switch_with(ports, &["actions=output:1"]);
        let now = Instant::now();
        let from = |last| IpAddr::V4(Ipv4Addr::new(192, 168, 200, last));
        let packet = |header: gre::Header| {
            let frame = &mut KERNEL_ARP[INNER..].to_vec();
            let mut out = [0u8; gre::MAX_LEN];
            let len = header.encode(frame, &mut out);
            [&out[..len], frame].concat()
        };
        let plain = packet(gre::Header::default());
        let keyed = packet(gre::Header {
            key: Some(7),
            csum: true,
            seq: Some(1),
        });
        let (action, offset) = sw.handle_gre(from(102), &mut plain.clone(), now);
        assert_eq!((forward(action), offset), (vec![1], 4));
        assert_eq!(sw.port_stats(PortNo(2)).unwrap().rx_packets, 1);
        let (action, offset) = sw.handle_gre(from(102), &mut keyed.clone(), now);
        assert_eq!((forward(action), offset), (vec![1], 16));
        assert_eq!(sw.port_stats(PortNo(3)).unwrap().rx_packets, 1);

        let mut bad_sum = keyed.clone();
        bad_sum[20] ^= 1;
        let mut ipv4_payload = plain.clone();
        ipv4_payload[2..4].copy_from_slice(&[0x08, 0x00]);
        let mut version1 = plain.clone();
        version1[1] = 1;
        let cases: [(u8, Vec<u8>, DropReason); 6] = [
            (102, plain[..10].to_vec(), DropReason::GreTruncated),
            (102, version1, DropReason::GreBadHeader),
            (102, ipv4_payload, DropReason::GreNotEthernet),
            (102, bad_sum, DropReason::GreBadChecksum),
            (
                102,
                packet(gre::Header {
                    key: Some(8),
                    ..Default::default()
                }),
                DropReason::GreWrongKey,
            ),
            (99, plain.clone(), DropReason::UnknownRemote),
        ];
        for (last, p, reason) in cases {
            assert_eq!(
                sw.handle_gre(from(last), &mut p.clone(), now).0,
                Action::Drop(reason),
                "{reason:?}"
            );
            assert_eq!(sw.drops(reason), 1, "{reason:?}");
        }
    }

    proptest::proptest! {
        /// Whatever arrives from the network, the switch answers with an action, never a panic,
        /// and a forwarded GRE frame's offset lies inside the packet.
        #[test]
                fn receive_paths_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1600), last in 100u8..105, mtu in 0u16..1500) {
            let mut sw = hub(&["actions=normal"]);
            sw.set_mtu(PortNo(2), mtu);
            sw.set_mtu(PortNo(3), 1400);
            let now = Instant::now();
            let src = IpAddr::V4(Ipv4Addr::new(192, 168, 200, last));
            let _ = sw.handle_vxlan(8472, src, &mut bytes.clone(), now);
            let _ = sw.handle_frame(PortNo(2), &mut bytes.clone(), now);
            let mut datagram = KERNEL_ARP[..INNER].to_vec();
            datagram.extend_from_slice(&bytes);
            let _ = sw.handle_vxlan(8472, src, &mut datagram, now);
            let (_, offset) = sw.handle_gre(src, &mut bytes.clone(), now);
            proptest::prop_assert!(offset <= bytes.len());
        }
    }

    fn udp_frame(v6: bool, payload: usize, df: bool) -> Vec<u8> {
        let mut f = Vec::new();
        let b = etherparse::PacketBuilder::ethernet2(A, B);
        if v6 {
            let src = [0xfc, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
            let dst = [0xfc, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1];
            b.ipv6(src, dst, 64)
                .udp(1, 2)
                .write(&mut f, &vec![7; payload])
                .unwrap();
        } else {
            let mut ip = etherparse::Ipv4Header::new(
                0,
                64,
                etherparse::IpNumber::UDP,
                [172, 31, 1, 1],
                [172, 31, 2, 1],
            )
            .unwrap();
            ip.dont_fragment = df;
            b.ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
                .udp(1, 2)
                .write(&mut f, &vec![7; payload])
                .unwrap();
        }
        f
    }

    fn syn(mss: u16) -> Vec<u8> {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(A, B)
            .ipv4([172, 31, 1, 1], [172, 31, 2, 1], 64)
            .tcp(40000, 80, 1, 64240)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(mss)])
            .unwrap()
            .write(&mut f, &[])
            .unwrap();
        f
    }

    fn mss_of(frame: &[u8]) -> u16 {
        let p = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else {
            panic!()
        };
        tcp.to_header()
            .options_iterator()
            .find_map(|o| match o {
                Ok(etherparse::TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
                _ => None,
            })
            .unwrap()
    }

    /// The hub's tables, with tunnel MTUs 1450 (port 2) and 1400 (port 3).
    fn hub_with_mtus() -> Switch {
        let mut sw = hub(&[
            "ip,nw_dst=172.31.2.0/24,actions=output:2",
            "ip6,actions=output:2",
            "ip,nw_dst=172.31.1.0/24,actions=output:1",
            "arp,actions=flood",
        ]);
        sw.set_mtu(PortNo(2), 1450);
        sw.set_mtu(PortNo(3), 1400);
        sw.set_mtu(PortNo(1), 100); // the local port has no tunnel MTU: ignored
        sw
    }

    #[test]
    fn frames_that_fit_pass_and_the_local_port_has_no_limit() {
        let mut sw = hub_with_mtus();
        let now = Instant::now();
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut udp_frame(false, 1422, true), now)),
            [2],
            "1450 bytes of IP fit"
        );
        let mut big_in = udp_frame(false, 3000, true);
        big_in[30..34].copy_from_slice(&[172, 31, 1, 1]);
        assert_eq!(
            forward(sw.handle_frame(PortNo(2), &mut big_in, now)),
            [1],
            "towards the device: no tunnel limit"
        );
    }

    #[test]
    fn ipv4_df_too_big_is_answered_with_frag_needed_out_of_the_ingress() {
        let mut sw = hub_with_mtus();
        let mut big = udp_frame(false, 1423, true);
        let (port, frame) = match sw.handle_frame(PortNo(1), &mut big, Instant::now()) {
            Action::Reply { port, frame } => (port, frame.to_vec()),
            other => panic!("no answer: {other:?}"),
        };
        assert_eq!(port, PortNo(1));
        let p = etherparse::SlicedPacket::from_ethernet(&frame).unwrap();
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!()
        };
        assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 1450
                }
            )
        );
        assert_eq!(sw.drops(DropReason::TooBig), 1);
        assert_eq!(sw.mtu_stats().too_big_sent, 1);
        assert_eq!(
            sw.port_stats(PortNo(2)).unwrap().tx_packets,
            0,
            "nothing sent into the tunnel"
        );
    }

    #[test]
    fn ipv6_too_big_is_answered_with_packet_too_big() {
        let mut sw = hub_with_mtus();
        let Action::Reply { port, frame } =
            sw.handle_frame(PortNo(1), &mut udp_frame(true, 1403, false), Instant::now())
        else {
            panic!("no answer")
        };
        assert_eq!(port, PortNo(1));
        let Some(etherparse::TransportSlice::Icmpv6(icmp)) =
            etherparse::SlicedPacket::from_ethernet(frame)
                .unwrap()
                .transport
        else {
            panic!()
        };
        assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv6Type::PacketTooBig { mtu: 1450 }
        );
    }

    #[test]
    fn ipv4_without_df_is_fragmented_to_the_tunnel_mtu() {
        let mut sw = hub_with_mtus();
        let Action::Fragments {
            ports,
            frames,
            ranges,
        } = sw.handle_frame(
            PortNo(1),
            &mut udp_frame(false, 2972, false),
            Instant::now(),
        )
        else {
            panic!("not fragmented")
        };
        assert_eq!(ports, [PortNo(2)]);
        assert_eq!(ranges.len(), 3);
        assert!(ranges.iter().all(|r| r.len() - 14 <= 1450));
        assert!(frames.len() > 3000);
        assert_eq!(sw.mtu_stats().fragments, 3);
        assert_eq!(sw.port_stats(PortNo(2)).unwrap().tx_packets, 3);
    }

    proptest::proptest! {
        /// Real IP frames of every size through tunnels of every MTU: whatever the switch does
        /// (forward, answer, fragment, drop), it does not panic, and fragments fit.
        #[test]
        fn mtu_paths_never_panic(payload in 0usize..3000, v6: bool, df: bool, mtu in 0u16..1500, cut in 0usize..40) {
            let mut sw = hub_with_mtus();
            sw.set_mtu(PortNo(2), mtu);
            let mut frame = udp_frame(v6, payload, df);
            frame.truncate(frame.len() - cut.min(frame.len() - 14));
            if let Action::Fragments { ranges, .. } = sw.handle_frame(PortNo(1), &mut frame, Instant::now()) {
                proptest::prop_assert!(ranges.iter().all(|r| r.len() - 14 <= usize::from(mtu)));
            }
        }
    }

    #[test]
    fn a_flood_too_big_for_one_tunnel_still_reaches_the_ports_it_fits() {
        // Tunnel 2 at 1450, tunnel 3 at 1400; the flood comes from tunnel 2 so goes to the TAP
        // (no limit) and tunnel 3.
        let mut sw = hub_with_mtus();
        sw.set_mtu(PortNo(2), 1450);
        let flood = |sw: &mut Switch, frame: &mut Vec<u8>| {
            let action = sw.handle_frame(PortNo(2), frame, Instant::now());
            match action {
                Action::Forward(p) => Ok(p.iter().map(|p| p.0).collect::<Vec<_>>()),
                other => Err(format!("{other:?}")),
            }
        };
        let mut sw_flood = hub(&["actions=flood"]);
        sw_flood.set_mtu(PortNo(2), 1450);
        sw_flood.set_mtu(PortNo(3), 1400);
        for (v6, df) in [(false, true), (true, true)] {
            let mut f = udp_frame(v6, 1420, df);
            assert_eq!(
                flood(&mut sw_flood, &mut f),
                Ok(vec![1]),
                "v6 {v6}: the TAP gets it, the small tunnel nothing"
            );
        }
        assert_eq!(sw_flood.mtu_stats().too_big_skipped, 2);
        let mut fits = udp_frame(false, 1000, true);
        assert_eq!(flood(&mut sw_flood, &mut fits), Ok(vec![1, 3]));
        // Without DF it is fragmented for every port, as before.
        let mut nodf = udp_frame(false, 1420, false);
        let action = sw_flood.handle_frame(PortNo(2), &mut nodf, Instant::now());
        assert!(
            matches!(action, Action::Fragments { ports, .. } if ports == [PortNo(1), PortNo(3)])
        );
        // One egress port that is too small: answered, as before.
        let mut to_3 = hub(&["actions=output:3"]);
        to_3.set_mtu(PortNo(3), 1400);
        let mut f = udp_frame(false, 1420, true);
        assert!(matches!(
            to_3.handle_frame(PortNo(1), &mut f, Instant::now()),
            Action::Reply {
                port: PortNo(1),
                ..
            }
        ));
        let _ = flood(&mut sw, &mut udp_frame(false, 10, true));
    }

    #[test]
    fn ecn_is_carried_in_on_decapsulation_and_ce_over_not_ect_dropped() {
        let mut sw = hub(&["actions=output:1"]);
        let from = IpAddr::V4(Ipv4Addr::new(192, 168, 200, 102));
        let datagram = |tos: u8| {
            let mut f = udp_frame(false, 100, true);
            f[15] = tos;
            // Fix the IPv4 header checksum for the new TOS.
            f[24] = 0;
            f[25] = 0;
            let sum = crate::wire::checksum::of(&[&f[14..34]]);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
            let mut d = vxlan::Header { vni: 0x123456 }.encode().to_vec();
            d.extend_from_slice(&f);
            d
        };
        let mut ect = datagram(tunnel::ECT_0);
        assert!(matches!(
            sw.handle_vxlan_ecn(8472, from, tunnel::CE, &mut ect, Instant::now()),
            Action::Forward(_)
        ));
        assert_eq!(
            ect[INNER + 15] & 3,
            tunnel::CE,
            "CE carried into the inner header"
        );
        let mut not_ect = datagram(0);
        assert_eq!(
            sw.handle_vxlan_ecn(8472, from, tunnel::CE, &mut not_ect, Instant::now()),
            Action::Drop(DropReason::EcnCeNotEct)
        );
        assert_eq!(sw.drops(DropReason::EcnCeNotEct), 1);
        assert_eq!(sw.mtu_stats().ecn_marked, 1);
        let mut plain = datagram(0);
        assert!(matches!(
            sw.handle_vxlan(8472, from, &mut plain, Instant::now()),
            Action::Forward(_)
        ));
    }

    #[test]
    fn non_ip_too_big_is_dropped_and_counted() {
        let mut sw = hub_with_mtus();
        let mut arp = KERNEL_ARP[INNER..].to_vec();
        arp.resize(1600, 0);
        assert_eq!(
            sw.handle_frame(PortNo(1), &mut arp, Instant::now()),
            Action::Drop(DropReason::Oversize)
        );
    }

    #[test]
    fn answers_are_rate_limited_per_source() {
        let mut sw = hub_with_mtus();
        let now = Instant::now();
        let replies = (0..30)
            .filter(|_| {
                matches!(
                    sw.handle_frame(PortNo(1), &mut udp_frame(false, 1500, true), now),
                    Action::Reply { .. }
                )
            })
            .count();
        assert_eq!(replies, crate::ratelimit::BURST as usize);
        assert_eq!(sw.mtu_stats().too_big_rate_limited, 30 - replies as u64);
        assert_eq!(sw.drops(DropReason::TooBig), 30);
    }

    #[test]
    fn syns_are_clamped_to_the_tightest_tunnel_they_cross_in_both_directions() {
        let mut sw = hub_with_mtus();
        let now = Instant::now();
        let mut out = syn(1460);
        forward(sw.handle_frame(PortNo(1), &mut out, now));
        assert_eq!(mss_of(&out), 1410, "device -> tunnel: 1450 - 40");
        let mut back = syn(1460);
        back[30..34].copy_from_slice(&[172, 31, 1, 1]);
        forward(sw.handle_frame(PortNo(3), &mut back, now));
        assert_eq!(mss_of(&back), 1360, "tunnel (1400) -> device: 1400 - 40");
        let mut low = syn(1000);
        forward(sw.handle_frame(PortNo(1), &mut low, now));
        assert_eq!(mss_of(&low), 1000, "never raised");
        assert_eq!(sw.mtu_stats().mss_clamped, 2);
    }

    #[test]
    fn mss_clamp_off_and_fixed() {
        let ports = |clamp| {
            let mut t = tunnel(2, "tun_kl", 102);
            t.options.mss_clamp = clamp;
            vec![local(), t]
        };
        let now = Instant::now();
        for (clamp, expected) in [(MssClamp::Off, 1460), (MssClamp::Fixed(1300), 1300)] {
            let mut sw = switch_with(ports(clamp), &["ip,actions=output:2"]);
            sw.set_mtu(PortNo(2), 1450);
            let mut f = syn(1460);
            forward(sw.handle_frame(PortNo(1), &mut f, now));
            assert_eq!(mss_of(&f), expected, "{clamp:?}");
        }
    }

    #[test]
    fn local_forwards_like_output_1() {
        for rules in [["actions=LOCAL"], ["actions=output:1"]] {
            let mut sw = hub(&rules);
            let now = Instant::now();
            assert_eq!(
                forward(sw.handle_frame(PortNo(2), &mut ipv4_frame(A, B, [172, 31, 1, 1]), now)),
                [1],
                "{rules:?}"
            );
            assert_eq!(
                sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [172, 31, 2, 1]), now),
                Action::Drop(DropReason::NoEgress),
                "{rules:?}: never back out of the ingress"
            );
        }
    }

    #[test]
    fn port_flows_split_one_batch_by_destination_port() {
        let mut sw = hub(&["tcp,tp_dst=443,actions=output:3", "ip,actions=output:2"]);
        let now = Instant::now();
        let s = Shape {
            ingress: 1,
            src: false,
            dst: 1,
            vlan: false,
            v6: false,
            net: 2,
            tcp: true,
            syn: false,
            df: true,
            service: true,
        };
        for (service, want) in [(true, 3), (true, 3), (false, 2), (true, 3), (false, 2)] {
            let mut f = shaped(Shape { service, ..s }, 100, 1);
            assert_eq!(
                forward(sw.handle_frame(PortNo(1), &mut f, now)),
                [want],
                "{service}"
            );
        }
        assert_eq!(sw.flow_stats(0).unwrap().n_packets, 3);
        assert_eq!(sw.offload_stats().repeated, 1);
    }

    #[test]
    fn replacing_the_table_restarts_the_counters_it_is_told_to() {
        let rules = [
            "ip,nw_dst=172.31.2.0/24,actions=output:2",
            "ip,actions=output:3",
        ];
        let mut sw = hub(&rules);
        let now = Instant::now();
        forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [172, 31, 2, 1]), now));
        forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [10, 0, 0, 1]), now));
        let later = now + Duration::from_secs(1);
        let flows = sw.table().flows().to_vec();
        sw.replace_table(FlowTable::new(flows), &[1], later);
        assert_eq!(sw.flow_stats(0).unwrap().n_packets, 1, "kept");
        assert_eq!(
            sw.flow_stats(1),
            Some(FlowStats {
                n_packets: 0,
                n_bytes: 0,
                added: Some(later),
                last_used: None
            }),
            "restarted"
        );
    }

    #[test]
    fn replacing_the_table_is_atomic_and_keeps_counters_of_surviving_flows() {
        let mut sw = hub(&[
            "arp,actions=flood",
            "ip,nw_dst=172.31.2.0/24,actions=output:2",
            "ip,nw_dst=172.31.3.0/24,actions=output:3",
        ]);
        let now = Instant::now();
        forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [172, 31, 3, 1]), now));
        forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [172, 31, 2, 1]), now));
        // Move 172.31.3.0/24 to port 2 (same match: counters stay), drop the ARP flow, add one.
        use crate::flow::edit::{apply, CookieFilter, FlowEdit, Selector};
        let flow = |text| parse_flow(text, &HubPorts).unwrap();
        let flows = apply(
            sw.table().flows(),
            &FlowEdit::Add(vec![flow("ip,nw_dst=172.31.3.0/24,actions=output:2")]),
        )
        .unwrap()
        .flows;
        let flows = apply(
            &flows,
            &FlowEdit::Delete {
                selector: Selector::Loose(flow("arp,actions=drop").matches),
                cookie: CookieFilter::ANY,
                out_port: None,
            },
        )
        .unwrap()
        .flows;
        let flows = apply(
            &flows,
            &FlowEdit::Add(vec![flow("ip,nw_dst=10.0.0.0/8,actions=output:1")]),
        )
        .unwrap()
        .flows;
        let later = now + Duration::from_secs(5);
        sw.replace_table(FlowTable::new(flows), &[], later);
        assert_eq!(
            forward(sw.handle_frame(PortNo(1), &mut ipv4_frame(A, B, [172, 31, 3, 1]), later)),
            [2],
            "the new path"
        );
        let moved = sw
            .table()
            .flows()
            .iter()
            .position(|f| f.matches.nw_dst == Some("172.31.3.0/24".parse().unwrap()))
            .unwrap();
        assert_eq!(
            sw.flow_stats(moved).unwrap().n_packets,
            2,
            "counters kept across the change"
        );
        let added = sw.table().flows().len() - 1;
        assert_eq!(
            sw.flow_stats(added),
            Some(FlowStats {
                n_packets: 0,
                n_bytes: 0,
                added: Some(later),
                last_used: None
            })
        );
        assert_eq!(sw.table().flows().len(), 3);
    }

    #[test]
    fn report_lists_ports_and_drops() {
        let mut sw = hub(&["arp,actions=flood"]);
        sw.handle_frame(PortNo(1), &mut KERNEL_ARP[INNER..].to_vec(), Instant::now());
        sw.record_tx_error(PortNo(2));
        let report = sw.stats_report().to_string();
        assert!(
            report.contains("port 1 vxt0: rx_packets=1 rx_bytes=42"),
            "{report}"
        );
        assert!(
            report.contains(
                "port 2 tun_kl: rx_packets=0 rx_bytes=0 tx_packets=1 tx_bytes=42 tx_errors=1"
            ),
            "{report}"
        );
        assert!(
            report.contains("flow 0: n_packets=1 n_bytes=42 arp,actions=flood"),
            "{report}"
        );
        assert!(report.contains("drops: truncated_frame=0"), "{report}");
    }
}
