//! Election through the actor layer: a leader emerges, everyone follows it,
//! and a new one emerges when it crashes or its clock stops. The bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::memory;
use raft_actors::testing::cases;

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
    cases::a_leader_whose_ticks_pause_is_replaced_and_rejoins_as_follower(memory(11)).await;
}

#[actix_rt::test]
async fn a_leader_cut_one_way_is_replaced() {
    cases::leader_cut_one_way_is_replaced(memory(22)).await;
}
