//! The test kit's shared cluster-test bodies over a service built on this
//! crate, run as its node runs it (`Machine<S>`: the session table and the
//! address book around the service) through `testing::KeyValueService`:
//! `Prices` keeps a price per item, and every body of
//! `raft_actors::testing::cases` runs over it on the memory network.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft_actors::node::NodeConfig;
use raft_actors::testing::{cases, TestCluster, TypedBuilder};
use raft_actors_service::directory::Directory;
use raft_actors_service::machine::Machine;
use raft_actors_service::sessions::SessionBounds;
use raft_actors_service::testing::KeyValueService;
use raft_actors_service::{LogIndex, Service};

/// Prices by item name.
#[derive(Default)]
struct Prices(BTreeMap<String, u64>);

impl Service for Prices {
    const NAME: &'static str = "prices";
    type Command = (String, u64);
    type Output = ();
    type Query = String;
    type Answer = Option<u64>;
    type Snapshot = BTreeMap<String, u64>;

    fn apply(&mut self, _: LogIndex, (item, price): (String, u64)) {
        self.0.insert(item, price);
    }
    fn query(&self, item: String) -> Option<u64> {
        self.0.get(&item).copied()
    }
    fn snapshot(&self) -> Self::Snapshot {
        self.0.clone()
    }
    fn restore(&mut self, s: Self::Snapshot) {
        self.0 = s;
    }
    fn routes(_: &mut actix_web::web::ServiceConfig) {}
}

impl KeyValueService for Prices {
    fn put(key: u64, value: u64) -> (String, u64) {
        (format!("item-{key}"), value)
    }
    fn get(key: u64) -> String {
        format!("item-{key}")
    }
    fn value(answer: Option<u64>) -> Option<u64> {
        answer
    }
}

fn machine() -> Machine<Prices> {
    Machine::new(
        Directory::new(Arc::new(|_, _| {})),
        SessionBounds::default(),
    )
}

async fn memory(seed: u64, cfg: NodeConfig) -> TypedBuilder<Machine<Prices>> {
    TestCluster::memory(3).seed(seed).config(cfg).apply(machine)
}

raft_actors::cluster_cases!(memory);

#[actix_rt::test]
async fn elect_one_leader() {
    cases::elect_one_leader(memory(1, NodeConfig::default()).await).await;
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
async fn lagging_follower_catches_up_by_snapshot() {
    cases::lagging_follower_catches_up_by_snapshot(memory(30, cases::snapshot_config()).await)
        .await;
}
