//! [`TcpNetwork`]: the test kit's cluster over TCP on loopback, ports
//! chosen by binding to port 0.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix::Recipient;
use raft_actors::core::NodeId;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{ClusterNetwork, Kv, ProxyMesh, TestCluster, TypedBuilder};
use raft_actors::transport::Peer;
use raft_actors::transport::Transport;
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Every node listens on its own loopback port; `route` may send a link
/// through another address (a proxy).
#[derive(Default)]
pub struct TcpNetwork {
    seed: u64,
    listeners: BTreeMap<NodeId, TcpListener>,
    addrs: BTreeMap<NodeId, SocketAddr>,
    transports: BTreeMap<NodeId, TcpTransport>,
    /// `(from, to) -> address` overrides, for proxies.
    routes: BTreeMap<(NodeId, NodeId), SocketAddr>,
}

impl TcpNetwork {
    /// Binds a listener per node now, so addresses are known before the
    /// nodes start.
    pub fn bind(ids: &[NodeId], seed: u64) -> Self {
        let listeners: BTreeMap<_, _> = ids
            .iter()
            .map(|id| (*id, TcpListener::bind("127.0.0.1:0").expect("bind")))
            .collect();
        let addrs = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().expect("addr")))
            .collect();
        TcpNetwork {
            seed,
            listeners,
            addrs,
            ..Default::default()
        }
    }

    /// Where node `id` listens.
    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.addrs[&id]
    }

    /// Sends `from -> to` through `via` instead of `to`'s own address.
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
}

/// A 3-node register-map cluster whose every directed link runs through
/// a fault-injecting proxy, attached as the cluster's fault control; the
/// mesh is returned too, for its counters.
pub async fn proxied(seed: u64, cfg: NodeConfig) -> (TypedBuilder<Kv>, ProxyMesh) {
    init_logging();
    let net = TcpNetwork::bind(&[1, 2, 3], seed);
    let addrs = net.addrs();
    let b = TestCluster::memory(3)
        .seed(seed)
        .config(cfg)
        .apply(Kv::default);
    ProxyMesh::in_front(b, &addrs, seed, |routes| net.routes(routes))
        .await
        .expect("proxies")
}

impl ClusterNetwork for TcpNetwork {
    fn transport(&mut self, id: NodeId, ids: &[NodeId]) -> Box<dyn Transport> {
        let peers = ids
            .iter()
            .map(|p| {
                let addr = self.routes.get(&(id, *p)).copied().unwrap_or(self.addrs[p]);
                (*p, addr)
            })
            .collect();
        let mut cfg = TcpConfig::new(id, 0xc1u64, peers);
        cfg.seed = self.seed;
        // A healed link should come back well within a test's election
        // timeouts.
        cfg.backoff_max = Duration::from_millis(100);
        let t = TcpTransport::new(cfg).expect("transport");
        self.transports.insert(id, t.clone());
        Box::new(t)
    }

    fn register(&mut self, id: NodeId, mailbox: Recipient<Peer>) {
        let listener = self.listeners.remove(&id).expect("registered once");
        self.transports[&id]
            .serve(listener, mailbox)
            .expect("serve");
    }

    fn unregister(&mut self, id: NodeId) {
        if let Some(t) = self.transports.remove(&id) {
            t.close();
        }
    }
}
