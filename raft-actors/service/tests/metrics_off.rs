//! Built without the cargo feature `metrics`, a node serves no `/metrics`
//! (404) and everything else as usual. Runs only in such a build:
//! `cargo test -p raft-actors-service --no-default-features --features tcp --test metrics_off`.
#![cfg(all(not(feature = "metrics"), feature = "tcp"))]

use std::net::TcpListener;
use std::time::Duration;

use actix_web::web;
use raft_actors_service::flags::StorageKind;
use raft_actors_service::{LogIndex, Service, ServiceBuilder};

const T: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Nothing;

impl Service for Nothing {
    const NAME: &'static str = "metrics-off";
    type Command = ();
    type Output = ();
    type Query = ();
    type Answer = ();
    type Snapshot = ();
    fn apply(&mut self, _: LogIndex, _: ()) {}
    fn query(&self, _: ()) {}
    fn snapshot(&self) {}
    fn restore(&mut self, _: ()) {}
    fn routes(_: &mut web::ServiceConfig) {}
}

#[actix_rt::test]
async fn without_the_feature_metrics_is_not_served() {
    let raft = TcpListener::bind("127.0.0.1:0").expect("bind");
    let me = raft.local_addr().expect("addr");
    let node = ServiceBuilder::<Nothing>::new(1)
        .raft_listener(raft)
        .http_listener(TcpListener::bind("127.0.0.1:0").expect("bind"))
        .peers([(1, me)])
        .storage(StorageKind::Memory)
        .http_workers(1)
        .start()
        .await
        .expect("the node starts");
    let client = awc::Client::builder().timeout(T).finish();
    let get = |path: &str| {
        client
            .get(format!("http://{}{path}", node.http_addr()))
            .send()
    };
    assert_eq!(
        get("/metrics").await.expect("answers").status().as_u16(),
        404
    );
    assert_eq!(
        get("/status").await.expect("answers").status().as_u16(),
        200
    );
    node.shutdown().await;
}
