//! The process's command line (`examples/REFERENCE.md`): bad flags, an address in use and an unreadable
//! data dir exit non-zero with one line on stderr; SIGTERM exits 0 within
//! 10 s; the `--transport http` and `--storage memory` variants.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn base_args(dir: &std::path::Path, raft: u16, http: u16) -> Vec<String> {
    let mut a = single_node_args(dir, raft, http);
    a.extend(["--storage".to_string(), "memory".into()]);
    a
}

#[test]
fn bad_flags_address_in_use_and_bad_data_dir_exit_with_one_line() {
    let tmp = TempDir::new("flags");
    let (raft, http) = (free_port(), free_port());
    let good = base_args(&tmp.0.join("d"), raft, http);
    for bin in [KV, COUNTER, QUEUE] {
        one_line_failure(bin, &[], "--id");
        let mut unknown = good.clone();
        unknown.push("--frobnicate".into());
        one_line_failure(bin, &unknown, "--frobnicate");
        let mut bad = good.clone();
        bad[1] = "one".into();
        one_line_failure(bin, &bad, "one");
        let mut bad = good.clone();
        bad[7] = "1=nowhere".into();
        one_line_failure(bin, &bad, "nowhere");
        let mut bad = good.clone();
        bad[11] = "floppy".into();
        one_line_failure(bin, &bad, "floppy");
        let mut bad = good.clone();
        bad.extend(["--transport".into(), "carrier-pigeon".into()]);
        one_line_failure(bin, &bad, "carrier-pigeon");
        let mut bad = good.clone();
        bad[7] = format!("2=127.0.0.1:{raft}");
        one_line_failure(bin, &bad, "--peers");
    }
    // An address in use.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    one_line_failure(
        KV,
        &base_args(&tmp.0.join("d"), raft, port),
        &port.to_string(),
    );
    one_line_failure(
        KV,
        &base_args(&tmp.0.join("d"), port, http),
        &port.to_string(),
    );
    // A data dir that cannot be one (a file is in the way).
    let file = tmp.0.join("file");
    std::fs::write(&file, b"not a dir").expect("write");
    one_line_failure(KV, &base_args(&file, raft, http), "data dir");
    // A damaged redb file in the data dir.
    let damaged = tmp.0.join("damaged");
    std::fs::create_dir_all(&damaged).expect("mkdir");
    std::fs::write(damaged.join("raft.redb"), vec![0x5a; 4096]).expect("write");
    let mut args = base_args(&damaged, raft, http);
    args[11] = "redb".into();
    one_line_failure(KV, &args, "raft.redb");
    // --help is not an error.
    let (code, _) = run(KV, &["--help".to_string()]);
    assert_eq!(code, Some(0));
}

#[test]
fn sigterm_exits_zero_within_ten_seconds() {
    for bin in [KV, COUNTER, QUEUE] {
        let mut c = Cluster::start(Opts::new(bin), 1);
        let _ = c.req(1, "GET", "/status", None);
        let mut p = c
            .nodes
            .get_mut(&1)
            .and_then(|n| n.proc.take())
            .expect("running");
        let status = p
            .terminate(Duration::from_secs(10))
            .expect("exited within 10 s");
        assert_eq!(status.code(), Some(0), "stderr: {}", p.stderr());
    }
}

#[test]
fn http_transport_and_memory_storage_variants() {
    let mut opts = Opts::new(KV);
    opts.transport = "http";
    opts.storage = "memory";
    let mut c = Cluster::start(opts, 3);
    let leader = c.wait_leader();
    let f: Vec<u64> = c.running().into_iter().filter(|i| *i != leader).collect();
    assert_eq!(
        c.req(f[0], "PUT", "/kv/over-http", Some(b"yes")).status,
        200
    );
    assert_eq!(c.req(f[1], "GET", "/kv/over-http", None).body, b"yes");
    // A node added over the HTTP transport learns the others too.
    c.add_node(4);
    c.launch(4, None);
    let body = format!(
        r#"{{"id": 4, "raft_addr": "127.0.0.1:{}", "role": "voter"}}"#,
        c.nodes[&4].raft
    );
    let add = c.req(f[0], "POST", "/cluster/members", Some(body.as_bytes()));
    assert_eq!(add.status, 200, "{}", add.text());
    c.kill(leader);
    let rest = c.running();
    let new = c.wait_leader_among(&rest);
    let w = wait_until(
        Instant::now() + WAIT,
        "a write after the leader died",
        || try_request("PUT", &c.url(4, "/kv/after"), Some(b"ok"), &[]).filter(|a| a.status == 200),
    );
    assert!(w.is_ok(), "{w:?}");
    assert_eq!(c.req(new, "GET", "/kv/after", None).body, b"ok");
}

#[test]
fn the_load_tool_drives_each_service_and_prints_percentiles() {
    for (bin, service) in [(KV, "kv"), (COUNTER, "counter"), (QUEUE, "queue")] {
        let c = Cluster::start(Opts::new(bin), 1);
        let out = Command::new(env!("CARGO_BIN_EXE_raft-load"))
            .args([
                "--target",
                &c.url(1, ""),
                "--service",
                service,
                "--clients",
                "4",
                "--duration",
                "500ms",
                "--read-percent",
                "20",
            ])
            .output()
            .expect("run raft-load");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("failed=0"), "{text}");
        assert!(text.contains("ops/s") && text.contains("p99="), "{text}");
    }
}

#[test]
fn snapshot_threshold_and_trailing_logs_take_effect() {
    let mut opts = Opts::new(KV);
    opts.extra = ["--snapshot-threshold", "10", "--trailing-logs", "3"]
        .map(String::from)
        .to_vec();
    let c = Cluster::start(opts, 3);
    let leader = c.wait_leader();
    // The threshold counts each group's own log, and `/status` shows group
    // 0's: with several groups (RAFT_KV_GROUPS), keys of group 0 only.
    for key in c.keys_of_group_zero("k", 25) {
        let a = c.req(leader, "PUT", &format!("/kv/{key}"), Some(b"v"));
        assert_eq!(a.status, 200, "{}", a.text());
    }
    // Every node snapshots on its own once 10 entries were applied since
    // its last snapshot, and keeps 3 entries behind it.
    for id in 1..=3 {
        let s = wait_until(Instant::now() + WAIT, "a snapshot", || {
            let s = c.status(id)?;
            (s["snapshot_index"].as_u64()? >= 20 && s["first_index"].as_u64()? > 1).then_some(s)
        })
        .unwrap_or_else(|e| panic!("node {id}: {e}"));
        let (snap, first) = (s["snapshot_index"].as_u64(), s["first_index"].as_u64());
        assert_eq!(
            first.zip(snap).map(|(f, s)| s + 1 - f),
            Some(3),
            "node {id} keeps 3 entries behind its snapshot: {s}"
        );
    }
}

#[test]
fn a_damaged_or_missing_snapshot_file_is_refused_at_start_with_one_line() {
    let mut opts = Opts::new(KV);
    opts.storage = "redb";
    let mut c = Cluster::start(opts, 1);
    let leader = c.wait_leader();
    for i in 0..10 {
        let a = c.req(leader, "PUT", &format!("/kv/k{i}"), Some(b"v"));
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let a = c.req(leader, "POST", "/cluster/snapshot", None);
    assert_eq!(a.status, 200, "{}", a.text());
    let index = a.json()["index"].as_u64().expect("the snapshot's index");
    // A clean stop: the store records the snapshot before the process ends.
    let mut p = c
        .nodes
        .get_mut(&1)
        .and_then(|n| n.proc.take())
        .expect("running");
    let status = p.terminate(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status:?}");
    let file = c.nodes[&1]
        .dir
        .join("snapshots")
        .join(format!("{index:020}-"));
    let prefix = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let recorded = std::fs::read_dir(file.parent().expect("dir"))
        .expect("the snapshot dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".snap"))
        })
        .expect("the recorded snapshot's file");
    let name = recorded
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let args = c.args(1, Some(&c.peers_flag()));

    let mut bytes = std::fs::read(&recorded).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&recorded, &bytes).expect("damage");
    one_line_failure(KV, &args, &name);

    std::fs::remove_file(&recorded).expect("remove");
    one_line_failure(KV, &args, &name);
}

/// `--storage wal`: every acknowledged write survives SIGKILL of every
/// node at once, and a damaged log is refused at start with one line
/// naming its segment.
#[test]
fn the_wal_storage_keeps_acknowledged_writes_across_sigkill_and_refuses_a_damaged_log() {
    let mut opts = Opts::new(KV);
    opts.storage = "wal";
    let mut c = Cluster::start(opts, 3);
    let leader = c.wait_leader();
    for i in 0..30 {
        let a = c.req(
            leader,
            "PUT",
            &format!("/kv/k{i}"),
            Some(format!("v{i}").as_bytes()),
        );
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let leader = c.kill_all_and_relaunch();
    for i in 0..30 {
        let a = c.req(leader, "GET", &format!("/kv/k{i}"), None);
        assert_eq!(
            (a.status, a.body),
            (200, format!("v{i}").into_bytes()),
            "k{i} after SIGKILL"
        );
    }

    c.kill(1);
    let segment = c.nodes[&1].dir.join("wal").join(format!("{:016x}.wal", 1));
    let mut bytes = std::fs::read(&segment).expect("the first segment");
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("damage");
    let args = c.args(1, Some(&c.peers_flag()));
    one_line_failure(KV, &args, &segment.display().to_string());
}
