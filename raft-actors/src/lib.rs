//! # raft-actors
//!
//! Replicated services on the Raft consensus algorithm, in the actor model.
//!
//! # Layout
//! | concept | module |
//! |---|---|
//! | Raft rules, no I/O, no clock | [`core`] |
//! | seeded whole-cluster simulation of cores, with fault injection and the five safety checks | [`simulation`] |
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod core;
pub mod simulation;
