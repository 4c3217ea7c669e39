//! [`StartError`]: why a node of a service could not start, each reason
//! with what the operator needs to act on it. It describes; it must never
//! retry or recover anything.

use std::net::SocketAddr;

use raft_actors::transport::ServeError;
use raft_actors::ClientError;

use super::network::TransportBuildError;
use super::storage::OpenError;

/// Why a node could not start. Its `Display` and sources chain into one
/// line (`{e}: {source}: ...`).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A required setting was not given.
    #[error("missing setting: {0}")]
    Missing(&'static str),
    /// The raft address cannot be listened on.
    #[error("cannot listen on --raft-addr {addr}")]
    RaftListen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The client address cannot be listened on.
    #[error("cannot listen on --http-addr {addr}")]
    HttpListen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The storage cannot be opened.
    #[error(transparent)]
    Storage(#[from] OpenError),
    /// The transport cannot be built.
    #[error("cannot start the transport")]
    Transport(#[from] TransportBuildError),
    /// The transport cannot serve the raft listener.
    #[error("cannot serve the raft address")]
    Serve(#[from] ServeError),
    /// The node did not answer once started.
    #[error("the node did not start")]
    Node(#[from] ClientError),
    /// The HTTP server cannot serve the client listener.
    #[error("cannot serve --http-addr")]
    Http(#[source] std::io::Error),
    /// The node refused to start: its data dir is empty, but a peer knows
    /// it took part before (see `raft_actors::core::Founding`). The line
    /// says what the operator does.
    #[error("{0}")]
    LostData(String),
}
