//! Tunables of the core, in ticks and counts. Time is logical: the driver
//! decides how long a tick lasts.

use super::ConfigError;

/// The core's settings.
///
/// ```
/// use raft_actors::core::Config;
/// let cfg = Config { election_ticks: 20, ..Config::default() };
/// assert!(cfg.validate().is_ok());
/// assert!(Config { heartbeat_ticks: 0, ..cfg }.validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Base election timeout. A follower campaigns after a random timeout in
    /// `[election_ticks, 2 * election_ticks)` without hearing from a leader
    /// (§5.2); a leader checks its quorum every `election_ticks`.
    pub election_ticks: u64,
    /// Interval between heartbeats. Must be well below `election_ticks`.
    pub heartbeat_ticks: u64,
    /// Lease reads are served for less than `election_ticks -
    /// lease_margin_ticks` after the send time of a heartbeat round a
    /// quorum acknowledged, measured on the leader by the driver's
    /// monotonic clock ([`RaftCore::observe_clock`](super::RaftCore::observe_clock);
    /// ticks without one), so a leader frozen past its lease serves no
    /// lease read until a new round confirms it still leads.
    ///
    /// What backs the lease: a follower that acknowledged the round refuses
    /// votes, and does not campaign, until `election_ticks` whole ticks of
    /// its own clock have passed since it got the round, which is more
    /// than `election_ticks - 1` ticks of its time (readings are rounded
    /// down). The lease therefore holds while every follower's clock runs
    /// faster than the leader's by at most the ratio
    /// `(election_ticks - 1) / (election_ticks - lease_margin_ticks)`:
    /// 12.5% with the defaults (10 and 2), 50% with a margin of 4. Message
    /// delays do not count against it: the lease starts when the round was
    /// sent, not when it was acknowledged. Must be in `1..election_ticks`.
    pub lease_margin_ticks: u64,
    /// Messages in flight (sent, not acknowledged) per follower in the
    /// replicate state: the pipeline depth of AppendEntries.
    pub max_inflight: usize,
    /// At most this many entries per AppendEntries.
    pub max_entries_per_message: usize,
    /// At most this many payload bytes per AppendEntries (one entry always
    /// fits, however large).
    pub max_bytes_per_message: usize,
    /// Pre-vote (thesis §9.6): a node checks it could win before raising its
    /// term.
    pub pre_vote: bool,
    /// Check-quorum: a leader checks every election timeout that it heard
    /// from a quorum since the previous check, and steps down if not (so a
    /// leader cut off leads at most two election timeouts); followers that
    /// heard from a leader within the timeout refuse to vote (thesis §6.2,
    /// §9.6). Lease reads need it.
    pub check_quorum: bool,
    /// Ask the driver for a snapshot once this many entries were applied
    /// since the last one (hashicorp raft's `SnapshotThreshold`); 0 never
    /// asks.
    pub snapshot_threshold: u64,
    /// Entries kept before a snapshot's index when compacting, so a follower
    /// that lags a little gets entries rather than a snapshot (hashicorp
    /// raft's `TrailingLogs`).
    pub trailing_logs: u64,
    /// Payload bytes of applied, durable entries the core keeps in memory,
    /// newest first, for followers that lag a little; older payloads are
    /// dropped, and the driver reads them back from storage when a
    /// follower needs them ([`Payload::Unread`](super::Payload::Unread),
    /// [`Message::entries_to_read`](super::Message::entries_to_read)). So
    /// the log costs this much memory plus what is not applied or not
    /// durable yet, however far apart snapshots are. `None` (the default)
    /// keeps every payload, for a driver that reads nothing back;
    /// [`RaftNode`](crate::node::RaftNode) makes it 16 MiB when its
    /// storage has a log reader and this is `None`.
    pub log_cache_bytes: Option<u64>,
    /// Bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Largest snapshot a follower accepts, in bytes. Snapshots are
    /// streamed to a file, never held whole in memory, so this guards the
    /// receiver's disk against a peer that claims an absurd size, not its
    /// memory; the default (1 TiB) accepts any state one machine can hold.
    pub max_snapshot_bytes: u64,
    /// Leave a joint configuration as soon as it is committed; when off, the
    /// caller proposes `ConfChange::LeaveJoint` itself.
    pub auto_leave_joint: bool,
    /// A learner is promoted to voter only within this many entries of the
    /// leader's last index.
    pub max_promotion_lag: u64,
    /// At most this many `Ready` batches handed out and not acknowledged
    /// ([`RaftCore::ready`](super::RaftCore::ready)): how many persists a
    /// driver may have in flight at once (etcd raft's async storage
    /// writes). Must be at least 1. The default, 1, persists one batch at
    /// a time (a batch that need not sync still waits for no write): on one
    /// shared disk with a single-writer store (redb), deeper pipelines made
    /// smaller batches, more follower fsyncs and lower throughput, so raise
    /// it only where the storage overlaps writes.
    pub max_persists_in_flight: usize,
    /// Quiesce an idle group (dragonboat's quiesce): once its leader had
    /// nothing to do for this many ticks (every member holds every entry
    /// and the commit index, nothing waits), it and its followers stop
    /// their timers until a message, a proposal or a read wakes them
    /// ([`RaftCore::is_quiesced`](super::RaftCore::is_quiesced); the
    /// `quiesce` module says why leases and check-quorum stay safe).
    /// `None` (the default) never quiesces. Must be at least 1.
    pub quiesce_after_ticks: Option<u64>,
    /// Broken-rule switch for the simulation's own tests (feature
    /// `broken-rules`); never set outside them.
    #[cfg(feature = "broken-rules")]
    pub broken: Option<BrokenRule>,
}

/// One Raft rule the core can be told to break, to prove the simulation
/// catches the violation. Test builds only.
#[cfg(feature = "broken-rules")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenRule {
    /// Commit an entry of an earlier term by counting its replicas (§5.4.2).
    CommitByCountingOldTerm,
    /// Grant votes without the log up-to-date check (§5.4.1).
    VoteWithoutUpToDateCheck,
    /// Answer a ReadIndex at once, without the heartbeat round (§8).
    ReadIndexWithoutHeartbeat,
    /// Change several voters in one step, without the joint phase (§6).
    NoJointPhase,
    /// Accept a membership change while the previous one is uncommitted.
    AcceptConcurrentChanges,
    /// Count learners toward quorums.
    CountLearnerInQuorum,
    /// Take every forwarded proposal as new, from any term: a duplicated or
    /// replayed forward is appended twice.
    ForwardWithoutDedup,
    /// Dedup forwarded proposals within the leader's term only, and take a
    /// forward of an older term as new: a copy replayed after the leader
    /// was re-elected is appended again.
    ForwardFromOlderTerm,
    /// A leader counts its own entries toward the commit index before they
    /// are durable (Figure 2: a server's vote for an entry is its disk).
    CountOwnUndurableEntries,
    /// Serve lease reads for as long as check-quorum keeps the node leader
    /// (etcd's `ReadOnlyLeaseBased`): that can be two election timeouts
    /// after a quorum last answered, long after its followers may vote.
    LeaseBeyondSafeBound,
    /// Renew the lease from the time the quorum's acknowledgement arrived
    /// rather than the time its heartbeat round was sent (hashicorp/raft
    /// #108): the followers' refusal to vote started earlier.
    LeaseRenewedAtAck,
    /// Measure leases in ticks, which stop while the node is stalled,
    /// rather than by the driver's monotonic clock.
    LeaseOnTicks,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            election_ticks: 10,
            heartbeat_ticks: 1,
            lease_margin_ticks: 2,
            max_inflight: 64,
            max_entries_per_message: 256,
            max_bytes_per_message: 1 << 20,
            pre_vote: true,
            check_quorum: true,
            snapshot_threshold: 10_000,
            trailing_logs: 1_000,
            log_cache_bytes: None,
            snapshot_chunk_bytes: 1 << 20,
            max_snapshot_bytes: 1 << 40,
            auto_leave_joint: true,
            max_promotion_lag: 1_000,
            max_persists_in_flight: 1,
            quiesce_after_ticks: None,
            #[cfg(feature = "broken-rules")]
            broken: None,
        }
    }
}

impl Config {
    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_ticks == 0 {
            return Err(ConfigError::Invalid("heartbeat_ticks must be at least 1"));
        }
        if self.election_ticks > 1 << 32 {
            return Err(ConfigError::Invalid("election_ticks must be at most 2^32"));
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::Invalid(
                "election_ticks must be greater than heartbeat_ticks",
            ));
        }
        if self.lease_margin_ticks == 0 || self.lease_margin_ticks >= self.election_ticks {
            return Err(ConfigError::Invalid(
                "lease_margin_ticks must be in 1..election_ticks",
            ));
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err(ConfigError::Invalid(
                "snapshot_chunk_bytes must be at least 1",
            ));
        }
        if self.max_persists_in_flight == 0 {
            return Err(ConfigError::Invalid(
                "max_persists_in_flight must be at least 1",
            ));
        }
        if self.quiesce_after_ticks == Some(0) {
            return Err(ConfigError::Invalid(
                "quiesce_after_ticks must be at least 1",
            ));
        }
        if self.max_inflight == 0 || self.max_entries_per_message == 0 {
            return Err(ConfigError::Invalid(
                "max_inflight and max_entries_per_message must be at least 1",
            ));
        }
        Ok(())
    }

    #[cfg(feature = "broken-rules")]
    pub(crate) fn breaks(&self, rule: BrokenRule) -> bool {
        self.broken == Some(rule)
    }

    #[cfg(not(feature = "broken-rules"))]
    #[inline(always)]
    pub(crate) fn breaks(&self, _rule: BrokenRule) -> bool {
        false
    }
}

/// Without the `broken-rules` feature no rule can be broken: this type has
/// no values a config could hold.
#[cfg(not(feature = "broken-rules"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BrokenRule {
    CommitByCountingOldTerm,
    VoteWithoutUpToDateCheck,
    ReadIndexWithoutHeartbeat,
    NoJointPhase,
    AcceptConcurrentChanges,
    CountLearnerInQuorum,
    ForwardWithoutDedup,
    ForwardFromOlderTerm,
    CountOwnUndurableEntries,
    LeaseBeyondSafeBound,
    LeaseRenewedAtAck,
    LeaseOnTicks,
}
