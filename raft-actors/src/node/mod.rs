//! The Raft node as an actix actor: [`RaftNode`] drives the pure core,
//! executes its `Ready` batches through the adapters, and answers clients.
//!
//! It must never decide a Raft rule itself (the core does), and never let a
//! message out before the state it promises is persisted.

mod activity;
mod conf_waiters;
mod lease_clock;
pub mod messages;
mod metrics;
mod pending;
mod raft_node;
mod roster;

pub use activity::{Activity, SnapshotStats};
pub use metrics::Metrics;
pub use raft_node::{ApplyFactory, ApplyThread, NodeConfig, RaftNode, LOG_CACHE_BYTES};
pub use roster::{Roster, RosterError};
