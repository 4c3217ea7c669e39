//! A partition made by the kernel, not by a proxy: three TCP nodes, each
//! in a network namespace of its own, joined by veth pairs to a bridge in
//! a fourth. Taking a node's link down loses its packets silently (no
//! reset, no close, unlike `ProxyMesh`), so TCP itself must retransmit
//! and recover after the heal.
//!
//! Opt-in: `NETNS_TESTS=1 cargo test -p raft-actors-transport-tcp --test
//! netns` as root with iproute2's `ip`; otherwise the test prints why it
//! did not run and passes. It creates and deletes only namespaces named
//! after its own process id (`raftnt<pid>*`), also when it fails.
//!
//! Each node runs on an arbiter thread that entered the node's namespace
//! first, so every socket it opens (listener and dials) lives there.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_actors::core::{Membership, NodeId, Role};
use raft_actors::node::{ApplyFactory, NodeConfig};
use raft_actors::storage::MemoryStorage;
use raft_actors::testing::{Kv, KvCommand};
use raft_actors::{Apply, Consistency, Raft};
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
use tracing::info;

/// Generous: after a heal, TCP's retransmission backoff (not the
/// transport) decides when a silently dropped connection carries again.
const T: Duration = Duration::from_secs(20);
const IDS: [NodeId; 3] = [1, 2, 3];

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if std::env::var("NETNS_TESTS").as_deref() != Ok("1") {
        return Some("set NETNS_TESTS=1 to run it".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("needs iproute2's `ip`".into()),
    }
}

/// Runs `ip args...`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces of one run: a hub with a bridge, and one per node with
/// a veth to it. Deleted on drop, and only these.
struct Namespaces {
    hub: String,
    nodes: BTreeMap<NodeId, String>,
}

impl Namespaces {
    fn create() -> Self {
        let prefix = format!("raftnt{}", std::process::id());
        let ns = Namespaces {
            hub: format!("{prefix}h"),
            nodes: IDS
                .iter()
                .map(|id| (*id, format!("{prefix}n{id}")))
                .collect(),
        };
        // Registered before creation: a failure halfway still cleans up.
        ip(&["netns", "add", &ns.hub]);
        ip(&["-n", &ns.hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &ns.hub, "link", "set", "br0", "up"]);
        for (id, name) in &ns.nodes {
            let (veth, addr) = (format!("h{id}"), format!("{}/24", Self::ip_of(*id)));
            ip(&["netns", "add", name]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
            ip(&[
                "-n", &ns.hub, "link", "add", &veth, "type", "veth", "peer", "name", "e0", "netns",
                name,
            ]);
            ip(&["-n", &ns.hub, "link", "set", &veth, "master", "br0", "up"]);
            ip(&["-n", name, "addr", "add", &addr, "dev", "e0"]);
            ip(&["-n", name, "link", "set", "e0", "up"]);
        }
        ns
    }

    fn ip_of(id: NodeId) -> String {
        format!("10.213.0.{id}")
    }

    /// Takes node `id`'s link up or down: down, its packets are lost both
    /// ways, silently.
    fn link(&self, id: NodeId, up: bool) {
        let veth = format!("h{id}");
        ip(&[
            "-n",
            &self.hub,
            "link",
            "set",
            &veth,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.nodes.values().chain([&self.hub]) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A node on an arbiter thread that entered namespace `ns` first.
struct Node {
    raft: Raft<Kv>,
    transport: TcpTransport,
    arbiter: actix_rt::Arbiter,
}

async fn start_node(id: NodeId, ns: &str, addrs: &BTreeMap<NodeId, SocketAddr>) -> Node {
    let file = File::open(format!("/run/netns/{ns}")).expect("namespace file");
    let arbiter = actix_rt::Arbiter::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (me, peers) = (addrs[&id], addrs.clone());
    arbiter.spawn(async move {
        // SAFETY: `file` is an open namespace file; setns only moves this
        // thread (the arbiter's), before it opens any socket.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let listener = TcpListener::bind(me).expect("bind in the namespace");
        let mut cfg = TcpConfig::new(id, 0xc1, peers);
        cfg.seed = id;
        cfg.backoff_max = Duration::from_millis(100);
        let transport = TcpTransport::new(cfg).expect("transport");
        let apply: ApplyFactory<Kv> = Arc::new(|| Box::new(Kv::default()) as Box<dyn Apply<Kv>>);
        let storage = MemoryStorage::new(Membership::voters(IDS));
        let raft = Raft::start(
            id,
            NodeConfig::default(),
            Box::new(storage),
            Box::new(transport.clone()),
            apply,
        );
        transport
            .serve(listener, raft.addr().clone().recipient())
            .expect("serve");
        let _ = tx.send((raft, transport));
    });
    let (raft, transport) = rx.await.expect("node started");
    Node {
        raft,
        transport,
        arbiter,
    }
}

/// Waits for a leader, not `except`, that the other reachable nodes
/// follow in its term.
async fn leader(nodes: &BTreeMap<NodeId, Node>, except: Option<NodeId>) -> NodeId {
    let deadline = Instant::now() + T;
    let mut poll = tokio::time::interval(Duration::from_millis(5));
    loop {
        let m: Vec<_> = nodes.values().map(|n| n.raft.current()).collect();
        let found = m.iter().find(|x| {
            x.role == Role::Leader
                && Some(x.id) != except
                && m.iter()
                    .filter(|y| y.leader == Some(x.id) && y.term == x.term)
                    .count()
                    >= 2
        });
        if let Some(x) = found {
            return x.id;
        }
        assert!(Instant::now() < deadline, "no leader: {m:?}");
        poll.tick().await;
    }
}

#[actix_rt::test]
async fn a_node_whose_link_goes_down_is_replaced_and_catches_up_after_the_heal() {
    common::init_logging();
    if let Some(why) = skip_reason() {
        println!("netns test skipped: {why}");
        return;
    }
    let ns = Namespaces::create();
    let addrs: BTreeMap<NodeId, SocketAddr> = IDS
        .iter()
        .map(|id| {
            let addr = format!("{}:7000", Namespaces::ip_of(*id));
            (*id, addr.parse().expect("address"))
        })
        .collect();
    let mut nodes = BTreeMap::new();
    for (id, name) in &ns.nodes {
        nodes.insert(*id, start_node(*id, name, &addrs).await);
    }
    let put = |key, value| KvCommand::Put { key, value };

    let old = leader(&nodes, None).await;
    nodes[&old]
        .raft
        .propose(put(1, 1))
        .await
        .expect("first write");
    info!(old, "--- the leader's link goes down: its packets are lost");
    ns.link(old, false);
    let new = leader(&nodes, Some(old)).await;
    nodes[&new]
        .raft
        .propose(put(1, 2))
        .await
        .expect("the majority commits");
    info!("--- cut off, the old leader cannot know 2: a linearizable read fails");
    let short = nodes[&old]
        .raft
        .clone()
        .with_timeout(Duration::from_secs(2));
    let answer = short.read(1, Consistency::Linearizable).await;
    assert!(
        answer.is_err(),
        "the isolated old leader answered {answer:?}"
    );

    info!("--- the link comes back: TCP recovers, the old leader follows and reads 2");
    ns.link(old, true);
    nodes[&old]
        .raft
        .wait_for(T, |m| m.leader == Some(new) && m.role == Role::Follower)
        .await
        .expect("the old leader follows the new one");
    let read = nodes[&old]
        .raft
        .clone()
        .with_timeout(T)
        .read(1, Consistency::Linearizable)
        .await;
    assert_eq!(read, Ok(Some(2)));

    for node in nodes.values() {
        node.raft.shutdown().await;
        node.transport.close();
        node.arbiter.stop();
    }
}
