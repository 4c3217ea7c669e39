//! The receiving side of the HTTP transport: the endpoint's state, the
//! client certificate kept with each TLS connection, and the handler that
//! checks a body (version, cluster, certificate, sender) before delivering
//! its batches to the node.
//!
//! It must never deliver a message whose sender was not admitted, nor
//! learn a peer whose certificate names another node.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use raft_actors_tls::rustls::pki_types::CertificateDer;
use raft_actors_tls::PeerTls;
use raft_actors_transport_tcp::admission::{admit, Claim, Rules};
use raft_actors_transport_tcp::peers::PeerTable;
use raft_actors_transport_tcp::routes::GroupRoutes;
use raft_actors_transport_tcp::PeerCounters;
use tracing::{debug, warn};

use crate::wire::{Envelope, ADVERTISE_HEADER};
use crate::HttpConfig;

pub(crate) struct Endpoint {
    pub(crate) cfg: Arc<HttpConfig>,
    pub(crate) routes: Arc<GroupRoutes>,
    pub(crate) peers: Arc<PeerTable<PeerCounters>>,
    pub(crate) refused: Arc<AtomicU64>,
    pub(crate) bad_bodies: Arc<AtomicU64>,
    pub(crate) tls_refused: Arc<AtomicU64>,
    pub(crate) other_group: Arc<AtomicU64>,
}

/// The certificate chain a TLS client presented, kept with its connection.
struct PeerChain(Vec<CertificateDer<'static>>);

/// actix-web's hook on every accepted connection: keeps the client's
/// certificate chain (empty without one) for `receive` to check.
pub(crate) fn remember_peer_chain(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    type Accepted = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Accepted>() {
        let chain = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        data.insert(PeerChain(chain));
    }
}

/// The endpoint: checks the body, then delivers its batches in order.
pub(crate) async fn receive(
    state: web::Data<Endpoint>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let node = state.cfg.id;
    let env = match Envelope::decode(&body) {
        Ok(env) => env,
        Err(e) => {
            state.bad_bodies.fetch_add(1, Ordering::Relaxed);
            warn!(node, len = body.len(), %e, "refusing a malformed request");
            return HttpResponse::BadRequest().body(e.to_string());
        }
    };
    // The TCP transport's admission rules: cluster, recipient, known or
    // learnt sender.
    let advertised = req
        .headers()
        .get(ADVERTISE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<SocketAddr>().ok());
    let rules = Rules {
        node,
        cluster_id: state.cfg.cluster_id,
        learn_peers: state.cfg.learn_peers,
    };
    let claim = Claim {
        cluster_id: env.cluster_id,
        from: env.from,
        to: env.to,
        advertised,
    };
    // The certificate first: a sender claiming another node's id must not
    // be learnt as a peer by `admit`.
    if state.cfg.tls.is_some() {
        let chain = req.conn_data::<PeerChain>().map(|c| c.0.as_slice());
        if let Err(reason) = PeerTls::check_claim(chain, env.from) {
            state.refused.fetch_add(1, Ordering::Relaxed);
            state.tls_refused.fetch_add(1, Ordering::Relaxed);
            warn!(node, from = env.from, %reason, "refusing a request: TLS");
            return HttpResponse::Forbidden().body(reason);
        }
    }
    let refusal = admit(&rules, &state.peers, claim).err();
    if let Some(reason) = refusal {
        state.refused.fetch_add(1, Ordering::Relaxed);
        warn!(node, from = env.from, %reason, "refusing a request");
        return HttpResponse::Forbidden().body(reason);
    }
    let from = env.from;
    if env
        .batches
        .iter()
        .flat_map(|b| &b.messages)
        .any(|m| m.from != from || m.to != node)
    {
        state.bad_bodies.fetch_add(1, Ordering::Relaxed);
        warn!(
            node,
            from, "refusing a request with a message not from its sender"
        );
        return HttpResponse::BadRequest().body("message not from the request's sender");
    }
    let Some(c) = state.peers.counters(from) else {
        return HttpResponse::Forbidden().finish();
    };
    PeerCounters::add(&c.bytes_received, body.len() as u64);
    PeerCounters::add(&c.frames_received, 1);
    for batch in env.batches {
        let (group, n) = (batch.group, batch.messages.len() as u64);
        match state.routes.deliver(group, batch.messages) {
            Ok(()) => PeerCounters::add(&c.messages_received, n),
            // A group not (yet) started here: dropped and counted, as a
            // crashed peer's would be. Never refused: the sender would back
            // off the whole link, every other group's batches with it.
            Err(_) => {
                if state.other_group.fetch_add(1, Ordering::Relaxed) == 0 {
                    warn!(
                        node,
                        from, group, "dropping batches of a group this node does not serve"
                    );
                } else {
                    debug!(node, from, group, "dropping a batch of a group not served");
                }
            }
        }
    }
    HttpResponse::NoContent().finish()
}
