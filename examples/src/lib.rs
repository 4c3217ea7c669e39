//! The shared framework of the example services (`raft-kv`, `raft-counter`,
//! `raft-queue`): everything a service binary needs besides its own state
//! machine and routes.
//!
//! A service implements [`service::Service`] (its commands, how they
//! change the state, its HTTP routes) and calls [`service::main`]. The
//! framework brings the command line and the HTTP API of
//! `shared/CONTRACT.md`: flags, storage and transport selection, the
//! cluster API, exactly-once writes, errors, metrics, logs and shutdown.
//!
//! # Layout
//! | concept | module |
//! |---|---|
//! | the trait a service implements, the entry point | [`service`] |
//! | the replicated envelope: sessions, address book | [`service::machine`], [`service::sessions`], [`service::directory`] |
//! | flags | [`service::flags`] |
//! | HTTP helpers for routes: bodies, keys, JSON bytes | [`service::http`] |
//! | the error body and status mapping | [`service::error`] |
//! | what a route calls to write and read | [`service::node`] |
//! | `/status`, `/cluster/*` | [`service::cluster`] |
//! | `/metrics` | [`service::metrics`] |
//! | storage and transport selection | [`service::storage`], [`service::network`] |
//! | start-up and shutdown | [`service::run`] |

pub mod service;
