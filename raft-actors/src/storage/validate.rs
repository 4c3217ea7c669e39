//! [`LogState::validate`]: the shape every loaded log must have, checked
//! once here for every adapter, by the node before it trusts a load (and by
//! an adapter that wants to refuse a damaged store when it opens it).
//!
//! It must never repair what it finds: a log that breaks one of these rules
//! lost something, and a node that went on from a guess could vote away
//! entries it had acknowledged.

use super::{LogState, StorageError};

impl LogState {
    /// Checks that the log is whole: entries contiguous from index 1 on,
    /// joining the snapshot; no entry or snapshot of a term above the
    /// stored current term (a stale hard state could cast a vote twice);
    /// and a commit index no further than the last entry (committed
    /// entries would be missing). Answers the first broken rule as
    /// [`StorageError::Corrupt`] at the index where it is broken.
    ///
    /// ```
    /// use raft_actors::core::{Entry, HardState, Payload};
    /// use raft_actors::storage::{LogState, StorageError};
    /// let e = |index| Entry { index, term: 1, payload: Payload::Noop };
    /// let mut state = LogState {
    ///     hard_state: HardState { term: 1, vote: None, commit: 2 },
    ///     entries: vec![e(1), e(2)],
    ///     ..LogState::default()
    /// };
    /// assert_eq!(state.validate(), Ok(()));
    /// state.entries.remove(0);
    /// assert!(matches!(state.validate(), Err(StorageError::Corrupt { index: 2, .. })));
    /// ```
    pub fn validate(&self) -> Result<(), StorageError> {
        let corrupt = |index, reason: String| Err(StorageError::Corrupt { index, reason });
        let term = self.hard_state.term;
        let mut prev: Option<u64> = None;
        for e in &self.entries {
            if e.index == 0 {
                return corrupt(0, "an entry at index 0, which is never written".into());
            }
            if let Some(p) = prev {
                if p + 1 != e.index {
                    return corrupt(
                        e.index,
                        format!("entries {}..{} are missing", p + 1, e.index),
                    );
                }
            }
            if e.term > term {
                return corrupt(
                    e.index,
                    format!(
                        "entry {}: its term {} is above the stored current term {term}",
                        e.index, e.term
                    ),
                );
            }
            prev = Some(e.index);
        }
        let snap_index = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
        if let Some(s) = &self.snapshot {
            if s.meta.term > term {
                return corrupt(
                    s.meta.index,
                    format!(
                        "snapshot: its term {} is above the stored current term {term}",
                        s.meta.term
                    ),
                );
            }
        }
        if let Some(first) = self.entries.first() {
            if first.index > snap_index + 1 {
                return corrupt(
                    first.index,
                    format!(
                        "entries {}..{} between the snapshot and the log are missing",
                        snap_index + 1,
                        first.index
                    ),
                );
            }
        }
        let last = self.last_index().max(snap_index);
        if self.hard_state.commit > last {
            return corrupt(
                last + 1,
                format!(
                    "the commit index is {} but the log ends at {last}: committed entries are missing",
                    self.hard_state.commit
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::core::{Entry, HardState, Membership, Payload};
    use crate::storage::{LogState, Snapshot, SnapshotMeta, StorageError};

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    fn state(entries: Vec<Entry>, snapshot_at: Option<u64>, commit: u64) -> LogState {
        LogState {
            hard_state: HardState {
                term: 2,
                vote: None,
                commit,
            },
            entries,
            membership: Membership::voters([1]),
            snapshot: snapshot_at.map(|index| Snapshot {
                meta: SnapshotMeta {
                    index,
                    term: 1,
                    membership: Membership::voters([1]),
                },
                size: 0,
                checksum: 0,
            }),
        }
    }

    fn broken_at(s: &LogState) -> Option<u64> {
        match s.validate() {
            Ok(()) => None,
            Err(StorageError::Corrupt { index, .. }) => Some(index),
            Err(other) => panic!("not a corruption: {other}"),
        }
    }

    #[test]
    fn whole_logs_pass() {
        assert_eq!(broken_at(&LogState::default()), None);
        assert_eq!(broken_at(&state(vec![e(1, 1), e(2, 2)], None, 2)), None);
        // Entries a snapshot covers may come back after a crash.
        assert_eq!(broken_at(&state(vec![e(3, 1), e(4, 1)], Some(5), 5)), None);
        assert_eq!(broken_at(&state(vec![e(6, 1)], Some(5), 6)), None);
        assert_eq!(broken_at(&state(vec![], Some(5), 5)), None);
    }

    #[test]
    fn every_broken_rule_is_refused_where_it_breaks() {
        let gap = state(vec![e(1, 1), e(3, 1)], None, 1);
        assert_eq!(broken_at(&gap), Some(3));
        let zero = state(vec![e(0, 1)], None, 0);
        assert_eq!(broken_at(&zero), Some(0));
        let newer_term = state(vec![e(1, 1), e(2, 3)], None, 1);
        assert_eq!(broken_at(&newer_term), Some(2));
        let detached = state(vec![e(7, 1)], Some(5), 5);
        assert_eq!(broken_at(&detached), Some(7));
        let lost_commit = state(vec![e(1, 1)], None, 3);
        assert_eq!(broken_at(&lost_commit), Some(2));
        let mut newer_snapshot = state(vec![], Some(5), 5);
        if let Some(s) = newer_snapshot.snapshot.as_mut() {
            s.meta.term = 3;
        }
        assert_eq!(broken_at(&newer_snapshot), Some(5));
    }
}
