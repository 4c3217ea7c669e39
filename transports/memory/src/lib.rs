//! In-process transport for raft-actors: a shared [`MemoryNetwork`] where
//! each node registers its mailbox, with faults injected per directed link
//! under one seed (drop, delay, duplicate, reorder, partition, heal).
//!
//! The code lives in `raft_actors::transport::memory` (see
//! `transports/README.md`: `raft-actors` tests its actor layer with it, and
//! dependencies only point inward); this crate is its public home and
//! proves it against the shared conformance suite.
//!
//! ```
//! use raft_actors_transport_memory::MemoryNetwork;
//! let net = MemoryNetwork::new(42);
//! net.partition(&[1], &[2, 3]);
//! assert!(net.is_blocked(2, 1));
//! ```
#![deny(missing_docs)]

pub use raft_actors::transport::memory::{
    LinkFaults, MemoryNetwork, MemoryTransport, NetworkStats, DEFAULT_MAX_BATCH_BYTES,
};
