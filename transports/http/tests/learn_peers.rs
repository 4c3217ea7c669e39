//! Peers added while running: `set_peer`, and a joining node that learns
//! its peers from their requests (`advertise` + `learn_peers`).

use std::net::TcpListener;

use raft_actors::testing::{heartbeat, inbox, send_until_delivered};
use raft_actors::transport::{Transport, TransportError};
use raft_actors_transport_http::{HttpConfig, HttpTransport};

const CLUSTER: u64 = 7;

#[actix_rt::test]
async fn a_joining_node_learns_the_peer_that_posts_to_it_and_answers() {
    let (l1, l2) = (
        TcpListener::bind("127.0.0.1:0").expect("bind"),
        TcpListener::bind("127.0.0.1:0").expect("bind"),
    );
    let (a1, a2) = (
        l1.local_addr().expect("addr"),
        l2.local_addr().expect("addr"),
    );
    let mut c1 = HttpConfig::new(1, CLUSTER, Default::default());
    c1.advertise = Some(a1);
    let t1 = HttpTransport::new(c1);
    let mut c2 = HttpConfig::new(2, CLUSTER, Default::default());
    c2.learn_peers = true;
    let t2 = HttpTransport::new(c2);
    let (i1, mut rx1) = inbox();
    let (i2, mut rx2) = inbox();
    t1.serve(l1, i1).expect("serve");
    t2.serve(l2, i2).expect("serve");

    let hb = heartbeat(2, 1, 1);
    assert_eq!(t2.send(1, vec![hb]), Err(TransportError::UnknownPeer(1)));
    // From another thread, as a state machine's apply would.
    let t1c = t1.clone();
    std::thread::spawn(move || t1c.set_peer(2, a2))
        .join()
        .expect("set_peer from another thread");
    let p = send_until_delivered(&t1, 1, 2, &mut rx2).await;
    assert_eq!(p.messages[0].from, 1);
    let p = send_until_delivered(&t2, 2, 1, &mut rx1).await;
    assert_eq!(p.messages[0].from, 2);
    assert!(t2.metrics().peers.contains_key(&1));
    t1.shutdown().await;
    t2.shutdown().await;
}
