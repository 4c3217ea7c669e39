//! [`NetworkTransport`]: what a service needs from a socket transport
//! beyond [`Transport::send`]: serve a listener, learn where a peer listens,
//! tell peers where this node listens, report per-peer counts, shut down.
//!
//! A service holds one `Arc<dyn NetworkTransport>` and never asks which
//! adapter it is, so any adapter that implements this trait plugs in beside
//! the TCP and HTTP ones. It must never interpret Raft messages: it only
//! moves them (see the [module docs](super) for what the node may rely on).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener};

use actix::Recipient;
use futures::future::BoxFuture;
use thiserror::Error;

use super::Transport;
use crate::core::{GroupId, NodeId};
use crate::transport::Peer;

/// What happened on the links with one peer.
///
/// ```
/// use raft_actors::transport::PeerMetrics;
/// let m = PeerMetrics { drops: 2, ..PeerMetrics::default() };
/// assert_eq!((m.drops, m.reconnects), (2, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerMetrics {
    /// Bytes written to the peer (framing included).
    pub bytes_sent: u64,
    /// Messages written to the peer.
    pub messages_sent: u64,
    /// Frames written to the peer: one per batch on TCP, one per request
    /// on HTTP, one per delivered batch in memory.
    pub frames_sent: u64,
    /// Bytes received from the peer.
    pub bytes_received: u64,
    /// Messages received from the peer and delivered.
    pub messages_received: u64,
    /// Frames received from the peer (as [`frames_sent`](Self::frames_sent)).
    pub frames_received: u64,
    /// Connections to the peer (re-)established after a failure.
    pub reconnects: u64,
    /// Messages dropped: queue full, or lost with a broken connection.
    pub drops: u64,
}

/// Why [`NetworkTransport::serve`] could not start receiving.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The listener could not be set up.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// `serve` was already called on this transport.
    #[error("already serving")]
    AlreadyServing,
    /// Anything else the adapter reports (e.g. no runtime to run on).
    #[error("{0}")]
    Other(String),
}

/// A socket transport as a service drives it. Implemented by the TCP and
/// the HTTP transport; clones of an adapter are handles to the same one.
///
/// To ensure correctness:
/// - [`serve`](Self::serve) delivers each received batch to `inbox` as one
///   [`Peer`] message, after checking its sender, and answers the address
///   it listens on;
/// - a batch is delivered only to the mailbox of its own Raft group
///   ([`serve_group`](Self::serve_group)), never to another group's;
/// - [`set_peer`](Self::set_peer) may be called from any thread, any number
///   of times; a moved peer's queued batches may be lost (Raft resends);
/// - [`advertise`](Self::advertise) takes effect for connections opened
///   after it, so call it before the node starts sending;
/// - after [`shutdown`](Self::shutdown) resolves, the listener's port can
///   be bound again and sends are refused.
pub trait NetworkTransport: Transport + Sync + fmt::Debug {
    /// A handle for the node's sending side (the same transport).
    fn sender(&self) -> Box<dyn Transport>;
    /// Receives on `listener`, delivering to `inbox`.
    fn serve(
        &self,
        listener: TcpListener,
        inbox: Recipient<Peer>,
    ) -> Result<SocketAddr, ServeError>;
    /// Learns (or changes) where peer `id` listens; this node's own id is
    /// ignored.
    fn set_peer(&self, id: NodeId, addr: SocketAddr);
    /// A sending handle for this process's node of Raft group `group`
    /// (multi-raft): its batches travel on this transport's connections,
    /// tagged with the group, beside every other group's.
    fn group_sender(&self, group: GroupId) -> Box<dyn Transport>;
    /// Delivers the received batches of Raft group `group` to `inbox`
    /// from now on, beside the group [`serve`](Self::serve) delivers;
    /// a batch of a group with no mailbox is dropped and counted.
    fn serve_group(&self, group: GroupId, inbox: Recipient<Peer>);
    /// Tells peers, from now on, that this node listens at `own`, so one
    /// that learns peers can answer a node it was never told of.
    fn advertise(&self, own: SocketAddr);
    /// Each peer's counts.
    fn peer_metrics(&self) -> BTreeMap<NodeId, PeerMetrics>;
    /// Peers refused for their TLS certificate since start (none, from
    /// another CA, expired, naming another node); 0 for a transport
    /// without TLS.
    fn tls_refused(&self) -> u64 {
        0
    }
    /// Closes the listener and every connection; resolves once closed.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}
