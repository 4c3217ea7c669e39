//! Multi-raft over real adapters: three processes' hosts (here in one
//! test), each a `RaftHost` over one TCP transport and one redb file
//! (`RedbGroups`), run 8 Raft groups. Every group elects its own leader
//! and commits its own proposals over the shared connections and the
//! shared file; a panic in one group's state machine stops that group,
//! while the others go on committing.
#![cfg(all(feature = "tcp", feature = "redb"))]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use raft_actors::apply::Apply;
use raft_actors::core::{GroupId, LogIndex, Membership, Role};
use raft_actors::host::RaftHost;
use raft_actors::node::{ApplyFactory, NodeConfig};
use raft_actors::testing::Counter;
use raft_actors::Raft;
use raft_actors_storage_redb::RedbGroups;
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};

const GROUPS: u64 = 8;
/// The group whose state machine panics on [`POISON`].
const FRAGILE: GroupId = 3;
const POISON: u64 = 13;
const DEADLINE: Duration = Duration::from_secs(20);

/// A counter that panics when told to add [`POISON`]: a bug in one
/// group's state machine.
#[derive(Default)]
struct Fragile(Counter);

impl Apply<Counter> for Fragile {
    fn apply(&mut self, index: LogIndex, add: u64) -> u64 {
        assert_ne!(add, POISON, "the state machine's bug");
        self.0.apply(index, add)
    }
    fn query(&self, q: ()) -> u64 {
        self.0.query(q)
    }
    fn snapshot(&self) -> u64 {
        self.0.snapshot()
    }
    fn restore(&mut self, s: u64) {
        self.0.restore(s)
    }
}

fn apply_of(group: GroupId) -> ApplyFactory<Counter> {
    if group == FRAGILE {
        Arc::new(|| Box::new(Fragile::default()) as Box<dyn Apply<Counter>>)
    } else {
        Arc::new(|| Box::new(Counter::default()) as Box<dyn Apply<Counter>>)
    }
}

/// The leader of `group`, found through host 1's node of it.
async fn leader_of(hosts: &[RaftHost<Counter>], group: GroupId) -> Raft<Counter> {
    let node = hosts[0].group(group).expect("started");
    let m = node
        .wait_for(DEADLINE, |m| m.leader.is_some())
        .await
        .unwrap_or_else(|e| panic!("group {group} elects a leader: {e}"));
    let leader = m.leader.expect("a leader");
    let raft = hosts[leader as usize - 1]
        .group(group)
        .expect("started")
        .clone()
        .with_timeout(DEADLINE);
    raft.wait_for(DEADLINE, |m| m.role == Role::Leader)
        .await
        .expect("it leads");
    raft
}

#[actix_rt::test]
async fn eight_groups_share_three_transports_and_files_and_one_groups_panic_stays_its_own() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let peers: BTreeMap<u64, SocketAddr> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().expect("addr")))
        .collect();
    let mut hosts = Vec::new();
    let mut files = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let transport = TcpTransport::new(TcpConfig::new(id, 7, peers.clone())).expect("tcp");
        let mut host = RaftHost::<Counter>::new(id, Arc::new(transport), 2);
        let file = RedbGroups::open(dirs[i].path()).expect("redb");
        for g in 0..GROUPS {
            let mut storage = file.group(g).expect("group");
            storage
                .bootstrap(Membership::voters([1, 2, 3]))
                .expect("bootstrap");
            let cfg = NodeConfig {
                max_restarts: 1,
                ..NodeConfig::default()
            };
            host.start_group(g, cfg, Box::new(storage), apply_of(g))
                .expect("start");
        }
        host.serve(listener).expect("serve");
        hosts.push(host);
        files.push(file);
    }
    // Group g's counter ends at g + 1: proposals never cross groups.
    for g in 0..GROUPS {
        let leader = leader_of(&hosts, g).await;
        let mut last = 0;
        for _ in 0..=g {
            last = leader.propose(1).await.expect("committed").output;
        }
        assert_eq!(last, g + 1, "group {g}");
    }
    for file in &files {
        let stats = file.stats();
        assert!(stats.entries > 0 && stats.fsyncs > 0, "{stats:?}");
    }

    // The fragile group's state machine panics on every replica.
    let fragile = leader_of(&hosts, FRAGILE).await;
    assert!(
        fragile.propose(POISON).await.is_err(),
        "a panicking apply answers no output"
    );
    for host in &hosts {
        host.group(FRAGILE)
            .expect("started")
            .wait_for(DEADLINE, |m| m.failed.is_some())
            .await
            .expect("the fragile group stops on every host");
    }
    // Every other group still commits, on the same threads, connections
    // and files.
    for g in (0..GROUPS).filter(|g| *g != FRAGILE) {
        let leader = leader_of(&hosts, g).await;
        let out = leader.propose(100).await.expect("still committing");
        assert_eq!(out.output, g + 1 + 100, "group {g}");
    }
    for host in hosts {
        host.shutdown().await;
    }
}
