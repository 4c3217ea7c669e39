//! The TCP transport passes the `Transport` conformance suite over
//! loopback, with ports chosen by binding to port 0, in plain text and
//! over mutual TLS.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};

use actix::Recipient;
use raft_actors::testing::{
    heartbeats_overtake_snapshot_chunks, transport_suite, TransportHarness,
};
use raft_actors::transport::Peer;
use raft_actors_tls::generate::{write_cluster, ClusterFiles};
use raft_actors_tls::PeerTls;
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};

struct Harness {
    /// Mutual TLS on every link, each node with its own certificate.
    tls: Option<(tempfile::TempDir, ClusterFiles)>,
    addrs: BTreeMap<u64, SocketAddr>,
    listeners: BTreeMap<u64, TcpListener>,
    running: BTreeMap<u64, TcpTransport>,
}

impl Harness {
    fn new(ids: &[u64]) -> Self {
        let listeners: BTreeMap<u64, TcpListener> = ids
            .iter()
            .map(|id| (*id, TcpListener::bind("127.0.0.1:0").expect("bind")))
            .collect();
        let addrs = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().expect("addr")))
            .collect();
        Harness {
            tls: None,
            addrs,
            listeners,
            running: BTreeMap::new(),
        }
    }

    fn with_tls(mut self) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ids: Vec<u64> = self.addrs.keys().copied().collect();
        let files = write_cluster(dir.path(), &ids).expect("certificates");
        self.tls = Some((dir, files));
        self
    }
}

impl TransportHarness for Harness {
    type T = TcpTransport;

    fn endpoint(&mut self, id: u64, inbox: Recipient<Peer>) -> TcpTransport {
        let listener = match self.listeners.remove(&id) {
            Some(l) => l,
            // A restarted node listens on its old address again.
            None => TcpListener::bind(self.addrs[&id]).expect("rebind"),
        };
        let mut cfg = TcpConfig::new(id, 7, self.addrs.clone());
        cfg.max_frame_bytes = 1 << 20;
        if let Some((_, files)) = &self.tls {
            let (_, cert, key) = files.nodes.iter().find(|n| n.0 == id).expect("a cert");
            cfg.tls = Some(PeerTls::load(cert, key, &files.ca).expect("tls"));
        }
        let t = TcpTransport::new(cfg).expect("transport");
        t.serve(listener, inbox).expect("serve");
        self.running.insert(id, t.clone());
        t
    }

    async fn disconnect(&mut self, id: u64) {
        if let Some(t) = self.running.remove(&id) {
            t.shutdown().await;
        }
    }

    fn max_batch_bytes(&self) -> usize {
        (1 << 20) - 16
    }
}

#[actix_rt::test]
async fn conformance() {
    transport_suite(Harness::new(&[1, 2, 3])).await;
}

#[actix_rt::test]
async fn snapshot_chunks_do_not_delay_heartbeats() {
    heartbeats_overtake_snapshot_chunks(Harness::new(&[1, 2])).await;
}

#[actix_rt::test]
async fn conformance_over_mutual_tls() {
    transport_suite(Harness::new(&[1, 2, 3]).with_tls()).await;
}

#[actix_rt::test]
async fn snapshot_chunks_do_not_delay_heartbeats_over_tls() {
    heartbeats_overtake_snapshot_chunks(Harness::new(&[1, 2]).with_tls()).await;
}

#[actix_rt::test]
async fn many_groups_share_the_transport() {
    let (l1, l2) = (
        TcpListener::bind("127.0.0.1:0").expect("bind"),
        TcpListener::bind("127.0.0.1:0").expect("bind"),
    );
    let peers: BTreeMap<u64, SocketAddr> = [
        (1, l1.local_addr().expect("addr")),
        (2, l2.local_addr().expect("addr")),
    ]
    .into();
    let a = TcpTransport::new(TcpConfig::new(1, 7, peers.clone())).expect("new");
    let b = TcpTransport::new(TcpConfig::new(2, 7, peers)).expect("new");
    raft_actors::testing::group_suite(&a, l1, &b, l2).await;
    assert_eq!(a.metrics().accepted, 1, "one connection for every group");
    a.shutdown().await;
    b.shutdown().await;
}
