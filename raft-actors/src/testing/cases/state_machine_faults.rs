//! Faults of the user's state machine and restarts from a snapshot, over
//! any transport: a panic in `Apply` restarts the node with a state
//! machine rebuilt from snapshot and log (nothing acknowledged lost), and
//! a node restarted from a snapshot serves reads at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::info;

use super::{follower_of, T};
use crate::apply::Apply;
use crate::core::LogIndex;
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::testing::{KeyValue, KeyValueHandle, TypedBuilder};
use crate::type_config::TypeConfig;

/// A counter whose next `apply` panics once its cluster's switch is armed
/// (once, on whichever node applies first): a state machine bug that a
/// replay does not hit again. The switch is the cluster's own, shared by
/// its nodes only, so clusters in one process never see each other's.
#[derive(Debug, Default)]
struct Fragile(i64, Arc<AtomicBool>);

impl TypeConfig for Fragile {
    type Command = i64;
    type Output = i64;
    type Query = ();
    type QueryAnswer = i64;
    type Snapshot = i64;
}

impl Apply<Fragile> for Fragile {
    fn apply(&mut self, _: LogIndex, add: i64) -> i64 {
        if self.1.swap(false, Ordering::SeqCst) {
            panic!("injected state machine bug");
        }
        self.0 += add;
        self.0
    }
    fn query(&self, _: ()) -> i64 {
        self.0
    }
    fn snapshot(&self) -> i64 {
        self.0
    }
    fn restore(&mut self, v: i64) {
        self.0 = v
    }
}

/// The next apply panics on one node: that node restarts, and every node
/// ends with the committed write applied exactly once. The cluster runs a
/// counter of its own instead of `b`'s state machine.
pub async fn a_panic_in_apply_restarts_the_node_with_a_rebuilt_state_machine<C: TypeConfig>(
    b: TypedBuilder<C>,
) {
    let armed = Arc::new(AtomicBool::new(false));
    let switch = Arc::clone(&armed);
    let c = b
        .apply(move || Fragile(0, Arc::clone(&switch)))
        .start()
        .await
        .expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    assert_eq!(c.raft(leader).propose(1).await.expect("first").output, 1);
    // Settle: every node applied the first write, so the panic strikes the
    // next apply, wherever it runs first.
    c.wait_until("all applied", T, |m| m.values().all(|m| m.applied >= 2))
        .await
        .expect("applied");
    let before: Vec<u64> = c
        .ids()
        .iter()
        .map(|id| c.raft(*id).current().incarnation)
        .collect();

    info!("--- the next apply panics on one node");
    armed.store(true, Ordering::SeqCst);
    let second = c.raft(leader).propose(2).await;
    info!("second write answered {second:?}");

    info!("--- the node that panicked restarts; every node ends with 1 + 2 applied");
    c.wait_until("a node restarted", T, |m| {
        m.values()
            .zip(&before)
            .any(|(m, b)| m.incarnation > *b && m.down.is_none())
    })
    .await
    .expect("a restart");
    assert!(!armed.load(Ordering::SeqCst), "the panic fired");
    for id in c.ids() {
        let r = c.raft(id).clone();
        r.wait_for(T, |m| m.down.is_none() && m.applied >= 3)
            .await
            .expect("caught up");
        let v = r.read((), Consistency::Stale).await.expect("local read");
        assert_eq!(
            v, 3,
            "node {id}: the committed write is applied exactly once"
        );
    }
    let now = c.wait_for_leader(T).await.expect("leader");
    let v = c
        .raft(now)
        .read((), Consistency::Linearizable)
        .await
        .expect("read");
    assert_eq!(v, 3);
    if let Err(e) = second {
        // The panicking node answered; the write committed regardless.
        assert!(
            matches!(e, ClientError::Fatal(_) | ClientError::Interrupted),
            "{e:?}"
        );
    }
    c.shutdown().await;
}

/// A follower restarted from a snapshot that covers everything committed
/// serves a linearizable read without any new write.
pub async fn a_node_restarted_from_a_snapshot_serves_linearizable_reads_at_once<C: KeyValue>(
    b: TypedBuilder<C>,
) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let f = follower_of(&c, leader);
    let w = c.raft(leader).put_value(9, 90).await.expect("write");
    c.raft(f)
        .wait_for(T, |m| m.applied >= w.index)
        .await
        .expect("follower applied");
    let snap = c.raft(f).snapshot().await.expect("snapshot");
    assert!(snap >= w.index);

    info!("--- restart the follower: its snapshot covers everything committed");
    c.crash(f).await;
    c.restart(f).await.expect("restart");
    c.raft(f)
        .wait_for(T, |m| m.down.is_none() && m.leader.is_some())
        .await
        .expect("rejoined");
    let v = c
        .raft(f)
        .get_value(9, Consistency::Linearizable)
        .await
        .expect("read without any new write");
    assert_eq!(v, Some(90));
    c.shutdown().await;
}
