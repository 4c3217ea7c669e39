//! What the node tells itself: ticks, and (in test builds) faults.

use crate::error::FatalError;
use crate::node::RaftNode;
use crate::type_config::TypeConfig;
use actix::prelude::*;
use actix::Message;

/// One tick of the node's logical clock, from its own interval.
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct Tick;

/// Runs the pending `Ready` work once the mailbox is drained, so that every
/// message that arrived together lands in one batch (group commit).
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Drive;

/// A fault to inject into a running node. Test builds only.
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum InjectFault {
    /// Panic inside a handler, as a bug would: caught at the boundary, the
    /// node stops, its supervisor restarts it from storage.
    Panic,
    /// Crash: lose every volatile thing (core, pending requests, the state
    /// machine) and stay down until [`InjectFault::Restart`].
    Crash,
    /// Come back from a crash: a fresh state machine, the core from storage.
    Restart,
    /// Stop (or resume) the tick interval: time stands still for this node.
    PauseTicks,
    /// Resume ticks after [`InjectFault::PauseTicks`].
    ResumeTicks,
}

/// Stalls a running node until `until` fires: its mailbox stays shut and
/// it handles nothing (ticks, peers, clients), then it resumes with its
/// backlog, as a process frozen by SIGSTOP or a thread blocked in a long
/// pause would. Test builds only.
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Stall {
    /// Fires (or is dropped) when the stall ends.
    pub until: tokio::sync::oneshot::Receiver<()>,
}

impl<C: TypeConfig> Handler<Tick> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        self.guarded(ctx, |node, ctx| {
            // The user's state machine panicked and its actor stopped: fail,
            // so the supervisor restarts the node with a fresh one rebuilt
            // from snapshot and log.
            if node.apply.as_ref().is_some_and(|a| !a.connected()) {
                node.apply = None;
                let reason = "the state machine panicked".to_string();
                return node.fail(ctx, FatalError::Panic(reason));
            }
            let Some(core) = node.core.as_mut() else {
                return;
            };
            core.observe_clock(node.clock.ticks());
            core.tick();
            node.ticks += 1;
            node.founding_tick(ctx);
            // Every ~second of ticks: forget requests whose caller gave up.
            if node.ticks % 100 == 0 {
                let abandoned = node.pending.sweep_abandoned();
                if let Some(core) = node.core.as_mut() {
                    for id in abandoned {
                        core.forget_read(id);
                    }
                }
            }
            node.drive(ctx);
        });
    }
}

impl<C: TypeConfig> Handler<Drive> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, _: Drive, ctx: &mut Self::Context) {
        self.drive_scheduled = false;
        self.guarded(ctx, |node, ctx| node.drive(ctx));
    }
}
