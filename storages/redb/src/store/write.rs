//! One group's write path: a `Ready`'s batch staged into a write
//! transaction (entries, hard state, configuration, snapshot record,
//! compaction) and applied to the store's bounds once committed
//! ([`Store::finish`]). The storage thread commits one group's batch alone
//! ([`Store::write`]) or several groups' together (`crate::groups`), both
//! through [`File::commit`](super::File::commit). It must never change the
//! store's state for a transaction that was not committed.

use raft_actors::core::{Entry, HardState, LogIndex};
use raft_actors::storage::{Snapshot, StorageError, ToPersist};
use redb::{ReadableTable, WriteTransaction};

use super::{
    Bounds, LogTable, NamedTable, Store, GROUP_META, HARD_STATE_KEY, LOG, MEMBERSHIP_KEY, SNAPSHOT,
    SNAPSHOT_KEY,
};
use crate::record;

/// A batch written into a transaction, not yet committed.
pub(crate) struct Staged {
    next: Bounds,
    /// Whether the commit must sync (any one batch's need syncs them all).
    pub(crate) must_sync: bool,
    /// Entries it writes.
    pub(crate) written: u64,
}

impl Store {
    /// Everything one `Ready` persists, in one transaction, one fsync.
    ///
    /// A batch the core marks as needing no sync (it only moves the commit
    /// index, or only compacts: `ToPersist::must_sync` is false) gets no
    /// fsync: Raft needs term, vote and entries durable before a node
    /// speaks (Figure 2), not the commit index, which a restarted node
    /// relearns from the leader. A commit index alone costs no transaction
    /// at all: it is kept in memory and written by the next batch that
    /// has work for the disk (measured: a transaction of its own dirtied
    /// pages that the next fsync then had to write, a quarter of the
    /// write time at one client). A compaction is committed without an
    /// fsync, which redb makes durable with the next synced commit, in
    /// order, or loses whole in a crash. This halves the fsyncs of a leader
    /// at low load (etcd's `MustSync` rule). A batch that carries a new
    /// term or vote, entries or a snapshot is synced whatever its flag
    /// says, so a batch built by hand cannot lose them.
    pub(crate) fn write(&mut self, batch: &ToPersist) -> Result<(), StorageError> {
        if self.defer(batch) {
            return Ok(());
        }
        let txn = self.file.begin_write()?;
        let staged = self.stage(&txn, batch)?;
        self.file.commit(txn, staged.must_sync, staged.written)?;
        self.finish(staged);
        Ok(())
    }

    /// Keeps a batch that needs no transaction (a commit index alone) in
    /// memory, answering whether it did; any other batch is to be staged.
    pub(crate) fn defer(&mut self, batch: &ToPersist) -> bool {
        if !self.must_sync(batch) && batch.compact_to.is_none() {
            if let Some(hs) = batch.hard_state {
                self.deferred = Some(hs);
                self.bounds.hard_state = hs;
            }
            return true;
        }
        false
    }

    /// Whether `batch` must be synced: its flag, or anything it carries
    /// that Raft needs durable before the node speaks.
    fn must_sync(&self, batch: &ToPersist) -> bool {
        let old = self.bounds.hard_state;
        batch.must_sync
            || batch.membership.is_some()
            || batch.snapshot.is_some()
            || !batch.entries.is_empty()
            || batch
                .hard_state
                .is_some_and(|hs| hs.term != old.term || hs.vote != old.vote)
    }

    /// Writes `batch` into `txn`, which the caller commits (alone, or with
    /// other groups' batches: one transaction, one fsync for all). Answers
    /// what [`finish`](Self::finish) applies once the commit succeeded;
    /// the store's own state is unchanged until then, so a transaction
    /// dropped uncommitted leaves nothing behind.
    pub(crate) fn stage(
        &self,
        txn: &WriteTransaction,
        batch: &ToPersist,
    ) -> Result<Staged, StorageError> {
        let must_sync = self.must_sync(batch);
        let mut next = self.bounds.clone();
        let written = batch.entries.len() as u64;
        {
            let mut log = txn.open_table(LOG).map_err(|e| self.sio(e))?;
            let mut meta = txn.open_table(GROUP_META).map_err(|e| self.sio(e))?;
            if let Some(hs) = self.deferred.filter(|_| batch.hard_state.is_none()) {
                // First, so that what the batch itself sets (a snapshot's
                // commit index) lands on top of it.
                let rec = record::encode(&hs).map_err(|e| self.sio(e))?;
                meta.insert((self.group, HARD_STATE_KEY), rec.as_slice())
                    .map_err(|e| self.sio(e))?;
            }
            if let Some(membership) = &batch.membership {
                // A founding's first configuration.
                let rec = record::encode(membership).map_err(|e| self.sio(e))?;
                meta.insert((self.group, MEMBERSHIP_KEY), rec.as_slice())
                    .map_err(|e| self.sio(e))?;
                next.has_membership = true;
            }
            if let Some(snapshot) = &batch.snapshot {
                let mut snaps = txn.open_table(SNAPSHOT).map_err(|e| self.sio(e))?;
                if batch.snapshot_received {
                    self.install(&mut log, &mut meta, &mut snaps, &mut next, snapshot)?;
                } else {
                    self.save_snapshot(&mut snaps, &mut next, snapshot)?;
                }
            }
            if batch.hard_state.is_some() || !batch.entries.is_empty() {
                self.append(
                    &mut log,
                    &mut meta,
                    &mut next,
                    batch.hard_state,
                    &batch.entries,
                )?;
            }
            if let Some(upto) = batch.compact_to {
                self.compact(&mut log, &mut next, upto)?;
            }
        }
        Ok(Staged {
            next,
            must_sync,
            written,
        })
    }

    /// Applies a committed [`Staged`] batch to what the store knows.
    pub(crate) fn finish(&mut self, staged: Staged) {
        self.bounds = staged.next;
        self.deferred = None;
    }

    /// The hard state a load shows: the stored one, or the one a batch
    /// that needed no sync moved since (kept in memory).
    pub(crate) fn deferred_hard_state(&self) -> Option<HardState> {
        self.deferred
    }

    fn append(
        &self,
        log: &mut LogTable<'_>,
        meta: &mut NamedTable<'_>,
        next: &mut Bounds,
        hard_state: Option<HardState>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        if let Some(first) = entries.first() {
            let (offset, last) = (next.offset(), next.last_index());
            if first.index == 0 || first.index > last + 1 || first.index <= offset {
                return Err(StorageError::OutOfOrder(format!(
                    "append at {} to a log holding {}..={last}",
                    first.index,
                    offset + 1
                )));
            }
            if entries.windows(2).any(|w| w[1].index != w[0].index + 1) {
                return Err(StorageError::OutOfOrder("entries not contiguous".into()));
            }
            self.drop_from(log, next, first.index)?;
            for e in entries {
                let rec = record::encode(e).map_err(|err| self.sio(err))?;
                log.insert((self.group, e.index), rec.as_slice())
                    .map_err(|err| self.sio(err))?;
            }
            let lo = next.held.map_or(first.index, |(f, _)| f);
            let hi = entries.last().map_or(first.index, |e| e.index);
            next.held = Some((lo, hi));
        }
        if let Some(hs) = hard_state {
            let rec = record::encode(&hs).map_err(|e| self.sio(e))?;
            meta.insert((self.group, HARD_STATE_KEY), rec.as_slice())
                .map_err(|e| self.sio(e))?;
            next.hard_state = hs;
        }
        Ok(())
    }

    /// Removes held entries from `from` on, inside the caller's transaction.
    fn drop_from(
        &self,
        log: &mut LogTable<'_>,
        next: &mut Bounds,
        from: LogIndex,
    ) -> Result<(), StorageError> {
        let Some((first, last)) = next.held else {
            return Ok(());
        };
        for index in from.max(first)..=last {
            log.remove((self.group, index)).map_err(|e| self.sio(e))?;
        }
        next.held = (from > first).then(|| (first, last.min(from - 1)));
        Ok(())
    }

    fn save_snapshot(
        &self,
        snaps: &mut NamedTable<'_>,
        next: &mut Bounds,
        snapshot: &Snapshot,
    ) -> Result<(), StorageError> {
        if snapshot.meta.index > next.last_index() {
            return Err(StorageError::OutOfOrder(format!(
                "snapshot at {} past the last entry {}",
                snapshot.meta.index,
                next.last_index()
            )));
        }
        if snapshot.meta.index < next.snapshot.0 {
            // It would leave compacted entries uncovered.
            return Err(StorageError::OutOfOrder(format!(
                "snapshot at {} older than the stored one at {}",
                snapshot.meta.index, next.snapshot.0
            )));
        }
        let rec = record::encode(snapshot).map_err(|e| self.sio(e))?;
        snaps
            .insert((self.group, SNAPSHOT_KEY), rec.as_slice())
            .map_err(|e| self.sio(e))?;
        next.snapshot = (snapshot.meta.index, snapshot.meta.term);
        Ok(())
    }

    /// A leader's snapshot (§7): replaces the stored one and its
    /// configuration, and the entries it covers (all of them if the log
    /// diverged), in the caller's transaction: a crash mid-install leaves
    /// the old snapshot and log as they were.
    fn install(
        &self,
        log: &mut LogTable<'_>,
        meta: &mut NamedTable<'_>,
        snaps: &mut NamedTable<'_>,
        next: &mut Bounds,
        snapshot: &Snapshot,
    ) -> Result<(), StorageError> {
        let index = snapshot.meta.index;
        if index <= next.snapshot.0 {
            return Err(StorageError::OutOfOrder(format!(
                "install of a snapshot at {index} over one at {}",
                next.snapshot.0
            )));
        }
        let matching = match next.held {
            Some((first, last)) if (first..=last).contains(&index) => {
                match log.get((self.group, index)).map_err(|e| self.sio(e))? {
                    Some(rec) => {
                        let e: Entry =
                            record::decode(rec.value()).map_err(|e| StorageError::Corrupt {
                                index,
                                reason: e.to_string(),
                            })?;
                        e.term == snapshot.meta.term
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if matching {
            self.drop_upto(log, next, index)?;
        } else if let Some((first, _)) = next.held {
            self.drop_from(log, next, first)?;
        }
        let membership = record::encode(&snapshot.meta.membership).map_err(|e| self.sio(e))?;
        meta.insert((self.group, MEMBERSHIP_KEY), membership.as_slice())
            .map_err(|e| self.sio(e))?;
        next.has_membership = true;
        if next.hard_state.commit < index {
            next.hard_state.commit = index;
            let rec = record::encode(&next.hard_state).map_err(|e| self.sio(e))?;
            meta.insert((self.group, HARD_STATE_KEY), rec.as_slice())
                .map_err(|e| self.sio(e))?;
        }
        let term = snapshot.meta.term;
        let rec = record::encode(snapshot).map_err(|e| self.sio(e))?;
        snaps
            .insert((self.group, SNAPSHOT_KEY), rec.as_slice())
            .map_err(|e| self.sio(e))?;
        next.snapshot = (index, term);
        Ok(())
    }

    fn compact(
        &self,
        log: &mut LogTable<'_>,
        next: &mut Bounds,
        upto: LogIndex,
    ) -> Result<(), StorageError> {
        if upto > next.snapshot.0 {
            return Err(StorageError::OutOfOrder(format!(
                "compact to {upto} past the snapshot at {}",
                next.snapshot.0
            )));
        }
        self.drop_upto(log, next, upto)
    }

    /// Removes held entries up to `upto`, inside the caller's transaction.
    fn drop_upto(
        &self,
        log: &mut LogTable<'_>,
        next: &mut Bounds,
        upto: LogIndex,
    ) -> Result<(), StorageError> {
        let Some((first, last)) = next.held else {
            return Ok(());
        };
        for index in first..=upto.min(last) {
            log.remove((self.group, index)).map_err(|e| self.sio(e))?;
        }
        next.held = (upto < last).then(|| (first.max(upto + 1), last));
        Ok(())
    }
}
