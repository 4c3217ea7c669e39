//! Snapshots through the actor runtime: the core asks for one past its
//! threshold, the node builds it from the state machine, stores it and
//! compacts the log; a follower that missed the compacted entries gets the
//! snapshot (InstallSnapshot, in chunks), restores its state machine from
//! it and catches up, also across a restart. The bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::memory_with;
use raft_actors::testing::cases;

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_after_compaction() {
    let b = memory_with(30, cases::snapshot_config());
    cases::lagging_follower_catches_up_by_snapshot_after_compaction(b).await;
}

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_after_a_crash() {
    let b = memory_with(31, cases::snapshot_config());
    cases::lagging_follower_catches_up_by_snapshot(b).await;
}

/// A leader whose own snapshot file was damaged after it was written finds
/// out as it reads the last chunk for a lagging follower (the bytes read
/// do not make the recorded checksum). It sends none of it any more, takes
/// a new snapshot from its state machine in its place, and sends that one:
/// the follower catches up from the same leader, which never went down.
#[actix_rt::test]
async fn a_leader_whose_snapshot_file_is_damaged_takes_a_new_one_and_sends_it() {
    use raft_actors::storage::SnapshotStore;
    use raft_actors::testing::StorageExt;
    const T: std::time::Duration = cases::T;
    let c = memory_with(32, cases::snapshot_config())
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    c.crash(lagging).await;
    let last = cases::write_keys(&c, leader, 60).await;
    let store = c.storage(leader);
    // Snapshots are built off the node's thread: wait for the one at 60
    // to be stored, or the one damaged below would be an older one.
    c.wait_until("the leader stored its snapshot at 60", T, |_| {
        store.state().snapshot.is_some_and(|s| s.meta.index >= 60)
    })
    .await
    .expect("a snapshot at 60");
    let snap = store.state().snapshot.expect("the leader took a snapshot");
    let mut bytes = store.snapshot_bytes(&snap).expect("its bytes");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    store
        .snapshot_store()
        .damage(snap.meta.index, snap.checksum, bytes.into());
    let taken = c.metrics()[&leader].activity.snapshots_taken.count;

    c.restart(lagging).await.expect("restart");
    c.wait_until("the follower caught up", T, |m| {
        m.get(&lagging).is_some_and(|m| m.applied >= last)
    })
    .await
    .expect("the follower caught up from the same leader");
    let m = c.metrics();
    assert!(m[&leader].down.is_none(), "the leader stayed up");
    assert_eq!(m[&leader].role, raft_actors::core::Role::Leader);
    assert!(
        m[&leader].activity.snapshots_taken.count > taken,
        "it took a new snapshot"
    );
    let now = store.state().snapshot.expect("a snapshot recorded");
    store
        .snapshot_store()
        .verify(&now)
        .expect("the recorded snapshot reads back whole");
    assert_eq!(m[&lagging].activity.snapshots_installed.count, 1);
    cases::holds_keys(&c, lagging, &[0, 30, 59]).await;
    c.shutdown().await;
}
