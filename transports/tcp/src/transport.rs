//! [`TcpTransport`]: one node's side of the TCP network: a queue and a
//! connection task per peer going out, a listener coming in.
//!
//! It must never block the node: [`Transport::send`] only checks the batch
//! and queues it; a full queue drops the batch and counts it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::Recipient;
use raft_actors::core::{GroupId, Message, NodeId};
use raft_actors::transport::Peer;
use raft_actors::transport::{
    GroupSender, NetworkTransport, PeerMetrics, ServeError, SharedTransport, Transport,
    TransportError,
};
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::Advertised;
use crate::config::TcpConfig;
use crate::frame::FrameError;
use crate::metrics::{Global, PeerCounters, TcpMetrics};
use crate::peers::{PeerTable, SpawnLink};
use crate::routes::GroupRoutes;
use crate::{inbound, outbound};
use raft_actors_tls::PeerTls;

/// Why the transport could not start, or why a connection ended.
#[derive(Debug, Error)]
pub enum TcpError {
    /// Socket setup or I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Not called inside a tokio runtime (e.g. an actix system).
    #[error("no tokio runtime to run the connection tasks on")]
    NoRuntime,
    /// [`TcpTransport::serve`] was already called.
    #[error("already serving")]
    AlreadyServing,
    /// The peer refused our handshake.
    #[error("handshake refused: {0}")]
    Refused(String),
    /// The other side broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A connect or a handshake did not finish in time.
    #[error("timed out")]
    Timeout,
    /// The TLS handshake failed (a certificate refused on either side).
    #[error("TLS: {0}")]
    Tls(String),
    /// A frame was oversized or malformed.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Node `cfg.id`'s TCP transport. Clones are handles to the same one; it
/// stops when [`shutdown`](Self::shutdown) is called or the last handle is
/// dropped.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_actors::transport::{Transport, TransportError};
/// use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
/// let peers = [(2, "127.0.0.1:9".parse()?)].into();
/// let t = TcpTransport::new(TcpConfig::new(1, 42, peers))?;
/// assert_eq!(t.send(3, vec![]), Err(TransportError::UnknownPeer(3)));
/// t.send(2, vec![])?; // queued; peer 2 is down, so it is retried with backoff
/// t.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TcpTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: Arc<TcpConfig>,
    peers: Arc<PeerTable<PeerCounters>>,
    routes: Arc<GroupRoutes>,
    global: Arc<Global>,
    advertised: Advertised,
    token: CancellationToken,
    tracker: TaskTracker,
    serving: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The tasks hold no handle to `Inner`, so this runs once the node
        // lets go of its transport: the tasks then end on their own.
        self.token.cancel();
    }
}

impl TcpTransport {
    /// Starts one connection task per peer, on the current tokio runtime.
    /// Nothing is received until [`serve`](Self::serve).
    pub fn new(cfg: TcpConfig) -> Result<Self, TcpError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| TcpError::NoRuntime)?;
        let cfg = Arc::new(cfg);
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let advertised = Advertised::new(cfg.advertise);
        let spawn: SpawnLink<PeerCounters> = {
            let (cfg, token, tracker) = (Arc::clone(&cfg), token.clone(), tracker.clone());
            let advertised = advertised.clone();
            Box::new(move |peer, addr, rx, counters| {
                let link = outbound::Link {
                    cfg: Arc::clone(&cfg),
                    peer,
                    addr,
                    rx,
                    counters,
                    advertised: advertised.clone(),
                    token: token.clone(),
                };
                tracker.spawn_on(outbound::run(link), &handle);
            })
        };
        let peers = Arc::new(PeerTable::new(cfg.id, cfg.queue_capacity, spawn));
        for (&peer, &addr) in &cfg.peers {
            peers.set(peer, addr);
        }
        Ok(TcpTransport {
            inner: Arc::new(Inner {
                cfg,
                peers,
                routes: Arc::default(),
                global: Arc::new(Global::default()),
                advertised,
                token,
                tracker,
                serving: AtomicBool::new(false),
            }),
        })
    }

    /// Accepts peers' connections on `listener` and delivers their batches
    /// of group [`TcpConfig::group`] to `inbox`, one [`Peer`] message per
    /// batch (and those of each group given to
    /// [`serve_group`](Self::serve_group) to its mailbox). Answers the
    /// address listened on.
    pub fn serve(
        &self,
        listener: std::net::TcpListener,
        inbox: Recipient<Peer>,
    ) -> Result<SocketAddr, TcpError> {
        if self.inner.serving.swap(true, Ordering::SeqCst) {
            return Err(TcpError::AlreadyServing);
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| TcpError::NoRuntime)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _guard = handle.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        // Only once serving cannot fail: a failed `serve` leaves the
        // group's mailbox as it was.
        self.inner.routes.set(self.inner.cfg.group, inbox);
        let inner = &self.inner;
        self.inner.tracker.spawn_on(
            inbound::accept_loop(inbound::Acceptor {
                cfg: Arc::clone(&inner.cfg),
                listener,
                routes: Arc::clone(&inner.routes),
                peers: Arc::clone(&inner.peers),
                global: Arc::clone(&inner.global),
                token: inner.token.clone(),
                tracker: inner.tracker.clone(),
            }),
            &handle,
        );
        Ok(addr)
    }

    /// Closes the listener and every connection, and waits until they are
    /// closed (so the port can be bound again at once). Later sends are
    /// refused with [`TransportError::Unreachable`].
    pub async fn shutdown(&self) {
        self.close();
        self.inner.tracker.wait().await;
    }

    /// Starts closing the listener and every connection, without waiting
    /// (for synchronous callers such as a `Drop`).
    pub fn close(&self) {
        self.inner.token.cancel();
        self.inner.tracker.close();
    }

    /// Counts per peer, and of refused or broken incoming connections.
    pub fn metrics(&self) -> TcpMetrics {
        TcpMetrics {
            peers: self
                .inner
                .peers
                .all_counters()
                .iter()
                .map(|(id, c)| (*id, c.snapshot()))
                .collect(),
            refused: self.inner.global.refused.load(Ordering::Relaxed),
            // Certificates the verifiers refused, on either side of a
            // handshake, and handshakes refused for another reason.
            tls_refused: self.inner.global.tls_refused.load(Ordering::Relaxed)
                + self.inner.cfg.tls.as_ref().map_or(0, PeerTls::refusals),
            bad_frames: self.inner.global.bad_frames.load(Ordering::Relaxed),
            other_group: self.inner.global.other_group.load(Ordering::Relaxed),
            accepted: self.inner.global.accepted.load(Ordering::Relaxed),
        }
    }

    /// Adds peer `id` at `addr`, or moves it there (a node joined the
    /// cluster, or moved). Its connection task starts at once; its counters
    /// carry over a move. This node's own id is ignored.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use raft_actors::transport::{Transport, TransportError};
    /// use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
    /// let t = TcpTransport::new(TcpConfig::new(1, 42, Default::default()))?;
    /// assert_eq!(t.send(2, vec![]), Err(TransportError::UnknownPeer(2)));
    /// t.set_peer(2, "127.0.0.1:9".parse()?);
    /// t.send(2, vec![])?;
    /// t.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        if !self.inner.token.is_cancelled() {
            self.inner.peers.set(id, addr);
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &TcpConfig {
        &self.inner.cfg
    }

    /// A sending handle for the node of Raft group `group` in this
    /// process: its batches share this transport's queues and connections
    /// (one per peer, whatever the number of groups), each tagged with the
    /// group, several per socket write.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use raft_actors::transport::Transport;
    /// use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
    /// let t = TcpTransport::new(TcpConfig::new(1, 42, [(2, "127.0.0.1:9".parse()?)].into()))?;
    /// let g7 = t.group_sender(7);
    /// assert_eq!(g7.group(), 7);
    /// g7.send(2, vec![])?; // queued on the one link to node 2
    /// t.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn group_sender(&self, group: GroupId) -> GroupSender {
        GroupSender::new(Arc::new(self.clone()), group)
    }

    /// Delivers the batches of Raft group `group` to `inbox` from now on
    /// (replacing an earlier mailbox of the group), whether or not
    /// [`serve`](Self::serve) was called yet: the node of each group a
    /// process hosts registers here. A batch of a group with no mailbox is
    /// dropped and counted ([`TcpMetrics::other_group`]).
    pub fn serve_group(&self, group: GroupId, inbox: Recipient<Peer>) {
        self.inner.routes.set(group, inbox);
    }

    /// Stops delivering Raft group `group`'s batches (its node stopped
    /// for good, or the group moved away); answers whether it was served.
    pub fn unserve_group(&self, group: GroupId) -> bool {
        self.inner.routes.remove(group)
    }
}

impl SharedTransport for TcpTransport {
    fn send_group(
        &self,
        to: NodeId,
        group: GroupId,
        messages: Vec<Message>,
    ) -> Result<(), TransportError> {
        let max = self.inner.cfg.max_batch_bytes();
        self.inner.peers.offer(to, group, messages, max)
    }
}

impl Transport for TcpTransport {
    fn send(&self, to: NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.send_group(to, self.inner.cfg.group, messages)
    }
}

impl NetworkTransport for TcpTransport {
    fn sender(&self) -> Box<dyn Transport> {
        Box::new(self.clone())
    }

    fn serve(
        &self,
        listener: std::net::TcpListener,
        inbox: Recipient<Peer>,
    ) -> Result<SocketAddr, ServeError> {
        TcpTransport::serve(self, listener, inbox).map_err(|e| match e {
            TcpError::Io(e) => ServeError::Io(e),
            TcpError::AlreadyServing => ServeError::AlreadyServing,
            e => ServeError::Other(e.to_string()),
        })
    }

    fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        TcpTransport::set_peer(self, id, addr);
    }

    fn group_sender(&self, group: GroupId) -> Box<dyn Transport> {
        Box::new(TcpTransport::group_sender(self, group))
    }

    fn serve_group(&self, group: GroupId, inbox: Recipient<Peer>) {
        TcpTransport::serve_group(self, group, inbox);
    }

    fn advertise(&self, own: SocketAddr) {
        self.inner.advertised.set(own);
    }

    fn tls_refused(&self) -> u64 {
        self.metrics().tls_refused
    }

    fn peer_metrics(&self) -> std::collections::BTreeMap<NodeId, PeerMetrics> {
        self.metrics().peers
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(TcpTransport::shutdown(self))
    }
}
