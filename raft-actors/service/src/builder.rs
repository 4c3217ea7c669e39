//! [`ServiceBuilder`]: one service node set up in code: id, addresses,
//! peers, data dir, storage, transport, node config, request timeout and
//! session bounds, then [`start`](ServiceBuilder::start)ed in the current
//! actix system. [`main`](crate::main) is a thin clap layer over it.
//!
//! Nothing here is process-global: any number of nodes, of one service or
//! several, of one cluster or several, can be started in one process. It
//! must never leave a node or transport running when start-up fails after
//! starting them.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use raft_actors::core::{Membership, NodeId};
use raft_actors::node::{ApplyFactory, NodeConfig, Roster};
use raft_actors::storage::{MemoryStorage, Storage};
use raft_actors::transport::NetworkTransport;
use raft_actors::{Apply, Raft};
use tracing::info;

use super::admin::{self, AdminToken};
use super::cluster;
use super::directory::Directory;
use super::error::{name_leader, ApiError};
use super::flags::{StorageKind, TransportKind};
use super::groups::{resolve_layout, start::GroupStart, start_groups, Groups, Layout};
use super::machine::Machine;
#[cfg(feature = "metrics")]
use super::metrics::ServiceMetrics;
use super::network::battery;
use super::node::{Node, Settings};
use super::node_client::NodeClient;
use super::operators;
use super::running::RunningService;
use super::security::{reload_on_hangup, Tls};
use super::sessions::SessionBounds;
pub use super::start_error::StartError;
use super::storage::{open_group_storages, open_storage, warn_if_peers_disagree, OpenError};
use super::Service;

/// Where a socket comes from: an address to bind, or a bound listener.
enum Listen {
    Addr(SocketAddr),
    Listener(TcpListener),
}

impl Listen {
    fn bind(self) -> Result<TcpListener, (SocketAddr, std::io::Error)> {
        match self {
            Listen::Addr(a) => TcpListener::bind(a).map_err(|e| (a, e)),
            Listen::Listener(l) => Ok(l),
        }
    }
}

enum StorageSpec {
    Kind(StorageKind),
    Custom(Box<dyn Storage>),
}

enum TransportSpec {
    Kind(TransportKind),
    Custom(Arc<dyn NetworkTransport>),
}

/// Sets up one node of service `S`; see the [crate docs](crate) for a
/// whole cluster.
///
/// ```no_run
/// # use raft_actors_service::{Service, ServiceBuilder};
/// # async fn demo<S: Service>() -> Result<(), raft_actors_service::StartError> {
/// let node = ServiceBuilder::<S>::new(1)
///     .raft_addr("127.0.0.1:7001".parse().unwrap())
///     .http_addr("127.0.0.1:8001".parse().unwrap())
///     .peers([(1, "127.0.0.1:7001".parse().unwrap())])
///     .data_dir("data/1")
///     .start()
///     .await?;
/// println!("serving on {}", node.http_addr());
/// node.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ServiceBuilder<S: Service> {
    id: NodeId,
    raft: Option<Listen>,
    http: Option<Listen>,
    peers: Option<BTreeMap<NodeId, SocketAddr>>,
    data_dir: Option<PathBuf>,
    storage: StorageSpec,
    transport: TransportSpec,
    cluster_id: u64,
    node: NodeConfig,
    timeout: Duration,
    sessions: SessionBounds,
    signals: bool,
    workers: usize,
    admin: Option<AdminToken>,
    tls: Tls,
    groups: u64,
    replication: u64,
    /// Groups beyond group 0 quiesce after this many idle ticks.
    quiesce_after: Option<u64>,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> ServiceBuilder<S> {
    /// Node `id` (at least 1), with the defaults: redb storage, TCP
    /// transport, cluster id 1, a 50 ms tick, a 5 s request timeout,
    /// default session bounds, two HTTP workers, no signal handling.
    pub fn new(id: NodeId) -> Self {
        ServiceBuilder {
            id,
            raft: None,
            http: None,
            peers: None,
            data_dir: None,
            storage: StorageSpec::Kind(StorageKind::Redb),
            transport: TransportSpec::Kind(TransportKind::Tcp),
            cluster_id: 1,
            node: NodeConfig {
                tick: Duration::from_millis(50),
                seed: id,
                ..NodeConfig::default()
            },
            timeout: Duration::from_secs(5),
            sessions: SessionBounds::default(),
            signals: false,
            workers: 2,
            admin: None,
            tls: Tls::plain(),
            groups: 1,
            replication: 3,
            quiesce_after: None,
            service: PhantomData,
        }
    }

    /// Where peers reach this node (bound at start).
    pub fn raft_addr(mut self, addr: SocketAddr) -> Self {
        self.raft = Some(Listen::Addr(addr));
        self
    }

    /// Receives peers' messages on an already bound listener (port 0 in
    /// tests); its address is the one advertised.
    pub fn raft_listener(mut self, listener: TcpListener) -> Self {
        self.raft = Some(Listen::Listener(listener));
        self
    }

    /// Where the client API is served (bound at start).
    pub fn http_addr(mut self, addr: SocketAddr) -> Self {
        self.http = Some(Listen::Addr(addr));
        self
    }

    /// Serves the client API on an already bound listener.
    pub fn http_listener(mut self, listener: TcpListener) -> Self {
        self.http = Some(Listen::Listener(listener));
        self
    }

    /// The initial voters by raft address, this node included; used only
    /// to bootstrap empty storage. Without it the node waits to be added.
    pub fn peers(mut self, peers: impl IntoIterator<Item = (NodeId, SocketAddr)>) -> Self {
        self.peers = Some(peers.into_iter().collect());
        self
    }

    /// Where the battery storages keep their files (created if missing),
    /// and the roster of peers that enlisted with this node (the evidence
    /// that tells a lost data dir from a new one). Required for redb;
    /// without one, the memory storage keeps its roster in memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// One of the battery storages (default redb).
    pub fn storage(mut self, kind: StorageKind) -> Self {
        self.storage = StorageSpec::Kind(kind);
        self
    }

    /// Any storage. It is used as given: bootstrapping it with the
    /// initial voters, if it is empty, is the caller's part.
    pub fn custom_storage(mut self, storage: Box<dyn Storage>) -> Self {
        self.storage = StorageSpec::Custom(storage);
        self
    }

    /// One of the battery transports (default TCP), built with the
    /// peers and this node's raft address, learning peers that advertise.
    pub fn transport(mut self, kind: TransportKind) -> Self {
        self.transport = TransportSpec::Kind(kind);
        self
    }

    /// Any transport: it is told this node's raft address
    /// ([`NetworkTransport::advertise`]) and to serve the raft listener;
    /// its peers are the caller's to configure.
    pub fn custom_transport(mut self, transport: Arc<dyn NetworkTransport>) -> Self {
        self.transport = TransportSpec::Custom(transport);
        self
    }

    /// Nodes of another cluster id are refused by the battery transports.
    pub fn cluster_id(mut self, id: u64) -> Self {
        self.cluster_id = id;
        self
    }

    /// The node's whole configuration: tick length (election timeout and
    /// heartbeat are counted in ticks: `core.election_ticks`,
    /// `core.heartbeat_ticks`), snapshot threshold, trailing logs, queue
    /// bounds.
    pub fn node_config(mut self, cfg: NodeConfig) -> Self {
        self.node = cfg;
        self
    }

    /// Changes the node configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut NodeConfig)) -> Self {
        f(&mut self.node);
        self
    }

    /// Snapshot and compact the log after this many entries applied since
    /// the last snapshot (`--snapshot-threshold`, default 10,000).
    ///
    /// ```
    /// # use raft_actors_service::{Service, ServiceBuilder};
    /// # fn demo<S: Service>() {
    /// let b = ServiceBuilder::<S>::new(1).snapshot_threshold(500).trailing_logs(50);
    /// # }
    /// ```
    pub fn snapshot_threshold(mut self, entries: u64) -> Self {
        self.node.core.snapshot_threshold = entries;
        self
    }

    /// Entries kept in the log behind a snapshot, for followers that lag
    /// (`--trailing-logs`, default 1,000).
    pub fn trailing_logs(mut self, entries: u64) -> Self {
        self.node.core.trailing_logs = entries;
        self
    }

    /// How long a client request waits before answering 504.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The session table's bounds; every node of a cluster must use the
    /// same ones.
    pub fn sessions(mut self, bounds: SessionBounds) -> Self {
        self.sessions = bounds;
        self
    }

    /// Stop on SIGTERM or SIGINT and reload the TLS files on SIGHUP (what
    /// [`main`](crate::main) does); off
    /// by default, so several nodes can share a process.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// Guards the cluster API with `token` (see [`admin`]);
    /// every node of the cluster must hold the same one.
    pub fn admin_token(mut self, token: AdminToken) -> Self {
        self.admin = Some(token);
        self
    }

    /// TLS between nodes (the battery transports; a custom transport sets
    /// up its own) and on the client API (see [`security`](crate::security)).
    /// Plain text by default.
    ///
    /// ```
    /// # use raft_actors_service::{Service, ServiceBuilder};
    /// # use raft_actors_service::security::{Tls, TlsFiles};
    /// # fn demo<S: Service>(files: TlsFiles) -> Result<(), Box<dyn std::error::Error>> {
    /// let b = ServiceBuilder::<S>::new(1).tls(Tls::load(&files)?);
    /// # Ok(()) }
    /// ```
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Spreads the service's keys over `n` Raft groups (`--groups`,
    /// default 1), each on `r` nodes (`--replication`, default 3); see
    /// [`groups`](crate::groups). Fixed when the data dir is founded: a
    /// restarted node keeps the layout it was founded with.
    ///
    /// ```
    /// # use raft_actors_service::{Service, ServiceBuilder};
    /// # fn demo<S: Service>() {
    /// let b = ServiceBuilder::<S>::new(1).groups(8, 3);
    /// # }
    /// ```
    pub fn groups(mut self, n: u64, r: u64) -> Self {
        self.groups = n;
        self.replication = r;
        self
    }

    /// Groups beyond group 0 stop their timers once idle for `ticks`
    /// (`--quiesce-after-ticks`; see
    /// [`Config::quiesce_after_ticks`](raft_actors::core::Config::quiesce_after_ticks)).
    /// Group 0 never quiesces. `None`, the default, never quiesces.
    ///
    /// ```
    /// # use raft_actors_service::{Service, ServiceBuilder};
    /// # fn demo<S: Service>() {
    /// let b = ServiceBuilder::<S>::new(1).groups(64, 3).quiesce_groups(Some(100));
    /// # }
    /// ```
    pub fn quiesce_groups(mut self, ticks: Option<u64>) -> Self {
        self.quiesce_after = ticks;
        self
    }

    /// HTTP worker threads (default 2).
    pub fn http_workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Binds, opens the storage, starts the transport, the node and the
    /// HTTP server, inside the current actix system. Every fallible step
    /// that touches the outside (addresses, data dir) comes before the node
    /// starts.
    pub async fn start(self) -> Result<RunningService<S>, StartError> {
        let id = self.id;
        let raft_listener = self
            .raft
            .ok_or(StartError::Missing("raft address"))?
            .bind()
            .map_err(|(addr, source)| StartError::RaftListen { addr, source })?;
        let http_listener = self
            .http
            .ok_or(StartError::Missing("http address"))?
            .bind()
            .map_err(|(addr, source)| StartError::HttpListen { addr, source })?;
        let local = |l: &TcpListener, addr_err: fn(SocketAddr, std::io::Error) -> StartError| {
            l.local_addr()
                .map_err(|e| addr_err(SocketAddr::from(([0, 0, 0, 0], 0)), e))
        };
        let raft_addr = local(&raft_listener, |addr, source| StartError::RaftListen {
            addr,
            source,
        })?;
        let http_addr = local(&http_listener, |addr, source| StartError::HttpListen {
            addr,
            source,
        })?;
        let tick = self.node.tick;
        let mut node_cfg = self.node;
        // An empty store is founded from the peers once every other voter
        // recorded this node; a used one ignores them.
        node_cfg.bootstrap_voters = self.peers.as_ref().map(|p| p.keys().copied().collect());
        let asked = Layout::new(
            self.groups,
            self.replication,
            node_cfg.bootstrap_voters.clone().unwrap_or_default(),
        )
        .map_err(OpenError::Layout)?;
        let (layout, unkept) = resolve_layout(self.data_dir.as_deref(), asked)?;
        let mut more_groups = Vec::new();
        let storage = match self.storage {
            StorageSpec::Custom(_) if layout.groups > 1 => {
                return Err(OpenError::OneGroupOnly("a custom storage").into())
            }
            StorageSpec::Kind(kind) if layout.groups > 1 => {
                let mut all = open_group_storages(kind, self.data_dir.as_deref(), layout.groups)?;
                more_groups = all.split_off(1);
                let (storage, roster) =
                    all.pop().ok_or(StartError::Missing("group 0's storage"))?;
                node_cfg.roster = roster;
                storage
            }
            StorageSpec::Custom(s) => {
                if let Some(dir) = &self.data_dir {
                    node_cfg.roster =
                        Roster::open(dir.join("roster")).map_err(OpenError::Roster)?;
                }
                s
            }
            // Memory storage without a data dir keeps its roster in memory
            // too: both are lost with the process.
            StorageSpec::Kind(StorageKind::Memory) if self.data_dir.is_none() => {
                Box::new(MemoryStorage::new(Membership::default()))
            }
            StorageSpec::Kind(kind) => {
                let dir = self
                    .data_dir
                    .clone()
                    .ok_or(StartError::Missing("data dir"))?;
                let (storage, roster) = open_storage(kind, &dir)?;
                node_cfg.roster = roster;
                storage
            }
        };
        // Kept only once its storage opened: a layout the storage refuses
        // (`--groups 2 --storage wal`) is not fixed by a failed start.
        if let (Some(dir), true) = (&self.data_dir, unkept) {
            layout.store(dir).map_err(OpenError::Layout)?;
        }
        let peers = self.peers.clone().unwrap_or_default();
        let network = match self.transport {
            TransportSpec::Custom(t) => {
                t.advertise(raft_addr);
                t
            }
            TransportSpec::Kind(kind) => battery(
                kind,
                id,
                raft_addr,
                self.cluster_id,
                peers.clone(),
                self.tls.peer().cloned(),
            )?,
        };
        let directory = {
            let network = Arc::clone(&network);
            Directory::new(Arc::new(move |id, addr| network.set_peer(id, addr)))
        };
        let apply: ApplyFactory<Machine<S>> = {
            let (directory, bounds) = (directory.clone(), self.sessions);
            Arc::new(move || {
                Box::new(Machine::<S>::new(directory.clone(), bounds)) as Box<dyn Apply<Machine<S>>>
            })
        };
        let mut groups_cfg = node_cfg.clone();
        groups_cfg.core.quiesce_after_ticks = self.quiesce_after;
        let raft =
            Raft::start(id, node_cfg, storage, network.sender(), apply).with_timeout(self.timeout);
        let started = async {
            network.serve(raft_listener, raft.addr().clone().recipient())?;
            let status = match raft.status().await {
                Ok(status) => status,
                Err(e) => match raft.metrics().borrow().lost_data.clone() {
                    Some(reason) => return Err(StartError::LostData(reason)),
                    None => return Err(e.into()),
                },
            };
            warn_if_peers_disagree(&status.membership, self.peers.as_ref());
            Ok::<_, StartError>(())
        };
        if let Err(e) = started.await {
            raft.shutdown().await;
            network.shutdown().await;
            return Err(e);
        }
        let (mut rafts, threads) = start_groups::<S>(
            GroupStart {
                id,
                layout: &layout,
                founding: self.peers.is_some(),
                cfg: &groups_cfg,
                network: &network,
                sessions: self.sessions,
                timeout: self.timeout,
            },
            more_groups,
        );
        rafts.insert(0, raft.clone());

        let node = web::Data::new(Node::<S> {
            raft: raft.clone(),
            directory,
            #[cfg(feature = "metrics")]
            metrics: ServiceMetrics::new(),
            network: Arc::clone(&network),
            groups: Groups::new(layout, rafts, threads),
            settings: Settings {
                timeout: self.timeout,
                tick,
                raft_addr,
                http_addr,
                peers,
                admin: self.admin.clone(),
                calls: NodeClient::new(&self.tls),
            },
        });
        let admin = self.admin.clone().map(web::Data::new);
        let app_node = node.clone();
        let mut server = HttpServer::new(move || {
            let leader_of = app_node.raft.clone();
            let mut app = App::new().app_data(app_node.clone());
            if let Some(token) = &admin {
                app = app.app_data(token.clone());
            }
            // Inside the leader-naming wrapper, so a 401 names the leader
            // like every other error.
            app.wrap(from_fn(admin::guard))
                .wrap_fn(move |req, srv| {
                    let started = std::time::Instant::now();
                    let method = req.method().clone();
                    let fut = actix_web::dev::Service::call(srv, req);
                    let raft = leader_of.clone();
                    async move {
                        let res = name_leader(fut.await?, raft.current().leader);
                        super::http::log_request(&method, &res, started.elapsed());
                        Ok(res)
                    }
                })
                .configure(S::routes)
                .configure(cluster::routes::<S>)
                .configure(operators::routes::<S>)
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::not_found("no such route"))
                }))
        })
        .workers(self.workers)
        .shutdown_timeout(5);
        if !self.signals {
            server = server.disable_signals();
        }
        let listening = match self.tls.api() {
            // Clones share the certificate resolver: a reload still applies.
            Some(api) => server.listen_rustls_0_23(http_listener, (*api.server_config()).clone()),
            None => server.listen(http_listener),
        };
        let server = match listening {
            Ok(s) => s.run(),
            Err(e) => {
                node.groups.shutdown().await;
                raft.shutdown().await;
                network.shutdown().await;
                return Err(StartError::Http(e));
            }
        };
        if self.tls.api().is_some() && self.tls.calls().is_none() {
            tracing::warn!(
                "the client API is served over TLS without --client-tls-ca or --peer-tls-ca: \
                 this node cannot verify other nodes' client API, so it cannot forward \
                 cluster changes to the leader nor ask members for /cluster/status"
            );
        }
        if self.signals {
            // Also keeps SIGHUP from ending the process (its default).
            actix_rt::spawn(reload_on_hangup(self.tls.clone()));
        }
        info!(
            id,
            raft = %raft_addr,
            http = %http_addr,
            peer_tls = self.tls.peer().is_some(),
            client_tls = self.tls.api().is_some(),
            "{} started",
            S::NAME
        );
        Ok(RunningService::new(node, server))
    }
}
