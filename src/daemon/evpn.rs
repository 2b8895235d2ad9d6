//! The BGP EVPN control plane's I/O shell (`[evpn]`): one thread with a single-threaded tokio
//! runtime running one task per neighbour (TCP to port 179, signed with TCP MD5 when the
//! neighbour has a `password`, reconnecting with backoff; vxtund only connects, it does not
//! listen for BGP, so there is no listener to key), a task that applies the table's effects to
//! the switch, and a task that watches the MACs learnt on the TAP side. The decisions are the sans-IO [`crate::bgp::Session`] and
//! [`crate::evpn::Table`]; nothing here is on the per-packet path, and the data path never
//! waits for BGP: the switch only sees ports swapped in (the reload path, [`super::reload`])
//! and remote MAC entries written into its MAC table.
//!
//! * A remote VTEP (type-3 route) becomes a VXLAN port `evpn-N` (N its port number, from
//!   [`FIRST_PORT`] up) in the split-horizon group `evpn`, so that a frame from one VTEP is
//!   never flooded to another (EVPN's split horizon; the VTEPs have the route too); it goes
//!   when the route is withdrawn. PORT_STATUS goes to OpenFlow controllers as for a reload.
//! * The MAC table is shared by every shard; it is reached through the shard of the
//!   controllers' frames (`control_core`), never a data-path thread's, so no data-path thread
//!   waits for this plane except on the MAC table's own lock, for a write.
//! * Remote MACs (type-2 routes) are remote entries of the MAC table: not aged, replaced by
//!   BGP. `normal` uses them; a static flow that outputs to a port decides before `normal`
//!   and so wins over an EVPN route to the same MAC.
//! * MACs learnt on the TAP side are advertised within [`LOCAL_SCAN`], withdrawn when they
//!   age out; on shutdown everything is withdrawn before the Cease NOTIFICATION.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use super::notify::{self, Role};
use super::{lock, Shared};
use crate::bgp::{CloseReason, Event, Session, SessionConfig, State};
use crate::config::{Config, EvpnConfig, Password};
use crate::evpn::{route, Effects, Outbox, Refusal, RemoteChanges, Table, TableConfig};
use crate::flow::PortNo;
use crate::io::tcp_md5;
use crate::switch::{Port, PortKind, PortOptions, VxlanTunnel};
use crate::wire::ethernet::Mac;

/// BGP's port.
pub const BGP_PORT: u16 = 179;
/// Dynamic VTEP ports are numbered from here up (below, the config's tunnels).
pub const FIRST_PORT: u32 = 4096;
/// The split-horizon group of the VTEP ports.
pub const GROUP: &str = "evpn";
/// How often the MACs learnt on the TAP side are compared with those advertised.
pub const LOCAL_SCAN: Duration = Duration::from_millis(200);
/// How long a TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection backoff: the first wait, doubled up to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// How long shutdown waits for the withdrawals and the NOTIFICATION to be written.
const GOODBYE: Duration = Duration::from_secs(1);
/// Changes to the table are applied to the switch at most this often (batching a burst).
const SETTLE: Duration = Duration::from_millis(20);

/// One neighbour's session, as listed.
#[derive(Debug, Clone)]
struct SessionStatus {
    neighbor: IpAddr,
    state: State,
    /// Since when in this state (Established: the uptime).
    since: Instant,
    peer_id: Option<std::net::Ipv4Addr>,
    updates: u64,
    /// Routes the peer holds from us.
    advertised: usize,
    end_of_rib: bool,
    last_error: Option<String>,
}

/// The EVPN control plane's state, shared with the control socket and the metrics.
pub(super) struct Plane {
    config: EvpnConfig,
    table: Mutex<Table>,
    sessions: Vec<Mutex<SessionStatus>>,
    /// The VTEP ports in force: VTEP -> port number.
    ports: Mutex<BTreeMap<IpAddr, PortNo>>,
    /// Raised when the table's remote side changed: the switch must follow.
    dirty: Notify,
    /// Bumped when our advertisements changed: every session syncs its peer.
    adverts: watch::Sender<u64>,
    updates_received: AtomicU64,
    /// Remote entries in the MAC table after the last apply (the table's MACs lead them by a
    /// batch).
    installed_macs: AtomicU64,
}

impl Plane {
    pub(super) fn new(config: &EvpnConfig) -> Plane {
        let now = Instant::now();
        Plane {
            table: Mutex::new(Table::new(TableConfig {
                vni: config.vni,
                vtep: config.vtep,
                router_id: config.router_id,
                route_targets: config.route_targets.clone(),
                max_routes: config.max_routes,
                max_vteps: config.max_vteps,
            })),
            sessions: config
                .neighbors
                .iter()
                .map(|n| {
                    Mutex::new(SessionStatus {
                        neighbor: n.address,
                        state: State::Idle,
                        since: now,
                        peer_id: None,
                        updates: 0,
                        advertised: 0,
                        end_of_rib: false,
                        last_error: None,
                    })
                })
                .collect(),
            ports: Mutex::new(BTreeMap::new()),
            dirty: Notify::new(),
            adverts: watch::channel(0).0,
            updates_received: AtomicU64::new(0),
            installed_macs: AtomicU64::new(0),
            config: config.clone(),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn session(&self, i: usize) -> MutexGuard<'_, SessionStatus> {
        self.sessions[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ports(&self) -> MutexGuard<'_, BTreeMap<IpAddr, PortNo>> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the switch side and the sessions what a change to the table means.
    fn follow(&self, effects: &Effects) {
        if effects.vteps || effects.macs {
            self.dirty.notify_one();
        }
        if effects.local {
            self.adverts.send_modify(|v| *v += 1);
        }
    }
}

/// Appends the VTEP ports in force to `config`'s (a reload keeps them).
pub(super) fn add_ports(sh: &Shared, config: &mut Config) {
    let Some(plane) = &sh.evpn else {
        return;
    };
    let ports = plane.ports().clone();
    let range = config.underlay.src_port_range;
    config.ports.extend(
        ports
            .iter()
            .map(|(&vtep, &no)| vtep_port(plane, vtep, no, range)),
    );
}

/// The port of a remote VTEP; it sends from `src_port_range`, the underlay's.
fn vtep_port(plane: &Plane, vtep: IpAddr, no: PortNo, src_port_range: Option<(u16, u16)>) -> Port {
    Port {
        no,
        name: format!("evpn-{}", no.0),
        kind: PortKind::Vxlan(VxlanTunnel {
            remote: vtep,
            vni: plane.config.vni,
            dst_port: plane.config.dst_port,
        }),
        options: PortOptions {
            split_horizon: Some(GROUP.to_owned()),
            src_port_range,
            ..Default::default()
        },
    }
}

/// Runs the control plane until the daemon stops; then withdraws everything.
pub(super) fn serve(shared: Arc<Shared>) -> Result<(), ()> {
    let Some(plane) = shared.evpn.clone() else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| warn!("EVPN: starting its runtime: {e}"))?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for i in 0..plane.sessions.len() {
            let (sh, stop) = (Arc::clone(&shared), stop_rx.clone());
            tasks.push(tokio::spawn(async move { neighbor(sh, i, stop).await }));
        }
        let (sh, stop) = (Arc::clone(&shared), stop_rx.clone());
        let applier = tokio::spawn(async move { apply_loop(sh, stop).await });
        let (sh, stop) = (Arc::clone(&shared), stop_rx.clone());
        let scanner = tokio::spawn(async move { scan_loop(sh, stop).await });
        notify::beat_in_runtime(&shared, Role::Evpn);
        if let Err(e) = shared.stop.raised().await {
            warn!("EVPN: waiting for the stop signal: {e}");
        }
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = task.await;
        }
        applier.abort();
        scanner.abort();
    });
    Ok(())
}

/// One neighbour: connect, run the session, reconnect with backoff, until stopped.
async fn neighbor(sh: Arc<Shared>, i: usize, mut stop: watch::Receiver<bool>) {
    let Some(plane) = sh.evpn.clone() else {
        return;
    };
    let remote = SocketAddr::new(plane.config.neighbors[i].address, BGP_PORT);
    let password = plane.config.neighbors[i].password.clone();
    let mut backoff = BACKOFF.0;
    let mut last_failure = String::new();
    loop {
        if *stop.borrow() {
            return;
        }
        set_state(&plane, i, State::Connect);
        let connected = tokio::select! {
            c = connect(&sh, remote, password.as_ref()) => c,
            _ = stop.changed() => return,
        };
        match connected {
            Ok(stream) => {
                backoff = BACKOFF.0;
                last_failure.clear();
                info!(neighbor = %remote.ip(), md5 = password.is_some(), "EVPN: connected");
                run_session(&sh, &plane, i, stream, &mut stop).await;
                if *stop.borrow() {
                    // Stopping: the ports go with the daemon, nothing to swap.
                    set_state(&plane, i, State::Idle);
                    return;
                }
                let effects = plane.table().drop_peer(i);
                plane.follow(&effects);
                set_state(&plane, i, State::Idle);
            }
            Err(e) => {
                // Logged once per kind of failure, not at every retry.
                if e != last_failure {
                    warn!(neighbor = %remote.ip(), "EVPN: connecting: {e}; retrying with backoff");
                    last_failure = e.clone();
                }
                plane.session(i).last_error = Some(e);
                set_state(&plane, i, State::Idle);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// Connects to a neighbour, signing with TCP MD5 when it has a password. A failure says what
/// happened, as far as the kernel tells: with TCP MD5 a password mismatch is silence.
async fn connect(
    sh: &Shared,
    remote: SocketAddr,
    password: Option<&Password>,
) -> Result<TcpStream, String> {
    let local = {
        let in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
        in_force.config.underlay.local_for(remote.ip())
    };
    let socket = match remote {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("opening a socket: {e}"))?;
    if let Some(password) = password {
        tcp_md5::set_key(&socket, remote.ip(), password.as_bytes()).map_err(|e| {
            format!(
                "setting the TCP MD5 key (`password`) for {}: {e}",
                remote.ip()
            )
        })?;
    }
    if let Some(local) = local {
        socket
            .bind(SocketAddr::new(local, 0))
            .map_err(|e| format!("binding to {local}: {e}"))?;
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(remote))
        .await
        .map_err(|_| match password {
            Some(_) => format!(
                "no answer within {CONNECT_TIMEOUT:?}; TCP MD5 is configured for this neighbor \
                 (`password`): a neighbor whose password differs, or that has none, drops our \
                 segments without a word, and that looks like this"
            ),
            None => format!(
                "no answer within {CONNECT_TIMEOUT:?} (no TCP MD5 `password` is configured: a \
                 neighbor that requires one drops our segments without a word, and that looks \
                 like this, as does a neighbor that is unreachable)"
            ),
        })?
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn set_state(plane: &Plane, i: usize, state: State) {
    let mut s = plane.session(i);
    if s.state != state {
        s.state = state;
        s.since = Instant::now();
    }
    if state != State::Established {
        s.advertised = 0;
        s.end_of_rib = false;
    }
}

/// Runs one connected session until it ends or the daemon stops.
async fn run_session(
    sh: &Shared,
    plane: &Plane,
    i: usize,
    mut stream: TcpStream,
    stop: &mut watch::Receiver<bool>,
) {
    let neighbor = plane.config.neighbors[i].address;
    let mut session = Session::new(SessionConfig {
        local_as: plane.config.asn,
        peer_as: plane.config.asn,
        router_id: plane.config.router_id,
        hold_time: plane.config.hold_time,
    });
    let mut outbox = Outbox::new();
    let mut adverts = plane.adverts.subscribe();
    let mut buf = vec![0u8; 65536];
    let mut refusals_logged = 0usize;
    session.connected(Instant::now());
    set_state(plane, i, session.state());
    loop {
        if session.has_transmit() && stream.write_all(&session.take_transmit()).await.is_err() {
            session.connection_lost();
        }
        let mut ended = None;
        while let Some(event) = session.poll_event() {
            let now = Instant::now();
            match event {
                Event::Established { peer_id, hold_time } => {
                    info!(%neighbor, %peer_id, hold_time, "EVPN: session established");
                    {
                        let mut s = plane.session(i);
                        s.peer_id = Some(peer_id);
                        s.last_error = None;
                    }
                    set_state(plane, i, State::Established);
                    adverts.mark_unchanged();
                    sync(plane, i, &mut session, &mut outbox, now);
                    session.send_update(route::end_of_rib(), now);
                }
                Event::Update { update, malformed } => {
                    plane.updates_received.fetch_add(1, Ordering::Relaxed);
                    plane.session(i).updates += 1;
                    if let Some(first) = malformed.first() {
                        warn!(%neighbor, "EVPN: malformed attribute, routes treated as withdrawn (RFC 7606): {first}");
                    }
                    let changes = route::read_update(&update, !malformed.is_empty());
                    let effects = {
                        let mut table = plane.table();
                        let effects = table.apply(i, changes, !malformed.is_empty());
                        if !effects.moved_away.is_empty() {
                            // Under the table's lock: the local scan must not see them again.
                            let core = lock(sh, sh.control_core());
                            let mut fdb = core.switch.fdb_mut();
                            for &mac in &effects.moved_away {
                                fdb.forget(mac, PortNo::LOCAL);
                            }
                            drop(fdb);
                            // Decisions the fast path cached for those MACs are stale.
                            core.switch.generation().bump();
                        }
                        if effects.refused > 0 {
                            let limits = table.refused(Refusal::RouteLimit)
                                + table.refused(Refusal::VtepLimit);
                            let total: u64 = Refusal::ALL.iter().map(|r| table.refused(*r)).sum();
                            // A clear line when a limit is first hit, then one per 10,000.
                            if limits > 0 && refusals_logged == 0
                                || total as usize / 10_000 > refusals_logged
                            {
                                refusals_logged = total as usize / 10_000 + 1;
                                warn!(
                                    %neighbor,
                                    routes = table.route_count(),
                                    max_routes = plane.config.max_routes,
                                    max_vteps = plane.config.max_vteps,
                                    "EVPN: routes refused ({total} so far; {limits} over the limits)"
                                );
                            }
                        }
                        effects
                    };
                    plane.follow(&effects);
                }
                Event::EndOfRib => {
                    info!(%neighbor, "EVPN: End-of-RIB received");
                    plane.session(i).end_of_rib = true;
                }
                Event::RouteRefresh => {
                    outbox.clear();
                    sync(plane, i, &mut session, &mut outbox, now);
                    session.send_update(route::end_of_rib(), now);
                }
                Event::Closed(reason) => {
                    match &reason {
                        CloseReason::Stopped => {}
                        r => warn!(%neighbor, "EVPN: session ended: {r}"),
                    }
                    plane.session(i).last_error = Some(reason.to_string());
                    ended = Some(reason);
                }
            }
        }
        if session.has_transmit() {
            let _ = stream.write_all(&session.take_transmit()).await;
        }
        if ended.is_some() {
            return;
        }
        let deadline = session
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let established = session.state() == State::Established;
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => session.connection_lost(),
                Ok(n) => session.receive(&buf[..n], Instant::now()),
            },
            _ = tokio::time::sleep_until(deadline) => session.tick(Instant::now()),
            changed = adverts.changed(), if established => {
                if changed.is_ok() {
                    sync(plane, i, &mut session, &mut outbox, Instant::now());
                }
            }
            _ = stop.changed() => {
                let now = Instant::now();
                for update in outbox.withdraw_all() {
                    session.send_update(update, now);
                }
                session.stop();
                let goodbye = session.take_transmit();
                let _ = tokio::time::timeout(GOODBYE, async {
                    let _ = stream.write_all(&goodbye).await;
                    let _ = stream.shutdown().await;
                })
                .await;
                info!(%neighbor, "EVPN: routes withdrawn, session closed");
                return;
            }
        }
    }
}

/// Sends the peer what changed in our advertisements since it was last sent.
fn sync(plane: &Plane, i: usize, session: &mut Session, outbox: &mut Outbox, now: Instant) {
    let routes = plane.table().local_routes();
    for update in outbox.sync(&routes) {
        session.send_update(update, now);
    }
    plane.session(i).advertised = outbox.len();
}

/// Applies the table's remote side to the switch: VTEP ports, then the remote MAC entries.
async fn apply_loop(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Some(plane) = sh.evpn.clone() else {
        return;
    };
    loop {
        tokio::select! {
            _ = plane.dirty.notified() => {}
            _ = stop.changed() => return,
        }
        tokio::time::sleep(SETTLE).await;
        apply_once(&sh, &plane);
    }
}

/// A MAC moving between known VTEPs costs O(1) here: only the MACs the table says changed
/// are written, and cached decisions are staled only when one used them. A VTEP that comes or
/// goes swaps the ports in (as a reload) and writes the MAC table whole.
fn apply_once(sh: &Shared, plane: &Plane) {
    let (vteps, changes) = {
        let mut table = plane.table();
        (
            table.remote_vteps().collect::<Vec<IpAddr>>(),
            table.take_remote_changes(),
        )
    };
    let changed = {
        let ports = plane.ports();
        ports.len() != vteps.len() || vteps.iter().any(|v| !ports.contains_key(v))
    };
    if changed {
        let mut in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
        let mut config = in_force.config.clone();
        let before = plane.ports().clone();
        let ours: HashSet<PortNo> = before.values().copied().collect();
        config.ports.retain(|p| !ours.contains(&p.no));
        let mut ports = BTreeMap::new();
        let mut used: HashSet<u32> = config.ports.iter().map(|p| p.no.0).collect();
        for &vtep in &vteps {
            if let Some(&no) = before.get(&vtep) {
                ports.insert(vtep, no);
                used.insert(no.0);
            }
        }
        let mut next = FIRST_PORT;
        for &vtep in &vteps {
            if ports.contains_key(&vtep) {
                continue;
            }
            while used.contains(&next) {
                next += 1;
            }
            used.insert(next);
            ports.insert(vtep, PortNo(next));
        }
        let range = config.underlay.src_port_range;
        config
            .ports
            .extend(ports.iter().map(|(&v, &no)| vtep_port(plane, v, no, range)));
        match super::reload::swap_in(sh, &mut in_force, config) {
            Ok(_) => {
                let added: Vec<String> = ports
                    .iter()
                    .filter(|(v, _)| !before.contains_key(v))
                    .map(|(v, no)| format!("evpn-{} ({v})", no.0))
                    .collect();
                let removed: Vec<String> = before
                    .iter()
                    .filter(|(v, _)| !ports.contains_key(v))
                    .map(|(v, no)| format!("evpn-{} ({v})", no.0))
                    .collect();
                info!(
                    "EVPN: {} remote VTEP(s); ports added: [{}], removed: [{}]",
                    ports.len(),
                    added.join(", "),
                    removed.join(", ")
                );
                *plane.ports() = ports;
            }
            Err(e) => warn!("EVPN: the VTEP ports could not be swapped in: {e}"),
        }
    }
    let ports = plane.ports().clone();
    // Everything, when the ports changed (or could not), read before the core's lock (the
    // sessions take the table's lock, then the core's).
    let wanted: Option<HashMap<Mac, PortNo>> = match &changes {
        RemoteChanges::Macs(_) if !changed => None,
        _ => Some(
            plane
                .table()
                .remote_macs()
                .filter_map(|(mac, r)| ports.get(&r.vtep).map(|&p| (mac, p)))
                .collect(),
        ),
    };
    let core = lock(sh, sh.control_core());
    let (set, removed, stale) = match (changes, wanted) {
        (RemoteChanges::Macs(changes), None) => {
            let mut fdb = core.switch.fdb_mut();
            // Read under the MAC table's write lock: see `MacTable::apply_remote`.
            let generation = core.switch.generation().current();
            let done = fdb.apply_remote(
                changes
                    .into_iter()
                    .map(|(mac, r)| (mac, r.and_then(|r| ports.get(&r.vtep).copied()))),
                generation,
            );
            plane
                .installed_macs
                .store(fdb.remote_len() as u64, Ordering::Relaxed);
            (done.set, done.removed, done.stale)
        }
        (_, wanted) => {
            let wanted = wanted.unwrap_or_default();
            let mut fdb = core.switch.fdb_mut();
            let (set, removed) = fdb.sync_remote(&wanted);
            plane
                .installed_macs
                .store(fdb.remote_len() as u64, Ordering::Relaxed);
            (set, removed, set + removed > 0)
        }
    };
    if stale {
        // Decisions the fast path cached for MACs that moved or went are stale.
        core.switch.generation().bump();
    }
    if set + removed > 0 {
        tracing::debug!(set, removed, stale, "EVPN: remote MAC entries");
    }
}

/// Watches the MACs learnt on the TAP side: new ones are advertised, aged ones withdrawn.
async fn scan_loop(sh: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Some(plane) = sh.evpn.clone() else {
        return;
    };
    let mut tick = tokio::time::interval(LOCAL_SCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let effects = {
            let mut table = plane.table();
            let now = Instant::now();
            let local: HashSet<Mac> = {
                let core = lock(&sh, sh.control_core());
                let fdb = core.switch.fdb();
                fdb.entries(now)
                    .filter(|(_, e)| e.port == PortNo::LOCAL)
                    .map(|(m, _)| m)
                    .collect()
            };
            table.set_local_macs(&local)
        };
        plane.follow(&effects);
    }
}

impl Shared {
    /// The EVPN section of `vxtunctl show`: sessions, remote VTEPs, MAC routes.
    pub(super) fn evpn_status(&self) -> String {
        let Some(plane) = &self.evpn else {
            return String::new();
        };
        let c = &plane.config;
        let rts: Vec<String> = c.route_targets.iter().map(|r| r.to_string()).collect();
        let mut out = format!(
            "evpn: AS {} router-id {} VTEP {} VNI {} route targets {} hold time {}\n",
            c.asn,
            c.router_id,
            c.vtep,
            c.vni,
            rts.join(" "),
            c.hold_time
        );
        let now = Instant::now();
        for i in 0..plane.sessions.len() {
            let s = plane.session(i).clone();
            let _ = write!(
                out,
                "  neighbor {} {} for {}s",
                s.neighbor,
                s.state.word(),
                now.saturating_duration_since(s.since).as_secs()
            );
            if let Some(id) = s.peer_id.filter(|_| s.state == State::Established) {
                let _ = write!(
                    out,
                    ", peer id {id}, {} UPDATE(s) received, {} route(s) advertised{}",
                    s.updates,
                    s.advertised,
                    if s.end_of_rib {
                        ", End-of-RIB received"
                    } else {
                        ""
                    }
                );
            }
            if c.neighbors[i].password.is_some() {
                out.push_str(", TCP MD5");
            }
            if let Some(e) = s.last_error.filter(|_| s.state != State::Established) {
                let _ = write!(out, " (last: {e})");
            }
            out.push('\n');
        }
        let ports = plane.ports().clone();
        let table = plane.table();
        let _ = writeln!(
            out,
            "  remote VTEPs: {} (routes held: {})",
            ports.len(),
            table.route_count()
        );
        for (vtep, no) in &ports {
            let _ = writeln!(out, "    {vtep} port {} evpn-{}", no.0, no.0);
        }
        let mut macs: Vec<(Mac, String)> = table
            .local_macs()
            .map(|(m, seq)| (m, format!("local seq {seq}")))
            .chain(
                table
                    .remote_macs()
                    .map(|(m, r)| (m, format!("remote VTEP {} seq {}", r.vtep, r.seq))),
            )
            .collect();
        macs.sort_by_key(|(m, _)| m.0);
        let _ = writeln!(out, "  MAC routes: {}", macs.len());
        for (mac, what) in macs.iter().take(1000) {
            let _ = writeln!(out, "    {mac} {what}");
        }
        if macs.len() > 1000 {
            let _ = writeln!(out, "    ... {} more", macs.len() - 1000);
        }
        let refused: Vec<String> = Refusal::ALL
            .iter()
            .map(|r| (r.word(), table.refused(*r)))
            .filter(|(_, n)| *n > 0)
            .map(|(w, n)| format!("{w} {n}"))
            .collect();
        if !refused.is_empty() {
            let _ = writeln!(out, "  routes refused: {}", refused.join(", "));
        }
        out
    }

    /// The EVPN metrics, in the Prometheus text format.
    pub(super) fn evpn_metrics(&self) -> String {
        let Some(plane) = &self.evpn else {
            return String::new();
        };
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let sessions: Vec<(String, u64)> = (0..plane.sessions.len())
            .map(|i| {
                let s = plane.session(i);
                (
                    format!("{{neighbor=\"{}\"}}", s.neighbor),
                    u64::from(s.state == State::Established),
                )
            })
            .collect();
        metric(
            "vxtund_bgp_session_up",
            "gauge",
            "1 when the BGP session with the neighbor is Established.",
            sessions,
        );
        metric(
            "vxtund_bgp_updates_received_total",
            "counter",
            "BGP UPDATE messages received (End-of-RIB markers not counted).",
            vec![(
                String::new(),
                plane.updates_received.load(Ordering::Relaxed),
            )],
        );
        let vteps = plane.ports().len() as u64;
        let table = plane.table();
        metric(
            "vxtund_evpn_remote_vteps",
            "gauge",
            "Remote VTEPs (type-3 routes) with a tunnel port.",
            vec![(String::new(), vteps)],
        );
        metric(
            "vxtund_evpn_remote_macs",
            "gauge",
            "Remote MACs (type-2 routes) in the MAC table.",
            vec![(String::new(), plane.installed_macs.load(Ordering::Relaxed))],
        );
        metric(
            "vxtund_evpn_local_macs",
            "gauge",
            "MACs learnt on the TAP side and advertised (type-2 routes).",
            vec![(String::new(), table.local_macs().count() as u64)],
        );
        metric(
            "vxtund_evpn_routes_refused_total",
            "counter",
            "EVPN routes refused, by reason.",
            Refusal::ALL
                .iter()
                .map(|r| (format!("{{reason=\"{}\"}}", r.word()), table.refused(*r)))
                .collect(),
        );
        out
    }
}
