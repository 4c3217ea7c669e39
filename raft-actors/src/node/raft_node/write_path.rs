//! The node's write path: taking `Ready` batches from the core, handing
//! their persists to storage one at a time and in order, and releasing
//! each batch when the core's [`Pipeline`](crate::core::Pipeline) rule
//! says (once it and every synced batch before it are durable; a batch
//! that need not sync waits for no write of its own). Several writes may
//! be in flight while the node keeps stepping what arrives; their number
//! is bounded by `max_persists_in_flight` and published in the metrics.
//!
//! It decides nothing: when a batch must sync, and when it may go, is the
//! core's. It must never release a batch out of order, nor open a gate for
//! a write of an incarnation that crashed.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::recorder::WriteTiming;
use super::RaftNode;
use crate::core::RaftCore;
use crate::storage::StorageError;
use crate::type_config::TypeConfig;

impl<C: TypeConfig> RaftNode<C> {
    /// Takes every `Ready` the core has: early replication leaves at once,
    /// the persist joins the storage queue, and what may be released is
    /// (a batch that need not sync waits for no write of its own). New
    /// input keeps flowing into the core while writes are in flight.
    pub(super) fn drive(&mut self, ctx: &mut Context<Self>) {
        loop {
            // Bounded: the core holds back the next batch while
            // `max_persists_in_flight` are unacknowledged, and so does this,
            // counting the writes that need no sync too.
            if self.pipeline.writes_in_flight() >= self.cfg.core.max_persists_in_flight as u64 {
                break;
            }
            let Some(mut ready) = self.core.as_mut().and_then(RaftCore::ready) else {
                break;
            };
            if self.cfg.early_replication {
                // Replication first, so the followers' writes overlap ours.
                self.send(ready.take_early());
            }
            let (persist, gate) = ready.split();
            if let Some(write) = self.pipeline.submit(&persist, gate) {
                self.writes.push_back((write, persist));
                let now = self.pipeline.writes_in_flight();
                self.writes_in_flight_max = self.writes_in_flight_max.max(now);
            }
            self.release();
        }
        self.start_write(ctx);
        if std::mem::take(&mut self.snapshot_wanted) {
            self.build_snapshot(ctx, None);
        }
        // Membership changes the released batches finished.
        if let Some(core) = self.core.as_ref() {
            self.changes.settle(core);
        }
        self.publish();
    }

    /// Executes, in order, every batch whose gate may open, acknowledging
    /// each to the core.
    fn release(&mut self) {
        while let Some(after) = self.pipeline.release() {
            self.execute(after);
            self.advance();
        }
    }

    /// Hands the oldest queued write to storage, unless one is in progress:
    /// storage executes batches one at a time, in order.
    fn start_write(&mut self, ctx: &mut Context<Self>) {
        if self.writing {
            return;
        }
        let Some((write, persist)) = self.writes.pop_front() else {
            return;
        };
        self.writing = true;
        let (storage, epoch) = (Arc::clone(&self.storage), self.write_epoch);
        let entries = persist.entries.len() as u64;
        let must_sync = persist.must_sync;
        let installed = persist
            .snapshot
            .as_ref()
            .filter(|_| persist.snapshot_received)
            .map(|s| s.data.len() as u64);
        let task = async move {
            let mut storage = storage.lock().await;
            let before = storage.fsyncs();
            let started = Instant::now();
            let res = storage.write(persist).await;
            let took = started.elapsed();
            (res, took, before, storage.fsyncs())
        };
        ctx.spawn(
            task.into_actor(self)
                .map(move |(res, took, before, fsyncs), node, ctx| {
                    node.fsyncs = fsyncs.or(node.fsyncs);
                    if res.is_ok() {
                        // Measured whatever the epoch: the disk did the work.
                        let synced = match (before, fsyncs) {
                            (Some(b), Some(a)) => a > b,
                            _ => must_sync,
                        };
                        node.rec.written(WriteTiming {
                            took,
                            entries,
                            synced,
                            installed,
                        });
                    }
                    // Written by an incarnation that crashed meanwhile: it stays
                    // written, as on a disk, and opens no gate.
                    if epoch != node.write_epoch {
                        return;
                    }
                    node.writing = false;
                    node.guarded(ctx, |node, ctx| node.persisted(write, res, entries, ctx));
                }),
        );
    }

    fn persisted(
        &mut self,
        write: u64,
        res: Result<(), StorageError>,
        entries: u64,
        ctx: &mut Context<Self>,
    ) {
        if let Err(e) = res {
            // Never retried: the incarnation ends (see `lifecycle`).
            return self.write_failed(e, ctx);
        }
        self.restarts = 0;
        self.storage_writes += 1;
        self.entries_persisted += entries;
        self.pipeline.durable(write);
        self.release();
        self.drive(ctx);
    }

    pub(super) fn advance(&mut self) {
        if let Some(core) = self.core.as_mut() {
            core.advance();
        }
    }
}
