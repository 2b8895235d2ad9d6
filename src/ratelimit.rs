//! A token bucket per source address, so that "too big" answers cannot turn vxtund into a
//! reflector: each source gets a burst, then a steady trickle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Answers a source may get at once.
pub const BURST: u32 = 20;
/// Answers per second a source gets after its burst.
pub const PER_SECOND: u32 = 10;
/// Sources remembered at most; past that, unknown sources get no answer until idle ones go.
const MAX_SOURCES: usize = 4096;
/// A source idle this long is forgotten.
const IDLE: Duration = Duration::from_secs(10);

/// Token buckets per source.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<IpAddr, (u32, Instant)>,
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    /// Whether `source` may get an answer now (and takes a token if so).
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source) {
            // Sweep at most once a second, so a flood of spoofed sources costs O(1) per packet.
            if self
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
            {
                self.buckets
                    .retain(|_, (_, last)| now.saturating_duration_since(*last) < IDLE);
                self.last_sweep = Some(now);
            }
            if self.buckets.len() >= MAX_SOURCES {
                return false;
            }
        }
        let (tokens, last) = self.buckets.entry(source).or_insert((BURST, now));
        let refill =
            now.saturating_duration_since(*last).as_millis() as u64 * u64::from(PER_SECOND) / 1000;
        if refill > 0 {
            *tokens = (u64::from(*tokens) + refill).min(u64::from(BURST)) as u32;
            *last = now;
        }
        if *tokens == 0 {
            return false;
        }
        *tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_trickle_per_source() {
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        let a: IpAddr = "172.31.1.1".parse().unwrap();
        let b: IpAddr = "172.31.2.1".parse().unwrap();
        assert_eq!((0..100).filter(|_| r.allow(a, t0)).count(), BURST as usize);
        assert!(r.allow(b, t0), "another source has its own bucket");
        let later = t0 + Duration::from_millis(500);
        assert_eq!(
            (0..100).filter(|_| r.allow(a, later)).count(),
            (PER_SECOND / 2) as usize
        );
    }

    #[test]
    fn bounded_under_a_flood_of_sources() {
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            r.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(r.buckets.len() <= MAX_SOURCES);
        let later = t0 + IDLE;
        assert!(
            r.allow("10.0.0.1".parse().unwrap(), later),
            "idle sources are forgotten"
        );
    }
}
