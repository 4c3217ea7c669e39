//! The node's write path: a batch the core says need not sync (it only
//! moves the commit index) holds back none of its messages, answers and
//! applies, while storage still executes every batch in order; and while
//! a write is in flight the node keeps taking batches, up to the bound,
//! shown in its metrics (pipelined persists). A restart while a write is
//! in flight comes back once that write ends.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{init_logging, T};
use raft_actors::core::{LogIndex, Membership, NodeId};
use raft_actors::node::NodeConfig;
use raft_actors::storage::{LogState, MemoryStorage, Storage, StorageError, ToPersist};
use raft_actors::testing::{Counter, TestCluster};
use tokio::sync::oneshot;
use tracing::info;

/// An armed hold: the kind of write it takes (`must_sync`), and what
/// releases it.
type Hold = Option<(bool, oneshot::Receiver<()>)>;

/// A memory storage that, once armed, holds the next write of a kind
/// (synced or not) until the test releases it.
#[derive(Clone)]
struct Holding {
    inner: MemoryStorage,
    /// Taken by the next write whose `must_sync` matches, which waits on it.
    hold: Arc<Mutex<Hold>>,
    /// Set once a write is being held.
    holding: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    /// The commit index stored, published after every write.
    stored: Arc<tokio::sync::watch::Sender<LogIndex>>,
}

impl Holding {
    fn new(membership: Membership) -> Self {
        Holding {
            inner: MemoryStorage::new(membership),
            hold: Arc::default(),
            holding: Arc::default(),
            stored: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// Holds the next write with `must_sync`; gives what resolves once it
    /// is held, and the switch that lets it go.
    fn arm(&self, must_sync: bool) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (release, held) = oneshot::channel();
        let (tell, told) = oneshot::channel();
        *self.hold.lock().expect("lock") = Some((must_sync, held));
        *self.holding.lock().expect("lock") = Some(tell);
        (told, release)
    }
}

#[async_trait]
impl Storage for Holding {
    fn snapshots(&self) -> raft_actors::storage::SharedSnapshots {
        self.inner.snapshots()
    }
    async fn load(&mut self) -> Result<LogState, StorageError> {
        self.inner.load().await
    }
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let held = {
            let mut hold = self.hold.lock().expect("lock");
            match hold.take() {
                Some((kind, held)) if kind == batch.must_sync => Some(held),
                other => {
                    *hold = other;
                    None
                }
            }
        };
        if let Some(held) = held {
            if let Some(tell) = self.holding.lock().expect("lock").take() {
                let _ = tell.send(());
            }
            let _ = held.await;
        }
        self.inner.write(batch).await?;
        let commit = self.inner.state().hard_state.commit;
        self.stored.send_replace(commit);
        Ok(())
    }
}

/// A one-node cluster of counters on a [`Holding`] store, with its
/// leader elected; gives the store's handle too.
async fn on_holding(seed: u64, cfg: NodeConfig) -> (TestCluster<Counter>, Holding, NodeId) {
    init_logging();
    let store = Holding::new(Membership::voters([1]));
    let handle = store.clone();
    let c = TestCluster::memory(1)
        .seed(seed)
        .config(cfg)
        .apply(Counter::default)
        .storage(move |_, _| Box::new(store.clone()))
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("a leader");
    (c, handle, leader)
}

#[actix_rt::test]
async fn a_commit_only_batch_holds_back_no_answer_and_storage_keeps_order() {
    let (c, handle, leader) = on_holding(22, NodeConfig::default()).await;
    let first = c.raft(leader).propose(1).await.expect("first write");
    info!("--- wait until the first write's commit index is stored");
    let stored = |index| {
        let mut stored = handle.stored.subscribe();
        async move {
            tokio::time::timeout(T, stored.wait_for(|c| *c >= index))
                .await
                .unwrap_or_else(|_| panic!("commit {index} never stored"))
                .expect("the storage lives");
        }
    };
    stored(first.index).await;

    info!("--- hold the next commit-only write: the answer must not wait for it");
    let (held, release) = handle.arm(false);
    let second = tokio::time::timeout(T, c.raft(leader).propose(5))
        .await
        .expect("answered while its commit-only write is held")
        .expect("second write");
    assert_eq!(second.output, 6);
    tokio::time::timeout(T, held)
        .await
        .expect("the commit-only write was handed to storage")
        .expect("held");
    assert!(
        handle.inner.state().hard_state.commit < second.index,
        "the commit index is not stored yet"
    );
    let (writes, synced) = handle.inner.writes();
    assert!(
        synced < writes,
        "some writes skipped the sync ({synced} of {writes})"
    );

    info!("--- release it: storage catches up, in order");
    let _ = release.send(());
    stored(second.index).await;
    let third = c.raft(leader).propose(1).await.expect("third write");
    assert_eq!(third.output, 7);
    stored(third.index).await;
    c.shutdown().await;
}

#[actix_rt::test]
async fn writes_are_pipelined_up_to_the_bound_and_released_in_order() {
    let mut cfg = NodeConfig::default();
    cfg.core.max_persists_in_flight = 3;
    let (c, handle, leader) = on_holding(23, cfg).await;
    c.raft(leader).propose(1).await.expect("a first write");
    c.wait_until("no write in flight", T, |m| {
        m[&leader].writes_in_flight == 0
    })
    .await
    .expect("storage caught up");

    info!("--- hold the next synced write; the node keeps taking batches");
    let (held, release) = handle.arm(true);
    let raft = c.raft(leader).clone();
    let first = actix_rt::spawn(async move { raft.propose(10).await });
    tokio::time::timeout(T, held)
        .await
        .expect("the write was handed to storage")
        .expect("held");
    let mut later = Vec::new();
    for (n, add) in [(2, 100), (3, 1000)] {
        let raft = c.raft(leader).clone();
        later.push(actix_rt::spawn(async move { raft.propose(add).await }));
        c.wait_until("another write in flight", T, |m| {
            m[&leader].writes_in_flight == n
        })
        .await
        .expect("the next batch went to storage behind the held one");
    }
    info!("--- at the bound, the next batch waits in the core");
    let before = c.metrics()[&leader].last_index;
    let raft = c.raft(leader).clone();
    later.push(actix_rt::spawn(async move { raft.propose(10_000).await }));
    // The core took it (its log grew and the node published after
    // driving): had a fourth write been allowed, it would be out by now.
    let m = c
        .wait_until("the proposal in the core's log", T, |m| {
            m[&leader].last_index > before
        })
        .await
        .expect("the core took the proposal")[&leader]
        .clone();
    assert_eq!(m.writes_in_flight, 3, "bounded by max_persists_in_flight");
    assert!(!first.is_finished(), "its write is not durable: no answer");
    assert!(
        later.iter().all(|h| !h.is_finished()),
        "later batches wait for the earlier write"
    );

    info!("--- release: every batch is answered, in order");
    let _ = release.send(());
    let first = first.await.expect("join").expect("first write");
    let mut outputs = vec![first.output];
    for h in later {
        outputs.push(h.await.expect("join").expect("later write").output);
    }
    assert_eq!(outputs, vec![11, 111, 1111, 11111], "applied in order");
    let m = c
        .wait_until("no write in flight", T, |m| {
            m[&leader].writes_in_flight == 0
        })
        .await
        .expect("storage caught up");
    assert_eq!(
        m[&leader].writes_in_flight_max, 3,
        "three were in flight at once"
    );
    c.shutdown().await;
}

/// A restart's reload waits for the storage a write in flight still holds:
/// that write must be able to finish while the reload keeps the node's
/// mailbox shut, or the node never comes back (it did not, once, when the
/// write was a future of the node's own context).
#[actix_rt::test]
async fn a_node_restarted_while_a_write_is_in_flight_comes_back_once_the_write_ends() {
    let (c, handle, leader) = on_holding(24, NodeConfig::default()).await;
    c.raft(leader).propose(1).await.expect("a first write");

    info!("--- a synced write is held; the node crashes and is restarted");
    let (held, release) = handle.arm(true);
    let raft = c.raft(leader).clone();
    let pending = actix_rt::spawn(async move { raft.propose(10).await });
    tokio::time::timeout(T, held)
        .await
        .expect("the write was handed to storage")
        .expect("held");
    c.crash(leader).await;
    assert!(
        pending.await.expect("join").is_err(),
        "the crashed incarnation's proposal failed"
    );
    let cluster = &c;
    let release_once_reloading = async move {
        // The reload is queued behind the held write's lock; let it go.
        cluster
            .wait_until("the restart began", T, |m| m[&leader].down.is_none())
            .await
            .expect("the restart was taken");
        let _ = release.send(());
    };
    let (restarted, ()) = tokio::join!(c.restart(leader), release_once_reloading);
    restarted.expect("the node came back once the write ended");

    info!("--- the held write stayed written, as on a disk, and the node serves");
    let leader = c.wait_for_leader(T).await.expect("a leader again");
    let next = c.raft(leader).propose(100).await.expect("a write after");
    assert_eq!(next.output, 111, "the held write was kept and applied");
    c.shutdown().await;
}
