//! What clients ask a node: proposals and reads. Each carries its own reply
//! channel, resolved exactly once: with the answer, or with a
//! [`ClientError`] saying whether the request may have taken effect.
//!
//! The reply travels in the message rather than as actix's response so a
//! request costs one channel, answered from whichever actor has the answer
//! (the node for an error, the apply actor for an output).

use actix::Message;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::apply::Applied;
use crate::apply::ApplyBatch;
use crate::error::ClientError;
use crate::node::RaftNode;
use crate::type_config::{encode, CodecError, TypeConfig};
use actix::prelude::*;

/// The reply channel of a proposal.
pub type ProposeReply<C> = oneshot::Sender<Result<Applied<C>, ClientError>>;

/// The reply channel of a read.
pub type ReadReply<C> = oneshot::Sender<Result<<C as TypeConfig>::QueryAnswer, ClientError>>;

/// Proposes one command. Resolves once the entry is committed and applied
/// on this node, with the state machine's output. A follower forwards it to
/// the leader and answers once it applied the entry itself.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Propose<C: TypeConfig> {
    pub(crate) command: Bytes,
    pub(crate) reply: ProposeReply<C>,
}

impl<C: TypeConfig> Propose<C> {
    /// Encodes `command` once, here, off the node's thread.
    pub fn new(command: &C::Command, reply: ProposeReply<C>) -> Result<Self, CodecError> {
        Ok(Propose {
            command: encode(command)?,
            reply,
        })
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read began, confirmed by
    /// a heartbeat round of the leader (ReadIndex, §8).
    Linearizable,
    /// Like `Linearizable`, but the leader answers from its lease without a
    /// round; safe while clocks drift less than the lease margin allows.
    Lease,
    /// Whatever this node applied so far; may miss acknowledged writes.
    Stale,
}

/// Asks the state machine a query at the given consistency.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Read<C: TypeConfig> {
    /// The question.
    pub query: C::Query,
    /// How fresh the answer must be.
    pub consistency: Consistency,
    /// Where the answer goes.
    pub reply: ReadReply<C>,
}

impl<C: TypeConfig> Handler<Propose<C>> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, msg: Propose<C>, ctx: &mut Self::Context) {
        if let Some(err) = self.refusal() {
            let _ = msg.reply.send(Err(err));
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            let _ = msg.reply.send(Err(ClientError::Busy));
            return;
        }
        if let Some(err) = self.apply_backlogged() {
            let _ = msg.reply.send(Err(err));
            return;
        }
        let id = self.next_id();
        self.guarded(ctx, |node, ctx| {
            let Some(core) = node.core.as_mut() else {
                return;
            };
            core.observe_clock(node.clock.ticks());
            match core.propose(id, msg.command) {
                Ok(()) => node.pending.add_proposal(id, msg.reply),
                Err(e) => {
                    let _ = msg.reply.send(Err(e.into()));
                }
            }
            // Refused or not, the request woke a quiesced core: its timer
            // must run again.
            node.schedule(ctx);
        });
    }
}

impl<C: TypeConfig> Handler<Read<C>> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, msg: Read<C>, ctx: &mut Self::Context) {
        if let Some(err) = self.refusal() {
            let _ = msg.reply.send(Err(err));
            return;
        }
        if self.pending.len() >= self.cfg.max_pending {
            let _ = msg.reply.send(Err(ClientError::Busy));
            return;
        }
        if let Some(err) = self.apply_backlogged() {
            let _ = msg.reply.send(Err(err));
            return;
        }
        if msg.consistency == Consistency::Stale {
            if let Some(apply) = &self.apply {
                // Behind every batch already handed on: sees at least what
                // this node applied when the read arrived.
                apply.do_send(ApplyBatch {
                    entries: Vec::new(),
                    waiters: Vec::new(),
                    queries: vec![(msg.query, msg.reply)],
                });
            }
            return;
        }
        let id = self.next_id();
        self.guarded(ctx, |node, ctx| {
            let Some(core) = node.core.as_mut() else {
                return;
            };
            core.observe_clock(node.clock.ticks());
            let asked = match msg.consistency {
                Consistency::Lease => core.lease_read(id),
                _ => core.read_index(id),
            };
            match asked {
                Ok(()) => node.pending.add_read(id, msg.query, msg.reply),
                Err(e) => {
                    let _ = msg.reply.send(Err(e.into()));
                }
            }
            // Refused or not, the request woke a quiesced core.
            node.schedule(ctx);
        });
    }
}
