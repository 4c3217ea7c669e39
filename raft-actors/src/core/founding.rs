//! [`Founding`]: whether a node with an empty store may take the voters it
//! was given (`--peers`) as its first configuration, or has lost the data
//! of a membership it already held.
//!
//! An empty data dir looks the same whether the cluster is new or the disk
//! was lost. A voter that lost its disk and bootstrapped again would vote
//! with an empty log and a forgotten vote: it can elect a leader that lacks
//! writes it acknowledged itself (etcd's rule: such a member must be removed
//! and added back). So a node never tells the two apart by itself, nor by
//! timing. It asks its peers, and the peers keep the evidence:
//!
//! - every node keeps a durable *roster* of the peers that enlisted with it;
//! - a node with an empty store first asks every other voter ([`FoundingMsg::Probe`])
//!   whether it knows it; one that does proves the node held a membership
//!   before: the node refuses to start ([`FoundingStep::Refuse`]);
//! - once every other voter answered that it does not, the node enlists
//!   with every one of them ([`FoundingMsg::Enlist`], recorded durably
//!   before it is acknowledged) and only then bootstraps and takes part.
//!
//! So a node takes part only after each other voter recorded it, and a node
//! that took part, lost its disk and asks again is refused by any voter
//! that kept its own disk. It waits (never guesses) while a voter does not
//! answer: a cluster is founded with all of its voters reachable, and a
//! node that starts after the others founded it (a staggered first start)
//! joins the same way. This module is pure: it decides; the node sends,
//! records and bootstraps. It must never decide on a partial set of answers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::NodeId;

/// The founding conversation between a node with an empty store and its
/// peers, carried in [`Body::Founding`](super::Body::Founding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FoundingMsg {
    /// "Do you know me?"
    Probe,
    /// What a peer knows: whether it holds a membership of its own, and
    /// whether the asker enlisted with it before.
    Answer {
        /// The peer belongs to a cluster (its store holds a membership).
        member: bool,
        /// The asker is on the peer's roster: it took part before.
        knows_you: bool,
    },
    /// "Record me": the asker is about to take part.
    Enlist,
    /// The asker is on the peer's roster, durably.
    Enlisted,
}

/// What a founding node does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoundingStep {
    /// Ask (again) the peers that have not answered.
    Probe(Vec<NodeId>),
    /// Enlist (again) with the peers that have not recorded it yet.
    Enlist(Vec<NodeId>),
    /// Every other voter recorded it: write the voters as the first
    /// configuration and start.
    Bootstrap,
    /// `by` knows this node: its data was lost. It must not start with a
    /// vote; the operator removes it and adds it back.
    Refuse {
        /// The peer that knew it.
        by: NodeId,
        /// Whether `by` belongs to a cluster (for the operator's message).
        member: bool,
    },
}

/// A node's founding, from its voters and its peers' answers.
///
/// ```
/// use raft_actors::core::{Founding, FoundingMsg, FoundingStep};
/// let mut f = Founding::new(1, [1, 2, 3]);
/// assert_eq!(f.step(), FoundingStep::Probe(vec![2, 3]));
/// f.receive(2, FoundingMsg::Answer { member: false, knows_you: false });
/// f.receive(3, FoundingMsg::Answer { member: true, knows_you: false });
/// assert_eq!(f.step(), FoundingStep::Enlist(vec![2, 3]));
/// f.receive(2, FoundingMsg::Enlisted);
/// f.receive(3, FoundingMsg::Enlisted);
/// assert_eq!(f.step(), FoundingStep::Bootstrap);
///
/// let mut lost = Founding::new(3, [1, 2, 3]);
/// lost.receive(2, FoundingMsg::Answer { member: true, knows_you: true });
/// assert_eq!(lost.step(), FoundingStep::Refuse { by: 2, member: true });
/// ```
#[derive(Clone, Debug)]
pub struct Founding {
    voters: BTreeSet<NodeId>,
    me: NodeId,
    answers: BTreeMap<NodeId, (bool, bool)>,
    enlisted: BTreeSet<NodeId>,
}

impl Founding {
    /// Node `me`, to be bootstrapped with `voters` (itself among them).
    pub fn new(me: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Self {
        Founding {
            voters: voters.into_iter().collect(),
            me,
            answers: BTreeMap::new(),
            enlisted: BTreeSet::new(),
        }
    }

    /// The voters it bootstraps with.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// Takes a peer's reply; anything from a node that is not one of the
    /// other voters, or that is not a reply, is ignored.
    pub fn receive(&mut self, from: NodeId, msg: FoundingMsg) {
        if from == self.me || !self.voters.contains(&from) {
            return;
        }
        match msg {
            FoundingMsg::Answer { member, knows_you } => {
                // What a peer said it knows is never taken back by a later
                // answer (a duplicate delivered late, a peer that restarted).
                let (was_member, knew) = self.answers.get(&from).copied().unwrap_or_default();
                self.answers
                    .insert(from, (member || was_member, knows_you || knew));
            }
            FoundingMsg::Enlisted => {
                self.enlisted.insert(from);
            }
            FoundingMsg::Probe | FoundingMsg::Enlist => {}
        }
    }

    /// What to do now.
    pub fn step(&self) -> FoundingStep {
        if let Some((&by, &(member, _))) = self.answers.iter().find(|(_, a)| a.1) {
            return FoundingStep::Refuse { by, member };
        }
        let others = self.voters.iter().copied().filter(|&n| n != self.me);
        let unanswered: Vec<NodeId> = others
            .clone()
            .filter(|n| !self.answers.contains_key(n))
            .collect();
        if !unanswered.is_empty() {
            return FoundingStep::Probe(unanswered);
        }
        let unrecorded: Vec<NodeId> = others.filter(|n| !self.enlisted.contains(n)).collect();
        if !unrecorded.is_empty() {
            return FoundingStep::Enlist(unrecorded);
        }
        FoundingStep::Bootstrap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: FoundingMsg = FoundingMsg::Answer {
        member: false,
        knows_you: false,
    };

    #[test]
    fn a_single_voter_bootstraps_at_once() {
        assert_eq!(Founding::new(1, [1]).step(), FoundingStep::Bootstrap);
    }

    #[test]
    fn waits_for_every_other_voter_before_enlisting() {
        let mut f = Founding::new(1, [1, 2, 3, 4, 5]);
        for n in [2, 3, 4] {
            f.receive(n, NO);
        }
        // A majority answered, but the missing one may know this node.
        assert_eq!(f.step(), FoundingStep::Probe(vec![5]));
        f.receive(5, NO);
        assert_eq!(f.step(), FoundingStep::Enlist(vec![2, 3, 4, 5]));
        for n in [2, 3, 4] {
            f.receive(n, FoundingMsg::Enlisted);
        }
        assert_eq!(f.step(), FoundingStep::Enlist(vec![5]));
    }

    #[test]
    fn one_peer_that_knows_it_refuses_whatever_the_others_say() {
        let mut f = Founding::new(3, [1, 2, 3]);
        f.receive(1, NO);
        f.receive(
            2,
            FoundingMsg::Answer {
                member: true,
                knows_you: true,
            },
        );
        f.receive(2, NO); // a later answer never takes it back
        f.receive(2, FoundingMsg::Enlisted);
        f.receive(1, FoundingMsg::Enlisted);
        assert_eq!(
            f.step(),
            FoundingStep::Refuse {
                by: 2,
                member: true
            }
        );
    }

    #[test]
    fn replies_from_strangers_and_from_itself_count_for_nothing() {
        let mut f = Founding::new(1, [1, 2]);
        f.receive(
            9,
            FoundingMsg::Answer {
                member: true,
                knows_you: true,
            },
        );
        f.receive(1, NO);
        f.receive(9, FoundingMsg::Enlisted);
        assert_eq!(f.step(), FoundingStep::Probe(vec![2]));
    }
}
