//! [`Raft`]: the handle clients hold to one node: propose, read, status,
//! metrics, leadership transfer, snapshot, shutdown.
//!
//! It must never wait forever: every request has a deadline, past which it
//! answers [`ClientError::Timeout`] (outcome unknown).

use std::time::Duration;

use actix::{Addr, ArbiterHandle, Supervisor};
use tokio::sync::{oneshot, watch};

use crate::apply::Applied;
use crate::core::{ConfChange, LogIndex, Membership, NodeId, Status};
use crate::error::ClientError;
use crate::node::messages::admin::{
    ChangeMembership, GetStatus, Shutdown, TakeSnapshot, TransferLeader,
};
use crate::node::messages::client::{Consistency, Propose, Read};
use crate::node::{ApplyFactory, Metrics, NodeConfig, RaftNode};
use crate::storage::Storage;
use crate::transport::Transport;
use crate::type_config::TypeConfig;

/// A handle to one running node. Cheap to clone; every clone talks to the
/// same node.
pub struct Raft<C: TypeConfig> {
    id: NodeId,
    addr: Addr<RaftNode<C>>,
    metrics: watch::Receiver<Metrics>,
    timeout: Duration,
}

impl<C: TypeConfig> Clone for Raft<C> {
    fn clone(&self) -> Self {
        Raft {
            id: self.id,
            addr: self.addr.clone(),
            metrics: self.metrics.clone(),
            timeout: self.timeout,
        }
    }
}

/// How long a request waits by default before [`ClientError::Timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl<C: TypeConfig> Raft<C> {
    /// Starts a supervised node on the current arbiter. Deliver its
    /// incoming messages to [`addr`](Self::addr) (e.g. register it with a
    /// [`MemoryNetwork`](crate::transport::MemoryNetwork)).
    pub fn start(
        id: NodeId,
        cfg: NodeConfig,
        storage: Box<dyn Storage>,
        transport: Box<dyn Transport>,
        apply: ApplyFactory<C>,
    ) -> Self {
        let (node, metrics) = RaftNode::new(id, cfg, storage, transport, apply);
        let addr = Supervisor::start(|_| node);
        Self::from_parts(id, addr, metrics)
    }

    /// Starts a supervised node on another arbiter (thread).
    pub fn start_in(
        arbiter: &ArbiterHandle,
        id: NodeId,
        cfg: NodeConfig,
        storage: Box<dyn Storage>,
        transport: Box<dyn Transport>,
        apply: ApplyFactory<C>,
    ) -> Self {
        let (metrics_tx, metrics) = watch::channel(Metrics::starting(id));
        let addr = Supervisor::start_in_arbiter(arbiter, move |_| {
            let (node, rx) = RaftNode::new(id, cfg, storage, transport, apply);
            // Bridge the node's own channel into the one handed out here,
            // which had to exist before the node did.
            let mut rx = rx;
            actix_rt::spawn(async move {
                while rx.changed().await.is_ok() {
                    let m = rx.borrow_and_update().clone();
                    if metrics_tx.send(m).is_err() {
                        break;
                    }
                }
            });
            node
        });
        Self::from_parts(id, addr, metrics)
    }

    /// A handle to a node started by hand.
    pub fn from_parts(
        id: NodeId,
        addr: Addr<RaftNode<C>>,
        metrics: watch::Receiver<Metrics>,
    ) -> Self {
        Raft {
            id,
            addr,
            metrics,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same handle with another request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's mailbox address.
    pub fn addr(&self) -> &Addr<RaftNode<C>> {
        &self.addr
    }

    /// Proposes `command`; resolves once its entry is applied on this node,
    /// with the state machine's output. Works on any node: a follower
    /// forwards to the leader.
    pub async fn propose(&self, command: C::Command) -> Result<Applied<C>, ClientError> {
        let (tx, rx) = oneshot::channel();
        let msg = Propose::new(&command, tx).map_err(ClientError::BadCommand)?;
        self.request(rx, |addr| addr.do_send(msg)).await
    }

    /// Answers `query` at the given consistency.
    pub async fn read(
        &self,
        query: C::Query,
        consistency: Consistency,
    ) -> Result<C::QueryAnswer, ClientError> {
        let (reply, rx) = oneshot::channel();
        let msg = Read {
            query,
            consistency,
            reply,
        };
        self.request(rx, |addr| addr.do_send(msg)).await
    }

    async fn request<T>(
        &self,
        rx: oneshot::Receiver<Result<T, ClientError>>,
        send: impl FnOnce(&Addr<RaftNode<C>>),
    ) -> Result<T, ClientError> {
        if !self.addr.connected() {
            return Err(ClientError::ShuttingDown);
        }
        send(&self.addr);
        match actix_rt::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            // The reply was dropped unanswered: the node's incarnation died
            // with it (a caught panic), so the outcome is unknown.
            Ok(Err(_)) => Err(ClientError::Interrupted),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Sends `msg` and waits for the answer within the handle's timeout: a
    /// node whose mailbox is held (reloading a slow storage) must not hang
    /// its callers.
    async fn ask<M>(&self, msg: M) -> Result<M::Result, ClientError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        RaftNode<C>: actix::Handler<M>,
        <RaftNode<C> as actix::Actor>::Context: actix::dev::ToEnvelope<RaftNode<C>, M>,
    {
        match actix_rt::time::timeout(self.timeout, self.addr.send(msg)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ClientError::ShuttingDown),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// The node's status.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.ask(GetStatus).await?
    }

    /// A subscription to the node's metrics, updated after every batch.
    pub fn metrics(&self) -> watch::Receiver<Metrics> {
        self.metrics.clone()
    }

    /// The metrics as last published.
    pub fn current(&self) -> Metrics {
        self.metrics.borrow().clone()
    }

    /// Waits until `f` holds for this node's metrics, or the timeout.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        f: impl FnMut(&Metrics) -> bool,
    ) -> Result<Metrics, ClientError> {
        let mut rx = self.metrics.clone();
        let waited =
            actix_rt::time::timeout(timeout, async { rx.wait_for(f).await.map(|m| m.clone()) })
                .await;
        match waited {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(ClientError::ShuttingDown),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Changes the membership (ask the leader): add or promote a learner,
    /// remove a node (the leader too), or move to new voters through a joint
    /// configuration. Resolves with the committed configuration once the
    /// change is committed and any joint phase left. `Busy` means retry
    /// shortly (another change is in progress, or the learner is still
    /// catching up); `Timeout` that the outcome is unknown.
    ///
    /// ```
    /// # #[actix_rt::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use raft_actors::core::ConfChange;
    /// use raft_actors::testing::{Kv, TestCluster};
    /// let c = TestCluster::memory(3).apply(Kv::default).start().await?;
    /// let leader = c.wait_for_leader(std::time::Duration::from_secs(10)).await?;
    /// let other = c.ids().into_iter().find(|id| *id != leader).unwrap();
    /// let m = c.raft(leader).change_membership(ConfChange::Remove(other)).await?;
    /// assert!(!m.voters.contains(&other));
    /// # c.shutdown().await; Ok(()) }
    /// ```
    pub async fn change_membership(&self, change: ConfChange) -> Result<Membership, ClientError> {
        self.ask(ChangeMembership { change }).await?
    }

    /// Hands leadership to `to` (ask the leader); resolves once this node
    /// sees `to` lead.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), ClientError> {
        self.ask(TransferLeader { to }).await??;
        self.wait_for(self.timeout, |m| m.leader == Some(to))
            .await
            .map(|_| ())
    }

    /// Saves a snapshot of the state machine; answers its last index.
    pub async fn snapshot(&self) -> Result<LogIndex, ClientError> {
        match actix_rt::time::timeout(self.timeout, self.addr.send(TakeSnapshot)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ClientError::ShuttingDown),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Stops the node for good.
    pub async fn shutdown(&self) {
        let _ = self.ask(Shutdown).await;
    }
}
