//! What can be asked of a running switch: the one set of operations behind every control
//! plane (vxtunctl's socket, OpenFlow sessions), so that a flow edit, a reload or a counter
//! read is the same whichever plane asks. Each operation holds the data path's lock only to
//! copy or to swap; anything slow (building a table, formatting) happens outside it.

use std::time::Instant;

use tracing::info;

use super::{lock, notify, reload, Shared};
use crate::control::{self, Request, Response};
use crate::flow::edit::{self, EditError, Edited, FlowEdit};
use crate::flow::{FlowTable, PortNo};
use crate::openflow::agent::{Datapath, FlowEntry, PortInfo};
use crate::switch::{DropReason, FlowStats, PortKind, Switch};

impl Shared {
    /// Reads from the running switch under its lock. Keep `f` short: the data path waits.
    pub(super) fn query<R>(&self, f: impl FnOnce(&Switch) -> R) -> R {
        f(&lock(self).switch)
    }

    /// Like [`Shared::query`], for the reads that need the switch mutable (vxtunctl's text
    /// answers are built by [`control::execute`], which also serves the pure tests).
    pub(super) fn query_mut<R>(&self, f: impl FnOnce(&mut Switch) -> R) -> R {
        f(&mut lock(self).switch)
    }

    /// Forgets every learnt MAC.
    pub(super) fn flush_fdb(&self) {
        lock(self).switch.flush_fdb();
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

    /// Applies a flow edit (from OpenFlow; vxtunctl's text edits come to the same
    /// [`edit::apply`] through [`control::edit`]): the new table is built without holding the
    /// switch, then swapped in. Edits are serialised with each other and with reloads.
    pub(super) fn apply_edit(&self, edit: &FlowEdit, by: &str) -> Result<Edited, EditError> {
        let mut in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        let edited = edit::apply(&in_force.flows, edit)?;
        let table = FlowTable::new(edited.flows.clone());
        let old = lock(self)
            .switch
            .replace_table(table, &edited.reset, Instant::now());
        drop(old);
        in_force.flows = edited.flows.clone();
        info!(
            "flows changed by {by}: {} added, {} replaced, {} modified, {} deleted",
            edited.added,
            edited.replaced,
            edited.modified,
            edited.deleted.len()
        );
        Ok(edited)
    }

    /// Applies a vxtunctl flow edit: the new table is built without holding the switch, then
    /// swapped in. Edits are serialised with each other and with reloads.
    pub(super) fn edit_flows(&self, request: &Request) -> Response {
        let mut in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        match control::edit(&in_force.config.ports, &in_force.flows, request) {
            Ok(change) => {
                let flows = change.table.flows().to_vec();
                let old =
                    lock(self)
                        .switch
                        .replace_table(change.table, &change.reset, Instant::now());
                drop(old);
                in_force.flows = flows;
                info!("flows changed by vxtunctl: {}", change.summary.trim());
                Response::ok(change.summary)
            }
            Err(e) => Response::error(e),
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
        self.0.apply_edit(&edit, "OpenFlow")
    }
}

/// A locally administered MAC for a tunnel port, stable per switch and port: tunnels have no
/// device of their own, and OpenFlow's PORT_DESC asks for an address.
fn tunnel_mac(datapath_id: u64, port: PortNo) -> [u8; 6] {
    let d = datapath_id.to_be_bytes();
    let p = port.0.to_be_bytes();
    [0x02, d[6], d[7], p[1], p[2], p[3]]
}
