//! [`Layout`]: how a service's keys are spread over Raft groups and where
//! each group lives (`--groups N`, `--replication R`), fixed when the node
//! is first started and kept in `<data-dir>/groups` from then on.
//!
//! Both rules are pure and documented, so that every node (and any client)
//! computes the same answer:
//!
//! - **key to group**: the 64-bit FNV-1a hash of the key's bytes, modulo
//!   the number of groups ([`group_of`]);
//! - **placement**: group 0 lives on every bootstrap voter (it keeps the
//!   cluster's membership and address book, as a single-group service
//!   does); group `g ≥ 1` lives on `R` of the bootstrap voters, taken in
//!   the order of their ids, starting at position `(g - 1) mod n` and
//!   wrapping ([`Layout::holders`]). On 3 nodes with `R = 3` every node
//!   holds every group; on 9 nodes each holds about a third of them.
//!
//! It must never let a restarted node take another layout than the one it
//! was founded with: keys would move to groups that never held them.

use std::collections::BTreeSet;
use std::fs;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use raft_actors::core::{GroupId, NodeId};

/// The most groups one service may be spread over.
pub const MAX_GROUPS: u64 = 1024;

const FILE: &str = "groups";
const HEADER: &str = "raft-actors groups 1";

/// Why a layout cannot be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The file could not be read, written or synced.
    #[error("group layout {path}: {source}")]
    Io {
        /// The layout file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a layout this version wrote.
    #[error("group layout {path} is damaged ({reason}); restore it from a backup or from another founding node's data dir (theirs are the same)")]
    Damaged {
        /// The layout file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The numbers asked for make no layout.
    #[error("{0}")]
    Invalid(String),
}

/// The group of `key` among `groups`: 64-bit FNV-1a of its bytes, modulo
/// `groups` (a stable hash: the same on every node, release and platform).
///
/// ```
/// use raft_actors_service::groups::group_of;
/// assert_eq!(group_of(b"anything", 1), 0);
/// // FNV-1a of "a" is 0xaf63dc4c8601ec8c.
/// assert_eq!(group_of(b"a", 8), 0xaf63dc4c8601ec8c % 8);
/// ```
pub fn group_of(key: &[u8], groups: u64) -> GroupId {
    let mut h = fnv::FnvHasher::default();
    h.write(key);
    h.finish() % groups.max(1)
}

/// How keys are spread over groups and where each group lives.
///
/// ```
/// use raft_actors_service::groups::Layout;
/// let nine = Layout::new(8, 3, (1..=9).collect()).unwrap();
/// assert_eq!(nine.holders(0).len(), 9);
/// assert_eq!(nine.holders(1), [1, 2, 3].into());
/// assert_eq!(nine.holders(8), [8, 9, 1].into());
/// let three = Layout::new(8, 3, [1, 2, 3].into()).unwrap();
/// assert!((0..8).all(|g| three.holders(g) == [1, 2, 3].into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// How many groups the keys are spread over (at least 1).
    pub groups: u64,
    /// On how many nodes each group beyond group 0 lives.
    pub replication: u64,
    /// The voters the groups were placed on when the cluster was founded;
    /// empty on a node that was started to be added later (it holds every
    /// group it is added to).
    pub voters: BTreeSet<NodeId>,
}

impl Layout {
    /// A layout of `groups` groups of `replication` replicas over
    /// `voters`; an error names what is out of range.
    pub fn new(
        groups: u64,
        replication: u64,
        voters: BTreeSet<NodeId>,
    ) -> Result<Layout, LayoutError> {
        if !(1..=MAX_GROUPS).contains(&groups) {
            return Err(LayoutError::Invalid(format!(
                "--groups must be 1 to {MAX_GROUPS}, not {groups}"
            )));
        }
        if replication == 0 {
            return Err(LayoutError::Invalid(
                "--replication must be at least 1".into(),
            ));
        }
        Ok(Layout {
            groups,
            replication,
            voters,
        })
    }

    /// One group on the given voters: a single-group service.
    pub fn single(voters: BTreeSet<NodeId>) -> Layout {
        Layout {
            groups: 1,
            replication: 3,
            voters,
        }
    }

    /// The group that holds `key`.
    pub fn group_of(&self, key: &[u8]) -> GroupId {
        group_of(key, self.groups)
    }

    /// The bootstrap voters that hold group `g` (see the module docs).
    pub fn holders(&self, g: GroupId) -> BTreeSet<NodeId> {
        let voters: Vec<NodeId> = self.voters.iter().copied().collect();
        if g == 0 || voters.is_empty() || self.replication >= voters.len() as u64 {
            return self.voters.clone();
        }
        let n = voters.len() as u64;
        (0..self.replication)
            .map(|i| voters[((g - 1 + i) % n) as usize])
            .collect()
    }

    /// Reads the layout kept in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Layout>, LayoutError> {
        let path = dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LayoutError::Io { path, source }),
        };
        let damaged = |reason: &str| LayoutError::Damaged {
            path: path.clone(),
            reason: reason.into(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(damaged("no header"));
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| damaged(&format!("no `{name}` line")))
        };
        let number = |s: String, what: &str| {
            s.parse::<u64>()
                .map_err(|_| damaged(&format!("`{what}` is not a number")))
        };
        let groups = number(field("groups")?, "groups")?;
        let replication = number(field("replication")?, "replication")?;
        let voters = field("voters")?
            .split(',')
            .filter(|v| !v.is_empty())
            .map(|v| number(v.to_owned(), "voters"))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Layout::new(groups, replication, voters)
            .map(Some)
            .map_err(|e| damaged(&e.to_string()))
    }

    /// Keeps the layout in `dir` durably: written whole to a temporary
    /// name, fsynced, renamed over the old one, the directory fsynced.
    pub fn store(&self, dir: &Path) -> Result<(), LayoutError> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        let voters: Vec<String> = self.voters.iter().map(ToString::to_string).collect();
        let text = format!(
            "{HEADER}\ngroups {}\nreplication {}\nvoters {}\n",
            self.groups,
            self.replication,
            voters.join(",")
        );
        let io = |source| LayoutError::Io {
            path: path.clone(),
            source,
        };
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_spreads_keys() {
        // The published FNV-1a test vectors: the hash must never change.
        assert_eq!(group_of(b"", u64::MAX), 0xcbf29ce484222325);
        assert_eq!(group_of(b"foobar", u64::MAX), 0x85944171f73967e8);
        let mut per = [0u32; 8];
        for i in 0..8000 {
            per[group_of(format!("key-{i}").as_bytes(), 8) as usize] += 1;
        }
        assert!(per.iter().all(|&n| (800..1200).contains(&n)), "{per:?}");
    }

    #[test]
    fn on_nine_nodes_each_holds_about_a_third() {
        let l = Layout::new(64, 3, (1..=9).collect()).expect("layout");
        let mut held = [0u32; 10];
        for g in 1..64 {
            let h = l.holders(g);
            assert_eq!(h.len(), 3);
            for n in h {
                held[n as usize] += 1;
            }
        }
        // 63 groups of 3 replicas over 9 nodes: 21 each.
        assert!(held[1..].iter().all(|&n| n == 21), "{held:?}");
    }

    #[test]
    fn a_layout_survives_a_restart_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(Layout::load(dir.path()).expect("none").is_none());
        let l = Layout::new(8, 3, [1, 2, 3].into()).expect("layout");
        l.store(dir.path()).expect("stored");
        assert_eq!(Layout::load(dir.path()).expect("read"), Some(l));
        fs::write(dir.path().join(FILE), "raft-actors groups 1\ngroups x\n").expect("write");
        let e = Layout::load(dir.path()).expect_err("damaged");
        assert!(e.to_string().contains("damaged"), "{e}");
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        assert!(Layout::new(0, 3, BTreeSet::new()).is_err());
        assert!(Layout::new(MAX_GROUPS + 1, 3, BTreeSet::new()).is_err());
        assert!(Layout::new(8, 0, BTreeSet::new()).is_err());
    }
}
