//! The memory storage passes the `Storage` conformance suite.

use raft_actors_storage_memory::MemoryStorage;

#[actix_rt::test]
async fn conformance() {
    raft_actors::testing::storage_suite(MemoryStorage::new, |s: MemoryStorage| s.clone()).await;
}
