//! What a crash or a damaged disk leaves, and what the log makes of it at
//! open. A crash is modelled as a copy of the data dir taken between two
//! writes (what the disk held then, nothing of the process), a torn write
//! as that copy cut inside its last frame.

use std::path::{Path, PathBuf};

use raft_actors::core::{Entry, HardState, Membership, Payload, SnapshotMeta};
use raft_actors::storage::{Storage, ToPersist};
use raft_actors::testing::StorageExt;
use raft_actors_storage_wal::{WalError, WalStorage, WAL_DIR};

fn entries(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi)
        .map(|index| Entry {
            index,
            term,
            payload: Payload::Command(vec![index as u8; 40].into()),
        })
        .collect()
}

fn hs(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: Some(1),
        commit,
    }
}

/// A copy of `from` (files and dirs), as a crash would leave it.
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir") {
        let path = item.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            crash_image(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

fn first_segment(dir: &Path) -> PathBuf {
    dir.join(WAL_DIR).join(format!("{:016x}.wal", 1))
}

fn fresh(dir: &Path, segment_bytes: u64) -> WalStorage {
    let mut s = WalStorage::open_with(dir, segment_bytes).expect("open");
    s.bootstrap(Membership::voters([1, 2, 3]))
        .expect("bootstrap");
    s
}

/// A fresh log in `node` holding two writes: entries 1..=3, then 4..=6.
async fn two_writes(node: &Path) -> WalStorage {
    let mut s = fresh(node, raft_actors_storage_wal::SEGMENT_BYTES);
    s.append(Some(hs(1, 0)), entries(1, 3, 1))
        .await
        .expect("write 1");
    s.append(Some(hs(1, 2)), entries(4, 6, 1))
        .await
        .expect("write 2");
    s
}

/// What the log in `dir` loads, opened afresh.
async fn loaded(dir: &Path, segment_bytes: u64) -> raft_actors::storage::LogState {
    let mut s = WalStorage::open_with(dir, segment_bytes).expect("open");
    s.load().await.expect("load")
}

fn one_line(e: &WalError) -> String {
    let text = e.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    text
}

#[actix_rt::test]
async fn every_cut_inside_the_last_frame_reopens_to_the_writes_before_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    let mut s = two_writes(&node).await;
    let before = std::fs::metadata(first_segment(&node)).expect("size").len();
    s.append(Some(hs(2, 5)), entries(7, 20, 2))
        .await
        .expect("write 3");
    let after = std::fs::metadata(first_segment(&node)).expect("size").len();
    assert!(
        after > before + 100,
        "the third write is one frame of its own"
    );
    let whole = dir.path().join("whole");
    crash_image(&node, &whole);
    drop(s);

    for cut in before..after {
        let image = dir.path().join(format!("cut-{cut}"));
        crash_image(&whole, &image);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(first_segment(&image))
            .expect("open segment");
        file.set_len(cut).expect("cut");
        drop(file);
        let mut s =
            WalStorage::open(&image).unwrap_or_else(|e| panic!("a cut at {cut} opens: {e}"));
        let state = s.load().await.expect("load");
        assert_eq!(
            state.entries,
            entries(1, 6, 1),
            "cut at {cut}: the first two writes, whole"
        );
        assert_eq!(state.hard_state, hs(1, 2), "cut at {cut}");
        // The tail was cut for good: a write after it reads back after a
        // reopen, behind the first two.
        s.append(Some(hs(3, 6)), entries(7, 7, 3))
            .await
            .expect("write after the cut");
        drop(s);
        let state = loaded(&image, raft_actors_storage_wal::SEGMENT_BYTES).await;
        assert_eq!(
            state.entries.last(),
            entries(7, 7, 3).last(),
            "cut at {cut}"
        );
        assert_eq!(state.entries.len(), 7);
        std::fs::remove_dir_all(&image).expect("clean");
    }
    // Uncut, all three writes are there.
    let state = loaded(&whole, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!(state.entries.len(), 20);
}

#[actix_rt::test]
async fn a_damaged_frame_before_the_last_or_a_newer_format_is_refused_in_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    let s = two_writes(&node).await;
    drop(s);
    let segment = first_segment(&node);
    let bytes = std::fs::read(&segment).expect("read");

    // A flipped bit in the middle of the log: acknowledged writes follow it.
    let mut flipped = bytes.clone();
    let at = bytes.len() / 2;
    flipped[at] ^= 0x10;
    std::fs::write(&segment, &flipped).expect("write");
    let err = WalStorage::open(&node).expect_err("damage is refused");
    let text = one_line(&err);
    assert!(matches!(err, WalError::Corrupt { .. }), "{text}");
    assert!(
        text.contains(&segment.display().to_string()),
        "names the file: {text}"
    );

    // A segment of a newer format.
    let mut newer = bytes.clone();
    newer[8] = 9;
    let crc = crc32fast::hash(&newer[..28]);
    newer[28..32].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&segment, &newer).expect("write");
    let text = one_line(&WalStorage::open(&node).expect_err("newer format"));
    assert!(text.contains("version 9"), "{text}");

    // Sound again, it opens with everything.
    std::fs::write(&segment, &bytes).expect("write");
    let state = loaded(&node, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!(state.entries, entries(1, 6, 1));
}

#[actix_rt::test]
async fn a_lost_segment_a_lost_log_and_a_second_opener_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    let mut s = fresh(&node, 400);
    for i in 0..10 {
        s.append(Some(hs(1, 0)), entries(i * 5 + 1, i * 5 + 5, 1))
            .await
            .expect("write");
    }
    assert!(
        s.segments().await.expect("count") >= 4,
        "small segments roll over"
    );
    let second = WalStorage::open(&node).expect_err("held by the first");
    assert!(
        matches!(second, WalError::Locked(_)),
        "{}",
        one_line(&second)
    );
    drop(s);

    let image = dir.path().join("gap");
    crash_image(&node, &image);
    std::fs::remove_file(image.join(WAL_DIR).join(format!("{:016x}.wal", 2))).expect("rm");
    let text = one_line(&WalStorage::open(&image).expect_err("a gap"));
    assert!(text.contains("segment 2 is missing"), "{text}");

    let lost = dir.path().join("lost");
    crash_image(&node, &lost);
    for item in std::fs::read_dir(lost.join(WAL_DIR)).expect("dir") {
        let path = item.expect("entry").path();
        if path.extension().is_some_and(|e| e == "wal") {
            std::fs::remove_file(path).expect("rm");
        }
    }
    let text = one_line(&WalStorage::open(&lost).expect_err("no segment left"));
    assert!(text.contains("every segment"), "{text}");

    let state = loaded(&node, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!(
        state.entries,
        (0..10)
            .flat_map(|i| entries(i * 5 + 1, i * 5 + 5, 1))
            .collect::<Vec<_>>()
    );
}

#[actix_rt::test]
async fn a_lazy_commit_index_may_be_lost_by_a_crash_never_by_a_clean_close() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    let mut s = fresh(&node, raft_actors_storage_wal::SEGMENT_BYTES);
    s.append(Some(hs(1, 0)), entries(1, 5, 1))
        .await
        .expect("write");
    let fsyncs = s.stats().fsyncs;
    s.write(ToPersist {
        hard_state: Some(hs(1, 4)),
        must_sync: false,
        ..ToPersist::default()
    })
    .await
    .expect("commit index alone");
    assert_eq!(
        s.stats().fsyncs,
        fsyncs,
        "a commit index alone is not synced"
    );
    assert_eq!(
        s.load().await.expect("load").hard_state,
        hs(1, 4),
        "but visible at once"
    );
    let crashed = dir.path().join("crashed");
    crash_image(&node, &crashed);
    let state = loaded(&crashed, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!(
        state.hard_state,
        hs(1, 0),
        "a crash loses the lazy commit index"
    );
    assert_eq!(state.entries.len(), 5, "and nothing synced");

    // The next synced batch carries it.
    s.append(None, entries(6, 6, 1)).await.expect("write");
    let synced = dir.path().join("synced");
    crash_image(&node, &synced);
    let state = loaded(&synced, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!((state.hard_state, state.entries.len()), (hs(1, 4), 6));

    // A clean close writes what is still lazy.
    s.write(ToPersist {
        hard_state: Some(hs(1, 6)),
        must_sync: false,
        ..ToPersist::default()
    })
    .await
    .expect("commit index alone");
    drop(s);
    let state = loaded(&node, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!(state.hard_state, hs(1, 6));
}

#[actix_rt::test]
async fn segments_roll_over_and_go_once_a_snapshot_covers_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    let mut s = fresh(&node, 1000);
    for i in 0..40 {
        s.append(Some(hs(1, i * 5)), entries(i * 5 + 1, i * 5 + 5, 1))
            .await
            .expect("write");
    }
    let rolled = s.segments().await.expect("count");
    assert!(rolled >= 10, "{rolled} segments of 1000 bytes");
    let meta = SnapshotMeta {
        index: 180,
        term: 1,
        membership: Membership::voters([1, 2, 3]),
    };
    s.take_snapshot(meta, b"the state at 180")
        .await
        .expect("snapshot");
    let before = dir.path().join("before-compaction");
    crash_image(&node, &before);
    s.compact(180).await.expect("compact");
    // The compaction rides on the next synced write; only then do the
    // segments it covers go.
    s.append(Some(hs(1, 199)), entries(201, 205, 1))
        .await
        .expect("write");
    let left = s.segments().await.expect("count");
    assert!(
        left <= 3,
        "{left} of {rolled} segments left after compacting to 180"
    );
    drop(s);

    let state = loaded(&node, 1000).await;
    assert_eq!(state.snapshot.as_ref().map(|s| s.meta.index), Some(180));
    assert_eq!(state.entries, entries(181, 205, 1));
    assert_eq!(state.hard_state, hs(1, 199));
    state.validate().expect("a whole log");

    let state = loaded(&before, 1000).await;
    assert_eq!(
        state.entries,
        entries(1, 200, 1),
        "before compaction, every entry"
    );
    assert_eq!(state.snapshot.as_ref().map(|s| s.meta.index), Some(180));
}

/// A snapshot received from the leader at an index the log holds keeps the
/// entries after it; once the segments holding the entries before it are
/// gone, a replay must still keep them (it cannot see that entry anymore).
#[actix_rt::test]
async fn a_received_snapshot_keeps_the_entries_after_it_once_older_segments_go() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    let mut s = fresh(&node, 600);
    for i in 0..4 {
        s.append(Some(hs(1, 0)), entries(i * 5 + 1, i * 5 + 5, 1))
            .await
            .expect("write");
    }
    let meta = SnapshotMeta {
        index: 10,
        term: 1,
        membership: Membership::voters([1, 2, 3]),
    };
    s.install_snapshot(meta, b"the leader's state at 10", 8)
        .await
        .expect("install");
    assert_eq!(
        s.load().await.expect("load").entries,
        entries(11, 20, 1),
        "the entries after it stay"
    );
    s.compact(10).await.expect("compact");
    s.append(Some(hs(1, 12)), entries(21, 25, 1))
        .await
        .expect("write");
    assert!(
        !first_segment(&node).exists(),
        "the segment of entries 1.. went"
    );
    drop(s);
    let state = loaded(&node, 600).await;
    assert_eq!(state.snapshot.as_ref().map(|s| s.meta.index), Some(10));
    assert_eq!(state.entries, entries(11, 25, 1));
    state.validate().expect("a whole log");
}

/// The file grew but the last frame never reached the disk (zeros): the
/// zeros are cut at open, so writes after it read back at the next open.
/// A segment half made by a roll-over (its temporary file) is removed, and
/// a segment without its base record is refused.
#[actix_rt::test]
async fn zeros_at_the_tail_are_cut_and_a_half_made_segment_is_never_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    drop(two_writes(&node).await);
    let segment = first_segment(&node);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.extend_from_slice(&[0u8; 700]);
    std::fs::write(&segment, &bytes).expect("grow");
    let stray = node.join(WAL_DIR).join(format!("{:016x}.tmp", 2));
    std::fs::write(&stray, b"half a segment").expect("stray");
    let mut s = WalStorage::open(&node).expect("opens");
    assert!(!stray.exists(), "the half-made segment is removed");
    s.append(Some(hs(2, 6)), entries(7, 8, 2))
        .await
        .expect("write after the zeros");
    drop(s);
    let state = loaded(&node, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!(
        state.entries.len(),
        8,
        "the write after the cut zeros reads back"
    );
    assert_eq!(state.hard_state, hs(2, 6));

    // A segment that is a header and nothing else: no base, refused.
    let header_only = node.join(WAL_DIR).join(format!("{:016x}.wal", 2));
    let header = raft_actors_storage_wal::frame::Header { group: 0, seq: 2 }.encode();
    std::fs::write(&header_only, header).expect("write");
    let text = one_line(&WalStorage::open(&node).expect_err("no base record"));
    assert!(text.contains("base record"), "{text}");
}

/// A commit index written lazily, then a snapshot received with no hard
/// state of its own: the install raised the commit index, and a reopen
/// must not lower it again with the older lazy one the frame carries.
#[actix_rt::test]
async fn a_lazy_commit_index_carried_by_a_received_snapshot_does_not_lower_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = dir.path().join("node");
    let mut s = two_writes(&node).await;
    s.write(ToPersist {
        hard_state: Some(hs(1, 3)),
        must_sync: false,
        ..ToPersist::default()
    })
    .await
    .expect("commit index alone");
    let meta = SnapshotMeta {
        index: 10,
        term: 1,
        membership: Membership::voters([1, 2, 3]),
    };
    s.install_snapshot(meta, b"the leader's state at 10", 64)
        .await
        .expect("install");
    let before = s.load().await.expect("load").hard_state;
    assert_eq!(before.commit, 10, "the install raised the commit index");
    let crashed = dir.path().join("crashed");
    crash_image(&node, &crashed);
    let state = loaded(&crashed, raft_actors_storage_wal::SEGMENT_BYTES).await;
    assert_eq!(state.hard_state, before);
    state.validate().expect("a whole log");
}
