//! Mutual TLS over HTTP: every refusal (no certificate, another CA's, an
//! expired one, one naming another node than the sender, on either side),
//! each logged and counted, and certificates renewed without a restart.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use raft_actors::testing::{delivered, eventually, heartbeat, inbox};
use raft_actors::transport::{Peer, Transport};
use raft_actors_tls::generate::TestCa;
use raft_actors_tls::{ClientTrust, PeerTls};
use raft_actors_transport_http::wire::{Envelope, PATH};
use raft_actors_transport_http::{HttpConfig, HttpTransport};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(5);
const CLUSTER: u64 = 7;

struct Pair {
    dir: tempfile::TempDir,
    ca: TestCa,
    ca_path: PathBuf,
    peers: BTreeMap<u64, SocketAddr>,
    t1: HttpTransport,
    rx1: mpsc::UnboundedReceiver<Peer>,
}

/// Node 1 serving HTTPS, its certificate naming `node-<presents>`, and
/// learning peers that advertise an address.
fn pair_presenting(presents: u64) -> Pair {
    common::init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("cluster").expect("ca");
    let ca_path = dir.path().join("ca.pem");
    ca.write(&ca_path).expect("write");
    let l1 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peers: BTreeMap<u64, SocketAddr> = [
        (1, l1.local_addr().expect("addr")),
        (2, "127.0.0.1:9".parse().expect("addr")),
    ]
    .into();
    let (cert, key) = ca
        .node_files(dir.path(), "node-1", presents, false)
        .expect("a certificate");
    let mut cfg = HttpConfig::new(1, CLUSTER, peers.clone());
    cfg.tls = Some(PeerTls::load(&cert, &key, &ca_path).expect("tls"));
    cfg.learn_peers = true;
    let t1 = HttpTransport::new(cfg);
    let (mailbox, rx1) = inbox();
    t1.serve(l1, mailbox).expect("serve");
    Pair {
        dir,
        ca,
        ca_path,
        peers,
        t1,
        rx1,
    }
}

fn pair() -> Pair {
    pair_presenting(1)
}

/// Node `id`'s TLS with a certificate of `ca` naming node `names`.
fn tls_from(p: &Pair, ca: &TestCa, stem: &str, names: u64, expired: bool) -> PeerTls {
    ca.peer_tls(p.dir.path(), stem, names, expired, &p.ca_path)
        .expect("tls")
}

fn dialler(p: &Pair, id: u64, tls: Option<PeerTls>) -> HttpTransport {
    let mut peers = p.peers.clone();
    peers
        .entry(id)
        .or_insert("127.0.0.1:9".parse().expect("addr"));
    let mut cfg = HttpConfig::new(id, CLUSTER, peers);
    cfg.backoff_max = Duration::from_millis(50);
    cfg.advertise = Some("127.0.0.1:9".parse().expect("addr"));
    cfg.tls = tls;
    HttpTransport::new(cfg)
}

fn envelope(from: u64) -> Vec<u8> {
    Envelope {
        cluster_id: CLUSTER,
        from,
        to: 1,
        batches: vec![raft_actors::transport::GroupBatch {
            group: 0,
            messages: vec![heartbeat(from, 1, 1)],
        }],
    }
    .encode()
    .expect("encode")
}

#[actix_rt::test]
async fn nodes_with_certificates_of_the_cluster_ca_talk() {
    let mut p = pair();
    let t2 = dialler(&p, 2, Some(tls_from(&p, &p.ca, "node-2", 2, false)));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    assert_eq!(
        delivered(&mut p.rx1).await.messages,
        vec![heartbeat(2, 1, 1)]
    );
    assert_eq!(p.t1.metrics().tls_refused, 0);
}

#[actix_rt::test]
async fn plain_http_and_https_without_a_certificate_are_refused() {
    let p = pair();
    // Plain HTTP to the HTTPS endpoint: no HTTP answer at all.
    let plain = awc::Client::builder()
        .timeout(DEADLINE)
        .finish()
        .post(format!("http://{}{PATH}", p.peers[&1]))
        .send_body(envelope(2))
        .await;
    assert!(plain.is_err(), "{:?}", plain.map(|r| r.status()));

    // HTTPS trusting the CA but presenting no certificate: 403, counted.
    let trust = ClientTrust::load(&[&p.ca_path], None).expect("trust");
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(trust.config()))
        .timeout(DEADLINE)
        .finish();
    let mut resp = client
        .post(format!("https://node-1{PATH}"))
        .address(p.peers[&1])
        .send_body(envelope(2))
        .await
        .expect("an answer");
    assert_eq!(resp.status().as_u16(), 403);
    let body = resp.body().await.expect("a body");
    assert!(String::from_utf8_lossy(&body).contains("no client certificate"));
    assert_eq!(p.t1.metrics().tls_refused, 1);
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn a_certificate_of_another_ca_is_refused() {
    let p = pair();
    let foreign = TestCa::new("another cluster").expect("ca");
    let t2 = dialler(&p, 2, Some(tls_from(&p, &foreign, "foreign-2", 2, false)));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("refused", || p.t1.metrics().tls_refused >= 1).await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn an_expired_certificate_is_refused() {
    let p = pair();
    let t2 = dialler(&p, 2, Some(tls_from(&p, &p.ca, "expired-2", 2, true)));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("refused", || p.t1.metrics().tls_refused >= 1).await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn a_sender_claiming_another_nodes_id_is_refused_and_not_learnt() {
    let p = pair();
    let t2 = dialler(&p, 2, Some(tls_from(&p, &p.ca, "node-3-as-2", 3, false)));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("claiming node 2 refused", || {
        p.t1.metrics().tls_refused >= 1
    })
    .await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);

    let t5 = dialler(&p, 5, Some(tls_from(&p, &p.ca, "node-3-as-5", 3, false)));
    t5.send(1, vec![heartbeat(5, 1, 1)]).expect("queued");
    eventually("claiming node 5 refused", || {
        p.t1.metrics().tls_refused >= 2
    })
    .await;
    assert!(!p.t1.metrics().peers.contains_key(&5), "never learnt");
}

#[actix_rt::test]
async fn a_sender_refuses_a_node_whose_certificate_names_another() {
    let p = pair_presenting(3);
    let t2 = dialler(&p, 2, Some(tls_from(&p, &p.ca, "node-2", 2, false)));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("the sender refused it", || t2.metrics().tls_refused >= 1).await;
    assert_eq!(p.t1.metrics().peers[&2].messages_received, 0);
}

#[actix_rt::test]
async fn a_renewed_certificate_applies_without_a_restart() {
    let mut p = pair();
    let (cert, key) =
        p.ca.node_files(p.dir.path(), "renewing-2", 2, true)
            .expect("a certificate");
    let tls2 = PeerTls::load(&cert, &key, &p.ca_path).expect("tls");
    let t2 = dialler(&p, 2, Some(tls2.clone()));
    t2.send(1, vec![heartbeat(2, 1, 1)]).expect("queued");
    eventually("the expired one refused", || {
        p.t1.metrics().tls_refused >= 1
    })
    .await;
    p.ca.node_files(p.dir.path(), "renewing-2", 2, false)
        .expect("a certificate");
    tls2.reload().expect("reload");
    // awc may reuse no connection (the failed handshake closed it): the
    // next request handshakes again, with the renewed certificate.
    t2.send(1, vec![heartbeat(2, 1, 2)]).expect("queued");
    let got = delivered(&mut p.rx1).await;
    assert_eq!(got.messages.first().map(|m| m.from), Some(2));
}
