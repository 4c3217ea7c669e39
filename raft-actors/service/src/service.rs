//! The [`Service`] trait: what one replicated service supplies (its state
//! machine and its routes). Everything else is the crate's and lives in the
//! sibling modules.
//!
//! A service must never do I/O, read a clock or use randomness in
//! [`Service::apply`]: every node applies the same commands and must reach
//! the same state.

use std::fmt::Debug;
use std::io::Read;

use actix_web::web;
use raft_actors::apply::{read_whole, view_of, SnapshotView};
use raft_actors::core::LogIndex;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One replicated service: its state machine and its HTTP routes.
///
/// The state machine sees only the service's own commands; the crate
/// wraps them with the idempotency key and keeps the session table and
/// the cluster's address book beside the service's state. The crate's
/// [tutorial](crate) implements one whole.
pub trait Service: Default + Send + Sync + Unpin + 'static {
    /// The service's name, for messages, `--help` and `--version`
    /// (`raft-kv`).
    const NAME: &'static str;
    /// The service's version, which `--version` prints after its name
    /// (`raft-kv 0.1.0`). Set it to `env!("CARGO_PKG_VERSION")` and the
    /// binary answers with its own crate's version; left empty, it answers
    /// `unversioned`.
    const VERSION: &'static str = "";
    /// What the service is, in one line: the first line of `--help`. Left
    /// empty, `--help` opens with the name and "a replicated service on
    /// raft-actors".
    const ABOUT: &'static str = "";
    /// A write, replicated through the log.
    type Command: Serialize + DeserializeOwned + Clone + Send + Sync + Debug + 'static;
    /// What applying a command answers. Kept in the session table so a
    /// retry gets the first answer, hence serializable.
    type Output: Serialize + DeserializeOwned + Clone + Send + Sync + Debug + 'static;
    /// A read-only question.
    type Query: Send + 'static;
    /// The answer to a [`Query`](Self::Query).
    type Answer: Send + 'static;
    /// The whole state, as saved in a snapshot.
    type Snapshot: Serialize + DeserializeOwned + Send + 'static;

    /// Applies the command committed at log `index`. Deterministic: no
    /// clock, RNG or I/O. Indexes grow with every entry, so a service may
    /// use them as versions or as ids every node agrees on.
    fn apply(&mut self, index: LogIndex, command: Self::Command) -> Self::Output;
    /// Answers a query from the current state.
    fn query(&self, query: Self::Query) -> Self::Answer;
    /// The whole state.
    fn snapshot(&self) -> Self::Snapshot;
    /// Replaces the whole state.
    fn restore(&mut self, snapshot: Self::Snapshot);
    /// A consistent view of the state, cheap to take (a persistent map's
    /// clone), written to the snapshot file on a thread of its own while
    /// writes go on; see [`Apply::snapshot_view`](raft_actors::Apply::snapshot_view).
    /// The default writes [`snapshot`](Self::snapshot) as one item.
    fn snapshot_view(&self) -> Box<dyn SnapshotView> {
        view_of(self.snapshot())
    }
    /// Replaces the whole state with what
    /// [`snapshot_view`](Self::snapshot_view) wrote, read from `input`
    /// (a state larger than spare memory reads it item by item). The
    /// default reads one item and hands it to [`restore`](Self::restore).
    fn restore_from(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        self.restore(read_whole(input)?);
        Ok(())
    }
    /// Registers the service's routes; handlers take
    /// `web::Data<Node<Self>>` ([`Node`](crate::Node)) to write and read.
    fn routes(cfg: &mut web::ServiceConfig);
}
