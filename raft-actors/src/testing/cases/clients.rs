//! Random clients for the history cases: reads and writes on random
//! nodes, each recorded in a [`History`] for the linearizability checker,
//! and their [`Progress`], which paces the faults (the clients' progress,
//! not a clock).
//!
//! A client records every outcome as the node answered it (an error whose
//! outcome is unknown stays unknown): it must never retry behind the
//! history's back or drop an operation, or the checker would judge a
//! history that did not happen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Notify;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::T;
use crate::node::messages::client::Consistency;
use crate::testing::{History, KeyValue, KeyValueHandle, OpKind, TestCluster};

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
    /// reads, on keys `0..3` and random nodes, drawn from `seed`; each
    /// finished one is a step of `progress`.
    pub async fn run<C: KeyValue>(
        &self,
        c: &TestCluster<C>,
        history: &History,
        progress: &Progress,
        seed: u64,
    ) {
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
                        match raft.put_value(key, v).await {
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
                        match raft.get_value(key, consistency).await {
                            Ok(v) => history.ok(op, v),
                            Err(e) => history.error(op, &e),
                        }
                    }
                    progress.step();
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

/// How many operations the clients finished, with a wake-up per
/// operation: the faults react at the very operation they wait for, even
/// while failing requests finish in microseconds (a poll would let a burst
/// of them through, and the history would miss the fault's window).
#[derive(Default)]
pub(crate) struct Progress {
    done: AtomicU64,
    notify: Notify,
}

impl Progress {
    /// One more operation finished.
    pub(crate) fn step(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// How many finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits until `n` operations finished.
    ///
    /// # Panics
    /// If the clients stall for `3 * T`.
    pub async fn reached(&self, n: u64) {
        let deadline = Instant::now() + T * 3;
        while self.done() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            // A step taken before this wait left a permit: no wake-up is lost.
            let woke = tokio::time::timeout(left, self.notify.notified()).await;
            assert!(woke.is_ok(), "clients stalled below {n} operations");
        }
    }
}
