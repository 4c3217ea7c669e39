//! [`HttpTransport`]: one node's side of the HTTP network: an actix-web
//! endpoint for incoming batches, and per peer a bounded queue and a task
//! posting its batches with awc over a kept-alive connection.
//!
//! It must never block the node ([`Transport::send`] only queues), never
//! trust a body (version, cluster, sender and size are checked before
//! anything is delivered), and never hold more than the bounded queues.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use raft_actors::core::{GroupId, Message, NodeId, DEFAULT_GROUP};
use raft_actors::transport::Peer;
use raft_actors::transport::{
    GroupSender, LaneReceiver, NetworkTransport, ServeError, SharedTransport, Transport,
    TransportError,
};
use raft_actors_tls::PeerTls;
use raft_actors_transport_tcp::admission::Advertised;
use raft_actors_transport_tcp::peers::{PeerTable, SpawnLink};
use raft_actors_transport_tcp::routes::GroupRoutes;
use raft_actors_transport_tcp::{Backoff, PeerCounters, PeerMetrics};
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::endpoint::{receive, remember_peer_chain, Endpoint};
use crate::wire::{Envelope, ADVERTISE_HEADER, PATH};

/// Settings of one node's HTTP transport.
///
/// ```
/// use raft_actors_transport_http::HttpConfig;
/// let cfg = HttpConfig::new(1, 42, [(2, "127.0.0.1:8002".parse().unwrap())].into());
/// assert_eq!(cfg.max_body_bytes, 16 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// This node.
    pub id: NodeId,
    /// Requests from another cluster are refused (403).
    pub cluster_id: u64,
    /// Where each peer's endpoint listens; only these may send to this
    /// node, and only these may be sent to.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The largest body accepted or sent; larger is refused with 413
    /// before it is read.
    pub max_body_bytes: usize,
    /// Batches queued per peer; beyond it sends are dropped and counted.
    pub queue_capacity: usize,
    /// At most this many queued batches go in one request.
    pub max_batches_per_request: usize,
    /// First delay after a failed request; doubles, with jitter.
    pub backoff_min: Duration,
    /// Largest delay after failed requests.
    pub backoff_max: Duration,
    /// Deadline of one request.
    pub request_timeout: Duration,
    /// This node's own endpoint address, sent with every request (header
    /// [`ADVERTISE_HEADER`](crate::wire::ADVERTISE_HEADER)) so that a peer
    /// with [`learn_peers`](Self::learn_peers) can learn it.
    pub advertise: Option<SocketAddr>,
    /// Learn a sender missing from [`peers`](Self::peers) from the
    /// address its request advertises (the cluster id still checked): how
    /// a node joining a running cluster is reached before anyone knew it.
    pub learn_peers: bool,
    /// Seeds the backoff jitter.
    pub seed: u64,
    /// Mutual TLS (HTTPS both ways, [`PeerTls`]): a request is posted to
    /// `https://node-<peer>` at the peer's address, so the peer's
    /// certificate must name `node-<peer>`; a request is accepted only if
    /// its client certificate chains to the CA and names the sender its
    /// envelope claims (otherwise 403, logged, counted in
    /// [`HttpMetrics::tls_refused`](crate::HttpMetrics::tls_refused)). `None`: plain HTTP.
    pub tls: Option<PeerTls>,
    /// Which Raft group this handle sends for and
    /// [`serve`](crate::HttpTransport::serve) delivers (0 for one group);
    /// more groups come with
    /// [`group_sender`](crate::HttpTransport::group_sender) and
    /// [`serve_group`](crate::HttpTransport::serve_group). A group nobody
    /// serves here has its batches dropped, counted in
    /// [`HttpMetrics::other_group`](crate::HttpMetrics::other_group).
    pub group: GroupId,
}

impl HttpConfig {
    /// Defaults for node `id` of cluster `cluster_id`.
    pub fn new(id: NodeId, cluster_id: u64, peers: BTreeMap<NodeId, SocketAddr>) -> Self {
        HttpConfig {
            id,
            cluster_id,
            peers,
            max_body_bytes: 16 << 20,
            queue_capacity: 1024,
            max_batches_per_request: 64,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            advertise: None,
            learn_peers: false,
            seed: 0,
            tls: None,
            group: DEFAULT_GROUP,
        }
    }

    /// The largest batch `estimated_size` may report.
    pub fn max_batch_bytes(&self) -> usize {
        self.max_body_bytes.saturating_sub(64)
    }
}

/// Why the transport could not start.
#[derive(Debug, Error)]
pub enum HttpError {
    /// Socket setup failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// [`HttpTransport::serve`] was already called.
    #[error("already serving")]
    AlreadyServing,
}

/// Counts of one transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpMetrics {
    /// Per peer.
    pub peers: BTreeMap<NodeId, PeerMetrics>,
    /// Requests refused: wrong cluster, unknown sender, wrong recipient.
    pub refused: u64,
    /// Requests refused for a malformed or oversized body.
    pub bad_bodies: u64,
    /// Refused by TLS: a request without a client certificate or with one
    /// naming another node than its sender, and certificates refused at a
    /// handshake in either direction (another CA's, expired).
    pub tls_refused: u64,
    /// Batches received for a Raft group with no mailbox here, dropped.
    pub other_group: u64,
}

/// Node `cfg.id`'s HTTP transport. Clones are handles to the same one.
///
/// ```
/// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_actors::transport::{Transport, TransportError};
/// use raft_actors_transport_http::{HttpConfig, HttpTransport};
/// let t = HttpTransport::new(HttpConfig::new(1, 42, [(2, "127.0.0.1:9".parse()?)].into()));
/// assert_eq!(t.send(3, vec![]), Err(TransportError::UnknownPeer(3)));
/// t.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: Arc<HttpConfig>,
    peers: Arc<PeerTable<PeerCounters>>,
    refused: Arc<AtomicU64>,
    bad_bodies: Arc<AtomicU64>,
    tls_refused: Arc<AtomicU64>,
    other_group: Arc<AtomicU64>,
    routes: Arc<GroupRoutes>,
    advertised: Advertised,
    token: CancellationToken,
    tracker: TaskTracker,
    serving: AtomicBool,
    server: Mutex<Option<ServerHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some(h) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // Stopping is async; dropping the future would not stop it.
            actix_rt::spawn(async move { h.stop(false).await });
        }
    }
}

impl HttpTransport {
    /// Starts one sending task per peer on the current actix arbiter
    /// (awc's client is bound to its thread). Nothing is received until
    /// [`serve`](Self::serve).
    ///
    /// # Panics
    /// Outside an actix system (a caller's setup mistake).
    pub fn new(cfg: HttpConfig) -> Self {
        let cfg = Arc::new(cfg);
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let advertised = Advertised::new(cfg.advertise);
        // awc's client is bound to its thread: every sending task runs on
        // this arbiter, whichever thread adds the peer (queued even from
        // this thread; the task starts once the caller yields, with its
        // messages already queued).
        let spawn: SpawnLink<PeerCounters> = {
            let arbiter = actix_rt::Arbiter::current();
            let (cfg, token, tracker) = (Arc::clone(&cfg), token.clone(), tracker.clone());
            let advertised = advertised.clone();
            Box::new(move |peer, addr, rx, counters| {
                let (cfg, token, tracker) = (Arc::clone(&cfg), token.clone(), tracker.clone());
                let link = Link {
                    cfg,
                    peer,
                    addr,
                    rx,
                    counters,
                    advertised: advertised.clone(),
                    token,
                };
                arbiter.spawn_fn(move || {
                    tracker.spawn_local(post_loop(link));
                });
            })
        };
        let peers = Arc::new(PeerTable::new(cfg.id, cfg.queue_capacity, spawn));
        for (&peer, &addr) in &cfg.peers {
            peers.set(peer, addr);
        }
        HttpTransport {
            inner: Arc::new(Inner {
                cfg,
                peers,
                refused: Arc::default(),
                bad_bodies: Arc::default(),
                tls_refused: Arc::default(),
                other_group: Arc::default(),
                routes: Arc::default(),
                advertised,
                token,
                tracker,
                serving: AtomicBool::new(false),
                server: Mutex::new(None),
            }),
        }
    }

    /// Serves the endpoint on `listener` (one worker thread, keep-alive
    /// on), delivering each batch of group [`HttpConfig::group`] to `inbox`
    /// as one [`Peer`] message (and those of each group given to
    /// [`serve_group`](Self::serve_group) to its mailbox).
    pub fn serve(
        &self,
        listener: std::net::TcpListener,
        inbox: Recipient<Peer>,
    ) -> Result<SocketAddr, HttpError> {
        if self.inner.serving.swap(true, Ordering::SeqCst) {
            return Err(HttpError::AlreadyServing);
        }
        let addr = listener.local_addr()?;
        let state = web::Data::new(Endpoint {
            cfg: Arc::clone(&self.inner.cfg),
            routes: Arc::clone(&self.inner.routes),
            peers: Arc::clone(&self.inner.peers),
            refused: Arc::clone(&self.inner.refused),
            bad_bodies: Arc::clone(&self.inner.bad_bodies),
            tls_refused: Arc::clone(&self.inner.tls_refused),
            other_group: Arc::clone(&self.inner.other_group),
        });
        let max = self.inner.cfg.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                // Checked on Content-Length before the body is read, and
                // while reading a chunked one: never buffer past it.
                .app_data(web::PayloadConfig::new(max))
                .route(PATH, web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0);
        let server = match &self.inner.cfg.tls {
            None => server.listen(listener)?,
            // A client without a certificate completes the handshake and
            // is refused by `receive`, with a 403, a line and a count.
            Some(tls) => server
                .on_connect(remember_peer_chain)
                .listen_rustls_0_23(listener, (*tls.server_config_asking()).clone())?,
        }
        .run();
        // Only once serving cannot fail: a failed `serve` leaves the
        // group's mailbox as it was.
        self.inner.routes.set(self.inner.cfg.group, inbox);
        *self.inner.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server.handle());
        actix_rt::spawn(server);
        Ok(addr)
    }

    /// Stops the endpoint and the sending tasks, and waits until the port
    /// is free.
    pub async fn shutdown(&self) {
        self.inner.token.cancel();
        self.inner.tracker.close();
        let handle = self
            .inner
            .server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            h.stop(false).await;
        }
        self.inner.tracker.wait().await;
    }

    /// Starts stopping, without waiting.
    pub fn close(&self) {
        self.inner.token.cancel();
        self.inner.tracker.close();
        let handle = self
            .inner
            .server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            actix_rt::spawn(async move { h.stop(false).await });
        }
    }

    /// Counts per peer, and of refused requests.
    pub fn metrics(&self) -> HttpMetrics {
        HttpMetrics {
            peers: self
                .inner
                .peers
                .all_counters()
                .iter()
                .map(|(id, c)| (*id, c.snapshot()))
                .collect(),
            refused: self.inner.refused.load(Ordering::Relaxed),
            bad_bodies: self.inner.bad_bodies.load(Ordering::Relaxed),
            tls_refused: self.inner.tls_refused.load(Ordering::Relaxed)
                + self.inner.cfg.tls.as_ref().map_or(0, PeerTls::refusals),
            other_group: self.inner.other_group.load(Ordering::Relaxed),
        }
    }
}

impl HttpTransport {
    /// Adds peer `id` at `addr`, or moves it there (a node joined the
    /// cluster, or moved); callable from any thread. Its sending task
    /// starts on the transport's arbiter; its counters carry over a move.
    /// This node's own id is ignored.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use raft_actors::transport::{Transport, TransportError};
    /// use raft_actors_transport_http::{HttpConfig, HttpTransport};
    /// let t = HttpTransport::new(HttpConfig::new(1, 42, Default::default()));
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

    /// A sending handle for the node of Raft group `group` in this
    /// process: its batches share this transport's queues, and one
    /// request carries the batches of every group queued for a peer.
    pub fn group_sender(&self, group: GroupId) -> GroupSender {
        GroupSender::new(Arc::new(self.clone()), group)
    }

    /// Delivers the batches of Raft group `group` to `inbox` from now on
    /// (replacing an earlier mailbox of the group). Batches of a group
    /// with no mailbox are dropped and counted
    /// ([`HttpMetrics::other_group`]); the request is still answered 204,
    /// so the sender never backs off its link (and every other group's
    /// batches) for a group not started here yet.
    pub fn serve_group(&self, group: GroupId, inbox: Recipient<Peer>) {
        self.inner.routes.set(group, inbox);
    }
}

impl SharedTransport for HttpTransport {
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

impl Transport for HttpTransport {
    fn send(&self, to: NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.send_group(to, self.inner.cfg.group, messages)
    }
}

/// What one peer's sending task owns.
struct Link {
    cfg: Arc<HttpConfig>,
    peer: NodeId,
    addr: SocketAddr,
    rx: LaneReceiver,
    counters: Arc<PeerCounters>,
    advertised: Advertised,
    token: CancellationToken,
}

/// Posts one peer's queued batches, one request at a time so each lane
/// arrives in order; after a failure, backs off with jitter.
async fn post_loop(link: Link) {
    let Link {
        cfg,
        peer,
        addr,
        mut rx,
        counters,
        advertised,
        token,
    } = link;
    // awc's connector pools and keeps connections alive. With TLS the URL
    // names the peer (`node-<id>`, what its certificate must name) and the
    // request goes to its address.
    let (client, url) = match &cfg.tls {
        None => (
            awc::Client::builder().timeout(cfg.request_timeout).finish(),
            format!("http://{addr}{PATH}"),
        ),
        Some(tls) => (
            awc::Client::builder()
                .connector(awc::Connector::new().rustls_0_23(tls.client_config()))
                .timeout(cfg.request_timeout)
                .finish(),
            format!("https://{}{PATH}", raft_actors_tls::node_name(peer)),
        ),
    };
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max, cfg.seed ^ peer);
    let mut failing = false;
    loop {
        // Heartbeats and appends first, then at most one snapshot chunk.
        let batches = tokio::select! {
            _ = token.cancelled() => return,
            b = rx.next_write(cfg.max_batches_per_request) => match b { Some(b) => b, None => return },
        };
        let n: u64 = batches.iter().map(|b| b.messages.len() as u64).sum();
        let env = Envelope {
            cluster_id: cfg.cluster_id,
            from: cfg.id,
            to: peer,
            batches,
        };
        let body = match env.encode() {
            Ok(b) if b.len() <= cfg.max_body_bytes => b,
            Ok(b) => {
                warn!(
                    node = cfg.id,
                    peer,
                    len = b.len(),
                    "dropping a request over the body limit"
                );
                PeerCounters::add(&counters.drops, n);
                continue;
            }
            Err(e) => {
                warn!(node = cfg.id, peer, %e, "dropping unencodable batches");
                PeerCounters::add(&counters.drops, n);
                continue;
            }
        };
        let len = body.len() as u64;
        let sent = tokio::select! {
            _ = token.cancelled() => return,
            r = {
                let mut req = client
                    .post(&url)
                    .address(addr)
                    .content_type("application/octet-stream");
                if let Some(a) = advertised.get() {
                    req = req.insert_header((ADVERTISE_HEADER, a.to_string()));
                }
                req.send_body(body)
            } => r,
        };
        let failure = match sent {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => Some(format!("refused with {}", resp.status())),
            Err(e) => Some(e.to_string()),
        };
        match failure {
            None => {
                PeerCounters::add(&counters.bytes_sent, len);
                PeerCounters::add(&counters.messages_sent, n);
                PeerCounters::add(&counters.frames_sent, 1);
                if failing {
                    PeerCounters::add(&counters.reconnects, 1);
                    failing = false;
                }
                backoff.reset();
            }
            Some(why) => {
                debug!(node = cfg.id, peer, %why, "request failed; backing off");
                PeerCounters::add(&counters.drops, n);
                failing = true;
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
}

impl NetworkTransport for HttpTransport {
    fn sender(&self) -> Box<dyn Transport> {
        Box::new(self.clone())
    }

    fn serve(
        &self,
        listener: std::net::TcpListener,
        inbox: Recipient<Peer>,
    ) -> Result<SocketAddr, ServeError> {
        HttpTransport::serve(self, listener, inbox).map_err(|e| match e {
            HttpError::Io(e) => ServeError::Io(e),
            HttpError::AlreadyServing => ServeError::AlreadyServing,
        })
    }

    fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        HttpTransport::set_peer(self, id, addr);
    }

    fn group_sender(&self, group: GroupId) -> Box<dyn Transport> {
        Box::new(HttpTransport::group_sender(self, group))
    }

    fn serve_group(&self, group: GroupId, inbox: Recipient<Peer>) {
        HttpTransport::serve_group(self, group, inbox);
    }

    fn advertise(&self, own: SocketAddr) {
        self.inner.advertised.set(own);
    }

    fn tls_refused(&self) -> u64 {
        self.metrics().tls_refused
    }

    fn peer_metrics(&self) -> BTreeMap<NodeId, PeerMetrics> {
        self.metrics().peers
    }

    fn shutdown(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(HttpTransport::shutdown(self))
    }
}
