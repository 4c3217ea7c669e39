//! [`storage_suite`]: the [`Storage`] contract as one test any adapter can
//! run.

use bytes::Bytes;

use super::StorageExt;
use crate::core::{Entry, HardState, LogIndex, Membership, Payload, Term};
use crate::storage::{Snapshot, SnapshotMeta, Storage, StorageError, ToPersist};

fn entry(index: LogIndex, term: Term) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command(Bytes::from(format!("cmd {index}/{term}"))),
    }
}

fn entries(lo: LogIndex, hi: LogIndex, term: Term) -> Vec<Entry> {
    (lo..=hi).map(|i| entry(i, term)).collect()
}

fn meta(index: LogIndex, term: Term, voters: &[u64]) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        membership: Membership::voters(voters.iter().copied()),
    }
}

/// A snapshot's bytes: several chunks of 1 KiB, different at every index.
fn state_at(index: LogIndex) -> Vec<u8> {
    (0..3000u32)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(index) as u8)
        .collect()
}

/// Runs the storage contract against an adapter. `fresh` opens an empty
/// store for a new cluster with the given membership; `reopen` closes a
/// store and opens it again from its durable state (for a store that is not
/// durable across a process exit, a second handle to the same state).
/// Panics, naming the broken rule, on the first violation.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::storage::MemoryStorage;
/// raft_actors::testing::storage_suite(MemoryStorage::new, |s: MemoryStorage| s.clone()).await;
/// # }
/// ```
pub async fn storage_suite<S, F, R>(fresh: F, reopen: R)
where
    S: Storage,
    F: Fn(Membership) -> S,
    R: Fn(S) -> S,
{
    let m = Membership::voters([1, 2, 3]);

    // An empty store knows its membership and nothing else.
    let mut s = fresh(m.clone());
    let state = s.load().await.expect("load of a fresh store");
    assert!(state.entries.is_empty(), "a fresh store holds no entries");
    assert_eq!(state.hard_state, HardState::default(), "fresh hard state");
    assert_eq!(state.membership, m, "a fresh store keeps its membership");
    assert!(state.snapshot.is_none(), "a fresh store holds no snapshot");

    // Ordering: what is appended reads back in order, by range.
    // A node's current term is never below the terms in its log (a durable
    // adapter may refuse a store where it is).
    let hs = HardState {
        term: 4,
        vote: Some(1),
        commit: 3,
    };
    s.append(Some(hs), entries(1, 5, 1))
        .await
        .expect("append 1..=5");
    assert_eq!(
        s.entries(1, 5).await.expect("read"),
        entries(1, 5, 1),
        "read back 1..=5"
    );
    assert_eq!(
        s.entries(2, 3).await.expect("read"),
        entries(2, 3, 1),
        "a middle range"
    );
    assert_eq!(
        s.entries(4, 9).await.expect("read"),
        entries(4, 5, 1),
        "a range past the end is cut"
    );
    assert!(
        s.entries(6, 9).await.expect("read").is_empty(),
        "past the end: nothing"
    );

    // A hard state alone, and entries alone, each keep the other.
    let hs2 = HardState { commit: 4, ..hs };
    s.append(Some(hs2), Vec::new())
        .await
        .expect("hard state alone");
    s.append(None, entries(6, 6, 2))
        .await
        .expect("entries alone");
    let state = s.load().await.expect("load");
    assert_eq!(
        state.hard_state, hs2,
        "hard state survives an entries-only append"
    );
    assert_eq!(state.entries.len(), 6, "six entries");

    // Truncation by conflict (§5.3): appending at 4 replaces 4.. wholly.
    s.append(None, entries(4, 4, 3))
        .await
        .expect("conflicting append");
    let state = s.load().await.expect("load");
    assert_eq!(
        state.entries,
        [entries(1, 3, 1), entries(4, 4, 3)].concat(),
        "conflict replaces the suffix"
    );

    // A gap is refused, and changes nothing.
    let gap = s.append(None, entries(9, 9, 3)).await;
    assert!(
        matches!(gap, Err(StorageError::OutOfOrder(_))),
        "a gap is refused: {gap:?}"
    );
    assert_eq!(
        s.load().await.expect("load").entries.len(),
        4,
        "a refused append changes nothing"
    );

    s.append(None, entries(5, 6, 3))
        .await
        .expect("append 5..=6");

    // Compaction needs a snapshot covering it.
    let past = s.compact(3).await;
    assert!(
        matches!(past, Err(StorageError::OutOfOrder(_))),
        "compact without a snapshot is refused: {past:?}"
    );
    let at3 = s
        .take_snapshot(meta(3, 1, &[1, 2, 3]), &state_at(3))
        .await
        .expect("save snapshot");
    assert_eq!(
        s.load().await.expect("load").entries.len(),
        6,
        "saving a snapshot keeps entries"
    );
    s.compact(3).await.expect("compact to 3");
    let compacted = s.entries(1, 6).await;
    assert!(
        matches!(compacted, Err(StorageError::Compacted { first: 4 })),
        "compacted range: {compacted:?}"
    );
    assert_eq!(
        s.entries(4, 6).await.expect("read"),
        [entries(4, 4, 3), entries(5, 6, 3)].concat(),
        "entries after the snapshot remain"
    );
    let beyond = s.compact(5).await;
    assert!(beyond.is_err(), "compacting past the snapshot is refused");
    log_reads(&s);

    // Reopen: everything survives.
    let mut s = reopen(s);
    let state = s.load().await.expect("load after reopen");
    assert_eq!(state.hard_state, hs2, "hard state survives reopen");
    assert_eq!(state.membership, m, "membership survives reopen");
    assert_eq!(
        state.snapshot,
        Some(at3.clone()),
        "the snapshot's record survives reopen"
    );
    assert_eq!(
        s.snapshot_bytes(&at3).expect("its bytes"),
        state_at(3),
        "and its bytes do"
    );
    assert_eq!(
        state.entries.first().map(|e| e.index),
        Some(4),
        "compaction survives reopen"
    );
    assert_eq!(
        state.entries.last().map(|e| e.index),
        Some(6),
        "entries survive reopen"
    );
    let reader = s.log_reader();
    s.append(None, entries(7, 7, 3))
        .await
        .expect("append after reopen");
    if let Some(reader) = reader {
        assert_eq!(
            reader.read(6, 7).expect("read back"),
            [entries(6, 6, 3), entries(7, 7, 3)].concat(),
            "a log reader sees what was written after it was taken"
        );
    }

    // Install a leader's snapshot that matches the log at its index: the
    // entries after it are kept.
    let at5 = s
        .install_snapshot(meta(5, 3, &[1, 2, 3, 4]), &state_at(5), 1024)
        .await
        .expect("install matching");
    assert_eq!(
        s.snapshot_bytes(&at5).expect("the received bytes"),
        state_at(5),
        "a snapshot received in chunks reads back whole"
    );
    let state = s.load().await.expect("load");
    assert_eq!(
        state.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![6, 7],
        "later entries kept"
    );
    assert_eq!(
        state.membership,
        Membership::voters([1, 2, 3, 4]),
        "install takes the snapshot's membership"
    );
    assert!(state.hard_state.commit >= 5, "a snapshot is committed");

    // One that does not match supersedes the whole log.
    s.install_snapshot(meta(9, 4, &[1, 2, 3]), &state_at(9), 1000)
        .await
        .expect("install past the log");
    let state = s.load().await.expect("load");
    assert!(
        state.entries.is_empty(),
        "a non-matching snapshot discards the log"
    );
    assert_eq!(
        state.last_index(),
        9,
        "the log continues after the snapshot"
    );
    s.append(None, entries(10, 10, 4))
        .await
        .expect("append after the snapshot");
    assert_eq!(
        s.entries(10, 10).await.expect("read"),
        entries(10, 10, 4),
        "read after the snapshot"
    );

    // One `Ready`'s batch: a snapshot taken here, new entries and a hard
    // state, and the compaction the snapshot allows, in one write.
    s.append(None, entries(11, 12, 4))
        .await
        .expect("append 11..=12");
    let hs3 = HardState {
        term: 5,
        vote: Some(2),
        commit: 12,
    };
    let at12 = s
        .write_snapshot(meta(12, 4, &[1, 2, 3]), &state_at(12))
        .expect("a snapshot's bytes");
    s.write(ToPersist {
        snapshot_chunks: Vec::new(),
        snapshot: Some(at12),
        snapshot_received: false,
        hard_state: Some(hs3),
        entries: entries(13, 14, 5),
        compact_to: Some(11),
        must_sync: true,
        membership: None,
    })
    .await
    .expect("one batch");
    let state = s.load().await.expect("load");
    assert_eq!(state.hard_state, hs3, "the batch's hard state");
    assert_eq!(
        state.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![12, 13, 14],
        "the batch appended and compacted"
    );
    assert_eq!(
        state.snapshot.map(|x| x.meta.index),
        Some(12),
        "the batch's snapshot"
    );
    // A batch refused anywhere changes nothing: here its entries leave a
    // gap, after a snapshot and before a compaction that would be fine.
    let at14 = s
        .write_snapshot(meta(14, 5, &[1, 2, 3]), &state_at(14))
        .expect("a snapshot's bytes");
    let refused = s
        .write(ToPersist {
            snapshot: Some(at14),
            hard_state: Some(HardState { term: 6, ..hs3 }),
            entries: entries(20, 20, 6),
            compact_to: Some(13),
            ..ToPersist::default()
        })
        .await;
    assert!(refused.is_err(), "a batch with a gap is refused");
    let state = s.load().await.expect("load after a refused batch");
    assert_eq!(
        state.snapshot.map(|x| x.meta.index),
        Some(12),
        "a refused batch stored no snapshot"
    );
    assert_eq!(state.entries.len(), 3, "a refused batch compacted nothing");
    let mut s = reopen(s);
    let state = s.load().await.expect("load after reopen");
    assert_eq!(state.hard_state, hs3, "a refused batch wrote nothing");
    assert_eq!(state.last_index(), 14, "a refused batch appended nothing");

    // A batch that need not sync (a commit index alone) is visible at
    // once; after a restart the commit index may be that one or the last
    // synced one, never ahead of it, and term, vote and entries are intact.
    let lazy = HardState { commit: 14, ..hs3 };
    s.write(ToPersist {
        hard_state: Some(lazy),
        must_sync: false,
        ..ToPersist::default()
    })
    .await
    .expect("a commit-only batch");
    let state = s.load().await.expect("load");
    assert_eq!(state.hard_state, lazy, "a lazy write is visible at once");
    let mut s = reopen(s);
    let state = s.load().await.expect("load after reopen");
    assert!(
        state.hard_state == lazy || state.hard_state == hs3,
        "after a restart the commit index is the lazy one or the synced one before it, got {:?}",
        state.hard_state
    );
    assert_eq!(state.last_index(), 14, "entries survive a lazy write");

    // A synced batch after a lazy one makes both durable, in order.
    let lazy = HardState { commit: 14, ..hs3 };
    s.write(ToPersist {
        hard_state: Some(lazy),
        must_sync: false,
        ..ToPersist::default()
    })
    .await
    .expect("a commit-only batch");
    s.write(ToPersist {
        entries: entries(15, 15, 5),
        ..ToPersist::default()
    })
    .await
    .expect("a synced batch after it");
    let mut s = reopen(s);
    let state = s.load().await.expect("load after reopen");
    assert_eq!(
        state.hard_state, lazy,
        "a synced write makes the lazy one before it durable"
    );
    assert_eq!(state.last_index(), 15, "the synced batch's entry");

    snapshot_files(s, &reopen).await;
}

/// A store holding 4..=6 after a snapshot at 3: its log reader, if it
/// has one, answers what is stored, all of a range or an error (a
/// compacted one says so).
fn log_reads<S: Storage>(s: &S) {
    let Some(reader) = s.log_reader() else {
        return;
    };
    let held = [entries(4, 4, 3), entries(5, 6, 3)].concat();
    assert_eq!(
        reader.read(4, 6).expect("read back"),
        held,
        "read back 4..=6"
    );
    assert_eq!(
        reader.read(5, 5).expect("read back"),
        entries(5, 5, 3),
        "one entry"
    );
    let compacted = reader.read(2, 5);
    assert!(
        matches!(compacted, Err(StorageError::Compacted { first: 4 })),
        "a compacted range is refused: {compacted:?}"
    );
    assert!(
        reader.read(5, 7).is_err(),
        "a range past the end is refused, not cut"
    );
}

/// The snapshot store of an adapter: chunks read back, retention, and
/// received snapshots that are refused unless whole and matching.
async fn snapshot_files<S: Storage, R: Fn(S) -> S>(mut s: S, reopen: &R) {
    let last = s.load().await.expect("load").last_index();
    let first = s
        .take_snapshot(meta(last, 5, &[1, 2, 3]), &state_at(last))
        .await
        .expect("a snapshot at the last index");
    let store = s.snapshots();
    let chunk = store
        .read_chunk(&crate::core::ChunkRead {
            snapshot: first.clone(),
            offset: 1000,
            len: 24,
        })
        .expect("a chunk");
    assert_eq!(
        chunk.as_ref(),
        &state_at(last)[1000..1024],
        "a chunk is the bytes at its offset"
    );

    // A received snapshot whose bytes do not match is refused and changes
    // nothing; the bytes of the current one stay.
    let m = meta(last + 10, 5, &[1, 2, 3]);
    let mut wrong = Snapshot::of(m.clone(), &state_at(last + 10));
    wrong.checksum ^= 1;
    let damaged = s
        .write(ToPersist {
            snapshot_chunks: vec![crate::core::SnapshotChunk {
                snapshot: wrong.clone(),
                offset: 0,
                data: Bytes::from(state_at(last + 10)),
            }],
            snapshot: Some(wrong),
            snapshot_received: true,
            ..ToPersist::default()
        })
        .await;
    assert!(
        damaged.is_err(),
        "a received snapshot that does not match its checksum is refused"
    );
    assert_eq!(
        s.load().await.expect("load").snapshot,
        Some(first.clone()),
        "a refused snapshot is not recorded"
    );
    // A chunk that does not follow the bytes received so far is refused.
    let gap = s
        .write(ToPersist {
            snapshot_chunks: vec![crate::core::SnapshotChunk {
                snapshot: Snapshot::of(m.clone(), &state_at(last + 10)),
                offset: 2000,
                data: Bytes::from_static(b"late"),
            }],
            must_sync: false,
            ..ToPersist::default()
        })
        .await;
    assert!(gap.is_err(), "a chunk after a gap is refused");

    // Retention: the current snapshot and the one before it stay; older
    // ones go.
    let second = s
        .install_snapshot(m, &state_at(last + 10), 700)
        .await
        .expect("a snapshot in five chunks");
    let third = s
        .install_snapshot(meta(last + 20, 5, &[1, 2, 3]), &state_at(last + 20), 4096)
        .await
        .expect("a snapshot in one chunk");
    let s = reopen(s);
    let state = {
        let mut s = s;
        let state = s.load().await.expect("load after reopen");
        assert_eq!(
            s.snapshot_bytes(&third).expect("the current snapshot"),
            state_at(last + 20),
            "the current snapshot's bytes survive a reopen"
        );
        assert_eq!(
            s.snapshot_bytes(&second).expect("the one before"),
            state_at(last + 10),
            "the one before it is kept"
        );
        assert!(
            s.snapshot_bytes(&first).is_err(),
            "older snapshots are deleted"
        );
        state
    };
    assert_eq!(state.snapshot, Some(third), "the latest is recorded");
}
