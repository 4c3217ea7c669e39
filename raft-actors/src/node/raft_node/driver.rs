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

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
// The runtime's clock: real time, or the kit's virtual time, so a
// simulation's logged timings replay too.
use tokio::time::Instant;

use actix::prelude::*;
use tracing::{debug, error, warn};

use super::recorder::WriteTiming;
use super::RaftNode;
use crate::apply::{ApplyBatch, RestoreSnapshot};
use crate::core::{AfterPersist, Message, NodeId, RaftCore, Snapshot, UnreadableSnapshot};
use crate::error::{ClientError, FatalError};
use crate::node::messages::internal::Tick;
use crate::storage::StorageError;
use crate::transport::{estimated_size, TransportError};
use crate::type_config::TypeConfig;

impl<C: TypeConfig> RaftNode<C> {
    /// Takes every `Ready` the core has: early replication leaves at once,
    /// the persist joins the storage queue, and what may be released is
    /// (a batch that need not sync waits for no write of its own). New
    /// input keeps flowing into the core while writes are in flight.
    pub(in crate::node) fn drive(&mut self, ctx: &mut Context<Self>) {
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
        if let Some(e) = self.log_corrupt.take() {
            return self.fail(ctx, FatalError::Storage(e));
        }
        for (snapshot, why) in self.unreadable.take() {
            let Some(core) = self.core.as_mut() else {
                break;
            };
            match core.snapshot_unreadable(&snapshot) {
                UnreadableSnapshot::Stop => {
                    return self.fail(ctx, FatalError::SnapshotDamaged(why))
                }
                UnreadableSnapshot::Rebuilding => {
                    warn!(node = self.id, %why, "snapshot damaged: taking a new one");
                    self.schedule(ctx);
                }
                UnreadableSnapshot::Dropped | UnreadableSnapshot::NotHeld => self.schedule(ctx),
            }
        }
        self.start_write(ctx);
        if std::mem::take(&mut self.snapshot_wanted) {
            self.build_snapshot(ctx, None);
        }
        // Membership changes the released batches finished.
        if let Some(core) = self.core.as_ref() {
            self.changes.settle(core);
        }
        self.pace_ticks(ctx);
        self.publish();
    }

    /// Stops the tick timer while the core is quiesced and nothing of the
    /// node's own waits on ticks (a request to time out, a founding to
    /// retry, a dead state machine to replace); starts it again once the
    /// core wakes. A state machine that dies while the timer is stopped
    /// (a stale read's query panicked) is noticed at the next request. An idle group then
    /// costs no timer at all.
    pub(super) fn pace_ticks(&mut self, ctx: &mut Context<Self>) {
        // A state machine that died must still be noticed by the next tick.
        let idle = self.core.as_ref().is_some_and(RaftCore::is_quiesced)
            && self.pending.len() == 0
            && self.founding.is_none()
            && self.apply.as_ref().is_some_and(|a| a.connected());
        match (idle, self.ticker) {
            (true, Some(timer)) => {
                ctx.cancel_future(timer);
                self.ticker = None;
            }
            (false, None) => {
                let timer = ctx.run_interval(self.cfg.tick, |node, ctx| {
                    if !node.ticks_paused {
                        ctx.notify(Tick);
                    }
                });
                self.ticker = Some(timer);
            }
            _ => {}
        }
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
            .map(|s| s.size);
        // A task of its own, not a future of the context: it holds the
        // storage's lock, and a restart's reload (`ctx.wait`, which stops
        // the context polling anything else) waits for that lock. Polled
        // by the context, the write could never finish and release it.
        let task = actix_rt::spawn(async move {
            let mut storage = storage.lock().await;
            let before = storage.stats().fsyncs;
            let started = Instant::now();
            let res = storage.write(persist).await;
            let took = started.elapsed();
            (res, took, before, storage.stats().fsyncs)
        });
        let task = async move {
            task.await.unwrap_or_else(|e| {
                let reason = match e.try_into_panic() {
                    Ok(panic) => crate::error::panic_message(&*panic),
                    Err(e) => e.to_string(),
                };
                let err = StorageError::Io(format!("the storage write panicked: {reason}"));
                (Err(err), std::time::Duration::ZERO, None, None)
            })
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

impl<C: TypeConfig> RaftNode<C> {
    /// Sends, records outcomes, hands committed entries on: the part of a
    /// `Ready` that may run only once its state is durable.
    pub(super) fn execute(&mut self, after: AfterPersist) {
        let Some(core) = self.core.as_ref() else {
            return;
        };
        self.send(after.messages);
        self.snapshot_wanted |= after.snapshot_wanted;
        if let Some(snap) = after.restore {
            // The leader's snapshot replaces the state machine before the
            // entries after it are applied (same sender, so in order).
            let index = snap.meta.index;
            // The state machine is not behind by the snapshot's entries.
            self.sm_applied
                .fetch_max(index, std::sync::atomic::Ordering::Release);
            if let Some(apply) = &self.apply {
                apply.do_send(RestoreSnapshot {
                    index,
                    source: self.snapshot_source(&snap),
                });
            }
            self.applied = self.applied.max(index);
            // Entries up to it were never applied one by one here: whoever
            // waited on one of them cannot get its output.
            self.pending.fail_upto(index, ClientError::Interrupted);
        }
        let leader = core.leader();
        for outcome in after.proposals {
            self.pending.landed(outcome, self.applied, leader, |i| {
                core.entries(i, i).first().map(|e| e.term)
            });
        }
        for outcome in after.reads {
            self.pending.read_ready(outcome);
        }
        let waiters = self.pending.take_committed(&after.committed, leader);
        if let Some(last) = after.committed.last() {
            tracing::trace!(
                node = self.id,
                first = after.committed[0].index,
                last = last.index,
                "apply"
            );
            self.applied = last.index;
        }
        let queries = self.pending.take_reads(self.applied);
        if after.committed.is_empty() && waiters.is_empty() && queries.is_empty() {
            return;
        }
        if let Some(apply) = &self.apply {
            apply.do_send(ApplyBatch {
                entries: after.committed,
                waiters,
                queries,
            });
        }
    }

    /// The bytes of a stored snapshot, from the first, for the apply actor
    /// to restore from. One that cannot be opened reads as an error, which
    /// stops the state machine (the node does not apply past a snapshot it
    /// could not restore), as do bytes that turn out not to match the
    /// snapshot's size and checksum.
    pub(super) fn snapshot_source(&self, snap: &Snapshot) -> Box<dyn Read + Send> {
        match crate::storage::open_verified(self.snapshots.as_ref(), snap) {
            Ok(source) => source,
            Err(e) => {
                error!(node = self.id, %e, "cannot open the snapshot to restore");
                Box::new(Unreadable(e.to_string()))
            }
        }
    }

    /// One transport call per peer per batch. Snapshot chunks the core
    /// left empty are read from the snapshot store first, and entries whose
    /// payloads it dropped from the log; a message that cannot be filled is
    /// not sent (the core sends it again: a lost message to it).
    pub(super) fn send(&self, messages: Vec<Message>) {
        let mut by_peer: BTreeMap<NodeId, Vec<Message>> = BTreeMap::new();
        let chunk_bytes = self.cfg.core.snapshot_chunk_bytes;
        for mut m in messages {
            if let Some(read) = m.chunk_to_read(chunk_bytes) {
                let checked = self.snapshots.read_chunk(&read).and_then(|bytes| {
                    let mut sent = self.sent_chunks.borrow_mut();
                    sent.read(m.to, &read, &bytes)
                        .map(|()| bytes)
                        .map_err(|why| StorageError::Corrupt {
                            index: read.snapshot.meta.index,
                            reason: why,
                        })
                });
                match checked {
                    Ok(bytes) => m.fill_chunk(bytes),
                    // Missing, short or damaged: the core decides.
                    Err(e @ StorageError::Corrupt { .. }) => {
                        error!(node = self.id, to = m.to, %e, "snapshot not sent");
                        self.unreadable
                            .borrow_mut()
                            .push((read.snapshot, e.to_string()));
                        continue;
                    }
                    Err(e) => {
                        warn!(node = self.id, to = m.to, %e, "snapshot chunk not read");
                        continue;
                    }
                }
            }
            if let Some(read) = m.entries_to_read() {
                let filled = match &self.log_reader {
                    Some(reader) => reader.read(read.first, read.last).and_then(|entries| {
                        m.fill_entries(entries).map_err(|e| StorageError::Corrupt {
                            index: read.first,
                            reason: e.to_string(),
                        })
                    }),
                    None => Err(StorageError::Io("no log reader".to_string())),
                };
                match filled {
                    Ok(()) => {}
                    // The log itself is damaged: as for any corrupt record.
                    Err(e @ StorageError::Corrupt { .. }) => {
                        error!(node = self.id, to = m.to, %e, "entries not read back");
                        self.log_corrupt.replace(Some(e));
                        continue;
                    }
                    Err(e) => {
                        warn!(node = self.id, to = m.to, first = read.first, last = read.last, %e,
                            "entries not read back from storage");
                        continue;
                    }
                }
                let read_back = self.entries_read_back.get() + read.last - read.first + 1;
                self.entries_read_back.set(read_back);
            }
            by_peer.entry(m.to).or_default().push(m);
        }
        for (to, messages) in by_peer {
            // A full pipeline (max_inflight x max_bytes_per_message) could
            // exceed a transport's frame limit; a batch refused for its size
            // would be rebuilt at the same size forever. Split it.
            for batch in split_batches(messages, MAX_BATCH_BYTES) {
                match self.transport.send(to, batch) {
                    Ok(()) => {}
                    Err(e @ TransportError::TooLarge { .. }) => {
                        warn!(node = self.id, to, %e, "batch refused for its size")
                    }
                    // Raft retries what matters (heartbeats, appends,
                    // votes), so a refused batch is only worth a log line.
                    Err(e) => debug!(node = self.id, to, %e, "batch not sent"),
                }
            }
        }
    }
}

/// A snapshot that could not be opened: every read fails with why.
struct Unreadable(String);

impl Read for Unreadable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other(self.0.clone()))
    }
}

/// The most a node puts in one transport batch (by
/// [`estimated_size`]); a single larger message still goes, alone.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Splits `messages` into batches of at most `max` estimated bytes, in order.
fn split_batches(messages: Vec<Message>, max: usize) -> Vec<Vec<Message>> {
    let mut out: Vec<Vec<Message>> = Vec::new();
    let mut size = 0;
    for m in messages {
        let len = estimated_size(std::slice::from_ref(&m));
        match out.last_mut() {
            Some(batch) if size + len <= max => batch.push(m),
            _ => {
                out.push(vec![m]);
                size = 0;
            }
        }
        size += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Body, Entry, Payload};

    #[test]
    fn batches_are_split_under_the_limit_in_order() {
        let append = |i: u64| Message {
            from: 1,
            to: 2,
            term: 1,
            body: Body::Append {
                prev_index: i,
                prev_term: 1,
                entries: vec![Entry {
                    index: i + 1,
                    term: 1,
                    payload: Payload::Command(vec![0u8; 1000].into()),
                }],
                commit: 0,
            },
        };
        let msgs: Vec<Message> = (0..10).map(append).collect();
        let one = estimated_size(&msgs[..1]);
        let batches = split_batches(msgs, 3 * one);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert!(batches.iter().all(|b| estimated_size(b) <= 3 * one));
        let order: Vec<u64> = batches
            .iter()
            .flatten()
            .map(|m| match m.body {
                Body::Append { prev_index, .. } => prev_index,
                _ => u64::MAX,
            })
            .collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        // A message over the limit still goes, alone.
        assert_eq!(split_batches(vec![append(0)], 1).len(), 1);
    }
}
