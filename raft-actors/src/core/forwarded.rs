//! [`Forwarded`]: the answers this node gave, as leader, to proposals that
//! followers forwarded to it, so a forward the network duplicated or
//! replayed is appended at most once and gets its first answer again.
//!
//! Forwarding, unlike Raft's own RPCs, is not idempotent: appending a
//! command twice applies it twice. The record covers the latest term this
//! core led, from its first tick as leader; for older terms it only knows
//! whether they may have been led here (see [`Forwarded::may_have_led`]).
//! It must never let a proposal that may already have been appended, or
//! refused, be appended again: when it cannot tell, the forward goes
//! unanswered (the follower's caller then sees the outcome as unknown).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{HardState, LogIndex, NodeId, ProposeError, RequestId, Term};

/// How many answers are kept per origin within one term. A copy arriving
/// after this many newer forwards from the same origin is taken as new:
/// the one gap in the at-most-once guarantee, far beyond any delay a
/// transport holds a message for.
pub(super) const WINDOW: usize = 1 << 16;

/// One forwarded proposal's answer: where it landed, or why it was refused.
pub(super) type Answer = Result<(LogIndex, Term), ProposeError>;

/// The answers given to forwarded proposals in the latest term led here.
#[derive(Debug)]
pub(super) struct Forwarded {
    /// The latest term this core led (0: none yet). The record below holds
    /// every answer it gave in that term, as leader.
    term: Term,
    by_origin: BTreeMap<NodeId, Window>,
    /// Terms up to this one may have been led by this node without a
    /// record here: by an earlier incarnation (the process restarted), or
    /// by this one before `term` replaced the record.
    unsure_upto: Term,
}

/// One origin's answers, oldest first.
#[derive(Debug, Default)]
struct Window {
    answers: HashMap<RequestId, Answer>,
    order: VecDeque<RequestId>,
}

impl Forwarded {
    /// The record of node `id` starting from hard state `hs`. An earlier
    /// incarnation may have led any term it reached, the last one only if
    /// it voted for itself in it (a leader's vote is its own, §5.2).
    pub(super) fn new(id: NodeId, hs: HardState) -> Self {
        let unsure_upto = if hs.vote == Some(id) {
            hs.term
        } else {
            hs.term.saturating_sub(1)
        };
        Forwarded {
            term: 0,
            by_origin: BTreeMap::new(),
            unsure_upto,
        }
    }

    /// This node became leader of `term`: a new record begins, and the
    /// previous one's term joins those it cannot vouch for.
    pub(super) fn leading(&mut self, term: Term) {
        self.unsure_upto = self.unsure_upto.max(self.term);
        self.term = term;
        self.by_origin.clear();
    }

    /// The term the record covers (0: none).
    pub(super) fn term(&self) -> Term {
        self.term
    }

    /// The answer given to `from`'s proposal `id` in the recorded term.
    pub(super) fn answered(&self, from: NodeId, id: RequestId) -> Option<&Answer> {
        self.by_origin.get(&from)?.answers.get(&id)
    }

    /// Records the answer given to `from`'s proposal `id` in the current
    /// term, forgetting that origin's oldest beyond [`WINDOW`].
    pub(super) fn record(&mut self, from: NodeId, id: RequestId, answer: Answer) {
        let w = self.by_origin.entry(from).or_default();
        if w.answers.insert(id, answer).is_none() {
            w.order.push_back(id);
        }
        while w.order.len() > WINDOW {
            if let Some(old) = w.order.pop_front() {
                w.answers.remove(&old);
            }
        }
    }

    /// Whether this node may have led `term` without a record of it here,
    /// so that it may have appended (or refused) a forward sent in it.
    pub(super) fn may_have_led(&self, term: Term) -> bool {
        term != self.term && term <= self.unsure_upto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(term: Term, vote: Option<NodeId>) -> HardState {
        HardState {
            term,
            vote,
            commit: 0,
        }
    }

    #[test]
    fn a_restarted_node_cannot_vouch_for_the_terms_it_lived() {
        // Voted for itself in term 5: it may have led 5, or any before.
        let f = Forwarded::new(1, hs(5, Some(1)));
        assert!(f.may_have_led(5) && f.may_have_led(1));
        assert!(!f.may_have_led(6));
        // Voted for another in 5: it did not lead 5, but may have led 4.
        let f = Forwarded::new(1, hs(5, Some(2)));
        assert!(!f.may_have_led(5) && f.may_have_led(4));
        // A fresh node led nothing.
        assert!(!Forwarded::new(1, hs(0, None)).may_have_led(0));
    }

    #[test]
    fn a_new_term_led_starts_a_new_record_and_the_old_term_becomes_unsure() {
        let mut f = Forwarded::new(1, hs(0, None));
        f.leading(3);
        f.record(2, 10, Ok((4, 3)));
        assert_eq!(f.answered(2, 10), Some(&Ok((4, 3))));
        assert!(
            !f.may_have_led(3),
            "term 3 is recorded: it can vouch for it"
        );
        f.leading(7);
        assert_eq!(f.answered(2, 10), None);
        assert!(f.may_have_led(3), "led, and its record is gone");
        // Terms 4 to 6 passed in this incarnation without it leading them.
        assert!(!f.may_have_led(6) && !f.may_have_led(7));
        assert_eq!(f.term(), 7);
    }

    #[test]
    fn each_origin_keeps_its_latest_answers() {
        let mut f = Forwarded::new(1, hs(0, None));
        f.leading(1);
        for id in 0..=WINDOW as u64 {
            f.record(2, id, Ok((id + 1, 1)));
        }
        f.record(3, 0, Err(ProposeError::NoLeader));
        assert_eq!(
            f.answered(2, 0),
            None,
            "the oldest of origin 2 is forgotten"
        );
        assert_eq!(f.answered(2, 1), Some(&Ok((2, 1))));
        assert_eq!(f.answered(3, 0), Some(&Err(ProposeError::NoLeader)));
    }
}
