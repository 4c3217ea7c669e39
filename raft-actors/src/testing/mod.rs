//! What users test with (feature `testing`): an in-process cluster kit over
//! the memory adapters ([`cluster`], [`cluster_builder`]) with a check that
//! the replicas' states never diverge ([`divergence`]), a storage wrapper that makes the disk
//! fail on a seeded schedule ([`faulty_storage`]), a history recorder
//! ([`history`]) with a linearizability checker for registers
//! ([`linearizability`]) and one for any sequential [`Model`] of a service
//! ([`model`], [`model_check`], the shipped [`models`]), the
//! conformance suites for storage and transport adapters
//! ([`storage_suite`](mod@storage_suite), [`transport_suite`](mod@transport_suite),
//! and for many Raft groups over one socket transport
//! [`group_suite`](mod@group_suite)),
//! a fault-injecting TCP proxy for tests over real sockets ([`proxy`],
//! [`proxy_mesh`]), network faults that one test body injects over every
//! transport ([`network_faults`]), the cluster test bodies themselves
//! ([`cases`], over any service that is a [`KeyValue`]), one call that runs a user's workload under faults for many
//! seeds and checks every history against their model ([`workload`]), the
//! same on one thread in virtual time, where one seed replays one schedule
//! exactly ([`deterministic`]), and two small state machines ([`Kv`],
//! [`Counter`]).
//!
//! Nothing here is used by a production node; it must never weaken what
//! it checks to make a test pass.
//!
//! # Testing your own `Apply`
//!
//! The chapter [`guide`] ("Testing your service") walks through it with
//! runnable examples: the `Cargo.toml` lines and `#[actix_rt::test]`, a
//! history of a real cluster checked against a [`Model`] of the service,
//! and two planted bugs found by the kit (a state machine that is not
//! deterministic, a read that skips the log).
//!
//! A failed operation (an error that says nothing was applied, such as
//! `NoLeader`) is dropped by the checker; an operation whose outcome is
//! unknown (a timeout, a crash) is a write that may take effect at any
//! time after its call, or never. See [`history`] and [`linearizability`].

pub mod accounts;
pub mod cases;
pub mod cluster;
pub mod cluster_builder;
pub mod counter;
pub mod deterministic;
pub mod divergence;
pub mod faulty_storage;
pub mod group_suite;
pub mod guide;
pub mod history;
pub mod key_value;
pub mod kv;
pub mod linearizability;
pub mod load;
pub mod model;
pub mod model_check;
pub mod models;
pub mod network_faults;
pub mod proxy;
pub mod proxy_mesh;
pub mod storage_ext;
pub mod storage_suite;
pub mod transport_suite;
pub mod workload;

pub use accounts::{Accounts, SetBalance};
pub use cluster::{ClusterError, TestCluster};
pub use cluster_builder::{ClusterBuilder, ClusterNetwork, TypedBuilder};
pub use counter::Counter;
pub use divergence::{Divergence, Fingerprints};
pub use faulty_storage::{FaultHandle, FaultPlan, FaultStats, FaultyStorage, WriteFault};
pub use group_suite::group_suite;
pub use history::{History, Op, OpId, OpKind, Outcome};
pub use key_value::{KeyValue, KeyValueHandle};
pub use kv::{Kv, KvCommand};
pub use linearizability::{check_linearizable, CheckStats, LinearizabilityError};
pub use load::{propose_load, LoadReport};
pub use model::{Call, CallId, Calls, Ended, Model};
pub use model_check::{check_model, check_model_within, Verdict, Window, SEARCH_BOUND};
pub use models::{
    CounterModel, CounterOp, MapModel, QueueModel, QueueOp, QueueOut, RegisterModel, RegisterOp,
    RegisterOut, SetModel, SetOp, SetOut,
};
pub use network_faults::NetworkFaults;
pub use proxy::{ProxyFaults, ProxyStats, TcpProxy};
pub use proxy_mesh::ProxyMesh;
pub use storage_ext::StorageExt;
pub use storage_suite::storage_suite;
pub use transport_suite::{
    delivered, eventually, heartbeat, heartbeats_overtake_snapshot_chunks, inbox, send_until,
    send_until_delivered, transport_suite, TransportHarness,
};
