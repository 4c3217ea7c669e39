//! The operators' interface on real raft-kv processes: `/health`,
//! `/cluster/status`, and every `raftctl` command with its failure modes
//! (an unreachable endpoint, an unknown member, no quorum, bad usage).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// One raftctl run: exit code, stdout, stderr.
struct Ctl {
    code: i32,
    out: String,
    err: String,
}

fn ctl(c: &Cluster, ids: &[u64], args: &[&str]) -> Ctl {
    let endpoints: Vec<String> = ids.iter().map(|id| c.url(*id, "")).collect();
    let mut all = vec!["--endpoints".to_string(), endpoints.join(",")];
    all.extend(args.iter().map(|a| a.to_string()));
    raw(&all)
}

fn raw(args: &[String]) -> Ctl {
    let out = Command::new(RAFTCTL)
        .args(args)
        .output()
        .expect("run raftctl");
    Ctl {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A failure: exit 1 and exactly one line on stderr, containing `says`.
fn assert_fails(r: &Ctl, says: &str) {
    assert_eq!(r.code, 1, "stdout: {} stderr: {}", r.out, r.err);
    assert_eq!(r.err.trim_end().lines().count(), 1, "one line: {:?}", r.err);
    assert!(r.err.contains(says), "{:?} should say {says:?}", r.err);
}

fn health(c: &Cluster, id: u64) -> Answer {
    request_once("GET", &c.url(id, "/health"), None, &[])
}

fn put(c: &Cluster, id: u64, key: &str) {
    let a = c.req(id, "PUT", &format!("/kv/{key}"), Some(b"v"));
    assert_eq!(a.status, 200, "{}", a.text());
}

fn signal(c: &Cluster, id: u64, sig: i32) {
    let pid = c.nodes[&id].proc.as_ref().expect("running").pid();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, sig) };
}

#[test]
fn health_and_cluster_status_follow_the_cluster() {
    let mut c = Cluster::start(Opts::new(KV), 3);
    let leader = c.wait_leader();
    // With several groups (RAFT_KV_GROUPS), keys of group 0, whose commit
    // index `/health` reports.
    for key in c.keys_of_group_zero("k", 5) {
        put(&c, leader, &key);
    }
    for id in 1..=3 {
        let h = wait_until(Instant::now() + WAIT, "a healthy node", || {
            let h = health(&c, id);
            (h.status == 200).then_some(h)
        })
        .expect("healthy");
        let v = h.json();
        assert_eq!(v["health"], true);
        assert_eq!(v["leader"].as_u64(), Some(leader));
        assert!(v["commit_index"].as_u64() >= Some(6), "{v}");
        assert!(v["applied_index"].is_u64(), "{v}");
    }

    let f = (1..=3).find(|id| *id != leader).expect("a follower");
    let other = (1..=3)
        .find(|id| *id != leader && *id != f)
        .expect("another");
    let s = c.req(f, "GET", "/cluster/status", None).json();
    assert_eq!(s["leader"].as_u64(), Some(leader));
    assert!(s["term"].as_u64() > Some(0));
    let members = s["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{s}");
    for m in members {
        assert_eq!(m["reachable"], true, "{m}");
        let id = m["id"].as_u64().expect("id");
        assert_eq!(
            m["raft_addr"].as_str(),
            Some(format!("127.0.0.1:{}", c.nodes[&id].raft).as_str())
        );
        assert_eq!(
            m["http_addr"].as_str(),
            Some(format!("127.0.0.1:{}", c.nodes[&id].http).as_str())
        );
        let role = if id == leader { "leader" } else { "follower" };
        assert_eq!(m["role"], role, "{m}");
        for field in ["term", "commit_index", "applied_index", "trails_leader_by"] {
            assert!(m[field].is_u64(), "{field} of {m}");
        }
    }

    // A frozen member answers nothing: it is unreachable within its own
    // timeout, and what it could not report is null.
    signal(&c, other, libc::SIGSTOP);
    let asked = Instant::now();
    let s = c.req(leader, "GET", "/cluster/status", None).json();
    let took = asked.elapsed();
    signal(&c, other, libc::SIGCONT);
    let frozen = s["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["id"] == other).cloned())
        .expect("the frozen member is listed");
    assert_eq!(frozen["reachable"], false, "{frozen}");
    for field in ["role", "term", "commit_index", "applied_index"] {
        assert_eq!(frozen[field], Value::Null, "{field} of {frozen}");
    }
    assert!(
        frozen["trails_leader_by"].is_u64(),
        "the leader still says how far it trails: {frozen}"
    );
    assert!(
        took < Duration::from_secs(5),
        "one member held it up {took:?}"
    );

    // A node that is not a member yet is not healthy.
    c.add_node(4);
    c.launch(4, None);
    let h = health(&c, 4);
    assert_eq!(h.status, 503, "{}", h.text());
    assert_eq!(h.json()["reason"], "not a member");
    assert_eq!(h.json()["health"], false);
    assert_error_body(&h, 503);

    // Without a quorum, the survivor steps down and says so.
    c.kill(leader);
    c.kill(f);
    let h = wait_until(
        Instant::now() + WAIT,
        "the survivor to lose its leader",
        || {
            let h = health(&c, other);
            (h.status == 503).then_some(h)
        },
    )
    .expect("unhealthy");
    assert_eq!(h.json()["reason"], "no leader", "{}", h.text());
}

#[test]
fn raftctl_commands_against_a_real_cluster() {
    let mut c = Cluster::start(Opts::new(KV), 3);
    let leader = c.wait_leader();
    put(&c, leader, "a");
    let f = (1..=3).find(|id| *id != leader).expect("a follower");

    // The first endpoint is dead: the next one serves.
    let dead = "http://127.0.0.1:1".to_string();
    let r = raw(&[
        "--endpoints".into(),
        format!("{dead},{}", c.url(f, "")),
        "status".into(),
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let header = r.out.lines().next().expect("a header");
    for col in [
        "ID",
        "RAFT ADDRESS",
        "ROLE",
        "TERM",
        "COMMIT",
        "APPLIED",
        "TRAILS LEADER BY",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(r.out.lines().count(), 4, "{}", r.out);
    assert!(
        r.out.contains("leader") && r.out.contains("follower"),
        "{}",
        r.out
    );

    let r = ctl(&c, &[f], &["--json", "status"]);
    let s: Value = serde_json::from_str(&r.out).expect("JSON on stdout");
    assert_eq!(s["members"].as_array().map(Vec::len), Some(3));

    let r = ctl(&c, &[f], &["members", "list"]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "voters: 1, 2, 3\nlearners: -\n")
    );
    let r = ctl(&c, &[f], &["--json", "members", "list"]);
    let v: Value = serde_json::from_str(&r.out).expect("JSON");
    assert_eq!(v["voters"], serde_json::json!([1, 2, 3]));

    let r = ctl(&c, &[f], &["leader"]);
    assert_eq!((r.code, r.out.trim()), (0, leader.to_string().as_str()));
    let r = ctl(&c, &[f], &["leader", "move", &f.to_string()]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out.trim(), format!("leader: {f}"));
    assert_eq!(ctl(&c, &[leader], &["leader"]).out.trim(), f.to_string());
    let leader = f;

    let r = ctl(&c, &[leader], &["snapshot"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("snapshot at index "), "{}", r.out);
    let r = ctl(&c, &[leader], &["--json", "snapshot"]);
    let v: Value = serde_json::from_str(&r.out).expect("JSON");
    assert!(v["index"].as_u64() > Some(0));

    let r = wait_until(Instant::now() + WAIT, "every member healthy", || {
        let r = ctl(&c, &[leader], &["health"]);
        (r.code == 0).then_some(r)
    })
    .expect("healthy");
    assert_eq!(r.out.matches("healthy").count(), 3, "{}", r.out);

    // A fourth node: added as a learner, promoted, removed.
    c.add_node(4);
    c.launch(4, None);
    let raft4 = format!("127.0.0.1:{}", c.nodes[&4].raft);
    let r = ctl(&c, &[leader], &["members", "add", "4", &raft4, "--learner"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "voters: 1, 2, 3\nlearners: 4\n");
    let r = ctl(&c, &[leader], &["members", "promote", "4"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "voters: 1, 2, 3, 4\nlearners: -\n");
    let r = ctl(&c, &[leader], &["--json", "members", "remove", "4"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v: Value = serde_json::from_str(&r.out).expect("JSON");
    assert_eq!(v["voters"], serde_json::json!([1, 2, 3]));
    c.kill(4);

    // Failure modes: one line on stderr, exit 1.
    assert_fails(
        &ctl(&c, &[leader], &["members", "remove", "9"]),
        "not a member",
    );
    assert_fails(
        &ctl(&c, &[leader], &["members", "promote", "9"]),
        "not a member",
    );
    let r = raw(&["--endpoints".into(), dead.clone(), "status".into()]);
    assert_fails(&r, "no endpoint answered");
    // Bad usage: exit 2.
    for args in [
        vec!["members", "add", "four", "127.0.0.1:1"],
        vec!["leader", "move"],
        vec!["no-such-command"],
    ] {
        let r = ctl(&c, &[leader], &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert_eq!(r.err.trim_end().lines().count(), 1, "one line: {:?}", r.err);
    }
    assert_eq!(raw(&["status".into()]).code, 2, "--endpoints is required");
    let r = raw(&["--endpoints".into(), "ftp://x".into(), "status".into()]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert_eq!(raw(&["--help".into()]).code, 0);

    // A dead member: health fails, and says which.
    let dead_id = (1..=3).find(|id| *id != leader).expect("a follower");
    c.kill(dead_id);
    let r = ctl(&c, &[leader], &["health"]);
    assert_fails(&r, &format!("node {dead_id}"));
    assert!(r.out.contains("unhealthy"), "{}", r.out);
    let r = ctl(&c, &[leader], &["status"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("unreachable"), "{}", r.out);

    // No quorum: the last one steps down; changes and `leader` fail.
    let last = (1..=3)
        .find(|id| *id != leader && *id != dead_id)
        .expect("one");
    c.kill(leader);
    wait_until(
        Instant::now() + WAIT,
        "the survivor to lose its leader",
        || c.status(last)?["leader"].is_null().then_some(()),
    )
    .expect("no leader");
    assert_fails(&ctl(&c, &[last], &["leader"]), "no leader");
    assert_fails(
        &ctl(&c, &[last], &["members", "remove", &dead_id.to_string()]),
        "members remove",
    );
}

#[test]
fn json_logs_carry_a_request_line_at_debug_level() {
    let tmp = TempDir::new("json-logs");
    let (raft, http) = (free_port(), free_port());
    let stderr = tmp.0.join("stderr");
    let mut child = Command::new(KV)
        .args(single_node_args(&tmp.0.join("d"), raft, http))
        .args([
            "--storage",
            "memory",
            "--tick-ms",
            TICK_MS,
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("start raft-kv");
    let url = format!("http://127.0.0.1:{http}");
    wait_until(Instant::now() + WAIT, "a leader", || {
        let a = try_request("GET", &format!("{url}/status"), None, &[])?;
        (a.status == 200 && a.json()["role"] == "leader").then_some(())
    })
    .expect("it leads");
    let a = request("PUT", &format!("{url}/kv/secret-key"), Some(b"v"), &[]);
    assert_eq!(a.status, 200);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let exit = child.wait().expect("it exits");
    assert_eq!(exit.code(), Some(0));

    let text = std::fs::read_to_string(&stderr).expect("read stderr");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    let put = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request" && l["fields"]["method"] == "PUT")
        .unwrap_or_else(|| panic!("no request line for the PUT in:\n{text}"));
    assert_eq!(put["level"], "DEBUG");
    assert_eq!(
        put["fields"]["route"], "/kv/{key}",
        "the route, never the key"
    );
    assert_eq!(put["fields"]["status"], 200);
    assert!(put["fields"]["latency_ms"].is_f64(), "{put}");
    assert!(!text.contains("secret-key"), "a key never reaches the logs");
}
