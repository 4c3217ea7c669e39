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
