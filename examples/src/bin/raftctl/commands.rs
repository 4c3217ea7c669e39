//! What each command asks and prints.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::client::Client;
use super::table::{ids, render, text};
use super::{Command, LeaderAction, Members};

/// A command's answer: JSON for `--json`, text for a terminal, and what
/// failed if it is not a success (`health` with an unhealthy member
/// prints its table, then fails).
pub struct Done {
    pub json: Value,
    pub text: String,
    pub failure: Option<String>,
}

impl Done {
    fn ok(json: Value, text: String) -> Self {
        Done {
            json,
            text,
            failure: None,
        }
    }
}

pub fn run(c: &Client, command: &Command) -> Result<Done> {
    match command {
        Command::Status => status(c),
        Command::Members { action } => match action {
            Members::List => list(c),
            Members::Add {
                id,
                raft_addr,
                learner,
            } => {
                let role = if *learner { "learner" } else { "voter" };
                let body = json!({ "id": id, "raft_addr": raft_addr.to_string(), "role": role });
                change(
                    c,
                    "POST",
                    "/cluster/members",
                    Some(&body),
                    &format!("members add {id}"),
                )
            }
            Members::Remove { id } => change(
                c,
                "DELETE",
                &format!("/cluster/members/{id}"),
                None,
                &format!("members remove {id}"),
            ),
            Members::Promote { id } => promote(c, *id),
        },
        Command::Leader { action: None } => leader(c),
        Command::Leader {
            action: Some(LeaderAction::Move { id }),
        } => {
            let body = json!({ "id": id });
            let a = c
                .call("POST", "/cluster/leader", Some(&body))?
                .ok(&format!("leader move {id}"))?;
            let text = format!("leader: {}", text(&a["leader"]));
            Ok(Done::ok(a, text))
        }
        Command::Snapshot => {
            let a = c.call("POST", "/cluster/snapshot", None)?.ok("snapshot")?;
            let text = format!("snapshot at index {}", text(&a["index"]));
            Ok(Done::ok(a, text))
        }
        Command::Health => health(c),
        // Needs no node: `main` runs it before any client exists.
        Command::Certs { .. } => bail!("`certs` talks to no node"),
    }
}

fn cluster_status(c: &Client) -> Result<Value> {
    c.call("GET", "/cluster/status", None)?.ok("cluster status")
}

fn status(c: &Client) -> Result<Done> {
    let s = cluster_status(c)?;
    let rows: Vec<Vec<String>> = members(&s)
        .iter()
        .map(|m| {
            let role = if m["reachable"] == false {
                "unreachable".to_string()
            } else {
                text(&m["role"])
            };
            [
                text(&m["id"]),
                text(&m["raft_addr"]),
                role,
                text(&m["term"]),
                text(&m["commit_index"]),
                text(&m["applied_index"]),
                text(&m["trails_leader_by"]),
            ]
            .into()
        })
        .collect();
    let table = render(
        &[
            "ID",
            "RAFT ADDRESS",
            "ROLE",
            "TERM",
            "COMMIT",
            "APPLIED",
            "TRAILS LEADER BY",
        ],
        &rows,
    );
    Ok(Done::ok(s, table))
}

fn members(s: &Value) -> Vec<Value> {
    s["members"].as_array().cloned().unwrap_or_default()
}

fn config_text(a: &Value) -> String {
    format!(
        "voters: {}\nlearners: {}",
        ids(&a["voters"]),
        ids(&a["learners"])
    )
}

fn list(c: &Client) -> Result<Done> {
    let s = c.call("GET", "/status", None)?.ok("members list")?;
    let a = json!({ "voters": s["voters"], "learners": s["learners"] });
    let text = config_text(&a);
    Ok(Done::ok(a, text))
}

fn change(c: &Client, method: &str, path: &str, body: Option<&Value>, what: &str) -> Result<Done> {
    let a = c.call(method, path, body)?.ok(what)?;
    let text = config_text(&a);
    Ok(Done::ok(a, text))
}

fn promote(c: &Client, id: u64) -> Result<Done> {
    let s = cluster_status(c)?;
    let Some(m) = members(&s).into_iter().find(|m| m["id"] == id) else {
        bail!("members promote {id}: node {id} is not a member");
    };
    let Some(raft_addr) = m["raft_addr"].as_str() else {
        bail!("members promote {id}: the address book has no raft address for node {id}");
    };
    let body = json!({ "id": id, "raft_addr": raft_addr, "role": "voter" });
    change(
        c,
        "POST",
        "/cluster/members",
        Some(&body),
        &format!("members promote {id}"),
    )
}

fn leader(c: &Client) -> Result<Done> {
    let s = c.call("GET", "/status", None)?.ok("leader")?;
    let Some(l) = s["leader"].as_u64() else {
        bail!("leader: no leader is known (no quorum, or an election under way)");
    };
    Ok(Done::ok(json!({ "leader": l }), l.to_string()))
}

fn health(c: &Client) -> Result<Done> {
    let s = cluster_status(c)?;
    let mut all = Vec::new();
    let mut rows = Vec::new();
    let mut unhealthy = Vec::new();
    for m in members(&s) {
        let answer = match m["http_addr"].as_str() {
            Some(http) => c
                .call_at(&format!("http://{http}"), "GET", "/health", None)
                .map(|a| a.body)
                .unwrap_or_else(
                    |e| json!({ "health": false, "reason": format!("unreachable: {e}") }),
                ),
            None => json!({ "health": false, "reason": "no client address known" }),
        };
        let healthy = answer["health"] == true;
        if !healthy {
            unhealthy.push(format!(
                "node {} ({})",
                text(&m["id"]),
                text(&answer["reason"])
            ));
        }
        rows.push(vec![
            text(&m["id"]),
            text(&m["http_addr"]),
            if healthy {
                "healthy".into()
            } else {
                "unhealthy".into()
            },
            if healthy {
                "-".into()
            } else {
                text(&answer["reason"])
            },
        ]);
        all.push(json!({ "id": m["id"], "health": healthy, "answer": answer }));
    }
    let table = render(&["ID", "ADDRESS", "HEALTH", "REASON"], &rows);
    let failure = (!unhealthy.is_empty()).then(|| format!("unhealthy: {}", unhealthy.join(", ")));
    Ok(Done {
        json: json!({ "healthy": failure.is_none(), "members": all }),
        text: table,
        failure,
    })
}
