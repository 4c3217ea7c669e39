//! [`PeerTable`]: the peers a transport talks to (their addresses, queues
//! and counters), shared by the sending side and the listener, and
//! growable while the transport runs ([`TcpTransport::set_peer`]), so a
//! cluster can add a node.
//!
//! It must never hold its lock across an await, and never let two
//! connection tasks write to one peer: replacing an address closes the old
//! task's queue first.
//!
//! [`TcpTransport::set_peer`]: crate::TcpTransport::set_peer

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use raft_actors::core::{Message, NodeId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::TcpConfig;
use crate::metrics::Counters;
use crate::outbound;

#[derive(Debug)]
struct Entry {
    addr: SocketAddr,
    queue: mpsc::Sender<Vec<Message>>,
    counters: Arc<Counters>,
}

#[derive(Debug)]
pub(crate) struct PeerTable {
    cfg: Arc<TcpConfig>,
    handle: tokio::runtime::Handle,
    token: CancellationToken,
    tracker: TaskTracker,
    peers: RwLock<BTreeMap<NodeId, Entry>>,
}

impl PeerTable {
    pub fn new(
        cfg: Arc<TcpConfig>,
        handle: tokio::runtime::Handle,
        token: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        let table = PeerTable {
            cfg: Arc::clone(&cfg),
            handle,
            token,
            tracker,
            peers: RwLock::default(),
        };
        for (&peer, &addr) in &cfg.peers {
            table.set(peer, addr);
        }
        table
    }

    /// Adds `peer` at `addr`, or moves it there; its own id is ignored.
    pub fn set(&self, peer: NodeId, addr: SocketAddr) {
        if peer == self.cfg.id || self.token.is_cancelled() {
            return;
        }
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        if peers.get(&peer).is_some_and(|e| e.addr == addr) {
            return;
        }
        let counters = peers
            .get(&peer)
            .map_or_else(Arc::default, |e| Arc::clone(&e.counters));
        let (tx, rx) = mpsc::channel(self.cfg.queue_capacity.max(1));
        // Replacing the entry drops the old queue's sender: the old task
        // sees its queue closed and ends.
        peers.insert(
            peer,
            Entry {
                addr,
                queue: tx,
                counters: Arc::clone(&counters),
            },
        );
        self.tracker.spawn_on(
            outbound::run(outbound::Link {
                cfg: Arc::clone(&self.cfg),
                peer,
                addr,
                rx,
                counters,
                token: self.token.clone(),
            }),
            &self.handle,
        );
    }

    pub fn queue(&self, peer: NodeId) -> Option<(mpsc::Sender<Vec<Message>>, Arc<Counters>)> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers
            .get(&peer)
            .map(|e| (e.queue.clone(), Arc::clone(&e.counters)))
    }

    pub fn counters(&self, peer: NodeId) -> Option<Arc<Counters>> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers.get(&peer).map(|e| Arc::clone(&e.counters))
    }

    pub fn all_counters(&self) -> BTreeMap<NodeId, Arc<Counters>> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers
            .iter()
            .map(|(id, e)| (*id, Arc::clone(&e.counters)))
            .collect()
    }
}
