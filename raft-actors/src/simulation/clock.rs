//! [`NodeClock`]: one simulated node's own clock. It runs at a rate of its
//! own (drift, within the run's bound) against the simulation's real time,
//! decides when the node's ticks fall due, and stalls: a frozen process or
//! a blocked thread takes no ticks for a while, then misses them (as a
//! timer that skips) or takes them all at once (as actix's interval does,
//! which fires every missed period on resume). Its reading is the node's
//! monotonic clock, which keeps counting through a stall.
//!
//! Integer arithmetic only (millionths of a tick), so a seed replays
//! exactly on any machine. It must never decide anything about Raft: it
//! only says how much time a node has seen.

/// Millionths of a tick in one tick.
const PPM: u64 = 1_000_000;

/// A simulated node's clock since its core was built.
///
/// ```
/// use raft_actors::simulation::NodeClock;
/// let mut clock = NodeClock::new(1_100_000); // runs 10% fast
/// let ticks: u64 = (0..10).map(|_| clock.advance()).sum();
/// assert_eq!((ticks, clock.reading()), (11, 11));
/// clock.stall();
/// assert_eq!(clock.advance() + clock.advance(), 0); // a stalled node takes no tick
/// assert_eq!(clock.reading(), 13); // but its monotonic clock runs on
/// assert_eq!(clock.resume(), 2); // the ticks it missed
/// ```
#[derive(Clone, Debug)]
pub struct NodeClock {
    /// Local time per real tick, in millionths of a tick.
    rate: u64,
    /// Local time since the core was built, in millionths of a tick.
    elapsed: u64,
    /// Ticks fallen due since the core was built (taken or missed).
    due: u64,
    /// Ticks that fell due while stalled.
    missed: u64,
    stalled: bool,
}

impl NodeClock {
    /// A clock that runs `rate` millionths of a tick per real tick.
    pub fn new(rate: u64) -> Self {
        NodeClock {
            rate,
            elapsed: 0,
            due: 0,
            missed: 0,
            stalled: false,
        }
    }

    /// The core was rebuilt: time starts again from zero with it, as the
    /// node's clock does ([`RaftCore::observe_clock`](crate::core::RaftCore::observe_clock)
    /// counts from the core's start).
    pub fn restart(&mut self) {
        *self = NodeClock::new(self.rate);
    }

    /// One tick of real time passed: returns how many of the node's ticks
    /// fall due now (0, 1, or 2 for a fast clock); none while stalled.
    pub fn advance(&mut self) -> u64 {
        self.elapsed += self.rate;
        let due = self.elapsed / PPM - self.due;
        self.due += due;
        if self.stalled {
            self.missed += due;
            return 0;
        }
        due
    }

    /// The node's monotonic clock: whole ticks of its own time since its
    /// core was built, rounded down. Runs on through a stall.
    pub fn reading(&self) -> u64 {
        self.elapsed / PPM
    }

    /// From now on the clock runs `rate` millionths of a tick per real
    /// tick (its reading stays where it is).
    pub fn set_rate(&mut self, rate: u64) {
        self.rate = rate;
    }

    /// Freezes the node: it takes no ticks until [`resume`](Self::resume).
    pub fn stall(&mut self) {
        self.stalled = true;
    }

    /// Whether the node is frozen.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// Unfreezes the node; returns the ticks it missed.
    pub fn resume(&mut self) -> u64 {
        self.stalled = false;
        std::mem::take(&mut self.missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_clock_takes_fewer_ticks_and_never_runs_ahead() {
        let mut clock = NodeClock::new(900_000);
        let ticks: u64 = (0..100).map(|_| clock.advance()).sum();
        assert_eq!(ticks, 90);
        assert_eq!(clock.reading(), 90);
    }

    #[test]
    fn a_restart_starts_from_zero_at_the_same_rate() {
        let mut clock = NodeClock::new(1_050_000);
        clock.stall();
        for _ in 0..40 {
            clock.advance();
        }
        clock.restart();
        assert!(!clock.is_stalled());
        assert_eq!((clock.reading(), clock.resume()), (0, 0));
        let ticks: u64 = (0..20).map(|_| clock.advance()).sum();
        assert_eq!(ticks, 21);
    }
}
