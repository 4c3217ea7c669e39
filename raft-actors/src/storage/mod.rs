//! The log storage adapter: the trait every storage implements, what the
//! node may rely on from it, and its errors.
//!
//! A storage keeps what Raft requires on stable storage before a node
//! answers an RPC (Figure 2): the hard state and the log, plus the
//! configuration and the latest snapshot's metadata. It decides nothing:
//! it must never reorder, merge or drop what it is given, and must never
//! return from [`Storage::write`] of a batch that must sync before the
//! data is durable (where the adapter is durable at all).
//!
//! The in-memory adapter lives in [`memory`]; `storages/memory` re-exports it
//! (see `storages/README.md` for why it lives here).

pub mod memory;
pub mod snapshots;
mod validate;

use async_trait::async_trait;
use thiserror::Error;

use crate::core::{Entry, HardState, LogIndex, Membership, Recovered};
pub use crate::core::{Snapshot, SnapshotMeta, ToPersist};

pub use memory::MemoryStorage;
pub use snapshots::{
    open_verified, write_snapshot_part, MemorySnapshots, SharedSnapshots, SnapshotSink,
    SnapshotStore, KEEP_SNAPSHOTS,
};

/// Everything a node reloads at start and after a restart.
///
/// ```
/// use raft_actors::core::Membership;
/// use raft_actors::storage::LogState;
/// let state = LogState { membership: Membership::voters([1]), ..Default::default() };
/// assert_eq!(state.last_index(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct LogState {
    /// The last hard state saved.
    pub hard_state: HardState,
    /// Every stored entry, contiguous, in index order (after the snapshot,
    /// if the log was compacted).
    pub entries: Vec<Entry>,
    /// The configuration in force.
    pub membership: Membership,
    /// The latest snapshot saved, if any.
    pub snapshot: Option<Snapshot>,
}

impl LogState {
    /// Index of the last entry held (or covered by the snapshot).
    pub fn last_index(&self) -> LogIndex {
        match (self.entries.last(), &self.snapshot) {
            (Some(e), _) => e.index,
            (None, Some(s)) => s.meta.index,
            (None, None) => 0,
        }
    }

    /// What the core needs to rebuild itself.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            entries: self.entries.clone(),
            membership: self.membership.clone(),
            snapshot: self.snapshot.clone(),
        }
    }
}

/// Why a storage call failed. Every error is fatal to the node that got
/// it: going on after a failed write risks acknowledging what is not on
/// disk, so the node stops and reloads from what is.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StorageError {
    /// The device or file failed.
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// A stored record cannot be read back.
    #[error("storage corrupt at index {index}: {reason}")]
    Corrupt {
        /// The index of the bad record (0 for hard state or metadata).
        index: LogIndex,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller broke the contract (a gap, compacting past the snapshot).
    #[error("storage call out of order: {0}")]
    OutOfOrder(String),
    /// Entries below `first` were compacted into the snapshot.
    #[error("entries before {first} were compacted")]
    Compacted {
        /// First index still held as an entry.
        first: LogIndex,
    },
}

/// Reads back entries a [`Storage`] holds, beside its writes: the node
/// calls it, on its own thread, for entries applied and durable that a
/// follower still needs. It must answer from what is stored without
/// waiting for a write in progress.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), raft_actors::storage::StorageError> {
/// use raft_actors::core::{Entry, HardState, Membership, Payload};
/// use raft_actors::storage::{MemoryStorage, Storage};
/// use raft_actors::testing::StorageExt;
/// let mut s = MemoryStorage::new(Membership::voters([1]));
/// let e = |index| Entry { index, term: 1, payload: Payload::Noop };
/// s.append(Some(HardState { term: 1, vote: None, commit: 0 }), vec![e(1), e(2), e(3)]).await?;
/// let reader = s.log_reader().expect("memory storage reads back");
/// assert_eq!(reader.read(2, 3)?, vec![e(2), e(3)]);
/// # Ok(()) }
/// ```
pub trait LogReader: Send + Sync {
    /// Entries `first..=last`, all of them: fewer is an error
    /// ([`StorageError::Compacted`] for those compacted away).
    fn read(&self, first: LogIndex, last: LogIndex) -> Result<Vec<Entry>, StorageError>;
}

/// A [`LogReader`] shared between a storage and its node.
pub type SharedLogReader = std::sync::Arc<dyn LogReader>;

/// What a storage counts about itself, for the node's metrics.
///
/// ```
/// use raft_actors::storage::StorageStats;
/// assert_eq!(StorageStats::default().fsyncs, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// How many times it flushed to disk (fsync) since it was opened;
    /// `None` for a storage that does not count them (or is not durable).
    /// The node publishes it, so a service can show how many entries share
    /// one fsync.
    pub fsyncs: Option<u64>,
}

/// A node's log storage: what the node calls, and nothing more. The node
/// calls it from one task at a time and awaits each call before the next,
/// so an adapter needs no locking of its own against the node.
///
/// Every `Err` is fatal: the node stops, and its supervisor restarts it
/// from [`load`](Self::load). The node checks what a load returns
/// ([`LogState::validate`]) before it trusts it, so an adapter checks its
/// own records (checksums, encodings) but need not check the log's shape.
///
/// One storage holds one Raft group's log. A store shared by many groups
/// (multi-raft) hands each group a handle implementing this trait, and may
/// merge the batches of several groups into one transaction and one flush.
///
/// What the conformance suite needs beyond these calls (reading a range,
/// appending by hand) is `testing::StorageExt` (feature `testing`) of the
/// test kit, built on them: an adapter writes only these three.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads back everything saved: hard state, entries, configuration,
    /// latest snapshot.
    ///
    /// To ensure correctness: returns exactly what earlier writes that
    /// returned `Ok` wrote (minus, after a crash, lazy writes after the
    /// last synced one; see [`write`](Self::write)), and nothing of a write
    /// that returned `Err` beyond a prefix of its entries. A record it
    /// cannot read back is [`StorageError::Corrupt`], never a shorter log.
    async fn load(&mut self) -> Result<LogState, StorageError>;

    /// Makes everything one `Ready` asks to persist durable, in field
    /// order: the snapshot chunks received and the snapshot (the half
    /// [`write_snapshot_part`] does with this storage's
    /// [`snapshots`](Self::snapshots)), then hard state and entries, then
    /// compaction; after a snapshot is recorded, the store keeps only the
    /// latest ones ([`SnapshotStore::retain`]).
    /// The node calls this once per `Ready`, one batch at a time, in
    /// order; it is the group commit. A durable adapter makes it one atomic
    /// write with at most one flush to disk.
    ///
    /// To ensure correctness:
    /// - the snapshot, if any: one this node took (`snapshot_received`
    ///   false) replaces the stored one and keeps the entries; one received
    ///   from the leader (§7) also takes its configuration and discards
    ///   every stored entry up to its index, and if the entry at its index
    ///   does not have its term, the whole log (it diverged);
    /// - entries are contiguous and start at most one past the last stored
    ///   index (after the snapshot step); stored entries from
    ///   `entries[0].index` on are replaced first (a conflict, §5.3). A gap
    ///   is refused with [`StorageError::OutOfOrder`];
    /// - `compact_to` discards entries up to it, which the stored snapshot
    ///   must cover ([`StorageError::OutOfOrder`] otherwise); entries a
    ///   snapshot covers are harmless if a crash brings them back;
    /// - a refused batch changes nothing;
    /// - when `batch.must_sync` (the core sets it for a new term or vote,
    ///   entries or a snapshot), `Ok` means all of it is durable: the node
    ///   then sends the votes and acknowledgements that rest on it
    ///   (Figure 2);
    /// - when it is `false` (the batch only moves the commit index, or
    ///   compacts), the adapter may skip the flush: the node releases the
    ///   batch's messages and answers without waiting for this call. The
    ///   write must still be visible to later reads at once, and must never
    ///   become durable before an earlier batch, nor after a later synced
    ///   one (a synced write makes every write before it durable);
    /// - so what a restart may see after a crash: every synced batch, and a
    ///   prefix of the lazy ones after the last of them. Its commit index
    ///   may therefore be *behind* the last one written (never ahead, and
    ///   never with a term, vote or entry lost): the core restarts from it,
    ///   applies again from its snapshot, and relearns the commit index
    ///   from the leader (§5.3: the commit index is volatile state).
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError>;

    /// Where this storage keeps the bytes of the snapshots it records
    /// (files beside the log, or memory). The node streams snapshots into
    /// it and reads chunks and restores from it.
    fn snapshots(&self) -> SharedSnapshots;

    /// A reader of the entries this storage holds, for the payloads the
    /// core dropped from memory ([`Config::log_cache_bytes`](crate::core::Config::log_cache_bytes)).
    /// `None` (the default) keeps every payload of the retained log in
    /// memory instead.
    fn log_reader(&self) -> Option<SharedLogReader> {
        None
    }

    /// What the storage counts about itself (fsyncs), for the metrics.
    fn stats(&self) -> StorageStats {
        StorageStats::default()
    }
}
