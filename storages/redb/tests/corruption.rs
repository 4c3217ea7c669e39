//! Damaged stores are refused at open, with one clear error, never a
//! panic and never a silently shorter log. Each test damages a real file:
//! flipped bytes, truncation, garbage, a newer format, missing records.

use std::path::Path;

use raft_actors::core::{Entry, HardState, Membership, Payload};
use raft_actors::storage::Storage;
use raft_actors::testing::StorageExt;
use raft_actors_storage_redb::{RedbError, RedbStorage};
use redb::{Database, ReadableTable, TableDefinition};

// The layout of format 3 (`src/store/mod.rs`): keys start with the group.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const GROUP_META: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("group_meta");
const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log");

fn marker(index: u64) -> String {
    format!("payload-marker-{index:06}")
}

/// A store with entries 1..=50 (terms 1), commit 50, closed.
async fn written_store(dir: &Path) {
    let mut s = RedbStorage::open(dir).expect("open");
    s.bootstrap(Membership::voters([1, 2, 3]))
        .expect("bootstrap");
    let entries: Vec<Entry> = (1..=50)
        .map(|i| Entry {
            index: i,
            term: 1,
            payload: Payload::Command(marker(i).into()),
        })
        .collect();
    let hs = HardState {
        term: 1,
        vote: Some(1),
        commit: 50,
    };
    s.append(Some(hs), entries).await.expect("append");
    assert_eq!(s.stats().fsyncs, 2, "bootstrap and one append: two commits");
}

fn file(dir: &Path) -> std::path::PathBuf {
    dir.join("raft.redb")
}

/// Rewrites the store's format marker as if another build wrote it.
fn set_format_marker(dir: &Path, version: u8) {
    let db = Database::create(file(dir)).expect("redb");
    let txn = db.begin_write().expect("txn");
    txn.open_table(META)
        .expect("meta")
        .insert("format", [version].as_slice())
        .expect("insert");
    txn.commit().expect("commit");
}

fn open_err(dir: &Path) -> RedbError {
    match RedbStorage::open(dir) {
        Ok(_) => panic!("a damaged store was opened"),
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "one line: {line}");
            e
        }
    }
}

#[actix_rt::test]
async fn a_flipped_byte_inside_an_entry_is_refused_naming_the_entry() {
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    let mut bytes = std::fs::read(file(dir.path())).expect("read file");
    let needle = marker(42).into_bytes();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("entry 42's payload is in the file");
    bytes[at + needle.len() - 1] ^= 0x01; // "...000042" becomes "...000043"
    std::fs::write(file(dir.path()), &bytes).expect("write file");

    match open_err(dir.path()) {
        RedbError::Corrupt { index, reason, .. } => {
            assert_eq!(index, 42, "names the damaged entry");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[actix_rt::test]
async fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    let len = std::fs::metadata(file(dir.path())).expect("stat").len();
    let bytes = std::fs::read(file(dir.path())).expect("read");
    for keep in [0, 100, len / 3, len / 2, len - 1] {
        let copy = tempfile::tempdir().expect("dir");
        std::fs::write(file(copy.path()), &bytes[..keep as usize]).expect("write");
        // Whatever redb makes of it, the store must not open with fewer
        // entries than were committed.
        match RedbStorage::open(copy.path()) {
            Err(e) => eprintln!("truncated to {keep}/{len}: {e}"),
            Ok(mut s) => {
                let state = s.load().await.expect("an opened store loads");
                assert!(
                    state.entries.len() == 50 || state.entries.is_empty() && keep == 0,
                    "truncated to {keep} of {len} bytes, the store opened with {} entries",
                    state.entries.len()
                );
            }
        }
    }
    // Emptied in place: the dir says a store lived here, so the blank file
    // is refused instead of taken for a new node.
    std::fs::write(file(dir.path()), b"").expect("empty the file");
    match open_err(dir.path()) {
        RedbError::Corrupt { reason, .. } => assert!(reason.contains("holds none"), "{reason}"),
        other => panic!("expected Corrupt, got {other}"),
    }
    std::fs::remove_file(file(dir.path())).expect("remove the file");
    open_err(dir.path());

    // Half a file, the common torn copy, is refused outright.
    let half = tempfile::tempdir().expect("dir");
    std::fs::write(file(half.path()), &bytes[..bytes.len() / 2]).expect("write");
    open_err(half.path());
}

#[actix_rt::test]
async fn garbage_is_refused_without_a_panic() {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for len in [1usize, 17, 4096, 65536] {
        let dir = tempfile::tempdir().expect("dir");
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        std::fs::write(file(dir.path()), &bytes).expect("write");
        match open_err(dir.path()) {
            RedbError::Open { reason, .. } => assert!(!reason.is_empty()),
            other => panic!("expected Open, got {other}"),
        }
    }
}

#[actix_rt::test]
async fn a_creation_cut_short_is_refused_saying_what_to_do() {
    // redb writes its magic number last; a power cut before it leaves a
    // file redb refuses, in a dir whose sidecar was never written.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(file(dir.path()), vec![0u8; 8192]).expect("write");
    match open_err(dir.path()) {
        RedbError::Open { reason, .. } => {
            assert!(reason.contains("remove the file"), "{reason}")
        }
        other => panic!("expected Open, got {other}"),
    }
    // Where a store was completed, the same file is not to be removed.
    let held = tempfile::tempdir().expect("dir");
    written_store(held.path()).await;
    std::fs::write(file(held.path()), vec![0u8; 8192]).expect("write");
    let line = open_err(held.path()).to_string();
    assert!(!line.contains("remove the file"), "{line}");
}

#[actix_rt::test]
async fn a_file_from_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    set_format_marker(dir.path(), 9);
    match open_err(dir.path()) {
        RedbError::NewerFormat {
            found, supported, ..
        } => assert_eq!((found, supported), (9, 3)),
        other => panic!("expected NewerFormat, got {other}"),
    }
}

#[actix_rt::test]
async fn a_file_from_an_older_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    set_format_marker(dir.path(), 1);
    let err = open_err(dir.path());
    assert!(
        matches!(
            err,
            RedbError::OlderFormat {
                found: 1,
                supported: 3,
                ..
            }
        ),
        "{err}"
    );
    let line = err.to_string();
    assert!(
        line.contains("add it back") && !line.contains('\n'),
        "{line}"
    );
}

#[actix_rt::test]
async fn a_record_from_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    {
        let db = Database::create(file(dir.path())).expect("redb");
        let txn = db.begin_write().expect("txn");
        {
            let mut log = txn.open_table(LOG).expect("log");
            let mut rec = log
                .get((0, 7))
                .expect("get")
                .expect("entry 7")
                .value()
                .to_vec();
            rec[0] = raft_actors_storage_redb::record::RECORD_VERSION + 1;
            log.insert((0, 7), rec.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }
    match open_err(dir.path()) {
        RedbError::Corrupt { index, reason, .. } => {
            assert_eq!(index, 7);
            assert!(reason.contains("newer"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[actix_rt::test]
async fn missing_entries_are_refused_not_skipped() {
    // A hole in the middle of the log.
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    remove_entries(dir.path(), 20..=20);
    match open_err(dir.path()) {
        RedbError::Corrupt { index, reason, .. } => {
            assert_eq!(index, 21);
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }

    // The committed tail gone: the log would silently end early.
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    remove_entries(dir.path(), 45..=50);
    match open_err(dir.path()) {
        RedbError::Corrupt { reason, .. } => {
            assert!(reason.contains("committed entries are missing"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

fn remove_entries(dir: &Path, range: std::ops::RangeInclusive<u64>) {
    let db = Database::create(file(dir)).expect("redb");
    let txn = db.begin_write().expect("txn");
    {
        let mut log = txn.open_table(LOG).expect("log");
        for i in range {
            log.remove((0, i)).expect("remove");
        }
    }
    txn.commit().expect("commit");
}

#[actix_rt::test]
async fn an_unusable_data_dir_is_refused() {
    let f = tempfile::NamedTempFile::new().expect("file");
    match open_err(f.path()) {
        RedbError::DataDir { .. } => {}
        other => panic!("expected DataDir, got {other}"),
    }
    let under = f.path().join("node");
    match open_err(&under) {
        RedbError::DataDir { .. } => {}
        other => panic!("expected DataDir, got {other}"),
    }
}

#[actix_rt::test]
async fn a_store_open_elsewhere_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let held = RedbStorage::open(dir.path()).expect("open");
    match open_err(dir.path()) {
        RedbError::Open { .. } => {}
        other => panic!("expected Open, got {other}"),
    }
    drop(held);
    RedbStorage::open(dir.path()).expect("reopens once closed");
}

/// Rewrites one record of `table` under `key` with `f` applied to it.
fn damage_record<K: redb::Key + 'static>(
    dir: &Path,
    table: TableDefinition<K, &[u8]>,
    key: K::SelfType<'_>,
    f: impl FnOnce(&mut Vec<u8>),
) where
    for<'a> K::SelfType<'a>: Clone,
{
    let db = Database::create(file(dir)).expect("redb");
    let txn = db.begin_write().expect("txn");
    {
        let mut t = txn.open_table(table).expect("table");
        let mut rec = t
            .get(key.clone())
            .expect("get")
            .expect("the record exists")
            .value()
            .to_vec();
        f(&mut rec);
        t.insert(key, rec.as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
}

#[actix_rt::test]
async fn damaged_hard_state_configuration_and_snapshot_records_are_refused() {
    const SNAPSHOT: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("snapshot");
    for (what, damage) in [
        ("hard state", 0usize),
        ("configuration", 1),
        ("snapshot", 2),
    ] {
        let dir = tempfile::tempdir().expect("dir");
        written_store(dir.path()).await;
        {
            let mut s = RedbStorage::open(dir.path()).expect("open");
            let meta = raft_actors::storage::SnapshotMeta {
                index: 40,
                term: 1,
                membership: Membership::voters([1, 2, 3]),
            };
            s.take_snapshot(meta, b"the state at 40")
                .await
                .expect("snapshot");
        }
        let flip_last = |rec: &mut Vec<u8>| {
            let last = rec.len() - 1;
            rec[last] ^= 0x40;
        };
        match damage {
            0 => damage_record(dir.path(), GROUP_META, (0, "hard_state"), flip_last),
            1 => damage_record(dir.path(), GROUP_META, (0, "membership"), flip_last),
            _ => damage_record(dir.path(), SNAPSHOT, (0, "current"), flip_last),
        }
        match open_err(dir.path()) {
            RedbError::Corrupt {
                what: w, reason, ..
            } => {
                assert_eq!(w, what);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("{what}: expected Corrupt, got {other}"),
        }
    }
}

#[actix_rt::test]
async fn an_entry_newer_than_the_stored_term_is_refused() {
    // The hard state is written with (or before) every entry of its term;
    // an entry of a later term means the stored vote is stale.
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    damage_record(dir.path(), LOG, (0, 50), |rec| {
        let e = Entry {
            index: 50,
            term: 2,
            payload: Payload::Command(marker(50).into()),
        };
        *rec = raft_actors_storage_redb::record::encode(&e).expect("encode");
    });
    match open_err(dir.path()) {
        RedbError::Corrupt { index, reason, .. } => {
            assert_eq!(index, 50);
            assert!(reason.contains("above the stored current term"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[actix_rt::test]
async fn bootstrap_refuses_a_store_that_is_not_fresh() {
    let dir = tempfile::tempdir().expect("dir");
    written_store(dir.path()).await;
    let mut s = RedbStorage::open(dir.path()).expect("open");
    assert!(!s.is_fresh());
    assert!(s.bootstrap(Membership::voters([7])).is_err());
    assert_eq!(s.membership(), &Membership::voters([1, 2, 3]));
    drop(s);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("raft.redb.format"), b"x").expect("marker");
    match open_err(dir.path()) {
        RedbError::Corrupt { reason, .. } => assert!(reason.contains("missing"), "{reason}"),
        other => panic!("a missing file where a store lived: expected Corrupt, got {other}"),
    }
}

/// A store whose current snapshot file is missing, cut short or damaged is
/// refused at open with one line naming the file; with the file whole it
/// opens, and the snapshot reads back.
#[actix_rt::test]
async fn a_missing_or_damaged_snapshot_file_is_refused_at_open() {
    for damage in ["missing", "short", "flipped", "whole"] {
        let dir = tempfile::tempdir().expect("dir");
        written_store(dir.path()).await;
        let snap = {
            let mut s = RedbStorage::open(dir.path()).expect("open");
            let meta = raft_actors::storage::SnapshotMeta {
                index: 40,
                term: 1,
                membership: Membership::voters([1, 2, 3]),
            };
            s.take_snapshot(meta, &[7u8; 5000]).await.expect("snapshot")
        };
        let file = raft_actors_storage_redb::FileSnapshots::open(
            dir.path().join(raft_actors_storage_redb::SNAPSHOT_DIR),
        )
        .expect("the snapshot dir")
        .path_of(40, snap.checksum);
        assert!(file.exists(), "{} is where the snapshot is", file.display());
        let bytes = std::fs::read(&file).expect("read");
        match damage {
            "missing" => std::fs::remove_file(&file).expect("remove"),
            "short" => std::fs::write(&file, &bytes[..4000]).expect("cut"),
            "flipped" => {
                let mut b = bytes.clone();
                b[2500] ^= 1;
                std::fs::write(&file, b).expect("flip");
            }
            _ => {}
        }
        if damage == "whole" {
            let s = RedbStorage::open(dir.path()).expect("a whole snapshot opens");
            assert_eq!(s.snapshot_bytes(&snap).expect("bytes"), vec![7u8; 5000]);
            continue;
        }
        let e = open_err(dir.path());
        let line = e.to_string();
        assert!(
            matches!(e, RedbError::Corrupt { ref what, .. } if what == "snapshot"),
            "{damage}: {line}"
        );
        assert!(
            line.contains("snapshot at 40") && line.contains(".snap") && !line.contains('\n'),
            "{damage}: one line naming the file: {line}"
        );
    }
}
