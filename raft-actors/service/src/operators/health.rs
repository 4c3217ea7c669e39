//! `GET /health`: whether this node can serve, as a load balancer or an
//! orchestrator's probe asks it. Healthy is: up, a member, a leader of its
//! current term known, and its state machine at most
//! [`MAX_LAG`] entries behind the leader's commit index as last heard.
//!
//! It decides from the node's metrics watch alone: it must never wait on
//! the node's mailbox, so a node too busy to answer its mailbox still
//! answers its probe, and never report healthy what it cannot vouch for.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use raft_actors::core::{LogIndex, NodeId};
use raft_actors::node::Metrics;
use serde_json::json;

use crate::node::Node;
use crate::Service;

/// How far the applied index may trail the leader's commit index.
pub const MAX_LAG: LogIndex = 1_000;

/// Why a node is not healthy: the reference's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unhealthy {
    /// The node is down (failed, shut down, or refused to start).
    Down,
    /// Not a voter or learner of its configuration.
    NotAMember,
    /// No leader of its current term is known.
    NoLeader,
    /// Its state machine trails the leader's commit by more than [`MAX_LAG`].
    Lagging,
}

impl Unhealthy {
    /// The reference's word for it.
    pub fn reason(self) -> &'static str {
        match self {
            Unhealthy::Down => "down",
            Unhealthy::NotAMember => "not a member",
            Unhealthy::NoLeader => "no leader",
            Unhealthy::Lagging => "lagging",
        }
    }
}

/// Whether a node whose metrics are `m` is healthy; the leader if so.
///
/// ```
/// use raft_actors::core::Membership;
/// use raft_actors::node::Metrics;
/// use raft_actors_service::operators::health::{health, Unhealthy};
/// let m = Metrics { leader: Some(2), membership: Membership::voters([1, 2, 3]), ..Metrics::starting(1) };
/// assert_eq!(health(&m), Ok(2));
/// let behind = Metrics { leader_commit: 5_000, applied: 3_999, ..m.clone() };
/// assert_eq!(health(&behind), Err(Unhealthy::Lagging));
/// assert_eq!(health(&Metrics { leader: None, ..m }), Err(Unhealthy::NoLeader));
/// ```
pub fn health(m: &Metrics) -> Result<NodeId, Unhealthy> {
    if m.down.is_some() || m.lost_data.is_some() {
        return Err(Unhealthy::Down);
    }
    if !m.membership.contains(m.id) {
        return Err(Unhealthy::NotAMember);
    }
    let leader = m.leader.ok_or(Unhealthy::NoLeader)?;
    let behind = m.leader_commit.max(m.commit).saturating_sub(m.applied);
    if behind > MAX_LAG {
        return Err(Unhealthy::Lagging);
    }
    Ok(leader)
}

/// `GET /health`.
pub(crate) async fn handler<S: Service>(node: web::Data<Node<S>>) -> HttpResponse {
    let m = node.raft.current();
    match health(&m) {
        Ok(leader) => HttpResponse::Ok().json(json!({
            "health": true,
            "leader": leader,
            "commit_index": m.commit,
            "applied_index": m.applied,
        })),
        Err(why) => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
            "health": false,
            "reason": why.reason(),
            "error": why.reason(),
            "leader": m.leader,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_actors::core::Membership;

    fn member() -> Metrics {
        Metrics {
            leader: Some(1),
            commit: 10,
            applied: 10,
            leader_commit: 10,
            membership: Membership::voters([1, 2, 3]),
            ..Metrics::starting(2)
        }
    }

    #[test]
    fn each_reason_in_the_references_order() {
        assert_eq!(health(&member()), Ok(1));
        let down = Metrics {
            down: Some("storage failed".into()),
            leader: None,
            ..member()
        };
        assert_eq!(health(&down), Err(Unhealthy::Down));
        let removed = Metrics {
            membership: Membership::voters([1, 3]),
            ..member()
        };
        assert_eq!(health(&removed), Err(Unhealthy::NotAMember));
        let alone = Metrics {
            leader: None,
            ..member()
        };
        assert_eq!(health(&alone), Err(Unhealthy::NoLeader));
    }

    #[test]
    fn lagging_is_more_than_the_bound_behind_the_leaders_commit() {
        let at_bound = Metrics {
            leader_commit: 1_010,
            ..member()
        };
        assert_eq!(health(&at_bound), Ok(1));
        let past = Metrics {
            leader_commit: 1_011,
            ..member()
        };
        assert_eq!(health(&past), Err(Unhealthy::Lagging));
        // Its own commit counts too: entries committed but not applied.
        let unapplied = Metrics {
            commit: 2_000,
            leader_commit: 0,
            ..member()
        };
        assert_eq!(health(&unapplied), Err(Unhealthy::Lagging));
    }

    #[test]
    fn a_learner_is_a_member() {
        let learner = Metrics {
            membership: Membership {
                learners: [2].into(),
                ..Membership::voters([1, 3])
            },
            ..member()
        };
        assert_eq!(health(&learner), Ok(1));
    }
}
