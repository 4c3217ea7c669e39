//! Replicated HTTP services on raft-actors: everything a service needs
//! besides its own state machine and routes.
//!
//! A service implements [`Service`] (its commands, how they change the
//! state, its HTTP routes) and either calls [`main`] (the services' command
//! line) or sets a node up in code with [`ServiceBuilder`]. The crate brings
//! the rest: storage and transport, client writes and reads with forwarding
//! and typed HTTP errors, exactly-once writes, the replicated address book,
//! the cluster API, Prometheus metrics, logs and shutdown.
//!
//! # Tutorial: a replicated service in 60 lines
//!
//! A service is a state machine and its routes. This one, a tally of
//! votes, is `examples/tutorial.rs` whole; `tests/tutorial.rs` runs it as a
//! 3-node cluster over real sockets.
//!
#![doc = concat!("```no_run\n", include_str!("../examples/tutorial.rs"), "```")]
//!
//! Run three nodes, then vote through any of them:
//!
//! ```text
//! cargo run --example tutorial -- --id 1 --raft-addr 127.0.0.1:7001 --http-addr 127.0.0.1:8001 \
//!     --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data-dir d1
//! # ... the same with --id 2 and 3 (ports 7002/8002, 7003/8003, d2, d3)
//! curl -X POST localhost:8002/vote/alice      # {"index":..,"votes":1}
//! curl localhost:8003/votes                   # {"alice":1}
//! curl localhost:8001/status                  # the cluster API comes with it
//! ```
//!
//! Every node accepts every request (followers forward writes to the
//! leader), a write is answered once it is committed and applied, a write
//! with `Idempotency-Key: <client>:<seq>` is applied at most once, errors
//! carry `{"error", "leader"}` with the status codes of `examples/REFERENCE.md` (503:
//! nothing applied; 504: outcome unknown), and `/status`,
//! `/cluster/members`, `/cluster/leader`, `/cluster/snapshot` and
//! `/metrics` (cargo feature `metrics`, on by default) are served beside
//! the service's routes. SIGTERM stops a node
//! cleanly.
//!
//! # In code, without flags
//!
//! [`ServiceBuilder`] sets up the same node programmatically: addresses
//! (or bound listeners), peers, data dir, any [`Storage`](raft_actors::storage::Storage)
//! (redb and memory are built in), any
//! [`NetworkTransport`](raft_actors::transport::NetworkTransport) (TCP and
//! HTTP are built in, cargo features `tcp` and `http`; redb is `redb`), the
//! node's configuration, the request timeout and the session bounds. Nothing
//! is process-global, so one process can run several nodes:
//!
//! ```no_run
//! # use raft_actors_service::{Service, ServiceBuilder, flags::StorageKind};
//! # async fn demo<S: Service>() -> Result<(), Box<dyn std::error::Error>> {
//! let raft = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let me = raft.local_addr()?;
//! let node = ServiceBuilder::<S>::new(1)
//!     .raft_listener(raft)
//!     .http_addr("127.0.0.1:8001".parse()?)
//!     .peers([(1, me)])
//!     .storage(StorageKind::Memory)
//!     .configure(|cfg| cfg.core.snapshot_threshold = 1_000)
//!     .start()
//!     .await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Testing a service
//!
//! A service runs in a test as it runs in production, in-process:
//! [`ServiceBuilder`] with the memory storage and listeners bound to port
//! 0 (three of them make a cluster: `tests/tutorial.rs` runs the tutorial
//! so), and any HTTP client for its routes. The nodes are actors, so a test
//! runs on actix's runtime. In your crate's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! actix-rt = "2"
//! awc = "3"
//! ```
//!
//! ```
//! # use actix_web::{web, HttpRequest, HttpResponse};
//! # use raft_actors_service::{ApiError, LogIndex, Node, Service};
//! # #[derive(Default)]
//! # struct Tally(u64);
//! # impl Service for Tally {
//! #     const NAME: &'static str = "tally";
//! #     type Command = ();
//! #     type Output = u64;
//! #     type Query = ();
//! #     type Answer = u64;
//! #     type Snapshot = u64;
//! #     fn apply(&mut self, _: LogIndex, _: ()) -> u64 { self.0 += 1; self.0 }
//! #     fn query(&self, _: ()) -> u64 { self.0 }
//! #     fn snapshot(&self) -> u64 { self.0 }
//! #     fn restore(&mut self, s: u64) { self.0 = s }
//! #     fn routes(cfg: &mut web::ServiceConfig) { cfg.route("/vote", web::post().to(vote)); }
//! # }
//! # async fn vote(node: web::Data<Node<Tally>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
//! #     Ok(HttpResponse::Ok().json(node.write(&req, ()).await?.output))
//! # }
//! use std::net::TcpListener;
//! use std::time::Duration;
//!
//! use raft_actors_service::flags::StorageKind;
//! use raft_actors_service::ServiceBuilder;
//!
//! # #[actix_rt::main] async fn main() {
//! // #[actix_rt::test] async fn a_vote_is_counted() {   (in tests/votes.rs)
//! let raft = TcpListener::bind("127.0.0.1:0").expect("a port");
//! let me = raft.local_addr().expect("its address");
//! let node = ServiceBuilder::<Tally>::new(1)
//!     .raft_listener(raft)
//!     .http_listener(TcpListener::bind("127.0.0.1:0").expect("a port"))
//!     .peers([(1, me)])
//!     .storage(StorageKind::Memory)
//!     .http_workers(1)
//!     .start()
//!     .await
//!     .expect("the node starts");
//! let raft = node.node().raft();
//! raft.wait_for(Duration::from_secs(10), |m| m.leader.is_some()).await.expect("a leader");
//!
//! let url = format!("http://{}/vote", node.http_addr());
//! let mut answer = awc::Client::new().post(url).send().await.expect("an answer");
//! assert_eq!(answer.status(), 200);
//! assert_eq!(answer.json::<u64>().await.expect("JSON"), 1);
//! node.shutdown().await;
//! # }
//! ```
//!
//! To test the state machine under faults without HTTP (crashes,
//! partitions, a linearizability check of what clients saw), the core
//! crate's kit runs any `Apply` as a cluster: `raft_actors::testing`
//! (feature `testing`). The HTTP API every service serves, and the example
//! services' own, are listed in `examples/REFERENCE.md` in the repository.
//!
//! # Layout
//! | concept | module |
//! |---|---|
//! | the trait a service implements | [`Service`] ([`service`]) |
//! | a node set up in code; a started one | [`ServiceBuilder`] ([`builder`]), [`RunningService`] ([`running`]) |
//! | the command-line entry point, flags | [`main`] ([`run`]), [`flags`] |
//! | the cluster API's bearer token | [`admin`] |
//! | the replicated envelope: sessions, address book | [`machine`], [`sessions`], [`directory`] |
//! | HTTP helpers for routes: bodies, keys, JSON bytes | [`http`] |
//! | the error body and status mapping | [`error`] |
//! | what a route calls to write and read | [`node`] |
//! | `/status`, `/cluster/*` | [`cluster`] |
//! | `/health`, `/cluster/status`, `/ui` | [`operators`] |
//! | `/metrics` (cargo feature `metrics`) | `metrics` |
//! | storage and transport batteries | [`storage`], [`network`] |
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod admin;
pub mod builder;
pub mod cluster;
pub mod directory;
pub mod error;
pub mod flags;
pub mod groups;
pub mod held_logs;
pub mod http;
pub mod machine;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod network;
pub mod node;
mod node_client;
pub mod operators;
pub mod run;
pub mod running;
pub mod security;
pub mod service;
pub mod sessions;
pub mod start_error;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use builder::ServiceBuilder;
pub use error::ApiError;
pub use node::{Node, Written};
pub use run::main;
pub use running::RunningService;
pub use service::Service;
pub use start_error::StartError;

/// The runtime this crate builds on, re-exported so a service needs no
/// second dependency for its types.
pub use raft_actors;
pub use raft_actors::core::{LogIndex, NodeId};
pub use raft_actors::Consistency;
