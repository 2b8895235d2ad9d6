//! Editing a flow list the way OpenFlow 1.3 and `ovs-ofctl` do, one operation for every source
//! (the config file, a reload, `vxtunctl`, OpenFlow): [`apply`] takes the flows and a
//! [`FlowEdit`] and returns the new list and what changed.
//!
//! `add-flow` replaces a flow with the same match and priority; `del-flows` and `mod-flows` act
//! on every flow a pattern covers (non-strict) or on the one flow with exactly that match and
//! priority (`--strict`), narrowed by a cookie mask and (`del-flows`) an output port.
//!
//! Edits produce a new list; the switch then swaps in a table built from it in one step, so a
//! frame sees either the whole old table or the whole new one. An edit that fails changes
//! nothing.

use std::collections::HashSet;
use std::fmt;

use super::syntax::{parse_parts, Mode};
use super::{Action, Flow, FlowParseError, MacMatch, Match, PortNames, PortNo};

/// Which flows an edit touches by cookie: `(flow.cookie & mask) == (cookie & mask)`; mask 0
/// selects every flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CookieFilter {
    /// The cookie to compare with.
    pub cookie: u64,
    /// The bits compared.
    pub mask: u64,
}

impl CookieFilter {
    /// Every flow, whatever its cookie.
    pub const ANY: CookieFilter = CookieFilter { cookie: 0, mask: 0 };

    /// Whether `flow` passes.
    pub fn selects(&self, flow: &Flow) -> bool {
        (flow.cookie ^ self.cookie) & self.mask == 0
    }
}

/// Which flows a `del-flows` or `mod-flows` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// Every flow whose match the pattern covers, at any priority (ovs-ofctl's default).
    Loose(Match),
    /// The flow with exactly this match and priority (`--strict`).
    Strict(Match, u16),
}

impl Selector {
    /// Whether the selector picks `flow`.
    pub fn selects(&self, flow: &Flow) -> bool {
        match self {
            Selector::Loose(pattern) => pattern.covers(&flow.matches),
            Selector::Strict(m, priority) => flow.priority == *priority && flow.matches == *m,
        }
    }
}

/// A change to the flow table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowEdit {
    /// Each flow replaces the flow with the same priority and match (keeping its counters
    /// unless the new flow has [`Flow::RESET_COUNTS`]), or is appended. With
    /// [`Flow::CHECK_OVERLAP`], a different flow of the same priority that some frame could
    /// match together with it makes the whole edit fail with [`EditError::Overlap`].
    Add(Vec<Flow>),
    /// Replaces the actions of the selected flows (non-strict: every flow the pattern covers;
    /// strict: same match and priority) that pass the cookie filter. Never adds a flow
    /// (OpenFlow 1.3). When `cookie.mask == 0` and `new_cookie` is `Some`, the selected flows
    /// take it (Open vSwitch's behaviour, and what an OpenFlow FLOW_MOD with no cookie mask
    /// asks); otherwise (`ovs-ofctl mod-flows` with no `cookie=`, or a cookie mask) their
    /// cookie is unchanged. `reset_counts` restarts their counters.
    Modify {
        /// Which flows, by match (and priority).
        selector: Selector,
        /// Which flows, by cookie.
        cookie: CookieFilter,
        /// The cookie the flows take when `cookie.mask` is 0; `None` keeps theirs.
        new_cookie: Option<u64>,
        /// The new actions.
        actions: Vec<Action>,
        /// Whether the flows' counters restart.
        reset_counts: bool,
    },
    /// Deletes the selected flows that pass the cookie filter and, when `out_port` is `Some`,
    /// have an output action to that port ([`Action::Local`] counts as port 1).
    Delete {
        /// Which flows, by match (and priority).
        selector: Selector,
        /// Which flows, by cookie.
        cookie: CookieFilter,
        /// Only flows that output to this port.
        out_port: Option<PortNo>,
    },
    /// The whole table becomes these flows. A flow with the same priority and match as one
    /// before keeps its counters (unless it has [`Flow::RESET_COUNTS`]).
    Replace(Vec<Flow>),
    /// Removes exactly the flows of these priorities and matches (those whose timeouts
    /// passed); every other flow stays as it is, counters included.
    Expire(Vec<(u16, Match)>),
}

/// Why an edit was refused. The flows are unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// A flow added with `check_overlap` overlaps a flow of the same priority.
    Overlap {
        /// The flow being added.
        new: Box<Flow>,
        /// The flow in the table it overlaps.
        existing: Box<Flow>,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Overlap { new, existing } => write!(
                f,
                "flow `{new}` has check_overlap and overlaps `{existing}` (same priority, a \
                 frame could match both)"
            ),
        }
    }
}

impl std::error::Error for EditError {}

/// The outcome of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The flows after the edit.
    pub flows: Vec<Flow>,
    /// Flows added that replaced none.
    pub added: usize,
    /// Flows added (or given by [`FlowEdit::Replace`]) that replaced one with the same priority
    /// and match.
    pub replaced: usize,
    /// Flows whose actions [`FlowEdit::Modify`] changed.
    pub modified: usize,
    /// The flows removed, in their order before the edit: deleted, or (for
    /// [`FlowEdit::Replace`]) without a flow of the same priority and match in the new table.
    pub deleted: Vec<Flow>,
    /// Indices into `flows` whose counters restart; every other flow keeps the counters of the
    /// flow with the same priority and match before the edit, if there was one.
    pub reset: Vec<usize>,
}

/// Applies `edit` to `flows`. Pure: on error nothing has changed.
pub fn apply(flows: &[Flow], edit: &FlowEdit) -> Result<Edited, EditError> {
    let mut out = Edited {
        flows: Vec::new(),
        added: 0,
        replaced: 0,
        modified: 0,
        deleted: Vec::new(),
        reset: Vec::new(),
    };
    match edit {
        FlowEdit::Add(new) => {
            out.flows = flows.to_vec();
            let mut reset = HashSet::new();
            for flow in new {
                if flow.has_flag(Flow::CHECK_OVERLAP) {
                    if let Some(existing) = out.flows.iter().find(|f| {
                        f.priority == flow.priority
                            && f.matches != flow.matches
                            && f.matches.overlaps(&flow.matches)
                    }) {
                        return Err(EditError::Overlap {
                            new: Box::new(flow.clone()),
                            existing: Box::new(existing.clone()),
                        });
                    }
                }
                let same = out
                    .flows
                    .iter()
                    .position(|f| f.priority == flow.priority && f.matches == flow.matches);
                match same {
                    Some(i) => {
                        out.flows[i] = flow.clone();
                        out.replaced += 1;
                        if flow.has_flag(Flow::RESET_COUNTS) {
                            reset.insert(i);
                        } else {
                            reset.remove(&i);
                        }
                    }
                    None => {
                        out.flows.push(flow.clone());
                        out.added += 1;
                    }
                }
            }
            out.reset = reset.into_iter().collect();
            out.reset.sort_unstable();
        }
        FlowEdit::Modify {
            selector,
            cookie,
            new_cookie,
            actions,
            reset_counts,
        } => {
            out.flows = flows.to_vec();
            for (i, flow) in out.flows.iter_mut().enumerate() {
                if !selector.selects(flow) || !cookie.selects(flow) {
                    continue;
                }
                flow.actions.clone_from(actions);
                if let (0, Some(new)) = (cookie.mask, new_cookie) {
                    flow.cookie = *new;
                }
                out.modified += 1;
                if *reset_counts {
                    out.reset.push(i);
                }
            }
        }
        FlowEdit::Delete {
            selector,
            cookie,
            out_port,
        } => {
            for flow in flows {
                if selector.selects(flow)
                    && cookie.selects(flow)
                    && out_port.is_none_or(|p| flow.outputs_to(p))
                {
                    out.deleted.push(flow.clone());
                } else {
                    out.flows.push(flow.clone());
                }
            }
        }
        FlowEdit::Replace(new) => {
            let before: HashSet<(u16, Match)> =
                flows.iter().map(|f| (f.priority, f.matches)).collect();
            let after: HashSet<(u16, Match)> =
                new.iter().map(|f| (f.priority, f.matches)).collect();
            for (i, flow) in new.iter().enumerate() {
                if before.contains(&(flow.priority, flow.matches)) {
                    out.replaced += 1;
                    if flow.has_flag(Flow::RESET_COUNTS) {
                        out.reset.push(i);
                    }
                } else {
                    out.added += 1;
                }
            }
            out.deleted = flows
                .iter()
                .filter(|f| !after.contains(&(f.priority, f.matches)))
                .cloned()
                .collect();
            out.flows = new.clone();
        }
        FlowEdit::Expire(going) => {
            let going: HashSet<&(u16, Match)> = going.iter().collect();
            for flow in flows {
                match going.contains(&(flow.priority, flow.matches)) {
                    true => out.deleted.push(flow.clone()),
                    false => out.flows.push(flow.clone()),
                }
            }
        }
    }
    Ok(out)
}

/// A del-flows or mod-flows pattern, as ovs-ofctl reads it: the match, and what narrows the
/// selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The match (covering for non-strict edits, exact for strict ones).
    pub matches: Match,
    /// `priority=`, for strict edits.
    pub priority: Option<u16>,
    /// `cookie=VALUE/MASK`: which flows by cookie ([`CookieFilter::ANY`] when not given).
    pub cookie: CookieFilter,
    /// `cookie=VALUE` without a mask: in mod-flows, the cookie the flows take.
    pub new_cookie: Option<u64>,
    /// `out_port=PORT`: only flows that output to it.
    pub out_port: Option<PortNo>,
    /// `actions=...`, if given (mod-flows needs them).
    pub actions: Option<Vec<Action>>,
    /// Flag keywords given (`reset_counts` matters to mod-flows).
    pub flags: u16,
}

impl Pattern {
    /// The selector: strict (exact match, `priority=` or the default) or loose.
    pub fn selector(&self, strict: bool) -> Selector {
        if strict {
            Selector::Strict(
                self.matches,
                self.priority.unwrap_or(super::DEFAULT_PRIORITY),
            )
        } else {
            Selector::Loose(self.matches)
        }
    }
}

/// Parses a del-flows or mod-flows pattern: the match fields of a flow, `priority=`,
/// `cookie=VALUE/MASK` (or `cookie=VALUE`, the new cookie for mod-flows), `out_port=PORT`,
/// flag keywords and optionally `actions=...`.
pub fn parse_pattern(text: &str, ports: &dyn PortNames) -> Result<Pattern, FlowParseError> {
    let parts = parse_parts(text, ports, Mode::Pattern)?;
    let (cookie, new_cookie) = match parts.cookie {
        None => (CookieFilter::ANY, None),
        Some((value, None)) => (CookieFilter::ANY, Some(value)),
        Some((cookie, Some(mask))) => (CookieFilter { cookie, mask }, None),
    };
    Ok(Pattern {
        matches: parts.matches,
        priority: parts.priority,
        cookie,
        new_cookie,
        out_port: parts.out_port,
        actions: parts.actions,
        flags: parts.flags,
    })
}

impl Match {
    /// Whether every frame `other` matches is also matched by `self` as a pattern: each field
    /// `self` sets, `other` sets to the same value or (for prefixes and masked MACs) to a
    /// narrower one. The empty pattern covers every flow.
    pub fn covers(&self, other: &Match) -> bool {
        fn exact<T: PartialEq>(p: Option<T>, o: Option<T>) -> bool {
            p.is_none() || p == o
        }
        fn mac(p: Option<MacMatch>, o: Option<MacMatch>) -> bool {
            match (p, o) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(p), Some(o)) => (0..6).all(|i| {
                    o.mask.0[i] & p.mask.0[i] == p.mask.0[i]
                        && o.addr.0[i] & p.mask.0[i] == p.addr.0[i]
                }),
            }
        }
        fn net<N: Copy>(p: Option<N>, o: Option<N>, contains: impl Fn(&N, &N) -> bool) -> bool {
            match (p, o) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(p), Some(o)) => contains(&p, &o),
            }
        }
        exact(self.in_port, other.in_port)
            && mac(self.dl_src, other.dl_src)
            && mac(self.dl_dst, other.dl_dst)
            && exact(self.dl_type, other.dl_type)
            && match (self.vlan_vid, other.vlan_vid) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(p), Some(o)) => p.covers(&o),
            }
            && exact(self.nw_proto, other.nw_proto)
            && net(self.nw_src, other.nw_src, |p, o| p.contains(o))
            && net(self.nw_dst, other.nw_dst, |p, o| p.contains(o))
            && net(self.ipv6_src, other.ipv6_src, |p, o| p.contains(o))
            && net(self.ipv6_dst, other.ipv6_dst, |p, o| p.contains(o))
            && exact(self.tp_src, other.tp_src)
            && exact(self.tp_dst, other.tp_dst)
    }

    /// Whether some frame could match both `self` and `other`: no field set in both asks for
    /// values that exclude each other.
    pub fn overlaps(&self, other: &Match) -> bool {
        fn exact<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
            a.is_none() || b.is_none() || a == b
        }
        fn mac(a: Option<MacMatch>, b: Option<MacMatch>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => {
                    (0..6).all(|i| (a.addr.0[i] ^ b.addr.0[i]) & a.mask.0[i] & b.mask.0[i] == 0)
                }
                _ => true,
            }
        }
        fn net<N>(a: Option<N>, b: Option<N>, contains: impl Fn(&N, &N) -> bool) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => contains(&a, &b) || contains(&b, &a),
                _ => true,
            }
        }
        let v4 = |m: &Match| m.nw_src.is_some() || m.nw_dst.is_some();
        let v6 = |m: &Match| m.ipv6_src.is_some() || m.ipv6_dst.is_some();
        !(v4(self) && v6(other) || v6(self) && v4(other))
            && exact(self.in_port, other.in_port)
            && mac(self.dl_src, other.dl_src)
            && mac(self.dl_dst, other.dl_dst)
            && exact(self.dl_type, other.dl_type)
            && match (self.vlan_vid, other.vlan_vid) {
                (Some(a), Some(b)) => a.overlaps(&b),
                _ => true,
            }
            && exact(self.nw_proto, other.nw_proto)
            && net(self.nw_src, other.nw_src, |a, b| a.contains(b))
            && net(self.nw_dst, other.nw_dst, |a, b| a.contains(b))
            && net(self.ipv6_src, other.ipv6_src, |a, b| a.contains(b))
            && net(self.ipv6_dst, other.ipv6_dst, |a, b| a.contains(b))
            && exact(self.tp_src, other.tp_src)
            && exact(self.tp_dst, other.tp_dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::parse_flow;
    use crate::flow::syntax::tests::HubPorts;

    fn flow(rule: &str) -> Flow {
        parse_flow(rule, &HubPorts).unwrap()
    }

    fn flows(rules: &[&str]) -> Vec<Flow> {
        rules.iter().map(|r| flow(r)).collect()
    }

    fn pattern(text: &str) -> Match {
        parse_pattern(text, &HubPorts).unwrap().matches
    }

    fn delete(flows: &[Flow], selector: Selector) -> Edited {
        apply(
            flows,
            &FlowEdit::Delete {
                selector,
                cookie: CookieFilter::ANY,
                out_port: None,
            },
        )
        .unwrap()
    }

    fn modify(flows: &[Flow], selector: Selector, actions: &[Action]) -> Edited {
        apply(
            flows,
            &FlowEdit::Modify {
                selector,
                cookie: CookieFilter::ANY,
                new_cookie: None,
                actions: actions.to_vec(),
                reset_counts: false,
            },
        )
        .unwrap()
    }

    const HUB: [&str; 5] = [
        "arp,actions=flood",
        "ip,nw_dst=172.31.2.0/24,actions=output:2",
        "ip,nw_dst=172.31.3.0/24,actions=output:3",
        "priority=100,ip,nw_dst=172.31.3.0/24,actions=drop",
        "ip6,ipv6_dst=fc00:0:0:3::/64,actions=output:3",
    ];

    #[test]
    fn add_replaces_the_same_match_and_priority_only() {
        let e = apply(
            &flows(&HUB),
            &FlowEdit::Add(flows(&[
                "ip,nw_dst=172.31.3.0/24,actions=output:2",
                "ip,nw_dst=172.31.4.0/24,actions=output:2",
            ])),
        )
        .unwrap();
        assert_eq!((e.added, e.replaced), (1, 1));
        assert_eq!(e.flows.len(), 6);
        assert_eq!(e.flows[2].actions, vec![Action::Output(PortNo(2))]);
        assert_eq!(
            e.flows[3].actions,
            vec![],
            "the priority-100 twin is untouched"
        );
        assert_eq!(
            e.reset,
            Vec::<usize>::new(),
            "a replaced flow keeps its counters"
        );
        assert!(e.deleted.is_empty());
    }

    #[test]
    fn add_with_reset_counts_restarts_the_replaced_flow() {
        let e = apply(
            &flows(&HUB),
            &FlowEdit::Add(flows(&[
                "reset_counts,ip,nw_dst=172.31.2.0/24,actions=output:3",
                "reset_counts,ip,nw_dst=172.31.9.0/24,actions=output:3",
            ])),
        )
        .unwrap();
        assert_eq!(e.reset, vec![1]);
        assert_eq!(e.flows[1].actions, vec![Action::Output(PortNo(3))]);
    }

    #[test]
    fn check_overlap_refuses_an_overlapping_flow_of_the_same_priority() {
        let before = flows(&HUB);
        let err = apply(
            &before,
            &FlowEdit::Add(flows(&[
                "ip,nw_dst=172.31.9.0/24,actions=drop",
                "check_overlap,ip,nw_dst=172.31.0.0/16,actions=drop",
            ])),
        )
        .unwrap_err();
        let EditError::Overlap { new, existing } = &err;
        assert_eq!(new.matches, pattern("ip,nw_dst=172.31.0.0/16"));
        assert_eq!(existing.matches, pattern("ip,nw_dst=172.31.2.0/24"));
        assert!(err.to_string().contains("overlaps"), "{err}");
        for fine in [
            // Disjoint prefixes, another priority, another protocol, the same match (replaced).
            "check_overlap,ip,nw_dst=172.30.0.0/16,actions=drop",
            "check_overlap,priority=7,ip,actions=drop",
            "check_overlap,ip6,ipv6_dst=fc00:0:0:4::/64,actions=drop",
            "check_overlap,ip,nw_dst=172.31.3.0/24,actions=output:1",
            "check_overlap,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,in_port=2,arp,actions=drop",
        ] {
            let mut table = before.clone();
            if fine.contains("dl_dst") {
                table = flows(&["arp,in_port=3,actions=flood"]);
            }
            assert!(
                apply(&table, &FlowEdit::Add(vec![flow(fine)])).is_ok(),
                "{fine}"
            );
        }
        assert!(apply(
            &flows(&["tcp,tp_dst=80,actions=drop"]),
            &FlowEdit::Add(flows(&["check_overlap,tcp,tp_dst=443,actions=drop"]))
        )
        .is_ok());
        assert!(apply(
            &flows(&["tcp,tp_dst=80,actions=drop"]),
            &FlowEdit::Add(flows(&["check_overlap,tcp,tp_src=443,actions=drop"]))
        )
        .is_err());
    }

    #[test]
    fn loose_delete_takes_every_covered_flow_at_any_priority() {
        let f = flows(&HUB);
        let e = delete(&f, Selector::Loose(pattern("ip,nw_dst=172.31.3.0/24")));
        assert_eq!(e.flows.len(), 3);
        assert_eq!(e.deleted, vec![f[2].clone(), f[3].clone()], "in order");
        assert_eq!(
            delete(&f, Selector::Loose(pattern("ip,nw_dst=172.31.0.0/16")))
                .deleted
                .len(),
            3,
            "narrower prefixes are covered"
        );
        assert_eq!(
            delete(&f, Selector::Loose(Match::default())).deleted.len(),
            5,
            "an empty pattern deletes all"
        );
        assert!(
            delete(&f, Selector::Loose(pattern("ip,nw_dst=172.31.3.7")))
                .deleted
                .is_empty(),
            "a wider flow is not covered"
        );
    }

    #[test]
    fn strict_delete_and_modify_need_the_exact_match_and_priority() {
        let m = pattern("ip,nw_dst=172.31.3.0/24");
        let e = delete(&flows(&HUB), Selector::Strict(m, 100));
        assert_eq!(e.flows.len(), 4);
        let e = modify(
            &e.flows,
            Selector::Strict(m, 32768),
            &[Action::Output(PortNo(2))],
        );
        assert_eq!(e.modified, 1);
        assert_eq!(e.flows[2].actions, vec![Action::Output(PortNo(2))]);
        assert_eq!(
            modify(&e.flows, Selector::Strict(m, 7), &[Action::Drop]).modified,
            0
        );
    }

    #[test]
    fn loose_modify_changes_actions_of_covered_flows_and_never_adds() {
        let f = flows(&HUB);
        let e = modify(&f, Selector::Loose(pattern("ip6")), &[Action::Local]);
        assert_eq!(e.modified, 1);
        assert_eq!(e.flows[4].actions, vec![Action::Local]);
        assert_eq!(e.flows[4].matches, f[4].matches, "matches stay");
        let e = modify(&f, Selector::Loose(pattern("tcp")), &[Action::Local]);
        assert_eq!((e.modified, e.added), (0, 0));
        assert_eq!(e.flows, f, "mod-flows never adds (OpenFlow 1.3)");
        let e = modify(
            &f,
            Selector::Strict(pattern("ip,nw_dst=10.0.0.0/8"), 5),
            &[Action::Local],
        );
        assert_eq!(e.flows, f);
    }

    #[test]
    fn modify_takes_the_new_cookie_only_without_a_cookie_mask_and_may_reset_counts() {
        let f = flows(&[
            "cookie=0x11,ip,nw_dst=10.1.0.0/16,actions=drop",
            "cookie=0x21,ip,nw_dst=10.2.0.0/16,actions=drop",
            "cookie=0x12,arp,actions=flood",
        ]);
        let edit = |cookie, reset_counts| FlowEdit::Modify {
            selector: Selector::Loose(pattern("ip")),
            cookie,
            new_cookie: Some(0x99),
            actions: vec![Action::Normal],
            reset_counts,
        };
        let e = apply(&f, &edit(CookieFilter::ANY, false)).unwrap();
        assert_eq!(e.modified, 2);
        assert_eq!(
            e.flows.iter().map(|f| f.cookie).collect::<Vec<_>>(),
            [0x99, 0x99, 0x12]
        );
        assert!(e.reset.is_empty());
        let e = apply(
            &f,
            &edit(
                CookieFilter {
                    cookie: 0x20,
                    mask: 0xf0,
                },
                true,
            ),
        )
        .unwrap();
        assert_eq!(e.modified, 1);
        assert_eq!(e.flows[1].actions, vec![Action::Normal]);
        assert_eq!(e.flows[1].cookie, 0x21, "a cookie mask keeps the cookie");
        assert_eq!(e.flows[0].actions, vec![], "filtered out by cookie");
        assert_eq!(e.reset, vec![1]);
        let keep = FlowEdit::Modify {
            selector: Selector::Loose(pattern("ip")),
            cookie: CookieFilter::ANY,
            new_cookie: None,
            actions: vec![Action::Flood],
            reset_counts: false,
        };
        let e = apply(&f, &keep).unwrap();
        assert_eq!(e.modified, 2);
        assert_eq!(
            e.flows.iter().map(|f| f.cookie).collect::<Vec<_>>(),
            [0x11, 0x21, 0x12],
            "no new cookie: the cookies stay"
        );
    }

    #[test]
    fn expire_removes_exactly_the_flows_named_and_resets_no_counters() {
        let f = flows(&[
            "reset_counts,ip,nw_dst=10.1.0.0/16,actions=drop",
            "priority=10,ip,nw_dst=10.2.0.0/16,actions=drop",
            "ip,nw_dst=10.2.0.0/16,actions=drop",
        ]);
        let going = vec![(f[2].priority, f[2].matches)];
        let e = apply(&f, &FlowEdit::Expire(going)).unwrap();
        assert_eq!(e.flows, f[..2]);
        assert_eq!(e.deleted, f[2..]);
        assert!(
            e.reset.is_empty(),
            "a kept reset_counts flow keeps its counters"
        );
        assert_eq!((e.added, e.replaced, e.modified), (0, 0, 0));
    }

    #[test]
    fn delete_filters_by_cookie_mask_and_out_port() {
        let f = flows(&[
            "cookie=0x101,ip,nw_dst=10.1.0.0/16,actions=output:2",
            "cookie=0x102,ip,nw_dst=10.2.0.0/16,actions=output:3,LOCAL",
            "cookie=0x201,ip,nw_dst=10.3.0.0/16,actions=output:1",
            "arp,actions=flood",
        ]);
        let del = |cookie, out_port| {
            apply(
                &f,
                &FlowEdit::Delete {
                    selector: Selector::Loose(Match::default()),
                    cookie,
                    out_port,
                },
            )
            .unwrap()
            .deleted
        };
        let by_cookie = CookieFilter {
            cookie: 0x100,
            mask: 0xf00,
        };
        assert_eq!(del(by_cookie, None), vec![f[0].clone(), f[1].clone()]);
        assert_eq!(
            del(
                CookieFilter {
                    cookie: 0x201,
                    mask: u64::MAX
                },
                None
            ),
            vec![f[2].clone()]
        );
        assert_eq!(
            del(CookieFilter::ANY, Some(PortNo(1))),
            vec![f[1].clone(), f[2].clone()],
            "LOCAL counts as port 1"
        );
        assert_eq!(del(by_cookie, Some(PortNo(2))), vec![f[0].clone()]);
        assert!(
            del(CookieFilter::ANY, Some(PortNo(9))).is_empty(),
            "flood is no output action"
        );
    }

    #[test]
    fn replace_reports_what_came_and_went() {
        let f = flows(&HUB);
        let e = apply(
            &f,
            &FlowEdit::Replace(flows(&[
                "arp,actions=drop",
                "reset_counts,ip,nw_dst=172.31.2.0/24,actions=output:3",
                "tcp,tp_dst=22,actions=drop",
            ])),
        )
        .unwrap();
        assert_eq!((e.added, e.replaced), (1, 2));
        assert_eq!(e.reset, vec![1]);
        assert_eq!(e.deleted, f[2..].to_vec());
        assert_eq!(e.flows.len(), 3);
    }

    #[test]
    fn patterns_read_cookies_out_port_priority_and_actions() {
        let p = parse_pattern(
            "priority=5,cookie=0x10/0xf0,out_port=tun_kl,tcp,tp_dst=80",
            &HubPorts,
        )
        .unwrap();
        assert_eq!(p.priority, Some(5));
        assert_eq!(
            p.cookie,
            CookieFilter {
                cookie: 0x10,
                mask: 0xf0
            }
        );
        assert_eq!(p.new_cookie, None);
        assert_eq!(p.out_port, Some(PortNo(2)));
        assert_eq!(p.actions, None);
        assert_eq!(p.matches.tp_dst, Some(80));
        assert_eq!(p.selector(true), Selector::Strict(p.matches, 5));
        let p = parse_pattern("cookie=7,reset_counts,ip,actions=LOCAL", &HubPorts).unwrap();
        assert_eq!((p.cookie, p.new_cookie), (CookieFilter::ANY, Some(7)));
        assert_eq!(p.actions, Some(vec![Action::Local]));
        assert_eq!(p.flags, Flow::RESET_COUNTS);
        assert_eq!(
            parse_pattern("", &HubPorts).unwrap().selector(true),
            Selector::Strict(Match::default(), crate::flow::DEFAULT_PRIORITY)
        );
        for (bad, why) in [
            ("out_port=9", "unknown port 9"),
            ("cookie=0x1/zz", "64-bit number"),
            ("udp,tcp_dst=80", "`tcp_dst` needs `tcp` or `tcp6`"),
        ] {
            let e = parse_pattern(bad, &HubPorts).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn covers_masked_macs_exact_fields_and_ports() {
        let multicast = pattern("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00");
        assert!(multicast.covers(&pattern("dl_dst=33:33:00:00:00:01")));
        assert!(!multicast.covers(&pattern("dl_dst=02:00:00:00:00:01")));
        assert!(!multicast.covers(&Match::default()));
        assert!(pattern("in_port=2").covers(&pattern("ip,in_port=2,nw_dst=10.0.0.0/8")));
        assert!(!pattern("in_port=2").covers(&pattern("ip,in_port=3")));
        assert!(pattern("tcp").covers(&pattern("tcp,tp_dst=80")));
        assert!(pattern("tcp,tp_dst=80").covers(&pattern("tcp,tp_src=9,tp_dst=80")));
        assert!(!pattern("tcp,tp_dst=80").covers(&pattern("tcp")));
        assert!(!pattern("tcp,tp_dst=80").covers(&pattern("tcp,tp_dst=81")));
    }
}
