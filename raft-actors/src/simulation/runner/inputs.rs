//! Every input a node takes, and the stalls that hold them: a frozen node
//! (a stopped process, a blocked thread) takes no ticks and handles no
//! message, proposal or read; they wait in its mailbox, and on resume it
//! handles that backlog in order, with the ticks it missed either taken
//! all at once, interleaved with the backlog (actix's interval fires every
//! missed period), or skipped (a timer that skips). Its monotonic clock
//! runs on throughout, and every input is preceded by a reading of it, as
//! the node does.
//!
//! Must never let a stalled node take an input, nor lose one that was
//! queued for it (only a crash loses the backlog, as it loses a mailbox).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use rand::Rng;

use super::Sim;
use crate::core::{LogIndex, Message, NodeId, RequestId};
use crate::simulation::Violation;

/// An input waiting in a stalled node's mailbox.
#[derive(Debug)]
pub(super) enum Held {
    Message(Message),
    Propose(RequestId, Bytes),
    /// A read, and the index it must reflect (fixed when the client sent
    /// it, not when the node got to it).
    Read(RequestId, bool, LogIndex),
}

impl Sim<'_> {
    pub(super) fn is_stalled(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.clock.is_stalled())
    }

    /// Now and then, freezes a live node (the leader half the time) for a
    /// random while.
    pub(super) fn stall_one(&mut self) {
        if !self.rng.gen_bool(self.cfg.stall_rate) {
            return;
        }
        let live: Vec<NodeId> = self
            .live()
            .into_iter()
            .filter(|id| !self.is_stalled(*id))
            .collect();
        let leader = self
            .leader()
            .filter(|l| !self.is_stalled(*l) && self.rng.gen_bool(0.5));
        let Some(id) =
            leader.or_else(|| (!live.is_empty()).then(|| live[self.rng.gen_range(0..live.len())]))
        else {
            return;
        };
        let until = self.now + self.rng.gen_range(1..=self.cfg.max_stall_ticks.max(1));
        if let Some(n) = self.nodes.get_mut(&id) {
            n.clock.stall();
        }
        self.stalled_until.insert(id, until);
        self.report.stalls += 1;
        self.trace(|| format!("stall {id} until t={until}"));
    }

    /// Resumes the nodes whose stall is over (every one, once `all`).
    pub(super) fn resume_due(&mut self, all: bool) -> Result<(), Violation> {
        let now = self.now;
        let due: Vec<NodeId> = self
            .stalled_until
            .iter()
            .filter(|(_, until)| all || **until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.resume(id)?;
        }
        Ok(())
    }

    /// Unfreezes `id`: it handles its backlog, with its missed ticks.
    fn resume(&mut self, id: NodeId) -> Result<(), Violation> {
        self.stalled_until.remove(&id);
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let mut missed = node.clock.resume();
        let burst = self.rng.gen_bool(0.5);
        let backlog = self.held.remove(&id).unwrap_or_default();
        self.trace(|| {
            let how = if burst { "taken" } else { "skipped" };
            format!(
                "resume {id}: {} held, {missed} missed ticks {how}",
                backlog.len()
            )
        });
        if !burst {
            missed = 0;
        }
        // Each peer's messages stay in order (one connection each), but
        // the sources interleave at random, as the tasks reading them
        // reach the mailbox in any order after a freeze; every client
        // request is a source of its own. Missed ticks fall anywhere.
        let mut sources: BTreeMap<Option<NodeId>, VecDeque<Held>> = BTreeMap::new();
        let mut clients: Vec<VecDeque<Held>> = Vec::new();
        for input in backlog {
            match &input {
                Held::Message(m) => sources.entry(Some(m.from)).or_default().push_back(input),
                _ => clients.push(VecDeque::from([input])),
            }
        }
        let mut queues: Vec<VecDeque<Held>> = sources.into_values().chain(clients).collect();
        while !queues.is_empty() {
            let pick = self
                .rng
                .gen_range(0..queues.len() + usize::from(missed > 0));
            let Some(queue) = queues.get_mut(pick) else {
                missed -= 1;
                self.tick_at(id)?;
                continue;
            };
            let Some(input) = queue.pop_front() else {
                queues.swap_remove(pick);
                continue;
            };
            if queue.is_empty() {
                queues.swap_remove(pick);
            }
            match input {
                Held::Message(m) => self.step_at(m)?,
                Held::Propose(req, data) => self.propose_at(id, req, data),
                Held::Read(req, lease, must) => self.read_at(id, req, lease, must),
            }
            self.drive(id)?;
        }
        for _ in 0..missed {
            self.tick_at(id)?;
        }
        Ok(())
    }

    /// One tick of `id`'s own clock.
    pub(super) fn tick_at(&mut self, id: NodeId) -> Result<(), Violation> {
        if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core_now()) {
            if core.is_quiesced() {
                self.report.quiesced_ticks += 1;
            }
            core.tick();
        }
        self.drive(id)
    }

    /// Delivers `m`, or queues it while its node is stalled.
    pub(super) fn step_at(&mut self, m: Message) -> Result<(), Violation> {
        let to = m.to;
        if self.is_stalled(to) {
            self.held.entry(to).or_default().push(Held::Message(m));
            return Ok(());
        }
        let Some(core) = self.nodes.get_mut(&to).and_then(|n| n.core_now()) else {
            return Ok(());
        };
        if self.cfg.trace {
            eprintln!(
                "t={:<5} deliver {}->{} t{} {:?}",
                self.now, m.from, m.to, m.term, m.body
            );
        }
        core.step(m);
        self.drive(to)
    }

    /// A client's proposal reaches `id` (driven with the node's next
    /// input, so proposals of one tick share a batch).
    pub(super) fn propose_at(&mut self, id: NodeId, req: RequestId, data: Bytes) {
        if self.is_stalled(id) {
            self.held
                .entry(id)
                .or_default()
                .push(Held::Propose(req, data));
            return;
        }
        if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core_now()) {
            let r = core.propose(req, data);
            self.trace(|| format!("propose w{req} at {id}: {r:?}"));
        }
    }

    /// A client's read reaches `id`; it must reflect index `must`.
    pub(super) fn read_at(&mut self, id: NodeId, req: RequestId, lease: bool, must: LogIndex) {
        if self.is_stalled(id) {
            self.held
                .entry(id)
                .or_default()
                .push(Held::Read(req, lease, must));
            return;
        }
        if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core_now()) {
            let r = if lease {
                core.lease_read(req)
            } else {
                core.read_index(req)
            };
            if r.is_ok() {
                self.reads.insert(req, (id, must));
            }
            self.trace(|| {
                format!("read r{req} at {id} (lease: {lease}, must reflect {must}): {r:?}")
            });
        }
    }
}
