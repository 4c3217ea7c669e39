//! The node's write path: a batch the core says need not sync (it only
//! moves the commit index) holds back none of its messages, answers and
//! applies, while storage still executes every batch in order; and while
//! a write is in flight the node keeps taking batches, up to the bound,
//! shown in its metrics (pipelined persists).

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{init_logging, T};
use raft_actors::core::{LogIndex, Membership};
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

#[actix_rt::test]
async fn a_commit_only_batch_holds_back_no_answer_and_storage_keeps_order() {
    init_logging();
    let store = Holding::new(Membership::voters([1]));
    let handle = store.clone();
    let c = TestCluster::memory(1)
        .seed(22)
        .apply(Counter::default)
        .storage(move |_, _| Box::new(store.clone()))
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("a leader");
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
    init_logging();
    let store = Holding::new(Membership::voters([1]));
    let handle = store.clone();
    let mut cfg = NodeConfig::default();
    cfg.core.max_persists_in_flight = 3;
    let c = TestCluster::memory(1)
        .seed(23)
        .config(cfg)
        .apply(Counter::default)
        .storage(move |_, _| Box::new(store.clone()))
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("a leader");
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
