//! Many Raft groups in one redb file ([`RedbGroups`], format 3): every
//! key starts with its group, so the groups never see each other's
//! records and a damaged record stops only its own group; batches of
//! several groups queued together share one transaction and one fsync; a
//! store of the format before group ids (2) is refused with one line,
//! never misread.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use raft_actors::core::{Entry, HardState, Membership, Payload};
use raft_actors::storage::{Storage, StorageError, ToPersist};
use raft_actors::testing::StorageExt;
use raft_actors_storage_redb::record::{encode, RECORD_VERSION};
use raft_actors_storage_redb::{RedbError, RedbGroups, RedbStorage};
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
    let mut s = RedbGroups::open(dir)
        .expect("file")
        .group(group)
        .expect("open");
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
        let mut s = RedbGroups::open(dir.path())
            .expect("file")
            .group(group)
            .expect("reopen");
        let state = s.load().await.expect("load");
        assert_eq!(state.entries, entries(group, 1..=last), "group {group}");
        assert_eq!(state.hard_state.vote, Some(group + 1), "group {group}");
        assert_eq!(state.hard_state.commit, last);
    }
    // A group never written is fresh in the same file.
    assert!(RedbGroups::open(dir.path())
        .expect("file")
        .group(3)
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
    match RedbGroups::open(dir.path()).expect("file").group(7) {
        Ok(_) => panic!("group 7's damaged entry was opened"),
        Err(RedbError::Corrupt { index, reason, .. }) => {
            assert_eq!(index, 5);
            assert!(reason.contains("checksum"), "{reason}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
    }
    let mut s = RedbGroups::open(dir.path())
        .expect("file")
        .group(0)
        .expect("group 0 still opens");
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
    let refusals = [
        RedbStorage::open(dir.path()).err(),
        RedbGroups::open(dir.path()).err(),
    ];
    for err in refusals {
        let err = err.expect("a format-2 store is never opened");
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

/// A disk in memory whose syncs wait while its gate is closed: a commit
/// held there holds the storage thread, so the batches sent meanwhile are
/// queued together when it resumes.
#[derive(Debug, Clone)]
struct GatedDisk {
    data: Arc<redb::backends::InMemoryBackend>,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

#[derive(Debug, Default)]
struct Gate {
    closed: bool,
    waiting: usize,
}

impl GatedDisk {
    fn new() -> Self {
        GatedDisk {
            data: Arc::new(redb::backends::InMemoryBackend::new()),
            gate: Arc::default(),
        }
    }

    fn close(&self) {
        self.gate.0.lock().expect("gate").closed = true;
    }

    fn open(&self) {
        self.gate.0.lock().expect("gate").closed = false;
        self.gate.1.notify_all();
    }

    /// Blocks until a sync waits at the closed gate (10 s at most).
    fn wait_for_a_held_sync(&self) {
        let (lock, cvar) = &*self.gate;
        let (gate, timeout) = cvar
            .wait_timeout_while(
                lock.lock().expect("gate"),
                std::time::Duration::from_secs(10),
                |g| g.waiting == 0,
            )
            .expect("gate");
        assert!(
            !timeout.timed_out() && gate.waiting > 0,
            "no sync reached the gate"
        );
    }
}

impl redb::StorageBackend for GatedDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.data.len()
    }
    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, std::io::Error> {
        self.data.read(offset, len)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.data.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> Result<(), std::io::Error> {
        let (lock, cvar) = &*self.gate;
        let mut gate = lock.lock().expect("gate");
        if gate.closed {
            gate.waiting += 1;
            cvar.notify_all();
            gate = cvar.wait_while(gate, |g| g.closed).expect("gate");
            gate.waiting -= 1;
        }
        drop(gate);
        self.data.sync_data(eventual)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.data.write(offset, data)
    }
}

/// Entries `first..=last` of group `group`, with the hard state of term 1.
fn batch(group: u64, first: u64, last: u64) -> ToPersist {
    ToPersist {
        hard_state: Some(HardState {
            term: 1,
            vote: Some(1),
            commit: 0,
        }),
        entries: entries(group, first..=last),
        ..ToPersist::default()
    }
}

/// Groups 1..=n of a gated file, each bootstrapped.
fn gated_groups(n: u64) -> (GatedDisk, RedbGroups, Vec<RedbStorage>) {
    let disk = GatedDisk::new();
    let file = RedbGroups::open_backend(disk.clone(), "gated").expect("open");
    let groups = (1..=n)
        .map(|g| {
            let mut s = file.group(g).expect("group");
            s.bootstrap(Membership::voters([1])).expect("bootstrap");
            s
        })
        .collect();
    (disk, file, groups)
}

#[actix_rt::test]
async fn batches_of_many_groups_queued_together_share_one_transaction_and_one_fsync() {
    let (disk, file, mut groups) = gated_groups(8);
    let mut second_of_2 = groups[1].clone();
    let before = file.stats();
    disk.close();
    let (first, rest) = groups.split_at_mut(1);
    let mut held = first[0].write(batch(1, 1, 3));
    assert!(futures::poll!(&mut held).is_pending());
    disk.wait_for_a_held_sync();
    // Queued while group 1's commit waits at the gate: groups 2..=8, then
    // group 2 again, which must not share a transaction with its first.
    let mut queued: Vec<_> = rest
        .iter_mut()
        .enumerate()
        .map(|(i, s)| s.write(batch(i as u64 + 2, 1, 2)))
        .collect();
    queued.push(second_of_2.write(batch(2, 3, 3)));
    for w in &mut queued {
        assert!(futures::poll!(w).is_pending());
    }
    disk.open();
    held.await.expect("group 1");
    for r in futures::future::join_all(queued).await {
        r.expect("written");
    }
    let after = file.stats();
    assert_eq!(
        after.fsyncs - before.fsyncs,
        3,
        "group 1 alone, groups 2..=8 together, group 2's second batch alone"
    );
    assert_eq!(after.merged - before.merged, 1);
    assert_eq!(after.entries - before.entries, 3 + 7 * 2 + 1);
    for (i, s) in groups.iter_mut().enumerate() {
        let g = i as u64 + 1;
        let last = if g == 1 || g == 2 { 3 } else { 2 };
        assert_eq!(
            s.load().await.expect("load").entries,
            entries(g, 1..=last),
            "group {g}"
        );
    }
}

#[actix_rt::test]
async fn a_refused_batch_in_a_shared_transaction_fails_only_its_own_group() {
    let (disk, file, mut groups) = gated_groups(4);
    let before = file.stats();
    disk.close();
    let (first, rest) = groups.split_at_mut(1);
    let mut held = first[0].write(batch(1, 1, 1));
    assert!(futures::poll!(&mut held).is_pending());
    disk.wait_for_a_held_sync();
    // Group 3's batch starts at index 5 of an empty log: out of order.
    let mut queued: Vec<_> = rest
        .iter_mut()
        .enumerate()
        .map(|(i, s)| {
            let g = i as u64 + 2;
            if g == 3 {
                s.write(batch(g, 5, 6))
            } else {
                s.write(batch(g, 1, 2))
            }
        })
        .collect();
    for w in &mut queued {
        assert!(futures::poll!(w).is_pending());
    }
    disk.open();
    held.await.expect("group 1");
    let results = futures::future::join_all(queued).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(StorageError::OutOfOrder(_))),
        "{results:?}"
    );
    // The shared transaction was dropped; the others went alone.
    assert_eq!(file.stats().merged, before.merged);
    for (g, last) in [(2u64, 2u64), (4, 2)] {
        let s = &mut groups[g as usize - 1];
        assert_eq!(s.load().await.expect("load").entries, entries(g, 1..=last));
    }
    assert!(groups[2].load().await.expect("load").entries.is_empty());
}
