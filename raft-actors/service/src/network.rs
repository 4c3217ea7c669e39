//! The transport batteries (`--transport tcp|http`, cargo features `tcp`
//! and `http`): each built as an `Arc<dyn NetworkTransport>`, the one
//! trait the rest of the crate drives (serve, peers, advertise, metrics,
//! shutdown). A user's own transport plugs in through the builder instead.
//!
//! It must never interpret Raft messages, and nothing outside this module
//! may ask which transport a node runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use raft_actors::core::NodeId;
use raft_actors::transport::NetworkTransport;
use raft_actors_tls::PeerTls;

use super::flags::TransportKind;

/// Why a battery transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportBuildError {
    /// The TCP transport refused to start (e.g. no runtime).
    #[cfg(feature = "tcp")]
    #[error(transparent)]
    Tcp(#[from] raft_actors_transport_tcp::TcpError),
    /// The crate was built without the feature this transport needs.
    #[error("this build has no {0} transport (cargo feature `{0}`)")]
    NotBuilt(&'static str),
}

/// Starts the battery transport `kind` of node `id`, listening at `own`,
/// with the given peers, over mutual TLS with `tls` (plain text without). It advertises `own` to peers and learns peers that
/// advertise theirs, so a node started without peers can answer the leader
/// that adds it before it has applied the address book.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_actors_service::flags::TransportKind;
/// use raft_actors_service::network::battery;
/// let t = battery(TransportKind::Tcp, 1, "127.0.0.1:7001".parse()?, 1, Default::default(), None)?;
/// t.set_peer(2, "127.0.0.1:7002".parse()?);
/// assert!(t.peer_metrics().contains_key(&2));
/// t.shutdown().await;
/// # Ok(()) }
/// ```
pub fn battery(
    kind: TransportKind,
    id: NodeId,
    own: SocketAddr,
    cluster_id: u64,
    peers: BTreeMap<NodeId, SocketAddr>,
    tls: Option<PeerTls>,
) -> Result<Arc<dyn NetworkTransport>, TransportBuildError> {
    let _ = (&id, &own, &cluster_id, &peers, &tls);
    match kind {
        #[cfg(feature = "tcp")]
        TransportKind::Tcp => {
            use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
            let mut cfg = TcpConfig::new(id, cluster_id, peers);
            cfg.advertise = Some(own);
            cfg.learn_peers = true;
            cfg.tls = tls;
            Ok(Arc::new(TcpTransport::new(cfg)?))
        }
        #[cfg(feature = "http")]
        TransportKind::Http => {
            use raft_actors_transport_http::{HttpConfig, HttpTransport};
            let mut cfg = HttpConfig::new(id, cluster_id, peers);
            cfg.advertise = Some(own);
            cfg.learn_peers = true;
            cfg.tls = tls;
            Ok(Arc::new(HttpTransport::new(cfg)))
        }
        #[allow(unreachable_patterns)]
        other => Err(TransportBuildError::NotBuilt(other.name())),
    }
}
