//! The node's side of [`Founding`]: it answers every peer's founding
//! messages from its [`Roster`](crate::node::Roster), and, while its own
//! empty store is being founded, sends what the `Founding` decides, writes
//! the first configuration once every other voter recorded it, and refuses
//! to start when one already knew it.
//!
//! While founding, the core runs as no member and is handed no Raft
//! message: a leader that still counts this node as a voter must not get
//! its log (and so its vote) into a node that forgot what it acknowledged.
//! It decides nothing itself: the rules are `Founding`'s.

use actix::prelude::*;
use tracing::{error, info, warn};

use super::{Down, RaftNode};
use crate::core::{Body, Founding, FoundingMsg, FoundingStep, Membership, Message, NodeId};
use crate::storage::LogState;
use crate::type_config::TypeConfig;

/// Founding messages are sent again every this many ticks until answered.
const RETRY_TICKS: u64 = 4;

impl<C: TypeConfig> RaftNode<C> {
    /// After a load: an empty store with voters to bootstrap starts
    /// founding instead of waiting to be added.
    pub(super) fn found_if_empty(&mut self, state: &LogState, ctx: &mut Context<Self>) {
        let empty = state.entries.is_empty()
            && state.snapshot.is_none()
            && state.membership.members().is_empty()
            && state.hard_state == Default::default();
        let Some(voters) = self.cfg.bootstrap_voters.clone().filter(|_| empty) else {
            return;
        };
        info!(
            node = self.id,
            ?voters,
            "empty store: asking the other voters before founding"
        );
        self.founding = Some(Founding::new(self.id, voters));
        self.metrics.send_modify(|m| m.founding = true);
        self.act_on_founding(ctx);
    }

    /// Every `RETRY_TICKS` ticks while founding: ask again.
    pub(in crate::node) fn founding_tick(&mut self, ctx: &mut Context<Self>) {
        if self.founding.is_some() && self.ticks % RETRY_TICKS == 0 {
            self.act_on_founding(ctx);
        }
    }

    /// Handles one founding message from `from` (answering is every node's
    /// job; replies matter only while founding).
    pub(in crate::node) fn on_founding(
        &mut self,
        from: NodeId,
        msg: FoundingMsg,
        ctx: &mut Context<Self>,
    ) {
        let reply = match msg {
            FoundingMsg::Probe => Some(FoundingMsg::Answer {
                member: self.founding.is_none()
                    && self
                        .core
                        .as_ref()
                        .is_some_and(|c| !c.membership().members().is_empty()),
                knows_you: self.cfg.roster.knows(from),
            }),
            FoundingMsg::Enlist => match self.cfg.roster.enlist(from) {
                Ok(()) => Some(FoundingMsg::Enlisted),
                Err(e) => {
                    // Unanswered, the asker waits: it must not take part
                    // unrecorded.
                    error!(node = self.id, from, %e, "cannot record an enlisting peer");
                    None
                }
            },
            FoundingMsg::Answer { .. } | FoundingMsg::Enlisted => {
                if let Some(f) = self.founding.as_mut() {
                    f.receive(from, msg);
                    self.act_on_founding(ctx);
                }
                None
            }
        };
        if let Some(reply) = reply {
            self.send_founding(from, reply);
        }
    }

    fn send_founding(&self, to: NodeId, msg: FoundingMsg) {
        self.send(vec![Message {
            from: self.id,
            to,
            term: 0,
            body: Body::Founding(msg),
        }]);
    }

    /// Does what the founding decides now.
    fn act_on_founding(&mut self, ctx: &mut Context<Self>) {
        let Some(founding) = self.founding.as_ref() else {
            return;
        };
        match founding.step() {
            FoundingStep::Probe(peers) => {
                for to in peers {
                    self.send_founding(to, FoundingMsg::Probe);
                }
            }
            FoundingStep::Enlist(peers) => {
                for to in peers {
                    self.send_founding(to, FoundingMsg::Enlist);
                }
            }
            FoundingStep::Refuse { by, member } => {
                let reason = refusal(self.id, by, member);
                error!(node = self.id, %reason, "refusing to start");
                self.founding = None;
                self.core = None;
                self.down = Some(Down::Failed(reason.clone()));
                self.publish_down();
                self.metrics.send_modify(|m| {
                    m.lost_data = Some(reason);
                    m.founding = false;
                });
            }
            FoundingStep::Bootstrap => {
                let membership = Membership::voters(founding.voters().iter().copied());
                self.founding = None;
                info!(
                    node = self.id,
                    ?membership,
                    "every other voter recorded this node: founding"
                );
                let storage = std::sync::Arc::clone(&self.storage);
                let first = crate::storage::ToPersist {
                    membership: Some(membership),
                    ..crate::storage::ToPersist::default()
                };
                let save = async move { storage.lock().await.write(first).await };
                // The mailbox stays shut until the core is rebuilt on it.
                ctx.wait(save.into_actor(self).map(|res, node, ctx| match res {
                    Ok(()) => node.reload(ctx),
                    Err(e) => {
                        warn!(node = node.id, %e, "cannot write the first configuration");
                        node.fail(ctx, crate::error::FatalError::Storage(e));
                    }
                }));
            }
        }
    }
}

/// The one line an operator reads when a node lost its data.
fn refusal(id: NodeId, by: NodeId, member: bool) -> String {
    let cluster = if member {
        "a member of the cluster"
    } else {
        "a peer"
    };
    format!(
        "node {id} has an empty data dir, but node {by} ({cluster}) knows it as a member that took part before: \
         its data was lost, and starting it with a vote could lose acknowledged writes. \
         Remove it (DELETE /cluster/members/{id} on any member), then start it without --peers \
         and add it back (POST /cluster/members)"
    )
}
