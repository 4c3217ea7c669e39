//! [`Recovered`]: what a driver hands the core to rebuild it from storage.
//! It only carries; the core checks it ([`RaftCore::new`](super::RaftCore::new))
//! and must never trust it unchecked.

use super::{Entry, HardState, Membership, Snapshot};

/// What a node reloads from storage to rebuild its core.
///
/// ```
/// use raft_actors::core::{Membership, Recovered};
/// let fresh = Recovered::bootstrap(Membership::voters([1, 2, 3]));
/// assert!(fresh.entries.is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The last hard state persisted.
    pub hard_state: HardState,
    /// Every stored entry, contiguous, in index order, starting at most one
    /// past the snapshot's index.
    pub entries: Vec<Entry>,
    /// The configuration a new cluster bootstraps with. Ignored when there
    /// is a snapshot (it carries its own) ; configuration entries in
    /// `entries` take precedence over both.
    pub membership: Membership,
    /// The stored snapshot, if any. The driver restores its state machine
    /// from it before applying anything.
    pub snapshot: Option<Snapshot>,
}

impl Recovered {
    /// An empty node of a new cluster with the given members.
    pub fn bootstrap(membership: Membership) -> Self {
        Recovered {
            membership,
            ..Default::default()
        }
    }
}
