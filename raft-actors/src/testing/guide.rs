//! # Testing your service
//!
//! Users' bugs live in their `Apply` and in how their code reads and
//! writes through the handle, not in the Raft core, which the project's own
//! simulation checks. This chapter runs a user's state machine as a real
//! in-process cluster, records what clients saw, checks it against a
//! sequential model of the service, and plants two bugs to show each being
//! found: a state machine that is not deterministic, and a read that skips
//! the log.
//!
//! ## Setting up
//!
//! In your crate's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! raft-actors = { version = "0.1", features = ["testing"] }
//! actix-rt = "2"
//! ```
//!
//! The nodes are actors, so a test is an `async fn` under
//! `#[actix_rt::test]`. The examples below run as doctests, so they start
//! with `#[actix_rt::main]` instead; in a test file write
//! `#[actix_rt::test] async fn name() { ... }` around the same body.
//!
//! ## A history checked against your model
//!
//! Describe the service sequentially (a [`Model`](super::Model): an
//! initial state and one step), record every call with
//! [`Calls`](super::Calls) (ok, failed or unknown, as the error says:
//! [`ClientError::outcome_unknown`](crate::ClientError::outcome_unknown)),
//! and ask [`check_model`](super::check_model). The kit's
//! [`Counter`](super::Counter) state machine adds its commands; the shipped
//! [`CounterModel`](super::CounterModel) describes it:
//!
//! ```
//! use std::time::Duration;
//! use raft_actors::testing::{check_model, Calls, Counter, CounterModel, CounterOp, TestCluster, Verdict};
//! use raft_actors::Consistency;
//!
//! # #[actix_rt::main] async fn main() {
//! let cluster = TestCluster::memory(3).apply(Counter::default).start().await.expect("starts");
//! let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.expect("a leader");
//! let calls = Calls::<CounterModel>::new();
//! for add in 1..=3u64 {
//!     let id = calls.invoke(1, CounterOp::Add(add as i64));
//!     match cluster.raft(leader).propose(add).await {
//!         Ok(a) => calls.ok(id, a.output as i64),
//!         Err(e) if e.outcome_unknown() => calls.unknown(id),
//!         Err(_) => calls.failed(id),
//!     }
//! }
//! let id = calls.invoke(2, CounterOp::Get);
//! match cluster.raft(leader).read((), Consistency::Linearizable).await {
//!     Ok(v) => calls.ok(id, v as i64),
//!     Err(_) => calls.failed(id),
//! }
//! assert_eq!(check_model(&CounterModel, &calls.calls()), Verdict::Linearizable);
//! cluster.shutdown().await;
//! # }
//! ```
//!
//! ## Planted bug 1: a state machine that is not deterministic
//!
//! Every replica applies the same commands in the same order and must reach
//! the same state. This one mixes a random number into its state (as a
//! clock read or `HashMap` iteration order would); answers may still look
//! fine, but the replicas now differ. [`Fingerprints`](super::Fingerprints)
//! hashes each replica's state after every entry and names the first entry
//! where two replicas disagree:
//!
//! ```
//! use std::collections::hash_map::RandomState;
//! use std::hash::{BuildHasher, Hasher};
//! use std::time::Duration;
//! use raft_actors::apply::Apply;
//! use raft_actors::core::LogIndex;
//! use raft_actors::testing::{Counter, Fingerprints, TestCluster};
//!
//! /// Sums its commands, plus a salt of its own: the bug.
//! struct Salted(u64);
//! impl Apply<Counter> for Salted {
//!     fn apply(&mut self, _: LogIndex, add: u64) -> u64 {
//!         let salt = RandomState::new().build_hasher().finish() % 2;
//!         self.0 += add + salt;
//!         add // answers look plausible
//!     }
//!     fn query(&self, _: ()) -> u64 { self.0 }
//!     fn snapshot(&self) -> u64 { self.0 }
//!     fn restore(&mut self, s: u64) { self.0 = s }
//! }
//!
//! # #[actix_rt::main] async fn main() {
//! let book = Fingerprints::every(1);
//! let cluster = TestCluster::memory(3)
//!     .apply(|| Salted(0))
//!     .fingerprints(&book)
//!     .start()
//!     .await
//!     .expect("starts");
//! let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.expect("a leader");
//! let mut last = 0;
//! for _ in 0..64 {
//!     last = cluster.raft(leader).propose(1).await.expect("a write").index;
//! }
//! cluster.wait_all_applied(last, Duration::from_secs(10)).await.expect("applied everywhere");
//! cluster.shutdown().await;
//! let found = book.first_divergence().expect("the replicas diverged");
//! println!("replicas differ from entry {}: {:?}", found.index, found.hashes);
//! # }
//! ```
//!
//! (Each of 64 entries adds 0 or 1 at random on each replica: the chance
//! that three replicas agree on all of them is 4^-64.)
//!
//! ## Planted bug 2: a read that skips the log
//!
//! A stale read answers from the node's own state without asking anyone:
//! fine for a dashboard, wrong for a caller that must see its own write. A
//! route that reads at [`Consistency::Stale`](crate::Consistency::Stale)
//! on a follower cut off from the leader misses a write that was already
//! acknowledged, and the checker rejects the history, naming the read:
//!
//! ```
//! use std::time::Duration;
//! use raft_actors::testing::{check_model, Calls, Counter, CounterModel, CounterOp, TestCluster, Verdict};
//! use raft_actors::Consistency;
//!
//! # #[actix_rt::main] async fn main() {
//! let cluster = TestCluster::memory(3).apply(Counter::default).start().await.expect("starts");
//! let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.expect("a leader");
//! let follower = cluster.ids().into_iter().find(|id| *id != leader).expect("a follower");
//! cluster.faults().isolate(follower);
//!
//! let calls = Calls::<CounterModel>::new();
//! let add = calls.invoke(1, CounterOp::Add(5));
//! let out = cluster.raft(leader).propose(5).await.expect("committed by the other two");
//! calls.ok(add, out.output as i64);
//!
//! // The bug: the read skips the log.
//! let get = calls.invoke(2, CounterOp::Get);
//! let seen = cluster.raft(follower).read((), Consistency::Stale).await.expect("a local answer");
//! calls.ok(get, seen as i64);
//!
//! match check_model(&CounterModel, &calls.calls()) {
//!     Verdict::NotLinearizable(window) => assert_eq!(window.failing, 1, "the stale read"),
//!     v => panic!("the stale read was accepted: {v:?}"),
//! }
//! cluster.shutdown().await;
//! # }
//! ```
//!
//! With `Consistency::Linearizable` the same read waits for the follower
//! to hear from the leader (or fails with a timeout, recorded as unknown),
//! and the history is accepted.
//!
//! ## Many seeds under faults, in one call
//!
//! [`check_workload`](super::workload::check_workload) does all of the
//! above for many seeds: the user's [`Workload`](super::workload::Workload)
//! draws operations and maps them to proposals and reads, and each seed's
//! cluster runs them from several clients while partitions, loss,
//! duplication, reordering, crashes, restarts and state machine panics come
//! and go, a voter is removed and added back, and snapshots compact the log; every history is checked against
//! the model and the replicas' states against each other, and the first
//! failing seed is returned. Its module docs have a runnable example.
//!
//! ## One seed, one schedule: replaying a failure exactly
//!
//! Under [`check_workload`](super::workload::check_workload) the nodes are
//! real actors on real threads: a seed fixes the operations, the faults
//! and the election timers, not when each actor runs. Its twin
//! [`simulate_workload`](super::deterministic::simulate_workload) runs
//! every node, the memory network, the memory storage and the state
//! machines on one thread in virtual time, so a seed fixes the whole
//! schedule: the same seed gives the same history, byte for byte, and a
//! failing seed comes with the command that replays it with a trace of
//! every event in virtual time. It is a plain `#[test]`, not an async one.
//! Here the read that skips the log again (a stale read through
//! [`Request::ReadWith`](super::workload::Request::ReadWith)), found, then
//! replayed with its trace:
//!
//! ```
//! use raft_actors::testing::deterministic::{simulate_seed, simulate_traced, simulate_workload};
//! use raft_actors::testing::workload::{Answer, ChaCha8Rng, Request, Rng, Run, Workload};
//! use raft_actors::testing::{Counter, CounterModel, CounterOp};
//! use raft_actors::Consistency;
//! # if std::env::var("RAFT_ACTORS_SEED").is_ok() { return; } // a replay of another test
//!
//! /// Adds and reads; `stale` is the bug: reads that skip the log.
//! struct Adds { stale: bool }
//! impl Workload for Adds {
//!     type Config = Counter;
//!     type Model = CounterModel;
//!     fn model(&self) -> CounterModel { CounterModel }
//!     fn op(&self, rng: &mut ChaCha8Rng) -> CounterOp {
//!         if rng.gen_bool(0.5) { CounterOp::Add(rng.gen_range(1..10)) } else { CounterOp::Get }
//!     }
//!     fn request(&self, op: &CounterOp) -> Request<Counter> {
//!         match op {
//!             CounterOp::Add(d) => Request::Propose(*d as u64),
//!             CounterOp::Get if self.stale => Request::ReadWith((), Consistency::Stale),
//!             CounterOp::Get => Request::Read(()),
//!         }
//!     }
//!     fn output(&self, _: &CounterOp, answer: Answer<Counter>) -> i64 {
//!         match answer { Answer::Applied(v) | Answer::Read(v) => v as i64 }
//!     }
//! }
//!
//! let run = Run { seeds: vec![1, 2, 3], clients: 3, ops: 10 };
//! let failure = simulate_workload(&Adds { stale: true }, Counter::default, &run)
//!     .expect_err("the stale read is found");
//! assert!(failure.why.starts_with("not linearizable"), "{failure}");
//! // What the test prints, after the checker's window:
//! // "replay it with a trace: RAFT_ACTORS_SEED=<seed> RAFT_ACTORS_TRACE=1 cargo test -p <crate> --test <file> -- --exact <test> --nocapture".
//! let command = format!("RAFT_ACTORS_SEED={} RAFT_ACTORS_TRACE=1 cargo test", failure.seed);
//! assert!(failure.replay.as_deref().is_some_and(|r| r.starts_with(&command)));
//!
//! // The replay: the same seed fails the same way, and the trace shows
//! // every fault and node event before it, in virtual time.
//! let (again, trace) = simulate_traced(&Adds { stale: true }, Counter::default, &run, failure.seed);
//! assert_eq!(again.expect_err("fails again").why, failure.why);
//! assert!(trace.contains(&format!("--- workload starts seed={}", failure.seed)));
//!
//! // Reads through the log: the same seed is clean, and runs the same way twice.
//! let once = simulate_seed(&Adds { stale: false }, Counter::default, &run, 1).expect("clean");
//! let twice = simulate_seed(&Adds { stale: false }, Counter::default, &run, 1).expect("clean");
//! assert_eq!(once.history, twice.history);
//! ```
//!
//! A service built on the service crate runs in both as its node runs its
//! state machine (`raft_actors_service::machine::Machine<S>`, with the
//! session table and the address book; its `tests/workload.rs` does it for
//! the tutorial's service), not through its HTTP routes.
//!
//! ## The project's own cluster tests, over your service
//!
//! The bodies of [`cases`](super::cases) (elections, replication, reads,
//! restarts, snapshots, membership, faults, failing disks, linearizable
//! histories) are generic over any [`KeyValue`](super::KeyValue): say how
//! a `u64` stored under a key maps onto your commands and queries, and
//! [`cluster_cases!`](crate::cluster_cases) declares every one of them as
//! a test of your service, over the memory network or, with
//! [`TypedBuilder::network`](super::TypedBuilder::network), over a real
//! transport: `raft_actors_transport_tcp::testing::TcpNetwork` and
//! `raft_actors_transport_http::testing::HttpNetwork` (their features
//! `testing`), with a [`ProxyMesh`](super::ProxyMesh) in front for the
//! bodies that inject network faults. A service built on the service crate implements
//! `raft_actors_service::testing::KeyValueService` (its feature `testing`)
//! instead, and the bodies run over its `Machine<S>`.
