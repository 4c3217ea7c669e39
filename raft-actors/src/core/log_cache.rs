//! Entries whose payloads the core dropped from memory
//! ([`Config::log_cache_bytes`](super::Config::log_cache_bytes)) and that an
//! AppendEntries still carries: the driver reads them back from storage
//! before the message leaves, as it reads snapshot chunks.
//!
//! Must never let a message leave with a [`Payload::Unread`] in it, nor
//! accept read entries that are not the ones the core had (another index
//! or term means the storage is not this log).

use thiserror::Error;

use super::{Body, Entry, LogIndex, Message, Payload, Term};

/// The entries a driver reads from its log storage to fill an
/// AppendEntries the core left partly unread: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntriesToRead {
    /// The first index to read.
    pub first: LogIndex,
    /// The last index to read.
    pub last: LogIndex,
}

/// Why read entries cannot fill a message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FillError {
    /// Storage returned another entry than the one the core holds there.
    #[error("storage returned entry {got_index} (term {got_term}) for {index} (term {term})")]
    Mismatch {
        /// Index the core wanted.
        index: LogIndex,
        /// Term of the core's entry there.
        term: Term,
        /// Index of what storage returned.
        got_index: LogIndex,
        /// Term of what storage returned.
        got_term: Term,
    },
    /// Storage returned fewer entries than asked for.
    #[error("storage returned {got} entries of the {wanted} asked for")]
    Short {
        /// Entries asked for.
        wanted: usize,
        /// Entries returned.
        got: usize,
    },
}

impl Message {
    /// The entries to read from storage before sending this message:
    /// `Some` for an AppendEntries carrying entries whose payloads the core
    /// dropped (always a prefix of them, since the oldest go first), `None`
    /// for every other message.
    ///
    /// ```
    /// use raft_actors::core::{Body, Entry, EntriesToRead, Message, Payload};
    /// let e = |index, payload| Entry { index, term: 1, payload };
    /// let mut m = Message { from: 1, to: 2, term: 1, body: Body::Append {
    ///     prev_index: 4, prev_term: 1, commit: 6,
    ///     entries: vec![e(5, Payload::Unread { len: 1 }), e(6, Payload::Noop)] } };
    /// assert_eq!(m.entries_to_read(), Some(EntriesToRead { first: 5, last: 5 }));
    /// m.fill_entries(vec![e(5, Payload::Command(vec![7].into()))]).expect("the same entry");
    /// assert_eq!(m.entries_to_read(), None);
    /// ```
    pub fn entries_to_read(&self) -> Option<EntriesToRead> {
        let Body::Append { entries, .. } = &self.body else {
            return None;
        };
        let unread = |e: &&Entry| matches!(e.payload, Payload::Unread { .. });
        let first = entries.iter().find(unread)?.index;
        let last = entries.iter().rev().find(unread)?.index;
        Some(EntriesToRead { first, last })
    }

    /// Puts entries read for [`entries_to_read`](Self::entries_to_read) in
    /// place of the unread ones, after checking each is the entry the core
    /// holds at its index (same index and term, a payload). Nothing changes
    /// on an error.
    pub fn fill_entries(&mut self, read: Vec<Entry>) -> Result<(), FillError> {
        let Some(want) = self.entries_to_read() else {
            return Ok(());
        };
        let Body::Append { entries, .. } = &mut self.body else {
            return Ok(());
        };
        let wanted = (want.last - want.first + 1) as usize;
        if read.len() < wanted {
            return Err(FillError::Short {
                wanted,
                got: read.len(),
            });
        }
        let at = (want.first - entries[0].index) as usize;
        for (held, got) in entries[at..at + wanted].iter().zip(&read) {
            if got.index != held.index
                || got.term != held.term
                || matches!(got.payload, Payload::Unread { .. })
            {
                return Err(FillError::Mismatch {
                    index: held.index,
                    term: held.term,
                    got_index: got.index,
                    got_term: got.term,
                });
            }
        }
        for (slot, got) in entries[at..at + wanted].iter_mut().zip(read) {
            *slot = got;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(entries: Vec<Entry>) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 2,
            body: Body::Append {
                prev_index: 0,
                prev_term: 0,
                entries,
                commit: 0,
            },
        }
    }

    fn e(index: LogIndex, term: Term, payload: Payload) -> Entry {
        Entry {
            index,
            term,
            payload,
        }
    }

    #[test]
    fn another_entry_or_too_few_are_refused_and_change_nothing() {
        let unread = Payload::Unread { len: 3 };
        let m = append(vec![e(1, 1, unread.clone()), e(2, 2, unread.clone())]);
        let cmd = || Payload::Command(vec![1, 2, 3].into());
        let mut short = m.clone();
        assert_eq!(
            short.fill_entries(vec![e(1, 1, cmd())]),
            Err(FillError::Short { wanted: 2, got: 1 })
        );
        assert_eq!(short, m);
        let mut wrong_term = m.clone();
        assert!(matches!(
            wrong_term.fill_entries(vec![e(1, 1, cmd()), e(2, 1, cmd())]),
            Err(FillError::Mismatch { index: 2, .. })
        ));
        assert_eq!(wrong_term, m);
        let mut still_unread = m.clone();
        assert!(still_unread
            .fill_entries(vec![e(1, 1, cmd()), e(2, 2, unread)])
            .is_err());
        let mut good = m;
        good.fill_entries(vec![e(1, 1, cmd()), e(2, 2, cmd())])
            .expect("the entries the core holds");
        assert_eq!(good.entries_to_read(), None);
    }
}
