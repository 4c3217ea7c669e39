//! Faults that broke other Raft implementations in production, tried on
//! real processes: a leader frozen (SIGSTOP) while the others elect a new
//! leader and acknowledge a write must not answer a lease read with the old
//! value once it resumes; a voter whose data dir was lost never votes
//! again with an empty log.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use common::*;

/// Sends `GET path` to `port` and leaves it in the socket: the server
/// reads it whenever it runs. Answers the stream to read the reply from.
fn send_get(port: u16, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("send the request");
    s
}

/// The status code and body of the reply on `s`.
fn read_reply(mut s: TcpStream) -> (u16, Vec<u8>) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP reply");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, raw[split + 4..].to_vec())
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a child process of this test.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

#[test]
fn a_leader_frozen_by_sigstop_answers_no_stale_lease_read() {
    let c = Cluster::start(Opts::new(KV), 3);
    // With several groups (RAFT_KV_GROUPS), a key of group 0, which the
    // frozen node leads (group 0's leader is the node's `leader`).
    let key = c.keys_of_group_zero("k", 1).remove(0);
    let path = format!("/kv/{key}");
    for round in 0..5 {
        let old = c.wait_leader();
        let term = c.status(old).expect("status")["term"]
            .as_u64()
            .expect("term");
        let first = format!("round {round}: before the freeze");
        let second = format!("round {round}: after the freeze");
        assert_eq!(c.req(old, "PUT", &path, Some(first.as_bytes())).status, 200);
        let pid = c.nodes[&old].proc.as_ref().expect("running").pid();
        signal(pid, libc::SIGSTOP);
        let others: Vec<u64> = c.running().into_iter().filter(|i| *i != old).collect();
        let new = wait_until(Instant::now() + WAIT, "a leader of a newer term", || {
            others.iter().copied().find(|id| {
                c.status(*id).is_some_and(|s| {
                    s["role"] == "leader" && s["term"].as_u64().is_some_and(|t| t > term)
                })
            })
        })
        .expect("the others elect a leader");
        let put = c.req(new, "PUT", &path, Some(second.as_bytes()));
        assert_eq!(put.status, 200, "{}", put.text());
        // The read is in the frozen leader's socket before it resumes.
        let stream = send_get(c.nodes[&old].http, &format!("{path}?consistency=lease"));
        signal(pid, libc::SIGCONT);
        let (status, body) = read_reply(stream);
        assert!(
            !(status == 200 && body == first.as_bytes()),
            "round {round}: the resumed old leader answered the value overwritten at term > {term}"
        );
        if status == 200 {
            assert_eq!(body, second.as_bytes(), "round {round}");
        }
        wait_until(Instant::now() + WAIT, "the old leader to follow", || {
            let s = c.status(old)?;
            (s["leader"].as_u64()? == new).then_some(())
        })
        .expect("the old leader follows the new one");
    }
}

/// Waits for `proc` to exit; answers its exit code.
fn exit_code(proc: &mut Proc) -> Option<i32> {
    wait_until(Instant::now() + WAIT, "the process to exit", || {
        proc.child.try_wait().ok().flatten()
    })
    .expect("the process exits")
    .code()
}

/// The reference's lost-data scenario: writes acknowledged by {A, C} while B
/// is paused; C's data dir is wiped and A is killed; B resumes and C
/// restarts with its original command line (so with `--peers`); then A
/// restarts. Every acknowledged write reads back, C never votes with its
/// empty log (it exits 1 with one line saying what to do), and the
/// operator's way back (remove it, start it without `--peers`, add it)
/// works.
#[test]
fn a_voter_restarted_on_a_lost_data_dir_loses_no_acknowledged_write() {
    let mut c = Cluster::start(Opts::new(KV), 3);
    let a = c.wait_leader();
    let followers: Vec<u64> = c.running().into_iter().filter(|i| *i != a).collect();
    let (b, cc) = (followers[0], followers[1]);
    let peers = c.peers_flag();
    let b_pid = c.nodes[&b].proc.as_ref().expect("running").pid();
    signal(b_pid, libc::SIGSTOP);
    // With several groups (RAFT_KV_GROUPS), the groups B led elect again
    // first, or writes to them time out (504, as they should).
    if c.groups().is_some() {
        c.wait_leader_among(&[a, cc]);
    }
    let written: Vec<String> = (0..20).map(|i| format!("acknowledged {i}")).collect();
    for (i, v) in written.iter().enumerate() {
        let put = c.req(a, "PUT", &format!("/kv/k{i}"), Some(v.as_bytes()));
        assert_eq!(put.status, 200, "{}", put.text());
    }
    c.wait_applied(
        cc,
        c.status(a).expect("status")["commit_index"]
            .as_u64()
            .expect("commit"),
    );
    c.kill(cc);
    std::fs::remove_dir_all(&c.nodes[&cc].dir).expect("wipe C's data dir");
    c.kill(a);
    signal(b_pid, libc::SIGCONT);

    let args = c.args(cc, Some(&peers));
    let mut lost = spawn(KV, &args, &c.tmp.0, "c-lost");
    let code = exit_code(&mut lost);
    let err = lost.stderr();
    assert_eq!(code, Some(1), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(
        err.contains("Remove it") && err.contains(&format!("/cluster/members/{cc}")),
        "{err:?} does not say what to do"
    );

    c.launch(a, Some(&peers));
    let leader = c.wait_leader_among(&[a, b]);
    for (i, v) in written.iter().enumerate() {
        for node in [leader, b] {
            let got = c.req(node, "GET", &format!("/kv/k{i}"), None);
            assert_eq!(got.status, 200, "k{i} on node {node}: {}", got.text());
            assert_eq!(got.body, v.as_bytes(), "k{i} on node {node}");
        }
    }

    // The way back: remove C, start it without --peers, add it again.
    let removed = c.req(leader, "DELETE", &format!("/cluster/members/{cc}"), None);
    assert_eq!(removed.status, 200, "{}", removed.text());
    c.launch(cc, None);
    let body = format!(
        r#"{{"id": {cc}, "raft_addr": "127.0.0.1:{}", "role": "voter"}}"#,
        c.nodes[&cc].raft
    );
    let added = c.req(leader, "POST", "/cluster/members", Some(body.as_bytes()));
    assert_eq!(added.status, 200, "{}", added.text());
    c.wait_applied(
        cc,
        c.status(leader).expect("status")["commit_index"]
            .as_u64()
            .expect("commit"),
    );
    let got = c.req(cc, "GET", "/kv/k19?consistency=stale", None);
    assert_eq!(got.body, written[19].as_bytes());
}

/// A first bootstrap with the voters started one after another: none
/// founds before every voter answered that it does not know it (so none
/// leads yet with two of three up), then all found and replicate.
#[test]
fn a_first_bootstrap_waits_for_every_voter_then_replicates() {
    let mut c = Cluster {
        opts: Opts::new(KV),
        nodes: BTreeMap::new(),
        tmp: TempDir::new("late"),
    };
    for id in 1..=3 {
        c.add_node(id);
    }
    let peers = c.peers_flag();
    c.launch(1, Some(&peers));
    c.launch(2, Some(&peers));
    // Founding needs every voter's answer: nothing leads yet.
    assert!(c.status(1).expect("status")["leader"].is_null());
    c.launch(3, Some(&peers));
    let leader = c.wait_leader();
    assert_eq!(
        c.req(leader, "PUT", "/kv/late", Some(b"joined")).status,
        200
    );
    for id in 1..=3 {
        assert_eq!(c.req(id, "GET", "/kv/late", None).body, b"joined");
    }
}
