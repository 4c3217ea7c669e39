//! [`RaftNode`]: the actor that owns one [`RaftCore`] and executes what it
//! decides. This file holds its state and its life as an actor; the rest
//! is split by concern:
//!
//! - `driver`: the loop that takes the core's `Ready` batches, persists
//!   them (pipelined, in order), releases what the core's [`Pipeline`]
//!   allows (send, answer, hand committed entries to the apply actor) and
//!   advances the core: the same loop the simulation's node runs;
//! - `lifecycle`: incarnations (load, the restart budget, staying down);
//! - `founding`: founding a cluster from an empty store;
//! - `snapshots` and `publish`: building snapshots, publishing metrics;
//! - `faults`: fault injection, in test builds only;
//! - the message handlers live beside their messages, in
//!   [`messages`](crate::node::messages).
//!
//! It must never compare terms, count votes or decide by a clock: a rule
//! hidden here would escape the core's tests. It reads one clock, the
//! monotonic [`LeaseClock`], only to hand the reading to the core before
//! each input, which measures leases against it.

use std::collections::{BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{watch, Mutex};
use tracing::{debug, error, warn};

use super::conf_waiters::ConfWaiters;
use super::lease_clock::LeaseClock;
use super::messages::internal::Drive;
use super::metrics::Metrics;
use super::pending::Pending;
use super::roster::Roster;
use crate::apply::{Apply, ApplyActor};
use crate::core::{Config, LogIndex, NodeId, Pipeline, RaftCore, RequestId, Snapshot, ToPersist};
use crate::error::{ClientError, FatalError};
use crate::storage::{SharedLogReader, SharedSnapshots, Storage, StorageError};
use crate::transport::Transport;
use crate::type_config::TypeConfig;

mod driver;
#[cfg(any(test, feature = "testing"))]
mod faults;
mod founding;
mod lifecycle;
mod publish;
mod recorder;
mod sent_chunks;
mod snapshots;

/// Builds a fresh state machine: at start, and after a crash lost the old
/// one (it is then rebuilt by replaying the log).
pub type ApplyFactory<C> = Arc<dyn Fn() -> Box<dyn Apply<C>> + Send + Sync>;

/// The node's settings: the core's, plus what the actor adds.
///
/// ```
/// use raft_actors::node::NodeConfig;
/// use std::time::Duration;
/// let cfg = NodeConfig { tick: Duration::from_millis(5), ..NodeConfig::default() };
/// assert_eq!(cfg.core.election_ticks, 10); // an election timeout of 50..100 ms
/// ```
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The core's tunables, in ticks.
    pub core: Config,
    /// How long one tick lasts.
    pub tick: Duration,
    /// At most this many proposals and reads wait on the node; beyond it
    /// requests fail with [`ClientError::Busy`].
    pub max_pending: usize,
    /// Seeds the core's RNG (mixed with the node id and incarnation).
    pub seed: u64,
    /// Restarts in a row without a successful write before the node gives
    /// up and stays down (a dead disk would otherwise restart it forever).
    pub max_restarts: u32,
    /// A leader sends its appends before its own write is durable, so its
    /// fsync and the followers' overlap (thesis §10.2.1; see
    /// [`Ready::take_early`](crate::core::Ready::take_early)). On by
    /// default; off only to measure what it buys.
    pub early_replication: bool,
    /// The voters to found a cluster with when the store is empty (a
    /// service's `--peers`); `None`: an empty store starts as no member and
    /// waits to be added. The node asks every other voter first and starts
    /// only once each recorded it in its [`Roster`]; if one already knew
    /// it, its data dir was lost and it refuses to start (see
    /// [`Founding`](crate::core::Founding)).
    pub bootstrap_voters: Option<BTreeSet<NodeId>>,
    /// The peers that enlisted with this node: durable beside the store in
    /// a service, in memory by default.
    pub roster: Roster,
    /// How many committed entries the state machine may be behind (handed
    /// to its thread, not yet applied) before the node refuses new
    /// proposals and reads with [`ClientError::Busy`], counted in
    /// [`Metrics::apply_refused`] (etcd refuses at 5,000). It bounds the
    /// apply queue, and the log that cannot be compacted past what was
    /// applied, instead of letting them grow while clients keep writing:
    /// what is in the queue then is at most this plus the requests already
    /// accepted (`max_pending`).
    pub max_apply_lag: u64,
    /// Where the state machine runs: on a thread of its own (the default)
    /// or on the node's arbiter.
    pub apply_thread: ApplyThread,
}

/// Where a node's state machine (its apply actor) runs.
///
/// ```
/// use raft_actors::node::{ApplyThread, NodeConfig};
/// assert!(matches!(NodeConfig::default().apply_thread, ApplyThread::Own));
/// // One thread for everything, as the test kit's deterministic simulation needs:
/// let one = NodeConfig { apply_thread: ApplyThread::Node, ..NodeConfig::default() };
/// assert!(matches!(one.apply_thread, ApplyThread::Node));
/// ```
#[derive(Clone, Debug, Default)]
pub enum ApplyThread {
    /// A thread of its own, started on first use: applying, queries and
    /// snapshots never delay the node's ticks, heartbeats and batches.
    #[default]
    Own,
    /// The node's own arbiter (thread). Applying then competes with the
    /// node for its thread; what it buys is that a whole cluster can run on
    /// one thread, so one seed replays one schedule exactly.
    Node,
    /// An arbiter the caller runs, shared with other nodes' state machines:
    /// a process hosting many Raft groups (multi-raft) runs them on a few
    /// threads, not one each. Off the node's thread, as with `Own`.
    On(ArbiterHandle),
}

/// The log cache of a node whose storage reads back and whose
/// [`Config::log_cache_bytes`] is unset.
///
/// ```
/// assert_eq!(raft_actors::node::LOG_CACHE_BYTES, 16 * 1024 * 1024);
/// ```
pub const LOG_CACHE_BYTES: u64 = 16 << 20;

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            core: Config::default(),
            tick: Duration::from_millis(10),
            max_pending: 100_000,
            seed: 0,
            max_restarts: 10,
            early_replication: true,
            bootstrap_voters: None,
            roster: Roster::in_memory(),
            max_apply_lag: 8_192,
            apply_thread: ApplyThread::Own,
        }
    }
}

/// Why a node is not serving.
#[derive(Clone, Debug)]
pub(super) enum Down {
    /// Stopped on request.
    Shutdown,
    /// Crashed by a test's fault injection; may be restarted.
    #[cfg(any(test, feature = "testing"))]
    Crashed,
    /// Cannot come back: its storage keeps failing (loads included) past
    /// the restart budget, or the core refuses what it recovered.
    Failed(String),
}

/// One Raft node. See the [module docs](crate::node).
pub struct RaftNode<C: TypeConfig> {
    pub(super) id: NodeId,
    pub(super) cfg: NodeConfig,
    /// Shared with the persist task in flight, so a restart that drops the
    /// task never loses the storage itself.
    pub(super) storage: Arc<Mutex<Box<dyn Storage>>>,
    /// Where the storage keeps its snapshots' bytes: chunks to send are
    /// read from it, restores stream from it, new snapshots go into it.
    pub(super) snapshots: SharedSnapshots,
    /// Reads back entries whose payloads the core dropped, to fill the
    /// AppendEntries that carry them; without one the core keeps them all.
    pub(super) log_reader: Option<SharedLogReader>,
    /// Entries it read back, for the metrics (counted where messages are
    /// sent, which borrows the node shared).
    pub(super) entries_read_back: std::cell::Cell<u64>,
    /// The checksum of each snapshot transfer as its chunks are read, and
    /// the snapshots found unreadable or damaged meanwhile, with why (the
    /// core is told at the end of the drive).
    pub(super) sent_chunks: std::cell::RefCell<sent_chunks::SentChunks>,
    pub(super) unreadable: std::cell::RefCell<Vec<(Snapshot, String)>>,
    /// Why entries could not be read back from a storage that says its
    /// log is corrupt: the node stops at the end of the drive.
    pub(super) log_corrupt: std::cell::RefCell<Option<StorageError>>,
    pub(super) transport: Box<dyn Transport>,
    pub(super) apply_factory: ApplyFactory<C>,
    pub(super) apply: Option<Addr<ApplyActor<C>>>,
    /// The thread the apply actor runs on, so applying, queries and
    /// snapshots never delay this node's ticks, heartbeats and persists.
    /// Started with the first incarnation, kept across restarts, stopped
    /// when the node is dropped.
    apply_thread: Option<Arbiter>,
    /// The last index the apply actor applied, published by it after each
    /// batch: `applied` minus this is how far it is behind.
    pub(super) sm_applied: Arc<AtomicU64>,
    /// Requests refused because the state machine was too far behind.
    pub(super) apply_refused: u64,
    pub(super) core: Option<RaftCore>,
    /// Set while an empty store is being founded: the core runs as no
    /// member and hears nothing but the founding conversation.
    pub(super) founding: Option<crate::core::Founding>,
    /// Real time since the core was built, for its leases.
    pub(super) clock: LeaseClock,
    /// The gates of batches whose persists are in flight, released in
    /// order as the core's rule allows (a batch that need not sync waits
    /// for no write of its own).
    pub(super) pipeline: Pipeline,
    /// Writes handed out by the core, waiting for storage, in order; the
    /// one being written is not here.
    pub(super) writes: VecDeque<(u64, ToPersist)>,
    /// A storage write is in progress (they run one at a time, in order).
    pub(super) writing: bool,
    /// The most writes in flight at once since the process started.
    pub(super) writes_in_flight_max: u64,
    /// Bumped whenever in-flight writes are forgotten (a crash, a restart):
    /// a write of an earlier epoch that completes opens no gate.
    pub(super) write_epoch: u64,
    pub(super) drive_scheduled: bool,
    pub(super) pending: Pending<C>,
    /// Membership changes proposed here, answered once done or lost.
    pub(super) changes: ConfWaiters,
    pub(super) next_request: RequestId,
    /// Last index handed to the apply actor.
    pub(super) applied: LogIndex,
    pub(super) metrics: watch::Sender<Metrics>,
    pub(super) down: Option<Down>,
    pub(super) ticks_paused: bool,
    /// The tick timer, stopped while the core is quiesced (see `pace_ticks`).
    pub(super) ticker: Option<SpawnHandle>,
    pub(super) ticks: u64,
    pub(super) incarnation: u64,
    pub(super) restarts: u32,
    /// Why the last incarnation ended, for the reason a node that spent its
    /// restart budget stays down with.
    pub(super) last_failure: Option<String>,
    /// The core asked for a snapshot; one is being built (or will be).
    pub(super) snapshot_wanted: bool,
    pub(super) snapshot_building: bool,
    /// Storage writes that succeeded (one per `Ready` with something to
    /// persist: one fsync on a durable adapter), and the entries they
    /// carried, since the process started: their ratio is the group
    /// commit's yield.
    pub(super) storage_writes: u64,
    pub(super) entries_persisted: u64,
    /// The storage's own fsync count, if it keeps one.
    pub(super) fsyncs: Option<u64>,
    /// Latencies, snapshots and the core's events, for the metrics.
    rec: recorder::Recorder,
}

impl<C: TypeConfig> RaftNode<C> {
    /// A node that, once started, loads its state from `storage`, sends with
    /// `transport` and applies with a state machine from `apply`. Incoming
    /// messages must be delivered to its address as [`Peer`](crate::transport::Peer) messages (the
    /// transport's job).
    pub fn new(
        id: NodeId,
        mut cfg: NodeConfig,
        storage: Box<dyn Storage>,
        transport: Box<dyn Transport>,
        apply: ApplyFactory<C>,
    ) -> (Self, watch::Receiver<Metrics>) {
        let (metrics, rx) = watch::channel(Metrics::starting(id));
        let log_reader = storage.log_reader();
        cfg.core.log_cache_bytes = match &log_reader {
            // Nothing to read dropped payloads back from: keep them all.
            None => None,
            Some(_) => Some(cfg.core.log_cache_bytes.unwrap_or(LOG_CACHE_BYTES)),
        };
        let clock = LeaseClock::start(cfg.tick);
        let node = RaftNode {
            id,
            cfg,
            snapshots: storage.snapshots(),
            log_reader,
            entries_read_back: std::cell::Cell::new(0),
            sent_chunks: Default::default(),
            unreadable: Default::default(),
            log_corrupt: Default::default(),
            storage: Arc::new(Mutex::new(storage)),
            transport,
            apply_factory: apply,
            apply: None,
            apply_thread: None,
            sm_applied: Arc::new(AtomicU64::new(0)),
            apply_refused: 0,
            core: None,
            founding: None,
            clock,
            pipeline: Pipeline::default(),
            writes: VecDeque::new(),
            writing: false,
            writes_in_flight_max: 0,
            write_epoch: 0,
            drive_scheduled: false,
            snapshot_wanted: false,
            snapshot_building: false,
            storage_writes: 0,
            entries_persisted: 0,
            fsyncs: None,
            rec: recorder::Recorder::default(),
            pending: Pending::new(),
            changes: ConfWaiters::default(),
            // Random base: ids must not repeat across a restart of this
            // process, or the leader would take a new proposal for a copy
            // of an old one it answered (the core's forward record).
            next_request: rand::random::<u64>() >> 2,
            applied: 0,
            metrics,
            down: None,
            ticks_paused: false,
            ticker: None,
            ticks: 0,
            incarnation: 0,
            restarts: 0,
            last_failure: None,
        };
        (node, rx)
    }

    /// Why requests are refused now, if they are.
    pub(super) fn refusal(&self) -> Option<ClientError> {
        match &self.down {
            None if self.core.is_some() => None,
            None | Some(Down::Shutdown) => Some(ClientError::ShuttingDown),
            #[cfg(any(test, feature = "testing"))]
            Some(Down::Crashed) => Some(ClientError::ShuttingDown),
            Some(Down::Failed(reason)) => Some(ClientError::Fatal(reason.clone())),
        }
    }

    /// Refuses a request with [`ClientError::Busy`] while the state machine
    /// is more than `max_apply_lag` entries behind, counting the refusal:
    /// backpressure instead of an apply queue without bound.
    pub(super) fn apply_backlogged(&mut self) -> Option<ClientError> {
        if self.apply_lag() <= self.cfg.max_apply_lag {
            return None;
        }
        self.apply_refused += 1;
        Some(ClientError::Busy)
    }

    /// Committed entries handed to the apply actor and not yet applied.
    pub(super) fn apply_lag(&self) -> u64 {
        self.applied
            .saturating_sub(self.sm_applied.load(Ordering::Acquire))
    }

    /// Starts a fresh apply actor around a new state machine on the apply
    /// thread (started on first use). The factory runs there, so the state
    /// machine itself need not be `Send`.
    pub(super) fn start_apply(&mut self) -> Addr<ApplyActor<C>> {
        let thread = match &self.cfg.apply_thread {
            ApplyThread::Own => self.apply_thread.get_or_insert_with(Arbiter::new).handle(),
            ApplyThread::Node => Arbiter::current(),
            ApplyThread::On(arbiter) => arbiter.clone(),
        };
        let latency = self.rec.apply_latency();
        let progress = Arc::new(AtomicU64::new(0));
        self.sm_applied = Arc::clone(&progress);
        let factory = Arc::clone(&self.apply_factory);
        ApplyActor::start_in_arbiter(&thread, move |_| {
            ApplyActor::new(factory())
                .with_latency(latency)
                .with_progress(progress)
        })
    }

    /// Runs `f` with panics caught: a panic stops the node (the supervisor
    /// restarts it) instead of killing the actor's task unsupervised.
    pub(super) fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(|| f(self, ctx))) {
            Ok(r) => Some(r),
            Err(panic) => {
                self.fail(ctx, FatalError::Panic(crate::error::panic_message(&*panic)));
                None
            }
        }
    }

    /// Stops the node; the supervisor restarts it from storage.
    pub(super) fn fail(&mut self, ctx: &mut Context<Self>, err: FatalError) {
        error!(node = self.id, %err, "fatal error: stopping to restart from storage");
        self.last_failure = Some(err.to_string());
        self.metrics.send_modify(|m| m.down = Some(err.to_string()));
        ctx.stop();
    }

    /// Asks for a drive once the mailbox is drained: everything that
    /// arrived together goes into one `Ready`, one storage write.
    pub(super) fn schedule(&mut self, ctx: &mut Context<Self>) {
        if !self.drive_scheduled {
            self.drive_scheduled = true;
            ctx.notify(Drive);
        }
    }

    pub(super) fn next_id(&mut self) -> RequestId {
        self.next_request += 1;
        self.next_request
    }

    /// Forgets everything volatile, answering what was pending.
    pub(super) fn reset(&mut self, err: ClientError) {
        self.changes.fail_all(err.clone());
        self.pending.fail_all(err);
        self.rec.core_dropped(self.core.as_ref());
        self.core = None;
        self.pipeline.clear();
        self.writes.clear();
        self.writing = false;
        self.write_epoch += 1;
        self.drive_scheduled = false;
        self.applied = 0;
        // A restart drops a snapshot build in flight with the context.
        self.snapshot_wanted = false;
        self.snapshot_building = false;
        self.sent_chunks.take();
        self.unreadable.take();
        self.log_corrupt.take();
    }
}

impl<C: TypeConfig> Drop for RaftNode<C> {
    /// The apply thread ends with the node (after the batches queued).
    fn drop(&mut self) {
        if let Some(thread) = self.apply_thread.take() {
            thread.stop();
        }
    }
}

impl<C: TypeConfig> Actor for RaftNode<C> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.down.is_some() {
            // A node that failed for good stays down: the supervisor
            // restarts it after every stop, so the flag is what holds it.
            return self.publish_down();
        }
        self.reload(ctx);
        // A restarted actor's context dropped the old timer.
        self.ticker = None;
        self.pace_ticks(ctx);
    }
}

impl<C: TypeConfig> Supervised for RaftNode<C> {
    fn restarting(&mut self, _: &mut Self::Context) {
        match &self.down {
            // A supervised actor restarts after every stop, a requested
            // one too: it stays down, so there is nothing to warn about.
            Some(Down::Shutdown) => debug!(node = self.id, "stopped on request"),
            _ => warn!(node = self.id, "restarting from storage"),
        }
        // The dead incarnation's requests may still commit: outcome unknown.
        self.reset(ClientError::Interrupted);
        self.count_restart();
    }
}
