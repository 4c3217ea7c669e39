//! The node's view of the replicated log: what is stable on disk, what is
//! still to be persisted, what is committed and what was handed out to apply.
//!
//! Every retained entry's index and term live in memory (compaction bounds
//! them), and so do the payloads of entries not yet durable or applied;
//! those of older ones are kept up to a byte budget, newest first, then
//! dropped ([`Payload::Unread`]): the driver reads them back from storage
//! if a follower needs them. The storage adapter is written through
//! [`Ready`](super::Ready), never read here. Must never let the commit
//! index pass the log's end, nor truncate at or below it, nor drop a
//! payload still to be persisted or applied.

use std::collections::VecDeque;

use super::{Entry, LogIndex, Payload, Term};

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
    /// The log cache: entries before `cached_from` hold
    /// [`Payload::Unread`] (applied, durable, dropped to bound memory);
    /// from it on they hold their payloads.
    cached_from: LogIndex,
    /// Highest index weighed for eviction (at most applied and stable).
    weighed: LogIndex,
    /// Payload bytes held in `cached_from..=weighed`.
    held: u64,
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
            cached_from: offset + 1,
            weighed: offset,
            held: 0,
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
        self.reweigh();
    }

    /// Drops payloads of applied, durable entries, oldest first, until
    /// those held weigh at most `budget` bytes. Never touches an entry
    /// still to be persisted or applied: those leave the core whole.
    pub(crate) fn evict(&mut self, budget: u64) {
        let hi = self.applied.min(self.stable).min(self.last_index());
        while self.weighed < hi {
            self.weighed += 1;
            self.held += self.entry(self.weighed).payload.len() as u64;
        }
        while self.held > budget && self.cached_from <= self.weighed {
            let at = self.cached_from;
            let len = self.entry(at).payload.len() as u64;
            let i = (at - self.offset - 1) as usize;
            self.entries[i].payload = Payload::Unread { len };
            self.held -= len;
            self.cached_from += 1;
        }
    }

    /// Recounts the cache after the log's base moved.
    fn reweigh(&mut self) {
        self.cached_from = self.cached_from.max(self.offset + 1);
        self.weighed = self.weighed.clamp(self.cached_from - 1, self.last_index());
        self.held = self
            .slice(self.cached_from, self.weighed)
            .iter()
            .map(|e| e.payload.len() as u64)
            .sum();
    }

    fn entry(&self, index: LogIndex) -> &Entry {
        &self.entries[(index - self.offset - 1) as usize]
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
            self.cached_from = index + 1;
            self.weighed = index;
            self.held = 0;
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
        // Only applied entries are evicted or weighed, and applied <= commit.
        debug_assert!(first.index > self.weighed);
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
    fn eviction_keeps_the_newest_applied_payloads_within_the_budget() {
        let cmd = |index| Entry {
            index,
            term: 1,
            payload: Payload::Command(vec![0u8; 10].into()),
        };
        let mut l = RaftLog::recovered((1..=6).map(cmd).collect(), 0, None);
        l.commit = 6;
        assert_eq!(l.take_committed().len(), 6);
        l.evict(25);
        // 60 bytes held, 25 allowed: the four oldest go, two stay.
        let unread = |e: &Entry| matches!(e.payload, Payload::Unread { len: 10 });
        let kinds: Vec<bool> = l.slice(1, 6).iter().map(unread).collect();
        assert_eq!(kinds, [true, true, true, true, false, false]);
        // Entries not yet applied are never dropped, whatever the budget.
        l.push(cmd(7));
        l.stable = 7;
        l.evict(0);
        assert!(l.slice(5, 6).iter().all(unread));
        assert!(!unread(&l.slice(7, 7)[0]));
        // Compaction forgets the dropped ones; the cache is recounted.
        l.compact(5);
        assert_eq!((l.cached_from, l.held), (7, 0));
        l.commit = 7;
        l.take_committed();
        l.evict(100);
        assert_eq!((l.held, l.cached_from), (10, 7));
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
