//! A workload of reads and writes on three registers, and a state machine
//! that reads them wrong: shared by the workload tests.

use std::collections::BTreeMap;

use raft_actors::apply::Apply;
use raft_actors::core::LogIndex;
use raft_actors::testing::workload::{Answer, ChaCha8Rng, Request, Rng, Run, Workload};
use raft_actors::testing::{Kv, KvCommand, MapModel, RegisterOp, RegisterOut};
use raft_actors::Consistency;

/// One seed of 5 clients making 40 calls each: the simulation tests' run.
pub fn one_seed(seed: u64) -> Run {
    Run {
        seeds: vec![seed],
        clients: 5,
        ops: 40,
    }
}

/// Reads and writes on keys 0 to 2; every value drawn from the client's
/// generator, so the operations depend on the seed alone.
pub struct Registers;

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
                RegisterOp::Write(rng.gen_range(1..u64::from(u32::MAX))),
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

/// [`Registers`] whose reads are lease reads.
pub struct LeaseRegisters;

impl Workload for LeaseRegisters {
    type Config = Kv;
    type Model = MapModel;

    fn model(&self) -> MapModel {
        MapModel
    }

    fn op(&self, rng: &mut ChaCha8Rng) -> (u64, RegisterOp) {
        Registers.op(rng)
    }

    fn request(&self, op: &(u64, RegisterOp)) -> Request<Kv> {
        match Registers.request(op) {
            Request::Read(key) => Request::ReadWith(key, Consistency::Lease),
            other => other,
        }
    }

    fn output(&self, op: &(u64, RegisterOp), answer: Answer<Kv>) -> RegisterOut {
        Registers.output(op, answer)
    }
}

/// The kit's `Kv`, whose reads answer one more than the value held.
#[derive(Default)]
pub struct OffByOne(Kv);

impl Apply<Kv> for OffByOne {
    fn apply(&mut self, index: LogIndex, command: KvCommand) -> Option<u64> {
        self.0.apply(index, command)
    }
    fn query(&self, key: u64) -> Option<u64> {
        self.0.query(key).map(|v| v + 1)
    }
    fn snapshot(&self) -> BTreeMap<u64, u64> {
        self.0.snapshot()
    }
    fn restore(&mut self, s: BTreeMap<u64, u64>) {
        self.0.restore(s);
    }
}
