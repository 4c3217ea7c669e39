//! [`WalError`]: why a log cannot be opened, each in one line that names
//! the file.

use std::path::{Path, PathBuf};

use raft_actors::storage::StorageError;

/// Why a [`WalStorage`](crate::WalStorage) cannot be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file or the dir failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file or dir.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A segment cannot be read back: damaged, of another format, lost.
    #[error("{path}: log damaged at byte {offset}: {reason}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another store holds the dir.
    #[error("{0}: the log is in use by another process")]
    Locked(PathBuf),
    /// The storage thread is gone.
    #[error("{0}: the storage thread stopped")]
    Stopped(PathBuf),
}

impl WalError {
    pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> WalError {
        WalError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
        WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }
}

impl From<WalError> for StorageError {
    fn from(e: WalError) -> StorageError {
        match e {
            WalError::Corrupt { .. } => StorageError::Corrupt {
                index: 0,
                reason: e.to_string(),
            },
            other => StorageError::Io(other.to_string()),
        }
    }
}
