//! What the leader knows of one follower's log, and how hard it may push
//! entries at it (etcd raft's flow control, thesis §10.2.1 pipelining).
//!
//! Never moves `match_index` backwards: a match is a durable fact.

use std::collections::VecDeque;

use super::LogIndex;

/// How the leader sends to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the follower's log matches is unknown: one AppendEntries at a
    /// time, each answered before the next.
    Probe,
    /// The follower matches; AppendEntries stream optimistically, up to the
    /// in-flight window.
    Replicate,
    /// The follower needs compacted entries: a snapshot is on its way, one
    /// chunk at a time.
    Snapshot,
}

/// The leader's view of one peer.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known replicated (and durable) on the peer.
    pub(crate) match_index: LogIndex,
    /// Next index to send.
    pub(crate) next_index: LogIndex,
    pub(crate) state: ProgressState,
    /// In probe: a probe is out and unanswered.
    pub(crate) probe_sent: bool,
    /// In replicate: for each unacknowledged AppendEntries, its last index
    /// and the latest heartbeat round opened before it left.
    pub(crate) inflight: VecDeque<(LogIndex, u64)>,
    /// Heard from since the last check-quorum.
    pub(crate) recent_active: bool,
    /// The leader's tick when the peer last answered, this term.
    pub(crate) heard_at: Option<u64>,
    /// Highest read round the peer acknowledged.
    pub(crate) acked_seq: u64,
    /// Highest commit index sent to the peer.
    pub(crate) commit_sent: LogIndex,
    /// In snapshot: the snapshot's index, the next byte to send, and
    /// whether a chunk is out unanswered.
    pub(crate) snapshot_index: LogIndex,
    pub(crate) snapshot_offset: u64,
    pub(crate) snapshot_in_flight: bool,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: false,
            heard_at: None,
            acked_seq: 0,
            commit_sent: 0,
            snapshot_index: 0,
            snapshot_offset: 0,
            snapshot_in_flight: false,
        }
    }

    /// Whether another AppendEntries may leave now.
    pub(crate) fn can_send(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => !self.probe_sent,
            ProgressState::Replicate => self.inflight.len() < max_inflight,
            ProgressState::Snapshot => false,
        }
    }

    /// Switches to sending the snapshot at `index`, from its first byte.
    pub(crate) fn start_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot;
        self.inflight.clear();
        self.snapshot_index = index;
        self.snapshot_offset = 0;
        self.snapshot_in_flight = false;
    }

    /// The peer holds everything up to `index` (it installed the snapshot,
    /// or had it committed already): probe from there. Returns whether the
    /// match moved.
    pub(crate) fn snapshot_done(&mut self, index: LogIndex) -> bool {
        let news = index > self.match_index;
        self.match_index = self.match_index.max(index);
        self.next_index = self.next_index.max(self.match_index + 1);
        if self.state == ProgressState::Snapshot {
            self.state = ProgressState::Probe;
            self.probe_sent = false;
            self.next_index = self.match_index + 1;
        }
        news
    }

    /// Records an AppendEntries carrying entries up to `last`, sent after
    /// heartbeat round `round` was opened.
    pub(crate) fn sent(&mut self, last: LogIndex, round: u64) {
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot => self.probe_sent = true,
            ProgressState::Replicate => {
                self.next_index = last + 1;
                self.inflight.push_back((last, round));
            }
        }
    }

    /// The peer holds the log up to `index`. Returns whether that is news.
    pub(crate) fn acked(&mut self, index: LogIndex) -> bool {
        let news = index > self.match_index;
        if news {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(index + 1);
        while self.inflight.front().is_some_and(|(i, _)| *i <= index) {
            self.inflight.pop_front();
        }
        match self.state {
            ProgressState::Probe => {
                self.state = ProgressState::Replicate;
                self.probe_sent = false;
                self.inflight.clear();
            }
            ProgressState::Replicate => {}
            // A late answer to an AppendEntries; the snapshot goes on
            // unless the peer now holds what it covers.
            ProgressState::Snapshot => {
                if self.match_index >= self.snapshot_index {
                    self.snapshot_done(self.match_index);
                }
            }
        }
        news
    }

    /// The peer refused `rejected` (a `prev_index`); `next` is where to
    /// probe from. Returns false for a stale refusal, which changes nothing.
    pub(crate) fn refused(&mut self, rejected: LogIndex, next: LogIndex) -> bool {
        // Everything up to match is known good: a refusal at or below it
        // answers an older message.
        if rejected <= self.match_index {
            return false;
        }
        // A probe answers only the probe out, at next - 1; a snapshot in
        // progress is not interrupted by an old refusal.
        if (self.state == ProgressState::Probe && rejected + 1 != self.next_index)
            || self.state == ProgressState::Snapshot
        {
            return false;
        }
        self.state = ProgressState::Probe;
        self.inflight.clear();
        self.probe_sent = false;
        // rejected > match here, so the range is never empty.
        self.next_index = next.clamp(self.match_index + 1, rejected);
        true
    }

    /// Forgets what is in flight and probes again from the match.
    pub(crate) fn reprobe(&mut self) {
        self.state = ProgressState::Probe;
        self.inflight.clear();
        self.probe_sent = false;
        self.next_index = self.match_index + 1;
    }

    /// The peer answered heartbeat round `round`: unblock a paused probe.
    /// An AppendEntries sent before that round and still unanswered was
    /// most likely lost (links deliver in order, so its answer would have
    /// come first): probe again from the match, or the peer would wait for
    /// the next proposal to notice the gap.
    pub(crate) fn heard_heartbeat(&mut self, round: u64) {
        self.recent_active = true;
        match self.state {
            ProgressState::Probe => self.probe_sent = false,
            ProgressState::Replicate => {
                if self.inflight.front().is_some_and(|(_, sent)| *sent < round) {
                    self.reprobe();
                }
            }
            // The chunk out may be lost: send it again.
            ProgressState::Snapshot => self.snapshot_in_flight = false,
        }
    }
}
