//! What the cluster API says of groups: the `groups` field of `/status`
//! (the groups this node holds) and `GET /cluster/groups` (every group:
//! its leader and members, asked of a node that holds it when this one
//! does not). It must never report a group it could not hear of as led.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use futures::future::join_all;
use raft_actors::core::{GroupId, NodeId};
use serde_json::{json, Value};

use super::holds;
use crate::cluster::{config, role_of};
use crate::error::ApiError;
use crate::node::Node;
use crate::operators::cluster_status::ask;
use crate::Service;

/// Registers `/cluster/groups` and the one-group membership routes.
pub(crate) fn routes<S: Service>(cfg: &mut web::ServiceConfig) {
    cfg.route("/cluster/groups", web::get().to(cluster_groups::<S>))
        .route(
            "/cluster/groups/{group}/members",
            web::post().to(super::members::add::<S>),
        )
        .route(
            "/cluster/groups/{group}/members/{id}",
            web::delete().to(super::members::remove::<S>),
        );
}

/// The `groups` field of `/status`: each group this node holds, as its
/// node here sees it (the metrics watch: no round trip).
pub(crate) fn held<S: Service>(node: &Node<S>) -> Value {
    let groups: Vec<Value> = node
        .groups
        .all()
        .filter(|(_, raft)| holds(raft))
        .map(|(g, raft)| {
            let m = raft.current();
            let mut entry = json!({
                "group": g,
                "role": role_of(m.role, m.membership.learners.contains(&m.id)),
                "leader": m.leader,
                "term": m.term,
                "commit_index": m.commit,
                "applied_index": m.applied.min(m.commit),
                "quiesced": m.quiesced,
            });
            if let (Some(e), Value::Object(c)) = (entry.as_object_mut(), config(&m.membership)) {
                e.extend(c);
            }
            entry
        })
        .collect();
    Value::from(groups)
}

/// `GET /cluster/groups`: every group's leader, voters and learners. A
/// group this node does not hold is reported by a node that does; if none
/// answers, its leader is `null` and `"reachable": false`.
async fn cluster_groups<S: Service>(node: web::Data<Node<S>>) -> Result<HttpResponse, ApiError> {
    let mut out: BTreeMap<GroupId, Value> = BTreeMap::new();
    for (g, raft) in node.groups.all() {
        if holds(raft) {
            let m = raft.current();
            let mut entry = json!({ "group": g, "leader": m.leader });
            if let (Some(e), Value::Object(c)) = (entry.as_object_mut(), config(&m.membership)) {
                e.extend(c);
            }
            out.insert(g, entry);
        }
    }
    // Whom to ask for the rest: each holder once, for all it holds.
    let missing: Vec<GroupId> = (0..node.group_count())
        .filter(|g| !out.contains_key(g))
        .collect();
    let mut askees: Vec<NodeId> = missing.iter().flat_map(|&g| node.holders(g)).collect();
    askees.sort_unstable();
    askees.dedup();
    let asks = askees.iter().map(|&id| {
        let node = &node;
        async move {
            let http = node.directory.get(id).and_then(|a| a.http)?;
            ask(http, node.settings.admin.as_ref(), &node.settings.calls).await
        }
    });
    for status in join_all(asks).await.into_iter().flatten() {
        let Some(list) = status.get("groups").and_then(Value::as_array) else {
            continue;
        };
        for entry in list {
            let Some(g) = entry.get("group").and_then(Value::as_u64) else {
                continue;
            };
            if missing.contains(&g) && !out.contains_key(&g) {
                out.insert(
                    g,
                    json!({
                        "group": g,
                        "leader": entry.get("leader").cloned().unwrap_or(Value::Null),
                        "voters": entry.get("voters").cloned().unwrap_or_else(|| json!([])),
                        "learners": entry.get("learners").cloned().unwrap_or_else(|| json!([])),
                    }),
                );
            }
        }
    }
    for g in missing {
        out.entry(g).or_insert_with(|| {
            json!({
                "group": g,
                "leader": null,
                "voters": node.groups.layout.holders(g),
                "learners": [],
                "reachable": false,
            })
        });
    }
    Ok(HttpResponse::Ok().json(json!({ "groups": out.into_values().collect::<Vec<_>>() })))
}
