//! [`RedbGroups`]: one redb file holding the logs of many Raft groups
//! (multi-raft), on one storage thread, where the batches of every group
//! queued at the same moment are written in one transaction, committed
//! with at most one fsync (as ra's shared WAL and TiKV's raft-engine do).
//!
//! redb's calls block (a commit waits for fsync), and a blocked actix
//! thread would stall every actor on it, ticks and heartbeats included. So
//! the file is owned by one dedicated thread ([`thread`]) that runs jobs
//! in the order they are sent. This module opens the file and its groups;
//! it must never touch the database but through that thread.

mod thread;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use raft_actors::core::GroupId;
use raft_actors::storage::{MemorySnapshots, SharedLogReader, SharedSnapshots};
use redb::StorageBackend;

use raft_actors::error::panic_message;
use thread::run;
pub(crate) use thread::{Groups, Job, Shared, Write};

use crate::error::RedbError;
use crate::snapshot_files::{FileSnapshots, SNAPSHOT_DIR};
use crate::storage::{RedbStats, RedbStorage};
use crate::store::{Counters, File, Store, FILE_NAME};

/// A redb file holding the logs of many Raft groups: each group's
/// [`RedbStorage`] comes from [`group`](Self::group). Batches of different
/// groups that reach the storage thread together share one write
/// transaction and at most one fsync ([`RedbStats::merged`]); every key
/// in the file starts with its group, so a damaged record stops only its
/// own group's open.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_actors::core::Membership;
/// use raft_actors::storage::Storage;
/// use raft_actors_storage_redb::RedbGroups;
/// let dir = tempfile::tempdir()?;
/// let file = RedbGroups::open(dir.path())?;
/// let mut g1 = file.group(1)?;
/// let mut g2 = file.group(2)?;
/// g1.bootstrap(Membership::voters([1, 2, 3]))?;
/// assert!(!g1.is_fresh() && g2.is_fresh());
/// assert!(file.group(1).is_err(), "one handle per group");
/// drop(g1);
/// assert!(!file.group(1)?.is_fresh(), "closed with its last handle, then reopened");
/// # drop(g2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedbGroups {
    shared: Arc<Shared>,
}

impl RedbGroups {
    /// Opens (or creates) the file in `dir` on a storage thread of its
    /// own, and checks its format. Refuses, with one clear [`RedbError`],
    /// a dir it cannot use, a file that is not a sound redb file, and one
    /// of another format. Groups' records are read by
    /// [`group`](Self::group).
    pub fn open(dir: impl AsRef<Path>) -> Result<RedbGroups, RedbError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(FILE_NAME);
        let store_dir = dir.clone();
        Self::start(path, Some(dir), move |counters| {
            File::open(&store_dir, counters)
        })
    }

    /// Opens (or creates) the file on a redb [`StorageBackend`], `name`
    /// standing for it in errors; snapshots live in memory (see
    /// [`RedbStorage::open_backend`]).
    pub fn open_backend(
        backend: impl StorageBackend,
        name: impl Into<PathBuf>,
    ) -> Result<RedbGroups, RedbError> {
        let name = name.into();
        let label = name.clone();
        Self::start(label, None, move |counters| {
            File::open_backend(backend, name, counters)
        })
    }

    /// Opens group `group`'s records: reads and checks every one, and its
    /// snapshot file (`snapshots/` for group 0, `snapshots-<group>/` for
    /// the others). Blocks while it does. Refuses a group open already, and
    /// a damaged record of this group (other groups are not read).
    pub fn group(&self, group: GroupId) -> Result<RedbStorage, RedbError> {
        let shared = &self.shared;
        let snapshots: Arc<dyn SnapshotFiles> = match &shared.dir {
            Some(dir) => {
                let snap_dir = if group == raft_actors::core::DEFAULT_GROUP {
                    dir.join(SNAPSHOT_DIR)
                } else {
                    dir.join(format!("{SNAPSHOT_DIR}-{group}"))
                };
                Arc::new(
                    FileSnapshots::open(&snap_dir).map_err(|e| RedbError::DataDir {
                        path: snap_dir.clone(),
                        reason: e.to_string(),
                    })?,
                )
            }
            None => Arc::new(MemorySnapshots::default()),
        };
        let check = Arc::clone(&snapshots);
        let path = shared.path.clone();
        let opened = shared
            .run_blocking(move |groups| -> Result<_, RedbError> {
                if groups.stores.contains_key(&group) {
                    return Err(RedbError::GroupOpen { path, group });
                }
                // After a failed write, what the file holds is unknown:
                // no group opens on it until it is reopened.
                groups
                    .file
                    .refuse_if_poisoned()
                    .map_err(|e| RedbError::Io {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                let (store, membership) = Store::open(&groups.file, group)?;
                check.prepare(&store, &path)?;
                let reader: SharedLogReader = Arc::new(store.log_reader());
                let fresh = store.is_fresh();
                groups.stores.insert(group, store);
                Ok((fresh, membership, reader))
            })
            .map_err(|_| RedbError::Stopped(shared.path.clone()))??;
        let (fresh, membership, reader) = opened;
        Ok(RedbStorage::new(
            Arc::clone(shared),
            group,
            fresh,
            membership,
            snapshots.shared(),
            reader,
        ))
    }

    /// The file (the name given to [`open_backend`](Self::open_backend)
    /// for a backend).
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Fsyncs, entries and merged transactions since the file was opened,
    /// all groups together.
    pub fn stats(&self) -> RedbStats {
        RedbStats::of(&self.shared.counters)
    }

    /// Starts the storage thread, opens the file on it with `open` and
    /// waits for the answer. A panic in redb while opening is caught and
    /// answered as [`RedbError::Panicked`]: the file is refused either way.
    fn start(
        path: PathBuf,
        dir: Option<PathBuf>,
        open: impl FnOnce(Arc<Counters>) -> Result<File, RedbError> + Send + 'static,
    ) -> Result<RedbGroups, RedbError> {
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
                let file = match open {
                    Ok(Ok(file)) => {
                        let _ = opened.send(Ok(()));
                        file
                    }
                    Ok(Err(e)) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                    Err(panic) => {
                        let _ = opened.send(Err(RedbError::Panicked {
                            path: thread_path,
                            reason: panic_message(&*panic),
                        }));
                        return;
                    }
                };
                run(
                    Groups {
                        file,
                        stores: BTreeMap::new(),
                    },
                    rx,
                );
            })
            .map_err(|e| RedbError::Io {
                path: path.clone(),
                reason: format!("cannot start the storage thread: {e}"),
            })?;
        match opened_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(RedbError::Stopped(path));
            }
        }
        Ok(RedbGroups {
            shared: Arc::new(Shared {
                jobs: Some(jobs),
                thread: Some(thread),
                path,
                counters,
                dir,
            }),
        })
    }
}

/// A group's snapshot store as opened: files in a dir, or memory.
trait SnapshotFiles: Send + Sync + 'static {
    /// Readies the store for the group's opened `store`: a dir's
    /// temporary files go (only now, holding the file's lock: another
    /// process on this dir may be writing them), and the snapshot the
    /// store records must be there, whole.
    fn prepare(&self, store: &Store, path: &Path) -> Result<(), RedbError>;
    /// The store as the node's [`SharedSnapshots`].
    fn shared(self: Arc<Self>) -> SharedSnapshots;
}

impl SnapshotFiles for FileSnapshots {
    fn prepare(&self, store: &Store, path: &Path) -> Result<(), RedbError> {
        self.remove_temporary().map_err(|e| RedbError::DataDir {
            path: self.dir().to_path_buf(),
            reason: e.to_string(),
        })?;
        let check: &dyn raft_actors::storage::SnapshotStore = self;
        if let Some(snapshot) = store.snapshot_record()? {
            check
                .verify(&snapshot)
                .map_err(|e| RedbError::corrupt(path, snapshot.meta.index, "snapshot", e))?;
        }
        Ok(())
    }
    fn shared(self: Arc<Self>) -> SharedSnapshots {
        self
    }
}

impl SnapshotFiles for MemorySnapshots {
    /// Nothing to check: the snapshots went with the last process.
    fn prepare(&self, _: &Store, _: &Path) -> Result<(), RedbError> {
        Ok(())
    }
    fn shared(self: Arc<Self>) -> SharedSnapshots {
        self
    }
}

impl std::fmt::Debug for RedbGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbGroups")
            .field("path", &self.shared.path)
            .field("stats", &self.stats())
            .finish()
    }
}
