//! [`ApplyActor`]: runs the user's [`Apply`] in its own mailbox, fed by the
//! node one batch per `Ready`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::io::Read;

use actix::{Actor, ActorContext, Context, Handler, Message, ResponseFuture};
use tokio::sync::oneshot;

use super::{Applied, Apply};
use crate::core::{Entry, LogIndex, Payload};
use crate::error::ClientError;
use crate::histogram::SharedHistogram;
use crate::storage::SharedSnapshots;
use crate::type_config::{decode, TypeConfig};

/// The reply channel of a proposal waiting for its entry.
pub type ProposalWaiter<C> = (LogIndex, oneshot::Sender<Result<Applied<C>, ClientError>>);

/// A read's query and reply channel, answered after the entries before it.
pub type ReadWaiter<C> = (
    <C as TypeConfig>::Query,
    oneshot::Sender<Result<<C as TypeConfig>::QueryAnswer, ClientError>>,
);

/// Committed entries to apply in order, then queries to answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyBatch<C: TypeConfig> {
    /// Committed entries, in index order, contiguous.
    pub entries: Vec<Entry>,
    /// Proposals waiting for some of these entries, in index order.
    pub waiters: Vec<ProposalWaiter<C>>,
    /// Queries whose read index these entries (or earlier ones) cover.
    pub queries: Vec<ReadWaiter<C>>,
}

/// Builds a snapshot of the state machine as it stands into `store`:
/// answers its last applied index and the snapshot's size and CRC.
#[derive(Message)]
#[rtype(result = "Result<(LogIndex, u64, u32), ClientError>")]
pub struct BuildSnapshot {
    /// Where the snapshot is written.
    pub store: SharedSnapshots,
    /// Write it on a thread of its own while applying goes on (a real
    /// node), or here (a deterministic simulation, where every step runs
    /// on one thread in virtual time).
    pub off_thread: bool,
}

/// Replaces the state machine's state with the snapshot read from
/// `source`, taken at `index`, unless it already applied past it.
#[derive(Message)]
#[rtype(result = "Result<(), ClientError>")]
pub struct RestoreSnapshot {
    /// Last index the snapshot covers.
    pub index: LogIndex,
    /// The snapshot's bytes, from their first.
    pub source: Box<dyn Read + Send>,
}

/// The actor around a user's state machine.
pub struct ApplyActor<C: TypeConfig> {
    sm: Box<dyn Apply<C>>,
    applied: LogIndex,
    /// Set when a committed record could not be decoded: applying past it
    /// would make this replica diverge, so the actor stops applying.
    poisoned: Option<String>,
    /// The state machine panicked: stop after answering.
    panicked: bool,
    /// Where each batch's apply time is recorded, if anywhere.
    latency: Option<SharedHistogram>,
    /// Where the last applied index is published after each batch, for a
    /// node on another thread to measure how far behind this actor is.
    progress: Option<Arc<AtomicU64>>,
}

impl<C: TypeConfig> ApplyActor<C> {
    /// Wraps a fresh state machine (nothing applied).
    pub fn new(sm: Box<dyn Apply<C>>) -> Self {
        ApplyActor {
            sm,
            applied: 0,
            poisoned: None,
            panicked: false,
            latency: None,
            progress: None,
        }
    }

    /// Publishes the last applied index in `progress` after every batch and
    /// restore (the node reads it to apply backpressure).
    pub fn with_progress(mut self, progress: Arc<AtomicU64>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn publish_progress(&self) {
        if let Some(p) = &self.progress {
            p.fetch_max(self.applied, Ordering::Release);
        }
    }

    /// Records how long each batch of committed entries takes to apply in
    /// `latency` (the node publishes it in its metrics).
    pub fn with_latency(mut self, latency: SharedHistogram) -> Self {
        self.latency = Some(latency);
        self
    }

    /// The user's state machine panicked: it may be half-updated, so it
    /// takes nothing more. The actor stops once the batch is answered; the
    /// node sees its apply actor gone, fails, and its supervisor restarts it
    /// with a fresh state machine rebuilt from snapshot and log.
    fn panicked(&mut self, during: &str, panic: &(dyn std::any::Any + Send)) -> ClientError {
        let what = crate::error::panic_message(panic);
        let reason = format!("state machine panicked in {during}: {what}");
        tracing::error!(%reason, "apply stops; the node will restart");
        self.poisoned = Some(reason.clone());
        self.panicked = true;
        ClientError::Fatal(reason)
    }

    fn apply_entry(&mut self, entry: Entry) -> Option<Result<C::Output, ClientError>> {
        if let Some(reason) = &self.poisoned {
            return Some(Err(ClientError::Fatal(reason.clone())));
        }
        if entry.index <= self.applied {
            // A restarted node replays its log from the start; this state
            // machine already holds the entry.
            return None;
        }
        if entry.index != self.applied + 1 {
            // Applying past a hole would make this replica diverge.
            let reason = format!("apply gap: {} after {}", entry.index, self.applied);
            tracing::error!(%reason, "apply stops");
            self.poisoned = Some(reason.clone());
            return Some(Err(ClientError::Fatal(reason)));
        }
        let index = entry.index;
        self.applied = index;
        match entry.payload {
            // Configuration entries are the node's business, not the state
            // machine's.
            Payload::Noop | Payload::Config(_) => None,
            // The core never hands one out to apply; one here is a bug
            // upstream, and applying past it would diverge.
            Payload::Unread { .. } => {
                let reason = format!("entry {index} handed to apply without its payload");
                tracing::error!(%reason, "apply stops");
                self.poisoned = Some(reason.clone());
                Some(Err(ClientError::Fatal(reason)))
            }
            Payload::Command(bytes) => match decode::<C::Command>(&bytes) {
                Ok(command) => {
                    let sm = &mut self.sm;
                    match catch_unwind(AssertUnwindSafe(|| sm.apply(index, command))) {
                        Ok(output) => Some(Ok(output)),
                        Err(panic) => Some(Err(self.panicked("apply", &*panic))),
                    }
                }
                Err(e) => {
                    let reason = format!("log corrupt at {index}: {e}");
                    tracing::error!(index, %e, "undecodable committed command; apply stops");
                    self.poisoned = Some(reason.clone());
                    Some(Err(ClientError::Fatal(reason)))
                }
            },
        }
    }
}

impl<C: TypeConfig> Actor for ApplyActor<C> {
    type Context = Context<Self>;
}

impl<C: TypeConfig> Handler<ApplyBatch<C>> for ApplyActor<C> {
    type Result = ();

    fn handle(&mut self, batch: ApplyBatch<C>, ctx: &mut Self::Context) {
        let mut waiters = batch.waiters.into_iter().peekable();
        let timed = !batch.entries.is_empty();
        let started = tokio::time::Instant::now();
        for entry in batch.entries {
            let index = entry.index;
            let mut result = self.apply_entry(entry);
            while let Some((at, reply)) = waiters.next_if(|w| w.0 <= index) {
                let answer = match (at == index, result.take()) {
                    (true, Some(Ok(output))) => Ok(Applied { index, output }),
                    (true, Some(Err(e))) => Err(e),
                    // Applied by an earlier incarnation (skipped here), or
                    // a waiter the node placed behind: the output is gone,
                    // though the command was applied.
                    _ => Err(ClientError::Interrupted),
                };
                // The receiver may have given up (timed out): nothing to do.
                let _ = reply.send(answer);
            }
        }
        for (_, reply) in waiters {
            let _ = reply.send(Err(ClientError::Interrupted));
        }
        if let (true, Some(latency)) = (timed, &self.latency) {
            latency.observe_duration(started.elapsed());
        }
        self.publish_progress();
        for (query, reply) in batch.queries {
            let answer = match &self.poisoned {
                Some(reason) => Err(ClientError::Fatal(reason.clone())),
                None => {
                    let sm = &self.sm;
                    match catch_unwind(AssertUnwindSafe(|| sm.query(query))) {
                        Ok(answer) => Ok(answer),
                        Err(panic) => Err(self.panicked("query", &*panic)),
                    }
                }
            };
            let _ = reply.send(answer);
        }
        if self.panicked {
            ctx.stop();
        }
    }
}

impl<C: TypeConfig> Handler<BuildSnapshot> for ApplyActor<C> {
    type Result = ResponseFuture<Result<(LogIndex, u64, u32), ClientError>>;

    fn handle(&mut self, msg: BuildSnapshot, ctx: &mut Self::Context) -> Self::Result {
        if let Some(reason) = &self.poisoned {
            let err = ClientError::Fatal(reason.clone());
            return Box::pin(async move { Err(err) });
        }
        let sm = &self.sm;
        // The consistent point: between two entries, on this thread.
        let view = match catch_unwind(AssertUnwindSafe(|| sm.snapshot_view())) {
            Ok(view) => view,
            Err(panic) => {
                let err = self.panicked("snapshot", &*panic);
                ctx.stop();
                return Box::pin(async move { Err(err) });
            }
        };
        let index = self.applied;
        let store = msg.store;
        // Writing the view never touches the state machine: a failure (a
        // full disk, a panic in the user's writer) fails this snapshot
        // only, and the next one is tried later.
        let write = move || -> Result<(LogIndex, u64, u32), ClientError> {
            let failed = |e: String| ClientError::Invalid(format!("snapshot at {index}: {e}"));
            let mut sink = store.create().map_err(|e| failed(e.to_string()))?;
            match catch_unwind(AssertUnwindSafe(|| view.write_to(&mut sink))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(failed(e.to_string())),
                Err(_) => return Err(failed("the state machine's writer panicked".into())),
            }
            let (size, checksum) = sink.finish(index).map_err(|e| failed(e.to_string()))?;
            Ok((index, size, checksum))
        };
        if !msg.off_thread {
            let done = write();
            return Box::pin(async move { done });
        }
        let (tx, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || {
                yield_to_the_node();
                let _ = tx.send(write());
            });
        Box::pin(async move {
            spawned.map_err(|e| ClientError::Invalid(format!("no snapshot thread: {e}")))?;
            rx.await
                .map_err(|_| ClientError::Invalid("the snapshot thread stopped".into()))?
        })
    }
}

impl<C: TypeConfig> Handler<RestoreSnapshot> for ApplyActor<C> {
    type Result = Result<(), ClientError>;

    fn handle(&mut self, mut msg: RestoreSnapshot, ctx: &mut Self::Context) -> Self::Result {
        if msg.index <= self.applied {
            return Ok(());
        }
        let sm = &mut self.sm;
        let source = &mut msg.source;
        // Read to the end even if the state machine stopped short: the
        // source checks the snapshot's size and checksum at its end.
        let restore = || {
            sm.restore_from(&mut **source)?;
            std::io::copy(&mut **source, &mut std::io::sink()).map(drop)
        };
        match catch_unwind(AssertUnwindSafe(restore)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // Applying later entries on the old state would diverge.
                let reason = format!("snapshot at {} cannot be read: {e}", msg.index);
                tracing::error!(%reason, "apply stops");
                self.poisoned = Some(reason.clone());
                return Err(ClientError::Fatal(reason));
            }
            Err(panic) => {
                let err = self.panicked("restore", &*panic);
                ctx.stop();
                return Err(err);
            }
        }
        self.applied = msg.index;
        self.publish_progress();
        Ok(())
    }
}

/// Lowers the priority of the calling thread (a snapshot writer): on a
/// machine with few cores, writing a large snapshot must not take CPU from
/// the threads that tick, persist and answer. Best effort: where the
/// priority cannot be changed, the thread runs as it is.
fn yield_to_the_node() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority and gettid take plain integers and touch no
    // memory of ours; on Linux a tid names one thread for PRIO_PROCESS.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::testing::{Kv, KvCommand};
    use crate::type_config::encode;

    fn put(index: LogIndex, key: u64, value: u64) -> Entry {
        let bytes = encode(&KvCommand::Put { key, value }).expect("encodes");
        Entry {
            index,
            term: 1,
            payload: Payload::Command(bytes),
        }
    }

    #[actix_rt::test]
    async fn corrupt_committed_record_fails_its_waiter_and_stops_applying_without_panic() {
        let apply = ApplyActor::<Kv>::new(Box::new(Kv::default())).start();
        let (ok_tx, ok_rx) = oneshot::channel();
        let (bad_tx, bad_rx) = oneshot::channel();
        let (after_tx, after_rx) = oneshot::channel();
        let (q_tx, q_rx) = oneshot::channel();
        let garbage = Entry {
            index: 2,
            term: 1,
            payload: Payload::Command(Bytes::from_static(&[1, 0xff, 0xff])),
        };
        apply.do_send(ApplyBatch {
            entries: vec![put(1, 1, 10), garbage, put(3, 1, 30)],
            waiters: vec![(1, ok_tx), (2, bad_tx), (3, after_tx)],
            queries: vec![(1, q_tx)],
        });
        let ok = ok_rx.await.expect("answered");
        assert_eq!(ok.map(|a| (a.index, a.output)), Ok((1, None)));
        assert!(matches!(
            bad_rx.await.expect("answered"),
            Err(ClientError::Fatal(_))
        ));
        assert!(matches!(
            after_rx.await.expect("answered"),
            Err(ClientError::Fatal(_))
        ));
        assert!(matches!(
            q_rx.await.expect("answered"),
            Err(ClientError::Fatal(_))
        ));
    }

    #[actix_rt::test]
    async fn replayed_entries_are_applied_once() {
        let apply = ApplyActor::<Kv>::new(Box::new(Kv::default())).start();
        apply.do_send(ApplyBatch {
            entries: vec![put(1, 1, 10), put(2, 1, 20)],
            waiters: Vec::new(),
            queries: Vec::new(),
        });
        // A restarted node replays from index 1: nothing applies twice.
        let (tx, rx) = oneshot::channel();
        let (q_tx, q_rx) = oneshot::channel();
        apply.do_send(ApplyBatch {
            entries: vec![put(1, 1, 10), put(2, 1, 20), put(3, 1, 30)],
            waiters: vec![(3, tx)],
            queries: vec![(1, q_tx)],
        });
        let out = rx.await.expect("answered").expect("applied");
        assert_eq!(out.output, Some(20), "3 saw 2's value, not a re-applied 1");
        assert_eq!(q_rx.await.expect("answered"), Ok(Some(30)));
    }
}
