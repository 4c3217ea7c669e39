//! Messages between Raft nodes: the core's only contact with its peers.
//!
//! Every field is checked by the receiver ([`RaftCore::step`](super::RaftCore::step)):
//! a message from an unknown peer, for a stale term or an impossible index is
//! ignored (and counted) or answered, never trusted.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{
    Entry, FoundingMsg, LogIndex, NodeId, ProposalOutcome, ReadOutcome, RequestId, SnapshotMeta,
    Term,
};

/// One message from one node to another.
///
/// ```
/// use raft_actors::core::{Body, Message};
/// let m = Message { from: 1, to: 2, term: 3, body: Body::TimeoutNow };
/// assert_eq!(m.body.kind(), "TimeoutNow");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// Sender's term. Forwarding messages ([`Body::is_local`]) ignore it.
    pub term: Term,
    /// What is said.
    pub body: Body,
}

/// Why a follower refused an AppendEntries, so the leader can skip a whole
/// term of conflicting entries in one round trip instead of one index at a
/// time (§5.3, "the follower can include the term of the conflicting entry
/// and the first index it stores for that term").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// Term of the follower's entry at the rejected `prev_index`, or `None`
    /// when the follower's log is shorter than that.
    pub term: Option<Term>,
    /// First index the follower holds for `term`, or its last index + 1.
    pub first_index: LogIndex,
}

/// The kinds of messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// "Would you vote for me at `term`?" asked without raising any term, so
    /// a node cut off from the cluster cannot depose a healthy leader when it
    /// comes back (thesis §9.6). `term` is the term it would campaign at.
    PreVote {
        /// Index of the candidate's last entry.
        last_index: LogIndex,
        /// Term of the candidate's last entry.
        last_term: Term,
    },
    /// Answer to a [`Body::PreVote`].
    PreVoteResponse {
        /// Whether the vote would be granted.
        granted: bool,
    },
    /// RequestVote (§5.2).
    Vote {
        /// Index of the candidate's last entry.
        last_index: LogIndex,
        /// Term of the candidate's last entry.
        last_term: Term,
        /// Sent on a leadership transfer: voters skip the leader-lease check.
        transfer: bool,
    },
    /// Answer to a [`Body::Vote`].
    VoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries (§5.3).
    Append {
        /// Index of the entry just before `entries`.
        prev_index: LogIndex,
        /// Term of that entry.
        prev_term: Term,
        /// Entries to store, at `prev_index + 1` onwards.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: LogIndex,
    },
    /// Answer to a [`Body::Append`].
    AppendResponse {
        /// On success, the follower's log matches the leader's up to `index`;
        /// on refusal, `index` is the rejected `prev_index`.
        index: LogIndex,
        /// `None` on success; why it was refused otherwise.
        conflict: Option<Conflict>,
    },
    /// Heartbeat: keeps followers from campaigning, carries the commit index
    /// and the read round `seq` a ReadIndex waits to see confirmed.
    Heartbeat {
        /// `min(commit, match)` of the recipient, so it commits nothing it
        /// has not been shown to hold.
        commit: LogIndex,
        /// The leader's latest read round.
        seq: u64,
    },
    /// Answer to a [`Body::Heartbeat`].
    HeartbeatResponse {
        /// The round acknowledged.
        seq: u64,
    },
    /// Leadership transfer: "campaign now, skipping pre-vote" (thesis §3.10).
    TimeoutNow,
    /// InstallSnapshot (§7), one chunk: bytes `offset..offset + data.len()`
    /// of the snapshot described by `meta`.
    InstallSnapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The snapshot's whole length in bytes.
        size: u64,
        /// The CRC-32 of all its bytes, checked before it is installed.
        checksum: u32,
        /// Where this chunk starts.
        offset: u64,
        /// The chunk.
        data: bytes::Bytes,
        /// Whether this is the last chunk.
        done: bool,
    },
    /// Answer to a [`Body::InstallSnapshot`] chunk.
    SnapshotResponse {
        /// The snapshot's index.
        index: LogIndex,
        /// The next byte the follower expects (to resume or restart).
        next_offset: u64,
        /// The follower holds everything up to `index` now.
        done: bool,
    },
    /// Proposals a follower passes on to the leader.
    ForwardProposals {
        /// The follower's request ids and commands.
        proposals: Vec<(RequestId, Bytes)>,
    },
    /// The leader's answer to [`Body::ForwardProposals`]: where each landed.
    ProposalResults {
        /// Per request: `(index, term)` of the entry, or why it was refused.
        results: Vec<ProposalOutcome>,
    },
    /// Read requests a follower passes on to the leader.
    ForwardReads {
        /// The follower's read ids.
        ids: Vec<RequestId>,
        /// Whether a lease read suffices.
        lease: bool,
    },
    /// The leader's answer to [`Body::ForwardReads`]: the index each read
    /// must wait for, or why it failed.
    ReadResults {
        /// Per read: the safe read index, or the error.
        results: Vec<ReadOutcome>,
    },
    /// Founding a node with an empty store (see [`Founding`](super::Founding)):
    /// handled by the driver before the core, which ignores it (its term
    /// is 0, it is no Raft RPC).
    Founding(FoundingMsg),
    // Appended last, as every new kind must be: a message is encoded by its
    // kind's position, so the older kinds keep their encoding.
    /// A heartbeat from the leader of an idle group that also stops the
    /// follower's election timer until something wakes it (see
    /// [`Config::quiesce_after_ticks`](super::Config::quiesce_after_ticks));
    /// answered with a [`Body::HeartbeatResponse`].
    Quiesce {
        /// As [`Body::Heartbeat`]'s.
        commit: LogIndex,
        /// As [`Body::Heartbeat`]'s.
        seq: u64,
    },
    /// A quiesced follower woke (a request, a peer's message): its leader
    /// wakes too, and its heartbeats keep the follower from campaigning.
    Wake,
}

impl Body {
    /// A short name, for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::PreVote { .. } => "PreVote",
            Body::PreVoteResponse { .. } => "PreVoteResponse",
            Body::Vote { .. } => "Vote",
            Body::VoteResponse { .. } => "VoteResponse",
            Body::Append { .. } => "Append",
            Body::AppendResponse { .. } => "AppendResponse",
            Body::Heartbeat { .. } => "Heartbeat",
            Body::HeartbeatResponse { .. } => "HeartbeatResponse",
            Body::TimeoutNow => "TimeoutNow",
            Body::Quiesce { .. } => "Quiesce",
            Body::Wake => "Wake",
            Body::InstallSnapshot { .. } => "InstallSnapshot",
            Body::SnapshotResponse { .. } => "SnapshotResponse",
            Body::ForwardProposals { .. } => "ForwardProposals",
            Body::ProposalResults { .. } => "ProposalResults",
            Body::ForwardReads { .. } => "ForwardReads",
            Body::ReadResults { .. } => "ReadResults",
            Body::Founding(_) => "Founding",
        }
    }

    /// Forwarding messages are requests between a node and its leader, not
    /// Raft RPCs: their term plays no part in the protocol.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Body::ForwardProposals { .. }
                | Body::ProposalResults { .. }
                | Body::ForwardReads { .. }
                | Body::ReadResults { .. }
                | Body::Founding(_)
        )
    }
}
