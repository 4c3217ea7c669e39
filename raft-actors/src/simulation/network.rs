//! The simulated network: messages in flight with a delivery time, and the
//! faults one seed decides: loss, duplication, delay (hence reordering),
//! replay of a message long after it was sent, and partitions, per
//! directed link.

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::core::{Message, NodeId};

/// Fault rates of the network, per message.
#[derive(Clone, Debug)]
pub struct NetworkFaults {
    /// Probability a message is lost.
    pub drop: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Messages take 0..=`max_delay` ticks; different delays reorder them.
    pub max_delay: u64,
    /// Probability a message is delivered once more, up to `replay_delay`
    /// ticks later: a copy from an older term, as a transport that resends
    /// after a reconnect may deliver (so forwarding must be idempotent
    /// across leader changes, not only within one).
    pub replay: f64,
    /// The latest a replayed copy arrives, in ticks after the send.
    pub replay_delay: u64,
}

impl Default for NetworkFaults {
    fn default() -> Self {
        NetworkFaults {
            drop: 0.05,
            duplicate: 0.02,
            max_delay: 3,
            replay: 0.01,
            replay_delay: 60,
        }
    }
}

/// Messages in flight between simulated nodes.
#[derive(Debug, Default)]
pub struct Network {
    in_flight: Vec<(u64, Message)>,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Current fault rates.
    pub faults: NetworkFaults,
}

impl Network {
    /// A network with the given fault rates and no partition.
    pub fn new(faults: NetworkFaults) -> Self {
        Network {
            faults,
            ..Default::default()
        }
    }

    /// Sends `m` at time `now`, subject to loss, duplication and delay.
    pub fn send(&mut self, m: Message, now: u64, rng: &mut ChaCha8Rng) {
        if rng.gen_bool(self.faults.drop) {
            return;
        }
        if rng.gen_bool(self.faults.duplicate) {
            let at = now + rng.gen_range(0..=self.faults.max_delay);
            self.in_flight.push((at, m.clone()));
        }
        if rng.gen_bool(self.faults.replay) {
            let at = now + rng.gen_range(0..=self.faults.replay_delay);
            self.in_flight.push((at, m.clone()));
        }
        let at = now + rng.gen_range(0..=self.faults.max_delay);
        self.in_flight.push((at, m));
    }

    /// Removes and returns the messages due by `now`, shuffled, minus those
    /// on a link cut at delivery time.
    pub fn due(&mut self, now: u64, rng: &mut ChaCha8Rng) -> Vec<Message> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].0 <= now {
                due.push(self.in_flight.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        // swap_remove already scrambles; a seeded shuffle makes reordering
        // independent of the vector's history.
        for k in (1..due.len()).rev() {
            due.swap(k, rng.gen_range(0..=k));
        }
        due.retain(|m| !self.cut.contains(&(m.from, m.to)));
        due
    }

    /// Whether messages wait in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Cuts the link `from -> to` (one way).
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Cuts every link between `a` and the rest of `all`, both ways.
    pub fn isolate(&mut self, a: NodeId, all: &[NodeId]) {
        for &b in all.iter().filter(|b| **b != a) {
            self.cut(a, b);
            self.cut(b, a);
        }
    }

    /// Splits `all` into `side` and the rest.
    pub fn split(&mut self, side: &[NodeId], all: &[NodeId]) {
        for &a in side {
            for &b in all.iter().filter(|b| !side.contains(b)) {
                self.cut(a, b);
                self.cut(b, a);
            }
        }
    }

    /// Whether `from -> to` is cut.
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }
}
