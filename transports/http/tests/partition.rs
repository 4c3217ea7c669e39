//! Partitions over real sockets: every directed link of a 3-node TCP
//! cluster runs through a fault-injecting proxy (`ProxyMesh`). The bodies
//! live in `raft_actors::testing::cases`, shared with the TCP transport.

mod common;

use common::HttpNetwork;
use raft_actors::testing::{cases, Kv, ProxyMesh, TestCluster, TypedBuilder};

async fn proxied(seed: u64) -> (TypedBuilder<Kv>, ProxyMesh) {
    common::init_logging();
    let net = HttpNetwork::bind(&[1, 2, 3], seed);
    let mesh = ProxyMesh::start(&net.addrs(), seed).await.expect("proxies");
    let b = TestCluster::memory(3)
        .seed(seed)
        .apply(Kv::default)
        .network(net.routes(mesh.routes()));
    (b, mesh)
}

#[actix_rt::test]
async fn partitions_keep_the_history_linearizable_over_http() {
    let (b, mesh) = proxied(21).await;
    cases::partitions_keep_the_history_linearizable(b, mesh, 21).await;
}

#[actix_rt::test]
async fn a_leader_cut_one_way_is_replaced_over_http() {
    let (b, mesh) = proxied(22).await;
    cases::leader_cut_one_way_is_replaced(b, mesh).await;
}
