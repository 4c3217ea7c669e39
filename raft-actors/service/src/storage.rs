//! [`open_storage`]: the log storage a node runs (`--storage redb|wal|memory`),
//! opened from its data dir, and the roster of peers kept beside it.
//!
//! It never bootstraps a store itself: an empty one is founded by the node
//! from `--peers` only once every other voter recorded it (the node's
//! `bootstrap_voters`), so a voter whose data dir was lost is refused
//! instead of voting again with an empty log. It must never overwrite a
//! stored membership with `--peers`: a restarted node follows its own
//! storage and warns when the flag disagrees.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use raft_actors::core::{Membership, NodeId};
use raft_actors::node::{Roster, RosterError};
use raft_actors::storage::{MemoryStorage, Storage};
#[cfg(feature = "redb")]
use raft_actors_storage_redb::{RedbError, RedbGroups, RedbStorage};
#[cfg(feature = "wal")]
use raft_actors_storage_wal::{WalError, WalStorage};
use tracing::warn;

use super::flags::StorageKind;

/// The bootstrap voters: id and raft address.
pub type Peers = BTreeMap<NodeId, SocketAddr>;

/// Why the storage cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data dir cannot be created or read.
    #[error("cannot use data dir {dir}")]
    DataDir {
        /// The directory.
        dir: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The redb store cannot be opened (unusable, damaged, newer format).
    #[cfg(feature = "redb")]
    #[error(transparent)]
    Redb(#[from] RedbError),
    /// The log cannot be opened (in use, damaged, another format).
    #[cfg(feature = "wal")]
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The crate was built without the feature this storage needs.
    #[error("this build has no {0} storage (cargo feature `{0}`)")]
    NotBuilt(&'static str),
    /// The roster beside the store cannot be read.
    #[error(transparent)]
    Roster(#[from] RosterError),
    /// This storage keeps one group only.
    #[error("--groups above 1 needs --storage redb or memory: {0} keeps one Raft group")]
    OneGroupOnly(&'static str),
    /// The group layout beside the store cannot be read or kept.
    #[error(transparent)]
    Layout(#[from] crate::groups::LayoutError),
}

/// Opens (creating if needed) the storage in `dir`, unbootstrapped when
/// new, and the roster in `dir/roster`.
pub fn open_storage(
    kind: StorageKind,
    dir: &Path,
) -> Result<(Box<dyn Storage>, Roster), OpenError> {
    check_dir(dir)?;
    let roster = Roster::open(dir.join("roster"))?;
    let storage: Box<dyn Storage> = match kind {
        StorageKind::Memory => Box::new(MemoryStorage::new(Membership::default())),
        #[cfg(feature = "redb")]
        StorageKind::Redb => Box::new(RedbStorage::open(dir)?),
        #[cfg(feature = "wal")]
        StorageKind::Wal => Box::new(WalStorage::open(dir)?),
        #[allow(unreachable_patterns)]
        other => return Err(OpenError::NotBuilt(other.name())),
    };
    Ok((storage, roster))
}

/// One group's storage and the roster kept beside it.
pub type GroupStorage = (Box<dyn Storage>, Roster);

/// Opens (creating if needed) the storage of each of `groups` Raft groups
/// in `dir` (`None`: memory without a data dir), each with its roster
/// (`dir/roster` for group 0, `dir/roster-<g>` for group `g`): one redb
/// file holds every group's records. Index = group id.
pub fn open_group_storages(
    kind: StorageKind,
    dir: Option<&Path>,
    groups: u64,
) -> Result<Vec<GroupStorage>, OpenError> {
    if let Some(dir) = dir {
        check_dir(dir)?;
    }
    let roster = |g: u64| match dir {
        None => Ok(Roster::in_memory()),
        Some(dir) if g == 0 => Roster::open(dir.join("roster")),
        Some(dir) => Roster::open(dir.join(format!("roster-{g}"))),
    };
    match kind {
        StorageKind::Memory => (0..groups)
            .map(|g| {
                let s: Box<dyn Storage> = Box::new(MemoryStorage::new(Membership::default()));
                Ok((s, roster(g)?))
            })
            .collect(),
        #[cfg(feature = "redb")]
        StorageKind::Redb => {
            let dir = dir.ok_or_else(|| OpenError::DataDir {
                dir: String::new(),
                source: std::io::Error::other("--storage redb needs a data dir"),
            })?;
            let file = RedbGroups::open(dir)?;
            (0..groups)
                .map(|g| {
                    let s: Box<dyn Storage> = Box::new(file.group(g)?);
                    Ok((s, roster(g)?))
                })
                .collect()
        }
        other => Err(OpenError::OneGroupOnly(other.name())),
    }
}

/// Warns when a stored membership disagrees with `--peers`.
pub fn warn_if_peers_disagree(stored: &Membership, peers: Option<&Peers>) {
    if let Some(p) = peers {
        let named: Vec<_> = p.keys().copied().collect();
        let voters: Vec<_> = stored.voters.iter().copied().collect();
        if !stored.members().is_empty() && named != voters {
            warn!(
                ?named,
                ?voters,
                "--peers disagrees with the stored membership; ignoring --peers"
            );
        }
    }
}

/// Creates `dir` if missing and checks that it is a readable directory.
fn check_dir(dir: &Path) -> Result<(), OpenError> {
    let err = |source| OpenError::DataDir {
        dir: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::read_dir(dir).map_err(err)?;
    Ok(())
}
