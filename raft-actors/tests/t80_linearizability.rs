//! Hundreds of concurrent client operations under random faults (loss,
//! duplication, reordering, partitions, crashes, caught panics), over many
//! seeds: the recorded history must be linearizable. The body lives in
//! `raft_actors::testing::cases`, shared with the socket transports (which
//! run two seeds by default).
//!
//! `LIN_SEEDS=100 cargo test -p raft-actors --test t80_linearizability`
//! runs more seeds; `LIN_SEED=7` replays one.

mod common;

use common::memory_with;
use raft_actors::testing::{cases, check_linearizable, History, OpKind};

#[actix_rt::test]
async fn histories_under_random_faults_are_linearizable() {
    for seed in cases::lin_seeds(12) {
        let b = memory_with(seed, cases::linearizability_config());
        cases::history_under_random_faults_is_linearizable(b, seed).await;
    }
}

#[test]
fn checker_rejects_a_known_non_linearizable_history() {
    // The negative control: a write acknowledged, then a read that began
    // after it and missed it, then a read that saw it.
    let h = History::new();
    let w = h.invoke(1, 0, OpKind::Write(1));
    h.ok(w, None);
    let r = h.invoke(2, 0, OpKind::Read);
    h.ok(r, None);
    assert!(check_linearizable(&h.ops()).is_err(), "stale read accepted");
    // And the same history without the stale read passes.
    let h = History::new();
    let w = h.invoke(1, 0, OpKind::Write(1));
    h.ok(w, None);
    let r = h.invoke(2, 0, OpKind::Read);
    h.ok(r, Some(1));
    assert!(check_linearizable(&h.ops()).is_ok());
}
