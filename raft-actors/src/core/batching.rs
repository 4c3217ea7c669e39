//! Handing out [`Ready`] batches and taking their acknowledgements: the
//! core's side of pipelined persists (etcd raft's async storage writes).
//!
//! Up to [`Config::max_persists_in_flight`](super::Config) batches may be
//! outstanding; the driver acknowledges them in order with
//! [`RaftCore::advance`], each once its gate opened (see
//! [`Pipeline`](super::Pipeline)). A leader counts only acknowledged, so
//! durable, entries of its own toward the commit index. Must never hand
//! out a batch whose early messages could promise a term or vote that is
//! not durable yet.

use super::{AfterPersist, RaftCore, Ready, Role, ToPersist};

/// What the core remembers of a batch handed out and not acknowledged.
#[derive(Clone, Copy, Debug)]
pub(super) struct Outstanding {
    /// It changed the term or the vote: until it is acknowledged, neither
    /// is durable.
    term_or_vote: bool,
}

impl RaftCore {
    /// The next batch of work, or `None` when there is nothing to do or
    /// `max_persists_in_flight` batches are outstanding (handed out, not
    /// acknowledged with [`advance`](Self::advance)). Between `ready` and
    /// `advance` the driver may keep calling `step`, `tick` and `propose`,
    /// and `ready` again: their effects go into the next batch, to be
    /// persisted after this one.
    pub fn ready(&mut self) -> Option<Ready> {
        if self.outstanding.len() >= self.cfg.max_persists_in_flight {
            return None;
        }
        self.flush();
        let hs = self.hard_state();
        let handed = self.handed_hard_state;
        let term_or_vote = hs.term != handed.term || hs.vote != handed.vote;
        let mut persist = ToPersist {
            snapshot_received: self.snapshot_to_restore.is_some(),
            snapshot_chunks: std::mem::take(&mut self.snapshot_chunks),
            snapshot: self.snapshot_to_store.take(),
            hard_state: (hs != handed).then_some(hs),
            entries: self.log.take_unpersisted(),
            compact_to: self.compact_to.take(),
            must_sync: false,
            membership: None,
        };
        // etcd raft's MustSync: a node promises its term, vote and log to
        // others (Figure 2), so those must be on disk before it speaks; the
        // commit index it can relearn from the leader, and compaction is
        // harmless to lose.
        persist.must_sync =
            persist.snapshot.is_some() || !persist.entries.is_empty() || term_or_vote;
        let committed = self.log.take_committed();
        if let Some(budget) = self.cfg.log_cache_bytes {
            self.log.evict(budget);
        }
        // Counted from what is handed out to apply, since the snapshot is
        // taken after applying this batch.
        let snapshot_index = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
        // A rebuild of a damaged snapshot needs no request of its own when
        // one is under way: that one replaces it.
        let rebuild = std::mem::take(&mut self.rebuild_wanted);
        let snapshot_wanted = !self.snapshot_requested
            && (rebuild
                || (self.cfg.snapshot_threshold > 0
                    && self.log.applied.saturating_sub(snapshot_index)
                        >= self.cfg.snapshot_threshold));
        self.snapshot_requested |= snapshot_wanted;
        // A leader whose term and vote are durable (this batch changes
        // neither, and no batch in flight does) may replicate before its
        // own write lands.
        let early_ok = self.role == Role::Leader
            && !term_or_vote
            && !self.outstanding.iter().any(|o| o.term_or_vote);
        let after = AfterPersist {
            messages: std::mem::take(&mut self.msgs),
            restore: self.snapshot_to_restore.take(),
            committed,
            proposals: std::mem::take(&mut self.proposal_outcomes),
            reads: std::mem::take(&mut self.read_outcomes),
            snapshot_wanted,
        };
        let ready = Ready::new(persist, after, early_ok);
        if ready.is_empty() {
            return None;
        }
        self.handed_hard_state = hs;
        self.log.batch_handed();
        self.outstanding.push_back(Outstanding { term_or_vote });
        Some(ready)
    }

    /// Acknowledges the oldest outstanding [`Ready`]: its `ToPersist` is
    /// durable (or, for a batch that need not sync, its gate opened) and
    /// its messages and entries were handed on. Batches are acknowledged
    /// in the order they were handed out. A leader counts its own newly
    /// durable entries toward the commit index here, and only here.
    pub fn advance(&mut self) {
        if self.outstanding.pop_front().is_none() {
            return;
        }
        self.log.batch_persisted();
        if let Some(budget) = self.cfg.log_cache_bytes {
            self.log.evict(budget);
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Batches handed out by [`ready`](Self::ready) and not acknowledged.
    pub fn persists_in_flight(&self) -> usize {
        self.outstanding.len()
    }

    /// Whether [`ready`](Self::ready) could return work (cheap; it may say
    /// yes for a batch that turns out empty).
    pub fn has_ready(&self) -> bool {
        self.outstanding.len() < self.cfg.max_persists_in_flight
            && (!self.msgs.is_empty()
                || self.snapshot_to_store.is_some()
                || !self.snapshot_chunks.is_empty()
                || self.compact_to.is_some()
                || self.rebuild_wanted
                || self.hard_state() != self.handed_hard_state
                || self.log.has_unpersisted()
                || self.log.has_committed_to_apply()
                || !self.proposal_outcomes.is_empty()
                || !self.read_outcomes.is_empty()
                || !self.forward_proposals.is_empty()
                || !self.forward_reads.is_empty()
                || !self.read_results.is_empty()
                || self.reads_sent.must_move(self.read_view())
                || self.reads.round_requested()
                || (self.role == Role::Leader && self.has_entries_to_send()))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use crate::core::{Config, Membership, Pipeline, RaftCore, Recovered};

    fn leader(max_in_flight: usize) -> RaftCore {
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let cfg = Config {
            max_persists_in_flight: max_in_flight,
            ..Config::default()
        };
        let boot = Recovered::bootstrap(Membership::voters([1]));
        let mut core = RaftCore::new(1, cfg, boot, rng).expect("core");
        core.campaign();
        while let Some(rd) = core.ready() {
            let _ = rd.split().1.persisted();
            core.advance();
        }
        assert!(core.role().is_leader());
        core
    }

    #[test]
    fn several_batches_in_flight_up_to_the_bound_and_commit_waits_for_the_disk() {
        let mut core = leader(2);
        let commit = core.commit();
        core.propose(1, "a".into()).expect("propose");
        let (p1, g1) = core.ready().expect("first batch").split();
        core.propose(2, "b".into()).expect("propose");
        let (p2, g2) = core
            .ready()
            .expect("second batch while the first is in flight")
            .split();
        assert_eq!((p1.entries.len(), p2.entries.len()), (1, 1));
        assert!(p1.must_sync && p2.must_sync);
        core.propose(3, "c".into()).expect("propose");
        assert!(core.ready().is_none(), "two in flight: the bound");
        assert_eq!(core.persists_in_flight(), 2);
        // A single voter commits on its own disk alone: not before it.
        assert_eq!(core.commit(), commit, "nothing durable, nothing committed");
        let mut pipeline = Pipeline::default();
        let w1 = pipeline.submit(&p1, g1).expect("write");
        pipeline.submit(&p2, g2).expect("write");
        pipeline.durable(w1);
        assert!(pipeline.release().is_some());
        assert!(pipeline.release().is_none(), "the second is not durable");
        core.advance();
        assert_eq!(core.commit(), commit + 1, "the first entry is durable");
        let (p3, _) = core.ready().expect("a slot is free").split();
        assert_eq!(p3.entries.len(), 1, "the third entry");
        assert_eq!(
            p3.hard_state.map(|h| h.commit),
            Some(commit + 1),
            "and the commit index"
        );
    }

    #[test]
    fn a_commit_only_batch_need_not_sync() {
        let mut core = leader(4);
        core.propose(1, "a".into()).expect("propose");
        let (p, _) = core.ready().expect("the entry").split();
        assert!(p.must_sync, "entries must sync");
        core.advance();
        let (p, gate) = core.ready().expect("the commit").split();
        assert!(p.entries.is_empty() && p.hard_state.is_some());
        assert!(!p.must_sync, "a commit index alone need not sync");
        assert_eq!(gate.persisted().committed.len(), 1, "and applies the entry");
    }
}
