//! Replication through the actor layer: proposals on the leader and on
//! followers are applied everywhere, batched into few storage writes, and
//! bounded by the proposal queue. The first two bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::{kv_cluster, T};
use futures::future::join_all;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{cases, Kv, KvCommand, TestCluster};
use raft_actors::ClientError;
use tracing::info;

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

#[actix_rt::test]
async fn leader_proposals_apply_everywhere_with_outputs() {
    common::init_logging();
    let b = TestCluster::memory(3).seed(10).apply(Kv::default);
    cases::leader_proposals_apply_everywhere(b).await;
}

#[actix_rt::test]
async fn metrics_subscription_reports_role_term_commit_and_follower_match() {
    let c = kv_cluster(3, 14).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    let out = c.raft(leader).propose(put(1, 1)).await.expect("write");
    info!("--- the leader's subscription shows both followers caught up");
    let m = c
        .raft(leader)
        .wait_for(T, |m| {
            m.matched.len() == 2 && m.matched.values().all(|i| *i >= out.index)
        })
        .await
        .expect("followers match");
    assert_eq!(m.role, raft_actors::core::Role::Leader);
    assert_eq!(m.leader, Some(leader));
    assert!(m.term >= 1 && m.commit >= out.index && m.applied >= out.index);
    let mut rx = c.raft(leader).metrics();
    rx.borrow_and_update();
    c.raft(leader).propose(put(1, 2)).await.expect("write");
    let changed = actix_rt::time::timeout(T, rx.changed()).await;
    assert!(
        matches!(changed, Ok(Ok(()))),
        "a write publishes new metrics"
    );
    assert!(rx.borrow().commit > out.index);
}

#[actix_rt::test]
async fn a_write_that_cannot_commit_times_out_with_outcome_unknown() {
    let c = kv_cluster(3, 15).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    c.net().isolate(leader);
    let short = c
        .raft(leader)
        .clone()
        .with_timeout(std::time::Duration::from_millis(300));
    let r = short.propose(put(1, 1)).await;
    assert_eq!(r.as_ref().map(|_| ()), Err(&ClientError::Timeout));
    assert!(r.err().is_some_and(|e| e.outcome_unknown()));
}

#[actix_rt::test]
async fn proposal_on_a_follower_is_forwarded_and_applied_there() {
    common::init_logging();
    let b = TestCluster::memory(3).seed(11).apply(Kv::default);
    cases::follower_proposal_is_forwarded(b).await;
}

#[actix_rt::test]
async fn concurrent_proposals_are_group_committed() {
    let c = kv_cluster(3, 12).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    let before = c.storage(leader).append_calls();
    info!("--- 500 concurrent proposals");
    let raft = c.raft(leader).clone();
    let results = join_all((0..500).map(|i| {
        let raft = raft.clone();
        async move { raft.propose(put(i, i)).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        ok,
        500,
        "all succeed: {:?}",
        results.iter().find(|r| r.is_err())
    );
    let writes = c.storage(leader).append_calls() - before;
    info!(writes, "--- storage writes on the leader");
    assert!(
        writes < 100,
        "500 proposals took {writes} storage writes: not batched"
    );
}

#[actix_rt::test]
async fn a_full_proposal_queue_answers_busy() {
    common::init_logging();
    let cfg = NodeConfig {
        max_pending: 4,
        ..NodeConfig::default()
    };
    let c: TestCluster<Kv> = TestCluster::memory(3)
        .seed(13)
        .config(cfg)
        .apply(Kv::default)
        .start()
        .await
        .expect("start");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let raft = c.raft(leader).clone();
    let results = join_all((0..64).map(|i| {
        let raft = raft.clone();
        async move { raft.propose(put(i, i)).await }
    }))
    .await;
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::Busy)))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(busy > 0, "a queue of 4 must refuse some of 64");
    assert_eq!(ok + busy, 64, "every other proposal succeeds: {results:?}");
}
