//! The node's view of the replicated log: what is stable on disk, what is
//! still to be persisted, what is committed and what was handed out to apply.
//!
//! The whole retained log lives in memory (compaction bounds it); the
//! storage adapter is written through [`Ready`](super::Ready), never read
//! here. Must never let the commit index pass the log's end, nor truncate at
//! or below it.

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
}

impl RaftLog {
    /// A log recovered from storage: `entries` are stable by definition.
    pub(crate) fn recovered(entries: Vec<Entry>, commit: LogIndex) -> Self {
        let (offset, offset_term) = match entries.first() {
            Some(e) => (e.index - 1, 0),
            None => (0, 0),
        };
        let last = offset + entries.len() as u64;
        RaftLog {
            entries,
            offset,
            offset_term,
            commit: commit.min(last),
            applied: offset,
            stable: last,
            persisting: last,
        }
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

    /// The driver made everything handed out durable.
    pub(crate) fn persisted(&mut self) {
        self.stable = self.stable.max(self.persisting);
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
        RaftLog::recovered(entries, 0)
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
