//! Leadership transfer (thesis §3.10): bring the target up to date, then
//! tell it to campaign at once.
//!
//! Must never take proposals while a transfer is under way (they could be
//! lost when leadership moves), and must give up after an election timeout
//! so a dead target cannot block the cluster.

use super::{Body, NodeId, RaftCore, Role, TransferError};

/// A transfer under way.
#[derive(Clone, Debug)]
pub(crate) struct Transfer {
    pub(crate) to: NodeId,
    elapsed: u64,
}

impl RaftCore {
    /// Hands leadership to `to`. The leader stops taking proposals
    /// ([`ProposeError::TransferInProgress`](super::ProposeError)), catches
    /// `to` up, then sends it TimeoutNow. The transfer aborts after an
    /// election timeout; watch [`status`](Self::status) for the outcome.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        self.wake();
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.id {
            return Ok(());
        }
        if !self.membership.voters.contains(&to) {
            return Err(TransferError::NotVoter(to));
        }
        self.transfer = Some(Transfer { to, elapsed: 0 });
        let last = self.log.last_index();
        match self.progress.get_mut(&to) {
            // Behind: whatever was in flight to it may be lost; resend now
            // rather than at the next heartbeat, the transfer is waiting.
            Some(pr) if pr.match_index < last => pr.reprobe(),
            _ => self.transfer_progressed(to),
        }
        Ok(())
    }

    /// Leader: `peer` acknowledged entries; if it is the transfer target and
    /// now holds the whole log, tell it to campaign.
    pub(super) fn transfer_progressed(&mut self, peer: NodeId) {
        let last = self.log.last_index();
        let caught_up = self
            .progress
            .get(&peer)
            .is_some_and(|p| p.match_index == last);
        if self.transfer.as_ref().is_some_and(|t| t.to == peer) && caught_up {
            // From here the target may win before this leader's lease ends.
            self.reads.forfeit_lease();
            self.send(peer, Body::TimeoutNow);
        }
    }

    pub(super) fn tick_transfer(&mut self) {
        if let Some(t) = &mut self.transfer {
            t.elapsed += 1;
            if t.elapsed >= self.cfg.election_ticks {
                self.transfer = None;
            }
        }
    }
}
