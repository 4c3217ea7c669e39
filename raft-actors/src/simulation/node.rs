//! One simulated node: a core, the "disk" that keeps only what a `Ready`
//! said to persist, and a driver loop that executes `Ready`s in order.
//!
//! Must never let a crashed node keep anything its disk does not hold.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::core::{
    Config, ConfigError, Entry, HardState, Membership, Message, NodeId, ProposalOutcome, RaftCore,
    ReadOutcome, Recovered,
};

/// What survives a crash: the hard state and log entries persisted.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// Last persisted hard state.
    pub hard_state: HardState,
    /// Persisted entries, contiguous from index 1.
    pub entries: Vec<Entry>,
}

impl Disk {
    /// Writes one `ToPersist`: the hard state, then entries replacing any
    /// stored from `entries[0].index` on.
    fn write(&mut self, hard_state: Option<HardState>, entries: &[Entry]) {
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        if let Some(first) = entries.first() {
            self.entries.truncate((first.index - 1) as usize);
            self.entries.extend_from_slice(entries);
        }
    }

    /// Term of the stored entry at `index` (0 for index 0).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.entries.get(index as usize - 1).map(|e| e.term)
    }
}

/// Where a crash may strike inside one `Ready`'s execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Before anything was persisted: the whole batch is lost.
    BeforePersist,
    /// After the persist, before any message left or entry was applied.
    AfterPersist,
}

/// What executing `Ready`s produced.
#[derive(Debug, Default)]
pub struct DriveOutput {
    /// Messages to send.
    pub messages: Vec<Message>,
    /// Entries written to disk, with the term of the entry before the first.
    pub persisted: Vec<(u64, Vec<Entry>)>,
    /// Committed entries applied, in order.
    pub applied: Vec<Entry>,
    /// Proposal outcomes.
    pub proposals: Vec<ProposalOutcome>,
    /// Read outcomes.
    pub reads: Vec<ReadOutcome>,
    /// Whether the node crashed during the drive.
    pub crashed: bool,
}

/// A node of the simulation.
#[derive(Debug)]
pub struct SimNode {
    /// Its id.
    pub id: NodeId,
    /// The running core, `None` while crashed.
    pub core: Option<RaftCore>,
    /// Its durable state.
    pub disk: Disk,
    /// The configuration it boots with.
    pub membership: Membership,
    /// Core settings, reused on restart.
    pub config: Config,
}

impl SimNode {
    /// A fresh node of a new cluster.
    pub fn new(
        id: NodeId,
        membership: Membership,
        config: Config,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        let mut node = SimNode {
            id,
            core: None,
            disk: Disk::default(),
            membership,
            config,
        };
        node.restart(seed)?;
        Ok(node)
    }

    /// Loses everything not on disk.
    pub fn crash(&mut self) {
        self.core = None;
    }

    /// Rebuilds the core from disk alone.
    pub fn restart(&mut self, seed: u64) -> Result<(), ConfigError> {
        let recovered = Recovered {
            hard_state: self.disk.hard_state,
            entries: self.disk.entries.clone(),
            membership: self.membership.clone(),
        };
        let rng = ChaCha8Rng::seed_from_u64(seed);
        self.core = Some(RaftCore::new(self.id, self.config.clone(), recovered, rng)?);
        Ok(())
    }

    /// Executes `Ready`s until the core has nothing more to do, in the
    /// documented order: persist, then send and apply, then advance. A
    /// `crash` strikes during the first batch.
    pub fn drive(&mut self, mut crash: Option<CrashPoint>) -> DriveOutput {
        let mut out = DriveOutput::default();
        loop {
            let Some(core) = self.core.as_mut() else {
                return out;
            };
            let Some(ready) = core.ready() else {
                return out;
            };
            if crash.take() == Some(CrashPoint::BeforePersist) {
                self.crash();
                out.crashed = true;
                return out;
            }
            let (persist, gate) = ready.split();
            if let Some(first) = persist.entries.first() {
                let prev_term = self.disk.term(first.index - 1).unwrap_or(0);
                out.persisted.push((prev_term, persist.entries.clone()));
            }
            self.disk.write(persist.hard_state, &persist.entries);
            if crash.take() == Some(CrashPoint::AfterPersist) {
                self.crash();
                out.crashed = true;
                return out;
            }
            let after = gate.persisted();
            out.messages.extend(after.messages);
            out.applied.extend(after.committed);
            out.proposals.extend(after.proposals);
            out.reads.extend(after.reads);
            core.advance();
        }
    }
}
