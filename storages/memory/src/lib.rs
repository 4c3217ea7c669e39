//! In-memory log storage for raft-actors: fast, durable only as long as the
//! process lives. Clones share one store, so a node restarted in the same
//! process finds what it wrote.
//!
//! The code lives in `raft_actors::storage::memory` (see `storages/README.md`:
//! `raft-actors` tests its actor layer with it, and dependencies only point
//! inward); this crate is its public home and proves it against the shared
//! conformance suite.
//!
//! ```
//! use raft_actors::core::Membership;
//! let store = raft_actors_storage_memory::MemoryStorage::new(Membership::voters([1, 2, 3]));
//! assert!(store.state().entries.is_empty());
//! ```
#![deny(missing_docs)]

pub use raft_actors::storage::memory::MemoryStorage;
