//! Cluster test bodies shared by every transport: each takes a cluster
//! builder, so the same body runs over the memory network
//! (`raft-actors/tests/t10_election.rs`, `t20_replication.rs`) and over
//! sockets (`transports/tcp/tests/cluster.rs`) with
//! [`TypedBuilder::network`].
//!
//! They assert only what a user can observe, and never weaken a check to
//! suit a slower transport: only the deadline, [`T`], is generous.
//!
//! ```
//! # #[actix_rt::main] async fn main() {
//! use raft_actors::testing::{cases, Kv, TestCluster};
//! cases::elect_one_leader(TestCluster::memory(3).seed(1).apply(Kv::default)).await;
//! # }
//! ```

use std::time::Duration;

use tracing::info;

use crate::core::Role;
use crate::node::messages::client::Consistency;
use crate::testing::{Kv, KvCommand, TypedBuilder};

/// The deadline of every wait: generous, since CI machines are slow and
/// shared; a passing case never waits it out.
pub const T: Duration = Duration::from_secs(10);

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

/// A leader emerges, everyone follows it, exactly one node leads, and it
/// tracks every follower.
pub async fn elect_one_leader(b: TypedBuilder<Kv>) {
    let c = b.start().await.expect("cluster starts");
    info!("--- a leader emerges and everyone follows it");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let m = c
        .wait_until("all follow", T, |m| {
            m.values().all(|x| x.leader == Some(leader))
        })
        .await
        .expect("all follow");
    let leaders = m.values().filter(|x| x.role == Role::Leader).count();
    assert_eq!(leaders, 1, "exactly one leader: {m:?}");
    let status = c.raft(leader).status().await.expect("status");
    assert!(status.role.is_leader());
    assert_eq!(
        status.peers.len(),
        c.ids().len() - 1,
        "the leader tracks every follower"
    );
    c.shutdown().await;
}

/// A crashed leader is replaced in a higher term (§5.2); restarted, it
/// follows the new one.
pub async fn leader_crash_elects_a_new_leader(b: TypedBuilder<Kv>) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    let old_term = c.raft(old).current().term;
    info!("--- crash the leader");
    c.crash(old).await;
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("new leader");
    assert_ne!(new, old);
    assert!(c.raft(new).current().term > old_term, "a new term");
    info!("--- the old leader restarts and follows");
    c.restart(old).await.expect("restart");
    c.wait_until("old follows new", T, |m| {
        m[&old].leader == Some(new) && m[&old].role == Role::Follower
    })
    .await
    .expect("old leader rejoins as follower");
    c.shutdown().await;
}

/// Writes on the leader return the state machine's outputs, in growing
/// indexes, and every node applies them.
pub async fn leader_proposals_apply_everywhere(b: TypedBuilder<Kv>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    info!("--- ten writes to one key, in sequence");
    let mut last = 0;
    for v in 1..=10 {
        let out = c.raft(leader).propose(put(1, v)).await.expect("propose");
        let expected = if v == 1 { None } else { Some(v - 1) };
        assert_eq!(out.output, expected, "the output is the previous value");
        assert!(out.index > last, "indexes grow");
        last = out.index;
    }
    info!("--- every node applies them");
    c.wait_all_applied(last, T).await.expect("all applied");
    for id in c.ids() {
        let v = c.raft(id).read(1, Consistency::Stale).await.expect("read");
        assert_eq!(v, Some(10), "node {id}");
    }
    c.shutdown().await;
}

/// A proposal on a follower is forwarded to the leader and resolves once
/// the follower itself applied it.
pub async fn follower_proposal_is_forwarded(b: TypedBuilder<Kv>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let follower = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    info!("--- propose on follower {follower}");
    let out = c.raft(follower).propose(put(7, 70)).await.expect("propose");
    info!("--- it resolved after the follower applied it: a stale read there sees it");
    let v = c
        .raft(follower)
        .read(7, Consistency::Stale)
        .await
        .expect("read");
    assert_eq!(v, Some(70));
    assert!(c.raft(follower).current().applied >= out.index);
    c.shutdown().await;
}
