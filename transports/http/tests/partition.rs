//! Partitions over real sockets: every directed link of a 3-node HTTP
//! cluster runs through a fault-injecting proxy (`ProxyMesh`). The bodies
//! live in `raft_actors::testing::cases`, shared with the TCP transport.

mod common;

use common::proxied;
use raft_actors::node::NodeConfig;
use raft_actors::testing::cases;

#[actix_rt::test]
async fn partitions_keep_the_history_linearizable_over_http() {
    let (b, mesh) = proxied(21, NodeConfig::default()).await;
    cases::partitions_keep_the_history_linearizable(b, mesh, 21).await;
}

#[actix_rt::test]
async fn a_leader_cut_one_way_is_replaced_over_http() {
    // The mesh is attached to the builder as its fault control.
    let (b, _mesh) = proxied(22, NodeConfig::default()).await;
    cases::leader_cut_one_way_is_replaced(b).await;
}
