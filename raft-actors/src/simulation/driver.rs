//! The pipelined driver mode ([`DriverMode::Pipelined`]): a simulated node
//! driven as the node actor drives its core. A batch's persist is handed
//! to the disk and completes later, after a seeded delay and never before
//! an earlier one, while the core keeps being stepped; its messages,
//! answers and applies leave only once it is durable.
//!
//! Must never let anything of a batch leave before its persist completes,
//! except what the core marks as early, and never keep anything of a batch
//! whose persist had not completed when the node crashed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::node::{CrashPoint, DriveOutput, SimNode};
#[cfg(doc)]
use super::DriverMode;
use crate::core::{PersistGate, ToPersist};

/// One batch handed to the disk, not yet durable.
#[derive(Debug)]
pub(super) struct InFlight {
    persist: ToPersist,
    gate: PersistGate,
    /// The tick at which the disk reports it durable.
    due: u64,
}

impl SimNode {
    /// Hands every batch the core has now to the disk, each to complete
    /// 0..=`max_delay` ticks from `now` (after the one before it). Early
    /// messages leave at once, as in the node; the rest waits.
    pub fn submit(&mut self, now: u64, max_delay: u64, rng: &mut ChaCha8Rng) -> DriveOutput {
        let mut out = DriveOutput::default();
        while let Some(mut ready) = self.core.as_mut().and_then(|c| c.ready()) {
            out.messages.extend(ready.take_early());
            let (persist, gate) = ready.split();
            let after_previous = self.in_flight.back().map_or(now, |f| f.due);
            let due = if is_empty(&persist) {
                after_previous
            } else {
                (now + rng.gen_range(0..=max_delay)).max(after_previous)
            };
            self.in_flight.push_back(InFlight { persist, gate, due });
            let nothing = self.in_flight.back().is_some_and(|f| is_empty(&f.persist));
            if nothing && self.in_flight.len() == 1 {
                // Nothing to make durable and nothing before it: released
                // now, as the node does.
                self.complete(u64::MAX, None, &mut out);
            }
        }
        out
    }

    /// Whether a persist is due by `now`.
    pub fn has_due(&self, now: u64) -> bool {
        self.in_flight.front().is_some_and(|f| f.due <= now)
    }

    /// Completes, in order, the persists due by `now`: each is written to
    /// the disk, then its gate opens and the core is told. A `crash`
    /// strikes at the first one. Returns whether any completed.
    pub fn complete_due(&mut self, now: u64, crash: Option<CrashPoint>) -> (bool, DriveOutput) {
        let mut out = DriveOutput::default();
        let any = self.in_flight.front().is_some_and(|f| f.due <= now);
        self.complete(now, crash, &mut out);
        (any, out)
    }

    fn complete(&mut self, now: u64, mut crash: Option<CrashPoint>, out: &mut DriveOutput) {
        while self.in_flight.front().is_some_and(|f| f.due <= now) {
            if crash.take() == Some(CrashPoint::BeforePersist) {
                self.crash();
                out.crashed = true;
                return;
            }
            let Some(done) = self.in_flight.pop_front() else {
                return;
            };
            self.write(done.persist, out);
            if crash.take() == Some(CrashPoint::AfterPersist) {
                self.crash();
                out.crashed = true;
                return;
            }
            let after = done.gate.persisted();
            let snapshot_wanted = after.snapshot_wanted;
            self.release(after, out);
            let Some(core) = self.core.as_mut() else {
                return;
            };
            core.advance();
            if snapshot_wanted {
                self.take_snapshot();
            }
        }
    }
}

fn is_empty(p: &ToPersist) -> bool {
    p.snapshot.is_none() && p.hard_state.is_none() && p.entries.is_empty() && p.compact_to.is_none()
}
