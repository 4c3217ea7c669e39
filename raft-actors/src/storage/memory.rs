//! [`MemoryStorage`]: the log in a vector, shared by clones, so a node
//! "restarted" in the same process finds what it wrote, as after a reboot.
//!
//! It is durable only as long as the process lives. It must never hand back
//! anything a failed call wrote; its fault switches exist so tests can make
//! calls fail on purpose.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::snapshots::{write_snapshot_part, MemorySnapshots, SharedSnapshots, SnapshotStore};
use super::{LogReader, LogState, SharedLogReader, SnapshotMeta, Storage, StorageError, ToPersist};
use crate::core::{Entry, LogIndex, Membership};

/// In-memory [`Storage`]. Clones share one store: keep a clone to reopen it
/// after the node using it stopped.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), raft_actors::storage::StorageError> {
/// use raft_actors::core::{Entry, HardState, Membership, Payload};
/// use raft_actors::storage::{MemoryStorage, Storage, ToPersist};
/// let mut s = MemoryStorage::new(Membership::voters([1, 2, 3]));
/// let e = Entry { index: 1, term: 1, payload: Payload::Noop };
/// let hard_state = Some(HardState { term: 1, vote: Some(1), commit: 0 });
/// s.write(ToPersist { hard_state, entries: vec![e], ..ToPersist::default() }).await?;
/// let reopened = s.clone().load().await?;
/// assert_eq!(reopened.entries.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStorage {
    inner: Arc<Mutex<Inner>>,
    snapshots: MemorySnapshots,
}

#[derive(Debug, Default)]
struct Inner {
    image: LogImage,
    fail_appends: bool,
    fail_loads: bool,
    appends: u64,
    /// Batches written, and those of them that asked for a flush.
    writes: u64,
    synced_writes: u64,
}

impl MemoryStorage {
    /// An empty store for a node of a new cluster with `membership`.
    pub fn new(membership: Membership) -> Self {
        MemoryStorage {
            inner: Arc::new(Mutex::new(Inner {
                image: LogImage {
                    state: LogState {
                        membership,
                        ..Default::default()
                    },
                },
                ..Default::default()
            })),
            snapshots: MemorySnapshots::default(),
        }
    }

    /// The store of its snapshots' bytes (shared by clones).
    pub fn snapshot_store(&self) -> &MemorySnapshots {
        &self.snapshots
    }

    /// Makes every later write of entries or a hard state fail (or succeed
    /// again), as a dying disk would. For tests of the node's fatal-error path.
    pub fn fail_appends(&self, fail: bool) {
        self.lock().fail_appends = fail;
    }

    /// Makes every later `load` fail (or succeed again), as an unreadable
    /// disk would. For tests of a node that cannot come back.
    pub fn fail_loads(&self, fail: bool) {
        self.lock().fail_loads = fail;
    }

    /// How many writes of entries or a hard state succeeded: with group
    /// commit, far fewer than the entries appended.
    pub fn append_calls(&self) -> u64 {
        self.lock().appends
    }

    /// How many batches [`Storage::write`] took, and how many of them had
    /// to be synced (the others only moved the commit index or compacted):
    /// what a durable adapter's fsyncs would be.
    pub fn writes(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.writes, inner.synced_writes)
    }

    /// A copy of what is stored now, for tests and tools.
    pub fn state(&self) -> LogState {
        self.lock().image.state.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written state:
        // every write below is a sequence of infallible Vec operations done
        // after all checks. So the data behind a poisoned lock is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads entries back from a [`MemoryStorage`]'s state.
struct MemoryLogReader(Arc<Mutex<Inner>>);

impl LogReader for MemoryLogReader {
    fn read(&self, first: LogIndex, last: LogIndex) -> Result<Vec<Entry>, StorageError> {
        let inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        inner.image.read(first, last)
    }
}

/// A log held in memory, and the rules by which a batch changes it: what
/// [`MemoryStorage`] is, and what a durable adapter that keeps its log in
/// memory beside its file (as etcd's WAL does) replays and checks against.
/// It decides nothing about durability.
///
/// ```
/// use raft_actors::core::{Entry, Payload};
/// use raft_actors::storage::memory::LogImage;
/// use raft_actors::storage::ToPersist;
/// let mut image = LogImage::default();
/// let e = |index| Entry { index, term: 0, payload: Payload::Noop };
/// let batch = ToPersist { entries: vec![e(1), e(2)], ..ToPersist::default() };
/// image.check(&batch).expect("appends at 1");
/// image.apply(batch);
/// assert_eq!(image.read(2, 2).unwrap(), vec![e(2)]);
/// let gap = ToPersist { entries: vec![e(4)], ..ToPersist::default() };
/// assert!(image.check(&gap).is_err());
/// ```
#[derive(Clone, Debug, Default)]
pub struct LogImage {
    /// What is held.
    pub state: LogState,
}

impl LogImage {
    /// Entries `first..=last`, as [`LogReader::read`] answers.
    pub fn read(&self, first: LogIndex, last: LogIndex) -> Result<Vec<Entry>, StorageError> {
        let offset = self.offset();
        if first <= offset {
            return Err(StorageError::Compacted { first: offset + 1 });
        }
        if last < first {
            return Ok(Vec::new());
        }
        if last > self.state.last_index() {
            return Err(StorageError::Io(format!(
                "entries up to {last} asked for, {} stored",
                self.state.last_index()
            )));
        }
        let lo = (first - offset - 1) as usize;
        let hi = (last - offset) as usize;
        Ok(self.state.entries[lo..hi].to_vec())
    }

    /// Index of the first stored entry's predecessor.
    pub fn offset(&self) -> LogIndex {
        match (self.state.entries.first(), &self.state.snapshot) {
            (Some(e), _) => e.index - 1,
            (None, Some(s)) => s.meta.index,
            (None, None) => 0,
        }
    }

    fn covered(&self) -> LogIndex {
        self.state.snapshot.as_ref().map_or(0, |s| s.meta.index)
    }

    /// Whether the stored log holds the entry a received snapshot ends at
    /// (with its term): then the entries after it stay.
    pub fn holds(&self, meta: &SnapshotMeta) -> bool {
        let offset = self.offset();
        meta.index > offset
            && self
                .state
                .entries
                .get((meta.index - offset - 1) as usize)
                .is_some_and(|e| e.term == meta.term)
    }

    /// Checks the whole batch against the state each step will meet, so a
    /// refused batch changes nothing ([`StorageError::OutOfOrder`]).
    pub fn check(&self, batch: &ToPersist) -> Result<(), StorageError> {
        let refuse = |why: String| Err(StorageError::OutOfOrder(why));
        let (mut last, mut offset, mut covered) =
            (self.state.last_index(), self.offset(), self.covered());
        if let Some(snap) = &batch.snapshot {
            let at = snap.meta.index;
            if batch.snapshot_received {
                if at <= covered {
                    // An older snapshot would throw away what the newer one
                    // covers.
                    return refuse(format!(
                        "install of a snapshot at {at} over one at {covered}"
                    ));
                }
                if !self.holds(&snap.meta) {
                    last = at;
                }
                offset = at;
            } else {
                if at > last {
                    return refuse(format!("snapshot at {at} past the last entry {last}"));
                }
                if at < covered {
                    // It would leave compacted entries uncovered.
                    return refuse(format!(
                        "snapshot at {at} older than the stored one at {covered}"
                    ));
                }
            }
            covered = at;
        }
        if let Some(first) = batch.entries.first() {
            if first.index == 0 || first.index > last + 1 || first.index <= offset {
                return refuse(format!(
                    "append at {} to a log holding {}..={last}",
                    first.index,
                    offset + 1
                ));
            }
            if batch
                .entries
                .windows(2)
                .any(|w| w[1].index != w[0].index + 1)
            {
                return refuse("entries not contiguous".into());
            }
        }
        match batch.compact_to {
            Some(upto) if upto > covered => {
                refuse(format!("compact to {upto} past the snapshot at {covered}"))
            }
            _ => Ok(()),
        }
    }

    /// Applies a checked batch: nothing below can fail.
    pub fn apply(&mut self, batch: ToPersist) {
        if let Some(membership) = batch.membership {
            self.state.membership = membership;
        }
        if let Some(snapshot) = batch.snapshot {
            if batch.snapshot_received {
                let meta = &snapshot.meta;
                if self.holds(meta) {
                    let drop = (meta.index - self.offset()) as usize;
                    self.state.entries.drain(..drop);
                } else {
                    self.state.entries.clear();
                }
                self.state.membership = meta.membership.clone();
                self.state.hard_state.commit = self.state.hard_state.commit.max(meta.index);
            }
            self.state.snapshot = Some(snapshot);
        }
        if let Some(first) = batch.entries.first() {
            let keep = first.index.saturating_sub(self.offset() + 1) as usize;
            self.state.entries.truncate(keep);
            self.state.entries.extend(batch.entries);
        }
        if let Some(hs) = batch.hard_state {
            self.state.hard_state = hs;
        }
        if let Some(upto) = batch.compact_to {
            let drop = (upto.saturating_sub(self.offset()) as usize).min(self.state.entries.len());
            self.state.entries.drain(..drop);
        }
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn load(&mut self) -> Result<LogState, StorageError> {
        let inner = self.lock();
        if inner.fail_loads {
            return Err(StorageError::Io("injected load failure".into()));
        }
        let state = inner.image.state.clone();
        if let Some(snapshot) = &state.snapshot {
            self.snapshots.verify(snapshot)?;
        }
        Ok(state)
    }

    fn snapshots(&self) -> SharedSnapshots {
        Arc::new(self.snapshots.clone())
    }

    fn log_reader(&self) -> Option<SharedLogReader> {
        Some(Arc::new(MemoryLogReader(Arc::clone(&self.inner))))
    }

    /// Checks, then applies: a refused batch changes nothing. Nothing here
    /// outlives the process, so a batch that need not sync differs from one
    /// that must only in the count of what a durable store would flush.
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let appends = batch.hard_state.is_some() || !batch.entries.is_empty();
        if inner.fail_appends && appends {
            return Err(StorageError::Io("injected append failure".into()));
        }
        inner.image.check(&batch)?;
        write_snapshot_part(&self.snapshots, &batch)?;
        let synced = batch.must_sync;
        let recorded = batch.snapshot.clone();
        inner.image.apply(batch);
        if let Some(current) = recorded {
            self.snapshots.retain(&current)?;
        }
        inner.appends += u64::from(appends);
        inner.writes += 1;
        inner.synced_writes += u64::from(synced);
        Ok(())
    }
}
