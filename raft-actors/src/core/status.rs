//! What a node can tell about itself: role, term, log cursors, peers,
//! counters of the input it ignored, and counts of what it did (elections,
//! leaderships seen, snapshots sent).

use std::collections::BTreeMap;

use super::{LogIndex, Membership, NodeId, ProgressState, RaftCore, Term};

/// A node's role in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking whether it could win an election, before raising its term.
    PreCandidate,
    /// Campaigning in its current term.
    Candidate,
    /// Leading its current term.
    Leader,
}

impl Role {
    /// Whether this is [`Role::Leader`].
    pub fn is_leader(self) -> bool {
        self == Role::Leader
    }
}

/// What the leader knows of one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// Highest index known replicated there.
    pub match_index: LogIndex,
    /// Next index to send.
    pub next_index: LogIndex,
    /// Probing or streaming.
    pub state: ProgressState,
    /// Ticks since the peer last answered this leader; `None` if it has
    /// not yet in this term.
    pub last_heard_ticks: Option<u64>,
}

/// A snapshot of a node's state, for metrics, tests and tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Whom it voted for in `term`.
    pub vote: Option<NodeId>,
    /// The leader it follows, if known.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit: LogIndex,
    /// Highest index handed out to apply.
    pub applied: LogIndex,
    /// Index of its last entry.
    pub last_index: LogIndex,
    /// Term of its last entry.
    pub last_term: Term,
    /// Highest index confirmed durable.
    pub stable: LogIndex,
    /// First index still in the log (earlier ones are compacted).
    pub first_index: LogIndex,
    /// Index of the latest snapshot (0 if none).
    pub snapshot_index: LogIndex,
    /// Index of the newest configuration entry; a change is pending while
    /// it is above `commit`.
    pub config_index: LogIndex,
    /// The configuration in force.
    pub membership: Membership,
    /// The configuration committed (the one in force at `commit`).
    pub committed_membership: Membership,
    /// The leader's commit index as this node last heard it (its own on a
    /// leader; 0 before this term's leader was heard): a follower whose
    /// applied index trails it is behind.
    pub leader_commit: LogIndex,
    /// Leader only: each peer's replication state.
    pub peers: BTreeMap<NodeId, PeerStatus>,
    /// Leader only: the target of a leadership transfer under way.
    pub transfer: Option<NodeId>,
}

/// Input the core ignored or refused, by reason. Peers cannot make the core
/// panic; they can only make these grow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages not addressed to this node, or from itself or node 0.
    pub misaddressed: u64,
    /// Messages of an older term (ignored, or answered with the newer term).
    pub stale_term: u64,
    /// Vote requests refused because a leader was heard from recently.
    pub votes_refused_in_lease: u64,
    /// Vote requests refused because the candidate is not a voter in this
    /// node's configuration (a removed server that does not know it).
    pub votes_refused_non_member: u64,
    /// Responses from nodes that are not members, or not expected.
    pub unknown_peer: u64,
    /// Messages whose content is impossible (term 0, gaps in entries, an
    /// index past the leader's log, an attempt to rewrite a committed entry).
    pub malformed: u64,
    /// Times this node stepped down for lack of a quorum.
    pub check_quorum_step_downs: u64,
    /// Copies of forwarded proposals answered again from the record, not
    /// appended again (a duplicating or replaying network).
    pub forwards_repeated: u64,
    /// Forwarded proposals left unanswered: this node may have appended or
    /// refused them in a term it has no record of, so neither "appended"
    /// nor "not appended" is known (the caller's outcome is unknown).
    pub forwards_unanswered: u64,
    /// Not input, but counted beside it: forwarded reads sent again,
    /// served here or failed at once because the leader they went to is no
    /// longer the one followed.
    pub reads_moved: u64,
}

/// What the core did since it was built, counted for metrics: elections,
/// leaderships seen, snapshots sent. Counting only: nothing reads these to
/// decide anything.
///
/// ```
/// use raft_actors::core::{Config, Membership, RaftCore, Recovered};
/// use rand::SeedableRng;
/// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let boot = Recovered::bootstrap(Membership::voters([1]));
/// let mut core = RaftCore::new(1, Config::default(), boot, rng).unwrap();
/// core.campaign(); // a single voter wins at once
/// let e = core.events();
/// assert_eq!((e.elections_started, e.elections_won, e.leader_changes), (1, 1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Elections this node started as a candidate (a pre-vote round that
    /// found no majority starts none).
    pub elections_started: u64,
    /// Elections it won: times it became leader.
    pub elections_won: u64,
    /// Leaderships it saw begin: a leader became known for a term, or a
    /// different one than it knew (itself included).
    pub leader_changes: u64,
    /// Snapshots it sent, as leader, that a follower confirmed holding.
    pub snapshots_sent: u64,
    /// Bytes of snapshot chunks it sent (resent chunks included).
    pub snapshot_bytes_sent: u64,
    /// Times it stopped its timers, its group idle
    /// ([`Config::quiesce_after_ticks`](super::Config::quiesce_after_ticks)).
    pub quiesced: u64,
}

impl Events {
    /// Both counts added, field by field (a node adds up the counts of its
    /// incarnations).
    ///
    /// ```
    /// use raft_actors::core::Events;
    /// let a = Events { elections_won: 1, ..Events::default() };
    /// assert_eq!(a.plus(&a).elections_won, 2);
    /// ```
    pub fn plus(&self, other: &Events) -> Events {
        Events {
            elections_started: self.elections_started + other.elections_started,
            elections_won: self.elections_won + other.elections_won,
            leader_changes: self.leader_changes + other.leader_changes,
            snapshots_sent: self.snapshots_sent + other.snapshots_sent,
            snapshot_bytes_sent: self.snapshot_bytes_sent + other.snapshot_bytes_sent,
            quiesced: self.quiesced + other.quiesced,
        }
    }
}

impl RaftCore {
    /// What the core did since it was built.
    pub fn events(&self) -> Events {
        self.events
    }

    /// Counts a leadership that just became known (called wherever the
    /// leader changes).
    pub(super) fn note_leader(&mut self) {
        if let Some(leader) = self.leader {
            if self.leader_seen != Some((self.term, leader)) {
                self.leader_seen = Some((self.term, leader));
                self.events.leader_changes += 1;
            }
        }
    }

    /// A snapshot of the node's state.
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.commit,
            applied: self.log.applied,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            stable: self.log.stable,
            first_index: self.log.first_index(),
            snapshot_index: self.snapshot.as_ref().map_or(0, |s| s.meta.index),
            config_index: self.configs.latest_index(),
            membership: self.membership.clone(),
            committed_membership: self.configs.at(self.log.commit),
            leader_commit: if self.role == Role::Leader {
                self.log.commit
            } else {
                self.leader_commit.max(self.log.commit)
            },
            peers: self
                .progress
                .iter()
                .map(|(id, p)| {
                    (
                        *id,
                        PeerStatus {
                            match_index: p.match_index,
                            next_index: p.next_index,
                            state: p.state,
                            last_heard_ticks: p.heard_at.map(|t| self.now.saturating_sub(t)),
                        },
                    )
                })
                .collect(),
            transfer: self.transfer.as_ref().map(|t| t.to),
        }
    }

    /// The node's role (cheaper than [`status`](Self::status)).
    pub fn role(&self) -> Role {
        self.role
    }

    /// The node's current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The highest index known committed (cheaper than
    /// [`status`](Self::status)).
    pub fn commit(&self) -> LogIndex {
        self.log.commit
    }

    /// The configuration in force (cheaper than [`status`](Self::status)).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The leader this node follows, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
}
