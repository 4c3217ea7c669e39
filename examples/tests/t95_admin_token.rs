//! The authenticated cluster API on real raft-kv processes: with
//! `--admin-token-file`, every change to the cluster is `401` (with the
//! reference's error body) without the token or with another, and `200`
//! with it, through the leader and through a follower (which passes the
//! token on); reads stay open unless `--admin-token-protects-reads`, and
//! then `/cluster/status` still reaches every member; the client API stays
//! open; `raftctl --token-file` works and fails without it; a bad token
//! file stops a node with one line.

mod common;

use std::process::Command;

use common::*;

const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");
const TOKEN: &str = "3f6c1e0a9b2d4f7a8c5e1b0d2f4a6c8e";

fn token_file(dir: &TempDir, text: &str) -> String {
    let path = dir.0.join("admin.token");
    std::fs::write(&path, text).expect("write the token file");
    path.display().to_string()
}

fn cluster(protect_reads: bool) -> (Cluster, TempDir) {
    let dir = TempDir::new("admin-token");
    let mut opts = Opts::new(KV);
    opts.extra = vec![
        "--admin-token-file".into(),
        token_file(&dir, &format!("{TOKEN}\n")),
    ];
    if protect_reads {
        opts.extra.push("--admin-token-protects-reads".into());
    }
    // Cluster::start reads /status to see a node up: only without the
    // read guard.
    (Cluster::start(opts, 3), dir)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `method path` on node `id` with the given Authorization header, if any.
fn call(
    c: &Cluster,
    id: u64,
    method: &str,
    path: &str,
    body: Option<&str>,
    auth: Option<&str>,
) -> Answer {
    let header = auth.map(bearer);
    let headers: Vec<(&str, &str)> = header
        .as_deref()
        .map(|h| vec![("Authorization", h)])
        .unwrap_or_default();
    request(method, &c.url(id, path), body.map(str::as_bytes), &headers)
}

#[test]
fn changes_need_the_token_and_reads_stay_open() {
    let (c, _dir) = cluster(false);
    let leader = c.wait_leader();
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let changes = [
        ("POST", "/cluster/snapshot", None),
        ("POST", "/cluster/leader", Some(r#"{"id": 1}"#)),
        (
            "POST",
            "/cluster/members",
            Some(r#"{"id": 9, "raft_addr": "127.0.0.1:9"}"#),
        ),
        ("DELETE", "/cluster/members/9", None),
        // One group's membership (`--groups`) is the cluster's too.
        (
            "POST",
            "/cluster/groups/1/members",
            Some(r#"{"id": 9, "raft_addr": "127.0.0.1:9"}"#),
        ),
        ("DELETE", "/cluster/groups/1/members/9", None),
    ];
    for id in [leader, follower] {
        for (method, path, body) in changes {
            for auth in [None, Some("not-the-token")] {
                let a = call(&c, id, method, path, body, auth);
                let v = assert_error_body(&a, 401);
                assert!(
                    v["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("admin token")),
                    "{v}"
                );
            }
        }
    }
    // Nothing changed: still three voters, no snapshot taken.
    let s = c.status(leader).expect("status");
    assert_eq!(s["voters"], serde_json::json!([1, 2, 3]));
    assert_eq!(s["snapshot_index"], 0);

    // With the token, through the leader and through a follower.
    for id in [leader, follower] {
        let a = call(&c, id, "POST", "/cluster/snapshot", None, Some(TOKEN));
        assert_eq!(a.status, 200, "node {id}: {}", a.text());
    }
    let a = call(
        &c,
        follower,
        "POST",
        "/cluster/leader",
        Some(&format!(r#"{{"id": {follower}}}"#)),
        Some(TOKEN),
    );
    assert_eq!(
        a.status,
        200,
        "a forwarded transfer carries the token: {}",
        a.text()
    );

    // Reads and the client API stay open.
    for path in ["/status", "/cluster/status", "/health", "/metrics", "/ui"] {
        assert_eq!(
            call(&c, leader, "GET", path, None, None).status,
            200,
            "{path}"
        );
    }
    assert_eq!(
        call(&c, follower, "PUT", "/kv/a", Some("1"), None).status,
        200
    );
    assert_eq!(call(&c, leader, "GET", "/kv/a", None, None).text(), "1");

    // raftctl: the token file, or a 401 and exit 1.
    let endpoint = c.url(leader, "");
    let tokens = TempDir::new("raftctl-token");
    let file = token_file(&tokens, TOKEN);
    let ok = Command::new(RAFTCTL)
        .args(["--endpoints", &endpoint, "--token-file", &file, "snapshot"])
        .output()
        .expect("run raftctl");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = Command::new(RAFTCTL)
        .args(["--endpoints", &endpoint, "snapshot"])
        .output()
        .expect("run raftctl");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
}

#[test]
fn protected_reads_need_the_token_and_the_cluster_view_still_reaches_every_member() {
    let dir = TempDir::new("admin-reads");
    let file = token_file(&dir, TOKEN);
    let mut nodes = Vec::new();
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (raft, _))| format!("{}=127.0.0.1:{raft}", i + 1))
        .collect();
    for (i, (raft, http)) in ports.iter().enumerate() {
        let id = (i + 1).to_string();
        let args: Vec<String> = [
            "--id",
            &id,
            "--raft-addr",
            &format!("127.0.0.1:{raft}"),
            "--http-addr",
            &format!("127.0.0.1:{http}"),
            "--peers",
            &peers.join(","),
            "--data-dir",
            &dir.0.join(format!("n{id}")).display().to_string(),
            "--tick-ms",
            TICK_MS,
            "--admin-token-file",
            &file,
            "--admin-token-protects-reads",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        nodes.push(spawn(KV, &args, &dir.0, &format!("n{id}")));
    }
    let url = |i: usize, path: &str| format!("http://127.0.0.1:{}{path}", ports[i].1);
    let auth = bearer(TOKEN);
    let with = [("Authorization", auth.as_str())];
    let view = wait_until(
        std::time::Instant::now() + WAIT,
        "every member reachable",
        || {
            let a = try_request("GET", &url(0, "/cluster/status"), None, &with)?;
            let v = (a.status == 200).then(|| a.json())?;
            let members = v["members"].as_array()?;
            (members.len() == 3
                && members.iter().all(|m| m["reachable"] == true)
                && v["leader"].is_u64())
            .then_some(v)
        },
    )
    .expect("the cluster view, with the token");
    assert_eq!(view["members"].as_array().map(Vec::len), Some(3));
    for path in ["/status", "/cluster/status", "/health", "/metrics", "/ui"] {
        let a = request("GET", &url(1, path), None, &[]);
        assert_error_body(&a, 401);
        assert_eq!(
            request("GET", &url(1, path), None, &with).status,
            200,
            "{path}"
        );
    }
    // The client API stays open.
    assert_eq!(
        request("PUT", &url(2, "/kv/b"), Some(b"2"), &[]).status,
        200
    );
    drop(nodes);
}

#[test]
fn an_empty_or_missing_token_file_stops_the_node_with_one_line() {
    let dir = TempDir::new("admin-bad");
    for (file, why) in [
        (token_file(&dir, "  \n"), "empty"),
        (dir.0.join("missing").display().to_string(), "cannot read"),
    ] {
        let raft = free_port();
        let out = Command::new(KV)
            .args([
                "--id",
                "1",
                "--raft-addr",
                &format!("127.0.0.1:{raft}"),
                "--http-addr",
                &format!("127.0.0.1:{}", free_port()),
                "--peers",
                &format!("1=127.0.0.1:{raft}"),
                "--data-dir",
                &dir.0.join("d").display().to_string(),
                "--admin-token-file",
                &file,
            ])
            .output()
            .expect("run raft-kv");
        assert_eq!(out.status.code(), Some(1), "{why}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(why), "{err}");
    }
    // The read guard without a token file is a usage error.
    let out = Command::new(KV)
        .args([
            "--id",
            "1",
            "--raft-addr",
            "127.0.0.1:1",
            "--http-addr",
            "127.0.0.1:2",
            "--data-dir",
            "x",
            "--admin-token-protects-reads",
        ])
        .output()
        .expect("run raft-kv");
    assert_eq!(out.status.code(), Some(2));
}
