//! Snapshots through the actor runtime: the core asks for one past its
//! threshold, the node builds it from the state machine, stores it and
//! compacts the log; a follower that missed the compacted entries gets the
//! snapshot (InstallSnapshot, in chunks), restores its state machine from
//! it and catches up, also across a restart. The bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::memory_with;
use raft_actors::testing::cases;

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_after_compaction() {
    let b = memory_with(30, cases::snapshot_config());
    cases::lagging_follower_catches_up_by_snapshot_after_compaction(b).await;
}

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_after_a_crash() {
    let b = memory_with(31, cases::snapshot_config());
    cases::lagging_follower_catches_up_by_snapshot(b).await;
}
