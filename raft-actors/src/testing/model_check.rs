//! [`check_model`]: whether a history of [`Call`]s against any [`Model`]
//! is linearizable: Wing & Gong's search for an order of the calls that the
//! model explains and that respects real time, with Lowe's memoization of
//! visited (calls taken, state) pairs, one partition at a time when the
//! model declares its keys independent.
//!
//! Failed calls are dropped; a call of unknown outcome may take effect at
//! any time after its call, or never, and its output is not checked (see
//! [`model`](super::model)). A history the search cannot decide within
//! [`SEARCH_BOUND`] steps is [`Verdict::Unknown`], never accepted. A
//! rejected history comes with its smallest failing prefix: the first
//! return after which no order explains the calls, and the calls
//! concurrent with it. It must never accept a history no sequential order
//! explains: every shipped model has a negative control.

use std::collections::{BTreeMap, HashSet};

use super::model::{Call, Ended, Model};

/// Steps a search may take (per partition, per prefix) before the answer
/// is [`Verdict::Unknown`].
pub const SEARCH_BOUND: u64 = 2_000_000;

/// What the checker found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the calls, each at a point between its call and its
    /// return, is one the model explains.
    Linearizable,
    /// No order is.
    NotLinearizable(Window),
    /// The search ran out of steps ([`SEARCH_BOUND`]).
    Unknown {
        /// The partition it gave up on.
        partition: Option<u64>,
    },
}

/// Where a history stops being linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// The key, for a partitioned model.
    pub partition: Option<u64>,
    /// The call (an index into the checked slice) whose return first
    /// makes the history unexplainable: the calls returned up to it are
    /// not linearizable, those returned before it are.
    pub failing: usize,
    /// The calls (indexes) that overlap it in time, itself included: the
    /// window to read first.
    pub calls: Vec<usize>,
}

/// Checks `calls` against `model` within [`SEARCH_BOUND`].
///
/// ```
/// use raft_actors::testing::{check_model, Call, CounterModel, CounterOp, Ended, Verdict};
/// // Two adds of 1, one after the other, both answered 1: one add was lost.
/// let add = |client, call, ret| Call::<CounterModel> {
///     client, op: CounterOp::Add(1), call, ret: Some(ret), ended: Ended::Ok(1),
/// };
/// let v = check_model(&CounterModel, &[add(1, 0, 10), add(2, 20, 30)]);
/// assert!(matches!(v, Verdict::NotLinearizable(w) if w.failing == 1));
/// ```
pub fn check_model<M: Model>(model: &M, calls: &[Call<M>]) -> Verdict {
    check_model_within(model, calls, SEARCH_BOUND)
}

/// [`check_model`] with its own search bound.
pub fn check_model_within<M: Model>(model: &M, calls: &[Call<M>], bound: u64) -> Verdict {
    check_counted(model, calls, bound).verdict
}

/// A verdict and what it took.
pub(crate) struct Counted {
    pub verdict: Verdict,
    /// Partitions checked.
    pub partitions: usize,
    /// Calls searched (answered ones and unknown ones kept).
    pub searched: usize,
    /// Search steps, over all partitions.
    pub steps: u64,
}

/// [`check_model_within`], counting what it searched.
pub(crate) fn check_counted<M: Model>(model: &M, calls: &[Call<M>], bound: u64) -> Counted {
    let mut partitions: BTreeMap<Option<u64>, Vec<usize>> = BTreeMap::new();
    for (i, c) in calls.iter().enumerate() {
        if c.ended != Ended::Failed {
            partitions
                .entry(model.partition(&c.op))
                .or_default()
                .push(i);
        }
    }
    let mut counted = Counted {
        verdict: Verdict::Linearizable,
        partitions: partitions.len(),
        searched: 0,
        steps: 0,
    };
    let mut unknown = None;
    for (partition, ids) in partitions {
        let ids = kept(model, calls, ids);
        counted.searched += ids.len();
        let (found, steps) = search(model, calls, &ids, None, bound);
        counted.steps += steps;
        match found {
            Search::Found => {}
            Search::OutOfSteps => unknown = unknown.or(Some(partition)),
            Search::Impossible => {
                counted.verdict =
                    Verdict::NotLinearizable(smallest_window(model, calls, &ids, partition, bound));
                return counted;
            }
        }
    }
    if let Some(partition) = unknown {
        counted.verdict = Verdict::Unknown { partition };
    }
    counted
}

/// A partition's calls less the unknown ones the model calls unobserved.
fn kept<M: Model>(model: &M, calls: &[Call<M>], ids: Vec<usize>) -> Vec<usize> {
    let answered: Vec<(&M::Op, &M::Output)> = ids
        .iter()
        .filter_map(|&i| match &calls[i].ended {
            Ended::Ok(out) => Some((&calls[i].op, out)),
            _ => None,
        })
        .collect();
    ids.into_iter()
        .filter(|&i| calls[i].ended != Ended::Unknown || !model.unobserved(&calls[i].op, &answered))
        .collect()
}

enum Search {
    Found,
    Impossible,
    OutOfSteps,
}

/// The prefix up to the earliest return that already fails (a longer
/// prefix only adds constraints, so a binary search finds it).
fn smallest_window<M: Model>(
    model: &M,
    calls: &[Call<M>],
    ids: &[usize],
    partition: Option<u64>,
    bound: u64,
) -> Window {
    let mut returns: Vec<(u64, usize)> = ids
        .iter()
        .filter(|&&i| matches!(calls[i].ended, Ended::Ok(_)))
        .filter_map(|&i| calls[i].ret.map(|r| (r, i)))
        .collect();
    returns.sort_unstable();
    let (mut lo, mut hi) = (0, returns.len().saturating_sub(1));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match search(model, calls, ids, Some(returns[mid].0), bound).0 {
            Search::Impossible => hi = mid,
            Search::Found | Search::OutOfSteps => lo = mid + 1,
        }
    }
    let failing = returns.get(lo).map_or(ids[0], |&(_, i)| i);
    let (from, to) = (calls[failing].call, calls[failing].ret.unwrap_or(u64::MAX));
    let overlapping = ids
        .iter()
        .copied()
        .filter(|&i| calls[i].call <= to && calls[i].ret.unwrap_or(u64::MAX) >= from)
        .collect();
    Window {
        partition,
        failing,
        calls: overlapping,
    }
}

/// One call as the search sees it.
struct Pending<'a, M: Model> {
    op: &'a M::Op,
    call: u64,
    /// `u64::MAX` for a call of unknown outcome.
    ret: u64,
    /// `None`: any output will do (unknown outcome).
    output: Option<&'a M::Output>,
}

/// Searches for a linearization of the calls `ids`; with `upto`, of the
/// prefix of the history up to that time (calls made by then; those not
/// returned by then count as unknown). Answers the steps it took too.
fn search<M: Model>(
    model: &M,
    calls: &[Call<M>],
    ids: &[usize],
    upto: Option<u64>,
    bound: u64,
) -> (Search, u64) {
    let cut = upto.unwrap_or(u64::MAX);
    let mut ops: Vec<Pending<'_, M>> = ids
        .iter()
        .map(|&i| &calls[i])
        .filter(|c| c.call <= cut)
        .map(|c| {
            let returned = c.ret.filter(|r| *r <= cut);
            match (&c.ended, returned) {
                (Ended::Ok(out), Some(ret)) => Pending {
                    op: &c.op,
                    call: c.call,
                    ret,
                    output: Some(out),
                },
                _ => Pending {
                    op: &c.op,
                    call: c.call,
                    ret: u64::MAX,
                    output: None,
                },
            }
        })
        .collect();
    ops.sort_by_key(|p| p.call);
    let must = ops.iter().filter(|p| p.output.is_some()).count();

    // Depth-first over "which call takes effect next", with the calls
    // taken as a bit set; a (taken, state) pair seen before is not
    // searched again (Lowe).
    struct Frame<S> {
        state: S,
        candidates: Vec<usize>,
        next: usize,
        taken_here: Option<usize>,
    }
    let words = ops.len().div_ceil(64);
    let mut taken = vec![0u64; words];
    let is_taken = |t: &[u64], i: usize| t[i / 64] & (1 << (i % 64)) != 0;
    let candidates = |t: &[u64]| -> Vec<usize> {
        // A call may go next only if it was made before every call not yet
        // taken returned: the earliest such return bounds the choice.
        let deadline = (0..ops.len())
            .filter(|&i| !is_taken(t, i))
            .map(|i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        (0..ops.len())
            .filter(|&i| !is_taken(t, i) && ops[i].call <= deadline)
            .collect()
    };
    let mut seen: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut done = 0usize;
    let mut steps = 0u64;
    let mut stack = vec![Frame {
        state: model.init(),
        candidates: candidates(&taken),
        next: 0,
        taken_here: None,
    }];
    while let Some(top) = stack.last_mut() {
        if done == must {
            return (Search::Found, steps);
        }
        steps += 1;
        if steps > bound {
            return (Search::OutOfSteps, steps);
        }
        let Some(&i) = top.candidates.get(top.next) else {
            // Every choice here failed: undo the one that led here.
            let frame = stack.pop();
            if let Some(j) = frame.and_then(|f| f.taken_here) {
                taken[j / 64] &= !(1 << (j % 64));
                if ops[j].output.is_some() {
                    done -= 1;
                }
            }
            continue;
        };
        top.next += 1;
        let (state, output) = model.step(&top.state, ops[i].op);
        if ops[i].output.is_some_and(|want| *want != output) {
            continue;
        }
        taken[i / 64] |= 1 << (i % 64);
        if !seen.insert((taken.clone(), state.clone())) {
            taken[i / 64] &= !(1 << (i % 64));
            continue;
        }
        if ops[i].output.is_some() {
            done += 1;
        }
        let next = candidates(&taken);
        stack.push(Frame {
            state,
            candidates: next,
            next: 0,
            taken_here: Some(i),
        });
    }
    (Search::Impossible, steps)
}
