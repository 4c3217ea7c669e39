//! Idle groups quiesce (`Config::quiesce_after_ticks`): once a group has
//! nothing left to do, every one of its nodes stops its tick timer, and a
//! request to any node wakes the group, with no election in between.

mod common;

use common::{init_logging, T};
use raft_actors::node::NodeConfig;
use raft_actors::testing::{Counter, TestCluster};
use raft_actors::Consistency;
use tracing::info;

#[actix_rt::test]
async fn an_idle_group_stops_its_timers_and_any_request_wakes_it() {
    init_logging();
    let mut cfg = NodeConfig::default();
    cfg.core.quiesce_after_ticks = Some(20);
    let c = TestCluster::memory(3)
        .seed(15)
        .config(cfg)
        .apply(Counter::default)
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("a leader");
    c.raft(leader).propose(1).await.expect("a first write");

    info!("--- idle: every node stops its timer");
    let quiet = c
        .wait_until("every node quiesced", T, |m| m.values().all(|m| m.quiesced))
        .await
        .expect("the group quiesced");
    let term = quiet[&leader].term;
    assert!(
        quiet
            .values()
            .all(|m| m.leader == Some(leader) && m.term == term),
        "one leader, known to all: {quiet:?}"
    );

    info!("--- a write through a follower wakes the group");
    let follower = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let out = c.raft(follower).propose(5).await.expect("the write");
    assert_eq!(out.output, 6);
    let quiet = c
        .wait_until("quiesced again", T, |m| {
            m.values().all(|m| m.quiesced && m.applied >= out.index)
        })
        .await
        .expect("idle again once every node applied it");
    assert!(
        quiet.values().all(|m| m.term == term),
        "no election while the group slept: {quiet:?}"
    );

    info!("--- a linearizable read at the other follower wakes it too");
    let other = c
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .expect("another follower");
    let read = c
        .raft(other)
        .read((), Consistency::Linearizable)
        .await
        .expect("the read");
    assert_eq!(read, 6);
    c.shutdown().await;
}
