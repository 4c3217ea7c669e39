//! `GET /cluster/status`: every member's `/status`, gathered by whichever
//! node is asked, through the replicated address book, each member asked
//! with its own timeout and all at once; merged with the leader's view of
//! how far each one trails it.
//!
//! It must never let one slow or dead member hold up the answer past
//! [`MEMBER_TIMEOUT`], nor invent what a member did not report: what an
//! unreachable member could not say is `null`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use futures::future::join_all;
use raft_actors::core::NodeId;
use serde_json::{json, Value};

use crate::admin::AdminToken;
use crate::cluster::status_value;
use crate::error::ApiError;
use crate::node::Node;
use crate::node_client::NodeClient;
use crate::Service;

/// How long one member gets to answer.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(1);

/// One member as the gathering node found it.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Its Raft address, from the address book.
    pub raft_addr: Option<String>,
    /// Its client address, from the address book.
    pub http_addr: Option<String>,
    /// Its `/status` body, if it answered.
    pub status: Option<Value>,
}

/// Merges the members' reports into the reference's answer. The leader's
/// `/status` (its `replication` list) says how far each member trails it;
/// without a reachable leader, that is how far a member's applied index
/// trails the highest commit index any member reported.
///
/// ```
/// use raft_actors_service::operators::cluster_status::{merge, Report};
/// use serde_json::json;
/// let leader = json!({"id": 1, "role": "leader", "term": 3, "commit_index": 9, "applied_index": 9,
///     "last_index": 9, "replication": [{"id": 2, "match_index": 7, "last_contact_ms": 40}]});
/// let reports = [
///     (1, Report { status: Some(leader), ..Report::default() }),
///     (2, Report::default()),
/// ].into();
/// let out = merge(Some(1), 3, &reports);
/// assert_eq!(out["members"][1]["reachable"], false);
/// assert_eq!(out["members"][1]["trails_leader_by"], 2);
/// assert_eq!(out["members"][1]["role"], serde_json::Value::Null);
/// ```
pub fn merge(leader: Option<NodeId>, term: u64, reports: &BTreeMap<NodeId, Report>) -> Value {
    let field = |id: NodeId, name: &str| {
        reports
            .get(&id)
            .and_then(|r| r.status.as_ref())
            .map_or(Value::Null, |s| s[name].clone())
    };
    // The leader as the members report it: the one that says it leads.
    let leading = reports
        .iter()
        .find(|(_, r)| r.status.as_ref().is_some_and(|s| s["role"] == "leader"))
        .map(|(id, _)| *id)
        .or(leader);
    let leader_status = leading
        .and_then(|l| reports.get(&l))
        .and_then(|r| r.status.as_ref());
    let view: BTreeMap<u64, &Value> = leader_status
        .and_then(|s| s["replication"].as_array())
        .map(|peers| {
            peers
                .iter()
                .filter_map(|p| Some((p["id"].as_u64()?, p)))
                .collect()
        })
        .unwrap_or_default();
    let leader_last = leader_status.and_then(|s| s["last_index"].as_u64());
    let highest_commit = reports
        .values()
        .filter_map(|r| r.status.as_ref()?["commit_index"].as_u64())
        .max();
    let members: Vec<Value> = reports
        .iter()
        .map(|(id, r)| {
            let is_leader = Some(*id) == leading && leader_status.is_some();
            let trails = if is_leader {
                Some(0)
            } else if let (Some(last), Some(p)) = (leader_last, view.get(id)) {
                p["match_index"].as_u64().map(|m| last.saturating_sub(m))
            } else {
                let applied = field(*id, "applied_index").as_u64();
                highest_commit
                    .zip(applied)
                    .map(|(c, a)| c.saturating_sub(a))
            };
            let contact = if is_leader {
                Value::from(0)
            } else {
                view.get(id)
                    .map_or(Value::Null, |p| p["last_contact_ms"].clone())
            };
            json!({
                "id": id,
                "raft_addr": r.raft_addr,
                "http_addr": r.http_addr,
                "role": field(*id, "role"),
                "term": field(*id, "term"),
                "commit_index": field(*id, "commit_index"),
                "applied_index": field(*id, "applied_index"),
                "trails_leader_by": trails,
                "last_contact_ms": contact,
                "reachable": r.status.is_some(),
            })
        })
        .collect();
    json!({ "leader": leading.or(leader), "term": term, "members": members })
}

/// One member's `/status`, or `None` if it did not answer in time.
pub(crate) async fn ask(
    http: std::net::SocketAddr,
    admin: Option<&AdminToken>,
    calls: &NodeClient,
) -> Option<Value> {
    let mut request = match calls.request(Method::GET, http, "/status", MEMBER_TIMEOUT) {
        Ok(r) => r,
        Err(why) => {
            tracing::debug!(%http, %why, "cannot ask a member for its status");
            return None;
        }
    };
    if let Some(token) = admin {
        // The members' `/status` may be guarded (`--admin-token-protects-reads`).
        request = request.insert_header(token.header());
    }
    let mut res = request.send().await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    let body = res.body().await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// `GET /cluster/status`.
pub(crate) async fn handler<S: Service>(
    node: web::Data<Node<S>>,
) -> Result<HttpResponse, ApiError> {
    let s = node.status().await?;
    let own = status_value(&s, node.raft.current().applied, node.settings.tick);
    let members = s.committed_membership.members();
    let admin = node.settings.admin.as_ref();
    let calls = &node.settings.calls;
    let asks = members.iter().map(|id| {
        let addrs = node.directory.get(*id);
        let own = (*id == s.id).then(|| own.clone());
        async move {
            let status = match (own, addrs.and_then(|a| a.http)) {
                (Some(s), _) => Some(s),
                (None, Some(http)) => ask(http, admin, calls).await,
                (None, None) => None,
            };
            let report = Report {
                raft_addr: addrs.map(|a| a.raft.to_string()),
                http_addr: addrs.and_then(|a| a.http).map(|a| a.to_string()),
                status,
            };
            (*id, report)
        }
    });
    let reports: BTreeMap<NodeId, Report> = join_all(asks).await.into_iter().collect();
    Ok(HttpResponse::Ok().json(merge(s.leader, s.term, &reports)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reachable(role: &str, commit: u64, applied: u64) -> Report {
        Report {
            raft_addr: Some("127.0.0.1:7001".into()),
            http_addr: Some("127.0.0.1:8001".into()),
            status: Some(json!({
                "role": role, "term": 4, "commit_index": commit, "applied_index": applied,
                "last_index": commit,
            })),
        }
    }

    #[test]
    fn the_leaders_view_says_how_far_each_member_trails() {
        let mut leader = reachable("leader", 100, 100);
        let s = leader.status.as_mut().expect("set");
        s["replication"] = json!([
            {"id": 2, "match_index": 100, "last_contact_ms": 10},
            {"id": 3, "match_index": 60, "last_contact_ms": 900},
        ]);
        let reports = [
            (1, leader),
            (2, reachable("follower", 100, 100)),
            (3, reachable("follower", 60, 55)),
        ]
        .into();
        let out = merge(Some(1), 4, &reports);
        let trails: Vec<_> = (0..3)
            .map(|i| out["members"][i]["trails_leader_by"].clone())
            .collect();
        assert_eq!(trails, vec![json!(0), json!(0), json!(40)]);
        assert_eq!(out["members"][2]["last_contact_ms"], 900);
        assert_eq!(out["leader"], 1);
        assert_eq!(out["members"][0]["http_addr"], "127.0.0.1:8001");
    }

    #[test]
    fn without_the_leader_members_trail_the_highest_commit_reported() {
        let reports = [
            (1, Report::default()),
            (2, reachable("follower", 90, 90)),
            (3, reachable("candidate", 80, 70)),
        ]
        .into();
        let out = merge(Some(1), 5, &reports);
        assert_eq!(out["members"][0]["reachable"], false);
        assert_eq!(out["members"][0]["trails_leader_by"], Value::Null);
        assert_eq!(out["members"][0]["term"], Value::Null);
        assert_eq!(out["members"][2]["trails_leader_by"], 20);
        assert_eq!(out["leader"], 1, "the gathering node's leader stands");
    }
}
