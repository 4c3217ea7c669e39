//! [`ClusterBuilder`] and [`TypedBuilder`]: how a [`TestCluster`] is set
//! up (size, seed, node configuration, the state machine, the network and
//! its fault control, the storage, fingerprints of the replicas' states)
//! and started; [`ClusterNetwork`], the transports it can run over.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Recipient;

use crate::apply::Apply;
use crate::core::{Membership, NodeId};
use crate::node::{ApplyFactory, NodeConfig};
use crate::raft::Raft;
use crate::storage::{MemoryStorage, Storage};
use crate::testing::{ClusterError, Fingerprints, NetworkFaults, TestCluster};
use crate::transport::Peer;
use crate::transport::{MemoryNetwork, Transport};
use crate::type_config::TypeConfig;

/// Settings of a cluster before its state machine is chosen.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    pub(super) size: u64,
    pub(super) cfg: NodeConfig,
    pub(super) seed: u64,
    pub(super) timeout: Duration,
}

/// A cluster builder with its state machine.
pub struct TypedBuilder<C: TypeConfig> {
    base: ClusterBuilder,
    apply: ApplyFactory<C>,
    network: Option<Box<dyn ClusterNetwork>>,
    faults: Option<Arc<dyn NetworkFaults>>,
    storage: Option<StorageFactory>,
    fingerprints: Option<Fingerprints>,
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
            fingerprints: None,
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
            fingerprints: self.fingerprints,
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

    /// Records every replica's state hash into `book` as it applies, so
    /// that [`Fingerprints::first_divergence`] finds a non-deterministic
    /// state machine (see [`divergence`](crate::testing::divergence)).
    pub fn fingerprints(mut self, book: &Fingerprints) -> Self {
        self.fingerprints = Some(book.clone());
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
                match &self.fingerprints {
                    Some(book) => book.wrap(id, Arc::clone(&self.apply)),
                    None => Arc::clone(&self.apply),
                },
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
