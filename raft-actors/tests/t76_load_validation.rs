//! The node checks every load itself (`LogState::validate`), whatever the
//! adapter: a storage that hands back a log with a record missing (one the
//! adapter's own checks let through) never starts a core, and the node
//! stays down with one line naming what is missing.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::{init_logging, T};
use raft_actors::node::messages::internal::InjectFault;
use raft_actors::storage::{LogState, MemoryStorage, Storage, StorageError, ToPersist};
use raft_actors::testing::{Kv, KvCommand, TestCluster};
use raft_actors::ClientError;

/// A memory storage that, once told to, loses entry 2 on every load, as a
/// store whose index lost a record would.
struct Losing {
    inner: MemoryStorage,
    lose: Arc<AtomicBool>,
}

#[async_trait]
impl Storage for Losing {
    fn snapshots(&self) -> raft_actors::storage::SharedSnapshots {
        self.inner.snapshots()
    }
    async fn load(&mut self) -> Result<LogState, StorageError> {
        let mut state = self.inner.load().await?;
        if self.lose.load(Ordering::Acquire) {
            state.entries.retain(|e| e.index != 2);
        }
        Ok(state)
    }
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        self.inner.write(batch).await
    }
}

#[actix_rt::test]
async fn a_log_with_a_record_missing_never_starts_a_core() {
    init_logging();
    let lose = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&lose);
    let c = TestCluster::memory(3)
        .seed(76)
        .apply(Kv::default)
        .storage(move |id, membership| {
            // Only node 3's disk loses the record.
            let lose = if id == 3 {
                Arc::clone(&seen)
            } else {
                Arc::new(AtomicBool::new(false))
            };
            Box::new(Losing {
                inner: MemoryStorage::new(membership.clone()),
                lose,
            })
        })
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("a leader");
    let mut last = 0;
    for key in 1..=3 {
        let put = KvCommand::Put { key, value: key };
        last = c.raft(leader).propose(put).await.expect("written").index;
    }
    c.wait_all_applied(last, T)
        .await
        .expect("applied everywhere");

    // Node 3 may lead: the other two go on without it either way.
    let f = 3;
    c.crash(f).await;
    lose.store(true, Ordering::Release);
    let incarnation = c.raft(f).current().incarnation;
    let _ = c.raft(f).addr().send(InjectFault::Restart).await;
    let m = c
        .raft(f)
        .wait_for(T, |m| m.failed.is_some())
        .await
        .expect("it stays down for good");
    let reason = m.failed.unwrap_or_default();
    assert!(
        reason.contains("entries 2..3 are missing"),
        "one line naming what is missing: {reason}"
    );
    assert_eq!(m.incarnation, incarnation, "no core was started on it");
    let refused = c.raft(f).propose(KvCommand::Put { key: 9, value: 9 }).await;
    assert!(
        matches!(refused, Err(ClientError::Fatal(_))),
        "requests are refused: {refused:?}"
    );
    c.shutdown().await;
}
