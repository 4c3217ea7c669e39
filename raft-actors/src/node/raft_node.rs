//! [`RaftNode`]: the actor that owns one [`RaftCore`] and executes what it
//! decides.
//!
//! Each handler passes its input to the core, then `drive` executes the
//! core's `Ready` batches in the order the types force: persist (one storage
//! call per batch, in order, one at a time, while new input keeps flowing
//! into the core), then send, then hand committed entries to the apply
//! actor with the replies waiting for them. When a batch may be released is
//! the core's [`Pipeline`]'s rule: a batch that need not sync (a commit
//! index alone) waits for no write of its own. It must never compare terms, count votes or
//! decide by a clock: a rule hidden here would escape the core's tests. It
//! reads one clock, the monotonic [`LeaseClock`], only to hand the reading
//! to the core before each input, which measures leases against it.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{oneshot, watch, Mutex};
use tracing::{debug, error, info, warn};

use super::conf_waiters::ConfWaiters;
use super::lease_clock::LeaseClock;
use super::messages::admin::{ChangeMembership, GetStatus, Shutdown, TakeSnapshot, TransferLeader};
use super::messages::client::{Consistency, Propose, Read};
use super::messages::internal::{Drive, Tick};
use super::messages::peer::Peer;
use super::metrics::Metrics;
use super::pending::Pending;
use super::roster::Roster;
use crate::apply::{Apply, ApplyActor, ApplyBatch, BuildSnapshot, RestoreSnapshot};
use crate::core::{
    AfterPersist, Body, ConfChangeError, Config, LogIndex, Membership, Message, NodeId, Pipeline,
    RaftCore, RequestId, SnapshotError, Status, ToPersist, TransferError,
};
use crate::error::{ClientError, FatalError};
use crate::storage::Storage;
use crate::transport::{estimated_size, Transport, TransportError};
use crate::type_config::TypeConfig;

#[cfg(any(test, feature = "testing"))]
mod faults;
mod founding;
mod lifecycle;
mod recorder;
mod write_path;

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
}

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
        }
    }
}

/// Why a node is not serving.
#[derive(Clone, Debug)]
enum Down {
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
    id: NodeId,
    cfg: NodeConfig,
    /// Shared with the persist task in flight, so a restart that drops the
    /// task never loses the storage itself.
    storage: Arc<Mutex<Box<dyn Storage>>>,
    transport: Box<dyn Transport>,
    apply_factory: ApplyFactory<C>,
    apply: Option<Addr<ApplyActor<C>>>,
    core: Option<RaftCore>,
    /// Set while an empty store is being founded: the core runs as no
    /// member and hears nothing but the founding conversation.
    founding: Option<crate::core::Founding>,
    /// Real time since the core was built, for its leases.
    clock: LeaseClock,
    /// The gates of batches whose persists are in flight, released in
    /// order as the core's rule allows (a batch that need not sync waits
    /// for no write of its own).
    pipeline: Pipeline,
    /// Writes handed out by the core, waiting for storage, in order; the
    /// one being written is not here.
    writes: VecDeque<(u64, ToPersist)>,
    /// A storage write is in progress (they run one at a time, in order).
    writing: bool,
    /// The most writes in flight at once since the process started.
    writes_in_flight_max: u64,
    /// Bumped whenever in-flight writes are forgotten (a crash, a restart):
    /// a write of an earlier epoch that completes opens no gate.
    write_epoch: u64,
    drive_scheduled: bool,
    pending: Pending<C>,
    /// Membership changes proposed here, answered once done or lost.
    changes: ConfWaiters,
    next_request: RequestId,
    /// Last index handed to the apply actor.
    applied: LogIndex,
    metrics: watch::Sender<Metrics>,
    down: Option<Down>,
    ticks_paused: bool,
    ticks: u64,
    incarnation: u64,
    restarts: u32,
    /// Why the last incarnation ended, for the reason a node that spent its
    /// restart budget stays down with.
    last_failure: Option<String>,
    /// The core asked for a snapshot; one is being built (or will be).
    snapshot_wanted: bool,
    snapshot_building: bool,
    /// Storage writes that succeeded (one per `Ready` with something to
    /// persist: one fsync on a durable adapter), and the entries they
    /// carried, since the process started: their ratio is the group
    /// commit's yield.
    storage_writes: u64,
    entries_persisted: u64,
    /// The storage's own fsync count, if it keeps one.
    fsyncs: Option<u64>,
    /// Latencies, snapshots and the core's events, for the metrics.
    rec: recorder::Recorder,
}

impl<C: TypeConfig> RaftNode<C> {
    /// A node that, once started, loads its state from `storage`, sends with
    /// `transport` and applies with a state machine from `apply`. Incoming
    /// messages must be delivered to its address as [`Peer`] messages (the
    /// transport's job).
    pub fn new(
        id: NodeId,
        cfg: NodeConfig,
        storage: Box<dyn Storage>,
        transport: Box<dyn Transport>,
        apply: ApplyFactory<C>,
    ) -> (Self, watch::Receiver<Metrics>) {
        let (metrics, rx) = watch::channel(Metrics::starting(id));
        let clock = LeaseClock::start(cfg.tick);
        let node = RaftNode {
            id,
            cfg,
            storage: Arc::new(Mutex::new(storage)),
            transport,
            apply_factory: apply,
            apply: None,
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
            ticks: 0,
            incarnation: 0,
            restarts: 0,
            last_failure: None,
        };
        (node, rx)
    }

    /// Why requests are refused now, if they are.
    fn refusal(&self) -> Option<ClientError> {
        match &self.down {
            None if self.core.is_some() => None,
            None | Some(Down::Shutdown) => Some(ClientError::ShuttingDown),
            #[cfg(any(test, feature = "testing"))]
            Some(Down::Crashed) => Some(ClientError::ShuttingDown),
            Some(Down::Failed(reason)) => Some(ClientError::Fatal(reason.clone())),
        }
    }

    /// Runs `f` with panics caught: a panic stops the node (the supervisor
    /// restarts it) instead of killing the actor's task unsupervised.
    fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(|| f(self, ctx))) {
            Ok(r) => Some(r),
            Err(panic) => {
                self.fail(ctx, FatalError::Panic(panic_message(&*panic)));
                None
            }
        }
    }

    /// Stops the node; the supervisor restarts it from storage.
    fn fail(&mut self, ctx: &mut Context<Self>, err: FatalError) {
        error!(node = self.id, %err, "fatal error: stopping to restart from storage");
        self.last_failure = Some(err.to_string());
        self.metrics.send_modify(|m| m.down = Some(err.to_string()));
        ctx.stop();
    }

    /// Asks for a drive once the mailbox is drained: everything that
    /// arrived together goes into one `Ready`, one storage write.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if !self.drive_scheduled {
            self.drive_scheduled = true;
            ctx.notify(Drive);
        }
    }

    /// Sends, records outcomes, hands committed entries on: the part of a
    /// `Ready` that may run only once its state is durable.
    fn execute(&mut self, after: AfterPersist) {
        let Some(core) = self.core.as_ref() else {
            return;
        };
        self.send(after.messages);
        self.snapshot_wanted |= after.snapshot_wanted;
        if let Some(snap) = after.restore {
            // The leader's snapshot replaces the state machine before the
            // entries after it are applied (same sender, so in order).
            let index = snap.meta.index;
            if let Some(apply) = &self.apply {
                apply.do_send(RestoreSnapshot {
                    index,
                    data: snap.data,
                });
            }
            self.applied = self.applied.max(index);
            // Entries up to it were never applied one by one here: whoever
            // waited on one of them cannot get its output.
            self.pending.fail_upto(index, ClientError::Interrupted);
        }
        let leader = core.leader();
        for outcome in after.proposals {
            self.pending.landed(outcome, self.applied, leader, |i| {
                core.entries(i, i).first().map(|e| e.term)
            });
        }
        for outcome in after.reads {
            self.pending.read_ready(outcome);
        }
        let waiters = self.pending.take_committed(&after.committed, leader);
        if let Some(last) = after.committed.last() {
            tracing::trace!(
                node = self.id,
                first = after.committed[0].index,
                last = last.index,
                "apply"
            );
            self.applied = last.index;
        }
        let queries = self.pending.take_reads(self.applied);
        if after.committed.is_empty() && waiters.is_empty() && queries.is_empty() {
            return;
        }
        if let Some(apply) = &self.apply {
            apply.do_send(ApplyBatch {
                entries: after.committed,
                waiters,
                queries,
            });
        }
    }

    /// One transport call per peer per batch.
    fn send(&self, messages: Vec<Message>) {
        let mut by_peer: BTreeMap<NodeId, Vec<Message>> = BTreeMap::new();
        for m in messages {
            by_peer.entry(m.to).or_default().push(m);
        }
        for (to, messages) in by_peer {
            // A full pipeline (max_inflight x max_bytes_per_message) could
            // exceed a transport's frame limit; a batch refused for its size
            // would be rebuilt at the same size forever. Split it.
            for batch in split_batches(messages, MAX_BATCH_BYTES) {
                match self.transport.send(to, batch) {
                    Ok(()) => {}
                    Err(e @ TransportError::TooLarge { .. }) => {
                        warn!(node = self.id, to, %e, "batch refused for its size")
                    }
                    // Raft retries what matters (heartbeats, appends,
                    // votes), so a refused batch is only worth a log line.
                    Err(e) => debug!(node = self.id, to, %e, "batch not sent"),
                }
            }
        }
    }

    /// Publishes the metrics if they changed.
    fn publish(&mut self) {
        let Some(core) = self.core.as_ref() else {
            return;
        };
        let status = core.status();
        self.rec.observe(&status);
        let activity = self.rec.activity(core.events());
        let applied = self.applied;
        let (writes, entries, fsyncs) = (self.storage_writes, self.entries_persisted, self.fsyncs);
        let in_flight = (self.pipeline.writes_in_flight(), self.writes_in_flight_max);
        self.metrics.send_if_modified(|m| {
            let mut next = m.clone();
            next.update(&status, applied);
            next.storage_writes = writes;
            next.entries_persisted = entries;
            next.fsyncs = fsyncs;
            (next.writes_in_flight, next.writes_in_flight_max) = in_flight;
            next.activity = activity;
            next.down = None;
            let changed = next != *m;
            *m = next;
            changed
        });
    }

    fn publish_down(&self) {
        let reason = match &self.down {
            Some(Down::Shutdown) => "shut down".to_string(),
            #[cfg(any(test, feature = "testing"))]
            Some(Down::Crashed) => "crashed".to_string(),
            Some(Down::Failed(r)) => r.clone(),
            None => return,
        };
        let failed = matches!(self.down, Some(Down::Failed(_)));
        self.metrics.send_modify(|m| {
            m.failed = failed.then(|| reason.clone());
            m.down = Some(reason);
            m.leader = None;
        });
    }

    /// Snapshots the state machine and hands the snapshot to the core, which
    /// compacts its log and has the snapshot stored with the next `Ready`.
    /// `reply` (an on-demand snapshot) gets the snapshot's index.
    fn build_snapshot(
        &mut self,
        ctx: &mut Context<Self>,
        reply: Option<oneshot::Sender<Result<LogIndex, ClientError>>>,
    ) {
        let Some(apply) = self.apply.clone() else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(ClientError::ShuttingDown));
            }
            return;
        };
        if self.snapshot_building && reply.is_none() {
            return;
        }
        self.snapshot_building = true;
        let started = std::time::Instant::now();
        let built = async move { apply.send(BuildSnapshot).await };
        ctx.spawn(built.into_actor(self).map(move |res, node, ctx| {
            node.snapshot_building = false;
            let result = match res {
                Ok(Ok((index, data))) => match node.core.as_mut() {
                    Some(core) => match (data.len() as u64, core.snapshot_taken(index, data)) {
                        (bytes, Ok(())) => {
                            node.rec.taken(started.elapsed(), bytes);
                            Ok(index)
                        }
                        // Nothing applied since the last snapshot: that one
                        // stands.
                        (_, Err(SnapshotError::Stale { current })) => Ok(current),
                        (_, Err(e)) => Err(ClientError::Invalid(e.to_string())),
                    },
                    None => Err(ClientError::Interrupted),
                },
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ClientError::Interrupted),
            };
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
            node.schedule(ctx);
        }));
    }

    fn next_id(&mut self) -> RequestId {
        self.next_request += 1;
        self.next_request
    }

    /// Forgets everything volatile, answering what was pending.
    fn reset(&mut self, err: ClientError) {
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
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
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
        ctx.run_interval(self.cfg.tick, |node, ctx| {
            if !node.ticks_paused {
                ctx.notify(Tick);
            }
        });
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

impl<C: TypeConfig> Handler<Propose<C>> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, msg: Propose<C>, ctx: &mut Self::Context) {
        if let Some(err) = self.refusal() {
            let _ = msg.reply.send(Err(err));
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            let _ = msg.reply.send(Err(ClientError::Busy));
            return;
        }
        let id = self.next_id();
        self.guarded(ctx, |node, ctx| {
            let Some(core) = node.core.as_mut() else {
                return;
            };
            core.observe_clock(node.clock.ticks());
            match core.propose(id, msg.command) {
                Ok(()) => {
                    node.pending.add_proposal(id, msg.reply);
                    node.schedule(ctx);
                }
                Err(e) => {
                    let _ = msg.reply.send(Err(e.into()));
                }
            }
        });
    }
}

impl<C: TypeConfig> Handler<Read<C>> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, msg: Read<C>, ctx: &mut Self::Context) {
        if let Some(err) = self.refusal() {
            let _ = msg.reply.send(Err(err));
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            let _ = msg.reply.send(Err(ClientError::Busy));
            return;
        }
        if msg.consistency == Consistency::Stale {
            if let Some(apply) = &self.apply {
                // Behind every batch already handed on: sees at least what
                // this node applied when the read arrived.
                apply.do_send(ApplyBatch {
                    entries: Vec::new(),
                    waiters: Vec::new(),
                    queries: vec![(msg.query, msg.reply)],
                });
            }
            return;
        }
        let id = self.next_id();
        self.guarded(ctx, |node, ctx| {
            let Some(core) = node.core.as_mut() else {
                return;
            };
            core.observe_clock(node.clock.ticks());
            let asked = match msg.consistency {
                Consistency::Lease => core.lease_read(id),
                _ => core.read_index(id),
            };
            match asked {
                Ok(()) => {
                    node.pending.add_read(id, msg.query, msg.reply);
                    node.schedule(ctx);
                }
                Err(e) => {
                    let _ = msg.reply.send(Err(e.into()));
                }
            }
        });
    }
}

impl<C: TypeConfig> Handler<Peer> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, msg: Peer, ctx: &mut Self::Context) {
        self.guarded(ctx, |node, ctx| {
            let Some(core) = node.core.as_mut() else {
                return; // down: a dead node hears nothing
            };
            // A forwarded lease read may be answered in this step.
            core.observe_clock(node.clock.ticks());
            for m in msg.messages {
                if let Body::Founding(f) = m.body {
                    node.on_founding(m.from, f, ctx);
                    continue;
                }
                if node.founding.is_some() {
                    continue; // no Raft message reaches a node being founded
                }
                let Some(core) = node.core.as_mut() else {
                    return; // refused while founding
                };
                // A copy of a forwarded proposal is the core's to spot.
                core.step(m);
            }
            node.schedule(ctx);
        });
    }
}

impl<C: TypeConfig> Handler<Tick> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        self.guarded(ctx, |node, ctx| {
            // The user's state machine panicked and its actor stopped: fail,
            // so the supervisor restarts the node with a fresh one rebuilt
            // from snapshot and log.
            if node.apply.as_ref().is_some_and(|a| !a.connected()) {
                node.apply = None;
                let reason = "the state machine panicked".to_string();
                return node.fail(ctx, FatalError::Panic(reason));
            }
            let Some(core) = node.core.as_mut() else {
                return;
            };
            core.observe_clock(node.clock.ticks());
            core.tick();
            node.ticks += 1;
            node.founding_tick(ctx);
            // Every ~second of ticks: forget requests whose caller gave up.
            if node.ticks % 100 == 0 {
                node.pending.sweep_abandoned();
            }
            node.drive(ctx);
        });
    }
}

impl<C: TypeConfig> Handler<Drive> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, _: Drive, ctx: &mut Self::Context) {
        self.drive_scheduled = false;
        self.guarded(ctx, |node, ctx| node.drive(ctx));
    }
}

impl<C: TypeConfig> Handler<GetStatus> for RaftNode<C> {
    type Result = Result<Status, ClientError>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Err(err);
        }
        self.core
            .as_ref()
            .map(RaftCore::status)
            .ok_or(ClientError::ShuttingDown)
    }
}

impl<C: TypeConfig> Handler<TransferLeader> for RaftNode<C> {
    type Result = Result<(), ClientError>;

    fn handle(&mut self, msg: TransferLeader, ctx: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Err(err);
        }
        let res = self.guarded(ctx, |node, ctx| {
            let core = node.core.as_mut().ok_or(ClientError::ShuttingDown)?;
            core.transfer_leader(msg.to).map_err(|e| match e {
                TransferError::NotLeader { leader } => ClientError::NotLeader { leader },
                TransferError::NotVoter(id) => ClientError::Invalid(format!("{id} is not a voter")),
            })?;
            node.schedule(ctx);
            Ok(())
        });
        res.unwrap_or(Err(ClientError::Interrupted))
    }
}

impl<C: TypeConfig> Handler<ChangeMembership> for RaftNode<C> {
    type Result = ResponseActFuture<Self, Result<Membership, ClientError>>;

    fn handle(&mut self, msg: ChangeMembership, ctx: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Box::pin(fut::ready(Err(err)));
        }
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        let res = self.guarded(ctx, |node, ctx| {
            let core = node.core.as_mut().ok_or(ClientError::ShuttingDown)?;
            core.propose_conf_change(id, msg.change)
                .map_err(|e| match e {
                    ConfChangeError::NotLeader { leader } => ClientError::NotLeader { leader },
                    // Transient: retry shortly.
                    ConfChangeError::LeaderNotReady
                    | ConfChangeError::ChangeInProgress
                    | ConfChangeError::TransferInProgress { .. }
                    | ConfChangeError::LearnerBehind { .. } => ClientError::Busy,
                    other => ClientError::Invalid(other.to_string()),
                })?;
            // A leader appends the change at once: it is its last entry.
            let s = core.status();
            node.changes.wait(s.last_index, s.term, tx);
            node.schedule(ctx);
            Ok(())
        });
        if let Err(e) = res.unwrap_or(Err(ClientError::Interrupted)) {
            return Box::pin(fut::ready(Err(e)));
        }
        Box::pin(fut::wrap_future(async move {
            rx.await.unwrap_or(Err(ClientError::Interrupted))
        }))
    }
}

impl<C: TypeConfig> Handler<TakeSnapshot> for RaftNode<C> {
    type Result = ResponseActFuture<Self, Result<LogIndex, ClientError>>;

    fn handle(&mut self, _: TakeSnapshot, ctx: &mut Self::Context) -> Self::Result {
        if let Some(err) = self.refusal() {
            return Box::pin(fut::ready(Err(err)));
        }
        let (tx, rx) = oneshot::channel();
        self.build_snapshot(ctx, Some(tx));
        Box::pin(fut::wrap_future(async move {
            rx.await.unwrap_or(Err(ClientError::Interrupted))
        }))
    }
}

impl<C: TypeConfig> Handler<Shutdown> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        info!(node = self.id, "shutting down");
        // What was pending may already be in a leader's log and still
        // commit: its outcome is unknown, not refused.
        self.reset(ClientError::Interrupted);
        self.down = Some(Down::Shutdown);
        self.apply = None;
        self.publish_down();
        // Stopping cancels the tick interval and any write in flight; the
        // supervisor's restart finds the flag and stays idle until the last
        // address is dropped.
        ctx.stop();
    }
}

/// The most a node puts in one transport batch (by
/// [`estimated_size`]); a single larger message still goes, alone.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Splits `messages` into batches of at most `max` estimated bytes, in order.
fn split_batches(messages: Vec<Message>, max: usize) -> Vec<Vec<Message>> {
    let mut out: Vec<Vec<Message>> = Vec::new();
    let mut size = 0;
    for m in messages {
        let len = estimated_size(std::slice::from_ref(&m));
        match out.last_mut() {
            Some(batch) if size + len <= max => batch.push(m),
            _ => {
                out.push(vec![m]);
                size = 0;
            }
        }
        size += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Entry, Payload};

    #[test]
    fn batches_are_split_under_the_limit_in_order() {
        let append = |i: u64| Message {
            from: 1,
            to: 2,
            term: 1,
            body: Body::Append {
                prev_index: i,
                prev_term: 1,
                entries: vec![Entry {
                    index: i + 1,
                    term: 1,
                    payload: Payload::Command(vec![0u8; 1000].into()),
                }],
                commit: 0,
            },
        };
        let msgs: Vec<Message> = (0..10).map(append).collect();
        let one = estimated_size(&msgs[..1]);
        let batches = split_batches(msgs, 3 * one);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert!(batches.iter().all(|b| estimated_size(b) <= 3 * one));
        let order: Vec<u64> = batches
            .iter()
            .flatten()
            .map(|m| match m.body {
                Body::Append { prev_index, .. } => prev_index,
                _ => u64::MAX,
            })
            .collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        // A message over the limit still goes, alone.
        assert_eq!(split_batches(vec![append(0)], 1).len(), 1);
    }
}
