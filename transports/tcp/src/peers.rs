//! [`PeerTable`]: the peers a transport talks to (their addresses, queues
//! and counters), shared by the sending side and the receiving side, and
//! growable while the transport runs (`set_peer`), so a cluster can add a
//! node. The TCP and the HTTP transport both use it, each with its own
//! sending task.
//!
//! It must never hold its lock while a task starts or a send waits, and
//! never let two sending tasks serve one peer: replacing an address closes
//! the old task's queue, which ends that task.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use raft_actors::core::{GroupId, Message, NodeId};
use raft_actors::transport::{estimated_size, lanes, LaneReceiver, LaneSender, TransportError};

use crate::metrics::PeerCounters;

/// Starts the sending task of one peer: `(peer, addr, queue, counters)`.
pub type SpawnLink<C> = Box<dyn Fn(NodeId, SocketAddr, LaneReceiver, Arc<C>) + Send + Sync>;

struct Entry<C> {
    addr: SocketAddr,
    queue: LaneSender,
    counters: Arc<C>,
}

/// One transport's peers; `C` is its per-peer counters.
pub struct PeerTable<C> {
    own: NodeId,
    capacity: usize,
    spawn: SpawnLink<C>,
    peers: RwLock<BTreeMap<NodeId, Entry<C>>>,
}

impl<C> fmt::Debug for PeerTable<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        let addrs: BTreeMap<_, _> = peers.iter().map(|(id, e)| (*id, e.addr)).collect();
        f.debug_struct("PeerTable")
            .field("own", &self.own)
            .field("peers", &addrs)
            .finish_non_exhaustive()
    }
}

impl<C: Default + Send + Sync + 'static> PeerTable<C> {
    /// The table of node `own`, with queues of `capacity` batches (plus
    /// the snapshot lane, `raft_actors::transport::lanes`), each
    /// peer's task started by `spawn`.
    pub fn new(own: NodeId, capacity: usize, spawn: SpawnLink<C>) -> Self {
        PeerTable {
            own,
            capacity: capacity.max(1),
            spawn,
            peers: RwLock::default(),
        }
    }

    /// Adds `peer` at `addr`, or moves it there (its counters carry over);
    /// the node's own id is ignored.
    pub fn set(&self, peer: NodeId, addr: SocketAddr) {
        if peer == self.own {
            return;
        }
        let (rx, counters) = {
            let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
            if peers.get(&peer).is_some_and(|e| e.addr == addr) {
                return;
            }
            let counters = peers
                .get(&peer)
                .map_or_else(Arc::default, |e| Arc::clone(&e.counters));
            let (tx, rx) = lanes(self.capacity);
            // Replacing the entry drops the old queue's sender: the old
            // task sees its queue closed and ends.
            peers.insert(
                peer,
                Entry {
                    addr,
                    queue: tx,
                    counters: Arc::clone(&counters),
                },
            );
            (rx, counters)
        };
        (self.spawn)(peer, addr, rx, counters);
    }

    /// The queue and counters of `peer`, if known.
    pub fn queue(&self, peer: NodeId) -> Option<(LaneSender, Arc<C>)> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers
            .get(&peer)
            .map(|e| (e.queue.clone(), Arc::clone(&e.counters)))
    }

    /// The counters of `peer`, if known.
    pub fn counters(&self, peer: NodeId) -> Option<Arc<C>> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers.get(&peer).map(|e| Arc::clone(&e.counters))
    }

    /// Every peer's counters.
    pub fn all_counters(&self) -> BTreeMap<NodeId, Arc<C>> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers
            .iter()
            .map(|(id, e)| (*id, Arc::clone(&e.counters)))
            .collect()
    }
}

impl PeerTable<PeerCounters> {
    /// Queues one batch of Raft group `group` for `to`: what a transport's
    /// `send` does, whichever carries it. Refused when the peer is unknown or the batch is over
    /// `max_bytes`; a full queue (the peer is slow or down) or a closed one
    /// (shut down) drops it, counted, and Raft's retries resend what still
    /// matters.
    pub fn offer(
        &self,
        to: NodeId,
        group: GroupId,
        messages: Vec<Message>,
        max_bytes: usize,
    ) -> Result<(), TransportError> {
        let (queue, counters) = self.queue(to).ok_or(TransportError::UnknownPeer(to))?;
        let size = estimated_size(&messages);
        if size > max_bytes {
            return Err(TransportError::TooLarge {
                size,
                max: max_bytes,
            });
        }
        queue.try_send(group, messages).map_err(|dropped| {
            PeerCounters::add(&counters.drops, dropped);
            TransportError::Unreachable(to)
        })
    }
}
