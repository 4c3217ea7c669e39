//! An fsync that fails with the power on (fsyncgate: the kernel drops the
//! dirty pages and marks them clean, so a retried fsync would succeed
//! having written nothing): the store answers the write as failed, then
//! refuses every call, the retry included, without touching the disk,
//! until it is reopened; reopened on what the medium kept, it holds every
//! write it acknowledged and takes writes again.

use futures::executor::block_on;
use raft_actors::core::{Entry, HardState, LogIndex, Payload};
use raft_actors::storage::{Storage, ToPersist};
use raft_actors_storage_redb::RedbStorage;

use crate::disk::{Disk, Kind};
use crate::workload::voters;

fn append(index: LogIndex) -> ToPersist {
    ToPersist {
        hard_state: Some(HardState {
            term: 1,
            vote: Some(1),
            commit: 0,
        }),
        entries: vec![Entry {
            index,
            term: 1,
            payload: Payload::Noop,
        }],
        ..ToPersist::default()
    }
}

#[test]
fn a_failed_fsync_poisons_the_store_until_it_is_reopened() {
    let disk = Disk::new(Kind::Honest, 1, Vec::new());
    let mut store = RedbStorage::open_backend(disk.clone(), "fsync-error").expect("open");
    store.bootstrap(voters()).expect("bootstrap");
    block_on(store.write(append(1))).expect("acknowledged");
    disk.sync_error_at(disk.syncs() + 1);
    let err = block_on(store.write(append(2))).expect_err("the fsync fails");
    let calls = disk.calls();
    // A retry, a later write, a read: all refused, none reaches the disk.
    let retry = block_on(store.write(append(2))).expect_err("refused");
    assert!(retry.to_string().contains("reopen"), "{retry}");
    assert!(block_on(store.write(append(3))).is_err());
    let load = block_on(store.load()).expect_err("refused too");
    assert!(load.to_string().contains("reopen"), "{load}");
    assert_eq!(disk.calls(), calls, "a call reached the disk after {err}");
    drop(store);
    // Reopened on what the medium holds: entry 1 is there; entry 2 was
    // never acknowledged (and the medium never got it).
    let medium = disk.power_off();
    let disk = Disk::new(Kind::Honest, 2, medium);
    let mut store = RedbStorage::open_backend(disk, "fsync-error").expect("reopen");
    let state = block_on(store.load()).expect("load");
    assert_eq!(state.entries.first().map(|e| e.index), Some(1));
    assert!(state.last_index() <= 2, "{state:?}");
    block_on(store.write(append(2))).expect("written after the reopen");
    assert_eq!(block_on(store.load()).expect("load").last_index(), 2);
}

/// A failed fsync says nothing of any group's pages: once one group's
/// write failed, every group of the file refuses, and no group opens on
/// it, until the file is reopened.
#[test]
fn a_failed_fsync_of_one_group_poisons_every_group_of_the_file() {
    let disk = Disk::new(Kind::Honest, 3, Vec::new());
    let file = raft_actors_storage_redb::RedbGroups::open_backend(disk.clone(), "fsync-error")
        .expect("open");
    let mut one = file.group(1).expect("group 1");
    let mut two = file.group(2).expect("group 2");
    one.bootstrap(voters()).expect("bootstrap");
    two.bootstrap(voters()).expect("bootstrap");
    block_on(two.write(append(1))).expect("acknowledged");
    disk.sync_error_at(disk.syncs() + 1);
    block_on(one.write(append(1))).expect_err("the fsync fails");
    let calls = disk.calls();
    let refused = block_on(two.write(append(2))).expect_err("group 2 refuses too");
    assert!(refused.to_string().contains("reopen"), "{refused}");
    assert!(block_on(two.load()).is_err(), "and its reads");
    let open = file
        .group(3)
        .expect_err("no group opens on a poisoned file");
    assert!(open.to_string().contains("reopen"), "{open}");
    assert_eq!(
        disk.calls(),
        calls,
        "a call reached the disk after the failed fsync"
    );
}
