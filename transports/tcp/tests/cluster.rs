//! The cluster test bodies of `raft_actors::testing::cases`, the same ones
//! `raft-actors/tests/t10_election.rs` ... `t80_linearizability.rs` run
//! over the memory network, here over TCP on loopback; those that inject
//! network faults run through a `ProxyMesh`.

mod common;

use common::TcpNetwork;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{cases, Kv, TestCluster, TypedBuilder};

fn tcp(seed: u64) -> TypedBuilder<Kv> {
    common::init_logging();
    TestCluster::memory(3)
        .seed(seed)
        .apply(Kv::default)
        .network(TcpNetwork::bind(&[1, 2, 3], seed))
}

#[actix_rt::test]
async fn three_nodes_elect_one_leader_over_tcp() {
    cases::elect_one_leader(tcp(1)).await;
}

#[actix_rt::test]
async fn leader_crash_elects_a_new_leader_over_tcp() {
    cases::leader_crash_elects_a_new_leader(tcp(2)).await;
}

#[actix_rt::test]
async fn leader_proposals_apply_everywhere_over_tcp() {
    cases::leader_proposals_apply_everywhere(tcp(10)).await;
}

#[actix_rt::test]
async fn follower_proposal_is_forwarded_over_tcp() {
    cases::follower_proposal_is_forwarded(tcp(11)).await;
}

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_over_tcp() {
    common::init_logging();
    let b = TestCluster::memory(3)
        .seed(31)
        .config(cases::snapshot_config())
        .apply(Kv::default)
        .network(TcpNetwork::bind(&[1, 2, 3], 31));
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
