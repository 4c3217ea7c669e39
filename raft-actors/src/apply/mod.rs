//! The user's state machine: the [`Apply`] trait, and the actor that runs it
//! beside the node.
//!
//! The node hands the actor committed entries in index order, each with the
//! reply of the proposal waiting for it, and the queries of reads whose
//! index is now covered. The actor decodes, applies and answers. It must
//! never apply an entry twice (it skips what it already applied, so a
//! restarted node may replay its log) and never answer a query before the
//! entries handed to it earlier are applied.

mod apply_actor;

pub use apply_actor::{
    ApplyActor, ApplyBatch, BuildSnapshot, ProposalWaiter, ReadWaiter, RestoreSnapshot,
};

use crate::core::LogIndex;
use crate::type_config::TypeConfig;

/// A command's result, as the apply actor answers its proposer: where it
/// was applied and what applying it returned.
///
/// ```
/// use raft_actors::{Applied, testing::Kv};
/// let a: Applied<Kv> = Applied { index: 7, output: Some(3) };
/// assert_eq!((a.index, a.output), (7, Some(3)));
/// ```
pub struct Applied<C: TypeConfig> {
    /// The log index of its entry.
    pub index: LogIndex,
    /// The state machine's output.
    pub output: C::Output,
}

// By hand: a derive would ask `C` itself to be `Debug`, where only its
// output needs to be.
impl<C: TypeConfig> std::fmt::Debug for Applied<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied")
            .field("index", &self.index)
            .field("output", &self.output)
            .finish()
    }
}

/// A replicated state machine.
///
/// ```
/// use raft_actors::apply::Apply;
/// use raft_actors::core::LogIndex;
/// use raft_actors::TypeConfig;
///
/// #[derive(Debug)]
/// struct Counter;
/// impl TypeConfig for Counter {
///     type Command = i64; type Output = i64;
///     type Query = (); type QueryAnswer = i64;
///     type Snapshot = i64;
/// }
/// #[derive(Default)]
/// struct Sum(i64);
/// impl Apply<Counter> for Sum {
///     fn apply(&mut self, _: LogIndex, add: i64) -> i64 { self.0 += add; self.0 }
///     fn query(&self, _: ()) -> i64 { self.0 }
///     fn snapshot(&self) -> i64 { self.0 }
///     fn restore(&mut self, s: i64) { self.0 = s }
/// }
/// let mut s = Sum::default();
/// assert_eq!(s.apply(1, 5), 5);
/// ```
pub trait Apply<C: TypeConfig>: 'static {
    /// Applies one committed command and returns its output to the proposer.
    ///
    /// To ensure correctness: called for committed entries only, once each,
    /// in index order. Must be deterministic (no clock, RNG or outside I/O),
    /// or replicas diverge.
    fn apply(&mut self, index: LogIndex, command: C::Command) -> C::Output;

    /// Answers a read-only query from the current state.
    fn query(&self, query: C::Query) -> C::QueryAnswer;

    /// The whole state, to save in a snapshot.
    fn snapshot(&self) -> C::Snapshot;

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, snapshot: C::Snapshot);
}
