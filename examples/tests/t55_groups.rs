//! A raft-kv spread over many Raft groups (`--groups N`, `--replication R`,
//! the reference's "Groups"), driven as a user drives it: keys land in the
//! groups the documented hash names, every node serves every key (its own
//! replica of the key's group, or forwarded to a node that holds it),
//! `/status` lists the groups a node holds and `/cluster/groups` every
//! group; the layout survives restarts; membership changes reach every
//! group; bad group flags stop a node with one line.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use common::*;
use serde_json::Value;

/// The reference's placement: group 0 on every voter, group g on `r`
/// voters from position (g - 1) mod n.
fn holders(g: u64, voters: &[u64], r: usize) -> BTreeSet<u64> {
    if g == 0 || r >= voters.len() {
        return voters.iter().copied().collect();
    }
    (0..r)
        .map(|i| voters[(g as usize - 1 + i) % voters.len()])
        .collect()
}

fn with_groups(n: u64) -> Opts {
    let mut opts = Opts::new(KV);
    opts.extra = vec!["--groups".into(), n.to_string()];
    opts
}

/// `/cluster/groups` of node `id`, once every group has a leader.
fn led_groups(c: &Cluster, id: u64, groups: u64) -> BTreeMap<u64, Value> {
    wait_until(
        Instant::now() + WAIT,
        "every group to have a leader",
        || {
            let a = try_request("GET", &c.url(id, "/cluster/groups"), None, &[])?;
            let list = a.json()["groups"].as_array()?.clone();
            let by: BTreeMap<u64, Value> = list
                .into_iter()
                .filter_map(|e| Some((e["group"].as_u64()?, e)))
                .collect();
            let led = by.len() as u64 == groups && by.values().all(|e| e["leader"].is_u64());
            led.then_some(by)
        },
    )
    .expect("every group is led")
}

fn ids(v: &Value) -> BTreeSet<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Waits until node `id` has applied `index` in group `group`.
fn wait_group_applied(c: &Cluster, id: u64, group: u64, index: u64) {
    wait_until(Instant::now() + WAIT, "the group to apply", || {
        let s = c.status(id)?;
        let entry = s["groups"]
            .as_array()?
            .iter()
            .find(|e| e["group"] == group)?
            .clone();
        (entry["applied_index"].as_u64()? >= index).then_some(())
    })
    .unwrap_or_else(|e| panic!("node {id}, group {group}: {e}"));
}

#[test]
fn three_nodes_of_eight_groups_serve_every_key_through_every_node() {
    let c = Cluster::start(with_groups(8), 3);
    let groups = led_groups(&c, 2, 8);
    for (g, e) in &groups {
        assert_eq!(ids(&e["voters"]), [1, 2, 3].into(), "group {g}: {e}");
        assert!([1, 2, 3].contains(&e["leader"].as_u64().expect("led")));
    }
    // Every node holds every group, each with the contract's fields.
    for id in 1..=3 {
        let s = c.status(id).expect("status");
        let held: Vec<u64> = s["groups"]
            .as_array()
            .expect("a groups field")
            .iter()
            .map(|e| {
                for field in ["role", "leader", "term", "commit_index", "applied_index"] {
                    assert!(!e[field].is_null() || field == "leader", "{field} in {e}");
                }
                e["group"].as_u64().expect("group")
            })
            .collect();
        assert_eq!(held, (0..8).collect::<Vec<_>>(), "node {id}: {s}");
    }
    // Keys land in the groups the hash names, through any node.
    let mut used = BTreeSet::new();
    let mut written = BTreeMap::new();
    for i in 0..40u64 {
        let key = format!("key-{i}");
        let a = c.req(
            i % 3 + 1,
            "PUT",
            &format!("/kv/{key}"),
            Some(key.as_bytes()),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        let v = a.json();
        let g = v["group"].as_u64().expect("the answer names the group");
        assert_eq!(g, group_of(&key, 8), "{key}");
        used.insert(g);
        written.insert(key, (g, v["index"].as_u64().expect("index")));
    }
    assert_eq!(used.len(), 8, "40 keys reach every group: {used:?}");
    // Leaders spread: group g ≥ 1 is handed to voter g mod 3 (sorted by
    // id), so the three nodes lead groups 3 and 6, 1, 4 and 7, 2 and 5.
    let spread = wait_until(Instant::now() + WAIT, "the leaders to spread", || {
        let g = led_groups(&c, 1, 8);
        g.iter()
            .all(|(g, e)| *g == 0 || e["leader"] == g % 3 + 1)
            .then_some(g)
    });
    assert!(spread.is_ok(), "{:?}", led_groups(&c, 1, 8));
    // Group 0's leader is the operator's to move, and stays moved.
    let to = (led_groups(&c, 1, 8)[&0]["leader"].as_u64().expect("led") % 3) + 1;
    let moved = c.req(
        2,
        "POST",
        "/cluster/leader",
        Some(format!(r#"{{"id": {to}}}"#).as_bytes()),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert_eq!(c.wait_leader(), to);
    for (i, (key, (g, index))) in written.iter().enumerate() {
        let reader = (i as u64 + 1) % 3 + 1;
        assert_eq!(
            c.req(reader, "GET", &format!("/kv/{key}"), None).body,
            key.as_bytes()
        );
        // A stale read is local: once this node applied the write in the
        // key's group, it sees it.
        wait_group_applied(&c, reader, *g, *index);
        let stale = c.req(reader, "GET", &format!("/kv/{key}?consistency=stale"), None);
        assert_eq!(stale.body, key.as_bytes(), "{key} on node {reader}");
    }
    // Exactly once, per key: a retry gets the first answer and changes nothing.
    let idem = [("Idempotency-Key", "client-g:1")];
    let first = request("PUT", &c.url(1, "/kv/once"), Some(b"first"), &idem);
    let retry = request("PUT", &c.url(2, "/kv/once"), Some(b"second"), &idem);
    assert_eq!(first.status, 200);
    assert_eq!(retry.json(), first.json());
    assert_eq!(c.req(3, "GET", "/kv/once", None).body, b"first");
    // Compare-and-swap and delete, through followers.
    let cas = c.req(
        2,
        "POST",
        "/kv/once/cas",
        Some(br#"{"expect": "nope", "value": "x"}"#),
    );
    assert_eq!(cas.status, 409);
    assert_eq!(cas.json()["current"], "first");
    let ok = c.req(
        3,
        "POST",
        "/kv/once/cas",
        Some(br#"{"expect": "first", "value": "x"}"#),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(c.req(1, "DELETE", "/kv/once", None).status, 200);
    assert_eq!(c.req(2, "GET", "/kv/once", None).status, 404);
}

#[test]
fn nine_nodes_hold_a_third_of_the_groups_each_and_forward_the_rest() {
    let c = Cluster::start(with_groups(8), 9);
    let voters: Vec<u64> = (1..=9).collect();
    let groups = led_groups(&c, 5, 8);
    for (g, e) in &groups {
        assert_eq!(ids(&e["voters"]), holders(*g, &voters, 3), "group {g}: {e}");
    }
    for id in 1..=9 {
        let expected: BTreeSet<u64> = (0..8)
            .filter(|g| holders(*g, &voters, 3).contains(&id))
            .collect();
        let held = wait_until(Instant::now() + WAIT, "the node to list its groups", || {
            let s = c.status(id)?;
            let held: BTreeSet<u64> = s["groups"]
                .as_array()?
                .iter()
                .filter_map(|e| e["group"].as_u64())
                .collect();
            (held == expected).then_some(held)
        });
        assert!(
            held.is_ok(),
            "node {id} holds {expected:?}: {:?}",
            c.status(id)
        );
        assert!(
            expected.len() <= 4,
            "node {id} holds group 0 and about a third"
        );
    }
    // Every key through every node, most of them not holding its group.
    for i in 0..27u64 {
        let key = format!("spread-{i}");
        let writer = i % 9 + 1;
        let a = c.req(writer, "PUT", &format!("/kv/{key}"), Some(key.as_bytes()));
        assert_eq!(a.status, 200, "{key} through node {writer}: {}", a.text());
        assert_eq!(a.json()["group"], group_of(&key, 8));
        let reader = (i + 4) % 9 + 1;
        assert_eq!(
            c.req(reader, "GET", &format!("/kv/{key}"), None).body,
            key.as_bytes()
        );
    }
}

#[test]
fn the_layout_is_kept_across_restarts() {
    let mut c = Cluster::start(with_groups(8), 3);
    led_groups(&c, 1, 8);
    for i in 0..16 {
        let key = format!("kept-{i}");
        assert_eq!(
            c.req(1, "PUT", &format!("/kv/{key}"), Some(b"v")).status,
            200
        );
    }
    // Restarted with other flags, each node keeps the layout it was
    // founded with, and says so.
    c.opts.extra = vec!["--groups".into(), "3".into()];
    c.kill_all_and_relaunch();
    assert_eq!(led_groups(&c, 2, 8).len(), 8);
    for i in 0..16 {
        assert_eq!(c.req(3, "GET", &format!("/kv/kept-{i}"), None).body, b"v");
    }
    let a = c.req(2, "PUT", "/kv/kept-0", Some(b"w"));
    assert_eq!(a.json()["group"], group_of("kept-0", 8));
    assert!(c.stderr(1).contains("keeping it"), "{}", c.stderr(1));
}

#[test]
fn a_member_added_joins_every_group_and_a_removed_one_leaves_every_group() {
    let mut c = Cluster::start(with_groups(4), 3);
    led_groups(&c, 1, 4);
    assert_eq!(c.req(1, "PUT", "/kv/before", Some(b"1")).status, 200);
    c.add_node(4);
    c.launch(4, None);
    let raft = c.nodes[&4].raft;
    let body = format!(r#"{{"id": 4, "raft_addr": "127.0.0.1:{raft}"}}"#);
    let added = c.req(2, "POST", "/cluster/members", Some(body.as_bytes()));
    assert_eq!(added.status, 200, "{}", added.text());
    for (g, e) in led_groups(&c, 3, 4) {
        assert_eq!(ids(&e["voters"]), [1, 2, 3, 4].into(), "group {g}: {e}");
    }
    // The new node serves every key from its own replicas.
    assert_eq!(c.req(4, "GET", "/kv/before", None).body, b"1");
    let removed = c.req(4, "DELETE", "/cluster/members/1", None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    let groups = wait_until(Instant::now() + WAIT, "node 1 to leave every group", || {
        let g = led_groups(&c, 2, 4);
        g.values()
            .all(|e| !ids(&e["voters"]).contains(&1) && e["leader"] != 1)
            .then_some(g)
    })
    .expect("node 1 left");
    for (g, e) in groups {
        assert_eq!(ids(&e["voters"]), [2, 3, 4].into(), "group {g}: {e}");
    }
    for i in 0..8 {
        let key = format!("after-{i}");
        assert_eq!(
            c.req(4, "PUT", &format!("/kv/{key}"), Some(b"2")).status,
            200
        );
        assert_eq!(c.req(2, "GET", &format!("/kv/{key}"), None).body, b"2");
    }
}

#[test]
fn bad_group_flags_stop_a_node_with_one_line() {
    let tmp = TempDir::new("groups-flags");
    let (raft, http) = (free_port(), free_port());
    let mut args = single_node_args(&tmp.0.join("d"), raft, http);
    for (bad, mentions) in [("0", "--groups"), ("1025", "--groups"), ("x", "--groups")] {
        let mut a = args.clone();
        a.extend(["--groups".into(), bad.into()]);
        one_line_failure(KV, &a, mentions);
    }
    let mut a = args.clone();
    a.extend(["--replication".into(), "0".into()]);
    one_line_failure(KV, &a, "--replication");
    args.extend([
        "--groups".into(),
        "2".into(),
        "--storage".into(),
        "wal".into(),
    ]);
    one_line_failure(KV, &args, "wal");
    // A refused start fixes no layout: the data dir may still be founded
    // with one group.
    assert!(!tmp.0.join("d").join("groups").exists());
    // A data dir of several groups that lost its layout file is refused,
    // never read as one group.
    let dir = tmp.0.join("lost-layout");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("raft.redb"), b"").expect("a store");
    std::fs::write(dir.join("roster-1"), b"").expect("a group's roster");
    let (raft, http) = (free_port(), free_port());
    one_line_failure(KV, &single_node_args(&dir, raft, http), "several groups");
}

#[test]
fn a_node_of_many_groups_restarted_on_a_lost_data_dir_is_refused_and_comes_back_as_the_reference_says(
) {
    let mut c = Cluster::start(with_groups(4), 3);
    led_groups(&c, 1, 4);
    let mut written = BTreeMap::new();
    for i in 0..12u64 {
        let key = format!("lost-{i}");
        let a = c.req(1, "PUT", &format!("/kv/{key}"), Some(b"kept"));
        assert_eq!(a.status, 200, "{}", a.text());
        written.insert(
            key,
            (
                a.json()["group"].as_u64().expect("group"),
                a.json()["index"].as_u64().expect("index"),
            ),
        );
    }
    let peers = c.peers_flag();
    c.kill(3);
    std::fs::remove_dir_all(&c.nodes[&3].dir).expect("wipe node 3's data dir");
    let mut lost = spawn(KV, &c.args(3, Some(&peers)), &c.tmp.0, "n3-lost");
    let exit = wait_until(Instant::now() + WAIT, "the process to exit", || {
        lost.child.try_wait().ok().flatten()
    })
    .expect("it exits");
    let err = lost.stderr();
    assert_eq!(exit.code(), Some(1), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(
        err.contains("/cluster/members/3"),
        "{err:?} does not say what to do"
    );
    // The way back: remove it (from every group), start it empty, add it.
    let removed = c.req(1, "DELETE", "/cluster/members/3", None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    c.launch(3, None);
    let body = format!(
        r#"{{"id": 3, "raft_addr": "127.0.0.1:{}"}}"#,
        c.nodes[&3].raft
    );
    let added = c.req(2, "POST", "/cluster/members", Some(body.as_bytes()));
    assert_eq!(added.status, 200, "{}", added.text());
    for (g, e) in led_groups(&c, 3, 4) {
        assert_eq!(ids(&e["voters"]), [1, 2, 3].into(), "group {g}: {e}");
    }
    for (key, (g, index)) in &written {
        wait_group_applied(&c, 3, *g, *index);
        let got = c.req(3, "GET", &format!("/kv/{key}?consistency=stale"), None);
        assert_eq!(got.body, b"kept", "{key}");
    }
}

#[test]
fn a_removed_node_cannot_write_through_the_holders_of_groups_it_does_not_hold() {
    let c = Cluster::start(with_groups(4), 4);
    let voters = [1, 2, 3, 4];
    led_groups(&c, 1, 4);
    // A key of a group that node 4 does not hold: it would forward it.
    let key = (0..)
        .map(|i| format!("away-{i}"))
        .find(|k| !holders(group_of(k, 4), &voters, 3).contains(&4))
        .expect("a key of a group without node 4");
    let through = c.req(4, "PUT", &format!("/kv/{key}"), Some(b"member"));
    assert_eq!(through.status, 200, "a member forwards: {}", through.text());
    let removed = c.req(1, "DELETE", "/cluster/members/4", None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    // Every holder has the removal: whichever node 4 asks knows.
    wait_until(Instant::now() + WAIT, "node 4 to leave group 0", || {
        let gone = |id| {
            c.status(id)
                .is_some_and(|s| !ids(&s["voters"]).contains(&4))
        };
        [1, 2, 3].into_iter().all(gone).then_some(())
    })
    .expect("node 4 removed");
    // Node 4 may never learn it was removed; the holders know, and refuse.
    let refused = c.req_once(4, "PUT", &format!("/kv/{key}"), Some(b"removed"));
    assert_error_body(&refused, 503);
    assert!(
        refused.text().contains("not a member"),
        "{}",
        refused.text()
    );
    assert_eq!(
        c.req(1, "GET", &format!("/kv/{key}"), None).body,
        b"member",
        "nothing was written"
    );
}

/// Each held group's `"quiesced"` on node `id`, by group.
fn quiesced_groups(c: &Cluster, id: u64) -> Option<BTreeMap<u64, bool>> {
    let s = c.status(id)?;
    s["groups"]
        .as_array()?
        .iter()
        .map(|e| Some((e["group"].as_u64()?, e["quiesced"].as_bool()?)))
        .collect()
}

/// Waits until, on every node, every group but group 0 is quiesced and
/// group 0 is not; answers each node's `/status`.
fn wait_quiesced(c: &Cluster, groups: u64) -> BTreeMap<u64, Value> {
    wait_until(
        Instant::now() + WAIT,
        "groups 1.. to quiesce everywhere",
        || {
            let quiet = (1..=3).all(|id| {
                quiesced_groups(c, id).is_some_and(|q| {
                    q.len() as u64 == groups && q.iter().all(|(g, quiet)| *quiet == (*g != 0))
                })
            });
            quiet.then(|| (1..=3).filter_map(|id| Some((id, c.status(id)?))).collect())
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}",
            (1..=3).map(|id| quiesced_groups(c, id)).collect::<Vec<_>>()
        )
    })
}

/// The term of group `g` in a node's `/status`.
fn group_term(status: &Value, g: u64) -> Option<u64> {
    status["groups"]
        .as_array()?
        .iter()
        .find(|e| e["group"] == g)?["term"]
        .as_u64()
}

/// `--quiesce-after-ticks`: idle groups beyond group 0 stop their timers
/// on every node (`"quiesced": true` in `/status`, the reference's
/// "Groups"), group 0 never; a write to a quiesced group's key through any
/// node wakes that group and is served, with no election, and the group
/// quiesces again.
#[test]
fn idle_groups_quiesce_and_a_request_for_one_of_their_keys_wakes_them() {
    let mut opts = with_groups(4);
    opts.extra
        .extend(["--quiesce-after-ticks".to_string(), "10".to_string()]);
    let c = Cluster::start(opts, 3);
    led_groups(&c, 1, 4);
    let before = wait_quiesced(&c, 4);
    let key = (0..)
        .map(|i| format!("quiet-{i}"))
        .find(|k| group_of(k, 4) != 0)
        .expect("a key of a group beyond 0");
    let g = group_of(&key, 4);
    let term = group_term(&before[&1], g).expect("group term");

    let put = c.req(3, "PUT", &format!("/kv/{key}"), Some(b"awake"));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["group"], g);
    assert_eq!(c.req(2, "GET", &format!("/kv/{key}"), None).body, b"awake");

    let after = wait_quiesced(&c, 4);
    for (id, s) in &after {
        assert_eq!(
            group_term(s, g),
            Some(term),
            "no election in group {g} on node {id}: {s}"
        );
    }
}
