//! What a caller of the core can be refused, typed so the caller can retry,
//! redirect or give up.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::NodeId;

/// Why a proposal was not appended. Nothing was appended when this is
/// returned, so the caller may safely retry elsewhere.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposeError {
    /// No leader is known right now (an election is under way, or this node
    /// is cut off).
    #[error("no leader is known")]
    NoLeader,
    /// The node the proposal reached is not the leader.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The leader is handing leadership over and takes no proposals until
    /// the transfer completes or aborts.
    #[error("leadership transfer to {to} in progress")]
    TransferInProgress {
        /// The transfer target.
        to: NodeId,
    },
}

/// Why a read could not be given a safe index.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadError {
    /// No leader is known right now.
    #[error("no leader is known")]
    NoLeader,
    /// The leader stepped down because it no longer heard from a quorum
    /// (check-quorum) before the read was confirmed.
    #[error("no quorum reachable")]
    NoQuorum,
    /// The node lost (or never had) leadership before the read was
    /// confirmed; it is unknown whether a newer leader exists.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
}

/// Why a leadership transfer was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TransferError {
    /// Only the leader can hand leadership over.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The target is not a voter of the current configuration.
    #[error("node {0} is not a voter")]
    NotVoter(NodeId),
}

/// A configuration the core refuses to start with.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A value is out of its allowed range.
    #[error("invalid config: {0}")]
    Invalid(&'static str),
}
