//! Who may send to this node, and what it tells peers about itself: the
//! checks every socket transport runs on a connecting peer (the TCP
//! handshake, the HTTP request envelope), and this node's advertised
//! address, changeable while the transport runs. The HTTP transport uses
//! these too, so both admit and advertise alike.
//!
//! It must never admit a sender of another cluster, one that claims to be
//! this node, or an unknown one that does not say where it listens.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use raft_actors::core::NodeId;

use crate::peers::PeerTable;

/// What a connecting peer claims about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The cluster it belongs to.
    pub cluster_id: u64,
    /// Its node id.
    pub from: NodeId,
    /// The node it means to reach.
    pub to: NodeId,
    /// Where it listens, if it says so.
    pub advertised: Option<SocketAddr>,
}

/// The rules of one node: its id and cluster, and whether it learns
/// unknown peers that advertise their address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// This node.
    pub node: NodeId,
    /// Its cluster.
    pub cluster_id: u64,
    /// Accept (and add) an unknown sender that advertises its address.
    pub learn_peers: bool,
}

/// Admits `claim` under `rules`, adding the sender to `peers` if it is
/// learnt; answers why not otherwise.
///
/// ```
/// use raft_actors_transport_tcp::admission::{admit, Claim, Rules};
/// use raft_actors_transport_tcp::{PeerCounters, PeerTable};
/// let peers = PeerTable::<PeerCounters>::new(1, 8, Box::new(|_, _, _, _| {}));
/// let rules = Rules { node: 1, cluster_id: 7, learn_peers: true };
/// let claim = Claim { cluster_id: 7, from: 2, to: 1, advertised: None };
/// assert!(admit(&rules, &peers, claim).is_err(), "unknown, says nothing");
/// let at = Some("127.0.0.1:7002".parse().unwrap());
/// assert!(admit(&rules, &peers, Claim { advertised: at, ..claim }).is_ok());
/// assert!(peers.counters(2).is_some(), "learnt");
/// assert!(admit(&rules, &peers, Claim { cluster_id: 8, ..claim }).is_err());
/// ```
pub fn admit<C: Default + Send + Sync + 'static>(
    rules: &Rules,
    peers: &PeerTable<C>,
    claim: Claim,
) -> Result<(), String> {
    let node = rules.node;
    if claim.cluster_id != rules.cluster_id {
        return Err(format!(
            "wrong cluster id {} (this is cluster {})",
            claim.cluster_id, rules.cluster_id
        ));
    }
    if claim.to != node {
        return Err(format!("this is node {node}, not {}", claim.to));
    }
    if peers.counters(claim.from).is_some() {
        return Ok(());
    }
    match claim.advertised {
        // A node of this cluster that says where it listens, to a node
        // told to learn peers (one joining the cluster).
        Some(addr) if rules.learn_peers && claim.from != node => {
            tracing::debug!(node, from = claim.from, %addr, "learnt a peer");
            peers.set(claim.from, addr);
            Ok(())
        }
        _ => Err(format!("unknown node {}", claim.from)),
    }
}

/// This node's own address as it tells peers; clones share it.
///
/// ```
/// use raft_actors_transport_tcp::admission::Advertised;
/// let a = Advertised::new(None);
/// a.set("127.0.0.1:7001".parse().unwrap());
/// assert_eq!(a.get().map(|a| a.port()), Some(7001));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Advertised(Arc<RwLock<Option<SocketAddr>>>);

impl Advertised {
    /// Starts with `addr`.
    pub fn new(addr: Option<SocketAddr>) -> Self {
        Advertised(Arc::new(RwLock::new(addr)))
    }

    /// The address now.
    pub fn get(&self) -> Option<SocketAddr> {
        *self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Advertises `addr` from now on.
    pub fn set(&self, addr: SocketAddr) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(addr);
    }
}
