//! [`StorageExt`]: the calls tests make on a storage beyond the node's own
//! two (appending by hand, saving or installing a snapshot, compacting,
//! reading a range), each built on [`Storage::write`] and
//! [`Storage::load`], so an adapter never writes them.
//!
//! For tests and tools only: it must never be what a node calls (a node
//! writes whole `Ready` batches).

use std::io::{Read, Write};

use async_trait::async_trait;
use bytes::Bytes;

use crate::core::{Entry, HardState, LogIndex, SnapshotChunk};
use crate::storage::{Snapshot, SnapshotMeta, Storage, StorageError, ToPersist};

/// Test helpers on every [`Storage`].
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), raft_actors::storage::StorageError> {
/// use raft_actors::core::{Entry, HardState, Membership, Payload};
/// use raft_actors::storage::MemoryStorage;
/// use raft_actors::testing::StorageExt;
/// let mut s = MemoryStorage::new(Membership::voters([1]));
/// let e = |index| Entry { index, term: 1, payload: Payload::Noop };
/// s.append(Some(HardState { term: 1, vote: None, commit: 0 }), vec![e(1), e(2)]).await?;
/// assert_eq!(s.entries(2, 9).await?, vec![e(2)]);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait StorageExt: Storage {
    /// Saves `hard_state` (if any) and appends `entries` in one synced
    /// write; stored entries from `entries[0].index` on are replaced.
    async fn append(
        &mut self,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
    ) -> Result<(), StorageError> {
        self.write(ToPersist {
            hard_state,
            entries,
            ..ToPersist::default()
        })
        .await
    }

    /// Records a snapshot this node took, whose bytes its store holds
    /// already ([`write_snapshot`](Self::write_snapshot)): stored entries
    /// stay.
    async fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        self.write(ToPersist {
            snapshot: Some(snapshot),
            ..ToPersist::default()
        })
        .await
    }

    /// Writes `data` into the store as this node's snapshot at
    /// `meta.index`, as a state machine's sink does, without recording it.
    fn write_snapshot(&self, meta: SnapshotMeta, data: &[u8]) -> Result<Snapshot, StorageError> {
        let store = self.snapshots();
        let mut sink = store.create()?;
        sink.write_all(data)
            .map_err(|e| StorageError::Io(e.to_string()))?;
        let (size, checksum) = sink.finish(meta.index)?;
        Ok(Snapshot {
            meta,
            size,
            checksum,
        })
    }

    /// Takes a snapshot of `data` here: writes it, then records it.
    async fn take_snapshot(
        &mut self,
        meta: SnapshotMeta,
        data: &[u8],
    ) -> Result<Snapshot, StorageError> {
        let snapshot = self.write_snapshot(meta, data)?;
        self.save_snapshot(snapshot.clone()).await?;
        Ok(snapshot)
    }

    /// Installs a snapshot of `data` received from the leader (§7), in
    /// chunks of `chunk` bytes, each its own batch, the last one with the
    /// snapshot.
    async fn install_snapshot(
        &mut self,
        meta: SnapshotMeta,
        data: &[u8],
        chunk: usize,
    ) -> Result<Snapshot, StorageError> {
        let snapshot = Snapshot::of(meta, data);
        let data = Bytes::copy_from_slice(data);
        let mut chunks: Vec<SnapshotChunk> = (0..data.len())
            .step_by(chunk.max(1))
            .map(|at| SnapshotChunk {
                snapshot: snapshot.clone(),
                offset: at as u64,
                data: data.slice(at..(at + chunk.max(1)).min(data.len())),
            })
            .collect();
        let last = chunks.pop();
        for c in chunks {
            self.write(ToPersist {
                snapshot_chunks: vec![c],
                must_sync: false,
                ..ToPersist::default()
            })
            .await?;
        }
        self.write(ToPersist {
            snapshot_chunks: last.into_iter().collect(),
            snapshot: Some(snapshot.clone()),
            snapshot_received: true,
            ..ToPersist::default()
        })
        .await?;
        Ok(snapshot)
    }

    /// The bytes of a stored snapshot, read whole from the store.
    fn snapshot_bytes(&self, snapshot: &Snapshot) -> Result<Vec<u8>, StorageError> {
        let mut out = Vec::new();
        self.snapshots()
            .open(snapshot)?
            .read_to_end(&mut out)
            .map_err(|e| StorageError::Io(e.to_string()))?;
        Ok(out)
    }

    /// Discards entries up to `upto`, which the stored snapshot must cover;
    /// a lazy write, as the node's compactions are.
    async fn compact(&mut self, upto: LogIndex) -> Result<(), StorageError> {
        self.write(ToPersist {
            compact_to: Some(upto),
            must_sync: false,
            ..ToPersist::default()
        })
        .await
    }

    /// Entries `lo..=hi` that are stored, in order; a prefix if the log
    /// ends before `hi`; [`StorageError::Compacted`] if `lo` was compacted
    /// away.
    async fn entries(&mut self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError> {
        let state = self.load().await?;
        let first = match (state.entries.first(), &state.snapshot) {
            (Some(e), _) => e.index,
            (None, Some(s)) => s.meta.index + 1,
            (None, None) => 1,
        };
        if lo < first && lo <= hi {
            return Err(StorageError::Compacted { first });
        }
        Ok(state
            .entries
            .into_iter()
            .filter(|e| (lo..=hi).contains(&e.index))
            .collect())
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}
