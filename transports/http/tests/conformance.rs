//! The HTTP transport passes the `Transport` conformance suite over
//! loopback, in plain text and over mutual TLS, and lets heartbeats overtake snapshot chunks.

mod common;

use raft_actors::testing::{heartbeats_overtake_snapshot_chunks, transport_suite};

#[actix_rt::test]
async fn conformance() {
    common::init_logging();
    transport_suite(common::Harness::new(&[1, 2, 3], 1 << 20)).await;
}

#[actix_rt::test]
async fn snapshot_chunks_do_not_delay_heartbeats() {
    common::init_logging();
    heartbeats_overtake_snapshot_chunks(common::Harness::new(&[1, 2], 1 << 20)).await;
}

#[actix_rt::test]
async fn conformance_over_mutual_tls() {
    common::init_logging();
    transport_suite(common::Harness::new(&[1, 2, 3], 1 << 20).with_tls()).await;
}

#[actix_rt::test]
async fn snapshot_chunks_do_not_delay_heartbeats_over_tls() {
    common::init_logging();
    heartbeats_overtake_snapshot_chunks(common::Harness::new(&[1, 2], 1 << 20).with_tls()).await;
}

#[actix_rt::test]
async fn many_groups_share_the_transport() {
    use raft_actors_transport_http::{HttpConfig, HttpTransport};
    common::init_logging();
    let (l1, l2) = (
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind"),
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind"),
    );
    let peers: std::collections::BTreeMap<u64, std::net::SocketAddr> = [
        (1, l1.local_addr().expect("addr")),
        (2, l2.local_addr().expect("addr")),
    ]
    .into();
    let a = HttpTransport::new(HttpConfig::new(1, 7, peers.clone()));
    let b = HttpTransport::new(HttpConfig::new(2, 7, peers));
    raft_actors::testing::group_suite(&a, l1, &b, l2).await;
    assert_eq!(a.metrics().other_group, 0);
    a.shutdown().await;
    b.shutdown().await;
}
