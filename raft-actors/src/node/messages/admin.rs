//! What operators ask a node: status, membership changes, leadership
//! transfer, snapshots, shutdown.

use actix::Message;

use crate::core::{ConfChange, LogIndex, Membership, NodeId, Status};
use crate::error::ClientError;
use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::info;

use crate::core::{ConfChangeError, RaftCore, TransferError};
use crate::node::raft_node::Down;
use crate::node::RaftNode;
use crate::type_config::TypeConfig;

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

impl<C: TypeConfig> Handler<GetStatus> for RaftNode<C> {
    type Result = Result<Status, ClientError>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Err(err);
        }
        self.core
            .as_ref()
            .map(RaftCore::status)
            .ok_or(ClientError::ShuttingDown)
    }
}

impl<C: TypeConfig> Handler<TransferLeader> for RaftNode<C> {
    type Result = Result<(), ClientError>;

    fn handle(&mut self, msg: TransferLeader, ctx: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Err(err);
        }
        let res = self.guarded(ctx, |node, ctx| {
            let core = node.core.as_mut().ok_or(ClientError::ShuttingDown)?;
            let res = core.transfer_leader(msg.to);
            // Refused or not, the request woke a quiesced core.
            node.schedule(ctx);
            res.map_err(|e| match e {
                TransferError::NotLeader { leader } => ClientError::NotLeader { leader },
                TransferError::NotVoter(id) => ClientError::Invalid(format!("{id} is not a voter")),
            })
        });
        res.unwrap_or(Err(ClientError::Interrupted))
    }
}

impl<C: TypeConfig> Handler<ChangeMembership> for RaftNode<C> {
    type Result = ResponseActFuture<Self, Result<Membership, ClientError>>;

    fn handle(&mut self, msg: ChangeMembership, ctx: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Box::pin(fut::ready(Err(err)));
        }
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        let res = self.guarded(ctx, |node, ctx| {
            let core = node.core.as_mut().ok_or(ClientError::ShuttingDown)?;
            let res = core.propose_conf_change(id, msg.change);
            // Refused or not, the request woke a quiesced core.
            node.schedule(ctx);
            let (index, term) = res.map_err(|e| match e {
                ConfChangeError::NotLeader { leader } => ClientError::NotLeader { leader },
                // Transient: retry shortly.
                ConfChangeError::LeaderNotReady
                | ConfChangeError::ChangeInProgress
                | ConfChangeError::TransferInProgress { .. }
                | ConfChangeError::LearnerBehind { .. } => ClientError::Busy,
                other => ClientError::Invalid(other.to_string()),
            })?;
            node.changes.wait(index, term, tx);
            node.schedule(ctx);
            Ok(())
        });
        if let Err(e) = res.unwrap_or(Err(ClientError::Interrupted)) {
            return Box::pin(fut::ready(Err(e)));
        }
        Box::pin(fut::wrap_future(async move {
            rx.await.unwrap_or(Err(ClientError::Interrupted))
        }))
    }
}

impl<C: TypeConfig> Handler<TakeSnapshot> for RaftNode<C> {
    type Result = ResponseActFuture<Self, Result<LogIndex, ClientError>>;

    fn handle(&mut self, _: TakeSnapshot, ctx: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Box::pin(fut::ready(Err(err)));
        }
        let (tx, rx) = oneshot::channel();
        self.build_snapshot(ctx, Some(tx));
        Box::pin(fut::wrap_future(async move {
            rx.await.unwrap_or(Err(ClientError::Interrupted))
        }))
    }
}

impl<C: TypeConfig> Handler<Shutdown> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        info!(node = self.id, "shutting down");
        // What was pending may already be in a leader's log and still
        // commit: its outcome is unknown, not refused.
        self.reset(ClientError::Interrupted);
        self.down = Some(Down::Shutdown);
        self.apply = None;
        self.publish_down();
        // Stopping cancels the tick interval and any write in flight; the
        // supervisor's restart finds the flag and stays idle until the last
        // address is dropped.
        ctx.stop();
    }
}
