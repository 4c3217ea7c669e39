//! [`HttpNetwork`]: the test kit's cluster over HTTP on loopback, ports
//! chosen by binding to port 0, and the conformance harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix::Recipient;
use raft_actors::core::NodeId;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{
    ClusterNetwork, Kv, ProxyMesh, TestCluster, TransportHarness, TypedBuilder,
};
use raft_actors::transport::Peer;
use raft_actors::transport::Transport;
use raft_actors_tls::generate::{write_cluster, ClusterFiles};
use raft_actors_tls::PeerTls;
use raft_actors_transport_http::{HttpConfig, HttpTransport};

pub const CLUSTER: u64 = 0xc1;

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Every node's endpoint on its own loopback port; `route` may send a link
/// through another address (a proxy).
#[derive(Default)]
pub struct HttpNetwork {
    seed: u64,
    listeners: BTreeMap<NodeId, TcpListener>,
    addrs: BTreeMap<NodeId, SocketAddr>,
    transports: BTreeMap<NodeId, HttpTransport>,
    routes: BTreeMap<(NodeId, NodeId), SocketAddr>,
    max_body: Option<usize>,
    /// Mutual TLS, each node with its own certificate of one CA.
    tls: Option<std::sync::Arc<(tempfile::TempDir, ClusterFiles)>>,
}

impl HttpNetwork {
    pub fn bind(ids: &[NodeId], seed: u64) -> Self {
        let listeners: BTreeMap<_, _> = ids
            .iter()
            .map(|id| (*id, TcpListener::bind("127.0.0.1:0").expect("bind")))
            .collect();
        let addrs = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().expect("addr")))
            .collect();
        HttpNetwork {
            seed,
            listeners,
            addrs,
            ..Default::default()
        }
    }

    /// Every link over mutual TLS.
    pub fn with_tls(mut self) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ids: Vec<NodeId> = self.addrs.keys().copied().collect();
        let files = write_cluster(dir.path(), &ids).expect("certificates");
        self.tls = Some(std::sync::Arc::new((dir, files)));
        self
    }

    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.addrs[&id]
    }

    /// Where every node listens.
    pub fn addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.addrs.clone()
    }

    /// Sends each `(from, to)` link through its address in `routes`.
    pub fn routes(mut self, routes: BTreeMap<(NodeId, NodeId), SocketAddr>) -> Self {
        self.routes.extend(routes);
        self
    }

    pub fn route(mut self, from: NodeId, to: NodeId, via: SocketAddr) -> Self {
        self.routes.insert((from, to), via);
        self
    }

    fn make(&mut self, id: NodeId) -> HttpTransport {
        let peers = self
            .addrs
            .keys()
            .map(|p| {
                let addr = self.routes.get(&(id, *p)).copied().unwrap_or(self.addrs[p]);
                (*p, addr)
            })
            .collect();
        let mut cfg = HttpConfig::new(id, CLUSTER, peers);
        cfg.seed = self.seed;
        cfg.backoff_max = Duration::from_millis(100);
        if let Some(tls) = &self.tls {
            let (_, cert, key) = tls.1.nodes.iter().find(|n| n.0 == id).expect("a cert");
            cfg.tls = Some(PeerTls::load(cert, key, &tls.1.ca).expect("tls"));
        }
        if let Some(m) = self.max_body {
            cfg.max_body_bytes = m;
        }
        let t = HttpTransport::new(cfg);
        self.transports.insert(id, t.clone());
        t
    }

    fn listen(&mut self, id: NodeId, inbox: Recipient<Peer>) {
        let listener = match self.listeners.remove(&id) {
            Some(l) => l,
            // A restarted endpoint listens on its old address again.
            None => TcpListener::bind(self.addrs[&id]).expect("rebind"),
        };
        self.transports[&id].serve(listener, inbox).expect("serve");
    }
}

/// A 3-node register-map cluster whose every directed link runs through
/// a fault-injecting proxy, attached as the cluster's fault control; the
/// mesh is returned too, for its counters.
pub async fn proxied(seed: u64, cfg: NodeConfig) -> (TypedBuilder<Kv>, ProxyMesh) {
    init_logging();
    let net = HttpNetwork::bind(&[1, 2, 3], seed);
    let addrs = net.addrs();
    let b = TestCluster::memory(3)
        .seed(seed)
        .config(cfg)
        .apply(Kv::default);
    ProxyMesh::in_front(b, &addrs, seed, |routes| net.routes(routes))
        .await
        .expect("proxies")
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

/// The conformance suite's view of an [`HttpNetwork`].
pub struct Harness(pub HttpNetwork);

impl Harness {
    pub fn new(ids: &[NodeId], max_body: usize) -> Self {
        let mut n = HttpNetwork::bind(ids, 1);
        n.max_body = Some(max_body);
        Harness(n)
    }

    pub fn with_tls(self) -> Self {
        Harness(self.0.with_tls())
    }
}

impl TransportHarness for Harness {
    type T = HttpTransport;

    fn endpoint(&mut self, id: NodeId, inbox: Recipient<Peer>) -> HttpTransport {
        let t = self.0.make(id);
        self.0.listen(id, inbox);
        t
    }

    async fn disconnect(&mut self, id: NodeId) {
        if let Some(t) = self.0.transports.remove(&id) {
            t.shutdown().await;
        }
    }

    fn max_batch_bytes(&self) -> usize {
        self.0.max_body.unwrap_or(16 << 20) - 64
    }
}
