//! # raft-actors
//!
//! Replicated services on the Raft consensus algorithm, in the actor model.
//!
//! # Layout
//! | concept | module |
//! |---|---|
//! | Raft rules, no I/O, no clock | [`core`] |
//! | seeded whole-cluster simulation of cores, with fault injection and the five safety checks | [`simulation`] |
//! | the user's types in one trait; command encoding | [`type_config`] |
//! | the node actor, its mailbox, metrics | [`node`] |
//! | the handle clients use | [`Raft`] ([`raft`]) |
//! | client and fatal errors | [`error`] |
//! | adapter traits (and the memory adapters) | [`storage`], [`transport`], [`apply`] |
//! | test cluster, history checker, conformance suites (feature `testing`) | `testing` |
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod apply;
pub mod core;
pub mod error;
pub mod node;
pub mod raft;
pub mod simulation;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transport;
pub mod type_config;

pub use apply::Apply;
pub use error::{ClientError, FatalError};
pub use node::messages::client::{Applied, Consistency};
pub use raft::Raft;
pub use type_config::TypeConfig;
