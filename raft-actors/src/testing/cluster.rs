//! [`TestCluster`]: N actor nodes over the memory storage and, by default,
//! the memory network (or any [`ClusterNetwork`], e.g. TCP on loopback),
//! around the user's own [`Apply`], with fault control ([`NetworkFaults`],
//! the same on every transport) and waits on conditions.
//!
//! Waits poll the nodes' published metrics until a deadline; they never
//! sleep a fixed time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::Recipient;
use thiserror::Error;

use crate::apply::Apply;
use crate::core::{LogIndex, Membership, NodeId, Role};
use crate::error::ClientError;
use crate::node::messages::internal::{InjectFault, Stall};
use crate::node::{ApplyFactory, Metrics, NodeConfig};
use crate::raft::Raft;
use crate::storage::{MemoryStorage, Storage};
use crate::testing::NetworkFaults;
use crate::transport::Peer;
use crate::transport::{MemoryNetwork, Transport};
use crate::type_config::TypeConfig;

/// Why a cluster operation failed.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// A wait's condition did not hold before its deadline.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// A client request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Settings of a cluster before its state machine is chosen.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    size: u64,
    cfg: NodeConfig,
    seed: u64,
    timeout: Duration,
}

/// A cluster builder with its state machine.
pub struct TypedBuilder<C: TypeConfig> {
    base: ClusterBuilder,
    apply: ApplyFactory<C>,
    network: Option<Box<dyn ClusterNetwork>>,
    faults: Option<Arc<dyn NetworkFaults>>,
    storage: Option<StorageFactory>,
}

/// Opens node `id`'s storage for a new cluster of `membership`.
type StorageFactory = Box<dyn Fn(NodeId, &Membership) -> Box<dyn Storage> + Send>;

/// How a test cluster's nodes reach each other: the memory network by
/// default, or any adapter (TCP, HTTP) behind this trait, so one test body
/// runs over every transport.
///
/// ```
/// use raft_actors::testing::ClusterNetwork;
/// use raft_actors::transport::MemoryNetwork;
/// let mut net = MemoryNetwork::new(1);
/// // Called by the cluster kit: a transport per node, then `register`.
/// let _t1 = ClusterNetwork::transport(&mut net, 1, &[1, 2, 3]);
/// ```
pub trait ClusterNetwork: Send + 'static {
    /// Node `id`'s transport, made before the node starts; `ids` are all
    /// the cluster's nodes.
    fn transport(&mut self, id: NodeId, ids: &[NodeId]) -> Box<dyn Transport>;
    /// From now on, what others send to `id` arrives at `mailbox`.
    fn register(&mut self, id: NodeId, mailbox: Recipient<Peer>);
    /// Stops delivering to `id`, and closes its connections, so the
    /// cluster's actors and tasks can end.
    fn unregister(&mut self, id: NodeId);
}

impl ClusterNetwork for MemoryNetwork {
    fn transport(&mut self, id: NodeId, _ids: &[NodeId]) -> Box<dyn Transport> {
        Box::new(MemoryNetwork::transport(self, id))
    }
    fn register(&mut self, id: NodeId, mailbox: Recipient<Peer>) {
        MemoryNetwork::register(self, id, mailbox);
    }
    fn unregister(&mut self, id: NodeId) {
        MemoryNetwork::unregister(self, id);
    }
}

/// How often the waits look at the metrics.
const POLL: Duration = Duration::from_millis(2);

/// An in-process cluster for tests.
pub struct TestCluster<C: TypeConfig> {
    nodes: BTreeMap<NodeId, Raft<C>>,
    storages: BTreeMap<NodeId, MemoryStorage>,
    /// The memory network, when the cluster runs on it.
    memory: Option<MemoryNetwork>,
    /// What [`faults`](Self::faults) controls.
    faults: Option<Arc<dyn NetworkFaults>>,
    network: Mutex<Box<dyn ClusterNetwork>>,
}

impl TestCluster<crate::testing::Kv> {
    /// Starts building a cluster of `size` nodes (ids `1..=size`) over the
    /// memory storage and the memory network.
    pub fn memory(size: u64) -> ClusterBuilder {
        ClusterBuilder {
            size,
            cfg: NodeConfig::default(),
            seed: 0,
            timeout: Duration::from_secs(5),
        }
    }
}

impl ClusterBuilder {
    /// Seeds the network's faults and the nodes' election timers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the nodes' settings.
    pub fn config(mut self, cfg: NodeConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// Sets the client request deadline of every handle.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Chooses the state machine: `new` builds one per node (and again for
    /// a node restarted after a crash).
    pub fn apply<C, A>(self, new: impl Fn() -> A + Send + Sync + 'static) -> TypedBuilder<C>
    where
        C: TypeConfig,
        A: Apply<C>,
    {
        TypedBuilder {
            base: self,
            apply: Arc::new(move || Box::new(new()) as Box<dyn Apply<C>>),
            network: None,
            faults: None,
            storage: None,
        }
    }
}

impl<C: TypeConfig> TypedBuilder<C> {
    /// Runs the nodes over `network` instead of the memory network (then
    /// [`TestCluster::net`] is not available: attach the network's fault
    /// control with [`faults`](Self::faults), or use its own controls).
    pub fn network(mut self, network: impl ClusterNetwork) -> Self {
        self.network = Some(Box::new(network));
        self
    }

    /// Makes `faults` what [`TestCluster::faults`] controls: e.g. the
    /// [`ProxyMesh`](crate::testing::ProxyMesh) that `network`'s links
    /// run through. Over the memory network, the network itself is
    /// attached unless this is called.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() {
    /// use raft_actors::testing::{Kv, TestCluster};
    /// use raft_actors::transport::MemoryNetwork;
    /// let net = MemoryNetwork::new(1);
    /// let c = TestCluster::memory(3)
    ///     .apply(Kv::default)
    ///     .network(net.clone())
    ///     .faults(net.clone())
    ///     .start()
    ///     .await
    ///     .expect("cluster starts");
    /// c.faults().isolate(1);
    /// assert!(net.is_blocked(1, 2));
    /// # }
    /// ```
    pub fn faults(mut self, faults: impl NetworkFaults) -> Self {
        self.faults = Some(Arc::new(faults));
        self
    }

    /// Replaces the state machine, keeping the network, faults and
    /// storage: a test body given a builder for one state machine can run
    /// its cluster with another.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() {
    /// use raft_actors::testing::{Kv, TestCluster};
    /// use raft_actors::{core::LogIndex, Apply, TypeConfig};
    /// #[derive(Debug, Default)]
    /// struct Sum(i64);
    /// impl TypeConfig for Sum {
    ///     type Command = i64;
    ///     type Output = i64;
    ///     type Query = ();
    ///     type QueryAnswer = i64;
    ///     type Snapshot = i64;
    /// }
    /// impl Apply<Sum> for Sum {
    ///     fn apply(&mut self, _: LogIndex, n: i64) -> i64 { self.0 += n; self.0 }
    ///     fn query(&self, _: ()) -> i64 { self.0 }
    ///     fn snapshot(&self) -> i64 { self.0 }
    ///     fn restore(&mut self, s: i64) { self.0 = s }
    /// }
    /// let kv = TestCluster::memory(3).seed(1).apply(Kv::default);
    /// let c = kv.apply(Sum::default).start().await.expect("cluster starts");
    /// let leader = c.wait_for_leader(std::time::Duration::from_secs(10)).await.expect("leader");
    /// assert_eq!(c.raft(leader).propose(2).await.expect("write").output, 2);
    /// # }
    /// ```
    pub fn apply<D, A>(self, new: impl Fn() -> A + Send + Sync + 'static) -> TypedBuilder<D>
    where
        D: TypeConfig,
        A: Apply<D>,
    {
        TypedBuilder {
            base: self.base,
            apply: Arc::new(move || Box::new(new()) as Box<dyn Apply<D>>),
            network: self.network,
            faults: self.faults,
            storage: self.storage,
        }
    }

    /// Stores each node's log with `open(id, membership)` instead of the
    /// memory storage (then [`TestCluster::storage`] is not available),
    /// e.g. a durable adapter in temporary directories.
    pub fn storage(
        mut self,
        open: impl Fn(NodeId, &Membership) -> Box<dyn Storage> + Send + 'static,
    ) -> Self {
        self.storage = Some(Box::new(open));
        self
    }

    /// Starts every node on the current arbiter.
    pub async fn start(self) -> Result<TestCluster<C>, ClusterError> {
        let ClusterBuilder {
            size,
            cfg,
            seed,
            timeout,
        } = self.base;
        let (memory, mut network) = match self.network {
            Some(n) => (None, n),
            None => {
                let net = MemoryNetwork::new(seed);
                (Some(net.clone()), Box::new(net) as Box<dyn ClusterNetwork>)
            }
        };
        let faults = self.faults.or_else(|| {
            memory
                .clone()
                .map(|net| Arc::new(net) as Arc<dyn NetworkFaults>)
        });
        let ids: Vec<NodeId> = (1..=size).collect();
        let membership = Membership::voters(1..=size);
        let mut nodes = BTreeMap::new();
        let mut storages = BTreeMap::new();
        for &id in &ids {
            let storage: Box<dyn Storage> = match &self.storage {
                Some(open) => open(id, &membership),
                None => {
                    let memory = MemoryStorage::new(membership.clone());
                    storages.insert(id, memory.clone());
                    Box::new(memory)
                }
            };
            let cfg = NodeConfig {
                seed,
                ..cfg.clone()
            };
            let raft = Raft::start(
                id,
                cfg,
                storage,
                network.transport(id, &ids),
                Arc::clone(&self.apply),
            )
            .with_timeout(timeout);
            network.register(id, raft.addr().clone().recipient());
            nodes.insert(id, raft);
        }
        Ok(TestCluster {
            nodes,
            storages,
            memory,
            faults,
            network: Mutex::new(network),
        })
    }
}

impl<C: TypeConfig> TestCluster<C> {
    /// The node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The handle to node `id`.
    ///
    /// # Panics
    /// If there is no such node: a test's own mistake.
    pub fn raft(&self, id: NodeId) -> &Raft<C> {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    /// The network's fault control, the same calls on every transport:
    /// the memory network by default, or what [`TypedBuilder::faults`]
    /// attached.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() {
    /// use raft_actors::testing::{Kv, TestCluster};
    /// use std::time::Duration;
    /// let c = TestCluster::memory(3).seed(1).apply(Kv::default).start().await.expect("cluster starts");
    /// let old = c.wait_for_leader(Duration::from_secs(10)).await.expect("leader");
    /// c.faults().isolate(old);
    /// let new = c.wait_for_leader_except(&[old], Duration::from_secs(10)).await.expect("new leader");
    /// assert_ne!(new, old);
    /// c.faults().heal();
    /// # }
    /// ```
    ///
    /// # Panics
    /// If the cluster runs over another [`ClusterNetwork`] and none was
    /// attached: a test's own mistake.
    pub fn faults(&self) -> &dyn NetworkFaults {
        self.faults
            .as_deref()
            .expect("no fault control attached: use TypedBuilder::faults")
    }

    /// The memory network, for what only it can do: duplication,
    /// reordering, per-link faults, its counters. Prefer
    /// [`faults`](Self::faults), which every transport has.
    ///
    /// # Panics
    /// If the cluster runs over another [`ClusterNetwork`]: a test's own
    /// mistake.
    pub fn net(&self) -> &MemoryNetwork {
        self.memory
            .as_ref()
            .expect("this cluster does not run on the memory network")
    }

    /// Node `id`'s storage (shared with the node).
    ///
    /// # Panics
    /// If the cluster was built with [`TypedBuilder::storage`]: a test's
    /// own mistake.
    pub fn storage(&self, id: NodeId) -> &MemoryStorage {
        self.storages
            .get(&id)
            .unwrap_or_else(|| panic!("node {id} does not run on the memory storage"))
    }

    /// Every node's metrics as last published.
    pub fn metrics(&self) -> BTreeMap<NodeId, Metrics> {
        self.nodes
            .iter()
            .map(|(id, r)| (*id, r.current()))
            .collect()
    }

    /// Crashes node `id`: it loses its core, pending requests and state
    /// machine, keeps its storage, and stays down until
    /// [`restart`](Self::restart). Returns once it is down.
    pub async fn crash(&self, id: NodeId) {
        let _ = self.raft(id).addr().send(InjectFault::Crash).await;
    }

    /// Restarts a crashed node from its storage, with a fresh state
    /// machine. Returns once it is serving again (or `Err` if it cannot).
    pub async fn restart(&self, id: NodeId) -> Result<(), ClusterError> {
        let raft = self.raft(id);
        let before = raft.current().incarnation;
        let _ = raft.addr().send(InjectFault::Restart).await;
        raft.wait_for(Duration::from_secs(10), |m| {
            m.incarnation > before && m.down.is_none()
        })
        .await?;
        Ok(())
    }

    /// Makes node `id` panic inside a handler (caught; it restarts).
    pub fn panic(&self, id: NodeId) {
        self.raft(id).addr().do_send(InjectFault::Panic);
    }

    /// Stops node `id`'s clock.
    pub fn pause_ticks(&self, id: NodeId) {
        self.raft(id).addr().do_send(InjectFault::PauseTicks);
    }

    /// Restarts node `id`'s clock.
    pub fn resume_ticks(&self, id: NodeId) {
        self.raft(id).addr().do_send(InjectFault::ResumeTicks);
    }

    /// Freezes node `id` as SIGSTOP would freeze its process: it handles
    /// nothing (messages queue in its mailbox) until the returned sender
    /// fires or is dropped. Pair with [`pause_ticks`](Self::pause_ticks)
    /// to keep its ticks from queueing meanwhile, so that what the test
    /// sends it first is what it handles first when it resumes.
    pub fn stall(&self, id: NodeId) -> tokio::sync::oneshot::Sender<()> {
        let (release, until) = tokio::sync::oneshot::channel();
        self.raft(id).addr().do_send(Stall { until });
        release
    }

    /// Waits until `f` holds for the metrics of all nodes.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&BTreeMap<NodeId, Metrics>) -> bool,
    ) -> Result<BTreeMap<NodeId, Metrics>, ClusterError> {
        let deadline = Instant::now() + timeout;
        let mut poll = tokio::time::interval(POLL);
        loop {
            let m = self.metrics();
            if f(&m) {
                return Ok(m);
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Timeout(
                    timeout,
                    format!("{what}; metrics: {m:?}"),
                ));
            }
            poll.tick().await;
        }
    }

    /// Waits for a leader that a majority of the nodes follow, not in
    /// `except`; answers its id.
    pub async fn wait_for_leader_except(
        &self,
        except: &[NodeId],
        timeout: Duration,
    ) -> Result<NodeId, ClusterError> {
        let majority = self.nodes.len() / 2 + 1;
        let mut found = None;
        self.wait_until("a leader", timeout, |m| {
            found = m.values().find_map(|x| {
                let leads = x.role == Role::Leader && x.down.is_none() && !except.contains(&x.id);
                let followers = m
                    .values()
                    .filter(|y| y.down.is_none() && y.leader == Some(x.id) && y.term == x.term)
                    .count();
                (leads && followers >= majority).then_some(x.id)
            });
            found.is_some()
        })
        .await?;
        found.ok_or_else(|| ClusterError::Timeout(timeout, "a leader".into()))
    }

    /// Waits for a leader that a majority of the nodes follow.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, ClusterError> {
        self.wait_for_leader_except(&[], timeout).await
    }

    /// Waits until every node that is up has applied `index`.
    pub async fn wait_all_applied(
        &self,
        index: LogIndex,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        self.wait_until(&format!("all applied {index}"), timeout, |m| {
            m.values().all(|x| x.down.is_some() || x.applied >= index)
        })
        .await
        .map(|_| ())
    }

    /// Stops every node and forgets the network's mailboxes, so the actors
    /// can end.
    pub async fn shutdown(&self) {
        for (id, raft) in &self.nodes {
            raft.shutdown().await;
            self.network().unregister(*id);
        }
    }

    fn network(&self) -> MutexGuard<'_, Box<dyn ClusterNetwork>> {
        // Only registrations happen under this lock: a panic inside one
        // leaves nothing half-done, so a poisoned lock's data is sound.
        self.network.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<C: TypeConfig> Drop for TestCluster<C> {
    fn drop(&mut self) {
        for (id, raft) in &self.nodes {
            raft.addr().do_send(crate::node::messages::admin::Shutdown);
            self.network().unregister(*id);
        }
    }
}
