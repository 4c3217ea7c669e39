//! Incoming connections: accept, check the handshake, then read frames and
//! deliver each batch to the node's mailbox.
//!
//! Every byte here comes from the network: with TLS, a dialler without a
//! certificate of the CA is refused at the TLS handshake, and one whose
//! certificate does not name the node it claims at ours; a wrong cluster
//! id or an unknown node is refused and logged; an oversized or malformed frame
//! closes that connection with one log line. It must never panic and never
//! deliver a message that claims another sender than the handshake's.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use raft_actors_tls::PeerTls;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::admission::{admit, Claim, Rules};
use crate::config::TcpConfig;
use crate::frame::{Frame, FrameCodec};
use crate::metrics::{Global, PeerCounters};
use crate::peers::PeerTable;
use crate::routes::GroupRoutes;
use crate::tls;

pub(crate) struct Acceptor {
    pub cfg: Arc<TcpConfig>,
    pub listener: TcpListener,
    pub routes: Arc<GroupRoutes>,
    pub peers: Arc<PeerTable<PeerCounters>>,
    pub global: Arc<Global>,
    pub token: CancellationToken,
    pub tracker: TaskTracker,
}

pub(crate) async fn accept_loop(a: Acceptor) {
    loop {
        let accepted = tokio::select! {
            _ = a.token.cancelled() => return,
            r = a.listener.accept() => r,
        };
        match accepted {
            Ok((stream, remote)) => {
                a.global.accepted.fetch_add(1, Ordering::Relaxed);
                let conn = Conn {
                    cfg: Arc::clone(&a.cfg),
                    routes: Arc::clone(&a.routes),
                    peers: Arc::clone(&a.peers),
                    global: Arc::clone(&a.global),
                    token: a.token.clone(),
                    remote,
                };
                a.tracker.spawn(conn.run(stream));
            }
            // E.g. out of file descriptors: the next accept may succeed.
            Err(e) => warn!(node = a.cfg.id, %e, "accept failed"),
        }
    }
}

struct Conn {
    cfg: Arc<TcpConfig>,
    routes: Arc<GroupRoutes>,
    peers: Arc<PeerTable<PeerCounters>>,
    global: Arc<Global>,
    token: CancellationToken,
    remote: SocketAddr,
}

impl Conn {
    async fn run(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let node = self.cfg.id;
        let remote = self.remote;
        let accepted = tokio::select! {
            _ = self.token.cancelled() => return,
            r = tokio::time::timeout(self.cfg.handshake_timeout, tls::accept(self.cfg.tls.as_ref(), stream)) => r,
        };
        let (io, chain) = match accepted {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(failure)) => {
                // No certificate, another CA's, an expired one: rustls
                // has already told the dialler with an alert.
                self.global.refused.fetch_add(1, Ordering::Relaxed);
                let reason = failure.reason;
                if failure.certificate {
                    // The verifier logged and counted it already, with its
                    // reason (`PeerTls::refusals`, part of `tls_refused`).
                    debug!(node, %remote, %reason, "refusing connection: TLS handshake failed");
                } else {
                    self.global.tls_refused.fetch_add(1, Ordering::Relaxed);
                    warn!(node, %remote, %reason, "refusing connection: TLS handshake failed");
                }
                return;
            }
            Err(_) => {
                debug!(node, %remote, "closing connection: no TLS handshake in time");
                return;
            }
        };
        let (r, mut w) = tokio::io::split(io);
        let codec = FrameCodec::new(self.cfg.max_frame_bytes);
        let mut reader = FramedRead::new(r, codec.clone());

        let hello = tokio::select! {
            _ = self.token.cancelled() => return,
            r = tokio::time::timeout(self.cfg.handshake_timeout, reader.next()) => r,
        };
        let (cluster_id, from, to, at) = match hello {
            Ok(Some(Ok(Frame::Hello {
                cluster_id,
                from,
                to,
            }))) => (cluster_id, from, to, None),
            Ok(Some(Ok(Frame::HelloAt {
                cluster_id,
                from,
                to,
                addr,
            }))) => (cluster_id, from, to, Some(addr)),
            Ok(Some(Ok(other))) => {
                self.global.bad_frames.fetch_add(1, Ordering::Relaxed);
                warn!(node, %remote, kind = frame_kind(&other), "closing connection: expected a Hello frame");
                return;
            }
            Ok(Some(Err(e))) => {
                self.global.bad_frames.fetch_add(1, Ordering::Relaxed);
                warn!(node, %remote, %e, "closing connection: bad handshake frame");
                return;
            }
            Ok(None) => return,
            Err(_) => {
                debug!(node, %remote, "closing connection: no handshake in time");
                return;
            }
        };
        let rules = Rules {
            node,
            cluster_id: self.cfg.cluster_id,
            learn_peers: self.cfg.learn_peers,
        };
        let claim = Claim {
            cluster_id,
            from,
            to,
            advertised: at,
        };
        // The certificate first: a dialler claiming another node's id must
        // not be learnt as a peer by `admit`.
        let tls_refusal = chain
            .as_deref()
            .and_then(|chain| PeerTls::check_claim(Some(chain), from).err());
        if tls_refusal.is_some() {
            self.global.tls_refused.fetch_add(1, Ordering::Relaxed);
        }
        let refusal = tls_refusal.or_else(|| admit(&rules, &self.peers, claim).err());
        let mut buf = BytesMut::new();
        if let Some(reason) = refusal {
            self.global.refused.fetch_add(1, Ordering::Relaxed);
            warn!(node, %remote, from, %reason, "refusing connection");
            if codec
                .encode_into(&Frame::Refused { reason }, &mut buf)
                .is_ok()
            {
                // Flushed: TLS may hold written bytes back until then.
                let _ = w.write_all(&buf).await;
                let _ = w.flush().await;
            }
            return;
        }
        let welcomed = codec.encode_into(&Frame::Welcome, &mut buf).is_ok()
            && w.write_all(&buf).await.is_ok()
            && w.flush().await.is_ok();
        if !welcomed {
            return;
        }
        let Some(counters) = self.peers.counters(from) else {
            return;
        };
        let mut counted = reader.decoder().decoded_bytes();
        // One line per connection for batches of groups not served: a
        // peer's groups may start before this process's do.
        let mut warned_other_group = false;
        loop {
            let next = tokio::select! {
                _ = self.token.cancelled() => return,
                n = reader.next() => n,
            };
            let decoded = reader.decoder().decoded_bytes();
            PeerCounters::add(&counters.bytes_received, decoded - counted);
            counted = decoded;
            match next {
                Some(Ok(Frame::Batch { group, messages })) => {
                    // The core checks every field, but not that a message
                    // came from whom it says: the handshake does.
                    if let Some(m) = messages.iter().find(|m| m.from != from || m.to != node) {
                        self.global.bad_frames.fetch_add(1, Ordering::Relaxed);
                        warn!(node, %remote, peer = from, claimed_from = m.from, to = m.to, "closing connection: message not from the handshake's peer");
                        return;
                    }
                    PeerCounters::add(&counters.frames_received, 1);
                    let n = messages.len() as u64;
                    match self.routes.deliver(group, messages) {
                        Ok(()) => PeerCounters::add(&counters.messages_received, n),
                        Err(_) => {
                            self.global.other_group.fetch_add(1, Ordering::Relaxed);
                            if !std::mem::replace(&mut warned_other_group, true) {
                                warn!(node, %remote, peer = from, group, "dropping batches of a group this transport does not serve");
                            } else {
                                debug!(node, %remote, peer = from, group, "dropping a batch of a group not served");
                            }
                        }
                    }
                }
                Some(Ok(other)) => {
                    self.global.bad_frames.fetch_add(1, Ordering::Relaxed);
                    // Only the kind: a frame's contents may be megabytes.
                    warn!(node, %remote, peer = from, kind = frame_kind(&other), "closing connection: unexpected frame");
                    return;
                }
                Some(Err(e)) => {
                    self.global.bad_frames.fetch_add(1, Ordering::Relaxed);
                    warn!(node, %remote, peer = from, %e, "closing connection: bad frame");
                    return;
                }
                None => {
                    debug!(node, %remote, peer = from, "peer closed the connection");
                    return;
                }
            }
        }
    }
}

fn frame_kind(f: &Frame) -> &'static str {
    match f {
        Frame::Hello { .. } => "Hello",
        Frame::HelloAt { .. } => "HelloAt",
        Frame::Welcome => "Welcome",
        Frame::Refused { .. } => "Refused",
        Frame::Batch { .. } => "Batch",
    }
}
