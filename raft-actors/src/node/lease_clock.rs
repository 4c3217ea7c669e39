//! [`LeaseClock`]: the node's monotonic clock, read in ticks, handed to the
//! core so that leases measure real time (see
//! [`RaftCore::observe_clock`](crate::core::RaftCore::observe_clock)).
//!
//! Ticks stop while the node's thread or process is stopped (a GC pause, a
//! blocked runtime, SIGSTOP, a VM migration) and resume as if no time had
//! passed; a monotonic clock keeps counting. A leader resumed after such a
//! stall must not serve a lease read from a lease that ran out while it was
//! stopped. This module only reads the clock; it must never decide
//! anything (the core compares the reading with its lease).

use std::time::Duration;

use tokio::time::Instant;

/// Monotonic time since a core was built, in whole ticks.
///
/// `tokio::time::Instant` is the monotonic clock (`CLOCK_MONOTONIC` on
/// Linux, which keeps running while a process is stopped), and follows a
/// test's paused clock, so virtual-time tests measure leases the same way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaseClock {
    origin: Instant,
    tick: Duration,
}

impl LeaseClock {
    /// A clock whose zero is now: call it when the core is built, whose
    /// tick count starts at zero too.
    pub(crate) fn start(tick: Duration) -> Self {
        LeaseClock {
            origin: Instant::now(),
            tick,
        }
    }

    /// Whole ticks elapsed since [`start`](Self::start), rounded down, as
    /// the core's lease bound assumes (see
    /// [`Config::lease_margin_ticks`](crate::core::Config::lease_margin_ticks)).
    pub(crate) fn ticks(&self) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        let elapsed = self.origin.elapsed().as_nanos() / tick;
        u64::try_from(elapsed).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn counts_whole_ticks_of_real_time() {
        tokio::time::pause();
        let clock = LeaseClock::start(Duration::from_millis(10));
        assert_eq!(clock.ticks(), 0);
        tokio::time::advance(Duration::from_millis(35)).await;
        assert_eq!(clock.ticks(), 3);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(clock.ticks(), 203);
    }
}
