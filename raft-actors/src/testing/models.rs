//! The shipped [`Model`]s: a register with compare-and-swap, a map of
//! them (partitioned by key), a counter, a queue and a set, the shapes of
//! the example services. Each has a negative control in the tests below: a
//! history it must reject.

use std::collections::{BTreeSet, VecDeque};

use super::model::Model;

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// Reads the value.
    Read,
    /// Sets the value.
    Write(u64),
    /// Sets `new` if the value is `expect`.
    Cas {
        /// The value it must hold (`None`: unset).
        expect: Option<u64>,
        /// The value to set.
        new: u64,
    },
}

/// What a register operation answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOut {
    /// A read's value.
    Value(Option<u64>),
    /// A write was done.
    Written,
    /// Whether a CAS swapped.
    Swapped(bool),
}

/// One register, unset at first.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<u64>;
    type Op = RegisterOp;
    type Output = RegisterOut;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, v: &Option<u64>, op: &RegisterOp) -> (Option<u64>, RegisterOut) {
        match op {
            RegisterOp::Read => (*v, RegisterOut::Value(*v)),
            RegisterOp::Write(x) => (Some(*x), RegisterOut::Written),
            RegisterOp::Cas { expect, new } if expect == v => {
                (Some(*new), RegisterOut::Swapped(true))
            }
            RegisterOp::Cas { .. } => (*v, RegisterOut::Swapped(false)),
        }
    }

    /// A read changes nothing; a write whose value no read returned
    /// explains no answer (wherever an order puts it, no read follows it
    /// before the next write), unless a CAS is about, whose answer depends
    /// on values without showing them. Exact when written values are
    /// distinct.
    fn unobserved(&self, op: &RegisterOp, answered: &[(&RegisterOp, &RegisterOut)]) -> bool {
        match op {
            RegisterOp::Read => true,
            RegisterOp::Write(x) => answered.iter().all(|(o, out)| {
                !matches!(o, RegisterOp::Cas { .. }) && **out != RegisterOut::Value(Some(*x))
            }),
            RegisterOp::Cas { .. } => false,
        }
    }
}

/// A map of registers (raft-kv's shape): each key is checked apart.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapModel;

impl Model for MapModel {
    type State = Option<u64>;
    /// The key and what is done to it.
    type Op = (u64, RegisterOp);
    type Output = RegisterOut;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, v: &Option<u64>, (_, op): &(u64, RegisterOp)) -> (Option<u64>, RegisterOut) {
        RegisterModel.step(v, op)
    }

    fn partition(&self, (key, _): &(u64, RegisterOp)) -> Option<u64> {
        Some(*key)
    }

    fn unobserved(
        &self,
        (_, op): &(u64, RegisterOp),
        answered: &[(&(u64, RegisterOp), &RegisterOut)],
    ) -> bool {
        let same: Vec<(&RegisterOp, &RegisterOut)> =
            answered.iter().map(|((_, o), out)| (o, *out)).collect();
        RegisterModel.unobserved(op, &same)
    }
}

/// A counter operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterOp {
    /// Adds; answers the new value (an add that would overflow changes
    /// nothing and answers the current value, as raft-counter's 422).
    Add(i64),
    /// Answers the value.
    Get,
}

/// One signed counter, at 0 at first (raft-counter's shape).
#[derive(Clone, Copy, Debug, Default)]
pub struct CounterModel;

impl Model for CounterModel {
    type State = i64;
    type Op = CounterOp;
    type Output = i64;

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, v: &i64, op: &CounterOp) -> (i64, i64) {
        match op {
            CounterOp::Add(d) => {
                let next = v.checked_add(*d).unwrap_or(*v);
                (next, next)
            }
            CounterOp::Get => (*v, *v),
        }
    }
}

/// A queue operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueOp {
    /// Appends an item.
    Push(u64),
    /// Takes the oldest item.
    Pop,
    /// Answers how many items are queued.
    Len,
}

/// What a queue operation answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueOut {
    /// A push was done.
    Pushed,
    /// What a pop took (`None`: the queue was empty).
    Popped(Option<u64>),
    /// The length.
    Len(usize),
}

/// A FIFO queue, empty at first (raft-queue's shape).
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueModel;

impl Model for QueueModel {
    type State = VecDeque<u64>;
    type Op = QueueOp;
    type Output = QueueOut;

    fn init(&self) -> VecDeque<u64> {
        VecDeque::new()
    }

    fn step(&self, q: &VecDeque<u64>, op: &QueueOp) -> (VecDeque<u64>, QueueOut) {
        let mut next = q.clone();
        let out = match op {
            QueueOp::Push(x) => {
                next.push_back(*x);
                QueueOut::Pushed
            }
            QueueOp::Pop => QueueOut::Popped(next.pop_front()),
            QueueOp::Len => QueueOut::Len(next.len()),
        };
        (next, out)
    }
}

/// A set operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// Adds a member; answers whether the set changed.
    Add(u64),
    /// Removes a member; answers whether the set changed.
    Remove(u64),
    /// Answers the members, in order.
    List,
}

/// What a set operation answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOut {
    /// Whether an add or remove changed the set.
    Changed(bool),
    /// The members.
    Members(Vec<u64>),
}

/// A set, empty at first (raft-set's shape).
#[derive(Clone, Copy, Debug, Default)]
pub struct SetModel;

impl Model for SetModel {
    type State = BTreeSet<u64>;
    type Op = SetOp;
    type Output = SetOut;

    fn init(&self) -> BTreeSet<u64> {
        BTreeSet::new()
    }

    fn step(&self, s: &BTreeSet<u64>, op: &SetOp) -> (BTreeSet<u64>, SetOut) {
        let mut next = s.clone();
        let out = match op {
            SetOp::Add(x) => SetOut::Changed(next.insert(*x)),
            SetOp::Remove(x) => SetOut::Changed(next.remove(x)),
            SetOp::List => SetOut::Members(next.iter().copied().collect()),
        };
        (next, out)
    }
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
