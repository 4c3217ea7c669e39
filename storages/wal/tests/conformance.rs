//! The log storage passes the `Storage` conformance suite, with a real
//! close and reopen of the files in between, on segments small enough that
//! the suite's writes roll over and drop them.

use std::path::PathBuf;

use raft_actors_storage_wal::WalStorage;

fn conformance_on(segment_bytes: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("node");
    let fresh_path = path.clone();
    actix_rt::System::new().block_on(raft_actors::testing::storage_suite(
        move |membership| {
            let mut s =
                WalStorage::open_with(&fresh_path, segment_bytes).expect("open a fresh log");
            assert!(s.is_fresh(), "a new data dir is fresh");
            s.bootstrap(membership).expect("bootstrap");
            s
        },
        move |s: WalStorage| {
            drop(s); // closes the log: the reopen reads only what is on disk
            let s = WalStorage::open_with(&path, segment_bytes).expect("reopen");
            assert!(!s.is_fresh(), "a used log is not fresh");
            s
        },
    ));
}

#[test]
fn conformance() {
    conformance_on(raft_actors_storage_wal::SEGMENT_BYTES);
}

#[test]
fn conformance_with_a_segment_per_few_writes() {
    conformance_on(300);
}
