//! What the conformance suite cannot check from outside: refusals of a
//! wrong cluster, an unknown sender and a forged message; the body limit
//! (413, before the body is read); malformed and wrong-version bodies; a
//! body of another group.

mod common;

use std::time::Duration;

use raft_actors::core::{Body, Message};
use raft_actors::transport::{GroupBatch, Peer};
use raft_actors_transport_http::wire::{Envelope, PATH, WIRE_VERSION};
use raft_actors_transport_http::{HttpConfig, HttpTransport};
use tokio::sync::mpsc;

fn hb(from: u64, to: u64) -> Message {
    Message {
        from,
        to,
        term: 1,
        body: Body::Heartbeat { commit: 0, seq: 1 },
    }
}

/// Node 1 serving with a 4 KiB body limit; answers its URL.
fn node1() -> (HttpTransport, String, mpsc::UnboundedReceiver<Peer>) {
    common::init_logging();
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let mut cfg = HttpConfig::new(
        1,
        7,
        [(1, addr), (2, "127.0.0.1:9".parse().expect("addr"))].into(),
    );
    cfg.max_body_bytes = 4096;
    let t = HttpTransport::new(cfg);
    let (mailbox, rx) = raft_actors::testing::inbox();
    t.serve(l, mailbox).expect("serve");
    (t, format!("http://{addr}{PATH}"), rx)
}

/// The next batch delivered to the node, within 5 s.
async fn delivered(rx: &mut mpsc::UnboundedReceiver<Peer>) -> Peer {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("in time")
        .expect("delivered")
}

async fn post(url: &str, body: Vec<u8>) -> u16 {
    awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish()
        .post(url)
        .send_body(body)
        .await
        .expect("a response")
        .status()
        .as_u16()
}

fn envelope(cluster_id: u64, from: u64, messages: Vec<Message>) -> Vec<u8> {
    envelope_of(0, cluster_id, from, messages)
}

fn envelope_of(group: u64, cluster_id: u64, from: u64, messages: Vec<Message>) -> Vec<u8> {
    Envelope {
        cluster_id,
        from,
        to: 1,
        batches: vec![GroupBatch { group, messages }],
    }
    .encode()
    .expect("encode")
}

#[actix_rt::test]
async fn refusals_and_limits() {
    let (t, url, mut rx) = node1();
    assert_eq!(
        post(&url, envelope(8, 2, vec![hb(2, 1)])).await,
        403,
        "wrong cluster"
    );
    assert_eq!(
        post(&url, envelope(7, 99, vec![hb(99, 1)])).await,
        403,
        "unknown node"
    );
    assert_eq!(t.metrics().refused, 2);
    assert_eq!(
        post(&url, envelope(7, 2, vec![hb(3, 1)])).await,
        400,
        "forged sender"
    );
    assert_eq!(post(&url, vec![]).await, 400, "empty body");
    assert_eq!(post(&url, vec![9, 0, 0]).await, 400, "wrong version");
    assert_eq!(
        post(&url, vec![1, 0xff, 0xff, 0xff]).await,
        400,
        "malformed"
    );
    assert_eq!(post(&url, vec![1; 8192]).await, 413, "over the body limit");
    assert!(rx.try_recv().is_err(), "nothing delivered so far");
    assert_eq!(post(&url, envelope(7, 2, vec![hb(2, 1)])).await, 204);
    let got = delivered(&mut rx).await;
    assert_eq!(got.messages, vec![hb(2, 1)]);
    assert_eq!(t.metrics().peers[&2].messages_received, 1);
    assert_eq!(t.metrics().peers[&2].frames_received, 1, "one request");
    t.shutdown().await;
}

async fn post_for_text(url: &str, body: Vec<u8>) -> (u16, String) {
    let mut res = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish()
        .post(url)
        .send_body(body)
        .await
        .expect("a response");
    let text = res.body().await.expect("a body");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&text).into_owned(),
    )
}

#[actix_rt::test]
async fn an_older_node_is_refused_with_one_clear_line_and_another_group_dropped() {
    let (t, url, mut rx) = node1();
    // A body as a node of wire version 2 (before group ids) posts it: the
    // version byte 2, then its envelope, never parsed.
    let mut old = envelope(7, 2, vec![hb(2, 1)]);
    old[0] = 2;
    let (status, text) = post_for_text(&url, old).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("wire version 2") && text.contains(&format!("only {WIRE_VERSION}")),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(t.metrics().bad_bodies, 1);

    // A group not served here: dropped and counted, and answered 204 so
    // the sender never backs off its link (and every other group on it).
    let other = |seq| raft_actors::testing::heartbeat(2, 1, seq);
    let (status, text) = post_for_text(&url, envelope_of(5, 7, 2, vec![other(55)])).await;
    assert_eq!(status, 204, "{text}");
    assert_eq!(t.metrics().other_group, 1);

    // One request with batches of two groups: the served one is
    // delivered, the other dropped and counted.
    let mixed = Envelope {
        cluster_id: 7,
        from: 2,
        to: 1,
        batches: vec![
            GroupBatch {
                group: 5,
                messages: vec![other(56)],
            },
            GroupBatch {
                group: 0,
                messages: vec![hb(2, 1)],
            },
        ],
    };
    assert_eq!(post(&url, mixed.encode().expect("encode")).await, 204);
    // The first delivery is group 0's: group 5's batches went nowhere.
    assert_eq!(delivered(&mut rx).await.messages, vec![hb(2, 1)]);
    assert_eq!(t.metrics().other_group, 2);

    // A group served through `serve_group` gets its own batches.
    let (mailbox9, mut rx9) = raft_actors::testing::inbox();
    t.serve_group(9, mailbox9);
    assert_eq!(post(&url, envelope_of(9, 7, 2, vec![hb(2, 1)])).await, 204);
    assert_eq!(delivered(&mut rx9).await.messages, vec![hb(2, 1)]);
    assert!(rx.try_recv().is_err(), "group 0 got group 9's batch");

    // The group it carries is still served.
    assert_eq!(post(&url, envelope(7, 2, vec![hb(2, 1)])).await, 204);
    let got = delivered(&mut rx).await;
    assert_eq!(got.messages, vec![hb(2, 1)]);
    t.shutdown().await;
}
