//! Per-peer counters, updated by the connection tasks and read through
//! [`TcpTransport::metrics`](crate::TcpTransport::metrics).
//!
//! Counters only: they must never gate or slow the data path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use raft_actors::core::NodeId;

pub use raft_actors::transport::PeerMetrics;

/// Counts of one transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpMetrics {
    /// Per peer.
    pub peers: BTreeMap<NodeId, PeerMetrics>,
    /// Incoming handshakes refused (wrong cluster, unknown node, a TLS
    /// handshake that failed, a certificate naming another node).
    pub refused: u64,
    /// Peers refused by TLS, on either side of a handshake: a dialler
    /// without a certificate, with one of another CA, an expired one, or
    /// one that does not name the node it claims; a node dialled whose
    /// certificate is refused likewise.
    pub tls_refused: u64,
    /// Incoming connections closed for an oversized or malformed frame,
    /// or one of another wire version (a node of another release).
    pub bad_frames: u64,
    /// Batches received for a Raft group this transport does not carry,
    /// dropped (the connection stays up: the peer may host more groups).
    pub other_group: u64,
    /// Incoming connections accepted (before their handshake): with many
    /// groups over one transport, still one per dialling peer.
    pub accepted: u64,
}

/// The live counts of one peer, shared by its sending task and the
/// receiving side; the TCP and the HTTP transport both keep them in their
/// [`PeerTable`](crate::PeerTable).
///
/// ```
/// use raft_actors_transport_tcp::PeerCounters;
/// let c = PeerCounters::default();
/// PeerCounters::add(&c.drops, 3);
/// assert_eq!(c.snapshot().drops, 3);
/// ```
#[derive(Debug, Default)]
pub struct PeerCounters {
    /// Bytes written to the peer.
    pub bytes_sent: AtomicU64,
    /// Messages written to the peer.
    pub messages_sent: AtomicU64,
    /// Frames written to the peer (a TCP frame, an HTTP request).
    pub frames_sent: AtomicU64,
    /// Bytes received from the peer.
    pub bytes_received: AtomicU64,
    /// Messages received from the peer and delivered.
    pub messages_received: AtomicU64,
    /// Frames received from the peer.
    pub frames_received: AtomicU64,
    /// Connections re-established after a failure.
    pub reconnects: AtomicU64,
    /// Messages dropped.
    pub drops: AtomicU64,
}

impl PeerCounters {
    /// Adds `n` to counter `c`.
    pub fn add(c: &AtomicU64, n: u64) {
        // Relaxed: independent counters, read for reports only.
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// The counts as they are now.
    pub fn snapshot(&self) -> PeerMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PeerMetrics {
            bytes_sent: get(&self.bytes_sent),
            messages_sent: get(&self.messages_sent),
            frames_sent: get(&self.frames_sent),
            bytes_received: get(&self.bytes_received),
            messages_received: get(&self.messages_received),
            frames_received: get(&self.frames_received),
            reconnects: get(&self.reconnects),
            drops: get(&self.drops),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Global {
    pub refused: AtomicU64,
    pub tls_refused: AtomicU64,
    pub bad_frames: AtomicU64,
    pub other_group: AtomicU64,
    pub accepted: AtomicU64,
}
