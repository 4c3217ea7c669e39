//! Opening a [`Store`]: on a file in a data dir or on a caller's backend,
//! with redb's file format chosen, the format marker and its sidecar
//! checked, and every record read and checked once ([`Store::read_all`]),
//! so a damaged store is refused at startup with one clear error. Nothing
//! here may write a record but the format marker: an open must never
//! change what a store holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_actors::core::{Entry, GroupId, HardState, Membership};
use raft_actors::storage::{LogState, Snapshot, StorageError};
use redb::{Database, StorageBackend, TableError};

use super::{
    decode_entry, Bounds, Counters, File, Store, FILE_NAME, FORMAT_KEY, GROUP_META, HARD_STATE_KEY,
    LOG, MEMBERSHIP_KEY, META, SIDECAR_NAME, SNAPSHOT, SNAPSHOT_KEY,
};
use crate::error::RedbError;
use crate::record::{self, RECORD_VERSION};

/// How every database is opened. New files get redb's file format v3,
/// whose allocator state is checksummed with the commit it belongs to: in
/// the v2 format (redb 2's default) a repair writes the allocator state
/// and clears the header's recovery flag under one fsync, and a disk that
/// persists the header but not the allocator pages before the power fails
/// leaves a file on which redb hands out pages still in use
/// (`tests/power_loss/` found it: a debug assertion in the buddy
/// allocator). Files created in v2 stay v2; redb reads both.
///
/// The cache is small (redb's default is 1 GiB): the core keeps the recent
/// log in memory and reads the store back at start and, for a follower
/// that lags past the core's log cache, a range of older entries, so a
/// large cache mostly holds pages nobody reads again and counts against the
/// process's memory (a node must stay within its state plus a bounded
/// overhead, whatever passed through its log).
fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.create_with_file_format_v3(true);
    b.set_cache_size(CACHE_BYTES);
    b
}

/// redb's page cache, reads and writes together.
const CACHE_BYTES: usize = 16 << 20;

/// Whether redb refused a file as not a redb file (no magic number).
fn not_redb(e: &redb::DatabaseError) -> bool {
    matches!(
        e,
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData
    )
}

impl File {
    /// Opens or creates the database in `dir` and checks its format, so a
    /// file of another format is refused here, at startup, with one clear
    /// error. Its groups' records are read by [`Store::open`].
    pub(crate) fn open(dir: &Path, counters: Arc<Counters>) -> Result<File, RedbError> {
        let data_dir = |reason: String| RedbError::DataDir {
            path: dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| data_dir(e.to_string()))?;
        if !dir.is_dir() {
            return Err(data_dir("not a directory".into()));
        }
        let path = dir.join(FILE_NAME);
        // Probe that the dir is usable before redb creates a file in it.
        if let Err(e) = std::fs::read_dir(dir) {
            return Err(data_dir(e.to_string()));
        }
        if !path.exists() && path.with_file_name(SIDECAR_NAME).exists() {
            return Err(RedbError::corrupt(
                &path,
                0,
                "database file",
                "missing, but this dir held a store: refusing to start over as a new node",
            ));
        }
        let sidecar = path.with_file_name(SIDECAR_NAME);
        let db = builder().create(&path).map_err(|e| RedbError::Open {
            path: path.clone(),
            reason: if not_redb(&e) && !sidecar.exists() {
                // redb writes its magic number last: a file without one,
                // where no store was ever completed, is a creation the power
                // cut short, and holds nothing acknowledged.
                format!(
                    "{e}; no store was ever completed in this dir (was its creation \
                     cut short?): remove the file to start this node afresh"
                )
            } else {
                e.to_string()
            },
        })?;
        File::init(db, path, Some(sidecar), counters)
    }

    /// Opens or creates the database on a caller's `backend`, named `name`
    /// in errors, with the checks [`File::open`] makes but the sidecar
    /// marker: a backend has no dir to hold one, so a backend emptied
    /// behind the store's back opens as a fresh store.
    pub(crate) fn open_backend(
        backend: impl StorageBackend,
        name: PathBuf,
        counters: Arc<Counters>,
    ) -> Result<File, RedbError> {
        let db = builder()
            .create_with_backend(backend)
            .map_err(|e| RedbError::Open {
                path: name.clone(),
                reason: e.to_string(),
            })?;
        File::init(db, name, None, counters)
    }

    /// Checks the format of an opened database (`sidecar`: the marker file
    /// beside it, if it lives in a data dir).
    fn init(
        db: Database,
        path: PathBuf,
        sidecar: Option<PathBuf>,
        counters: Arc<Counters>,
    ) -> Result<File, RedbError> {
        let file = File {
            db: Arc::new(db),
            path,
            counters,
            poisoned: Arc::default(),
        };
        file.check_format(sidecar.as_deref())?;
        Ok(file)
    }

    /// A fresh file gets this build's format; an existing one must have it.
    /// With a `sidecar`, a file that holds no store where the sidecar says
    /// one was is refused, and the sidecar is written once the format is.
    fn check_format(&self, sidecar: Option<&Path>) -> Result<(), RedbError> {
        let found = {
            let txn = self.db.begin_read().map_err(|e| self.io(e))?;
            match txn.open_table(META) {
                Ok(meta) => meta
                    .get(FORMAT_KEY)
                    .map_err(|e| self.io(e))?
                    .map(|v| v.value().to_vec()),
                Err(TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(self.io(e)),
            }
        };
        let held = sidecar.is_some_and(Path::exists);
        match found.as_deref() {
            None if held => Err(RedbError::corrupt(
                &self.path,
                0,
                "database file",
                format!(
                    "{} says this dir held a store, but the file holds none (emptied or replaced?)",
                    sidecar.map_or_else(String::new, |s| s.display().to_string())
                ),
            )),
            None => {
                let txn = self.db.begin_write().map_err(|e| self.io(e))?;
                {
                    let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
                    meta.insert(FORMAT_KEY, [RECORD_VERSION].as_slice())
                        .map_err(|e| self.io(e))?;
                }
                txn.commit().map_err(|e| self.io(e))?;
                sidecar.map_or(Ok(()), |s| self.write_sidecar(s))
            }
            Some([v]) if *v == RECORD_VERSION => match sidecar {
                // A crash between the marker's commit and the sidecar.
                Some(s) if !s.exists() => self.write_sidecar(s),
                _ => Ok(()),
            },
            Some([v]) if *v > RECORD_VERSION => Err(RedbError::NewerFormat {
                path: self.path.clone(),
                found: *v,
                supported: RECORD_VERSION,
            }),
            Some([v]) if (1..RECORD_VERSION).contains(v) => Err(RedbError::OlderFormat {
                path: self.path.clone(),
                found: *v,
                supported: RECORD_VERSION,
            }),
            Some(other) => Err(RedbError::corrupt(
                &self.path,
                0,
                "format marker",
                format!("unreadable format marker {other:?}"),
            )),
        }
    }

    /// Records, beside the database, that this dir holds a store: if the
    /// database file is ever emptied or replaced by a blank one, the next
    /// open refuses it instead of starting over as a fresh node (which
    /// would forget its votes and acknowledged entries).
    fn write_sidecar(&self, sidecar: &Path) -> Result<(), RedbError> {
        let write = || -> std::io::Result<()> {
            let f = std::fs::File::create(sidecar)?;
            std::io::Write::write_all(
                &mut &f,
                format!("raft-actors-storage-redb format {RECORD_VERSION}\n").as_bytes(),
            )?;
            f.sync_all()?;
            if let Some(dir) = sidecar.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| self.io(format!("writing {}: {e}", sidecar.display())))
    }
}

impl Store {
    /// Opens group `group`'s records in `file`: reads and checks every one
    /// once, so a damaged record stops this group here, at startup, with
    /// one clear error (and no other group of the file). Answers the store
    /// and the configuration it holds.
    pub(crate) fn open(file: &File, group: GroupId) -> Result<(Store, Membership), RedbError> {
        let mut store = Store {
            file: file.clone(),
            group,
            bounds: Bounds::default(),
            deferred: None,
        };
        let state = store.read_all()?;
        store.bounds = Bounds {
            held: match (state.entries.first(), state.entries.last()) {
                (Some(f), Some(l)) => Some((f.index, l.index)),
                _ => None,
            },
            snapshot: state
                .snapshot
                .as_ref()
                .map_or((0, 0), |s| (s.meta.index, s.meta.term)),
            hard_state: state.hard_state,
            has_membership: store.has_membership()?,
        };
        Ok((store, state.membership))
    }

    /// The snapshot record, if the store holds one (read again: opening
    /// checks its file against it).
    pub(crate) fn snapshot_record(&self) -> Result<Option<Snapshot>, RedbError> {
        let txn = self.file.db.begin_read().map_err(|e| self.io(e))?;
        let table = match txn.open_table(SNAPSHOT) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let Some(rec) = table
            .get((self.group, SNAPSHOT_KEY))
            .map_err(|e| self.io(e))?
        else {
            return Ok(None);
        };
        record::decode(rec.value())
            .map(Some)
            .map_err(|e| RedbError::record(&self.file.path, 0, "snapshot", e))
    }

    fn has_membership(&self) -> Result<bool, RedbError> {
        let txn = self.file.db.begin_read().map_err(|e| self.io(e))?;
        let meta = match txn.open_table(GROUP_META) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(self.io(e)),
        };
        let found = meta
            .get((self.group, MEMBERSHIP_KEY))
            .map_err(|e| self.io(e))?
            .is_some();
        Ok(found)
    }

    /// Reads and checks everything: each record decodes under its own key,
    /// then [`LogState::validate`]: the log is contiguous and joins the
    /// snapshot, and the hard state is consistent with the log (a commit
    /// index past the last entry means entries were lost, which must stop
    /// the node rather than shorten its log).
    pub(crate) fn read_all(&self) -> Result<LogState, RedbError> {
        let path = &self.file.path;
        let txn = self.file.db.begin_read().map_err(|e| self.io(e))?;
        let group = self.group;
        let meta = match txn.open_table(GROUP_META) {
            Ok(t) => Some(t),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.io(e)),
        };
        let get_meta = |key: &str| -> Result<Option<Vec<u8>>, RedbError> {
            let Some(meta) = &meta else { return Ok(None) };
            Ok(meta
                .get((group, key))
                .map_err(|e| self.io(e))?
                .map(|v| v.value().to_vec()))
        };
        let hard_state: HardState = match get_meta(HARD_STATE_KEY)? {
            Some(rec) => {
                record::decode(&rec).map_err(|e| RedbError::record(path, 0, "hard state", e))?
            }
            None => HardState::default(),
        };
        let membership: Membership = match get_meta(MEMBERSHIP_KEY)? {
            Some(rec) => {
                record::decode(&rec).map_err(|e| RedbError::record(path, 0, "configuration", e))?
            }
            None => Membership::default(),
        };
        let snapshot: Option<Snapshot> = match txn.open_table(SNAPSHOT) {
            Ok(t) => match t.get((group, SNAPSHOT_KEY)).map_err(|e| self.io(e))? {
                Some(rec) => Some(
                    record::decode(rec.value())
                        .map_err(|e| RedbError::record(path, 0, "snapshot", e))?,
                ),
                None => None,
            },
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.io(e)),
        };
        let mut entries: Vec<Entry> = Vec::new();
        match txn.open_table(LOG) {
            Ok(log) => {
                let own = log.range((group, 0)..=(group, u64::MAX));
                for item in own.map_err(|e| self.io(e))? {
                    let (k, v) = item.map_err(|e| self.io(e))?;
                    let key = k.value().1;
                    entries.push(decode_entry(path, key, v.value())?);
                }
            }
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.io(e)),
        }
        let state = LogState {
            hard_state,
            entries,
            membership,
            snapshot,
        };
        // The log's shape (contiguous, joined to the snapshot, terms and
        // commit index consistent) is checked where every adapter's is, so
        // a damaged store is refused here, at open, with that one reason.
        match state.validate() {
            Ok(()) => Ok(state),
            Err(StorageError::Corrupt { index, reason }) => {
                Err(RedbError::corrupt(path, index, "log", reason))
            }
            Err(other) => Err(RedbError::corrupt(path, 0, "log", other)),
        }
    }
}
