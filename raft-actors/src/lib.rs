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
//!
//! # Tutorial
//!
//! A service is a state machine: say what its commands, outputs, queries
//! and snapshots are ([`TypeConfig`]), how a command changes it ([`Apply`]),
//! and every node of the cluster applies the same commands in the same
//! order. Each node is a supervised actix actor ([`node::RaftNode`]) that
//! drives the pure Raft [`core`]; clients talk to it through a [`Raft`]
//! handle. Here is a replicated counter on a 3-node in-process cluster
//! (feature `testing`), the same kit your own tests can use:
//!
//! ```
//! # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use raft_actors::{core::LogIndex, testing::TestCluster, Apply, Consistency, TypeConfig};
//!
//! #[derive(Debug, Default)]
//! struct Counter(i64);
//!
//! impl TypeConfig for Counter {
//!     type Command = i64;     // add this much
//!     type Output = i64;      // the new value
//!     type Query = ();        // "what is the value?"
//!     type QueryAnswer = i64;
//!     type Snapshot = i64;
//! }
//!
//! impl Apply<Counter> for Counter {
//!     fn apply(&mut self, _: LogIndex, add: i64) -> i64 { self.0 += add; self.0 }
//!     fn query(&self, _: ()) -> i64 { self.0 }
//!     fn snapshot(&self) -> i64 { self.0 }
//!     fn restore(&mut self, value: i64) { self.0 = value }
//! }
//!
//! let c = TestCluster::memory(3).apply(Counter::default).start().await?;
//! let leader = c.wait_for_leader(Duration::from_secs(5)).await?;
//! let out = c.raft(leader).propose(5).await?;       // committed and applied
//! assert_eq!(out.output, 5);
//! let follower = c.ids().into_iter().find(|id| *id != leader).unwrap();
//! let out = c.raft(follower).propose(2).await?;     // forwarded to the leader
//! assert_eq!(out.output, 7);
//! let seen = c.raft(leader).read((), Consistency::Linearizable).await?;
//! assert_eq!(seen, 7);
//! c.net().isolate(follower);                         // faults, on demand
//! assert_eq!(c.raft(leader).propose(1).await?.output, 8);
//! # Ok(()) }
//! ```
//!
//! A real deployment swaps the memory adapters for durable storage and a
//! network transport ([`storage::Storage`], [`transport::Transport`]) and
//! starts each node with [`Raft::start`].
//!
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod apply;
pub mod core;
pub mod error;
pub mod histogram;
pub mod host;
pub mod node;
pub mod raft;
pub mod simulation;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod transport;
pub mod type_config;

pub use apply::{Applied, Apply};
pub use error::{ClientError, FatalError};
pub use node::messages::client::Consistency;
pub use raft::Raft;
pub use type_config::TypeConfig;
