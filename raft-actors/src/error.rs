//! The errors of the actor layer: what a client can be told
//! ([`ClientError`]) and what stops a node ([`FatalError`]).
//!
//! A client error says whether the request may have taken effect, so a
//! caller knows whether a retry is safe: `NotLeader`, `NoLeader`, `Busy`,
//! `ShuttingDown`, `BadCommand` and `Invalid` mean nothing was applied; `Timeout` and
//! `Interrupted` mean the outcome is unknown.

use thiserror::Error;

use crate::core::{LogIndex, NodeId, ProposeError, ReadError};
use crate::storage::StorageError;
use crate::type_config::CodecError;

/// Why a client request failed.
///
/// ```
/// use raft_actors::ClientError;
/// let e = ClientError::NotLeader { leader: Some(2) };
/// assert!(!e.outcome_unknown());
/// assert!(ClientError::Timeout.outcome_unknown());
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ClientError {
    /// This node cannot serve the request and the leader is elsewhere (or
    /// the entry was overwritten by a new leader's log): nothing was applied.
    /// Retry at `leader`.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// No leader is known right now (election under way, or this node is
    /// cut off from a quorum): nothing was applied. Retry later.
    #[error("no leader is known")]
    NoLeader,
    /// This node led, but lost contact with a quorum (check-quorum stepped
    /// it down) before the read could be confirmed: nothing was read. Retry
    /// later, or at another node.
    #[error("no quorum reachable")]
    NoQuorum,
    /// The bounded queue of proposals and reads waiting on this node is
    /// full: nothing was proposed. Back off.
    #[error("too many requests in flight")]
    Busy,
    /// No answer within the deadline; the outcome is unknown (the command
    /// may still apply).
    #[error("timed out; outcome unknown")]
    Timeout,
    /// The node restarted (or its state machine did) while the request was
    /// pending; the outcome is unknown.
    #[error("node restarted; outcome unknown")]
    Interrupted,
    /// The node is stopped: nothing was proposed.
    #[error("shutting down")]
    ShuttingDown,
    /// The command could not be encoded: nothing was proposed.
    #[error("command cannot be encoded: {0}")]
    BadCommand(CodecError),
    /// The request itself is invalid (e.g. a transfer to a non-voter):
    /// nothing was done.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The node is down for good (storage unreadable, log corrupt).
    #[error("node failed: {0}")]
    Fatal(String),
}

impl ClientError {
    /// Whether the request may have taken effect even though it failed.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout | ClientError::Interrupted | ClientError::Fatal(_)
        )
    }
}

impl From<ProposeError> for ClientError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::NoLeader => ClientError::NoLeader,
            ProposeError::NotLeader { leader } => ClientError::NotLeader { leader },
            // The old leader takes nothing until the new one is up: the
            // caller should go to the transfer's target.
            ProposeError::TransferInProgress { to } => ClientError::NotLeader { leader: Some(to) },
        }
    }
}

impl From<ReadError> for ClientError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NoLeader | ReadError::NotLeader { leader: None } => ClientError::NoLeader,
            ReadError::NotLeader { leader } => ClientError::NotLeader { leader },
            ReadError::NoQuorum => ClientError::NoQuorum,
        }
    }
}

/// Why a node stopped. The supervisor restarts it from storage; if that
/// fails too, the node stays down with this error.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FatalError {
    /// A storage call failed.
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    /// A stored or committed record cannot be decoded.
    #[error("log corrupt at {index}: {reason}")]
    Corrupt {
        /// The bad record's index.
        index: LogIndex,
        /// What is wrong.
        reason: String,
    },
    /// The core refused what storage recovered.
    #[error("cannot rebuild the core: {0}")]
    Recover(String),
    /// The node's own snapshot file could not be read back whole, and it
    /// had already replaced a damaged one: the disk loses what is written
    /// to it.
    #[error("snapshot damaged: {0}")]
    SnapshotDamaged(String),
    /// A handler panicked; the panic was caught at the node's boundary.
    #[error("panic in the node: {0}")]
    Panic(String),
}

/// The message a caught panic carried (`panic!("...")` gives a `&str` or
/// a `String`), for the one line that says why a node, a state machine or
/// a store stopped.
///
/// ```
/// let caught = std::panic::catch_unwind(|| panic!("disk {} gone", 3)).unwrap_err();
/// assert_eq!(raft_actors::error::panic_message(&*caught), "disk 3 gone");
/// ```
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}
