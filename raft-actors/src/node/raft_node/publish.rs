//! Publishing the node's [`Metrics`](crate::node::Metrics) watch: what the
//! core reports, joined with what the actor measured, sent only when it
//! changed (every subscriber wakes on a send).
//!
//! It must never decide anything from what it publishes: it reads.

use super::{Down, RaftNode};
use crate::type_config::TypeConfig;

impl<C: TypeConfig> RaftNode<C> {
    /// Publishes the metrics if they changed.
    pub(super) fn publish(&mut self) {
        let Some(core) = self.core.as_ref() else {
            return;
        };
        let status = core.status();
        self.rec.observe(&status);
        let activity = self.rec.activity(core.events());
        let applied = self.applied;
        let (writes, entries, fsyncs) = (self.storage_writes, self.entries_persisted, self.fsyncs);
        let apply = (self.apply_lag(), self.apply_refused);
        let in_flight = (self.pipeline.writes_in_flight(), self.writes_in_flight_max);
        let read_back = self.entries_read_back.get();
        let quiesced = self.ticker.is_none();
        self.metrics.send_if_modified(|m| {
            let mut next = m.clone();
            next.update(&status, applied);
            next.storage_writes = writes;
            next.entries_persisted = entries;
            next.fsyncs = fsyncs;
            (next.writes_in_flight, next.writes_in_flight_max) = in_flight;
            (next.apply_lag, next.apply_refused) = apply;
            next.entries_read_back = read_back;
            next.quiesced = quiesced;
            next.activity = activity;
            next.down = None;
            let changed = next != *m;
            *m = next;
            changed
        });
    }

    pub(in crate::node) fn publish_down(&self) {
        let reason = match &self.down {
            Some(Down::Shutdown) => "shut down".to_string(),
            #[cfg(any(test, feature = "testing"))]
            Some(Down::Crashed) => "crashed".to_string(),
            Some(Down::Failed(r)) => r.clone(),
            None => return,
        };
        let failed = matches!(self.down, Some(Down::Failed(_)));
        self.metrics.send_modify(|m| {
            m.failed = failed.then(|| reason.clone());
            m.down = Some(reason);
            m.leader = None;
        });
    }
}
