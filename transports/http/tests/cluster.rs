//! The cluster test bodies of `raft_actors::testing::cases`, shared with
//! the memory and TCP transports, here over HTTP on loopback; those that
//! inject network faults run through a `ProxyMesh`.

mod common;

use common::HttpNetwork;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{cases, Kv, TestCluster, TypedBuilder};

fn http(seed: u64) -> TypedBuilder<Kv> {
    common::init_logging();
    TestCluster::memory(3)
        .seed(seed)
        .apply(Kv::default)
        .network(HttpNetwork::bind(&[1, 2, 3], seed))
}

#[actix_rt::test]
async fn three_nodes_elect_one_leader_over_http() {
    cases::elect_one_leader(http(1)).await;
}

#[actix_rt::test]
async fn leader_crash_elects_a_new_leader_over_http() {
    cases::leader_crash_elects_a_new_leader(http(2)).await;
}

#[actix_rt::test]
async fn leader_proposals_apply_everywhere_over_http() {
    cases::leader_proposals_apply_everywhere(http(10)).await;
}

#[actix_rt::test]
async fn follower_proposal_is_forwarded_over_http() {
    cases::follower_proposal_is_forwarded(http(11)).await;
}

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_over_http() {
    common::init_logging();
    let b = TestCluster::memory(3)
        .seed(31)
        .config(cases::snapshot_config())
        .apply(Kv::default)
        .network(HttpNetwork::bind(&[1, 2, 3], 31));
    cases::lagging_follower_catches_up_by_snapshot(b).await;
}

/// The builder of the bodies that inject network faults: every link runs
/// through a `ProxyMesh`, attached as the cluster's fault control.
async fn proxied(seed: u64, cfg: NodeConfig) -> TypedBuilder<Kv> {
    common::proxied(seed, cfg).await.0
}

/// The bodies of `raft-actors/tests/t30_snapshot.rs` ... `t80_linearizability.rs`,
/// with the same seeds.
mod through_proxies {
    raft_actors::cluster_cases!(super::proxied);
}
