//! A user outside the workspace: a crate of its own in a temp dir, whose
//! `main.rs` is the service crate's tutorial and whose one Raft dependency
//! is `raft-actors-service` by path, built with cargo (offline, from the
//! workspace's lock file) and run as three processes with the whole API
//! of `examples/REFERENCE.md`: its own name and version in `--version`
//! and `--help`, writes through any node, reads back everywhere, an
//! idempotency key, the cluster API, `/metrics`, SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{request, Cluster, Opts, TempDir};

/// The tutorial, as a user copies it into their `src/main.rs`.
const TUTORIAL: &str = include_str!("../../raft-actors/service/examples/tutorial.rs");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Writes the user's crate: `Cargo.toml` (its own workspace), the
/// workspace's `Cargo.lock` (so the offline build finds every crate in the
/// registry cache), `src/main.rs`.
fn write_crate(dir: &Path) {
    let service = workspace().join("raft-actors/service");
    let manifest = format!(
        r#"[package]
name = "tally"
version = "3.1.4"
edition = "2021"
publish = false

[dependencies]
raft-actors-service = {{ path = "{}" }}
actix-web = {{ version = "4", default-features = false, features = ["macros"] }}
serde_json = "1"

[workspace]
"#,
        service.display()
    );
    std::fs::create_dir_all(dir.join("src")).expect("create src");
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("write Cargo.toml");
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy lock");
    std::fs::write(dir.join("src/main.rs"), TUTORIAL).expect("write main.rs");
}

/// Builds the user's crate; answers its binary. Its own target dir (beside
/// the workspace's, kept between runs): the outer `cargo test` holds the
/// workspace's build lock while tests run.
fn build(dir: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("outside-crate");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--offline", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the user's crate does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target.join("debug/tally");
    assert!(bin.exists(), "no binary at {}", bin.display());
    bin
}

#[test]
fn a_crate_outside_the_workspace_runs_a_three_node_cluster_with_the_whole_api() {
    let src = TempDir::new("outside-crate");
    write_crate(&src.0);
    let bin = build(&src.0);
    let bin: &'static str = Box::leak(bin.display().to_string().into_boxed_str());

    // The binary names itself: the user's crate's version, the service's
    // description, never the framework's package.
    let run = |flag: &str| {
        let out = Command::new(bin)
            .arg(flag)
            .output()
            .expect("run the binary");
        assert!(out.status.success(), "{flag}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    assert_eq!(run("--version"), "tally 3.1.4\n");
    let help = run("--help");
    assert!(help.starts_with("A replicated tally of votes."), "{help}");
    assert!(!help.contains("raft-actors-service"), "{help}");

    let mut c = Cluster::start(Opts::new(bin), 3);
    let leader = c.wait_leader();

    // Votes through every node: followers forward to the leader.
    for id in 1..=3 {
        let a = c.req(id, "POST", "/vote/alice", None);
        assert_eq!(a.status, 200, "node {id}: {}", a.text());
        assert_eq!(a.json()["votes"], id);
    }
    // One key, one vote, however often it is sent.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let key = [("Idempotency-Key", "client-7:1")];
    let first = request("POST", &c.url(follower, "/vote/bob"), None, &key);
    let retry = request("POST", &c.url(follower, "/vote/bob"), None, &key);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.json(),
        retry.json(),
        "the retry gets the first answer"
    );
    let want = serde_json::json!({ "alice": 3, "bob": 1 });
    for id in 1..=3 {
        assert_eq!(c.req(id, "GET", "/votes", None).json(), want, "node {id}");
    }

    // The cluster API and metrics come with the crate.
    let status = c.status(follower).expect("status");
    assert_eq!(status["leader"].as_u64(), Some(leader));
    assert_eq!(status["voters"], serde_json::json!([1, 2, 3]));
    let snap = c.req(follower, "POST", "/cluster/snapshot", None);
    assert_eq!(snap.status, 200, "{}", snap.text());
    assert!(snap.json()["index"].as_u64() > Some(0), "{}", snap.text());
    let metrics = c.req(leader, "GET", "/metrics", None).text();
    assert!(
        metrics.contains("raft_role{role=\"leader\"} 1"),
        "{metrics}"
    );

    // SIGTERM stops a node cleanly; the other two still take votes.
    let mut p = c
        .nodes
        .get_mut(&follower)
        .and_then(|n| n.proc.take())
        .expect("running");
    let exit = p.terminate(Duration::from_secs(10)).expect("it exits");
    assert_eq!(exit.code(), Some(0), "{}", p.stderr());
    let other = (1..=3).find(|id| *id != follower).expect("a running node");
    let a = c.req(other, "POST", "/vote/carol", None);
    assert_eq!(a.status, 200, "{}", a.text());
}
