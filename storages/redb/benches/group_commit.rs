//! Group commit on redb: a 3-node cluster (one thread per node, the memory
//! network), clients proposing on the leader, at 1, 64 and 256 concurrent
//! proposers; proposals/s, latency, and how many entries shared one
//! fsync, beside the disk's raw fsync rate (the limit without batching).
//!
//! `cargo bench -p raft-actors-storage-redb --bench group_commit`
//! (`BENCH_SECS` per point, `BENCH_DIR` for the data dirs, by default
//! under the target dir, on the disk).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Arbiter;
use raft_actors::apply::Apply;
use raft_actors::core::{Config, Membership, Role};
use raft_actors::node::NodeConfig;
use raft_actors::testing::{propose_load, Counter};
use raft_actors::transport::MemoryNetwork;
use raft_actors::Raft;
use raft_actors_storage_redb::RedbStorage;

/// Raw fsyncs per second: append 4 KiB and `fdatasync`, in a loop (what a
/// log without batching pays per entry).
fn raw_fsync_rate(dir: &Path, secs: f64) -> f64 {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let block = [7u8; 4096];
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    let started = Instant::now();
    while Instant::now() < until {
        f.write_all(&block).expect("write");
        f.sync_data().expect("fdatasync");
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    rate
}

/// redb commits per second of a one-entry transaction, no batching.
fn redb_commit_rate(dir: &Path, secs: f64) -> f64 {
    let rt = actix::System::new();
    rt.block_on(async {
        use raft_actors::core::{Entry, Payload};
        use raft_actors::testing::StorageExt;
        let mut s = RedbStorage::open(dir.join("commit-probe")).expect("open");
        s.bootstrap(Membership::voters([1])).expect("bootstrap");
        let until = Instant::now() + Duration::from_secs_f64(secs);
        let started = Instant::now();
        let mut i = 0;
        while Instant::now() < until {
            i += 1;
            let e = Entry {
                index: i,
                term: 1,
                payload: Payload::Command(vec![0u8; 8].into()),
            };
            s.append(None, vec![e]).await.expect("append");
        }
        i as f64 / started.elapsed().as_secs_f64()
    })
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    // Under the target dir by default: on the project's disk, where /tmp
    // may be a tmpfs whose fsync costs nothing.
    let base =
        std::env::var("BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_string());
    let root = tempfile::tempdir_in(base).expect("bench dir");
    println!("data dirs under {}", root.path().display());
    let raw = raw_fsync_rate(root.path(), 2.0);
    let one = redb_commit_rate(root.path(), 2.0);
    println!("raw fdatasync of 4 KiB: {raw:.0}/s; redb one-entry commits: {one:.0}/s");
    println!("| concurrent proposers | proposals/s | p50 | p99 | entries per fsync (leader) | leader fsyncs/s | failed |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let sys = actix::System::new();
    sys.block_on(async move {
        let arbiters: Vec<Arbiter> = (0..3).map(|_| Arbiter::new()).collect();
        // BENCH_AB=1 measures every point also without early replication
        // (the leader persisting before it replicates), for comparison.
        let variants: &[bool] = if std::env::var("BENCH_AB").is_ok_and(|v| v == "1") {
            &[false, true]
        } else {
            &[true]
        };
        let points = [1usize, 64, 256]
            .into_iter()
            .flat_map(|c| variants.iter().map(move |e| (c, *e)));
        for (point, (clients, early)) in points.enumerate() {
            let dir = root.path().join(format!("point-{point}"));
            let net = MemoryNetwork::new(1);
            let mut nodes = Vec::new();
            for id in 1..=3u64 {
                let cfg = NodeConfig {
                    max_pending: 1 << 20,
                    early_replication: early,
                    core: Config {
                        snapshot_threshold: 10_000,
                        ..Config::default()
                    },
                    ..NodeConfig::default()
                };
                let mut storage = RedbStorage::open(dir.join(id.to_string())).expect("open");
                storage
                    .bootstrap(Membership::voters([1, 2, 3]))
                    .expect("bootstrap");
                let apply: raft_actors::node::ApplyFactory<Counter> =
                    Arc::new(|| Box::new(Counter::default()) as Box<dyn Apply<Counter>>);
                let raft = Raft::start_in(
                    &arbiters[id as usize - 1].handle(),
                    id,
                    cfg,
                    Box::new(storage),
                    Box::new(net.transport(id)),
                    apply,
                )
                .with_timeout(Duration::from_secs(30));
                net.register(id, raft.addr().clone().recipient());
                nodes.push(raft);
            }
            let mut metrics = nodes[0].metrics();
            let leader = loop {
                if let Some(r) = nodes.iter().find(|r| r.current().role == Role::Leader) {
                    break r.clone();
                }
                // Any node's next publication; the election is seconds at most.
                let _ = actix_rt::time::timeout(Duration::from_millis(50), metrics.changed()).await;
            };
            propose_load(&leader, clients, 0.3, |_| 1).await;
            let before = leader.current();
            let p = propose_load(&leader, clients, secs, |_| 1).await;
            let after = leader.current();
            let fsyncs = after.fsyncs.unwrap_or(0) - before.fsyncs.unwrap_or(0);
            let entries = after.entries_persisted - before.entries_persisted;
            println!(
                "| {}{} | {:.0} | {:.2} ms | {:.2} ms | {:.1} | {:.0} | {} |",
                p.clients,
                if early {
                    ""
                } else {
                    " (persist, then replicate)"
                },
                p.per_sec(),
                p.p50.as_secs_f64() * 1e3,
                p.p99.as_secs_f64() * 1e3,
                entries as f64 / fsyncs.max(1) as f64,
                fsyncs as f64 / p.secs,
                p.errors
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
