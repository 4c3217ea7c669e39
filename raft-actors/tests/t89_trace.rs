//! One seed, one trace (`testing::deterministic::simulate_traced`): the
//! trace of a seed's run, every event in virtual time, is the same byte for
//! byte each time, and tracing changes nothing in the run.
//!
//! In a binary of its own: a trace is collected by a subscriber set for the
//! run's thread, and tracing's per-callsite interest is shared by the
//! process, so other tests starting and stopping subscribers at the same
//! time could hide events from it.

mod common;

use common::registers::{one_seed as run, Registers};
use raft_actors::testing::deterministic::{simulate_seed, simulate_traced};
use raft_actors::testing::Kv;

#[test]
fn one_seed_replays_one_trace() {
    let (first, trace) = simulate_traced(&Registers, Kv::default, &run(5), 5);
    let (again, retrace) = simulate_traced(&Registers, Kv::default, &run(5), 5);
    let first = first.expect("seed 5 is clean");
    assert_eq!(first, again.expect("again"));
    let untraced = simulate_seed(&Registers, Kv::default, &run(5), 5).expect("seed 5 is clean");
    assert_eq!(first, untraced, "tracing changed the run");
    // The kit's own fault log and the nodes' events, stamped in virtual time.
    assert!(trace.contains("--- workload starts"), "{trace}");
    assert!(trace.contains("--- remove a voter"), "{trace}");
    assert!(trace.contains("crash injected"), "{trace}");
    assert!(
        trace.contains("stopped on request"),
        "debug events too: {trace}"
    );
    assert!(
        trace
            .lines()
            .all(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())),
        "every line starts with its virtual time"
    );
    if trace != retrace {
        let (i, (a, b)) = trace
            .lines()
            .zip(retrace.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .expect("one trace is a prefix of the other");
        panic!("the traces differ from line {i}:\n{a}\n{b}");
    }
}
