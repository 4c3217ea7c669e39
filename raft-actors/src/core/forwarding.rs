//! Proposal and read forwarding: a follower passes what it cannot serve to
//! its leader, and gets back where each landed.
//!
//! Must never drop a request silently: with no leader the caller gets an
//! error, and a leader that cannot take a request says why.

use super::{Body, Message, ProposalOutcome, ProposeError, RaftCore, ReadError, ReadOutcome, Role};

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
                    for lease in [false, true] {
                        let ids: Vec<_> =
                            reads.iter().filter(|r| r.1 == lease).map(|r| r.0).collect();
                        if !ids.is_empty() {
                            self.send(leader, Body::ForwardReads { ids, lease });
                        }
                    }
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
                    let err = ProposeError::NotLeader { leader };
                    let results = proposals
                        .into_iter()
                        .map(|(id, _)| ProposalOutcome {
                            id,
                            result: Err(err.clone()),
                        })
                        .collect();
                    self.send(m.from, Body::ProposalResults { results });
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
                let results = proposals
                    .into_iter()
                    .map(|(id, command)| {
                        let result = if self.role == Role::Leader {
                            self.append_proposal(command)
                        } else {
                            Err(ProposeError::NotLeader {
                                leader: self.leader,
                            })
                        };
                        ProposalOutcome { id, result }
                    })
                    .collect();
                self.send(m.from, Body::ProposalResults { results });
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
            Body::ReadResults { results } => self.read_outcomes.extend(results),
            _ => self.counters.malformed += 1,
        }
    }
}
