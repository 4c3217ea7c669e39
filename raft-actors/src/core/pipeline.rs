//! [`Pipeline`]: the order in which a driver may release batches whose
//! persists are in flight (etcd raft's async storage writes, openraft's
//! IOFlushed callback).
//!
//! A driver hands each batch's [`ToPersist`] to storage, which executes
//! them in order, and keeps the batch's [`PersistGate`] here. The gate of
//! batch `k` opens once every batch up to `k` that must sync is durable
//! (Figure 2: nothing leaves before the state it promises is on disk): a
//! batch that need not sync waits for no write of its own, only for the
//! synced ones before it. Gates open in order, and the driver acknowledges
//! each to the core with [`RaftCore::advance`](super::RaftCore::advance)
//! as it opens. Pure bookkeeping: it must never do I/O, nor open a gate
//! out of order.

use std::collections::VecDeque;

use super::{AfterPersist, PersistGate, ToPersist};

/// Batches handed to storage and not yet released, in order.
///
/// ```
/// use raft_actors::core::{Config, Membership, Pipeline, RaftCore, Recovered};
/// use rand::SeedableRng;
/// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let boot = Recovered::bootstrap(Membership::voters([1]));
/// let mut core = RaftCore::new(1, Config::default(), boot, rng)?;
/// core.campaign();
/// let mut pipeline = Pipeline::default();
/// let (persist, gate) = core.ready().expect("a term to persist").split();
/// let write = pipeline.submit(&persist, gate).expect("something to write");
/// assert!(pipeline.release().is_none()); // its term is not durable yet
/// // ... storage makes `persist` durable, then:
/// pipeline.durable(write);
/// assert!(pipeline.release().is_some());
/// core.advance();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Pipeline {
    /// Writes handed to storage so far (the last write's number).
    submitted: u64,
    /// Writes storage reported durable, in order.
    durable: u64,
    /// The last submitted write that must sync.
    last_sync: u64,
    /// Gates not yet opened, each with the write it waits for.
    waiting: VecDeque<(u64, PersistGate)>,
}

impl Pipeline {
    /// Registers a batch: its gate waits here. Returns the number of the
    /// write to hand to storage (to report with [`durable`](Self::durable)),
    /// or `None` if `persist` holds nothing to write.
    pub fn submit(&mut self, persist: &ToPersist, gate: PersistGate) -> Option<u64> {
        let write = (!persist.is_empty()).then(|| {
            self.submitted += 1;
            self.submitted
        });
        if let (Some(w), true) = (write, persist.must_sync) {
            self.last_sync = w;
        }
        // A batch waits for its own write if it must sync, and in any case
        // for every synced write before it: a vote or an acknowledgement in
        // a batch that changes nothing may still rest on an earlier one.
        self.waiting.push_back((self.last_sync, gate));
        write
    }

    /// Storage made write `write`, and so every write before it, durable.
    pub fn durable(&mut self, write: u64) {
        self.durable = self.durable.max(write.min(self.submitted));
    }

    /// The next batch whose gate may open now, oldest first; `None` if the
    /// oldest still waits (or none is left). Acknowledge each to the core.
    pub fn release(&mut self) -> Option<AfterPersist> {
        match self.waiting.front() {
            Some((needs, _)) if *needs <= self.durable => {
                self.waiting.pop_front().map(|(_, gate)| gate.persisted())
            }
            _ => None,
        }
    }

    /// Writes handed to storage and not yet reported durable.
    pub fn writes_in_flight(&self) -> u64 {
        self.submitted - self.durable
    }

    /// Batches whose gates have not opened yet.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Forgets everything (the driver crashed or restarts): no gate opens.
    pub fn clear(&mut self) {
        *self = Pipeline::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Entry, HardState, Payload, Ready};

    fn batch(must_sync: bool, entries: u64) -> (ToPersist, PersistGate) {
        let persist = ToPersist {
            hard_state: Some(HardState::default()),
            entries: (1..=entries)
                .map(|index| Entry {
                    index,
                    term: 1,
                    payload: Payload::Noop,
                })
                .collect(),
            must_sync,
            ..ToPersist::default()
        };
        let (_, gate) = Ready::default().split();
        (persist, gate)
    }

    #[test]
    fn a_lazy_batch_waits_only_for_synced_writes_before_it() {
        let mut p = Pipeline::default();
        let (lazy, gate) = batch(false, 0);
        let w1 = p.submit(&lazy, gate);
        assert_eq!(w1, Some(1));
        assert!(p.release().is_some(), "nothing synced before it");
        let (synced, gate) = batch(true, 2);
        let w2 = p.submit(&synced, gate).expect("a write");
        let (lazy, gate) = batch(false, 0);
        p.submit(&lazy, gate);
        assert!(p.release().is_none(), "the synced write is in flight");
        assert_eq!((p.writes_in_flight(), p.waiting()), (3, 2));
        p.durable(w2);
        assert!(p.release().is_some(), "the synced batch");
        assert!(p.release().is_some(), "the lazy one after it, unwritten");
        assert!(p.release().is_none());
        assert_eq!(p.writes_in_flight(), 1);
    }

    #[test]
    fn gates_open_in_order_and_only_once_durable() {
        let mut p = Pipeline::default();
        let writes: Vec<u64> = (0..3)
            .filter_map(|_| {
                let (b, g) = batch(true, 1);
                p.submit(&b, g)
            })
            .collect();
        assert_eq!(writes, vec![1, 2, 3]);
        p.durable(2);
        assert!(p.release().is_some() && p.release().is_some());
        assert!(p.release().is_none(), "the third is not durable");
        p.durable(9); // past the end: clamped
        assert!(p.release().is_some());
        assert_eq!(p.writes_in_flight(), 0);
    }
}
