//! TLS on real raft-kv processes: a 3-node cluster with mutual TLS between
//! nodes, the client API over HTTPS requiring client certificates, and the
//! admin token. Plain text, no client certificate, a certificate from
//! another CA are all refused at the handshake; cluster changes are `401`
//! without the token and `200` with it, forwarded by a follower over
//! HTTPS; `/cluster/status` reaches every member over HTTPS; a node whose
//! peer certificate comes from another CA never joins and is counted in
//! the leader's `raft_transport_tls_refused_total`; `raftctl --cacert
//! --cert --key --token-file` works and fails without the CA; `raftctl
//! certs` writes files a node starts with; a renewed client API
//! certificate is served after SIGHUP, and a broken one leaves the old in
//! place; half-given TLS flags and unreadable files stop a node with one
//! line.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use raft_actors_tls::generate::TestCa;
use raft_actors_tls::rustls::ClientConfig;
use raft_actors_tls::ClientTrust;

const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// A GET with a client of its own TLS setup; `None` if no answer came
/// (the handshake was refused).
fn get_with(tls: Option<Arc<ClientConfig>>, url: &str) -> Option<u16> {
    let mut agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10));
    if let Some(tls) = tls {
        agent = agent.tls_config(tls);
    }
    match agent.build().get(url).call() {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(s, _)) => Some(s),
        Err(ureq::Error::Transport(_)) => None,
    }
}

fn trust(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    ClientTrust::load(&[ca], identity)
        .expect("client TLS")
        .config()
}

fn with_token(c: &Cluster, id: u64, method: &str, path: &str, body: Option<&str>) -> Answer {
    let bearer = format!("Bearer {SECURE_TOKEN}");
    request(
        method,
        &c.url(id, path),
        body.map(str::as_bytes),
        &[("Authorization", &bearer)],
    )
}

fn tls_refused(c: &Cluster, id: u64) -> u64 {
    let text = c.req(id, "GET", "/metrics", None).text();
    text.lines()
        .find_map(|l| l.strip_prefix("raft_transport_tls_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no raft_transport_tls_refused_total in:\n{text}"))
}

#[test]
fn a_secure_cluster_refuses_strangers_and_guards_its_changes() {
    let c = Cluster::start(Opts::secure(KV), 3);
    let leader = c.wait_leader();
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let files = secure_files();
    let https = c.url(leader, "/status");
    let plain = https.replacen("https://", "http://", 1);

    // The harness's client (the CA, a client certificate) is answered.
    assert_eq!(get_with(Some(files.client.config()), &https), Some(200));
    // Plain text, no client certificate, a client certificate from
    // another CA, a client that does not trust the cluster's CA: refused.
    assert_eq!(get_with(None, &plain), None, "plain HTTP is refused");
    assert_eq!(
        get_with(Some(trust(&files.ca, None)), &https),
        None,
        "a client without a certificate is refused"
    );
    let foreign = TempDir::new("foreign-ca");
    let other = TestCa::new("another CA").expect("a CA");
    let other_ca = foreign.0.join("ca.pem");
    other.write(&other_ca).expect("write");
    let (cert, key) = other
        .node(1)
        .expect("issue")
        .write(&foreign.0, "client")
        .expect("write");
    assert_eq!(
        get_with(Some(trust(&files.ca, Some((&cert, &key)))), &https),
        None,
        "a client certificate from another CA is refused"
    );
    assert_eq!(
        get_with(Some(trust(&other_ca, Some((&cert, &key)))), &https),
        None,
        "a client trusting another CA does not trust the node"
    );

    // Changes: 401 without the token, 200 with it, through the leader and
    // through a follower, which forwards over HTTPS.
    let a = c.req(follower, "POST", "/cluster/snapshot", None);
    assert_error_body(&a, 401);
    let a = c.req(
        follower,
        "POST",
        "/cluster/leader",
        Some(format!(r#"{{"id": {follower}}}"#).as_bytes()),
    );
    assert_error_body(&a, 401);
    for id in [leader, follower] {
        let a = with_token(&c, id, "POST", "/cluster/snapshot", None);
        assert_eq!(a.status, 200, "node {id}: {}", a.text());
    }
    let moved = with_token(
        &c,
        follower,
        "POST",
        "/cluster/leader",
        Some(&format!(r#"{{"id": {follower}}}"#)),
    );
    assert_eq!(moved.status, 200, "forwarded over HTTPS: {}", moved.text());
    let leader = c.wait_leader();
    assert_eq!(leader, follower);

    // Writes replicate over mutual TLS; /cluster/status asks every member
    // over HTTPS.
    let put = c.req(leader, "PUT", "/kv/secret", Some(b"kept"));
    assert_eq!(put.status, 200, "{}", put.text());
    let index = put.json()["index"].as_u64().expect("index");
    for id in 1..=3 {
        c.wait_applied(id, index);
    }
    let members = c.req(leader, "GET", "/cluster/status", None).json();
    let reachable: Vec<bool> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["reachable"] == true)
        .collect();
    assert_eq!(reachable, [true, true, true], "{members}");

    // raftctl over HTTPS: the CA, a client certificate, the token.
    let endpoint = c.url(leader, "");
    let path = |p: &Path| p.display().to_string();
    let tls_args = [
        "--cacert".to_string(),
        path(&files.ca),
        "--cert".into(),
        path(&files.client_cert),
        "--key".into(),
        path(&files.client_key),
    ];
    let raftctl = |extra: &[String]| {
        Command::new(RAFTCTL)
            .args(["--endpoints", &endpoint])
            .args(extra)
            .output()
            .expect("run raftctl")
    };
    let mut args = tls_args.to_vec();
    args.extend([
        "--token-file".into(),
        path(&files.token_file),
        "snapshot".into(),
    ]);
    let ok = raftctl(&args);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut args = tls_args.to_vec();
    args.push("status".into());
    let ok = raftctl(&args);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no_ca = raftctl(&["status".into()]);
    assert_eq!(no_ca.status.code(), Some(1));
    let err = String::from_utf8_lossy(&no_ca.stderr);
    assert!(err.contains("no endpoint answered"), "{err}");

    // A node whose peer certificate comes from another CA is refused by
    // the leader's handshake (and counted), so it never catches up.
    let before = tls_refused(&c, leader);
    let (rogue_cert, rogue_key) = other
        .node(4)
        .expect("issue")
        .write(&foreign.0, "node-4")
        .expect("write");
    let (raft, http) = (free_port(), free_port());
    let node = |flag: &str, p: &Path| [flag.to_string(), path(p)];
    let mut args: Vec<String> = [
        "--id",
        "4",
        "--raft-addr",
        &format!("127.0.0.1:{raft}"),
        "--http-addr",
        &format!("127.0.0.1:{http}"),
        "--data-dir",
        &path(&foreign.0.join("n4")),
        "--tick-ms",
        TICK_MS,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(node("--peer-tls-cert", &rogue_cert));
    args.extend(node("--peer-tls-key", &rogue_key));
    args.extend(node("--peer-tls-ca", &other_ca));
    let _rogue = spawn(KV, &args, &foreign.0, "rogue");
    let added = with_token(
        &c,
        leader,
        "POST",
        "/cluster/members",
        Some(&format!(
            r#"{{"id": 4, "raft_addr": "127.0.0.1:{raft}", "role": "learner"}}"#
        )),
    );
    assert_eq!(added.status, 200, "{}", added.text());
    wait_until(Instant::now() + WAIT, "the leader to refuse node 4", || {
        (tls_refused(&c, leader) > before).then_some(())
    })
    .expect("the refusal is counted");
    let rogue_status = format!("http://127.0.0.1:{http}/status");
    let s = wait_until(Instant::now() + WAIT, "node 4 to serve", || {
        try_request("GET", &rogue_status, None, &[]).filter(|a| a.status == 200)
    })
    .expect("node 4 serves its status")
    .json();
    assert_eq!(s["applied_index"], 0, "node 4 received nothing: {s}");
}

/// A single node serving its client API over HTTPS from files in `dir`.
fn https_node(dir: &TempDir, cert: &Path, key: &Path) -> (Proc, String) {
    let (raft, http) = (free_port(), free_port());
    let mut args = single_node_args(&dir.0.join("n1"), raft, http);
    args.extend([
        "--tick-ms".into(),
        TICK_MS.into(),
        "--client-tls-cert".into(),
        cert.display().to_string(),
        "--client-tls-key".into(),
        key.display().to_string(),
    ]);
    (
        spawn(KV, &args, &dir.0, "https"),
        format!("https://127.0.0.1:{http}/status"),
    )
}

#[test]
fn a_renewed_certificate_is_served_after_sighup() {
    let dir = TempDir::new("sighup");
    let (old_ca, new_ca) = (
        TestCa::new("old").expect("CA"),
        TestCa::new("new").expect("CA"),
    );
    let (old_ca_file, new_ca_file) = (dir.0.join("old-ca.pem"), dir.0.join("new-ca.pem"));
    old_ca.write(&old_ca_file).expect("write");
    new_ca.write(&new_ca_file).expect("write");
    let (cert, key) = old_ca
        .node(1)
        .expect("issue")
        .write(&dir.0, "api")
        .expect("write");
    let (mut proc, url) = https_node(&dir, &cert, &key);
    let (old, new) = (trust(&old_ca_file, None), trust(&new_ca_file, None));
    wait_until(Instant::now() + WAIT, "the node to serve HTTPS", || {
        (get_with(Some(old.clone()), &url) == Some(200)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; stderr: {}", proc.stderr()));
    assert_eq!(get_with(Some(new.clone()), &url), None);

    // A broken file and a SIGHUP: the old certificate stays, with a line.
    std::fs::write(&cert, "not a certificate").expect("write");
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(proc.pid(), libc::SIGHUP) }, 0);
    wait_until(Instant::now() + WAIT, "the failed reload's line", || {
        proc.stderr().contains("reloading TLS failed").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; stderr: {}", proc.stderr()));
    assert_eq!(get_with(Some(old.clone()), &url), Some(200));

    // Renewed from the new CA: served from the next handshake, no restart.
    let renewed = new_ca.node(1).expect("issue");
    std::fs::write(&key, &renewed.key_pem).expect("write");
    std::fs::write(&cert, &renewed.cert_pem).expect("write");
    assert_eq!(unsafe { libc::kill(proc.pid(), libc::SIGHUP) }, 0);
    wait_until(Instant::now() + WAIT, "the renewed certificate", || {
        (get_with(Some(new.clone()), &url) == Some(200)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; stderr: {}", proc.stderr()));
    assert_eq!(get_with(Some(old), &url), None, "the old one is gone");
    assert!(
        proc.child.try_wait().expect("wait").is_none(),
        "SIGHUP does not end the process"
    );
}

#[test]
fn certs_from_raftctl_start_a_node_and_bad_tls_flags_stop_one() {
    let dir = TempDir::new("raftctl-certs");
    let out = dir.0.join("certs");
    let made = Command::new(RAFTCTL)
        .args(["certs", "--out", &out.display().to_string(), "--nodes", "1"])
        .output()
        .expect("run raftctl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for f in [
        "ca.pem",
        "node-1.pem",
        "node-1-key.pem",
        "client.pem",
        "client-key.pem",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("node-1-key.pem"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "a key is its owner's only");
    }
    let (mut proc, url) = https_node(&dir, &out.join("node-1.pem"), &out.join("node-1-key.pem"));
    let client = trust(
        &out.join("ca.pem"),
        Some((&out.join("client.pem"), &out.join("client-key.pem"))),
    );
    wait_until(Instant::now() + WAIT, "the node to serve HTTPS", || {
        (get_with(Some(client.clone()), &url) == Some(200)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; stderr: {}", proc.stderr()));
    proc.kill();

    // Half the peer flags, or a file that is not a certificate: one line,
    // a non-zero exit.
    let base = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "--id",
            "1",
            "--raft-addr",
            "127.0.0.1:1",
            "--http-addr",
            "127.0.0.1:1",
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(dir.0.join("bad").display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        Command::new(KV).args(a).output().expect("run raft-kv")
    };
    let cert = out.join("node-1.pem").display().to_string();
    let ca = out.join("ca.pem").display().to_string();
    let half = base(&["--peer-tls-cert", &cert]);
    assert_eq!(half.status.code(), Some(2));
    let err = String::from_utf8_lossy(&half.stderr);
    assert!(
        err.contains("--peer-tls-key") && err.lines().count() == 1,
        "{err}"
    );
    let garbage = dir.0.join("garbage.pem");
    std::fs::write(&garbage, "garbage").expect("write");
    let g = garbage.display().to_string();
    let bad = base(&[
        "--peer-tls-cert",
        &g,
        "--peer-tls-key",
        &g,
        "--peer-tls-ca",
        &ca,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("garbage.pem") && err.lines().count() == 1,
        "{err}"
    );
}
