//! [`Roster`]: the peers that enlisted with this node before they first
//! took part in its cluster, kept durably beside the store: the evidence
//! by which a peer that lost its data dir is told from a new one (see
//! [`Founding`](crate::core::Founding)).
//!
//! It must never forget a peer once `enlist` returned: the file is written
//! whole to a temporary name, fsynced, renamed over the old one, and the
//! directory fsynced. A damaged file is refused when opened, never read as
//! an empty roster (which would let a peer that lost its disk vote again).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::core::NodeId;

const HEADER: &str = "raft-actors roster 1";

/// Why a roster cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The file could not be read, written or synced.
    #[error("roster {path}: {source}")]
    Io {
        /// The roster file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a roster this version wrote.
    #[error("roster {path} is damaged ({reason}); restore it from a backup or remove this member and add it back")]
    Damaged {
        /// The roster file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// A durable set of node ids (cheap to clone: clones share it).
///
/// ```
/// use raft_actors::node::Roster;
/// let dir = std::env::temp_dir().join(format!("roster-doc-{}", std::process::id()));
/// let _ = std::fs::remove_dir_all(&dir);
/// std::fs::create_dir_all(&dir).unwrap();
/// let roster = Roster::open(dir.join("roster")).unwrap();
/// assert!(!roster.knows(2));
/// roster.enlist(2).unwrap();
/// // Reopened (a restart), it still knows 2.
/// assert!(Roster::open(dir.join("roster")).unwrap().knows(2));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Roster {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// `None`: kept in memory only (tests, the memory storage's kit).
    path: Option<PathBuf>,
    ids: BTreeSet<NodeId>,
}

impl Roster {
    /// A roster that lives as long as the process (it is lost with it).
    pub fn in_memory() -> Self {
        Roster::default()
    }

    /// The roster in file `path`, created empty when missing.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, RosterError> {
        let path = path.into();
        let ids = match fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(source) => return Err(RosterError::Io { path, source }),
        };
        Ok(Roster {
            inner: Arc::new(Mutex::new(Inner {
                path: Some(path),
                ids,
            })),
        })
    }

    /// Whether `id` enlisted here.
    pub fn knows(&self, id: NodeId) -> bool {
        self.lock().ids.contains(&id)
    }

    /// Records `id`, durably before it returns. Blocks on one small write
    /// and two fsyncs, once per peer ever.
    pub fn enlist(&self, id: NodeId) -> Result<(), RosterError> {
        let mut inner = self.lock();
        if inner.ids.contains(&id) {
            return Ok(());
        }
        let mut ids = inner.ids.clone();
        ids.insert(id);
        if let Some(path) = &inner.path {
            write(path, &ids)?;
        }
        inner.ids = ids;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The set is replaced only once written: a panic cannot leave it
        // half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn parse(path: &Path, text: &str) -> Result<BTreeSet<NodeId>, RosterError> {
    let damaged = |reason: String| RosterError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(damaged("no roster header".into()));
    }
    if !text.ends_with('\n') {
        return Err(damaged("truncated".into()));
    }
    lines
        .map(|l| {
            l.parse::<NodeId>()
                .ok()
                .filter(|id| *id != 0)
                .ok_or_else(|| damaged(format!("`{l}` is not a node id")))
        })
        .collect()
}

fn write(path: &Path, ids: &BTreeSet<NodeId>) -> Result<(), RosterError> {
    let io = |source| RosterError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = format!("{HEADER}\n");
    for id in ids {
        text.push_str(&format!("{id}\n"));
    }
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("roster-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn survives_a_reopen_and_refuses_damage() {
        let d = dir("damage");
        let path = d.join("roster");
        let r = Roster::open(&path).expect("new roster");
        r.enlist(3).expect("enlist");
        r.enlist(1).expect("enlist");
        r.enlist(3).expect("enlisting twice is fine");
        let again = Roster::open(&path).expect("reopen");
        assert!(again.knows(1) && again.knows(3) && !again.knows(2));
        for bad in [
            "",
            "raft-actors roster 1\n1\nx\n",
            "raft-actors roster 1\n1",
            "junk\n",
        ] {
            fs::write(&path, bad).expect("write");
            let err = Roster::open(&path).expect_err(bad);
            assert!(matches!(err, RosterError::Damaged { .. }), "{bad:?}: {err}");
        }
        fs::remove_dir_all(&d).expect("clean up");
    }

    #[test]
    fn in_memory_rosters_share_between_clones() {
        let r = Roster::in_memory();
        r.clone().enlist(7).expect("enlist");
        assert!(r.knows(7));
    }
}
