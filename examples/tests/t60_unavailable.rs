//! 503 when nothing was proposed (no leader, no quorum), 504 when a
//! proposal left but timed out (outcome unknown); the bodies name the
//! leader the node knows.

mod common;

use std::time::Instant;

use common::*;

#[test]
fn no_quorum_is_504_once_proposed_then_503_without_a_leader() {
    let mut opts = Opts::new(KV);
    // Slow elections (1 to 2 s), fast request deadlines: a proposal on a
    // leader that just lost its followers times out before check-quorum
    // steps the leader down.
    opts.tick_ms = "100";
    opts.extra = vec!["--timeout-ms".into(), "300".into()];
    let mut c = Cluster::start(opts, 3);
    let leader = c.wait_leader();
    assert_eq!(c.req(leader, "PUT", "/kv/k", Some(b"v")).status, 200);
    for id in c.running() {
        if id != leader {
            c.kill(id);
        }
    }
    let lost = c.req_once(leader, "PUT", "/kv/k", Some(b"lost?"));
    let v = assert_error_body(&lost, 504);
    assert_eq!(v["leader"].as_u64(), Some(leader));

    // Check-quorum steps it down: now nothing can be proposed: 503.
    wait_until(
        Instant::now() + WAIT,
        "the lone leader to step down",
        || {
            let s = c.status(leader)?;
            // With several groups (RAFT_KV_GROUPS), every group here too,
            // or a follower of a dead group leader times out (504).
            let groups = c.group_status(leader)?;
            let alone = groups.values().all(|e| e["leader"].is_null());
            (s["role"] != "leader" && alone).then_some(())
        },
    )
    .expect("stepped down");
    let refused = c.req_once(leader, "PUT", "/kv/k", Some(b"refused"));
    assert_error_body(&refused, 503);
    assert_error_body(&c.req_once(leader, "GET", "/kv/k", None), 503);
    assert_error_body(
        &c.req_once(
            leader,
            "POST",
            "/kv/k/cas",
            Some(br#"{"expect":null,"value":"x"}"#),
        ),
        503,
    );
    // A stale read still answers from local state.
    assert_eq!(
        c.req_once(leader, "GET", "/kv/k?consistency=stale", None)
            .status,
        200
    );
}

#[test]
fn an_idempotency_key_whose_answer_was_evicted_is_expired_never_reapplied() {
    let c = Cluster::start(Opts::new(COUNTER), 1);
    let add = |seq: u64| {
        request(
            "POST",
            &c.url(1, "/counter/add"),
            Some(br#"{"delta": 1}"#),
            &[("Idempotency-Key", &format!("busy:{seq}"))],
        )
    };
    // 128 answers are kept per client (sessions.rs); write 130.
    for seq in 0..130 {
        assert_eq!(add(seq).status, 200);
    }
    assert_eq!(
        add(129).json()["value"],
        130,
        "a recent retry gets its answer"
    );
    let expired = add(0);
    let v = assert_error_body(&expired, 422);
    assert_eq!(v["error"], "idempotency key expired");
    assert_eq!(
        c.req(1, "GET", "/counter", None).json()["value"],
        130,
        "not applied again"
    );
}

#[test]
fn cluster_api_refuses_malformed_requests() {
    let c = Cluster::start(Opts::new(KV), 1);
    let post = |path: &str, body: &str| c.req(1, "POST", path, Some(body.as_bytes()));
    assert_error_body(&post("/cluster/members", "{"), 400);
    assert_error_body(&post("/cluster/members", r#"{"id": 2}"#), 400);
    assert_error_body(
        &post("/cluster/members", r#"{"id": 2, "raft_addr": "nowhere"}"#),
        400,
    );
    assert_error_body(
        &post(
            "/cluster/members",
            r#"{"id": 2, "raft_addr": "127.0.0.1:1", "role": "boss"}"#,
        ),
        400,
    );
    assert_error_body(&post("/cluster/leader", "[]"), 400);
    assert_error_body(&post("/cluster/leader", r#"{"id": 9}"#), 400);
    assert_error_body(&c.req(1, "GET", "/cluster/members", None), 404);
    let s = c.status(1).expect("status");
    assert_eq!(s["voters"], serde_json::json!([1]));
}
