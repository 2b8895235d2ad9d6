//! The one translation of a frame into a decision (Open vSwitch calls it xlate): which flow
//! matched, which ports the frame leaves by, whether it goes to the controllers, and what the
//! decision depended on beyond the frame's own headers.
//!
//! [`Switch::handle_frame`] (the data path), `vxtunctl trace` and the fast path's cache all
//! decide through [`Switch::xlate`] and, for MTU handling, [`Switch::mss_limit`] and
//! [`Switch::fit`], and encapsulate by each egress tunnel as [`Switch::encapsulation`] says
//! (`encap.rs`), so they cannot disagree. Nothing here counts anything; the data path counts
//! after deciding, a trace does not.

use std::time::Instant;

use super::{flood, DropReason, MssClamp, Switch};
use crate::flow::{self, PortNo};
use crate::wire::ethernet::{self, FrameKey, Mac};
use crate::wire::ip::IpView;

/// Which rules decide a frame.
#[derive(Debug, Clone, Copy)]
pub enum Rules<'a> {
    /// The flow table, or `normal` while the switch has failed open.
    Table,
    /// These actions (a PACKET_OUT's own), whatever the table says.
    Actions(&'a [flow::Action]),
}

/// Where the actions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Flow `id` of the table matched.
    Flow(usize),
    /// The switch has failed open (standalone mode, no controller): every frame takes `normal`.
    FailOpen,
    /// A PACKET_OUT's own actions.
    PacketOut,
}

/// What a decision comes to before MTU handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Out of the egress ports written to the caller's list (never empty).
    Forward,
    /// To the controllers only (the egress list is empty).
    ControllerOnly,
    /// Dropped, for this reason.
    Drop(DropReason),
}

/// What `normal` found for the destination MAC (the last `normal` of the actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormalLookup {
    /// A group (multicast or broadcast) destination: flooded.
    Group,
    /// Learnt behind the ingress port: not sent.
    BehindIngress,
    /// Learnt behind this port, in the ingress port's split-horizon group: not sent.
    SplitHorizon(PortNo),
    /// Learnt behind this port: sent there.
    Learnt(PortNo),
    /// Not learnt: flooded.
    Unknown,
}

/// The decision for one frame: the result of [`Switch::xlate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Where the actions came from; `None` when the frame was refused before any rule.
    pub source: Option<Source>,
    /// Forward, controller only, or drop.
    pub verdict: Verdict,
    /// `Some(max_len)` when the frame goes to the controllers as a PACKET_IN.
    pub packet_in: Option<u16>,
    /// What `normal` found, when the actions include it.
    pub normal: Option<NormalLookup>,
    /// What the decision read besides the frame's key and ingress port: what a cached copy of
    /// it must be invalidated by.
    pub depends: Depends,
}

/// State outside the frame that a decision read. The frame's key (every field a flow can
/// match: MACs, VLAN, EtherType, addresses, protocol, ports) and the ingress port are always
/// read; a cache keyed exactly on them is invalidated by changes to what is set here, and by
/// changes to the table, the ports and the fail mode (which every decision reads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depends {
    /// The MAC table (a `normal` action): a move or expiry of the destination changes it.
    pub mac_table: bool,
    /// Flooding: the set of ports and their split-horizon groups.
    pub flood: bool,
}

impl Decision {
    /// Whether a copy of this decision, keyed exactly on the frame's key and ingress port,
    /// stays right until the generation moves (every change to the table, the ports, their
    /// MTUs, the fail mode or a learnt MAC's port bumps it) or, for a `normal` that found the
    /// destination, until that MAC table entry expires. A `normal` that found nothing (it
    /// flooded, or the destination is a group) depends on the absence of an entry, which a
    /// learning can end without a bump: not cacheable.
    pub fn cacheable(&self) -> bool {
        !self.depends.mac_table || matches!(self.normal, Some(NormalLookup::Learnt(_)))
    }

    fn refused(reason: DropReason) -> Decision {
        Decision {
            source: None,
            verdict: Verdict::Drop(reason),
            packet_in: None,
            normal: None,
            depends: Depends::default(),
        }
    }

    /// The flow that matched, if the table decided.
    pub fn flow(&self) -> Option<usize> {
        match self.source {
            Some(Source::Flow(id)) => Some(id),
            _ => None,
        }
    }
}

/// How a frame fits the MTUs of its egress ports (see [`Switch::fit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// It fits every egress port: the tightest IP MTU among them (after any VLAN tag), or
    /// `None` when none of them has an MTU.
    Fits {
        /// The IP MTU of the tightest egress port.
        limit: Option<usize>,
    },
    /// It did not fit this many ports of several and cannot be fragmented: those were taken
    /// out of the egress list, the others still get it.
    Trimmed(usize),
    /// Too big for the egress ports: the largest IP packet they carry (after any VLAN tag).
    TooBig {
        /// The IP MTU the frame is over.
        limit: usize,
    },
}

impl Switch {
    /// Decides where a frame with `key` that came in on `ingress` goes, writing the egress
    /// ports to `out` (cleared first); how the frame leaves by each tunnel among them is
    /// [`Switch::encapsulations`], worked out per frame sent. With `learn`, `normal` learns the source MAC as the data
    /// path does; without, the MAC table is only read (a trace).
    pub fn xlate(
        &self,
        ingress: PortNo,
        key: &FrameKey,
        now: Instant,
        rules: Rules<'_>,
        learn: bool,
        out: &mut Vec<PortNo>,
    ) -> Decision {
        out.clear();
        if key.dl_src.is_multicast() {
            return Decision::refused(DropReason::MulticastSource);
        }
        let (source, actions): (Source, &[flow::Action]) = match rules {
            Rules::Actions(actions) => (Source::PacketOut, actions),
            Rules::Table if self.fail_open => (Source::FailOpen, &[flow::Action::Normal]),
            Rules::Table => {
                let Some(id) = self.table.lookup(ingress, key) else {
                    return Decision::refused(DropReason::NoMatchingFlow);
                };
                (Source::Flow(id), &self.table.flows()[id].actions)
            }
        };
        let mut decision = Decision {
            source: Some(source),
            verdict: Verdict::Forward,
            packet_in: None,
            normal: None,
            depends: Depends::default(),
        };
        if actions.is_empty() {
            decision.verdict = Verdict::Drop(DropReason::FlowDrop);
            return decision;
        }
        let mut horizon = false;
        for action in actions {
            match *action {
                flow::Action::Controller(max_len) => decision.packet_in = Some(max_len),
                flow::Action::Output(p) if p != ingress => out.push(p),
                flow::Action::Local if ingress != PortNo::LOCAL => out.push(PortNo::LOCAL),
                flow::Action::Output(_) | flow::Action::Local | flow::Action::Drop => {}
                flow::Action::InPort => out.push(ingress),
                flow::Action::Flood | flow::Action::All => {
                    decision.depends.flood = true;
                    flood(&self.ports, &self.groups, ingress, out);
                }
                flow::Action::Normal => {
                    decision.depends.mac_table = true;
                    let found = self.normal(key.dl_src, ingress, key.dl_dst, now, learn);
                    let lookup = match found {
                        _ if key.dl_dst.is_multicast() => NormalLookup::Group,
                        Some(p) if p == ingress => NormalLookup::BehindIngress,
                        Some(p) if self.same_group(ingress, p) => NormalLookup::SplitHorizon(p),
                        Some(p) => NormalLookup::Learnt(p),
                        None => NormalLookup::Unknown,
                    };
                    match lookup {
                        NormalLookup::Group | NormalLookup::Unknown => {
                            decision.depends.flood = true;
                            flood(&self.ports, &self.groups, ingress, out);
                        }
                        NormalLookup::BehindIngress => {}
                        NormalLookup::SplitHorizon(_) => horizon = true,
                        NormalLookup::Learnt(p) => out.push(p),
                    }
                    decision.normal = Some(lookup);
                }
            }
        }
        decision.verdict = match (out.is_empty(), decision.packet_in, horizon) {
            (false, _, _) => Verdict::Forward,
            (true, Some(_), _) => Verdict::ControllerOnly,
            (true, None, true) => Verdict::Drop(DropReason::SplitHorizon),
            (true, None, false) => Verdict::Drop(DropReason::NoEgress),
        };
        decision
    }

    /// `normal`'s MAC table step: learns `src` behind `ingress` (with `learn`) and says where
    /// `dst` is.
    fn normal(
        &self,
        src: Mac,
        ingress: PortNo,
        dst: Mac,
        now: Instant,
        learn: bool,
    ) -> Option<PortNo> {
        // Read after the generation the decision's cached copy carries, so never older.
        let generation = self.generation.current();
        if learn {
            let (found, moved) = self
                .common
                .learn_and_lookup(src, ingress, dst, now, generation);
            if moved {
                // Decisions that sent frames to `src` where it was are stale now.
                self.generation.bump();
            }
            found
        } else if dst == src {
            // Learning would have put it there first.
            Some(ingress)
        } else {
            self.common.fdb_read().lookup_deciding(dst, now, generation)
        }
    }

    /// The MSS a SYN of IP `version` from `ingress` to `egress` may carry: the tightest of the
    /// tunnels it crosses (tunnel MTU minus 40 for IPv4, 60 for IPv6, or the tunnel's fixed
    /// value), less `tag` bytes of VLAN tag. `None`: no tunnel on the way limits it.
    pub fn mss_limit(
        &self,
        ingress: PortNo,
        egress: &[PortNo],
        version: u8,
        tag: u16,
    ) -> Option<u16> {
        let headers: u16 = if version == 4 { 40 } else { 60 };
        std::iter::once(ingress)
            .chain(egress.iter().copied())
            .filter_map(|p| {
                let slot = self.slot(p)?;
                match self.ports[slot].options.mss_clamp {
                    MssClamp::Off => None,
                    MssClamp::Fixed(n) => Some(n),
                    MssClamp::Auto => self.mtu[slot].map(|m| m.saturating_sub(headers)),
                }
            })
            .min()
            .map(|m| m.saturating_sub(tag))
    }

    /// Whether `frame` (`ip`, its IP header, if it is IP) fits the MTUs of the ports in `out`.
    /// A frame too big for some of several ports that cannot be fragmented still goes to those
    /// it fits (a flood reaches the TAP past a small tunnel): the others are taken out of `out`.
    pub fn fit(&self, frame: &[u8], ip: Option<&IpView>, out: &mut Vec<PortNo>) -> Fit {
        let l2 = ip.map_or(ethernet::HEADER_LEN, |ip| ip.l3);
        // The tunnel carries the whole L2 frame: a VLAN tag takes 4 bytes of its MTU.
        let ip_mtu = |m: u16| usize::from(m).saturating_sub(l2 - ethernet::HEADER_LEN);
        let size = frame.len().saturating_sub(l2);
        let limit = out
            .iter()
            .filter_map(|&p| self.slot(p).and_then(|s| self.mtu[s]))
            .min()
            .map(ip_mtu);
        let Some(limit) = limit.filter(|&m| size > m) else {
            return Fit::Fits { limit };
        };
        let fragmentable = ip.is_some_and(|ip| !ip.dont_fragment());
        let before = out.len();
        if !fragmentable && before > 1 {
            out.retain(|&p| {
                self.slot(p)
                    .and_then(|s| self.mtu[s])
                    .is_none_or(|m| size <= ip_mtu(m))
            });
        }
        if out.is_empty() || out.len() == before {
            return Fit::TooBig { limit };
        }
        Fit::Trimmed(before - out.len())
    }
}
