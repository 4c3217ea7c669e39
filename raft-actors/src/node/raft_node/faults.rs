//! Fault injection into a running node, for tests (feature `testing`):
//! crashes, restarts, panics, a stopped tick clock, and stalls in which
//! the node handles nothing at all, as a frozen process or a blocked thread
//! would. It must never be reachable from a production build.

use actix::prelude::*;
use tracing::info;

use super::{Down, RaftNode};
use crate::error::ClientError;
use crate::node::messages::internal::{InjectFault, Stall};
use crate::type_config::TypeConfig;

impl<C: TypeConfig> Handler<InjectFault> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, fault: InjectFault, ctx: &mut Self::Context) {
        match fault {
            InjectFault::Panic => {
                self.guarded(ctx, |_, _| panic!("injected panic"));
            }
            InjectFault::Crash => {
                if self.down.is_none() {
                    info!(node = self.id, "crash injected");
                    self.reset(ClientError::Interrupted);
                    // The state machine dies with the process; dropping its
                    // only address stops it once its mailbox is drained.
                    self.apply = None;
                    self.down = Some(Down::Crashed);
                    self.publish_down();
                }
            }
            InjectFault::Restart => {
                if matches!(self.down, Some(Down::Crashed)) {
                    info!(node = self.id, "restart injected");
                    self.down = None;
                    self.metrics.send_modify(|m| m.down = None);
                    self.reload(ctx);
                }
            }
            InjectFault::PauseTicks => self.ticks_paused = true,
            InjectFault::ResumeTicks => self.ticks_paused = false,
        }
    }
}

impl<C: TypeConfig> Handler<Stall> for RaftNode<C> {
    type Result = ();

    /// Holds the mailbox shut until the stall is released (or its sender
    /// dropped): messages queue, nothing is handled, as in a frozen
    /// process. Ticks are not queued meanwhile only if they were paused.
    fn handle(&mut self, stall: Stall, ctx: &mut Self::Context) {
        info!(node = self.id, "stalled");
        let released = async move {
            let _ = stall.until.await;
        };
        ctx.wait(released.into_actor(self).map(|(), node, _| {
            info!(node = node.id, "stall released");
        }));
    }
}
