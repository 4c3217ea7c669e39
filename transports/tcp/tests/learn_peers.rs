//! Peers added while running: `set_peer`, and a joining node that learns
//! its peers from their handshakes (`advertise` + `learn_peers`).

use std::net::TcpListener;
use std::time::Duration;

use raft_actors::core::{Body, Message};
use raft_actors::node::messages::peer::Peer;
use raft_actors::testing::inbox;
use raft_actors::transport::{Transport, TransportError};
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
use tokio::sync::mpsc;

const CLUSTER: u64 = 7;

fn hb(from: u64, to: u64) -> Message {
    Message {
        from,
        to,
        term: 1,
        body: Body::Heartbeat { commit: 0, seq: 1 },
    }
}

/// Sends until a batch arrives (the first ones may meet a connection
/// still being dialled), or the deadline.
async fn delivered(
    t: &TcpTransport,
    from: u64,
    to: u64,
    rx: &mut mpsc::UnboundedReceiver<Peer>,
) -> Peer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        let _ = t.send(to, vec![hb(from, to)]);
        poll.tick().await;
        if let Ok(p) = rx.try_recv() {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing from {from} reached {to}"
        );
    }
}

#[actix_rt::test]
async fn a_joining_node_learns_the_peer_that_dials_it_and_answers() {
    let (l1, l2) = (
        TcpListener::bind("127.0.0.1:0").expect("test setup"),
        TcpListener::bind("127.0.0.1:0").expect("test setup"),
    );
    let (a1, a2) = (
        l1.local_addr().expect("test setup"),
        l2.local_addr().expect("test setup"),
    );
    let mut c1 = TcpConfig::new(1, CLUSTER, Default::default());
    c1.advertise = Some(a1);
    let t1 = TcpTransport::new(c1).expect("test setup");
    let mut c2 = TcpConfig::new(2, CLUSTER, Default::default());
    c2.learn_peers = true;
    let t2 = TcpTransport::new(c2).expect("test setup");
    let (i1, mut rx1) = inbox();
    let (i2, mut rx2) = inbox();
    t1.serve(l1, i1).expect("test setup");
    t2.serve(l2, i2).expect("test setup");

    // Node 2 knows nobody: it cannot send yet.
    assert_eq!(
        t2.send(1, vec![hb(2, 1)]),
        Err(TransportError::UnknownPeer(1))
    );
    // Node 1 is told where 2 is, and dials it.
    t1.set_peer(2, a2);
    let p = delivered(&t1, 1, 2, &mut rx2).await;
    assert_eq!(p.messages[0].from, 1);
    // Node 2 learnt node 1 from the handshake and answers.
    let p = delivered(&t2, 2, 1, &mut rx1).await;
    assert_eq!(p.messages[0].from, 2);
    t1.shutdown().await;
    t2.shutdown().await;
}

#[actix_rt::test]
async fn unknown_senders_are_refused_without_learn_peers_and_set_peer_moves_a_peer() {
    let (l1, l2) = (
        TcpListener::bind("127.0.0.1:0").expect("test setup"),
        TcpListener::bind("127.0.0.1:0").expect("test setup"),
    );
    let (a1, a2) = (
        l1.local_addr().expect("test setup"),
        l2.local_addr().expect("test setup"),
    );
    let mut c1 = TcpConfig::new(
        1,
        CLUSTER,
        [(2, "127.0.0.1:9".parse().expect("test setup"))].into(),
    );
    c1.advertise = Some(a1);
    let t1 = TcpTransport::new(c1).expect("test setup");
    let t2 = TcpTransport::new(TcpConfig::new(2, CLUSTER, Default::default())).expect("test setup");
    let (i1, _rx1) = inbox();
    let (i2, mut rx2) = inbox();
    t1.serve(l1, i1).expect("test setup");
    t2.serve(l2, i2).expect("test setup");
    // Peer 2 moves to its real address; node 2 does not learn peers, so
    // it refuses node 1's handshakes.
    t1.set_peer(2, a2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    while t2.metrics().refused == 0 {
        let _ = t1.send(2, vec![hb(1, 2)]);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no handshake refused"
        );
        poll.tick().await;
    }
    assert!(
        rx2.try_recv().is_err(),
        "a refused peer's batch was delivered"
    );
    // Once node 2 knows node 1, the batches flow.
    t2.set_peer(1, a1);
    let p = delivered(&t1, 1, 2, &mut rx2).await;
    assert_eq!(p.messages[0].to, 2);
    t1.shutdown().await;
    t2.shutdown().await;
}
