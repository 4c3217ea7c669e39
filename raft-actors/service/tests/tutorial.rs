//! The crate's tutorial (`examples/tutorial.rs`, shown in the crate docs)
//! run as a real 3-node cluster over loopback sockets: votes through every
//! node, read back linearizably and stale, retried under one key.

use std::net::TcpListener;
use std::time::Duration;

use raft_actors_service::flags::StorageKind;
use raft_actors_service::{RunningService, ServiceBuilder};
use serde_json::{json, Value};

#[allow(dead_code)]
mod tutorial {
    include!("../examples/tutorial.rs");
}
use tutorial::Tally;

const T: Duration = Duration::from_secs(20);

async fn call(method: &str, url: String, key: Option<&str>) -> (u16, Value) {
    let client = awc::Client::builder().timeout(T).finish();
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if let Some(k) = key {
        req = req.insert_header(("idempotency-key", k));
    }
    let mut res = req.send().await.expect("the node answers");
    let body = res.body().await.expect("a body");
    (
        res.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn the_tutorial_runs_as_a_three_node_cluster() {
    let raft: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let peers: Vec<_> = (1..=3)
        .zip(&raft)
        .map(|(id, l)| (id, l.local_addr().expect("addr")))
        .collect();
    let mut nodes: Vec<RunningService<Tally>> = Vec::new();
    for (id, l) in (1..=3).zip(raft) {
        let node = ServiceBuilder::<Tally>::new(id)
            .raft_listener(l)
            .http_listener(TcpListener::bind("127.0.0.1:0").expect("bind"))
            .peers(peers.clone())
            .storage(StorageKind::Memory)
            .configure(|cfg| cfg.tick = Duration::from_millis(20))
            .http_workers(1)
            .start()
            .await
            .expect("a node starts");
        nodes.push(node);
    }
    nodes[0]
        .node()
        .raft()
        .wait_for(T, |m| m.leader.is_some())
        .await
        .expect("a leader");

    for n in &nodes {
        let (status, body) =
            call("POST", format!("http://{}/vote/alice", n.http_addr()), None).await;
        assert_eq!(status, 200, "{body}");
    }
    let url = format!("http://{}/vote/bob", nodes[1].http_addr());
    let (_, first) = call("POST", url.clone(), Some("c:1")).await;
    let (_, retry) = call("POST", url, Some("c:1")).await;
    assert_eq!(first, retry, "one key, one vote");
    let want = json!({ "alice": 3, "bob": 1 });
    for n in &nodes {
        let (status, body) = call("GET", format!("http://{}/votes", n.http_addr()), None).await;
        assert_eq!((status, body), (200, want.clone()));
    }
    // A stale read answers locally; after the linearizable one above on
    // every node, it has every vote too.
    let (_, stale) = call(
        "GET",
        format!("http://{}/votes?consistency=stale", nodes[2].http_addr()),
        None,
    )
    .await;
    assert_eq!(stale, want);
    let (status, body) = call(
        "GET",
        format!("http://{}/votes?consistency=soon", nodes[2].http_addr()),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].is_string() && body.get("leader").is_some(),
        "{body}"
    );
    for n in nodes {
        n.shutdown().await;
    }
}
