//! Wiring: opens the TAP and the underlay sockets, runs the data path, handles signals.
//!
//! The data path ([`datapath`]) is one worker per TAP queue (`[device] queues`, one per core by
//! default), each two threads, one per direction (or one thread for both, `[device]
//! worker_threads = 1`), each a tight loop that moves a batch of frames per wake-up: read the
//! batch, lock its switch shard once to decide every frame, then send. A worker reads its own
//! TAP queue and its own VXLAN sockets (`SO_REUSEPORT`, spread by the outer source port), and
//! writes to its own TAP queue, so the kernel keeps each flow on one worker. Another thread
//! answers `vxtunctl` on the control socket ([`vxtunctl`]). The main thread (here) waits for
//! signals: SIGTERM/SIGINT stop, SIGUSR1 logs every counter, SIGHUP reloads the config
//! ([`reload`]).
//!
//! Every data-path thread decides with a shard of the switch of its own ([`Core`]: the switch's
//! counters are per shard; the flow table, the MAC table and the rate limiters are shared, see
//! [`Switch::shard`]), together with the underlay sockets and each port's egress
//! ([`plumbing`]), under a lock that only the control planes' changes take too: no data-path
//! thread ever waits for another. A read sums the shards' counters without their locks; a reload builds the new switch and sockets beside
//! the running ones (binding only the sockets it lacks) and swaps them into every shard; a flow
//! edit builds the new table outside the locks and only swaps it in. So every frame is decided
//! and sent under one whole configuration, old or new, and the data path waits only for the
//! swap. Every control plane asks the running switch through one set of operations ([`ops`]).

mod datapath;
mod evpn;
mod fastpath;
mod metrics;
mod mtu;
mod notify;
mod openflow;
mod ops;
mod plumbing;
mod pmtu;
mod reload;
mod vxtunctl;

pub use mtu::{describe, MtuSource, Mtus};

use datapath::{net_loop, tap_loop, worker_loop};
use mtu::{largest_pings, warn_about};
use notify::Role;
use plumbing::Plumbing;
use reload::reload;
use vxtunctl::control_loop;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use thiserror::Error;
use tracing::{error, info, warn};

use crate::config::{Config, FailMode, FlowSpread, InnerChecksum};
use crate::fdb::MacTable;
use crate::flow::{Flow, FlowTable};
use crate::io::control::{ControlError, ControlSocket};
use crate::io::socket::{SocketError, SocketKind};
use crate::io::tap::{MacChoice, Rings, Tap, TapError};
use crate::io::{Event, Poller};
use crate::openflow::agent::{AsyncEvent, RoleArbiter};
use crate::spread::Balancer;
use crate::switch::{Generation, PortKind, Switch, UnderlayMtu};

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
    #[error("control socket {0}")]
    Control(#[from] ControlError),
    /// An OpenFlow listener.
    #[error("OpenFlow listener {0}")]
    OpenFlow(ControlError),
    /// The metrics listener.
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// A data-path thread stopped on an I/O error (logged when it happened).
    #[error("the data path stopped on an I/O error (see the log above)")]
    DataPath,
    /// OpenFlow's TLS files.
    #[error("OpenFlow TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// `fast_path = "on"` and the kernel fast path could not be set up.
    #[error("fast_path = \"on\", but the kernel fast path could not be set up: {0}")]
    FastPath(String),
}

/// What one data-path thread decides and sends with (its shard of the switch); swapped whole on
/// reload.
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
    /// One core per data-path thread (worker `w`'s TAP thread at [`tap_core`], its underlay
    /// thread at [`net_core`]), and a last one for the frames controllers send (PACKET_OUT).
    cores: Vec<Mutex<Core>>,
    /// The counters each core counts into, in core order: what reads add up, without the
    /// cores' locks. Replaced (see [`Shared::publish_counters`]) only with every core locked.
    counters_of: Mutex<Vec<Arc<crate::switch::Counters>>>,
    /// Data-path workers: one per TAP queue.
    workers: usize,
    /// See [`crate::config::DeviceConfig::batch_wait_us`].
    batch_wait: Option<std::time::Duration>,
    /// See [`crate::config::DeviceConfig::busy_poll_us`].
    busy_poll: Option<std::time::Duration>,
    /// See [`crate::config::DeviceConfig::worker_threads`].
    worker_threads: u8,
    /// Whether received VXLAN frames are checksummed before coalescing.
    inner_checksum: InnerChecksum,
    /// With `flow_spread = "balance"`: the TCP connections and their turns.
    balancer: Option<Balancer>,
    /// Bumped (with the core's generation) on reload; read without the lock.
    generation: AtomicU64,
    /// Raised after a reload swapped the sockets: one per worker, each cleared by its own
    /// underlay thread (one shared event would wake only the first to clear it).
    sockets_changed: Vec<Event>,
    /// Raised when a send failed with EMSGSIZE: the path MTU watcher reads the MTUs now.
    pmtu_check: Event,
    tap: Tap,
    stop: Event,
    /// Its lock also serialises every change: reloads and flow edits.
    in_force: Mutex<InForce>,
    started: Instant,
    /// The OpenFlow datapath id (configured or derived).
    datapath_id: u64,
    /// The TAP's MAC address, as OpenFlow's PORT_DESC reports it.
    tap_mac: [u8; 6],
    /// What the switch tells its controllers (packet-ins from the data path, flows removed,
    /// ports changed): bounded, never waited on; the OpenFlow thread takes the other end.
    events: tokio::sync::mpsc::Sender<AsyncEvent>,
    events_rx: Mutex<Option<tokio::sync::mpsc::Receiver<AsyncEvent>>>,
    /// Events dropped because the queue was full.
    events_dropped: AtomicU64,
    /// The master election among OpenFlow sessions.
    roles: Mutex<RoleArbiter>,
    /// The OpenFlow side while it runs, for `vxtunctl show`.
    plane: Mutex<Option<std::sync::Weak<openflow::Plane>>>,
    /// The data-path threads' signs of life (by core), for the watchdog.
    beats: Vec<notify::Heartbeat>,
    /// How long an idle data-path thread may sleep (when systemd's watchdog is on).
    tick: Option<std::time::Duration>,
    /// Reloads and refused metrics requests, for the metrics.
    counters: metrics::DaemonCounters,
    /// The data path's open incidents (underlay faults), logged once for every thread.
    faults: datapath::SharedFaults,
    /// The kernel fast path, when it is in force.
    fast_path: Option<fastpath::FastPath>,
    /// Why it is not, when it is not (for `show`).
    fast_path_off: String,
    /// The other threads' signs of life, for the watchdog.
    lives: notify::Beats,
    /// The smallest MTU of the TAP and the tunnels: a TCP superframe received whole from a
    /// same-host sender is split to it.
    device_mtu: std::sync::atomic::AtomicUsize,
    /// The MSS of the SYNs the switch forwarded: a superframe received whole is cut no larger
    /// than its sender's segments (see [`crate::segments`]).
    segments: Arc<crate::segments::SegmentSizes>,
    /// The BGP EVPN control plane (`[evpn]`).
    evpn: Option<Arc<evpn::Plane>>,
    /// OpenFlow's TLS configuration (`[openflow] private_key`, ...), read at start and again
    /// on every reload; each new connection takes the one in force.
    tls: Mutex<Option<Arc<crate::tls::Material>>>,
}

/// How many controller events may wait for the OpenFlow thread.
const EVENT_QUEUE: usize = 4096;

impl Shared {
    /// Queues an event for the controllers; when the queue is full it is dropped and counted.
    fn publish(&self, event: AsyncEvent) {
        if self.events.try_send(event).is_err() {
            self.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whole seconds since the daemon started: the coarse clock of the flow balancer.
    fn uptime_secs(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX)
    }
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
    let queues = config.device.queue_count();
    let plumbing = Plumbing::build(&config, None, queues)?;
    // One line per receiving VXLAN socket; the send-only ones of the source-port pools (RFC
    // 7348 entropy) are summed up in one line per pool.
    let word = |on: bool| if on { "on" } else { "off" };
    let mut pools: Vec<(std::net::IpAddr, bool, bool, usize)> = Vec::new();
    for socket in &plumbing.sockets {
        let SocketKind::Udp(port) = socket.kind() else {
            continue;
        };
        let (gso, gro) = socket.offloads();
        if socket.receives() {
            info!(
                local = %socket.local(),
                port,
                df = socket.df(),
                "VXLAN socket: UDP GSO {}, UDP GRO {}",
                word(gso),
                word(gro)
            );
            continue;
        }
        match pools
            .iter_mut()
            .find(|p| p.0 == socket.local() && p.1 == socket.df())
        {
            Some(p) => p.3 += 1,
            None => pools.push((socket.local(), socket.df(), gso, 1)),
        }
    }
    for (local, df, gso, n) in pools {
        info!(
            local = %local,
            df,
            "VXLAN send pool: {n} sockets on their own source ports (entropy), UDP GSO {}",
            word(gso)
        );
    }
    let tls = match &config.openflow.tls {
        None => None,
        Some(files) => {
            let material = crate::tls::Material::load(files)?;
            info!("OpenFlow {}", material.summary);
            Some(Arc::new(material))
        }
    };
    let control = ControlSocket::bind(&config.control_socket, config.control_group.as_deref())?;
    let openflow = openflow::Listeners::bind(&config).map_err(DaemonError::OpenFlow)?;
    let metrics_listener = config.metrics_listen.map(metrics::bind).transpose()?;
    let watchdog = notify::Watchdog::from_env();
    let device_mtu = mtus.device.0;
    let tap = Tap::open(
        &config.device.name,
        device_mtu,
        &config.device.addresses,
        config.device.bridge.as_deref(),
        config.device.offload,
        tap_mac(&config),
        Rings {
            queues,
            txqueuelen: config.device.txqueuelen,
        },
    )?;
    let workers = tap.queues();
    if workers < queues {
        warn!(
            device = tap.name(),
            "the existing device has a single queue (made without multi-queue): one data-path \
             worker instead of {queues}"
        );
    }
    let offloads = tap.offloads();
    info!(
        device = tap.name(),
        created = tap.created(),
        mtu = device_mtu,
        queues = workers,
        "TAP device ready, {workers} data-path worker(s), offloads: {}",
        match (config.device.offload, offloads.tcp, offloads.udp) {
            (false, _, _) => "off (as configured)",
            (true, false, _) => "none (the kernel refused them)",
            (true, true, false) => "checksum, TSO4, TSO6 (no USO in this kernel)",
            (true, true, true) => "checksum, TSO4, TSO6, USO4, USO6",
        }
    );

    let split_mtu = mtus.split_mtu();
    let generation = Arc::new(Generation::new());
    let (fast_path, fast_path_off) = match fastpath::setup(&config, tap.name(), &generation)? {
        Ok(fp) => (Some(fp), String::new()),
        Err(why) => (None, why),
    };
    let segments = Arc::new(crate::segments::SegmentSizes::new());
    let cores: Vec<Core> = {
        let mut switch = new_switch(&config, &mtus, config.flows.clone(), &segments);
        switch.set_generation(Arc::clone(&generation));
        let plumbing = Arc::new(plumbing);
        (0..2 * workers + 1)
            .map(|_| Core {
                switch: switch.shard(),
                plumbing: Arc::clone(&plumbing),
                generation: 0,
            })
            .collect()
    };
    let ready = ready_line(&config, &mtus);
    let (events, events_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
    let shared = Arc::new(Shared {
        events,
        events_rx: Mutex::new(Some(events_rx)),
        events_dropped: AtomicU64::new(0),
        roles: Mutex::new(RoleArbiter::default()),
        plane: Mutex::new(None),
        datapath_id: openflow::datapath_id(&config),
        tap_mac: crate::io::netdev::mac_address(tap.name()).unwrap_or_default(),
        evpn: config.evpn.as_ref().map(|e| Arc::new(evpn::Plane::new(e))),
        tls: Mutex::new(tls),
        counters_of: Mutex::new(
            cores
                .iter()
                .map(|c| Arc::clone(c.switch.counters()))
                .collect(),
        ),
        cores: cores.into_iter().map(Mutex::new).collect(),
        workers,
        worker_threads: config.device.worker_threads,
        batch_wait: (config.device.batch_wait_us > 0)
            .then(|| std::time::Duration::from_micros(u64::from(config.device.batch_wait_us))),
        busy_poll: (config.device.busy_poll_us > 0)
            .then(|| std::time::Duration::from_micros(u64::from(config.device.busy_poll_us))),
        inner_checksum: config.underlay.inner_checksum,
        balancer: (config.underlay.flow_spread == FlowSpread::Balance).then(Balancer::new),
        generation: AtomicU64::new(0),
        sockets_changed: (0..workers)
            .map(|_| Event::new())
            .collect::<Result<_, _>>()
            .map_err(DaemonError::Signals)?,
        pmtu_check: Event::new().map_err(DaemonError::Signals)?,
        tap,
        stop: Event::new().map_err(DaemonError::Signals)?,
        in_force: Mutex::new(InForce {
            flows: config.flows.clone(),
            config,
            mtus,
        }),
        started: Instant::now(),
        beats: (0..2 * workers).map(|_| Default::default()).collect(),
        tick: watchdog.map(notify::Watchdog::tick),
        counters: metrics::DaemonCounters::new(),
        faults: Default::default(),
        fast_path,
        fast_path_off,
        lives: Default::default(),
        device_mtu: std::sync::atomic::AtomicUsize::new(split_mtu),
        segments,
    });

    println!("{ready}");
    use std::io::Write;
    let _ = io::stdout().flush();

    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let of_shared = Arc::clone(&shared);
        let evpn_shared = Arc::clone(&shared);
        let metrics_shared = Arc::clone(&shared);
        let shared = &*shared;
        let handle = &handle;
        let failed = &failed;
        let stop_all = move |result: Result<(), ()>| {
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            shared.stop.raise();
            handle.close();
        };
        let mut data_threads = Ok(());
        for w in 0..shared.workers {
            type Loop = fn(&Shared, usize) -> Result<(), ()>;
            let loops: &[(String, Loop)] = match shared.worker_threads {
                1 => &[(format!("worker-{w}"), worker_loop)],
                _ => &[
                    (shared.thread_name(tap_core(w)), tap_loop),
                    (shared.thread_name(net_core(w)), net_loop),
                ],
            };
            for (name, body) in loops.iter().cloned() {
                let spawned = std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, move || stop_all(guarded(&name, || body(shared, w))));
                if let Err(e) = spawned {
                    data_threads = Err(e);
                    break;
                }
            }
            if data_threads.is_err() {
                break;
            }
        }
        let pmtu_thread = std::thread::Builder::new()
            .name("pmtu".into())
            .spawn_scoped(scope, move || {
                stop_all(guarded("pmtu", || pmtu::pmtu_loop(shared)))
            });
        let sweeper_thread = match shared.fast_path {
            None => Ok(None),
            Some(_) => std::thread::Builder::new()
                .name("fastpath".into())
                .spawn_scoped(scope, move || {
                    stop_all(guarded("fastpath", || fastpath::sweep_loop(shared)))
                })
                .map(Some),
        };
        let control = &control;
        let control_thread = std::thread::Builder::new()
            .name("control".into())
            .spawn_scoped(scope, move || {
                stop_all(guarded("control", || control_loop(shared, control)))
            });
        let openflow_thread = match openflow.is_empty() && !openflow::has_controllers(shared) {
            true => Ok(None),
            false => std::thread::Builder::new()
                .name("openflow".into())
                .spawn_scoped(scope, move || {
                    stop_all(guarded("openflow", || {
                        openflow::serve(of_shared, openflow).map_err(|e| {
                            error!("OpenFlow: {e}");
                        })
                    }))
                })
                .map(Some),
        };
        let evpn_thread = match shared.evpn.is_some() {
            false => Ok(None),
            true => std::thread::Builder::new()
                .name("evpn".into())
                .spawn_scoped(scope, move || {
                    stop_all(guarded("evpn", || evpn::serve(evpn_shared)))
                })
                .map(Some),
        };
        let metrics_thread = match metrics_listener {
            None => Ok(None),
            Some(listener) => std::thread::Builder::new()
                .name("metrics".into())
                .spawn_scoped(scope, move || {
                    stop_all(guarded("metrics", || {
                        metrics::serve(metrics_shared, listener).map_err(|e| {
                            error!("metrics: {e}");
                        })
                    }))
                })
                .map(Some),
        };
        // Every thread started must live: the watchdog watches each.
        let watched: Vec<Role> = [
            (Role::Control, true),
            (Role::Pmtu, true),
            (Role::FastPath, matches!(sweeper_thread, Ok(Some(_)))),
            (Role::OpenFlow, matches!(openflow_thread, Ok(Some(_)))),
            (Role::Metrics, matches!(metrics_thread, Ok(Some(_)))),
            (Role::Evpn, matches!(evpn_thread, Ok(Some(_)))),
        ]
        .into_iter()
        .filter_map(|(role, runs)| runs.then_some(role))
        .collect();
        let watchdog_thread = match watchdog {
            None => Ok(None),
            Some(dog) => std::thread::Builder::new()
                .name("watchdog".into())
                .spawn_scoped(scope, move || {
                    stop_all(guarded("watchdog", || {
                        notify::watchdog_loop(shared, dog, &watched)
                    }))
                })
                .map(Some),
        };
        if data_threads.is_err()
            || pmtu_thread.is_err()
            || sweeper_thread.is_err()
            || control_thread.is_err()
            || openflow_thread.is_err()
            || metrics_thread.is_err()
            || evpn_thread.is_err()
            || watchdog_thread.is_err()
        {
            error!("could not start the data-path threads");
            stop_all(Err(()));
        } else {
            notify::ready(&notify::status_line(shared));
        }
        for signal in signals.forever() {
            match signal {
                SIGUSR1 => log_stats(shared),
                SIGHUP => {
                    info!("SIGHUP: reloading the configuration");
                    let _ = shared.reload();
                }
                _ => {
                    info!(signal, "stopping");
                    break;
                }
            }
        }
        notify::stopping();
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

/// The TAP's MAC: `device.mac` (also on an existing device), else derived, stable across
/// restarts, for a device vxtund creates (a persistent device keeps the MAC it has).
fn tap_mac(config: &Config) -> MacChoice {
    match config.device.mac {
        Some(mac) => MacChoice::Always(mac.0),
        None => {
            let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
            MacChoice::OnCreate(config.device.mac_for(machine.trim(), &config.underlay).0)
        }
    }
}

/// The switch for `config` with `flows`, and the tunnel MTUs of `mtus`, recording SYNs' MSS
/// into `segments`.
fn new_switch(
    config: &Config,
    mtus: &Mtus,
    flows: Vec<Flow>,
    segments: &Arc<crate::segments::SegmentSizes>,
) -> Switch {
    let mut switch = Switch::new(
        config.ports.clone(),
        FlowTable::new(flows),
        MacTable::new(config.fdb_max_entries, config.fdb_ageing),
    );
    switch.set_segment_sizes(Arc::clone(segments));
    for &(port, underlay, source, mtu) in &mtus.tunnels {
        switch.set_mtu(port, mtu);
        let source = source.word();
        switch.set_underlay_mtu(
            port,
            UnderlayMtu {
                mtu: underlay,
                source,
            },
        );
    }
    let of = &config.openflow;
    switch.set_packet_in_limit(of.packet_in_rate, of.packet_in_burst);
    // Standalone with controllers: `normal` until one connects (and whenever none is).
    switch.set_fail_open(!of.controllers.is_empty() && of.fail_mode == FailMode::Standalone);
    switch
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
    let report = shared.query(|sw| sw.stats_report().to_string());
    for line in report.lines() {
        info!(target: "vxtund::stats", "{line}");
    }
}

/// Runs a thread's body; a panic in it counts as a failure (logged, with the thread's name)
/// instead of silently ending one thread while the daemon stays up.
fn guarded(name: &str, body: impl FnOnce() -> Result<(), ()>) -> Result<(), ()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(_) => {
            error!(thread = name, "thread panicked");
            Err(())
        }
    }
}

/// Core `i`, also after a thread panicked while holding it: that panic stops the daemon anyway
/// (see `guarded`), and the counters stay readable for the final report.
fn lock(sh: &Shared, i: usize) -> MutexGuard<'_, Core> {
    sh.cores[i]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every core, locked in order: for the control planes' reads and swaps. Data-path threads
/// lock only their own core, so this waits at most for each one's batch in turn.
fn lock_all(sh: &Shared) -> Vec<MutexGuard<'_, Core>> {
    (0..sh.cores.len()).map(|i| lock(sh, i)).collect()
}

/// The core of worker `w`'s TAP thread.
fn tap_core(w: usize) -> usize {
    2 * w
}

/// The core of worker `w`'s underlay thread.
fn net_core(w: usize) -> usize {
    2 * w + 1
}

impl Shared {
    /// The core of the frames controllers send (PACKET_OUT).
    fn control_core(&self) -> usize {
        self.cores.len() - 1
    }

    /// The name of the side that decides with core `i` (`tap-rx-0`, `net-rx-0`, ...;
    /// `control` for PACKET_OUTs), also its thread's when each direction has one
    /// (`worker_threads = 2`).
    fn thread_name(&self, i: usize) -> String {
        match i {
            i if i == self.control_core() => "control".to_owned(),
            i if i % 2 == 0 => format!("tap-rx-{}", i / 2),
            i => format!("net-rx-{}", i / 2),
        }
    }

    /// The name of the thread that bumps data-path heartbeat `i` (see [`Shared::beats`]).
    fn beat_name(&self, i: usize) -> String {
        match self.worker_threads {
            1 => format!("worker-{} ({})", i / 2, self.thread_name(i)),
            _ => self.thread_name(i),
        }
    }
}

/// Waits for `poller` in a data-path thread (`thread`: its core); `Some` when the thread must
/// end: `Ok` on the stop signal (descriptor `stop`), `Err` (logged) when the wait itself
/// fails. It wakes at least every tick when systemd's watchdog is on, and each wake-up is a
/// heartbeat for the watchdog.
fn wait_turning(
    sh: &Shared,
    thread: usize,
    poller: &mut Poller,
    stop: usize,
    what: &str,
) -> Option<Result<(), ()>> {
    let waited = match sh.busy_poll {
        Some(spin) => poller.wait_spinning(spin, sh.tick),
        None => poller.wait_timeout(sh.tick),
    };
    if let Err(e) = waited {
        error!("waiting for {what}: {e}");
        return Some(Err(()));
    }
    sh.beats[thread].beat();
    poller.ready(stop).then_some(Ok(()))
}
