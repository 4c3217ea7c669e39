//! [`simulate_workload`]: [`check_workload`](super::workload::check_workload)
//! with the whole actor layer deterministic. Every node, the memory
//! network with its seeded faults, the memory storage and the apply actors
//! run on one thread, on a current-thread runtime whose clock is paused:
//! time moves only when every actor waits, straight to the next timer. So
//! one seed reproduces one schedule exactly, and with it the same history
//! byte for byte ([`SeedRun::history`], times included), every run.
//!
//! Replaying: [`SEED_VAR`] (`RAFT_ACTORS_SEED=<seed>`) runs that seed
//! alone, and [`TRACE_VAR`] (`RAFT_ACTORS_TRACE=1`) prints every event the
//! nodes log (at debug, or what `RUST_LOG` says) with its virtual time. A
//! failing seed's error carries the command that does both for the test
//! that failed ([`WorkloadFailure::replay`]).
//!
//! It must never be called from inside a runtime (it starts its own, one
//! per seed), and nothing it runs may start a thread or read the wall
//! clock to decide: either would bring the operating system's scheduler
//! back into the schedule. Nodes run with [`ApplyThread::Node`] for that.

use std::future::Future;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{MakeWriter, TestWriter};
use tracing_subscriber::EnvFilter;

use super::cases::linearizability::linearizability_config;
use super::workload::{failure, run_seed, Report, Run, SeedRun, Workload, WorkloadFailure};
use crate::apply::Apply;
use crate::node::{ApplyThread, NodeConfig};

/// Runs only this seed when set (a replay).
pub const SEED_VAR: &str = "RAFT_ACTORS_SEED";
/// Prints a trace of the run, in virtual time, to the test's output when
/// set to `1`.
pub const TRACE_VAR: &str = "RAFT_ACTORS_TRACE";

/// Runs `workload` against the state machines `apply` builds, each seed
/// of `run` (or the one [`SEED_VAR`] names) on one thread in virtual time,
/// and checks each history as
/// [`check_workload`](super::workload::check_workload) does; `Ok` with what
/// it did, or the first seed that failed with the command that replays it.
/// A plain `#[test]`, not an async one: it starts its own runtimes.
///
/// ```
/// use raft_actors::testing::deterministic::simulate_workload;
/// use raft_actors::testing::workload::{Answer, ChaCha8Rng, Request, Rng, Run, Workload};
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
/// let run = Run { seeds: vec![1, 2], clients: 3, ops: 20 };
/// let report = simulate_workload(&Adds, Counter::default, &run).expect("linearizable");
/// assert!(report.answered > 0);
/// ```
///
/// # Panics
/// If [`SEED_VAR`] is set to something that is not a number, or if called
/// inside a runtime: a test's own mistakes.
pub fn simulate_workload<W, A>(
    workload: &W,
    apply: impl Fn() -> A + Send + Sync + 'static,
    run: &Run,
) -> Result<Report, WorkloadFailure>
where
    W: Workload,
    A: Apply<W::Config>,
{
    let apply: Arc<dyn Fn() -> A + Send + Sync> = Arc::new(apply);
    let live = std::env::var(TRACE_VAR).is_ok_and(|v| v == "1");
    let mut report = Report::default();
    for seed in seeds(run) {
        let trace = live.then(|| BoxMakeWriter::new(TestWriter::new()));
        let cfg = simulation_config();
        let done = one_seed(workload, Arc::clone(&apply), run, seed, cfg, trace)?;
        report.answered += done.answered;
        report.changes += done.changes;
    }
    Ok(report)
}

/// One seed of [`simulate_workload`], with its history: the same seed
/// gives the same [`SeedRun`], byte for byte (given a workload whose
/// operations depend only on the generator it is handed). A failure
/// carries the command that replays it.
pub fn simulate_seed<W, A>(
    workload: &W,
    apply: impl Fn() -> A + Send + Sync + 'static,
    run: &Run,
    seed: u64,
) -> Result<SeedRun, WorkloadFailure>
where
    W: Workload,
    A: Apply<W::Config>,
{
    one_seed(
        workload,
        Arc::new(apply),
        run,
        seed,
        simulation_config(),
        None,
    )
}

/// [`simulate_seed`] with the nodes' settings `cfg` instead of
/// [`simulation_config`]'s (its own faults' settings, a broken rule of the
/// core's test builds). The state machine runs on the node's thread
/// whatever `cfg` says: on a thread of its own the run would not be
/// deterministic.
pub fn simulate_seed_with<W, A>(
    workload: &W,
    apply: impl Fn() -> A + Send + Sync + 'static,
    run: &Run,
    seed: u64,
    cfg: NodeConfig,
) -> Result<SeedRun, WorkloadFailure>
where
    W: Workload,
    A: Apply<W::Config>,
{
    let cfg = NodeConfig {
        apply_thread: ApplyThread::Node,
        ..cfg
    };
    one_seed(workload, Arc::new(apply), run, seed, cfg, None)
}

/// [`simulate_seed`] with a trace: every event the nodes and the kit log
/// while it runs, each stamped with its virtual time (seconds since the
/// run began), at debug level unless `RUST_LOG` says otherwise. Tracing
/// changes nothing in the run: its history is [`simulate_seed`]'s. The
/// subscriber is the run's thread's alone, but tracing decides per call
/// site for the whole process: run a traced replay by itself (the printed
/// command's `--exact` does), not beside tests that set subscribers of
/// their own, or some events may be missing from the trace.
pub fn simulate_traced<W, A>(
    workload: &W,
    apply: impl Fn() -> A + Send + Sync + 'static,
    run: &Run,
    seed: u64,
) -> (Result<SeedRun, WorkloadFailure>, String)
where
    W: Workload,
    A: Apply<W::Config>,
{
    let sink = TraceSink::default();
    let trace = Some(BoxMakeWriter::new(sink.clone()));
    let cfg = simulation_config();
    let outcome = one_seed(workload, Arc::new(apply), run, seed, cfg, trace);
    (outcome, sink.text())
}

/// How long one seed may run, in virtual time, before it counts as stuck:
/// far beyond what any workload of the kit takes (seconds).
pub const VIRTUAL_BUDGET: Duration = Duration::from_secs(3600);

/// One seed in virtual time, traced to `trace` if given; a panic out of
/// the run (the kit's own `expect`s, the user's `Workload` or model) or a
/// run past [`VIRTUAL_BUDGET`] is a failure of that seed like any other,
/// with its replay command.
fn one_seed<W, A>(
    workload: &W,
    apply: Arc<dyn Fn() -> A + Send + Sync>,
    run: &Run,
    seed: u64,
    cfg: NodeConfig,
    trace: Option<BoxMakeWriter>,
) -> Result<SeedRun, WorkloadFailure>
where
    W: Workload,
    A: Apply<W::Config>,
{
    let body = async {
        // Installed inside the runtime, so the clock it stamps with is the
        // virtual one from its start.
        let _installed = trace.map(|writer| {
            let filter = EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("raft_actors=debug,info"));
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_timer(VirtualTime(tokio::time::Instant::now()))
                .with_ansi(false)
                .with_target(false)
                .with_writer(writer)
                .finish();
            tracing::subscriber::set_default(subscriber)
        });
        let run = run_seed(workload, apply, run, seed, cfg);
        match tokio::time::timeout(VIRTUAL_BUDGET, run).await {
            Ok(outcome) => outcome,
            Err(_) => Err(failure(
                seed,
                format!("the seed did not finish within {VIRTUAL_BUDGET:?} of virtual time"),
            )),
        }
    };
    // The run is dropped whole on a panic (its runtime with it): nothing
    // of it is observed afterwards, so unwind safety cannot be broken.
    let outcome = match catch_unwind(AssertUnwindSafe(|| in_virtual_time(body))) {
        Ok(outcome) => outcome,
        Err(panic) => Err(failure(
            seed,
            format!("panicked: {}", crate::error::panic_message(&*panic)),
        )),
    };
    outcome.map_err(|mut failure| {
        failure.replay = Some(replay_command(seed));
        failure
    })
}

/// Runs `f` to completion on a fresh actix system over a current-thread
/// runtime with a paused clock: one thread, virtual time.
///
/// ```
/// use std::time::Duration;
/// let waited = raft_actors::testing::deterministic::in_virtual_time(async {
///     let t = tokio::time::Instant::now();
///     tokio::time::sleep(Duration::from_secs(3600)).await; // returns at once
///     t.elapsed()
/// });
/// assert_eq!(waited, Duration::from_secs(3600));
/// ```
///
/// # Panics
/// If called inside a runtime, or if the runtime cannot be built.
pub fn in_virtual_time<F: Future>(f: F) -> F::Output {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
    .block_on(f)
}

/// The nodes' settings in a simulation: the faults' test settings, with
/// the state machine on the node's thread.
pub fn simulation_config() -> NodeConfig {
    NodeConfig {
        apply_thread: ApplyThread::Node,
        ..linearizability_config()
    }
}

/// The seeds to run: the one [`SEED_VAR`] names, or all of `run`'s.
fn seeds(run: &Run) -> Vec<u64> {
    match std::env::var(SEED_VAR) {
        Ok(v) => vec![v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={v:?} is not a seed (a u64)"))],
        Err(_) => run.seeds.clone(),
    }
}

/// The command that replays `seed` with a trace. Cargo runs a test with
/// its package's name in `CARGO_PKG_NAME`, the binary is named after its
/// target (plus a hash), and libtest names each test's thread after the
/// test: together, the one test of the one target.
fn replay_command(seed: u64) -> String {
    let mut command = format!("{SEED_VAR}={seed} {TRACE_VAR}=1 cargo test");
    let package = std::env::var("CARGO_PKG_NAME").ok();
    if let Some(package) = &package {
        command.push_str(&format!(" -p {package}"));
    }
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(str::to_owned);
    let target = std::env::current_exe().ok().and_then(|exe| {
        let stem = exe.file_stem()?.to_str()?.to_owned();
        Some(match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
    });
    match (&test, target, &package) {
        (Some(_), Some(target), Some(package)) if target == package.replace('-', "_") => {
            command.push_str(" --lib");
        }
        (Some(_), Some(target), _) => command.push_str(&format!(" --test {target}")),
        _ => {}
    }
    match test {
        Some(test) => command.push_str(&format!(" -- --exact {test} --nocapture")),
        None => command.push_str(" -- --nocapture"),
    }
    command
}

/// Stamps events with the virtual time since the run began.
struct VirtualTime(tokio::time::Instant);

impl FormatTime for VirtualTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>11.6}s", self.0.elapsed().as_secs_f64())
    }
}

/// Where a trace is written: a shared buffer.
#[derive(Clone, Default)]
struct TraceSink(Arc<Mutex<Vec<u8>>>);

impl TraceSink {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for TraceSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Appends only: a poisoned lock's bytes are sound.
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for TraceSink {
    type Writer = TraceSink;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
