//! The switch's generation: a number bumped by every change that may alter a decision (a flow
//! table swapped in, a MAC that moved, a flush, a tunnel MTU, the fail mode, a reload). A copy
//! of a decision made in generation `g` (a fast-path cache entry) is valid only while the
//! generation is still `g`.
//!
//! The number lives here; a publisher (the fast path's map, set by the daemon) is told each new
//! value before [`Generation::bump`] returns, so nothing follows a stale decision once the
//! change that staled it has returned.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Where a new generation is published (the fast path writes it into its map).
pub type Publisher = Box<dyn Fn(u64) + Send>;

/// The switch's generation, shared by its shards and kept across reloads.
pub struct Generation {
    value: AtomicU64,
    /// Serialises publishing, so that the value published last is the highest.
    publisher: Mutex<Option<Publisher>>,
}

impl Generation {
    /// Generation 1, published nowhere.
    pub fn new() -> Generation {
        Generation {
            value: AtomicU64::new(1),
            publisher: Mutex::new(None),
        }
    }

    /// The generation in force. Read it before deciding: a decision made after a change reads
    /// the number that change bumped to.
    pub fn current(&self) -> u64 {
        self.value.load(Ordering::Acquire)
    }

    /// Starts a new generation, after a change, and publishes it.
    pub fn bump(&self) {
        self.value.fetch_add(1, Ordering::AcqRel);
        let publisher = self.publisher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(publish) = &*publisher {
            // Under the lock the value can only have grown: publish the newest.
            publish(self.current());
        }
    }

    /// Publishes every new generation (and the current one now) through `publish`.
    pub fn set_publisher(&self, publish: Publisher) {
        let mut publisher = self.publisher.lock().unwrap_or_else(|p| p.into_inner());
        publish(self.current());
        *publisher = Some(publish);
    }

    /// Publishes nowhere any more.
    pub fn clear_publisher(&self) {
        *self.publisher.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Default for Generation {
    fn default() -> Self {
        Generation::new()
    }
}

impl fmt::Debug for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Generation({})", self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bumps_are_published_in_order_and_the_last_is_the_highest() {
        let g = Arc::new(Generation::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        g.set_publisher(Box::new(move |v| s.lock().unwrap().push(v)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let g = Arc::clone(&g);
                std::thread::spawn(move || (0..100).for_each(|_| g.bump()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let seen = seen.lock().unwrap();
        assert_eq!(g.current(), 401);
        assert_eq!(*seen.last().unwrap(), 401);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }
}
