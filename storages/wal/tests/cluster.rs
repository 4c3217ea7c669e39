//! Actor clusters on the log storage (over the memory network), on
//! segments small enough that a live cluster rolls them over and drops
//! them: restarts that restore the snapshot and replay the tail, a full
//! close and reopen of every file, a lagging follower caught up by a
//! snapshot it stores, and one caught up from entries read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_actors::core::NodeId;
use raft_actors::node::NodeConfig;
use raft_actors::storage::Storage;
use raft_actors::testing::cases::{self, T};
use raft_actors::testing::{KeyValueHandle, Kv, TestCluster, TypedBuilder};
use raft_actors_storage_wal::WalStorage;

type Opened = Arc<Mutex<BTreeMap<NodeId, WalStorage>>>;

/// Segments of 2 KiB: a few dozen entries each.
const SEGMENT: u64 = 2048;

/// A cluster builder whose node `id` keeps its log in `root/id`; every
/// log opened is also kept in the returned map (a clone, to inspect).
fn on_wal(size: u64, cfg: NodeConfig, root: &Path) -> (TypedBuilder<Kv>, Opened) {
    let opened: Opened = Arc::default();
    let keep = Arc::clone(&opened);
    let root: PathBuf = root.to_path_buf();
    let b = TestCluster::memory(size)
        .seed(3)
        .config(cfg)
        .apply(Kv::default)
        .storage(move |id, membership| {
            let mut s =
                WalStorage::open_with(root.join(id.to_string()), SEGMENT).expect("open the log");
            if s.is_fresh() {
                s.bootstrap(membership.clone()).expect("bootstrap");
            }
            keep.lock().expect("lock").insert(id, s.clone());
            Box::new(s)
        });
    (b, opened)
}

#[actix_rt::test]
async fn restarts_and_a_full_close_restore_the_snapshot_and_the_tail_after_segments_went() {
    let dir = tempfile::tempdir().expect("dir");
    let (b, opened) = on_wal(3, cases::snapshot_config_every(20, 5), dir.path());
    let c = b.start().await.expect("cluster");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let last = cases::write_keys(&c, leader, 150).await;
    c.wait_all_applied(last, T).await.expect("applied");
    let follower = cases::follower_of(&c, leader);
    // The first segments went once snapshots covered them.
    let first = dir
        .path()
        .join(follower.to_string())
        .join("wal")
        .join(format!("{:016x}.wal", 1));
    let deadline = Instant::now() + T;
    let mut poll = actix_rt::time::interval(Duration::from_millis(5));
    while first.exists() {
        poll.tick().await;
        assert!(Instant::now() < deadline, "segment 1 was never dropped");
    }
    let mut store = opened.lock().expect("lock")[&follower].clone();
    let state = store.load().await.expect("load");
    assert!(
        state.snapshot.as_ref().is_some_and(|s| s.meta.index >= 100),
        "{:?}",
        state.snapshot
    );

    c.crash(follower).await;
    c.restart(follower).await.expect("restart");
    c.wait_all_applied(last, T)
        .await
        .expect("applied after restart");
    cases::holds_keys(&c, follower, &[0, 75, 149]).await;

    // A full close: every node gone, every log closed, then a new cluster
    // on the same dirs.
    c.shutdown().await;
    drop((c, store));
    opened.lock().expect("lock").clear();
    raft_actors::testing::cases::wait_reopenable(1..=3, |id| {
        WalStorage::open_with(dir.path().join(id.to_string()), SEGMENT).map(drop)
    })
    .await;
    let (b, _reopened) = on_wal(3, cases::snapshot_config_every(20, 5), dir.path());
    let c = b.start().await.expect("cluster again");
    let leader = c.wait_for_leader(T).await.expect("leader again");
    let more = c
        .raft(leader)
        .put_value(999, 1)
        .await
        .expect("a write after the reopen")
        .index;
    assert!(more > last, "the log goes on after the old one");
    c.wait_all_applied(more, T)
        .await
        .expect("applied after the reopen");
    let keys: Vec<u64> = (0..150).collect();
    cases::holds_keys(&c, leader, &keys).await;
    c.shutdown().await;
}

/// Caught up by InstallSnapshot, the follower stores what it received.
#[actix_rt::test]
async fn a_lagging_follower_installs_the_leaders_snapshot_on_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let (b, opened) = on_wal(3, cases::snapshot_config(), dir.path());
    let c = b.start().await.expect("cluster");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = cases::follower_of(&c, leader);
    c.crash(lagging).await;
    let last = cases::write_keys(&c, leader, 60).await;
    let mut store = opened.lock().expect("lock")[&lagging].clone();
    assert!(store.load().await.expect("load").snapshot.is_none());
    c.restart(lagging).await.expect("restart");
    c.wait_all_applied(last, T).await.expect("caught up");
    let after = store.load().await.expect("load");
    let snap = after.snapshot.expect("the follower stored the snapshot");
    assert!(snap.meta.index >= 40, "snapshot at {}", snap.meta.index);
    assert!(after.hard_state.commit >= snap.meta.index);
    cases::holds_keys(&c, lagging, &[0, 30, 59]).await;
    c.shutdown().await;
}

/// The leader keeps no payload of an applied entry in memory: what a
/// lagging follower missed is read back from the log storage.
#[actix_rt::test]
async fn a_lagging_follower_catches_up_from_entries_read_back() {
    let dir = tempfile::tempdir().expect("dir");
    let (b, _) = on_wal(3, cases::no_log_cache_config(), dir.path());
    cases::lagging_follower_catches_up_from_entries_read_back(b).await;
}
