//! Membership across groups: a change to the cluster's membership (group
//! 0's, made by `/cluster/members`) is made in every other group too, each
//! on its own leader, and one group's members can be changed alone
//! (`/cluster/groups/{g}/members`).
//!
//! A member added to the cluster joins every group; a removed one leaves
//! every group it is in. A group's change is made by that group's leader:
//! here if this node leads it, else sent once to its leader (or, from a
//! node that does not hold the group, to a node that does). It must never
//! report a group's change before that group committed it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use raft_actors::core::{ConfChange, GroupId, NodeId, Role};
use serde_json::json;

use super::holds;
use crate::cluster::{config, promote_in, was_forwarded, AddMember, FORWARDED};
use crate::error::ApiError;
use crate::http::read_json;
use crate::node::Node;
use crate::Service;

/// One membership change, as made in each group.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change {
    /// Adds `id` as a learner, then (if `voter`) promotes it.
    Add {
        /// The node.
        id: NodeId,
        /// Where peers reach it.
        raft_addr: SocketAddr,
        /// A voter, or a learner only.
        voter: bool,
    },
    /// Removes `id`, if it is a member.
    Remove(NodeId),
}

/// Makes `change` in every group beyond group 0, one after the other. A
/// group without a reachable leader right now (503: nothing was done) is
/// asked again, with bounded exponential backoff, until `deadline`: a
/// group whose leader just stopped elects another within moments.
pub(crate) async fn spread<S: Service>(
    node: &Node<S>,
    change: Change,
    deadline: Instant,
) -> Result<(), ApiError> {
    for g in 1..node.group_count() {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_millis(500))
            .with_jitter()
            .with_total_delay(Some(deadline.saturating_duration_since(Instant::now())))
            .without_max_times();
        (|| change_in(node, g, change, deadline, false))
            .retry(backoff)
            .when(|e| e.status() == StatusCode::SERVICE_UNAVAILABLE)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("group {g}: {}", e.message())))?;
    }
    Ok(())
}

/// Makes `change` in group `g`: here if this node leads it, else on the
/// node that does (`forwarded`: this request was sent here by another
/// node, so it is not sent on twice).
async fn change_in<S: Service>(
    node: &Node<S>,
    g: GroupId,
    change: Change,
    deadline: Instant,
    forwarded: bool,
) -> Result<(), ApiError> {
    let raft = node.group_raft(g)?;
    let m = raft.current();
    if holds(raft) && m.role == Role::Leader {
        return match change {
            Change::Add { id, voter, .. } => {
                if !m.membership.contains(id) {
                    raft.change_membership(ConfChange::AddLearner(id)).await?;
                }
                if voter {
                    promote_in(raft, id, deadline).await?;
                }
                Ok(())
            }
            Change::Remove(id) if m.membership.contains(id) => {
                raft.change_membership(ConfChange::Remove(id)).await?;
                Ok(())
            }
            Change::Remove(_) => Ok(()),
        };
    }
    if forwarded {
        return Err(
            ApiError::unavailable(format!("node {} does not lead group {g}", node.id()))
                .with_leader(m.leader),
        );
    }
    // To the group's leader if this node knows it, else to the nodes that
    // hold the group, which know theirs.
    let targets: Vec<NodeId> = match m.leader.filter(|_| holds(raft)) {
        Some(leader) => vec![leader],
        None => node.holders(g),
    };
    let (method, path, body) = match change {
        Change::Add {
            id,
            raft_addr,
            voter,
        } => (
            Method::POST,
            format!("/cluster/groups/{g}/members"),
            json!({ "id": id, "raft_addr": raft_addr, "role": if voter { "voter" } else { "learner" } })
                .to_string(),
        ),
        Change::Remove(id) => (
            Method::DELETE,
            format!("/cluster/groups/{g}/members/{id}"),
            String::new(),
        ),
    };
    let mut last = ApiError::unavailable(format!("no node of group {g} could be reached"));
    for target in targets {
        let Some(to) = node.http_of(target).await else {
            continue;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(mut request) = node.settings.calls.request(method.clone(), to, &path, left) else {
            continue;
        };
        // Sent on once: a node that does not lead the group answers 503
        // (and the next target is tried), never sends it further.
        request = request.insert_header((FORWARDED, "1"));
        if let Some(token) = &node.settings.admin {
            request = request.insert_header(token.header());
        }
        match request.send_body(body.clone()).await {
            Ok(res) if res.status().is_success() => return Ok(()),
            Ok(res) if res.status() == StatusCode::GATEWAY_TIMEOUT => {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("group {g}'s change timed out; outcome unknown"),
                ))
            }
            Ok(res) => {
                last = ApiError::new(
                    res.status(),
                    format!("node {target} refused group {g}'s change"),
                )
            }
            // Not connected: nothing reached it; the next one may serve.
            Err(e @ awc::error::SendRequestError::Connect(_)) => {
                last = ApiError::unavailable(format!("node {target}: {e}"))
            }
            // It may have taken the change: the outcome is unknown.
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("group {g}'s change sent to node {target}, outcome unknown: {e}"),
                ))
            }
        }
    }
    Err(last)
}

fn group_path<S: Service>(node: &Node<S>, raw: &str) -> Result<GroupId, ApiError> {
    let g: GroupId = raw
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not a group id")))?;
    if g == 0 {
        return Err(ApiError::bad_request(
            "group 0 is the cluster's own: change it with /cluster/members",
        ));
    }
    node.group_raft(g)?;
    Ok(g)
}

/// `POST /cluster/groups/{g}/members`: adds a node to group `g` alone
/// (its address must be in the book: add it to the cluster first).
pub(crate) async fn add<S: Service>(
    node: web::Data<Node<S>>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let g = group_path(&node, &path)?;
    let add: AddMember = read_json(payload).await?;
    let voter = add.voter()?;
    let deadline = Instant::now() + node.settings.timeout.saturating_mul(6);
    let change = Change::Add {
        id: add.id,
        raft_addr: add.raft_addr,
        voter,
    };
    change_in(&node, g, change, deadline, was_forwarded(&req)).await?;
    Ok(HttpResponse::Ok().json(config(&node.group_raft(g)?.current().membership)))
}

/// `DELETE /cluster/groups/{g}/members/{id}`: removes a node from group
/// `g` alone.
pub(crate) async fn remove<S: Service>(
    node: web::Data<Node<S>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let g = group_path(&node, &path.0)?;
    let id: NodeId = path
        .1
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{}` is not a node id", path.1)))?;
    let deadline = Instant::now() + node.settings.timeout.saturating_mul(6);
    change_in(&node, g, Change::Remove(id), deadline, was_forwarded(&req)).await?;
    Ok(HttpResponse::Ok().json(config(&node.group_raft(g)?.current().membership)))
}
