//! Time for leases: the driver's monotonic clock readings, and the one
//! question a follower's vote rests on, whether a leader's lease still
//! protects it.
//!
//! Leases are measured by the clock alone once the driver gives readings:
//! ticks stop when a process is frozen and burst when it resumes, so a
//! lease measured in ticks could outlast real time. It must never measure
//! a lease by anything that can stop while the cluster moves on.

use super::{BrokenRule, RaftCore, Role};

impl RaftCore {
    /// Tells the core how much real time has passed since it was built, in
    /// whole ticks (rounded down), as the driver's monotonic clock measures
    /// it (readings only go forward; a lower one is ignored).
    ///
    /// Ticks are the core's time, but they stop whenever the driver does (a
    /// frozen process, a blocked thread) and then burst or resume as if
    /// nothing had happened, while the rest of the cluster moved on. Once a
    /// driver gives readings, leases are measured by them alone: the
    /// leader's lease from the send time of a confirmed heartbeat round,
    /// and a follower's refusal to vote (and to campaign) within an
    /// election timeout of hearing from its leader, which is what backs
    /// the lease. A driver that gives readings must give one before every
    /// input (step, tick, proposal, read): a stale reading would stretch a
    /// lease. Elections and heartbeats stay on ticks, and without readings
    /// the core measures leases in ticks.
    ///
    /// ```
    /// use raft_actors::core::{Config, Membership, RaftCore, Recovered};
    /// use rand::SeedableRng;
    /// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let boot = Recovered::bootstrap(Membership::voters([1]));
    /// let mut core = RaftCore::new(1, Config::default(), boot, rng).unwrap();
    /// core.observe_clock(25); // 25 ticks' worth of real time went by
    /// core.observe_clock(3);  // an older reading changes nothing
    /// ```
    pub fn observe_clock(&mut self, ticks_since_start: u64) {
        self.clock = Some(
            self.clock
                .map_or(ticks_since_start, |c| c.max(ticks_since_start)),
        );
    }

    /// The time leases are measured in: the driver's monotonic clock once
    /// it gave a reading, ticks before.
    pub(super) fn lease_now(&self) -> u64 {
        match self.clock {
            // The broken rule measures leases in ticks, which a stalled
            // node stops counting.
            Some(_) if self.cfg.breaks(BrokenRule::LeaseOnTicks) => self.now,
            Some(clock) => clock,
            None => self.now,
        }
    }

    /// Whether a leader's lease protects it from this node's vote.
    pub(super) fn in_lease(&self) -> bool {
        self.role == Role::Leader
            || self.lease_now() < self.last_leader_contact + self.cfg.election_ticks
    }
}
