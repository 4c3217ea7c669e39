//! raft-queue's client API, every line of `examples/REFERENCE.md`.

mod common;

use common::*;

#[test]
fn queue_client_api() {
    let c = Cluster::start(Opts::new(QUEUE), 3);
    let leader = c.wait_leader();
    let f: Vec<u64> = c.running().into_iter().filter(|i| *i != leader).collect();

    // Empty: pop is 204, len 0.
    assert_eq!(c.req(f[0], "POST", "/queue/pop", None).status, 204);
    assert_eq!(c.req(f[0], "GET", "/queue/len", None).json()["len"], 0);

    let p1 = c.req(f[0], "POST", "/queue", Some(b"one"));
    assert_eq!(p1.status, 200);
    let id1 = p1.json()["id"].as_u64().expect("id");
    let id2 = c.req(f[1], "POST", "/queue", Some(b"two")).json()["id"]
        .as_u64()
        .expect("id");
    assert!(id2 > id1);
    let raw = [0xc3_u8, 0x28];
    let id3 = c.req(leader, "POST", "/queue", Some(&raw)).json()["id"]
        .as_u64()
        .expect("id");
    let len = c.req(f[1], "GET", "/queue/len", None);
    assert_eq!((len.status, len.json()["len"].as_u64()), (200, Some(3)));
    assert_eq!(
        c.req(f[1], "GET", "/queue/len?consistency=lease", None)
            .json()["len"],
        3
    );
    let idx = c.status(leader).expect("status")["commit_index"]
        .as_u64()
        .expect("index");
    c.wait_applied(f[0], idx);
    assert_eq!(
        c.req(f[0], "GET", "/queue/len?consistency=stale", None)
            .json()["len"],
        3
    );
    assert_error_body(&c.req(f[0], "GET", "/queue/len?consistency=x", None), 400);

    // FIFO, from any node.
    let pop = c.req(f[1], "POST", "/queue/pop", None);
    assert_eq!(pop.status, 200);
    assert_eq!(
        (pop.json()["id"].as_u64(), pop.json()["value"].as_str()),
        (Some(id1), Some("one"))
    );
    // A retried pop gets the same item, and pops nothing more.
    let k = [("Idempotency-Key", "popper:1")];
    let first = request("POST", &c.url(f[0], "/queue/pop"), None, &k);
    let retry = request("POST", &c.url(leader, "/queue/pop"), None, &k);
    assert_eq!(first.json()["id"].as_u64(), Some(id2));
    assert_eq!(retry.json(), first.json());
    // The same key on the other route still gets the first answer (the
    // pop's), and pushes nothing.
    let cross = request("POST", &c.url(f[1], "/queue"), Some(b"never"), &k);
    assert_eq!((cross.status, cross.json()), (200, first.json()));
    assert_eq!(c.req(f[0], "GET", "/queue/len", None).json()["len"], 1);
    // Non-UTF-8 items come as value null plus value_base64.
    let pop = c.req(f[0], "POST", "/queue/pop", None).json();
    assert_eq!(pop["id"].as_u64(), Some(id3));
    assert!(pop["value"].is_null());
    assert_eq!(pop["value_base64"], "wyg=");
    assert_eq!(c.req(f[0], "POST", "/queue/pop", None).status, 204);

    // Items up to 1 MiB inclusive; one byte more is 413, not applied.
    let mib = vec![b'q'; 1 << 20];
    let big = c.req(f[0], "POST", "/queue", Some(&mib));
    assert_eq!(big.status, 200, "{}", big.text());
    assert_error_body(
        &c.req(f[0], "POST", "/queue", Some(&[b'q'; (1 << 20) + 1])),
        413,
    );
    assert_eq!(c.req(leader, "GET", "/queue/len", None).json()["len"], 1);
    let pop = c.req(f[1], "POST", "/queue/pop", None).json();
    assert_eq!(pop["value"].as_str().map(str::len), Some(1 << 20));

    assert_error_body(&c.req(leader, "GET", "/queue", None), 404);
    assert_error_body(&c.req(leader, "DELETE", "/queue/pop", None), 404);
}
