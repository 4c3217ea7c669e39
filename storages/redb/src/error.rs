//! [`RedbError`]: why a store cannot be opened, each a clear line an
//! operator can act on, and how it maps onto the node's
//! [`StorageError`].

use std::path::PathBuf;

use raft_actors::core::LogIndex;
use raft_actors::storage::StorageError;
use thiserror::Error;

use crate::record::RecordError;

/// Why a [`RedbStorage`](crate::RedbStorage) could not be opened or used.
/// Every one of these at startup means the node must not start: going on
/// could lose acknowledged entries or vote twice in a term.
///
/// ```
/// use raft_actors_storage_redb::RedbStorage;
/// let file = tempfile::NamedTempFile::new()?;
/// // A data dir that is a regular file cannot hold the store.
/// let err = RedbStorage::open(file.path()).err().expect("refused");
/// assert!(err.to_string().contains("data dir"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Error)]
pub enum RedbError {
    /// The data dir cannot be created or used.
    #[error("data dir {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// redb refused the file: not a redb file, truncated, damaged, or held
    /// open by another process.
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        reason: String,
    },
    /// redb panicked while opening the file (caught): a damaged file that
    /// redb asserts on rather than refuses, which is redb's bug to fix, not
    /// the store's. Refused all the same.
    #[error("cannot open {path}: redb panicked: {reason}")]
    Panicked {
        /// The database file.
        path: PathBuf,
        /// The panic's message.
        reason: String,
    },
    /// The file was written by a newer build; this one cannot read it.
    #[error("{path} has format version {found}, newer than the {supported} this build reads: refusing to start")]
    NewerFormat {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The file was written by an older build in a format this one no
    /// longer reads (format 1 held snapshots inside the database; format 2
    /// keyed its records without a group id).
    #[error("{path} has format version {found}, older than the {supported} this build reads: refusing to start (empty the data dir, start the node without --peers and add it back, so it catches up from the cluster)")]
    OlderFormat {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// A stored record is damaged or inconsistent with the rest.
    #[error("{path}: corrupt {what}: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which record (`entry 42`, `hard state`, ...).
        what: String,
        /// What is wrong with it.
        reason: String,
        /// The log index concerned (0 for metadata).
        index: LogIndex,
    },
    /// A read or write failed.
    #[error("storage I/O on {path}: {reason}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The storage's thread is gone (it panicked, or the store was closed).
    #[error("the storage thread of {0} has stopped")]
    Stopped(PathBuf),
    /// The group is open already on this file: one handle (and its
    /// clones) per group, or two nodes would write one log.
    #[error("{path}: group {group} is open already")]
    GroupOpen {
        /// The database file.
        path: PathBuf,
        /// The group.
        group: raft_actors::core::GroupId,
    },
}

impl RedbError {
    pub(crate) fn corrupt(
        path: &std::path::Path,
        index: LogIndex,
        what: impl Into<String>,
        reason: impl ToString,
    ) -> Self {
        RedbError::Corrupt {
            path: path.to_path_buf(),
            what: what.into(),
            reason: reason.to_string(),
            index,
        }
    }

    pub(crate) fn record(
        path: &std::path::Path,
        index: LogIndex,
        what: &str,
        e: RecordError,
    ) -> Self {
        Self::corrupt(path, index, what, e)
    }
}

impl From<RedbError> for StorageError {
    fn from(e: RedbError) -> Self {
        match e {
            RedbError::Corrupt { index, .. } => StorageError::Corrupt {
                index,
                reason: e.to_string(),
            },
            other => StorageError::Io(other.to_string()),
        }
    }
}
