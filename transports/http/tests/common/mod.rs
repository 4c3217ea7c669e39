//! The HTTP tests' helpers: logging, TLS for the crate's [`HttpNetwork`],
//! a proxied register-map cluster, and the conformance harness.
#![allow(dead_code)]

use std::sync::Arc;

use actix::Recipient;
use raft_actors::apply::Apply;
use raft_actors::core::NodeId;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{Kv, ProxyMesh, TestCluster, TransportHarness, TypedBuilder};
use raft_actors::transport::Peer;
use raft_actors::TypeConfig;
use raft_actors_tls::generate::write_cluster;
use raft_actors_tls::PeerTls;
pub use raft_actors_transport_http::testing::HttpNetwork;
use raft_actors_transport_http::HttpTransport;

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `net` with every link over mutual TLS, each node with its own
/// certificate of one CA (written to a temporary dir that lives as long as
/// the network).
pub fn with_tls(net: HttpNetwork, ids: &[NodeId]) -> HttpNetwork {
    let dir = tempfile::tempdir().expect("a temp dir");
    let files = write_cluster(dir.path(), ids).expect("certificates");
    let kept = Arc::new((dir, files));
    net.with_tls(Arc::new(move |id| {
        let files = &kept.1;
        let (_, cert, key) = files.nodes.iter().find(|n| n.0 == id).expect("a cert");
        PeerTls::load(cert, key, &files.ca).expect("tls")
    }))
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
    let net = HttpNetwork::bind(&[1, 2, 3], seed);
    let addrs = net.addrs();
    let b = TestCluster::memory(3).seed(seed).config(cfg).apply(apply);
    ProxyMesh::in_front(b, &addrs, seed, |routes| net.routes(routes))
        .await
        .expect("proxies")
}

/// The conformance suite's view of an [`HttpNetwork`].
pub struct Harness(pub HttpNetwork, Vec<NodeId>);

impl Harness {
    pub fn new(ids: &[NodeId], max_body: usize) -> Self {
        Harness(
            HttpNetwork::bind(ids, 1).with_max_body(max_body),
            ids.to_vec(),
        )
    }

    pub fn with_tls(self) -> Self {
        let ids = self.1.clone();
        Harness(with_tls(self.0, &ids), self.1)
    }
}

impl TransportHarness for Harness {
    type T = HttpTransport;

    fn endpoint(&mut self, id: NodeId, inbox: Recipient<Peer>) -> HttpTransport {
        self.0.endpoint(id, inbox)
    }

    async fn disconnect(&mut self, id: NodeId) {
        if let Some(t) = self.0.take(id) {
            t.shutdown().await;
        }
    }

    fn max_batch_bytes(&self) -> usize {
        self.0.max_body().unwrap_or(16 << 20) - 64
    }
}
