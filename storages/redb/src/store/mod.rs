//! [`Store`]: the redb database and every operation on it, blocking. It
//! runs only on the storage's own thread (see [`crate::storage`]), never on
//! an async executor.
//!
//! Layout (format 3): table `meta` holds the file's format version;
//! `group_meta` holds each Raft group's hard state and configuration
//! records under `(group, name)`; `log` maps `(group, index)` to an
//! entry's record; `snapshot` holds each group's latest snapshot record.
//! Every key starts with the group, so one file can hold many groups'
//! logs (multi-raft) and a store reads and writes only its own group's. Everything one `Ready` persists is one
//! write transaction, committed with redb's immediate durability: one
//! fsync. A transaction that fails anywhere is dropped uncommitted, so
//! nothing of it reaches the disk or the in-memory bounds. Opening, and
//! the checks made then, are in [`open`].

mod open;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use raft_actors::core::{Entry, GroupId, HardState, LogIndex, Membership, Term};
use raft_actors::storage::{LogReader, Snapshot, StorageError, ToPersist};
use redb::{Database, Durability, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::error::RedbError;
use crate::record;

/// File-wide: the format marker.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Per group: its hard state and configuration, keyed `(group, name)`.
const GROUP_META: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("group_meta");
/// Per group: its entries, keyed `(group, index)`.
const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log");
/// Per group: its latest snapshot, keyed `(group, name)`.
const SNAPSHOT: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("snapshot");

/// An open `log` table.
type LogTable<'t> = Table<'t, (u64, u64), &'static [u8]>;
/// An open `group_meta` or `snapshot` table.
type NamedTable<'t> = Table<'t, (u64, &'static str), &'static [u8]>;

const FORMAT_KEY: &str = "format";
const HARD_STATE_KEY: &str = "hard_state";
const MEMBERSHIP_KEY: &str = "membership";
const SNAPSHOT_KEY: &str = "current";

/// The database file inside the data dir.
pub(crate) const FILE_NAME: &str = "raft.redb";
/// The file beside it that says a store was created here.
const SIDECAR_NAME: &str = "raft.redb.format";

/// Counters shared with the handle: commits are fsyncs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) entries: AtomicU64,
}

/// What the store knows without reading the disk, kept in step with every
/// committed transaction (and only with committed ones).
#[derive(Clone, Debug, Default)]
struct Bounds {
    /// First and last index of the entries held, if any.
    held: Option<(LogIndex, LogIndex)>,
    /// Index and term of the stored snapshot (0, 0 without one).
    snapshot: (LogIndex, Term),
    hard_state: HardState,
    /// Whether a configuration record exists (bootstrapped or installed).
    has_membership: bool,
}

impl Bounds {
    /// The index before the first entry held.
    fn offset(&self) -> LogIndex {
        match self.held {
            Some((first, _)) => first - 1,
            None => self.snapshot.0,
        }
    }

    fn last_index(&self) -> LogIndex {
        match self.held {
            Some((_, last)) => last,
            None => self.snapshot.0,
        }
    }
}

/// The open database. See the [module docs](self).
pub(crate) struct Store {
    /// Shared only with [`LogFile`] readers, which hold it weakly: the
    /// file closes when the store does.
    db: Arc<Database>,
    path: PathBuf,
    /// The Raft group whose records this store reads and writes.
    group: GroupId,
    bounds: Bounds,
    counters: Arc<Counters>,
    /// Set by the first write that failed on I/O (a commit whose fsync
    /// failed among them): why every later call is refused until the
    /// store is reopened.
    poisoned: Option<String>,
    /// A hard state moved by batches that needed no sync (a commit index
    /// alone), kept in memory and written with the next batch that has
    /// work for the disk: no transaction of its own. `load` shows it; a
    /// restart may see the older one, as `Storage::write` allows.
    deferred: Option<HardState>,
}

/// One stored entry's record, checked: decodable, and the entry of the
/// index it is stored at.
pub(crate) fn decode_entry(path: &Path, key: u64, bytes: &[u8]) -> Result<Entry, RedbError> {
    let what = format!("entry {key}");
    if key == 0 {
        return Err(RedbError::corrupt(
            path,
            0,
            what,
            "index 0 is never written",
        ));
    }
    let entry: Entry = record::decode(bytes).map_err(|e| RedbError::record(path, key, &what, e))?;
    if entry.index != key {
        return Err(RedbError::corrupt(
            path,
            key,
            what,
            format!("holds the entry of index {}", entry.index),
        ));
    }
    Ok(entry)
}

/// Reads entries back from the store's file, in read transactions of
/// their own (redb lets them run beside the storage thread's writes).
pub(crate) struct LogFile {
    db: Weak<Database>,
    path: PathBuf,
    group: GroupId,
}

impl LogReader for LogFile {
    fn read(&self, first: LogIndex, last: LogIndex) -> Result<Vec<Entry>, StorageError> {
        let sio =
            |e: &dyn std::fmt::Display| StorageError::Io(format!("{}: {e}", self.path.display()));
        let Some(db) = self.db.upgrade() else {
            return Err(StorageError::Io(format!(
                "{}: the store is closed",
                self.path.display()
            )));
        };
        if last < first {
            return Ok(Vec::new());
        }
        let txn = db.begin_read().map_err(|e| sio(&e))?;
        let log = txn.open_table(LOG).map_err(|e| sio(&e))?;
        let mut out = Vec::with_capacity((last - first + 1).min(4096) as usize);
        let (group, path) = (self.group, &self.path);
        for item in log
            .range((group, first)..=(group, last))
            .map_err(|e| sio(&e))?
        {
            let (k, v) = item.map_err(|e| sio(&e))?;
            out.push(decode_entry(path, k.value().1, v.value()).map_err(StorageError::from)?);
        }
        match out.first() {
            Some(e) if e.index == first && out.len() as u64 == last - first + 1 => Ok(out),
            Some(e) if e.index > first => Err(StorageError::Compacted { first: e.index }),
            _ => Err(StorageError::Io(format!(
                "{}: entries {first}..={last} asked for, {} found",
                self.path.display(),
                out.len()
            ))),
        }
    }
}

impl Store {
    /// A reader of this store's log, for as long as the store is open.
    pub(crate) fn log_reader(&self) -> LogFile {
        LogFile {
            db: Arc::downgrade(&self.db),
            path: self.path.clone(),
            group: self.group,
        }
    }

    /// Whether nothing was ever stored: no configuration, no hard state, no
    /// entry, no snapshot.
    pub(crate) fn is_fresh(&self) -> bool {
        let b = &self.bounds;
        !b.has_membership
            && b.held.is_none()
            && b.snapshot.0 == 0
            && b.hard_state == HardState::default()
    }

    /// Runs a write, unless an earlier one failed on I/O; one that fails so
    /// poisons the store. After a failed fsync the kernel may have dropped
    /// the dirty pages and marked them clean, so a later commit that
    /// succeeds proves nothing about the earlier one (PostgreSQL's
    /// fsyncgate): only a reopen, which reads what the disk holds, may
    /// write again. redb refuses too after an I/O error (`PreviousIo`);
    /// this says so plainly, and does not depend on it.
    pub(crate) fn poisoning<R>(
        &mut self,
        write: impl FnOnce(&mut Store) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        self.refuse_if_poisoned()?;
        let res = write(self);
        if let Err(StorageError::Io(reason)) = &res {
            tracing::error!(path = %self.path.display(), %reason, "a write failed: the store refuses every call until reopened");
            self.poisoned = Some(reason.clone());
        }
        res
    }

    /// Refuses every call once a write failed on I/O (see
    /// [`poisoning`](Self::poisoning)): reads too, since what they would
    /// read is what the failed write may or may not have left.
    pub(crate) fn refuse_if_poisoned(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            None => Ok(()),
            Some(why) => Err(StorageError::Io(format!(
                "{}: refused, an earlier write failed ({why}) and its outcome on disk is unknown: reopen the store",
                self.path.display()
            ))),
        }
    }

    fn io(&self, e: impl ToString) -> RedbError {
        RedbError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn sio(&self, e: impl ToString) -> StorageError {
        StorageError::from(self.io(e))
    }

    /// Writes the configuration of a fresh store.
    pub(crate) fn save_membership(&mut self, membership: &Membership) -> Result<(), StorageError> {
        let rec = record::encode(membership).map_err(|e| self.sio(e))?;
        let txn = self.db.begin_write().map_err(|e| self.sio(e))?;
        {
            let mut meta = txn.open_table(GROUP_META).map_err(|e| self.sio(e))?;
            meta.insert((self.group, MEMBERSHIP_KEY), rec.as_slice())
                .map_err(|e| self.sio(e))?;
        }
        self.commit(txn, 0)?;
        self.bounds.has_membership = true;
        Ok(())
    }

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
    pub(crate) fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let old = self.bounds.hard_state;
        let must_sync = batch.must_sync
            || batch.membership.is_some()
            || batch.snapshot.is_some()
            || !batch.entries.is_empty()
            || batch
                .hard_state
                .is_some_and(|hs| hs.term != old.term || hs.vote != old.vote);
        if !must_sync && batch.compact_to.is_none() {
            if let Some(hs) = batch.hard_state {
                self.deferred = Some(hs);
                self.bounds.hard_state = hs;
            }
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(|e| self.sio(e))?;
        if !must_sync {
            txn.set_durability(Durability::None);
        }
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
            if let Some(snapshot) = batch.snapshot {
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
                    batch.entries,
                )?;
            }
            if let Some(upto) = batch.compact_to {
                self.compact(&mut log, &mut next, upto)?;
            }
        }
        if must_sync {
            self.commit(txn, written)?;
        } else {
            txn.commit().map_err(|e| self.sio(e))?;
        }
        self.bounds = next;
        self.deferred = None;
        Ok(())
    }

    /// The hard state a load shows: the stored one, or the one a batch
    /// that needed no sync moved since (kept in memory).
    pub(crate) fn deferred_hard_state(&self) -> Option<HardState> {
        self.deferred
    }

    /// Commits with immediate durability: one fsync, counted.
    fn commit(&self, txn: WriteTransaction, entries: u64) -> Result<(), StorageError> {
        txn.commit().map_err(|e| self.sio(e))?;
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters.entries.fetch_add(entries, Ordering::Relaxed);
        Ok(())
    }

    fn append(
        &self,
        log: &mut LogTable<'_>,
        meta: &mut NamedTable<'_>,
        next: &mut Bounds,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
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
            for e in &entries {
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
        snapshot: Snapshot,
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
        let rec = record::encode(&snapshot).map_err(|e| self.sio(e))?;
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
        snapshot: Snapshot,
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
        let rec = record::encode(&snapshot).map_err(|e| self.sio(e))?;
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
