//! [`check_workload`]: one call that runs a workload of the user's own
//! operations against their `Apply` on a 3-node cluster under seeded
//! faults (partitions, loss, duplication, reordering, crashes and
//! restarts, panics of the state machine, snapshots and compaction every
//! few dozen entries, a voter removed and added back, the leader frozen
//! past its lease a sixth of the way in), for every seed
//! given, and checks each recorded
//! history against the user's [`Model`] with
//! [`check_model`], and the replicas' states against
//! each other with [`Fingerprints`].
//!
//! A seed fixes the operations, which node each goes to and the faults;
//! the nodes are real actors on real threads, so it does not fix the
//! schedule: [`simulate_workload`](super::deterministic::simulate_workload)
//! runs the same on one thread in virtual time, where it does. It must never pass a seed
//! whose history it could not check: a search out of steps is a failure.
//! A service built on the
//! service crate runs here as its state machine,
//! `raft_actors_service::machine::Machine<S>` (its `Workload::Config`),
//! proposals being `Envelope::Command`s.

use std::sync::Arc;
use std::time::Duration;

pub use rand::Rng;
use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;
use tracing::info;

use super::cases::clients::Progress;
use super::cases::linearizability::{linearizability_config, random_faults};
use super::model::{Calls, Ended, Model};
use super::model_check::{check_model, Verdict};
use super::{Fingerprints, TestCluster};
use crate::apply::Apply;
use crate::core::ConfChange;
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::type_config::TypeConfig;

mod freeze;

/// How long a client waits after a refusal (`NoLeader`, `Busy`, ...):
/// about two ticks of the test nodes.
const REFUSED_PAUSE: Duration = Duration::from_millis(20);

/// How long a client waits for one answer.
const CALL_TIMEOUT: Duration = Duration::from_millis(800);

/// How an operation reaches the cluster.
pub enum Request<C: TypeConfig> {
    /// A write: proposed, answered with the state machine's output.
    Propose(C::Command),
    /// A linearizable read.
    Read(C::Query),
    /// A read at the given consistency: a lease read, or a stale one (which
    /// may miss acknowledged writes, and the checker then says so).
    ReadWith(C::Query, Consistency),
}

/// What the cluster answered.
pub enum Answer<C: TypeConfig> {
    /// A proposal's output.
    Applied(C::Output),
    /// A read's answer.
    Read(C::QueryAnswer),
}

/// The user's side of a workload: the model, how to draw an operation, and
/// how operations and answers map between the model and the cluster.
pub trait Workload: Sync {
    /// The state machine's type config.
    type Config: TypeConfig;
    /// The sequential model the histories are checked against.
    type Model: Model;

    /// The model.
    fn model(&self) -> Self::Model;

    /// A client's next operation, drawn from its seeded generator.
    fn op(&self, rng: &mut ChaCha8Rng) -> <Self::Model as Model>::Op;

    /// How `op` is sent: a proposal or a read.
    fn request(&self, op: &<Self::Model as Model>::Op) -> Request<Self::Config>;

    /// The model's output for what the cluster answered to `op`.
    fn output(
        &self,
        op: &<Self::Model as Model>::Op,
        answer: Answer<Self::Config>,
    ) -> <Self::Model as Model>::Output;
}

/// How much to run.
#[derive(Clone, Debug)]
pub struct Run {
    /// The seeds, one cluster each.
    pub seeds: Vec<u64>,
    /// Concurrent clients.
    pub clients: u64,
    /// Operations per client, one after the other.
    pub ops: u64,
}

impl Default for Run {
    /// Seeds 1 to 4, 6 clients of 30 operations.
    fn default() -> Self {
        Run {
            seeds: (1..=4).collect(),
            clients: 6,
            ops: 30,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Calls answered, over every seed.
    pub answered: usize,
    /// Membership changes that went through, over every seed.
    pub changes: usize,
}

/// Why a seed failed. Its `Debug` is its `Display`, so a test's
/// `expect` prints the seed, the reason and the replay command as lines.
pub struct WorkloadFailure {
    /// The seed, to run again.
    pub seed: u64,
    /// What was wrong: the checker's verdict or the replicas' divergence.
    pub why: String,
    /// In a simulation, the command that replays this seed with a trace.
    pub replay: Option<String>,
}

impl std::fmt::Display for WorkloadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seed {}: {}", self.seed, self.why)?;
        if let Some(command) = &self.replay {
            write!(f, "\nreplay it with a trace: {command}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for WorkloadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for WorkloadFailure {}

/// Runs `workload` against the state machines `apply` builds, for every
/// seed of `run`; `Ok` with what it did, or the first seed that failed.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::testing::workload::{check_workload, Answer, ChaCha8Rng, Request, Rng, Run, Workload};
/// use raft_actors::testing::{Counter, CounterModel, CounterOp};
///
/// struct Adds;
/// impl Workload for Adds {
///     type Config = Counter;
///     type Model = CounterModel;
///     fn model(&self) -> CounterModel { CounterModel }
///     fn op(&self, rng: &mut ChaCha8Rng) -> CounterOp {
///         if rng.gen_bool(0.6) { CounterOp::Add(rng.gen_range(1..10)) } else { CounterOp::Get }
///     }
///     fn request(&self, op: &CounterOp) -> Request<Counter> {
///         match op {
///             CounterOp::Add(d) => Request::Propose(*d as u64),
///             CounterOp::Get => Request::Read(()),
///         }
///     }
///     fn output(&self, _: &CounterOp, answer: Answer<Counter>) -> i64 {
///         match answer { Answer::Applied(v) | Answer::Read(v) => v as i64 }
///     }
/// }
/// let run = Run { seeds: vec![1], clients: 3, ops: 10 };
/// let report = check_workload(&Adds, Counter::default, &run).await.expect("linearizable");
/// assert!(report.answered > 0);
/// # }
/// ```
pub async fn check_workload<W, A>(
    workload: &W,
    apply: impl Fn() -> A + Send + Sync + 'static,
    run: &Run,
) -> Result<Report, WorkloadFailure>
where
    W: Workload,
    A: Apply<W::Config>,
{
    let apply: Arc<dyn Fn() -> A + Send + Sync> = Arc::new(apply);
    let mut report = Report::default();
    for &seed in &run.seeds {
        let seed_run = run_seed(
            workload,
            Arc::clone(&apply),
            run,
            seed,
            linearizability_config(),
        )
        .await?;
        report.answered += seed_run.answered;
        report.changes += seed_run.changes;
    }
    Ok(report)
}

/// What one seed's run did, and the history it recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Calls answered.
    pub answered: usize,
    /// Membership changes that went through.
    pub changes: usize,
    /// The recorded history, one call per line with its client, operation,
    /// times (nanoseconds since the run began, on the runtime's clock:
    /// virtual in a simulation) and outcome: what a replay must reproduce
    /// byte for byte.
    pub history: String,
}

/// One seed: a 3-node cluster with `cfg`, the clients, the faults and the
/// membership changes, then the checks.
pub(super) async fn run_seed<W, A>(
    workload: &W,
    apply: Arc<dyn Fn() -> A + Send + Sync>,
    run: &Run,
    seed: u64,
    cfg: crate::node::NodeConfig,
) -> Result<SeedRun, WorkloadFailure>
where
    W: Workload,
    A: Apply<W::Config>,
{
    let book = Fingerprints::every(1);
    let c = TestCluster::memory(3)
        .seed(seed)
        .config(cfg)
        .apply(move || apply())
        .fingerprints(&book)
        .start()
        .await
        .map_err(|e| failure(seed, format!("the cluster did not start: {e}")))?;
    c.wait_for_leader(Duration::from_secs(10))
        .await
        .map_err(|e| failure(seed, format!("no first leader: {e}")))?;
    let calls = Calls::<W::Model>::new();
    let progress = Progress::default();
    let total = run.clients * run.ops;
    info!(seed, "--- workload starts");
    // The voter is removed only once the freeze is over: with one of three
    // frozen, the other two must be a quorum.
    let (thawed, freeze_over) = futures::channel::oneshot::channel::<()>();
    let setting = Setting {
        workload,
        c: &c,
        calls: &calls,
        progress: &progress,
        run,
        seed,
    };
    let ((), (), changes, ()) = futures::join!(
        clients(&setting),
        random_faults(&c, &progress, total, seed),
        membership_changes(&c, &progress, total, seed, freeze_over),
        async {
            freeze::freeze_the_leader(&setting).await;
            let _ = thawed.send(());
        },
    );
    c.shutdown().await;
    let history = calls.calls();
    let ok = history
        .iter()
        .filter(|c| matches!(c.ended, Ended::Ok(_)))
        .count();
    if ok == 0 {
        return Err(failure(seed, "no call was answered".into()));
    }
    match check_model(&workload.model(), &history) {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable(w) => {
            let window: Vec<_> = w.calls.iter().map(|&i| &history[i]).collect();
            return Err(failure(
                seed,
                format!("not linearizable from call {}: {window:#?}", w.failing),
            ));
        }
        Verdict::Unknown { partition } => {
            return Err(failure(
                seed,
                format!("the check ran out of steps (partition {partition:?})"),
            ))
        }
    }
    if let Some(d) = book.first_divergence() {
        return Err(failure(
            seed,
            format!(
                "the replicas' states differ from entry {}: {:?}",
                d.index, d.hashes
            ),
        ));
    }
    let rendered = history.iter().map(|c| format!("{c:?}\n")).collect();
    Ok(SeedRun {
        seed,
        answered: ok,
        changes,
        history: rendered,
    })
}

/// A third of the way in (and after the freeze), a voter drawn from the
/// seed is removed; two thirds in, it is added back as a learner and
/// promoted once caught up.
/// Each change goes to whichever node leads then (again while it answers
/// `Busy`: nothing was proposed); one that fails under the other faults is
/// logged and the workload goes on, so the history still has to hold.
async fn membership_changes<C: TypeConfig>(
    c: &TestCluster<C>,
    progress: &Progress,
    total: u64,
    seed: u64,
    freeze_over: futures::channel::oneshot::Receiver<()>,
) -> usize {
    let ids = c.ids();
    let node = ids[ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_6d62).gen_range(0..ids.len())];
    let mut done = 0;
    progress.reached(total / 3).await;
    let _ = freeze_over.await;
    info!(node, "--- remove a voter");
    match change(c, ConfChange::Remove(node)).await {
        Ok(()) => done += 1,
        Err(e) => info!(node, %e, "--- the removal did not go through"),
    }
    progress.reached(total * 2 / 3).await;
    info!(node, "--- add it back as a learner, then a voter");
    for step in [ConfChange::AddLearner(node), ConfChange::AddVoter(node)] {
        match change(c, step).await {
            Ok(()) => done += 1,
            Err(e) => info!(node, %e, "--- the change did not go through"),
        }
    }
    done
}

/// What the workload's parts share while one seed runs.
struct Setting<'a, W: Workload> {
    workload: &'a W,
    c: &'a TestCluster<W::Config>,
    calls: &'a Calls<W::Model>,
    progress: &'a Progress,
    run: &'a Run,
    seed: u64,
}

/// Sends `op` through `raft` as `client`, recording its call; returns how
/// it ended (`Failed`: refused, nothing done).
async fn call<W: Workload>(
    workload: &W,
    raft: &crate::Raft<W::Config>,
    calls: &Calls<W::Model>,
    client: u64,
    op: <W::Model as Model>::Op,
) -> Ended<()> {
    let id = calls.invoke(client, op.clone());
    let answer = match workload.request(&op) {
        Request::Propose(cmd) => raft.propose(cmd).await.map(|a| Answer::Applied(a.output)),
        Request::Read(q) => raft
            .read(q, Consistency::Linearizable)
            .await
            .map(Answer::Read),
        Request::ReadWith(q, consistency) => raft.read(q, consistency).await.map(Answer::Read),
    };
    match answer {
        Ok(a) => {
            calls.ok(id, workload.output(&op, a));
            Ended::Ok(())
        }
        Err(e) if e.outcome_unknown() => {
            calls.unknown(id);
            Ended::Unknown
        }
        Err(_) => {
            calls.failed(id);
            Ended::Failed
        }
    }
}

/// `change` on the current leader, again while it answers `Busy`, within
/// a few seconds.
async fn change<C: TypeConfig>(c: &TestCluster<C>, change: ConfChange) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut retry = tokio::time::interval(Duration::from_millis(20));
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let leader = c
            .wait_for_leader(left.max(Duration::from_millis(1)))
            .await
            .map_err(|e| e.to_string())?;
        match c.raft(leader).change_membership(change.clone()).await {
            Ok(_) => return Ok(()),
            Err(ClientError::Busy | ClientError::NotLeader { .. } | ClientError::NoLeader)
                if tokio::time::Instant::now() < deadline =>
            {
                retry.tick().await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

pub(super) fn failure(seed: u64, why: String) -> WorkloadFailure {
    WorkloadFailure {
        seed,
        why,
        replay: None,
    }
}

/// Every client's operations, each through a node drawn from the seed;
/// every finished one is a step of `progress`.
async fn clients<W: Workload>(s: &Setting<'_, W>) {
    let Setting {
        workload,
        c,
        calls,
        progress,
        run,
        seed,
    } = *s;
    futures::future::join_all((0..run.clients).map(|client| async move {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(client));
        let ids = c.ids();
        for _ in 0..run.ops {
            let node = ids[rng.gen_range(0..ids.len())];
            let raft = c.raft(node).clone().with_timeout(CALL_TIMEOUT);
            let op = workload.op(&mut rng);
            if let Ended::Failed = call(workload, &raft, calls, client, op).await {
                // A refused client backs off before its next operation, as
                // a real one would: in virtual time a refusal costs nothing,
                // and a client would spend every operation it has in one
                // instant, before any election could end.
                tokio::time::sleep(REFUSED_PAUSE).await;
            }
            progress.step();
        }
    }))
    .await;
}
