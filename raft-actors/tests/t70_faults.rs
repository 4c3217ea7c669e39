//! Faults: a partitioned leader's write is never applied, writes during
//! leader changes succeed or fail with a clear error, and a lossy network
//! only slows commits down. The first two bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use std::time::Duration;

use common::{init_logging, kv_cluster, memory, T};
use raft_actors::core::NodeId;
use raft_actors::testing::{cases, Counter, KvCommand, TestCluster};
use raft_actors::transport::LinkFaults;
use raft_actors::{ClientError, Consistency};
use tracing::info;

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

#[actix_rt::test]
async fn partitioned_leader_write_is_overwritten_never_applied() {
    cases::partitioned_leader_write_is_overwritten_never_applied(memory(40)).await;
}

#[actix_rt::test]
async fn writes_during_leader_transfers_succeed_or_fail_clearly() {
    cases::writes_during_leader_transfers_succeed_or_fail_clearly(memory(41)).await;
}

// Memory-only: duplication, reordering and the message counts exist only
// on the memory network (a byte stream between sockets neither duplicates
// nor reorders); over sockets, loss and delay are covered by
// `cases::partitions_keep_the_history_linearizable` and the lossy steps of
// `cases::history_under_random_faults_is_linearizable`.
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

/// A 3-node counter cluster, its leader, and a follower that follows it.
async fn counter_cluster(seed: u64) -> (TestCluster<Counter>, NodeId, NodeId) {
    init_logging();
    let c = TestCluster::memory(3)
        .seed(seed)
        .apply(Counter::default)
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let follower = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    c.raft(follower)
        .wait_for(T, |m| m.leader == Some(leader))
        .await
        .expect("the follower follows the leader");
    (c, leader, follower)
}

// Memory-only too: only the memory network duplicates.
/// Forwarding is not idempotent, and the node no longer filters copies:
/// with every message between a follower and its leader delivered twice,
/// each write through the follower still applies once (the leader's core
/// answers a copy from its record) and is answered once.
#[actix_rt::test]
async fn duplicated_forwards_and_answers_apply_once() {
    let (c, leader, follower) = counter_cluster(43).await;
    info!("--- every message between the follower and the leader arrives twice");
    let twice = LinkFaults {
        duplicate: 1.0,
        ..Default::default()
    };
    c.net().set_link(follower, leader, twice);
    c.net().set_link(leader, follower, twice);
    let mut last = 0;
    for n in 1..=10u64 {
        let out = c.raft(follower).propose(1).await.expect("answered");
        assert_eq!(out.output, n, "each forwarded add applied once");
        last = out.index;
    }
    assert!(c.net().stats().duplicated >= 20, "{:?}", c.net().stats());
    info!("--- heal: every node holds 10");
    c.net().heal();
    c.wait_all_applied(last, T).await.expect("all applied");
    for id in c.ids() {
        let v = c.raft(id).read((), Consistency::Stale).await.expect("read");
        assert_eq!(v, 10, "node {id}");
    }
}

/// A forwarded write whose answer is lost is unknown to its caller, never
/// refused: it may well apply, and here it does.
#[actix_rt::test]
async fn a_forwarded_write_whose_answer_is_lost_is_unknown_and_applies() {
    let (c, leader, follower) = counter_cluster(44).await;
    info!("--- the leader's messages to the follower are lost, its answer too");
    c.net().block(leader, follower);
    let raft = c
        .raft(follower)
        .clone()
        .with_timeout(Duration::from_millis(500));
    let err = raft.propose(5).await.expect_err("no answer reaches it");
    assert_eq!(err, ClientError::Timeout);
    assert!(err.outcome_unknown());
    info!("--- the write did apply, as \"unknown\" allowed");
    let v = c
        .raft(leader)
        .read((), Consistency::Linearizable)
        .await
        .expect("read at the leader");
    assert_eq!(v, 5);
    c.net().heal();
    let index = c.raft(leader).current().applied;
    c.wait_all_applied(index, T)
        .await
        .expect("the follower catches up");
}
