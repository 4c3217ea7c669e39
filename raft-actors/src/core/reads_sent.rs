//! [`ReadsSent`]: the reads this node forwarded to a leader and has no
//! answer for yet, so that a change of leader moves them instead of leaving
//! them to wait out their caller's timeout.
//!
//! A follower forwards a linearizable read to the leader of its term. If
//! that leader crashes, freezes or loses its term before answering, the
//! read would otherwise hang until the caller gives up ("outcome unknown").
//! The record says, when the (term, leader) this node follows changes,
//! which reads to send again, serve here (this node leads now), or fail at
//! once (a pre-vote starts at a newer term: no leader is known there). A
//! node that cannot campaign (a learner), or campaigns without pre-vote,
//! keeps waiting for a leader to be known, or for its caller's timeout.
//!
//! Asking twice is safe: a leader answers a read only once it holds the
//! read's index safely after the read arrived (a heartbeat round confirmed
//! by a quorum, or a lease within its bound), so whichever answer comes
//! first is linearizable, and the driver ignores a second answer to the
//! same id. A refusal from a leader the read was moved away from, or sent
//! in an older term than the read was last sent in, is ignored: the read
//! is being asked again. What this record must never do is answer a read
//! itself, or drop one without an answer: a read it cannot hold (the
//! record is full) is forwarded untracked, as before.

use std::collections::BTreeMap;

use super::{NodeId, ReadOutcome, RequestId, Term};

/// How many forwarded reads are tracked. Past this, a new forward is sent
/// untracked (it then waits for its leader or its timeout), so a flood of
/// reads cannot grow the core without bound, and no live read is evicted.
pub(super) const MAX_READS_SENT: usize = 4096;

/// Where one forwarded read went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    lease: bool,
    to: NodeId,
    term: Term,
}

/// What to do with one read once the leader it went to is no longer the
/// leader followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Move {
    /// Send it to this leader (recorded as sent there).
    To(NodeId),
    /// This node leads now: serve it here.
    Here,
    /// No leader is known, at a newer term than the read was sent in.
    Fail,
}

/// Whom this node follows: its term, the leader it knows in it, and
/// whether its election timer fired with no leader known (a pre-vote).
pub(super) type View = (Term, Option<NodeId>, bool);

/// The reads forwarded and unanswered, by request id.
#[derive(Debug, Default)]
pub(super) struct ReadsSent {
    by_id: BTreeMap<RequestId, Sent>,
    /// What the record was last brought up to date with: nothing moves
    /// until this changes.
    view: Option<View>,
}

impl ReadsSent {
    /// Records read `id` (a lease read if `lease`) as sent to leader `to`
    /// of `term`. Returns false, tracking nothing, when the record is full.
    pub(super) fn sent(&mut self, id: RequestId, lease: bool, to: NodeId, term: Term) -> bool {
        if self.by_id.len() >= MAX_READS_SENT && !self.by_id.contains_key(&id) {
            return false;
        }
        self.by_id.insert(id, Sent { lease, to, term });
        true
    }

    /// Whether `outcome`, answered by `from` in its `term`, is for the
    /// caller. A read already asked again elsewhere, or of the same leader
    /// in a newer term, ignores a refusal sent before that (the newer ask
    /// is answered); any safe index is taken, whoever gives it.
    pub(super) fn answered(&mut self, from: NodeId, term: Term, outcome: &ReadOutcome) -> bool {
        match self.by_id.get(&outcome.id) {
            Some(sent) if outcome.result.is_err() && (sent.to != from || term < sent.term) => false,
            Some(_) => {
                self.by_id.remove(&outcome.id);
                true
            }
            None => true,
        }
    }

    /// Read `id` was answered here, or its caller stopped waiting: it
    /// moves no more.
    pub(super) fn forget(&mut self, id: RequestId) {
        self.by_id.remove(&id);
    }

    /// Whether the view differs from the one the record was last brought
    /// up to date with, and some read may have to move.
    pub(super) fn must_move(&self, view: View) -> bool {
        !self.by_id.is_empty() && self.view != Some(view)
    }

    /// Brings the record up to date with `view`, as node `me`: the reads
    /// to move, each with how (lease flag included).
    ///
    /// With no leader known, a read waits while a leader may still answer
    /// it or soon be known: at its own term (a pre-vote changes no term,
    /// and the leader it went to may answer yet), at a newer one after a
    /// vote (the winner's first message follows), and while this node is a
    /// candidate (it may win, and serve it). Once a pre-vote starts at a
    /// newer term, a whole election timeout passed there with no leader:
    /// none is there to send it to, and it fails.
    pub(super) fn moves(&mut self, me: NodeId, view: View) -> Vec<(RequestId, bool, Move)> {
        if self.view == Some(view) {
            return Vec::new();
        }
        self.view = Some(view);
        let (term, leader, campaigning) = view;
        let mut moves = Vec::new();
        self.by_id.retain(|&id, sent| {
            let how = match leader {
                Some(l) if (l, term) == (sent.to, sent.term) => return true,
                Some(l) if l == me => Move::Here,
                Some(l) => Move::To(l),
                None if campaigning && term > sent.term => Move::Fail,
                None => return true,
            };
            moves.push((id, sent.lease, how));
            match how {
                Move::To(to) => {
                    (sent.to, sent.term) = (to, term);
                    true
                }
                // Served here, it stays recorded until answered here, so
                // that the old leader's refusal is ignored meanwhile.
                Move::Here => {
                    (sent.to, sent.term) = (me, term);
                    true
                }
                Move::Fail => false,
            }
        });
        moves
    }

    /// How many reads are tracked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ReadError;

    fn ok(id: RequestId) -> ReadOutcome {
        ReadOutcome { id, result: Ok(3) }
    }

    fn refused(id: RequestId) -> ReadOutcome {
        ReadOutcome {
            id,
            result: Err(ReadError::NotLeader { leader: None }),
        }
    }

    #[test]
    fn reads_follow_the_leader_and_a_new_term_of_the_same_leader() {
        let mut r = ReadsSent::default();
        r.sent(1, false, 2, 5);
        r.sent(2, true, 2, 5);
        assert!(r.moves(1, (5, Some(2), false)).is_empty(), "sent there");
        assert!(!r.must_move((5, Some(2), false)));
        assert!(r.must_move((5, None, true)));
        assert!(
            r.moves(1, (5, None, true)).is_empty(),
            "a pre-vote moves nothing"
        );
        assert_eq!(
            r.moves(1, (6, Some(2), false)),
            vec![(1, false, Move::To(2)), (2, true, Move::To(2))],
            "re-elected: its refusals may have been lost"
        );
        assert_eq!(r.moves(1, (7, Some(1), false)).len(), 2);
        assert_eq!(r.len(), 2, "served here: tracked until answered here");
        assert!(!r.answered(2, 6, &refused(1)), "the old leader's refusal");
        r.forget(1);
        r.forget(2);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn with_no_leader_at_a_newer_term_reads_fail_once_this_node_campaigns() {
        let mut r = ReadsSent::default();
        r.sent(1, false, 2, 5);
        assert!(r.moves(1, (6, None, false)).is_empty(), "a vote granted");
        assert_eq!(r.moves(1, (6, None, true)), vec![(1, false, Move::Fail)]);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_refusal_from_the_old_leader_is_ignored_and_any_index_taken() {
        let mut r = ReadsSent::default();
        r.sent(1, false, 2, 5);
        r.sent(2, false, 2, 5);
        r.moves(1, (6, Some(3), false));
        assert!(!r.answered(2, 5, &refused(1)), "3 answers it now");
        assert!(r.answered(2, 5, &ok(2)), "held safely after it came");
        assert!(!r.answered(3, 5, &refused(1)), "sent before it was moved");
        assert!(
            r.answered(3, 6, &refused(1)),
            "the leader it went to refused"
        );
        assert_eq!(r.len(), 0);
        assert!(r.answered(3, 6, &ok(9)), "untracked: the driver decides");
    }

    #[test]
    fn a_full_record_tracks_no_more_and_evicts_nothing() {
        let mut r = ReadsSent::default();
        for id in 0..MAX_READS_SENT as u64 {
            assert!(r.sent(id, false, 2, 1));
        }
        assert!(!r.sent(u64::MAX, false, 2, 1));
        assert_eq!(r.len(), MAX_READS_SENT);
        r.forget(0);
        assert!(r.sent(u64::MAX, false, 2, 1));
    }
}
