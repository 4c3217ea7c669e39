//! The node's view of the replicated log: what is stable on disk, what is
//! still to be persisted, what is committed and what was handed out to apply.
//!
//! The whole retained log lives in memory (compaction bounds it); the
//! storage adapter is written through [`Ready`](super::Ready), never read
//! here. Must never let the commit index pass the log's end, nor truncate at
//! or below it.

use std::collections::VecDeque;

use super::{Entry, LogIndex, Term};

/// In-memory log with its four cursors: `applied <= commit <= last` and
/// `stable <= last`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RaftLog {
    /// Entries after `offset`, contiguous: `entries[i].index == offset + 1 + i`.
    entries: Vec<Entry>,
    /// Index just before the first retained entry (a snapshot's last index).
    offset: LogIndex,
    /// Term of the entry at `offset`.
    offset_term: Term,
    /// Highest index known committed.
    pub(crate) commit: LogIndex,
    /// Highest index handed to the driver to apply.
    pub(crate) applied: LogIndex,
    /// Highest index the driver confirmed durable.
    pub(crate) stable: LogIndex,
    /// Highest index handed to the driver to persist, not confirmed yet.
    persisting: LogIndex,
    /// Per batch handed out and not acknowledged, oldest first: the index
    /// up to which the log is durable once it is (clamped when a conflict
    /// or a snapshot replaces what it carried).
    in_flight: VecDeque<LogIndex>,
}

impl RaftLog {
    /// A log recovered from storage: `entries` are stable by definition.
    /// `snapshot` is the (index, term) of the stored snapshot, if any: the
    /// state machine restarts from it, so applying resumes after it.
    ///
    /// Storage may keep entries from before the snapshot (trailing logs for
    /// slow followers), but not the term of the entry before its first one;
    /// that first entry then serves as the log's base.
    pub(crate) fn recovered(
        mut entries: Vec<Entry>,
        commit: LogIndex,
        snapshot: Option<(LogIndex, Term)>,
    ) -> Self {
        let (snap_index, snap_term) = snapshot.unwrap_or((0, 0));
        let (first, last) = match (entries.first(), entries.last()) {
            (Some(f), Some(l)) => (f.index, l.index),
            _ => (snap_index + 1, snap_index),
        };
        let (offset, offset_term) = if first == snap_index + 1 {
            (snap_index, snap_term)
        } else if last <= snap_index {
            // Everything stored is covered by the snapshot.
            entries.clear();
            (snap_index, snap_term)
        } else {
            // Trailing entries from before the snapshot: the first one is
            // the base (its predecessor's term is unknown).
            let base = entries.remove(0);
            (base.index, base.term)
        };
        let last = offset + entries.len() as u64;
        RaftLog {
            entries,
            offset,
            offset_term,
            commit: commit.max(snap_index).min(last),
            applied: snap_index,
            stable: last,
            persisting: last,
            in_flight: VecDeque::new(),
        }
    }

    /// Drops entries up to `index` (which must be retained or the base),
    /// keeping its term as the new base.
    pub(crate) fn compact(&mut self, index: LogIndex) {
        if index <= self.offset || index > self.last_index() {
            return;
        }
        let Some(term) = self.term(index) else { return };
        self.entries.drain(..(index - self.offset) as usize);
        self.offset = index;
        self.offset_term = term;
    }

    /// Resets the log to start after a snapshot at (`index`, `term`): keeps
    /// the entries after it if the log agrees on that entry (§7), else
    /// discards them all. The snapshot's state counts as committed and
    /// applied.
    pub(crate) fn restore(&mut self, index: LogIndex, term: Term) {
        if self.term(index) == Some(term) && index >= self.offset {
            self.compact(index);
        } else {
            self.entries.clear();
            self.offset = index;
            self.offset_term = term;
            self.stable = self.stable.min(index);
            // What batches in flight carried past it is gone.
            for mark in &mut self.in_flight {
                *mark = (*mark).min(index);
            }
        }
        // The snapshot is persisted with the batch that carries it.
        self.persisting = self.persisting.max(index);
        self.commit = self.commit.max(index);
        self.applied = self.applied.max(index);
    }

    /// Index of the log's base: the last compacted (or snapshot) entry.
    pub(crate) fn offset(&self) -> LogIndex {
        self.offset
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.offset + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.offset_term, |e| e.term)
    }

    pub(crate) fn first_index(&self) -> LogIndex {
        self.offset + 1
    }

    /// Term of the entry at `index`, if the log holds it (or it is the
    /// offset, whose term is remembered).
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.offset {
            return Some(self.offset_term);
        }
        if index < self.offset || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.offset - 1) as usize].term)
    }

    /// Entries in `lo..=hi`, clamped to what is retained.
    pub(crate) fn slice(&self, lo: LogIndex, hi: LogIndex) -> &[Entry] {
        let lo = lo.max(self.first_index());
        let hi = hi.min(self.last_index());
        if lo > hi {
            return &[];
        }
        &self.entries[(lo - self.offset - 1) as usize..(hi - self.offset) as usize]
    }

    /// Whether a candidate's log ending at (`last_index`, `last_term`) is at
    /// least as up-to-date as this one (§5.4.1).
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Appends one entry at the end (the leader's path).
    pub(crate) fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// The first index in `entries` whose term disagrees with the log, or
    /// `None` if the log already holds all of them.
    pub(crate) fn find_conflict(&self, entries: &[Entry]) -> Option<LogIndex> {
        entries
            .iter()
            .find(|e| self.term(e.index) != Some(e.term))
            .map(|e| e.index)
    }

    /// Replaces everything from `entries[0].index` on with `entries`. The
    /// caller guarantees that index is above the commit index and at most
    /// `last_index() + 1`.
    pub(crate) fn truncate_and_append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        debug_assert!(first.index > self.commit && first.index <= self.last_index() + 1);
        self.entries
            .truncate((first.index - self.offset - 1) as usize);
        self.entries.extend_from_slice(entries);
        // Whatever was stable (or being persisted) past the cut no longer is.
        let kept = first.index - 1;
        self.stable = self.stable.min(kept);
        self.persisting = self.persisting.min(kept);
        // A batch in flight that carried the replaced entries makes only
        // what is left of them durable.
        for mark in &mut self.in_flight {
            *mark = (*mark).min(kept);
        }
    }

    /// The index of the first entry of `term` at or before `index`.
    pub(crate) fn first_index_of_term(&self, term: Term, index: LogIndex) -> LogIndex {
        let mut i = index.min(self.last_index());
        while i > self.first_index() && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index whose term is `term`, if any entry has it. Terms grow
    /// along the log, so the search stops at the first lower term.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        self.entries
            .iter()
            .rev()
            .skip_while(|e| e.term > term)
            .take_while(|e| e.term == term)
            .map(|e| e.index)
            .next()
    }

    /// Entries not yet handed out for persistence; marks them as handed.
    pub(crate) fn take_unpersisted(&mut self) -> Vec<Entry> {
        let from = self.persisting.max(self.stable) + 1;
        let out = self.slice(from, self.last_index()).to_vec();
        self.persisting = self.last_index();
        out
    }

    /// Whether entries wait to be handed out for persistence.
    pub(crate) fn has_unpersisted(&self) -> bool {
        self.last_index() > self.persisting.max(self.stable)
    }

    /// A batch was handed out with everything taken so far.
    pub(crate) fn batch_handed(&mut self) {
        self.in_flight.push_back(self.persisting);
    }

    /// The driver made the oldest batch in flight durable.
    pub(crate) fn batch_persisted(&mut self) {
        if let Some(mark) = self.in_flight.pop_front() {
            self.stable = self.stable.max(mark);
        }
    }

    /// Committed entries not yet handed out to apply; marks them handed.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let hi = self.commit.min(self.last_index());
        let out = self.slice(self.applied + 1, hi).to_vec();
        self.applied = self.applied.max(hi);
        out
    }

    pub(crate) fn has_committed_to_apply(&self) -> bool {
        self.commit.min(self.last_index()) > self.applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Payload;

    fn log(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, t)| Entry {
                index: i as u64 + 1,
                term: *t,
                payload: Payload::Noop,
            })
            .collect();
        RaftLog::recovered(entries, 0, None)
    }

    #[test]
    fn term_search_helpers() {
        let l = log(&[1, 1, 4, 4, 4, 5]);
        assert_eq!(l.first_index_of_term(4, 5), 3);
        assert_eq!(l.last_index_of_term(4), Some(5));
        assert_eq!(l.last_index_of_term(2), None);
        assert_eq!(l.term(0), Some(0));
        assert_eq!(l.term(7), None);
    }

    #[test]
    fn recovery_after_compaction_uses_the_snapshot_or_first_entry_as_base() {
        let mut l = log(&[1, 1, 2, 2, 3]);
        l.compact(2);
        assert_eq!((l.first_index(), l.term(2), l.term(1)), (3, Some(1), None));
        // Storage kept entries 3..=5 and a snapshot at 4: applying resumes at 5.
        let kept = l.slice(3, 5).to_vec();
        let r = RaftLog::recovered(kept.clone(), 5, Some((4, 2)));
        assert_eq!(
            (r.offset, r.offset_term, r.applied, r.last_index()),
            (3, 2, 4, 5)
        );
        // Storage kept exactly the entries after the snapshot at 2.
        let r = RaftLog::recovered(kept, 5, Some((2, 1)));
        assert_eq!(
            (r.offset, r.offset_term, r.applied, r.last_index()),
            (2, 1, 2, 5)
        );
        // A snapshot past the retained entries: they are covered by it.
        let r = RaftLog::recovered(l.slice(3, 4).to_vec(), 4, Some((5, 3)));
        assert_eq!((r.offset, r.last_index(), r.commit), (5, 5, 5));
    }

    #[test]
    fn restore_keeps_a_matching_suffix_and_drops_a_conflicting_one() {
        let mut l = log(&[1, 1, 2, 2]);
        l.restore(3, 2);
        assert_eq!(
            (l.first_index(), l.last_index(), l.commit, l.applied),
            (4, 4, 3, 3)
        );
        let mut l = log(&[1, 1, 2, 2]);
        l.restore(3, 5);
        assert_eq!(
            (l.first_index(), l.last_index(), l.term(3)),
            (4, 3, Some(5))
        );
    }

    #[test]
    fn batches_become_durable_in_order_and_a_conflict_clamps_them() {
        let mut l = log(&[1]);
        let e = |index, term| Entry {
            index,
            term,
            payload: Payload::Noop,
        };
        l.truncate_and_append(&[e(2, 1), e(3, 1), e(4, 1)]);
        assert_eq!(l.take_unpersisted().len(), 3);
        l.batch_handed();
        // A new leader replaces 3..: the batch in flight carried 2..=4,
        // of which only 2 is still in the log.
        l.truncate_and_append(&[e(3, 2)]);
        assert_eq!(l.take_unpersisted().len(), 1);
        l.batch_handed();
        l.batch_persisted();
        assert_eq!(l.stable, 2, "the first batch makes 2 durable, not 4");
        l.batch_persisted();
        assert_eq!(l.stable, 3);
    }

    #[test]
    fn truncation_pulls_stable_back() {
        let mut l = log(&[1, 1, 1]);
        assert_eq!(l.stable, 3);
        let e = Entry {
            index: 2,
            term: 2,
            payload: Payload::Noop,
        };
        l.truncate_and_append(&[e]);
        assert_eq!((l.last_index(), l.stable), (2, 1));
        assert_eq!(l.take_unpersisted().len(), 1);
    }
}
