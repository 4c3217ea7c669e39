//! [`ConfWaiters`]: callers waiting for a membership change to be done, each
//! answered once, from the core's [`ConfChangeProgress`] for its entry.
//!
//! The node asks after every batch; nobody polls. Must never decide when a
//! change is done (the core does) nor drop a waiter unanswered while the
//! node lives: done, lost or interrupted, each one hears.

use tokio::sync::oneshot;

use crate::core::{ConfChangeProgress, LogIndex, Membership, RaftCore, Term};
use crate::error::ClientError;

/// The answer a membership change's caller waits for.
pub(crate) type ConfReply = oneshot::Sender<Result<Membership, ClientError>>;

/// Membership changes proposed here, by where their entry landed.
#[derive(Default)]
pub(crate) struct ConfWaiters {
    waiting: Vec<(LogIndex, Term, ConfReply)>,
}

impl ConfWaiters {
    /// Waits for the change whose entry landed at `(index, term)`.
    pub(crate) fn wait(&mut self, index: LogIndex, term: Term, reply: ConfReply) {
        self.waiting.push((index, term, reply));
    }

    /// Answers every change the core reports done or lost; keeps the rest
    /// (a caller that gave up is forgotten).
    pub(crate) fn settle(&mut self, core: &RaftCore) {
        if self.waiting.is_empty() {
            return;
        }
        let mut still = Vec::with_capacity(self.waiting.len());
        for (index, term, reply) in self.waiting.drain(..) {
            if reply.is_closed() {
                continue;
            }
            match core.conf_change_progress(index, term) {
                ConfChangeProgress::Pending => still.push((index, term, reply)),
                ConfChangeProgress::Done(m) => {
                    let _ = reply.send(Ok(m));
                }
                ConfChangeProgress::Lost { leader } => {
                    let _ = reply.send(Err(ClientError::NotLeader { leader }));
                }
            }
        }
        self.waiting = still;
    }

    /// The node stops or restarts: whether a change applied is unknown.
    pub(crate) fn fail_all(&mut self, err: ClientError) {
        for (_, _, reply) in self.waiting.drain(..) {
            let _ = reply.send(Err(err.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ConfChange, Config, Membership, Recovered};
    use rand::SeedableRng;

    fn leader() -> RaftCore {
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let boot = Recovered::bootstrap(Membership::voters([1]));
        let mut core = RaftCore::new(1, Config::default(), boot, rng).expect("a core");
        while !core.status().role.is_leader() {
            core.tick();
        }
        flush(&mut core);
        core
    }

    fn flush(core: &mut RaftCore) {
        while let Some(rd) = core.ready() {
            let _ = rd.split().1.persisted();
            core.advance();
        }
    }

    #[test]
    fn a_change_is_answered_once_its_entry_commits_and_a_lost_one_as_not_leader() {
        let mut core = leader();
        let (index, term) = core
            .propose_conf_change(1, ConfChange::AddLearner(2))
            .expect("taken");
        let mut waiters = ConfWaiters::default();
        let (done_tx, mut done_rx) = oneshot::channel();
        let (lost_tx, mut lost_rx) = oneshot::channel();
        waiters.wait(index, term, done_tx);
        // Another term at that index: what a new leader's log leaves there.
        waiters.wait(index, term + 1, lost_tx);
        let (gone_tx, gone_rx) = oneshot::channel();
        waiters.wait(index, term, gone_tx);
        drop(gone_rx);

        waiters.settle(&core);
        assert!(done_rx.try_recv().is_err(), "not committed yet");
        assert!(matches!(
            lost_rx.try_recv(),
            Ok(Err(ClientError::NotLeader { leader: Some(1) }))
        ));
        assert_eq!(
            waiters.waiting.len(),
            1,
            "the caller that gave up is forgotten"
        );

        flush(&mut core);
        waiters.settle(&core);
        let m = done_rx.try_recv().expect("answered").expect("done");
        assert!(m.learners.contains(&2));
        assert!(waiters.waiting.is_empty());
    }

    #[test]
    fn a_restart_answers_every_waiter() {
        let mut waiters = ConfWaiters::default();
        let (tx, mut rx) = oneshot::channel();
        waiters.wait(5, 1, tx);
        waiters.fail_all(ClientError::Interrupted);
        assert!(matches!(rx.try_recv(), Ok(Err(ClientError::Interrupted))));
    }
}
