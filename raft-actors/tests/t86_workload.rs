//! One call for users (`testing::workload::check_workload`): a workload of
//! reads and writes on three registers, drawn per seed, against the kit's
//! `Kv` under seeded faults (a voter removed and added back among them),
//! every history checked against `MapModel` and the replicas compared; and the negative control: a state machine whose
//! reads answer a value nobody wrote is refused, with its seed.

use std::sync::atomic::{AtomicU64, Ordering};

use raft_actors::apply::Apply;
use raft_actors::core::LogIndex;
use raft_actors::testing::workload::{
    check_workload, Answer, ChaCha8Rng, Request, Rng, Run, Workload,
};
use raft_actors::testing::{Kv, KvCommand, MapModel, RegisterOp, RegisterOut};

/// Half writes of unique values, half reads, on keys 0 to 2.
#[derive(Default)]
struct Registers {
    next: AtomicU64,
}

impl Workload for Registers {
    type Config = Kv;
    type Model = MapModel;

    fn model(&self) -> MapModel {
        MapModel
    }

    fn op(&self, rng: &mut ChaCha8Rng) -> (u64, RegisterOp) {
        let key = rng.gen_range(0..3);
        if rng.gen_bool(0.5) {
            (
                key,
                RegisterOp::Write(self.next.fetch_add(1, Ordering::Relaxed) + 1),
            )
        } else {
            (key, RegisterOp::Read)
        }
    }

    fn request(&self, (key, op): &(u64, RegisterOp)) -> Request<Kv> {
        match op {
            RegisterOp::Write(value) => Request::Propose(KvCommand::Put {
                key: *key,
                value: *value,
            }),
            _ => Request::Read(*key),
        }
    }

    fn output(&self, _: &(u64, RegisterOp), answer: Answer<Kv>) -> RegisterOut {
        match answer {
            Answer::Applied(_) => RegisterOut::Written,
            Answer::Read(v) => RegisterOut::Value(v),
        }
    }
}

#[actix_rt::test]
async fn a_users_workload_under_faults_is_linearizable_for_every_seed() {
    let run = Run {
        seeds: vec![1, 2, 3],
        clients: 6,
        ops: 30,
    };
    let report = check_workload(&Registers::default(), Kv::default, &run)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.answered > 100, "only {report:?}");
    assert!(
        report.changes >= 3,
        "membership changes went through: {report:?}"
    );
}

/// The kit's `Kv`, whose reads answer one more than the value held.
#[derive(Default)]
struct OffByOne(Kv);

impl Apply<Kv> for OffByOne {
    fn apply(&mut self, index: LogIndex, command: KvCommand) -> Option<u64> {
        self.0.apply(index, command)
    }
    fn query(&self, key: u64) -> Option<u64> {
        self.0.query(key).map(|v| v + 1)
    }
    fn snapshot(&self) -> std::collections::BTreeMap<u64, u64> {
        self.0.snapshot()
    }
    fn restore(&mut self, s: std::collections::BTreeMap<u64, u64>) {
        self.0.restore(s);
    }
}

#[actix_rt::test]
async fn a_state_machine_that_reads_wrong_is_refused_with_its_seed() {
    let run = Run {
        seeds: vec![7],
        clients: 4,
        ops: 20,
    };
    let failure = check_workload(&Registers::default(), OffByOne::default, &run)
        .await
        .expect_err("a read of a value nobody wrote was accepted");
    assert_eq!(failure.seed, 7);
    assert!(failure.why.contains("not linearizable"), "{failure}");
}
