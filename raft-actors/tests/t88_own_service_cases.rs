//! The shared cluster-test bodies over a service that is not the kit's
//! `Kv`, as a user runs them over their own: `Accounts` keeps text
//! balances under account names, answers a write with nothing and a read
//! with the text. It implements `testing::KeyValue` (how a `u64` under a
//! key maps onto its commands and queries), and every body of
//! `testing::cases` runs over it, on the memory network: the five the
//! socket crates call by hand and all of `cluster_cases!`.

use std::collections::BTreeMap;

use raft_actors::apply::Apply;
use raft_actors::core::LogIndex;
use raft_actors::node::NodeConfig;
use raft_actors::testing::{cases, KeyValue, TestCluster, TypedBuilder};
use raft_actors::TypeConfig;
use serde::{Deserialize, Serialize};

/// A write: set an account's balance, in text.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SetBalance {
    account: String,
    balance: String,
}

/// Balances by account name.
#[derive(Default)]
struct Accounts(BTreeMap<String, String>);

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
        let text = answer?;
        let amount = text.strip_suffix(" EUR").expect("a balance in EUR");
        Some(amount.parse().expect("a whole amount"))
    }
}

async fn memory(seed: u64, cfg: NodeConfig) -> TypedBuilder<Accounts> {
    TestCluster::memory(3)
        .seed(seed)
        .config(cfg)
        .apply(Accounts::default)
}

raft_actors::cluster_cases!(memory);

#[actix_rt::test]
async fn elect_one_leader() {
    cases::elect_one_leader(memory(1, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn leader_crash_elects_a_new_leader() {
    cases::leader_crash_elects_a_new_leader(memory(2, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn leader_proposals_apply_everywhere() {
    cases::leader_proposals_apply_everywhere(memory(10, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn follower_proposal_is_forwarded() {
    cases::follower_proposal_is_forwarded(memory(11, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn leader_cut_one_way_is_replaced() {
    cases::leader_cut_one_way_is_replaced(memory(3, NodeConfig::default()).await).await;
}

#[actix_rt::test]
async fn lagging_follower_catches_up_by_snapshot() {
    cases::lagging_follower_catches_up_by_snapshot(memory(30, cases::snapshot_config()).await)
        .await;
}
