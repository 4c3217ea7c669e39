//! The group id in the disk format (format 3): every key starts with its
//! Raft group, so the groups of one file never see each other's records,
//! and a store written by the format before it (2, no group ids) is
//! refused with one line, never misread.

use std::path::Path;

use raft_actors::core::{Entry, HardState, Membership, Payload};
use raft_actors::storage::Storage;
use raft_actors::testing::StorageExt;
use raft_actors_storage_redb::record::{encode, RECORD_VERSION};
use raft_actors_storage_redb::{RedbError, RedbStorage};
use redb::{Database, ReadableTable, TableDefinition};

fn entries(group: u64, range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range
        .map(|i| Entry {
            index: i,
            term: 1,
            payload: Payload::Command(format!("group {group} entry {i}").into()),
        })
        .collect()
}

async fn write_group(dir: &Path, group: u64, last: u64) {
    let mut s = RedbStorage::open_group(dir, group).expect("open");
    assert!(s.is_fresh(), "group {group} starts empty in a shared file");
    s.bootstrap(Membership::voters([1, 2, 3]))
        .expect("bootstrap");
    let hs = HardState {
        term: 1,
        vote: Some(group + 1),
        commit: last,
    };
    s.append(Some(hs), entries(group, 1..=last))
        .await
        .expect("append");
}

#[actix_rt::test]
async fn groups_in_one_file_keep_their_own_records() {
    let dir = tempfile::tempdir().expect("dir");
    write_group(dir.path(), 0, 30).await;
    write_group(dir.path(), 7, 12).await;
    for (group, last) in [(0u64, 30u64), (7, 12)] {
        let mut s = RedbStorage::open_group(dir.path(), group).expect("reopen");
        let state = s.load().await.expect("load");
        assert_eq!(state.entries, entries(group, 1..=last), "group {group}");
        assert_eq!(state.hard_state.vote, Some(group + 1), "group {group}");
        assert_eq!(state.hard_state.commit, last);
    }
    // A group never written is fresh in the same file.
    assert!(RedbStorage::open_group(dir.path(), 3)
        .expect("open")
        .is_fresh());
}

#[actix_rt::test]
async fn a_damaged_record_of_one_group_stops_that_group_not_its_neighbour() {
    const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log");
    let dir = tempfile::tempdir().expect("dir");
    write_group(dir.path(), 0, 30).await;
    write_group(dir.path(), 7, 12).await;
    {
        let db = Database::create(dir.path().join("raft.redb")).expect("redb");
        let txn = db.begin_write().expect("txn");
        {
            let mut log = txn.open_table(LOG).expect("log");
            let mut rec = log
                .get((7, 5))
                .expect("get")
                .expect("group 7's entry 5")
                .value()
                .to_vec();
            let last = rec.len() - 1;
            rec[last] ^= 0x20;
            log.insert((7, 5), rec.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }
    match RedbStorage::open_group(dir.path(), 7) {
        Ok(_) => panic!("group 7's damaged entry was opened"),
        Err(RedbError::Corrupt { index, reason, .. }) => {
            assert_eq!(index, 5);
            assert!(reason.contains("checksum"), "{reason}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
    }
    let mut s = RedbStorage::open_group(dir.path(), 0).expect("group 0 still opens");
    assert_eq!(s.load().await.expect("load").entries, entries(0, 1..=30));
}

/// Writes, record by record, what the build before format 3 left in a
/// data dir: the marker 2 in `meta`, the hard state and configuration in
/// `meta` under their names, entries in `log` keyed by index alone, and
/// the marker file beside the database.
fn write_format_2_store(dir: &Path) {
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
    let as_format_2 = |mut rec: Vec<u8>| {
        // The version byte leads; the checksum covers the body only.
        rec[0] = 2;
        rec
    };
    let db = Database::create(dir.join("raft.redb")).expect("redb");
    let txn = db.begin_write().expect("txn");
    {
        let mut meta = txn.open_table(META).expect("meta");
        meta.insert("format", [2u8].as_slice()).expect("marker");
        let hs = HardState {
            term: 1,
            vote: Some(1),
            commit: 3,
        };
        let rec = as_format_2(encode(&hs).expect("encode"));
        meta.insert("hard_state", rec.as_slice()).expect("hs");
        let rec = as_format_2(encode(&Membership::voters([1, 2, 3])).expect("encode"));
        meta.insert("membership", rec.as_slice()).expect("conf");
        let mut log = txn.open_table(LOG).expect("log");
        for e in entries(0, 1..=3) {
            let rec = as_format_2(encode(&e).expect("encode"));
            log.insert(e.index, rec.as_slice()).expect("entry");
        }
    }
    txn.commit().expect("commit");
    std::fs::write(
        dir.join("raft.redb.format"),
        b"raft-actors-storage-redb format 2\n",
    )
    .expect("sidecar");
}

#[actix_rt::test]
async fn a_store_of_the_format_before_group_ids_is_refused_with_one_line() {
    assert_eq!(RECORD_VERSION, 3);
    let dir = tempfile::tempdir().expect("dir");
    write_format_2_store(dir.path());
    let before = std::fs::read(dir.path().join("raft.redb")).expect("read");
    for group in [0, 7] {
        let err = match RedbStorage::open_group(dir.path(), group) {
            Ok(_) => panic!("a format-2 store was opened as group {group}"),
            Err(e) => e,
        };
        assert!(
            matches!(
                err,
                RedbError::OlderFormat {
                    found: 2,
                    supported: 3,
                    ..
                }
            ),
            "{err}"
        );
        let line = err.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(
            line.contains("format version 2") && line.contains("raft.redb"),
            "{line}"
        );
    }
    // Refusing wrote nothing: the old store is there for an operator.
    let after = std::fs::read(dir.path().join("raft.redb")).expect("read");
    assert_eq!(before, after, "the refused file is untouched");
}
