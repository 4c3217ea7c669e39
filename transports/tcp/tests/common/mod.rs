//! The TCP tests' helpers: logging, and a proxied register-map cluster over
//! the crate's [`TcpNetwork`].
#![allow(dead_code)]

use raft_actors::apply::Apply;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{Kv, ProxyMesh, TestCluster, TypedBuilder};
use raft_actors::TypeConfig;
pub use raft_actors_transport_tcp::testing::TcpNetwork;

/// `n` listeners on free loopback ports, and the address map of nodes
/// `1..=n` on them.
pub fn listeners(
    n: u64,
) -> (
    Vec<std::net::TcpListener>,
    std::collections::BTreeMap<u64, std::net::SocketAddr>,
) {
    let ls: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let peers = ls
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().expect("addr")))
        .collect();
    (ls, peers)
}

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A 3-node register-map cluster whose every directed link runs through
/// a fault-injecting proxy, attached as the cluster's fault control; the
/// mesh is returned too, for its counters.
pub async fn proxied(seed: u64, cfg: NodeConfig) -> (TypedBuilder<Kv>, ProxyMesh) {
    proxied_with(seed, cfg, Kv::default).await
}

/// [`proxied`] around any service.
pub async fn proxied_with<C: TypeConfig, A: Apply<C>>(
    seed: u64,
    cfg: NodeConfig,
    apply: impl Fn() -> A + Send + Sync + 'static,
) -> (TypedBuilder<C>, ProxyMesh) {
    init_logging();
    let net = TcpNetwork::bind(&[1, 2, 3], seed);
    let addrs = net.addrs();
    let b = TestCluster::memory(3).seed(seed).config(cfg).apply(apply);
    ProxyMesh::in_front(b, &addrs, seed, |routes| net.routes(routes))
        .await
        .expect("proxies")
}
