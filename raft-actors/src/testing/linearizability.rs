//! A linearizability checker for histories of reads and writes on
//! registers (Wing & Gong's search, with Lowe's memoization of visited
//! states), one register at a time.
//!
//! Failed operations are dropped (they took no effect); an operation of
//! unknown outcome is a write that may take effect at any time after its
//! call, or never (a read of unknown outcome constrains nothing). It must
//! never accept a history no sequential order explains: see the negative
//! controls in its tests.

use std::collections::{BTreeMap, HashSet};

use thiserror::Error;

use super::history::{Op, OpKind, Outcome};

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

/// Most states explored per register before giving up.
const STATE_BUDGET: usize = 2_000_000;

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
    // Values some successful read returned, per register.
    let read: HashSet<(u64, u64)> = ops
        .iter()
        .filter_map(|op| match (op.kind, op.outcome) {
            (OpKind::Read, Outcome::Ok(Some(v))) => Some((op.key, v)),
            _ => None,
        })
        .collect();
    let mut by_key: BTreeMap<u64, Vec<Op>> = BTreeMap::new();
    for op in ops {
        // A failed op took no effect; a read of unknown outcome saw nothing
        // anyone knows. A write of unknown outcome whose value no read
        // returned explains nothing and may be dropped: wherever an order
        // places it, no read follows it before the next write, so the
        // order without it explains the same reads ("never" is one of its
        // possible outcomes). Kept, each such write doubles the states to
        // search (it may or may not have happened at every step), which
        // is what exhausted the budget on histories with many timeouts.
        // Written values are distinct, so "no read returned it" is exact.
        let unread_unknown_write = matches!(
            (op.outcome, op.kind),
            (Outcome::Unknown | Outcome::Pending, OpKind::Write(v)) if !read.contains(&(op.key, v))
        );
        let keep = !unread_unknown_write
            && !matches!(
                (op.outcome, op.kind),
                (Outcome::Fail, _) | (Outcome::Unknown | Outcome::Pending, OpKind::Read)
            );
        if keep {
            let mut op = op.clone();
            if matches!(op.outcome, Outcome::Unknown | Outcome::Pending) {
                op.ret = u64::MAX;
                op.outcome = Outcome::Unknown;
            }
            by_key.entry(op.key).or_default().push(op);
        }
    }
    let mut stats = CheckStats::default();
    for (key, mut ops) in by_key {
        ops.sort_by_key(|op| op.call);
        stats.keys += 1;
        stats.ops += ops.len();
        stats.states += check_register(key, &ops)?;
    }
    Ok(stats)
}

/// The search for one register; answers the number of states explored.
fn check_register(key: u64, ops: &[Op]) -> Result<usize, LinearizabilityError> {
    let n = ops.len();
    let words = n.div_ceil(64);
    let required: usize = ops.iter().filter(|o| o.outcome != Outcome::Unknown).count();
    let mut seen: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    // Depth-first: (linearized set, register value, ok ops linearized).
    let mut stack: Vec<(Vec<u64>, Option<u64>, usize)> = vec![(vec![0; words], None, 0)];
    while let Some((done, value, ok_done)) = stack.pop() {
        if ok_done == required {
            return Ok(seen.len());
        }
        if seen.len() > STATE_BUDGET {
            return Err(LinearizabilityError::TooComplex {
                key,
                states: seen.len(),
            });
        }
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        // An operation can go next only if it was called before every
        // operation not yet placed returned (real-time order).
        let min_ret = (0..n)
            .filter(|i| !is_done(*i))
            .map(|i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for (i, op) in ops.iter().enumerate() {
            if op.call > min_ret {
                break; // sorted by call: no later one qualifies either
            }
            if is_done(i) {
                continue;
            }
            let next = match (op.kind, op.outcome) {
                (OpKind::Write(v), _) => Some(v),
                (OpKind::Read, Outcome::Ok(seen_value)) if seen_value == value => value,
                _ => continue, // a read that saw something else cannot go here
            };
            let mut done2 = done.clone();
            done2[i / 64] |= 1 << (i % 64);
            let ok2 = ok_done + usize::from(op.outcome != Outcome::Unknown);
            if seen.insert((done2.clone(), next)) {
                stack.push((done2, next, ok2));
            }
        }
    }
    Err(LinearizabilityError::NotLinearizable {
        key,
        ops: ops.to_vec(),
    })
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
