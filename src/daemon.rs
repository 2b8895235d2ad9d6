//! Wiring: opens the TAP and the underlay sockets, runs the data path, handles signals.
//!
//! The data path is two threads, one per direction, each a tight loop that moves a batch of up to
//! [`BATCH`] frames per wake-up: read the batch, lock the switch once to decide every frame, then
//! send (with `sendmmsg`, header and frame gathered without a copy). A third thread answers
//! `vxtunctl` on the control socket. The main thread waits for signals: SIGTERM/SIGINT stop,
//! SIGUSR1 logs every counter, SIGHUP reloads the config.
//!
//! The switch and the underlay sockets with each port's egress (the [`Plumbing`]) sit together
//! under one lock. A reload builds the new ones beside the running ones (binding only the
//! sockets it lacks) and swaps both in one step; a flow edit builds the new table outside the
//! lock and only swaps it in. So every frame is decided and sent under one whole configuration,
//! old or new, and the data path waits only for the swap.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use socket2::SockAddr;
use thiserror::Error;
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::control::{self, Request, Response};
use crate::fdb::MacTable;
use crate::flow::{Flow, FlowTable, PortNo};
use crate::io::control::{ControlError, ControlSocket};
use crate::io::socket::{
    RecvBatch, SendItem, SocketError, SocketKind, UnderlaySocket, BATCH, MAX_DATAGRAM,
};
use crate::io::tap::{Tap, TapError};
use crate::io::{Event, Poller};
use crate::switch::{Action, DfMode, DropReason, Port, PortKind, Switch};
use crate::wire::ip::IpView;
use crate::wire::offload::{self, VnetHdr, VNET_HDR_LEN};
use crate::wire::{gre, vxlan, IPV4_HEADER_LEN};

/// Failures that keep the daemon from starting or running.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The TAP device.
    #[error(transparent)]
    Tap(#[from] TapError),
    /// An underlay socket.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// Signal handling or the stop eventfd could not be set up.
    #[error("setting up signal handling: {0}")]
    Signals(io::Error),
    /// The control socket.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A data-path thread stopped on an I/O error (logged when it happened).
    #[error("the data path stopped on an I/O error (see the log above)")]
    DataPath,
}

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
    fn word(self) -> &'static str {
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
fn largest_pings(mtu: u16) -> String {
    format!(
        "largest ping -s {} / ping -6 -s {}",
        mtu.saturating_sub(28),
        mtu.saturating_sub(48)
    )
}

/// How a frame leaves by a port.
// One per port, looked up per frame: keeping tunnels inline (no Box) saves a pointer chase.
#[allow(clippy::large_enum_variant)]
enum Egress {
    Local,
    Tunnel {
        /// The sockets sending with DF set and with DF clear (the same one unless `df` is
        /// `inherit`; over IPv6 both are the one socket).
        sockets: [usize; 2],
        df: DfMode,
        dst: SockAddr,
        /// The encapsulation header, when it is the same for every packet, with the outer
        /// IPv4 header in front for sockets that take it.
        header: Encap,
        /// For GRE with a checksum or sequence numbers: the header is built per packet.
        per_packet: Option<PerPacketGre>,
    },
}

/// An encapsulation header (VXLAN or GRE) with room in front for the outer IPv4 header, which
/// the sockets of IPv4 GRE with DF take from the sender (see [`UnderlaySocket::outer_header`]).
#[derive(Clone, Copy)]
struct Encap {
    bytes: [u8; IPV4_HEADER_LEN + gre::MAX_LEN],
    /// Length of the encapsulation header, which starts at `IPV4_HEADER_LEN`.
    len: usize,
}

impl Encap {
    const EMPTY: Encap = Encap {
        bytes: [0; IPV4_HEADER_LEN + gre::MAX_LEN],
        len: 0,
    };

    /// Room for the encapsulation header.
    fn room(&mut self) -> &mut [u8; gre::MAX_LEN] {
        let tail = &mut self.bytes[IPV4_HEADER_LEN..];
        tail.try_into().expect("sized to the maximum header")
    }

    /// What to send in front of the frame: the encapsulation header, after the outer IPv4
    /// header when `socket` takes one.
    fn for_socket(&self, socket: &UnderlaySocket) -> &[u8] {
        let start = match socket.writes_ip_header() {
            true => 0,
            false => IPV4_HEADER_LEN,
        };
        &self.bytes[start..IPV4_HEADER_LEN + self.len]
    }
}

/// A GRE header that changes with every packet.
struct PerPacketGre {
    template: gre::Header,
    /// The next sequence number, when sequence numbers are sent; shared with the plumbing a
    /// reload replaces, so numbers never go back.
    next_seq: Option<Arc<AtomicU32>>,
}

impl PerPacketGre {
    fn encode(&self, payload: &[u8], out: &mut Encap) {
        let seq = self
            .next_seq
            .as_ref()
            .map(|n| n.fetch_add(1, Ordering::Relaxed));
        out.len = gre::Header {
            seq,
            ..self.template
        }
        .encode(payload, out.room());
    }
}

/// The underlay sockets and how frames leave by each port. Built for a config, and rebuilt on
/// reload; it is swapped together with the switch so that every frame is decided and sent
/// under one configuration.
struct Plumbing {
    sockets: Vec<Arc<UnderlaySocket>>,
    /// Sorted by port.
    egress: Vec<(PortNo, Egress)>,
}

impl Plumbing {
    /// Opens the sockets `config` needs, taking over those of `old` (the plumbing in force) that
    /// fit, and works out every port's egress. GRE sequence numbers continue where `old` was.
    fn build(config: &Config, old: Option<&Plumbing>) -> Result<Plumbing, SocketError> {
        let mut sockets: Vec<Arc<UnderlaySocket>> = Vec::new();
        let mut egress = vec![(PortNo::LOCAL, Egress::Local)];
        for (port, remote) in config.tunnels() {
            let Some(local) = config.underlay.local_for(remote) else {
                continue; // refused by config validation
            };
            let (kind, dst_port) = match &port.kind {
                PortKind::Vxlan(t) => (SocketKind::Udp(t.dst_port), t.dst_port),
                _ => (SocketKind::Gre, 0),
            };
            let df = port.options.df;
            // UDP sockets send and receive. Raw GRE sockets each have one role: one per
            // address receives and never sends, the others send and receive nothing; so a
            // reload never has two receiving copies of one packet.
            let same = |s: &UnderlaySocket| s.kind() == kind && s.local() == local;
            let sender = |s: &UnderlaySocket| kind != SocketKind::Gre || !s.receives();
            let receiver = |s: &UnderlaySocket| same(s) && !sender(s);
            if kind == SocketKind::Gre && !sockets.iter().any(|s| receiver(s)) {
                let reused = old.and_then(|o| o.sockets.iter().find(|s| receiver(s)));
                sockets.push(match reused {
                    Some(s) => Arc::clone(s),
                    None => Arc::new(UnderlaySocket::gre(local, true, true)?),
                });
            }
            let mut socket_for = |want_df: bool| -> Result<usize, SocketError> {
                // DF means nothing over IPv6: one socket serves both.
                let want_df = want_df || local.is_ipv6();
                let fits = |s: &UnderlaySocket| same(s) && sender(s) && s.df() == want_df;
                if let Some(i) = sockets.iter().position(|s| fits(s)) {
                    return Ok(i);
                }
                let reused = old.and_then(|o| o.sockets.iter().find(|s| fits(s)));
                sockets.push(match reused {
                    Some(s) => Arc::clone(s),
                    None => Arc::new(match kind {
                        SocketKind::Udp(p) => {
                            UnderlaySocket::udp(local, p, want_df, config.underlay.offload)?
                        }
                        SocketKind::Gre => UnderlaySocket::gre(local, want_df, false)?,
                    }),
                });
                Ok(sockets.len() - 1)
            };
            let socket_df = if df == DfMode::Unset {
                None
            } else {
                Some(socket_for(true)?)
            };
            let socket_nodf = if df == DfMode::Set {
                None
            } else {
                Some(socket_for(false)?)
            };
            let sockets_pair = [
                socket_df.or(socket_nodf).unwrap_or(0),
                socket_nodf.or(socket_df).unwrap_or(0),
            ];
            let mut header = Encap::EMPTY;
            let outer = sockets_pair
                .iter()
                .find_map(|&i| sockets[i].outer_header(remote));
            if let Some(outer) = outer {
                header.bytes[..IPV4_HEADER_LEN].copy_from_slice(&outer);
            }
            let (header_len, per_packet) = match &port.kind {
                PortKind::Vxlan(t) => {
                    header.room()[..vxlan::HEADER_LEN]
                        .copy_from_slice(&vxlan::Header { vni: t.vni }.encode());
                    (vxlan::HEADER_LEN, None)
                }
                PortKind::Gre(t) if !t.csum && !t.seq => {
                    let h = gre::Header {
                        csum: false,
                        key: t.key,
                        seq: None,
                    };
                    (h.encode(&[], header.room()), None)
                }
                PortKind::Gre(t) => {
                    let template = gre::Header {
                        csum: t.csum,
                        key: t.key,
                        seq: None,
                    };
                    let next_seq = t
                        .seq
                        .then(|| old.and_then(|o| o.seq_counter(port.no)).unwrap_or_default());
                    (0, Some(PerPacketGre { template, next_seq }))
                }
                PortKind::Local => continue,
            };
            header.len = header_len;
            let dst = SockAddr::from(SocketAddr::new(remote, dst_port));
            egress.push((
                port.no,
                Egress::Tunnel {
                    sockets: sockets_pair,
                    df,
                    dst,
                    header,
                    per_packet,
                },
            ));
        }
        egress.sort_by_key(|e| e.0);
        Ok(Plumbing { sockets, egress })
    }

    fn egress(&self, port: PortNo) -> Option<&Egress> {
        self.egress
            .binary_search_by_key(&port, |e| e.0)
            .ok()
            .map(|i| &self.egress[i].1)
    }

    /// The GRE sequence counter of `port`, if it sends sequence numbers.
    fn seq_counter(&self, port: PortNo) -> Option<Arc<AtomicU32>> {
        match self.egress(port)? {
            Egress::Tunnel {
                per_packet: Some(g),
                ..
            } => g.next_seq.clone(),
            _ => None,
        }
    }
}

/// What the data path decides and sends with; swapped whole on reload.
struct Core {
    switch: Switch,
    plumbing: Arc<Plumbing>,
    /// Counts reloads, so that the underlay thread knows when to poll new sockets.
    generation: u64,
}

/// The configuration in force.
struct InForce {
    config: Config,
    mtus: Mtus,
    /// The flows in the switch: the config's, as changed by flow edits since.
    flows: Vec<Flow>,
}

/// Everything the threads share.
struct Shared {
    core: Mutex<Core>,
    /// Bumped (with the core's generation) on reload; read without the lock.
    generation: AtomicU64,
    /// Raised after a reload swapped the sockets.
    sockets_changed: Event,
    tap: Tap,
    stop: Event,
    /// Its lock also serialises every change: reloads and flow edits.
    in_force: Mutex<InForce>,
    started: Instant,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), DaemonError> {
    // Signals first: a SIGHUP or SIGTERM that arrives while starting must not kill the process
    // with the default action.
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).map_err(DaemonError::Signals)?;
    let handle = signals.handle();
    let mtus = Mtus::resolve(&config);
    warn_about(&mtus);

    // Sockets first: a bind failure then leaves no device behind.
    let plumbing = Plumbing::build(&config, None)?;
    for socket in &plumbing.sockets {
        if let SocketKind::Udp(port) = socket.kind() {
            let word = |on: bool| if on { "on" } else { "off" };
            let (gso, gro) = socket.offloads();
            info!(
                local = %socket.local(),
                port,
                df = socket.df(),
                "VXLAN socket: UDP GSO {}, UDP GRO {}",
                word(gso),
                word(gro)
            );
        }
    }
    let control = ControlSocket::bind(&config.control_socket, config.control_group.as_deref())?;
    let device_mtu = mtus.device.0;
    let tap = Tap::open(
        &config.device.name,
        device_mtu,
        &config.device.addresses,
        config.device.bridge.as_deref(),
        config.device.offload,
    )?;
    let offloads = tap.offloads();
    info!(
        device = tap.name(),
        created = tap.created(),
        mtu = device_mtu,
        "TAP device ready, offloads: {}",
        match (config.device.offload, offloads.tcp, offloads.udp) {
            (false, _, _) => "off (as configured)",
            (true, false, _) => "none (the kernel refused them)",
            (true, true, false) => "checksum, TSO4, TSO6 (no USO in this kernel)",
            (true, true, true) => "checksum, TSO4, TSO6, USO4, USO6",
        }
    );

    let ready = ready_line(&config, &mtus);
    let shared = Shared {
        core: Mutex::new(Core {
            switch: new_switch(&config, &mtus),
            plumbing: Arc::new(plumbing),
            generation: 0,
        }),
        generation: AtomicU64::new(0),
        sockets_changed: Event::new().map_err(DaemonError::Signals)?,
        tap,
        stop: Event::new().map_err(DaemonError::Signals)?,
        in_force: Mutex::new(InForce {
            flows: config.flows.clone(),
            config,
            mtus,
        }),
        started: Instant::now(),
    };

    println!("{ready}");
    use std::io::Write;
    let _ = io::stdout().flush();

    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let shared = &shared;
        let handle = &handle;
        let failed = &failed;
        let stop_all = move |result: Result<(), ()>| {
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            shared.stop.raise();
            handle.close();
        };
        let tap_thread = std::thread::Builder::new()
            .name("tap-rx".into())
            .spawn_scoped(scope, move || {
                stop_all(guarded("tap-rx", || tap_loop(shared)))
            });
        let net_thread = std::thread::Builder::new()
            .name("net-rx".into())
            .spawn_scoped(scope, move || {
                stop_all(guarded("net-rx", || net_loop(shared)))
            });
        let control = &control;
        let control_thread = std::thread::Builder::new()
            .name("control".into())
            .spawn_scoped(scope, move || {
                stop_all(guarded("control", || control_loop(shared, control)))
            });
        if tap_thread.is_err() || net_thread.is_err() || control_thread.is_err() {
            error!("could not start the data-path threads");
            stop_all(Err(()));
        }
        for signal in signals.forever() {
            match signal {
                SIGUSR1 => log_stats(shared),
                SIGHUP => {
                    info!("SIGHUP: reloading the configuration");
                    let _ = reload(shared);
                }
                _ => {
                    info!(signal, "stopping");
                    break;
                }
            }
        }
        shared.stop.raise();
    });
    log_stats(&shared);
    if shared.tap.created() {
        info!(device = shared.tap.name(), "removing the TAP device");
    }
    if failed.load(Ordering::Relaxed) {
        return Err(DaemonError::DataPath);
    }
    Ok(())
}

/// Warns about tunnels too small for IPv6 and underlay MTUs that had to be assumed.
fn warn_about(mtus: &Mtus) {
    for (port, underlay, source, mtu) in &mtus.tunnels {
        if *mtu < 1280 {
            warn!(port = %port, "tunnel MTU {mtu} is below IPv6's minimum of 1280: IPv6 cannot cross this tunnel");
        }
        if *source == MtuSource::Assumed {
            warn!(port = %port, "no route to the remote yet; assuming an underlay MTU of {underlay}");
        }
    }
}

/// The switch for `config`, with the tunnel MTUs of `mtus`.
fn new_switch(config: &Config, mtus: &Mtus) -> Switch {
    let mut switch = Switch::new(
        config.ports.clone(),
        FlowTable::new(config.flows.clone()),
        MacTable::new(config.fdb_max_entries, config.fdb_ageing),
    );
    for &(port, _, _, mtu) in &mtus.tunnels {
        switch.set_mtu(port, mtu);
    }
    switch
}

/// Re-reads the config file and applies it: tunnels added, removed or changed, new flows (the
/// file's flows replace the table, run-time edits included), MTU and addresses of the device.
/// The device itself stays. On any error nothing changes and the error is logged and returned.
fn reload(sh: &Shared) -> Result<String, String> {
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
    let config = Config::load(&in_force.config.path).map_err(|e| e.to_string())?;
    needs_no_restart(&in_force.config, &config)?;
    let mtus = Mtus::resolve(&config);
    warn_about(&mtus);
    // The device first, undone if anything after it fails; then the sockets; then the swap,
    // which cannot fail.
    let device = DeviceChange::apply(&sh.tap, in_force, &config, &mtus)?;
    let plumbing = {
        let old = Arc::clone(&lock(sh).plumbing);
        Plumbing::build(&config, Some(&old))
    };
    let plumbing = match plumbing {
        Ok(p) => p,
        Err(e) => {
            device.undo(&sh.tap);
            return Err(e.to_string());
        }
    };
    let summary = reload_summary(&in_force.config, &config);
    let mut switch = new_switch(&config, &mtus);
    let retired = {
        let mut core = lock(sh);
        let core = &mut *core;
        switch.take_over(&mut core.switch, Instant::now());
        core.generation += 1;
        sh.generation.store(core.generation, Ordering::Release);
        (
            std::mem::replace(&mut core.switch, switch),
            std::mem::replace(&mut core.plumbing, Arc::new(plumbing)),
        )
    };
    sh.sockets_changed.raise();
    drop(retired);
    *in_force = InForce {
        flows: config.flows.clone(),
        config,
        mtus,
    };
    Ok(summary)
}

/// What a reload changed on the TAP device, so that it can be undone.
struct DeviceChange {
    old_mtu: Option<u16>,
    /// The addresses before the change.
    old: Vec<ipnet::IpNet>,
    added: Vec<ipnet::IpNet>,
}

impl DeviceChange {
    /// Sets the device's MTU and addresses to those of `config`: old addresses that are gone
    /// are removed, then every configured one is (re)added (removing a primary IPv4 address can
    /// take secondaries of its subnet with it). On failure, undoes what it did.
    fn apply(
        tap: &Tap,
        in_force: &InForce,
        config: &Config,
        mtus: &Mtus,
    ) -> Result<DeviceChange, String> {
        let mut change = DeviceChange {
            old_mtu: None,
            old: in_force.config.device.addresses.clone(),
            added: Vec::new(),
        };
        let result = (|| {
            if mtus.device.0 != in_force.mtus.device.0 {
                tap.set_mtu(mtus.device.0)?;
                change.old_mtu = Some(in_force.mtus.device.0);
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
    }
}

/// Refuses changes a reload cannot make: the device's name and bridge, the control socket.
fn needs_no_restart(old: &Config, new: &Config) -> Result<(), String> {
    let show = |v: Option<&str>| v.map_or("(none)".to_owned(), |v| format!("`{v}`"));
    let fixed = [
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

fn ready_line(config: &Config, mtus: &Mtus) -> String {
    let ports: Vec<String> = config
        .ports
        .iter()
        .map(|port| match (&port.kind, mtus.tunnel(port.no)) {
            (PortKind::Local, _) | (_, None) => format!("{} {} (local)", port.no, port.name),
            (kind, Some(mtu)) => {
                let (kind, remote, id) = kind.summary();
                format!(
                    "{} {} ({kind} {remote} {id} mtu {mtu}, {})",
                    port.no,
                    port.name,
                    largest_pings(mtu)
                )
            }
        })
        .collect();
    format!(
        "vxtund ready: device {} mtu {}, local {}, control {}, ports: {}",
        config.device.name,
        mtus.device.0,
        config.underlay.locals_text(),
        config.control_socket.display(),
        ports.join(", ")
    )
}

fn log_stats(shared: &Shared) {
    let report = lock(shared).switch.stats_report().to_string();
    for line in report.lines() {
        info!(target: "vxtund::stats", "{line}");
    }
}

/// Answers `vxtunctl` on the control socket, one request at a time, until stopped.
fn control_loop(sh: &Shared, control: &ControlSocket) -> Result<(), ()> {
    let mut poller = Poller::new(&[control.fd(), sh.stop.fd()]);
    loop {
        if let Some(end) = wait_unless_stopped(&mut poller, 1, "the control socket") {
            return end;
        }
        let served = control.serve_one(|text| {
            let response = match Request::parse(text) {
                Ok(Request::Reload) => match reload(sh) {
                    Ok(summary) => Response::ok(summary),
                    Err(e) => Response::error(e),
                },
                Ok(request) if request.is_edit() => {
                    let response = edit_flows(sh, &request);
                    if response.ok {
                        info!(
                            request = text.lines().next().unwrap_or(""),
                            "flows changed: {}",
                            response.text.trim()
                        );
                    }
                    response
                }
                Ok(request) => {
                    control::execute(&mut lock(sh).switch, &request, sh.started, Instant::now())
                }
                Err(e) => Response::error(e),
            };
            response.encode()
        });
        if let Err(e) = served {
            warn!("serving a control request: {e}");
        }
    }
}

/// Applies a flow edit: the new table is built without holding the switch, then swapped in.
fn edit_flows(sh: &Shared, request: &Request) -> Response {
    let mut in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
    match control::edit(&in_force.config.ports, &in_force.flows, request) {
        Ok(change) => {
            let flows = change.table.flows().to_vec();
            let old = lock(sh)
                .switch
                .replace_table(change.table, &change.reset, Instant::now());
            drop(old);
            in_force.flows = flows;
            Response::ok(change.summary)
        }
        Err(e) => Response::error(e),
    }
}

/// Runs a data-path loop; a panic in it counts as a failure (logged) instead of silently
/// ending one direction while the daemon stays up.
fn guarded(name: &str, body: impl FnOnce() -> Result<(), ()>) -> Result<(), ()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(_) => {
            error!(thread = name, "data-path thread panicked");
            Err(())
        }
    }
}

/// A TAP read: the virtio-net header, then a superframe of up to 64 KiB of IP behind an
/// Ethernet header and one VLAN tag.
const TAP_BUFFER: usize = VNET_HDR_LEN + 18 + MAX_DATAGRAM;

/// Bytes read from the TAP before the batch is decided and sent. A batch is read, split and
/// handed to the kernel in turn; bounding its size keeps that working set in the CPU's cache
/// (32 superframes would be 2 MiB, twice over once split) while small frames still come in
/// batches of up to [`BATCH`].
const TAP_READ_BUDGET: usize = 192 * 1024;

/// Per-thread scratch space for GRE headers built per packet (checksum, sequence number).
type HeaderScratch = Vec<Encap>;

/// Where a frame to send lies: frame `i` of the batch just read, or a range of the thread's
/// extra buffer (answers and fragments the switch made).
#[derive(Clone, Copy)]
enum FrameRef {
    Batch(usize),
    Extra(usize, usize),
    /// A segment of a superframe read from the TAP, in the thread's segment buffer.
    Segment(usize, usize),
}

/// What one thread sends after deciding a batch: (frame, egress port) pairs, the extra frames
/// they may refer to, and scratch space for per-packet GRE headers. Reused batch after batch.
struct Plan {
    sends: Vec<(FrameRef, PortNo)>,
    extra: Vec<u8>,
    headers: HeaderScratch,
}

impl Plan {
    fn new() -> Plan {
        Plan {
            sends: Vec::with_capacity(BATCH * 4),
            extra: Vec::new(),
            headers: Vec::with_capacity(BATCH * 4),
        }
    }

    fn clear(&mut self) {
        self.sends.clear();
        self.extra.clear();
    }

    /// Records what the switch decided for `frame`.
    fn add(&mut self, frame: FrameRef, action: Action<'_>) {
        match action {
            Action::Forward(ports) => self.sends.extend(ports.iter().map(|&p| (frame, p))),
            Action::Fragments {
                ports,
                frames,
                ranges,
            } => {
                for r in ranges {
                    let start = self.extra.len();
                    self.extra.extend_from_slice(&frames[r.clone()]);
                    let end = self.extra.len();
                    self.sends
                        .extend(ports.iter().map(|&p| (FrameRef::Extra(start, end), p)));
                }
            }
            Action::Reply { port, frame } => {
                let start = self.extra.len();
                self.extra.extend_from_slice(frame);
                self.sends
                    .push((FrameRef::Extra(start, self.extra.len()), port));
            }
            Action::Drop(_) => {}
        }
    }
}

/// TAP -> switch -> tunnels. Returns on stop (Ok) or on an I/O error, logged (Err).
///
/// With offloads on, each read starts with a virtio-net header: a frame whose checksum was left
/// to us is finished in place, and a TCP/UDP superframe is split (before taking the lock) into
/// complete frames, each decided on its own.
fn tap_loop(sh: &Shared) -> Result<(), ()> {
    let mut bufs: Vec<Box<[u8]>> = (0..BATCH)
        .map(|_| vec![0u8; TAP_BUFFER].into_boxed_slice())
        .collect();
    let mut lens = [0usize; BATCH];
    // Per buffer: whether it was split, into which of `seg_ranges` (or refused).
    let mut shapes: Vec<Result<Range<usize>, ()>> = Vec::with_capacity(BATCH);
    let mut segs: Vec<u8> = Vec::new();
    let mut seg_ranges: Vec<Range<usize>> = Vec::new();
    let skip = if sh.tap.vnet() { VNET_HDR_LEN } else { 0 };
    let mut plan = Plan::new();
    let mut poller = Poller::new(&[sh.tap.fd(), sh.stop.fd()]);
    loop {
        if let Some(end) = wait_unless_stopped(&mut poller, 1, "the TAP device") {
            return end;
        }
        let (mut n, mut bytes) = (0, 0);
        while n < BATCH && bytes < TAP_READ_BUDGET {
            match sh.tap.recv(&mut bufs[n]) {
                Ok(len) if len >= skip => {
                    lens[n] = len;
                    bytes += len;
                    n += 1;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!("reading from the TAP device: {e}");
                    return Err(());
                }
            }
        }
        shapes.clear();
        segs.clear();
        seg_ranges.clear();
        for (buf, &len) in bufs.iter_mut().zip(&lens).take(n) {
            let first = seg_ranges.len();
            let shape = match (skip, VnetHdr::decode(buf)) {
                (0, _) => Ok(first..first),
                (_, Some(hdr)) => {
                    offload::segment(&hdr, &mut buf[skip..len], &mut segs, &mut seg_ranges)
                        .map(|_| first..seg_ranges.len())
                        .map_err(drop)
                }
                (_, None) => Err(()),
            };
            shapes.push(shape);
        }
        plan.clear();
        let plumbing = {
            let mut core = lock(sh);
            let core = &mut *core;
            let now = Instant::now();
            for (i, shape) in shapes.iter().enumerate() {
                match shape {
                    Err(()) => core.switch.record_drop(DropReason::BadOffload),
                    Ok(split) if split.is_empty() => {
                        let frame = &mut bufs[i][skip..lens[i]];
                        plan.add(
                            FrameRef::Batch(i),
                            core.switch.handle_frame(PortNo::LOCAL, frame, now),
                        );
                    }
                    Ok(split) => {
                        core.switch.record_split(split.len());
                        let mut first = true;
                        for r in &seg_ranges[split.clone()] {
                            // The segments share their headers: the first one's decision
                            // holds for the rest.
                            let action = if !first && core.switch.can_repeat(PortNo::LOCAL, r.len())
                            {
                                core.switch.repeat(r.len())
                            } else {
                                core.switch
                                    .handle_frame(PortNo::LOCAL, &mut segs[r.clone()], now)
                            };
                            first = false;
                            plan.add(FrameRef::Segment(r.start, r.end), action);
                        }
                    }
                }
            }
            Arc::clone(&core.plumbing)
        };
        let Plan {
            sends,
            extra,
            headers,
        } = &mut plan;
        deliver(sh, &plumbing, sends, headers, |r| match r {
            FrameRef::Batch(i) => &bufs[i][skip..lens[i]],
            FrameRef::Extra(a, b) => &extra[a..b],
            FrameRef::Segment(a, b) => &segs[a..b],
        });
    }
}

/// Tunnels -> switch -> TAP or other tunnels. Returns like [`tap_loop`]. After a reload it
/// polls the new set of sockets.
fn net_loop(sh: &Shared) -> Result<(), ()> {
    let mut batch = RecvBatch::default();
    let mut inner: Vec<Range<usize>> = Vec::new();
    let mut plan = Plan::new();
    let mut retired: Option<Arc<Plumbing>> = None;
    loop {
        sh.sockets_changed.clear();
        let (generation, plumbing) = {
            let core = lock(sh);
            (core.generation, Arc::clone(&core.plumbing))
        };
        // What a reload retired may still hold datagrams: read them once before letting go.
        if let Some(old) = retired.take() {
            for socket in old.sockets.iter().filter(|s| s.receives()) {
                if !plumbing.sockets.iter().any(|n| Arc::ptr_eq(n, socket)) {
                    for _ in 0..BATCH {
                        if receive(sh, socket, &mut batch, &mut inner, &mut plan)? == 0 {
                            break;
                        }
                    }
                }
            }
        }
        let receiving: Vec<&UnderlaySocket> = plumbing
            .sockets
            .iter()
            .map(|s| &**s)
            .filter(|s| s.receives())
            .collect();
        let mut fds: Vec<i32> = receiving.iter().map(|s| s.fd()).collect();
        fds.extend([sh.sockets_changed.fd(), sh.stop.fd()]);
        let (changed, stop) = (fds.len() - 2, fds.len() - 1);
        let mut poller = Poller::new(&fds);
        loop {
            if let Some(end) = wait_unless_stopped(&mut poller, stop, "the underlay sockets") {
                return end;
            }
            let reloaded = poller.ready(changed) && {
                sh.sockets_changed.clear();
                sh.generation.load(Ordering::Acquire) != generation
            };
            // One batch per ready socket per wake-up: a busy socket cannot starve the others
            // or the stop signal (poll is level-triggered, so the rest is read next pass).
            for (s, socket) in receiving.iter().enumerate() {
                if poller.ready(s) {
                    receive(sh, socket, &mut batch, &mut inner, &mut plan)?;
                }
            }
            if reloaded {
                break;
            }
        }
        drop(receiving);
        retired = Some(plumbing);
    }
}

/// Reads one batch from `socket`, decides it, and sends what the switch says. Returns how many
/// datagrams it read.
fn receive(
    sh: &Shared,
    socket: &UnderlaySocket,
    batch: &mut RecvBatch,
    inner: &mut Vec<Range<usize>>,
    plan: &mut Plan,
) -> Result<usize, ()> {
    let n = match socket.recv_batch(batch) {
        Ok(n) => n,
        Err(e) if is_fatal(&e) => {
            error!(local = %socket.local(), "receiving from the underlay: {e}");
            return Err(());
        }
        Err(e) => {
            warn!(local = %socket.local(), "receiving from the underlay: {e}");
            0
        }
    };
    plan.clear();
    let plumbing = {
        let mut core = lock(sh);
        let core = &mut *core;
        let now = Instant::now();
        inner.clear();
        inner.resize(n, 0..0);
        for (i, range) in inner.iter_mut().enumerate() {
            let Some((src, packet)) = batch.get_mut(i) else {
                continue;
            };
            let len = packet.len();
            let sw = &mut core.switch;
            let (action, start) = match socket.kind() {
                SocketKind::Udp(port) => {
                    (sw.handle_vxlan(port, src, packet, now), vxlan::HEADER_LEN)
                }
                SocketKind::Gre => {
                    // Raw IPv4 sockets deliver the IP header too; IPv6 ones do not.
                    let skip = if src.is_ipv4() {
                        ipv4_header_len(packet)
                    } else {
                        0
                    };
                    let (action, offset) = sw.handle_gre(src, &mut packet[skip.min(len)..], now);
                    (action, skip.saturating_add(offset))
                }
            };
            *range = start..len;
            plan.add(FrameRef::Batch(i), action);
        }
        Arc::clone(&core.plumbing)
    };
    let Plan {
        sends,
        extra,
        headers,
    } = plan;
    let batch = &*batch;
    deliver(sh, &plumbing, sends, headers, |r| match r {
        FrameRef::Batch(i) => batch
            .get(i)
            .and_then(|(_, p)| p.get(inner[i].clone()))
            .unwrap_or(&[]),
        FrameRef::Extra(a, b) => &extra[a..b],
        FrameRef::Segment(..) => &[],
    });
    Ok(n)
}

/// Waits for `poller`; `Some` when the thread must end: `Ok` on the stop signal (descriptor
/// `stop`), `Err` (logged) when the wait itself fails.
fn wait_unless_stopped(poller: &mut Poller, stop: usize, what: &str) -> Option<Result<(), ()>> {
    if let Err(e) = poller.wait() {
        error!("waiting for {what}: {e}");
        return Some(Err(()));
    }
    poller.ready(stop).then_some(Ok(()))
}

/// Whether a receive error means the descriptor itself is broken (rather than one packet).
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EINVAL | libc::EFAULT)
    )
}

/// The core, also after a thread panicked while holding it: that panic stops the daemon
/// anyway (see `guarded`), and the counters stay readable for the final report.
fn lock(sh: &Shared) -> MutexGuard<'_, Core> {
    sh.core
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Length of the IPv4 header at the start of `packet`; past the end when it is malformed, so
/// that what follows is empty and counted as a truncated GRE packet.
fn ipv4_header_len(packet: &[u8]) -> usize {
    match packet.first() {
        Some(&b) if usize::from(b & 0x0f) * 4 >= IPV4_HEADER_LEN => usize::from(b & 0x0f) * 4,
        _ => usize::MAX,
    }
}

/// Whether a frame goes out with DF under `df`: `inherit` copies an inner IPv4 packet's DF and
/// sets it for everything else.
fn outer_df(df: DfMode, frame: &[u8]) -> bool {
    match df {
        DfMode::Set => true,
        DfMode::Unset => false,
        DfMode::Inherit => IpView::parse(frame).is_none_or(|ip| ip.dont_fragment()),
    }
}

/// Sends frame `f` out of port `p` for every `(f, p)` in `sends`.
fn deliver<'a>(
    sh: &Shared,
    plumbing: &Plumbing,
    sends: &[(FrameRef, PortNo)],
    scratch: &mut HeaderScratch,
    frame: impl Fn(FrameRef) -> &'a [u8] + Copy,
) {
    // Vec::new() does not allocate: only a batch with failed sends pays for this list.
    let mut failed: Vec<PortNo> = Vec::new();
    let mut note = |port: PortNo, e: io::Error| {
        failed.push(port);
        tracing::debug!(port = %port, "send failed: {e}");
    };
    scratch.clear();
    scratch.resize(sends.len(), Encap::EMPTY);
    // Frames for the TAP: with offloads, consecutive TCP segments (and UDP datagrams, where the
    // TAP takes UDP superframes) of a flow go as one write.
    let mut local: Vec<&[u8]> = Vec::new();
    for (j, &(f, port)) in sends.iter().enumerate() {
        match plumbing.egress(port) {
            Some(Egress::Local) if sh.tap.vnet() => local.push(frame(f)),
            Some(Egress::Local) => {
                if let Err(e) = sh.tap.send(frame(f)) {
                    note(port, e);
                }
            }
            Some(Egress::Tunnel {
                per_packet: Some(g),
                header,
                ..
            }) => {
                // The outer IPv4 header, if any, is the tunnel's.
                scratch[j] = *header;
                g.encode(frame(f), &mut scratch[j]);
            }
            _ => {}
        }
    }
    let mut coalesced: Vec<usize> = Vec::new();
    if !local.is_empty() {
        let mut runs = Vec::new();
        offload::plan_runs(&local, sh.tap.offloads().udp, &mut runs);
        for run in &runs {
            let frames = &local[run.first..run.first + run.count];
            let sent = if run.count == 1 {
                sh.tap.send(frames[0])
            } else {
                sh.tap.send_superframe(
                    &run.hdr,
                    &run.headers[..run.headers_len],
                    frames.iter().map(|f| offload::run_payload(run, f)),
                )
            };
            match sent {
                Ok(_) if run.count > 1 => coalesced.push(run.count),
                Ok(_) => {}
                // A superframe the kernel refuses still goes out, frame by frame.
                Err(_) if run.count > 1 => {
                    for f in frames {
                        if let Err(e) = sh.tap.send(f) {
                            note(PortNo::LOCAL, e);
                        }
                    }
                }
                Err(e) => note(PortNo::LOCAL, e),
            }
        }
    }
    let scratch = &*scratch;
    for (s, socket) in plumbing.sockets.iter().enumerate() {
        let items =
            sends
                .iter()
                .enumerate()
                .filter_map(|(j, &(f, port))| match plumbing.egress(port) {
                    Some(Egress::Tunnel {
                        sockets,
                        df,
                        dst,
                        header,
                        per_packet,
                    }) => {
                        let payload = frame(f);
                        let chosen = if sockets[0] == sockets[1] || outer_df(*df, payload) {
                            sockets[0]
                        } else {
                            sockets[1]
                        };
                        if chosen != s {
                            return None;
                        }
                        let header = match per_packet {
                            Some(_) => scratch[j].for_socket(socket),
                            None => header.for_socket(socket),
                        };
                        Some(SendItem {
                            dst,
                            header,
                            payload,
                            tag: port.0,
                        })
                    }
                    _ => None,
                });
        socket.send_batch(items, |tag, e| note(PortNo(tag), e));
    }
    if !failed.is_empty() || !coalesced.is_empty() {
        let mut core = lock(sh);
        for port in failed {
            core.switch.record_tx_error(port);
        }
        for segments in coalesced {
            core.switch.record_coalesced(segments);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(df: bool) -> Vec<u8> {
        let mut ip = etherparse::Ipv4Header::new(
            0,
            64,
            etherparse::IpNumber::UDP,
            [1, 1, 1, 1],
            [2, 2, 2, 2],
        )
        .unwrap();
        ip.dont_fragment = df;
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .udp(1, 2)
            .write(&mut f, b"x")
            .unwrap();
        f
    }

    #[test]
    fn outer_df_follows_the_tunnel_mode() {
        let arp = crate::wire::vectors::KERNEL_ARP[8..].to_vec();
        for frame in [udp(true), udp(false), arp.clone()] {
            assert!(outer_df(DfMode::Set, &frame));
            assert!(!outer_df(DfMode::Unset, &frame));
        }
        assert!(outer_df(DfMode::Inherit, &udp(true)), "inner DF copied");
        assert!(
            !outer_df(DfMode::Inherit, &udp(false)),
            "inner DF clear copied"
        );
        assert!(outer_df(DfMode::Inherit, &arp), "non-IP: set");
    }

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

    #[test]
    fn a_reload_keeps_the_sockets_that_still_fit_and_opens_only_new_ones() {
        // Unprivileged: UDP on loopback, on a port of this test's own.
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let config = |tunnels: &str| {
            let text = format!("[underlay]\nlocal = \"127.0.0.1\"\n{tunnels}");
            Config::parse(std::path::Path::new("t.toml"), &text).unwrap()
        };
        let tunnel = |name: &str, last: u8, extra: &str| {
            format!(
                "[[tunnel]]\nname = \"{name}\"\ntype = \"vxlan\"\nremote = \"127.0.0.{last}\"\n\
                 dst_port = {port}\n{extra}"
            )
        };
        let first = config(&(tunnel("a", 2, "") + &tunnel("b", 3, "df = \"inherit\"\n")));
        let old = Plumbing::build(&first, None).unwrap();
        assert_eq!(old.sockets.len(), 2, "DF set and DF clear");
        let df_set = old.sockets.iter().find(|s| s.df()).unwrap();

        let second = config(&(tunnel("a", 2, "") + &tunnel("c", 4, "vni = 5\n")));
        let new = Plumbing::build(&second, Some(&old)).unwrap();
        assert_eq!(new.sockets.len(), 1, "only DF set is still needed");
        assert!(
            Arc::ptr_eq(&new.sockets[0], df_set),
            "and it is the same socket"
        );
        assert!(new.egress(PortNo(3)).is_some() && new.egress(PortNo(4)).is_none());
    }

    #[test]
    fn largest_pings_subtract_the_icmp_headers() {
        assert_eq!(
            largest_pings(1450),
            "largest ping -s 1422 / ping -6 -s 1402"
        );
    }
}
