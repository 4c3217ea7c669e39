//! [`TcpNetwork`] (feature `testing`): the test kit's in-process cluster
//! ([`TestCluster`](raft_actors::testing::TestCluster)) over this transport
//! on loopback, so the kit's shared cluster-test bodies
//! (`raft_actors::testing::cases`, `raft_actors::cluster_cases!`) run over
//! TCP with any service. Put a [`ProxyMesh`](raft_actors::testing::ProxyMesh)
//! in front of it for the bodies that inject network faults.
//!
//! It is for tests only: where a test would fail anyway (a port that cannot
//! be bound), it panics with the reason.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix::Recipient;
use raft_actors::core::NodeId;
use raft_actors::testing::ClusterNetwork;
use raft_actors::transport::{Peer, Transport};

use crate::{TcpConfig, TcpTransport};

/// The cluster id every [`TcpNetwork`] node carries.
pub const TEST_CLUSTER: u64 = 0xc1;

/// Loopback ports for a cluster's nodes, bound at once (port 0) so every
/// address is known before a node starts, with per-link routes (through a
/// proxy): what [`TcpNetwork`] and the HTTP transport's test network share.
#[derive(Default)]
pub struct Loopback {
    listeners: BTreeMap<NodeId, TcpListener>,
    addrs: BTreeMap<NodeId, SocketAddr>,
    /// `(from, to) -> address` overrides, for proxies.
    routes: BTreeMap<(NodeId, NodeId), SocketAddr>,
}

impl Loopback {
    /// Binds a listener per node.
    ///
    /// # Panics
    /// If a loopback port cannot be bound.
    pub fn bind(ids: &[NodeId]) -> Self {
        let listeners: BTreeMap<_, _> = ids
            .iter()
            .map(|id| {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
                (*id, l)
            })
            .collect();
        let addrs = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().expect("a bound address")))
            .collect();
        Loopback {
            listeners,
            addrs,
            routes: BTreeMap::new(),
        }
    }

    /// Where node `id` listens.
    ///
    /// # Panics
    /// If `id` is not a node of these ports.
    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.addrs[&id]
    }

    /// Where every node listens.
    pub fn addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.addrs.clone()
    }

    /// Sends `from -> to` through `via` instead of `to`'s own address.
    pub fn route(&mut self, from: NodeId, to: NodeId, via: SocketAddr) {
        self.routes.insert((from, to), via);
    }

    /// Where node `id` reaches each of `peers`: its own address, or its
    /// link's route.
    pub fn peers_of(&self, id: NodeId, peers: &[NodeId]) -> BTreeMap<NodeId, SocketAddr> {
        peers
            .iter()
            .map(|p| {
                let addr = self.routes.get(&(id, *p)).copied().unwrap_or(self.addrs[p]);
                (*p, addr)
            })
            .collect()
    }

    /// Node `id`'s listener: the one bound at first, or its address bound
    /// again (a restarted endpoint).
    ///
    /// # Panics
    /// If the address cannot be bound again.
    pub fn listener(&mut self, id: NodeId) -> TcpListener {
        match self.listeners.remove(&id) {
            Some(l) => l,
            None => TcpListener::bind(self.addrs[&id]).expect("rebind its address"),
        }
    }
}

/// Every node listens on its own loopback port ([`Loopback`]); a link may
/// be routed through another address (a proxy).
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::node::NodeConfig;
/// use raft_actors::testing::{cases, Kv, ProxyMesh, TestCluster};
/// use raft_actors_transport_tcp::testing::TcpNetwork;
///
/// // A body over TCP, with a fault-injecting proxy on every link.
/// let net = TcpNetwork::bind(&[1, 2, 3], 7);
/// let addrs = net.addrs();
/// let b = TestCluster::memory(3).seed(7).apply(Kv::default);
/// let (b, _mesh) = ProxyMesh::in_front(b, &addrs, 7, |routes| net.routes(routes))
///     .await
///     .expect("proxies");
/// cases::elect_one_leader(b).await;
/// # }
/// ```
#[derive(Default)]
pub struct TcpNetwork {
    seed: u64,
    ports: Loopback,
    transports: BTreeMap<NodeId, TcpTransport>,
}

impl TcpNetwork {
    /// Binds a listener per node now; `seed` seeds the transports'
    /// backoff jitter.
    ///
    /// # Panics
    /// If a loopback port cannot be bound.
    pub fn bind(ids: &[NodeId], seed: u64) -> Self {
        TcpNetwork {
            seed,
            ports: Loopback::bind(ids),
            transports: BTreeMap::new(),
        }
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
}

impl ClusterNetwork for TcpNetwork {
    fn transport(&mut self, id: NodeId, ids: &[NodeId]) -> Box<dyn Transport> {
        let mut cfg = TcpConfig::new(id, TEST_CLUSTER, self.ports.peers_of(id, ids));
        cfg.seed = self.seed;
        // A healed link should come back well within a test's election
        // timeouts.
        cfg.backoff_max = Duration::from_millis(100);
        let t = TcpTransport::new(cfg).expect("a transport");
        self.transports.insert(id, t.clone());
        Box::new(t)
    }

    fn register(&mut self, id: NodeId, mailbox: Recipient<Peer>) {
        let listener = self.ports.listener(id);
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
