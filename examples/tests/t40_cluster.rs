//! The cluster API and faults on real processes: leader SIGKILL and
//! recovery, a restarted node catching up, a learner caught up by snapshot
//! then promoted, removing the leader, leadership transfer, metrics.

mod common;

use std::time::Instant;

use common::*;

fn put(c: &Cluster, node: u64, key: &str, value: &str) -> u64 {
    let a = wait_until(Instant::now() + WAIT, "a write to be acknowledged", || {
        try_request(
            "PUT",
            &c.url(node, &format!("/kv/{key}")),
            Some(value.as_bytes()),
            &[],
        )
        .filter(|a| a.status == 200)
    })
    .expect("write acknowledged");
    a.json()["index"].as_u64().expect("index")
}

fn stale(c: &Cluster, node: u64, key: &str) -> Option<Vec<u8>> {
    try_request(
        "GET",
        &c.url(node, &format!("/kv/{key}?consistency=stale")),
        None,
        &[],
    )
    .filter(|a| a.status == 200)
    .map(|a| a.body)
}

fn ids(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn leader_sigkill_recovery_and_restart_catch_up() {
    let mut c = Cluster::start(Opts::new(KV), 3);
    let old = c.wait_leader();
    put(&c, old, "before", "1");
    c.kill(old);
    let rest = c.running();
    let new = c.wait_leader_among(&rest);
    assert_ne!(new, old);
    let follower = rest.into_iter().find(|i| *i != new).expect("a follower");
    let idx = put(&c, follower, "after", "2");
    assert_eq!(c.req(new, "GET", "/kv/before", None).body, b"1");

    // The killed node comes back on its own storage (a --peers that
    // disagrees is ignored, with a warning) and catches up.
    let peers = format!("{},9=127.0.0.1:9", c.peers_flag());
    c.launch(old, Some(&peers));
    c.wait_applied(old, idx);
    assert_eq!(stale(&c, old, "after").as_deref(), Some(&b"2"[..]));
    assert_eq!(stale(&c, old, "before").as_deref(), Some(&b"1"[..]));
    let s = c.status(old).expect("status");
    assert_eq!(ids(&s["voters"]), vec![1, 2, 3]);
    if STORAGE == "redb" {
        assert!(c.stderr(old).contains("disagrees"), "{}", c.stderr(old));
    }
}

#[test]
fn learner_added_caught_up_by_snapshot_then_promoted() {
    let mut opts = Opts::new(KV);
    opts.extra = ["--snapshot-threshold", "20", "--trailing-logs", "5"]
        .map(String::from)
        .to_vec();
    let mut c = Cluster::start(opts, 3);
    let leader = c.wait_leader();
    // With several groups (RAFT_KV_GROUPS), keys of group 0: its log is
    // the one snapshotted and compacted below.
    let keys = c.keys_of_group_zero("k", 60);
    for (i, key) in keys.iter().enumerate() {
        put(&c, leader, key, &format!("v{i}"));
    }
    let snap = c.req(leader, "POST", "/cluster/snapshot", None);
    assert_eq!(snap.status, 200, "{}", snap.text());
    let snap_index = snap.json()["index"].as_u64().expect("index");
    assert!(snap_index >= 60);
    // The leader's log no longer starts at 1: a node that joins now can
    // only catch up by InstallSnapshot.
    let first = c.status(leader).expect("status")["first_index"]
        .as_u64()
        .expect("first_index");
    assert!(first > 1, "log not compacted: first index {first}");

    // Node 4 starts without --peers: a follower of nobody, refusing writes.
    c.add_node(4);
    c.launch(4, None);
    let s = c.status(4).expect("status");
    assert_eq!(
        (s["role"].as_str(), s["leader"].is_null()),
        (Some("follower"), true)
    );
    assert!(ids(&s["voters"]).is_empty() && ids(&s["learners"]).is_empty());
    assert_error_body(&c.req_once(4, "PUT", "/kv/x", Some(b"y")), 503);

    // Added as a learner through a follower (forwarded to the leader).
    let follower = c
        .running()
        .into_iter()
        .find(|i| *i != leader && *i != 4)
        .expect("follower");
    let body = format!(
        r#"{{"id": 4, "raft_addr": "127.0.0.1:{}", "role": "learner"}}"#,
        c.nodes[&4].raft
    );
    let add = c.req(follower, "POST", "/cluster/members", Some(body.as_bytes()));
    assert_eq!(add.status, 200, "{}", add.text());
    assert_eq!(ids(&add.json()["learners"]), vec![4]);
    assert_eq!(ids(&add.json()["voters"]), vec![1, 2, 3]);
    c.wait_applied(4, snap_index);
    assert_eq!(
        stale(&c, 4, &keys[0]).as_deref(),
        Some(&b"v0"[..]),
        "caught up by snapshot"
    );
    assert_eq!(c.status(4).expect("status")["role"], "learner");
    let idx = put(&c, leader, "late", "yes");
    c.wait_applied(4, idx);
    assert_eq!(stale(&c, 4, "late").as_deref(), Some(&b"yes"[..]));

    // Promoted to voter.
    let body = format!(
        r#"{{"id": 4, "raft_addr": "127.0.0.1:{}", "role": "voter"}}"#,
        c.nodes[&4].raft
    );
    let promote = c.req(leader, "POST", "/cluster/members", Some(body.as_bytes()));
    assert_eq!(promote.status, 200, "{}", promote.text());
    assert_eq!(ids(&promote.json()["voters"]), vec![1, 2, 3, 4]);
    assert!(ids(&promote.json()["learners"]).is_empty());
    wait_until(
        Instant::now() + WAIT,
        "node 4 to see itself a voter",
        || {
            let s = c.status(4)?;
            (ids(&s["voters"]) == vec![1, 2, 3, 4] && s["role"] == "follower").then_some(())
        },
    )
    .expect("promoted");
    // The new voter can reach every member: with the leader gone, the
    // other three still elect one and commit.
    c.kill(leader);
    let rest = c.running();
    let new = c.wait_leader_among(&rest);
    put(&c, new, "after-promotion", "ok");
}

#[test]
fn remove_the_leader_and_transfer_leadership() {
    let c = Cluster::start(Opts::new(KV), 3);
    let leader = c.wait_leader();
    let others: Vec<u64> = c.running().into_iter().filter(|i| *i != leader).collect();

    // Leadership transfer, asked of a follower (forwarded).
    let to = others[0];
    let t = c.req(
        others[1],
        "POST",
        "/cluster/leader",
        Some(format!(r#"{{"id": {to}}}"#).as_bytes()),
    );
    assert_eq!(t.status, 200, "{}", t.text());
    assert_eq!(t.json()["leader"].as_u64(), Some(to));
    assert_eq!(c.wait_leader(), to);
    assert_error_body(
        &c.req(to, "POST", "/cluster/leader", Some(b"{\"id\": \"x\"}")),
        400,
    );

    // Remove the leader itself.
    put(&c, to, "k", "v");
    let r = c.req(to, "DELETE", &format!("/cluster/members/{to}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let left: Vec<u64> = c.running().into_iter().filter(|i| *i != to).collect();
    assert_eq!(ids(&r.json()["voters"]), left);
    let new = c.wait_leader_among(&left);
    assert_ne!(new, to);
    let idx = put(&c, new, "after", "removal");
    assert_eq!(c.req(left[0], "GET", "/kv/after", None).body, b"removal");
    let _ = idx;

    // The removed node keeps running, is in no list, and refuses writes.
    let s = wait_until(
        Instant::now() + WAIT,
        "the removed node to apply its removal",
        || c.status(to).filter(|s| !ids(&s["voters"]).contains(&to)),
    )
    .expect("removed");
    assert!(!ids(&s["learners"]).contains(&to));
    assert_error_body(&c.req_once(to, "PUT", "/kv/x", Some(b"y")), 503);
    assert_error_body(
        &c.req(new, "DELETE", &format!("/cluster/members/{to}"), None),
        404,
    );
    assert_error_body(&c.req(new, "DELETE", "/cluster/members/abc", None), 400);
}

#[test]
fn status_snapshot_and_metrics() {
    let c = Cluster::start(Opts::new(KV), 3);
    let leader = c.wait_leader();
    let idx = put(&c, leader, "m", "1");
    for id in c.running() {
        c.wait_applied(id, idx);
        let s = c.status(id).expect("status");
        for field in [
            "id",
            "role",
            "term",
            "leader",
            "commit_index",
            "applied_index",
            "voters",
            "learners",
        ] {
            assert!(s.get(field).is_some(), "{field} missing: {s}");
        }
        assert_eq!(s["id"].as_u64(), Some(id));
        assert_eq!(s["role"], if id == leader { "leader" } else { "follower" });
        assert_eq!(s["leader"].as_u64(), Some(leader));
        assert_eq!(ids(&s["voters"]), vec![1, 2, 3]);
        let snap = c.req(id, "POST", "/cluster/snapshot", None);
        assert_eq!(snap.status, 200);
        assert!(snap.json()["index"].as_u64().expect("index") >= idx);
    }
    let m = c.req(leader, "GET", "/metrics", None);
    assert_eq!(m.status, 200);
    let text = m.text();
    for line in [
        "raft_role{role=\"leader\"} 1",
        "raft_term ",
        "raft_commit_index ",
        "raft_applied_index ",
        "raft_proposals_total{outcome=\"ok\"} ",
        "raft_proposal_latency_seconds_bucket{le=",
        "raft_replication_lag_entries{peer=",
        "raft_transport_drops{peer=",
        "raft_transport_reconnects{peer=",
        "raft_entries_per_fsync ",
        "raft_storage_writes ",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    // On redb: the snapshot, the fsyncs the store counted and the writes
    // that synced, the election, the links with every peer.
    let at_least = |name: &str, min: f64| {
        let v = sample(&text, name);
        assert!(v.is_some_and(|v| v >= min), "{name} = {v:?}, want >= {min}");
    };
    at_least("raft_leader", leader as f64);
    at_least("raft_snapshots_taken_total", 1.0);
    at_least("raft_snapshot_bytes_total{kind=\"taken\"}", 1.0);
    at_least("raft_fsyncs_total", 1.0);
    at_least("raft_fsync_seconds_count", 1.0);
    at_least("raft_storage_write_seconds_count", 1.0);
    at_least("raft_apply_seconds_count", 1.0);
    at_least("raft_elections_won_total", 1.0);
    for peer in c.running().into_iter().filter(|p| *p != leader) {
        let sent = format!("raft_transport_bytes_total{{peer=\"{peer}\",direction=\"sent\"}}");
        at_least(&sent, 1.0);
    }
    // Every series the Grafana dashboard queries is there, under its name.
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let exprs = dashboard.to_string();
    for name in exprs
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .filter(|w| w.starts_with("raft_"))
    {
        let exported = text.lines().any(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(['{', ' ']))
        });
        assert!(
            exported,
            "the dashboard queries {name}, not exported:\n{text}"
        );
    }
    let f = c
        .running()
        .into_iter()
        .find(|i| *i != leader)
        .expect("follower");
    assert!(c
        .req(f, "GET", "/metrics", None)
        .text()
        .contains("raft_role{role=\"follower\"} 1"));
}

const DASHBOARD: &str = include_str!("../../raft-actors/service/grafana/raft-actors.json");

/// The value of the sample `series` (name and labels, as exported).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn sigkill_of_every_node_loses_no_acknowledged_write_and_sigterm_closes_the_store() {
    let mut c = Cluster::start(Opts::new(KV), 3);
    let leader = c.wait_leader();
    let mut acked = Vec::new();
    for i in 0..30 {
        let node = 1 + (i % 3);
        put(&c, node, &format!("d{i}"), &format!("{i}"));
        acked.push(i);
    }
    let _ = leader;
    let leader = c.kill_all_and_relaunch();
    for i in &acked {
        let got = c.req(leader, "GET", &format!("/kv/d{i}"), None);
        assert_eq!(got.text(), i.to_string(), "acknowledged write d{i} lost");
    }
    // SIGTERM closes the store: the node restarts on it at once.
    let mut p = c
        .nodes
        .get_mut(&1)
        .and_then(|n| n.proc.take())
        .expect("running");
    let exit = p
        .terminate(std::time::Duration::from_secs(10))
        .expect("exited");
    assert_eq!(exit.code(), Some(0));
    c.launch(1, Some(&c.peers_flag()));
    let idx = put(&c, 1, "after-restart", "ok");
    c.wait_applied(1, idx);
    assert_eq!(stale(&c, 1, "d0").as_deref(), Some(&b"0"[..]));
}

/// A voter that never answered is not promoted, however young the log:
/// adding an unreachable node as a voter leaves it a learner (504, try
/// again) and the cluster keeps its quorum and takes writes.
#[test]
fn an_unreachable_node_added_as_voter_stays_a_learner() {
    let mut opts = Opts::new(KV);
    opts.extra = ["--timeout-ms", "1000"].map(String::from).to_vec();
    let c = Cluster::start(opts, 1);
    let leader = c.wait_leader();
    let dead = format!("127.0.0.1:{}", free_port());
    let body = format!(r#"{{"id": 2, "raft_addr": "{dead}", "role": "voter"}}"#);
    let a = c.req_once(leader, "POST", "/cluster/members", Some(body.as_bytes()));
    assert_error_body(&a, 504);
    let s = c.status(leader).expect("status");
    assert_eq!(ids(&s["voters"]), vec![1], "{s}");
    assert_eq!(ids(&s["learners"]), vec![2], "{s}");
    let w = c.req(leader, "PUT", "/kv/still", Some(b"writable"));
    assert_eq!(w.status, 200, "{}", w.text());
}
