//! Membership changes through the actor runtime: remove a follower, add it
//! back as a learner and promote it once caught up, remove the leader
//! itself; writes go on throughout.

mod common;

use common::{kv_cluster, T};
use raft_actors::core::ConfChange;
use raft_actors::testing::KvCommand;
use raft_actors::{ClientError, Consistency};
use tracing::info;

#[actix_rt::test]
async fn remove_readd_promote_and_remove_the_leader() {
    let c = kv_cluster(3, 40).await;
    let leader = c.wait_for_leader(T).await.expect("leader");
    let f = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");

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
    let m = c
        .raft(leader)
        .change_membership(ConfChange::Remove(f))
        .await
        .expect("removed");
    assert!(!m.contains(f), "{m:?}");
    let w = c
        .raft(leader)
        .propose(KvCommand::Put { key: 1, value: 10 })
        .await
        .expect("write");

    info!("--- a second change cannot promote a node that is not a learner");
    let Err(err) = c
        .raft(leader)
        .change_membership(ConfChange::AddVoter(f))
        .await
    else {
        panic!("promoting a non-member must be refused");
    };
    assert!(matches!(err, ClientError::Invalid(_)), "{err:?}");

    info!("--- add {f} back as a learner; it catches up, then is promoted");
    let m = c
        .raft(leader)
        .change_membership(ConfChange::AddLearner(f))
        .await
        .expect("learner");
    assert!(m.learners.contains(&f));
    c.wait_until("the learner caught up", T, |m| {
        m.get(&f).is_some_and(|m| m.applied >= w.index)
    })
    .await
    .expect("caught up");
    let m = c
        .raft(leader)
        .change_membership(ConfChange::AddVoter(f))
        .await
        .expect("promoted");
    assert!(m.voters.contains(&f) && m.voters.len() == 3, "{m:?}");
    assert_eq!(
        c.raft(f).read(1, Consistency::Stale).await.expect("read"),
        Some(10)
    );

    info!("--- remove the leader {leader}: it steps down once that commits, another takes over");
    let m = c
        .raft(leader)
        .change_membership(ConfChange::Remove(leader))
        .await
        .expect("leader removed");
    assert!(!m.contains(leader) && m.voters.len() == 2, "{m:?}");
    let next = c
        .wait_for_leader_except(&[leader], T)
        .await
        .expect("a new leader");
    let w2 = c
        .raft(next)
        .propose(KvCommand::Put { key: 2, value: 20 })
        .await
        .expect("write after");
    assert!(w2.index > w.index);
    let v = c
        .raft(next)
        .read(1, Consistency::Linearizable)
        .await
        .expect("read");
    assert_eq!(v, Some(10), "nothing acknowledged was lost");
    c.shutdown().await;
}
