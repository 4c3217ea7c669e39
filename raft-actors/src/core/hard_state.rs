//! The state Raft requires on stable storage before a node answers an RPC
//! (Figure 2): current term, vote, and (for faster restarts) commit index.

use serde::{Deserialize, Serialize};

use super::{LogIndex, NodeId, Term};

/// Term, vote and commit index, persisted through [`Ready`](super::Ready).
///
/// ```
/// use raft_actors::core::HardState;
/// let hs = HardState { term: 2, vote: Some(1), commit: 5 };
/// assert!(hs != HardState::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// Highest index known committed. Saving it lets a restarted node apply
    /// up to it at once instead of waiting for the leader.
    pub commit: LogIndex,
}
