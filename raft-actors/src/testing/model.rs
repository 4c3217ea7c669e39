//! [`Model`]: a service described as a sequential machine (an initial
//! state, and one step from a state and an operation to the next state and
//! the operation's output), and [`Calls`], the record of what clients asked
//! a real cluster and how each call ended, that
//! [`check_model`](super::check_model) holds against it.
//!
//! How a call ended decides what it tells the checker:
//! - [`Ended::Ok`]: it took effect exactly once, between its call and its
//!   return, and answered this output;
//! - [`Ended::Failed`]: it certainly took no effect (an error that says
//!   nothing was applied, a 503); the checker drops it;
//! - [`Ended::Unknown`]: it may have taken effect once, at any time after
//!   its call, or never (a timeout, a crash, a call still pending when the
//!   history is read); its output constrains nothing.
//!
//! A model must be deterministic, like the `Apply` it describes. It never
//! sees a clock.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
// The runtime's clock: real time, or a simulation's virtual time, so a
// replayed run records the same times.
use tokio::time::Instant;

/// A service described sequentially.
///
/// ```
/// use raft_actors::testing::Model;
/// /// A counter: `Some(d)` adds `d` and answers the new value; `None` reads.
/// struct Tally;
/// impl Model for Tally {
///     type State = i64;
///     type Op = Option<i64>;
///     type Output = i64;
///     fn init(&self) -> i64 { 0 }
///     fn step(&self, v: &i64, op: &Option<i64>) -> (i64, i64) {
///         let next = v + op.unwrap_or(0);
///         (next, next)
///     }
/// }
/// assert_eq!(Tally.step(&Tally.init(), &Some(2)), (2, 2));
/// ```
pub trait Model {
    /// The whole state (of one key, when the model [partitions](Self::partition)).
    type State: Clone + Eq + Hash + Debug;
    /// One operation a client asks for.
    type Op: Clone + Debug;
    /// What the operation answers.
    type Output: Clone + PartialEq + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `op` to `state`: the next state and the operation's output.
    fn step(&self, state: &Self::State, op: &Self::Op) -> (Self::State, Self::Output);

    /// The key an operation touches, for a model whose keys are
    /// independent (a map: every key is a register of its own). Each key's
    /// calls are then checked apart, each from [`init`](Self::init), which
    /// makes long histories cheap. `None` (the default): one history.
    fn partition(&self, _op: &Self::Op) -> Option<u64> {
        None
    }

    /// Whether a call of unknown outcome on `op` can be left out of the
    /// search, given the answered calls of its partition: no answer can
    /// reveal its effect (a read, which changes nothing; a register write
    /// whose value nobody read). Leaving out an unknown call only takes
    /// away orders ("never" is one of its outcomes), so a model must say
    /// `true` only where no answer could need it, or the checker rejects
    /// histories that are fine. Each call kept doubles the states to search
    /// (it may or may not have happened at every step), which is what a
    /// history with many timeouts runs into. Default: keep every call.
    fn unobserved(&self, _op: &Self::Op, _answered: &[(&Self::Op, &Self::Output)]) -> bool {
        false
    }
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended<O> {
    /// Took effect, answering this.
    Ok(O),
    /// Certainly took no effect.
    Failed,
    /// May have taken effect, or not; still pending counts as this.
    Unknown,
}

/// One call of a history. Times are nanoseconds since the record began.
pub struct Call<M: Model> {
    /// Who made it (one client's calls never overlap).
    pub client: u64,
    /// What it asked.
    pub op: M::Op,
    /// When it was made.
    pub call: u64,
    /// When it returned; `None` if it never did.
    pub ret: Option<u64>,
    /// How it ended.
    pub ended: Ended<M::Output>,
}

impl<M: Model> Clone for Call<M> {
    fn clone(&self) -> Self {
        Call {
            client: self.client,
            op: self.op.clone(),
            call: self.call,
            ret: self.ret,
            ended: self.ended.clone(),
        }
    }
}

impl<M: Model> Debug for Call<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("client", &self.client)
            .field("op", &self.op)
            .field("call", &self.call)
            .field("ret", &self.ret)
            .field("ended", &self.ended)
            .finish()
    }
}

/// Which call of a [`Calls`] record, to complete it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallId(usize);

/// A shared, append-only record of calls against a model. Clones share
/// one record, so concurrent clients each hold one.
///
/// ```
/// use raft_actors::testing::{check_model, Calls, RegisterModel, RegisterOp, RegisterOut, Verdict};
/// let calls = Calls::<RegisterModel>::new();
/// let w = calls.invoke(1, RegisterOp::Write(5));
/// calls.ok(w, RegisterOut::Written);
/// let r = calls.invoke(2, RegisterOp::Read);
/// calls.ok(r, RegisterOut::Value(Some(5)));
/// assert_eq!(check_model(&RegisterModel, &calls.calls()), Verdict::Linearizable);
/// ```
pub struct Calls<M: Model> {
    start: Instant,
    /// The last time handed out: times strictly increase (see `now`).
    last: Arc<AtomicU64>,
    inner: Arc<Mutex<Vec<Call<M>>>>,
}

impl<M: Model> Clone for Calls<M> {
    fn clone(&self) -> Self {
        Calls {
            start: self.start,
            last: Arc::clone(&self.last),
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: Model> Default for Calls<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Model> Calls<M> {
    /// An empty record; its clock starts now.
    pub fn new() -> Self {
        Calls {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
            inner: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Nanoseconds since the record began, strictly greater than every
    /// time handed out before. In virtual time many calls start and end at
    /// one instant; equal times would make a client's consecutive calls
    /// look concurrent and lose the order the checker needs (and blow up
    /// its search). A time handed out after another is greater, so an
    /// event recorded after another ended still comes after it.
    fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let t = elapsed.max(prev.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(prev, t, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return t,
                Err(seen) => prev = seen,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Call<M>>> {
        // Pushes and single-field writes only: a poisoned lock's data is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `client` calls `op`.
    pub fn invoke(&self, client: u64, op: M::Op) -> CallId {
        let call = self.now();
        let mut calls = self.lock();
        calls.push(Call {
            client,
            op,
            call,
            ret: None,
            ended: Ended::Unknown,
        });
        CallId(calls.len() - 1)
    }

    fn end(&self, id: CallId, ended: Ended<M::Output>) {
        let ret = self.now();
        if let Some(c) = self.lock().get_mut(id.0) {
            c.ret = Some(ret);
            c.ended = ended;
        }
    }

    /// The call took effect and answered `output`.
    pub fn ok(&self, id: CallId, output: M::Output) {
        self.end(id, Ended::Ok(output));
    }

    /// The call certainly took no effect.
    pub fn failed(&self, id: CallId) {
        self.end(id, Ended::Failed);
    }

    /// The call's outcome is unknown (a timeout): it may apply later.
    pub fn unknown(&self, id: CallId) {
        if let Some(c) = self.lock().get_mut(id.0) {
            c.ended = Ended::Unknown;
        }
    }

    /// The calls so far (pending ones are unknown).
    pub fn calls(&self) -> Vec<Call<M>> {
        self.lock().clone()
    }
}
