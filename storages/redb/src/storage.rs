//! [`RedbStorage`]: the [`Storage`] a node uses, a handle to a store that
//! lives on a thread of its own.
//!
//! redb's calls block (a commit waits for fsync), and a blocked actix
//! thread would stall every actor on it, ticks and heartbeats included. So
//! the [`Store`] is owned by one dedicated thread that runs jobs in the
//! order they are sent; the async methods send a job and await its answer.
//! The handle must never touch the database itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use raft_actors::core::{GroupId, Membership, DEFAULT_GROUP};
use raft_actors::storage::{
    write_snapshot_part, LogState, MemorySnapshots, SharedLogReader, SharedSnapshots, Storage,
    StorageError, StorageStats, ToPersist,
};
use redb::StorageBackend;
use tokio::sync::oneshot;

use crate::error::RedbError;
use crate::snapshot_files::{FileSnapshots, SNAPSHOT_DIR};
use crate::store::{Counters, Store, FILE_NAME};

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// Durable [`Storage`] on redb. See the [crate docs](crate).
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_actors::core::{Entry, HardState, Membership, Payload};
/// use raft_actors::storage::{Storage, ToPersist};
/// use raft_actors_storage_redb::RedbStorage;
///
/// let dir = tempfile::tempdir()?;
/// let mut s = RedbStorage::open(dir.path())?;
/// assert!(s.is_fresh());
/// s.bootstrap(Membership::voters([1, 2, 3]))?;
/// let e = Entry { index: 1, term: 1, payload: Payload::Noop };
/// let hard_state = Some(HardState { term: 1, vote: Some(1), commit: 0 });
/// s.write(ToPersist { hard_state, entries: vec![e], ..ToPersist::default() }).await?;
/// drop(s); // closes the file
///
/// let mut s = RedbStorage::open(dir.path())?;
/// assert!(!s.is_fresh());
/// assert_eq!(s.load().await?.entries.len(), 1);
/// # Ok(()) }
/// ```
///
/// Clones share one store (one file, one thread), as [`MemoryStorage`]
/// clones do: keep one to inspect what a running node wrote. The file is
/// closed when the last clone is dropped.
///
/// [`MemoryStorage`]: raft_actors::storage::MemoryStorage
#[derive(Clone)]
pub struct RedbStorage {
    shared: Arc<Shared>,
    fresh: bool,
    membership: Membership,
    snapshots: SharedSnapshots,
    reader: SharedLogReader,
}

/// The storage thread and what every clone shares.
struct Shared {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    counters: Arc<Counters>,
}

/// Counters of a [`RedbStorage`] since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedbStats {
    /// Committed write transactions: one fsync each.
    pub fsyncs: u64,
    /// Log entries those transactions wrote.
    pub entries: u64,
}

impl RedbStats {
    /// Entries per fsync: how well group commit batches (0 before any
    /// write).
    pub fn entries_per_fsync(&self) -> f64 {
        if self.fsyncs == 0 {
            0.0
        } else {
            self.entries as f64 / self.fsyncs as f64
        }
    }
}

impl RedbStorage {
    /// Opens the store in `dir` (creating the dir and an empty store if
    /// missing), checks its format version and reads every record once.
    /// Blocks while it does: call it before starting the node.
    ///
    /// Refuses, with one clear [`RedbError`], a dir it cannot use, a file
    /// that is not a sound redb file, one written by a newer format, and
    /// any damaged or missing record: the node must not start on it.
    pub fn open(dir: impl AsRef<Path>) -> Result<RedbStorage, RedbError> {
        Self::open_group(dir, DEFAULT_GROUP)
    }

    /// Opens the records of Raft group `group` in the store in `dir`, as
    /// [`RedbStorage::open`] does group [`DEFAULT_GROUP`]'s. Every key in
    /// the file starts with its group, so the groups of one file never see
    /// each other's records; a group's snapshot files live in
    /// `snapshots/` for group 0 and `snapshots-<group>/` for the others.
    /// One process opens a dir once at a time (redb locks the file).
    ///
    /// ```
    /// use raft_actors::core::Membership;
    /// use raft_actors_storage_redb::RedbStorage;
    /// let dir = tempfile::tempdir()?;
    /// let mut g7 = RedbStorage::open_group(dir.path(), 7)?;
    /// g7.bootstrap(Membership::voters([1]))?;
    /// drop(g7);
    /// // Group 0 of the same file holds nothing yet.
    /// assert!(RedbStorage::open(dir.path())?.is_fresh());
    /// assert!(!RedbStorage::open_group(dir.path(), 7)?.is_fresh());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_group(dir: impl AsRef<Path>, group: GroupId) -> Result<RedbStorage, RedbError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(FILE_NAME);
        let snap_dir = if group == DEFAULT_GROUP {
            dir.join(SNAPSHOT_DIR)
        } else {
            dir.join(format!("{SNAPSHOT_DIR}-{group}"))
        };
        let (store_dir, store_path) = (dir.clone(), path.clone());
        let snapshots =
            Arc::new(
                FileSnapshots::open(&snap_dir).map_err(|e| RedbError::DataDir {
                    path: snap_dir.clone(),
                    reason: e.to_string(),
                })?,
            );
        let files: SharedSnapshots = snapshots.clone();
        Self::start(path, files, move |counters| {
            let (store, membership) = Store::open(&store_dir, group, counters)?;
            // Only now, holding the store's lock: another process on this
            // dir may be writing its temporary files.
            snapshots
                .remove_temporary()
                .map_err(|e| RedbError::DataDir {
                    path: snapshots.dir().to_path_buf(),
                    reason: e.to_string(),
                })?;
            let check: &dyn raft_actors::storage::SnapshotStore = &*snapshots;
            // The snapshot the store records must be there, whole: a node
            // must not start on a missing or damaged one.
            if let Some(snapshot) = store.snapshot_record()? {
                check.verify(&snapshot).map_err(|e| {
                    RedbError::corrupt(&store_path, snapshot.meta.index, "snapshot", e)
                })?;
            }
            Ok((store, membership))
        })
    }

    /// Opens (or creates) the store on a redb [`StorageBackend`] instead of
    /// a file in a data dir: for tests that model a disk (the power-loss
    /// tests give it one that loses what was not synced) and for custom
    /// disks. A node's data dir wants [`RedbStorage::open`].
    ///
    /// `name` stands for the file in errors and [`RedbStorage::path`].
    /// The same checks as [`RedbStorage::open`] run, but one: without a
    /// dir there is no `raft.redb.format` marker beside the file, so a
    /// backend emptied behind the store's back opens as a fresh store (and
    /// a node on it would forget its votes): a custom disk must keep its
    /// contents or refuse to be read.
    ///
    /// Without a dir there is no place for snapshot files either: its
    /// snapshots live in memory ([`MemorySnapshots`]) and go with the
    /// process, while the store keeps recording them. A node restarted in
    /// a new process on such a store finds its snapshot gone and its state
    /// machine stops: use it where the process outlives the store's
    /// reopenings (the power-loss tests), not for a node's real disk.
    ///
    /// ```
    /// use raft_actors_storage_redb::RedbStorage;
    /// let s = RedbStorage::open_backend(redb::backends::InMemoryBackend::new(), "memory")?;
    /// assert!(s.is_fresh());
    /// # Ok::<(), raft_actors_storage_redb::RedbError>(())
    /// ```
    pub fn open_backend(
        backend: impl StorageBackend,
        name: impl Into<PathBuf>,
    ) -> Result<RedbStorage, RedbError> {
        let name = name.into();
        let label = name.clone();
        // No dir to keep files in: the snapshots live in memory (the
        // power-loss tests model the log's disk, not the snapshots').
        let snapshots: SharedSnapshots = Arc::new(MemorySnapshots::default());
        Self::start(label, snapshots, move |counters| {
            Store::open_backend(backend, name, DEFAULT_GROUP, counters)
        })
    }

    /// Starts the storage thread, opens the store on it with `open` and
    /// waits for the answer. A panic in redb while opening is caught and
    /// answered as [`RedbError::Panicked`]: the file is refused either way.
    fn start(
        path: PathBuf,
        snapshots: SharedSnapshots,
        open: impl FnOnce(Arc<Counters>) -> Result<(Store, Membership), RedbError> + Send + 'static,
    ) -> Result<RedbStorage, RedbError> {
        let counters = Arc::new(Counters::default());
        let (jobs, rx) = mpsc::channel::<Job>();
        let (opened, opened_rx) = mpsc::sync_channel(1);
        let thread_counters = Arc::clone(&counters);
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("redb-storage".into())
            .spawn(move || {
                let open = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    open(thread_counters)
                }));
                let store = match open {
                    Ok(Ok((store, membership))) => {
                        let reader: SharedLogReader = Arc::new(store.log_reader());
                        let _ = opened.send(Ok((store.is_fresh(), membership, reader)));
                        store
                    }
                    Ok(Err(e)) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                    Err(panic) => {
                        let _ = opened.send(Err(RedbError::Panicked {
                            path: thread_path,
                            reason: panic_text(&*panic),
                        }));
                        return;
                    }
                };
                run(store, rx);
            })
            .map_err(|e| RedbError::Io {
                path: path.clone(),
                reason: format!("cannot start the storage thread: {e}"),
            })?;
        let (fresh, membership, reader) = match opened_rx.recv() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(RedbError::Stopped(path));
            }
        };
        Ok(RedbStorage {
            shared: Arc::new(Shared {
                jobs: Some(jobs),
                thread: Some(thread),
                path,
                counters,
            }),
            fresh,
            membership,
            snapshots,
            reader,
        })
    }

    /// Whether the store held nothing when opened (a new data dir): only
    /// then may a node bootstrap a cluster from its command line.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// The configuration stored (bootstrapped, or from an installed
    /// snapshot; empty for a node that was never given one). Entries in
    /// the log may have changed it since: the node replays them.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Writes the first configuration of a fresh store. Blocks until it is
    /// durable (call it at startup, before the node runs). Refuses a store
    /// that is not fresh: its configuration comes from its own history.
    pub fn bootstrap(&mut self, membership: Membership) -> Result<(), StorageError> {
        if !self.fresh {
            return Err(StorageError::OutOfOrder(format!(
                "{} holds a store already: bootstrap only a fresh one",
                self.shared.path.display()
            )));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let m = membership.clone();
        self.send(Box::new(move |store: &mut Store| {
            let _ = tx.send(store.poisoning(|s| s.save_membership(&m)));
        }))?;
        rx.recv().map_err(|_| self.stopped())??;
        self.fresh = false;
        self.membership = membership;
        Ok(())
    }

    /// The database file (the name given to
    /// [`open_backend`](RedbStorage::open_backend) for a backend).
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Fsyncs and entries written since the store was opened.
    pub fn stats(&self) -> RedbStats {
        RedbStats {
            fsyncs: self.shared.counters.commits.load(Ordering::Relaxed),
            entries: self.shared.counters.entries.load(Ordering::Relaxed),
        }
    }

    fn stopped(&self) -> StorageError {
        RedbError::Stopped(self.shared.path.clone()).into()
    }

    fn send(&self, job: Job) -> Result<(), StorageError> {
        match &self.shared.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| self.stopped()),
            None => Err(self.stopped()),
        }
    }

    /// Runs `f` on the storage thread and awaits its answer.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StorageError> + Send + 'static,
    ) -> Result<R, StorageError> {
        let (tx, rx) = oneshot::channel();
        self.send(Box::new(move |store: &mut Store| {
            let _ = tx.send(f(store));
        }))?;
        rx.await.map_err(|_| self.stopped())?
    }
}

/// The storage thread's loop: jobs in order until the handle is dropped,
/// then the database is closed. A job that panics poisons the store: every
/// later job is refused (its caller sees the thread as stopped), and the
/// database is abandoned, not closed: a panic inside a write transaction
/// skips redb's rollback, and closing would commit that half-done state.
/// The next open recovers the file from its last commit instead.
fn run(store: Store, jobs: mpsc::Receiver<Job>) {
    let mut store = Some(store);
    while let Ok(job) = jobs.recv() {
        let Some(open) = store.as_mut() else {
            continue;
        };
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(open)));
        if let Err(panic) = done {
            tracing::error!(
                panic = %panic_text(&*panic),
                "redb storage job panicked; the store is abandoned until the next open"
            );
            std::mem::forget(store.take());
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

impl Drop for Shared {
    /// Closes the database once the last clone is gone: waits for the jobs
    /// sent and for redb's close (a few milliseconds), so the file is
    /// released when this returns and a reopen in the same process
    /// succeeds. The node drops its storage once, when it is torn down; a
    /// restart by its supervisor keeps it.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage")
            .field("path", &self.shared.path)
            .field("stats", &self.stats())
            .finish()
    }
}

#[async_trait]
impl Storage for RedbStorage {
    async fn load(&mut self) -> Result<LogState, StorageError> {
        self.call(|store| {
            store.refuse_if_poisoned()?;
            let mut state = store.read_all().map_err(StorageError::from)?;
            if let Some(hs) = store.deferred_hard_state() {
                state.hard_state = hs;
            }
            Ok(state)
        })
        .await
    }

    /// The snapshot's file first (the chunks received, then the rename of
    /// a whole one), then the transaction that records it; a crash between
    /// the two leaves a named file no record points at, which the next
    /// retention deletes.
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let snapshots = Arc::clone(&self.snapshots);
        self.call(move |store| {
            store.refuse_if_poisoned()?;
            write_snapshot_part(&*snapshots, &batch)?;
            let recorded = batch.snapshot.clone();
            store.poisoning(|s| s.write(batch))?;
            if let Some(current) = recorded {
                // The batch is committed: an old file left behind costs
                // only disk space, and the next retention tries again.
                if let Err(e) = snapshots.retain(&current) {
                    tracing::warn!(%e, "old snapshot files not deleted");
                }
            }
            Ok(())
        })
        .await
    }

    fn snapshots(&self) -> SharedSnapshots {
        Arc::clone(&self.snapshots)
    }

    /// Reads in redb read transactions beside the storage thread's
    /// writes, on the caller's thread.
    fn log_reader(&self) -> Option<SharedLogReader> {
        Some(Arc::clone(&self.reader))
    }

    fn stats(&self) -> StorageStats {
        StorageStats {
            fsyncs: Some(self.stats().fsyncs),
        }
    }
}
