//! The shared cluster-test bodies over HTTP with a service that is not the
//! kit's `Kv` (`testing::Accounts`: text balances under account names), as
//! a user runs them over their own service: the crate's
//! `testing::HttpNetwork` under the cluster, a `ProxyMesh` in front of it
//! for the bodies that inject faults.

mod common;

use common::HttpNetwork;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{cases, Accounts, TestCluster};

#[actix_rt::test]
async fn elect_replicate_and_forward_over_http_with_another_service() {
    common::init_logging();
    let b = TestCluster::memory(3)
        .seed(10)
        .apply(Accounts::default)
        .network(HttpNetwork::bind(&[1, 2, 3], 10));
    cases::leader_proposals_apply_everywhere(b).await;
    let b = TestCluster::memory(3)
        .seed(11)
        .apply(Accounts::default)
        .network(HttpNetwork::bind(&[1, 2, 3], 11));
    cases::follower_proposal_is_forwarded(b).await;
}

#[actix_rt::test]
async fn a_partitioned_old_leader_serves_no_stale_read_over_http_with_another_service() {
    let (b, _mesh) = common::proxied_with(21, NodeConfig::default(), Accounts::default).await;
    cases::partitioned_old_leader_never_answers_a_linearizable_read_with_stale_data(b).await;
}

#[actix_rt::test]
async fn histories_under_random_faults_are_linearizable_over_http_with_another_service() {
    let (b, _mesh) =
        common::proxied_with(3, cases::linearizability_config(), Accounts::default).await;
    cases::history_under_random_faults_is_linearizable(b, 3).await;
}
