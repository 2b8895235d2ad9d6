//! The OpenFlow side of the daemon, on a thread with a single-threaded tokio runtime of its
//! own: the listeners of `[openflow] listen` (`punix:`, `ptcp:`), the controllers of
//! `[openflow] controllers` (dialled and redialled, [`controllers`]), one task per connection
//! ([`session`]), the fan-out of the switch's events (packet-ins from the data path, flows
//! removed, ports changed) and the flow timeouts. Nothing here touches the data path except
//! through [`super::ops`], which holds the switch's lock only to copy or swap.
//!
//! Limits against hostile or broken clients: at most [`MAX_SESSIONS`] service sessions at once
//! (more are closed on accept), and per session the limits of [`session`]: time to say HELLO,
//! an ECHO probe after silence and a close when the next one passes unanswered, time to finish
//! a message once begun and to read the answers. A header that breaks the framing (wrong
//! version, impossible length) is answered with an ERROR and the connection closed, as Open
//! vSwitch does.

mod controllers;
mod session;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::notify::{self, Role};
use super::Shared;
use crate::config::{Config, FailMode, ListenTarget};
use crate::io::control::{ControlError, ControlSocket};
use crate::openflow::agent::AsyncEvent;

/// Most service sessions at once, over all listeners. An idle session costs a few KiB.
pub const MAX_SESSIONS: usize = 512;

/// The listeners, bound at start-up (so that a bad target stops the daemon before it runs).
pub(super) struct Listeners {
    unix: Vec<ControlSocket>,
    tcp: Vec<std::net::TcpListener>,
    /// `pssl:` targets: TCP, each connection a TLS handshake first.
    ssl: Vec<std::net::TcpListener>,
}

impl Listeners {
    /// Binds every target of `config`: Unix sockets with mode 0600 (a stale socket is replaced,
    /// a live one refused), TCP on the given address. Warns once when a plain TCP target
    /// listens beyond loopback.
    pub(super) fn bind(config: &Config) -> Result<Listeners, ControlError> {
        let mut listeners = Listeners {
            unix: Vec::new(),
            tcp: Vec::new(),
            ssl: Vec::new(),
        };
        for target in &config.openflow.listen {
            match target {
                ListenTarget::Unix(path) => listeners.unix.push(ControlSocket::bind(path, None)?),
                ListenTarget::Tcp(addr) => listeners.tcp.push(bind_tcp(target, addr)?),
                ListenTarget::Ssl(addr) => listeners.ssl.push(bind_tcp(target, addr)?),
            }
        }
        let plain: Vec<String> = config
            .openflow
            .listen
            .iter()
            .filter(|t| t.is_plain_beyond_loopback())
            .map(|t| t.to_string())
            .collect();
        if !plain.is_empty() {
            warn!(
                "OpenFlow listens without TLS beyond loopback on {}: whoever reaches it can \
                 change the flow table; use pssl: with private_key, certificate and ca_cert \
                 (docs/threat-model.md)",
                plain.join(", ")
            );
        }
        Ok(listeners)
    }

    /// Whether there is nothing to listen on.
    pub(super) fn is_empty(&self) -> bool {
        self.unix.is_empty() && self.tcp.is_empty() && self.ssl.is_empty()
    }
}

fn bind_tcp(
    target: &ListenTarget,
    addr: &std::net::SocketAddr,
) -> Result<std::net::TcpListener, ControlError> {
    let setup = |what, source| ControlError::Setup {
        path: target.to_string().into(),
        what,
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| setup("binding", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| setup("making it non-blocking", e))?;
    Ok(listener)
}

/// The datapath id: the configured one, or one derived from what tells this daemon apart
/// (the machine, the config file's name, the device, the underlay addresses), so that it is
/// stable across restarts and differs between the segments of one machine. 48 bits, as the
/// ids Open vSwitch derives from a bridge's MAC address.
pub(super) fn datapath_id(config: &Config) -> u64 {
    if let Some(id) = config.openflow.datapath_id {
        return id;
    }
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    derive_datapath_id(machine.trim(), config)
}

fn derive_datapath_id(machine_id: &str, config: &Config) -> u64 {
    // FNV-1a: stable across builds and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let stem = config
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let parts = [
        machine_id.to_owned(),
        stem.unwrap_or_default(),
        config.device.name.clone(),
        config.underlay.locals_text(),
    ];
    for part in parts {
        for b in part.bytes().chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (hash ^ (hash >> 48)) & 0x0000_ffff_ffff_ffff
}

/// Whether the config names controllers to dial.
pub(in crate::daemon) fn has_controllers(shared: &Shared) -> bool {
    let in_force = shared.in_force.lock().unwrap_or_else(|p| p.into_inner());
    !in_force.config.openflow.controllers.is_empty()
}

/// The OpenFlow side of the daemon while it runs: its sessions, the controllers connected,
/// and the subscribers of the switch's events.
pub(in crate::daemon) struct Plane {
    pub(super) shared: Arc<Shared>,
    /// Service sessions open now (the limit is [`MAX_SESSIONS`]).
    sessions: AtomicUsize,
    /// Numbers sessions, for the master election.
    pub(super) next_id: AtomicU64,
    /// Every session's event queue.
    subscribers: Mutex<HashMap<u64, mpsc::Sender<Arc<AsyncEvent>>>>,
    /// Controller connections past HELLO.
    connected: AtomicUsize,
    fail_mode: FailMode,
    /// Events a full session queue did not take.
    events_dropped: AtomicU64,
    /// TLS handshakes that failed or timed out, both ways (plain TCP on a `pssl:` port, a
    /// certificate that does not chain to `ca_cert`, an expired one, ...).
    tls_refused: AtomicU64,
    /// When a refused handshake was last logged at warning level (seconds since start).
    tls_warned: AtomicU64,
}

impl Plane {
    fn subscribe(&self, id: u64, tx: mpsc::Sender<Arc<AsyncEvent>>) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
    }

    fn unsubscribe(&self, id: u64) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.shared
            .roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget(id);
    }

    /// Hands an event to every session, never waiting for one.
    fn publish(&self, event: AsyncEvent) {
        let event = Arc::new(event);
        let subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for tx in subscribers.values() {
            if tx.try_send(Arc::clone(&event)).is_err() {
                self.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A controller connection got past HELLO: leave fail-open (standalone).
    fn controller_up(&self, peer: &str) {
        let before = self.connected.fetch_add(1, Ordering::AcqRel);
        info!(peer, "OpenFlow: controller connected");
        if before == 0 && self.fail_mode == FailMode::Standalone {
            self.shared.set_fail_open(false);
            info!("a controller is connected: frames take the flow table again (fail_mode standalone)");
        }
    }

    /// A controller connection that had got past HELLO closed.
    fn controller_down(&self, peer: &str) {
        let before = self.connected.fetch_sub(1, Ordering::AcqRel);
        warn!(peer, "OpenFlow: controller connection lost");
        if before == 1 {
            match self.fail_mode {
                FailMode::Standalone => {
                    self.shared.set_fail_open(true);
                    warn!("no controller connected: every frame takes `normal` (fail_mode standalone)");
                }
                FailMode::Secure => {
                    warn!(
                        "no controller connected: the flow table stays as it is (fail_mode secure)"
                    )
                }
            }
        }
    }

    /// How many controllers are connected.
    pub(in crate::daemon) fn connected(&self) -> usize {
        self.connected.load(Ordering::Acquire)
    }

    /// Events a full session queue did not take.
    pub(in crate::daemon) fn events_dropped(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }

    /// TLS handshakes refused (see [`Plane::tls_refused`]).
    pub(in crate::daemon) fn tls_refused(&self) -> u64 {
        self.tls_refused.load(Ordering::Relaxed)
    }

    /// Counts a failed TLS handshake and logs it: the first at warning level and then at most
    /// one a minute (a scan or a flood must not fill the journal), the rest at debug level.
    fn refuse_tls(&self, peer: &str, why: &str) {
        let n = self.tls_refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.shared.started.elapsed().as_secs() + TLS_WARN_EVERY;
        let last = self.tls_warned.load(Ordering::Relaxed);
        if now >= last + TLS_WARN_EVERY
            && self
                .tls_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            warn!(peer, "OpenFlow: TLS handshake refused ({n} so far): {why}");
        } else {
            debug!(peer, "OpenFlow: TLS handshake refused: {why}");
        }
    }

    /// The TLS configuration in force (re-read on every reload).
    fn tls(&self) -> Option<Arc<crate::tls::Material>> {
        self.shared
            .tls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// How often a refused TLS handshake is logged at warning level at most, in seconds.
const TLS_WARN_EVERY: u64 = 60;

/// How long a TLS handshake may take, either way, before the connection is closed: as long as
/// a plain connection has to say HELLO.
pub const HANDSHAKE_TIMEOUT: Duration = session::HELLO_TIMEOUT;

/// Runs the listeners, the controller connections, the event fan-out and the flow expiry until
/// the daemon stops.
pub(super) fn serve(shared: Arc<Shared>, listeners: Listeners) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(4)
        .build()?;
    let (controllers, fail_mode, probe, max_backoff) = {
        let in_force = shared.in_force.lock().unwrap_or_else(|p| p.into_inner());
        let of = &in_force.config.openflow;
        (
            of.controllers.clone(),
            of.fail_mode,
            of.inactivity_probe,
            of.max_backoff,
        )
    };
    let plane = Arc::new(Plane {
        shared: Arc::clone(&shared),
        sessions: AtomicUsize::new(0),
        next_id: AtomicU64::new(1),
        subscribers: Mutex::new(HashMap::new()),
        connected: AtomicUsize::new(0),
        fail_mode,
        events_dropped: AtomicU64::new(0),
        tls_refused: AtomicU64::new(0),
        tls_warned: AtomicU64::new(0),
    });
    *shared.plane.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(&plane));
    let events = shared
        .events_rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let result = runtime.block_on(async {
        for listener in &listeners.unix {
            let listener = tokio::net::UnixListener::from_std(listener.try_clone_listener()?)?;
            let plane = Arc::clone(&plane);
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => start(stream, "unix".into(), &plane),
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
        }
        // ptcp: and pssl: accept alike; a pssl: session starts with the TLS handshake.
        let tcp = listeners.tcp.iter().map(|l| (l, false));
        for (listener, tls) in tcp.chain(listeners.ssl.iter().map(|l| (l, true))) {
            let listener = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
            let plane = Arc::clone(&plane);
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            match tls {
                                true => start_tls(stream, peer.to_string(), &plane),
                                false => start(stream, peer.to_string(), &plane),
                            }
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            });
        }
        for target in controllers {
            tokio::spawn(controllers::dial(
                Arc::clone(&plane),
                target,
                probe,
                max_backoff,
            ));
        }
        if let Some(mut events) = events {
            let plane = Arc::clone(&plane);
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    plane.publish(event);
                }
            });
        }
        notify::beat_in_runtime(&shared, Role::OpenFlow);
        shared.stop.raised().await?;
        Ok::<(), io::Error>(())
    });
    // Sessions still running (or blocked in a slow client's write) are dropped, not awaited.
    runtime.shutdown_background();
    drop(listeners);
    result
}

async fn accept_failed(e: io::Error) {
    // Out of descriptors and the like: wait rather than spin.
    warn!("OpenFlow: accepting a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Starts a service session on `stream`, or closes it at once when [`MAX_SESSIONS`] are
/// running.
fn start<S>(stream: S, peer: String, plane: &Arc<Plane>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if plane.sessions.fetch_add(1, Ordering::AcqRel) >= MAX_SESSIONS {
        plane.sessions.fetch_sub(1, Ordering::AcqRel);
        debug!(
            peer,
            "OpenFlow: {MAX_SESSIONS} sessions already; connection closed"
        );
        return;
    }
    let plane = Arc::clone(plane);
    tokio::spawn(async move {
        match session::run(stream, &peer, Arc::clone(&plane), session::Kind::Service).await {
            Ok(()) => debug!(peer, "OpenFlow session closed"),
            Err(e) => debug!(peer, "OpenFlow session ended: {e}"),
        }
        plane.sessions.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Starts a TLS session on `stream` (a `pssl:` connection): the handshake within
/// [`HANDSHAKE_TIMEOUT`], then the OpenFlow session. The connection counts towards
/// [`MAX_SESSIONS`] from the start, handshake included, as a plain one does.
fn start_tls(stream: tokio::net::TcpStream, peer: String, plane: &Arc<Plane>) {
    if plane.sessions.fetch_add(1, Ordering::AcqRel) >= MAX_SESSIONS {
        plane.sessions.fetch_sub(1, Ordering::AcqRel);
        debug!(
            peer,
            "OpenFlow: {MAX_SESSIONS} sessions already; connection closed"
        );
        return;
    }
    let plane = Arc::clone(plane);
    tokio::spawn(async move {
        match plane.tls() {
            None => plane.refuse_tls(&peer, "no TLS configuration in force"),
            Some(material) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&material.server));
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Err(_) => plane.refuse_tls(&peer, "the handshake did not finish in time"),
                    Ok(Err(e)) => plane.refuse_tls(&peer, &e.to_string()),
                    Ok(Ok(stream)) => {
                        debug!(peer, "OpenFlow: TLS session established");
                        let kind = session::Kind::Service;
                        match session::run(stream, &peer, Arc::clone(&plane), kind).await {
                            Ok(()) => debug!(peer, "OpenFlow session closed"),
                            Err(e) => debug!(peer, "OpenFlow session ended: {e}"),
                        }
                    }
                }
            }
        }
        plane.sessions.fetch_sub(1, Ordering::AcqRel);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_datapath_ids_are_stable_and_tell_segments_apart() {
        let config = |name: &str, local: &str| {
            let text = format!("[underlay]\nlocal = \"{local}\"\n");
            Config::parse(std::path::Path::new(name), &text).unwrap()
        };
        let seg1 = config("/etc/vxtund/seg1.toml", "192.168.200.101");
        let seg2 = config("/etc/vxtund/seg2.toml", "192.168.200.102");
        let a = derive_datapath_id("0123", &seg1);
        assert_eq!(a, derive_datapath_id("0123", &seg1), "stable");
        assert_ne!(a, derive_datapath_id("0123", &seg2), "per segment");
        assert_ne!(a, derive_datapath_id("4567", &seg1), "per machine");
        assert_eq!(a >> 48, 0, "48 bits");
    }
}
