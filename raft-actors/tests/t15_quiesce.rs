//! Idle groups quiesce (`Config::quiesce_after_ticks`): once a group has
//! nothing left to do, every one of its nodes stops its tick timer, and a
//! request to any node wakes the group, with no election in between.

mod common;

use common::{init_logging, T};
use raft_actors::core::NodeId;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{Counter, TestCluster};
use raft_actors::Consistency;
use tracing::info;

/// 3 counters quiescing after 20 idle ticks, a leader elected and a
/// first write (1) applied there.
async fn quiescing_cluster(seed: u64) -> (TestCluster<Counter>, NodeId) {
    init_logging();
    let mut cfg = NodeConfig::default();
    cfg.core.quiesce_after_ticks = Some(20);
    let c = TestCluster::memory(3)
        .seed(seed)
        .config(cfg)
        .apply(Counter::default)
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("a leader");
    c.raft(leader).propose(1).await.expect("a first write");
    (c, leader)
}

#[actix_rt::test]
async fn an_idle_group_stops_its_timers_and_any_request_wakes_it() {
    let (c, leader) = quiescing_cluster(15).await;

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

/// A quiesced leader that crashes and restarts gets a core of its own
/// whose timer runs (the timer was stopped when it crashed): it times
/// out, the group elects, and a write through it is served.
#[actix_rt::test]
async fn a_quiesced_leader_crashed_and_restarted_ticks_again_and_the_group_elects() {
    let (c, leader) = quiescing_cluster(16).await;
    c.wait_until("every node quiesced", T, |m| m.values().all(|m| m.quiesced))
        .await
        .expect("the group quiesced");

    info!("--- the quiesced leader crashes and restarts");
    c.crash(leader).await;
    c.restart(leader).await.expect("restarted");
    // The restarted node knows no leader until it campaigns (or hears
    // from one): only its running timer can get it there.
    c.wait_until("one leader known to all", T, |m| {
        let known = m[&leader].leader;
        known.is_some() && m.values().all(|m| m.leader == known)
    })
    .await
    .expect("the group elected again");
    let out = c
        .raft(leader)
        .propose(5)
        .await
        .expect("a write through the restarted node");
    assert_eq!(out.output, 6);
    c.shutdown().await;
}
