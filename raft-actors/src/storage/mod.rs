//! The log storage adapter: the trait every storage implements, what the
//! node may rely on from it, and its errors.
//!
//! A storage keeps what Raft requires on stable storage before a node
//! answers an RPC (Figure 2): the hard state and the log, plus the
//! configuration and the latest snapshot's metadata. It decides nothing:
//! it must never reorder, merge or drop what it is given, and must never
//! return from [`Storage::append`] before the data is durable (where the
//! adapter is durable at all).
//!
//! The in-memory adapter lives in [`memory`]; `storages/memory` re-exports it
//! (see `storages/README.md` for why it lives here).

pub mod memory;

use async_trait::async_trait;
use thiserror::Error;

use crate::core::{Entry, HardState, LogIndex, Membership, Recovered};
pub use crate::core::{Snapshot, SnapshotMeta, ToPersist};

pub use memory::MemoryStorage;

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

/// A node's log storage. The node calls it from one task at a time and
/// awaits each call before the next, so an adapter needs no locking of its
/// own against the node.
///
/// Every method's `Err` is fatal: the node stops, and its supervisor
/// restarts it from [`load`](Self::load).
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads back everything saved: hard state, entries, configuration,
    /// latest snapshot.
    ///
    /// To ensure correctness: returns exactly what earlier calls that
    /// returned `Ok` wrote, and nothing of a call that returned `Err`
    /// beyond a prefix of its entries.
    async fn load(&mut self) -> Result<LogState, StorageError>;

    /// Saves `hard_state` (if any) and appends `entries` in one write;
    /// stored entries from `entries[0].index` on are replaced first (a
    /// conflict, §5.3).
    ///
    /// To ensure correctness:
    /// - `Ok` means both are durable: the node may now vote or acknowledge
    ///   on them (Figure 2); only [`write`](Self::write) may skip a flush,
    ///   when its batch says it need not sync;
    /// - `entries` are contiguous and start at most one past the last
    ///   stored index; an adapter refuses a gap with
    ///   [`StorageError::OutOfOrder`].
    async fn append(
        &mut self,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
    ) -> Result<(), StorageError>;

    /// Entries `lo..=hi` that are stored, in order; fewer (a prefix) if the
    /// log ends before `hi`. [`StorageError::Compacted`] if `lo` was
    /// compacted away.
    async fn entries(&mut self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError>;

    /// Removes entries from `from` on (inclusive). Entries up to the commit
    /// index are never truncated by a correct node.
    async fn truncate(&mut self, from: LogIndex) -> Result<(), StorageError>;

    /// Saves the configuration now in force.
    async fn save_membership(&mut self, membership: Membership) -> Result<(), StorageError>;

    /// Saves a snapshot the node built of its own state machine. Stored
    /// entries are kept; [`compact`](Self::compact) drops them later.
    async fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError>;

    /// Installs a snapshot received from the leader (§7): saves it and its
    /// configuration, and discards every stored entry up to its index. If
    /// the entry at its index has its term, later entries are kept;
    /// otherwise the whole log is discarded, as the snapshot supersedes it.
    async fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError>;

    /// Discards entries up to `upto` (inclusive), which a saved snapshot
    /// must cover; [`StorageError::OutOfOrder`] otherwise. It may be made
    /// durable lazily (entries a snapshot covers are harmless if a crash
    /// brings them back), but never before an earlier call.
    async fn compact(&mut self, upto: LogIndex) -> Result<(), StorageError>;

    /// Makes everything one `Ready` asks to persist durable, in field
    /// order: the snapshot (installed if received, else saved), then hard
    /// state and entries, then compaction. The node calls this once per
    /// `Ready`, one batch at a time, in order; it is the group commit.
    ///
    /// To ensure correctness:
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
    ///
    /// A durable adapter should override this to make it one atomic write
    /// with at most one flush to disk (the default makes up to three calls,
    /// each durable on its own, which is correct but flushes up to three
    /// times, and never skips a flush).
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
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
        Ok(())
    }

    /// How many times this storage flushed to disk (fsync) since it was
    /// opened, if it counts them; `None` for one that does not (or is not
    /// durable). The node publishes it, so a service can show how many
    /// entries share one fsync.
    fn fsyncs(&self) -> Option<u64> {
        None
    }
}
