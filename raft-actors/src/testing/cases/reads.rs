//! Reads through the actor runtime, over any transport: linearizable and
//! lease reads see every acknowledged write (§8), and a partitioned old
//! leader never serves stale data.

use std::time::Duration;

use tracing::info;

use super::T;
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::testing::{KeyValue, KeyValueHandle, TypedBuilder};

/// After one acknowledged write, every node answers linearizable and
/// lease reads with it, right away.
pub async fn linearizable_and_lease_reads_see_acknowledged_writes_on_every_node<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    // A majority following is enough for `wait_for_leader`; every node
    // must know the leader before "right away" means anything.
    c.wait_until("all follow", T, |m| {
        m.values().all(|x| x.leader == Some(leader))
    })
    .await
    .expect("all follow");
    c.raft(leader).put_value(1, 5).await.expect("write");
    info!("--- every node answers with the write, right away");
    for id in c.ids() {
        for consistency in [Consistency::Linearizable, Consistency::Lease] {
            let v = c.raft(id).get_value(1, consistency).await.expect("read");
            assert_eq!(v, Some(5), "node {id}, {consistency:?}");
        }
    }
    c.shutdown().await;
}

/// An isolated old leader cannot know the majority's newer write: its
/// linearizable and lease reads fail, its stale read may be stale; healed,
/// it serves the new value.
pub async fn partitioned_old_leader_never_answers_a_linearizable_read_with_stale_data<
    C: KeyValue,
>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    c.raft(old).put_value(1, 1).await.expect("first write");
    info!("--- isolate the leader; the majority elects another and overwrites");
    c.faults().isolate(old);
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("new leader");
    c.raft(new).put_value(1, 2).await.expect("second write");
    info!("--- cut off, the old leader cannot know 2: every safe read must fail");
    let short = c.raft(old).clone().with_timeout(Duration::from_secs(2));
    for consistency in [Consistency::Linearizable, Consistency::Lease] {
        let answer = short.get_value(1, consistency).await;
        assert!(
            answer.is_err(),
            "{consistency:?} read on the isolated old leader answered {answer:?}"
        );
    }
    info!("--- a stale read is allowed to be stale");
    let stale = short
        .get_value(1, Consistency::Stale)
        .await
        .expect("stale read");
    assert_eq!(stale, Some(1));
    info!("--- heal: the old leader catches up and serves the new value");
    c.faults().heal();
    c.wait_until("old follows", T, |m| m[&old].leader == Some(new))
        .await
        .expect("old follows");
    let v = c
        .raft(old)
        .get_value(1, Consistency::Linearizable)
        .await
        .expect("read");
    assert_eq!(v, Some(2));
    c.shutdown().await;
}

/// A leader frozen for longer than an election timeout (no ticks, no
/// messages handled) while the others elect a new leader and acknowledge a
/// write must not answer a lease read from the lease it held before the
/// freeze: its ticks did not move, but real time did (Jepsen's finding in
/// Consul, hashicorp/raft#108). The read reaches it before any tick does.
pub async fn a_leader_frozen_past_its_lease_serves_no_stale_lease_read<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let old = c.wait_for_leader(T).await.expect("leader");
    c.raft(old).put_value(1, 1).await.expect("first write");
    let before = c.raft(old).get_value(1, Consistency::Lease).await;
    assert_eq!(
        before,
        Ok(Some(1)),
        "the lease serves reads before the freeze"
    );
    info!("--- freeze the leader: no ticks, mailbox held");
    c.pause_ticks(old);
    let release = c.stall(old);
    // What the others send it meanwhile is lost, as if it queued behind
    // the read: the read is the first thing the resumed leader handles.
    c.faults().isolate(old);
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("new leader");
    c.raft(new).put_value(1, 2).await.expect("second write");
    info!("--- a lease read is queued at the frozen leader, then it resumes");
    let short = c.raft(old).clone().with_timeout(Duration::from_secs(5));
    let mut read = Box::pin(short.get_value(1, Consistency::Lease));
    // One poll hands the read to the node's mailbox, ahead of everything
    // the resumed node will do.
    assert!(futures::poll!(&mut read).is_pending());
    let _ = release.send(());
    c.faults().heal();
    c.resume_ticks(old);
    let answer = read.await;
    assert!(
        matches!(answer, Err(_) | Ok(Some(2))),
        "the resumed old leader answered {answer:?} after 2 was acknowledged"
    );
    info!("--- it follows the new leader and serves the new value");
    c.wait_until("old follows", T, |m| m[&old].leader == Some(new))
        .await
        .expect("old follows");
    let after = c.raft(old).get_value(1, Consistency::Lease).await;
    assert_eq!(after, Ok(Some(2)));
    c.shutdown().await;
}

/// A linearizable read on a leader cut off from everyone cannot be
/// confirmed: check-quorum steps the leader down and fails the read with
/// [`ClientError::NoQuorum`].
pub async fn a_read_on_a_leader_that_loses_its_quorum_fails_with_no_quorum<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    c.raft(leader).put_value(1, 1).await.expect("write");
    info!("--- cut the leader off, then read there: the read cannot be confirmed");
    c.faults().isolate(leader);
    let answer = c.raft(leader).get_value(1, Consistency::Linearizable).await;
    // Check-quorum steps the leader down and fails the read explicitly
    // (503 in the example services: nothing was read).
    assert_eq!(answer, Err(ClientError::NoQuorum));
    c.shutdown().await;
}
