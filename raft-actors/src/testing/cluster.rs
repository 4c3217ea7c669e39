//! [`TestCluster`]: N actor nodes over the memory storage and, by default,
//! the memory network (or any [`ClusterNetwork`], e.g. TCP on loopback),
//! around the user's own [`Apply`](crate::apply::Apply), with fault control ([`NetworkFaults`],
//! the same on every transport) and waits on conditions. It is set up and
//! started by the builders of [`cluster_builder`](super::cluster_builder).
//!
//! Waits wake on the nodes' published metrics (a watch per node) until a
//! deadline; they never sleep a fixed time nor poll.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// The runtime's clock: real time, or a test's paused (virtual) time.
use tokio::time::Instant;

use thiserror::Error;

use crate::core::{LogIndex, NodeId, Role};
use crate::error::ClientError;
use crate::node::messages::internal::{InjectFault, Stall};
use crate::node::{Metrics, NodeConfig};
use crate::raft::Raft;
use crate::storage::MemoryStorage;
use crate::testing::{ClusterBuilder, ClusterNetwork, NetworkFaults};
use crate::transport::MemoryNetwork;
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

/// An in-process cluster for tests.
pub struct TestCluster<C: TypeConfig> {
    pub(super) nodes: BTreeMap<NodeId, Raft<C>>,
    pub(super) storages: BTreeMap<NodeId, MemoryStorage>,
    /// The memory network, when the cluster runs on it.
    pub(super) memory: Option<MemoryNetwork>,
    /// What [`faults`](Self::faults) controls.
    pub(super) faults: Option<Arc<dyn NetworkFaults>>,
    pub(super) network: Mutex<Box<dyn ClusterNetwork>>,
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
    /// the memory network by default, or what [`TypedBuilder::faults`](crate::testing::TypedBuilder::faults)
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
    /// If the cluster was built with [`TypedBuilder::storage`](crate::testing::TypedBuilder::storage): a test's
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

    /// Waits until `f` holds for the metrics of all nodes: looked at again
    /// each time some node publishes new metrics, never on a timer.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&BTreeMap<NodeId, Metrics>) -> bool,
    ) -> Result<BTreeMap<NodeId, Metrics>, ClusterError> {
        let deadline = Instant::now() + timeout;
        let mut watches: Vec<_> = self.nodes.values().map(Raft::metrics).collect();
        loop {
            // Seen before they are read: a change after this wakes the wait.
            for w in &mut watches {
                w.borrow_and_update();
            }
            let m = self.metrics();
            if f(&m) {
                return Ok(m);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || watches.is_empty() {
                return Err(ClusterError::Timeout(
                    timeout,
                    format!("{what}; metrics: {m:?}"),
                ));
            }
            let changed =
                futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
            let gone = match tokio::time::timeout(left, changed).await {
                // A node that stopped for good publishes nothing more.
                Ok((Err(_), gone, _)) => Some(gone),
                Ok((Ok(()), _, _)) | Err(_) => None,
            };
            if let Some(i) = gone {
                watches.remove(i);
            }
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
