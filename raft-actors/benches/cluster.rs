//! Throughput and latency of 3 actor nodes over the memory adapters:
//! proposals per second and p50/p99 latency at 1, 64 and 256 concurrent
//! proposers, all proposing on the leader (as openraft's in-process bench).
//!
//! `cargo bench -p raft-actors --bench cluster` (env `BENCH_SECS` sets the
//! measuring time per point, `BENCH_THREADS=1` runs every node on one
//! thread, `BENCH_CLIENTS=1,64` picks the points).

use std::sync::Arc;
use std::time::Duration;

use actix::Arbiter;
use raft_actors::apply::Apply;
use raft_actors::core::{Membership, Role};
use raft_actors::node::NodeConfig;
use raft_actors::storage::MemoryStorage;
use raft_actors::testing::{propose_load, Counter};
use raft_actors::transport::MemoryNetwork;
use raft_actors::Raft;

/// Starts a fresh 3-node cluster (so every point starts from an empty
/// log) and answers its nodes and the leader.
async fn cluster(arbiters: Option<&[Arbiter]>) -> (Vec<Raft<Counter>>, Raft<Counter>) {
    let net = MemoryNetwork::new(1);
    let membership = Membership::voters([1, 2, 3]);
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let cfg = NodeConfig {
            max_pending: 1 << 20,
            ..NodeConfig::default()
        };
        let storage = Box::new(MemoryStorage::new(membership.clone()));
        let transport = Box::new(net.transport(id));
        let apply: raft_actors::node::ApplyFactory<Counter> =
            Arc::new(|| Box::new(Counter::default()) as Box<dyn Apply<Counter>>);
        let raft = match arbiters {
            None => Raft::start(id, cfg, storage, transport, apply),
            Some(a) => Raft::start_in(
                &a[id as usize - 1].handle(),
                id,
                cfg,
                storage,
                transport,
                apply,
            ),
        };
        net.register(id, raft.addr().clone().recipient());
        nodes.push(raft.with_timeout(Duration::from_secs(30)));
    }
    // Node 1 learns the leader from its metrics watch; then that node
    // itself is awaited until it sees itself leading.
    let known = nodes[0]
        .wait_for(Duration::from_secs(30), |m| m.leader.is_some())
        .await
        .expect("a leader is elected");
    let id = known.leader.expect("a leader");
    let leader = nodes[id as usize - 1].clone();
    leader
        .wait_for(Duration::from_secs(30), |m| m.role == Role::Leader)
        .await
        .expect("the leader leads");
    (nodes, leader)
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let one_thread = std::env::var("BENCH_THREADS").is_ok_and(|v| v == "1");
    let sys = actix::System::new();
    sys.block_on(async move {
        let arbiters: Vec<Arbiter> = (0..3).map(|_| Arbiter::new()).collect();
        println!(
            "3 actor nodes, memory storage + memory network, {} ({secs} s per point, a fresh cluster each)",
            if one_thread { "all on one thread" } else { "one thread per node, clients on the main thread" }
        );
        println!("| concurrent proposers | proposals/s | p50 | p99 |");
        println!("|---:|---:|---:|---:|");
        let points: Vec<usize> = std::env::var("BENCH_CLIENTS")
            .ok()
            .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1, 64, 256]);
        for clients in points {
            let (nodes, leader) = cluster((!one_thread).then_some(&arbiters[..])).await;
            // Warm up: allocations, the leader's pipeline.
            propose_load(&leader, clients, 0.3, |_| 1).await;
            let p = propose_load(&leader, clients, secs, |_| 1).await;
            assert_eq!(p.errors, 0, "failed proposals");
            println!(
                "| {} | {:.0} | {:.1} µs | {:.1} µs |",
                p.clients,
                p.per_sec(),
                p.p50.as_secs_f64() * 1e6,
                p.p99.as_secs_f64() * 1e6
            );
            for r in &nodes {
                r.shutdown().await;
            }
        }
        for a in arbiters {
            a.stop();
        }
    });
}
