//! The underlay path MTU watcher: a thread off the data path that reads the kernel's MTU of
//! the route to every tunnel's remote (which includes a path MTU learnt from ICMP Fragmentation
//! Needed / Packet Too Big) and moves each tunnel's MTU with it, down and up again.
//!
//! It reads every [`RECHECK`], and at once when a DF send failed with EMSGSIZE (the data path
//! raises `pmtu_check`). The data path only ever waits for the moment the new MTUs are set.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::{error, info};

use super::notify::Role;
use super::{lock_all, Shared};
use crate::config;
use crate::io::Poller;
use crate::switch::{Port, UnderlayMtu};

/// How often the MTUs are read when no send failed.
pub(super) const RECHECK: Duration = Duration::from_secs(2);

/// What `vxtunctl show` says of an underlay MTU below the one the tunnel started with.
pub(super) const LEARNT: &str = "path MTU learnt from the kernel's route to the remote";
/// ... and of one read from the route that is not below it.
const ROUTE: &str = "from the route";

/// Runs until the stop signal; Err (logged) if waiting fails.
pub(super) fn pmtu_loop(sh: &Shared) -> Result<(), ()> {
    let mut poller = Poller::new(&[sh.pmtu_check.fd(), sh.stop.fd()]);
    let mut next = Instant::now() + RECHECK;
    loop {
        // Awake at least every watchdog tick, to show it lives.
        let wait = next.saturating_duration_since(Instant::now());
        if let Err(e) = poller.wait_timeout(Some(sh.tick.map_or(wait, |t| t.min(wait)))) {
            error!("waiting for the path MTU signal: {e}");
            return Err(());
        }
        sh.lives.of(Role::Pmtu).beat();
        if poller.ready(1) {
            return Ok(());
        }
        if !poller.ready(0) && Instant::now() < next {
            continue;
        }
        sh.pmtu_check.clear();
        next = Instant::now() + RECHECK;
        recheck(sh);
    }
}

/// Reads the route MTU to every remote and sets the MTU of each tunnel whose underlay MTU
/// changed. The config in force is held only to copy what to read and, after the kernel was
/// asked (netlink, outside any lock), to check that a reload did not change those tunnels
/// meanwhile; the switch only to set what changed.
fn recheck(sh: &Shared) {
    struct Wanted {
        port: Port,
        local: IpAddr,
        remote: IpAddr,
        started: u16,
        source: &'static str,
    }
    let (configured, wanted) = {
        let in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: Vec<Wanted> = in_force
            .config
            .tunnels()
            .filter_map(|(port, remote)| {
                let local = in_force.config.underlay.local_for(remote)?;
                let &(_, started, source, _) =
                    in_force.mtus.tunnels.iter().find(|t| t.0 == port.no)?;
                Some(Wanted {
                    port: port.clone(),
                    local,
                    remote,
                    started,
                    source: source.word(),
                })
            })
            .collect();
        (in_force.config.underlay.mtu, wanted)
    };
    let read: Vec<(Wanted, u16)> = wanted
        .into_iter()
        .filter_map(|w| {
            let route = crate::io::netdev::route_mtu(w.local, w.remote).ok()?;
            Some((w, configured.map_or(route, |c| c.min(route))))
        })
        .collect();
    let in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
    let mut changes = Vec::new();
    for (w, underlay) in read {
        // A tunnel a reload removed or changed meanwhile is left to the next look.
        let same = in_force
            .config
            .tunnels()
            .any(|(port, remote)| *port == w.port && remote == w.remote)
            && in_force.config.underlay.mtu == configured
            && in_force
                .mtus
                .tunnels
                .iter()
                .any(|t| t.0 == w.port.no && t.1 == w.started);
        if !same {
            continue;
        }
        let source = match underlay {
            u if u == w.started => w.source,
            u if u < w.started => LEARNT,
            _ => ROUTE,
        };
        changes.push((w.port, underlay, source));
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
