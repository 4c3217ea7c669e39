//! Hundreds of concurrent client operations under random faults (loss,
//! duplication, reordering, partitions, crashes, caught panics), over many
//! seeds: the recorded history must be linearizable.
//!
//! `LIN_SEEDS=100 cargo test -p raft-actors --test t80_linearizability`
//! runs more seeds; `LIN_SEED=7` replays one.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{kv_cluster_with, T};
use futures::future::join_all;
use raft_actors::core::Config;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{check_linearizable, History, KvCommand, OpKind, Outcome};
use raft_actors::transport::LinkFaults;
use raft_actors::Consistency;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::info;

const CLIENTS: u64 = 8;
const OPS_PER_CLIENT: u64 = 40;
const KEYS: u64 = 3;

async fn run_seed(seed: u64) {
    // Frequent snapshots: compaction and InstallSnapshot happen under the
    // faults too.
    let cfg = NodeConfig {
        core: Config {
            snapshot_threshold: 40,
            trailing_logs: 5,
            snapshot_chunk_bytes: 128,
            ..Config::default()
        },
        ..NodeConfig::default()
    };
    let c = Arc::new(kv_cluster_with(3, seed, cfg).await);
    c.wait_for_leader(T).await.expect("first leader");
    let history = History::new();
    let done = Arc::new(AtomicU64::new(0));
    // Clients signal each completed operation; the fault injector waits on it.
    let progress = Arc::new(tokio::sync::Notify::new());
    let value = Arc::new(AtomicU64::new(1));

    info!(seed, "--- clients start");
    let clients = (0..CLIENTS).map(|client| {
        let c = Arc::clone(&c);
        let history = history.clone();
        let done = Arc::clone(&done);
        let progress = Arc::clone(&progress);
        let value = Arc::clone(&value);
        async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + client);
            for _ in 0..OPS_PER_CLIENT {
                let node = rng.gen_range(1..=3);
                let raft = c
                    .raft(node)
                    .clone()
                    .with_timeout(Duration::from_millis(800));
                let key = rng.gen_range(0..KEYS);
                if rng.gen_bool(0.5) {
                    let v = value.fetch_add(1, Ordering::Relaxed);
                    let op = history.invoke(client, key, OpKind::Write(v));
                    match raft.propose(KvCommand::Put { key, value: v }).await {
                        Ok(_) => history.ok(op, None),
                        Err(e) => history.error(op, &e),
                    }
                } else {
                    let consistency = if rng.gen_bool(0.7) {
                        Consistency::Linearizable
                    } else {
                        Consistency::Lease
                    };
                    let op = history.invoke(client, key, OpKind::Read);
                    match raft.read(key, consistency).await {
                        Ok(v) => history.ok(op, v),
                        Err(e) => history.error(op, &e),
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
                progress.notify_one();
            }
        }
    });

    let faults = {
        let c = Arc::clone(&c);
        let done = Arc::clone(&done);
        let progress = Arc::clone(&progress);
        async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let total = CLIENTS * OPS_PER_CLIENT;
            let mut crashed: Option<u64> = None;
            let mut next = 20;
            // Paced by the clients' progress, not by a clock: a fault every
            // ~20 completed operations.
            while done.load(Ordering::Relaxed) < total {
                if done.load(Ordering::Relaxed) < next {
                    progress.notified().await;
                    continue;
                }
                next += rng.gen_range(10..30);
                if let Some(id) = crashed.take() {
                    info!(id, "--- restart");
                    c.restart(id).await.expect("restart");
                    continue;
                }
                let node = rng.gen_range(1..=3);
                match rng.gen_range(0..8) {
                    0 => {
                        info!(node, "--- isolate");
                        c.net().isolate(node);
                    }
                    1 => {
                        let other = 1 + node % 3;
                        info!(node, other, "--- partition");
                        c.net().partition(&[node], &[other]);
                    }
                    2 => {
                        info!("--- lossy links");
                        c.net().set_all(LinkFaults {
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
                        c.net().heal();
                    }
                }
            }
            c.net().heal();
            if let Some(id) = crashed {
                c.restart(id).await.expect("restart");
            }
        }
    };

    let started = Instant::now();
    let (_, ()) = futures::join!(join_all(clients), faults);
    let ops = history.ops();
    let ok = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .count();
    let unknown = ops.iter().filter(|o| o.outcome == Outcome::Unknown).count();
    info!(seed, ops = ops.len(), ok, unknown, elapsed = ?started.elapsed(), "--- check the history");
    assert!(
        ok > ops.len() / 10,
        "seed {seed}: too few successes ({ok} of {}) to mean anything",
        ops.len()
    );
    match check_linearizable(&ops) {
        Ok(stats) => info!(seed, ?stats, "linearizable"),
        Err(e) => panic!("seed {seed}: {e}\n replay: LIN_SEED={seed} RUST_LOG=info cargo test -p raft-actors --test t80_linearizability -- --nocapture\n{e:#?}"),
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn histories_under_random_faults_are_linearizable() {
    let seeds: Vec<u64> = match std::env::var("LIN_SEED") {
        Ok(s) => vec![s.parse().expect("LIN_SEED is a number")],
        Err(_) => {
            let n = std::env::var("LIN_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(12);
            (1..=n).collect()
        }
    };
    for seed in seeds {
        run_seed(seed).await;
    }
}

#[test]
fn checker_rejects_a_known_non_linearizable_history() {
    // The negative control: a write acknowledged, then a read that began
    // after it and missed it, then a read that saw it.
    let h = History::new();
    let w = h.invoke(1, 0, OpKind::Write(1));
    h.ok(w, None);
    let r = h.invoke(2, 0, OpKind::Read);
    h.ok(r, None);
    assert!(check_linearizable(&h.ops()).is_err(), "stale read accepted");
    // And the same history without the stale read passes.
    let h = History::new();
    let w = h.invoke(1, 0, OpKind::Write(1));
    h.ok(w, None);
    let r = h.invoke(2, 0, OpKind::Read);
    h.ok(r, Some(1));
    assert!(check_linearizable(&h.ops()).is_ok());
}
