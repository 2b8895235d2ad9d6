//! The underlay path MTU watcher: a thread off the data path that reads the kernel's MTU of
//! the route to every tunnel's remote (which includes a path MTU learnt from ICMP Fragmentation
//! Needed / Packet Too Big) and moves each tunnel's MTU with it, down and up again.
//!
//! It reads every [`RECHECK`], and at once when a DF send failed with EMSGSIZE (the data path
//! raises `pmtu_check`). The data path only ever waits for the moment the new MTUs are set.

use std::time::Duration;

use tracing::{error, info};

use super::{lock_all, Shared};
use crate::config;
use crate::io::Poller;
use crate::switch::UnderlayMtu;

/// How often the MTUs are read when no send failed.
pub(super) const RECHECK: Duration = Duration::from_secs(2);

/// What `vxtunctl show` says of an underlay MTU below the one the tunnel started with.
pub(super) const LEARNT: &str = "path MTU learnt from the kernel's route to the remote";
/// ... and of one read from the route that is not below it.
const ROUTE: &str = "from the route";

/// Runs until the stop signal; Err (logged) if waiting fails.
pub(super) fn pmtu_loop(sh: &Shared) -> Result<(), ()> {
    let mut poller = Poller::new(&[sh.pmtu_check.fd(), sh.stop.fd()]);
    loop {
        if let Err(e) = poller.wait_timeout(Some(RECHECK)) {
            error!("waiting for the path MTU signal: {e}");
            return Err(());
        }
        if poller.ready(1) {
            return Ok(());
        }
        sh.pmtu_check.clear();
        recheck(sh);
    }
}

/// Reads the route MTU to every remote and sets the MTU of each tunnel whose underlay MTU
/// changed. Holds the config in force (so that no reload swaps the tunnels meanwhile), and the
/// switch only to set what changed.
fn recheck(sh: &Shared) {
    let in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
    let configured = in_force.config.underlay.mtu;
    let mut changes = Vec::new();
    for (port, remote) in in_force.config.tunnels() {
        let Some(local) = in_force.config.underlay.local_for(remote) else {
            continue;
        };
        let Ok(route) = crate::io::netdev::route_mtu(local, remote) else {
            continue;
        };
        let underlay = configured.map_or(route, |c| c.min(route));
        let Some(&(_, started, source, _)) = in_force.mtus.tunnels.iter().find(|t| t.0 == port.no)
        else {
            continue;
        };
        let source = match underlay {
            u if u == started => source.word(),
            u if u < started => LEARNT,
            _ => ROUTE,
        };
        changes.push((port, underlay, source));
    }
    let mut cores = lock_all(sh);
    let mut logs = Vec::new();
    for (port, underlay, source) in changes {
        let now = cores[0].switch.underlay_mtu(port.no);
        if now.is_some_and(|u| u.mtu == underlay) {
            continue;
        }
        let mtu = config::tunnel_mtu(underlay, &port.kind);
        for core in cores.iter_mut() {
            core.switch.set_mtu(port.no, mtu);
            core.switch.set_underlay_mtu(
                port.no,
                UnderlayMtu {
                    mtu: underlay,
                    source,
                },
            );
        }
        logs.push((
            port.no,
            port.name.clone(),
            now.map(|u| u.mtu),
            underlay,
            mtu,
            source,
        ));
    }
    drop(cores);
    drop(in_force);
    for (no, name, was, underlay, mtu, source) in logs {
        info!(
            port = %no,
            "tunnel {name}: underlay MTU {} -> {underlay} ({source}), tunnel MTU now {mtu}",
            was.map_or("-".to_owned(), |w| w.to_string())
        );
    }
}
