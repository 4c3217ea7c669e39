//! [`WalStorage`]: the [`Storage`] a node uses, a handle to a [`Log`] that
//! lives on a thread of its own.
//!
//! A write blocks on fdatasync, and a blocked actix thread would stall
//! every actor on it, ticks and heartbeats included. So the log is owned
//! by one dedicated thread that runs jobs in the order they are sent; the
//! async methods send a job and await its answer. The handle must never
//! touch the files itself; reads of entries go to the image in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use raft_actors::core::{Entry, LogIndex, Membership};
use raft_actors::storage::memory::LogImage;
use raft_actors::storage::{
    LogReader, LogState, SharedLogReader, SharedSnapshots, SnapshotStore, Storage, StorageError,
    StorageStats, ToPersist,
};
use raft_actors_storage_redb::{FileSnapshots, SNAPSHOT_DIR};
use tokio::sync::oneshot;

use crate::error::WalError;
use crate::log::{lock_image, Log, SEGMENT_BYTES};

type Job = Box<dyn FnOnce(&mut Log) + Send>;

/// The dir, inside a node's data dir, that holds the log's segments.
pub const WAL_DIR: &str = "wal";

/// Durable [`Storage`] as an append-only log. See the [crate docs](crate).
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_actors::core::{Entry, HardState, Membership, Payload};
/// use raft_actors::storage::{Storage, ToPersist};
/// use raft_actors_storage_wal::WalStorage;
///
/// let dir = tempfile::tempdir()?;
/// let mut s = WalStorage::open(dir.path())?;
/// assert!(s.is_fresh());
/// let e = Entry { index: 1, term: 1, payload: Payload::Noop };
/// let hard_state = Some(HardState { term: 1, vote: Some(1), commit: 0 });
/// let membership = Some(Membership::voters([1, 2, 3]));
/// s.write(ToPersist { hard_state, membership, entries: vec![e], ..ToPersist::default() }).await?;
/// drop(s); // closes the log
///
/// let mut s = WalStorage::open(dir.path())?;
/// assert!(!s.is_fresh());
/// let state = s.load().await?;
/// assert_eq!((state.entries.len(), state.hard_state.vote), (1, Some(1)));
/// # Ok(()) }
/// ```
///
/// Clones share one log (one thread): keep one to inspect what a running
/// node wrote. The log closes when the last clone is dropped.
#[derive(Clone)]
pub struct WalStorage {
    shared: Arc<Shared>,
    fresh: bool,
    snapshots: SharedSnapshots,
    image: Arc<Mutex<LogImage>>,
}

struct Shared {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    fsyncs: Arc<AtomicU64>,
}

impl WalStorage {
    /// Opens the log in `<data_dir>/wal` (creating it), with its snapshots
    /// in `<data_dir>/snapshots`, reads every segment and cuts a torn
    /// tail. Blocks while it does: call it before starting the node.
    ///
    /// Refuses, with one clear [`WalError`], a dir another process holds, a
    /// segment of another format, a damaged or missing segment, and a
    /// recorded snapshot whose file is missing or damaged.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<WalStorage, WalError> {
        Self::open_with(data_dir, SEGMENT_BYTES)
    }

    /// [`open`](Self::open) with segments rolled over at `segment_bytes`
    /// instead of 64 MiB: small segments let tests roll and drop them.
    pub fn open_with(
        data_dir: impl AsRef<Path>,
        segment_bytes: u64,
    ) -> Result<WalStorage, WalError> {
        let data_dir = data_dir.as_ref();
        let path = data_dir.join(WAL_DIR);
        let snap_dir = data_dir.join(SNAPSHOT_DIR);
        let files =
            Arc::new(FileSnapshots::open(&snap_dir).map_err(|e| WalError::io(&snap_dir, e))?);
        let (log, fresh) = Log::open(&path, segment_bytes)?;
        // Only now, holding the log's lock: another process on this dir
        // may be writing its temporary files.
        files
            .remove_temporary()
            .map_err(|e| WalError::io(&snap_dir, e))?;
        let image = log.image();
        let recorded = lock_image(&image).state.snapshot.clone();
        if let Some(snapshot) = recorded {
            files
                .verify(&snapshot)
                .map_err(|e| WalError::corrupt(&path, 0, format!("its snapshot: {e}")))?;
        }
        let fsyncs = log.fsyncs();
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("wal-storage".into())
            .spawn(move || run(log, rx))
            .map_err(|e| WalError::io(&path, format!("cannot start the storage thread: {e}")))?;
        Ok(WalStorage {
            shared: Arc::new(Shared {
                jobs: Some(jobs),
                thread: Some(thread),
                path,
                fsyncs,
            }),
            fresh,
            snapshots: files,
            image,
        })
    }

    /// Whether the log held nothing when opened (a new data dir).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Writes the first configuration of a fresh log, blocking until it is
    /// durable (call it at startup, before the node runs; a node founding
    /// a cluster does the same through [`ToPersist::membership`]). Refuses
    /// a log that is not fresh: its configuration comes from its history.
    pub fn bootstrap(&mut self, membership: Membership) -> Result<(), StorageError> {
        if !self.fresh {
            return Err(StorageError::OutOfOrder(format!(
                "{} holds a log already: bootstrap only a fresh one",
                self.shared.path.display()
            )));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let snapshots = Arc::clone(&self.snapshots);
        let job: Job = Box::new(move |log: &mut Log| {
            let batch = ToPersist {
                membership: Some(membership),
                ..ToPersist::default()
            };
            let _ = tx.send(log.write(batch, &*snapshots));
        });
        match &self.shared.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| self.stopped())?,
            None => return Err(self.stopped()),
        }
        rx.recv().map_err(|_| self.stopped())??;
        self.fresh = false;
        Ok(())
    }

    /// The dir of the segments.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// How many segment files the log holds now.
    pub async fn segments(&self) -> Result<usize, StorageError> {
        self.call(|log| Ok(log.segment_count())).await
    }

    fn stopped(&self) -> StorageError {
        WalError::Stopped(self.shared.path.clone()).into()
    }

    /// Runs `f` on the storage thread and awaits its answer.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<R, StorageError> + Send + 'static,
    ) -> Result<R, StorageError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |log: &mut Log| {
            let _ = tx.send(f(log));
        });
        match &self.shared.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| self.stopped())?,
            None => return Err(self.stopped()),
        }
        rx.await.map_err(|_| self.stopped())?
    }
}

/// The storage thread's loop: jobs in order until the handle is dropped.
/// A job that panics poisons the log: every later job is dropped unrun
/// (its caller sees the thread as stopped) and the next open replays the
/// segments from what reached them.
fn run(log: Log, jobs: mpsc::Receiver<Job>) {
    let mut log = Some(log);
    while let Ok(job) = jobs.recv() {
        let Some(open) = log.as_mut() else {
            continue;
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(open))).is_err() {
            tracing::error!("wal storage job panicked; the log is closed until the next open");
            log = None;
        }
    }
    if let Some(mut open) = log {
        if let Err(e) = open.flush_lazy() {
            tracing::warn!(%e, "the log's last lazy writes were not kept at close");
        }
    }
}

impl Drop for Shared {
    /// Waits for the jobs sent and the flush of lazy writes, so the dir's lock is released when the
    /// last clone is gone and a reopen in the same process succeeds.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for WalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalStorage")
            .field("path", &self.shared.path)
            .field("fsyncs", &self.shared.fsyncs.load(Ordering::Relaxed))
            .finish()
    }
}

/// Reads entries from the image in memory.
struct ImageReader(Arc<Mutex<LogImage>>);

impl LogReader for ImageReader {
    fn read(&self, first: LogIndex, last: LogIndex) -> Result<Vec<Entry>, StorageError> {
        lock_image(&self.0).read(first, last)
    }
}

#[async_trait]
impl Storage for WalStorage {
    async fn load(&mut self) -> Result<LogState, StorageError> {
        self.call(|log| {
            log.refuse_if_poisoned()?;
            Ok(lock_image(&log.image()).state.clone())
        })
        .await
    }

    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let snapshots = Arc::clone(&self.snapshots);
        self.call(move |log| log.write(batch, &*snapshots)).await
    }

    fn snapshots(&self) -> SharedSnapshots {
        Arc::clone(&self.snapshots)
    }

    fn log_reader(&self) -> Option<SharedLogReader> {
        Some(Arc::new(ImageReader(Arc::clone(&self.image))))
    }

    fn stats(&self) -> StorageStats {
        StorageStats {
            fsyncs: Some(self.shared.fsyncs.load(Ordering::Relaxed)),
        }
    }
}
