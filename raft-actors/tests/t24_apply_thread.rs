//! The state machine runs on a thread of its own (issue 12 point 4): a
//! state machine blocked in `apply` or in `snapshot` delays no tick,
//! heartbeat or persist of its node, so entries keep committing on every
//! node; a snapshot's view is written out on a thread of its own, so
//! writes keep being applied and answered meanwhile; and one that falls behind makes its node refuse new requests with
//! `Busy` (counted in the metrics) instead of queueing without bound.
//!
//! The gate below blocks the state machine's thread for real, as a slow
//! disk or a long computation in `Apply` would. If the state machine ran on
//! the node's thread, the whole single-threaded test runtime would block
//! with it: the watchdog then fails the test with a message instead of
//! letting it hang.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{init_logging, T};
use raft_actors::apply::{write_item, SnapshotView};
use raft_actors::core::LogIndex;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{Kv, KvCommand, TestCluster};
use raft_actors::{Apply, ClientError};

/// Closed, it blocks every state machine that reaches it until opened.
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn set(&self, closed: bool) {
        *self.closed.lock().expect("gate lock") = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().expect("gate lock");
        while *closed {
            closed = self.opened.wait(closed).expect("gate lock");
        }
    }
}

/// Where a [`Gated`] state machine waits at the gate.
#[derive(Clone, Copy, PartialEq)]
enum GateAt {
    /// In `apply`, on the state machine's thread.
    Apply,
    /// In `snapshot`, on the state machine's thread.
    Snapshot,
    /// While its snapshot view (a copy taken at once) is written out.
    View,
}

/// A register map that waits at the gate where `at` says.
struct Gated {
    kv: Kv,
    gate: Arc<Gate>,
    at: GateAt,
}

impl Apply<Kv> for Gated {
    fn apply(&mut self, index: LogIndex, command: KvCommand) -> Option<u64> {
        if self.at == GateAt::Apply {
            self.gate.pass();
        }
        self.kv.apply(index, command)
    }
    fn query(&self, key: u64) -> Option<u64> {
        self.kv.query(key)
    }
    fn snapshot(&self) -> BTreeMap<u64, u64> {
        if self.at == GateAt::Snapshot {
            self.gate.pass();
        }
        self.kv.snapshot()
    }
    fn restore(&mut self, s: BTreeMap<u64, u64>) {
        self.kv.restore(s)
    }
    fn snapshot_view(&self) -> Box<dyn SnapshotView> {
        let state = self.snapshot();
        let (gate, at) = (Arc::clone(&self.gate), self.at);
        Box::new(move |out: &mut dyn std::io::Write| {
            if at == GateAt::View {
                gate.pass();
            }
            write_item(out, &state)
        })
    }
}

/// Fails the test (exits the process with a message) if `done` is not set
/// within `limit`: a blocked runtime cannot fail on its own.
fn watchdog(limit: Duration) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&done);
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while !seen.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                eprintln!("the node's thread was blocked by its state machine for {limit:?}");
                std::process::exit(101);
            }
            std::thread::park_timeout(left);
        }
    });
    done
}

async fn cluster(gate: &Arc<Gate>, at: GateAt, cfg: NodeConfig) -> TestCluster<Kv> {
    init_logging();
    let gate = Arc::clone(gate);
    TestCluster::memory(3)
        .seed(24)
        .config(cfg)
        .apply(move || Gated {
            kv: Kv::default(),
            gate: Arc::clone(&gate),
            at,
        })
        .start()
        .await
        .expect("cluster starts")
}

fn put(key: u64) -> KvCommand {
    KvCommand::Put { key, value: key }
}

/// Proposes `n` writes at `leader` in the background; their answers come
/// back on the returned channel.
fn propose_many(
    c: &TestCluster<Kv>,
    leader: u64,
    n: u64,
) -> tokio::sync::mpsc::UnboundedReceiver<Result<(), ClientError>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for key in 0..n {
        let raft = c.raft(leader).clone().with_timeout(T);
        let tx = tx.clone();
        actix_rt::spawn(async move {
            let _ = tx.send(raft.propose(put(key)).await.map(|_| ()));
        });
    }
    rx
}

#[actix_rt::test]
async fn a_state_machine_blocked_in_apply_delays_no_commit_on_any_node() {
    let done = watchdog(Duration::from_secs(60));
    let gate = Arc::new(Gate::default());
    let c = cluster(&gate, GateAt::Apply, NodeConfig::default()).await;
    let leader = c.wait_for_leader(T).await.expect("a leader");
    c.raft(leader).propose(put(100)).await.expect("written");
    let before = c.metrics()[&leader].clone();

    gate.set(true);
    let mut answers = propose_many(&c, leader, 20);
    // Every node hears the leader's commit index only from its appends and
    // heartbeats: all of them moving on shows each node's thread (ticks,
    // persists, messages) runs while every state machine is blocked.
    let target = before.commit + 20;
    let m = c
        .wait_until(
            "20 entries committed everywhere while apply blocks",
            T,
            |m| m.values().all(|x| x.commit >= target),
        )
        .await
        .expect("commits while the state machines are blocked");
    assert!(
        m.values().all(|x| x.apply_lag > 0),
        "every state machine is behind its node: {m:?}"
    );
    assert_eq!(m[&leader].term, before.term, "no election meanwhile");
    assert!(c.raft(leader).status().await.is_ok(), "the node answers");
    assert!(answers.try_recv().is_err(), "nothing answered before apply");

    gate.set(false);
    for _ in 0..20 {
        let answer = answers.recv().await.expect("answered");
        assert_eq!(answer, Ok(()));
    }
    c.wait_until("state machines caught up", T, |m| {
        m.values().all(|x| x.apply_lag == 0)
    })
    .await
    .expect("caught up");
    done.store(true, Ordering::Release);
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_snapshot_being_built_delays_no_commit() {
    let done = watchdog(Duration::from_secs(60));
    let gate = Arc::new(Gate::default());
    let c = cluster(&gate, GateAt::Snapshot, NodeConfig::default()).await;
    let leader = c.wait_for_leader(T).await.expect("a leader");
    c.raft(leader).propose(put(100)).await.expect("written");
    let before = c.metrics()[&leader].clone();

    gate.set(true);
    let raft = c.raft(leader).clone().with_timeout(T);
    let snapshot = actix_rt::spawn(async move { raft.snapshot().await });
    let mut answers = propose_many(&c, leader, 10);
    let target = before.commit + 10;
    c.wait_until("10 entries committed while a snapshot is built", T, |m| {
        m.values().all(|x| x.commit >= target)
    })
    .await
    .expect("commits while the snapshot is built");
    assert!(!snapshot.is_finished(), "the snapshot waits at the gate");

    gate.set(false);
    let index = snapshot.await.expect("joined").expect("snapshot taken");
    assert!(index > before.applied.saturating_sub(1));
    for _ in 0..10 {
        assert_eq!(answers.recv().await.expect("answered"), Ok(()));
    }
    done.store(true, Ordering::Release);
    c.shutdown().await;
}

#[actix_rt::test]
async fn writes_are_applied_and_answered_while_a_snapshot_is_written_out() {
    let done = watchdog(Duration::from_secs(60));
    let gate = Arc::new(Gate::default());
    let c = cluster(&gate, GateAt::View, NodeConfig::default()).await;
    let leader = c.wait_for_leader(T).await.expect("a leader");
    let raft = c.raft(leader).clone().with_timeout(T);
    raft.propose(put(100)).await.expect("written");

    gate.set(true);
    let snap_raft = raft.clone();
    let snapshot = actix_rt::spawn(async move { snap_raft.snapshot().await });
    // Every write is applied and answered, and reads see it, while the
    // snapshot's view is still being written out.
    let mut answers = propose_many(&c, leader, 10);
    for _ in 0..10 {
        assert_eq!(answers.recv().await.expect("answered"), Ok(()));
    }
    for key in 0..10 {
        let read = raft.read(key, raft_actors::Consistency::Linearizable);
        assert_eq!(read.await.expect("read"), Some(key));
    }
    assert!(!snapshot.is_finished(), "the view waits at the gate");

    gate.set(false);
    let index = snapshot.await.expect("joined").expect("snapshot taken");
    let after = c.metrics()[&leader].clone();
    assert!(
        index < after.applied,
        "the snapshot is of the point it was asked at ({index}), before the 10 writes (applied {})",
        after.applied
    );
    // And it holds exactly the state at that point: the first write, none
    // of the ten applied while it was written out.
    use raft_actors::testing::StorageExt;
    let store = c.storage(leader);
    c.wait_until("the snapshot is recorded", T, |_| {
        store
            .state()
            .snapshot
            .is_some_and(|s| s.meta.index == index)
    })
    .await
    .expect("recorded");
    let snap = store.state().snapshot.expect("recorded");
    let bytes = store.snapshot_bytes(&snap).expect("its bytes");
    let state: BTreeMap<u64, u64> =
        raft_actors::apply::read_whole(&mut bytes.as_slice()).expect("the state written out");
    assert_eq!(state, BTreeMap::from([(100, 100)]), "the state at {index}");
    done.store(true, Ordering::Release);
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_state_machine_that_falls_behind_gets_backpressure_not_a_queue() {
    let done = watchdog(Duration::from_secs(60));
    let gate = Arc::new(Gate::default());
    let cfg = NodeConfig {
        max_apply_lag: 4,
        ..NodeConfig::default()
    };
    let c = cluster(&gate, GateAt::Apply, cfg).await;
    let leader = c.wait_for_leader(T).await.expect("a leader");
    c.raft(leader).propose(put(100)).await.expect("written");

    gate.set(true);
    // The first writes are taken and commit; once more than 4 wait for the
    // blocked state machine, the leader refuses the rest.
    let mut answers = propose_many(&c, leader, 5);
    c.wait_until("5 entries waiting to be applied", T, |m| {
        m[&leader].apply_lag >= 5
    })
    .await
    .expect("the state machine falls behind");
    let refused = c.raft(leader).propose(put(200)).await;
    assert_eq!(refused.map(|_| ()), Err(ClientError::Busy));
    let read = c
        .raft(leader)
        .read(1, raft_actors::Consistency::Linearizable)
        .await;
    assert!(matches!(read, Err(ClientError::Busy)), "{read:?}");
    let m = c
        .wait_until("refusals counted", T, |m| m[&leader].apply_refused >= 2)
        .await
        .expect("counted");
    assert!(m[&leader].apply_lag <= 5, "the queue stays bounded: {m:?}");

    gate.set(false);
    for _ in 0..5 {
        assert_eq!(answers.recv().await.expect("answered"), Ok(()));
    }
    c.wait_until("the leader caught up", T, |m| m[&leader].apply_lag == 0)
        .await
        .expect("caught up");
    c.raft(leader)
        .propose(put(300))
        .await
        .expect("taken again once caught up");
    done.store(true, Ordering::Release);
    c.shutdown().await;
}
