//! Divergence caught: every replica's state is hashed after each entry it
//! applies (`Fingerprints`), and the first index where two hashes differ
//! is reported. A deterministic state machine never diverges, also across
//! a crash and restart; one that mixes something of its own into the
//! state (a number each replica draws for itself: the stand-in for a clock
//! read or a random number) is caught at the entry where it does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raft_actors::apply::Apply;
use raft_actors::core::LogIndex;
use raft_actors::testing::{Counter, Fingerprints, TestCluster};

const T: Duration = Duration::from_secs(10);

/// Sums its commands, except that at the first command from entry `at` on
/// it adds a number of its own, different on every replica.
struct Drifting {
    sum: u64,
    own: u64,
    at: LogIndex,
    drifted: bool,
}

impl Apply<Counter> for Drifting {
    fn apply(&mut self, index: LogIndex, add: u64) -> u64 {
        self.sum += add;
        if index >= self.at && !self.drifted {
            self.sum += self.own;
            self.drifted = true;
        }
        self.sum
    }
    fn query(&self, _: ()) -> u64 {
        self.sum
    }
    fn snapshot(&self) -> u64 {
        self.sum
    }
    fn restore(&mut self, s: u64) {
        self.sum = s;
    }
}

async fn write(cluster: &TestCluster<Counter>, n: u64) -> LogIndex {
    let leader = cluster.wait_for_leader(T).await.expect("a leader");
    let mut last = 0;
    for _ in 0..n {
        last = cluster
            .raft(leader)
            .propose(1)
            .await
            .expect("a write")
            .index;
    }
    cluster
        .wait_all_applied(last, T)
        .await
        .expect("applied everywhere");
    last
}

#[actix_rt::test]
async fn a_deterministic_state_machine_never_diverges_across_a_restart() {
    let book = Fingerprints::every(1);
    let cluster = TestCluster::memory(3)
        .seed(84)
        .apply(Counter::default)
        .fingerprints(&book)
        .start()
        .await
        .expect("starts");
    write(&cluster, 20).await;
    let leader = cluster.wait_for_leader(T).await.expect("a leader");
    let follower = cluster
        .ids()
        .into_iter()
        .find(|i| *i != leader)
        .expect("a follower");
    cluster.crash(follower).await;
    write(&cluster, 10).await;
    cluster.restart(follower).await.expect("restarts");
    write(&cluster, 10).await;
    cluster.shutdown().await;
    assert_eq!(book.first_divergence(), None);
    assert!(
        book.compared() >= 40,
        "compared {} indexes",
        book.compared()
    );
}

#[actix_rt::test]
async fn a_replica_that_mixes_in_its_own_number_is_caught_at_that_entry() {
    let book = Fingerprints::every(1);
    let draws = Arc::new(AtomicU64::new(1));
    let at = 12;
    let cluster = TestCluster::memory(3)
        .seed(85)
        .apply(move || Drifting {
            sum: 0,
            own: draws.fetch_add(1, Ordering::Relaxed),
            at,
            drifted: false,
        })
        .fingerprints(&book)
        .start()
        .await
        .expect("starts");
    write(&cluster, 20).await;
    cluster.shutdown().await;
    let found = book.first_divergence().expect("the divergence is found");
    // At the first command from `at` on (entry `at` itself unless a
    // leader's no-op took that index).
    assert!((at..at + 4).contains(&found.index), "{found:?}");
    assert!(found.hashes.len() >= 2, "{found:?}");
    // Everything before it agreed.
    assert!(book.compared() >= 20);
}
