//! Frames for the OpenFlow controllers (PACKET_IN), as the switch hands them out: why the
//! frame goes up, from which port, under which flow, and the per-daemon rate limit that keeps a
//! host flooding unknown frames from starving the data path or the controllers.
//!
//! Pure: the limiter is a token bucket driven by the `now` the switch is given.

use std::time::{Duration, Instant};

use crate::flow::PortNo;

/// Why a frame goes to the controllers (OpenFlow's `ofp_packet_in_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketInReason {
    /// The table-miss flow (priority 0, empty match) sent it: OFPR_NO_MATCH.
    NoMatch,
    /// Another flow's `controller` action: OFPR_ACTION.
    Action,
}

/// What goes with a frame to the controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInMeta {
    /// The port it came in on.
    pub in_port: PortNo,
    /// Why.
    pub reason: PacketInReason,
    /// The cookie of the flow that sent it.
    pub cookie: u64,
    /// The `max_len` of the action (kept for the record: the whole frame goes, vxtund has no
    /// buffers).
    pub max_len: u16,
}

/// Packet-in counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketInStats {
    /// Frames handed out for the controllers.
    pub sent: u64,
    /// Frames a `controller` action asked for beyond the rate limit, not handed out.
    pub rate_limited: u64,
}

/// The default packet-in rate limit, per daemon: frames per second, and the burst allowed.
pub const DEFAULT_RATE: u32 = 1000;
/// See [`DEFAULT_RATE`].
pub const DEFAULT_BURST: u32 = 100;

/// A token bucket: `rate` frames per second on average, at most `burst` at once.
#[derive(Debug, Clone)]
pub struct PacketInLimiter {
    rate: u32,
    burst: u32,
    tokens: f64,
    last: Option<Instant>,
}

impl Default for PacketInLimiter {
    fn default() -> Self {
        PacketInLimiter::new(DEFAULT_RATE, DEFAULT_BURST)
    }
}

impl PacketInLimiter {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> PacketInLimiter {
        PacketInLimiter {
            rate,
            burst: burst.max(1),
            tokens: f64::from(burst.max(1)),
            last: None,
        }
    }

    /// Whether one more frame may go up at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l));
        self.last = Some(now);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() * f64::from(self.rate)).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_passes_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut l = PacketInLimiter::new(100, 10);
        let burst = (0..50).filter(|_| l.allow(t0)).count();
        assert_eq!(burst, 10, "the burst at one instant");
        // One second later: 100 more tokens, capped at the burst.
        let later = (0..50)
            .filter(|_| l.allow(t0 + Duration::from_secs(1)))
            .count();
        assert_eq!(later, 10);
        // Over ten seconds, one frame every millisecond: the rate, about 100 per second.
        let mut passed = 0;
        for ms in 0..10_000u64 {
            if l.allow(t0 + Duration::from_millis(2_000 + ms)) {
                passed += 1;
            }
        }
        assert!((990..=1_010).contains(&passed), "{passed}");
    }
}
