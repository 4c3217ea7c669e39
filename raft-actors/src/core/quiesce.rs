//! Quiescence: an idle group stops its clock, so thousands of groups in
//! one process cost no timer and no heartbeat while nothing happens
//! (dragonboat's quiesce). Off unless [`Config::quiesce_after_ticks`] is
//! set.
//!
//! **Entering.** The leader counts the ticks during which it has nothing
//! left to do: every member holds every entry and knows the commit index,
//! an entry of its own term is committed, no read, transfer or joint
//! configuration waits. After `quiesce_after_ticks` of them its heartbeat
//! rounds go out as [`Body::Quiesce`](super::Body::Quiesce): a heartbeat
//! that also tells the follower to stop its election timer. The leader
//! stops its own once every member acknowledged such a round, so a lost
//! Quiesce is sent again rather than leaving a follower to time out. From
//! then on [`RaftCore::tick`] does nothing, and
//! [`RaftCore::is_quiesced`] tells the driver it may stop ticking.
//!
//! **Waking.** Any message but a Quiesce or a heartbeat's answer, any
//! proposal, read, transfer, membership change or campaign, unless the
//! message is stale or a non-member's vote request, so a removed server
//! campaigning forever cannot keep a group awake. A member's vote request
//! wakes even when refused: that member cannot hear its leader. A woken follower tells its leader ([`Body::Wake`](super::Body::Wake)),
//! whose heartbeats then keep it from timing out.
//!
//! **Why it stays safe.** Nothing here changes what a vote, an append or
//! a commit requires; only timers stop.
//! - *Leases.* A leader's lease is void once it wakes: until a new round
//!   is confirmed it serves no lease read, so a lease measured in ticks
//!   (which stopped) never outlasts real time. Its followers measure their
//!   refusal to vote from the last round they acknowledged, the Quiesce
//!   round, exactly as from a heartbeat.
//! - *Check-quorum.* A quiesced leader checks no quorum and may have been
//!   cut off meanwhile; but it can serve nothing without one (writes and
//!   ReadIndex need a quorum, its lease is void) and, once woken, it
//!   checks again within an election timeout (the peers' activity flags
//!   are cleared at wake, so none from before counts).
//!
//! **The price.** A quiesced group whose leader dies elects a new one only
//! once something wakes one of its members: a request, or any message. A
//! member restarted meanwhile knows no leader to wake, times out and may
//! win an election the group did not need (safe, as any election is).
//!
//! It must never quiesce a leader while a member lacks an entry or the
//! commit index, nor let a woken leader serve a lease read before a fresh
//! round confirms it.

use super::{Body, NodeId, RaftCore, Role};

/// The leader's and followers' quiescence state.
#[derive(Clone, Debug, Default)]
pub(super) struct Quiescence {
    /// Leader: consecutive ticks with nothing left to do.
    idle_ticks: u64,
    /// Leader: the first read round sent as a Quiesce; every member's
    /// acknowledgement of it (or a later one) quiesces the leader.
    round: Option<u64>,
    /// Timers stopped: ticks do nothing until something wakes the node.
    quiesced: bool,
}

impl RaftCore {
    /// Whether this node's timers are stopped because its group is idle
    /// ([`Config::quiesce_after_ticks`](super::Config::quiesce_after_ticks)):
    /// [`tick`](Self::tick) does nothing until a message, a proposal, a
    /// read or a command wakes it, so a driver may stop ticking meanwhile.
    ///
    /// ```
    /// use raft_actors::core::{Config, Membership, RaftCore, Recovered};
    /// use rand::SeedableRng;
    /// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let cfg = Config { quiesce_after_ticks: Some(20), ..Config::default() };
    /// let boot = Recovered::bootstrap(Membership::voters([1]));
    /// let mut core = RaftCore::new(1, cfg, boot, rng).unwrap();
    /// for _ in 0..100 {
    ///     core.tick();
    ///     while let Some(ready) = core.ready() {
    ///         let _ = ready.split().1.persisted();
    ///         core.advance();
    ///     }
    /// }
    /// // A leader alone: idle for 20 ticks after its first commit.
    /// assert!(core.is_quiesced());
    /// core.propose(1, "x".into()).unwrap();
    /// assert!(!core.is_quiesced());
    /// ```
    pub fn is_quiesced(&self) -> bool {
        self.quiesce.quiesced
    }

    /// Leader, at each tick: counts an idle tick, or starts over.
    pub(super) fn tick_quiesce(&mut self) {
        let Some(after) = self.cfg.quiesce_after_ticks else {
            return;
        };
        if !self.has_nothing_to_do() {
            self.quiesce = Quiescence::default();
            return;
        }
        self.quiesce.idle_ticks += 1;
        // Alone, no one has to acknowledge anything.
        if self.quiesce.idle_ticks >= after && self.progress.is_empty() {
            self.enter_quiesce();
        }
    }

    /// Leader: whether the heartbeat round `seq` about to go out should be
    /// a Quiesce; records it as the round every member must acknowledge.
    pub(super) fn quiesce_round(&mut self, seq: u64) -> bool {
        let Some(after) = self.cfg.quiesce_after_ticks else {
            return false;
        };
        if self.quiesce.idle_ticks < after || !self.has_nothing_to_do() {
            return false;
        }
        self.quiesce.round.get_or_insert(seq);
        true
    }

    /// Leader: a member acknowledged a round; quiesces once every member
    /// acknowledged a Quiesce round, if still idle.
    pub(super) fn quiesce_if_acknowledged(&mut self) {
        let Some(round) = self.quiesce.round else {
            return;
        };
        let all = self.progress.values().all(|p| p.acked_seq >= round);
        if all && self.has_nothing_to_do() && !self.quiesce.quiesced {
            self.enter_quiesce();
        }
    }

    /// Follower: its leader's Quiesce, a heartbeat that also stops its
    /// election timer, unless this node holds entries the Quiesce does not
    /// know committed: then it was sent before them (delayed, or overtaken
    /// by later appends), the group is not idle, and the timer must run
    /// (simulation seed 4806: a voter quiesced by a stale Quiesce while
    /// its leader removed itself, and no one was left to campaign).
    pub(super) fn handle_quiesce(&mut self, from: NodeId, commit: u64, seq: u64) {
        self.handle_heartbeat(from, commit, seq);
        let holds_all = commit >= self.log.last_index();
        if self.role == Role::Follower && self.leader == Some(from) && holds_all {
            self.enter_quiesce();
        }
    }

    fn enter_quiesce(&mut self) {
        if !self.quiesce.quiesced {
            self.quiesce.quiesced = true;
            self.events.quiesced += 1;
        }
    }

    /// Restarts the timers after anything but a Quiesce or a heartbeat's
    /// answer.
    pub(super) fn wake(&mut self) {
        let was = std::mem::take(&mut self.quiesce).quiesced;
        if !was {
            return;
        }
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        match self.role {
            Role::Leader => {
                // No lease and no quorum seen from before the pause: both
                // are earned again by rounds sent from now on.
                self.reads.void_lease();
                for pr in self.progress.values_mut() {
                    pr.recent_active = false;
                }
                self.reads.request_round();
            }
            // Even when its leader's message woke it: that message may be
            // a late one, sent before the leader quiesced, which would then
            // send nothing more before this node times out.
            _ => {
                if let Some(leader) = self.leader {
                    self.send(leader, Body::Wake);
                }
            }
        }
    }

    /// Leader: every member holds every entry and the commit index, and no
    /// read, transfer or configuration change waits.
    fn has_nothing_to_do(&self) -> bool {
        let last = self.log.last_index();
        self.role == Role::Leader
            && self.log.commit == last
            && self.log.term(last) == Some(self.term)
            && self.transfer.is_none()
            && !self.membership.is_joint()
            && self.reads.is_idle()
            && self.outstanding.is_empty()
            && self
                .progress
                .values()
                .all(|p| p.match_index == last && p.commit_sent >= last)
    }
}
