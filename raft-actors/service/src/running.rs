//! [`RunningService`]: one started service node: its addresses, its
//! [`Node`], and its end (a requested shutdown, or the HTTP server stopping
//! on a signal), after which the node and its transport are shut down.
//!
//! It also keeps this node's entry in the replicated address book: once the
//! node is a member that knows a leader (told by its metrics watch) and the
//! book lacks its addresses, it records them. It must never leave the node
//! running after the HTTP server stopped.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use backon::{BackoffBuilder, ExponentialBuilder};
use tracing::{info, warn};

use super::directory::Addrs;
use super::node::Node;
use super::Service;

/// A started node of service `S`. Dropping it leaves the node running
/// until the actix system ends; [`shutdown`](Self::shutdown) stops it.
pub struct RunningService<S: Service> {
    node: web::Data<Node<S>>,
    handle: ServerHandle,
    server: actix_rt::task::JoinHandle<std::io::Result<()>>,
    registrar: actix_rt::task::JoinHandle<()>,
    /// The groups' leader balancers (`--groups` above 1).
    balancers: Vec<actix_rt::task::JoinHandle<()>>,
}

impl<S: Service> RunningService<S> {
    pub(crate) fn new(node: web::Data<Node<S>>, server: Server) -> Self {
        let handle = server.handle();
        let registrar = actix_rt::spawn(register_self(node.clone()));
        let balancers = crate::groups::balance::spawn_all(&node);
        RunningService {
            balancers,
            node,
            handle,
            server: actix_rt::spawn(server),
            registrar,
        }
    }

    /// Where peers reach this node.
    pub fn raft_addr(&self) -> SocketAddr {
        self.node.settings.raft_addr
    }

    /// Where clients reach this node.
    pub fn http_addr(&self) -> SocketAddr {
        self.node.settings.http_addr
    }

    /// The node, as routes see it.
    pub fn node(&self) -> &Node<S> {
        &self.node
    }

    /// Stops serving (finishing in-flight requests, at most 5 s), then the
    /// node and its transport.
    pub async fn shutdown(self) {
        self.handle.stop(true).await;
        let _ = self.finish(None).await;
    }

    /// Waits until the HTTP server stops (on SIGTERM or SIGINT when the
    /// builder handles signals), then shuts the node and its transport
    /// down. A node that refuses to start because its data dir was lost
    /// (its metrics' `lost_data`), or that failed for good (`failed`: its
    /// storage failed a write or a load past its restart budget), stops
    /// serving too, with that line as the error: the binary exits 1, and
    /// a restart reopens the storage from what is durable.
    pub async fn stopped(mut self) -> std::io::Result<()> {
        let lost = tokio::select! {
            served = &mut self.server => return self.finish(Some(served)).await,
            reason = must_exit(self.node.raft.metrics()) => reason,
        };
        self.handle.stop(false).await;
        self.finish(None).await?;
        Err(std::io::Error::other(lost))
    }

    /// Whether the node is still founding its empty store: asking its
    /// voters, with nothing of its own yet.
    pub fn founding(&self) -> bool {
        self.node.raft.metrics().borrow().founding
    }

    async fn finish(
        self,
        served: Option<Result<std::io::Result<()>, actix_rt::task::JoinError>>,
    ) -> std::io::Result<()> {
        let served = match served {
            Some(r) => r,
            None => self.server.await,
        };
        let served = match served {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        self.registrar.abort();
        for b in &self.balancers {
            b.abort();
        }
        info!("stopping: shutting the node down");
        self.node.groups.shutdown().await;
        self.node.raft.shutdown().await;
        self.node.network.shutdown().await;
        info!("stopped");
        served
    }
}

/// Resolves with the reason once the node refuses to start on a lost data
/// dir or fails for good; pending forever otherwise.
async fn must_exit(
    mut metrics: tokio::sync::watch::Receiver<raft_actors::node::Metrics>,
) -> String {
    match metrics
        .wait_for(|m| m.lost_data.is_some() || m.failed.is_some())
        .await
    {
        Ok(m) => match (&m.lost_data, &m.failed) {
            (Some(lost), _) => lost.clone(),
            (None, failed) => format!(
                "the node failed for good: {}; restart the process to recover from what its storage holds",
                failed.clone().unwrap_or_default()
            ),
        },
        Err(_) => std::future::pending().await,
    }
}

/// Records this node's addresses in the replicated address book once it is
/// a member that knows a leader, so the others (and nodes added later) can
/// reach it, and so followers can forward cluster requests to it when it
/// leads. Woken by the metrics watch and the book's changes; a failed
/// record (no leader yet, a timeout) is retried after a backoff, or sooner
/// when the node's state changes.
async fn register_self<S: Service>(node: web::Data<Node<S>>) {
    let own = Addrs {
        raft: node.settings.raft_addr,
        http: Some(node.settings.http_addr),
    };
    let mut watch = node.raft.metrics();
    let fresh = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut delays = fresh();
    loop {
        let ready = watch
            .wait_for(|m| m.down.is_none() && m.leader.is_some() && m.membership.contains(m.id))
            .await
            .map(|m| (m.id, m.term, m.leader));
        let Ok((id, term, leader)) = ready else {
            return; // the node is gone
        };
        if node.directory.get(id) == Some(own) {
            // Recorded; look again if the book changes (a restore).
            node.directory.changed().await;
            continue;
        }
        match node.register(id, own).await {
            Ok(()) => delays = fresh(),
            Err(e) => {
                warn!(%e, "could not record this node's address yet");
                // Sooner if leadership moves: the new leader may take it.
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                let moved = watch.wait_for(|m| (m.term, m.leader) != (term, leader));
                let _ = tokio::time::timeout(delay, moved).await;
            }
        }
    }
}
