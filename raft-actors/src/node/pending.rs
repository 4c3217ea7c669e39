//! [`Pending`]: the requests a node owes an answer, from the moment the core
//! took them until their entry is applied or their read index is reached.
//!
//! Must never drop a reply unanswered while the node lives: every path out
//! (landed, refused, overwritten, restart, shutdown) answers it.

use std::collections::BTreeMap;

use crate::apply::{ProposalWaiter, ReadWaiter};
use crate::core::{Entry, LogIndex, NodeId, ProposalOutcome, ReadOutcome, RequestId, Term};
use crate::error::ClientError;
use crate::node::messages::client::{ProposeReply, ReadReply};
use crate::type_config::TypeConfig;

/// Requests waiting on the core or on apply.
pub(crate) struct Pending<C: TypeConfig> {
    /// Proposals the core took, not yet placed in a log (forwarded ones).
    /// Ordered maps throughout: failing them all answers in request order,
    /// the same order every run, so a seed replays one schedule.
    proposals: BTreeMap<RequestId, ProposeReply<C>>,
    /// Proposals placed at `(index, term)`, waiting for that entry to apply.
    by_index: BTreeMap<LogIndex, (Term, ProposeReply<C>)>,
    /// Reads waiting for their safe index.
    /// (Boxed: a user's query type need not be `Unpin`, an actor must be.)
    reads: BTreeMap<RequestId, Box<ReadWaiter<C>>>,
    /// Reads with a safe index, waiting for apply to reach it.
    reads_by_index: BTreeMap<LogIndex, Vec<Box<ReadWaiter<C>>>>,
    reads_waiting: usize,
}

impl<C: TypeConfig> Pending<C> {
    pub(crate) fn new() -> Self {
        Pending {
            proposals: BTreeMap::new(),
            by_index: BTreeMap::new(),
            reads: BTreeMap::new(),
            reads_by_index: BTreeMap::new(),
            reads_waiting: 0,
        }
    }

    /// Requests owed an answer.
    pub(crate) fn len(&self) -> usize {
        self.proposals.len() + self.by_index.len() + self.reads.len() + self.reads_waiting
    }

    pub(crate) fn add_proposal(&mut self, id: RequestId, reply: ProposeReply<C>) {
        self.proposals.insert(id, reply);
    }

    pub(crate) fn add_read(&mut self, id: RequestId, query: C::Query, reply: ReadReply<C>) {
        self.reads.insert(id, Box::new((query, reply)));
    }

    /// Records where a proposal landed. `applied` is the last index already
    /// handed to apply; `term_at` gives the term of an entry at or below
    /// it (the proposal's answer raced its commit, possible only when the
    /// network reorders).
    pub(crate) fn landed(
        &mut self,
        outcome: ProposalOutcome,
        applied: LogIndex,
        leader: Option<NodeId>,
        term_at: impl Fn(LogIndex) -> Option<Term>,
    ) {
        let Some(reply) = self.proposals.remove(&outcome.id) else {
            return; // a duplicate answer, or one from before a restart
        };
        match outcome.result {
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
            Ok((index, term)) if index <= applied => {
                // Already applied: its output is gone. If another term sits
                // there, it was overwritten and never applied.
                let err = match term_at(index) {
                    // Another entry took the index: this one was lost.
                    Some(t) if t != term => ClientError::NotLeader { leader },
                    // Applied (or compacted into a snapshot, so unknown):
                    // either way its output is gone.
                    _ => ClientError::Interrupted,
                };
                let _ = reply.send(Err(err));
            }
            Ok((index, term)) => {
                // Two proposals at one index, answered by leaders of two
                // terms: the higher term's entry replaced the other's in
                // the log, so only it can apply. A new leader appends a
                // fresh entry at an index only if nothing committed sits
                // there (Leader Completeness, §5.4.3), so the lower term's
                // entry never applies: "not applied" is the truth for it,
                // whichever answer arrived first (the network reorders
                // answers of different leaders).
                let (kept, lost) = match self.by_index.remove(&index) {
                    None => ((term, reply), None),
                    Some(old) if old.0 > term => {
                        (old, Some((reply, ClientError::NotLeader { leader })))
                    }
                    Some(old) if old.0 < term => (
                        (term, reply),
                        Some((old.1, ClientError::NotLeader { leader })),
                    ),
                    // One term, one index, two proposals: one leader per
                    // term never does that. Keep the first; the second's
                    // outcome is unknown rather than a guess.
                    Some(old) => (old, Some((reply, ClientError::Interrupted))),
                };
                self.by_index.insert(index, kept);
                if let Some((reply, err)) = lost {
                    let _ = reply.send(Err(err));
                }
            }
        }
    }

    /// Records a read's safe index, or fails it.
    pub(crate) fn read_ready(&mut self, outcome: ReadOutcome) {
        let Some(waiter) = self.reads.remove(&outcome.id) else {
            return;
        };
        let (query, reply) = *waiter;
        match outcome.result {
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
            Ok(index) => {
                self.reads_waiting += 1;
                self.reads_by_index
                    .entry(index)
                    .or_default()
                    .push(Box::new((query, reply)));
            }
        }
    }

    /// The waiters for `entries` about to be applied, in index order. A
    /// waiter whose entry came back with another term was overwritten by a
    /// new leader: it fails now, nothing of it was applied.
    pub(crate) fn take_committed(
        &mut self,
        entries: &[Entry],
        leader: Option<NodeId>,
    ) -> Vec<ProposalWaiter<C>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Vec::new();
        };
        if self.by_index.is_empty() {
            return Vec::new();
        }
        let mut waiters = Vec::new();
        // Split off everything above `last`, keep it; what remains is due.
        let rest = self.by_index.split_off(&(last.index + 1));
        let due = std::mem::replace(&mut self.by_index, rest);
        for (index, (term, reply)) in due {
            let entry_term = index
                .checked_sub(first.index)
                .and_then(|off| entries.get(off as usize))
                .map(|e| e.term);
            if entry_term == Some(term) {
                waiters.push((index, reply));
            } else {
                let _ = reply.send(Err(ClientError::NotLeader { leader }));
            }
        }
        waiters
    }

    /// Reads whose index is at or below `applied`, in index order.
    pub(crate) fn take_reads(&mut self, applied: LogIndex) -> Vec<ReadWaiter<C>> {
        if self.reads_by_index.is_empty() {
            return Vec::new();
        }
        let rest = self.reads_by_index.split_off(&(applied + 1));
        let due = std::mem::replace(&mut self.reads_by_index, rest);
        let due: Vec<ReadWaiter<C>> = due.into_values().flatten().map(|w| *w).collect();
        self.reads_waiting -= due.len();
        due
    }

    /// Drops requests whose caller stopped waiting (timed out), so a node
    /// whose proposals can never resolve (a lost forward) does not leak.
    /// Returns the reads dropped before their safe index came, for the
    /// core to stop tracking.
    pub(crate) fn sweep_abandoned(&mut self) -> Vec<RequestId> {
        self.proposals.retain(|_, r| !r.is_closed());
        self.by_index.retain(|_, (_, r)| !r.is_closed());
        let mut abandoned = Vec::new();
        self.reads.retain(|id, w| {
            let open = !w.1.is_closed();
            if !open {
                abandoned.push(*id);
            }
            open
        });
        for waiters in self.reads_by_index.values_mut() {
            waiters.retain(|w| !w.1.is_closed());
        }
        self.reads_by_index.retain(|_, w| !w.is_empty());
        self.reads_waiting = self.reads_by_index.values().map(Vec::len).sum();
        abandoned
    }

    /// Answers every request with `err`.
    /// A snapshot covering everything up to `index` replaced the state
    /// machine: proposals waiting on those entries cannot get an output.
    pub(crate) fn fail_upto(&mut self, index: LogIndex, err: ClientError) {
        let rest = self.by_index.split_off(&(index + 1));
        for (_, (_, reply)) in std::mem::replace(&mut self.by_index, rest) {
            let _ = reply.send(Err(err.clone()));
        }
    }

    pub(crate) fn fail_all(&mut self, err: ClientError) {
        for (_, reply) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(err.clone()));
        }
        for (_, (_, reply)) in std::mem::take(&mut self.by_index) {
            let _ = reply.send(Err(err.clone()));
        }
        for (_, waiter) in std::mem::take(&mut self.reads) {
            let _ = waiter.1.send(Err(err.clone()));
        }
        for waiter in std::mem::take(&mut self.reads_by_index)
            .into_values()
            .flatten()
        {
            let _ = waiter.1.send(Err(err.clone()));
        }
        self.reads_waiting = 0;
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::apply::Applied;
    use crate::core::{Payload, ProposeError};
    use crate::testing::Kv;

    type Answer = oneshot::Receiver<Result<Applied<Kv>, ClientError>>;

    fn propose(p: &mut Pending<Kv>, id: RequestId) -> Answer {
        let (tx, rx) = oneshot::channel();
        p.add_proposal(id, tx);
        rx
    }

    fn landed(id: RequestId, index: LogIndex, term: Term) -> ProposalOutcome {
        ProposalOutcome {
            id,
            result: Ok((index, term)),
        }
    }

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    /// Records `outcomes` in order (none applied yet), then commits
    /// `committed`: returns the waiters handed to apply.
    fn run(
        p: &mut Pending<Kv>,
        outcomes: &[ProposalOutcome],
        committed: &[Entry],
    ) -> Vec<ProposalWaiter<Kv>> {
        for o in outcomes {
            p.landed(o.clone(), 0, Some(3), |_| None);
        }
        p.take_committed(committed, Some(3))
    }

    /// Whether `a` is still unanswered (its sender alive, nothing sent).
    fn waiting(a: &mut Answer) -> bool {
        matches!(a.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    }

    #[test]
    fn the_higher_terms_answer_keeps_the_index_whatever_the_order() {
        // p1 landed at 5 in term 2 (an old leader), p2 at 5 in term 3 (the
        // new leader, whose entry replaced it). Whichever answer arrives
        // last, p2 waits for its entry and p1 is told "not applied".
        let old = landed(1, 5, 2);
        let new = landed(2, 5, 3);
        for order in [[old.clone(), new.clone()], [new.clone(), old.clone()]] {
            let mut p = Pending::<Kv>::new();
            let mut a1 = propose(&mut p, 1);
            let mut a2 = propose(&mut p, 2);
            for o in &order {
                p.landed(o.clone(), 0, Some(3), |_| None);
            }
            let lost = a1.try_recv().expect("the old term's proposal is answered");
            assert_eq!(lost.err(), Some(ClientError::NotLeader { leader: Some(3) }));
            assert!(waiting(&mut a2), "the new term's proposal still waits");
            let due = p.take_committed(&[entry(5, 3)], Some(3));
            assert_eq!(due.iter().map(|w| w.0).collect::<Vec<_>>(), vec![5]);
            assert!(waiting(&mut a2), "handed to apply, which answers it");
            assert_eq!(p.len(), 0);
        }
    }

    #[test]
    fn a_duplicated_answer_changes_nothing() {
        let mut p = Pending::<Kv>::new();
        let mut a = propose(&mut p, 7);
        let twice = [landed(7, 4, 2), landed(7, 4, 2)];
        let due = run(&mut p, &twice, &[entry(4, 2)]);
        assert_eq!(due.len(), 1);
        assert!(waiting(&mut a), "answered by apply, not by the copy");
        // A copy arriving after its entry applied finds nothing to answer.
        p.landed(landed(7, 4, 2), 4, Some(3), |_| Some(2));
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn reordered_answers_of_three_terms_leave_the_highest() {
        let outcomes = [landed(1, 6, 3), landed(2, 6, 5), landed(3, 6, 4)];
        let mut p = Pending::<Kv>::new();
        let mut answers: Vec<Answer> = (1..=3).map(|id| propose(&mut p, id)).collect();
        let due = run(&mut p, &outcomes, &[entry(6, 5)]);
        assert_eq!(due.len(), 1);
        for (i, a) in answers.iter_mut().enumerate() {
            if i == 1 {
                assert!(waiting(a), "p2 (term 5) went to apply");
            } else {
                let err = a.try_recv().expect("answered").err();
                assert_eq!(err, Some(ClientError::NotLeader { leader: Some(3) }));
            }
        }
    }

    #[test]
    fn a_refusal_is_passed_on_and_its_copy_ignored() {
        let mut p = Pending::<Kv>::new();
        let mut a = propose(&mut p, 9);
        let refused = ProposalOutcome {
            id: 9,
            result: Err(ProposeError::NoLeader),
        };
        p.landed(refused.clone(), 0, None, |_| None);
        p.landed(refused, 0, None, |_| None);
        assert_eq!(
            a.try_recv().expect("answered").err(),
            Some(ClientError::NoLeader)
        );
        assert_eq!(p.len(), 0);
    }
}
