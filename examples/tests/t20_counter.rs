//! raft-counter's client API, every line of `examples/REFERENCE.md`.

mod common;

use common::*;

#[test]
fn counter_client_api() {
    let c = Cluster::start(Opts::new(COUNTER), 3);
    let leader = c.wait_leader();
    let f: Vec<u64> = c.running().into_iter().filter(|i| *i != leader).collect();
    let add = |node, body: &str| c.req(node, "POST", "/counter/add", Some(body.as_bytes()));

    let a = add(f[0], r#"{"delta": 5}"#);
    assert_eq!((a.status, a.json()["value"].as_i64()), (200, Some(5)));
    let a = add(f[1], r#"{"delta": -7}"#);
    assert_eq!(a.json()["value"].as_i64(), Some(-2));
    let g = c.req(leader, "GET", "/counter", None);
    assert_eq!((g.status, g.json()["value"].as_i64()), (200, Some(-2)));
    assert_eq!(
        c.req(f[0], "GET", "/counter?consistency=lease", None)
            .json()["value"],
        -2
    );
    let idx = c.status(leader).expect("status")["commit_index"]
        .as_u64()
        .expect("index");
    c.wait_applied(f[1], idx);
    assert_eq!(
        c.req(f[1], "GET", "/counter?consistency=stale", None)
            .json()["value"],
        -2
    );
    assert_error_body(
        &c.req(f[1], "GET", "/counter?consistency=strong", None),
        400,
    );

    // Overflow: applied as a no-op, answered 422 with the current value.
    let a = add(f[0], &format!(r#"{{"delta": {}}}"#, i64::MAX));
    assert_eq!(a.json()["value"].as_i64(), Some(i64::MAX - 2));
    let o = add(f[0], r#"{"delta": 3}"#);
    let v = assert_error_body(&o, 422);
    assert_eq!(
        (v["error"].as_str(), v["value"].as_i64()),
        (Some("overflow"), Some(i64::MAX - 2))
    );
    let a = add(f[1], &format!(r#"{{"delta": {}}}"#, i64::MIN));
    assert_eq!(a.json()["value"].as_i64(), Some(-3));
    let under = add(f[0], &format!(r#"{{"delta": {}}}"#, i64::MIN));
    assert_eq!(assert_error_body(&under, 422)["value"].as_i64(), Some(-3));
    assert_eq!(add(f[0], r#"{"delta": 2}"#).json()["value"], -1);

    // Malformed: 400, nothing applied.
    for bad in [
        "",
        "{",
        r#"{"delta": "1"}"#,
        r#"{"delta": 1.5}"#,
        r#"{"delta": 99999999999999999999}"#,
        r#"{"other": 1}"#,
        "[1]",
        "1",
    ] {
        assert_error_body(&add(f[1], bad), 400);
    }
    assert_eq!(c.req(leader, "GET", "/counter", None).json()["value"], -1);

    // A retry with the same key is applied once and gets the first answer.
    let k = [("Idempotency-Key", "adder:1")];
    let first = request(
        "POST",
        &c.url(f[0], "/counter/add"),
        Some(br#"{"delta": 10}"#),
        &k,
    );
    let retry = request(
        "POST",
        &c.url(f[1], "/counter/add"),
        Some(br#"{"delta": 99}"#),
        &k,
    );
    assert_eq!(
        (
            first.json()["value"].as_i64(),
            retry.json()["value"].as_i64()
        ),
        (Some(9), Some(9))
    );
    assert_eq!(c.req(leader, "GET", "/counter", None).json()["value"], 9);

    assert_error_body(&c.req(leader, "GET", "/counter/nope", None), 404);
    assert_error_body(&c.req(leader, "GET", "/counter/add", None), 404);
}
