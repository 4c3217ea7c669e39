//! [`Backoff`]: reconnect delays that double per failure up to a cap, with
//! jitter from a seeded RNG.
//!
//! Jitter spreads the reconnects of nodes that lost a peer at the same
//! instant, so they do not hammer it in lockstep when it comes back. The
//! RNG is seeded, never global, so a test replays the same delays.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Exponential backoff with "equal jitter": each delay is half the
/// exponential step plus a random part of up to the other half.
///
/// ```
/// use std::time::Duration;
/// use raft_actors_transport_tcp::Backoff;
/// let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(80), 7);
/// let d: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
/// assert!(d[0] >= Duration::from_millis(5) && d[0] <= Duration::from_millis(10));
/// assert!(d[5] >= Duration::from_millis(40) && d[5] <= Duration::from_millis(80));
/// b.reset();
/// assert!(b.next_delay() <= Duration::from_millis(10));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    /// Delays from `min` doubling up to `max`, jittered from `seed`.
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        half + half.mul_f64(self.rng.gen::<f64>())
    }

    /// Back to the shortest delay, after a connection succeeded.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
