//! A service spread over many Raft groups (`--groups N`): its keys are
//! hashed to groups ([`group_of`]), each group is a Raft group of its own
//! on the nodes its [`Layout`] places it on, and every node accepts every
//! request, handing it to its own replica of the key's group or, when it
//! holds none, forwarding it once to a node that does.
//!
//! All groups of a node share its transport (one connection per pair of
//! nodes) and its store (one redb file, one transaction and at most one
//! fsync for the batches of all groups that meet). Group 0 is the cluster's
//! own: its membership, leader and address book are what the cluster API
//! reports for the node as a whole, as with one group; a member added later
//! joins every group, a removed one leaves every group.
//!
//! This module starts, finds and stops the groups and routes requests to
//! them; it decides nothing about Raft, and it must never answer for a group
//! from a node that does not hold it.

pub(crate) mod balance;
mod layout;
pub(crate) mod members;
pub(crate) mod routes;
pub(crate) mod start;

use std::sync::Mutex;

use actix::Arbiter;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use raft_actors::core::{GroupId, NodeId};
use raft_actors::Raft;

pub use balance::preferred_leader;
pub use layout::{group_of, Layout, LayoutError, MAX_GROUPS};
pub(crate) use start::{resolve_layout, start_groups};

use super::error::ApiError;
use super::machine::Machine;
use super::node::Node;
use super::Service;

/// The groups this node runs: one Raft node per group of the layout (a
/// group this node does not hold runs empty, ready to be added), index =
/// group id; group 0 is also the node's `raft`.
pub(crate) struct Groups<S: Service> {
    pub(crate) layout: Layout,
    rafts: Vec<Raft<Machine<S>>>,
    /// The threads the state machines of groups 1.. run on.
    threads: Mutex<Vec<Arbiter>>,
}

impl<S: Service> Groups<S> {
    pub(crate) fn new(layout: Layout, rafts: Vec<Raft<Machine<S>>>, threads: Vec<Arbiter>) -> Self {
        Groups {
            layout,
            rafts,
            threads: Mutex::new(threads),
        }
    }

    /// Group `g`'s node here.
    pub(crate) fn raft(&self, g: GroupId) -> Option<&Raft<Machine<S>>> {
        usize::try_from(g).ok().and_then(|i| self.rafts.get(i))
    }

    /// Every group's node here, by group id.
    pub(crate) fn all(&self) -> impl Iterator<Item = (GroupId, &Raft<Machine<S>>)> {
        (0..).zip(self.rafts.iter())
    }

    /// Stops the nodes of groups 1.. and their state machines' threads
    /// (group 0 is the node's, stopped with it).
    pub(crate) async fn shutdown(&self) {
        for raft in self.rafts.iter().skip(1) {
            raft.shutdown().await;
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            t.stop();
        }
    }
}

/// Whether `raft`'s node is a member of its group now (metrics watch).
pub(crate) fn holds<S: Service>(raft: &Raft<Machine<S>>) -> bool {
    let m = raft.metrics();
    let m = m.borrow();
    m.membership.contains(m.id)
}

/// Where a keyed request is served: by this node's replica of the key's
/// group, or already answered by the node it was forwarded to.
pub enum Routed {
    /// Serve it here, in this group ([`Node::write_in`], [`Node::read_in`]).
    Here(GroupId),
    /// A node that holds the group answered; relay this.
    Answered(HttpResponse),
}

impl<S: Service> Node<S> {
    /// How many groups the service's keys are spread over.
    pub fn group_count(&self) -> u64 {
        self.groups.layout.groups
    }

    /// The group that holds `key` ([`group_of`]).
    pub fn group_of(&self, key: &[u8]) -> GroupId {
        self.groups.layout.group_of(key)
    }

    /// Where the request for `key` (whose body is `body`) is served: here,
    /// when this node holds the key's group, or forwarded once to a node
    /// that does (tried in placement order while they cannot be reached),
    /// whose answer is relayed. With one group it is always here.
    ///
    /// ```no_run
    /// # use actix_web::{web, HttpRequest, HttpResponse};
    /// # use raft_actors_service::{groups::Routed, ApiError, Node, Service};
    /// # async fn put<S: Service>(node: web::Data<Node<S>>, req: HttpRequest, key: Vec<u8>, value: bytes::Bytes, cmd: S::Command) -> Result<HttpResponse, ApiError> {
    /// let group = match node.route(&req, &key, value).await? {
    ///     Routed::Here(group) => group,
    ///     Routed::Answered(answer) => return Ok(answer),
    /// };
    /// let written = node.write_in(group, &req, cmd).await?;
    /// Ok(HttpResponse::Ok().json(serde_json::json!({ "index": written.index })))
    /// # }
    /// ```
    pub async fn route(
        &self,
        req: &HttpRequest,
        key: &[u8],
        body: Bytes,
    ) -> Result<Routed, ApiError> {
        let g = self.group_of(key);
        let raft = self.group_raft(g)?;
        let origin = crate::cluster::forwarded_by(req)
            .filter(|_| self.group_count() > 1 && crate::cluster::was_forwarded(req));
        if let Some(origin) = origin {
            // A node removed from the cluster does not learn it (it hears
            // from no leader again), and would go on serving every key
            // through the holders: they refuse it, as its own replica
            // refuses a write with one group. (While this node is starting
            // it knows no members yet, and refuses no one.)
            let members = self.raft.current().membership.members();
            if !members.is_empty() && !members.contains(&origin) {
                return Err(ApiError::unavailable(format!(
                    "node {origin} is not a member of this cluster (removed, or not added yet)"
                )));
            }
        }
        if self.group_count() == 1 || holds(raft) {
            return Ok(Routed::Here(g));
        }
        if crate::cluster::was_forwarded(req) {
            return Err(self.not_held(g));
        }
        let mut last: Result<HttpResponse, ApiError> = Err(self.not_held(g));
        for holder in self.holders(g) {
            let Some(to) = self.http_of(holder).await else {
                continue;
            };
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
            let answer = crate::cluster::forward_to(req, &path, body.clone(), to, self).await;
            let status = match &answer {
                Ok(a) => a.status(),
                Err(e) => e.status(),
            };
            // 503: not sent, or refused before anything was proposed (a
            // holder removed from the group, one without a leader): the
            // next holder may serve it. Anything else is the answer.
            if status != actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
                return answer.map(Routed::Answered);
            }
            last = answer;
        }
        last.map(Routed::Answered)
    }

    /// Group `g`'s node here; 400 for a group the layout does not have.
    pub(crate) fn group_raft(&self, g: GroupId) -> Result<&Raft<Machine<S>>, ApiError> {
        self.groups.raft(g).ok_or_else(|| {
            ApiError::bad_request(format!(
                "no group {g}: the keys are spread over groups 0 to {}",
                self.group_count() - 1
            ))
        })
    }

    /// The nodes that hold group `g` by its placement, other than this one.
    pub(crate) fn holders(&self, g: GroupId) -> Vec<NodeId> {
        let mut holders: Vec<NodeId> = self.groups.layout.holders(g).into_iter().collect();
        if holders.is_empty() {
            // A node added later knows no placement: group 0's members
            // hold every group they were added to.
            holders = self
                .raft
                .current()
                .membership
                .members()
                .into_iter()
                .collect();
        }
        holders.retain(|&h| h != self.id());
        holders
    }

    /// `id`'s client API address from the address book, waiting a moment
    /// for a node that has not recorded it yet.
    pub(crate) async fn http_of(&self, id: NodeId) -> Option<std::net::SocketAddr> {
        match self.directory.get(id).and_then(|a| a.http) {
            Some(a) => Some(a),
            None => {
                let wait = self.settings.timeout.min(std::time::Duration::from_secs(1));
                self.directory.wait_http(id, wait).await
            }
        }
    }

    fn not_held(&self, g: GroupId) -> ApiError {
        ApiError::unavailable(format!(
            "node {} does not hold group {g}, and no node that does could be reached",
            self.id()
        ))
    }
}
