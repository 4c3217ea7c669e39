//! One call for users (`testing::workload::check_workload`): a workload of
//! reads and writes on three registers, drawn per seed, against the kit's
//! `Kv` under seeded faults (a voter removed and added back among them),
//! every history checked against `MapModel` and the replicas compared; and the negative control: a state machine whose
//! reads answer a value nobody wrote is refused, with its seed.

mod common;

use common::registers::{OffByOne, Registers};
use raft_actors::testing::workload::{check_workload, Run};
use raft_actors::testing::Kv;

#[actix_rt::test]
async fn a_users_workload_under_faults_is_linearizable_for_every_seed() {
    let run = Run {
        seeds: vec![1, 2, 3],
        clients: 6,
        ops: 30,
    };
    let report = check_workload(&Registers, Kv::default, &run)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.answered > 100, "only {report:?}");
    assert!(
        report.changes >= 3,
        "membership changes went through: {report:?}"
    );
}

#[actix_rt::test]
async fn a_state_machine_that_reads_wrong_is_refused_with_its_seed() {
    let run = Run {
        seeds: vec![7],
        clients: 4,
        ops: 20,
    };
    let failure = check_workload(&Registers, OffByOne::default, &run)
        .await
        .expect_err("a read of a value nobody wrote was accepted");
    assert_eq!(failure.seed, 7);
    assert!(failure.why.contains("not linearizable"), "{failure}");
}
