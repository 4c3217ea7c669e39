//! [`main`]: a service's whole life: flags, logs, storage, transport, the
//! Raft node, the HTTP server, and shutdown on SIGTERM or SIGINT.
//!
//! Every fallible step of start-up (a bad flag, an address in use, an
//! unreadable data dir) happens before anything is logged, and ends the
//! process with one line on stderr and a non-zero exit. It must never
//! leave the node running after the HTTP server stopped.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use raft_actors::node::{ApplyFactory, NodeConfig, Roster};
use raft_actors::{Apply, Raft};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use super::cluster;
use super::directory::{Addrs, Directory};
use super::error::{set_known_leader, ApiError};
use super::flags::Flags;
use super::machine::Machine;
use super::metrics::ServiceMetrics;
use super::network::Network;
use super::node::Node;
use super::storage::{open_storage, warn_if_peers_disagree};
use super::Service;

/// Runs service `S` with the process's command line; returns the exit code.
///
/// ```no_run
/// # use raft_service::service::Service;
/// # fn demo<S: Service>() -> std::process::ExitCode {
/// raft_service::service::main::<S>()
/// # }
/// ```
pub fn main<S: Service>() -> ExitCode {
    let flags = Flags::parse_or_exit(S::NAME);
    let start_logs = Box::new(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    });
    let system = actix_rt::System::new();
    match system.block_on(run::<S>(flags, start_logs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: error: {e:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

async fn run<S: Service>(flags: Flags, start_logs: Box<dyn FnOnce()>) -> anyhow::Result<()> {
    let raft_listener = TcpListener::bind(flags.raft_addr)
        .with_context(|| format!("cannot listen on --raft-addr {}", flags.raft_addr))?;
    let http_listener = TcpListener::bind(flags.http_addr)
        .with_context(|| format!("cannot listen on --http-addr {}", flags.http_addr))?;
    let (storage, roster) = open_storage(flags.storage, &flags.data_dir)?;
    let peers = flags
        .peers
        .as_ref()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    let network = Network::start(
        flags.transport,
        flags.id,
        flags.raft_addr,
        flags.cluster_id,
        peers,
    )
    .context("cannot start the transport")?;
    let directory = {
        let network = network.clone();
        Directory::new(Arc::new(move |id, addr| network.set_peer(id, addr)))
    };
    let apply: ApplyFactory<Machine<S>> = {
        let directory = directory.clone();
        Arc::new(move || {
            Box::new(Machine::<S>::new(directory.clone())) as Box<dyn Apply<Machine<S>>>
        })
    };
    let raft = Raft::start(
        flags.id,
        node_config(&flags, roster),
        storage,
        network.adapter(),
        apply,
    )
    .with_timeout(Duration::from_millis(flags.timeout_ms));
    network
        .serve(raft_listener, raft.addr().clone().recipient())
        .context("cannot serve the raft address")?;
    let status = match raft.status().await {
        Ok(status) => status,
        Err(e) => match raft.metrics().borrow().lost_data.clone() {
            Some(reason) => anyhow::bail!(reason),
            None => return Err(e).context("the node did not start"),
        },
    };
    let (founding, lost) = {
        let m = raft.metrics().borrow().clone();
        (m.founding, m.lost_data)
    };
    if let Some(reason) = lost {
        anyhow::bail!(reason);
    }
    if founding {
        actix_rt::spawn(logs_once_founded(raft.metrics(), start_logs));
    } else {
        start_logs();
    }
    warn_if_peers_disagree(&status.membership, flags.peers.as_ref());

    let node = web::Data::new(Node::<S> {
        raft: raft.clone(),
        directory,
        metrics: ServiceMetrics::new(),
        network: network.clone(),
        flags: flags.clone(),
    });
    actix_rt::spawn(track_leader(raft.metrics()));
    actix_rt::spawn(register_self(node.clone()));

    let app_node = node.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_node.clone())
            .configure(S::routes)
            .configure(cluster::routes::<S>)
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::not_found("no such route"))
            }))
    })
    .workers(2)
    .shutdown_timeout(5)
    .listen(http_listener)
    .context("cannot serve --http-addr")?
    .run();
    info!(
        id = flags.id,
        raft = %flags.raft_addr,
        http = %flags.http_addr,
        storage = ?flags.storage,
        transport = ?flags.transport,
        "{} started",
        S::NAME
    );
    let handle = server.handle();
    let lost = tokio::select! {
        served = server => {
            served.context("the HTTP server failed")?;
            None
        }
        reason = lost_data(raft.metrics()) => Some(reason),
    };
    if let Some(reason) = lost {
        // The node refused to start on a lost data dir: nothing to serve.
        handle.stop(false).await;
        raft.shutdown().await;
        network.shutdown().await;
        anyhow::bail!(reason);
    }
    info!("stopping: shutting the node down");
    raft.shutdown().await;
    network.shutdown().await;
    info!("stopped");
    Ok(())
}

fn node_config(flags: &Flags, roster: Roster) -> NodeConfig {
    let mut cfg = NodeConfig {
        tick: Duration::from_millis(flags.tick_ms),
        seed: flags.id,
        // An empty store is founded from --peers, once every other voter
        // recorded this node; a restarted one ignores them.
        bootstrap_voters: flags.peers.as_ref().map(|p| p.0.keys().copied().collect()),
        roster,
        ..NodeConfig::default()
    };
    cfg.core.snapshot_threshold = flags.snapshot_threshold;
    cfg.core.trailing_logs = flags.trailing_logs;
    cfg.core.lease_margin_ticks = flags.lease_margin_ticks;
    cfg
}

/// Starts the logs once the node has a store of its own (loaded, and not
/// founding one), so that a node refused for a lost data dir prints one
/// line and nothing else, like every other start-up failure.
async fn logs_once_founded(
    mut metrics: tokio::sync::watch::Receiver<raft_actors::node::Metrics>,
    start_logs: Box<dyn FnOnce()>,
) {
    loop {
        {
            let m = metrics.borrow_and_update();
            if m.lost_data.is_some() {
                return;
            }
            if m.incarnation >= 1 && !m.founding {
                break;
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
    start_logs();
    info!("logging started: this node has a store of its own");
}

/// Resolves once the node refuses to start because its data dir lost a
/// membership it held (pending forever otherwise).
async fn lost_data(
    mut metrics: tokio::sync::watch::Receiver<raft_actors::node::Metrics>,
) -> String {
    loop {
        if let Some(reason) = metrics.borrow_and_update().lost_data.clone() {
            return reason;
        }
        if metrics.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Keeps the leader named in error bodies up to date.
async fn track_leader(mut metrics: tokio::sync::watch::Receiver<raft_actors::node::Metrics>) {
    loop {
        set_known_leader(metrics.borrow_and_update().leader);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Records this node's addresses in the replicated address book once it is
/// a member, so the others (and nodes added later) can reach it, and so
/// followers can forward cluster requests to it when it leads.
async fn register_self<S: Service>(node: web::Data<Node<S>>) {
    let own = Addrs {
        raft: node.flags.raft_addr,
        http: Some(node.flags.http_addr),
    };
    let mut every = actix_rt::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        let Ok(s) = node.raft.status().await else {
            continue;
        };
        if s.membership.contains(s.id)
            && s.leader.is_some()
            && node.directory.get(s.id) != Some(own)
        {
            if let Err(e) = node.register(s.id, own).await {
                warn!(%e, "could not record this node's address yet");
            }
        }
    }
}
