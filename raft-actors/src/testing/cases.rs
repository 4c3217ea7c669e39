//! Cluster test bodies shared by every transport: each takes a cluster
//! builder, so the same body runs over the memory network
//! (`raft-actors/tests/t10_election.rs`, `t20_replication.rs`) and over
//! sockets (`transports/tcp/tests/cluster.rs`) with
//! [`TypedBuilder::network`].
//!
//! They assert only what a user can observe, and never weaken a check to
//! suit a slower transport: only the deadline, [`T`], is generous.
//!
//! ```
//! # #[actix_rt::main] async fn main() {
//! use raft_actors::testing::{cases, Kv, TestCluster};
//! cases::elect_one_leader(TestCluster::memory(3).seed(1).apply(Kv::default)).await;
//! # }
//! ```

use std::time::Duration;

use tracing::info;

use crate::core::Role;
use crate::node::messages::client::Consistency;
use crate::testing::{Kv, KvCommand, TypedBuilder};

/// The deadline of every wait: generous, since CI machines are slow and
/// shared; a passing case never waits it out.
pub const T: Duration = Duration::from_secs(10);

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

/// A leader emerges, everyone follows it, exactly one node leads, and it
/// tracks every follower.
pub async fn elect_one_leader(b: TypedBuilder<Kv>) {
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
pub async fn leader_crash_elects_a_new_leader(b: TypedBuilder<Kv>) {
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

/// Writes on the leader return the state machine's outputs, in growing
/// indexes, and every node applies them.
pub async fn leader_proposals_apply_everywhere(b: TypedBuilder<Kv>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    info!("--- ten writes to one key, in sequence");
    let mut last = 0;
    for v in 1..=10 {
        let out = c.raft(leader).propose(put(1, v)).await.expect("propose");
        let expected = if v == 1 { None } else { Some(v - 1) };
        assert_eq!(out.output, expected, "the output is the previous value");
        assert!(out.index > last, "indexes grow");
        last = out.index;
    }
    info!("--- every node applies them");
    c.wait_all_applied(last, T).await.expect("all applied");
    for id in c.ids() {
        let v = c.raft(id).read(1, Consistency::Stale).await.expect("read");
        assert_eq!(v, Some(10), "node {id}");
    }
    c.shutdown().await;
}

/// A proposal on a follower is forwarded to the leader and resolves once
/// the follower itself applied it.
pub async fn follower_proposal_is_forwarded(b: TypedBuilder<Kv>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let follower = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    info!("--- propose on follower {follower}");
    let out = c.raft(follower).propose(put(7, 70)).await.expect("propose");
    info!("--- it resolved after the follower applied it: a stale read there sees it");
    let v = c
        .raft(follower)
        .read(7, Consistency::Stale)
        .await
        .expect("read");
    assert_eq!(v, Some(70));
    assert!(c.raft(follower).current().applied >= out.index);
    c.shutdown().await;
}

/// Clients issuing reads and writes on random nodes, recorded in
/// `history`; `done` counts finished operations, which paces the faults.
async fn run_clients(
    c: &crate::testing::TestCluster<Kv>,
    history: &crate::testing::History,
    done: &std::sync::atomic::AtomicU64,
    clients: u64,
    ops: u64,
    seed: u64,
) {
    use rand::{Rng, SeedableRng};
    use std::sync::atomic::{AtomicU64, Ordering};
    let value = AtomicU64::new(1);
    futures::future::join_all((0..clients).map(|client| {
        let value = &value;
        async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed * 1000 + client);
            let ids = c.ids();
            for _ in 0..ops {
                let node = ids[rng.gen_range(0..ids.len())];
                let raft = c
                    .raft(node)
                    .clone()
                    .with_timeout(Duration::from_millis(800));
                let key = rng.gen_range(0..3);
                if rng.gen_bool(0.5) {
                    let v = value.fetch_add(1, Ordering::Relaxed);
                    let op = history.invoke(client, key, crate::testing::OpKind::Write(v));
                    match raft.propose(KvCommand::Put { key, value: v }).await {
                        Ok(_) => history.ok(op, None),
                        Err(e) => history.error(op, &e),
                    }
                } else {
                    let op = history.invoke(client, key, crate::testing::OpKind::Read);
                    match raft.read(key, Consistency::Linearizable).await {
                        Ok(v) => history.ok(op, v),
                        Err(e) => history.error(op, &e),
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
    .await;
}

/// Waits until `done` reaches `n`: the clients' progress, not a clock.
async fn ops_done(done: &std::sync::atomic::AtomicU64, n: u64) {
    let deadline = std::time::Instant::now() + T * 3;
    while done.load(std::sync::atomic::Ordering::Relaxed) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "clients stalled below {n} operations"
        );
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Over a network whose every link runs through `mesh`: clients record a
/// history while the leader is partitioned and healed, a minority is cut
/// off, and the links turn slow and lossy; the history must be
/// linearizable, and the partitions must have cut connections.
pub async fn partitions_keep_the_history_linearizable(
    b: TypedBuilder<Kv>,
    mesh: crate::testing::ProxyMesh,
    seed: u64,
) {
    use crate::testing::{check_linearizable, History, Outcome, ProxyFaults};
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("first leader");
    let history = History::new();
    let done = std::sync::atomic::AtomicU64::new(0);
    let (clients, ops) = (6, 30);
    let total = clients * ops;
    let script = async {
        ops_done(&done, total / 6).await;
        info!(old, "--- partition the leader");
        mesh.isolate(old);
        let new = c
            .wait_for_leader_except(&[old], T)
            .await
            .expect("the majority elects a new leader");
        ops_done(&done, total / 3).await;
        info!(new, "--- heal: the old leader follows the new one");
        mesh.heal();
        c.wait_until("old leader rejoins", T, |m| {
            m[&old].role == Role::Follower && m[&old].leader.is_some()
        })
        .await
        .expect("old leader rejoins");
        ops_done(&done, total / 2).await;
        let leader = c.wait_for_leader(T).await.expect("leader");
        let minority = c
            .ids()
            .into_iter()
            .find(|i| *i != leader)
            .expect("a follower");
        info!(minority, "--- partition a minority");
        mesh.isolate(minority);
        ops_done(&done, total * 2 / 3).await;
        info!("--- heal; slow, lossy links");
        mesh.set_all(ProxyFaults {
            cut: false,
            delay: Duration::from_millis(1),
            drop: 0.01,
        });
        ops_done(&done, total * 5 / 6).await;
        info!("--- heal everything");
        mesh.heal();
    };
    futures::join!(run_clients(&c, &history, &done, clients, ops, seed), script);
    let stats = mesh.stats();
    info!(?stats, "--- proxy faults injected");
    assert!(stats.cut > 0, "the partitions cut connections");
    let all = history.ops();
    let ok = all
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .count();
    info!(seed, ops = all.len(), ok, "--- check the history");
    assert!(
        ok > all.len() / 4,
        "too few successes ({ok} of {}) to mean anything",
        all.len()
    );
    if let Err(e) = check_linearizable(&all) {
        panic!("seed {seed}: not linearizable: {e}\n{e:#?}");
    }
    c.shutdown().await;
}

/// A leader whose outgoing links are cut (one way) is replaced by
/// followers that stop hearing it (§5.2); hearing the higher term, it
/// steps down; healed, everyone catches up.
pub async fn leader_cut_one_way_is_replaced(b: TypedBuilder<Kv>, mesh: crate::testing::ProxyMesh) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    let old_term = c.raft(old).current().term;
    info!(
        old,
        "--- cut what the leader sends; it still hears the others"
    );
    mesh.mute(old);
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("followers that stop hearing the leader elect another");
    assert!(c.raft(new).current().term > old_term);
    info!("--- the old leader hears the new term and steps down");
    c.wait_until("old steps down", T, |m| m[&old].role != Role::Leader)
        .await
        .expect("old leader steps down");
    mesh.heal();
    let leader = c.wait_for_leader(T).await.expect("a leader after healing");
    let out = c
        .raft(leader)
        .propose(KvCommand::Put { key: 1, value: 1 })
        .await;
    // Leadership may move once more while healing: write where it lands.
    let index = match out {
        Ok(a) => a.index,
        Err(_) => {
            let leader = c.wait_for_leader(T).await.expect("a leader");
            c.raft(leader)
                .propose(KvCommand::Put { key: 1, value: 1 })
                .await
                .expect("write after healing")
                .index
        }
    };
    c.wait_all_applied(index, T).await.expect("all catch up");
    c.shutdown().await;
}

/// Node settings for [`lagging_follower_catches_up_by_snapshot`]: a
/// snapshot every 20 entries, no trailing log, 64-byte chunks (so a
/// snapshot crosses the network in many chunks).
pub fn snapshot_config() -> crate::node::NodeConfig {
    crate::node::NodeConfig {
        core: crate::core::Config {
            snapshot_threshold: 20,
            trailing_logs: 0,
            snapshot_chunk_bytes: 64,
            ..crate::core::Config::default()
        },
        ..crate::node::NodeConfig::default()
    }
}

/// A follower down while the others write past two snapshot thresholds
/// comes back to a compacted log and can only catch up by InstallSnapshot
/// (§7), chunk by chunk; it then serves every write. Build the cluster
/// with [`snapshot_config`].
pub async fn lagging_follower_catches_up_by_snapshot(b: TypedBuilder<Kv>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    info!(lagging, "--- crash a follower; the others write 60 entries");
    c.crash(lagging).await;
    let mut last = 0;
    for key in 0..60 {
        last = c
            .raft(leader)
            .propose(put(key, key + 100))
            .await
            .expect("write")
            .index;
    }
    c.wait_until("the leader applied every write", T, |m| {
        m.get(&leader).is_some_and(|m| m.applied >= last)
    })
    .await
    .expect("leader applied");
    let snap = c
        .storage(leader)
        .state()
        .snapshot
        .expect("the leader stored a snapshot");
    assert!(snap.meta.index >= 40, "snapshot at {}", snap.meta.index);
    info!("--- restart it: it can only catch up by snapshot");
    c.restart(lagging).await.expect("restart");
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
    c.shutdown().await;
}
