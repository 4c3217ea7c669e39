//! Election through the actor layer: a leader emerges, everyone follows it,
//! and a new one emerges when it crashes.

mod common;

use common::{kv_cluster, T};
use raft_actors::core::Role;
use tracing::info;

#[actix_rt::test]
async fn three_nodes_elect_one_leader() {
    let c = kv_cluster(3, 1).await;
    info!("--- a leader emerges and everyone follows it");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let m = c
        .wait_until("all follow", T, |m| {
            m.values().all(|x| x.leader == Some(leader))
        })
        .await
        .expect("all follow");
    let leaders = m.values().filter(|x| x.role == Role::Leader).count();
    assert_eq!(leaders, 1, "exactly one leader: {m:?}");
    let status = c.raft(leader).status().await.expect("status");
    assert!(status.role.is_leader());
    assert_eq!(status.peers.len(), 2, "the leader tracks both followers");
}

#[actix_rt::test]
async fn leader_crash_elects_a_new_leader_in_a_higher_term() {
    let c = kv_cluster(3, 2).await;
    let old = c.wait_for_leader(T).await.expect("leader");
    let old_term = c.raft(old).current().term;
    info!("--- crash the leader");
    c.crash(old).await;
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("new leader");
    assert_ne!(new, old);
    assert!(c.raft(new).current().term > old_term, "a new term");
    info!("--- the old leader restarts and follows");
    c.restart(old).await.expect("restart");
    c.wait_until("old follows new", T, |m| {
        m[&old].leader == Some(new) && m[&old].role == Role::Follower
    })
    .await
    .expect("old leader rejoins as follower");
}

#[actix_rt::test]
async fn a_leader_whose_ticks_pause_is_replaced_and_rejoins_as_follower() {
    let c = kv_cluster(3, 11).await;
    let old = c.wait_for_leader(T).await.expect("leader");
    info!("--- the leader's clock stops: no heartbeats, the others elect");
    c.pause_ticks(old);
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("a new leader");
    assert_ne!(new, old);
    info!("--- its clock resumes: it learns the newer term and follows");
    c.resume_ticks(old);
    c.raft(old)
        .wait_for(T, |m| m.leader == Some(new) && !m.role.is_leader())
        .await
        .expect("follows the new leader");
    c.shutdown().await;
}
