//! Log entries: what the log holds and what replication carries.
//!
//! An entry is immutable once created; its payload is a reference-counted
//! [`Bytes`], so sending one entry to four followers copies no command bytes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Membership;

/// A node's identity in the cluster. `0` is never a valid id.
pub type NodeId = u64;
/// A Raft group's identity within a cluster. A process may host many
/// groups (multi-raft); the wire and disk formats carry the group of every
/// batch and record, so one transport and one store can serve them all.
/// A single-group service is group [`DEFAULT_GROUP`].
///
/// ```
/// use raft_actors::core::{GroupId, DEFAULT_GROUP};
/// let g: GroupId = DEFAULT_GROUP;
/// assert_eq!(g, 0);
/// ```
pub type GroupId = u64;
/// The group of a single-group service.
pub const DEFAULT_GROUP: GroupId = 0;
/// A Raft term (§5.1). Terms only grow.
pub type Term = u64;
/// A position in the replicated log; the first entry has index 1.
pub type LogIndex = u64;
/// The caller's name for a proposal or a read, echoed back in [`Ready`](super::Ready).
pub type RequestId = u64;

/// One entry of the replicated log.
///
/// ```
/// use raft_actors::core::{Entry, Payload};
/// let e = Entry { index: 3, term: 2, payload: Payload::Command("set x".into()) };
/// assert_eq!(e.payload.len(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log.
    pub index: LogIndex,
    /// Term of the leader that created it.
    pub term: Term,
    /// What the entry carries.
    pub payload: Payload,
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// The no-op a new leader appends at the start of its term, so it can
    /// commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// A client command, opaque to the core.
    Command(Bytes),
    /// A new cluster configuration (§6). It takes effect as soon as it is
    /// in a node's log, committed or not. Boxed: configurations are rare,
    /// and an unboxed one would double the size of every entry copied on
    /// the hot path.
    Config(Box<Membership>),
    /// Stands in, in the core's memory only, for the payload of an entry
    /// applied and durable whose bytes were dropped to bound memory
    /// ([`Config::log_cache_bytes`](super::Config::log_cache_bytes)); `len`
    /// is what it carried. A message holding one is filled from storage
    /// before it leaves ([`Message::entries_to_read`](super::Message::entries_to_read));
    /// a node refuses one that arrives (counted as malformed), and none is
    /// ever persisted or applied.
    Unread {
        /// Bytes of user data the entry carries.
        len: u64,
    },
}

impl Payload {
    /// Bytes of user data carried (0 for a no-op).
    pub fn len(&self) -> usize {
        match self {
            Payload::Noop | Payload::Config(_) => 0,
            Payload::Command(b) => b.len(),
            Payload::Unread { len } => *len as usize,
        }
    }

    /// Whether the payload carries no user data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_small() {
        // Entries are cloned into messages, Ready batches and the apply
        // stream: their size is a throughput budget.
        assert!(
            std::mem::size_of::<Entry>() <= 56,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }
}
