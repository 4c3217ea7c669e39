//! [`RaftHost`]: one process's nodes of many Raft groups (multi-raft), all
//! over one [`NetworkTransport`]: one connection per pair of processes
//! carries every group's batches, and each group's incoming batches reach
//! that group's node.
//!
//! The nodes run on a few shared threads (arbiters), their state machines
//! on as many more, so a thousand groups cost a handful of threads, not
//! two thousand. Each group is still a supervised node of its own: a
//! panic in one group's state machine, or a damaged record in its log,
//! stops that group (after its restart budget), never its neighbours. A
//! slow or blocking `Apply` does delay the groups whose state machines
//! share its thread (group `g` runs on thread `g % threads`).
//! The host decides nothing about Raft; it starts, finds and stops nodes.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix::{Actor, Arbiter, Context, Handler};
use thiserror::Error;

use crate::core::{GroupId, NodeId};
use crate::node::{ApplyFactory, ApplyThread, NodeConfig};
use crate::raft::Raft;
use crate::storage::Storage;
use crate::transport::{NetworkTransport, Peer, ServeError};
use crate::type_config::TypeConfig;

/// Why a group could not be started.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum HostError {
    /// The group runs on this host already.
    #[error("group {0} runs on this host already")]
    Running(GroupId),
}

/// A mailbox for batches of groups not (yet) started here: they are
/// dropped, as a crashed peer's would be.
struct Discard;

impl Actor for Discard {
    type Context = Context<Self>;
}

impl Handler<Peer> for Discard {
    type Result = ();
    fn handle(&mut self, _: Peer, _: &mut Context<Self>) {}
}

/// Node `id`'s groups in this process. See the [module docs](self).
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use std::sync::Arc;
/// use raft_actors::apply::Apply;
/// use raft_actors::host::RaftHost;
/// # use raft_actors::core::GroupId;
/// # use raft_actors::transport::{NetworkTransport, Peer, PeerMetrics, ServeError, Transport, TransportError};
/// # #[derive(Debug)] struct Loopback;
/// # impl Transport for Loopback { fn send(&self, _: u64, _: Vec<raft_actors::core::Message>) -> Result<(), TransportError> { Ok(()) } }
/// # impl NetworkTransport for Loopback {
/// #     fn sender(&self) -> Box<dyn Transport> { Box::new(Loopback) }
/// #     fn serve(&self, l: std::net::TcpListener, _: actix::Recipient<Peer>) -> Result<std::net::SocketAddr, ServeError> { Ok(l.local_addr()?) }
/// #     fn set_peer(&self, _: u64, _: std::net::SocketAddr) {}
/// #     fn group_sender(&self, _: GroupId) -> Box<dyn Transport> { Box::new(Loopback) }
/// #     fn serve_group(&self, _: GroupId, _: actix::Recipient<Peer>) {}
/// #     fn advertise(&self, _: std::net::SocketAddr) {}
/// #     fn peer_metrics(&self) -> std::collections::BTreeMap<u64, PeerMetrics> { Default::default() }
/// #     fn shutdown(&self) -> futures::future::BoxFuture<'_, ()> { Box::pin(async {}) }
/// # }
/// use raft_actors::core::{Membership, Role};
/// use raft_actors::node::{ApplyFactory, NodeConfig};
/// use raft_actors::storage::MemoryStorage;
/// use raft_actors::testing::Counter;
/// // A one-node cluster of three groups; a real host is given a TCP or
/// // HTTP transport.
/// let mut host = RaftHost::<Counter>::new(1, Arc::new(Loopback), 2);
/// for g in 0..3 {
///     let apply: ApplyFactory<Counter> = Arc::new(|| Box::new(Counter::default()) as Box<dyn Apply<Counter>>);
///     let storage = Box::new(MemoryStorage::new(Membership::voters([1])));
///     host.start_group(g, NodeConfig::default(), storage, apply).expect("started");
/// }
/// assert!(host.start_group(1, NodeConfig::default(), Box::new(MemoryStorage::new(Membership::voters([1]))),
///     Arc::new(|| Box::new(Counter::default()) as Box<dyn Apply<Counter>>)).is_err());
/// let g2 = host.group(2).expect("group 2");
/// g2.wait_for(std::time::Duration::from_secs(10), |m| m.role == Role::Leader).await.expect("leads");
/// assert_eq!(g2.propose(5).await.expect("applied").output, 5);
/// host.shutdown().await;
/// # }
/// ```
pub struct RaftHost<C: TypeConfig> {
    id: NodeId,
    transport: Arc<dyn NetworkTransport>,
    node_threads: Vec<Arbiter>,
    apply_threads: Vec<Arbiter>,
    groups: BTreeMap<GroupId, Raft<C>>,
}

impl<C: TypeConfig> RaftHost<C> {
    /// Node `id`'s host over `transport`, its nodes on `threads` arbiters
    /// and their state machines on as many others (at least one each).
    pub fn new(id: NodeId, transport: Arc<dyn NetworkTransport>, threads: usize) -> Self {
        let n = threads.max(1);
        RaftHost {
            id,
            transport,
            node_threads: (0..n).map(|_| Arbiter::new()).collect(),
            apply_threads: (0..n).map(|_| Arbiter::new()).collect(),
            groups: BTreeMap::new(),
        }
    }

    /// The node these groups' replicas are.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Receives on `listener` for every group started, now or later.
    /// Batches of a group not started here are dropped (Raft resends).
    pub fn serve(&self, listener: TcpListener) -> Result<SocketAddr, ServeError> {
        let addr = self
            .transport
            .serve(listener, Discard.start().recipient())?;
        // `serve` delivered the transport's own group to the discard; a
        // node of it started before takes it back.
        for (group, raft) in &self.groups {
            self.transport
                .serve_group(*group, raft.addr().clone().recipient());
        }
        Ok(addr)
    }

    /// Starts this process's node of Raft group `group` on `storage`, with
    /// its state machine from `apply`: its batches go out tagged with the
    /// group, and the group's incoming batches come to it. Its state
    /// machine runs on one of the host's apply threads, whatever
    /// `cfg.apply_thread` says.
    pub fn start_group(
        &mut self,
        group: GroupId,
        mut cfg: NodeConfig,
        storage: Box<dyn Storage>,
        apply: ApplyFactory<C>,
    ) -> Result<Raft<C>, HostError> {
        if self.groups.contains_key(&group) {
            return Err(HostError::Running(group));
        }
        let slot = (group % self.node_threads.len() as u64) as usize;
        cfg.apply_thread = ApplyThread::On(self.apply_threads[slot].handle());
        let raft = Raft::start_in(
            &self.node_threads[slot].handle(),
            self.id,
            cfg,
            storage,
            self.transport.group_sender(group),
            apply,
        );
        self.transport
            .serve_group(group, raft.addr().clone().recipient());
        self.groups.insert(group, raft.clone());
        Ok(raft)
    }

    /// Group `group`'s node, if started here.
    pub fn group(&self, group: GroupId) -> Option<&Raft<C>> {
        self.groups.get(&group)
    }

    /// Every group started here, in order.
    pub fn groups(&self) -> impl Iterator<Item = (GroupId, &Raft<C>)> {
        self.groups.iter().map(|(g, r)| (*g, r))
    }

    /// Stops group `group`'s node; answers whether it ran here. Its
    /// batches are dropped from now on.
    pub async fn stop_group(&mut self, group: GroupId) -> bool {
        let Some(raft) = self.groups.remove(&group) else {
            return false;
        };
        self.transport
            .serve_group(group, Discard.start().recipient());
        raft.shutdown().await;
        true
    }

    /// Stops every group's node, then the transport and the threads.
    pub async fn shutdown(mut self) {
        for (_, raft) in std::mem::take(&mut self.groups) {
            raft.shutdown().await;
        }
        self.transport.shutdown().await;
    }
}

impl<C: TypeConfig> Drop for RaftHost<C> {
    /// Stops the host's threads, with whatever nodes still run on them: a
    /// host dropped without [`shutdown`](RaftHost::shutdown) leaks none.
    fn drop(&mut self) {
        for a in self.node_threads.iter().chain(&self.apply_threads) {
            a.stop();
        }
    }
}
