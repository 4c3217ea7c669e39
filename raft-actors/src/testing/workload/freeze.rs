//! The freeze of a workload run: the leader stopped past its lease while
//! the others elect and write, and reads sent to it meanwhile, so that a
//! leader back from a freeze that answers from its old lease shows in the
//! history. It only drives the cluster and records calls; it must never
//! judge a history (the model checker does).

use std::time::Duration;

use futures::StreamExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::info;

use super::{call, Ended, Model, Request, Setting, Workload, CALL_TIMEOUT, REFUSED_PAUSE};

/// How long the leader stays frozen, at least.
const FREEZE: Duration = Duration::from_millis(500);

/// A sixth of the way in, whichever node leads then is frozen (no ticks,
/// its mailbox held: a GC pause, a stopped VM), then resumed: a leader back
/// from a freeze must not answer from the lease it held before it. (Before
/// a voter is removed, which waits for it: the other two are a quorum, and
/// elect.)
///
/// Meanwhile a writer sends the workload's writes to the others' leader,
/// one after the other, and after each one acknowledged, a read of the
/// workload's goes to the frozen node: it begins after that write ended,
/// and is among the first things the resumed node handles, so a stale
/// answer shows in the history. (The workload's own clients soon all wait
/// on the frozen node, so they alone would rarely write meanwhile.) The
/// freeze lasts [`FREEZE`], longer while fewer than [`FREEZE_WRITES`]
/// writes were acknowledged, never past [`FREEZE_MAX`], within which the
/// calls queued at the frozen node are still waited for.
pub(super) async fn freeze_the_leader<W: Workload>(s: &Setting<'_, W>) {
    let (workload, c, calls, run) = (s.workload, s.c, s.calls, s.run);
    s.progress.reached(run.clients * run.ops / 6).await;
    let Some(leader) = c
        .ids()
        .into_iter()
        .find(|id| c.raft(*id).current().role.is_leader())
    else {
        info!("--- no leader to freeze");
        return;
    };
    info!(leader, "--- freeze the leader");
    c.pause_ticks(leader);
    let release = c.stall(leader);
    // What the others send it meanwhile is lost, as if it queued behind the
    // clients' calls: the worst order a resumed process may handle them in.
    c.faults().isolate(leader);
    let start = tokio::time::Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x6672_6565);
    let frozen = c.raft(leader).clone().with_timeout(CALL_TIMEOUT);
    let (reads, to_read) = futures::channel::mpsc::unbounded();
    let writer = run.clients;
    let write_then_resume = async move {
        let mut acknowledged = 0;
        while acknowledged < FREEZE_WRITES {
            let now = tokio::time::Instant::now();
            if now >= start + FREEZE_MAX {
                break;
            }
            let (Some(write), Some(read)) = (
                op_where(workload, &mut rng, true),
                op_where(workload, &mut rng, false),
            ) else {
                break;
            };
            // To the others' leader: a follower would forward it to the
            // frozen node, where it waits out its deadline.
            let left = (start + FREEZE_MAX).saturating_duration_since(now);
            let Ok(new) = c.wait_for_leader_except(&[leader], left).await else {
                break;
            };
            let left = (start + FREEZE_MAX).saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let raft = c.raft(new).clone().with_timeout(left);
            match call(workload, &raft, calls, writer, write).await {
                Ended::Ok(_) => {
                    acknowledged += 1;
                    let _ = reads.unbounded_send(read);
                }
                // Time passes before the next: a call that ended at once
                // (its deadline too close) must not spin in virtual time.
                Ended::Failed | Ended::Unknown => tokio::time::sleep(REFUSED_PAUSE).await,
            }
        }
        // Longer than an election timeout: a fault's length, not a wait
        // for a condition.
        tokio::time::sleep_until(start + FREEZE).await;
        info!(leader, acknowledged, "--- resume it");
        let _ = release.send(());
        c.faults().heal();
        c.resume_ticks(leader);
        // `reads` drops here: the readers end once their calls are answered.
    };
    let mut reader = writer;
    let read_frozen = to_read
        .map(|op| {
            // A client of its own per read: they may overlap.
            reader += 1;
            (reader, op)
        })
        .for_each_concurrent(None, |(reader, op)| {
            let frozen = frozen.clone();
            async move {
                call(workload, &frozen, calls, reader, op).await;
            }
        });
    futures::join!(write_then_resume, read_frozen);
}

/// How many writes the others acknowledge during the freeze, at least.
const FREEZE_WRITES: u32 = 4;

/// The longest freeze: shorter than a client's deadline.
const FREEZE_MAX: Duration = Duration::from_millis(700);

/// One of the workload's writes (`write`) or reads, drawn from `rng`
/// (`None` if it seems to have none: a few hundred draws gave none).
fn op_where<W: Workload>(
    workload: &W,
    rng: &mut ChaCha8Rng,
    write: bool,
) -> Option<<W::Model as Model>::Op> {
    (0..256)
        .map(|_| workload.op(rng))
        .find(|op| matches!(workload.request(op), Request::Propose(_)) == write)
}
