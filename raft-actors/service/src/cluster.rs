//! The cluster API of the reference (`examples/REFERENCE.md`): `/status`, `/cluster/members`,
//! `/cluster/leader`, `/cluster/snapshot` and `/metrics`, the same for
//! every service.
//!
//! Membership and leadership requests run on the leader: a follower
//! forwards them over HTTP to the leader's client API (its address comes
//! from the replicated address book), once, and answers 503 when it cannot.
//! The leader comes from the node's metrics watch, the leader's address
//! from the address book's notifications, and a membership change is one
//! answer from the node; only a `Busy` (a learner still catching up) is
//! retried, with bounded exponential backoff. It must never report a
//! change before it is committed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use raft_actors::core::{ConfChange, LogIndex, Membership, NodeId, Role, Status};
use raft_actors::ClientError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::directory::Addrs;
use super::error::ApiError;
use super::http::{read_json_and_body, MAX_JSON_BODY};
use super::node::Node;
use super::node_client::NodeClient;
use super::Service;

/// Marks a request forwarded by a follower, so it is never forwarded twice.
pub(crate) const FORWARDED: &str = "x-raft-forwarded";

/// The header naming the node that sent a keyed request on to a holder of
/// its group: a holder serves only members of the cluster.
pub(crate) const FORWARDED_BY: &str = "x-raft-forwarded-by";

/// The node that sent this keyed request on, if it said (an older node
/// does not).
pub(crate) fn forwarded_by(req: &HttpRequest) -> Option<NodeId> {
    req.headers().get(FORWARDED_BY)?.to_str().ok()?.parse().ok()
}

/// Whether another node sent this request on to this one.
pub(crate) fn was_forwarded(req: &HttpRequest) -> bool {
    req.headers().contains_key(FORWARDED)
}

/// Registers the cluster API's routes.
pub fn routes<S: Service>(cfg: &mut web::ServiceConfig) {
    #[cfg(feature = "metrics")]
    cfg.route("/metrics", web::get().to(metrics::<S>));
    cfg.route("/status", web::get().to(status::<S>))
        .route("/cluster/members", web::post().to(add_member::<S>))
        .route(
            "/cluster/members/{id}",
            web::delete().to(remove_member::<S>),
        )
        .route("/cluster/leader", web::post().to(transfer::<S>))
        .route("/cluster/snapshot", web::post().to(snapshot::<S>))
        .configure(crate::groups::routes::routes::<S>);
}

/// The reference's name of a node's role.
pub fn role_name(s: &Status) -> &'static str {
    role_of(s.role, s.membership.learners.contains(&s.id))
}

/// The reference's name of `role`, for a node that is a learner or not.
///
/// ```
/// use raft_actors::core::Role;
/// use raft_actors_service::cluster::role_of;
/// assert_eq!(role_of(Role::PreCandidate, false), "candidate");
/// assert_eq!(role_of(Role::Follower, true), "learner");
/// ```
pub fn role_of(role: Role, learner: bool) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Candidate | Role::PreCandidate => "candidate",
        Role::Follower if learner => "learner",
        Role::Follower => "follower",
    }
}

fn voters(m: &Membership) -> Vec<NodeId> {
    m.voters.union(&m.outgoing).copied().collect()
}

pub(crate) fn config(m: &Membership) -> Value {
    json!({ "voters": voters(m), "learners": m.learners.iter().collect::<Vec<_>>() })
}

async fn status<S: Service>(node: web::Data<Node<S>>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(status_json(&node).await?))
}

/// This node's `/status` body.
pub(crate) async fn status_json<S: Service>(node: &Node<S>) -> Result<Value, ApiError> {
    let s = node.status().await?;
    let mut body = status_value(&s, node.raft.current().applied, node.settings.tick);
    if node.group_count() > 1 {
        body["groups"] = crate::groups::routes::held(node);
    }
    Ok(body)
}

/// The `/status` body of a node whose core reports `s`, whose state
/// machine was handed entries up to `handed`.
pub(crate) fn status_value(s: &Status, handed: LogIndex, tick: Duration) -> Value {
    let mut body = json!({
        "id": s.id,
        "role": role_name(s),
        "term": s.term,
        "leader": s.leader,
        "commit_index": s.commit,
        // What the state machine was handed (the core's own count may run
        // ahead while a batch is still being persisted): a stale read sent
        // after seeing this index sees the entry.
        "applied_index": s.applied.min(handed),
        "voters": voters(&s.membership),
        "learners": s.membership.learners.iter().collect::<Vec<_>>(),
        // Extensions: where the log starts after compaction, the last
        // snapshot's index, the last entry, the leader's commit as heard.
        "first_index": s.first_index,
        "snapshot_index": s.snapshot_index,
        "last_index": s.last_index,
        "leader_commit": s.leader_commit,
    });
    if s.role == Role::Leader {
        // The leader's view of each follower (what `/cluster/status`
        // says they trail it by).
        let peers: Vec<Value> = s
            .peers
            .iter()
            .map(|(id, p)| {
                let ms = p.last_heard_ticks.map(|t| {
                    u64::try_from(tick.as_millis())
                        .unwrap_or(u64::MAX)
                        .saturating_mul(t)
                });
                json!({ "id": id, "match_index": p.match_index, "last_contact_ms": ms })
            })
            .collect();
        body["replication"] = Value::from(peers);
    }
    body
}

#[cfg(feature = "metrics")]
async fn metrics<S: Service>(node: web::Data<Node<S>>) -> Result<HttpResponse, ApiError> {
    let learner = node
        .status()
        .await
        .is_ok_and(|s| s.membership.learners.contains(&s.id));
    node.metrics.set_tls_refused(node.network.tls_refused());
    let text = node
        .metrics
        .render(&node.raft.current(), learner, &node.network.peer_metrics());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

async fn snapshot<S: Service>(node: web::Data<Node<S>>) -> Result<HttpResponse, ApiError> {
    let index = node.raft.snapshot().await?;
    // Every other group this node holds is compacted with it.
    for (_, raft) in node.groups.all().skip(1) {
        if crate::groups::holds(raft) {
            raft.snapshot().await?;
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "index": index })))
}

/// What to do with a leader-only request here.
enum Route {
    Here,
    Forward(SocketAddr),
}

/// Runs leader-only requests on the leader: here, or forwarded once.
async fn route<S: Service>(node: &Node<S>, req: &HttpRequest) -> Result<Route, ApiError> {
    let m = node.raft.current();
    if m.role == Role::Leader || was_forwarded(req) {
        return Ok(Route::Here);
    }
    let Some(leader) = m.leader else {
        return Err(ApiError::unavailable("no leader is known").with_leader(None));
    };
    // A leader records its client address within moments of its election
    // (`register_self`): wait for the book to name it rather than refuse.
    match node
        .directory
        .wait_http(leader, node.settings.timeout)
        .await
    {
        Some(addr) => Ok(Route::Forward(addr)),
        None => Err(
            ApiError::unavailable("the leader's client address is not known here")
                .with_leader(Some(leader)),
        ),
    }
}

/// Sends the request on to the leader's client API and relays its answer.
async fn forward(
    req: &HttpRequest,
    body: Bytes,
    to: SocketAddr,
    wait: Duration,
    calls: &NodeClient,
) -> Result<HttpResponse, ApiError> {
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    forward_path(req, &path, body, to, wait, calls, None).await
}

/// Sends a keyed request on to `to`, a node that holds its group, and
/// relays its answer (given a moment more than the node's own timeout, so
/// that its 504 arrives rather than this node's).
pub(crate) async fn forward_to<S: Service>(
    req: &HttpRequest,
    path: &str,
    body: Bytes,
    to: SocketAddr,
    node: &Node<S>,
) -> Result<HttpResponse, ApiError> {
    let wait = node.settings.timeout + Duration::from_secs(1);
    let origin = Some(node.id());
    forward_path(req, path, body, to, wait, &node.settings.calls, origin).await
}

async fn forward_path(
    req: &HttpRequest,
    path: &str,
    body: Bytes,
    to: SocketAddr,
    wait: Duration,
    calls: &NodeClient,
    origin: Option<NodeId>,
) -> Result<HttpResponse, ApiError> {
    let mut request = calls
        .request(req.method().clone(), to, path, wait)
        .map_err(|why| ApiError::unavailable(format!("cannot forward to the leader: {why}")))?
        .insert_header((FORWARDED, "1"));
    if let Some(origin) = origin {
        request = request.insert_header((FORWARDED_BY, origin.to_string()));
    }
    // The leader checks the admin token again: the follower passes on
    // what its client sent.
    if let Some(auth) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        request = request.insert_header((actix_web::http::header::AUTHORIZATION, auth.clone()));
    }
    // A write's exactly-once key goes with it.
    if let Some(key) = req.headers().get("idempotency-key") {
        request = request.insert_header(("idempotency-key", key.clone()));
    }
    let mut answer = request.send_body(body).await.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "the leader did not answer in time; outcome unknown",
        ),
        // Not connected: nothing reached the other node.
        e @ (awc::error::SendRequestError::Connect(_) | awc::error::SendRequestError::Url(_)) => {
            ApiError::unavailable(format!("forwarding to the leader failed: {e}"))
        }
        // The request may have reached it: the outcome is unknown.
        e => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("forwarding failed after the request was sent; outcome unknown: {e}"),
        ),
    })?;
    let bytes = answer.body().limit(MAX_JSON_BODY).await.map_err(|e| {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("reading the leader's answer: {e}"),
        )
    })?;
    let mut out = HttpResponse::build(answer.status());
    if let Some(ct) = answer.headers().get(actix_web::http::header::CONTENT_TYPE) {
        out.insert_header((actix_web::http::header::CONTENT_TYPE, ct.clone()));
    }
    Ok(out.body(bytes))
}

/// How long a membership change may take: catching a new voter up can take
/// much longer than one write.
fn change_deadline<S: Service>(node: &Node<S>) -> Duration {
    node.settings.timeout.saturating_mul(6)
}

/// The body of a request to add a member.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMember {
    pub(crate) id: NodeId,
    pub(crate) raft_addr: SocketAddr,
    #[serde(default)]
    role: Option<String>,
}

impl AddMember {
    /// Whether the node is to be a voter (the default) or a learner.
    pub(crate) fn voter(&self) -> Result<bool, ApiError> {
        match self.role.as_deref() {
            None | Some("voter") => Ok(true),
            Some("learner") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!(
                "role must be learner or voter, not `{other}`"
            ))),
        }
    }
}

async fn add_member<S: Service>(
    node: web::Data<Node<S>>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (add, body): (AddMember, _) = read_json_and_body(payload).await?;
    let voter = add.voter()?;
    if let Route::Forward(to) = route(&*node, &req).await? {
        return forward(
            &req,
            body,
            to,
            change_deadline(&*node),
            &node.settings.calls,
        )
        .await;
    }
    let deadline = Instant::now() + change_deadline(&*node);
    // The address book first: every node, the new one included, must be
    // able to reach every member once the change is in force.
    register_addresses(&node, add.id, add.raft_addr).await?;
    let current = node.status().await?.membership;
    if !current.contains(add.id) {
        node.raft
            .change_membership(ConfChange::AddLearner(add.id))
            .await?;
    } else if !voter && current.is_voter(add.id) {
        return Err(ApiError::bad_request(format!(
            "node {} is a voter; remove it first to make it a learner",
            add.id
        )));
    }
    if voter {
        promote_in(&node.raft, add.id, deadline).await?;
    }
    let change = crate::groups::members::Change::Add {
        id: add.id,
        raft_addr: add.raft_addr,
        voter,
    };
    crate::groups::members::spread(&node, change, deadline)
        .await
        .map_err(partly)?;
    let m = node.status().await?.membership;
    Ok(HttpResponse::Ok().json(config(&m)))
}

/// A change committed in group 0 that did not reach every other group:
/// never a 503 (which says nothing was done). The same request again
/// finishes it.
fn partly(e: ApiError) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "the change is committed in the cluster (group 0) but not in every group yet ({}): \
             send the same request again to finish it",
            e.message()
        ),
    )
}

/// Records `id` at `raft_addr`, and any bootstrap peer the book lacks.
async fn register_addresses<S: Service>(
    node: &Node<S>,
    id: NodeId,
    raft_addr: SocketAddr,
) -> Result<(), ApiError> {
    let mut wanted = vec![(id, raft_addr)];
    wanted.extend(node.settings.peers.iter().map(|(i, a)| (*i, *a)));
    for (id, raft) in wanted {
        let known = node.directory.get(id);
        if known.map(|a| a.raft) != Some(raft) {
            let http = known
                .and_then(|a| a.http)
                .filter(|_| known.is_some_and(|a| a.raft == raft));
            node.register(id, Addrs { raft, http }).await?;
        }
    }
    Ok(())
}

/// Promotes learner `id`: one change, answered by the node once committed;
/// retried only while the node answers `Busy` (the learner is still
/// catching up, or another change is under way), with exponential backoff,
/// until `deadline`.
pub(crate) async fn promote_in<C: raft_actors::TypeConfig>(
    raft: &raft_actors::Raft<C>,
    id: NodeId,
    deadline: Instant,
) -> Result<(), ApiError> {
    if raft.current().membership.voters.contains(&id) {
        return Ok(());
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(500))
        .with_jitter()
        .with_total_delay(Some(left))
        .without_max_times();
    let change = || raft.change_membership(ConfChange::AddVoter(id));
    match change
        .retry(backoff)
        .when(|e| *e == ClientError::Busy)
        .await
    {
        Ok(_) => Ok(()),
        Err(ClientError::Busy) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("node {id} is still catching up as a learner; try again"),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn remove_member<S: Service>(
    node: web::Data<Node<S>>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: NodeId = path
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{path}` is not a node id")))?;
    if let Route::Forward(to) = route(&*node, &req).await? {
        return forward(
            &req,
            Bytes::new(),
            to,
            change_deadline(&*node),
            &node.settings.calls,
        )
        .await;
    }
    let deadline = Instant::now() + change_deadline(&*node);
    let leaving = crate::groups::members::Change::Remove(id);
    if !node.status().await?.membership.contains(id) {
        // A retry after a partial removal finishes the other groups.
        crate::groups::members::spread(&node, leaving, deadline).await?;
        return Err(ApiError::not_found(format!("node {id} is not a member")));
    }
    let m = node.raft.change_membership(ConfChange::Remove(id)).await?;
    crate::groups::members::spread(&node, leaving, deadline)
        .await
        .map_err(partly)?;
    Ok(HttpResponse::Ok().json(config(&m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    id: NodeId,
}

async fn transfer<S: Service>(
    node: web::Data<Node<S>>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (t, body): (Transfer, _) = read_json_and_body(payload).await?;
    let s = node.status().await?;
    if s.leader == Some(t.id) {
        return Ok(HttpResponse::Ok().json(json!({ "leader": t.id })));
    }
    if let Route::Forward(to) = route(&*node, &req).await? {
        return forward(&req, body, to, node.settings.timeout, &node.settings.calls).await;
    }
    node.raft.transfer_leader(t.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "leader": t.id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_have_the_references_names() {
        assert_eq!(role_of(Role::Leader, false), "leader");
        assert_eq!(role_of(Role::Candidate, false), "candidate");
        assert_eq!(role_of(Role::PreCandidate, true), "candidate");
        assert_eq!(role_of(Role::Follower, false), "follower");
        assert_eq!(role_of(Role::Follower, true), "learner");
    }

    #[test]
    fn a_joint_configuration_lists_both_sides_as_voters() {
        let mut m = Membership::voters([1, 2, 3]);
        m.outgoing = [3, 4].into();
        m.learners = [5].into();
        assert_eq!(
            config(&m),
            json!({ "voters": [1, 2, 3, 4], "learners": [5] })
        );
    }

    #[test]
    fn membership_bodies_are_strict() {
        let ok: AddMember =
            serde_json::from_str(r#"{"id": 4, "raft_addr": "127.0.0.1:7004", "role": "learner"}"#)
                .expect("parses");
        assert_eq!((ok.id, ok.role.as_deref()), (4, Some("learner")));
        for bad in [
            r#"{"id": 4}"#,
            r#"{"id": 4, "raft_addr": "nowhere"}"#,
            r#"{"id": 4, "raft_addr": "127.0.0.1:7004", "extra": 1}"#,
        ] {
            assert!(serde_json::from_str::<AddMember>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Transfer>(r#"{"id": 2}"#).is_ok());
        assert!(serde_json::from_str::<Transfer>(r#"{"to": 2}"#).is_err());
    }
}
