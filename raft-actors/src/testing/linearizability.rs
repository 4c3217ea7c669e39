//! [`check_linearizable`]: the linearizability check for histories of reads
//! and writes on registers ([`History`](super::History)), as
//! [`check_model`](super::check_model) with the [`MapModel`]: one register
//! at a time, unknown writes nobody read and unknown reads left out of the
//! search.
//!
//! Failed operations are dropped (they took no effect); an operation of
//! unknown outcome is a write that may take effect at any time after its
//! call, or never (a read of unknown outcome constrains nothing). It must
//! never accept a history no sequential order explains: see the negative
//! controls in its tests.

use thiserror::Error;

use super::history::{Op, OpKind, Outcome};
use super::model::{Call, Ended};
use super::model_check::{check_counted, Verdict, SEARCH_BOUND};
use super::models::{MapModel, RegisterOp, RegisterOut};

/// Why a history was rejected.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LinearizabilityError {
    /// No sequential order of the register's operations explains them.
    #[error("register {key} is not linearizable ({} operations)", ops.len())]
    NotLinearizable {
        /// The register.
        key: u64,
        /// Its operations, as checked.
        ops: Vec<Op>,
    },
    /// The search exceeded its budget of states before deciding.
    #[error("register {key}: search gave up after {states} states")]
    TooComplex {
        /// The register.
        key: u64,
        /// States explored.
        states: usize,
    },
}

/// What a successful check covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Registers checked.
    pub keys: usize,
    /// Operations that constrained the search (ok ones and unknown writes).
    pub ops: usize,
    /// Search states explored, over all registers.
    pub states: usize,
}

/// Checks that every register's operations are linearizable.
///
/// ```
/// use raft_actors::testing::{check_linearizable, History, OpKind};
/// let h = History::new();
/// let w = h.invoke(1, 0, OpKind::Write(5));
/// h.ok(w, None);
/// let r = h.invoke(2, 0, OpKind::Read);
/// h.ok(r, None); // began after the write returned, yet missed it
/// assert!(check_linearizable(&h.ops()).is_err());
/// ```
pub fn check_linearizable(ops: &[Op]) -> Result<CheckStats, LinearizabilityError> {
    let calls: Vec<Call<MapModel>> = ops.iter().map(call).collect();
    let counted = check_counted(&MapModel, &calls, SEARCH_BOUND);
    match counted.verdict {
        Verdict::Linearizable => Ok(CheckStats {
            keys: counted.partitions,
            ops: counted.searched,
            states: usize::try_from(counted.steps).unwrap_or(usize::MAX),
        }),
        Verdict::NotLinearizable(w) => {
            let key = w.partition.unwrap_or_default();
            Err(LinearizabilityError::NotLinearizable {
                key,
                ops: ops.iter().filter(|o| o.key == key).cloned().collect(),
            })
        }
        Verdict::Unknown { partition } => Err(LinearizabilityError::TooComplex {
            key: partition.unwrap_or_default(),
            states: usize::try_from(SEARCH_BOUND).unwrap_or(usize::MAX),
        }),
    }
}

/// An operation on a register as a call against [`MapModel`].
fn call(op: &Op) -> Call<MapModel> {
    let register = match op.kind {
        OpKind::Write(v) => RegisterOp::Write(v),
        OpKind::Read => RegisterOp::Read,
    };
    let ended = match (op.kind, op.outcome) {
        (OpKind::Write(_), Outcome::Ok(_)) => Ended::Ok(RegisterOut::Written),
        (OpKind::Read, Outcome::Ok(seen)) => Ended::Ok(RegisterOut::Value(seen)),
        (_, Outcome::Fail) => Ended::Failed,
        (_, Outcome::Unknown | Outcome::Pending) => Ended::Unknown,
    };
    Call {
        client: op.client,
        op: (op.key, register),
        call: op.call,
        ret: (op.ret != u64::MAX).then_some(op.ret),
        ended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u64, kind: OpKind, call: u64, ret: u64, outcome: Outcome) -> Op {
        Op {
            client,
            key: 0,
            kind,
            call,
            ret,
            outcome,
        }
    }

    #[test]
    fn concurrent_write_may_be_seen_or_not() {
        let ops = [
            op(1, OpKind::Write(1), 0, 10, Outcome::Ok(None)),
            op(2, OpKind::Read, 1, 2, Outcome::Ok(None)),
            op(3, OpKind::Read, 3, 4, Outcome::Ok(Some(1))),
        ];
        assert!(check_linearizable(&ops).is_ok());
    }

    #[test]
    fn negative_control_stale_read_after_write() {
        let ops = [
            op(1, OpKind::Write(1), 0, 1, Outcome::Ok(None)),
            op(2, OpKind::Read, 2, 3, Outcome::Ok(None)),
        ];
        assert!(matches!(
            check_linearizable(&ops),
            Err(LinearizabilityError::NotLinearizable { .. })
        ));
    }

    #[test]
    fn negative_control_reads_go_back_in_time() {
        // Writes 1 then 2 in sequence; two later sequential reads see 2 then 1.
        let ops = [
            op(1, OpKind::Write(1), 0, 1, Outcome::Ok(None)),
            op(1, OpKind::Write(2), 2, 3, Outcome::Ok(None)),
            op(2, OpKind::Read, 4, 5, Outcome::Ok(Some(2))),
            op(3, OpKind::Read, 6, 7, Outcome::Ok(Some(1))),
        ];
        assert!(check_linearizable(&ops).is_err());
    }

    #[test]
    fn unknown_write_may_apply_late_or_never() {
        let late = [
            op(1, OpKind::Write(1), 0, u64::MAX, Outcome::Unknown),
            op(2, OpKind::Read, 5, 6, Outcome::Ok(None)),
            op(2, OpKind::Read, 7, 8, Outcome::Ok(Some(1))),
        ];
        assert!(check_linearizable(&late).is_ok());
        let never = [
            op(1, OpKind::Write(1), 0, u64::MAX, Outcome::Unknown),
            op(2, OpKind::Read, 5, 6, Outcome::Ok(None)),
        ];
        assert!(check_linearizable(&never).is_ok());
        // But once seen, it cannot be unseen.
        let flicker = [
            op(1, OpKind::Write(1), 0, u64::MAX, Outcome::Unknown),
            op(2, OpKind::Read, 5, 6, Outcome::Ok(Some(1))),
            op(2, OpKind::Read, 7, 8, Outcome::Ok(None)),
        ];
        assert!(check_linearizable(&flicker).is_err());
    }

    #[test]
    fn unread_unknown_writes_cost_nothing_and_hide_nothing() {
        // 60 timed-out writes nobody read, around an acknowledged write and
        // a read that missed it: still rejected, and without a search over
        // which of the 60 happened.
        let mut ops: Vec<Op> = (0..60)
            .map(|v| op(v, OpKind::Write(100 + v), v, u64::MAX, Outcome::Unknown))
            .collect();
        ops.push(op(70, OpKind::Write(1), 100, 101, Outcome::Ok(None)));
        ops.push(op(71, OpKind::Read, 102, 103, Outcome::Ok(None)));
        assert!(matches!(
            check_linearizable(&ops),
            Err(LinearizabilityError::NotLinearizable { .. })
        ));
        // The read seeing the acknowledged write instead: accepted, with
        // the unknown writes left out of the search.
        ops.pop();
        ops.push(op(71, OpKind::Read, 102, 103, Outcome::Ok(Some(1))));
        let stats = check_linearizable(&ops).expect("linearizable");
        assert_eq!(stats.ops, 2);
        // One that was read stays in: it must be placed before that read.
        ops.push(op(72, OpKind::Read, 104, 105, Outcome::Ok(Some(105))));
        let stats = check_linearizable(&ops).expect("linearizable");
        assert_eq!(stats.ops, 4);
    }

    #[test]
    fn failed_write_must_not_be_seen() {
        let ops = [
            op(1, OpKind::Write(1), 0, 1, Outcome::Fail),
            op(2, OpKind::Read, 2, 3, Outcome::Ok(Some(1))),
        ];
        assert!(check_linearizable(&ops).is_err());
    }
}
