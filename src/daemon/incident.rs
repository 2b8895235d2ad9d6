//! Errors that repeat per packet (a send failing for every frame to one tunnel) logged once per
//! incident with a count, never once per packet.
//!
//! An incident is a run of failures of one kind (port and errno) with no quiet gap of
//! [`QUIET`] in it. Its first failure is logged at once (warn); the rest are counted, and a
//! summary with the count is logged every [`REPEAT`] while it lasts and once when it ends (the
//! first data-path wake-up after [`QUIET`] without one, or shutdown). [`Incidents`] is pure:
//! it takes `now` and returns what to log; the daemon's [`SendErrors`] logs it.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::flow::PortNo;

/// A gap without failures that ends an incident.
pub const QUIET: Duration = Duration::from_secs(1);
/// How often an incident that goes on is summarised.
pub const REPEAT: Duration = Duration::from_secs(10);

/// What kind of failure: the port sent to and the errno (0 when there is none).
pub type Key = (PortNo, i32);

/// A line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The first failure of an incident.
    Started {
        /// Its kind.
        key: Key,
        /// The error's text.
        error: String,
    },
    /// `count` failures since the last report, over `over` since the incident began.
    Summary {
        /// Its kind.
        key: Key,
        /// Failures since the last report.
        count: u64,
        /// How long the incident has lasted.
        over: Duration,
        /// Whether it has ended.
        ended: bool,
    },
}

#[derive(Debug)]
struct Incident {
    began: Instant,
    last_failure: Instant,
    last_report: Instant,
    unreported: u64,
}

/// The open incidents.
#[derive(Debug, Default)]
pub struct Incidents {
    open: HashMap<Key, Incident>,
}

impl Incidents {
    /// Records a failure of kind `key` at `now`; returns what to log (a new incident, or the
    /// summary of one that has gone on for [`REPEAT`]).
    pub fn note(&mut self, key: Key, error: &dyn std::fmt::Display, now: Instant) -> Vec<Report> {
        let mut reports = self.due(now);
        match self.open.get_mut(&key) {
            Some(i) => {
                i.unreported += 1;
                i.last_failure = now;
                if now.saturating_duration_since(i.last_report) >= REPEAT {
                    reports.push(Report::Summary {
                        key,
                        count: i.unreported,
                        over: now.saturating_duration_since(i.began),
                        ended: false,
                    });
                    i.unreported = 0;
                    i.last_report = now;
                }
            }
            None => {
                self.open.insert(
                    key,
                    Incident {
                        began: now,
                        last_failure: now,
                        last_report: now,
                        unreported: 0,
                    },
                );
                reports.push(Report::Started {
                    key,
                    error: error.to_string(),
                });
            }
        }
        reports
    }

    /// Ends the incidents quiet for [`QUIET`] at `now` (all of them with `all`); returns their
    /// summaries.
    pub fn end(&mut self, now: Instant, all: bool) -> Vec<Report> {
        let mut reports = Vec::new();
        self.open.retain(|&key, i| {
            let quiet = now.saturating_duration_since(i.last_failure) >= QUIET;
            if !(quiet || all) {
                return true;
            }
            if i.unreported > 0 {
                reports.push(Report::Summary {
                    key,
                    count: i.unreported,
                    over: i.last_failure.saturating_duration_since(i.began),
                    ended: true,
                });
            }
            false
        });
        reports.sort_by_key(|r| match r {
            Report::Started { key, .. } | Report::Summary { key, .. } => *key,
        });
        reports
    }

    fn due(&mut self, now: Instant) -> Vec<Report> {
        self.end(now, false)
    }

    /// Whether an incident is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// The daemon's send failures: [`Incidents`] behind a lock taken only when something failed
/// or an incident is open.
#[derive(Debug, Default)]
pub(super) struct SendErrors {
    incidents: Mutex<Incidents>,
    open: AtomicBool,
}

impl SendErrors {
    /// A send to `port` failed with `e`.
    pub(super) fn note(&self, port: PortNo, e: &io::Error) {
        let mut incidents = self.incidents.lock().unwrap_or_else(|p| p.into_inner());
        let key = (port, e.raw_os_error().unwrap_or(0));
        log(incidents.note(key, e, Instant::now()));
        self.open.store(true, Ordering::Relaxed);
    }

    /// Whether an incident is open (then the data path wakes at least every [`QUIET`]).
    pub(super) fn open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Ends quiet incidents (all of them with `all`), logging their summaries.
    pub(super) fn end(&self, all: bool) {
        if !self.open() {
            return;
        }
        let mut incidents = self.incidents.lock().unwrap_or_else(|p| p.into_inner());
        log(incidents.end(Instant::now(), all));
        self.open.store(!incidents.is_empty(), Ordering::Relaxed);
    }
}

fn log(reports: Vec<Report>) {
    for report in reports {
        match report {
            Report::Started {
                key: (port, _),
                error,
            } => warn!(
                port = %port,
                "sending out of port {port} failed: {error} (further failures of this kind are counted, not logged one by one)"
            ),
            Report::Summary {
                key: (port, errno),
                count,
                over,
                ended,
            } => warn!(
                port = %port,
                count,
                "sending out of port {port}: {count} more failure(s) ({}) {} {:.1} s",
                io::Error::from_raw_os_error(errno),
                if ended { "in an incident that ended after" } else { "so far, over" },
                over.as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_incident_and_a_count() {
        let mut incidents = Incidents::default();
        let t0 = Instant::now();
        let key = (PortNo(2), libc::EMSGSIZE);
        let mut lines = incidents.note(key, &"Message too long", t0);
        assert!(matches!(lines.as_slice(), [Report::Started { .. }]));
        for ms in 1..1000 {
            lines.extend(incidents.note(key, &"x", t0 + Duration::from_millis(ms)));
        }
        assert_eq!(lines.len(), 1, "999 more failures, nothing logged yet");
        let ended = incidents.end(t0 + Duration::from_millis(2500), false);
        assert_eq!(
            ended,
            vec![Report::Summary {
                key,
                count: 999,
                over: Duration::from_millis(999),
                ended: true
            }]
        );
        assert!(incidents.is_empty());
        let again = incidents.note(key, &"x", t0 + Duration::from_secs(3));
        assert!(
            matches!(again.as_slice(), [Report::Started { .. }]),
            "a new incident"
        );
    }

    #[test]
    fn a_long_incident_is_summarised_every_repeat() {
        let mut incidents = Incidents::default();
        let t0 = Instant::now();
        let key = (PortNo(3), libc::ENETUNREACH);
        let mut summaries = 0;
        for ms in (0..35_000).step_by(100) {
            for r in incidents.note(key, &"x", t0 + Duration::from_millis(ms)) {
                if matches!(r, Report::Summary { ended: false, .. }) {
                    summaries += 1;
                }
            }
        }
        assert_eq!(summaries, 3, "at 10, 20 and 30 s");
        assert_eq!(incidents.end(t0 + Duration::from_secs(36), true).len(), 1);
    }
}
