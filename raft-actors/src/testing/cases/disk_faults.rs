//! Failing disks, over any transport: every node's storage is a
//! [`FaultyStorage`] over the memory storage. A write whose fsync fails is
//! never acknowledged as a success, nor retried; the node ends that
//! incarnation and comes back on what is durable. A corrupt record at load
//! keeps the incarnation from starting (never an empty log). Histories of
//! concurrent clients on disks that fail on a seeded schedule are
//! linearizable, with faults that really fired.
//!
//! The bodies build their cluster's storage themselves (any storage the
//! builder had is replaced), so they need only a network and a seed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::info;

use super::clients::{Clients, Progress};
use super::linearizability::check_history;
use super::{follower_hearing, T};
use crate::core::NodeId;
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::node::messages::internal::InjectFault;
use crate::storage::{MemoryStorage, Storage};
use crate::testing::{
    FaultHandle, FaultPlan, FaultStats, FaultyStorage, History, KeyValue, KeyValueHandle,
    TestCluster, TypedBuilder, WriteFault,
};

/// The fault controls of a cluster's disks, by node.
#[derive(Clone, Default)]
struct Disks(Arc<Mutex<BTreeMap<NodeId, FaultHandle>>>);

impl Disks {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<NodeId, FaultHandle>> {
        // Inserts only: a panic cannot leave the map half-updated.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn of(&self, id: NodeId) -> FaultHandle {
        self.lock()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| panic!("no disk for node {id}"))
    }

    /// Every disk's counters, summed.
    fn total(&self) -> FaultStats {
        self.lock()
            .values()
            .map(FaultHandle::stats)
            .fold(FaultStats::default(), |a, s| FaultStats {
                loads: a.loads + s.loads,
                incarnations: a.incarnations + s.incarnations,
                writes: a.writes + s.writes,
                write_failures: a.write_failures + s.write_failures,
                fsync_failures: a.fsync_failures + s.fsync_failures,
                fsync_failures_kept: a.fsync_failures_kept + s.fsync_failures_kept,
                corrupt_loads: a.corrupt_loads + s.corrupt_loads,
                refused: a.refused + s.refused,
            })
    }

    fn set_enabled(&self, on: bool) {
        self.lock().values().for_each(|h| h.set_enabled(on));
    }
}

/// `b` with every node on a [`FaultyStorage`] following `plan(id)`.
fn on_faulty_disks<C: KeyValue>(
    b: TypedBuilder<C>,
    plan: impl Fn(NodeId) -> FaultPlan + Send + 'static,
) -> (TypedBuilder<C>, Disks) {
    let disks = Disks::default();
    let kept = disks.clone();
    let b = b.storage(move |id, membership| {
        let disk = FaultyStorage::new(MemoryStorage::new(membership.clone()), plan(id));
        kept.lock().insert(id, disk.handle());
        Box::new(disk) as Box<dyn Storage>
    });
    (b, disks)
}

/// The leader's fsync fails under a proposal, once with the batch lost and
/// once with it kept: the proposal is answered as unknown (never a
/// success, never "not applied"), the leader starts a new incarnation
/// without trying a write again in the failed one, and the cluster, that
/// node included, serves writes again.
pub async fn a_failed_fsync_is_never_acknowledged_nor_retried<C: KeyValue>(b: TypedBuilder<C>) {
    let (b, disks) = on_faulty_disks(b, |_| FaultPlan::none());
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let first = c.raft(leader).put_value(1, 1).await.expect("write");
    c.wait_all_applied(first.index, T).await.expect("applied");
    for (round, kept) in [(1u64, false), (2, true)] {
        let leader = c.wait_for_leader(T).await.expect("leader");
        let before = c.raft(leader).current().incarnation;
        let failed = disks.of(leader).stats().fsync_failures;
        info!(leader, kept, "--- the leader's next fsync fails");
        // Quiet now: the leader's next synced write is this proposal's.
        disks
            .of(leader)
            .fail_next_write(WriteFault::FsyncFails { kept });
        let answer = c.raft(leader).put_value(2, 10 + round).await;
        match &answer {
            Err(e) if e.outcome_unknown() => {}
            other => panic!("a write whose fsync failed answered {other:?}, not unknown"),
        }
        assert_eq!(disks.of(leader).stats().fsync_failures, failed + 1);
        c.raft(leader)
            .wait_for(T, |m| m.incarnation > before && m.down.is_none())
            .await
            .expect("a new incarnation");
        assert_eq!(
            disks.of(leader).stats().refused,
            0,
            "a write was tried again in the incarnation whose fsync failed"
        );
        info!(leader, "--- back: it serves writes again");
        c.wait_for_leader(T).await.expect("a leader");
        c.raft(leader)
            .wait_for(T, |m| m.leader.is_some())
            .await
            .expect("the restarted node hears a leader");
        let out = c
            .raft(leader)
            .put_value(3, round)
            .await
            .expect("a write through the restarted node");
        c.wait_all_applied(out.index, T).await.expect("applied");
        let v = c.raft(leader).get_value(3, Consistency::Linearizable).await;
        assert_eq!(v.expect("read"), Some(round));
    }
    assert_eq!(disks.total().refused, 0);
    c.shutdown().await;
}

/// A follower's disk returns a corrupt record at load: that incarnation
/// never starts, and the next read (clean) brings the node back with its
/// whole log, never empty. A record corrupt on every read keeps the node
/// down with a reason that names the corruption, refusing requests.
pub async fn a_corrupt_record_at_load_never_starts_the_node_empty<C: KeyValue>(b: TypedBuilder<C>) {
    let (b, disks) = on_faulty_disks(b, |_| FaultPlan::none());
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let f = follower_hearing(&c, leader).await;
    let mut last = 0;
    for k in 1..=3 {
        last = c.raft(leader).put_value(k, k).await.expect("write").index;
    }
    c.wait_all_applied(last, T).await.expect("applied");
    let disk = disks.of(f);
    info!(f, "--- one corrupt read at the follower's next load");
    c.crash(f).await;
    // Cut off, it can only show what its own disk gave it.
    c.faults().isolate(f);
    let (before, incarnation) = (disk.stats(), c.raft(f).current().incarnation);
    disk.corrupt_next_load();
    c.restart(f).await.expect("the next load is clean");
    let after = disk.stats();
    assert_eq!(after.corrupt_loads, before.corrupt_loads + 1);
    assert_eq!(after.loads, before.loads + 2, "refused, then read again");
    let m = c.raft(f).current();
    assert_eq!(
        m.incarnation,
        incarnation + 1,
        "the corrupt load started none"
    );
    assert!(m.last_index >= last, "it came back with its log: {m:?}");
    c.faults().heal();
    info!(
        f,
        "--- a record corrupt on the medium: every load refuses it"
    );
    c.crash(f).await;
    disk.corrupt_every_load(true);
    let incarnation = c.raft(f).current().incarnation;
    let _ = c.raft(f).addr().send(InjectFault::Restart).await;
    let m = c
        .raft(f)
        .wait_for(T, |m| {
            m.down.as_deref().is_some_and(|d| d.contains("gave up"))
        })
        .await
        .expect("it gives up, and stays down");
    let reason = m.down.unwrap_or_default();
    assert!(reason.contains("corrupt"), "a clear reason: {reason}");
    assert_eq!(m.incarnation, incarnation, "no incarnation started");
    let refused = c.raft(f).put_value(9, 9).await;
    assert!(
        matches!(refused, Err(ClientError::Fatal(_))),
        "requests are refused: {refused:?}"
    );
    let out = c
        .raft(leader)
        .put_value(4, 4)
        .await
        .expect("the others go on");
    assert!(out.index > last);
    c.shutdown().await;
}

/// 6 clients, 30 operations each, on a cluster whose every disk fails
/// writes, fsyncs and loads on a schedule drawn from `seed`: the history
/// is linearizable, no failed write was retried, and once the faults stop
/// the cluster serves a write. Answers the faults injected, so a caller
/// running several seeds can check that every kind fired. Build with
/// [`linearizability_config`](super::linearizability_config) (snapshots
/// and compaction under the faults too).
pub async fn histories_on_failing_disks_are_linearizable<C: KeyValue>(
    b: TypedBuilder<C>,
    seed: u64,
) -> FaultStats {
    let (b, disks) = on_faulty_disks(b, move |id| {
        FaultPlan::seeded(seed.wrapping_mul(1000).wrapping_add(id))
            .write_failures(0.01)
            .fsync_failures(0.02)
            .corrupt_loads(0.3)
    });
    let c: TestCluster<C> = b.start().await.expect("cluster starts");
    c.wait_for_leader(T).await.expect("first leader");
    let history = History::new();
    let clients = Clients {
        clients: 6,
        ops: 30,
        lease_reads: false,
    };
    info!(seed, "--- clients start on failing disks");
    clients.run(&c, &history, &Progress::default(), seed).await;
    disks.set_enabled(false);
    let stats = disks.total();
    info!(seed, ?stats, "--- disk faults injected");
    assert!(stats.injected() > 0, "seed {seed}: no disk fault fired");
    assert_eq!(
        stats.refused, 0,
        "seed {seed}: a write was tried after a failure, before a clean load"
    );
    check_history(&history, seed, 5);
    info!(seed, "--- faults off: the cluster serves a write");
    let leader = c.wait_for_leader(T).await.expect("a leader");
    c.raft(leader).put_value(7, 7).await.expect("a write");
    c.shutdown().await;
    stats
}
