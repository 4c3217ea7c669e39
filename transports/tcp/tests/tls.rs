//! Mutual TLS between nodes: every refusal at the handshake (no
//! certificate, another CA's, an expired one, one naming another node than
//! the one claimed, on either side), each logged and counted, and
//! certificates renewed without a restart.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use raft_actors::testing::{delivered, eventually, heartbeat, inbox};
use raft_actors::transport::{Peer, Transport};
use raft_actors_tls::generate::TestCa;
use raft_actors_tls::PeerTls;
use raft_actors_transport_tcp::frame::{Frame, FrameCodec};
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(5);
const CLUSTER: u64 = 7;

struct Pair {
    dir: tempfile::TempDir,
    ca: TestCa,
    ca_path: PathBuf,
    peers: BTreeMap<u64, SocketAddr>,
    t1: TcpTransport,
    tls1: PeerTls,
    rx1: mpsc::UnboundedReceiver<Peer>,
}

/// Node 1 serving over TLS, its certificate naming `node-<presents>`
/// (1 for an honest node), with the cluster CA kept to issue more.
fn pair_presenting(presents: u64) -> Pair {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("cluster").expect("ca");
    let ca_path = dir.path().join("ca.pem");
    ca.write(&ca_path).expect("write");
    let l1 = TcpListener::bind("127.0.0.1:0").expect("bind");
    // Node 2 never listens: it only dials.
    let peers: BTreeMap<u64, SocketAddr> = [
        (1, l1.local_addr().expect("addr")),
        (2, "127.0.0.1:9".parse().expect("addr")),
    ]
    .into();
    let (cert, key) = ca
        .node_files(dir.path(), "node-1", presents, false)
        .expect("a certificate");
    let tls1 = PeerTls::load(&cert, &key, &ca_path).expect("tls");
    let mut cfg = TcpConfig::new(1, CLUSTER, peers.clone());
    cfg.tls = Some(tls1.clone());
    cfg.learn_peers = true;
    let t1 = TcpTransport::new(cfg).expect("transport");
    let (inb, rx1) = inbox();
    t1.serve(l1, inb).expect("serve");
    Pair {
        dir,
        ca,
        ca_path,
        peers,
        t1,
        tls1,
        rx1,
    }
}

fn pair() -> Pair {
    pair_presenting(1)
}

/// Node `id` dialling node 1, presenting `tls`; advertising an address
/// (so that node 1, which learns peers, would add an unknown one).
fn dialler(p: &Pair, id: u64, tls: PeerTls) -> TcpTransport {
    let mut cfg = TcpConfig::new(id, CLUSTER, p.peers.clone());
    cfg.backoff_max = Duration::from_millis(50);
    cfg.advertise = Some("127.0.0.1:9".parse().expect("addr"));
    cfg.tls = Some(tls);
    TcpTransport::new(cfg).expect("transport")
}

/// Node `id`'s TLS with a certificate of `ca` naming `names`, trusting the
/// pair's CA.
fn tls_from(p: &Pair, ca: &TestCa, stem: &str, names: u64, expired: bool) -> PeerTls {
    ca.peer_tls(p.dir.path(), stem, names, expired, &p.ca_path)
        .expect("tls")
}

#[actix_rt::test]
async fn nodes_with_certificates_of_the_cluster_ca_talk() {
    let mut p = pair();
    let t2 = dialler(&p, 2, tls_from(&p, &p.ca, "node-2", 2, false));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    let got = delivered(&mut p.rx1).await;
    assert_eq!(got.messages, vec![heartbeat(2, 1, 1)]);
    assert_eq!(p.t1.metrics().tls_refused, 0);
    assert_eq!(p.t1.metrics().refused, 0);
}

#[actix_rt::test]
async fn a_dialler_without_tls_is_refused_at_the_handshake() {
    let p = pair();
    // A plain-text Hello where a TLS ClientHello belongs.
    let mut s = TcpStream::connect(p.peers[&1]).await.expect("connect");
    let mut buf = BytesMut::new();
    let hello = Frame::Hello {
        cluster_id: CLUSTER,
        from: 2,
        to: 1,
    };
    FrameCodec::new(1 << 20)
        .encode_into(&hello, &mut buf)
        .expect("encode");
    s.write_all(&buf).await.expect("write");
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, s.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the node must close the connection");
    eventually("the refusal counted", || p.t1.metrics().tls_refused == 1).await;
    assert_eq!(p.t1.metrics().refused, 1);

    // A whole plain transport is refused again and delivers nothing.
    let mut cfg = TcpConfig::new(2, CLUSTER, p.peers.clone());
    cfg.backoff_max = Duration::from_millis(50);
    let t2 = TcpTransport::new(cfg).expect("transport");
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("a second refusal", || p.t1.metrics().tls_refused >= 2).await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn a_certificate_of_another_ca_is_refused() {
    let p = pair();
    let foreign = TestCa::new("another cluster").expect("ca");
    let t2 = dialler(&p, 2, tls_from(&p, &foreign, "foreign-2", 2, false));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("the foreign certificate refused", || {
        p.t1.metrics().tls_refused >= 1
    })
    .await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn an_expired_certificate_is_refused() {
    let p = pair();
    let t2 = dialler(&p, 2, tls_from(&p, &p.ca, "expired-2", 2, true));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("the expired certificate refused", || {
        p.t1.metrics().tls_refused >= 1
    })
    .await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn a_dialler_claiming_another_nodes_id_is_refused_and_not_learnt() {
    let p = pair();
    // A valid certificate of the cluster's CA, for node 3; the dialler
    // claims to be node 2 (known), then node 5 (unknown: node 1 learns
    // peers that advertise an address, but must not learn this one).
    let t2 = dialler(&p, 2, tls_from(&p, &p.ca, "node-3-as-2", 3, false));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("claiming node 2 refused", || {
        p.t1.metrics().tls_refused >= 1
    })
    .await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);

    let mut peers = p.peers.clone();
    peers.insert(5, "127.0.0.1:9".parse().expect("addr"));
    let mut cfg = TcpConfig::new(5, CLUSTER, peers);
    cfg.advertise = Some("127.0.0.1:9".parse().expect("addr"));
    cfg.backoff_max = Duration::from_millis(50);
    cfg.tls = Some(tls_from(&p, &p.ca, "node-3-as-5", 3, false));
    let t5 = TcpTransport::new(cfg).expect("transport");
    t5.send(1, vec![heartbeat(5, 1, 1)]).expect("queued");
    eventually("claiming node 5 refused", || {
        p.t1.metrics().tls_refused >= 2
    })
    .await;
    assert!(
        !p.t1.metrics().peers.contains_key(&5),
        "a refused dialler is never learnt"
    );
}

#[actix_rt::test]
async fn a_dialler_refuses_a_node_whose_certificate_names_another() {
    // Node 1 listens with a certificate of the right CA, but for node 3:
    // node 2, dialling node 1, must refuse it (and node 1 sees the alert).
    let p = pair_presenting(3);
    let t2 = dialler(&p, 2, tls_from(&p, &p.ca, "node-2", 2, false));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("the dialler aborted", || p.t1.metrics().tls_refused >= 1).await;
    // The dialler counts the certificate it refused, as the HTTP one does.
    eventually("the dialler counted it", || t2.metrics().tls_refused >= 1).await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn renewed_certificates_and_cas_apply_without_a_restart() {
    let mut p = pair();
    // The dialler's certificate has expired: refused.
    let (cert, key) =
        p.ca.node_files(p.dir.path(), "renewing-2", 2, true)
            .expect("a certificate");
    let tls2 = PeerTls::load(&cert, &key, &p.ca_path).expect("tls");
    let t2 = dialler(&p, 2, tls2.clone());
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("the expired one refused", || {
        p.t1.metrics().tls_refused >= 1
    })
    .await;
    // Renewed on disk, then reloaded: the next dial goes through.
    p.ca.node_files(p.dir.path(), "renewing-2", 2, false)
        .expect("a certificate");
    tls2.reload().expect("reload");
    t2.send(1, vec![heartbeat(2, 1, 2)]).expect("queued");
    let got = delivered(&mut p.rx1).await;
    assert_eq!(got.messages.first().map(|m| m.from), Some(2));

    // The acceptor's side: node 6 of a new CA is refused until node 1's
    // CA file holds both CAs and node 1 reloads it.
    let newer = TestCa::new("new CA").expect("ca");
    let mut peers = p.peers.clone();
    peers.insert(6, "127.0.0.1:9".parse().expect("addr"));
    let (cert, key) = newer
        .node_files(p.dir.path(), "node-6", 6, false)
        .expect("a certificate");
    let both = p.dir.path().join("both.pem");
    std::fs::write(&both, format!("{}{}", p.ca.cert_pem(), newer.cert_pem())).expect("write");
    let mut cfg = TcpConfig::new(6, CLUSTER, peers);
    cfg.advertise = Some("127.0.0.1:9".parse().expect("addr"));
    cfg.backoff_max = Duration::from_millis(50);
    cfg.tls = Some(PeerTls::load(&cert, &key, &both).expect("tls"));
    let t6 = TcpTransport::new(cfg).expect("transport");
    let refused = p.t1.metrics().tls_refused;
    t6.send(1, vec![heartbeat(6, 1, 1)]).expect("queued");
    eventually("the new CA refused", || {
        p.t1.metrics().tls_refused > refused
    })
    .await;
    std::fs::copy(&both, &p.ca_path).expect("copy");
    p.tls1.reload().expect("reload");
    let got = loop {
        t6.send(1, vec![heartbeat(6, 1, 2)]).expect("queued");
        let got = delivered(&mut p.rx1).await;
        if got.messages.first().map(|m| m.from) == Some(6) {
            break got;
        }
    };
    assert_eq!(got.messages.first().map(|m| m.term), Some(1));
}
