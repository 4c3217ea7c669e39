//! Snapshots of the user's state machine: asked of the apply actor (on the
//! core's request or an operator's), handed to the core, which compacts its
//! log and has the snapshot stored with its next `Ready`.
//!
//! At most one is built at a time; it must never block the node while the
//! state machine serializes: the apply actor takes a consistent view and
//! writes it into the storage's snapshot store on a thread of its own.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::RaftNode;
use crate::apply::BuildSnapshot;
use crate::core::{LogIndex, SnapshotError};
use crate::error::ClientError;
use crate::type_config::TypeConfig;

impl<C: TypeConfig> RaftNode<C> {
    /// Snapshots the state machine and hands the snapshot to the core, which
    /// compacts its log and has the snapshot stored with the next `Ready`.
    /// `reply` (an on-demand snapshot) gets the snapshot's index.
    pub(in crate::node) fn build_snapshot(
        &mut self,
        ctx: &mut Context<Self>,
        reply: Option<oneshot::Sender<Result<LogIndex, ClientError>>>,
    ) {
        let Some(apply) = self.apply.clone() else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ClientError::ShuttingDown));
            }
            return;
        };
        if self.snapshot_building && reply.is_none() {
            return;
        }
        self.snapshot_building = true;
        let started = tokio::time::Instant::now();
        let build = BuildSnapshot {
            store: std::sync::Arc::clone(&self.snapshots),
            off_thread: !matches!(self.cfg.apply_thread, super::ApplyThread::Node),
        };
        let built = async move { apply.send(build).await };
        ctx.spawn(built.into_actor(self).map(move |res, node, ctx| {
            node.snapshot_building = false;
            let result = match res {
                Ok(Ok((index, size, checksum))) => match node.core.as_mut() {
                    Some(core) => match core.snapshot_taken(index, size, checksum) {
                        Ok(()) => {
                            node.rec.taken(started.elapsed(), size);
                            // Checksums of transfers read so far may mix
                            // the snapshot replaced (one at the same index,
                            // damaged) with this one: judge only new ones.
                            node.sent_chunks.take();
                            Ok(index)
                        }
                        // Nothing applied since the last snapshot: that one
                        // stands (the file just written is left for the
                        // store's retention to delete).
                        Err(SnapshotError::Stale { current }) => Ok(current),
                        Err(e) => Err(ClientError::Invalid(e.to_string())),
                    },
                    None => Err(ClientError::Interrupted),
                },
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ClientError::Interrupted),
            };
            let damaged = node.core.as_ref().is_some_and(|c| c.snapshot_damaged());
            if let (Err(e), true) = (&result, damaged) {
                let why = format!("the damaged snapshot could not be replaced: {e}");
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                return node.fail(ctx, crate::error::FatalError::SnapshotDamaged(why));
            }
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
            node.schedule(ctx);
        }));
    }
}
