//! Faults that broke other Raft implementations in production, tried on
//! real processes: a leader frozen (SIGSTOP) while the others elect a new
//! leader and acknowledge a write must not answer a lease read with the old
//! value once it resumes.

mod common;

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
    for round in 0..5 {
        let old = c.wait_leader();
        let term = c.status(old).expect("status")["term"]
            .as_u64()
            .expect("term");
        let first = format!("round {round}: before the freeze");
        let second = format!("round {round}: after the freeze");
        assert_eq!(
            c.req(old, "PUT", "/kv/k", Some(first.as_bytes())).status,
            200
        );
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
        let put = c.req(new, "PUT", "/kv/k", Some(second.as_bytes()));
        assert_eq!(put.status, 200, "{}", put.text());
        // The read is in the frozen leader's socket before it resumes.
        let stream = send_get(c.nodes[&old].http, "/kv/k?consistency=lease");
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
