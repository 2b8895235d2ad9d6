//! systemd's notification protocol (`Type=notify`): `READY=1` once the TAP and the sockets are
//! up, `STATUS=` with a one-line summary, `RELOADING=1` with `MONOTONIC_USEC=` around every
//! reload (SIGHUP and `vxtunctl reload` alike, refused ones included) and `READY=1` after it,
//! `STOPPING=1` on shutdown, and `WATCHDOG=1` while every thread that must live is alive.
//!
//! The watchdog pings only on evidence: every thread that must live (each data-path thread,
//! the control thread, the path-MTU watcher, the fast path's sweeper, and the OpenFlow,
//! metrics and EVPN threads when they run) bumps its [`Heartbeat`] every time it wakes (at
//! least every [`Watchdog::tick`]: a poll timeout, or a timer task in a thread that runs an
//! async runtime), and the watchdog thread sends `WATCHDOG=1` only when every heartbeat moved
//! since its last look. A thread blocked for ever (in a send, on a lock, in a runtime whose
//! task never yields) stops its heartbeat; the log names it, the pings stop, and systemd
//! restarts the daemon. Without `NOTIFY_SOCKET` every call here does nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

use super::Shared;

/// Sends `states` to the service manager, if there is one. A failure is logged, never fatal.
fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    // Logged when it starts failing and when it works again, not once per message.
    static FAILING: AtomicBool = AtomicBool::new(false);
    match sd_notify::notify(states) {
        Err(e) if !FAILING.swap(true, Ordering::Relaxed) => {
            warn!("telling systemd {states:?}: {e} (further failures not logged)")
        }
        Err(_) => {}
        Ok(()) if FAILING.swap(false, Ordering::Relaxed) => debug!("systemd hears us again"),
        Ok(()) => {}
    }
}

/// `READY=1` with the status line.
pub(super) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` with the monotonic time, as systemd 253+ asks (older ones ignore it).
pub(super) fn reloading() {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
    match NotifyState::monotonic_usec_now() {
        Ok(now) => states.push(now),
        Err(e) => debug!("reading CLOCK_MONOTONIC: {e}"),
    }
    send(&states);
}

/// `STOPPING=1`.
pub(super) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The one-line `STATUS=`: device, tunnels, flows, control socket.
pub(super) fn status_line(sh: &Shared) -> String {
    let in_force = sh.in_force.lock().unwrap_or_else(|p| p.into_inner());
    let c = &in_force.config;
    format!(
        "device {} mtu {}, {} tunnel(s), {} flow(s); control {}",
        c.device.name,
        in_force.mtus.device.0,
        c.ports.len().saturating_sub(1),
        in_force.flows.len(),
        c.control_socket.display()
    )
}

/// How often a watched thread bumps its heartbeat even when idle.
#[derive(Debug, Clone, Copy)]
pub(super) struct Watchdog {
    /// systemd's `WATCHDOG_USEC`: the longest it waits for a ping.
    pub(super) timeout: Duration,
}

impl Watchdog {
    /// The watchdog systemd asked for (`WATCHDOG_USEC`, for this process), if any.
    pub(super) fn from_env() -> Option<Watchdog> {
        sd_notify::watchdog_enabled()
            .filter(|t| !t.is_zero())
            .map(|timeout| Watchdog { timeout })
    }

    /// How long an idle watched thread may sleep: an eighth of the timeout (at most a second,
    /// at least 10 ms), so that every look of the watchdog sees each thread turn.
    pub(super) fn tick(self) -> Duration {
        (self.timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// How often the watchdog thread looks: a quarter of the timeout, so that a ping goes out
    /// at least every half of it.
    pub(super) fn interval(self) -> Duration {
        (self.timeout / 4).max(Duration::from_millis(20))
    }
}

/// A watched thread's sign of life: bumped each time it wakes.
#[derive(Debug, Default)]
pub(super) struct Heartbeat(AtomicU64);

impl Heartbeat {
    /// Called by the thread each time it wakes.
    pub(super) fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The threads besides the data path's that the watchdog watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// vxtunctl's socket and the flows' timeouts.
    Control,
    /// The path-MTU watcher.
    Pmtu,
    /// The kernel fast path's sweeper.
    FastPath,
    /// The OpenFlow listeners and controllers.
    OpenFlow,
    /// The metrics endpoint.
    Metrics,
    /// The BGP EVPN sessions.
    Evpn,
}

impl Role {
    /// The thread's name (as `ps -L` and the logs show it).
    pub(super) fn name(self) -> &'static str {
        match self {
            Role::Control => "control",
            Role::Pmtu => "pmtu",
            Role::FastPath => "fastpath",
            Role::OpenFlow => "openflow",
            Role::Metrics => "metrics",
            Role::Evpn => "evpn",
        }
    }
}

/// The heartbeats of the threads of [`Role`].
#[derive(Debug, Default)]
pub(super) struct Beats([Heartbeat; 6]);

impl Beats {
    pub(super) fn of(&self, role: Role) -> &Heartbeat {
        &self.0[role as usize]
    }
}

/// For a thread that runs an async runtime: a task that beats `role`'s heartbeat every
/// `tick` for as long as the runtime runs it (none without a watchdog). A task that blocks
/// the runtime stops it too.
pub(super) fn beat_in_runtime(sh: &std::sync::Arc<Shared>, role: Role) {
    let Some(tick) = sh.tick else {
        return;
    };
    let sh = std::sync::Arc::clone(sh);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(tick);
        loop {
            every.tick().await;
            sh.lives.of(role).beat();
        }
    });
}

/// Which heartbeats did not move since `last` (which it updates), by their index: the pure
/// decision behind a ping (none: ping). The first look has no "before": it records only and
/// says nothing is stuck.
pub(super) fn stalled(beats: &[&Heartbeat], last: &mut Vec<u64>) -> Vec<usize> {
    let now: Vec<u64> = beats.iter().map(|b| b.count()).collect();
    let stuck = match last.len() == now.len() {
        true => (0..now.len()).filter(|&i| last[i] == now[i]).collect(),
        false => Vec::new(),
    };
    *last = now;
    stuck
}

/// The watchdog thread: every [`Watchdog::interval`], `WATCHDOG=1` if every thread of
/// `watched` (data-path threads and the others by name) turned since the last look; otherwise
/// the log says which did not. Returns when the daemon stops.
pub(super) fn watchdog_loop(sh: &Shared, dog: Watchdog, watched: &[Role]) -> Result<(), ()> {
    let mut names: Vec<String> = (0..sh.beats.len()).map(|i| sh.beat_name(i)).collect();
    let mut beats: Vec<&Heartbeat> = sh.beats.iter().collect();
    for &role in watched {
        names.push(role.name().to_owned());
        beats.push(sh.lives.of(role));
    }
    let mut last = Vec::new();
    let mut stalled_before = false;
    let mut poller = crate::io::Poller::new(&[sh.stop.fd()]);
    let mut first = true;
    loop {
        let stuck = stalled(&beats, &mut last);
        if first {
            // Nothing to compare with yet: no ping, no complaint.
            first = false;
        } else if stuck.is_empty() {
            send(&[NotifyState::Watchdog]);
            if stalled_before {
                warn!("every thread turns again");
                stalled_before = false;
            }
        } else if !stalled_before {
            let which: Vec<&str> = stuck.iter().map(|&i| names[i].as_str()).collect();
            warn!(
                "thread(s) {} have not turned for {:?}: no watchdog ping",
                which.join(", "),
                dog.interval()
            );
            stalled_before = true;
        }
        if poller.wait_timeout(Some(dog.interval())).is_err() || poller.ready(0) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_needs_every_thread_to_have_turned() {
        let (a, b) = (Heartbeat::default(), Heartbeat::default());
        let mut last = Vec::new();
        assert!(
            stalled(&[&a, &b], &mut last).is_empty(),
            "the first look only records"
        );
        assert_eq!(stalled(&[&a, &b], &mut last), [0, 1], "neither turned");
        a.beat();
        b.beat();
        assert!(stalled(&[&a, &b], &mut last).is_empty());
        a.beat();
        assert_eq!(stalled(&[&a, &b], &mut last), [1], "b is stuck");
        a.beat();
        b.beat();
        assert!(stalled(&[&a, &b], &mut last).is_empty(), "both turn again");
    }

    #[test]
    fn ticks_fit_the_timeout() {
        let dog = Watchdog {
            timeout: Duration::from_secs(30),
        };
        assert_eq!(dog.tick(), Duration::from_secs(1));
        assert_eq!(dog.interval(), Duration::from_millis(7500));
        let short = Watchdog {
            timeout: Duration::from_millis(400),
        };
        assert_eq!(short.tick(), Duration::from_millis(50));
        assert!(short.interval() * 2 <= short.timeout);
    }
}
