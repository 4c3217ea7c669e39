//! A node whose storage fails for good stops its service: `stopped()`
//! returns the reason (the binaries exit 1 with it), so that a restart
//! reopens the storage from what is durable rather than the process
//! carrying on, or answering as if nothing happened, after a failed disk.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::web;
use raft_actors::core::Membership;
use raft_actors::storage::MemoryStorage;
use raft_actors::testing::{FaultPlan, FaultyStorage, WriteFault};
use raft_actors_service::machine::Envelope;
use raft_actors_service::{LogIndex, Service, ServiceBuilder};

#[derive(Default)]
struct Sum(i64);

impl Service for Sum {
    const NAME: &'static str = "test-sum";
    type Command = i64;
    type Output = i64;
    type Query = ();
    type Answer = i64;
    type Snapshot = i64;
    fn apply(&mut self, _: LogIndex, delta: i64) -> i64 {
        self.0 += delta;
        self.0
    }
    fn query(&self, _: ()) -> i64 {
        self.0
    }
    fn snapshot(&self) -> i64 {
        self.0
    }
    fn restore(&mut self, v: i64) {
        self.0 = v;
    }
    fn routes(_: &mut web::ServiceConfig) {}
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")
}

#[actix_rt::test]
async fn a_node_whose_storage_fails_for_good_stops_its_service_with_the_reason() {
    let disk = FaultyStorage::new(
        MemoryStorage::new(Membership::voters([1])),
        FaultPlan::none(),
    );
    let faults = disk.handle();
    let running = ServiceBuilder::<Sum>::new(1)
        .raft_listener(listener())
        .http_listener(listener())
        .custom_storage(Box::new(disk))
        .configure(|cfg| {
            cfg.tick = Duration::from_millis(20);
            cfg.max_restarts = 2;
        })
        .http_workers(1)
        .start()
        .await
        .expect("the service starts");
    let raft = running.node().raft().clone();
    let mut metrics = raft.metrics();
    tokio::time::timeout(
        Duration::from_secs(30),
        metrics.wait_for(|m| m.leader == Some(1)),
    )
    .await
    .expect("it leads within 30 s")
    .expect("the node runs");
    // Running, its disk fails an fsync, and from then on every load is
    // corrupt: no incarnation can start again.
    faults.corrupt_every_load(true);
    faults.fail_next_write(WriteFault::FsyncFails { kept: false });
    let writer = raft.clone();
    let proposal = actix_rt::spawn(async move {
        let command = Envelope::Command {
            key: None,
            command: 5,
        };
        writer.propose(command).await.map(|_| ())
    });
    let ended = tokio::time::timeout(Duration::from_secs(30), running.stopped())
        .await
        .expect("the service stops within 30 s");
    let err = ended.expect_err("a failed node is an error, not a clean stop");
    let line = err.to_string();
    assert!(line.contains("failed for good"), "{line}");
    assert!(
        line.contains("corrupt"),
        "the reason names the corruption: {line}"
    );
    assert!(
        proposal.await.expect("the proposal task ends").is_err(),
        "the write whose fsync failed is never acknowledged"
    );
    assert_eq!(faults.stats().refused, 0, "no write was retried");
}

#[actix_rt::test]
async fn a_healthy_node_keeps_serving() {
    let disk = FaultyStorage::new(
        MemoryStorage::new(Membership::voters([1])),
        FaultPlan::none(),
    );
    let faults = disk.handle();
    let running = ServiceBuilder::<Sum>::new(1)
        .raft_listener(listener())
        .http_listener(listener())
        .custom_storage(Box::new(disk))
        .configure(|cfg| cfg.tick = Duration::from_millis(20))
        .http_workers(1)
        .start()
        .await
        .expect("the service starts");
    let mut metrics = running.node().raft().metrics();
    tokio::time::timeout(
        Duration::from_secs(30),
        metrics.wait_for(|m| m.leader == Some(1) && m.applied >= 1),
    )
    .await
    .expect("it leads within 30 s")
    .expect("the node runs");
    assert!(metrics.borrow().failed.is_none());
    assert_eq!(faults.stats().refused, 0);
    running.shutdown().await;
}
