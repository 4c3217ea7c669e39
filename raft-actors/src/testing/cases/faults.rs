//! Network faults and leader changes under writes, over any transport: a
//! partitioned leader's write is never applied (§5.3), and writes during
//! leader transfers succeed or fail with a clear error.

use std::time::Duration;

use futures::future::join_all;
use tracing::info;

use super::T;
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::testing::{KeyValue, KeyValueHandle, TypedBuilder};

/// A write proposed on an isolated leader fails with `NotLeader` once the
/// majority's leader overwrites it; it is never applied anywhere.
pub async fn partitioned_leader_write_is_overwritten_never_applied<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    info!("--- partition the leader");
    c.faults().isolate(old);
    let lost = actix_rt::spawn({
        let raft = c.raft(old).clone().with_timeout(Duration::from_secs(20));
        async move { raft.put_value(1, 666).await }
    });
    info!("--- the majority elects a leader and commits");
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("new leader");
    let idx = c.raft(new).put_value(1, 7).await.expect("write").index;
    info!("--- heal: the old entry is overwritten, never applied (§5.3)");
    c.faults().heal();
    c.wait_all_applied(idx, T).await.expect("all applied");
    let lost = lost.await.expect("task");
    assert!(
        matches!(lost, Err(ClientError::NotLeader { .. })),
        "the overwritten write fails, not applied: {lost:?}"
    );
    for id in c.ids() {
        let v = c
            .raft(id)
            .get_value(1, Consistency::Linearizable)
            .await
            .expect("read");
        assert_eq!(v, Some(7), "node {id}");
    }
    c.shutdown().await;
}

/// Four leadership transfers, each under 30 writes from every node: each
/// write succeeds or fails with a retryable error, and every acknowledged
/// one is readable on the final leader.
pub async fn writes_during_leader_transfers_succeed_or_fail_clearly<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let mut leader = c.wait_for_leader(T).await.expect("leader");
    let ids = c.ids();
    let mut acked = Vec::new();
    for round in 0..4u64 {
        info!(round, "--- write from every node while leadership moves");
        let writes = join_all((0..30u64).map(|i| {
            let raft = c.raft(ids[i as usize % ids.len()]).clone();
            async move { (i, raft.put_value(100 * round + i, i).await) }
        }));
        let target = super::follower_of(&c, leader);
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
            .get_value(key, Consistency::Linearizable)
            .await
            .expect("read");
        assert!(v.is_some(), "acknowledged key {key} missing");
    }
    c.shutdown().await;
}
