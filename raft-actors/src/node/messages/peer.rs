//! What peers send: the node's handler of [`Peer`], the batch a transport
//! delivers (the message itself lives beside the [`Transport`] trait, so
//! no adapter depends on the node).
//!
//! [`Transport`]: crate::transport::Transport

use actix::prelude::*;

use crate::core::Body;
use crate::node::RaftNode;
use crate::transport::Peer;
use crate::type_config::TypeConfig;

impl<C: TypeConfig> Handler<Peer> for RaftNode<C> {
    type Result = ();

    fn handle(&mut self, msg: Peer, ctx: &mut Self::Context) {
        self.guarded(ctx, |node, ctx| {
            let Some(core) = node.core.as_mut() else {
                return; // down: a dead node hears nothing
            };
            // A forwarded lease read may be answered in this step.
            core.observe_clock(node.clock.ticks());
            for m in msg.messages {
                if let Body::Founding(f) = m.body {
                    node.on_founding(m.from, f, ctx);
                    continue;
                }
                if node.founding.is_some() {
                    continue; // no Raft message reaches a node being founded
                }
                let Some(core) = node.core.as_mut() else {
                    return; // refused while founding
                };
                // A copy of a forwarded proposal is the core's to spot.
                core.step(m);
            }
            node.schedule(ctx);
        });
    }
}
