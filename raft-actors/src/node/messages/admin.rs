//! What operators ask a node: status, leadership transfer, snapshots,
//! shutdown.

use actix::Message;

use crate::core::{LogIndex, NodeId, Status};
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

/// Saves a snapshot of the state machine as applied now; answers its last
/// index. Until the core compacts its log (a later issue), the log is kept
/// and the snapshot only speeds up a restart of the state machine.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Result<LogIndex, ClientError>")]
pub struct TakeSnapshot;

/// Stops the node for good: pending requests fail with
/// [`ClientError::Interrupted`] (they may still commit elsewhere) and later
/// ones are refused with [`ClientError::ShuttingDown`].
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
