//! What can be asked of a running switch: the one set of operations behind every control
//! plane (vxtunctl's socket, OpenFlow sessions), so that a flow edit, a reload or a counter
//! read is the same whichever plane asks. Each operation holds the data path's lock only to
//! copy or to swap; anything slow (building a table, formatting) happens outside it.

use std::time::Instant;

use tracing::info;

use super::{lock, reload, Shared};
use crate::control::{self, Request, Response};
use crate::switch::Switch;

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

    /// Re-reads the config file and applies it (see [`reload`]).
    pub(super) fn reload(&self) -> Result<String, String> {
        reload(self)
    }

    /// Applies a vxtunctl flow edit: the new table is built without holding the switch, then
    /// swapped in. Edits are serialised with each other and with reloads.
    pub(super) fn edit_flows(&self, request: &Request) -> Response {
        let mut in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        match control::edit(&in_force.config.ports, &in_force.flows, request) {
            Ok((table, summary)) => {
                let flows = table.flows().to_vec();
                let old = lock(self).switch.replace_table(table, Instant::now());
                drop(old);
                in_force.flows = flows;
                info!("flows changed: {}", summary.trim());
                Response::ok(summary)
            }
            Err(e) => Response::error(e),
        }
    }
}
