//! Snapshots through the actor runtime, over any transport: past its
//! threshold a node snapshots its state machine and compacts its log; a
//! follower that missed the compacted entries can only catch up by
//! InstallSnapshot (§7), in chunks, and keeps the state across a restart.

use tracing::info;

use super::{follower_of, T};
use crate::core::{LogIndex, NodeId};
use crate::node::messages::client::Consistency;
use crate::testing::{KeyValue, KeyValueHandle, TestCluster, TypedBuilder};

/// Node settings for the snapshot cases: a snapshot every 20 entries, no
/// trailing log, 64-byte chunks (so a snapshot crosses the network in many
/// chunks).
pub fn snapshot_config() -> crate::node::NodeConfig {
    snapshot_config_every(20, 0)
}

/// Node settings with a snapshot every `threshold` applied entries,
/// `trailing` entries kept behind it, and 64-byte chunks.
///
/// ```
/// use raft_actors::testing::cases::snapshot_config_every;
/// let cfg = snapshot_config_every(20, 5);
/// assert_eq!((cfg.core.snapshot_threshold, cfg.core.trailing_logs), (20, 5));
/// ```
pub fn snapshot_config_every(threshold: u64, trailing: u64) -> crate::node::NodeConfig {
    crate::node::NodeConfig {
        core: crate::core::Config {
            snapshot_threshold: threshold,
            trailing_logs: trailing,
            snapshot_chunk_bytes: 64,
            ..crate::core::Config::default()
        },
        ..crate::node::NodeConfig::default()
    }
}

/// A follower cut off while the others write past two snapshot
/// thresholds finds the leader's log compacted: it catches up by
/// snapshot, then its state machine comes back from the snapshot (and the
/// log after it) across a restart. Build the cluster with
/// [`snapshot_config`].
pub async fn lagging_follower_catches_up_by_snapshot_after_compaction<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = follower_of(&c, leader);
    info!("--- cut {lagging} off; the others write past two snapshot thresholds");
    c.faults().isolate(lagging);
    let (last, snap) = write_past_two_snapshots(&c, leader).await;
    let stored = c.storage(leader).state();
    let first = stored.entries.first().map_or(snap + 1, |e| e.index);
    assert!(
        first > 1,
        "the leader's stored log was compacted (starts at {first})"
    );

    info!("--- heal: {lagging} can only catch up by snapshot");
    c.faults().heal();
    caught_up_by_snapshot(&c, lagging, last, snap).await;

    info!("--- restart it: its state machine comes back from the snapshot and the log after it");
    c.crash(lagging).await;
    c.restart(lagging).await.expect("restart");
    c.wait_until("the follower is back", T, |m| {
        m.get(&lagging)
            .is_some_and(|m| m.down.is_none() && m.applied >= last)
    })
    .await
    .expect("back");
    holds_keys(&c, lagging, &[0, 59]).await;
    c.shutdown().await;
}

/// A follower down while the others write past two snapshot thresholds
/// comes back to a compacted log and can only catch up by InstallSnapshot
/// (§7), chunk by chunk; it then serves every write. Build the cluster
/// with [`snapshot_config`].
pub async fn lagging_follower_catches_up_by_snapshot<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = follower_of(&c, leader);
    info!(lagging, "--- crash a follower; the others write 60 entries");
    c.crash(lagging).await;
    let (last, snap) = write_past_two_snapshots(&c, leader).await;
    info!("--- restart it: it can only catch up by snapshot");
    c.restart(lagging).await.expect("restart");
    caught_up_by_snapshot(&c, lagging, last, snap).await;
    c.shutdown().await;
}

/// Writes keys `0..60` (values `key + 100`) on `leader` and waits until it
/// applied them; answers the last index and that of the leader's stored
/// snapshot, which must cover at least two thresholds of 20.
async fn write_past_two_snapshots<C: KeyValue>(
    c: &TestCluster<C>,
    leader: NodeId,
) -> (LogIndex, LogIndex) {
    let last = write_keys(c, leader, 60).await;
    let snap = c
        .storage(leader)
        .state()
        .snapshot
        .expect("the leader stored a snapshot");
    assert!(snap.meta.index >= 40, "snapshot at {}", snap.meta.index);
    (last, snap.meta.index)
}

/// Writes keys `0..n` (values `key + 100`) on `leader` and waits until it
/// applied them; answers the last index.
pub async fn write_keys<C: KeyValue>(c: &TestCluster<C>, leader: NodeId, n: u64) -> LogIndex {
    let mut last = 0;
    for key in 0..n {
        last = c
            .raft(leader)
            .put_value(key, key + 100)
            .await
            .expect("write")
            .index;
    }
    c.wait_until("the leader applied every write", T, |m| {
        m.get(&leader).is_some_and(|m| m.applied >= last)
    })
    .await
    .expect("leader applied");
    last
}

/// Waits until `lagging` applied `last`, then checks it stored a snapshot
/// at least as recent as the leader's (`snap`) and serves the writes of
/// [`write_past_two_snapshots`].
async fn caught_up_by_snapshot<C: KeyValue>(
    c: &TestCluster<C>,
    lagging: NodeId,
    last: LogIndex,
    snap: LogIndex,
) {
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
    assert!(installed.meta.index >= snap);
    holds_keys(c, lagging, &[0, 17, 59]).await;
}

/// Asserts that node `id` holds each of `keys` as [`write_keys`] wrote it
/// (a stale read: what its own state machine applied).
pub async fn holds_keys<C: KeyValue>(c: &TestCluster<C>, id: NodeId, keys: &[u64]) {
    for &key in keys {
        let v = c
            .raft(id)
            .get_value(key, Consistency::Stale)
            .await
            .expect("read");
        assert_eq!(v, Some(key + 100), "key {key} on node {id}");
    }
}
