//! MTUs: each tunnel's (from the config or the route to its remote) and the device's, and
//! how `--check` and the log describe them.

use tracing::warn;

use crate::config::{self, Config};
use crate::flow::PortNo;

/// Where an MTU came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtuSource {
    /// Written in the config.
    Configured,
    /// Read from the route to the remote.
    Route,
    /// Computed from the tunnels.
    Computed,
    /// Nothing could be read; the fallback was assumed.
    Assumed,
}

impl MtuSource {
    pub(super) fn word(self) -> &'static str {
        match self {
            MtuSource::Configured => "configured",
            MtuSource::Route => "from the route",
            MtuSource::Computed => "computed",
            MtuSource::Assumed => "assumed",
        }
    }
}

/// The MTUs in force: each tunnel's and the device's.
#[derive(Debug, Clone)]
pub struct Mtus {
    /// The TAP device's MTU and where it came from.
    pub device: (u16, MtuSource),
    /// Per tunnel port: underlay MTU (and source) and the largest inner IP packet it carries.
    pub tunnels: Vec<(PortNo, u16, MtuSource, u16)>,
}

impl Mtus {
    /// Works out every MTU for `config`, reading underlay MTUs from the routing table where the
    /// config gives none.
    pub fn resolve(config: &Config) -> Mtus {
        let mut tunnels = Vec::new();
        for (port, remote) in config.tunnels() {
            let (underlay, source) = match (config.underlay.mtu, config.underlay.local_for(remote))
            {
                (Some(m), _) => (m, MtuSource::Configured),
                (None, Some(local)) => match crate::io::netdev::route_mtu(local, remote) {
                    Ok(m) => (m, MtuSource::Route),
                    Err(_) => (config::FALLBACK_UNDERLAY_MTU, MtuSource::Assumed),
                },
                (None, None) => (config::FALLBACK_UNDERLAY_MTU, MtuSource::Assumed),
            };
            tunnels.push((
                port.no,
                underlay,
                source,
                config::tunnel_mtu(underlay, &port.kind),
            ));
        }
        let device = match config.device.mtu {
            Some(m) => (m, MtuSource::Configured),
            None => match tunnels.iter().map(|t| t.3).min() {
                Some(m) => (m, MtuSource::Computed),
                None => (config::FALLBACK_UNDERLAY_MTU, MtuSource::Assumed),
            },
        };
        Mtus { device, tunnels }
    }

    /// The smallest of the device's and the tunnels' MTUs: what a received TCP superframe is
    /// split to.
    pub fn split_mtu(&self) -> usize {
        let tunnels = self.tunnels.iter().map(|t| t.3);
        usize::from(
            tunnels
                .chain([self.device.0])
                .min()
                .unwrap_or(self.device.0),
        )
    }

    /// The effective MTU of tunnel `port`.
    pub fn tunnel(&self, port: PortNo) -> Option<u16> {
        self.tunnels.iter().find(|t| t.0 == port).map(|t| t.3)
    }
}

/// Prints what `--check` shows: the resolved ports with their MTUs, and the flows.
pub fn describe(config: &Config, mtus: &Mtus) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let (mtu, source) = mtus.device;
    let _ = writeln!(s, "{}: ok", config.path.display());
    let _ = writeln!(
        s,
        "device {} mtu {mtu} ({}){}",
        config.device.name,
        source.word(),
        config
            .device
            .bridge
            .as_ref()
            .map(|b| format!(", bridge {b}"))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "underlay local {}", config.underlay.locals_text());
    let _ = writeln!(s, "{}", data_path(config));
    let _ = writeln!(s, "{}", fast_path(config));
    let targets: Vec<String> = config
        .openflow
        .listen
        .iter()
        .map(|t| t.to_string())
        .collect();
    let _ = writeln!(
        s,
        "openflow {}, datapath id {:016x} ({})",
        match targets.is_empty() {
            true => "off".to_owned(),
            false => format!("listen {}", targets.join(", ")),
        },
        super::openflow::datapath_id(config),
        match config.openflow.datapath_id {
            Some(_) => "configured",
            None => "derived",
        }
    );
    let of = &config.openflow;
    if let Some(tls) = &of.tls {
        let _ = writeln!(
            s,
            "openflow tls: private_key {}, certificate {}, ca_cert {} (peers must chain to it; \
             names are not checked, as in Open vSwitch)",
            tls.private_key.display(),
            tls.certificate.display(),
            tls.ca_cert.display()
        );
    }
    let plain: Vec<String> = of
        .listen
        .iter()
        .filter(|t| t.is_plain_beyond_loopback())
        .map(|t| t.to_string())
        .collect();
    if !plain.is_empty() {
        let _ = writeln!(
            s,
            "warning: OpenFlow listens without TLS beyond loopback on {}",
            plain.join(", ")
        );
    }
    if !of.controllers.is_empty() {
        let targets: Vec<String> = of.controllers.iter().map(|t| t.to_string()).collect();
        let _ = writeln!(
            s,
            "controllers {} (inactivity probe {}s, backoff up to {}s, at most {} packet-ins/s, burst {}), fail_mode {}",
            targets.join(", "),
            of.inactivity_probe.as_secs(),
            of.max_backoff.as_secs(),
            of.packet_in_rate,
            of.packet_in_burst,
            match of.fail_mode {
                crate::config::FailMode::Secure =>
                    "secure: with no controller connected the table stays as it is",
                crate::config::FailMode::Standalone =>
                    "standalone: with no controller connected every frame takes `normal`",
            }
        );
        if config.flows.is_empty() {
            let _ = writeln!(s, "the table starts empty: the controllers fill it");
        }
    }
    let _ = writeln!(
        s,
        "{:<6}{:<16}{:<7}{:<42}{:<18}MTU",
        "PORT", "NAME", "TYPE", "REMOTE", "VNI/KEY"
    );
    for port in &config.ports {
        let (kind, remote, id) = port.kind.summary();
        match mtus.tunnels.iter().find(|x| x.0 == port.no) {
            None => {
                let _ = writeln!(
                    s,
                    "{:<6}{:<16}{kind:<7}{remote:<42}{id:<18}{mtu}",
                    port.no, port.name
                );
            }
            Some(&(_, underlay, usrc, tmtu)) => {
                let _ = writeln!(
                    s,
                    "{:<6}{:<16}{kind:<7}{remote:<42}{id:<18}{tmtu} (underlay {underlay}, {}; {}){}",
                    port.no,
                    port.name,
                    usrc.word(),
                    largest_pings(tmtu),
                    port.options
                        .split_horizon
                        .as_ref()
                        .map_or(String::new(), |g| format!(", split horizon {g}"))
                );
            }
        }
    }
    let _ = writeln!(s, "flows:");
    for flow in &config.flows {
        let _ = writeln!(s, "  {flow}");
    }
    s
}

/// The largest ping payloads that cross a tunnel with this MTU unfragmented: the MTU less the
/// IPv4 + ICMP (28) or IPv6 + ICMPv6 (48) headers.
pub(super) fn largest_pings(mtu: u16) -> String {
    format!(
        "largest ping -s {} / ping -6 -s {}",
        mtu.saturating_sub(28),
        mtu.saturating_sub(48)
    )
}

/// Warns about tunnels too small for IPv6 and underlay MTUs that had to be assumed.
pub(super) fn warn_about(mtus: &Mtus) {
    for (port, underlay, source, mtu) in &mtus.tunnels {
        if *mtu < 1280 {
            warn!(port = %port, "tunnel MTU {mtu} is below IPv6's minimum of 1280: IPv6 cannot cross this tunnel");
        }
        if *source == MtuSource::Assumed {
            warn!(port = %port, "no route to the remote yet; assuming an underlay MTU of {underlay}");
        }
    }
}

/// The data path's shape in words, for `--check`: workers, TAP queue length, batch wait, busy
/// polling, inner checksums, flow spread.
/// What `--check` can say of the fast path without loading it: the mode, and whether this
/// build carries the programs.
fn fast_path(config: &Config) -> String {
    use crate::config::FastPathMode;
    let built = crate::io::bpf::built();
    match (config.device.fast_path, built) {
        (FastPathMode::Off, _) => "fast path: off (userspace path only)".to_owned(),
        (_, false) => format!(
            "fast path: {} (this build has no BPF programs: {})",
            if config.device.fast_path == FastPathMode::On {
                "on, which cannot start"
            } else {
                "auto, so the userspace path"
            },
            "built without clang"
        ),
        (mode, true) => format!(
            "fast path: {} (kernel, BPF, up to {} flows, when the programs load and attach at \
             start{})",
            if mode == FastPathMode::On {
                "on"
            } else {
                "auto"
            },
            config.device.fast_path_entries,
            if mode == FastPathMode::On {
                "; otherwise vxtund refuses to start"
            } else {
                "; otherwise the userspace path"
            }
        ),
    }
}

fn data_path(config: &Config) -> String {
    let device = &config.device;
    format!(
        "data path: {} worker(s) ({}; {}), txqueuelen {}, batch wait {}, busy poll {}, inner \
         checksums {}, flow spread {}",
        device.queue_count(),
        match device.queues {
            Some(_) => "configured",
            None => "one per core",
        },
        match device.worker_threads {
            1 => "one thread each",
            _ => "a thread per direction",
        },
        match device.txqueuelen {
            Some(len) => format!("{len} frames per queue"),
            None => format!(
                "unset ({} on a TAP vxtund creates, else the device's)",
                crate::config::DEFAULT_TXQUEUELEN
            ),
        },
        match device.batch_wait_us {
            0 => "off".to_owned(),
            us => format!("{us} us"),
        },
        match device.busy_poll_us {
            0 => "off".to_owned(),
            us => format!("{us} us"),
        },
        config.underlay.inner_checksum.word(),
        config.underlay.flow_spread.word()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_tells_the_data_path_settings() {
        let text = "[device]\nqueues = 3\nworker_threads = 1\nbatch_wait_us = 50\n\
                    busy_poll_us = 200\ntxqueuelen = 5000\n[underlay]\n\
                    local = \"10.0.0.1\"\n\
                    inner_checksum = \"trust\"\nflow_spread = \"hash\"\n";
        let config = Config::parse(std::path::Path::new("t.toml"), text).unwrap();
        assert_eq!(
            data_path(&config),
            "data path: 3 worker(s) (configured; one thread each), txqueuelen 5000 frames per queue, \
             batch wait 50 us, busy poll 200 us, inner checksums trust, flow spread hash"
        );
        let text = "[underlay]\nlocal = \"10.0.0.1\"\n";
        let config = Config::parse(std::path::Path::new("t.toml"), text).unwrap();
        assert!(data_path(&config).ends_with(
            "(one per core; a thread per direction), txqueuelen unset (4000 on a TAP vxtund creates, else the device's), \
             batch wait off, busy poll off, inner checksums auto, \
             flow spread balance"
        ));
    }

    #[test]
    fn largest_pings_subtract_the_icmp_headers() {
        assert_eq!(
            largest_pings(1450),
            "largest ping -s 1422 / ping -6 -s 1402"
        );
    }
}
