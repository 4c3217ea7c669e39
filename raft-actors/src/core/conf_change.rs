//! Membership changes (§6, thesis §4): single-server changes and joint
//! consensus, proposed as log entries.
//!
//! A configuration takes effect as soon as its entry is in a node's log,
//! committed or not (the paper's rule, §6): a leader counts the new voters
//! for the entry that adds them, so a change cannot wait on a quorum that no
//! longer exists. When a follower's log is truncated past a configuration
//! entry, it falls back to the previous one ([`ConfigHistory`] keeps them
//! all). In exchange, a leader refuses a new change until the last one is
//! committed, so at most one change is ever in flight.
//!
//! Must never let two disjoint majorities decide: several voters change at
//! once only through a joint configuration, and never two changes at once.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    BrokenRule, Entry, LogIndex, Membership, NodeId, Payload, Progress, ProposalOutcome, RaftCore,
    RequestId, Role, Term,
};

/// A membership change a leader can propose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChange {
    /// Add a node as a learner: it replicates, never votes.
    AddLearner(NodeId),
    /// Promote a learner to voter. A new voter joins as a learner first and
    /// is promoted once caught up (refused with
    /// [`ConfChangeError::LearnerBehind`] before).
    AddVoter(NodeId),
    /// Remove a voter or learner, the leader included: it keeps leading
    /// until the change commits, then steps down.
    Remove(NodeId),
    /// Move to any set of voters and learners. Changing more than one voter
    /// goes through a joint configuration (§6).
    Replace {
        /// The voters after the change.
        voters: BTreeSet<NodeId>,
        /// The learners after the change.
        learners: BTreeSet<NodeId>,
    },
    /// Leave a joint configuration (automatic unless
    /// [`Config::auto_leave_joint`](super::Config::auto_leave_joint) is off).
    LeaveJoint,
}

/// Why a membership change was refused. Nothing was appended.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChangeError {
    /// Only the leader takes membership changes.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The previous change is not committed yet (or a joint configuration
    /// has not been left): one change at a time.
    #[error("a membership change is already in progress")]
    ChangeInProgress,
    /// The leader has not committed an entry of its term yet; retry shortly.
    #[error("the leader has not committed an entry of its term yet")]
    LeaderNotReady,
    /// A leadership transfer is under way.
    #[error("leadership transfer to {to} in progress")]
    TransferInProgress {
        /// The transfer target.
        to: NodeId,
    },
    /// The node is already a member in that role.
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    /// The node is not a member.
    #[error("node {0} is not a member")]
    NotMember(NodeId),
    /// Only a learner can become a voter: add it as a learner first.
    #[error("node {0} is not a learner: add it as a learner first")]
    NotLearner(NodeId),
    /// The learner is too far behind to vote yet; retry once it caught up.
    #[error("learner {id} is behind (at {matched} of {last})")]
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// Its match index.
        matched: LogIndex,
        /// The leader's last index.
        last: LogIndex,
    },
    /// A configuration needs at least one voter.
    #[error("a configuration needs at least one voter")]
    NoVoters,
    /// A voter cannot become a learner in one step: remove it, then add it.
    #[error("voter {0} cannot become a learner in one step")]
    VoterToLearner(NodeId),
    /// Not in a joint configuration.
    #[error("not in a joint configuration")]
    NotJoint,
}

/// How a membership change stands on this node, by where its entry landed:
/// see [`RaftCore::conf_change_progress`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfChangeProgress {
    /// Not committed yet, or committed into a joint configuration not yet
    /// left.
    Pending,
    /// Committed, and no joint configuration remains: the configuration
    /// now in force (a later change may have followed this one).
    Done(Membership),
    /// The entry was replaced by another leader's log: the change was lost
    /// with a leader change and will never apply.
    Lost {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
}

/// The configurations in the retained log, newest last, on top of the one
/// in force at the log's base (a snapshot, or the bootstrap).
#[derive(Clone, Debug, Default)]
pub(crate) struct ConfigHistory {
    base_index: LogIndex,
    base: Membership,
    entries: Vec<(LogIndex, Membership)>,
}

impl ConfigHistory {
    pub(crate) fn new(base_index: LogIndex, base: Membership) -> Self {
        ConfigHistory {
            base_index,
            base,
            entries: Vec::new(),
        }
    }

    /// Records the configuration entries among `entries` (appended in order).
    pub(crate) fn record(&mut self, entries: &[Entry]) {
        for e in entries {
            if let Payload::Config(m) = &e.payload {
                if e.index > self.latest_index() {
                    self.entries.push((e.index, (**m).clone()));
                }
            }
        }
    }

    /// The configuration in force: the newest in the log.
    pub(crate) fn current(&self) -> &Membership {
        self.entries.last().map_or(&self.base, |(_, m)| m)
    }

    /// Index of the newest configuration entry (the base's index if none).
    pub(crate) fn latest_index(&self) -> LogIndex {
        self.entries.last().map_or(self.base_index, |(i, _)| *i)
    }

    /// The log was truncated from `index` on: forget those entries.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        self.entries.retain(|(i, _)| *i < index);
    }

    /// The configuration in force at `index`.
    pub(crate) fn at(&self, index: LogIndex) -> Membership {
        self.entries
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.base.clone(), |(_, m)| m.clone())
    }

    /// The log was compacted up to `index`: fold older entries into the base.
    pub(crate) fn compact(&mut self, index: LogIndex) {
        if index <= self.base_index {
            return;
        }
        self.base = self.at(index);
        self.base_index = index;
        self.entries.retain(|(i, _)| *i > index);
    }
}

impl RaftCore {
    /// Proposes a membership change and answers where its entry landed,
    /// `(index, term)`: the key to ask [`conf_change_progress`](Self::conf_change_progress)
    /// with (the same pair also arrives as a [`ProposalOutcome`] with this
    /// `id`). It is in force at once and done when committed (a joint
    /// change: when the joint configuration is left).
    pub fn propose_conf_change(
        &mut self,
        id: RequestId,
        change: ConfChange,
    ) -> Result<(LogIndex, Term), ConfChangeError> {
        self.wake();
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader: self.leader,
            });
        }
        if let Some(t) = &self.transfer {
            return Err(ConfChangeError::TransferInProgress { to: t.to });
        }
        // A new leader may hold a change of an earlier term that it does not
        // know is committed; a change of its own on top could form a
        // majority disjoint from the one the other change needs (Ongaro,
        // raft-dev 2015, "bug in single-server membership changes"). Wait
        // until an entry of this term commits (its no-op).
        if self.log.term(self.log.commit) != Some(self.term) {
            return Err(ConfChangeError::LeaderNotReady);
        }
        let current = self.configs.current().clone();
        let pending = self.configs.latest_index() > self.log.commit;
        let concurrent_ok = self.cfg.breaks(BrokenRule::AcceptConcurrentChanges);
        if (pending || (current.is_joint() && change != ConfChange::LeaveJoint)) && !concurrent_ok {
            return Err(ConfChangeError::ChangeInProgress);
        }
        let target = self.target_membership(&current, change)?;
        let index = self.append_config(target);
        self.proposal_outcomes.push(ProposalOutcome {
            id,
            result: Ok((index, self.term)),
        });
        Ok((index, self.term))
    }

    /// How the change whose entry landed at `(index, term)` (its
    /// [`ProposalOutcome`]) stands: the one answer a caller waiting on a
    /// change needs, asked after each batch rather than polled.
    ///
    /// ```
    /// use raft_actors::core::{ConfChange, ConfChangeProgress, Config, Membership, RaftCore, Recovered};
    /// use rand::SeedableRng;
    /// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let mut core = RaftCore::new(1, Config::default(), Recovered::bootstrap(Membership::voters([1])), rng)?;
    /// while !core.status().role.is_leader() { core.tick(); }
    /// while let Some(rd) = core.ready() { let _ = rd.split().1.persisted(); core.advance(); }
    /// let (index, term) = core.propose_conf_change(1, ConfChange::AddLearner(2))?;
    /// assert_eq!(core.conf_change_progress(index, term), ConfChangeProgress::Pending);
    /// while let Some(rd) = core.ready() { let _ = rd.split().1.persisted(); core.advance(); }
    /// let ConfChangeProgress::Done(m) = core.conf_change_progress(index, term) else { panic!() };
    /// assert!(m.learners.contains(&2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn conf_change_progress(&self, index: LogIndex, term: Term) -> ConfChangeProgress {
        let commit = self.log.commit;
        // A compacted entry was committed, and a committed entry is never
        // replaced: only a retained one can have been lost.
        let compacted = index < self.log.first_index();
        if !compacted && self.log.term(index) != Some(term) {
            return ConfChangeProgress::Lost {
                leader: self.leader,
            };
        }
        let current = self.configs.current();
        if commit >= index && self.configs.latest_index() <= commit && !current.is_joint() {
            ConfChangeProgress::Done(current.clone())
        } else {
            ConfChangeProgress::Pending
        }
    }

    fn target_membership(
        &self,
        current: &Membership,
        change: ConfChange,
    ) -> Result<Membership, ConfChangeError> {
        let mut next = Membership {
            outgoing: BTreeSet::new(),
            ..current.clone()
        };
        match change {
            ConfChange::LeaveJoint => {
                return if current.is_joint() {
                    Ok(next)
                } else {
                    Err(ConfChangeError::NotJoint)
                };
            }
            ConfChange::AddLearner(id) => {
                if current.contains(id) {
                    return Err(ConfChangeError::AlreadyMember(id));
                }
                next.learners.insert(id);
            }
            ConfChange::AddVoter(id) => {
                if current.voters.contains(&id) {
                    return Err(ConfChangeError::AlreadyMember(id));
                }
                self.check_caught_up(current, id)?;
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfChange::Remove(id) => {
                if !current.contains(id) {
                    return Err(ConfChangeError::NotMember(id));
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
            ConfChange::Replace { voters, learners } => {
                for &id in voters.difference(&current.voters) {
                    self.check_caught_up(current, id)?;
                }
                if let Some(id) = learners.intersection(&current.voters).next() {
                    return Err(ConfChangeError::VoterToLearner(*id));
                }
                next.learners = learners.difference(&voters).copied().collect();
                next.voters = voters;
            }
        }
        if next.voters.is_empty() {
            return Err(ConfChangeError::NoVoters);
        }
        // One voter in or out is safe in one step (thesis §4.1: any two
        // majorities of configurations one voter apart overlap). More needs
        // the joint phase, where old and new majorities both decide.
        let changed = next.voters.symmetric_difference(&current.voters).count();
        if changed > 1 && !self.cfg.breaks(BrokenRule::NoJointPhase) {
            next.outgoing = current.voters.clone();
        }
        Ok(next)
    }

    /// A new voter must be a learner that holds (nearly) the whole log, or
    /// it would stall commits while it catches up (thesis §4.2.1).
    fn check_caught_up(&self, current: &Membership, id: NodeId) -> Result<(), ConfChangeError> {
        if !current.learners.contains(&id) {
            return Err(ConfChangeError::NotLearner(id));
        }
        let last = self.log.last_index();
        let matched = self.progress.get(&id).map_or(0, |p| p.match_index);
        // A learner that never acknowledged anything is not caught up, however
        // young the log: promoting a node that is down or unreachable would
        // add a voter that cannot vote, and could cost the cluster its quorum.
        if matched == 0 || matched + self.cfg.max_promotion_lag < last {
            return Err(ConfChangeError::LearnerBehind { id, matched, last });
        }
        Ok(())
    }

    /// Leader: appends a configuration entry; it is in force at once.
    fn append_config(&mut self, membership: Membership) -> LogIndex {
        let index = self.log.last_index() + 1;
        let entry = Entry {
            index,
            term: self.term,
            payload: Payload::Config(Box::new(membership)),
        };
        self.configs.record(std::slice::from_ref(&entry));
        self.log.push(entry);
        self.refresh_membership();
        index
    }

    /// Puts the newest configuration in force: quorums, and on a leader the
    /// set of peers it replicates to.
    pub(super) fn refresh_membership(&mut self) {
        let current = self.configs.current();
        if *current == self.membership {
            return;
        }
        self.membership = current.clone();
        if self.role == Role::Leader {
            let members = self.membership.members();
            self.progress.retain(|id, _| members.contains(id));
            let next = self.log.last_index() + 1;
            for id in members.into_iter().filter(|id| *id != self.id) {
                self.progress.entry(id).or_insert_with(|| {
                    let mut p = Progress::new(next);
                    // New members have not had a chance to answer yet.
                    p.recent_active = true;
                    p
                });
            }
            // A removal can lower the quorum: entries may commit now.
            self.maybe_commit();
        }
    }

    /// Leader: the commit index moved. Leave a committed joint
    /// configuration, and step down once a configuration without this node
    /// is committed (§6: it led until then, without counting itself).
    pub(super) fn after_commit(&mut self) {
        if self.role != Role::Leader || self.configs.latest_index() > self.log.commit {
            return;
        }
        if self.membership.is_joint() && self.cfg.auto_leave_joint {
            let left = Membership {
                outgoing: BTreeSet::new(),
                ..self.membership.clone()
            };
            self.append_config(left);
            return;
        }
        if !self.membership.is_voter(self.id) {
            self.become_follower(self.term, None);
        }
    }
}
