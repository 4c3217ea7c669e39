//! Faults: a partitioned leader's write is never applied, writes during
//! leader changes succeed or fail with a clear error, and a lossy network
//! only slows commits down. The first two bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use std::time::Duration;

use common::{kv_cluster, memory, T};
use raft_actors::testing::{cases, KvCommand};
use raft_actors::transport::LinkFaults;
use tracing::info;

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

#[actix_rt::test]
async fn partitioned_leader_write_is_overwritten_never_applied() {
    cases::partitioned_leader_write_is_overwritten_never_applied(memory(40)).await;
}

#[actix_rt::test]
async fn writes_during_leader_transfers_succeed_or_fail_clearly() {
    cases::writes_during_leader_transfers_succeed_or_fail_clearly(memory(41)).await;
}

// Memory-only: duplication, reordering and the message counts exist only
// on the memory network (a byte stream between sockets neither duplicates
// nor reorders); over sockets, loss and delay are covered by
// `cases::partitions_keep_the_history_linearizable` and the lossy steps of
// `cases::history_under_random_faults_is_linearizable`.
#[actix_rt::test]
async fn lossy_duplicating_reordering_network_still_commits() {
    let c = kv_cluster(3, 42).await;
    c.wait_for_leader(T).await.expect("leader");
    info!("--- 10% loss, 10% duplicates, 20% reordering, delays up to 3 ms");
    c.net().set_all(LinkFaults {
        drop: 0.1,
        duplicate: 0.1,
        reorder: 0.2,
        max_delay: Duration::from_millis(3),
    });
    let mut last = 0;
    let mut ok = 0;
    for v in 0..30 {
        let leader = c.wait_for_leader(T).await.expect("leader");
        if let Ok(out) = c.raft(leader).propose(put(1, v)).await {
            last = last.max(out.index);
            ok += 1;
        }
    }
    assert!(ok >= 20, "only {ok} of 30 writes succeeded");
    let stats = c.net().stats();
    assert!(
        stats.dropped > 0 && stats.duplicated > 0 && stats.delayed > 0,
        "faults were injected: {stats:?}"
    );
    c.net().heal();
    c.wait_all_applied(last, T).await.expect("all applied");
}
