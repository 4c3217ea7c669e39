//! [`propose_load`]: closed-loop proposers against one node, for
//! benchmarks: throughput and latency percentiles.
//!
//! Measures only; it must never retry or drop a failed proposal silently
//! (a failure is counted, so a bench cannot report throughput it did not
//! get).

use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::raft::Raft;
use crate::type_config::TypeConfig;

/// What one load run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    /// Concurrent proposers.
    pub clients: usize,
    /// Proposals committed and applied.
    pub ops: usize,
    /// Proposals that failed.
    pub errors: usize,
    /// Wall time of the run.
    pub secs: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl LoadReport {
    /// Proposals per second.
    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// Runs `clients` proposers against `raft` for `secs`, each proposing
/// `command(n)` and awaiting its answer before the next.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use raft_actors::testing::{propose_load, Kv, KvCommand, TestCluster};
/// let c = TestCluster::memory(1).apply(Kv::default).start().await?;
/// let leader = c.wait_for_leader(Duration::from_secs(5)).await?;
/// let r = propose_load(c.raft(leader), 4, 0.05, |n| KvCommand::Put { key: n, value: n }).await;
/// assert!(r.ops > 0 && r.errors == 0 && r.p50 <= r.p99);
/// # Ok(()) }
/// ```
pub async fn propose_load<C: TypeConfig>(
    raft: &Raft<C>,
    clients: usize,
    secs: f64,
    command: impl Fn(u64) -> C::Command + Clone,
) -> LoadReport {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let per_client = join_all((0..clients).map(|c| {
        let raft = raft.clone();
        let command = command.clone();
        async move {
            let mut lat = Vec::with_capacity(1 << 14);
            let mut errors = 0;
            let mut n = (c as u64) << 32;
            while Instant::now() < until {
                let t = Instant::now();
                match raft.propose(command(n)).await {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
                n += 1;
            }
            (lat, errors)
        }
    }))
    .await;
    let secs = started.elapsed().as_secs_f64();
    let errors = per_client.iter().map(|(_, e)| e).sum();
    let mut lat: Vec<Duration> = per_client.into_iter().flat_map(|(l, _)| l).collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    LoadReport {
        clients,
        ops: lat.len(),
        errors,
        secs,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}
