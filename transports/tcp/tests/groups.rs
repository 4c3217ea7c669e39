//! Many Raft groups over one transport (multi-raft): every batch names its
//! group, one connection per pair of nodes carries them all, and each
//! group's mailbox receives its own batches and no other group's.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use raft_actors::apply::Apply;
use raft_actors::core::{Membership, Role};
use raft_actors::node::{ApplyFactory, NodeConfig};
use raft_actors::storage::MemoryStorage;
use raft_actors::testing::{eventually, heartbeat, inbox, Counter};
use raft_actors::transport::{Peer, Transport};
use raft_actors::Raft;
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(10);
const CLUSTER: u64 = 7;

async fn recv(rx: &mut mpsc::UnboundedReceiver<Peer>) -> Option<Peer> {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .ok()
        .flatten()
}

#[actix_rt::test]
async fn many_groups_share_one_connection_and_each_mailbox_gets_only_its_own() {
    common::init_logging();
    const GROUPS: u64 = 50;
    let (mut ls, peers) = common::listeners(2);
    let l2 = ls.pop().expect("l2");
    let l1 = ls.pop().expect("l1");
    let t1 = TcpTransport::new(TcpConfig::new(1, CLUSTER, peers.clone())).expect("new");
    let t2 = TcpTransport::new(TcpConfig::new(2, CLUSTER, peers)).expect("new");
    // `serve` delivers the config's group (0) to its mailbox, and
    // `serve_group` every other group to its own.
    let (mailbox0, rx0) = inbox();
    t1.serve(l1, mailbox0).expect("serve");
    let mut rxs = vec![rx0];
    for g in 1..GROUPS {
        let (mailbox, rx) = inbox();
        t1.serve_group(g, mailbox);
        rxs.push(rx);
    }
    let (mailbox2, _rx2) = inbox();
    t2.serve(l2, mailbox2).expect("serve");
    // Group g sends the heartbeats g * 1000 and g * 1000 + 1.
    for g in 0..GROUPS {
        let sender = t2.group_sender(g);
        for k in 0..2 {
            sender
                .send(1, vec![heartbeat(2, 1, g * 1000 + k)])
                .expect("send");
        }
    }
    for g in 0..GROUPS {
        let rx = &mut rxs[g as usize];
        for k in 0..2 {
            let got = recv(rx).await.expect("delivered to its group");
            assert_eq!(
                got.messages,
                vec![heartbeat(2, 1, g * 1000 + k)],
                "group {g}"
            );
        }
    }
    for (g, rx) in rxs.iter_mut().enumerate() {
        assert!(rx.try_recv().is_err(), "group {g} got another's batch");
    }
    let m1 = t1.metrics();
    assert_eq!(m1.accepted, 1, "one connection for all {GROUPS} groups");
    assert_eq!(m1.other_group, 0);
    assert_eq!(m1.peers[&2].messages_received, 2 * GROUPS);
    assert_eq!(t2.metrics().peers[&1].reconnects, 0);
    // Fewer socket writes than batches would show as frames per write;
    // here every batch is one frame.
    assert_eq!(t2.metrics().peers[&1].frames_sent, 2 * GROUPS);

    // A group that stops being served gets nothing more; the others do.
    assert!(t1.unserve_group(5));
    t2.group_sender(5)
        .send(1, vec![heartbeat(2, 1, 5)])
        .expect("send");
    t2.group_sender(6)
        .send(1, vec![heartbeat(2, 1, 6)])
        .expect("send");
    let got = recv(&mut rxs[6]).await.expect("group 6 still served");
    assert_eq!(got.messages, vec![heartbeat(2, 1, 6)]);
    eventually("group 5's batch dropped and counted", || {
        t1.metrics().other_group == 1
    })
    .await;
    assert!(rxs[5].try_recv().is_err());
    t1.shutdown().await;
    t2.shutdown().await;
}

/// Three processes' transports (here, three in one test), each hosting a
/// node of every one of 8 groups: each group elects its own leader and
/// commits its own proposals over the shared connections.
#[actix_rt::test]
async fn eight_raft_groups_replicate_over_three_shared_transports() {
    common::init_logging();
    const GROUPS: u64 = 8;
    let (ls, peers) = common::listeners(3);
    let membership = Membership::voters([1, 2, 3]);
    let mut transports = Vec::new();
    let mut groups: BTreeMap<u64, Vec<Raft<Counter>>> = BTreeMap::new();
    for (i, l) in ls.into_iter().enumerate() {
        let id = i as u64 + 1;
        let t = TcpTransport::new(TcpConfig::new(id, CLUSTER, peers.clone())).expect("new");
        for g in 0..GROUPS {
            let apply: ApplyFactory<Counter> =
                Arc::new(|| Box::new(Counter::default()) as Box<dyn Apply<Counter>>);
            let raft = Raft::start(
                id,
                NodeConfig::default(),
                Box::new(MemoryStorage::new(membership.clone())),
                Box::new(t.group_sender(g)),
                apply,
            );
            if g > 0 {
                t.serve_group(g, raft.addr().clone().recipient());
            }
            groups
                .entry(g)
                .or_default()
                .push(raft.with_timeout(DEADLINE));
        }
        t.serve(l, groups[&0][i].addr().clone().recipient())
            .expect("serve");
        transports.push(t);
    }
    for (g, nodes) in &groups {
        let m = nodes[0]
            .wait_for(DEADLINE, |m| m.leader.is_some())
            .await
            .unwrap_or_else(|e| panic!("group {g} elects a leader: {e}"));
        let leader = m.leader.expect("a leader");
        let leader = &nodes[leader as usize - 1];
        leader
            .wait_for(DEADLINE, |m| m.role == Role::Leader)
            .await
            .expect("it leads");
        // Group g's counter ends at g + 1: proposals never cross groups.
        let mut last = 0;
        for _ in 0..=*g {
            last = leader.propose(1).await.expect("committed").output;
        }
        assert_eq!(last, g + 1, "group {g}");
    }
    for t in &transports {
        let m = t.metrics();
        assert_eq!(m.other_group, 0);
        assert!(m.accepted <= 2, "one connection per dialling peer: {m:?}");
    }
    for nodes in groups.values() {
        for r in nodes {
            r.shutdown().await;
        }
    }
    for t in &transports {
        t.shutdown().await;
    }
}
