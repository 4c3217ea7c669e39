//! Replicated HTTP services on raft-actors: everything a service needs
//! besides its own state machine and routes.
//!
//! A service implements [`Service`] (its commands, how they change the
//! state, its HTTP routes) and calls [`main`]. The crate brings the command
//! line and the HTTP API of the services' contract: flags, storage and
//! transport selection, the cluster API, exactly-once writes, errors,
//! metrics, logs and shutdown.
//!
//! # Layout
//! | concept | module |
//! |---|---|
//! | the trait a service implements | [`Service`] ([`service`]) |
//! | the entry point | [`main`] ([`run`]) |
//! | the replicated envelope: sessions, address book | [`machine`], [`sessions`], [`directory`] |
//! | flags | [`flags`] |
//! | HTTP helpers for routes: bodies, keys, JSON bytes | [`http`] |
//! | the error body and status mapping | [`error`] |
//! | what a route calls to write and read | [`node`] |
//! | `/status`, `/cluster/*` | [`cluster`] |
//! | `/metrics` | [`metrics`] |
//! | storage and transport selection | [`storage`], [`network`] |
#![deny(missing_docs)]

pub mod cluster;
pub mod directory;
pub mod error;
pub mod flags;
pub mod http;
pub mod machine;
pub mod metrics;
pub mod network;
pub mod node;
pub mod run;
pub mod service;
pub mod sessions;
pub mod storage;

pub use error::ApiError;
pub use node::{Node, Written};
pub use run::main;
pub use service::Service;
