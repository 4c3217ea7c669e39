//! Snapshots through the actor runtime: the core asks for one past its
//! threshold, the node builds it from the state machine, stores it and
//! compacts the log; a follower that missed the compacted entries gets the
//! snapshot (InstallSnapshot, in chunks), restores its state machine from
//! it and catches up, also across a restart.

mod common;

use common::{init_logging, T};
use raft_actors::core::Config;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{Kv, KvCommand, TestCluster};
use raft_actors::Consistency;
use tracing::info;

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_after_compaction() {
    init_logging();
    let cfg = NodeConfig {
        core: Config {
            snapshot_threshold: 20,
            trailing_logs: 0,
            snapshot_chunk_bytes: 64,
            ..Config::default()
        },
        ..NodeConfig::default()
    };
    let c = TestCluster::memory(3)
        .seed(30)
        .config(cfg)
        .apply(Kv::default)
        .start()
        .await
        .expect("cluster");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");

    info!("--- cut {lagging} off; the others write past two snapshot thresholds");
    c.net().isolate(lagging);
    let mut last = 0;
    for key in 0..60 {
        last = c
            .raft(leader)
            .propose(KvCommand::Put {
                key,
                value: key + 100,
            })
            .await
            .expect("write")
            .index;
    }
    c.wait_until("the leader applied every write", T, |m| {
        m.get(&leader).is_some_and(|m| m.applied >= last)
    })
    .await
    .expect("leader applied");
    let stored = c.storage(leader).state();
    let snap = stored.snapshot.expect("the leader stored a snapshot");
    assert!(snap.meta.index >= 40, "snapshot at {}", snap.meta.index);
    let first = stored
        .entries
        .first()
        .map_or(snap.meta.index + 1, |e| e.index);
    assert!(
        first > 1,
        "the leader's stored log was compacted (starts at {first})"
    );

    info!("--- heal: {lagging} can only catch up by snapshot");
    c.net().heal();
    c.wait_until("the follower caught up", T, |m| {
        m.get(&lagging).is_some_and(|m| m.applied >= last)
    })
    .await
    .expect("the follower caught up");
    let installed = c
        .storage(lagging)
        .state()
        .snapshot
        .expect("the follower stored the snapshot");
    assert!(installed.meta.index >= snap.meta.index);
    for key in [0, 17, 59] {
        let v = c
            .raft(lagging)
            .read(key, Consistency::Stale)
            .await
            .expect("read");
        assert_eq!(v, Some(key + 100), "key {key} on the follower");
    }

    info!("--- restart it: its state machine comes back from the snapshot and the log after it");
    c.crash(lagging).await;
    c.restart(lagging).await.expect("restart");
    c.wait_until("the follower is back", T, |m| {
        m.get(&lagging)
            .is_some_and(|m| m.down.is_none() && m.applied >= last)
    })
    .await
    .expect("back");
    for key in [0, 59] {
        let v = c
            .raft(lagging)
            .read(key, Consistency::Stale)
            .await
            .expect("read");
        assert_eq!(v, Some(key + 100), "key {key} after restart");
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot_after_a_crash() {
    init_logging();
    // The body is shared with the TCP and HTTP transports' cluster tests.
    let b = TestCluster::memory(3)
        .seed(31)
        .config(raft_actors::testing::cases::snapshot_config())
        .apply(Kv::default);
    raft_actors::testing::cases::lagging_follower_catches_up_by_snapshot(b).await;
}
