//! [`Activity`]: what a node measured and counted since the process
//! started (storage write, fsync and apply latencies, entries per write,
//! snapshots taken, sent and installed, elections and leaderships), part of
//! its published [`Metrics`](super::Metrics).
//!
//! Plain numbers for exporters to render; nothing in the node reads them
//! to decide anything, and recording them must never wait or fail.

use crate::core::Events;
use crate::histogram::Histogram;

/// Snapshots of one kind: how many, their bytes, how long each took.
///
/// ```
/// use raft_actors::node::SnapshotStats;
/// let s = SnapshotStats::default();
/// assert_eq!((s.count, s.bytes, s.seconds.count()), (0, 0, 0));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshots of this kind.
    pub count: u64,
    /// Their bytes (for sent ones: the chunks sent, resends included).
    pub bytes: u64,
    /// How long each took, in nanoseconds (see [`Activity`] for what is
    /// timed for each kind).
    pub seconds: Histogram,
}

/// What a node measured and counted since the process started, added up
/// over its incarnations (a restart from storage keeps counting).
///
/// ```
/// use raft_actors::node::Metrics;
/// let a = Metrics::starting(1).activity;
/// assert_eq!(a.storage_write.count(), 0);
/// assert_eq!(a.events.elections_won, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// Every storage write (one per `Ready` with something to persist),
    /// timed around the storage call: nanoseconds.
    pub storage_write: Histogram,
    /// The storage writes that synced: those that raised the storage's
    /// fsync count, or, for a storage that keeps none, those the core
    /// marked `must_sync`. Nanoseconds, the whole write included.
    pub fsync: Histogram,
    /// Log entries per storage write (the group commit's yield).
    pub entries_per_write: Histogram,
    /// Applying one batch of committed entries in the state machine,
    /// timed in the apply actor: nanoseconds.
    pub apply: Histogram,
    /// Snapshots of this node's state machine: timed from asking the
    /// apply actor to the snapshot handed to the core.
    pub snapshots_taken: SnapshotStats,
    /// Snapshots sent as leader and confirmed by the follower (count and
    /// bytes from the core's [`Events`]): timed from the first chunk to
    /// the confirmation, as the node saw the peer's progress.
    pub snapshots_sent: SnapshotStats,
    /// Snapshots received from a leader and stored: timed around the
    /// storage write that stored it.
    pub snapshots_installed: SnapshotStats,
    /// The core's counts: elections started and won, leaderships seen,
    /// snapshots sent.
    pub events: Events,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            storage_write: Histogram::latency(),
            fsync: Histogram::latency(),
            entries_per_write: Histogram::counts(),
            apply: Histogram::latency(),
            snapshots_taken: SnapshotStats::default(),
            snapshots_sent: SnapshotStats::default(),
            snapshots_installed: SnapshotStats::default(),
            events: Events::default(),
        }
    }
}
