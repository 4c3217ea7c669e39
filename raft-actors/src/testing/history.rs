//! [`History`]: a record of client operations on registers, with when each
//! was invoked and when (and how) it returned, for the
//! [linearizability checker](super::linearizability).

use std::sync::{Arc, Mutex, MutexGuard};
// The runtime's clock: real time, or a simulation's virtual time.
use tokio::time::Instant;

use crate::error::ClientError;

/// What an operation did to its register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Wrote this value.
    Write(u64),
    /// Read; the value seen is in the outcome.
    Read,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not returned yet (recorded as unknown if it never does).
    Pending,
    /// Took effect; a read saw this value (`None` for writes and for a read
    /// of an unset register).
    Ok(Option<u64>),
    /// Definitely did not take effect.
    Fail,
    /// May or may not have taken effect (timeout, restart).
    Unknown,
}

/// One operation of a history. Times are nanoseconds since the history
/// began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Who issued it (operations of one client never overlap).
    pub client: u64,
    /// The register.
    pub key: u64,
    /// Read or write.
    pub kind: OpKind,
    /// When it was invoked.
    pub call: u64,
    /// When it returned (`u64::MAX` if it never did).
    pub ret: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A shared, append-only record of operations. Clones share one record.
///
/// ```
/// use raft_actors::testing::{History, OpKind};
/// let h = History::new();
/// let w = h.invoke(1, 7, OpKind::Write(1));
/// h.ok(w, None);
/// let r = h.invoke(1, 7, OpKind::Read);
/// h.ok(r, Some(1));
/// assert!(raft_actors::testing::check_linearizable(&h.ops()).is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct History {
    inner: Arc<Mutex<Vec<Op>>>,
    start: Instant,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

/// The position of an operation in a [`History`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpId(usize);

impl History {
    /// An empty history starting now.
    pub fn new() -> Self {
        History {
            inner: Arc::new(Mutex::new(Vec::new())),
            start: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Op>> {
        // Pushes and single-field writes only: a poisoned lock's data is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the invocation of an operation.
    pub fn invoke(&self, client: u64, key: u64, kind: OpKind) -> OpId {
        let call = self.now();
        let mut ops = self.lock();
        ops.push(Op {
            client,
            key,
            kind,
            call,
            ret: u64::MAX,
            outcome: Outcome::Pending,
        });
        OpId(ops.len() - 1)
    }

    fn finish(&self, id: OpId, outcome: Outcome) {
        let ret = self.now();
        if let Some(op) = self.lock().get_mut(id.0) {
            op.ret = ret;
            op.outcome = outcome;
        }
    }

    /// Records a success (a read's value, or `None` for a write).
    pub fn ok(&self, id: OpId, value: Option<u64>) {
        self.finish(id, Outcome::Ok(value));
    }

    /// Records a failure that certainly did not take effect.
    pub fn fail(&self, id: OpId) {
        self.finish(id, Outcome::Fail);
    }

    /// Records an outcome that is unknown.
    pub fn unknown(&self, id: OpId) {
        if let Some(op) = self.lock().get_mut(id.0) {
            op.outcome = Outcome::Unknown;
        }
    }

    /// Records a client error as a failure or an unknown outcome, as the
    /// error says.
    pub fn error(&self, id: OpId, err: &ClientError) {
        if err.outcome_unknown() {
            self.unknown(id);
        } else {
            self.fail(id);
        }
    }

    /// The operations so far; pending ones are reported as unknown.
    pub fn ops(&self) -> Vec<Op> {
        self.lock()
            .iter()
            .cloned()
            .map(|mut op| {
                if op.outcome == Outcome::Pending {
                    op.outcome = Outcome::Unknown;
                }
                op
            })
            .collect()
    }
}
