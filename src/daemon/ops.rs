//! What can be asked of a running switch: the one set of operations behind every control
//! plane (vxtunctl's socket, OpenFlow sessions), so that a flow edit, a reload or a counter
//! read is the same whichever plane asks. Reads take no data-path thread's lock (each core's
//! counters are published where readers find them, see [`Shared::query`]); changes hold the
//! data path's locks only to swap; anything slow (building a table, formatting) happens
//! outside them.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use tracing::info;

use super::{lock, lock_all, notify, reload, Core, InForce, Shared};
use crate::control::{self, Request, Response};
use crate::flow::edit::{self, EditError, Edited, FlowEdit};
use crate::flow::{self, Flow, FlowTable, Match, PortNo};
use crate::openflow::agent::{AsyncEvent, Datapath, FlowEntry, PortInfo};
use crate::openflow::convert::OfError;
use crate::openflow::{OFPRR_DELETE, OFPRR_HARD_TIMEOUT, OFPRR_IDLE_TIMEOUT};
use crate::switch::{Counters, DropReason, FlowStats, PortKind, Switch};

impl Shared {
    /// Reads from the running switch: `f` sees the sum of every core's counters (see
    /// [`Counters::sum`]), read without any data-path thread's lock.
    pub(super) fn query<R>(&self, f: impl FnOnce(&Switch) -> R) -> R {
        self.query_mut(|sw| f(sw))
    }

    /// Like [`Shared::query`], for the reads that need the switch mutable (vxtunctl's text
    /// answers are built by [`control::execute`], which also serves the pure tests). What `f`
    /// changes in the copy is lost, except in what the shards share (the MAC table).
    pub(super) fn query_mut<R>(&self, f: impl FnOnce(&mut Switch) -> R) -> R {
        // What the kernel fast path forwarded counts too.
        if let Some(fp) = &self.fast_path {
            fp.sync(self);
        }
        let mut reading = {
            // The control core (PACKET_OUTs, the fast path's counts), never a data-path
            // thread's, gives ports, table and MTUs; while it is held no swap can publish
            // other counters, so the counters summed are of that table and those ports.
            let core = lock(self, self.control_core());
            let shards = self.published_counters();
            let sum = Counters::sum(shards.iter().map(|c| &**c)).unwrap_or_default();
            core.switch.reading(sum)
        };
        f(&mut reading)
    }

    /// The counters each core counts into now (see [`Shared::publish_counters`]).
    fn published_counters(&self) -> Vec<Arc<Counters>> {
        let published = self.counters_of.lock().unwrap_or_else(|p| p.into_inner());
        published.clone()
    }

    /// Puts where readers find them the counters each core counts into: after every change
    /// that gave the cores new ones (a table change, a reload), with every core still locked.
    pub(super) fn publish_counters(&self, cores: &[MutexGuard<'_, Core>]) {
        let now = cores
            .iter()
            .map(|c| Arc::clone(c.switch.counters()))
            .collect();
        *self.counters_of.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    /// Frames received by each side of each worker, named as the threads of a worker with a
    /// thread per direction are (`tap-rx-0`, `net-rx-0`, ...; `control` for PACKET_OUTs),
    /// read without their locks.
    pub(super) fn thread_frames(&self) -> Vec<(String, u64)> {
        self.published_counters()
            .iter()
            .enumerate()
            .map(|(i, c)| (self.thread_name(i), c.rx_frames()))
            .collect()
    }

    /// A line on the data path for `vxtunctl show`: workers and the frames each thread took.
    pub(super) fn workers_status(&self) -> String {
        let threads: Vec<String> = self
            .thread_frames()
            .into_iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let spread = match &self.balancer {
            Some(b) => format!(
                "balance, {} TCP connection(s) hold a turn",
                b.active(self.uptime_secs())
            ),
            None => "hash".to_owned(),
        };
        format!(
            "data path: {} worker(s), frames received per thread: {}\nflow spread: {spread}\n",
            self.workers,
            threads.join(", ")
        )
    }

    /// Makes every frame take `normal` (fail-open), or the table again.
    pub(super) fn set_fail_open(&self, on: bool) {
        for mut core in lock_all(self) {
            core.switch.set_fail_open(on);
        }
    }

    /// A line on the OpenFlow side for `vxtunctl show`: controllers connected, fail mode,
    /// events dropped.
    pub(super) fn openflow_status(&self) -> String {
        let in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        let of = &in_force.config.openflow;
        let plane = self
            .plane
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|w| w.upgrade());
        let connected = plane.as_ref().map_or(0, |p| p.connected());
        let dropped = self
            .events_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            + plane.as_ref().map_or(0, |p| p.events_dropped());
        let mut line = format!("openflow: datapath id {:016x}", self.datapath_id);
        if !of.controllers.is_empty() {
            let names: Vec<String> = of.controllers.iter().map(|c| c.to_string()).collect();
            line.push_str(&format!(
                ", controllers {} ({connected} connected), fail_mode {}",
                names.join(" "),
                match of.fail_mode {
                    crate::config::FailMode::Secure => "secure",
                    crate::config::FailMode::Standalone => "standalone",
                }
            ));
        }
        line.push_str(&format!(", events dropped {dropped}"));
        if of.tls.is_some() {
            let refused = plane.as_ref().map_or(0, |p| p.tls_refused());
            line.push_str(&format!(", tls handshakes refused {refused}"));
        }
        line.push('\n');
        line
    }

    /// Forgets every learnt MAC (the shards share one table).
    pub(super) fn flush_fdb(&self) {
        lock(self, 0).switch.flush_fdb();
    }

    /// Re-reads the config file and applies it (see [`reload`]), telling systemd
    /// (`RELOADING=1`, then `READY=1`, refused or not) and counting the outcome.
    pub(super) fn reload(&self) -> Result<String, String> {
        notify::reloading();
        let result = reload(self);
        let counter = match result {
            Ok(_) => &self.counters.reloads_applied,
            Err(_) => &self.counters.reloads_refused,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        notify::ready(&notify::status_line(self));
        result
    }

    /// The one way the flows in force change: vxtunctl's edits, OpenFlow's FLOW_MODs (by
    /// `by`) and the daemon's expiries all come here. The new table is built without holding
    /// the switch, then swapped in (see [`Shared::swap_flows`]); edits are serialised with each
    /// other and with reloads. The flows removed are reported to the controllers with
    /// `reason` (OFPRR_*) when they asked for it.
    pub(super) fn change_flows(
        &self,
        edit: &FlowEdit,
        by: &str,
        reason: u8,
    ) -> Result<Edited, EditError> {
        let mut in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        self.change_flows_in(&mut in_force, edit, by, reason)
    }

    /// [`Shared::change_flows`], with the flows in force already held.
    fn change_flows_in(
        &self,
        in_force: &mut InForce,
        edit: &FlowEdit,
        by: &str,
        reason: u8,
    ) -> Result<Edited, EditError> {
        let edited = edit::apply(&in_force.flows, edit)?;
        let table = FlowTable::new(edited.flows.clone());
        self.swap_flows(in_force, table, &edited.reset, &edited.deleted, reason);
        info!(
            "flows changed by {by}: {} added, {} replaced, {} modified, {} removed",
            edited.added,
            edited.replaced,
            edited.modified,
            edited.deleted.len()
        );
        Ok(edited)
    }

    /// Puts `table` (built outside the switch's lock) in force, restarting the counters of the
    /// flows in `reset`, and tells the controllers about the `deleted` flows (with their last
    /// counters) for `reason`.
    fn swap_flows(
        &self,
        in_force: &mut InForce,
        table: FlowTable,
        reset: &[usize],
        deleted: &[Flow],
        reason: u8,
    ) {
        let flows = table.flows().to_vec();
        // Where each removed flow sits in the table in force, to read its last counters.
        let wanted: Vec<Option<usize>> = match deleted.is_empty() {
            true => Vec::new(),
            false => {
                let index: HashMap<(u16, &Match), usize> = in_force
                    .flows
                    .iter()
                    .enumerate()
                    .map(|(i, f)| ((f.priority, &f.matches), i))
                    .collect();
                deleted
                    .iter()
                    .map(|f| index.get(&(f.priority, &f.matches)).copied())
                    .collect()
            }
        };
        // What the kernel fast path forwarded is counted on the flows before they change.
        if let Some(fp) = &self.fast_path {
            fp.sync(self);
        }
        let now = Instant::now();
        let table = Arc::new(table);
        // Where each flow's counters come from, worked out before the locks are taken (the
        // table in force cannot change meanwhile: edits hold `in_force`).
        let old_table = Arc::clone(lock(self, 0).switch.table_arc());
        let carry = crate::flow::counters::carry_map(&old_table, &table);
        let (old, last) = {
            let mut cores = lock_all(self);
            let sum: Vec<Option<FlowStats>> = wanted
                .iter()
                .map(|i| {
                    let i = (*i)?;
                    let mut s = cores[0].switch.flow_stats(i)?;
                    for c in &cores[1..] {
                        s.add(&c.switch.flow_stats(i).unwrap_or_default());
                    }
                    Some(s)
                })
                .collect();
            let old: Vec<_> = cores
                .iter_mut()
                .map(|c| {
                    c.switch
                        .replace_table_with(Arc::clone(&table), &carry, reset, now)
                })
                .collect();
            self.publish_counters(&cores);
            (old, sum)
        };
        let last: Vec<FlowStats> = last.into_iter().map(Option::unwrap_or_default).collect();
        drop(old);
        in_force.flows = flows;
        for (flow, s) in deleted.iter().zip(last) {
            if flow.has_flag(Flow::SEND_FLOW_REM) {
                self.publish(AsyncEvent::FlowRemoved {
                    flow: flow.clone(),
                    packets: s.n_packets,
                    bytes: s.n_bytes,
                    age: now.saturating_duration_since(s.added.unwrap_or(self.started)),
                    reason,
                });
            }
        }
    }

    /// Removes the flows whose `hard_timeout` has passed since they were added, or whose
    /// `idle_timeout` has passed since a frame last matched them, telling the controllers
    /// (FLOW_REMOVED with the reason) for those that asked. Returns how many went.
    pub(super) fn expire_flows(&self) -> usize {
        let mut in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        if !in_force
            .flows
            .iter()
            .any(|f| f.idle_timeout > 0 || f.hard_timeout > 0)
        {
            return 0;
        }
        let now = Instant::now();
        let stats: Vec<FlowStats> = self.query(|sw| {
            (0..sw.table().flows().len())
                .map(|i| sw.flow_stats(i).unwrap_or_default())
                .collect()
        });
        let mut expired: Vec<(usize, u8)> = Vec::new();
        for (i, (flow, s)) in in_force.flows.iter().zip(&stats).enumerate() {
            let added = s.added.unwrap_or(self.started);
            let since = |t: Instant| now.saturating_duration_since(t);
            let secs = |n: u16| Duration::from_secs(u64::from(n));
            if flow.hard_timeout > 0 && since(added) >= secs(flow.hard_timeout) {
                expired.push((i, OFPRR_HARD_TIMEOUT));
            } else if flow.idle_timeout > 0
                && since(s.last_used.unwrap_or(added)) >= secs(flow.idle_timeout)
            {
                expired.push((i, OFPRR_IDLE_TIMEOUT));
            }
        }
        if expired.is_empty() {
            return 0;
        }
        // By priority and match, read before the first edit moves the indices; one edit per
        // reason, so that each FLOW_REMOVED carries its own.
        let going = |reason: u8| -> Vec<(u16, Match)> {
            expired
                .iter()
                .filter(|&&(_, r)| r == reason)
                .map(|&(i, _)| (in_force.flows[i].priority, in_force.flows[i].matches))
                .collect()
        };
        let edits = [
            (
                OFPRR_HARD_TIMEOUT,
                "hard_timeout",
                going(OFPRR_HARD_TIMEOUT),
            ),
            (
                OFPRR_IDLE_TIMEOUT,
                "idle_timeout",
                going(OFPRR_IDLE_TIMEOUT),
            ),
        ];
        for (reason, by, flows) in edits {
            if !flows.is_empty() {
                let _ = self.change_flows_in(&mut in_force, &FlowEdit::Expire(flows), by, reason);
            }
        }
        info!("{} flow(s) expired", expired.len());
        expired.len()
    }

    /// Applies a vxtunctl flow edit through [`Shared::change_flows`], answering as
    /// [`control::edit_summary`] says.
    pub(super) fn edit_flows(&self, request: &Request) -> Response {
        let ports = {
            let in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
            in_force.config.ports.clone()
        };
        let edit = match control::flow_edit(&ports, request) {
            Ok(edit) => edit,
            Err(e) => return Response::error(e),
        };
        match self.change_flows(&edit, "vxtunctl", OFPRR_DELETE) {
            Ok(edited) => Response::ok(control::edit_summary(request, &edited)),
            Err(e) => Response::error(e.to_string()),
        }
    }
}
/// The running switch as an OpenFlow session sees it (see [`Datapath`]).
pub(super) struct SwitchHandle<'a>(pub(super) &'a Shared);

impl Datapath for SwitchHandle<'_> {
    fn description(&self) -> String {
        let in_force = self.0.in_force.lock().unwrap_or_else(|p| p.into_inner());
        let config = &in_force.config;
        format!("{} ({})", config.device.name, config.path.display())
    }

    fn ports(&self) -> Vec<PortInfo> {
        let sh = self.0;
        let age = sh.started.elapsed();
        sh.query(|sw| {
            sw.ports()
                .iter()
                .map(|p| PortInfo {
                    no: p.no,
                    name: p.name.clone(),
                    hw_addr: match p.kind {
                        PortKind::Local => sh.tap_mac,
                        _ => tunnel_mac(sh.datapath_id, p.no),
                    },
                    stats: sw.port_stats(p.no).unwrap_or_default(),
                    age,
                })
                .collect()
        })
    }

    fn flows(&self) -> Vec<FlowEntry> {
        // The flows in force equal the switch's table, flow for flow (every edit changes
        // both under this lock); only the counters are copied under the switch's lock.
        let in_force = self.0.in_force.lock().unwrap_or_else(|p| p.into_inner());
        let stats: Vec<FlowStats> = self.0.query(|sw| {
            (0..sw.table().flows().len())
                .map(|i| sw.flow_stats(i).unwrap_or_default())
                .collect()
        });
        let now = Instant::now();
        in_force
            .flows
            .iter()
            .zip(stats)
            .map(|(flow, s)| FlowEntry {
                flow: flow.clone(),
                packets: s.n_packets,
                bytes: s.n_bytes,
                age: now.saturating_duration_since(s.added.unwrap_or(self.0.started)),
            })
            .collect()
    }

    fn table_counts(&self) -> (u64, u64) {
        self.0.query(|sw| {
            let matched: u64 = (0..sw.table().flows().len())
                .filter_map(|i| sw.flow_stats(i))
                .map(|s| s.n_packets)
                .sum();
            (matched + sw.drops(DropReason::NoMatchingFlow), matched)
        })
    }

    fn edit(&mut self, edit: FlowEdit) -> Result<Edited, EditError> {
        self.0.change_flows(&edit, "OpenFlow", OFPRR_DELETE)
    }

    fn packet_out(&mut self, in_port: PortNo, frame: Vec<u8>, actions: Option<Vec<flow::Action>>) {
        super::datapath::packet_out(self.0, in_port, frame, actions);
    }

    fn request_role(&mut self, session: u64, role: u32, generation: u64) -> Result<(), OfError> {
        let mut roles = self.0.roles.lock().unwrap_or_else(|p| p.into_inner());
        roles.request(session, role, generation)
    }

    fn master(&self) -> Option<u64> {
        let roles = self.0.roles.lock().unwrap_or_else(|p| p.into_inner());
        roles.master()
    }
}

/// A locally administered MAC for a tunnel port, stable per switch and port: tunnels have no
/// device of their own, and OpenFlow's PORT_DESC asks for an address.
pub(super) fn tunnel_mac(datapath_id: u64, port: PortNo) -> [u8; 6] {
    let d = datapath_id.to_be_bytes();
    let p = port.0.to_be_bytes();
    [0x02, d[6], d[7], p[1], p[2], p[3]]
}
