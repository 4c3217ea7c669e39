//! [`Metrics`]: what a node publishes about itself after every batch, to
//! subscribers of a watch channel.

use std::collections::BTreeMap;

use super::activity::Activity;
use crate::core::{LogIndex, Membership, NodeId, Role, Status, Term};

/// A node's state as last published.
///
/// ```
/// use raft_actors::node::Metrics;
/// let m = Metrics::starting(1);
/// assert_eq!((m.id, m.leader, m.applied), (1, None, 0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// The node's id.
    pub id: NodeId,
    /// Its role (a stopped node reports the role it had).
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it follows, if known.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit: LogIndex,
    /// Highest index handed to the state machine.
    pub applied: LogIndex,
    /// Index of its last log entry.
    pub last_index: LogIndex,
    /// The leader's commit index as last heard (see
    /// [`Status::leader_commit`]).
    pub leader_commit: LogIndex,
    /// The configuration in force (the newest one in its log, committed
    /// or not, as Raft prescribes, §6).
    pub membership: Membership,
    /// Leader only: each follower's match index.
    pub matched: BTreeMap<NodeId, LogIndex>,
    /// Why the node is down, if it is.
    pub down: Option<String>,
    /// Set when the node refused to start because its data dir lost a
    /// membership it held (see [`Founding`](crate::core::Founding)): the
    /// line to tell the operator. The process should exit.
    pub lost_data: Option<String>,
    /// Set when the node failed for good: its storage refused it (a write
    /// or fsync that failed leaves a store that only a reopen may trust, as
    /// redb's does) or it spent its restart budget. The reason; the
    /// process should exit so that a restart reopens the storage and
    /// recovers from what is durable, never carry on from a failed fsync.
    pub failed: Option<String>,
    /// Its store is empty and it is asking its voters before founding a
    /// cluster (or joining one) with them.
    pub founding: bool,
    /// How many times the node was (re)built from storage.
    pub incarnation: u64,
    /// Storage writes completed since the process started: one per `Ready`
    /// that had something to persist, so one fsync each on a durable
    /// storage.
    pub storage_writes: u64,
    /// Log entries those writes carried. `entries_persisted /
    /// storage_writes` is how many entries share one fsync
    /// ([`entries_per_write`](Self::entries_per_write)).
    pub entries_persisted: u64,
    /// The storage's count of fsyncs since it was opened, if it keeps one
    /// ([`Storage::stats`](crate::storage::Storage::stats)): a durable
    /// storage may skip the fsync of a write that only moves the commit
    /// index, so this can be below `storage_writes`.
    pub fsyncs: Option<u64>,
    /// Storage writes handed out and not yet durable: the persists in
    /// flight, at most the core's `max_persists_in_flight`.
    pub writes_in_flight: u64,
    /// The most writes that were in flight at once since the process
    /// started: above 1, persists were pipelined.
    pub writes_in_flight_max: u64,
    /// Committed entries handed to the state machine and not yet applied:
    /// how far its thread is behind the node's. Past
    /// [`NodeConfig::max_apply_lag`](crate::node::NodeConfig::max_apply_lag)
    /// the node refuses new requests.
    pub apply_lag: u64,
    /// Requests refused with [`ClientError::Busy`](crate::ClientError::Busy)
    /// because the state machine was that far behind (backpressure),
    /// since the process started.
    pub apply_refused: u64,
    /// Log entries read back from storage, since the process started, to
    /// send to followers: entries whose payloads the core dropped from
    /// memory ([`Config::log_cache_bytes`](crate::core::Config::log_cache_bytes)).
    pub entries_read_back: u64,
    /// Its group is idle and its timers are stopped: no tick fires until a
    /// message or a request wakes it
    /// ([`Config::quiesce_after_ticks`](crate::core::Config::quiesce_after_ticks)).
    pub quiesced: bool,
    /// Latencies, snapshots, elections and leaderships since the process
    /// started.
    pub activity: Activity,
}

impl Metrics {
    /// The metrics of a node that has not loaded its storage yet.
    pub fn starting(id: NodeId) -> Self {
        Metrics {
            id,
            role: Role::Follower,
            term: 0,
            leader: None,
            commit: 0,
            applied: 0,
            last_index: 0,
            leader_commit: 0,
            membership: Membership::default(),
            matched: BTreeMap::new(),
            down: None,
            lost_data: None,
            failed: None,
            founding: false,
            incarnation: 0,
            storage_writes: 0,
            entries_persisted: 0,
            fsyncs: None,
            writes_in_flight: 0,
            writes_in_flight_max: 0,
            apply_lag: 0,
            apply_refused: 0,
            entries_read_back: 0,
            quiesced: false,
            activity: Activity::default(),
        }
    }

    /// Entries per fsync, if the storage counts its fsyncs (0 before the
    /// first).
    ///
    /// ```
    /// use raft_actors::node::Metrics;
    /// let m = Metrics { fsyncs: Some(4), entries_persisted: 100, ..Metrics::starting(1) };
    /// assert_eq!(m.entries_per_fsync(), Some(25.0));
    /// assert_eq!(Metrics::starting(1).entries_per_fsync(), None);
    /// ```
    pub fn entries_per_fsync(&self) -> Option<f64> {
        self.fsyncs.map(|f| {
            if f == 0 {
                0.0
            } else {
                self.entries_persisted as f64 / f as f64
            }
        })
    }

    /// Entries per storage write (per fsync on a durable storage): the
    /// group commit's yield; 0 before the first write.
    ///
    /// ```
    /// use raft_actors::node::Metrics;
    /// let m = Metrics { storage_writes: 4, entries_persisted: 100, ..Metrics::starting(1) };
    /// assert_eq!(m.entries_per_write(), 25.0);
    /// ```
    pub fn entries_per_write(&self) -> f64 {
        if self.storage_writes == 0 {
            0.0
        } else {
            self.entries_persisted as f64 / self.storage_writes as f64
        }
    }

    /// Copies the core's view in; `applied` is what the node handed on.
    pub(crate) fn update(&mut self, status: &Status, applied: LogIndex) {
        self.role = status.role;
        self.term = status.term;
        self.leader = status.leader;
        self.commit = status.commit;
        self.applied = applied;
        self.last_index = status.last_index;
        self.leader_commit = status.leader_commit;
        self.membership.clone_from(&status.membership);
        self.matched = status
            .peers
            .iter()
            .map(|(id, p)| (*id, p.match_index))
            .collect();
    }
}
