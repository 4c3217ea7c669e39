//! TCP transport for raft-actors.
//!
//! Each node runs one [`TcpTransport`]: a bounded queue and a connection
//! task per peer going out, a listener coming in. On the wire, every frame
//! is a 4-byte big-endian length, a version byte ([`frame::WIRE_VERSION`])
//! and a postcard [`frame::Frame`]. A connection opens with a handshake
//! carrying the cluster id and both node ids; a wrong cluster or an
//! unknown node is refused, logged and closed. Dropped connections are
//! dialled again with exponential backoff and seeded jitter ([`Backoff`]).
//! Queued batches go out several per socket write. Every batch names its
//! Raft group, so one transport, and one connection per pair of nodes,
//! carries the batches of every group a process hosts
//! ([`TcpTransport::group_sender`], [`TcpTransport::serve_group`]). A frame over
//! [`TcpConfig::max_frame_bytes`] or one that does not decode closes its
//! connection with one log line; the limit is checked before anything is
//! allocated. Snapshots already travel as chunks of the core's
//! `snapshot_chunk_bytes`, one in flight per peer, so a chunk delays a
//! heartbeat on the same link by one frame at most.
//!
//! With [`TcpConfig::tls`] every connection is mutual TLS (rustls): the
//! dialler checks that the acceptor's certificate names `node-<peer>`, the
//! acceptor that the dialler's names the id its handshake claims; a
//! connection refused for its certificate is logged and counted
//! ([`TcpMetrics::tls_refused`]). Without it, plain TCP.
//!
//! This crate moves bytes; it must never interpret Raft messages beyond
//! checking that they come from the peer that shook hands.
//!
//! | concept | module |
//! |---|---|
//! | the transport, its errors | [`TcpTransport`], [`TcpError`] |
//! | settings and bounds | [`TcpConfig`] |
//! | wire format, decoder | [`frame`] |
//! | counters (shared with the HTTP transport) | [`PeerCounters`], [`PeerMetrics`], [`TcpMetrics`] |
//! | reconnect delays | [`Backoff`] |
//! | the peers, growable at run time (shared with the HTTP transport) | [`PeerTable`] |
//! | who may connect, what this node advertises (shared likewise) | [`admission`] |
//! | which mailbox gets each Raft group's batches (shared likewise) | [`routes`] |
//! | what a service drives: serve, peers, advertise, metrics, shutdown | `raft_actors::transport::NetworkTransport` |
//!
//! ```
//! # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::TcpListener;
//! use raft_actors::transport::Transport;
//! use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
//! let (l1, l2) = (TcpListener::bind("127.0.0.1:0")?, TcpListener::bind("127.0.0.1:0")?);
//! let peers: std::collections::BTreeMap<u64, _> =
//!     [(1, l1.local_addr()?), (2, l2.local_addr()?)].into();
//! let t1 = TcpTransport::new(TcpConfig::new(1, 7, peers.clone()))?;
//! let t2 = TcpTransport::new(TcpConfig::new(2, 7, peers))?;
//! // `serve(listener, mailbox)` then delivers what peers send to a node:
//! // see tests/conformance.rs for a mailbox.
//! # let _ = (l1, l2, t2);
//! t1.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod admission;
mod backoff;
mod config;
pub mod frame;
mod inbound;
mod metrics;
mod outbound;
pub mod peers;
pub mod routes;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod transport;

pub use backoff::Backoff;
pub use config::TcpConfig;
pub use metrics::{PeerCounters, PeerMetrics, TcpMetrics};
pub use peers::PeerTable;
pub use transport::{TcpError, TcpTransport};
