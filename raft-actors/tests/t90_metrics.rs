//! The node's published [`Activity`](raft_actors::node::Activity) and the
//! memory network's per-peer counts, on a 3-node cluster: writes are timed
//! and counted where they happen (storage, apply), snapshots are counted
//! taken, sent and installed with their bytes and durations, elections and
//! leaderships are counted and survive a restart from storage.

mod common;

use common::{memory_with, T};
use raft_actors::node::NodeConfig;
use raft_actors::testing::cases;
use raft_actors::testing::KvCommand;

const WRITES: u64 = 60;

#[actix_rt::test]
async fn activity_counts_writes_snapshots_and_elections() {
    let cfg: NodeConfig = cases::snapshot_config();
    let c = memory_with(90, cfg).start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    c.faults().isolate(lagging);
    let mut last = 0;
    for key in 0..WRITES {
        let put = KvCommand::Put { key, value: key };
        last = c.raft(leader).propose(put).await.expect("write").index;
    }
    // While it is cut off, the leader's sends to it are counted as drops.
    let dropped = c.net().peer_metrics(leader)[&lagging].drops;
    assert!(dropped > 0, "the leader's sends to the isolated node");
    c.faults().heal();
    let m = c
        .wait_until("the lagging node caught up from a snapshot", T, |m| {
            m.get(&lagging)
                .is_some_and(|m| m.applied >= last && m.activity.snapshots_installed.count >= 1)
                && m.get(&leader)
                    .is_some_and(|m| m.activity.snapshots_sent.seconds.count() >= 1)
        })
        .await
        .expect("caught up");

    let a = &m[&leader].activity;
    assert!(a.storage_write.count() >= WRITES, "{a:?}");
    assert!(a.storage_write.sum() > 0);
    // The memory storage counts no fsyncs: the writes the core marked
    // must-sync are the synced ones, each write of a new entry among them.
    assert!(a.fsync.count() >= WRITES, "{a:?}");
    assert!(a.entries_per_write.sum() >= WRITES);
    assert!(
        a.apply.count() >= WRITES,
        "sequential writes apply one by one"
    );
    assert!(a.snapshots_taken.count >= 2, "two thresholds of 20 passed");
    assert!(a.snapshots_taken.bytes > 0 && a.snapshots_taken.seconds.count() >= 2);
    assert!(
        a.snapshots_sent.count >= 1 && a.snapshots_sent.bytes > 0,
        "{a:?}"
    );
    assert!(a.events.elections_won >= 1 && a.events.elections_started >= 1);
    let l = &m[&lagging].activity;
    assert!(l.snapshots_installed.bytes > 0 && l.snapshots_installed.seconds.count() >= 1);

    // The memory network counts what each link carried, both ways.
    let peers = c.net().peer_metrics(leader);
    for id in c.ids().into_iter().filter(|id| *id != leader) {
        let p = peers[&id];
        assert!(p.bytes_sent > 0 && p.frames_sent > 0 && p.messages_sent >= p.frames_sent);
        assert!(p.bytes_received > 0 && p.frames_received > 0, "{p:?}");
    }

    // A restart from storage keeps the counts of the incarnation before.
    let seen = m[&lagging].activity.events.leader_changes;
    assert!(seen >= 1);
    c.crash(lagging).await;
    c.restart(lagging).await.expect("restart");
    let after = c
        .wait_until("the restarted node follows the leader", T, |m| {
            m.get(&lagging)
                .is_some_and(|m| m.down.is_none() && m.leader == Some(leader))
        })
        .await
        .expect("back");
    let a = &after[&lagging].activity;
    assert!(a.events.leader_changes > seen, "{seen} before, {a:?}");
    assert!(a.snapshots_installed.count >= 1, "kept across the restart");
    c.shutdown().await;
}
