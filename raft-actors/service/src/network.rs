//! [`Network`]: the transport a node runs (`--transport tcp|http`) behind
//! one type, for start-up, metrics and shutdown.
//!
//! It must never interpret Raft messages: it only builds, serves, reports
//! and stops the transport crates' adapters.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};

use actix::Recipient;
use raft_actors::core::NodeId;
use raft_actors::node::messages::peer::Peer;
use raft_actors::transport::Transport;
use raft_actors_transport_http::{HttpConfig, HttpTransport};
use raft_actors_transport_tcp::{PeerMetrics, TcpConfig, TcpTransport};

use super::flags::TransportKind;

/// One node's transport.
#[derive(Clone, Debug)]
pub enum Network {
    /// `--transport tcp`.
    Tcp(TcpTransport),
    /// `--transport http`.
    Http(HttpTransport),
}

impl Network {
    /// Starts the transport of node `id`, listening at `own`, with the
    /// given peers. It advertises `own` to peers and learns peers that
    /// advertise theirs, so a node started without `--peers` can answer the
    /// leader that adds it before it has applied the address book.
    pub fn start(
        kind: TransportKind,
        id: NodeId,
        own: SocketAddr,
        cluster_id: u64,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> Result<Network, raft_actors_transport_tcp::TcpError> {
        Ok(match kind {
            TransportKind::Tcp => {
                let mut cfg = TcpConfig::new(id, cluster_id, peers);
                cfg.advertise = Some(own);
                cfg.learn_peers = true;
                Network::Tcp(TcpTransport::new(cfg)?)
            }
            TransportKind::Http => {
                let mut cfg = HttpConfig::new(id, cluster_id, peers);
                cfg.advertise = Some(own);
                cfg.learn_peers = true;
                Network::Http(HttpTransport::new(cfg))
            }
        })
    }

    /// The adapter to hand the node.
    pub fn adapter(&self) -> Box<dyn Transport> {
        match self {
            Network::Tcp(t) => Box::new(t.clone()),
            Network::Http(t) => Box::new(t.clone()),
        }
    }

    /// Receives on `listener`, delivering to the node's mailbox.
    pub fn serve(&self, listener: TcpListener, inbox: Recipient<Peer>) -> anyhow::Result<()> {
        match self {
            Network::Tcp(t) => {
                t.serve(listener, inbox)?;
            }
            Network::Http(t) => {
                t.serve(listener, inbox)?;
            }
        }
        Ok(())
    }

    /// Learns (or changes) where peer `id` listens.
    pub fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        match self {
            Network::Tcp(t) => t.set_peer(id, addr),
            Network::Http(t) => t.set_peer(id, addr),
        }
    }

    /// Per-peer counts.
    pub fn peer_metrics(&self) -> BTreeMap<NodeId, PeerMetrics> {
        match self {
            Network::Tcp(t) => t.metrics().peers,
            Network::Http(t) => t.metrics().peers,
        }
    }

    /// Closes every connection and the listener.
    pub async fn shutdown(&self) {
        match self {
            Network::Tcp(t) => t.shutdown().await,
            Network::Http(t) => t.shutdown().await,
        }
    }
}
