//! [`Accounts`]: a service shaped like a user's own rather than like the
//! kit's [`Kv`](super::Kv): text balances under account names, a write
//! answered with nothing, a read with the text. It is a
//! [`KeyValue`] (a `u64` under key `k` is the balance `"<v> EUR"` of
//! `account-<k>`), so the kit's shared cluster-test bodies run over it,
//! which shows they are generic over the service (the project's own tests
//! do, on every transport).
//!
//! It must stay a service the bodies know nothing of: no `Kv` behind it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::apply::Apply;
use crate::core::LogIndex;
use crate::testing::KeyValue;
use crate::type_config::TypeConfig;

/// A write: set an account's balance, in text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetBalance {
    /// The account.
    pub account: String,
    /// Its new balance, in text.
    pub balance: String,
}

/// Balances by account name.
///
/// ```
/// use raft_actors::apply::Apply;
/// use raft_actors::testing::{Accounts, KeyValue};
/// let mut a = Accounts::default();
/// a.apply(1, Accounts::put(7, 30));
/// assert_eq!(a.query("account-7".into()), Some("30 EUR".into()));
/// assert_eq!(Accounts::value(a.query(Accounts::get(7))), Some(30));
/// ```
#[derive(Debug, Default)]
pub struct Accounts(BTreeMap<String, String>);

impl TypeConfig for Accounts {
    type Command = SetBalance;
    type Output = ();
    type Query = String;
    type QueryAnswer = Option<String>;
    type Snapshot = BTreeMap<String, String>;
}

impl Apply<Accounts> for Accounts {
    fn apply(&mut self, _: LogIndex, set: SetBalance) {
        self.0.insert(set.account, set.balance);
    }
    fn query(&self, account: String) -> Option<String> {
        self.0.get(&account).cloned()
    }
    fn snapshot(&self) -> BTreeMap<String, String> {
        self.0.clone()
    }
    fn restore(&mut self, s: BTreeMap<String, String>) {
        self.0 = s;
    }
}

impl KeyValue for Accounts {
    fn put(key: u64, value: u64) -> SetBalance {
        SetBalance {
            account: format!("account-{key}"),
            balance: format!("{value} EUR"),
        }
    }
    fn get(key: u64) -> String {
        format!("account-{key}")
    }
    fn value(answer: Option<String>) -> Option<u64> {
        // Only `put` writes here, so every balance has this form; one that
        // does not reads as nothing, and the bodies' checks then fail.
        let text = answer?;
        text.strip_suffix(" EUR")?.parse().ok()
    }
}
