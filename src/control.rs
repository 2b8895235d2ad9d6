//! The control protocol between `vxtunctl` and a running vxtund, as pure types: requests and
//! responses, their text encoding, and their execution against the [`Switch`]. The socket glue
//! lives in the daemon.
//!
//! A request is one line, `VERB [--strict] [--config-format] [ARG]`, followed by payload lines
//! (flows, one per line), then the end of the stream. The answer is output lines, then a last
//! line `OK` or `ERROR: message`.

use std::fmt::Write;
use std::time::Instant;

use crate::flow::edit::{self, parse_pattern, CookieFilter, Edited, FlowEdit, Selector};
use crate::flow::{parse_flow, Flow, FlowTable, PortNo};
use crate::switch::{Port, PortKind, PortTable, Switch};

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Ports with their counters, drops per reason, MTU counters.
    Show,
    /// Every flow with its counters (or, with `config_format`, as TOML strings for a config).
    DumpFlows {
        /// Print as lines of a `[flows] rules` list, without counters.
        config_format: bool,
    },
    /// Add (or replace, same match and priority) each flow.
    AddFlows(Vec<String>),
    /// Delete the flows a match covers (all when `None`), or with `strict` the one flow with
    /// exactly that match and priority; `cookie=VALUE/MASK` and `out_port=PORT` narrow it.
    DelFlows {
        /// Exact match and priority only.
        strict: bool,
        /// The match (may carry `priority=`).
        pattern: Option<String>,
    },
    /// Change the actions of the flows a match covers (`MATCH,actions=...`); `cookie=VALUE/MASK`
    /// narrows, `cookie=VALUE` sets the cookie (without either, cookies stay), `reset_counts`
    /// restarts the counters.
    ModFlows {
        /// Exact match and priority only.
        strict: bool,
        /// The match with the new actions.
        flow: String,
    },
    /// Replace the whole table with these flows, in one step.
    ReplaceFlows(Vec<String>),
    /// Counters of one port, or of all.
    DumpPorts(Option<String>),
    /// The learnt MACs with port and age.
    FdbShow,
    /// Forget every learnt MAC.
    FdbFlush,
    /// Re-read the config file and apply it (as SIGHUP does).
    Reload,
    /// BGP EVPN: sessions, remote VTEPs, MAC routes (answered by the daemon).
    Evpn,
    /// What the switch would do with a frame (see [`crate::trace`]); nothing sent or counted.
    Trace {
        /// The frame in flow syntax (or only `in_port=` when `packet` is given).
        description: String,
        /// An Ethernet frame in hex.
        packet: Option<String>,
    },
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The output, or the error message.
    pub text: String,
}

impl Request {
    /// Whether the request changes the flow table (see [`edit`]).
    pub fn is_edit(&self) -> bool {
        matches!(
            self,
            Request::AddFlows(_)
                | Request::DelFlows { .. }
                | Request::ModFlows { .. }
                | Request::ReplaceFlows(_)
        )
    }

    /// Parses a request as sent on the socket.
    pub fn parse(text: &str) -> Result<Request, String> {
        let mut lines = text.lines();
        let head = lines.next().unwrap_or("").trim();
        let payload: Vec<String> = lines
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        let mut words = head.split_whitespace();
        let verb = words.next().unwrap_or("");
        let mut strict = false;
        let mut config_format = false;
        let mut arg = None;
        for w in words {
            match w {
                "--strict" => strict = true,
                "--config-format" => config_format = true,
                _ if w.starts_with("--") => return Err(format!("unknown option `{w}`")),
                _ => arg = Some(w.to_owned()),
            }
        }
        let one = |what: &str| -> Result<String, String> {
            match payload.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(format!("{verb} takes one {what}")),
            }
        };
        Ok(match verb {
            "show" => Request::Show,
            "dump-flows" => Request::DumpFlows { config_format },
            "add-flow" | "add-flows" if payload.is_empty() => {
                return Err(format!("{verb}: no flow given"))
            }
            "add-flow" | "add-flows" => Request::AddFlows(payload),
            "del-flows" if payload.len() > 1 => {
                return Err("del-flows takes at most one match".into())
            }
            "del-flows" => Request::DelFlows {
                strict,
                pattern: payload.into_iter().next(),
            },
            "mod-flows" => Request::ModFlows {
                strict,
                flow: one("MATCH,actions=...")?,
            },
            "replace-flows" => Request::ReplaceFlows(payload),
            "dump-ports" => Request::DumpPorts(arg),
            "fdb-show" => Request::FdbShow,
            "fdb-flush" => Request::FdbFlush,
            "reload" => Request::Reload,
            "evpn" => Request::Evpn,
            "trace" if payload.len() > 2 => {
                return Err("trace takes a description and at most one packet".into())
            }
            "trace" => {
                let mut lines = payload.into_iter();
                Request::Trace {
                    description: lines.next().unwrap_or_default(),
                    packet: lines.next(),
                }
            }
            "" => return Err("empty request".into()),
            other => return Err(format!("unknown verb `{other}`")),
        })
    }

    /// The request as sent on the socket.
    pub fn encode(&self) -> String {
        let (head, payload): (String, Vec<&String>) = match self {
            Request::Show => ("show".into(), vec![]),
            Request::DumpFlows { config_format } => (
                if *config_format {
                    "dump-flows --config-format"
                } else {
                    "dump-flows"
                }
                .into(),
                vec![],
            ),
            Request::AddFlows(f) => ("add-flows".into(), f.iter().collect()),
            Request::DelFlows { strict, pattern } => {
                (strict_verb("del-flows", *strict), pattern.iter().collect())
            }
            Request::ModFlows { strict, flow } => (strict_verb("mod-flows", *strict), vec![flow]),
            Request::ReplaceFlows(f) => ("replace-flows".into(), f.iter().collect()),
            Request::DumpPorts(p) => (
                p.as_ref()
                    .map_or("dump-ports".into(), |p| format!("dump-ports {p}")),
                vec![],
            ),
            Request::FdbShow => ("fdb-show".into(), vec![]),
            Request::FdbFlush => ("fdb-flush".into(), vec![]),
            Request::Reload => ("reload".into(), vec![]),
            Request::Evpn => ("evpn".into(), vec![]),
            Request::Trace {
                description,
                packet,
            } => (
                "trace".into(),
                std::iter::once(description).chain(packet).collect(),
            ),
        };
        let mut text = head;
        text.push('\n');
        for line in payload {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

fn strict_verb(verb: &str, strict: bool) -> String {
    if strict {
        format!("{verb} --strict")
    } else {
        verb.to_owned()
    }
}

impl Response {
    /// A success with this output.
    pub fn ok(text: String) -> Response {
        Response { ok: true, text }
    }

    /// A failure with this message.
    pub fn error(text: impl Into<String>) -> Response {
        Response {
            ok: false,
            text: text.into(),
        }
    }

    /// The response as sent on the socket.
    pub fn encode(&self) -> String {
        if self.ok {
            format!("{}OK\n", self.text)
        } else {
            format!("ERROR: {}\n", self.text)
        }
    }

    /// Reads a response from the socket's text.
    pub fn decode(text: &str) -> Response {
        let trimmed = text.trim_end_matches('\n');
        match trimmed
            .rsplit_once('\n')
            .map_or(("", trimmed), |(a, b)| (a, b))
        {
            (body, "OK") => Response::ok(if body.is_empty() {
                String::new()
            } else {
                format!("{body}\n")
            }),
            (_, last) if last.starts_with("ERROR: ") => Response::error(&last["ERROR: ".len()..]),
            _ => Response::error(format!("malformed answer from the daemon: {trimmed:?}")),
        }
    }
}

/// Executes `request` on the switch. `started` is when the daemon started (the age of the
/// flows it began with). A flow edit builds the new table while holding `sw`; the daemon
/// instead builds it with [`edit`] outside its lock and only swaps it in. `reload` needs the
/// daemon and is refused here.
pub fn execute(sw: &mut Switch, request: &Request, started: Instant, now: Instant) -> Response {
    match request {
        Request::Show => Response::ok(show(sw, None)),
        Request::DumpPorts(port) => {
            let Some(port) = port else {
                return Response::ok(show(sw, None));
            };
            match crate::flow::PortNames::resolve(&PortTable(sw.ports()), port)
                .or_else(|| port.parse().ok().map(PortNo))
            {
                Some(p) if sw.port_stats(p).is_some() => Response::ok(show(sw, Some(p))),
                _ => Response::error(format!("unknown port `{port}`")),
            }
        }
        Request::DumpFlows { config_format } => {
            Response::ok(dump_flows(sw, *config_format, started, now))
        }
        Request::FdbShow => {
            let mut out = String::from(" port  MAC                Age\n");
            let mut entries: Vec<_> = sw.fdb().entries(now).collect();
            entries.sort_by_key(|(mac, e)| (e.port, *mac));
            for (mac, e) in entries {
                let _ = writeln!(
                    out,
                    "{:>5}  {mac}  {:>3}",
                    e.port,
                    now.saturating_duration_since(e.seen).as_secs()
                );
            }
            // Remote entries (BGP EVPN): not aged, so no age.
            let mut remote: Vec<_> = sw.fdb().remote_entries().collect();
            remote.sort_by_key(|(mac, port)| (*port, *mac));
            for (mac, port) in remote {
                let _ = writeln!(out, "{port:>5}  {mac}  evpn");
            }
            Response::ok(out)
        }
        Request::FdbFlush => {
            sw.flush_fdb();
            Response::ok(String::new())
        }
        Request::AddFlows(_)
        | Request::DelFlows { .. }
        | Request::ModFlows { .. }
        | Request::ReplaceFlows(_) => match edit(sw.ports(), sw.table().flows(), request) {
            Ok(change) => {
                sw.replace_table(change.table, &change.reset, now);
                Response::ok(change.summary)
            }
            Err(e) => Response::error(e),
        },
        Request::Reload => Response::error("reload is carried out by the daemon"),
        Request::Evpn => Response::error("evpn is answered by the daemon"),
        Request::Trace {
            description,
            packet,
        } => match crate::trace::frame_for(description, packet.as_deref(), sw.ports()) {
            Ok((port, frame)) => Response::ok(crate::trace::trace(sw, port, &frame, now)),
            Err(e) => Response::error(format!("trace: {e}")),
        },
    }
}

/// A flow edit worked out, ready to be swapped in with [`Switch::replace_table`].
pub struct FlowChange {
    /// The new table.
    pub table: FlowTable,
    /// A line saying what changed.
    pub summary: String,
    /// Indices into the new table whose counters restart (see [`edit::Edited::reset`]).
    pub reset: Vec<usize>,
    /// The flows the edit removed, in their old order.
    pub deleted: Vec<Flow>,
}

/// The table `flows` becomes after the edit `request` (on a switch with `ports`), and what
/// changed. Pure: the caller swaps the table in. The daemon goes the same way in steps:
/// [`flow_edit`], its one entry point for flow changes, then [`edit_summary`].
pub fn edit(ports: &[Port], flows: &[Flow], request: &Request) -> Result<FlowChange, String> {
    let change = flow_edit(ports, request)?;
    let edited = edit::apply(flows, &change).map_err(|e| e.to_string())?;
    Ok(FlowChange {
        summary: edit_summary(request, &edited),
        table: FlowTable::new(edited.flows),
        reset: edited.reset,
        deleted: edited.deleted,
    })
}

/// The flow edit that the vxtunctl request `request` asks for, on a switch with `ports` (for
/// port names); an error for a request that is not a flow edit, or one that does not parse.
pub fn flow_edit(ports: &[Port], request: &Request) -> Result<FlowEdit, String> {
    let names = PortTable(ports);
    let parse = |text: &str| parse_flow(text, &names).map_err(|e| format!("flow `{text}`: {e}"));
    let pattern =
        |text: &str| parse_pattern(text, &names).map_err(|e| format!("pattern `{text}`: {e}"));
    Ok(match request {
        Request::AddFlows(texts) => {
            FlowEdit::Add(texts.iter().map(|t| parse(t)).collect::<Result<_, _>>()?)
        }
        Request::ReplaceFlows(texts) => {
            FlowEdit::Replace(texts.iter().map(|t| parse(t)).collect::<Result<_, _>>()?)
        }
        Request::DelFlows { strict, pattern: p } => match p {
            None if *strict => return Err("del-flows --strict needs a match".into()),
            None => FlowEdit::Delete {
                selector: Selector::Loose(Default::default()),
                cookie: CookieFilter::ANY,
                out_port: None,
            },
            Some(text) => {
                let p = pattern(text)?;
                if p.new_cookie.is_some() {
                    return Err(format!(
                        "pattern `{text}`: del-flows selects by cookie=VALUE/MASK; a cookie \
                         without a mask would set it"
                    ));
                }
                FlowEdit::Delete {
                    selector: p.selector(*strict),
                    cookie: p.cookie,
                    out_port: p.out_port,
                }
            }
        },
        Request::ModFlows { strict, flow: text } => {
            let p = pattern(text)?;
            if p.out_port.is_some() {
                return Err(format!(
                    "pattern `{text}`: out_port selects flows for del-flows only"
                ));
            }
            let Some(actions) = p.actions.clone() else {
                return Err(format!("pattern `{text}`: mod-flows needs `actions=`"));
            };
            // Without any `cookie=`, mod-flows leaves the cookies alone, as ovs-ofctl's does.
            FlowEdit::Modify {
                selector: p.selector(*strict),
                cookie: p.cookie,
                new_cookie: p.new_cookie,
                actions,
                reset_counts: p.flags & Flow::RESET_COUNTS != 0,
            }
        }
        _ => return Err("not a flow edit".into()),
    })
}

/// What vxtunctl answers when `request`'s edit made `edited`.
pub fn edit_summary(request: &Request, edited: &Edited) -> String {
    match request {
        Request::AddFlows(texts) => format!(
            "{} flow(s) added, {} of them replacing a flow\n",
            texts.len(),
            edited.replaced
        ),
        Request::ReplaceFlows(_) => {
            format!("table replaced: {} flow(s)\n", edited.flows.len())
        }
        Request::DelFlows { .. } => format!("{} flow(s) deleted\n", edited.deleted.len()),
        Request::ModFlows { .. } => format!("{} flow(s) modified\n", edited.modified),
        _ => String::new(),
    }
}

fn dump_flows(sw: &Switch, config_format: bool, started: Instant, now: Instant) -> String {
    let mut out = String::new();
    for (id, flow) in sw.table().flows().iter().enumerate() {
        if config_format {
            let _ = writeln!(out, "  \"{flow}\",");
            continue;
        }
        let stats = sw.flow_stats(id).unwrap_or_default();
        let age = now
            .saturating_duration_since(stats.added.unwrap_or(started))
            .as_secs_f64();
        let _ = writeln!(
            out,
            " duration={age:.3}s, n_packets={}, n_bytes={}, {flow}",
            stats.n_packets, stats.n_bytes
        );
    }
    out
}

fn show(sw: &Switch, only: Option<PortNo>) -> String {
    let mut out = String::new();
    for port in sw.ports().iter().filter(|p| only.is_none_or(|o| o == p.no)) {
        let (kind, remote, id) = port.kind.summary();
        let desc = match (&port.kind, sw.mtu(port.no)) {
            (PortKind::Local, _) => "local".to_owned(),
            (_, mtu) => format!(
                "{kind} {remote} {id} mtu {}{}",
                mtu.map_or("-".into(), |m| m.to_string()),
                port.options
                    .split_horizon
                    .as_ref()
                    .map_or(String::new(), |g| format!(" split_horizon {g}"))
            ),
        };
        let s = sw.port_stats(port.no).unwrap_or_default();
        let _ = writeln!(out, " {} {} ({desc}): {s}", port.no, port.name);
    }
    for port in sw.ports().iter().filter(|p| only.is_none_or(|o| o == p.no)) {
        if let (Some(u), Some(mtu)) = (sw.underlay_mtu(port.no), sw.mtu(port.no)) {
            let _ = writeln!(
                out,
                " underlay {} {}: mtu {} ({}), tunnel mtu {mtu}",
                port.no, port.name, u.mtu, u.source
            );
        }
    }
    if only.is_none() {
        let _ = write!(out, "{}", sw.totals(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Switch {
        crate::testing::hub(&[
            "arp,actions=flood",
            "ip,nw_dst=172.31.3.0/24,actions=output:tun_km",
        ])
    }

    fn run(sw: &mut Switch, text: &str) -> Response {
        let now = Instant::now();
        match Request::parse(text) {
            Ok(r) => execute(sw, &r, now, now),
            Err(e) => Response::error(e),
        }
    }

    #[test]
    fn requests_round_trip_through_their_encoding() {
        let requests = [
            Request::Show,
            Request::DumpFlows {
                config_format: true,
            },
            Request::AddFlows(vec!["arp,actions=flood".into(), "ip,actions=drop".into()]),
            Request::DelFlows {
                strict: true,
                pattern: Some("priority=5,ip".into()),
            },
            Request::DelFlows {
                strict: false,
                pattern: None,
            },
            Request::ModFlows {
                strict: false,
                flow: "ip,actions=output:2".into(),
            },
            Request::ReplaceFlows(vec![]),
            Request::DumpPorts(Some("tun_kl".into())),
            Request::FdbShow,
            Request::FdbFlush,
            Request::Reload,
            Request::Evpn,
            Request::Trace {
                description: "in_port=tun_kl,ip,nw_dst=172.31.3.1".into(),
                packet: None,
            },
            Request::Trace {
                description: "in_port=2".into(),
                packet: Some("ffffffffffff020000000001".into()),
            },
        ];
        for r in requests {
            assert_eq!(Request::parse(&r.encode()), Ok(r.clone()), "{}", r.encode());
        }
        for (text, err) in [
            ("", "empty request"),
            ("jump", "unknown verb"),
            ("show --fast", "unknown option"),
            ("add-flows", "no flow"),
            ("mod-flows", "takes one"),
        ] {
            assert!(Request::parse(text).unwrap_err().contains(err), "{text}");
        }
    }

    #[test]
    fn edit_builds_the_new_table_without_touching_the_switch() {
        let sw = hub();
        let before = sw.table().flows().to_vec();
        let request =
            Request::parse("add-flow\nip,nw_dst=172.31.2.0/24,actions=output:tun_kl\n").unwrap();
        assert!(request.is_edit());
        let change = edit(sw.ports(), sw.table().flows(), &request).unwrap();
        assert_eq!(change.table.flows().len(), before.len() + 1);
        assert_eq!(
            change.summary,
            "1 flow(s) added, 0 of them replacing a flow\n"
        );
        assert_eq!(sw.table().flows(), &before[..], "the switch is unchanged");
        for other in [Request::Show, Request::Reload, Request::FdbFlush] {
            assert!(!other.is_edit());
            assert!(edit(sw.ports(), &before, &other).is_err());
        }
    }

    #[test]
    fn reload_needs_the_daemon() {
        let mut sw = hub();
        let r = run(&mut sw, "reload\n");
        assert!(!r.ok && r.text.contains("daemon"), "{r:?}");
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::ok("a\nb\n".into()),
            Response::ok(String::new()),
            Response::error("unknown port `x`"),
        ] {
            assert_eq!(Response::decode(&r.encode()), r);
        }
        assert!(!Response::decode("garbage").ok);
    }

    #[test]
    fn add_mod_del_change_the_path() {
        let mut sw = hub();
        let r = run(&mut sw, "add-flows\nip,nw_dst=172.31.2.0/24,actions=output:tun_kl\nip,nw_dst=172.31.3.0/24,actions=output:2\n");
        assert!(r.ok, "{}", r.text);
        assert_eq!(r.text, "2 flow(s) added, 1 of them replacing a flow\n");
        assert_eq!(sw.table().flows().len(), 3);
        let r = run(
            &mut sw,
            "mod-flows\nip,nw_dst=172.31.0.0/16,actions=output:3\n",
        );
        assert_eq!(r.text, "2 flow(s) modified\n");
        let r = run(&mut sw, "del-flows --strict\nip,nw_dst=172.31.2.0/24\n");
        assert_eq!(r.text, "1 flow(s) deleted\n");
        let r = run(&mut sw, "del-flows\n");
        assert_eq!(r.text, "2 flow(s) deleted\n");
        assert!(sw.table().flows().is_empty());
    }

    #[test]
    fn edits_select_by_cookie_and_out_port_and_keep_or_restart_counters() {
        let mut sw = hub();
        let r = run(
            &mut sw,
            "replace-flows\ncookie=0x11,arp,actions=flood\ncookie=0x12,ip,nw_dst=172.31.3.0/24,actions=output:tun_km\ncookie=0x21,tcp,tp_dst=22,actions=LOCAL\n",
        );
        assert!(r.ok, "{}", r.text);
        let mut frame = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        let _ = sw.handle_frame(PortNo(2), &mut frame, Instant::now());
        assert_eq!(sw.flow_stats(0).unwrap().n_packets, 1);

        let r = run(&mut sw, "mod-flows\narp,actions=normal\n");
        assert_eq!(r.text, "1 flow(s) modified\n");
        assert_eq!(
            sw.table().flows()[0].cookie,
            0x11,
            "no cookie=: cookies stay"
        );
        assert_eq!(sw.flow_stats(0).unwrap().n_packets, 1, "counters stay");
        let r = run(
            &mut sw,
            "mod-flows\ncookie=0x15,reset_counts,arp,actions=flood\n",
        );
        assert!(r.ok, "{}", r.text);
        assert_eq!(
            sw.table().flows()[0].cookie,
            0x15,
            "cookie= sets the cookie"
        );
        assert_eq!(sw.flow_stats(0).unwrap().n_packets, 0, "reset_counts");

        let r = run(&mut sw, "del-flows\nout_port=LOCAL\n");
        assert_eq!(r.text, "1 flow(s) deleted\n");
        let r = run(&mut sw, "del-flows\ncookie=0x10/0xf0,out_port=tun_km\n");
        assert_eq!(r.text, "1 flow(s) deleted\n");
        assert_eq!(sw.table().flows().len(), 1);
        for (bad, why) in [
            ("del-flows\ncookie=0x10\n", "cookie=VALUE/MASK"),
            ("mod-flows\nout_port=2,actions=drop\n", "del-flows only"),
            ("mod-flows\narp\n", "needs `actions=`"),
            ("add-flow\ncookie=1/1,actions=drop\n", "cookie mask"),
            (
                "add-flow\ncheck_overlap,dl_dst=ff:ff:ff:ff:ff:ff,actions=drop\n",
                "overlaps `cookie=0x15,arp,actions=flood`",
            ),
        ] {
            let r = run(&mut sw, bad);
            assert!(!r.ok && r.text.contains(why), "{bad}: {}", r.text);
        }
        assert_eq!(sw.table().flows().len(), 1, "refused edits change nothing");
    }

    #[test]
    fn bad_flows_are_refused_with_the_position_and_change_nothing() {
        let mut sw = hub();
        let r = run(
            &mut sw,
            "add-flows\narp,actions=flood\nip,actions=output:tun_xx\n",
        );
        assert!(!r.ok);
        assert_eq!(
            r.text,
            "flow `ip,actions=output:tun_xx`: at column 12: unknown port `tun_xx`"
        );
        assert_eq!(sw.table().flows().len(), 2, "nothing applied");
        let r = run(&mut sw, "replace-flows\nip,nw_dts=1.2.3.4,actions=drop\n");
        assert!(
            !r.ok && r.text.contains("at column 4: unknown field `nw_dts`"),
            "{}",
            r.text
        );
        assert!(!run(&mut sw, "del-flows --strict\n").ok);
        assert!(!run(&mut sw, "dump-ports tun_xx").ok);
    }

    #[test]
    fn dump_flows_output_is_accepted_by_add_flows_and_replace_flows() {
        let mut sw = hub();
        let dumped = run(&mut sw, "dump-flows").text;
        assert!(
            dumped.contains("n_packets=0, n_bytes=0, ip,nw_dst=172.31.3.0/24,actions=output:3"),
            "{dumped}"
        );
        let r = run(&mut sw, &format!("replace-flows\n{dumped}"));
        assert!(r.ok, "{}", r.text);
        assert_eq!(sw.table().flows().len(), 2);
        let config = run(&mut sw, "dump-flows --config-format").text;
        assert_eq!(
            config,
            "  \"arp,actions=flood\",\n  \"ip,nw_dst=172.31.3.0/24,actions=output:3\",\n"
        );
    }

    #[test]
    fn show_and_fdb() {
        let mut sw = hub();
        let show = run(&mut sw, "show").text;
        assert!(
            show.contains(
                " 2 tun_kl (vxlan 192.168.200.102:8472 vni 1193046 mtu 1450): rx_packets=0"
            ),
            "{show}"
        );
        assert!(show.contains(" drops: truncated_frame=0"), "{show}");
        let one = run(&mut sw, "dump-ports tun_km").text;
        assert!(
            one.starts_with(" 3 tun_km") && one.lines().count() == 1,
            "{one}"
        );
        let mut frame = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        let _ = sw.handle_frame(PortNo(2), &mut frame, Instant::now());
        assert!(run(&mut sw, "fdb-show").ok);
        assert!(run(&mut sw, "fdb-flush").ok);
    }
}
