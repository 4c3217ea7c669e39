//! [`Kv`]: a map of `u64` registers, the state machine the kit's
//! linearizability tests drive (each key is one register the checker
//! models).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::apply::Apply;
use crate::core::LogIndex;
use crate::type_config::TypeConfig;

/// A write to the map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets `key` to `value`; outputs the previous value.
    Put {
        /// The register.
        key: u64,
        /// Its new value.
        value: u64,
    },
}

/// A map of `u64` registers, and its type config.
///
/// ```
/// use raft_actors::apply::Apply;
/// use raft_actors::testing::{Kv, KvCommand};
/// let mut kv = Kv::default();
/// assert_eq!(kv.apply(1, KvCommand::Put { key: 1, value: 7 }), None);
/// assert_eq!(kv.query(1), Some(7));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Kv {
    map: BTreeMap<u64, u64>,
}

impl TypeConfig for Kv {
    type Command = KvCommand;
    type Output = Option<u64>;
    type Query = u64;
    type QueryAnswer = Option<u64>;
    type Snapshot = BTreeMap<u64, u64>;
}

impl Apply<Kv> for Kv {
    fn apply(&mut self, _: LogIndex, command: KvCommand) -> Option<u64> {
        match command {
            KvCommand::Put { key, value } => self.map.insert(key, value),
        }
    }

    fn query(&self, key: u64) -> Option<u64> {
        self.map.get(&key).copied()
    }

    fn snapshot(&self) -> BTreeMap<u64, u64> {
        self.map.clone()
    }

    fn restore(&mut self, snapshot: BTreeMap<u64, u64>) {
        self.map = snapshot;
    }
}
