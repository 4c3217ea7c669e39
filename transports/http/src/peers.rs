//! [`PeerTable`]: the peers an HTTP transport posts to (addresses, queues,
//! counters), shared by the senders and the endpoint, and growable while
//! the transport runs ([`HttpTransport::set_peer`]), so a cluster can add
//! a node.
//!
//! awc's client is bound to its thread, so every sending task runs on the
//! arbiter the transport was built on, whichever thread adds the peer. It
//! must never hold its lock across an await, and never let two tasks post
//! to one peer: replacing an address closes the old task's queue.
//!
//! [`HttpTransport::set_peer`]: crate::HttpTransport::set_peer

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use actix_rt::ArbiterHandle;
use raft_actors::core::{Message, NodeId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::transport::{post_loop, Counters, HttpConfig};

#[derive(Debug)]
struct Entry {
    addr: SocketAddr,
    queue: mpsc::Sender<Vec<Message>>,
    counters: Arc<Counters>,
}

pub(crate) struct PeerTable {
    cfg: Arc<HttpConfig>,
    arbiter: ArbiterHandle,
    token: CancellationToken,
    tracker: TaskTracker,
    peers: RwLock<BTreeMap<NodeId, Entry>>,
}

impl std::fmt::Debug for PeerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTable")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl PeerTable {
    /// The table of `cfg.peers`; must be called on an actix arbiter.
    pub fn new(cfg: Arc<HttpConfig>, token: CancellationToken, tracker: TaskTracker) -> Self {
        let table = PeerTable {
            cfg: Arc::clone(&cfg),
            arbiter: actix_rt::Arbiter::current(),
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
        peers.insert(
            peer,
            Entry {
                addr,
                queue: tx,
                counters: Arc::clone(&counters),
            },
        );
        let (cfg, token, tracker) = (
            Arc::clone(&self.cfg),
            self.token.clone(),
            self.tracker.clone(),
        );
        let spawn = move || {
            tracker.spawn_local(post_loop(cfg, peer, addr, rx, counters, token));
        };
        // Queued to the arbiter even from its own thread: the task starts
        // once the caller yields, with its messages already queued.
        self.arbiter.spawn_fn(spawn);
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
