//! A service built on this crate under the kit's one call
//! (`raft_actors::testing::workload::check_workload`): the tutorial's
//! tally of votes runs as its node runs it (its `Machine`, with the
//! session table and the address book around it) on a 3-node cluster under
//! seeded faults, and every history is checked against a sequential model
//! of the tally; the same service with a bug in its `apply` is refused.
//! Both again in the kit's deterministic simulation (one thread, virtual
//! time), where one seed replays one history byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft_actors::testing::deterministic::{simulate_seed, simulate_workload};
use raft_actors::testing::workload::{
    check_workload, Answer, ChaCha8Rng, Request, Rng, Run, Workload,
};
use raft_actors::testing::Model;
use raft_actors_service::directory::Directory;
use raft_actors_service::machine::{Envelope, Machine, Outcome};
use raft_actors_service::sessions::SessionBounds;
use raft_actors_service::{LogIndex, Service};

#[allow(dead_code)]
mod tutorial {
    include!("../examples/tutorial.rs");
}
use tutorial::Tally;

/// The tally, sequentially: a vote answers the name's votes after it; a
/// count answers every name's.
#[derive(Clone, Copy)]
struct TallyModel;

#[derive(Clone, Debug, PartialEq, Eq)]
enum TallyOp {
    Vote(String),
    Count,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TallyOut {
    Votes(u64),
    All(BTreeMap<String, u64>),
}

impl Model for TallyModel {
    type State = BTreeMap<String, u64>;
    type Op = TallyOp;
    type Output = TallyOut;

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(&self, s: &Self::State, op: &TallyOp) -> (Self::State, TallyOut) {
        let mut next = s.clone();
        match op {
            TallyOp::Vote(name) => {
                let n = next.entry(name.clone()).or_default();
                *n += 1;
                let votes = *n;
                (next, TallyOut::Votes(votes))
            }
            TallyOp::Count => (next.clone(), TallyOut::All(next)),
        }
    }
}

/// Votes for two names, and counts, over service `S`'s machine.
struct Votes<S: Service>(std::marker::PhantomData<fn() -> S>);

impl<S> Workload for Votes<S>
where
    S: Service<Command = String, Output = u64, Query = (), Answer = BTreeMap<String, u64>>,
{
    type Config = Machine<S>;
    type Model = TallyModel;

    fn model(&self) -> TallyModel {
        TallyModel
    }

    fn op(&self, rng: &mut ChaCha8Rng) -> TallyOp {
        if rng.gen_bool(0.7) {
            TallyOp::Vote(["alice", "bob"][rng.gen_range(0..2)].to_string())
        } else {
            TallyOp::Count
        }
    }

    fn request(&self, op: &TallyOp) -> Request<Machine<S>> {
        match op {
            TallyOp::Vote(name) => Request::Propose(Envelope::Command {
                key: None,
                command: name.clone(),
            }),
            TallyOp::Count => Request::Read(()),
        }
    }

    fn output(&self, _: &TallyOp, answer: Answer<Machine<S>>) -> TallyOut {
        match answer {
            Answer::Applied(Outcome::Done { output, .. }) => TallyOut::Votes(output),
            // Without idempotency keys nothing else is answered; a value
            // no order gives makes the check fail, as it should.
            Answer::Applied(_) => TallyOut::Votes(u64::MAX),
            Answer::Read(all) => TallyOut::All(all),
        }
    }
}

fn machine<S: Service>() -> Machine<S> {
    Machine::new(
        Directory::new(Arc::new(|_, _| {})),
        SessionBounds::default(),
    )
}

#[actix_rt::test]
async fn the_tutorials_service_under_faults_is_linearizable() {
    let run = Run {
        seeds: vec![1, 2],
        clients: 4,
        ops: 20,
    };
    let workload = Votes::<Tally>(std::marker::PhantomData);
    let report = check_workload(&workload, machine::<Tally>, &run)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.answered > 40, "only {report:?}");
}

/// The tally with a bug: every other vote for `bob` is lost.
#[derive(Default)]
struct Lossy(Tally);

impl Service for Lossy {
    const NAME: &'static str = "lossy-tally";
    type Command = String;
    type Output = u64;
    type Query = ();
    type Answer = BTreeMap<String, u64>;
    type Snapshot = (BTreeMap<String, u64>, bool);

    fn apply(&mut self, index: LogIndex, name: String) -> u64 {
        let votes = self.0.apply(index, name.clone());
        if name == "bob" && votes % 2 == 0 {
            // The bug: the vote is taken back, but answered as counted.
            let mut all = self.0.snapshot();
            all.insert(name, votes - 1);
            self.0.restore(all);
        }
        votes
    }
    fn query(&self, q: ()) -> Self::Answer {
        self.0.query(q)
    }
    fn snapshot(&self) -> Self::Snapshot {
        (self.0.snapshot(), false)
    }
    fn restore(&mut self, (all, _): Self::Snapshot) {
        self.0.restore(all);
    }
    fn routes(_: &mut actix_web::web::ServiceConfig) {}
}

#[actix_rt::test]
async fn a_service_that_loses_votes_is_refused_with_its_seed() {
    let run = Run {
        seeds: vec![3],
        clients: 4,
        ops: 20,
    };
    let workload = Votes::<Lossy>(std::marker::PhantomData);
    let failure = check_workload(&workload, machine::<Lossy>, &run)
        .await
        .expect_err("lost votes were accepted");
    assert_eq!(failure.seed, 3);
    assert!(failure.why.contains("not linearizable"), "{failure}");
}

#[test]
fn the_tutorials_service_replays_one_history_per_seed_in_the_simulation() {
    let run = Run {
        seeds: vec![5],
        clients: 4,
        ops: 20,
    };
    let workload = Votes::<Tally>(std::marker::PhantomData);
    let once =
        simulate_seed(&workload, machine::<Tally>, &run, 5).unwrap_or_else(|e| panic!("{e}"));
    let twice =
        simulate_seed(&workload, machine::<Tally>, &run, 5).unwrap_or_else(|e| panic!("{e}"));
    assert!(once.answered > 20, "only {once:?}");
    assert_eq!(once, twice, "one seed, two runs");
}

#[test]
fn a_service_that_loses_votes_is_refused_in_the_simulation_with_a_replay() {
    if std::env::var(raft_actors::testing::deterministic::SEED_VAR).is_ok() {
        return;
    }
    let run = Run {
        seeds: vec![3],
        clients: 4,
        ops: 20,
    };
    let workload = Votes::<Lossy>(std::marker::PhantomData);
    let failure =
        simulate_workload(&workload, machine::<Lossy>, &run).expect_err("lost votes were accepted");
    assert_eq!(failure.seed, 3);
    assert!(failure.why.contains("not linearizable"), "{failure}");
    let replay = failure.replay.expect("a replay command");
    assert!(
        replay.starts_with(
            "RAFT_ACTORS_SEED=3 RAFT_ACTORS_TRACE=1 cargo test -p raft-actors-service --test workload -- --exact a_service_that_loses_votes"
        ),
        "{replay}"
    );
}
