//! [`Directory`]: the cluster's address book as this node last applied it,
//! shared between the state machine (which owns the replicated copy) and
//! the rest of the process (the transport, admin forwarding).
//!
//! Membership holds node ids only; the addresses travel in the log as
//! `Register` records (see [`machine`](super::machine)), so every node,
//! a restarted one and one caught up by snapshot included, learns every
//! member's address. It must never be a source of truth for the state
//! machine: it is a published view, written only by apply and restore.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use raft_actors::core::NodeId;
use serde::{Deserialize, Serialize};

/// Where one node is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addrs {
    /// Its Raft transport address.
    pub raft: SocketAddr,
    /// Its client API, once the node registered itself.
    pub http: Option<SocketAddr>,
}

/// Called when a node's Raft address is learnt or changes.
pub type OnPeer = Arc<dyn Fn(NodeId, SocketAddr) + Send + Sync>;

/// The published address book. Clones share it.
///
/// ```
/// use raft_actors_service::directory::{Addrs, Directory};
/// let d = Directory::new(std::sync::Arc::new(|_, _| {}));
/// let a = Addrs { raft: "127.0.0.1:7001".parse().unwrap(), http: None };
/// d.publish(&[(1, a)].into());
/// assert_eq!(d.get(1), Some(a));
/// ```
#[derive(Clone)]
pub struct Directory {
    book: Arc<RwLock<BTreeMap<NodeId, Addrs>>>,
    on_peer: OnPeer,
}

impl Directory {
    /// An empty book; `on_peer` hears of every new or changed raft address.
    pub fn new(on_peer: OnPeer) -> Self {
        Directory {
            book: Arc::default(),
            on_peer,
        }
    }

    /// Replaces the view with `book` (after an apply or a restore).
    pub fn publish(&self, book: &BTreeMap<NodeId, Addrs>) {
        let mut view = self.book.write().unwrap_or_else(|p| p.into_inner());
        for (id, addrs) in book {
            if view.get(id).map(|a| a.raft) != Some(addrs.raft) {
                (self.on_peer)(*id, addrs.raft);
            }
        }
        view.clone_from(book);
    }

    /// One node's addresses, if registered.
    pub fn get(&self, id: NodeId) -> Option<Addrs> {
        self.book
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }
}
