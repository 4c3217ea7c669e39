//! [`HttpNetwork`] (feature `testing`): the test kit's in-process cluster
//! ([`TestCluster`](raft_actors::testing::TestCluster)) over this transport
//! on loopback, so the kit's shared cluster-test bodies
//! (`raft_actors::testing::cases`, `raft_actors::cluster_cases!`) run over
//! HTTP with any service. Put a [`ProxyMesh`](raft_actors::testing::ProxyMesh)
//! in front of it for the bodies that inject network faults.
//!
//! It is for tests only: where a test would fail anyway (a port that cannot
//! be bound), it panics with the reason.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use raft_actors::core::NodeId;
use raft_actors::testing::ClusterNetwork;
use raft_actors::transport::{Peer, Transport};
use raft_actors_tls::PeerTls;
use raft_actors_transport_tcp::testing::Loopback;

use crate::{HttpConfig, HttpTransport};

/// The cluster id every [`HttpNetwork`] node carries.
pub const TEST_CLUSTER: u64 = 0xc1;

/// Each node's certificate, for [`HttpNetwork::with_tls`].
pub type TlsFor = Arc<dyn Fn(NodeId) -> PeerTls + Send + Sync>;

/// Every node's endpoint on its own loopback port, bound when the network
/// is made (port 0), so addresses are known before the nodes start; a link
/// may be routed through another address (a proxy).
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::testing::{cases, Kv, TestCluster};
/// use raft_actors_transport_http::testing::HttpNetwork;
///
/// let b = TestCluster::memory(3)
///     .seed(1)
///     .apply(Kv::default)
///     .network(HttpNetwork::bind(&[1, 2, 3], 1));
/// cases::elect_one_leader(b).await;
/// # }
/// ```
#[derive(Default)]
pub struct HttpNetwork {
    seed: u64,
    ports: Loopback,
    transports: BTreeMap<NodeId, HttpTransport>,
    max_body: Option<usize>,
    tls: Option<TlsFor>,
}

impl HttpNetwork {
    /// Binds a listener per node now; `seed` seeds the transports'
    /// backoff jitter.
    ///
    /// # Panics
    /// If a loopback port cannot be bound.
    pub fn bind(ids: &[NodeId], seed: u64) -> Self {
        HttpNetwork {
            seed,
            ports: Loopback::bind(ids),
            ..Default::default()
        }
    }

    /// Every link over mutual TLS, node `id` presenting `tls(id)`.
    pub fn with_tls(mut self, tls: TlsFor) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Bodies of at most `bytes` (the transport's default otherwise).
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = Some(bytes);
        self
    }

    /// The body limit set with [`with_max_body`](Self::with_max_body).
    pub fn max_body(&self) -> Option<usize> {
        self.max_body
    }

    /// Where node `id` listens.
    ///
    /// # Panics
    /// If `id` is not a node of this network.
    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.ports.addr(id)
    }

    /// Where every node listens.
    pub fn addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.ports.addrs()
    }

    /// Sends each `(from, to)` link through its address in `routes`.
    pub fn routes(mut self, routes: BTreeMap<(NodeId, NodeId), SocketAddr>) -> Self {
        for ((from, to), via) in routes {
            self.ports.route(from, to, via);
        }
        self
    }

    /// Sends `from -> to` through `via` instead of `to`'s own address.
    pub fn route(mut self, from: NodeId, to: NodeId, via: SocketAddr) -> Self {
        self.ports.route(from, to, via);
        self
    }

    /// Node `id`'s transport, serving `inbox` on its address (again, after
    /// [`take`](Self::take)): what a conformance harness needs.
    pub fn endpoint(&mut self, id: NodeId, inbox: Recipient<Peer>) -> HttpTransport {
        let t = self.make(id);
        self.listen(id, inbox);
        t
    }

    /// Node `id`'s transport, handed over (to shut it down).
    pub fn take(&mut self, id: NodeId) -> Option<HttpTransport> {
        self.transports.remove(&id)
    }

    fn make(&mut self, id: NodeId) -> HttpTransport {
        let all: Vec<NodeId> = self.ports.addrs().into_keys().collect();
        let mut cfg = HttpConfig::new(id, TEST_CLUSTER, self.ports.peers_of(id, &all));
        cfg.seed = self.seed;
        // A healed link should come back well within a test's election
        // timeouts.
        cfg.backoff_max = Duration::from_millis(100);
        cfg.tls = self.tls.as_ref().map(|tls| tls(id));
        if let Some(m) = self.max_body {
            cfg.max_body_bytes = m;
        }
        let t = HttpTransport::new(cfg);
        self.transports.insert(id, t.clone());
        t
    }

    fn listen(&mut self, id: NodeId, inbox: Recipient<Peer>) {
        // A restarted endpoint listens on its old address again.
        let listener = self.ports.listener(id);
        self.transports[&id].serve(listener, inbox).expect("serve");
    }
}

impl ClusterNetwork for HttpNetwork {
    fn transport(&mut self, id: NodeId, _ids: &[NodeId]) -> Box<dyn Transport> {
        Box::new(self.make(id))
    }

    fn register(&mut self, id: NodeId, mailbox: Recipient<Peer>) {
        self.listen(id, mailbox);
    }

    fn unregister(&mut self, id: NodeId) {
        if let Some(t) = self.transports.remove(&id) {
            t.close();
        }
    }
}
