//! [`TcpConfig`]: who the node is, whom it talks to, and the bounds that
//! keep a slow or hostile peer from costing unbounded memory or time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use raft_actors::core::{GroupId, NodeId, DEFAULT_GROUP};
use raft_actors_tls::PeerTls;

use crate::frame::DEFAULT_MAX_FRAME_BYTES;

/// Settings of one node's TCP transport.
///
/// ```
/// use raft_actors_transport_tcp::TcpConfig;
/// let peers = [(2, "127.0.0.1:7002".parse().unwrap())].into();
/// let cfg = TcpConfig::new(1, 42, peers);
/// assert_eq!(cfg.queue_capacity, 1024);
/// ```
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// This node.
    pub id: NodeId,
    /// Connections from another cluster are refused at the handshake, so
    /// two clusters sharing hosts never mix their messages.
    pub cluster_id: u64,
    /// Where each peer listens. Only these ids may connect to this node,
    /// and only these may be sent to; this node's own id is ignored.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The largest frame body accepted or sent.
    pub max_frame_bytes: usize,
    /// Batches queued per peer; beyond it sends are dropped and counted
    /// (Raft retries), so a dead peer costs bounded memory.
    pub queue_capacity: usize,
    /// At most this many queued batches go out in one socket write.
    pub max_batches_per_write: usize,
    /// First reconnect delay; doubles per failed attempt, with jitter.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Deadline of a connect and of each side of the handshake.
    pub handshake_timeout: Duration,
    /// This node's own listening address, sent in the handshake
    /// ([`Frame::HelloAt`](crate::frame::Frame::HelloAt)) so that a peer
    /// with [`learn_peers`](Self::learn_peers) can learn it. `None` sends
    /// the plain `Hello`.
    pub advertise: Option<SocketAddr>,
    /// Accept a handshake from a node not in [`peers`](Self::peers) if it
    /// advertises its address, and add it as a peer. For a node that joins
    /// a running cluster and knows nobody yet; the cluster id is still
    /// checked.
    pub learn_peers: bool,
    /// Seeds the reconnect jitter (mixed with the peer id), so a test run
    /// replays the same delays.
    pub seed: u64,
    /// Mutual TLS on every connection ([`PeerTls`]): both sides present a
    /// certificate chaining to the CA, the dialler checks the acceptor's
    /// names `node-<peer>`, and the acceptor checks the dialler's names the
    /// node its handshake claims. `None`: plain TCP.
    pub tls: Option<PeerTls>,
    /// The Raft group of this transport's own `send` and of the mailbox
    /// given to [`serve`](crate::TcpTransport::serve) ([`DEFAULT_GROUP`]
    /// for a single-group service);
    /// [`group_sender`](crate::TcpTransport::group_sender) and
    /// [`serve_group`](crate::TcpTransport::serve_group) add others.
    /// Received batches of a group with no mailbox are dropped and counted
    /// ([`TcpMetrics::other_group`](crate::TcpMetrics::other_group)).
    pub group: GroupId,
}

impl TcpConfig {
    /// Defaults for node `id` of cluster `cluster_id`.
    pub fn new(id: NodeId, cluster_id: u64, peers: BTreeMap<NodeId, SocketAddr>) -> Self {
        TcpConfig {
            id,
            cluster_id,
            peers,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            queue_capacity: 1024,
            max_batches_per_write: 64,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
            advertise: None,
            learn_peers: false,
            seed: 0,
            tls: None,
            group: DEFAULT_GROUP,
        }
    }

    /// The largest batch [`raft_actors::transport::estimated_size`] may
    /// report: the frame limit less the frame's own overhead (version
    /// byte, enum tag, group id, vector length).
    pub fn max_batch_bytes(&self) -> usize {
        self.max_frame_bytes.saturating_sub(32)
    }
}
