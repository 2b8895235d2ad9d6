//! Underlay faults as incidents: errors counted per reason, and logged once per incident.
//!
//! When the underlay breaks (a link down, the local address or the route to a peer gone, a peer
//! away and ICMP errors coming back), every send to that peer fails the same way, thousands of
//! times a second. [`ErrorReason`] names what the system said (one `errno` class each),
//! [`ReasonCounts`] counts them, and [`Incidents`] turns the stream into what an operator wants
//! to read: the first error of a kind on a port (or socket) opens an incident, which is logged;
//! the repeats are only counted; a success once no error came for [`QUIET`] closes the
//! incident, logged with how many errors it saw ("recovered after N errors"). The quiet time
//! keeps an incident whose errors come and go (ICMP errors arrive about once a second, rate
//! limited by the peer's kernel, between sends that succeed) one incident. Pure: the caller
//! says what happened and when, and logs what it is told.

use std::fmt;
use std::time::{Duration, Instant};

/// How long after its last error a success closes an incident.
pub const QUIET: Duration = Duration::from_secs(2);

/// Why the system refused a send or a receive, by `errno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// ENETUNREACH: no route (the link is down, the route was removed).
    NetUnreachable,
    /// EHOSTUNREACH: the peer did not answer ARP / neighbour discovery, or an ICMP said so.
    HostUnreachable,
    /// EADDRNOTAVAIL: the local address is not (or no longer) on this host.
    AddrNotAvailable,
    /// ECONNREFUSED: an ICMP port unreachable came back (nothing listens at the peer).
    ConnRefused,
    /// ENOPROTOOPT: an ICMP protocol unreachable came back (no GRE at the peer).
    ProtoUnreachable,
    /// EMSGSIZE: larger than the path MTU.
    MessageTooBig,
    /// ENOBUFS or EAGAIN: a queue was full.
    NoBuffers,
    /// Anything else.
    Other,
}

impl ErrorReason {
    /// Every reason, in the order they are printed.
    pub const ALL: [ErrorReason; 8] = [
        ErrorReason::NetUnreachable,
        ErrorReason::HostUnreachable,
        ErrorReason::AddrNotAvailable,
        ErrorReason::ConnRefused,
        ErrorReason::ProtoUnreachable,
        ErrorReason::MessageTooBig,
        ErrorReason::NoBuffers,
        ErrorReason::Other,
    ];

    /// The reason for an `errno` (`None`: not an OS error, [`ErrorReason::Other`]).
    pub fn from_errno(errno: Option<i32>) -> ErrorReason {
        match errno {
            Some(libc::ENETUNREACH | libc::ENETDOWN) => ErrorReason::NetUnreachable,
            Some(libc::EHOSTUNREACH | libc::EHOSTDOWN) => ErrorReason::HostUnreachable,
            Some(libc::EADDRNOTAVAIL) => ErrorReason::AddrNotAvailable,
            Some(libc::ECONNREFUSED) => ErrorReason::ConnRefused,
            Some(libc::ENOPROTOOPT | libc::EPROTO) => ErrorReason::ProtoUnreachable,
            Some(libc::EMSGSIZE) => ErrorReason::MessageTooBig,
            Some(libc::ENOBUFS | libc::EAGAIN) => ErrorReason::NoBuffers,
            _ => ErrorReason::Other,
        }
    }

    /// The reason of an I/O error.
    pub fn of(e: &std::io::Error) -> ErrorReason {
        ErrorReason::from_errno(e.raw_os_error())
    }

    /// Its name in reports: the `errno` name, lower case.
    pub fn name(self) -> &'static str {
        match self {
            ErrorReason::NetUnreachable => "enetunreach",
            ErrorReason::HostUnreachable => "ehostunreach",
            ErrorReason::AddrNotAvailable => "eaddrnotavail",
            ErrorReason::ConnRefused => "econnrefused",
            ErrorReason::ProtoUnreachable => "enoprotoopt",
            ErrorReason::MessageTooBig => "emsgsize",
            ErrorReason::NoBuffers => "enobufs",
            ErrorReason::Other => "other",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Errors counted per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCounts([u64; ErrorReason::ALL.len()]);

impl ReasonCounts {
    /// Counts one error.
    pub fn add(&mut self, reason: ErrorReason) {
        self.add_n(reason, 1);
    }

    /// Counts `n` errors.
    pub fn add_n(&mut self, reason: ErrorReason, n: u64) {
        self.0[reason.index()] += n;
    }

    /// How many errors of `reason`.
    pub fn get(&self, reason: ErrorReason) -> u64 {
        self.0[reason.index()]
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// The non-zero counts as `name=N` words separated by spaces; empty when there are none.
impl fmt::Display for ReasonCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for reason in ErrorReason::ALL {
            let n = self.get(reason);
            if n > 0 {
                write!(f, "{}{}={n}", if first { "" } else { " " }, reason.name())?;
                first = false;
            }
        }
        Ok(())
    }
}

/// What the caller should log after telling [`Incidents`] what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report<K> {
    /// The first error of `reason` on `key`: an incident began (log it).
    Began {
        /// Where (a port, a socket).
        key: K,
        /// Why.
        reason: ErrorReason,
    },
    /// `key` works again; its incident saw `errors` errors (log it).
    Recovered {
        /// Where.
        key: K,
        /// The reason of the incident's first error.
        reason: ErrorReason,
        /// Errors counted during the incident, the first included.
        errors: u64,
    },
}

/// The open incidents of one thread, by key (a port, a socket). A handful at most: a linear
/// list, and nothing at all allocated while the underlay is healthy.
#[derive(Debug)]
pub struct Incidents<K> {
    open: Vec<Open<K>>,
}

#[derive(Debug)]
struct Open<K> {
    key: K,
    reason: ErrorReason,
    errors: u64,
    last_error: Instant,
}

impl<K> Default for Incidents<K> {
    fn default() -> Self {
        Incidents { open: Vec::new() }
    }
}

impl<K: Copy + PartialEq> Incidents<K> {
    /// An error on `key`: a report when it begins an incident, `None` for a repeat (only
    /// counted). An error of another reason during an incident is counted in it.
    pub fn error(&mut self, key: K, reason: ErrorReason, now: Instant) -> Option<Report<K>> {
        if let Some(open) = self.open.iter_mut().find(|o| o.key == key) {
            open.errors += 1;
            open.last_error = now;
            return None;
        }
        self.open.push(Open {
            key,
            reason,
            errors: 1,
            last_error: now,
        });
        Some(Report::Began { key, reason })
    }

    /// A success on `key` at `now`: a report when it ends an incident (no error for [`QUIET`]).
    pub fn success(&mut self, key: K, now: Instant) -> Option<Report<K>> {
        let i = self
            .open
            .iter()
            .position(|o| o.key == key && now.saturating_duration_since(o.last_error) >= QUIET)?;
        let o = self.open.swap_remove(i);
        Some(Report::Recovered {
            key,
            reason: o.reason,
            errors: o.errors,
        })
    }

    /// Whether any incident is open (the caller then looks for successes).
    pub fn any_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Whether an incident on `key` is open.
    pub fn is_open(&self, key: K) -> bool {
        self.open.iter().any(|o| o.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_maps_to_reason_and_name() {
        let cases = [
            (libc::ENETUNREACH, "enetunreach"),
            (libc::EHOSTUNREACH, "ehostunreach"),
            (libc::EADDRNOTAVAIL, "eaddrnotavail"),
            (libc::EINVAL, "other"),
            (libc::ECONNREFUSED, "econnrefused"),
            (libc::ENOPROTOOPT, "enoprotoopt"),
            (libc::EMSGSIZE, "emsgsize"),
            (libc::ENOBUFS, "enobufs"),
            (libc::EPERM, "other"),
        ];
        for (errno, name) in cases {
            assert_eq!(ErrorReason::from_errno(Some(errno)).name(), name, "{errno}");
        }
        assert_eq!(ErrorReason::from_errno(None), ErrorReason::Other);
        let e = std::io::Error::from_raw_os_error(libc::ENETUNREACH);
        assert_eq!(ErrorReason::of(&e), ErrorReason::NetUnreachable);
    }

    #[test]
    fn counts_print_only_what_happened() {
        let mut c = ReasonCounts::default();
        assert_eq!(c.to_string(), "");
        c.add(ErrorReason::ConnRefused);
        c.add(ErrorReason::NetUnreachable);
        c.add(ErrorReason::NetUnreachable);
        assert_eq!(c.to_string(), "enetunreach=2 econnrefused=1");
        assert_eq!(c.total(), 3);
        assert_eq!(c.get(ErrorReason::NetUnreachable), 2);
    }

    #[test]
    fn an_incident_is_reported_once_when_it_begins_and_once_when_it_ends() {
        let t0 = Instant::now();
        let later = t0 + QUIET;
        let mut inc = Incidents::default();
        assert!(!inc.any_open());
        assert_eq!(
            inc.success(2, t0),
            None,
            "a success without an incident says nothing"
        );
        assert_eq!(
            inc.error(2, ErrorReason::NetUnreachable, t0),
            Some(Report::Began {
                key: 2,
                reason: ErrorReason::NetUnreachable
            })
        );
        for _ in 0..9_999 {
            assert_eq!(inc.error(2, ErrorReason::NetUnreachable, t0), None);
        }
        // Another reason during the same incident is counted in it.
        assert_eq!(inc.error(2, ErrorReason::HostUnreachable, t0), None);
        assert!(inc.any_open() && inc.is_open(2) && !inc.is_open(3));
        // A success too soon after an error (errors that come and go) keeps it open.
        assert_eq!(inc.success(2, t0 + QUIET / 2), None);
        assert!(inc.is_open(2));
        assert_eq!(
            inc.success(2, later),
            Some(Report::Recovered {
                key: 2,
                reason: ErrorReason::NetUnreachable,
                errors: 10_001
            })
        );
        assert_eq!(inc.success(2, later), None);
        assert!(!inc.any_open());
        // The next failure is a new incident.
        assert!(matches!(
            inc.error(2, ErrorReason::ConnRefused, later),
            Some(Report::Began { .. })
        ));
    }

    #[test]
    fn incidents_on_different_keys_are_separate() {
        let t0 = Instant::now();
        let mut inc = Incidents::default();
        assert!(inc.error(2, ErrorReason::NetUnreachable, t0).is_some());
        assert!(inc.error(3, ErrorReason::NetUnreachable, t0).is_some());
        assert_eq!(inc.error(3, ErrorReason::NetUnreachable, t0), None);
        assert!(matches!(
            inc.success(3, t0 + QUIET),
            Some(Report::Recovered {
                key: 3,
                errors: 2,
                ..
            })
        ));
        assert!(inc.is_open(2));
    }
}
