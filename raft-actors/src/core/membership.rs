//! The cluster configuration as data, and every quorum computed from it
//! (§6): voters, learners, and the outgoing voters of a joint configuration.
//!
//! Never counts a learner: learners replicate but decide nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{LogIndex, NodeId};

/// Who votes and who only listens.
///
/// While `outgoing` is non-empty the configuration is joint: every decision
/// needs a majority of `voters` *and* a majority of `outgoing`.
///
/// ```
/// use raft_actors::core::Membership;
/// let m = Membership::voters([1, 2, 3]);
/// // Matches 9, 5, 2: a majority (two of three) holds index 5.
/// assert_eq!(m.committed_index(|id| [0, 9, 5, 2][id as usize]), 5);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// Voters of the outgoing configuration; empty unless joint.
    pub outgoing: BTreeSet<NodeId>,
    /// Nodes that receive the log but never vote.
    pub learners: BTreeSet<NodeId>,
}

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// A quorum can no longer grant.
    Lost,
    /// Undecided yet.
    Pending,
}

impl Membership {
    /// A simple configuration of voters only.
    pub fn voters(ids: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: ids.into_iter().collect(),
            ..Default::default()
        }
    }

    /// Whether this is a joint configuration (§6): old and new voters both
    /// decide until it is left.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// The same membership with learners counted as voters: only for the
    /// `CountLearnerInQuorum` broken rule of the simulation's own tests.
    pub(crate) fn with_learners_voting(&self) -> Membership {
        let mut m = self.clone();
        m.voters.extend(self.learners.iter().copied());
        m
    }

    /// Whether `id` votes in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member, voters and learners, in id order, without repeats.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.voters
            .iter()
            .chain(&self.outgoing)
            .chain(&self.learners)
            .copied()
            .collect()
    }

    /// The highest index that a quorum holds, given each voter's match
    /// index. A joint configuration takes the lower of its two halves.
    pub fn committed_index(&self, matched: impl Fn(NodeId) -> LogIndex) -> LogIndex {
        let incoming = majority_index(&self.voters, &matched);
        let outgoing = majority_index(&self.outgoing, &matched);
        incoming.min(outgoing)
    }

    /// Counts `votes` (true = granted) against both halves.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        match (
            majority_vote(&self.voters, votes),
            majority_vote(&self.outgoing, votes),
        ) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    /// Whether the nodes for which `active` holds form a quorum.
    pub fn has_quorum(&self, active: impl Fn(NodeId) -> bool) -> bool {
        let yes = |set: &BTreeSet<NodeId>| {
            set.is_empty() || set.iter().filter(|id| active(**id)).count() > set.len() / 2
        };
        yes(&self.voters) && yes(&self.outgoing)
    }
}

/// The largest index held by a majority of `voters`; `u64::MAX` for an
/// empty set, so an absent half of a joint configuration constrains nothing.
fn majority_index(voters: &BTreeSet<NodeId>, matched: &impl Fn(NodeId) -> LogIndex) -> LogIndex {
    if voters.is_empty() {
        return LogIndex::MAX;
    }
    let mut indexes: Vec<LogIndex> = voters.iter().map(|id| matched(*id)).collect();
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    // With n voters, the (n/2 + 1)-th highest index is held by a majority.
    indexes[voters.len() / 2]
}

fn majority_vote(voters: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut granted, mut rejected) = (0, 0);
    for id in voters {
        match votes.get(id) {
            Some(true) => granted += 1,
            Some(false) => rejected += 1,
            None => {}
        }
    }
    let quorum = voters.len() / 2 + 1;
    if granted >= quorum {
        VoteResult::Won
    } else if rejected > voters.len() - quorum {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joint_commit_needs_both_majorities() {
        let m = Membership {
            voters: [4, 5, 6].into(),
            outgoing: [1, 2, 3].into(),
            learners: [7].into(),
        };
        // New voters all at 10, old ones at 3, 2, 1: the old majority holds 2.
        let matched = |id: NodeId| [0, 3, 2, 1, 10, 10, 10, 99][id as usize];
        assert_eq!(m.committed_index(matched), 2);
    }

    #[test]
    fn learners_never_count() {
        let m = Membership {
            voters: [1, 2, 3].into(),
            learners: [4, 5].into(),
            ..Default::default()
        };
        assert!(!m.has_quorum(|id| id == 1 || id >= 4));
        let votes: BTreeMap<_, _> = [(1, true), (4, true), (5, true)].into();
        assert_eq!(m.vote_result(&votes), VoteResult::Pending);
    }

    #[test]
    fn vote_lost_once_a_quorum_rejects() {
        let m = Membership::voters([1, 2, 3]);
        let votes: BTreeMap<_, _> = [(1, true), (2, false), (3, false)].into();
        assert_eq!(m.vote_result(&votes), VoteResult::Lost);
    }
}
