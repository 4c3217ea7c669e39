//! Linearizable reads without writing to the log (§8, thesis §6.4):
//! ReadIndex confirmed by a heartbeat round, and lease reads.
//!
//! A read gets the leader's commit index as it stood when the read arrived,
//! and is answered only once a quorum acknowledged a heartbeat round sent
//! after that, proving no newer leader existed in between. Must never answer
//! before the leader committed an entry of its own term: until then its
//! commit index may lag entries an earlier leader acknowledged.

use std::collections::VecDeque;

use super::{BrokenRule, LogIndex, NodeId, RaftCore, ReadError, ReadOutcome, RequestId, Role};

/// A read waiting at the leader.
#[derive(Clone, Debug)]
struct PendingRead {
    id: RequestId,
    /// The node that asked (this one, or a follower that forwarded it).
    origin: NodeId,
    /// The commit index when the read arrived.
    index: LogIndex,
    /// The heartbeat round that must be acknowledged by a quorum.
    seq: u64,
}

/// The leader's read bookkeeping: numbered heartbeat rounds and the reads
/// waiting on them.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadQueue {
    /// Latest round sent.
    seq: u64,
    /// A new round must go out at the next flush.
    round_requested: bool,
    /// Reads that arrived before the leader committed in its term.
    waiting_commit: Vec<(RequestId, NodeId, bool)>,
    /// Reads waiting for their round, in arrival (hence seq) order.
    pending: VecDeque<PendingRead>,
    /// Send time (in [`RaftCore::lease_now`] ticks) of each round not yet
    /// confirmed, oldest first.
    sent_at: VecDeque<(u64, u64)>,
    /// Send tick of the latest round a quorum confirmed.
    confirmed_at: Option<u64>,
    /// Set once this leader sent TimeoutNow: its followers may then vote
    /// before its lease runs out, so the lease is void for the term.
    lease_forfeited: bool,
}

impl ReadQueue {
    pub(crate) fn reset(&mut self) {
        *self = ReadQueue::default();
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn request_round(&mut self) {
        self.round_requested = true;
    }

    pub(crate) fn round_requested(&self) -> bool {
        self.round_requested
    }

    /// No read waits on a round or a commit.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.waiting_commit.is_empty()
    }

    /// Forgets every round sent and the lease they earned: only a round
    /// sent from now on can renew it.
    pub(crate) fn void_lease(&mut self) {
        self.sent_at.clear();
        self.confirmed_at = None;
    }

    pub(crate) fn forfeit_lease(&mut self) {
        self.lease_forfeited = true;
    }

    /// Opens the requested round, if any, sent at tick `now`.
    pub(crate) fn take_round(&mut self, now: u64) -> Option<u64> {
        if !std::mem::take(&mut self.round_requested) {
            return None;
        }
        self.seq += 1;
        self.sent_at.push_back((self.seq, now));
        Some(self.seq)
    }
}

impl RaftCore {
    /// Asks for a linearizable read. Its safe index arrives as a
    /// [`ReadOutcome`] with this `id`; once this node has applied up to it,
    /// the state machine reflects every write acknowledged before the read
    /// began. A follower forwards the request to its leader. `Err` means
    /// nothing was sent (no leader is known).
    pub fn read_index(&mut self, id: RequestId) -> Result<(), ReadError> {
        self.read(id, false)
    }

    /// Like [`read_index`](Self::read_index), but a leader inside its lease
    /// answers at once, without a heartbeat round. Safe while clocks drift
    /// less than [`Config::lease_margin_ticks`](super::Config::lease_margin_ticks)
    /// allows; falls back to a round otherwise.
    pub fn lease_read(&mut self, id: RequestId) -> Result<(), ReadError> {
        self.read(id, true)
    }

    fn read(&mut self, id: RequestId, lease: bool) -> Result<(), ReadError> {
        self.wake();
        match self.role {
            Role::Leader => {
                self.leader_read(id, self.id, lease);
                Ok(())
            }
            _ if self.leader.is_some() => {
                self.forward_reads.push((id, lease));
                Ok(())
            }
            _ => Err(ReadError::NoLeader),
        }
    }

    /// Leader: takes a read from `origin` (itself or a follower).
    pub(super) fn leader_read(&mut self, id: RequestId, origin: NodeId, lease: bool) {
        if self.log.term(self.log.commit) != Some(self.term) {
            self.reads.waiting_commit.push((id, origin, lease));
            return;
        }
        let index = self.log.commit;
        let alone = self.membership.has_quorum(|n| n == self.id);
        if alone
            || (lease && self.lease_valid())
            || self.cfg.breaks(BrokenRule::ReadIndexWithoutHeartbeat)
        {
            return self.answer_read(origin, id, Ok(index));
        }
        let seq = self.reads.seq + 1;
        self.reads.request_round();
        self.reads.pending.push_back(PendingRead {
            id,
            origin,
            index,
            seq,
        });
    }

    fn lease_valid(&self) -> bool {
        let lease = self.cfg.election_ticks - self.cfg.lease_margin_ticks;
        if self.cfg.breaks(BrokenRule::LeaseBeyondSafeBound) {
            // As long as check-quorum keeps it leader: up to two election
            // timeouts after a quorum last answered.
            return self.cfg.check_quorum && !self.reads.lease_forfeited && self.transfer.is_none();
        }
        // Without check-quorum, followers do not refuse votes while they
        // hear from the leader, so nothing backs a lease.
        self.cfg.check_quorum
            && !self.reads.lease_forfeited
            && self.transfer.is_none()
            && self
                .reads
                .confirmed_at
                .is_some_and(|t| self.lease_now() < t + lease)
    }

    /// Leader: answers every read whose round a quorum acknowledged, and
    /// renews the lease from that round's send time.
    pub(super) fn confirm_reads(&mut self) {
        let (id, seq) = (self.id, self.reads.seq);
        let progress = &self.progress;
        let confirmed = self.membership.committed_index(|n| {
            if n == id {
                seq
            } else {
                progress.get(&n).map_or(0, |p| p.acked_seq)
            }
        });
        while self
            .reads
            .sent_at
            .front()
            .is_some_and(|(s, _)| *s <= confirmed)
        {
            if let Some((_, at)) = self.reads.sent_at.pop_front() {
                // The lease runs from the round's send time: the followers
                // that acknowledged it started refusing votes no earlier.
                let at = if self.cfg.breaks(BrokenRule::LeaseRenewedAtAck) {
                    self.lease_now()
                } else {
                    at
                };
                self.reads.confirmed_at = Some(at);
            }
        }
        while self
            .reads
            .pending
            .front()
            .is_some_and(|r| r.seq <= confirmed)
        {
            if let Some(r) = self.reads.pending.pop_front() {
                self.answer_read(r.origin, r.id, Ok(r.index));
            }
        }
    }

    /// Leader: its first entry of the term committed; reads that waited for
    /// it can now take the commit index.
    pub(super) fn release_reads_waiting_for_commit(&mut self) {
        for (id, origin, lease) in std::mem::take(&mut self.reads.waiting_commit) {
            self.leader_read(id, origin, lease);
        }
    }

    /// Leadership is lost: every read it held fails rather than hangs.
    pub(super) fn fail_pending_reads(&mut self, err: ReadError) {
        let waiting = std::mem::take(&mut self.reads.waiting_commit);
        let pending = std::mem::take(&mut self.reads.pending);
        let all = waiting
            .into_iter()
            .map(|(id, origin, _)| (id, origin))
            .chain(pending.into_iter().map(|r| (r.id, r.origin)));
        for (id, origin) in all {
            self.answer_read(origin, id, Err(err.clone()));
        }
        self.reads.reset();
    }

    pub(super) fn answer_read(
        &mut self,
        origin: NodeId,
        id: RequestId,
        result: Result<LogIndex, ReadError>,
    ) {
        let outcome = ReadOutcome { id, result };
        if origin == self.id {
            // A forwarded read moved here is answered: it moves no more.
            self.reads_sent.forget(id);
            self.read_outcomes.push(outcome);
        } else {
            self.read_results.entry(origin).or_default().push(outcome);
        }
    }
}
