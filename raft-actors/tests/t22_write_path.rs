//! The node's write path: a batch the core says need not sync (it only
//! moves the commit index) holds back none of its messages, answers and
//! applies, while storage still executes every batch in order.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{init_logging, T};
use raft_actors::core::{Entry, HardState, LogIndex, Membership};
use raft_actors::storage::{LogState, MemoryStorage, Snapshot, Storage, StorageError, ToPersist};
use raft_actors::testing::{Counter, TestCluster};
use tokio::sync::oneshot;
use tracing::info;

/// A memory storage that, once armed, holds the next write that need not
/// sync until the test releases it.
#[derive(Clone)]
struct Holding {
    inner: MemoryStorage,
    /// Taken by the next such write, which waits on it.
    hold: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    /// Set once a write is being held.
    holding: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

impl Holding {
    fn new(membership: Membership) -> Self {
        Holding {
            inner: MemoryStorage::new(membership),
            hold: Arc::default(),
            holding: Arc::default(),
        }
    }

    /// Holds the next write that need not sync; resolves once it is held,
    /// and gives the switch that lets it go.
    fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (release, held) = oneshot::channel();
        let (tell, told) = oneshot::channel();
        *self.hold.lock().expect("lock") = Some(held);
        *self.holding.lock().expect("lock") = Some(tell);
        (told, release)
    }
}

#[async_trait]
impl Storage for Holding {
    async fn load(&mut self) -> Result<LogState, StorageError> {
        self.inner.load().await
    }
    async fn append(&mut self, hs: Option<HardState>, e: Vec<Entry>) -> Result<(), StorageError> {
        self.inner.append(hs, e).await
    }
    async fn entries(&mut self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError> {
        self.inner.entries(lo, hi).await
    }
    async fn truncate(&mut self, from: LogIndex) -> Result<(), StorageError> {
        self.inner.truncate(from).await
    }
    async fn save_membership(&mut self, m: Membership) -> Result<(), StorageError> {
        self.inner.save_membership(m).await
    }
    async fn save_snapshot(&mut self, s: Snapshot) -> Result<(), StorageError> {
        self.inner.save_snapshot(s).await
    }
    async fn install_snapshot(&mut self, s: Snapshot) -> Result<(), StorageError> {
        self.inner.install_snapshot(s).await
    }
    async fn compact(&mut self, upto: LogIndex) -> Result<(), StorageError> {
        self.inner.compact(upto).await
    }
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        if !batch.must_sync {
            let held = self.hold.lock().expect("lock").take();
            if let Some(held) = held {
                if let Some(tell) = self.holding.lock().expect("lock").take() {
                    let _ = tell.send(());
                }
                let _ = held.await;
            }
        }
        self.inner.write(batch).await
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
        let inner = handle.inner.clone();
        async move {
            let deadline = tokio::time::Instant::now() + T;
            while inner.state().hard_state.commit < index {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "commit {index} never stored"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    stored(first.index).await;

    info!("--- hold the next commit-only write: the answer must not wait for it");
    let (held, release) = handle.arm();
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
