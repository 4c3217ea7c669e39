//! [`MemoryStorage`]: the log in a vector, shared by clones, so a node
//! "restarted" in the same process finds what it wrote, as after a reboot.
//!
//! It is durable only as long as the process lives. It must never hand back
//! anything a failed call wrote; its fault switches exist so tests can make
//! calls fail on purpose.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{LogState, Snapshot, Storage, StorageError, ToPersist};
use crate::core::{Entry, HardState, LogIndex, Membership};

/// In-memory [`Storage`]. Clones share one store: keep a clone to reopen it
/// after the node using it stopped.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), raft_actors::storage::StorageError> {
/// use raft_actors::core::{Entry, HardState, Membership, Payload};
/// use raft_actors::storage::{MemoryStorage, Storage};
/// let mut s = MemoryStorage::new(Membership::voters([1, 2, 3]));
/// let e = Entry { index: 1, term: 1, payload: Payload::Noop };
/// s.append(Some(HardState { term: 1, vote: Some(1), commit: 0 }), vec![e]).await?;
/// let reopened = s.clone().load().await?;
/// assert_eq!(reopened.entries.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStorage {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    state: LogState,
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
                state: LogState {
                    membership,
                    ..Default::default()
                },
                ..Default::default()
            })),
        }
    }

    /// Makes every later `append` fail (or succeed again), as a dying disk
    /// would. For tests of the node's fatal-error path.
    pub fn fail_appends(&self, fail: bool) {
        self.lock().fail_appends = fail;
    }

    /// Makes every later `load` fail (or succeed again), as an unreadable
    /// disk would. For tests of a node that cannot come back.
    pub fn fail_loads(&self, fail: bool) {
        self.lock().fail_loads = fail;
    }

    /// How many `append` calls succeeded: with group commit, far fewer
    /// than the entries appended.
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
        self.lock().state.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written state:
        // every write below is a sequence of infallible Vec operations done
        // after all checks. So the data behind a poisoned lock is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Index of the first stored entry's predecessor.
    fn offset(&self) -> LogIndex {
        match (self.state.entries.first(), &self.state.snapshot) {
            (Some(e), _) => e.index - 1,
            (None, Some(s)) => s.meta.index,
            (None, None) => 0,
        }
    }

    fn truncate_from(&mut self, from: LogIndex) {
        let offset = self.offset();
        let keep = from.saturating_sub(offset + 1) as usize;
        self.state.entries.truncate(keep);
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn load(&mut self) -> Result<LogState, StorageError> {
        let inner = self.lock();
        if inner.fail_loads {
            return Err(StorageError::Io("injected load failure".into()));
        }
        Ok(inner.state.clone())
    }

    async fn append(
        &mut self,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
    ) -> Result<(), StorageError> {
        let mut inner = self.lock();
        if inner.fail_appends {
            return Err(StorageError::Io("injected append failure".into()));
        }
        if let Some(first) = entries.first() {
            let last = inner.state.last_index();
            let offset = inner.offset();
            if first.index == 0 || first.index > last + 1 || first.index <= offset {
                return Err(StorageError::OutOfOrder(format!(
                    "append at {} to a log holding {}..={}",
                    first.index,
                    offset + 1,
                    last
                )));
            }
            if entries.windows(2).any(|w| w[1].index != w[0].index + 1) {
                return Err(StorageError::OutOfOrder("entries not contiguous".into()));
            }
            inner.truncate_from(first.index);
            inner.state.entries.extend(entries);
        }
        if let Some(hs) = hard_state {
            inner.state.hard_state = hs;
        }
        inner.appends += 1;
        Ok(())
    }

    async fn entries(&mut self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError> {
        let inner = self.lock();
        let offset = inner.offset();
        if lo <= offset && lo <= hi {
            return Err(StorageError::Compacted { first: offset + 1 });
        }
        let held = &inner.state.entries;
        let start = (lo.saturating_sub(offset + 1) as usize).min(held.len());
        let end = (hi.saturating_sub(offset) as usize)
            .min(held.len())
            .max(start);
        Ok(held[start..end].to_vec())
    }

    async fn truncate(&mut self, from: LogIndex) -> Result<(), StorageError> {
        let mut inner = self.lock();
        if from <= inner.offset() {
            return Err(StorageError::OutOfOrder(format!(
                "truncate from {from} inside the snapshot"
            )));
        }
        inner.truncate_from(from);
        Ok(())
    }

    async fn save_membership(&mut self, membership: Membership) -> Result<(), StorageError> {
        self.lock().state.membership = membership;
        Ok(())
    }

    async fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        let mut inner = self.lock();
        if snapshot.meta.index > inner.state.last_index() {
            return Err(StorageError::OutOfOrder(format!(
                "snapshot at {} past the last entry {}",
                snapshot.meta.index,
                inner.state.last_index()
            )));
        }
        let current = inner.state.snapshot.as_ref().map_or(0, |s| s.meta.index);
        if snapshot.meta.index < current {
            // It would leave compacted entries uncovered.
            return Err(StorageError::OutOfOrder(format!(
                "snapshot at {} older than the stored one at {current}",
                snapshot.meta.index
            )));
        }
        inner.state.snapshot = Some(snapshot);
        Ok(())
    }

    async fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let Snapshot { meta, .. } = &snapshot;
        let current = inner.state.snapshot.as_ref().map_or(0, |s| s.meta.index);
        if meta.index <= current {
            // An older snapshot would throw away what the newer one covers.
            return Err(StorageError::OutOfOrder(format!(
                "install of a snapshot at {} over one at {current}",
                meta.index
            )));
        }
        let offset = inner.offset();
        let matching = meta.index > offset
            && inner
                .state
                .entries
                .get((meta.index - offset - 1) as usize)
                .is_some_and(|e| e.term == meta.term);
        if matching {
            let drop = (meta.index - offset) as usize;
            inner.state.entries.drain(..drop);
        } else {
            inner.state.entries.clear();
        }
        inner.state.membership = meta.membership.clone();
        if inner.state.hard_state.commit < meta.index {
            inner.state.hard_state.commit = meta.index;
        }
        inner.state.snapshot = Some(snapshot);
        Ok(())
    }

    /// As the default, counting what a durable store would flush: nothing
    /// here outlives the process, so a batch that need not sync differs
    /// from one that must only in the count.
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let synced = batch.must_sync;
        if let Some(snapshot) = batch.snapshot {
            if batch.snapshot_received {
                self.install_snapshot(snapshot).await?;
            } else {
                self.save_snapshot(snapshot).await?;
            }
        }
        if batch.hard_state.is_some() || !batch.entries.is_empty() {
            self.append(batch.hard_state, batch.entries).await?;
        }
        if let Some(upto) = batch.compact_to {
            self.compact(upto).await?;
        }
        let mut inner = self.lock();
        inner.writes += 1;
        inner.synced_writes += u64::from(synced);
        Ok(())
    }

    async fn compact(&mut self, upto: LogIndex) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let covered = inner.state.snapshot.as_ref().map_or(0, |s| s.meta.index);
        if upto > covered {
            return Err(StorageError::OutOfOrder(format!(
                "compact to {upto} past the snapshot at {covered}"
            )));
        }
        let offset = inner.offset();
        let drop = (upto.saturating_sub(offset) as usize).min(inner.state.entries.len());
        inner.state.entries.drain(..drop);
        Ok(())
    }
}
