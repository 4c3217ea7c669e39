//! The shared cluster-test bodies over a service that is not the kit's
//! `Kv`, as a user runs them over their own: `testing::Accounts` keeps text
//! balances under account names, answers a write with nothing and a read
//! with the text. It implements `testing::KeyValue` (how a `u64` under a
//! key maps onto its commands and queries), and every body of
//! `testing::cases` runs over it, on the memory network: the five the
//! socket crates call by hand and all of `cluster_cases!`.

use raft_actors::node::NodeConfig;
use raft_actors::testing::{cases, Accounts, TestCluster, TypedBuilder};

async fn memory(seed: u64, cfg: NodeConfig) -> TypedBuilder<Accounts> {
    TestCluster::memory(3)
        .seed(seed)
        .config(cfg)
        .apply(Accounts::default)
}

raft_actors::cluster_cases!(memory);

#[actix_rt::test]
async fn elect_one_leader() {
    cases::elect_one_leader(memory(1, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn leader_crash_elects_a_new_leader() {
    cases::leader_crash_elects_a_new_leader(memory(2, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn leader_proposals_apply_everywhere() {
    cases::leader_proposals_apply_everywhere(memory(10, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn follower_proposal_is_forwarded() {
    cases::follower_proposal_is_forwarded(memory(11, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn leader_cut_one_way_is_replaced() {
    cases::leader_cut_one_way_is_replaced(memory(3, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot() {
    cases::lagging_follower_catches_up_by_snapshot(memory(30, cases::snapshot_config()).await)
        .await;
}
