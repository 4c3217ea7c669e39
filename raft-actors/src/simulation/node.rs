//! One simulated node: a core, the "disk" that keeps only what a `Ready`
//! said to persist, a state machine (a running hash of what it applied),
//! and a driver loop that executes `Ready`s in order.
//!
//! Must never let a crashed node keep anything its disk does not hold.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::core::{
    AfterPersist, ChunkRead, Config, ConfigError, Entry, HardState, LogIndex, Membership, Message,
    NodeId, Pipeline, ProposalOutcome, RaftCore, ReadOutcome, Recovered, Snapshot, Term, ToPersist,
};

use super::clock::NodeClock;
use super::driver::InFlight;

/// Folds one applied entry into a state hash (FNV-1a over index, term and
/// payload): two nodes with equal hashes at an index applied the same log.
pub fn state_hash(prev: u64, e: &Entry) -> u64 {
    let mut h = prev ^ 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    };
    feed(&e.index.to_le_bytes());
    feed(&e.term.to_le_bytes());
    match &e.payload {
        crate::core::Payload::Noop => feed(b"noop"),
        crate::core::Payload::Command(b) => feed(b),
        // Applied entries never carry one (the checker would see it).
        crate::core::Payload::Unread { len } => {
            feed(b"unread");
            feed(&len.to_le_bytes());
        }
        crate::core::Payload::Config(m) => {
            for id in m.voters.iter().chain(&m.outgoing).chain(&m.learners) {
                feed(&id.to_le_bytes());
            }
        }
    }
    h
}

/// What survives a crash: hard state, snapshot and log entries persisted,
/// and the snapshots' bytes (a snapshot store's named files).
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// Last persisted hard state.
    pub hard_state: HardState,
    /// The stored snapshot.
    pub snapshot: Option<Snapshot>,
    /// Snapshot bytes by index and checksum, written whole before they
    /// are named.
    pub files: BTreeMap<(LogIndex, u32), Bytes>,
    /// The snapshot being received and its bytes so far: never synced, so
    /// a crash loses it (and the transfer starts over).
    receiving: Option<(Snapshot, Vec<u8>)>,
    /// Persisted entries, contiguous.
    pub entries: Vec<Entry>,
    /// The hard state as of the last synced write, and the hard states of
    /// the writes since that need not sync (`ToPersist::must_sync` false),
    /// in order: a crash keeps only a prefix of those
    /// ([`lose_unsynced`](Self::lose_unsynced)).
    synced: HardState,
    unsynced: Vec<HardState>,
}

impl Disk {
    /// Writes one `ToPersist` as a storage adapter must: snapshot, hard
    /// state, entries (replacing any stored from the first one on), then
    /// compaction.
    pub(super) fn write(&mut self, p: &ToPersist) {
        for c in &p.snapshot_chunks {
            if c.offset == 0 {
                self.receiving = Some((c.snapshot.clone(), Vec::new()));
            }
            match &mut self.receiving {
                Some((s, buf)) if *s == c.snapshot && buf.len() as u64 == c.offset => {
                    buf.extend_from_slice(&c.data);
                }
                // A store refuses this; the core never asks it.
                _ => self.receiving = None,
            }
        }
        if let Some(s) = p.snapshot.as_ref().filter(|_| p.snapshot_received) {
            // Completed: named only if whole and matching, as a store does.
            if let Some((r, buf)) = self.receiving.take() {
                if r == *s && crate::core::checksum(&buf) == s.checksum {
                    self.files
                        .insert((s.meta.index, s.checksum), Bytes::from(buf));
                }
            }
        }
        if let Some(s) = &p.snapshot {
            if self.term(s.meta.index) != Some(s.meta.term) {
                self.entries.clear();
            }
            self.snapshot = Some(s.clone());
        }
        if let Some(hs) = p.hard_state {
            self.hard_state = hs;
        }
        if let Some(first) = p.entries.first() {
            self.entries.retain(|e| e.index < first.index);
            self.entries.extend_from_slice(&p.entries);
        }
        if let Some(c) = p.compact_to {
            self.entries.retain(|e| e.index > c);
        }
        if p.must_sync {
            // A synced write makes every write before it durable.
            self.synced = self.hard_state;
            self.unsynced.clear();
        } else if let Some(hs) = p.hard_state {
            self.unsynced.push(hs);
        }
    }

    /// The bytes of a stored snapshot.
    pub fn snapshot_bytes(&self, s: &Snapshot) -> Option<&Bytes> {
        self.files.get(&(s.meta.index, s.checksum))
    }

    /// One chunk of a stored snapshot, to send.
    pub fn read_chunk(&self, read: &ChunkRead) -> Option<Bytes> {
        let bytes = self.snapshot_bytes(&read.snapshot)?;
        let end = usize::try_from(read.offset + read.len).ok()?;
        bytes.get(read.offset as usize..end)?;
        Some(bytes.slice(read.offset as usize..end))
    }

    /// Persisted entries `first..=last`, all of them or `None`.
    pub fn read_entries(&self, first: LogIndex, last: LogIndex) -> Option<Vec<Entry>> {
        let base = self.entries.first()?.index;
        let lo = usize::try_from(first.checked_sub(base)?).ok()?;
        let hi = usize::try_from(last.checked_sub(base)?).ok()?;
        self.entries.get(lo..=hi).map(<[Entry]>::to_vec)
    }

    /// Writes not synced yet whose hard state a crash may lose.
    pub fn unsynced(&self) -> usize {
        self.unsynced.len()
    }

    /// A crash: of the writes since the last synced one, the first `keep`
    /// survive (a storage makes lazy writes durable in order, or not at
    /// all). Only their commit index can differ from the synced hard state:
    /// a lazy write changes no term or vote, and losing a compaction is
    /// harmless, so it is kept.
    pub fn lose_unsynced(&mut self, keep: usize) {
        if self.unsynced.is_empty() {
            return;
        }
        let keep = keep.min(self.unsynced.len());
        self.hard_state = match keep {
            0 => self.synced,
            k => self.unsynced[k - 1],
        };
        self.synced = self.hard_state;
        self.unsynced.clear();
    }

    /// Whether the disk holds the entry `index`/`term`, or a snapshot that
    /// covers it.
    pub fn holds(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
            || self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.meta.index >= index)
    }

    /// Term of the stored entry (or snapshot) at `index`; 0 for index 0.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        if let Some(s) = self.snapshot.as_ref().filter(|s| s.meta.index == index) {
            return Some(s.meta.term);
        }
        let first = self.entries.first()?.index;
        let i = index.checked_sub(first)?;
        self.entries.get(i as usize).map(|e| e.term)
    }
}

/// The simulated state machine: how far it applied, and a hash of it all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// Last applied index.
    pub index: LogIndex,
    /// Hash of everything applied.
    pub hash: u64,
}

impl StateMachine {
    /// Serializes to a snapshot: 16 bytes of state, padded so snapshots
    /// span several chunks.
    fn encode(&self, padding: usize) -> Bytes {
        let mut v = Vec::with_capacity(16 + padding);
        v.extend_from_slice(&self.index.to_le_bytes());
        v.extend_from_slice(&self.hash.to_le_bytes());
        v.resize(16 + padding, 0xab);
        Bytes::from(v)
    }

    fn decode(data: &[u8]) -> Option<Self> {
        let index = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let hash = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        Some(StateMachine { index, hash })
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
    /// Entries written to disk, with the stored term of the entry before
    /// the first (if the disk knows it).
    pub persisted: Vec<(Option<Term>, Vec<Entry>)>,
    /// Committed entries applied, in order.
    pub applied: Vec<Entry>,
    /// Snapshots the state machine was restored from, each with how many
    /// of `applied` were applied before it (batches released together
    /// interleave the two).
    pub restored: Vec<(usize, StateMachine)>,
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
    /// Its state machine (lost on crash, rebuilt from the snapshot).
    pub state: StateMachine,
    /// The configuration it boots with when its disk has none.
    pub membership: Membership,
    /// Core settings, reused on restart.
    pub config: Config,
    /// Padding bytes in its snapshots.
    pub snapshot_padding: usize,
    /// [`DriverMode::Pipelined`](super::DriverMode::Pipelined): writes
    /// handed to the disk and not yet durable, oldest first, and the gates
    /// of their batches.
    pub(super) in_flight: VecDeque<InFlight>,
    pub(super) pipeline: Pipeline,
    /// Its own clock: drift, stalls, and the monotonic reading its core
    /// is given before every input.
    pub clock: NodeClock,
}

impl SimNode {
    /// A fresh node; `membership` is empty for a node that will join later.
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
            state: StateMachine::default(),
            membership,
            config,
            snapshot_padding: 0,
            in_flight: VecDeque::new(),
            pipeline: Pipeline::default(),
            clock: NodeClock::new(1_000_000),
        };
        node.restart(seed)?;
        Ok(node)
    }

    /// Loses everything not on disk (the disk keeps its unsynced writes:
    /// see [`Disk::lose_unsynced`]).
    pub fn crash(&mut self) {
        self.core = None;
        self.disk.receiving = None;
        self.in_flight.clear();
        self.pipeline.clear();
    }

    /// Rebuilds the core from disk alone, and the state machine from the
    /// stored snapshot. Returns that snapshot's state, if any.
    pub fn restart(&mut self, seed: u64) -> Result<Option<StateMachine>, ConfigError> {
        let recovered = Recovered {
            hard_state: self.disk.hard_state,
            entries: self.disk.entries.clone(),
            membership: self.membership.clone(),
            snapshot: self.disk.snapshot.clone(),
        };
        let rng = ChaCha8Rng::seed_from_u64(seed);
        self.core = Some(RaftCore::new(self.id, self.config.clone(), recovered, rng)?);
        self.clock.restart();
        self.state = self
            .disk
            .snapshot
            .as_ref()
            .and_then(|s| self.disk.snapshot_bytes(s))
            .and_then(|data| StateMachine::decode(data))
            .unwrap_or_default();
        Ok(self.disk.snapshot.as_ref().map(|_| self.state))
    }

    /// The core, about to take an input: first told what its clock reads,
    /// as the node tells it before every message, tick, proposal and read.
    /// `None` while crashed.
    pub fn core_now(&mut self) -> Option<&mut RaftCore> {
        let reading = self.clock.reading();
        let core = self.core.as_mut()?;
        core.observe_clock(reading);
        Some(core)
    }

    /// Snapshots the state machine now and hands it to the core.
    pub fn take_snapshot(&mut self) {
        let data = self.state.encode(self.snapshot_padding);
        if let Some(core) = self.core.as_mut() {
            // Written whole and named before the core hears of it, as a
            // store's sink does.
            let (size, checksum) = (data.len() as u64, crate::core::checksum(&data));
            self.disk.files.insert((self.state.index, checksum), data);
            // Refused when nothing new was applied since the last one.
            let _ = core.snapshot_taken(self.state.index, size, checksum);
        }
    }

    /// Executes `Ready`s until the core has nothing more to do, in the
    /// documented order: persist, then restore, send and apply, then
    /// advance. A `crash` strikes during the first batch.
    pub fn drive(&mut self, mut crash: Option<CrashPoint>) -> DriveOutput {
        let mut out = DriveOutput::default();
        loop {
            let Some(core) = self.core.as_mut() else {
                return out;
            };
            let Some(mut ready) = core.ready() else {
                return out;
            };
            // A leader's replication leaves before its write, as in the
            // actor: a crash before the persist must not make that unsafe.
            let early = self.filled(ready.take_early());
            out.messages.extend(early);
            if crash.take() == Some(CrashPoint::BeforePersist) {
                self.crash();
                out.crashed = true;
                return out;
            }
            let (persist, gate) = ready.split();
            self.write(persist, &mut out);
            if crash.take() == Some(CrashPoint::AfterPersist) {
                self.crash();
                out.crashed = true;
                return out;
            }
            let after = gate.persisted();
            let snapshot_wanted = after.snapshot_wanted;
            self.release(after, &mut out);
            let Some(core) = self.core.as_mut() else {
                return out;
            };
            core.advance();
            if snapshot_wanted {
                self.take_snapshot();
            }
        }
    }

    /// Fills what the core left to the driver, as the node does from its
    /// store: snapshot chunks from the disk's snapshot files (a chunk of a
    /// file the disk no longer holds is not sent), and entries whose
    /// payloads the core dropped from the disk's log.
    ///
    /// # Panics
    /// When the disk does not hold such an entry: the core dropped a
    /// payload that was not durable, and a crash would lose it.
    pub(super) fn filled(&self, messages: Vec<Message>) -> Vec<Message> {
        let chunk_bytes = self.config.snapshot_chunk_bytes;
        messages
            .into_iter()
            .filter_map(|mut m| {
                if let Some(read) = m.chunk_to_read(chunk_bytes) {
                    m.fill_chunk(self.disk.read_chunk(&read)?);
                }
                if let Some(read) = m.entries_to_read() {
                    let entries = self.disk.read_entries(read.first, read.last);
                    let filled = entries.map(|entries| m.fill_entries(entries));
                    assert!(
                        matches!(filled, Some(Ok(()))),
                        "node {}: entries {}..={} dropped from memory but not on disk as held: {filled:?}",
                        self.id,
                        read.first,
                        read.last
                    );
                }
                Some(m)
            })
            .collect()
    }

    /// Makes `persist` durable on the disk, and records what it stored.
    pub(super) fn write(&mut self, persist: ToPersist, out: &mut DriveOutput) {
        self.disk.write(&persist);
        if let Some(first) = persist.entries.first() {
            // Log Matching is checked against what the disk holds.
            let prev_term = self.disk.term(first.index - 1);
            out.persisted.push((prev_term, persist.entries));
        }
    }

    /// Executes the part of a batch that waited for its persist: restore,
    /// apply, send, answer.
    pub(super) fn release(&mut self, after: AfterPersist, out: &mut DriveOutput) {
        if let Some(s) = after.restore {
            let data = self.disk.snapshot_bytes(&s);
            if let Some(state) = data.and_then(|d| StateMachine::decode(d)) {
                self.state = state;
                out.restored.push((out.applied.len(), state));
            }
        }
        for e in &after.committed {
            self.state = StateMachine {
                index: e.index,
                hash: state_hash(self.state.hash, e),
            };
        }
        let messages = self.filled(after.messages);
        out.messages.extend(messages);
        out.applied.extend(after.committed);
        out.proposals.extend(after.proposals);
        out.reads.extend(after.reads);
    }
}
