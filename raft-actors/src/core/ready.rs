//! `Ready`, the core's output batch, and the order its parts must be
//! executed in.
//!
//! The order rule (Figure 2: "respond to RPCs only after updating stable
//! storage") is carried by the types: [`Ready::split`] hands out what to
//! persist and a [`PersistGate`]; the messages, committed entries and read
//! answers come only from [`PersistGate::persisted`], which the driver calls
//! once the persist is durable. A vote or an acknowledgement therefore
//! cannot leave before the state it promises is on disk.

use serde::{Deserialize, Serialize};

use super::{
    Body, Entry, HardState, LogIndex, Membership, Message, ProposeError, ReadError, RequestId,
    Snapshot, Term,
};

/// Everything the core asks of its driver, in one batch.
///
/// ```
/// use raft_actors::core::{Config, Membership, RaftCore, Recovered};
/// use rand::SeedableRng;
/// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
/// let boot = Recovered::bootstrap(Membership::voters([1]));
/// let mut core = RaftCore::new(1, Config::default(), boot, rng).unwrap();
/// core.campaign();
/// let (persist, gate) = core.ready().expect("a new term to persist").split();
/// assert_eq!(persist.hard_state.map(|h| h.term), Some(1)); // persist this first,
/// let after = gate.persisted();                         // then send and apply.
/// assert!(after.messages.is_empty()); // a single node has no one to tell
/// core.advance();
/// ```
#[derive(Debug, Default)]
#[must_use = "a Ready must be executed, then acknowledged with advance()"]
pub struct Ready {
    persist: ToPersist,
    after: AfterPersist,
    /// Whether the leader's replication messages may leave before the
    /// persist (see [`take_early`](Self::take_early)).
    early_ok: bool,
}

/// The part of a [`Ready`] to make durable first, in one write, in field
/// order: snapshot chunks, snapshot, hard state, entries, compaction.
///
/// [`must_sync`](Self::must_sync) says whether the write must be durable
/// before anything after it is released (etcd raft's `MustSync`): a batch
/// with a new term, vote, entries or a snapshot must; one that only moves
/// the commit index or compacts need not, and its messages, answers and
/// applies leave without waiting for it (see [`Pipeline`](super::Pipeline)).
#[derive(Debug, Clone)]
pub struct ToPersist {
    /// Chunks of a snapshot being received from the leader, in order, to
    /// write to the snapshot store's file being received (a chunk at
    /// offset 0 starts that file over). They need no sync of their own: a
    /// transfer cut by a crash starts over, and the snapshot they complete
    /// is synced with the batch that carries it in `snapshot`.
    pub snapshot_chunks: Vec<super::SnapshotChunk>,
    /// A snapshot to store, replacing the stored one: taken by this node
    /// ([`RaftCore::snapshot_taken`](super::RaftCore::snapshot_taken)) or
    /// received from the leader. If the stored log does not hold the entry
    /// at `meta.index` with `meta.term`, the whole stored log is discarded
    /// (it diverged); else entries up to `meta.index` may be kept.
    pub snapshot: Option<Snapshot>,
    /// Whether `snapshot` came from the leader (InstallSnapshot: its bytes
    /// are the chunks received, to be made durable under its name now;
    /// entries it covers go, and a diverged log goes entirely) rather than
    /// from this node's own state machine (its file is durable already;
    /// stored entries stay until `compact_to`).
    pub snapshot_received: bool,
    /// New term, vote or commit index, if any changed.
    pub hard_state: Option<HardState>,
    /// Entries to append. Stored entries from `entries[0].index` on are
    /// replaced by them (a follower repairing a conflict, §5.3).
    pub entries: Vec<Entry>,
    /// Stored entries up to this index may be deleted: a stored snapshot
    /// covers them.
    pub compact_to: Option<LogIndex>,
    /// Whether this write must be durable (flushed to disk) before the
    /// batch's messages and answers leave: set by the core when the batch
    /// carries a new term or vote, entries or a snapshot (Figure 2). When
    /// `false` a storage may make the write durable lazily, with a later
    /// one (never before an earlier one); a crash may then lose it, so a
    /// restart may see an older commit index (see
    /// [`Storage::write`](crate::storage::Storage::write)). A batch built
    /// by hand defaults to `true`.
    pub must_sync: bool,
    /// The first configuration of an empty store, to keep as the base the
    /// log builds on (what [`LogState::membership`](crate::storage::LogState::membership)
    /// loads). Set only when a node founds a cluster; the core never sets
    /// it (later configurations travel as log entries and snapshots).
    pub membership: Option<Membership>,
}

impl Default for ToPersist {
    /// Nothing to persist; `must_sync` is `true`, so a batch built with
    /// `..ToPersist::default()` is flushed unless it says otherwise.
    fn default() -> Self {
        ToPersist {
            snapshot_chunks: Vec::new(),
            snapshot: None,
            snapshot_received: false,
            hard_state: None,
            entries: Vec::new(),
            compact_to: None,
            must_sync: true,
            membership: None,
        }
    }
}

impl ToPersist {
    /// Whether there is nothing to write at all.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.snapshot_chunks.is_empty()
            && self.hard_state.is_none()
            && self.entries.is_empty()
            && self.compact_to.is_none()
    }
}

/// Proof that [`ToPersist`] was handed out; redeem it once that is durable.
#[derive(Debug)]
#[must_use = "redeem with persisted() once the ToPersist is durable"]
pub struct PersistGate {
    after: AfterPersist,
}

/// The part of a [`Ready`] to execute once its [`ToPersist`] is durable:
/// send, apply, answer.
#[derive(Debug, Default, Clone)]
pub struct AfterPersist {
    /// Messages to send, in any order (Raft tolerates reordering).
    pub messages: Vec<Message>,
    /// Committed entries to apply, in index order, each exactly once.
    pub committed: Vec<Entry>,
    /// Proposals that reached a leader's log, or were refused.
    pub proposals: Vec<ProposalOutcome>,
    /// Reads that have a safe index, or failed.
    pub reads: Vec<ReadOutcome>,
    /// A snapshot received from the leader: restore the state machine from
    /// it *before* applying `committed`, which continue after it.
    pub restore: Option<Snapshot>,
    /// The log grew past the snapshot threshold: take a snapshot of the
    /// state machine (after applying `committed`) and hand it to
    /// [`RaftCore::snapshot_taken`](super::RaftCore::snapshot_taken).
    pub snapshot_wanted: bool,
}

/// Where a proposal landed. It succeeds if the entry at `index` is later
/// applied with the same `term`; if a different term shows up there, the
/// proposal was lost in a leader change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalOutcome {
    /// The id the caller gave to `propose`.
    pub id: RequestId,
    /// Where it landed, or why it was refused (nothing was appended).
    pub result: Result<(LogIndex, Term), ProposeError>,
}

/// A read's answer: once this node has applied up to `index`, its state
/// machine reflects every write acknowledged before the read began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOutcome {
    /// The id the caller gave to `read_index` or `lease_read`.
    pub id: RequestId,
    /// The index to wait for, or why the read failed.
    pub result: Result<LogIndex, ReadError>,
}

impl Ready {
    pub(crate) fn new(persist: ToPersist, after: AfterPersist, early_ok: bool) -> Self {
        Ready {
            persist,
            after,
            early_ok,
        }
    }

    /// A leader's replication messages (appends, heartbeats, snapshot
    /// chunks) that may leave *before* its own write is durable, so the
    /// leader's fsync and the followers' overlap (thesis §10.2.1). Safe
    /// because they promise nothing about the leader's disk: its term and
    /// vote are durable already (they are only taken when this `Ready`
    /// changes neither), and the leader counts its own entries toward the
    /// commit index only at [`advance`](super::RaftCore::advance). A
    /// driver that never calls this gets them after the persist, with the
    /// rest, as before.
    ///
    /// ```
    /// use raft_actors::core::{Config, Membership, RaftCore, Recovered};
    /// use rand::SeedableRng;
    /// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    /// let boot = Recovered::bootstrap(Membership::voters([1]));
    /// let mut core = RaftCore::new(1, Config::default(), boot, rng).expect("core");
    /// let mut ready = core.ready().unwrap_or_default();
    /// let early = ready.take_early(); // send these now
    /// let (persist, gate) = ready.split(); // persist, then the rest
    /// # let _ = (early, persist, gate.persisted());
    /// ```
    pub fn take_early(&mut self) -> Vec<Message> {
        if !self.early_ok {
            return Vec::new();
        }
        let (early, gated) = std::mem::take(&mut self.after.messages)
            .into_iter()
            .partition(|m| {
                matches!(
                    m.body,
                    Body::Append { .. }
                        | Body::Heartbeat { .. }
                        | Body::Quiesce { .. }
                        | Body::InstallSnapshot { .. }
                )
            });
        self.after.messages = gated;
        early
    }

    /// What to persist, and the gate to the rest.
    pub fn split(self) -> (ToPersist, PersistGate) {
        (self.persist, PersistGate { after: self.after })
    }

    /// Whether the persist must be durable before the rest is released
    /// (see [`ToPersist::must_sync`]).
    pub fn must_sync(&self) -> bool {
        self.persist.must_sync
    }

    /// Whether there is nothing to do at all.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.after.restore.is_none()
            && !self.after.snapshot_wanted
            && self.after.messages.is_empty()
            && self.after.committed.is_empty()
            && self.after.proposals.is_empty()
            && self.after.reads.is_empty()
    }
}

impl PersistGate {
    /// Call once the [`ToPersist`] it came with is durable.
    pub fn persisted(self) -> AfterPersist {
        self.after
    }
}
