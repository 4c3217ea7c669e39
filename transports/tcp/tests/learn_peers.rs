//! Peers added while running: `set_peer`, and a joining node that learns
//! its peers from their handshakes (`advertise` + `learn_peers`).

use std::net::TcpListener;

use raft_actors::testing::{heartbeat, inbox, send_until, send_until_delivered};
use raft_actors::transport::{Transport, TransportError};
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};

const CLUSTER: u64 = 7;

fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

#[actix_rt::test]
async fn a_joining_node_learns_the_peer_that_dials_it_and_answers() {
    let ((l1, a1), (l2, a2)) = (listener(), listener());
    let mut c1 = TcpConfig::new(1, CLUSTER, Default::default());
    c1.advertise = Some(a1);
    let t1 = TcpTransport::new(c1).expect("new");
    let mut c2 = TcpConfig::new(2, CLUSTER, Default::default());
    c2.learn_peers = true;
    let t2 = TcpTransport::new(c2).expect("new");
    let (i1, mut rx1) = inbox();
    let (i2, mut rx2) = inbox();
    t1.serve(l1, i1).expect("serve");
    t2.serve(l2, i2).expect("serve");

    // Node 2 knows nobody: it cannot send yet.
    let hb = heartbeat(2, 1, 1);
    assert_eq!(t2.send(1, vec![hb]), Err(TransportError::UnknownPeer(1)));
    // Node 1 is told where 2 is, and dials it.
    t1.set_peer(2, a2);
    let p = send_until_delivered(&t1, 1, 2, &mut rx2).await;
    assert_eq!(p.messages[0].from, 1);
    // Node 2 learnt node 1 from the handshake and answers.
    let p = send_until_delivered(&t2, 2, 1, &mut rx1).await;
    assert_eq!(p.messages[0].from, 2);
    t1.shutdown().await;
    t2.shutdown().await;
}

#[actix_rt::test]
async fn unknown_senders_are_refused_without_learn_peers_and_set_peer_moves_a_peer() {
    let ((l1, a1), (l2, a2)) = (listener(), listener());
    let mut c1 = TcpConfig::new(
        1,
        CLUSTER,
        [(2, "127.0.0.1:9".parse().expect("addr"))].into(),
    );
    c1.advertise = Some(a1);
    let t1 = TcpTransport::new(c1).expect("new");
    let t2 = TcpTransport::new(TcpConfig::new(2, CLUSTER, Default::default())).expect("new");
    let (i1, _rx1) = inbox();
    let (i2, mut rx2) = inbox();
    t1.serve(l1, i1).expect("serve");
    t2.serve(l2, i2).expect("serve");
    // Peer 2 moves to its real address; node 2 does not learn peers, so
    // it refuses node 1's handshakes.
    t1.set_peer(2, a2);
    send_until(&t1, 1, 2, "a refused handshake", || {
        t2.metrics().refused > 0
    })
    .await;
    assert!(
        rx2.try_recv().is_err(),
        "a refused peer's batch was delivered"
    );
    // Once node 2 knows node 1, the batches flow.
    t2.set_peer(1, a1);
    let p = send_until_delivered(&t1, 1, 2, &mut rx2).await;
    assert_eq!(p.messages[0].to, 2);
    t1.shutdown().await;
    t2.shutdown().await;
}
