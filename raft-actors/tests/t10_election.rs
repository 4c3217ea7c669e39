//! Election through the actor layer: a leader emerges, everyone follows it,
//! and a new one emerges when it crashes. The bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::{kv_cluster, memory, T};
use raft_actors::testing::cases;
use tracing::info;

#[actix_rt::test]
async fn three_nodes_elect_one_leader() {
    cases::elect_one_leader(memory(1)).await;
}

#[actix_rt::test]
async fn leader_crash_elects_a_new_leader_in_a_higher_term() {
    cases::leader_crash_elects_a_new_leader(memory(2)).await;
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
