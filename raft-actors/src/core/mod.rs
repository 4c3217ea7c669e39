//! The Raft algorithm as a pure, deterministic state machine.
//!
//! No I/O, no clock, no threads, no global randomness: time enters as
//! [`RaftCore::tick`], peers as [`RaftCore::step`], clients as
//! [`RaftCore::propose`] and [`RaftCore::read_index`]; randomness comes from
//! the seeded RNG given to [`RaftCore::new`]. The core answers with a
//! [`Ready`] batch that the driver executes in order (persist, then send and
//! apply), then acknowledges with [`RaftCore::advance`]; several batches
//! may be in flight at once ([`Config::max_persists_in_flight`], released
//! in order by a [`Pipeline`]). One seed therefore
//! replays a whole cluster exactly, which is what the simulation relies on.
//!
//! Everything Raft's safety depends on lives in this module and nowhere
//! else. It must never panic on a peer's message: bad input is counted in
//! [`Counters`] and ignored or answered.
//!
//! ```
//! use raft_actors::core::{Config, Membership, RaftCore, Recovered};
//! use rand::SeedableRng;
//! let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let mut core = RaftCore::new(1, Config::default(), Recovered::bootstrap(Membership::voters([1])), rng)?;
//! while !core.status().role.is_leader() { core.tick(); }
//! core.propose(7, "hello".into())?;
//! let mut applied = Vec::new();
//! while let Some(rd) = core.ready() {
//!     let (_persist, gate) = rd.split();   // 1. make _persist durable
//!     let after = gate.persisted();         // 2. then send and apply
//!     applied.extend(after.committed);
//!     core.advance();
//! }
//! assert_eq!(applied.len(), 2); // the leader's no-op, then "hello"
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batching;
mod conf_change;
mod config;
mod election;
mod entry;
mod error;
mod forwarded;
mod forwarding;
mod founding;
mod hard_state;
mod lease;
mod log;
mod log_cache;
mod membership;
mod message;
mod pipeline;
mod progress;
mod quiesce;
mod read_index;
mod reads_sent;
mod ready;
mod recovered;
mod replication;
mod snapshot;
mod status;
mod ticks;
mod transfer;

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub use conf_change::{ConfChange, ConfChangeError, ConfChangeProgress};
#[cfg(feature = "broken-rules")]
pub use config::BrokenRule;
#[cfg(not(feature = "broken-rules"))]
use config::BrokenRule;
pub use config::Config;
pub use entry::{Entry, GroupId, LogIndex, NodeId, Payload, RequestId, Term, DEFAULT_GROUP};
pub use error::{ConfigError, ProposeError, ReadError, TransferError};
pub use founding::{Founding, FoundingMsg, FoundingStep};
pub use hard_state::HardState;
pub use log_cache::{EntriesToRead, FillError};
pub use membership::{Membership, VoteResult};
pub use message::{Body, Conflict, Message};
pub use pipeline::Pipeline;
pub use progress::ProgressState;
pub use ready::{AfterPersist, PersistGate, ProposalOutcome, ReadOutcome, Ready, ToPersist};
pub use recovered::Recovered;
pub use snapshot::{
    checksum, ChunkRead, Snapshot, SnapshotChunk, SnapshotError, SnapshotMeta, UnreadableSnapshot,
};
pub use status::{Counters, Events, PeerStatus, Role, Status};

use conf_change::ConfigHistory;
use forwarded::Forwarded;
use log::RaftLog;
use progress::Progress;
use read_index::ReadQueue;
use transfer::Transfer;

/// The highest term a message may carry; see [`RaftCore::step`].
pub const MAX_TERM: Term = u64::MAX / 2;

/// One Raft node's algorithm state. See the [module docs](self).
#[derive(Debug)]
pub struct RaftCore {
    id: NodeId,
    cfg: Config,
    rng: ChaCha8Rng,

    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// Configurations in the log; the newest is in force.
    configs: ConfigHistory,
    /// The configuration in force (cached from `configs`).
    membership: Membership,

    /// Leader only: every other member's progress.
    progress: BTreeMap<NodeId, Progress>,
    /// Candidate and pre-candidate: answers so far.
    votes: BTreeMap<NodeId, bool>,

    /// Ticks since start: the core's logical clock.
    now: u64,
    /// The latest reading of the driver's monotonic clock, in ticks since
    /// this core was built (see [`RaftCore::observe_clock`]), once the
    /// driver gave one. Leases are measured against it: ticks stop while
    /// the process is frozen and burst when it resumes, a monotonic clock
    /// does neither.
    clock: Option<u64>,
    election_elapsed: u64,
    heartbeat_elapsed: u64,
    randomized_timeout: u64,
    /// When this node last heard from a leader (or started), in
    /// [`lease_now`](Self::lease_now) time: within an election timeout of
    /// it, it refuses votes (the leader's lease).
    last_leader_contact: u64,
    /// The highest commit index this term's leader sent (its own commit
    /// on a leader): how far behind a follower is, as last heard.
    leader_commit: LogIndex,

    reads: ReadQueue,
    transfer: Option<Transfer>,
    quiesce: quiesce::Quiescence,

    /// The latest snapshot, taken here or installed.
    snapshot: Option<Snapshot>,
    /// The one before it, whose file the store keeps too: a transfer of it
    /// under way goes on (see `send_snapshot_chunk`).
    previous_snapshot: Option<Snapshot>,
    /// A snapshot being received from the leader.
    incoming: Option<snapshot::Incoming>,
    snapshot_to_store: Option<Snapshot>,
    snapshot_to_restore: Option<Snapshot>,
    /// Chunks received, for the next persist to write to the store.
    snapshot_chunks: Vec<SnapshotChunk>,
    compact_to: Option<LogIndex>,
    /// The driver was asked for a snapshot and has not given one yet.
    snapshot_requested: bool,
    /// The current snapshot's file is damaged: none of it is sent, and the
    /// next one taken replaces it, at the same index if need be.
    snapshot_damaged: bool,
    /// A snapshot to ask the driver for with the next `Ready`, to replace
    /// a damaged one.
    rebuild_wanted: bool,
    /// The current snapshot replaced a damaged one: if it is damaged too,
    /// the disk is, and the node must stop.
    snapshot_rebuilt: bool,

    // Output accumulated until the next `ready()`.
    msgs: Vec<Message>,
    proposal_outcomes: Vec<ProposalOutcome>,
    read_outcomes: Vec<ReadOutcome>,
    forward_proposals: Vec<(RequestId, Bytes)>,
    forward_reads: Vec<(RequestId, bool)>,
    read_results: BTreeMap<NodeId, Vec<ReadOutcome>>,
    /// Reads forwarded to a leader and not answered yet, moved when the
    /// leader changes.
    reads_sent: reads_sent::ReadsSent,
    /// Answers given to forwarded proposals, so a copy is appended at most
    /// once.
    forwarded: Forwarded,

    /// The hard state last handed out to persist.
    handed_hard_state: HardState,
    /// Batches handed out and not acknowledged yet, oldest first.
    outstanding: std::collections::VecDeque<batching::Outstanding>,
    counters: Counters,
    /// What it did, for metrics; and the leadership it last saw begin.
    events: Events,
    leader_seen: Option<(Term, NodeId)>,
}

impl RaftCore {
    /// Builds a node from what storage recovered. A new cluster's nodes
    /// start from [`Recovered::bootstrap`].
    pub fn new(
        id: NodeId,
        cfg: Config,
        recovered: Recovered,
        rng: ChaCha8Rng,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        if id == 0 {
            return Err(ConfigError::Invalid("node id 0 is reserved"));
        }
        let snap_at = recovered
            .snapshot
            .as_ref()
            .map(|s| (s.meta.index, s.meta.term));
        if let Some(first) = recovered.entries.first() {
            let contiguous = recovered
                .entries
                .iter()
                .enumerate()
                .all(|(i, e)| e.index == first.index + i as u64);
            if first.index == 0 || !contiguous {
                return Err(ConfigError::Invalid("recovered entries are not contiguous"));
            }
            if first.index > snap_at.map_or(0, |s| s.0) + 1 {
                return Err(ConfigError::Invalid("recovered entries start after a gap"));
            }
        }
        let hs = recovered.hard_state;
        let log = RaftLog::recovered(recovered.entries, hs.commit, snap_at);
        let mut configs = match &recovered.snapshot {
            Some(s) => ConfigHistory::new(s.meta.index, s.meta.membership.clone()),
            None => ConfigHistory::new(0, recovered.membership),
        };
        configs.record(log.slice(snap_at.map_or(0, |s| s.0) + 1, log.last_index()));
        let membership = configs.current().clone();
        let mut core = RaftCore {
            id,
            cfg,
            rng,
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            log,
            configs,
            membership,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            now: 0,
            clock: None,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: 0,
            last_leader_contact: 0,
            leader_commit: 0,
            reads: ReadQueue::default(),
            transfer: None,
            quiesce: Default::default(),
            snapshot: recovered.snapshot,
            previous_snapshot: None,
            incoming: None,
            snapshot_to_store: None,
            snapshot_to_restore: None,
            snapshot_chunks: Vec::new(),
            compact_to: None,
            snapshot_requested: false,
            snapshot_damaged: false,
            rebuild_wanted: false,
            snapshot_rebuilt: false,
            msgs: Vec::new(),
            proposal_outcomes: Vec::new(),
            read_outcomes: Vec::new(),
            forward_proposals: Vec::new(),
            forward_reads: Vec::new(),
            read_results: BTreeMap::new(),
            reads_sent: Default::default(),
            forwarded: Forwarded::new(id, hs),
            handed_hard_state: hs,
            outstanding: std::collections::VecDeque::new(),
            counters: Counters::default(),
            events: Events::default(),
            leader_seen: None,
        };
        core.reset_election_timer();
        Ok(core)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Handles one message from a peer. Never panics: a message that is
    /// misaddressed, stale, from an unknown peer or impossible is ignored or
    /// answered, and counted in [`Counters`].
    pub fn step(&mut self, m: Message) {
        if m.to != self.id || m.from == self.id || m.from == 0 {
            self.counters.misaddressed += 1;
            return;
        }
        if m.body.is_local() {
            // A request from a peer: the group has work.
            self.wake();
            return self.step_forwarding(m);
        }
        // Neither says anything new: the group stays idle. A newer term
        // always wakes (below). A stale message or a non-member's vote
        // request wakes nothing, or a removed server campaigning forever
        // would keep the group awake.
        let wakes = m.term > self.term
            || !matches!(
                m.body,
                Body::Quiesce { .. } | Body::HeartbeatResponse { .. }
            );
        // Term 0 precedes every election; terms past MAX_TERM cannot be
        // reached honestly (one election per tick would take 10^11 years at
        // 1 kHz) and would let a peer push this node's term to overflow.
        if m.term == 0 || m.term > MAX_TERM {
            self.counters.malformed += 1;
            return;
        }
        let asks_vote = matches!(
            m.body,
            Body::PreVote { .. }
                | Body::Vote {
                    transfer: false,
                    ..
                }
        );
        // (A stale one is counted as stale below, like any other.)
        if asks_vote && m.term >= self.term && !self.knows_voter(m.from) {
            // A server removed from the configuration never learns it was
            // (it gets no more entries), times out and campaigns forever;
            // answering it, or taking its term, would depose healthy
            // leaders again and again (thesis §4.2.3). hashicorp/raft
            // refuses such candidates the same way.
            self.counters.votes_refused_non_member += 1;
            return;
        }
        if m.term > self.term {
            // Even a vote refused in the leader's lease: a member that
            // asks cannot hear its leader, and a quiesced node whose
            // ticks stopped would refuse it forever (its lease in ticks
            // never running out).
            self.wake();
            let vote_request = match m.body {
                Body::PreVote { .. } => true,
                Body::Vote { transfer, .. } => !transfer,
                _ => false,
            };
            // A node that hears from its leader refuses to help depose it
            // (thesis §4.2.3), so a partitioned node rejoining with a higher
            // term cannot disrupt a healthy cluster.
            // Pre-vote carries the same check itself (thesis §9.6), with or
            // without check-quorum: a pre-vote is granted only by a node
            // that has not heard from a leader for an election timeout.
            let pre = matches!(m.body, Body::PreVote { .. });
            let recently_led = self.role == Role::Leader
                || (self.leader.is_some()
                    && self.lease_now() < self.last_leader_contact + self.cfg.election_ticks);
            // A server this node's newest configuration removed (named
            // only by the committed one, the removal not yet committed)
            // is still heard once no leader is, since it may be needed;
            // but while a leader is, its higher terms would depose that
            // leader before it could commit the removal, forever, with
            // neither pre-vote nor check-quorum (thesis §4.2.3; simulation
            // seed 2252).
            let removed = !self.membership.contains(m.from);
            let refuse = (self.cfg.check_quorum && self.in_lease())
                || (pre && recently_led)
                || (removed && recently_led);
            if vote_request && refuse {
                self.counters.votes_refused_in_lease += 1;
                return;
            }
            match m.body {
                // Pre-votes raise no term: that is their whole point.
                Body::PreVote { .. } | Body::PreVoteResponse { granted: true } => {}
                Body::Append { .. } | Body::Heartbeat { .. } | Body::Quiesce { .. } => {
                    self.become_follower(m.term, Some(m.from))
                }
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            self.counters.stale_term += 1;
            match m.body {
                // Tell a stale leader about the newer term so it steps down.
                Body::Append { .. } | Body::Heartbeat { .. } | Body::Quiesce { .. } => self.send(
                    m.from,
                    Body::AppendResponse {
                        index: 0,
                        conflict: Some(Conflict {
                            term: None,
                            first_index: 0,
                        }),
                    },
                ),
                Body::PreVote { .. } => self.send(m.from, Body::PreVoteResponse { granted: false }),
                // §5.1: a stale request is rejected with the current term, so
                // the candidate catches up. Without it, a candidate this node
                // never contacts (not a voter in its configuration) could
                // stay a term behind forever.
                Body::Vote { .. } => self.send(m.from, Body::VoteResponse { granted: false }),
                _ => {}
            }
            return;
        }
        if wakes {
            self.wake();
        }
        if let Some(pr) = self.progress.get_mut(&m.from) {
            pr.heard_at = Some(self.now);
        }

        let from = m.from;
        match m.body {
            Body::PreVote {
                last_index,
                last_term,
            } => self.handle_vote_request(from, m.term, last_index, last_term, true),
            Body::Vote {
                last_index,
                last_term,
                ..
            } => self.handle_vote_request(from, m.term, last_index, last_term, false),
            Body::PreVoteResponse { granted } => {
                self.handle_vote_response(from, m.term, granted, true)
            }
            Body::VoteResponse { granted } => {
                self.handle_vote_response(from, m.term, granted, false)
            }
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.handle_append(from, m.term, prev_index, prev_term, entries, commit),
            Body::AppendResponse { index, conflict } => {
                self.handle_append_response(from, index, conflict)
            }
            Body::Heartbeat { commit, seq } => self.handle_heartbeat(from, commit, seq),
            Body::HeartbeatResponse { seq } => self.handle_heartbeat_response(from, seq),
            Body::Quiesce { commit, seq } => self.handle_quiesce(from, commit, seq),
            // Waking was all it asked for (above).
            Body::Wake => {}
            Body::TimeoutNow => self.handle_timeout_now(),
            Body::InstallSnapshot {
                meta,
                size,
                checksum,
                offset,
                data,
                done,
            } => {
                let snapshot = Snapshot::new(meta, size, checksum);
                self.handle_install_snapshot(from, snapshot, offset, data, done)
            }
            Body::SnapshotResponse {
                index,
                next_offset,
                done,
            } => self.handle_snapshot_response(from, index, next_offset, done),
            Body::ForwardProposals { .. }
            | Body::ProposalResults { .. }
            | Body::ForwardReads { .. }
            | Body::ReadResults { .. }
            | Body::Founding(_) => {}
        }
    }

    /// Proposes a command. On the leader it is appended now; elsewhere it is
    /// forwarded to the leader. Where it landed arrives as a
    /// [`ProposalOutcome`] with this `id` in a later [`Ready`]. An `Err`
    /// here means nothing was appended or sent.
    pub fn propose(&mut self, id: RequestId, command: Bytes) -> Result<(), ProposeError> {
        self.wake();
        match self.role {
            Role::Leader => {
                let result = self.append_proposal(command)?;
                self.proposal_outcomes.push(ProposalOutcome {
                    id,
                    result: Ok(result),
                });
                Ok(())
            }
            _ if self.leader.is_some() => {
                self.forward_proposals.push((id, command));
                Ok(())
            }
            _ => Err(ProposeError::NoLeader),
        }
    }

    /// Whether `id` may ask this node for a vote: it votes in the
    /// configuration in force here or in the last committed one (the same
    /// two a node itself campaigns by), or this node knows no
    /// configuration yet.
    fn knows_voter(&self, id: NodeId) -> bool {
        let m = &self.membership;
        // A learner here may be a voter in a configuration this node has
        // not received yet (a promotion or joint change in flight): refusing
        // it can leave the only candidate with a winning log without a
        // majority. A removed server is no member at all, so it stays
        // refused. Votes are safe whoever asks: this only guards liveness.
        (m.voters.is_empty() && m.outgoing.is_empty())
            || m.is_voter(id)
            || m.learners.contains(&id)
            || self.configs.at(self.log.commit).is_voter(id)
    }

    /// Entries held in `lo..=hi` (clamped to the retained log). For
    /// inspection by tests, tools and the simulation. Applied entries past
    /// [`Config::log_cache_bytes`] hold [`Payload::Unread`].
    pub fn entries(&self, lo: LogIndex, hi: LogIndex) -> &[Entry] {
        self.log.slice(lo, hi)
    }

    /// Counters of ignored and refused input.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit,
        }
    }

    /// Gathers what the current state asks to send.
    fn flush(&mut self) {
        self.move_reads();
        if self.role == Role::Leader {
            self.flush_leader();
        }
        self.flush_forwarding();
    }

    fn send(&mut self, to: NodeId, body: Body) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term: self.term,
            body,
        });
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let base = self.cfg.election_ticks;
        self.randomized_timeout = self.rng.gen_range(base..2 * base);
    }

    fn quorum_recently_active(&self) -> bool {
        self.membership.has_quorum(|id| {
            id == self.id || self.progress.get(&id).is_some_and(|p| p.recent_active)
        })
    }

    /// Steps down (or stays) a follower at `term`, following `leader`.
    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.leader_commit = 0;
        }
        if self.role == Role::Leader {
            self.fail_pending_reads(ReadError::NotLeader { leader });
            self.progress.clear();
            self.transfer = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.note_leader();
        self.votes.clear();
        if leader.is_some() {
            self.last_leader_contact = self.lease_now();
        }
        self.reset_election_timer();
    }
}
