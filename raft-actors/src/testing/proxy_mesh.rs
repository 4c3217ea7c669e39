//! [`ProxyMesh`]: a [`TcpProxy`] on every directed link of a cluster, so a
//! test over real sockets can cut, slow or heal links by node, through
//! the same [`NetworkFaults`] calls as on the memory network.
//!
//! Like each proxy it holds, it relays bytes without reading them: it
//! never alters, reorders or invents data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::core::NodeId;
use crate::testing::{
    ClusterNetwork, NetworkFaults, ProxyFaults, ProxyStats, TcpProxy, TypedBuilder,
};
use crate::transport::LinkFaults;
use crate::type_config::TypeConfig;

/// A [`TcpProxy`] on every directed link of a cluster: route node A's
/// dialling of node B through [`route(a, b)`](Self::route), then cut,
/// slow or heal links by node. Clones are handles to the same proxies,
/// which stop when the last handle is dropped.
///
/// ```
/// # #[actix_rt::main] async fn main() -> std::io::Result<()> {
/// use raft_actors::testing::ProxyMesh;
/// let l1 = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let l2 = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let addrs = [(1, l1.local_addr()?), (2, l2.local_addr()?)].into();
/// let mesh = ProxyMesh::start(&addrs, 1).await?;
/// assert_ne!(mesh.route(1, 2), addrs[&2]);
/// mesh.isolate(1);
/// mesh.heal();
/// mesh.partition(&[1], &[2]);
/// mesh.heal();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ProxyMesh {
    links: Arc<BTreeMap<(NodeId, NodeId), TcpProxy>>,
}

impl ProxyMesh {
    /// Starts a proxy for every ordered pair of nodes in `addrs`, relaying
    /// to the second node's address.
    pub async fn start(addrs: &BTreeMap<NodeId, SocketAddr>, seed: u64) -> std::io::Result<Self> {
        let mut links = BTreeMap::new();
        for &a in addrs.keys() {
            for (&b, &target) in addrs.iter().filter(|(b, _)| **b != a) {
                let p = TcpProxy::start(target, seed.wrapping_mul(1000) + a * 31 + b).await?;
                links.insert((a, b), p);
            }
        }
        Ok(ProxyMesh {
            links: Arc::new(links),
        })
    }

    /// Puts a new mesh in front of nodes listening at `addrs`: `network`
    /// is built from the mesh's [`routes`](Self::routes) (so every node
    /// dials every other through a proxy), and the mesh becomes the
    /// builder's fault control ([`TypedBuilder::faults`]). Answers the
    /// builder and the mesh, for its counters.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() -> std::io::Result<()> {
    /// use raft_actors::testing::{Kv, ProxyMesh, TestCluster};
    /// use raft_actors::transport::MemoryNetwork;
    /// let l1 = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let l2 = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addrs = [(1, l1.local_addr()?), (2, l2.local_addr()?)].into();
    /// let b = TestCluster::memory(2).apply(Kv::default);
    /// // A socket network would dial `routes`; the memory one ignores them.
    /// let (_b, mesh) = ProxyMesh::in_front(b, &addrs, 1, |routes| {
    ///     assert_eq!(routes.len(), 2);
    ///     MemoryNetwork::new(1)
    /// })
    /// .await?;
    /// assert_eq!(mesh.stats().relayed, 0);
    /// # Ok(()) }
    /// ```
    pub async fn in_front<C: TypeConfig, N: ClusterNetwork>(
        b: TypedBuilder<C>,
        addrs: &BTreeMap<NodeId, SocketAddr>,
        seed: u64,
        network: impl FnOnce(BTreeMap<(NodeId, NodeId), SocketAddr>) -> N,
    ) -> std::io::Result<(TypedBuilder<C>, ProxyMesh)> {
        let mesh = ProxyMesh::start(addrs, seed).await?;
        let b = b.network(network(mesh.routes())).faults(mesh.clone());
        Ok((b, mesh))
    }

    /// Where node `from` should dial node `to`.
    ///
    /// # Panics
    /// If the mesh has no such link: a test's own mistake.
    pub fn route(&self, from: NodeId, to: NodeId) -> SocketAddr {
        self.links[&(from, to)].addr()
    }

    /// Every link's address, by `(from, to)`.
    pub fn routes(&self) -> BTreeMap<(NodeId, NodeId), SocketAddr> {
        self.links.iter().map(|(k, p)| (*k, p.addr())).collect()
    }

    /// Cuts `id` off from everyone, both ways.
    pub fn isolate(&self, id: NodeId) {
        self.cut_where(|a, b| a == id || b == id);
    }

    /// Cuts every link between `side_a` and `side_b`, both ways.
    pub fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        self.cut_where(|a, b| {
            (side_a.contains(&a) && side_b.contains(&b))
                || (side_b.contains(&a) && side_a.contains(&b))
        });
    }

    /// Cuts only what `id` sends: one-way.
    pub fn mute(&self, id: NodeId) {
        self.cut_where(|a, _| a == id);
    }

    /// Sets the same faults on every link.
    pub fn set_all(&self, faults: ProxyFaults) {
        self.links.values().for_each(|p| p.set(faults));
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.links.values().for_each(TcpProxy::heal);
    }

    /// The sum of every link's counts.
    pub fn stats(&self) -> ProxyStats {
        self.links
            .values()
            .map(TcpProxy::stats)
            .fold(ProxyStats::default(), |a, s| ProxyStats {
                relayed: a.relayed + s.relayed,
                cut: a.cut + s.cut,
                dropped: a.dropped + s.dropped,
                bytes: a.bytes + s.bytes,
            })
    }

    fn cut_where(&self, f: impl Fn(NodeId, NodeId) -> bool) {
        for ((a, b), p) in self.links.iter() {
            if f(*a, *b) {
                p.cut();
            }
        }
    }
}

impl NetworkFaults for ProxyMesh {
    fn isolate(&self, id: NodeId) {
        ProxyMesh::isolate(self, id);
    }
    fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        ProxyMesh::partition(self, side_a, side_b);
    }
    fn mute(&self, id: NodeId) {
        ProxyMesh::mute(self, id);
    }
    /// A proxy drops the whole connection with a lost chunk (the
    /// transport reconnects) and delays every chunk by `max_delay`;
    /// `duplicate` and `reorder` cannot happen on a byte stream.
    fn lossy(&self, faults: LinkFaults) {
        // A cut link stays cut, as on the memory network, where a
        // partition outlives a change of link faults.
        for p in self.links.values() {
            p.set(ProxyFaults {
                cut: p.faults().cut,
                delay: faults.max_delay,
                drop: faults.drop,
            });
        }
    }
    fn heal(&self) {
        ProxyMesh::heal(self);
    }
}
