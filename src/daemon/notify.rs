//! systemd's notification protocol (`Type=notify`): `READY=1` once the TAP and the sockets are
//! up, `STATUS=` with a one-line summary, `RELOADING=1` with `MONOTONIC_USEC=` around every
//! reload (SIGHUP and `vxtunctl reload` alike, refused ones included) and `READY=1` after it,
//! `STOPPING=1` on shutdown, and `WATCHDOG=1` while the data path is alive.
//!
//! The watchdog pings only on evidence: each data-path thread bumps its [`Heartbeat`] every time
//! it wakes (at least every [`Watchdog::tick`], a poll timeout), and the watchdog thread sends
//! `WATCHDOG=1` only when every heartbeat moved since its last look. A thread blocked for ever
//! (in a send, or on the switch's lock) stops its heartbeat, the pings stop, and systemd
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

/// How often a data-path thread bumps its heartbeat even when idle.
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

    /// How long an idle data-path thread may sleep in poll: an eighth of the timeout (at most
    /// a second, at least 10 ms), so that every look of the watchdog sees each thread turn.
    pub(super) fn tick(self) -> Duration {
        (self.timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// How often the watchdog thread looks: a quarter of the timeout, so that a ping goes out
    /// at least every half of it.
    pub(super) fn interval(self) -> Duration {
        (self.timeout / 4).max(Duration::from_millis(20))
    }
}

/// A data-path thread's sign of life: bumped each time it wakes.
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

/// Whether every heartbeat moved since `last` (which it updates): the pure decision behind a
/// ping.
pub(super) fn all_alive(beats: &[&Heartbeat], last: &mut Vec<u64>) -> bool {
    let now: Vec<u64> = beats.iter().map(|b| b.count()).collect();
    let alive = last.len() == now.len() && last.iter().zip(&now).all(|(a, b)| a != b);
    *last = now;
    alive
}

/// The watchdog thread: every [`Watchdog::interval`], `WATCHDOG=1` if every data-path thread
/// turned since the last look. Returns when the daemon stops.
pub(super) fn watchdog_loop(sh: &Shared, dog: Watchdog) -> Result<(), ()> {
    let mut beats: Vec<&Heartbeat> = sh.beats.iter().collect();
    if sh.fast_path.is_some() {
        // The sweeper turns every 100 ms: a stuck one would stop the flows' counters.
        beats.push(&sh.fast_path_beat);
    }
    let mut last = Vec::new();
    let mut stalled = false;
    let mut poller = crate::io::Poller::new(&[sh.stop.fd()]);
    loop {
        if all_alive(&beats, &mut last) {
            send(&[NotifyState::Watchdog]);
            if stalled {
                warn!("the data path turns again");
                stalled = false;
            }
        } else if !last.is_empty() && !stalled {
            // First look has no "before": not a stall.
            warn!(
                "a data-path thread has not turned for {:?}: no watchdog ping",
                dog.interval()
            );
            stalled = true;
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
            !all_alive(&[&a, &b], &mut last),
            "the first look only records"
        );
        a.beat();
        b.beat();
        assert!(all_alive(&[&a, &b], &mut last));
        a.beat();
        assert!(!all_alive(&[&a, &b], &mut last), "b is stuck");
        a.beat();
        b.beat();
        assert!(all_alive(&[&a, &b], &mut last), "both turn again");
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
