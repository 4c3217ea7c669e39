//! [`Counter`]: the smallest state machine there is, for benchmarks: an
//! 8-byte command, an 8-byte answer, so what is measured is the
//! replication path, not the state machine.

use crate::apply::Apply;
use crate::core::LogIndex;
use crate::type_config::TypeConfig;

/// A `u64` that commands add to; answers the new value.
///
/// ```
/// use raft_actors::apply::Apply;
/// use raft_actors::testing::Counter;
/// let mut c = Counter::default();
/// assert_eq!(c.apply(1, 5), 5);
/// assert_eq!(c.query(()), 5);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter(pub u64);

impl TypeConfig for Counter {
    type Command = u64;
    type Output = u64;
    type Query = ();
    type QueryAnswer = u64;
    type Snapshot = u64;
}

impl Apply<Counter> for Counter {
    fn apply(&mut self, _: LogIndex, add: u64) -> u64 {
        self.0 = self.0.wrapping_add(add);
        self.0
    }
    fn query(&self, _: ()) -> u64 {
        self.0
    }
    fn snapshot(&self) -> u64 {
        self.0
    }
    fn restore(&mut self, s: u64) {
        self.0 = s;
    }
}
