//! The storage thread of a [`RedbGroups`](super::RedbGroups) file: the
//! jobs it is sent, what it owns (the file and each open group's store),
//! its loop, and how the batches of several groups queued together are
//! written in one transaction. Only this thread touches the database.
//!
//! It must never merge two batches of one group into a transaction (each
//! group's batches stay in order, one per commit), nor let one group's
//! refused batch fail another group's: a merged transaction that meets
//! one is dropped, and each batch is written again on its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use raft_actors::core::GroupId;
use raft_actors::error::panic_message;
use raft_actors::storage::{write_snapshot_part, SharedSnapshots, StorageError, ToPersist};
use tokio::sync::oneshot;

use crate::error::RedbError;
use crate::store::{Counters, File, Store};

/// At most this many groups' batches share one transaction.
const MAX_MERGED: usize = 256;

/// A closure run on the storage thread.
pub(crate) type Run = Box<dyn FnOnce(&mut Groups) + Send>;

/// What the storage thread is sent.
pub(crate) enum Job {
    /// Anything but a write: open or close a group, load, bootstrap.
    Run(Run),
    /// One group's batch, which may share a transaction with the batches
    /// of other groups queued beside it.
    Write(Box<Write>),
}

/// One group's batch and where its answer goes.
pub(crate) struct Write {
    pub(crate) group: GroupId,
    pub(crate) batch: ToPersist,
    pub(crate) snapshots: SharedSnapshots,
    pub(crate) reply: oneshot::Sender<Result<(), StorageError>>,
}

/// What the storage thread owns: the file and each open group's store.
pub(crate) struct Groups {
    pub(super) file: File,
    pub(super) stores: BTreeMap<GroupId, Store>,
}

impl Groups {
    /// Group `group`'s store, if open.
    pub(crate) fn store(&mut self, group: GroupId) -> Option<&mut Store> {
        self.stores.get_mut(&group)
    }

    /// Closes group `group`'s store (its last handle is gone).
    pub(crate) fn close(&mut self, group: GroupId) {
        self.stores.remove(&group);
    }

    /// Writes `writes` (of distinct groups, in the order sent): one
    /// transaction for all, committed once, synced if any needs it.
    fn write(&mut self, writes: Vec<Write>) {
        let mut staged_writes = Vec::with_capacity(writes.len());
        for w in writes {
            let Some(store) = self.stores.get_mut(&w.group) else {
                let _ = w
                    .reply
                    .send(Err(RedbError::Stopped(self.file.path().into()).into()));
                continue;
            };
            let prepared = store
                .refuse_if_poisoned()
                .and_then(|()| write_snapshot_part(&*w.snapshots, &w.batch));
            if let Err(e) = prepared {
                let _ = w.reply.send(Err(e));
                continue;
            }
            // A commit index alone needs no transaction: answered at once.
            if store.defer(&w.batch) {
                let _ = w.reply.send(Ok(()));
                continue;
            }
            staged_writes.push(w);
        }
        if staged_writes.len() > 1 {
            self.write_together(staged_writes);
        } else if let Some(w) = staged_writes.pop() {
            self.write_alone(w);
        }
    }

    /// One batch in its own transaction.
    fn write_alone(&mut self, w: Write) {
        let Some(store) = self.stores.get_mut(&w.group) else {
            return;
        };
        let res = store.poisoning(|s| s.write(&w.batch));
        if res.is_ok() {
            retain(&w);
        }
        let _ = w.reply.send(res);
    }

    /// Several groups' batches in one transaction, one commit.
    fn write_together(&mut self, writes: Vec<Write>) {
        let txn = match self.file.begin_write() {
            Ok(txn) => txn,
            Err(e) => return self.fail_all(writes, e),
        };
        let mut staged = Vec::with_capacity(writes.len());
        for w in &writes {
            let Some(store) = self.stores.get(&w.group) else {
                drop(txn);
                let stopped = RedbError::Stopped(self.file.path().into()).into();
                return self.fail_all(writes, stopped);
            };
            match store.stage(&txn, &w.batch) {
                Ok(s) => staged.push(s),
                // One group's batch refused (out of order, damaged): the
                // others must not fail with it. Dropped uncommitted, the
                // transaction leaves nothing; each goes again alone.
                Err(StorageError::Io(reason)) => {
                    drop(txn);
                    return self.fail_all(writes, StorageError::Io(reason));
                }
                Err(_) => {
                    drop(txn);
                    for w in writes {
                        self.write_alone(w);
                    }
                    return;
                }
            }
        }
        let must_sync = staged.iter().any(|s| s.must_sync);
        let written = staged.iter().map(|s| s.written).sum();
        if let Err(e) = self.file.commit(txn, must_sync, written) {
            return self.fail_all(writes, e);
        }
        self.file.counters().merged.fetch_add(1, Ordering::Relaxed);
        for (w, s) in writes.into_iter().zip(staged) {
            if let Some(store) = self.stores.get_mut(&w.group) {
                store.finish(s);
            }
            retain(&w);
            let _ = w.reply.send(Ok(()));
        }
    }

    /// A failure of the file itself: every group refuses from now on.
    fn fail_all(&mut self, writes: Vec<Write>, e: StorageError) {
        if let StorageError::Io(reason) = &e {
            self.file.poison(reason.clone());
        }
        for w in writes {
            let _ = w.reply.send(Err(match &e {
                StorageError::Io(r) => StorageError::Io(r.clone()),
                other => StorageError::Io(other.to_string()),
            }));
        }
    }
}

/// After a batch recording a snapshot committed: old snapshot files go (one
/// left behind costs only disk space; the next retention tries again).
fn retain(w: &Write) {
    if let Some(current) = &w.batch.snapshot {
        if let Err(e) = w.snapshots.retain(current) {
            tracing::warn!(group = w.group, %e, "old snapshot files not deleted");
        }
    }
}

/// The storage thread and what every handle shares.
pub(crate) struct Shared {
    pub(super) jobs: Option<mpsc::Sender<Job>>,
    pub(super) thread: Option<JoinHandle<()>>,
    pub(crate) path: PathBuf,
    pub(crate) counters: Arc<Counters>,
    /// Where group snapshot dirs live: `None` for a backend (snapshots in
    /// memory).
    pub(super) dir: Option<PathBuf>,
}

impl Shared {
    pub(crate) fn stopped(&self) -> StorageError {
        RedbError::Stopped(self.path.clone()).into()
    }

    pub(crate) fn send(&self, job: Job) -> Result<(), StorageError> {
        match &self.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| self.stopped()),
            None => Err(self.stopped()),
        }
    }

    /// Runs `f` on the storage thread and waits for its answer (blocking:
    /// for opening and bootstrapping, before a node runs).
    pub(crate) fn run_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Groups) -> R + Send + 'static,
    ) -> Result<R, StorageError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job::Run(Box::new(move |g: &mut Groups| {
            let _ = tx.send(f(g));
        })))?;
        rx.recv().map_err(|_| self.stopped())
    }
}

/// The storage thread's loop: jobs in order until every handle is dropped,
/// then the database is closed. Writes queued together, of distinct
/// groups, go in one transaction. A job that panics poisons the file:
/// every later job is refused (its caller sees the thread as stopped), and
/// the database is abandoned, not closed: a panic inside a write
/// transaction skips redb's rollback, and closing would commit that
/// half-done state. The next open recovers the file from its last commit.
pub(super) fn run(groups: Groups, jobs: mpsc::Receiver<Job>) {
    let mut groups = Some(groups);
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let Some(open) = groups.as_mut() else {
            continue;
        };
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
            Job::Run(f) => f(open),
            Job::Write(first) => {
                let mut writes = vec![*first];
                while writes.len() < MAX_MERGED {
                    match jobs.try_recv() {
                        Ok(Job::Write(w)) if writes.iter().all(|o| o.group != w.group) => {
                            writes.push(*w)
                        }
                        // A second batch of one group, or another job: it
                        // waits for this transaction, in order.
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                open.write(writes);
            }
        }));
        if let Err(panic) = done {
            tracing::error!(
                panic = %panic_message(&*panic),
                "redb storage job panicked; the store is abandoned until the next open"
            );
            std::mem::forget(groups.take());
        }
    }
}

impl Drop for Shared {
    /// Closes the database once the last handle is gone: waits for the
    /// jobs sent and for redb's close (a few milliseconds), so the file is
    /// released when this returns and a reopen in the same process
    /// succeeds.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
