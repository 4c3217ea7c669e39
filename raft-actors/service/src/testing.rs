//! The bridge from a service to raft-actors' test kit (feature `testing`):
//! a [`Service`] that can store a `u64` under a key implements
//! [`KeyValueService`], and the state machine its node runs,
//! [`Machine<S>`](crate::machine::Machine), is then a
//! [`KeyValue`](raft_actors::testing::KeyValue), so the kit's shared
//! cluster-test bodies (`raft_actors::testing::cases`,
//! `raft_actors::cluster_cases!`) run over the service as its node runs it:
//! with the session table and the address book around it.
//!
//! (The kit's trait cannot be implemented for `Machine<S>` in the service's
//! own crate: both are foreign there. This one can.) It must never be
//! compiled into a production build: it exists for tests.

use raft_actors::testing::KeyValue;

use crate::machine::{Envelope, Machine};
use crate::Service;

/// A service whose state can store a `u64` value under a `u64` key and
/// read it back: what the shared cluster-test bodies write and read.
///
/// ```
/// use raft_actors_service::testing::KeyValueService;
/// use raft_actors_service::{LogIndex, Service};
/// use std::collections::BTreeMap;
///
/// #[derive(Default)]
/// struct Prices(BTreeMap<String, u64>);
/// impl Service for Prices {
///     const NAME: &'static str = "prices";
///     type Command = (String, u64);
///     type Output = ();
///     type Query = String;
///     type Answer = Option<u64>;
///     type Snapshot = BTreeMap<String, u64>;
///     fn apply(&mut self, _: LogIndex, (item, price): (String, u64)) { self.0.insert(item, price); }
///     fn query(&self, item: String) -> Option<u64> { self.0.get(&item).copied() }
///     fn snapshot(&self) -> Self::Snapshot { self.0.clone() }
///     fn restore(&mut self, s: Self::Snapshot) { self.0 = s; }
///     fn routes(_: &mut actix_web::web::ServiceConfig) {}
/// }
/// impl KeyValueService for Prices {
///     fn put(key: u64, value: u64) -> (String, u64) { (format!("item-{key}"), value) }
///     fn get(key: u64) -> String { format!("item-{key}") }
///     fn value(answer: Option<u64>) -> Option<u64> { answer }
/// }
/// assert_eq!(Prices::put(3, 9), ("item-3".to_string(), 9));
/// ```
pub trait KeyValueService: Service {
    /// A command that stores `value` under `key`.
    fn put(key: u64, value: u64) -> Self::Command;
    /// A query for the value under `key`.
    fn get(key: u64) -> Self::Query;
    /// The value a [`get`](Self::get) answered; `None`: nothing stored.
    fn value(answer: Self::Answer) -> Option<u64>;
}

impl<S: KeyValueService> KeyValue for Machine<S> {
    /// The service's command, without an idempotency key (as a client's
    /// plain write).
    fn put(key: u64, value: u64) -> Envelope<S::Command> {
        Envelope::Command {
            key: None,
            command: S::put(key, value),
        }
    }
    fn get(key: u64) -> S::Query {
        S::get(key)
    }
    fn value(answer: S::Answer) -> Option<u64> {
        S::value(answer)
    }
}
