//! What operators ask a node: status, membership changes, leadership
//! transfer, snapshots, shutdown.

use actix::Message;

use crate::core::{ConfChange, LogIndex, Membership, NodeId, Status};
use crate::error::ClientError;

/// The node's current status (role, term, leader, log cursors, peers).
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Result<Status, ClientError>")]
pub struct GetStatus;

/// Asks the leader to hand leadership to `to` (thesis §3.10). Answers once
/// the transfer started; watch the metrics for the new leader.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Result<(), ClientError>")]
pub struct TransferLeader {
    /// The voter to take over.
    pub to: NodeId,
}

/// Proposes a membership change on the leader; answers once it is done:
/// its entry committed and any joint configuration it entered left (the
/// core's [`ConfChangeProgress`](crate::core::ConfChangeProgress)), with
/// the configuration then in force; `NotLeader` if a leader change lost
/// the entry.
#[derive(Clone, Debug, Message)]
#[rtype(result = "Result<Membership, ClientError>")]
pub struct ChangeMembership {
    /// The change.
    pub change: ConfChange,
}

/// Snapshots the state machine as applied now and compacts the log up to it
/// (keeping the configured trailing entries); answers the snapshot's index.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Result<LogIndex, ClientError>")]
pub struct TakeSnapshot;

/// Stops the node for good: pending requests fail with
/// [`ClientError::Interrupted`] (they may still commit elsewhere) and later
/// ones are refused with [`ClientError::ShuttingDown`].
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
