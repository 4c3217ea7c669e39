//! Shared helpers of the cluster tests.
#![allow(dead_code)]

use std::time::Duration;

pub mod registers;

use raft_actors::node::NodeConfig;
use raft_actors::testing::{Kv, TestCluster, TypedBuilder};

/// The deadline of every wait: generous, since CI machines are slow and
/// shared; a passing test never waits it out.
pub const T: Duration = Duration::from_secs(10);

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A 3-node register-map cluster, seeded.
pub async fn kv_cluster(size: u64, seed: u64) -> TestCluster<Kv> {
    init_logging();
    TestCluster::memory(size)
        .seed(seed)
        .apply(Kv::default)
        .start()
        .await
        .expect("cluster starts")
}

/// A 3-node register-map cluster's builder over the memory network,
/// seeded, for the bodies of `raft_actors::testing::cases`.
pub fn memory(seed: u64) -> TypedBuilder<Kv> {
    memory_with(seed, NodeConfig::default())
}

/// [`memory`] with the given node settings.
pub fn memory_with(seed: u64, cfg: NodeConfig) -> TypedBuilder<Kv> {
    init_logging();
    TestCluster::memory(3)
        .seed(seed)
        .config(cfg)
        .apply(Kv::default)
}
