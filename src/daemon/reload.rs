//! Reload: re-read the config file and apply it without recreating the device.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::ops::SwitchHandle;
use super::{lock, lock_all, new_switch, warn_about, InForce, Mtus, Plumbing, Shared};
use crate::config::Config;
use crate::flow::{Flow, PortNo};
use crate::io::tap::{Tap, TapError};
use crate::openflow::agent::{AsyncEvent, Datapath, PortInfo};
use crate::openflow::{OFPPR_ADD, OFPPR_DELETE, OFPPR_MODIFY};
use crate::switch::{Port, Switch};

/// Re-reads the config file and applies it: tunnels added, removed or changed, MTU and
/// addresses of the device, and flows. When the file's `[flows]` changed since it was last
/// read, they replace the table (edits made over vxtunctl or OpenFlow since go with it); when
/// they did not, the table in force stays, run-time edits included, less the flows that name a
/// port the reload removed.
/// The device itself stays. On any error nothing changes and the error is logged and returned.
pub(super) fn reload(sh: &Shared) -> Result<String, String> {
    let mut in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
    match apply(sh, &mut in_force) {
        Ok(summary) => {
            info!("{}", summary.trim_end());
            Ok(summary)
        }
        Err(e) => {
            error!("reload refused, the previous configuration stays in force: {e}");
            Err(e)
        }
    }
}

fn apply(sh: &Shared, in_force: &mut InForce) -> Result<String, String> {
    let mut config = Config::load(&in_force.config.path).map_err(|e| e.to_string())?;
    needs_no_restart(&in_force.config, &config)?;
    // OpenFlow's certificates and key are read again (rotation): new connections take them,
    // established sessions keep the ones they were made with.
    let tls = match &config.openflow.tls {
        None => None,
        Some(files) => Some(crate::tls::Material::load(files).map_err(|e| e.to_string())?),
    };
    // The VTEPs learnt over EVPN stay ports beside the file's tunnels.
    super::evpn::add_ports(sh, &mut config);
    let mut summary = swap_in(sh, in_force, config)?;
    if let Some(material) = &tls {
        summary.push_str(&format!("OpenFlow {} (read again)\n", material.summary));
    }
    *sh.tls.lock().unwrap_or_else(|p| p.into_inner()) = tls.map(Arc::new);
    Ok(summary)
}

/// Builds the switch and sockets of `config` beside the running ones and swaps them in: the
/// path of reloads, also taken when EVPN adds or removes VTEP ports.
pub(super) fn swap_in(
    sh: &Shared,
    in_force: &mut InForce,
    config: Config,
) -> Result<String, String> {
    let mtus = Mtus::resolve(&config);
    warn_about(&mtus);
    // The device first, undone if anything after it fails; then the sockets; then the swap,
    // which cannot fail.
    let device = DeviceChange::apply(&sh.tap, in_force, &config, &mtus)?;
    let plumbing = {
        let old = Arc::clone(&lock(sh, 0).plumbing);
        // As many receiving sockets as there are workers, whatever the cores now are.
        Plumbing::build(&config, Some(&old), sh.workers)
    };
    let plumbing = match plumbing {
        Ok(p) => p,
        Err(e) => {
            device.undo(&sh.tap);
            return Err(e.to_string());
        }
    };
    let (flows, flows_summary) = flows_after_reload(in_force, &config);
    let summary = format!(
        "{}; {flows_summary}\n",
        reload_summary(&in_force.config, &config).trim_end()
    );
    let switch = new_switch(&config, &mtus, flows.clone(), &sh.segments);
    let plumbing = Arc::new(plumbing);
    // Every shard is built (it copies the tables), and where each flow's counters come from
    // worked out, before the locks are taken (reloads and edits are serialised by
    // `in_force`, so the table in force stays the one read here).
    let mut shards: Vec<_> = sh.cores.iter().map(|_| switch.shard()).collect();
    // What the kernel fast path forwarded is counted before the counters are carried over.
    if let Some(fp) = &sh.fast_path {
        fp.sync(sh);
    }
    let old_table = Arc::clone(lock(sh, 0).switch.table_arc());
    let carry = crate::flow::counters::carry_map(&old_table, switch.table());
    let retired: Vec<(Switch, Arc<Plumbing>)> = {
        let mut cores = lock_all(sh);
        let now = Instant::now();
        if let (Some(new), Some(old)) = (shards.first_mut(), cores.first()) {
            new.take_over_common(&old.switch, now);
        }
        let retired = cores
            .iter_mut()
            .zip(shards)
            .map(|(core, mut shard)| {
                let core = &mut **core;
                shard.take_over_counters(&core.switch, &carry, now);
                core.generation += 1;
                sh.generation.store(core.generation, Ordering::Release);
                (
                    std::mem::replace(&mut core.switch, shard),
                    std::mem::replace(&mut core.plumbing, Arc::clone(&plumbing)),
                )
            })
            .collect();
        sh.publish_counters(&cores);
        retired
    };
    for changed in &sh.sockets_changed {
        changed.raise();
    }
    drop(retired);
    port_status(sh, &in_force.config.ports, &config.ports);
    sh.device_mtu.store(mtus.split_mtu(), Ordering::Relaxed);
    *in_force = InForce {
        flows,
        config,
        mtus,
    };
    Ok(summary)
}

/// Tells the controllers (PORT_STATUS) about the ports a reload added, removed or changed.
fn port_status(sh: &Shared, old: &[Port], new: &[Port]) {
    let same = |a: &Port, b: &Port| a.no == b.no && a.name == b.name;
    let now: Vec<PortInfo> = SwitchHandle(sh).ports();
    let info = |p: &Port| {
        now.iter()
            .find(|i| i.no == p.no)
            .cloned()
            .unwrap_or(PortInfo {
                no: p.no,
                name: p.name.clone(),
                hw_addr: super::ops::tunnel_mac(sh.datapath_id, p.no),
                stats: Default::default(),
                age: Duration::ZERO,
            })
    };
    for p in old.iter().filter(|p| !new.iter().any(|q| same(p, q))) {
        sh.publish(AsyncEvent::PortStatus {
            reason: OFPPR_DELETE,
            port: info(p),
        });
    }
    for p in new {
        let reason = match old.iter().find(|q| same(p, q)) {
            None => OFPPR_ADD,
            Some(q) if q != p => OFPPR_MODIFY,
            Some(_) => continue,
        };
        sh.publish(AsyncEvent::PortStatus {
            reason,
            port: info(p),
        });
    }
}

/// The flows after a reload to `config`, and words saying which: the file's when its flows
/// changed, else the table in force without flows that name a port `config` lacks.
fn flows_after_reload(in_force: &InForce, config: &Config) -> (Vec<Flow>, String) {
    if config.flows != in_force.config.flows {
        return (
            config.flows.clone(),
            "the file's flows replace the table".into(),
        );
    }
    let exists = |p: PortNo| config.ports.iter().any(|q| q.no == p);
    let kept: Vec<Flow> = in_force
        .flows
        .iter()
        .filter(|f| {
            f.matches.in_port.is_none_or(exists)
                && f.actions.iter().all(|a| match a {
                    crate::flow::Action::Output(p) => exists(*p),
                    _ => true,
                })
        })
        .cloned()
        .collect();
    let gone = in_force.flows.len() - kept.len();
    let words = match gone {
        0 => "the file's flows are unchanged: the table in force stays".to_owned(),
        n => format!(
            "the file's flows are unchanged: the table in force stays, less {n} flow(s) naming a removed port"
        ),
    };
    (kept, words)
}

/// What a reload changed on the TAP device, so that it can be undone.
struct DeviceChange {
    old_mtu: Option<u16>,
    /// The transmit queue length before a change of `txqueuelen`.
    old_txqueuelen: Option<u32>,
    /// The addresses before the change.
    old: Vec<ipnet::IpNet>,
    added: Vec<ipnet::IpNet>,
}

impl DeviceChange {
    /// Sets the device's MTU, transmit queue length (when configured and changed) and
    /// addresses to those of `config`: old addresses that are gone are removed, then every
    /// configured one is (re)added (removing a primary IPv4 address can take secondaries of
    /// its subnet with it). On failure, undoes what it did.
    fn apply(
        tap: &Tap,
        in_force: &InForce,
        config: &Config,
        mtus: &Mtus,
    ) -> Result<DeviceChange, String> {
        let mut change = DeviceChange {
            old_mtu: None,
            old_txqueuelen: None,
            old: in_force.config.device.addresses.clone(),
            added: Vec::new(),
        };
        let result = (|| {
            if mtus.device.0 != in_force.mtus.device.0 {
                tap.set_mtu(mtus.device.0)?;
                change.old_mtu = Some(in_force.mtus.device.0);
            }
            // A length no longer configured stays as it is: unset means the device's own.
            if let Some(len) = config.device.txqueuelen {
                if config.device.txqueuelen != in_force.config.device.txqueuelen {
                    change.old_txqueuelen = Some(tap.set_txqueuelen(len)?);
                }
            }
            for addr in &in_force.config.device.addresses {
                if !config.device.addresses.contains(addr) {
                    tap.remove_address(addr)?;
                }
            }
            for addr in &config.device.addresses {
                if tap.add_address(addr)? {
                    change.added.push(*addr);
                }
            }
            Ok::<(), TapError>(())
        })();
        match result {
            Ok(()) => Ok(change),
            Err(e) => {
                change.undo(tap);
                Err(e.to_string())
            }
        }
    }

    /// Puts the device back as it was (best effort: each failure is logged).
    fn undo(self, tap: &Tap) {
        let mut failed = |e: TapError| warn!("undoing a device change: {e}");
        for addr in self.added.iter().filter(|a| !self.old.contains(a)) {
            tap.remove_address(addr).unwrap_or_else(&mut failed);
        }
        // All of them: removing one may have taken others of its subnet along.
        for addr in &self.old {
            tap.add_address(addr).map(drop).unwrap_or_else(&mut failed);
        }
        if let Some(mtu) = self.old_mtu {
            tap.set_mtu(mtu).unwrap_or_else(&mut failed);
        }
        if let Some(len) = self.old_txqueuelen {
            tap.set_txqueuelen(len)
                .map(drop)
                .unwrap_or_else(&mut failed);
        }
    }
}

/// Refuses changes a reload cannot make: the device's name, bridge and MAC, the control socket.
fn needs_no_restart(old: &Config, new: &Config) -> Result<(), String> {
    let show = |v: Option<&str>| v.map_or("(none)".to_owned(), |v| format!("`{v}`"));
    let listen = |c: &Config| {
        let targets: Vec<String> = c.openflow.listen.iter().map(|t| t.to_string()).collect();
        format!("[{}]", targets.join(", "))
    };
    let dpid = |c: &Config| c.openflow.datapath_id.map(|d| format!("{d:016x}"));
    let dial = |c: &Config| {
        let of = &c.openflow;
        let targets: Vec<String> = of.controllers.iter().map(|t| t.to_string()).collect();
        format!(
            "[{}] {:?} probe {:?} backoff {:?} rate {}/{}",
            targets.join(", "),
            of.fail_mode,
            of.inactivity_probe,
            of.max_backoff,
            of.packet_in_rate,
            of.packet_in_burst
        )
    };
    let (old_dial, new_dial) = (dial(old), dial(new));
    let (old_listen, new_listen) = (listen(old), listen(new));
    let (old_dpid, new_dpid) = (dpid(old), dpid(new));
    let metrics = |c: &Config| c.metrics_listen.map(|a| a.to_string());
    let (old_metrics, new_metrics) = (metrics(old), metrics(new));
    let mac = |c: &Config| c.device.mac.map(|m| m.to_string());
    let (old_mac, new_mac) = (mac(old), mac(new));
    let workers = |c: &Config| {
        format!(
            "queues {:?} worker_threads {} batch_wait_us {} busy_poll_us {} inner_checksum {} \
             flow_spread {}",
            c.device.queues,
            c.device.worker_threads,
            c.device.batch_wait_us,
            c.device.busy_poll_us,
            c.underlay.inner_checksum.word(),
            c.underlay.flow_spread.word()
        )
    };
    let (old_workers, new_workers) = (workers(old), workers(new));
    let evpn = |c: &Config| c.evpn.as_ref().map(|e| format!("{e:?}"));
    let (mut old_evpn, mut new_evpn) = (evpn(old), evpn(new));
    if old.evpn != new.evpn && old_evpn == new_evpn {
        // Passwords print as `Password(..)`: say which changed without printing them.
        old_evpn = Some("a password".into());
        new_evpn = Some("another".into());
    }
    let fixed = [
        (
            "metrics.listen",
            old_metrics.as_deref(),
            new_metrics.as_deref(),
        ),
        (
            "openflow.listen",
            Some(old_listen.as_str()),
            Some(new_listen.as_str()),
        ),
        (
            "openflow controllers, fail_mode, inactivity_probe, max_backoff or packet-in limits",
            Some(old_dial.as_str()),
            Some(new_dial.as_str()),
        ),
        (
            "openflow.datapath_id",
            old_dpid.as_deref(),
            new_dpid.as_deref(),
        ),
        (
            "device.name",
            Some(old.device.name.as_str()),
            Some(new.device.name.as_str()),
        ),
        (
            "device.bridge",
            old.device.bridge.as_deref(),
            new.device.bridge.as_deref(),
        ),
        ("device.mac", old_mac.as_deref(), new_mac.as_deref()),
        (
            "device.queues, device.worker_threads, device.batch_wait_us, device.busy_poll_us, \
             underlay.inner_checksum or underlay.flow_spread",
            Some(old_workers.as_str()),
            Some(new_workers.as_str()),
        ),
        (
            "underlay.offload",
            Some(if old.underlay.offload {
                "true"
            } else {
                "false"
            }),
            Some(if new.underlay.offload {
                "true"
            } else {
                "false"
            }),
        ),
        (
            "device.offload",
            Some(if old.device.offload { "true" } else { "false" }),
            Some(if new.device.offload { "true" } else { "false" }),
        ),
        (
            "the [evpn] section",
            old_evpn.as_deref(),
            new_evpn.as_deref(),
        ),
        (
            "control.socket",
            old.control_socket.to_str(),
            new.control_socket.to_str(),
        ),
        (
            "control.group",
            old.control_group.as_deref(),
            new.control_group.as_deref(),
        ),
    ];
    for (what, before, after) in fixed {
        if before != after {
            return Err(format!(
                "{}: {what} changed from {} to {}: a reload cannot change that; restart vxtund",
                new.path.display(),
                show(before),
                show(after)
            ));
        }
    }
    Ok(())
}

/// One line saying what a reload changed.
fn reload_summary(old: &Config, new: &Config) -> String {
    let list = |ports: Vec<&Port>| {
        if ports.is_empty() {
            "none".to_owned()
        } else {
            let names: Vec<String> = ports
                .iter()
                .map(|p| format!("{} {}", p.no, p.name))
                .collect();
            names.join(", ")
        }
    };
    let find = |ports: &'_ [Port], p: &Port| ports.iter().any(|q| q.no == p.no && q.name == p.name);
    let added = new.ports.iter().filter(|p| !find(&old.ports, p)).collect();
    let removed = old.ports.iter().filter(|p| !find(&new.ports, p)).collect();
    let changed = new
        .ports
        .iter()
        .filter(|p| find(&old.ports, p) && !old.ports.contains(p))
        .collect();
    format!(
        "reloaded {}: ports added: {}; removed: {}; changed: {}; {} flows\n",
        new.path.display(),
        list(added),
        list(removed),
        list(changed),
        new.flows.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let base = "[device]\nname = \"vxt0\"\n[underlay]\nlocal = \"192.168.200.101\"\n\
                    [[tunnel]]\nname = \"a\"\ntype = \"vxlan\"\nremote = \"192.168.200.102\"\n";
        Config::parse(std::path::Path::new("seg.toml"), &format!("{base}{text}")).unwrap()
    }

    #[test]
    fn a_reload_refuses_what_needs_a_restart() {
        let old = config("");
        assert_eq!(needs_no_restart(&old, &config("vni = 9\n")), Ok(()));
        let renamed = Config {
            device: crate::config::DeviceConfig {
                name: "vxt1".into(),
                ..old.device.clone()
            },
            ..old.clone()
        };
        assert_eq!(
            needs_no_restart(&old, &renamed),
            Err(
                "seg.toml: device.name changed from `vxt0` to `vxt1`: a reload cannot change \
                 that; restart vxtund"
                    .into()
            )
        );
        let grouped = config("[control]\ngroup = \"adm\"\n");
        assert!(needs_no_restart(&old, &grouped)
            .unwrap_err()
            .contains("control.group changed from (none) to `adm`"));
        let scraped = config("[metrics]\nlisten = \"127.0.0.1:9477\"\n");
        assert!(needs_no_restart(&old, &scraped)
            .unwrap_err()
            .contains("metrics.listen changed from (none) to `127.0.0.1:9477`"));
    }

    #[test]
    fn a_changed_password_is_refused_without_being_printed() {
        let evpn = |password: &str| {
            config(&format!(
                "[evpn]\nasn = 65000\nneighbors = [\"192.168.200.1\"]\nvni = 1\n\
                 password = \"{password}\"\n"
            ))
        };
        let (old, new) = (evpn("old-s3cret"), evpn("new-s3cret"));
        assert_eq!(needs_no_restart(&old, &evpn("old-s3cret")), Ok(()));
        let refused = needs_no_restart(&old, &new).unwrap_err();
        assert!(
            refused.contains("the [evpn] section changed from `a password` to `another`"),
            "{refused}"
        );
        assert!(!refused.contains("s3cret"), "{refused}");
    }

    #[test]
    fn the_reload_summary_names_ports_added_removed_and_changed() {
        let old =
            config("[[tunnel]]\nname = \"b\"\ntype = \"vxlan\"\nremote = \"192.168.200.103\"\n");
        let new = config(
            "vni = 7\n[[tunnel]]\nname = \"c\"\ntype = \"gre\"\nremote = \"192.168.200.104\"\n\
             port = 4\n",
        );
        assert_eq!(
            reload_summary(&old, &new),
            "reloaded seg.toml: ports added: 4 c; removed: 3 b; changed: 2 a; 1 flows\n"
        );
        assert!(reload_summary(&old, &old).contains("added: none; removed: none; changed: none"));
    }
}
