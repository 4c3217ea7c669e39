//! The redb storage passes the `Storage` conformance suite, with a real
//! close and reopen of the file in between.

use std::path::PathBuf;

use raft_actors_storage_redb::RedbStorage;

#[actix_rt::test]
async fn conformance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("node");
    let fresh_path = path.clone();
    raft_actors::testing::storage_suite(
        move |membership| {
            let mut s = RedbStorage::open(&fresh_path).expect("open a fresh store");
            assert!(s.is_fresh(), "a new data dir is fresh");
            s.bootstrap(membership).expect("bootstrap");
            s
        },
        move |s: RedbStorage| {
            drop(s); // closes the file: the reopen reads only what is on disk
            let s = RedbStorage::open(&path).expect("reopen");
            assert!(!s.is_fresh(), "a used store is not fresh");
            s
        },
    )
    .await;
}

/// Each batch is one transaction with at most one fsync; one the core marks
/// as needing no sync (it only moves the commit index) skips the fsync, and
/// a clean close still keeps it; the flag, not the adapter, decides.
#[actix_rt::test]
async fn one_fsync_per_batch_and_none_for_a_commit_only_batch() {
    use raft_actors::core::{Entry, HardState, Membership, Payload};
    use raft_actors::storage::{SnapshotMeta, Storage, ToPersist};
    use raft_actors::testing::StorageExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = RedbStorage::open(dir.path()).expect("open");
    s.bootstrap(Membership::voters([1])).expect("bootstrap");
    let base = s.stats().fsyncs;
    let entries = |lo: u64, hi: u64| -> Vec<Entry> {
        (lo..=hi)
            .map(|index| Entry {
                index,
                term: 1,
                payload: Payload::Command(vec![1u8; 16].into()),
            })
            .collect()
    };
    let hs = HardState {
        term: 1,
        vote: Some(1),
        commit: 0,
    };
    s.write(ToPersist {
        hard_state: Some(hs),
        entries: entries(1, 100),
        ..ToPersist::default()
    })
    .await
    .expect("write");
    assert_eq!(
        s.stats().fsyncs,
        base + 1,
        "100 entries and a vote: one fsync"
    );
    assert_eq!(s.stats().entries, 100);

    s.write(ToPersist {
        hard_state: Some(HardState { commit: 99, ..hs }),
        ..ToPersist::default()
    })
    .await
    .expect("commit only, must sync");
    assert_eq!(
        s.stats().fsyncs,
        base + 2,
        "a commit-only batch the core wants synced: one fsync"
    );
    s.write(ToPersist {
        hard_state: Some(HardState { commit: 100, ..hs }),
        must_sync: false,
        ..ToPersist::default()
    })
    .await
    .expect("commit only");
    assert_eq!(
        s.stats().fsyncs,
        base + 2,
        "a commit-only batch that need not sync: no fsync"
    );

    let taken = s
        .write_snapshot(
            SnapshotMeta {
                index: 90,
                term: 1,
                membership: Membership::voters([1]),
            },
            b"state",
        )
        .expect("the snapshot's file");
    s.write(ToPersist {
        snapshot: Some(taken),
        entries: entries(101, 101),
        compact_to: Some(80),
        ..ToPersist::default()
    })
    .await
    .expect("snapshot, entries and compaction");
    assert_eq!(
        s.stats().fsyncs,
        base + 3,
        "snapshot + entries + compaction: one fsync"
    );

    drop(s);
    let mut s = RedbStorage::open(dir.path()).expect("reopen");
    let state = s.load().await.expect("load");
    assert_eq!(
        state.hard_state.commit, 100,
        "the lazy commit index survives a clean close"
    );
    assert_eq!(state.entries.first().map(|e| e.index), Some(81));
    assert_eq!(state.last_index(), 101);
}

/// A commit index alone costs no transaction: it is kept in memory, shown
/// by `load` at once, and written by the next batch that has work for the
/// disk (here a compaction that needs no sync either), under what that
/// batch sets itself: a received snapshot past it raises the commit index,
/// never lowers it.
#[actix_rt::test]
async fn a_commit_index_alone_rides_on_the_next_write() {
    use raft_actors::core::{Entry, HardState, Membership, Payload};
    use raft_actors::storage::{SnapshotMeta, Storage, ToPersist};
    use raft_actors::testing::StorageExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = RedbStorage::open(dir.path()).expect("open");
    s.bootstrap(Membership::voters([1])).expect("bootstrap");
    let hs = HardState {
        term: 1,
        vote: Some(1),
        commit: 0,
    };
    let entries: Vec<Entry> = (1..=20)
        .map(|index| Entry {
            index,
            term: 1,
            payload: Payload::Command(vec![7u8; 8].into()),
        })
        .collect();
    s.write(ToPersist {
        hard_state: Some(hs),
        entries,
        ..ToPersist::default()
    })
    .await
    .expect("entries");
    let lazy = |commit| ToPersist {
        hard_state: Some(HardState { commit, ..hs }),
        must_sync: false,
        ..ToPersist::default()
    };

    // Shown at once; lost by a crash-like reopen with nothing after it.
    s.write(lazy(10)).await.expect("commit only");
    assert_eq!(s.load().await.expect("load").hard_state.commit, 10);
    drop(s);
    let mut s = RedbStorage::open(dir.path()).expect("reopen");
    assert_eq!(
        s.load().await.expect("load").hard_state.commit,
        0,
        "a commit index alone is not written by itself"
    );

    // Written by the next batch with work for the disk.
    s.write(lazy(12)).await.expect("commit only");
    s.write(ToPersist {
        compact_to: Some(0),
        must_sync: false,
        ..ToPersist::default()
    })
    .await
    .expect("a compaction");
    drop(s);
    let mut s = RedbStorage::open(dir.path()).expect("reopen");
    assert_eq!(s.load().await.expect("load").hard_state.commit, 12);

    // Under a received snapshot past it: the snapshot's index wins.
    s.write(lazy(15)).await.expect("commit only");
    s.install_snapshot(
        SnapshotMeta {
            index: 30,
            term: 1,
            membership: Membership::voters([1]),
        },
        b"state",
        1024,
    )
    .await
    .expect("an installed snapshot");
    drop(s);
    let mut s = RedbStorage::open(dir.path()).expect("reopen");
    let state = s.load().await.expect("load");
    assert_eq!(state.hard_state.commit, 30, "{state:?}");
    assert_eq!(state.hard_state.vote, Some(1));
}
