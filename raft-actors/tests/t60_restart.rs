//! Restarts: a caught panic, a crash, a failing disk. Pending requests of
//! the dead incarnation fail with an explicit error, nothing acknowledged
//! is lost, and the node rejoins; a node whose storage cannot be read stays
//! down and says why.

mod common;

use std::time::Duration;

use common::{kv_cluster, T};
use raft_actors::testing::KvCommand;
use raft_actors::{ClientError, Consistency};
use tracing::info;

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

#[actix_rt::test]
async fn caught_panic_fails_pending_requests_and_the_node_rejoins() {
    let c = kv_cluster(3, 30).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    let acked = c
        .raft(leader)
        .propose(put(1, 1))
        .await
        .expect("acked write");
    let incarnation = c.raft(leader).current().incarnation;

    info!("--- a proposal that cannot commit (the leader is cut off) is pending");
    c.net().isolate(leader);
    let pending = actix_rt::spawn({
        let raft = c.raft(leader).clone().with_timeout(Duration::from_secs(30));
        async move { raft.propose(put(1, 2)).await }
    });
    c.wait_until("the proposal is in the leader's log", T, |m| {
        m[&leader].last_index > acked.index
    })
    .await
    .expect("appended");

    info!("--- the node panics inside a handler");
    c.panic(leader);
    let answer = pending.await.expect("task");
    assert_eq!(
        answer.map(|_| ()),
        Err(ClientError::Interrupted),
        "pending proposal fails explicitly, promptly"
    );
    c.raft(leader)
        .wait_for(T, |m| m.incarnation > incarnation && m.down.is_none())
        .await
        .expect("restarted from storage");

    info!("--- it rejoins, and nothing acknowledged was lost");
    c.net().heal();
    let leader2 = c.wait_for_leader(T).await.expect("leader");
    let out = c
        .raft(leader2)
        .propose(put(2, 2))
        .await
        .expect("write after restart");
    c.wait_all_applied(out.index, T).await.expect("all applied");
    for id in c.ids() {
        let v = c.raft(id).read(1, Consistency::Stale).await.expect("read");
        assert!(v.is_some(), "node {id} lost the acknowledged write");
    }
}

#[actix_rt::test]
async fn crashed_follower_restarts_from_storage_and_rebuilds_its_state_machine() {
    let c = kv_cluster(3, 31).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    let follower = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("follower");
    for v in 1..=5 {
        c.raft(leader).propose(put(v, v)).await.expect("write");
    }
    info!("--- crash follower {follower}; writes go on without it");
    c.crash(follower).await;
    let crashed = c.raft(follower).read(1, Consistency::Stale).await;
    assert_eq!(
        crashed,
        Err(ClientError::ShuttingDown),
        "a crashed node refuses requests"
    );
    let last = c
        .raft(leader)
        .propose(put(9, 9))
        .await
        .expect("write")
        .index;

    info!("--- restart: log from storage, state machine rebuilt by replay");
    c.restart(follower).await.expect("restart");
    c.wait_all_applied(last, T).await.expect("caught up");
    for key in [1, 5, 9] {
        let v = c
            .raft(follower)
            .read(key, Consistency::Stale)
            .await
            .expect("read");
        assert_eq!(v, Some(key), "key {key} on the restarted node");
    }
}

#[actix_rt::test]
async fn snapshot_is_saved_and_restores_a_crashed_state_machine() {
    let c = kv_cluster(3, 32).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    let out = c.raft(leader).propose(put(4, 44)).await.expect("write");
    let index = c.raft(leader).snapshot().await.expect("snapshot");
    assert!(index >= out.index, "the snapshot covers the applied write");
    let saved = c.storage(leader).state().snapshot.expect("saved");
    assert_eq!(saved.meta.index, index);
    info!("--- crash and restart the leader: its state machine starts from the snapshot");
    c.crash(leader).await;
    c.restart(leader).await.expect("restart");
    c.raft(leader)
        .wait_for(T, |m| m.down.is_none() && m.applied >= index)
        .await
        .expect("back");
    let v = c
        .raft(leader)
        .read(4, Consistency::Stale)
        .await
        .expect("read");
    assert_eq!(v, Some(44));
}

#[actix_rt::test]
async fn failing_disk_stops_the_node_and_unreadable_storage_keeps_it_down() {
    let c = kv_cluster(3, 33).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    let follower = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("follower");
    info!("--- follower {follower}'s disk fails writes, then reads");
    c.storage(follower).fail_loads(true);
    c.storage(follower).fail_appends(true);
    c.raft(leader)
        .propose(put(1, 1))
        .await
        .expect("the majority still commits");
    let m = c
        .raft(follower)
        .wait_for(T, |m| m.down.is_some())
        .await
        .expect("the node goes down");
    let reason = m.down.unwrap_or_default();
    assert!(
        reason.contains("cannot load storage"),
        "a clear error: {reason}"
    );
    let refused = c.raft(follower).propose(put(2, 2)).await;
    assert!(
        matches!(refused, Err(ClientError::Fatal(_))),
        "requests are refused: {refused:?}"
    );
    info!("--- it stays down (no restart loop), the others go on");
    let out = c.raft(leader).propose(put(3, 3)).await.expect("write");
    assert!(c.raft(follower).current().down.is_some());
    assert!(out.index > 0);
}

#[actix_rt::test]
async fn shutdown_interrupts_pending_requests_and_refuses_new_ones() {
    let c = kv_cluster(3, 34).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    c.net().isolate(leader);
    let pending = actix_rt::spawn({
        let raft = c.raft(leader).clone().with_timeout(Duration::from_secs(30));
        async move { raft.propose(put(1, 1)).await }
    });
    c.wait_until("proposal appended", T, |m| {
        m[&leader].last_index > m[&leader].commit
    })
    .await
    .expect("appended");
    info!("--- shut the leader down");
    c.raft(leader).shutdown().await;
    let answer = pending.await.expect("task");
    // It may still commit elsewhere: unknown, not refused.
    assert_eq!(answer.map(|_| ()), Err(ClientError::Interrupted));
    let later = c.raft(leader).propose(put(2, 2)).await;
    assert_eq!(later.map(|_| ()), Err(ClientError::ShuttingDown));
}
