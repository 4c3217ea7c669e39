//! raft-set, the fourth service: its routes on a 3-node cluster, through
//! followers, with an idempotency key, and the cluster API and error bodies
//! that come with the service crate.

mod common;

use common::*;

#[test]
fn set_routes_cluster_api_and_errors() {
    let c = Cluster::start(Opts::new(SET), 3);
    let leader = c.wait_leader();
    let f: Vec<u64> = c.running().into_iter().filter(|i| *i != leader).collect();

    let a = c.req(f[0], "PUT", "/set/alice", None);
    assert_eq!((a.status, a.json()["changed"].as_bool()), (200, Some(true)));
    let first = a.json()["index"].as_u64().expect("index");
    let a = c.req(f[1], "PUT", "/set/alice", None);
    assert_eq!(a.json()["changed"].as_bool(), Some(false), "already there");
    assert!(a.json()["index"].as_u64().expect("index") > first);
    c.req(leader, "PUT", "/set/bob%2Fsmith", None);
    let l = c.req(f[1], "GET", "/set", None);
    assert_eq!(l.status, 200);
    assert_eq!(l.json()["names"], serde_json::json!(["alice", "bob/smith"]));

    // One key, one removal: the retry gets the first answer.
    let url = c.url(f[0], "/set/alice");
    let key = [("Idempotency-Key", "set-client:1")];
    let once = request("DELETE", &url, None, &key);
    let again = request("DELETE", &url, None, &key);
    assert_eq!(once.status, 200);
    assert_eq!(once.json(), again.json());
    assert_eq!(once.json()["changed"].as_bool(), Some(true));

    // The service crate's API: status, errors with the leader named.
    let s = c.status(f[0]).expect("status");
    assert_eq!(s["leader"].as_u64(), Some(leader));
    assert_eq!(s["voters"], serde_json::json!([1, 2, 3]));
    let e = assert_error_body(
        &c.req(f[0], "GET", "/set?consistency=eventually", None),
        400,
    );
    assert_eq!(e["leader"].as_u64(), Some(leader));
    assert_error_body(&c.req(f[0], "GET", "/nowhere", None), 404);
    assert_error_body(&c.req(f[0], "PUT", "/set/%zz", None), 400);
}
