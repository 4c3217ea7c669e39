//! The node's incarnations: each starts by loading what the storage holds
//! durably and rebuilding the core on it, and ends at the first storage
//! error (its supervisor then starts the next one) or when the restart
//! budget is spent (the node then stays down and says why).
//!
//! A load that fails, a corrupt record included, is a failed incarnation,
//! never an empty log: a node that started empty after a misread could
//! vote away entries it had acknowledged. It must never start a core on
//! anything but a load that succeeded, nor let a failed write be retried
//! within the incarnation that saw it fail (after a failed fsync the page
//! cache may have dropped the batch, so a retry that succeeds proves
//! nothing: PostgreSQL's fsyncgate).

use std::sync::Arc;

use actix::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::{error, info};

use super::{Down, RaftNode};
use crate::apply::RestoreSnapshot;
use crate::core::RaftCore;
use crate::error::FatalError;
use crate::node::lease_clock::LeaseClock;
use crate::storage::{LogState, StorageError};
use crate::type_config::TypeConfig;

impl<C: TypeConfig> RaftNode<C> {
    /// Rebuilds the core from storage before any message is handled.
    pub(super) fn reload(&mut self, ctx: &mut Context<Self>) {
        if self.apply.is_none() {
            self.apply = Some(self.start_apply());
        }
        let storage = Arc::clone(&self.storage);
        let load = async move { storage.lock().await.load().await };
        // `wait`, not `spawn`: the mailbox stays shut until the core exists.
        ctx.wait(
            load.into_actor(self)
                .map(|res, node, ctx| node.loaded(res, ctx)),
        );
    }

    fn loaded(&mut self, res: Result<LogState, StorageError>, ctx: &mut Context<Self>) {
        // Whatever the adapter, a log that lost something is refused here,
        // before a core is built on it.
        let state = match res.and_then(|state| state.validate().map(|()| state)) {
            Ok(state) => state,
            Err(e) => return self.load_failed(e, ctx),
        };
        self.incarnation += 1;
        let seed = self.cfg.seed ^ self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.incarnation;
        let rng = ChaCha8Rng::seed_from_u64(seed);
        match RaftCore::new(self.id, self.cfg.core.clone(), state.recovered(), rng) {
            Ok(core) => {
                // Applying resumes after the snapshot: reads waiting for an
                // index it covers are served at once.
                self.applied = core.status().applied;
                self.core = Some(core);
                // The core's tick count starts at zero: so does its clock.
                self.clock = LeaseClock::start(self.cfg.tick);
                self.found_if_empty(&state, ctx);
            }
            Err(e) => {
                // The same records would be refused again: no retry.
                let reason = FatalError::Recover(e.to_string()).to_string();
                error!(node = self.id, %reason, "staying down");
                self.down = Some(Down::Failed(reason));
                return self.publish_down();
            }
        }
        if let (Some(snapshot), Some(apply)) = (state.snapshot, &self.apply) {
            // A fresh state machine starts from the snapshot instead of
            // replaying the whole log; one that is ahead ignores it. It is
            // not behind by the snapshot's entries: they come as one.
            self.sm_applied
                .fetch_max(snapshot.meta.index, std::sync::atomic::Ordering::Release);
            apply.do_send(RestoreSnapshot {
                index: snapshot.meta.index,
                source: self.snapshot_source(&snapshot),
            });
        }
        info!(
            node = self.id,
            incarnation = self.incarnation,
            last = state.entries.last().map(|e| e.index),
            "loaded"
        );
        // A store founded just now is reloaded: it founds no more.
        let founding = self.founding.is_some();
        self.metrics.send_modify(|m| {
            m.incarnation = self.incarnation;
            m.founding = founding;
        });
        // A core built while the timer was stopped (a crash of a quiesced
        // node, then a restart) must tick.
        self.pace_ticks(ctx);
        self.publish();
    }

    /// The storage could not be read back (unreadable, or a record its
    /// checksum refused): this incarnation never starts. The supervisor
    /// starts the next one, which reads again (a read that failed in
    /// transit may succeed), within the restart budget; a record corrupt
    /// on the medium spends the budget and keeps the node down with this
    /// reason.
    fn load_failed(&mut self, e: StorageError, ctx: &mut Context<Self>) {
        let reason = format!("cannot load storage: {e}");
        error!(node = self.id, %reason, "this incarnation does not start");
        self.last_failure = Some(reason.clone());
        self.metrics.send_modify(|m| {
            m.down = Some(reason);
            m.leader = None;
        });
        ctx.stop();
    }

    /// A storage write failed: the incarnation ends here. Nothing queued
    /// behind the write may reach the storage and no gate may open (the
    /// batches after it rest on it), so nothing of the failed batch or a
    /// later one is sent, answered or applied; the proposals waiting are
    /// answered as unknown when the supervisor restarts the node (the
    /// batch may be durable: a failed fsync does not say), and the next
    /// incarnation learns from the load what is.
    pub(super) fn write_failed(&mut self, e: StorageError, ctx: &mut Context<Self>) {
        self.writes.clear();
        self.pipeline.clear();
        self.fail(ctx, FatalError::Storage(e));
    }

    /// Counts one restart against the budget: past `max_restarts` in a row
    /// without a successful write, the node stays down with the last
    /// failure as its reason (a dead disk would restart it forever).
    pub(super) fn count_restart(&mut self) {
        self.restarts += 1;
        if self.restarts > self.cfg.max_restarts && self.down.is_none() {
            let spent = self.restarts - 1;
            let reason = match self.last_failure.take() {
                Some(last) => {
                    format!("{last} (gave up after {spent} restarts without a successful write)")
                }
                None => format!("{spent} restarts without a successful write"),
            };
            error!(node = self.id, %reason, "staying down");
            self.down = Some(Down::Failed(reason));
        }
    }
}
