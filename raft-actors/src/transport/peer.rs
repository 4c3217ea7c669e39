//! Messages from peers, as the transport delivers them.

use actix::Message;

use crate::core::Message as RaftMessage;

/// A batch of Raft messages from one peer, stepped into the core in order.
/// The core checks every field: a forged or stale message is counted and
/// ignored, never trusted.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Peer {
    /// The messages, all addressed to the receiving node.
    pub messages: Vec<RaftMessage>,
}
