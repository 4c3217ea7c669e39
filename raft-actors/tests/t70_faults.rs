//! Faults: a partitioned leader's write is never applied, writes during
//! leader changes succeed or fail with a clear error, and a lossy network
//! only slows commits down.

mod common;

use std::time::Duration;

use common::{kv_cluster, T};
use futures::future::join_all;
use raft_actors::testing::KvCommand;
use raft_actors::transport::LinkFaults;
use raft_actors::{ClientError, Consistency};
use tracing::info;

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

#[actix_rt::test]
async fn partitioned_leader_write_is_overwritten_never_applied() {
    let c = kv_cluster(3, 40).await;
    let old = c.wait_for_leader(T).await.expect("leader");
    info!("--- partition the leader");
    c.net().isolate(old);
    let lost = actix_rt::spawn({
        let raft = c.raft(old).clone().with_timeout(Duration::from_secs(20));
        async move { raft.propose(put(1, 666)).await }
    });
    info!("--- the majority elects a leader and commits");
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("new leader");
    let idx = c.raft(new).propose(put(1, 7)).await.expect("write").index;
    info!("--- heal: the old entry is overwritten, never applied (§5.3)");
    c.net().heal();
    c.wait_all_applied(idx, T).await.expect("all applied");
    let lost = lost.await.expect("task");
    assert!(
        matches!(lost, Err(ClientError::NotLeader { .. })),
        "the overwritten write fails, not applied: {lost:?}"
    );
    for id in c.ids() {
        let v = c
            .raft(id)
            .read(1, Consistency::Linearizable)
            .await
            .expect("read");
        assert_eq!(v, Some(7), "node {id}");
    }
}

#[actix_rt::test]
async fn writes_during_leader_transfers_succeed_or_fail_clearly() {
    let c = kv_cluster(3, 41).await;
    let mut leader = c.wait_for_leader(T).await.expect("leader");
    let mut acked = Vec::new();
    for round in 0..4u64 {
        info!(round, "--- write from every node while leadership moves");
        let writes = join_all((0..30u64).map(|i| {
            let raft = c.raft(1 + i % 3).clone();
            async move { (i, raft.propose(put(100 * round + i, i)).await) }
        }));
        let target = c
            .ids()
            .into_iter()
            .find(|id| *id != leader)
            .expect("target");
        let transfer = c.raft(leader).transfer_leader(target);
        let (results, moved) = futures::join!(writes, transfer);
        moved.expect("transfer");
        leader = target;
        for (i, r) in results {
            match r {
                Ok(_) => acked.push(100 * round + i),
                Err(
                    ClientError::NotLeader { .. }
                    | ClientError::NoLeader
                    | ClientError::Interrupted
                    | ClientError::Timeout,
                ) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
    }
    assert!(!acked.is_empty(), "some writes succeed");
    info!(
        acked = acked.len(),
        "--- every acknowledged write is readable on the final leader"
    );
    let leader = c.wait_for_leader(T).await.expect("leader");
    for key in acked {
        let v = c
            .raft(leader)
            .read(key, Consistency::Linearizable)
            .await
            .expect("read");
        assert!(v.is_some(), "acknowledged key {key} missing");
    }
}

#[actix_rt::test]
async fn lossy_duplicating_reordering_network_still_commits() {
    let c = kv_cluster(3, 42).await;
    c.wait_for_leader(T).await.expect("leader");
    info!("--- 10% loss, 10% duplicates, 20% reordering, delays up to 3 ms");
    c.net().set_all(LinkFaults {
        drop: 0.1,
        duplicate: 0.1,
        reorder: 0.2,
        max_delay: Duration::from_millis(3),
    });
    let mut last = 0;
    let mut ok = 0;
    for v in 0..30 {
        let leader = c.wait_for_leader(T).await.expect("leader");
        if let Ok(out) = c.raft(leader).propose(put(1, v)).await {
            last = last.max(out.index);
            ok += 1;
        }
    }
    assert!(ok >= 20, "only {ok} of 30 writes succeeded");
    let stats = c.net().stats();
    assert!(
        stats.dropped > 0 && stats.duplicated > 0 && stats.delayed > 0,
        "faults were injected: {stats:?}"
    );
    c.net().heal();
    c.wait_all_applied(last, T).await.expect("all applied");
}
