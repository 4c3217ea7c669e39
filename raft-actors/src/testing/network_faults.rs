//! [`NetworkFaults`]: the network faults a cluster test can inject whatever
//! the transport, so one test body partitions, mutes and degrades links
//! over the memory network and over real sockets alike.
//!
//! Implemented by the [`MemoryNetwork`] (which a [`TestCluster`] attaches
//! by default) and by a [`ProxyMesh`] in front of a socket transport
//! (attached with [`TypedBuilder::faults`]). A test reaches it through
//! [`TestCluster::faults`].
//!
//! It only cuts, delays and loses traffic: it must never alter, invent or
//! reorder what a transport delivers beyond what the network itself can
//! do, so a test that passes through it proves the same on every
//! transport. Faults only one network has (duplication, reordering, its
//! counters) stay on that network's own type ([`TestCluster::net`]).
//!
//! [`TestCluster`]: crate::testing::TestCluster
//! [`TestCluster::faults`]: crate::testing::TestCluster::faults
//! [`TestCluster::net`]: crate::testing::TestCluster::net
//! [`TypedBuilder::faults`]: crate::testing::TypedBuilder::faults
//! [`ProxyMesh`]: crate::testing::ProxyMesh

use crate::core::NodeId;
use crate::transport::{LinkFaults, MemoryNetwork};

/// Partitions and link faults between a test cluster's nodes, the same
/// calls on every transport.
///
/// ```
/// use raft_actors::testing::NetworkFaults;
/// use raft_actors::transport::{LinkFaults, MemoryNetwork};
/// let net = MemoryNetwork::new(1);
/// let faults: &dyn NetworkFaults = &net;
/// faults.partition(&[1], &[2, 3]);
/// assert!(net.is_blocked(1, 2) && net.is_blocked(3, 1) && !net.is_blocked(2, 3));
/// faults.heal();
/// faults.mute(2);
/// assert!(net.is_blocked(2, 1) && !net.is_blocked(1, 2));
/// faults.lossy(LinkFaults { drop: 0.1, ..LinkFaults::default() });
/// faults.heal();
/// assert!(!net.is_blocked(2, 1));
/// ```
pub trait NetworkFaults: Send + Sync + 'static {
    /// Cuts `id` off from every other node, both ways.
    fn isolate(&self, id: NodeId);
    /// Cuts every link between a node of `side_a` and one of `side_b`,
    /// both ways; links within a side stay up.
    fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]);
    /// Cuts only what `id` sends, one way: it still hears the others.
    fn mute(&self, id: NodeId);
    /// Degrades every link: `drop` and `max_delay` everywhere;
    /// `duplicate` and `reorder` only where the network can (the memory
    /// network: a byte stream between sockets neither duplicates nor
    /// reorders).
    fn lossy(&self, faults: LinkFaults);
    /// Removes every partition and link fault.
    fn heal(&self);
}

impl NetworkFaults for MemoryNetwork {
    fn isolate(&self, id: NodeId) {
        MemoryNetwork::isolate(self, id);
    }
    fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        MemoryNetwork::partition(self, side_a, side_b);
    }
    fn mute(&self, id: NodeId) {
        MemoryNetwork::mute(self, id);
    }
    fn lossy(&self, faults: LinkFaults) {
        self.set_all(faults);
    }
    fn heal(&self) {
        MemoryNetwork::heal(self);
    }
}
