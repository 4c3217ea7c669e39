//! [`File`], the open redb database, and [`Store`], one Raft group's
//! records in it, with every operation on them, blocking. They run only on
//! the file's storage thread (see `crate::groups`), never on an async
//! executor.
//!
//! Layout (format 3): table `meta` holds the file's format version;
//! `group_meta` holds each Raft group's hard state and configuration
//! records under `(group, name)`; `log` maps `(group, index)` to an
//! entry's record; `snapshot` holds each group's latest snapshot record.
//! Every key starts with the group, so one file holds many groups' logs
//! (multi-raft) and a store reads and writes only its own group's.
//! Everything one `Ready` persists is written in one transaction (shared
//! with other groups' batches queued beside it), committed with redb's
//! immediate durability, one fsync, if any of them must sync. A
//! transaction that fails anywhere is dropped uncommitted, so nothing of
//! it reaches the disk or the in-memory bounds. Opening, and the checks
//! made then, are in [`open`]; the write path in [`write`].

mod open;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use raft_actors::core::{Entry, GroupId, HardState, LogIndex, Membership, Term};
use raft_actors::storage::{LogReader, StorageError};
use redb::{Database, Durability, Table, TableDefinition, WriteTransaction};

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
    /// Transactions that carried several groups' batches.
    pub(crate) merged: AtomicU64,
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

/// The open database file, shared by the [`Store`] of every group it
/// holds (all on the storage thread).
#[derive(Clone)]
pub(crate) struct File {
    /// Shared only with [`LogFile`] readers, which hold it weakly: the
    /// file closes when the stores do.
    db: Arc<Database>,
    path: PathBuf,
    counters: Arc<Counters>,
    /// Set by the first write that failed on I/O (a commit whose fsync
    /// failed among them): why every later call, of every group, is
    /// refused until the file is reopened. Shared: after a failed fsync
    /// nothing is known of any group's pages.
    poisoned: Arc<Mutex<Option<String>>>,
}

impl File {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    fn io(&self, e: impl ToString) -> RedbError {
        RedbError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Why the file refuses every call, if a write failed on I/O.
    fn poisoned(&self) -> Option<String> {
        self.poisoned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Refuses every later call, of every group, for `reason`.
    pub(crate) fn poison(&self, reason: String) {
        tracing::error!(path = %self.path.display(), %reason, "a write failed: the store refuses every call until reopened");
        *self.poisoned.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    /// Refuses every call once a write failed on I/O (see
    /// [`Store::poisoning`]): reads too, since what they would read is what
    /// the failed write may or may not have left.
    pub(crate) fn refuse_if_poisoned(&self) -> Result<(), StorageError> {
        match self.poisoned() {
            None => Ok(()),
            Some(why) => Err(StorageError::Io(format!(
                "{}: refused, an earlier write failed ({why}) and its outcome on disk is unknown: reopen the store",
                self.path.display()
            ))),
        }
    }

    /// A write transaction on the file.
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StorageError> {
        self.db
            .begin_write()
            .map_err(|e| StorageError::from(self.io(e)))
    }

    /// Commits `txn`, which wrote `entries` entries: with immediate
    /// durability (one fsync, counted) if `must_sync`, else without, and
    /// redb makes it durable with the next synced commit, in order, or a
    /// crash loses it whole.
    pub(crate) fn commit(
        &self,
        mut txn: WriteTransaction,
        must_sync: bool,
        entries: u64,
    ) -> Result<(), StorageError> {
        if !must_sync {
            txn.set_durability(Durability::None);
        }
        txn.commit().map_err(|e| StorageError::from(self.io(e)))?;
        if must_sync {
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
            self.counters.entries.fetch_add(entries, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// One group's records in the open file. See the [module docs](self).
pub(crate) struct Store {
    file: File,
    /// The Raft group whose records this store reads and writes.
    group: GroupId,
    bounds: Bounds,
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
            db: Arc::downgrade(&self.file.db),
            path: self.file.path.clone(),
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
            self.file.poison(reason.clone());
        }
        res
    }

    /// Refuses every call once a write failed on I/O (see
    /// [`poisoning`](Self::poisoning)).
    pub(crate) fn refuse_if_poisoned(&self) -> Result<(), StorageError> {
        self.file.refuse_if_poisoned()
    }

    fn io(&self, e: impl ToString) -> RedbError {
        self.file.io(e)
    }

    fn sio(&self, e: impl ToString) -> StorageError {
        StorageError::from(self.io(e))
    }

    /// Writes the configuration of a fresh store.
    pub(crate) fn save_membership(&mut self, membership: &Membership) -> Result<(), StorageError> {
        let rec = record::encode(membership).map_err(|e| self.sio(e))?;
        let txn = self.file.db.begin_write().map_err(|e| self.sio(e))?;
        {
            let mut meta = txn.open_table(GROUP_META).map_err(|e| self.sio(e))?;
            meta.insert((self.group, MEMBERSHIP_KEY), rec.as_slice())
                .map_err(|e| self.sio(e))?;
        }
        self.file.commit(txn, true, 0)?;
        self.bounds.has_membership = true;
        Ok(())
    }
}
