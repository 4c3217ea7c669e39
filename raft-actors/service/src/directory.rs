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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn addrs(raft: u16, http: Option<u16>) -> Addrs {
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Addrs {
            raft: at(raft),
            http: http.map(at),
        }
    }

    #[test]
    fn the_transport_hears_of_new_and_moved_raft_addresses_only() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heard);
        let d = Directory::new(Arc::new(move |id, a: SocketAddr| {
            log.lock().expect("not poisoned").push((id, a.port()))
        }));
        d.publish(&[(1, addrs(7001, None)), (2, addrs(7002, None))].into());
        // Node 1 registers its client address: same raft address, no call.
        d.publish(&[(1, addrs(7001, Some(8001))), (2, addrs(7002, None))].into());
        // Node 2 moves.
        d.publish(&[(1, addrs(7001, Some(8001))), (2, addrs(7102, None))].into());
        assert_eq!(
            *heard.lock().expect("not poisoned"),
            vec![(1, 7001), (2, 7002), (2, 7102)]
        );
        assert_eq!(d.get(1), Some(addrs(7001, Some(8001))));
        assert_eq!(d.get(3), None);
    }

    #[test]
    fn a_published_book_replaces_the_view_whole() {
        let d = Directory::new(Arc::new(|_, _| {}));
        d.publish(&[(1, addrs(7001, None)), (2, addrs(7002, None))].into());
        // A restore from a snapshot that no longer names node 2.
        d.publish(&[(1, addrs(7001, None))].into());
        assert_eq!(d.get(2), None);
    }

    #[actix_rt::test]
    async fn waiters_wake_on_a_change_and_not_on_the_same_book_again() {
        let d = Directory::new(Arc::new(|_, _| {}));
        let book: BTreeMap<_, _> = [(1, addrs(7001, None))].into();
        d.publish(&book);
        let waiting = d.clone();
        let woken = actix_rt::spawn(async move { waiting.changed().await });
        actix_rt::task::yield_now().await;
        d.publish(&book);
        actix_rt::task::yield_now().await;
        assert!(!woken.is_finished(), "the same book is no change");
        d.publish(&[(1, addrs(7001, Some(8001)))].into());
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .expect("woken by the change")
            .expect("the waiter ran");
        // The client address is there at once for whoever waits on it.
        let http = d.wait_http(1, Duration::from_millis(1)).await;
        assert_eq!(http.map(|a| a.port()), Some(8001));
    }
}
