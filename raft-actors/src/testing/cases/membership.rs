//! Membership changes through the actor runtime, over any transport:
//! remove a follower, add it back as a learner and promote it once caught
//! up, remove the leader itself (§6, thesis §4); writes go on throughout.

use std::time::Duration;

use tokio::time::Instant;

use tracing::info;

use super::{follower_hearing, T};
use crate::core::{ConfChange, Membership, NodeId};
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::testing::{KeyValue, KeyValueHandle, TestCluster, TypedBuilder};

/// Asks `leader` for `change`, again while it answers `Busy`, which means
/// nothing was proposed: retry shortly (the leader's no-op of its term is
/// not committed yet, or a learner's progress is still on its way back;
/// over sockets both take a few round trips).
async fn change<C: KeyValue>(
    c: &TestCluster<C>,
    leader: NodeId,
    change: ConfChange,
) -> Result<Membership, ClientError> {
    let deadline = Instant::now() + T;
    let mut retry = tokio::time::interval(Duration::from_millis(10));
    loop {
        match c.raft(leader).change_membership(change.clone()).await {
            Err(ClientError::Busy) if Instant::now() < deadline => retry.tick().await,
            answer => return answer,
        };
    }
}

/// Only the leader takes changes; a removed follower comes back as a
/// learner and is promoted once caught up; a removed leader steps down and
/// another takes over, with nothing acknowledged lost.
pub async fn remove_readd_promote_and_remove_the_leader<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let f = follower_hearing(&c, leader).await;

    info!("--- only the leader takes changes; a follower names it");
    let Err(err) = c.raft(f).change_membership(ConfChange::Remove(f)).await else {
        panic!("a follower must refuse a membership change");
    };
    assert_eq!(
        err,
        ClientError::NotLeader {
            leader: Some(leader)
        }
    );

    info!("--- remove follower {f}");
    let m = change(&c, leader, ConfChange::Remove(f))
        .await
        .expect("removed");
    assert!(!m.contains(f), "{m:?}");
    let w = c.raft(leader).put_value(1, 10).await.expect("write");

    info!("--- a second change cannot promote a node that is not a learner");
    let Err(err) = change(&c, leader, ConfChange::AddVoter(f)).await else {
        panic!("promoting a non-member must be refused");
    };
    assert!(matches!(err, ClientError::Invalid(_)), "{err:?}");

    info!("--- add {f} back as a learner; it catches up, then is promoted");
    let m = change(&c, leader, ConfChange::AddLearner(f))
        .await
        .expect("learner");
    assert!(m.learners.contains(&f));
    c.wait_until("the learner caught up", T, |m| {
        m.get(&f).is_some_and(|m| m.applied >= w.index)
    })
    .await
    .expect("caught up");
    let m = change(&c, leader, ConfChange::AddVoter(f))
        .await
        .expect("promoted");
    assert!(m.voters.contains(&f) && m.voters.len() == 3, "{m:?}");
    assert_eq!(
        c.raft(f)
            .get_value(1, Consistency::Stale)
            .await
            .expect("read"),
        Some(10)
    );

    info!("--- remove the leader {leader}: it steps down once that commits, another takes over");
    let m = change(&c, leader, ConfChange::Remove(leader))
        .await
        .expect("leader removed");
    assert!(!m.contains(leader) && m.voters.len() == 2, "{m:?}");
    let next = c
        .wait_for_leader_except(&[leader], T)
        .await
        .expect("a new leader");
    let w2 = c.raft(next).put_value(2, 20).await.expect("write after");
    assert!(w2.index > w.index);
    let v = c
        .raft(next)
        .get_value(1, Consistency::Linearizable)
        .await
        .expect("read");
    assert_eq!(v, Some(10), "nothing acknowledged was lost");
    c.shutdown().await;
}
