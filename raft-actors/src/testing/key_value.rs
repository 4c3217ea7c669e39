//! [`KeyValue`]: what the shared cluster-test bodies ([`cases`](super::cases))
//! need of a service, so that they run over the user's own state machine
//! as well as over the kit's [`Kv`]: a way to store a `u64` under a `u64`
//! key and to read it back. The bodies are written against that register
//! map; the user says how its writes and reads map onto their commands and
//! queries. [`KeyValueHandle`] is the same on a node's handle.
//!
//! It must never ask more of a service than the bodies check: a service
//! that does not say what a write replaced is still checked, by reads.

use std::future::Future;

use crate::apply::Applied;
use crate::error::ClientError;
use crate::node::messages::client::Consistency;
use crate::raft::Raft;
use crate::testing::{Kv, KvCommand};
use crate::type_config::TypeConfig;

/// A service the shared cluster-test bodies can drive: one that stores a
/// `u64` value under a `u64` key and reads it back.
///
/// ```
/// use raft_actors::apply::Apply;
/// use raft_actors::core::LogIndex;
/// use raft_actors::testing::KeyValue;
/// use raft_actors::TypeConfig;
/// use std::collections::BTreeMap;
///
/// /// A user's own service: text commands over a map of strings.
/// #[derive(Default)]
/// struct Notes(BTreeMap<String, String>);
/// impl TypeConfig for Notes {
///     type Command = (String, String);
///     type Output = ();
///     type Query = String;
///     type QueryAnswer = Option<String>;
///     type Snapshot = BTreeMap<String, String>;
/// }
/// impl Apply<Notes> for Notes {
///     fn apply(&mut self, _: LogIndex, (k, v): (String, String)) { self.0.insert(k, v); }
///     fn query(&self, k: String) -> Option<String> { self.0.get(&k).cloned() }
///     fn snapshot(&self) -> BTreeMap<String, String> { self.0.clone() }
///     fn restore(&mut self, s: BTreeMap<String, String>) { self.0 = s; }
/// }
/// impl KeyValue for Notes {
///     fn put(key: u64, value: u64) -> (String, String) { (format!("note-{key}"), value.to_string()) }
///     fn get(key: u64) -> String { format!("note-{key}") }
///     fn value(answer: Option<String>) -> Option<u64> { answer.and_then(|v| v.parse().ok()) }
/// }
/// assert_eq!(Notes::value(Some("7".into())), Some(7));
/// ```
pub trait KeyValue: TypeConfig {
    /// A command that stores `value` under `key`.
    fn put(key: u64, value: u64) -> Self::Command;
    /// A query for the value under `key`.
    fn get(key: u64) -> Self::Query;
    /// The value a [`get`](Self::get) answered; `None`: nothing stored.
    fn value(answer: Self::QueryAnswer) -> Option<u64>;
    /// The value a [`put`](Self::put) replaced, if its output says
    /// (`Some(None)`: there was none); `None` when the service does not
    /// answer that, and the bodies check by reading instead.
    fn replaced(output: &Self::Output) -> Option<Option<u64>> {
        let _ = output;
        None
    }
}

impl KeyValue for Kv {
    fn put(key: u64, value: u64) -> KvCommand {
        KvCommand::Put { key, value }
    }
    fn get(key: u64) -> u64 {
        key
    }
    fn value(answer: Option<u64>) -> Option<u64> {
        answer
    }
    fn replaced(output: &Option<u64>) -> Option<Option<u64>> {
        Some(*output)
    }
}

/// Writes and reads of a [`KeyValue`] service through a node's handle.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::testing::{KeyValueHandle, Kv, TestCluster};
/// use raft_actors::Consistency;
/// use std::time::Duration;
/// let c = TestCluster::memory(3).apply(Kv::default).start().await.expect("starts");
/// let leader = c.wait_for_leader(Duration::from_secs(10)).await.expect("leader");
/// c.raft(leader).put_value(1, 5).await.expect("written");
/// assert_eq!(c.raft(leader).get_value(1, Consistency::Linearizable).await, Ok(Some(5)));
/// c.shutdown().await;
/// # }
/// ```
pub trait KeyValueHandle<C: KeyValue> {
    /// Proposes [`KeyValue::put`].
    fn put_value(
        &self,
        key: u64,
        value: u64,
    ) -> impl Future<Output = Result<Applied<C>, ClientError>>;
    /// Reads [`KeyValue::get`] at `consistency`, as [`KeyValue::value`].
    fn get_value(
        &self,
        key: u64,
        consistency: Consistency,
    ) -> impl Future<Output = Result<Option<u64>, ClientError>>;
}

impl<C: KeyValue> KeyValueHandle<C> for Raft<C> {
    async fn put_value(&self, key: u64, value: u64) -> Result<Applied<C>, ClientError> {
        self.propose(C::put(key, value)).await
    }

    async fn get_value(
        &self,
        key: u64,
        consistency: Consistency,
    ) -> Result<Option<u64>, ClientError> {
        self.read(C::get(key), consistency).await.map(C::value)
    }
}
