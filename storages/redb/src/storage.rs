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
use std::sync::Arc;

use async_trait::async_trait;
use raft_actors::core::{GroupId, Membership, DEFAULT_GROUP};
use raft_actors::storage::{
    LogState, SharedLogReader, SharedSnapshots, Storage, StorageError, StorageStats, ToPersist,
};
use redb::StorageBackend;
use tokio::sync::oneshot;

use crate::error::RedbError;
use crate::groups::{Groups, Job, RedbGroups, Shared, Write};
use crate::store::{Counters, Store};

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
/// closed when the last clone (of every group's handle, and of its
/// [`RedbGroups`]) is dropped.
///
/// One Raft group's log: [`RedbStorage::open`] opens group 0 of a data
/// dir's file; [`RedbGroups::group`] opens any group of a file shared by
/// many.
///
/// [`MemoryStorage`]: raft_actors::storage::MemoryStorage
#[derive(Clone)]
pub struct RedbStorage {
    handle: Arc<GroupHandle>,
    fresh: bool,
    membership: Membership,
    snapshots: SharedSnapshots,
    reader: SharedLogReader,
}

/// One group's hold on the file: the group closes when the last clone of
/// its [`RedbStorage`] is dropped.
struct GroupHandle {
    shared: Arc<Shared>,
    group: GroupId,
}

impl Drop for GroupHandle {
    fn drop(&mut self) {
        let group = self.group;
        let _ = self
            .shared
            .send(Job::Run(Box::new(move |g: &mut Groups| g.close(group))));
    }
}

/// Counters of a redb file since it was opened, all its groups together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedbStats {
    /// Committed write transactions that synced: one fsync each.
    pub fsyncs: u64,
    /// Log entries those transactions wrote.
    pub entries: u64,
    /// Transactions that carried the batches of several groups.
    pub merged: u64,
}

impl RedbStats {
    pub(crate) fn of(c: &Counters) -> RedbStats {
        RedbStats {
            fsyncs: c.commits.load(Ordering::Relaxed),
            entries: c.entries.load(Ordering::Relaxed),
            merged: c.merged.load(Ordering::Relaxed),
        }
    }

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
    /// missing), checks its format version and reads every record of
    /// group 0 once. Blocks while it does: call it before starting the
    /// node.
    ///
    /// Refuses, with one clear [`RedbError`], a dir it cannot use, a file
    /// that is not a sound redb file, one written by another format, and
    /// any damaged or missing record: the node must not start on it.
    pub fn open(dir: impl AsRef<Path>) -> Result<RedbStorage, RedbError> {
        RedbGroups::open(dir)?.group(DEFAULT_GROUP)
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
    /// [`MemorySnapshots`]: raft_actors::storage::MemorySnapshots
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
        RedbGroups::open_backend(backend, name)?.group(DEFAULT_GROUP)
    }

    pub(crate) fn new(
        shared: Arc<Shared>,
        group: GroupId,
        fresh: bool,
        membership: Membership,
        snapshots: SharedSnapshots,
        reader: SharedLogReader,
    ) -> RedbStorage {
        RedbStorage {
            handle: Arc::new(GroupHandle { shared, group }),
            fresh,
            membership,
            snapshots,
            reader,
        }
    }

    /// The Raft group whose log this is.
    pub fn group(&self) -> GroupId {
        self.handle.group
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
                self.handle.shared.path.display()
            )));
        }
        let m = membership.clone();
        let group = self.handle.group;
        let stopped = self.stopped();
        self.handle
            .shared
            .run_blocking(move |g: &mut Groups| match g.store(group) {
                Some(store) => store.poisoning(|s| s.save_membership(&m)),
                None => Err(stopped),
            })??;
        self.fresh = false;
        self.membership = membership;
        Ok(())
    }

    /// The database file (the name given to
    /// [`open_backend`](RedbStorage::open_backend) for a backend).
    pub fn path(&self) -> &Path {
        &self.handle.shared.path
    }

    /// Fsyncs and entries written since the file was opened, by every
    /// group in it.
    pub fn stats(&self) -> RedbStats {
        RedbStats::of(&self.handle.shared.counters)
    }

    fn stopped(&self) -> StorageError {
        self.handle.shared.stopped()
    }

    /// Runs `f` on this group's store, on the storage thread, and awaits
    /// its answer.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StorageError> + Send + 'static,
    ) -> Result<R, StorageError> {
        let (tx, rx) = oneshot::channel();
        let (group, stopped) = (self.handle.group, self.stopped());
        self.handle
            .shared
            .send(Job::Run(Box::new(move |g: &mut Groups| {
                let _ = tx.send(match g.store(group) {
                    Some(store) => f(store),
                    None => Err(stopped),
                });
            })))?;
        rx.await.map_err(|_| self.stopped())?
    }
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage")
            .field("path", &self.handle.shared.path)
            .field("group", &self.handle.group)
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
        let (reply, rx) = oneshot::channel();
        self.handle.shared.send(Job::Write(Box::new(Write {
            group: self.handle.group,
            batch,
            snapshots: Arc::clone(&self.snapshots),
            reply,
        })))?;
        rx.await.map_err(|_| self.stopped())?
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
