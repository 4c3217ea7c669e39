//! Per-peer counters, updated by the connection tasks and read through
//! [`TcpTransport::metrics`](crate::TcpTransport::metrics).
//!
//! Counters only: they must never gate or slow the data path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use raft_actors::core::NodeId;

/// What happened on the links with one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerMetrics {
    /// Frame bytes written to the peer (prefixes included).
    pub bytes_sent: u64,
    /// Messages written to the peer.
    pub messages_sent: u64,
    /// Frame bytes received from the peer.
    pub bytes_received: u64,
    /// Messages received from the peer and delivered.
    pub messages_received: u64,
    /// Connections to the peer established after the first one.
    pub reconnects: u64,
    /// Messages dropped: queue full, or lost with a broken connection.
    pub drops: u64,
}

/// Counts of one transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpMetrics {
    /// Per peer.
    pub peers: BTreeMap<NodeId, PeerMetrics>,
    /// Incoming handshakes refused (wrong cluster, unknown node).
    pub refused: u64,
    /// Incoming connections closed for an oversized or malformed frame.
    pub bad_frames: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub bytes_sent: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub messages_received: AtomicU64,
    pub reconnects: AtomicU64,
    pub drops: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        // Relaxed: independent counters, read for reports only.
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PeerMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PeerMetrics {
            bytes_sent: get(&self.bytes_sent),
            messages_sent: get(&self.messages_sent),
            bytes_received: get(&self.bytes_received),
            messages_received: get(&self.messages_received),
            reconnects: get(&self.reconnects),
            drops: get(&self.drops),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Global {
    pub refused: AtomicU64,
    pub bad_frames: AtomicU64,
}
