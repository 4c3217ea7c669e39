//! HTTP transport for raft-actors: the TCP transport's semantics over HTTP.
//!
//! Each node serves an actix-web endpoint ([`wire::PATH`]) and posts to
//! its peers' endpoints with awc over kept-alive connections, one request
//! at a time per peer so batches arrive in order, several queued batches
//! per request. A body is a version byte and a postcard
//! [`wire::Envelope`] carrying the cluster id and both node ids: a wrong
//! cluster or an unknown sender is refused (403) and logged; a malformed
//! body is refused (400); a body over [`HttpConfig::max_body_bytes`] is
//! refused (413) before it is read. Queues are bounded (drops counted),
//! failed requests back off with seeded jitter, and
//! [`HttpTransport::metrics`] reports per peer bytes and messages sent and
//! received, reconnects (first success after failures) and drops.
//!
//! This crate moves bytes; it must never interpret Raft messages beyond
//! checking that they come from the sender the request names.
//!
//! ```
//! # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft_actors_transport_http::{HttpConfig, HttpTransport};
//! let l = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let peers = [(1, l.local_addr()?), (2, "127.0.0.1:9".parse()?)].into();
//! let t = HttpTransport::new(HttpConfig::new(1, 7, peers));
//! // `t.serve(l, mailbox)` once the node exists; see tests/conformance.rs.
//! # drop(l);
//! t.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod endpoint;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;
pub mod wire;

pub use transport::{HttpConfig, HttpError, HttpMetrics, HttpTransport};
