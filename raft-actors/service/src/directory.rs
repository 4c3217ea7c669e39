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
use std::sync::Arc;
use std::time::Duration;

use raft_actors::core::NodeId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

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

/// The published address book. Clones share it; waiters are woken when it
/// changes.
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
    book: Arc<watch::Sender<BTreeMap<NodeId, Addrs>>>,
    on_peer: OnPeer,
}

impl Directory {
    /// An empty book; `on_peer` hears of every new or changed raft address.
    pub fn new(on_peer: OnPeer) -> Self {
        Directory {
            book: Arc::new(watch::Sender::new(BTreeMap::new())),
            on_peer,
        }
    }

    /// Replaces the view with `book` (after an apply or a restore).
    pub fn publish(&self, book: &BTreeMap<NodeId, Addrs>) {
        self.book.send_if_modified(|view| {
            for (id, addrs) in book {
                if view.get(id).map(|a| a.raft) != Some(addrs.raft) {
                    (self.on_peer)(*id, addrs.raft);
                }
            }
            let changed = view != book;
            view.clone_from(book);
            changed
        });
    }

    /// One node's addresses, if registered.
    pub fn get(&self, id: NodeId) -> Option<Addrs> {
        self.book.borrow().get(&id).copied()
    }

    /// Node `id`'s client address, waiting up to `within` for it to be
    /// registered (a new leader records its own within moments of its
    /// election). Woken by the book's changes, never by a timer.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() {
    /// use std::time::Duration;
    /// use raft_actors_service::directory::{Addrs, Directory};
    /// let d = Directory::new(std::sync::Arc::new(|_, _| {}));
    /// let http = Some("127.0.0.1:8002".parse().unwrap());
    /// let later = d.clone();
    /// actix_rt::spawn(async move {
    ///     let raft = "127.0.0.1:7002".parse().unwrap();
    ///     later.publish(&[(2, Addrs { raft, http })].into());
    /// });
    /// assert_eq!(d.wait_http(2, Duration::from_secs(5)).await, http);
    /// assert_eq!(d.wait_http(3, Duration::from_millis(10)).await, None);
    /// # }
    /// ```
    pub async fn wait_http(&self, id: NodeId, within: Duration) -> Option<SocketAddr> {
        let mut rx = self.book.subscribe();
        let found = async {
            rx.wait_for(|b| b.get(&id).is_some_and(|a| a.http.is_some()))
                .await
                .ok()
                .and_then(|book| book.get(&id).and_then(|a| a.http))
        };
        tokio::time::timeout(within, found).await.ok().flatten()
    }

    /// Resolves at the book's next change.
    pub async fn changed(&self) {
        let mut rx = self.book.subscribe();
        // The sender lives as long as `self`: this cannot fail while we
        // hold it.
        let _ = rx.changed().await;
    }
}
