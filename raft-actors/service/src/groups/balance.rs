//! Spreading the groups' leaders over the nodes: each group `g ≥ 1` has a
//! preferred leader, the voter at position `g mod v` of its voters sorted
//! by id, and the leader of a group hands leadership to it once it is
//! caught up (its match index is the leader's last index). Every node
//! computes the same preference from the same membership, so leaders never
//! chase each other. Group 0's leader is left where the election or the
//! operator (`POST /cluster/leader`) put it.
//!
//! Woken by the group's metrics watch, never polled; a hand-over that
//! fails waits a bounded time (or a change of leader) before the next. It
//! decides nothing about Raft's safety: a transfer is an ordinary
//! `TimeoutNow`, and a preferred node that is down is simply not caught up.

use actix_web::web;
use raft_actors::core::{GroupId, Membership, NodeId, Role};
use raft_actors::node::Metrics;

use crate::node::Node;
use crate::Service;

/// The leader group `g` prefers among `m`'s voters.
///
/// ```
/// use raft_actors::core::Membership;
/// use raft_actors_service::groups::preferred_leader;
/// let m = Membership::voters([1, 2, 3]);
/// assert_eq!((0..5).map(|g| preferred_leader(g, &m)).collect::<Vec<_>>(),
///            [Some(1), Some(2), Some(3), Some(1), Some(2)]);
/// ```
pub fn preferred_leader(g: GroupId, m: &Membership) -> Option<NodeId> {
    let voters: Vec<NodeId> = m.voters.iter().copied().collect();
    if voters.is_empty() || !m.outgoing.is_empty() {
        // No preference while a configuration change is under way.
        return None;
    }
    voters.get((g % voters.len() as u64) as usize).copied()
}

/// The voter this leader should hand group `g` to now, if any.
fn hand_to(g: GroupId, m: &Metrics) -> Option<NodeId> {
    if m.role != Role::Leader || m.down.is_some() {
        return None;
    }
    let p = preferred_leader(g, &m.membership)?;
    (p != m.id && m.matched.get(&p) == Some(&m.last_index)).then_some(p)
}

/// Keeps handing group `g`'s leadership to its preferred leader whenever
/// this node leads it; ends when the group's node stops.
pub(crate) async fn balance<S: Service>(node: web::Data<Node<S>>, g: GroupId) {
    let Some(raft) = node.groups.raft(g).cloned() else {
        return;
    };
    let mut watch = raft.metrics();
    // A failed hand-over waits this long (or for a new leader) first:
    // about two election timeouts.
    let pause = node.settings.tick.saturating_mul(40);
    loop {
        let to = match watch.wait_for(|m| hand_to(g, m).is_some()).await {
            Ok(m) => hand_to(g, &m),
            Err(_) => return,
        };
        let Some(to) = to else { continue };
        if raft.transfer_leader(to).await.is_err() {
            let term = raft.current().term;
            let moved = watch.wait_for(|m| m.term != term);
            let _ = tokio::time::timeout(pause, moved).await;
        }
    }
}

/// Starts a balancer for every group beyond group 0 (none with one
/// group). Group 0's leader is the cluster's, which an operator moves with
/// `POST /cluster/leader`: a balancer would move it back.
pub(crate) fn spawn_all<S: Service>(
    node: &web::Data<Node<S>>,
) -> Vec<actix_rt::task::JoinHandle<()>> {
    if node.group_count() < 2 {
        return Vec::new();
    }
    (1..node.group_count())
        .map(|g| actix_rt::spawn(balance(node.clone(), g)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_hands_over_only_to_a_caught_up_preferred_voter() {
        let mut m = Metrics {
            role: Role::Leader,
            last_index: 10,
            membership: Membership::voters([1, 2, 3]),
            ..Metrics::starting(1)
        };
        // Group 1 prefers node 2, which lags.
        m.matched = [(2, 9), (3, 10)].into();
        assert_eq!(hand_to(1, &m), None);
        m.matched.insert(2, 10);
        assert_eq!(hand_to(1, &m), Some(2));
        // Group 0 prefers node 1 itself; a follower hands nothing.
        assert_eq!(hand_to(0, &m), None);
        m.role = Role::Follower;
        assert_eq!(hand_to(1, &m), None);
    }
}
