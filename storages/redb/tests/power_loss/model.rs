//! [`Model`]: what the store has acknowledged, and so which states it may
//! show after a power loss.
//!
//! Each operation sent to the store is applied to an [`Image`] here, by
//! the rules `RedbStorage` documents (snapshot, then hard state and
//! entries, then compaction; a received snapshot replaces the log it does
//! not match). The store may come back as the last state it synced, or
//! as any later one it answered without a sync (a batch that only moves
//! the commit index), or as the state of the write the power cut
//! short, whole: never older than what it synced, never a mix, never an
//! entry nobody wrote.
//!
//! It must never read the store: the model is the independent truth the
//! store is checked against.

use raft_actors::core::{Entry, HardState, LogIndex, Membership};
use raft_actors::storage::{LogState, Snapshot, ToPersist};

/// One operation on the store.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // a test model: one op at a time, never stored in bulk
pub enum Op {
    /// `RedbStorage::bootstrap`.
    Bootstrap(Membership),
    /// `Storage::write`.
    Write(ToPersist),
}

/// What a store holds, as `Storage::load` answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// The stored hard state.
    pub hard_state: HardState,
    /// The stored entries, contiguous, in order.
    pub entries: Vec<Entry>,
    /// The stored configuration.
    pub membership: Membership,
    /// The stored snapshot.
    pub snapshot: Option<Snapshot>,
}

impl From<LogState> for Image {
    fn from(s: LogState) -> Image {
        Image {
            hard_state: s.hard_state,
            entries: s.entries,
            membership: s.membership,
            snapshot: s.snapshot,
        }
    }
}

impl Image {
    /// The index of the last entry held, or covered by the snapshot.
    pub fn last_index(&self) -> LogIndex {
        let snap = self.snapshot_index();
        self.entries.last().map_or(snap, |e| e.index.max(snap))
    }

    /// The index before the first entry held.
    pub fn offset(&self) -> LogIndex {
        self.entries
            .first()
            .map_or(self.snapshot_index(), |e| e.index - 1)
    }

    /// The snapshot's index (0 without one).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(0, |s| s.meta.index)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.entries.first()?.index;
        let at = usize::try_from(index.checked_sub(first)?).ok()?;
        self.entries.get(at)
    }

    /// Whether nothing was ever stored.
    pub fn is_blank(&self) -> bool {
        *self == Image::default()
    }

    /// The image after `op`, and whether the store syncs it (its rule: a
    /// snapshot, entries, a new term or vote, a truncation or a bootstrap
    /// must be durable before the store answers; a batch that only moves
    /// the commit index need not be).
    pub fn after(&self, op: &Op) -> (Image, bool) {
        let mut next = self.clone();
        match op {
            Op::Bootstrap(m) => {
                next.membership = m.clone();
                (next, true)
            }
            Op::Write(batch) => {
                let synced = batch.snapshot.is_some()
                    || !batch.entries.is_empty()
                    || batch.hard_state.is_some_and(|hs| {
                        hs.term != self.hard_state.term || hs.vote != self.hard_state.vote
                    });
                if let Some(snap) = &batch.snapshot {
                    if batch.snapshot_received {
                        next.install(snap.clone());
                    } else {
                        next.snapshot = Some(snap.clone());
                    }
                }
                if let Some(first) = batch.entries.first() {
                    next.entries.retain(|e| e.index < first.index);
                    next.entries.extend(batch.entries.iter().cloned());
                }
                if let Some(hs) = batch.hard_state {
                    next.hard_state = hs;
                }
                if let Some(upto) = batch.compact_to {
                    next.entries.retain(|e| e.index > upto);
                }
                (next, synced)
            }
        }
    }

    /// A leader's snapshot (§7): the entries it covers go, and the whole
    /// log if it does not hold the snapshot's last entry; the configuration
    /// and the commit index follow it.
    fn install(&mut self, snap: Snapshot) {
        let index = snap.meta.index;
        let matching = self.entry(index).is_some_and(|e| e.term == snap.meta.term);
        if matching {
            self.entries.retain(|e| e.index > index);
        } else {
            self.entries.clear();
        }
        self.membership = snap.meta.membership.clone();
        self.hard_state.commit = self.hard_state.commit.max(index);
        self.snapshot = Some(snap);
    }
}

/// How a reopened store broke the contract.
#[derive(Debug)]
pub enum Violation {
    /// It came back older than what it had synced: acknowledged writes
    /// are gone.
    Lost(String),
    /// It holds something no allowed state holds: a wrong entry, hard
    /// state, configuration or snapshot.
    Misread(String),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Lost(s) => write!(f, "acknowledged state lost: {s}"),
            Violation::Misread(s) => write!(f, "misread: {s}"),
        }
    }
}

/// The states a store may show after a power loss. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Model {
    /// Oldest first: the last synced state, then each one the store
    /// answered since without a sync, then the one in doubt, if any.
    allowed: Vec<Image>,
    /// Whether the last of `allowed` is a write the power cut short.
    in_doubt: bool,
}

impl Model {
    /// A blank disk: nothing acknowledged.
    pub fn new() -> Model {
        Model {
            allowed: vec![Image::default()],
            in_doubt: false,
        }
    }

    /// The state the store holds now, as far as it answered.
    pub fn current(&self) -> &Image {
        let answered = self.allowed.len() - usize::from(self.in_doubt);
        &self.allowed[answered - 1]
    }

    /// The last state the store synced: what a power loss must keep.
    pub fn durable(&self) -> &Image {
        &self.allowed[0]
    }

    /// The store answered `next` (synced or not).
    pub fn answered(&mut self, next: Image, synced: bool) {
        assert!(!self.in_doubt, "no write after the one the power cut");
        if synced {
            self.allowed = vec![next];
        } else {
            self.allowed.push(next);
        }
    }

    /// The power failed during the write that leads to `next`: it may have
    /// reached the disk whole, or not at all.
    pub fn cut_short(&mut self, next: Image) {
        self.allowed.push(next);
        self.in_doubt = true;
    }

    /// Checks what a reopened store holds against the allowed states.
    pub fn check(&self, found: &Image) -> Result<(), Violation> {
        if self.allowed.contains(found) {
            return Ok(());
        }
        if let Some(bad) = self.unwritten_entry(found) {
            return Err(Violation::Misread(format!(
                "entry {} (term {}) is in no state the store was given",
                bad.index, bad.term
            )));
        }
        let durable = self.durable();
        let part = if !self
            .allowed
            .iter()
            .any(|a| a.hard_state == found.hard_state)
        {
            format!(
                "hard state {:?}, synced {:?}",
                found.hard_state, durable.hard_state
            )
        } else if !self.allowed.iter().any(|a| a.snapshot == found.snapshot) {
            format!(
                "snapshot at {}, synced at {}",
                found.snapshot_index(),
                durable.snapshot_index()
            )
        } else if !self
            .allowed
            .iter()
            .any(|a| a.membership == found.membership)
        {
            format!(
                "configuration {:?}, synced {:?}",
                found.membership, durable.membership
            )
        } else {
            format!(
                "log {}..={} ({} entries), synced {}..={} ({} entries)",
                found.offset() + 1,
                found.last_index(),
                found.entries.len(),
                durable.offset() + 1,
                durable.last_index(),
                durable.entries.len()
            )
        };
        let older = found.hard_state.term < durable.hard_state.term
            || found.last_index() < durable.last_index()
            || found.snapshot_index() < durable.snapshot_index()
            || found.is_blank();
        Err(if older {
            Violation::Lost(part)
        } else {
            Violation::Misread(part)
        })
    }

    /// The store came back holding `found` (checked): it is what the disk
    /// holds now, and the base of what follows.
    pub fn reopened(&mut self, found: Image) {
        self.allowed = vec![found];
        self.in_doubt = false;
    }

    /// An entry `found` holds that no allowed state holds at its index.
    fn unwritten_entry<'a>(&self, found: &'a Image) -> Option<&'a Entry> {
        found
            .entries
            .iter()
            .find(|e| !self.allowed.iter().any(|a| a.entry(e.index) == Some(*e)))
    }
}
