//! Random clients for the history cases: reads and writes on random
//! nodes, each recorded in a [`History`] for the linearizability checker,
//! and a counter of finished operations that paces the faults (the
//! clients' progress, not a clock).
//!
//! A client records every outcome as the node answered it (an error whose
//! outcome is unknown stays unknown): it must never retry behind the
//! history's back or drop an operation, or the checker would judge a
//! history that did not happen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::T;
use crate::node::messages::client::Consistency;
use crate::testing::{History, Kv, KvCommand, OpKind, TestCluster};

/// What the clients do.
pub(super) struct Clients {
    /// How many clients run at once.
    pub clients: u64,
    /// Operations per client, in sequence.
    pub ops: u64,
    /// Whether 30% of the reads are lease reads (the rest linearizable).
    pub lease_reads: bool,
}

impl Clients {
    /// Every client's operations: half writes of unique values, half
    /// reads, on keys `0..3` and random nodes, drawn from `seed`; `done`
    /// counts finished operations.
    pub async fn run(&self, c: &TestCluster<Kv>, history: &History, done: &AtomicU64, seed: u64) {
        let value = AtomicU64::new(1);
        futures::future::join_all((0..self.clients).map(|client| {
            let value = &value;
            async move {
                let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + client);
                let ids = c.ids();
                for _ in 0..self.ops {
                    let node = ids[rng.gen_range(0..ids.len())];
                    let raft = c
                        .raft(node)
                        .clone()
                        .with_timeout(Duration::from_millis(800));
                    let key = rng.gen_range(0..3);
                    if rng.gen_bool(0.5) {
                        let v = value.fetch_add(1, Ordering::Relaxed);
                        let op = history.invoke(client, key, OpKind::Write(v));
                        match raft.propose(KvCommand::Put { key, value: v }).await {
                            Ok(_) => history.ok(op, None),
                            Err(e) => history.error(op, &e),
                        }
                    } else {
                        let consistency = if self.lease_reads && !rng.gen_bool(0.7) {
                            Consistency::Lease
                        } else {
                            Consistency::Linearizable
                        };
                        let op = history.invoke(client, key, OpKind::Read);
                        match raft.read(key, consistency).await {
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

    /// All the clients' operations.
    pub fn total(&self) -> u64 {
        self.clients * self.ops
    }
}

/// Waits until `done` reaches `n`: the clients' progress, not a clock.
///
/// # Panics
/// If the clients stall for `3 * T`.
pub(super) async fn ops_done(done: &AtomicU64, n: u64) {
    let deadline = Instant::now() + T * 3;
    let mut poll = tokio::time::interval(Duration::from_millis(2));
    while done.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "clients stalled below {n} operations"
        );
        poll.tick().await;
    }
}
