//! [`Pending`]: the requests a node owes an answer, from the moment the core
//! took them until their entry is applied or their read index is reached.
//!
//! Must never drop a reply unanswered while the node lives: every path out
//! (landed, refused, overwritten, restart, shutdown) answers it.

use std::collections::{BTreeMap, HashMap};

use crate::apply::{ProposalWaiter, ReadWaiter};
use crate::core::{Entry, LogIndex, NodeId, ProposalOutcome, ReadOutcome, RequestId, Term};
use crate::error::ClientError;
use crate::node::messages::client::{ProposeReply, ReadReply};
use crate::type_config::TypeConfig;

/// Requests waiting on the core or on apply.
pub(crate) struct Pending<C: TypeConfig> {
    /// Proposals the core took, not yet placed in a log (forwarded ones).
    proposals: HashMap<RequestId, ProposeReply<C>>,
    /// Proposals placed at `(index, term)`, waiting for that entry to apply.
    by_index: BTreeMap<LogIndex, (Term, ProposeReply<C>)>,
    /// Reads waiting for their safe index.
    /// (Boxed: a user's query type need not be `Unpin`, an actor must be.)
    reads: HashMap<RequestId, Box<ReadWaiter<C>>>,
    /// Reads with a safe index, waiting for apply to reach it.
    reads_by_index: BTreeMap<LogIndex, Vec<Box<ReadWaiter<C>>>>,
    reads_waiting: usize,
}

impl<C: TypeConfig> Pending<C> {
    pub(crate) fn new() -> Self {
        Pending {
            proposals: HashMap::new(),
            by_index: BTreeMap::new(),
            reads: HashMap::new(),
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
                if let Some((_, old)) = self.by_index.insert(index, (term, reply)) {
                    // Two proposals at one index: the older one's entry was
                    // overwritten before this one landed (a leader change).
                    let _ = old.send(Err(ClientError::NotLeader { leader }));
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
    pub(crate) fn sweep_abandoned(&mut self) {
        self.proposals.retain(|_, r| !r.is_closed());
        self.by_index.retain(|_, (_, r)| !r.is_closed());
        self.reads.retain(|_, w| !w.1.is_closed());
        for waiters in self.reads_by_index.values_mut() {
            waiters.retain(|w| !w.1.is_closed());
        }
        self.reads_by_index.retain(|_, w| !w.is_empty());
        self.reads_waiting = self.reads_by_index.values().map(Vec::len).sum();
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
        for (_, reply) in self.proposals.drain() {
            let _ = reply.send(Err(err.clone()));
        }
        for (_, (_, reply)) in std::mem::take(&mut self.by_index) {
            let _ = reply.send(Err(err.clone()));
        }
        for (_, waiter) in self.reads.drain() {
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
