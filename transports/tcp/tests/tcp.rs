//! What the conformance suite cannot check from outside: the handshake's
//! refusals, frame limits on the wire, reconnects, drops and metrics.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use raft_actors::core::{Body, Message};
use raft_actors::testing::{eventually, inbox};
use raft_actors::transport::Peer;
use raft_actors::transport::{Transport, TransportError};
use raft_actors_transport_tcp::frame::{decode_body, Frame, FrameCodec, FrameError, WIRE_VERSION};
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

const DEADLINE: Duration = Duration::from_secs(5);
const CLUSTER: u64 = 7;

use common::init_logging;

fn hb(from: u64, to: u64, seq: u64) -> Message {
    Message {
        from,
        to,
        term: 1,
        body: Body::Heartbeat { commit: 0, seq },
    }
}

/// Two listeners on free loopback ports, and the address map.
fn two_nodes() -> (TcpListener, TcpListener, BTreeMap<u64, SocketAddr>) {
    let (mut ls, peers) = common::listeners(2);
    let l2 = ls.pop().expect("two");
    let l1 = ls.pop().expect("two");
    (l1, l2, peers)
}

/// Node 1, serving, and its mailbox.
fn node1(
    l1: TcpListener,
    peers: &BTreeMap<u64, SocketAddr>,
) -> (TcpTransport, mpsc::UnboundedReceiver<Peer>) {
    let (inb, rx) = inbox();
    let t = TcpTransport::new(TcpConfig::new(1, CLUSTER, peers.clone())).expect("new");
    t.serve(l1, inb).expect("serve");
    (t, rx)
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Peer>) -> Option<Peer> {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .ok()
        .flatten()
}

async fn raw_hello(addr: SocketAddr, cluster_id: u64, from: u64) -> (TcpStream, Option<Frame>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut buf = BytesMut::new();
    FrameCodec::new(1 << 20)
        .encode_into(
            &Frame::Hello {
                cluster_id,
                from,
                to: 1,
            },
            &mut buf,
        )
        .expect("encode");
    s.write_all(&buf).await.expect("write");
    let mut reader = FramedRead::new(&mut s, FrameCodec::new(1 << 20));
    let reply = tokio::time::timeout(DEADLINE, reader.next())
        .await
        .expect("a reply in time")
        .and_then(Result::ok);
    (s, reply)
}

/// Reads until EOF (the server closed); panics if it stays open.
async fn assert_closed(mut s: TcpStream) {
    let mut sink = Vec::new();
    let r = tokio::time::timeout(DEADLINE, s.read_to_end(&mut sink)).await;
    assert!(r.is_ok(), "the server must close the connection");
}

#[actix_rt::test]
async fn a_wrong_cluster_id_is_refused_and_the_connection_closed() {
    init_logging();
    let (l1, _l2, peers) = two_nodes();
    let addr = peers[&1];
    let (t1, _rx) = node1(l1, &peers);
    let (s, reply) = raw_hello(addr, CLUSTER + 1, 2).await;
    assert!(
        matches!(&reply, Some(Frame::Refused { reason }) if reason.contains("cluster")),
        "{reply:?}"
    );
    assert_closed(s).await;
    assert_eq!(t1.metrics().refused, 1);

    // A whole transport of another cluster delivers nothing.
    let (inb2, _rx2) = inbox();
    let mut cfg = TcpConfig::new(2, CLUSTER + 1, peers.clone());
    cfg.backoff_max = Duration::from_millis(20);
    let other = TcpTransport::new(cfg).expect("new");
    other.serve(_l2, inb2).expect("serve");
    other.send(1, vec![hb(2, 1, 1)]).expect("queued");
    eventually("the second refusal", || t1.metrics().refused >= 2).await;
    assert_eq!(t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn an_unknown_node_is_refused() {
    init_logging();
    let (l1, _l2, peers) = two_nodes();
    let (t1, _rx) = node1(l1, &peers);
    let (s, reply) = raw_hello(peers[&1], CLUSTER, 99).await;
    assert!(
        matches!(&reply, Some(Frame::Refused { reason }) if reason.contains("unknown node 99")),
        "{reply:?}"
    );
    assert_closed(s).await;
    assert_eq!(t1.metrics().refused, 1);
}

#[actix_rt::test]
async fn an_oversized_or_malformed_frame_closes_only_its_connection() {
    init_logging();
    let (l1, l2, peers) = two_nodes();
    let (t1, mut rx) = node1(l1, &peers);
    let bad_inputs: [&[u8]; 3] = [
        // A length prefix claiming 4 GiB: refused before any allocation.
        &[0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        // A wrong wire version.
        &[0, 0, 0, 2, 99, 0],
        // The right version, then bytes that are no frame.
        &[0, 0, 0, 3, WIRE_VERSION, 0xff, 0xff],
    ];
    for (i, bad) in bad_inputs.iter().enumerate() {
        let (mut s, reply) = raw_hello(peers[&1], CLUSTER, 2).await;
        assert_eq!(reply, Some(Frame::Welcome));
        s.write_all(bad).await.expect("write");
        assert_closed(s).await;
        eventually("bad frame counted", || {
            t1.metrics().bad_frames == i as u64 + 1
        })
        .await;
    }
    info_line("--- the node still serves a well-behaved peer");
    let (inb2, _rx2) = inbox();
    let t2 = TcpTransport::new(TcpConfig::new(2, CLUSTER, peers)).expect("new");
    t2.serve(l2, inb2).expect("serve");
    t2.send(1, vec![hb(2, 1, 5)]).expect("send");
    let got = recv(&mut rx).await.expect("delivered");
    assert_eq!(got.messages, vec![hb(2, 1, 5)]);
}

fn info_line(s: &str) {
    tracing::info!("{s}");
}

#[actix_rt::test]
async fn a_message_claiming_another_sender_closes_the_connection() {
    init_logging();
    let (l1, _l2, peers) = two_nodes();
    let (t1, mut rx) = node1(l1, &peers);
    let (mut s, reply) = raw_hello(peers[&1], CLUSTER, 2).await;
    assert_eq!(reply, Some(Frame::Welcome));
    let mut buf = BytesMut::new();
    FrameCodec::new(1 << 20)
        .encode_into(
            &Frame::Batch {
                group: 0,
                messages: vec![hb(3, 1, 1)],
            },
            &mut buf,
        )
        .expect("encode");
    s.write_all(&buf).await.expect("write");
    assert_closed(s).await;
    assert_eq!(t1.metrics().bad_frames, 1);
    assert!(rx.try_recv().is_err(), "nothing delivered");
}

#[actix_rt::test]
async fn reconnects_sends_and_receipts_are_counted() {
    init_logging();
    let (l1, l2, peers) = two_nodes();
    let (t1, _rx1) = node1(l1, &peers);
    let (inb2, mut rx2) = inbox();
    let t2 = TcpTransport::new(TcpConfig::new(2, CLUSTER, peers.clone())).expect("new");
    t2.serve(l2, inb2).expect("serve");
    t1.send(2, vec![hb(1, 2, 1), hb(1, 2, 2)]).expect("send");
    assert_eq!(recv(&mut rx2).await.expect("delivered").messages.len(), 2);
    // The sender counts after its write returns: wait for it, not assume.
    eventually("sender counted", || {
        t1.metrics().peers[&2].messages_sent == 2
    })
    .await;
    let m1 = t1.metrics().peers[&2];
    assert!(m1.bytes_sent > 0);
    let m2 = t2.metrics().peers[&1];
    assert_eq!(m2.messages_received, 2);
    // One batch: one frame each way of counting.
    assert_eq!((m1.frames_sent, m2.frames_received), (1, 1));
    assert_eq!(
        m2.bytes_received, m1.bytes_sent,
        "both ends count the same bytes"
    );

    info_line("--- node 2 restarts on the same address");
    t2.shutdown().await;
    let (inb2, mut rx2) = inbox();
    let t2 = TcpTransport::new(TcpConfig::new(2, CLUSTER, peers.clone())).expect("new");
    t2.serve(TcpListener::bind(peers[&2]).expect("rebind"), inb2)
        .expect("serve");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let _ = t1.send(2, vec![hb(1, 2, 9)]);
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(50), rx2.recv()).await {
            assert_eq!(p.messages, vec![hb(1, 2, 9)]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery after restart"
        );
    }
    assert!(t1.metrics().peers[&2].reconnects >= 1, "{:?}", t1.metrics());
}

#[actix_rt::test]
async fn a_full_queue_drops_and_counts() {
    init_logging();
    // A port nobody listens on: the link stays down and the queue fills.
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peers = [(2, dead.local_addr().expect("addr"))].into();
    drop(dead);
    let mut cfg = TcpConfig::new(1, CLUSTER, peers);
    cfg.queue_capacity = 4;
    let t1 = TcpTransport::new(cfg).expect("new");
    let results: Vec<_> = (0..20).map(|i| t1.send(2, vec![hb(1, 2, i)])).collect();
    let refused = results
        .iter()
        .filter(|r| **r == Err(TransportError::Unreachable(2)))
        .count();
    // The task may already hold one batch while dialling.
    assert!((15..=16).contains(&refused), "{results:?}");
    assert_eq!(t1.metrics().peers[&2].drops, refused as u64);
    t1.shutdown().await;
    assert_eq!(
        t1.send(2, vec![hb(1, 2, 1)]),
        Err(TransportError::Unreachable(2))
    );
}

/// A `Hello` as a node of wire version 2 (before group ids) sends it: the
/// version byte 2, then the same postcard fields.
fn version_2_hello(from: u64) -> Vec<u8> {
    let body = postcard::to_extend(
        &Frame::Hello {
            cluster_id: CLUSTER,
            from,
            to: 1,
        },
        vec![2u8],
    )
    .expect("encode");
    let mut raw = u32::try_from(body.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    raw.extend_from_slice(&body);
    raw
}

#[actix_rt::test]
async fn a_node_of_the_older_wire_version_is_refused_with_one_clear_line() {
    init_logging();
    let (l1, _l2, peers) = two_nodes();
    let (t1, mut rx) = node1(l1, &peers);
    // The line a node logs for such a peer names both versions and says
    // what to do; the bytes after the version byte are never parsed.
    let raw = version_2_hello(2);
    let err = decode_body(&raw[4..]).expect_err("a version-2 frame is refused");
    assert!(
        matches!(
            err,
            FrameError::Version {
                got: 2,
                expected: WIRE_VERSION
            }
        ),
        "{err:?}"
    );
    let line = err.to_string();
    assert!(
        line.contains("wire version 2") && line.contains(&format!("only {WIRE_VERSION}")),
        "{line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");

    let mut s = TcpStream::connect(peers[&1]).await.expect("connect");
    s.write_all(&raw).await.expect("write");
    assert_closed(s).await;
    eventually("the old node's handshake counted as a bad frame", || {
        t1.metrics().bad_frames == 1
    })
    .await;
    assert_eq!(
        t1.metrics().refused,
        0,
        "refused for its version, not its claim"
    );
    assert!(rx.try_recv().is_err(), "nothing delivered");
}

#[actix_rt::test]
async fn a_batch_of_another_group_is_dropped_and_counted_and_the_connection_kept() {
    init_logging();
    let (l1, _l2, peers) = two_nodes();
    let (t1, mut rx) = node1(l1, &peers);
    let (mut s, reply) = raw_hello(peers[&1], CLUSTER, 2).await;
    assert_eq!(reply, Some(Frame::Welcome));
    let codec = FrameCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    for (group, seq) in [(5, 1), (0, 2)] {
        codec
            .encode_into(
                &Frame::Batch {
                    group,
                    messages: vec![hb(2, 1, seq)],
                },
                &mut buf,
            )
            .expect("encode");
    }
    s.write_all(&buf).await.expect("write");
    // Only group 0's batch, the one this transport carries, arrives, over
    // the same connection.
    let got = recv(&mut rx).await.expect("delivered");
    assert_eq!(got.messages, vec![hb(2, 1, 2)]);
    let m = t1.metrics();
    assert_eq!(m.other_group, 1);
    assert_eq!(m.bad_frames, 0);
    assert_eq!(m.peers[&2].frames_received, 2);
    assert_eq!(m.peers[&2].messages_received, 1);
    assert!(
        rx.try_recv().is_err(),
        "group 5's batch was never delivered"
    );
}

#[actix_rt::test]
async fn two_transports_of_one_group_talk_and_of_two_groups_do_not() {
    init_logging();
    let (l1, l2, peers) = two_nodes();
    let mut cfg1 = TcpConfig::new(1, CLUSTER, peers.clone());
    cfg1.group = 9;
    let t1 = TcpTransport::new(cfg1).expect("new");
    let (inb1, mut rx1) = inbox();
    t1.serve(l1, inb1).expect("serve");
    let mut cfg2 = TcpConfig::new(2, CLUSTER, peers.clone());
    cfg2.group = 9;
    let t2 = TcpTransport::new(cfg2).expect("new");
    let (inb2, _rx2) = inbox();
    t2.serve(l2, inb2).expect("serve");
    t2.send(1, vec![hb(2, 1, 1)]).expect("send");
    let got = recv(&mut rx1).await.expect("delivered within group 9");
    assert_eq!(got.messages, vec![hb(2, 1, 1)]);

    // A third transport, node 2 of group 0, reaches node 1 but not its group.
    let mut cfg3 = TcpConfig::new(2, CLUSTER, peers);
    cfg3.group = 0;
    let t3 = TcpTransport::new(cfg3).expect("new");
    t3.send(1, vec![hb(2, 1, 2)]).expect("send");
    eventually("group 0's batch dropped by group 9's transport", || {
        t1.metrics().other_group == 1
    })
    .await;
    assert!(rx1.try_recv().is_err(), "nothing of group 0 delivered");
}
