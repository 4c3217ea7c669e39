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
pub mod stream;

pub use apply_actor::{
    ApplyActor, ApplyBatch, BuildSnapshot, ProposalWaiter, ReadWaiter, RestoreSnapshot,
};
pub use stream::{read_item, read_whole, view_of, write_item, SnapshotView};

use std::io::Read;

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

    /// The whole state, to save in a snapshot: the convenient form for a
    /// small state machine. One larger than spare memory streams instead
    /// ([`snapshot_view`](Self::snapshot_view),
    /// [`restore_from`](Self::restore_from)) and may make this `()`.
    fn snapshot(&self) -> C::Snapshot;

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, snapshot: C::Snapshot);

    /// A consistent view of the state as it stands, taken on the apply
    /// thread between two entries and written to the snapshot's file on a
    /// thread of its own while applying goes on. Must be cheap to take: a
    /// clone of a persistent map (`imbl`, `rpds`), a fork, a read
    /// transaction. The default writes [`snapshot`](Self::snapshot) as one
    /// item ([`write_item`]).
    ///
    /// ```
    /// use std::io::Write;
    /// use raft_actors::apply::{read_item, write_item, Apply, SnapshotView};
    /// use raft_actors::core::LogIndex;
    /// use raft_actors::TypeConfig;
    /// # #[derive(Debug)] struct Big;
    /// # impl TypeConfig for Big { type Command = (u64, u64); type Output = ();
    /// #   type Query = u64; type QueryAnswer = Option<u64>; type Snapshot = (); }
    /// // A map streamed entry by entry: never whole in memory twice.
    /// #[derive(Default)]
    /// struct Map(std::sync::Arc<std::collections::BTreeMap<u64, u64>>);
    /// impl Apply<Big> for Map {
    ///     fn apply(&mut self, _: LogIndex, (k, v): (u64, u64)) {
    ///         std::sync::Arc::make_mut(&mut self.0).insert(k, v);
    ///     }
    ///     fn query(&self, k: u64) -> Option<u64> { self.0.get(&k).copied() }
    ///     fn snapshot(&self) {}
    ///     fn restore(&mut self, _: ()) {}
    ///     fn snapshot_view(&self) -> Box<dyn SnapshotView> {
    ///         let map = std::sync::Arc::clone(&self.0); // the consistent point
    ///         Box::new(move |out: &mut dyn Write| {
    ///             map.iter().try_for_each(|entry| write_item(out, &entry))
    ///         })
    ///     }
    ///     fn restore_from(&mut self, input: &mut dyn std::io::Read) -> std::io::Result<()> {
    ///         let mut map = std::collections::BTreeMap::new();
    ///         while let Some((k, v)) = read_item::<(u64, u64)>(input)? {
    ///             map.insert(k, v);
    ///         }
    ///         self.0 = std::sync::Arc::new(map);
    ///         Ok(())
    ///     }
    /// }
    /// let mut m = Map::default();
    /// m.apply(1, (1, 10));
    /// let mut file = Vec::new();
    /// m.snapshot_view().write_to(&mut file)?;
    /// let mut back = Map::default();
    /// back.restore_from(&mut file.as_slice())?;
    /// assert_eq!(back.query(1), Some(10));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn snapshot_view(&self) -> Box<dyn SnapshotView> {
        view_of(self.snapshot())
    }

    /// Replaces the whole state with the snapshot read from `input`, as
    /// [`snapshot_view`](Self::snapshot_view) wrote it. An error leaves the
    /// node's state machine stopped (applying later entries on the old
    /// state would diverge). The default reads one item and hands it to
    /// [`restore`](Self::restore).
    fn restore_from(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        self.restore(read_whole(input)?);
        Ok(())
    }
}
