//! Proposal and read forwarding: a follower passes what it cannot serve to
//! its leader, and gets back where each landed.
//!
//! Must never drop a request silently but for one reason: a forwarded
//! proposal this node may already have appended (or refused) and cannot
//! tell, which it must neither append again nor answer "not appended"
//! (see [`Forwarded`](super::forwarded::Forwarded)); its caller's outcome
//! is then unknown. Anything else is answered: with no leader the caller
//! gets an error, and a leader that cannot take a request says why.

use bytes::Bytes;

use super::reads_sent::Move;
use super::{
    Body, BrokenRule, Message, NodeId, ProposalOutcome, ProposeError, RaftCore, ReadError,
    ReadOutcome, RequestId, Role, Term,
};

impl RaftCore {
    /// Turns queued forwards and read answers into messages.
    pub(super) fn flush_forwarding(&mut self) {
        if !self.forward_proposals.is_empty() {
            let proposals = std::mem::take(&mut self.forward_proposals);
            match self.leader.filter(|l| *l != self.id) {
                Some(leader) => self.send(leader, Body::ForwardProposals { proposals }),
                None => self
                    .proposal_outcomes
                    .extend(proposals.into_iter().map(|(id, _)| ProposalOutcome {
                        id,
                        result: Err(ProposeError::NoLeader),
                    })),
            }
        }
        if !self.forward_reads.is_empty() {
            let reads = std::mem::take(&mut self.forward_reads);
            match self.leader.filter(|l| *l != self.id) {
                Some(leader) => {
                    for &(id, lease) in &reads {
                        self.reads_sent.sent(id, lease, leader, self.term);
                    }
                    self.send_reads(leader, reads);
                }
                None => self
                    .read_outcomes
                    .extend(reads.into_iter().map(|(id, _)| ReadOutcome {
                        id,
                        result: Err(ReadError::NoLeader),
                    })),
            }
        }
        for (origin, results) in std::mem::take(&mut self.read_results) {
            self.send(origin, Body::ReadResults { results });
        }
    }

    /// Sends `reads` to `leader`, lease reads and the others apart.
    fn send_reads(&mut self, leader: NodeId, reads: Vec<(RequestId, bool)>) {
        for lease in [false, true] {
            let ids: Vec<_> = reads.iter().filter(|r| r.1 == lease).map(|r| r.0).collect();
            if !ids.is_empty() {
                self.send(leader, Body::ForwardReads { ids, lease });
            }
        }
    }

    /// Moves the reads forwarded to a leader that is no longer the one
    /// followed: to the new leader, to this node if it leads now (its reads
    /// wait for its first commit, as any new leader's do), or, with no
    /// leader known at a newer term, failed at once (nothing was read: the
    /// caller may retry) rather than left to time out.
    pub(super) fn move_reads(&mut self) {
        let view = self.read_view();
        if !self.reads_sent.must_move(view) {
            return;
        }
        let moves = self.reads_sent.moves(self.id, view);
        let mut resend = Vec::new();
        for (id, lease, how) in moves {
            self.counters.reads_moved += 1;
            match how {
                Move::To(_) => resend.push((id, lease)),
                Move::Here => self.leader_read(id, self.id, lease),
                Move::Fail => self.read_outcomes.push(ReadOutcome {
                    id,
                    result: Err(ReadError::NoLeader),
                }),
            }
        }
        if let Some(leader) = self.leader.filter(|l| *l != self.id) {
            self.send_reads(leader, resend);
        }
    }

    /// Whom this node follows, as the forwarded reads see it.
    pub(super) fn read_view(&self) -> super::reads_sent::View {
        (self.term, self.leader, self.role == Role::PreCandidate)
    }

    /// The caller of forwarded read `id` stopped waiting (the driver timed
    /// it out): it is not sent again when the leader changes.
    ///
    /// ```
    /// use raft_actors::core::{Config, Membership, RaftCore, Recovered};
    /// use rand::SeedableRng;
    /// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let boot = Recovered::bootstrap(Membership::voters([1, 2, 3]));
    /// let mut core = RaftCore::new(1, Config::default(), boot, rng).unwrap();
    /// core.forget_read(7); // unknown ids are ignored
    /// ```
    pub fn forget_read(&mut self, id: RequestId) {
        self.reads_sent.forget(id);
    }

    /// Handles the forwarding messages, whose term does not matter.
    pub(super) fn step_forwarding(&mut self, m: Message) {
        if !self.membership.contains(m.from) {
            // Counted, and requests answered: a node this one does not know
            // as a member (not yet told, or removed) must not wait for an
            // answer that never comes.
            self.counters.unknown_peer += 1;
            let leader = self.leader;
            match m.body {
                Body::ForwardProposals { proposals } => {
                    self.take_forwarded(m.from, m.term, proposals, false)
                }
                Body::ForwardReads { ids, .. } => {
                    for id in ids {
                        self.answer_read(m.from, id, Err(ReadError::NotLeader { leader }));
                    }
                }
                _ => {}
            }
            return;
        }
        match m.body {
            Body::ForwardProposals { proposals } => {
                self.take_forwarded(m.from, m.term, proposals, true)
            }
            Body::ProposalResults { results } => self.proposal_outcomes.extend(results),
            Body::ForwardReads { ids, lease } => {
                for id in ids {
                    if self.role == Role::Leader {
                        self.leader_read(id, m.from, lease);
                    } else {
                        self.answer_read(
                            m.from,
                            id,
                            Err(ReadError::NotLeader {
                                leader: self.leader,
                            }),
                        );
                    }
                }
            }
            Body::ReadResults { results } => {
                let (from, term) = (m.from, m.term);
                let sent = &mut self.reads_sent;
                self.read_outcomes
                    .extend(results.into_iter().filter(|r| sent.answered(from, term, r)));
            }
            _ => self.counters.malformed += 1,
        }
    }

    /// Answers proposals `from` forwarded in its `term`: each is appended
    /// at most once, and a copy gets the first answer again.
    ///
    /// A leader takes only forwards of its own term, sent to it as leader
    /// of it: one from an older term may be a late copy of a proposal
    /// taken (or refused) in a term it led before, whose record is gone. A
    /// node answers "not leader" only when it cannot have appended the
    /// proposal and never will: it did not lead the forward's term, or led
    /// it here and recorded no answer for it. Otherwise it stays silent.
    fn take_forwarded(
        &mut self,
        from: NodeId,
        term: Term,
        proposals: Vec<(RequestId, Bytes)>,
        member: bool,
    ) {
        let mut results = Vec::with_capacity(proposals.len());
        for (id, command) in proposals {
            if let Some(answer) = self.forwarded.answered(from, id) {
                // A copy: the same answer, so a lost first one is made up
                // for and a late one contradicts nothing.
                self.counters.forwards_repeated += 1;
                results.push(ProposalOutcome {
                    id,
                    result: answer.clone(),
                });
                continue;
            }
            let leading = self.role == Role::Leader;
            if leading && self.cfg.breaks(BrokenRule::ForwardWithoutDedup) {
                // The simulation's broken rule: every copy is a new proposal.
                let result = self.append_proposal(command);
                results.push(ProposalOutcome { id, result });
                continue;
            }
            // The other broken rule: a forward of an older term is new too.
            let own_term = term == self.term
                || (term < self.term && self.cfg.breaks(BrokenRule::ForwardFromOlderTerm));
            let result = if leading && member && own_term {
                let result = self.append_proposal(command);
                self.forwarded.record(from, id, result.clone());
                result
            } else if self.may_answer_not_leader(term) {
                Err(ProposeError::NotLeader {
                    leader: self.leader,
                })
            } else {
                self.counters.forwards_unanswered += 1;
                continue;
            };
            results.push(ProposalOutcome { id, result });
        }
        if !results.is_empty() {
            self.send(from, Body::ProposalResults { results });
        }
    }

    /// Whether a forward sent in `term`, with no answer recorded for it
    /// here, can be refused: this node never appended it and never will.
    fn may_answer_not_leader(&self, term: Term) -> bool {
        if self.cfg.breaks(BrokenRule::ForwardWithoutDedup) {
            return true; // the broken rule's refusal, as before the record
        }
        if self.role == Role::Leader || term > self.term {
            // A leader of another term, or a node behind the sender: a
            // forward goes to the leader of the sender's term, so neither
            // should see one. Silence is safe whatever happened.
            return false;
        }
        if term == self.forwarded.term() {
            // Led here from its start: the record has every answer given.
            return true;
        }
        // In its own term, a node that voted for itself may still become
        // leader, and then take a copy of this forward.
        let may_lead = term == self.term && self.vote == Some(self.id);
        !may_lead && !self.forwarded.may_have_led(term)
    }
}
