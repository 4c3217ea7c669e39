//! Logical time: what one tick does for each role. A follower or a
//! candidate counts toward an election; a leader toward a heartbeat round,
//! a quorum check (check-quorum), a transfer's deadline and quiescence.
//! Ticks measure elections and heartbeats only; leases are measured by the
//! driver's clock (`lease`). It must never send or persist anything itself:
//! what a tick decides goes out with the next `Ready`.

use super::{RaftCore, ReadError, Role};

impl RaftCore {
    /// Advances logical time by one tick: followers count toward an
    /// election, leaders toward a heartbeat and a quorum check.
    pub fn tick(&mut self) {
        // Quiesced, time stands still: nothing to time out or to send.
        if self.is_quiesced() {
            return;
        }
        self.now += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.randomized_timeout {
                    self.election_elapsed = 0;
                    self.campaign();
                }
            }
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            // Check-quorum (thesis §6.2): a leader cut off from a majority
            // steps down instead of leading nobody, which also fails its
            // pending reads instead of leaving them hanging.
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                self.counters.check_quorum_step_downs += 1;
                self.fail_pending_reads(ReadError::NoQuorum);
                self.become_follower(self.term, None);
                return;
            }
            for pr in self.progress.values_mut() {
                pr.recent_active = false;
            }
        }
        self.tick_transfer();
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.reads.request_round();
        }
        self.tick_quiesce();
    }
}
