//! Election through the actor layer: a leader emerges, everyone follows it,
//! and a new one emerges when it crashes. The bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use raft_actors::testing::{cases, Kv, TestCluster, TypedBuilder};

fn memory(seed: u64) -> TypedBuilder<Kv> {
    common::init_logging();
    TestCluster::memory(3).seed(seed).apply(Kv::default)
}

#[actix_rt::test]
async fn three_nodes_elect_one_leader() {
    cases::elect_one_leader(memory(1)).await;
}

#[actix_rt::test]
async fn leader_crash_elects_a_new_leader_in_a_higher_term() {
    cases::leader_crash_elects_a_new_leader(memory(2)).await;
}
