//! Cluster test bodies shared by every transport: each takes a cluster
//! builder, so the same body runs over the memory network
//! (`raft-actors/tests/t10_election.rs` ... `t80_linearizability.rs`) and
//! over sockets (`transports/{tcp,http}/tests/cluster.rs`) with
//! [`TypedBuilder::network`]. Bodies that inject network faults do it
//! through [`TestCluster::faults`](crate::testing::TestCluster::faults),
//! so over sockets the builder needs a fault control attached
//! ([`TypedBuilder::faults`], e.g. a [`ProxyMesh`](crate::testing::ProxyMesh));
//! [`cluster_cases!`](crate::cluster_cases) declares them all as tests
//! for a transport.
//!
//! Every body is generic over the service: any [`KeyValue`] (the kit's
//! [`Kv`](crate::testing::Kv), or a user's own state machine that says how
//! to store and read a `u64` under a key), so users run the same bodies
//! over their service and over each transport.
//!
//! They assert only what a user can observe, and never weaken a check to
//! suit a slower transport: only the deadline, [`T`], is generous. What
//! only the memory network can do (duplicate, reorder, count messages)
//! stays in the memory-only tests.
//!
//! One concern per file: elections, replication and one-way cuts here,
//! then [`snapshot`](snapshot_config), membership, reads, restarts,
//! state machine faults, failing disks, faults under writes and linearizable histories
//! in the submodules, all re-exported here.
//!
//! ```
//! # #[actix_rt::main] async fn main() {
//! use raft_actors::testing::{cases, Kv, TestCluster};
//! cases::elect_one_leader(TestCluster::memory(3).seed(1).apply(Kv::default)).await;
//! # }
//! ```

use std::time::Duration;

use tracing::info;

use crate::core::{NodeId, Role};
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::testing::{KeyValue, KeyValueHandle, TestCluster, TypedBuilder};
use crate::type_config::TypeConfig;

pub(crate) mod clients;
mod disk_faults;
mod faults;
pub(crate) mod linearizability;
mod log_cache;
mod membership;
mod reads;
mod restart;
mod snapshot;
mod state_machine_faults;

pub use disk_faults::{
    a_corrupt_record_at_load_never_starts_the_node_empty,
    a_failed_fsync_is_never_acknowledged_nor_retried, histories_on_failing_disks_are_linearizable,
};
pub use faults::{
    partitioned_leader_write_is_overwritten_never_applied,
    writes_during_leader_transfers_succeed_or_fail_clearly,
};
pub use linearizability::{
    history_under_random_faults_is_linearizable, lin_seeds, linearizability_config,
    partitions_keep_the_history_linearizable,
};
pub use log_cache::{lagging_follower_catches_up_from_entries_read_back, no_log_cache_config};
pub use membership::remove_readd_promote_and_remove_the_leader;
pub use reads::{
    a_leader_frozen_past_its_lease_serves_no_stale_lease_read,
    a_read_on_a_leader_that_loses_its_quorum_fails_with_no_quorum,
    linearizable_and_lease_reads_see_acknowledged_writes_on_every_node,
    partitioned_old_leader_never_answers_a_linearizable_read_with_stale_data,
};
pub use restart::{
    caught_panic_fails_pending_requests_and_the_node_rejoins,
    crashed_follower_restarts_from_storage_and_rebuilds_its_state_machine,
    failing_disk_stops_the_node_and_unreadable_storage_keeps_it_down,
    shutdown_interrupts_pending_requests_and_refuses_new_ones,
    snapshot_is_saved_and_restores_a_crashed_state_machine,
};
pub use snapshot::{
    holds_keys, lagging_follower_catches_up_by_snapshot,
    lagging_follower_catches_up_by_snapshot_after_compaction, snapshot_config,
    snapshot_config_every, write_keys,
};
pub use state_machine_faults::{
    a_node_restarted_from_a_snapshot_serves_linearizable_reads_at_once,
    a_panic_in_apply_restarts_the_node_with_a_rebuilt_state_machine,
};

/// The deadline of every wait: generous, since CI machines are slow and
/// shared; a passing case never waits it out.
pub const T: Duration = Duration::from_secs(10);

/// Waits, bounded by [`T`], until `open` succeeds for each of `ids`: the
/// nodes of a cluster shut down have dropped their storage handles, so
/// their files can be opened again (a durable store holds a lock). No
/// storage tells when its last handle is gone, so this tries again every
/// 5 ms.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::testing::cases::wait_reopenable;
/// wait_reopenable([1, 2], |_id| Ok::<(), String>(())).await;
/// # }
/// ```
pub async fn wait_reopenable<E: std::fmt::Display>(
    ids: impl IntoIterator<Item = NodeId>,
    open: impl Fn(NodeId) -> Result<(), E>,
) {
    let deadline = tokio::time::Instant::now() + T;
    for id in ids {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(5));
        loop {
            poll.tick().await;
            match open(id) {
                Ok(()) => break,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "the store of node {id} never closed: {e}"
                ),
            }
        }
    }
}

/// The first node that is not `leader`.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::testing::cases::{follower_of, T};
/// use raft_actors::testing::{Kv, TestCluster};
/// let c = TestCluster::memory(3).apply(Kv::default).start().await.expect("cluster");
/// let leader = c.wait_for_leader(T).await.expect("a leader");
/// assert_ne!(follower_of(&c, leader), leader);
/// c.shutdown().await;
/// # }
/// ```
pub fn follower_of<C: TypeConfig>(c: &TestCluster<C>, leader: NodeId) -> NodeId {
    c.ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower")
}

/// [`follower_of`] `leader`, once it knows who leads: a leader that a
/// majority follows may not have reached the last node yet (over sockets
/// under load, a visible delay), and a request there would meet
/// `NoLeader` or `NotLeader { leader: None }`.
async fn follower_hearing<C: TypeConfig>(c: &TestCluster<C>, leader: NodeId) -> NodeId {
    let f = follower_of(c, leader);
    c.wait_until("the follower hears the leader", T, |m| {
        m[&f].leader == Some(leader)
    })
    .await
    .expect("the follower hears the leader");
    f
}

/// Declares one `#[actix_rt::test]` per shared body beyond the first five
/// (election, leader crash, replication, forwarding, snapshot after a
/// crash, which the socket crates call directly): paused clock, metrics,
/// timeouts, group commit, queue bound, snapshot after compaction,
/// membership, reads, restarts, state machine faults, faults under writes,
/// failing disks and linearizable histories, most of which inject faults through
/// [`TestCluster::faults`](crate::testing::TestCluster::faults). Each test
/// is named after its body and seeded as its memory twin in
/// `raft-actors/tests`.
///
/// `$make` is an `async fn(seed: u64, cfg: NodeConfig) -> TypedBuilder<C>`
/// whose builder has a fault control attached, for the kit's
/// [`Kv`](crate::testing::Kv) or any service `C` that implements
/// [`KeyValue`]: the same bodies then run over the user's own state
/// machine. The linearizability test
/// runs [`lin_seeds(2)`](lin_seeds): two seeds unless `LIN_SEEDS` or
/// `LIN_SEED` say otherwise. The caller needs `actix-rt` as a
/// dev-dependency.
///
/// ```
/// use raft_actors::node::NodeConfig;
/// use raft_actors::testing::{Kv, TestCluster, TypedBuilder};
///
/// // Over the memory network, which attaches itself as the fault control.
/// async fn memory(seed: u64, cfg: NodeConfig) -> TypedBuilder<Kv> {
///     TestCluster::memory(3).seed(seed).config(cfg).apply(Kv::default)
/// }
///
/// raft_actors::cluster_cases!(memory);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! cluster_cases {
    ($make:path) => {
        $crate::cluster_cases!(@default $make,
            // t10_election.rs
            a_leader_whose_ticks_pause_is_replaced_and_rejoins_as_follower 11,
            // t20_replication.rs
            metrics_subscription_reports_role_term_commit_and_follower_match 14,
            a_write_that_cannot_commit_times_out_with_outcome_unknown 15,
            concurrent_proposals_are_group_committed 12,
            a_full_proposal_queue_answers_busy 13 small_queue_config,
            // t30_snapshot.rs
            lagging_follower_catches_up_by_snapshot_after_compaction 30 snapshot_config,
        );
        $crate::cluster_cases!(@default $make,
            // t40_membership.rs
            remove_readd_promote_and_remove_the_leader 40,
            // t50_reads.rs
            linearizable_and_lease_reads_see_acknowledged_writes_on_every_node 20,
            partitioned_old_leader_never_answers_a_linearizable_read_with_stale_data 21,
            a_read_on_a_leader_that_loses_its_quorum_fails_with_no_quorum 23,
            a_leader_frozen_past_its_lease_serves_no_stale_lease_read 24,
            // t60_restart.rs
            caught_panic_fails_pending_requests_and_the_node_rejoins 30,
            crashed_follower_restarts_from_storage_and_rebuilds_its_state_machine 31,
            snapshot_is_saved_and_restores_a_crashed_state_machine 32,
            failing_disk_stops_the_node_and_unreadable_storage_keeps_it_down 33,
            shutdown_interrupts_pending_requests_and_refuses_new_ones 34,
            // t65_state_machine_faults.rs
            a_panic_in_apply_restarts_the_node_with_a_rebuilt_state_machine 65,
            a_node_restarted_from_a_snapshot_serves_linearizable_reads_at_once 66,
            // t70_faults.rs
            partitioned_leader_write_is_overwritten_never_applied 40,
            writes_during_leader_transfers_succeed_or_fail_clearly 41,
            // t75_disk_faults.rs
            a_failed_fsync_is_never_acknowledged_nor_retried 75,
            a_corrupt_record_at_load_never_starts_the_node_empty 76,
        );
        #[actix_rt::test]
        async fn histories_on_failing_disks_are_linearizable() {
            for seed in $crate::testing::cases::lin_seeds(2) {
                let b = $make(seed, $crate::testing::cases::linearizability_config()).await;
                let stats =
                    $crate::testing::cases::histories_on_failing_disks_are_linearizable(b, seed)
                        .await;
                assert_eq!(stats.refused, 0);
            }
        }
        // t80_linearizability.rs
        #[actix_rt::test]
        async fn histories_under_random_faults_are_linearizable() {
            for seed in $crate::testing::cases::lin_seeds(2) {
                let b = $make(seed, $crate::testing::cases::linearizability_config()).await;
                $crate::testing::cases::history_under_random_faults_is_linearizable(b, seed)
                    .await;
            }
        }
    };
    (@default $make:path, $($name:ident $seed:literal $($cfg:ident)?,)*) => {
        $(
            #[actix_rt::test]
            async fn $name() {
                let cfg = $crate::cluster_cases!(@cfg $($cfg)?);
                $crate::testing::cases::$name($make($seed, cfg).await).await;
            }
        )*
    };
    (@cfg) => { $crate::node::NodeConfig::default() };
    (@cfg $cfg:ident) => { $crate::testing::cases::$cfg() };
}

/// A leader emerges, everyone follows it, exactly one node leads, and it
/// tracks every follower.
pub async fn elect_one_leader<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    info!("--- a leader emerges and everyone follows it");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let m = c
        .wait_until("all follow", T, |m| {
            m.values().all(|x| x.leader == Some(leader))
        })
        .await
        .expect("all follow");
    let leaders = m.values().filter(|x| x.role == Role::Leader).count();
    assert_eq!(leaders, 1, "exactly one leader: {m:?}");
    let status = c.raft(leader).status().await.expect("status");
    assert!(status.role.is_leader());
    assert_eq!(
        status.peers.len(),
        c.ids().len() - 1,
        "the leader tracks every follower"
    );
    c.shutdown().await;
}

/// A crashed leader is replaced in a higher term (§5.2); restarted, it
/// follows the new one.
pub async fn leader_crash_elects_a_new_leader<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    let old_term = c.raft(old).current().term;
    info!("--- crash the leader");
    c.crash(old).await;
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("new leader");
    assert_ne!(new, old);
    assert!(c.raft(new).current().term > old_term, "a new term");
    info!("--- the old leader restarts and follows");
    c.restart(old).await.expect("restart");
    c.wait_until("old follows new", T, |m| {
        m[&old].leader == Some(new) && m[&old].role == Role::Follower
    })
    .await
    .expect("old leader rejoins as follower");
    c.shutdown().await;
}

/// A leader whose clock stops sends no heartbeats and is replaced; its
/// clock resumed, it learns the newer term and follows (§5.2).
pub async fn a_leader_whose_ticks_pause_is_replaced_and_rejoins_as_follower<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    info!("--- the leader's clock stops: no heartbeats, the others elect");
    c.pause_ticks(old);
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("a new leader");
    assert_ne!(new, old);
    info!("--- its clock resumes: it learns the newer term and follows");
    c.resume_ticks(old);
    c.raft(old)
        .wait_for(T, |m| m.leader == Some(new) && !m.role.is_leader())
        .await
        .expect("follows the new leader");
    c.shutdown().await;
}

/// Writes on the leader return the state machine's outputs, in growing
/// indexes, and every node applies them.
pub async fn leader_proposals_apply_everywhere<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    info!("--- ten writes to one key, in sequence");
    let mut last = 0;
    for v in 1..=10 {
        let out = c.raft(leader).put_value(1, v).await.expect("propose");
        let expected = if v == 1 { None } else { Some(v - 1) };
        if let Some(replaced) = C::replaced(&out.output) {
            assert_eq!(replaced, expected, "the output is the previous value");
        }
        assert!(out.index > last, "indexes grow");
        last = out.index;
    }
    info!("--- every node applies them");
    c.wait_all_applied(last, T).await.expect("all applied");
    for id in c.ids() {
        let v = c
            .raft(id)
            .get_value(1, Consistency::Stale)
            .await
            .expect("read");
        assert_eq!(v, Some(10), "node {id}");
    }
    c.shutdown().await;
}

/// The leader's metrics subscription shows its role, term, commit and
/// both followers' match index, and every write publishes new metrics.
pub async fn metrics_subscription_reports_role_term_commit_and_follower_match<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let out = c.raft(leader).put_value(1, 1).await.expect("write");
    info!("--- the leader's subscription shows both followers caught up");
    let followers = c.ids().len() - 1;
    let m = c
        .raft(leader)
        .wait_for(T, |m| {
            m.matched.len() == followers && m.matched.values().all(|i| *i >= out.index)
        })
        .await
        .expect("followers match");
    assert_eq!(m.role, Role::Leader);
    assert_eq!(m.leader, Some(leader));
    assert!(m.term >= 1 && m.commit >= out.index && m.applied >= out.index);
    let mut rx = c.raft(leader).metrics();
    rx.borrow_and_update();
    c.raft(leader).put_value(1, 2).await.expect("write");
    let changed = actix_rt::time::timeout(T, rx.changed()).await;
    assert!(
        matches!(changed, Ok(Ok(()))),
        "a write publishes new metrics"
    );
    assert!(rx.borrow().commit > out.index);
    c.shutdown().await;
}

/// A write on a leader cut off from everyone cannot commit: it times out,
/// and the error says the outcome is unknown.
pub async fn a_write_that_cannot_commit_times_out_with_outcome_unknown<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    c.faults().isolate(leader);
    let short = c
        .raft(leader)
        .clone()
        .with_timeout(Duration::from_millis(300));
    let r = short.put_value(1, 1).await;
    assert_eq!(r.as_ref().map(|_| ()), Err(&ClientError::Timeout));
    assert!(r.err().is_some_and(|e| e.outcome_unknown()));
    c.shutdown().await;
}

/// 500 concurrent proposals all succeed, in fewer than 100 storage writes
/// on the leader: appends are batched (group commit).
pub async fn concurrent_proposals_are_group_committed<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let before = c.storage(leader).append_calls();
    info!("--- 500 concurrent proposals");
    let raft = c.raft(leader).clone();
    let results = futures::future::join_all((0..500).map(|i| {
        let raft = raft.clone();
        async move { raft.put_value(i, i).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        ok,
        500,
        "all succeed: {:?}",
        results.iter().find(|r| r.is_err())
    );
    let writes = c.storage(leader).append_calls() - before;
    info!(writes, "--- storage writes on the leader");
    assert!(
        writes < 100,
        "500 proposals took {writes} storage writes: not batched"
    );
    c.shutdown().await;
}

/// Node settings for [`a_full_proposal_queue_answers_busy`]: at most 4
/// proposals pending.
pub fn small_queue_config() -> crate::node::NodeConfig {
    crate::node::NodeConfig {
        max_pending: 4,
        ..crate::node::NodeConfig::default()
    }
}

/// With a queue of 4, some of 64 concurrent proposals are refused with
/// `Busy` (nothing proposed) and every other one succeeds. Build the
/// cluster with [`small_queue_config`].
pub async fn a_full_proposal_queue_answers_busy<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let raft = c.raft(leader).clone();
    let results = futures::future::join_all((0..64).map(|i| {
        let raft = raft.clone();
        async move { raft.put_value(i, i).await }
    }))
    .await;
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::Busy)))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(busy > 0, "a queue of 4 must refuse some of 64");
    assert_eq!(ok + busy, 64, "every other proposal succeeds: {results:?}");
    c.shutdown().await;
}

/// A proposal on a follower is forwarded to the leader and resolves once
/// the follower itself applied it.
pub async fn follower_proposal_is_forwarded<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let follower = follower_hearing(&c, leader).await;
    info!("--- propose on follower {follower}");
    let out = c.raft(follower).put_value(7, 70).await.expect("propose");
    info!("--- it resolved after the follower applied it: a stale read there sees it");
    let v = c
        .raft(follower)
        .get_value(7, Consistency::Stale)
        .await
        .expect("read");
    assert_eq!(v, Some(70));
    assert!(c.raft(follower).current().applied >= out.index);
    c.shutdown().await;
}

/// A leader whose outgoing links are cut (one way) is replaced by
/// followers that stop hearing it (§5.2); hearing the higher term, it
/// steps down; healed, everyone catches up.
pub async fn leader_cut_one_way_is_replaced<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    let old_term = c.raft(old).current().term;
    info!(
        old,
        "--- cut what the leader sends; it still hears the others"
    );
    c.faults().mute(old);
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("followers that stop hearing the leader elect another");
    assert!(c.raft(new).current().term > old_term);
    info!("--- the old leader hears the new term and steps down");
    c.wait_until("old steps down", T, |m| m[&old].role != Role::Leader)
        .await
        .expect("old leader steps down");
    c.faults().heal();
    let leader = c.wait_for_leader(T).await.expect("a leader after healing");
    let out = c.raft(leader).put_value(1, 1).await;
    // Leadership may move once more while healing: write where it lands.
    let index = match out {
        Ok(a) => a.index,
        Err(_) => {
            let leader = c.wait_for_leader(T).await.expect("a leader");
            c.raft(leader)
                .put_value(1, 1)
                .await
                .expect("write after healing")
                .index
        }
    };
    c.wait_all_applied(index, T).await.expect("all catch up");
    c.shutdown().await;
}
