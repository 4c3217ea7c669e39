//! What users test with (feature `testing`): an in-process cluster kit over
//! the memory adapters, a storage wrapper that makes the disk fail on a
//! seeded schedule ([`FaultyStorage`]), a history recorder with a linearizability checker,
//! the conformance suites for storage and transport adapters, a
//! fault-injecting TCP proxy for tests over real sockets, network faults
//! that one test body injects over every transport, the cluster test
//! bodies themselves ([`cases`]), and a small register-map state machine.
//!
//! Nothing here is used by a production node; it must never weaken what
//! it checks to make a test pass.

pub mod cases;
mod cluster;
mod counter;
mod faulty_storage;
mod history;
mod kv;
mod linearizability;
mod load;
mod network_faults;
mod proxy;
mod proxy_mesh;
mod storage_ext;
mod storage_suite;
mod transport_suite;

pub use cluster::{ClusterBuilder, ClusterError, ClusterNetwork, TestCluster, TypedBuilder};
pub use counter::Counter;
pub use faulty_storage::{FaultHandle, FaultPlan, FaultStats, FaultyStorage, WriteFault};
pub use history::{History, Op, OpId, OpKind, Outcome};
pub use kv::{Kv, KvCommand};
pub use linearizability::{check_linearizable, CheckStats, LinearizabilityError};
pub use load::{propose_load, LoadReport};
pub use network_faults::NetworkFaults;
pub use proxy::{ProxyFaults, ProxyStats, TcpProxy};
pub use proxy_mesh::ProxyMesh;
pub use storage_ext::StorageExt;
pub use storage_suite::storage_suite;
pub use transport_suite::{
    heartbeat, heartbeats_overtake_snapshot_chunks, inbox, send_until, send_until_delivered,
    transport_suite, TransportHarness,
};
