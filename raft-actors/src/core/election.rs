//! Leader election (§5.2) with pre-vote (thesis §9.6): timeouts, vote
//! requests and answers, becoming leader.
//!
//! Must never grant a vote to a candidate whose log is less up-to-date
//! (§5.4.1), nor two votes in one term.

use std::collections::BTreeMap;

use super::{
    Body, BrokenRule, Entry, LogIndex, NodeId, Payload, Progress, RaftCore, Role, Term, VoteResult,
};

impl RaftCore {
    /// Starts an election now, as an election timeout would: with a
    /// pre-vote round first when [`Config::pre_vote`](super::Config::pre_vote)
    /// is set. Does nothing on a leader, on a node that cannot vote, or,
    /// with check-quorum, within the lease of a leader this node heard from
    /// (an early election would void that leader's lease reads; use
    /// [`transfer_leader`](Self::transfer_leader) to move leadership).
    pub fn campaign(&mut self) {
        self.wake();
        if self.role == Role::Leader || !self.promotable() {
            return;
        }
        if self.cfg.check_quorum && self.leader.is_some() && self.in_lease() {
            return;
        }
        if self.cfg.pre_vote {
            self.start_pre_vote();
        } else {
            self.start_election(false);
        }
    }

    /// Whether this node may campaign: it votes in the configuration in
    /// force, or in the last committed one. The second case matters when a
    /// change removing it is in its log but uncommitted: it may have to
    /// lead that change to its commit (counting only the new voters), or
    /// no one with an up-to-date log might be left to campaign.
    fn promotable(&self) -> bool {
        self.membership.is_voter(self.id) || self.configs.at(self.log.commit).is_voter(self.id)
    }

    fn start_pre_vote(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_election_timer();
        self.votes = BTreeMap::from([(self.id, true)]);
        if self.membership.vote_result(&self.votes) == VoteResult::Won {
            return self.start_election(false);
        }
        self.request_votes(true, false);
    }

    pub(super) fn start_election(&mut self, transfer: bool) {
        self.term += 1;
        self.vote = Some(self.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.events.elections_started += 1;
        self.reset_election_timer();
        self.votes = BTreeMap::from([(self.id, true)]);
        if self.membership.vote_result(&self.votes) == VoteResult::Won {
            return self.become_leader();
        }
        self.request_votes(false, transfer);
    }

    fn request_votes(&mut self, pre: bool, transfer: bool) {
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        // A pre-vote asks about the term it would campaign at.
        let term = if pre { self.term + 1 } else { self.term };
        let voters: Vec<NodeId> = self
            .membership
            .voters
            .union(&self.membership.outgoing)
            .copied()
            .collect();
        for to in voters.into_iter().filter(|id| *id != self.id) {
            let body = if pre {
                Body::PreVote {
                    last_index,
                    last_term,
                }
            } else {
                Body::Vote {
                    last_index,
                    last_term,
                    transfer,
                }
            };
            self.msgs.push(super::Message {
                from: self.id,
                to,
                term,
                body,
            });
        }
    }

    pub(super) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
        pre: bool,
    ) {
        // Here term >= self.term; for a real vote, term == self.term.
        let free = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && term > self.term);
        let up_to_date = self.cfg.breaks(BrokenRule::VoteWithoutUpToDateCheck)
            || self.log.is_up_to_date(last_index, last_term);
        let granted = free && up_to_date;
        if pre {
            // A granted pre-vote answers at the asked term so the
            // pre-candidate counts it; a refusal carries ours.
            let reply_term = if granted { term } else { self.term };
            self.msgs.push(super::Message {
                from: self.id,
                to: from,
                term: reply_term,
                body: Body::PreVoteResponse { granted },
            });
        } else {
            if granted {
                // The vote goes out only after this hard state is durable
                // (Ready's order rule), so a restart cannot vote twice.
                self.vote = Some(from);
                self.reset_election_timer();
            }
            self.send(from, Body::VoteResponse { granted });
        }
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre: bool,
    ) {
        let expected = match (pre, self.role) {
            (true, Role::PreCandidate) => term == self.term + 1 || (!granted && term == self.term),
            (false, Role::Candidate) => term == self.term,
            _ => false,
        };
        if !expected || !self.membership.is_voter(from) {
            self.counters.unknown_peer += 1;
            return;
        }
        self.votes.entry(from).or_insert(granted);
        match self.membership.vote_result(&self.votes) {
            VoteResult::Won if pre => self.start_election(false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    pub(super) fn handle_timeout_now(&mut self) {
        if self.role == Role::Leader || !self.promotable() {
            self.counters.unknown_peer += 1;
            return;
        }
        // Leadership transfer (thesis §3.10): skip pre-vote, and voters
        // skip their lease check, since the old leader asked for this.
        self.start_election(true);
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.events.elections_won += 1;
        self.note_leader();
        self.forwarded.leading(self.term);
        self.votes.clear();
        self.transfer = None;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reads.reset();
        let next = self.log.last_index() + 1;
        self.progress = self
            .membership
            .members()
            .into_iter()
            .filter(|id| *id != self.id)
            .map(|id| (id, Progress::new(next)))
            .collect();
        // §5.4.2 and §8: a leader commits entries of earlier terms only by
        // committing one of its own; the no-op makes that happen at once.
        self.log.push(Entry {
            index: next,
            term: self.term,
            payload: Payload::Noop,
        });
        self.reads.request_round();
    }
}
