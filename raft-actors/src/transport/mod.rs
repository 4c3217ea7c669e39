//! The network adapter: the trait every transport implements, what the node
//! may rely on from it, and its errors.
//!
//! A transport carries batches of [`Message`]s from one node to another and
//! delivers incoming ones to the receiving node's mailbox as one
//! [`Peer`] message per batch. Connection
//! management (reconnects, backoff, bounded queues) belongs to the adapter.
//! It must never block the node: [`Transport::send`] queues and returns.
//! It may lose, delay, duplicate or reorder messages (Raft tolerates all
//! four), but must never alter one.
//!
//! What a service needs of a socket adapter beyond sending (serve, peer
//! addresses, metrics, shutdown) is [`NetworkTransport`].
//!
//! The in-process adapter lives in [`memory`]; `transports/memory`
//! re-exports it (see `transports/README.md` for why it lives here).

mod group_sender;
mod lanes;
pub mod memory;
mod network;
mod peer;

use thiserror::Error;

use crate::core::{Body, Message, NodeId};

pub use group_sender::{GroupSender, SharedTransport};
pub use lanes::{lanes, GroupBatch, LaneReceiver, LaneSender, SNAPSHOT_LANE_CAPACITY};
pub use memory::{LinkFaults, MemoryNetwork, MemoryTransport};
pub use network::{NetworkTransport, PeerMetrics, ServeError};
pub use peer::Peer;

/// Why a batch was refused at once. A batch accepted with `Ok` may still be
/// lost on the way; Raft retries what matters.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TransportError {
    /// No address is known for this peer.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The batch is larger than the transport carries in one frame.
    #[error("batch of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Estimated size of the batch.
        size: usize,
        /// The transport's limit.
        max: usize,
    },
    /// The peer's queue is full or its connection is down; the batch was
    /// dropped.
    #[error("peer {0} unreachable")]
    Unreachable(NodeId),
}

/// A node's outgoing network.
///
/// Not `async`: the node must never wait on a peer, or one slow follower
/// would stall the whole cluster's commit path. An adapter that does I/O
/// queues the batch and writes it from its own task.
pub trait Transport: Send + 'static {
    /// Queues `messages`, all addressed to `to`, for delivery as one batch.
    ///
    /// To ensure correctness:
    /// - `Ok` means queued, not delivered: the batch may still be lost;
    /// - messages arrive unaltered, each at most as often as the adapter
    ///   documents (the memory transport duplicates only when told to);
    /// - with no faults injected, batches on one link arrive in send order
    ///   (not required by Raft, but it keeps forwarding answers ahead of the
    ///   commits that follow them), except that an adapter may let other
    ///   messages overtake `InstallSnapshot` chunks (see [`lanes`]) so a
    ///   heartbeat never waits behind a snapshot;
    /// - [`TransportError::TooLarge`] and [`TransportError::UnknownPeer`]
    ///   are refused before anything is sent.
    fn send(&self, to: NodeId, messages: Vec<Message>) -> Result<(), TransportError>;
}

/// A cheap upper-bound estimate of a batch's encoded size: payload bytes
/// plus a fixed allowance per message and entry. Adapters compare it with
/// their frame limit without encoding twice.
///
/// ```
/// use raft_actors::core::{Body, Message};
/// use raft_actors::transport::estimated_size;
/// let m = Message { from: 1, to: 2, term: 1, body: Body::TimeoutNow };
/// assert!(estimated_size(&[m]) >= 64);
/// ```
pub fn estimated_size(messages: &[Message]) -> usize {
    messages
        .iter()
        .map(|m| {
            64 + match &m.body {
                Body::Append { entries, .. } => {
                    entries.iter().map(|e| 32 + e.payload.len()).sum::<usize>()
                }
                Body::ForwardProposals { proposals } => {
                    proposals.iter().map(|(_, b)| 16 + b.len()).sum::<usize>()
                }
                Body::ProposalResults { results } => 32 * results.len(),
                Body::ForwardReads { ids, .. } => 8 * ids.len(),
                Body::ReadResults { results } => 32 * results.len(),
                Body::InstallSnapshot { data, .. } => data.len(),
                _ => 0,
            }
        })
        .sum()
}
