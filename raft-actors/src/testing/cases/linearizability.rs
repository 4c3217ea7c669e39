//! Histories of concurrent clients under faults, over any transport: the
//! recorded history must be linearizable (checked by
//! [`check_linearizable`]), whatever the partitions, losses, crashes and
//! panics did.

use std::time::Duration;

use tokio::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::info;

use super::clients::{Clients, Progress};
use super::T;
use crate::core::Role;
use crate::testing::{
    check_linearizable, History, KeyValue, Outcome, ProxyFaults, TestCluster, TypedBuilder,
};
use crate::transport::LinkFaults;

/// Over a network whose every link runs through `mesh`: clients record a
/// history while the leader is partitioned and healed, a minority is cut
/// off, and the links turn slow and lossy; the history must be
/// linearizable, and the partitions must have cut connections.
pub async fn partitions_keep_the_history_linearizable<C: KeyValue>(
    b: TypedBuilder<C>,
    mesh: crate::testing::ProxyMesh,
    seed: u64,
) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("first leader");
    let history = History::new();
    let progress = Progress::default();
    let clients = Clients {
        clients: 6,
        ops: 30,
        lease_reads: false,
    };
    let total = clients.total();
    let script = async {
        progress.reached(total / 6).await;
        info!(old, "--- partition the leader");
        mesh.isolate(old);
        let new = c
            .wait_for_leader_except(&[old], T)
            .await
            .expect("the majority elects a new leader");
        progress.reached(total / 3).await;
        info!(new, "--- heal: the old leader follows the new one");
        mesh.heal();
        c.wait_until("old leader rejoins", T, |m| {
            m[&old].role == Role::Follower && m[&old].leader.is_some()
        })
        .await
        .expect("old leader rejoins");
        progress.reached(total / 2).await;
        let leader = c.wait_for_leader(T).await.expect("leader");
        let minority = super::follower_of(&c, leader);
        info!(minority, "--- partition a minority");
        mesh.isolate(minority);
        progress.reached(total * 2 / 3).await;
        info!("--- heal; slow, lossy links");
        mesh.set_all(ProxyFaults {
            cut: false,
            delay: Duration::from_millis(1),
            drop: 0.01,
        });
        progress.reached(total * 5 / 6).await;
        info!("--- heal everything");
        mesh.heal();
    };
    futures::join!(clients.run(&c, &history, &progress, seed), script);
    let stats = mesh.stats();
    info!(?stats, "--- proxy faults injected");
    assert!(stats.cut > 0, "the partitions cut connections");
    check_history(&history, seed, 4);
    c.shutdown().await;
}

/// Node settings for [`history_under_random_faults_is_linearizable`]:
/// frequent snapshots, so compaction and InstallSnapshot happen under the
/// faults too.
pub fn linearizability_config() -> crate::node::NodeConfig {
    crate::node::NodeConfig {
        core: crate::core::Config {
            snapshot_threshold: 40,
            trailing_logs: 5,
            snapshot_chunk_bytes: 128,
            ..crate::core::Config::default()
        },
        ..crate::node::NodeConfig::default()
    }
}

/// The seeds to run [`history_under_random_faults_is_linearizable`] with:
/// `LIN_SEED=7` replays one, `LIN_SEEDS=100` runs `1..=100`, else
/// `1..=default`.
///
/// # Panics
/// If `LIN_SEED` is not a number.
pub fn lin_seeds(default: u64) -> Vec<u64> {
    match std::env::var("LIN_SEED") {
        Ok(s) => vec![s.parse().expect("LIN_SEED is a number")],
        Err(_) => {
            let n = std::env::var("LIN_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(default);
            (1..=n).collect()
        }
    }
}

/// 8 clients, 40 operations each (30% of the reads lease reads), while
/// one seeded fault every ~20 finished operations isolates a node,
/// partitions two, degrades every link, crashes (then restarts) or panics
/// a node, or heals: the history must be linearizable. Over sockets a
/// degraded link loses and delays but neither duplicates nor reorders
/// ([`NetworkFaults::lossy`](crate::testing::NetworkFaults::lossy)). Build
/// the cluster with [`linearizability_config`], seeded with `seed`.
pub async fn history_under_random_faults_is_linearizable<C: KeyValue>(
    b: TypedBuilder<C>,
    seed: u64,
) {
    let c = b.start().await.expect("cluster starts");
    c.wait_for_leader(T).await.expect("first leader");
    let history = History::new();
    let progress = Progress::default();
    let clients = Clients {
        clients: 8,
        ops: 40,
        lease_reads: true,
    };
    let total = clients.total();
    info!(seed, "--- clients start");
    let faults = random_faults(&c, &progress, total, seed);
    let started = Instant::now();
    futures::join!(clients.run(&c, &history, &progress, seed), faults);
    info!(seed, elapsed = ?started.elapsed(), "--- clients done");
    check_history(&history, seed, 10);
    c.shutdown().await;
}

/// One seeded fault every ~20 finished operations of `progress` (up to
/// `total`): isolate a node, partition two, degrade every link (loss,
/// duplication, reordering where the network can), crash a node (restarted
/// at the next fault), panic its state machine, or heal; everything is
/// healed and restarted at the end. Paced by the clients' progress, not by
/// a clock.
pub(crate) async fn random_faults<C: crate::type_config::TypeConfig>(
    c: &TestCluster<C>,
    progress: &Progress,
    total: u64,
    seed: u64,
) {
    let ids = c.ids();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut crashed = None;
    let mut next = 20;
    loop {
        progress.reached(next.min(total)).await;
        if progress.done() >= total {
            break;
        }
        next += rng.gen_range(10..30);
        if let Some(id) = crashed.take() {
            info!(id, "--- restart");
            c.restart(id).await.expect("restart");
            continue;
        }
        let i = rng.gen_range(0..ids.len());
        let node = ids[i];
        match rng.gen_range(0..8) {
            0 => {
                info!(node, "--- isolate");
                c.faults().isolate(node);
            }
            1 => {
                let other = ids[(i + 1) % ids.len()];
                info!(node, other, "--- partition");
                c.faults().partition(&[node], &[other]);
            }
            2 => {
                info!("--- lossy links");
                c.faults().lossy(LinkFaults {
                    drop: 0.15,
                    duplicate: 0.1,
                    reorder: 0.2,
                    max_delay: Duration::from_millis(2),
                });
            }
            3 => {
                info!(node, "--- crash");
                c.crash(node).await;
                crashed = Some(node);
            }
            4 => {
                info!(node, "--- panic");
                c.panic(node);
            }
            _ => {
                info!("--- heal");
                c.faults().heal();
            }
        }
    }
    c.faults().heal();
    if let Some(id) = crashed {
        c.restart(id).await.expect("restart");
    }
}

/// Fails unless more than `1 / min_share` of the operations succeeded (so
/// the check means something) and the history is linearizable; a failure
/// names the seed to replay.
pub(super) fn check_history(history: &History, seed: u64, min_share: usize) {
    let ops = history.ops();
    let ok = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .count();
    let unknown = ops.iter().filter(|o| o.outcome == Outcome::Unknown).count();
    info!(seed, ops = ops.len(), ok, unknown, "--- check the history");
    assert!(
        ok > ops.len() / min_share,
        "seed {seed}: too few successes ({ok} of {}) to mean anything",
        ops.len()
    );
    match check_linearizable(&ops) {
        Ok(stats) => info!(seed, ?stats, "linearizable"),
        Err(e) => panic!(
            "seed {seed}: not linearizable: {e}\n replay: LIN_SEED={seed} RUST_LOG=info, same test, -- --nocapture\n{e:#?}"
        ),
    }
}
