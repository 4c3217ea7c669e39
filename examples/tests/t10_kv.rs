//! raft-kv's client API, every line of `examples/REFERENCE.md`, on a 3-node
//! cluster: in plain text, and again with TLS everywhere and the admin token.

mod common;

use std::time::Instant;

use common::*;

fn followers(c: &Cluster, leader: u64) -> Vec<u64> {
    c.running().into_iter().filter(|id| *id != leader).collect()
}

#[test]
fn kv_client_api() {
    client_api(Opts::new(KV));
}

/// The same over TLS between nodes and to clients (client certificates
/// required), with the admin token set.
#[test]
fn kv_client_api_over_tls_with_a_token() {
    client_api(Opts::secure(KV));
}

fn client_api(opts: Opts) {
    let c = Cluster::start(opts, 3);
    let leader = c.wait_leader();
    let f = followers(&c, leader);
    let (a, b) = (f[0], f[1]);

    // A write on one node (a follower: forwarded) read back on another.
    let put = c.req(a, "PUT", "/kv/greeting", Some(b"hello"));
    assert_eq!(put.status, 200, "{}", put.text());
    let i1 = put.json()["index"].as_u64().expect("index");
    let got = c.req(b, "GET", "/kv/greeting", None);
    assert_eq!((got.status, got.body.as_slice()), (200, &b"hello"[..]));
    let got = c.req(leader, "GET", "/kv/greeting?consistency=linearizable", None);
    assert_eq!(got.body, b"hello");
    let got = c.req(a, "GET", "/kv/greeting?consistency=lease", None);
    assert_eq!(got.status, 200);
    // A stale read is local: poll until this follower applied the write.
    c.wait_applied(b, i1);
    let got = c.req(b, "GET", "/kv/greeting?consistency=stale", None);
    assert_eq!(got.body, b"hello");
    let bad = c.req(b, "GET", "/kv/greeting?consistency=eventual", None);
    assert_error_body(&bad, 400);

    // The index grows with every write.
    let i2 = c.req(b, "PUT", "/kv/greeting", Some(b"again")).json()["index"]
        .as_u64()
        .expect("index");
    assert!(i2 > i1);

    // Missing key: 404 with the error body naming the leader.
    let missing = c.req(a, "GET", "/kv/nothing-here", None);
    let v = assert_error_body(&missing, 404);
    assert_eq!(v["leader"].as_u64(), Some(leader));

    // DELETE answers the index, also when the key is absent.
    let d = c.req(a, "DELETE", "/kv/greeting", None);
    assert_eq!(d.status, 200);
    assert!(d.json()["index"].as_u64().expect("index") > i2);
    assert_eq!(c.req(b, "GET", "/kv/greeting", None).status, 404);
    let d = c.req(a, "DELETE", "/kv/never-was", None);
    assert_eq!(d.status, 200);
    assert!(d.json()["index"].is_u64());

    // CAS: null expects absence; a mismatch is 409 with the current value.
    let cas = |node, key: &str, body: &str| {
        c.req(
            node,
            "POST",
            &format!("/kv/{key}/cas"),
            Some(body.as_bytes()),
        )
    };
    let ok = cas(a, "lock", r#"{"expect": null, "value": "mine"}"#);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.json()["index"].is_u64());
    let no = cas(b, "lock", r#"{"expect": null, "value": "theirs"}"#);
    let v = assert_error_body(&no, 409);
    assert_eq!(v["current"], "mine");
    let no = cas(b, "lock", r#"{"expect": "other", "value": "theirs"}"#);
    assert_eq!(assert_error_body(&no, 409)["current"], "mine");
    let ok = cas(leader, "lock", r#"{"expect": "mine", "value": "theirs"}"#);
    assert_eq!(ok.status, 200);
    assert_eq!(c.req(a, "GET", "/kv/lock", None).body, b"theirs");
    let no = cas(a, "absent", r#"{"expect": "x", "value": "y"}"#);
    assert!(assert_error_body(&no, 409)["current"].is_null());

    // Values are any bytes; a non-UTF-8 current comes as current_base64.
    let raw = [0xff_u8, 0x00, 0xfe, b'a'];
    assert_eq!(c.req(a, "PUT", "/kv/bin", Some(&raw)).status, 200);
    assert_eq!(c.req(b, "GET", "/kv/bin", None).body, raw);
    let no = cas(a, "bin", r#"{"expect": null, "value": "x"}"#);
    let v = assert_error_body(&no, 409);
    assert!(v["current"].is_null());
    assert_eq!(v["current_base64"], "/wD+YQ==");

    // Keys are one percent-decoded segment: %2F is a slash inside the key.
    assert_eq!(c.req(a, "PUT", "/kv/a%2Fb", Some(b"slash")).status, 200);
    assert_eq!(c.req(b, "GET", "/kv/a%2Fb", None).body, b"slash");
    assert_eq!(c.req(b, "GET", "/kv/a", None).status, 404);
    assert_eq!(c.req(b, "GET", "/kv/%61%2Fb", None).body, b"slash");
    // A `%` that starts no escape is malformed, not a literal.
    assert_error_body(&c.req(a, "PUT", "/kv/%zz", Some(b"x")), 400);
    assert_error_body(&c.req(a, "GET", "/kv/%2", None), 400);
    assert_eq!(c.req(b, "GET", "/kv/%25zz", None).status, 404);
    // One consistency per read: a second one is malformed, whichever wins.
    assert_error_body(
        &c.req(
            b,
            "GET",
            "/kv/a%2Fb?consistency=bogus&consistency=stale",
            None,
        ),
        400,
    );
    assert_error_body(
        &c.req(
            b,
            "GET",
            "/kv/a%2Fb?consistency=stale&consistency=stale",
            None,
        ),
        400,
    );

    // Sizes are inclusive: 1024-byte keys and 1 MiB values are accepted.
    let k1024 = "k".repeat(1024);
    let k1025 = "k".repeat(1025);
    assert_eq!(
        c.req(a, "PUT", &format!("/kv/{k1024}"), Some(b"v")).status,
        200
    );
    assert_eq!(c.req(b, "GET", &format!("/kv/{k1024}"), None).body, b"v");
    assert_error_body(&c.req(a, "PUT", &format!("/kv/{k1025}"), Some(b"v")), 413);
    assert_error_body(&c.req(a, "GET", &format!("/kv/{k1025}"), None), 413);
    assert_error_body(&c.req(a, "DELETE", &format!("/kv/{k1025}"), None), 413);
    let mib = vec![7u8; 1 << 20];
    let over = vec![8u8; (1 << 20) + 1];
    assert_eq!(c.req(a, "PUT", "/kv/big", Some(&mib)).status, 200);
    assert_eq!(c.req(b, "GET", "/kv/big", None).body.len(), 1 << 20);
    assert_error_body(&c.req(a, "PUT", "/kv/big", Some(&over)), 413);
    assert_eq!(
        c.req(b, "GET", "/kv/big", None).body,
        mib,
        "the oversized write was not applied"
    );
    assert_error_body(&c.req(a, "PUT", "/kv/fresh-big", Some(&over)), 413);
    assert_eq!(c.req(b, "GET", "/kv/fresh-big", None).status, 404);

    // Malformed requests: 400, nothing applied.
    let before = c.status(leader).expect("status")["commit_index"].as_u64();
    assert_error_body(&cas(a, "lock", "{not json"), 400);
    assert_error_body(&cas(a, "lock", r#"{"expect": null}"#), 400);
    assert_error_body(&cas(a, "lock", r#"{"expect": 5, "value": "x"}"#), 400);
    assert_eq!(c.req(a, "GET", "/kv/lock", None).body, b"theirs");
    assert_eq!(
        c.status(leader).expect("status")["commit_index"].as_u64(),
        before
    );

    // Unknown routes and methods: 404 with the error body.
    assert_error_body(&c.req(a, "GET", "/nope", None), 404);
    assert_error_body(&c.req(a, "POST", "/kv/x", Some(b"v")), 404);
}

#[test]
fn kv_idempotency_key_retry_is_answered_once() {
    idempotency_key_retry(Opts::new(KV));
}

/// Over the HTTP transport this time, its mutual TLS included.
#[test]
fn kv_idempotency_key_retry_over_tls_with_a_token() {
    let mut opts = Opts::secure(KV);
    opts.transport = "http";
    idempotency_key_retry(opts);
}

fn idempotency_key_retry(opts: Opts) {
    let c = Cluster::start(opts, 3);
    let leader = c.wait_leader();
    let other = c
        .running()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let key = [("Idempotency-Key", "client-a:1")];
    let first = request("PUT", &c.url(other, "/kv/x"), Some(b"first"), &key);
    assert_eq!(first.status, 200);
    // The retry, even with another body and at another node, gets the
    // first answer and changes nothing.
    let retry = request("PUT", &c.url(leader, "/kv/x"), Some(b"second"), &key);
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json()["index"], first.json()["index"]);
    assert_eq!(c.req(leader, "GET", "/kv/x", None).body, b"first");
    // The next sequence is a new write.
    let next = request(
        "PUT",
        &c.url(leader, "/kv/x"),
        Some(b"third"),
        &[("Idempotency-Key", "client-a:2")],
    );
    assert!(next.json()["index"].as_u64() > first.json()["index"].as_u64());
    assert_eq!(c.req(other, "GET", "/kv/x", None).body, b"third");
    // A CAS retry gets its first answer (swapped), though now it would not swap.
    let cas_key = [("Idempotency-Key", "client-b:7")];
    let body = br#"{"expect": "third", "value": "fourth"}"#;
    let first = request("POST", &c.url(other, "/kv/x/cas"), Some(body), &cas_key);
    assert_eq!(first.status, 200);
    let retry = request("POST", &c.url(other, "/kv/x/cas"), Some(body), &cas_key);
    assert_eq!(
        (retry.status, retry.json()["index"].clone()),
        (200, first.json()["index"].clone())
    );
    // A malformed key is a 400, not applied.
    let bad = request(
        "PUT",
        &c.url(leader, "/kv/x"),
        Some(b"bad"),
        &[("Idempotency-Key", "no-sequence")],
    );
    assert_error_body(&bad, 400);
    assert_eq!(c.req(leader, "GET", "/kv/x", None).body, b"fourth");

    // The session table is replicated: after the leader dies, a retry at
    // the new leader still gets the first answer.
    let mut c = c;
    let k = [("Idempotency-Key", "client-c:1")];
    let first = request("PUT", &c.url(other, "/kv/y"), Some(b"once"), &k);
    assert_eq!(first.status, 200);
    c.kill(leader);
    let rest: Vec<u64> = c.running();
    let new = c.wait_leader_among(&rest);
    let retry = wait_until(Instant::now() + WAIT, "the retry to be answered", || {
        try_request("PUT", &c.url(new, "/kv/y"), Some(b"twice"), &k).filter(|a| a.status == 200)
    })
    .expect("retry answered");
    assert_eq!(retry.json()["index"], first.json()["index"]);
    assert_eq!(c.req(new, "GET", "/kv/y", None).body, b"once");
}
