//! The pipelined driver mode ([`DriverMode::Pipelined`]): a simulated node
//! driven as the node actor drives its core. A batch's persist is handed
//! to the disk and completes later, after a seeded delay and never before
//! an earlier one, while the core keeps being stepped; the batch's
//! messages, answers and applies leave when the core's [`Pipeline`] rule
//! says (once it and every synced batch before it are durable).
//!
//! Must never let anything of a batch leave before that, except what the
//! core marks as early, and never keep anything of a write that had not
//! completed when the node crashed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::node::{CrashPoint, DriveOutput, SimNode};
#[cfg(doc)]
use super::DriverMode;
#[cfg(doc)]
use crate::core::Pipeline;
use crate::core::ToPersist;

/// One write handed to the disk, not yet durable.
#[derive(Debug)]
pub(super) struct InFlight {
    /// Its number in the node's [`Pipeline`].
    write: u64,
    persist: ToPersist,
    /// The tick at which the disk reports it durable.
    due: u64,
}

impl SimNode {
    /// Hands every batch the core has now to the disk, each write to
    /// complete 0..=`max_delay` ticks from `now` (after the one before it).
    /// Early messages leave at once, as in the node, and so does what the
    /// pipeline releases (a batch that need not sync waits for no write of
    /// its own).
    pub fn submit(&mut self, now: u64, max_delay: u64, rng: &mut ChaCha8Rng) -> DriveOutput {
        let mut out = DriveOutput::default();
        while let Some(mut ready) = self.core.as_mut().and_then(|c| c.ready()) {
            let early = self.filled(ready.take_early());
            out.messages.extend(early);
            let (persist, gate) = ready.split();
            if let Some(write) = self.pipeline.submit(&persist, gate) {
                let after_previous = self.in_flight.back().map_or(now, |f| f.due);
                let due = (now + rng.gen_range(0..=max_delay)).max(after_previous);
                self.in_flight.push_back(InFlight {
                    write,
                    persist,
                    due,
                });
            }
            self.release_open(&mut out);
        }
        out
    }

    /// Writes handed to the disk and not durable yet.
    pub fn writes_in_flight(&self) -> u64 {
        self.pipeline.writes_in_flight()
    }

    /// Whether a write is due by `now`.
    pub fn has_due(&self, now: u64) -> bool {
        self.in_flight.front().is_some_and(|f| f.due <= now)
    }

    /// Completes, in order, the writes due by `now`: each is written to
    /// the disk, then the gates it opens open and the core is told. A
    /// `crash` strikes at the first one. Returns whether any completed.
    pub fn complete_due(&mut self, now: u64, mut crash: Option<CrashPoint>) -> (bool, DriveOutput) {
        let mut out = DriveOutput::default();
        let any = self.has_due(now);
        while self.has_due(now) {
            if crash.take() == Some(CrashPoint::BeforePersist) {
                self.crash();
                out.crashed = true;
                break;
            }
            let Some(done) = self.in_flight.pop_front() else {
                break;
            };
            self.write(done.persist, &mut out);
            self.pipeline.durable(done.write);
            if crash.take() == Some(CrashPoint::AfterPersist) {
                self.crash();
                out.crashed = true;
                break;
            }
            self.release_open(&mut out);
        }
        (any, out)
    }

    /// Executes every batch whose gate is open, in order, acknowledging
    /// each to the core.
    fn release_open(&mut self, out: &mut DriveOutput) {
        while let Some(after) = self.pipeline.release() {
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
