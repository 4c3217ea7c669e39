//! [`Sessions`]: the table of recent answers per client that makes writes
//! with an `Idempotency-Key` exactly-once. It lives in the replicated state
//! machine, so it survives leader changes and restarts and travels in
//! snapshots.
//!
//! The bound ([`SessionBounds`], set with the builder), applied identically
//! by every node because it is measured in log indexes and counts, never in
//! wall-clock time. Every node of a cluster must run with the same bounds.
//! - per client, the answers of the
//!   [`max_answers`](SessionBounds::max_answers) highest sequence numbers
//!   are kept; an older answer is evicted, and the table remembers that its
//!   sequence was applied (as ranges of sequences, so a client counting up
//!   costs one range): a retry of it is *expired* (answered 422, never
//!   applied again);
//! - a key below the kept answers that was never applied (a client that
//!   pipelines more keyed writes than the bound, and whose older ones
//!   arrive late) cannot be kept: it is refused as
//!   [`Lookup::BelowWindow`] (answered 429, not applied), never mistaken
//!   for an expired one;
//! - a client none of whose keyed writes was applied in the last
//!   [`idle_expiry`](SessionBounds::idle_expiry) log entries loses its
//!   answers (checked once every [`sweep_every`](SessionBounds::sweep_every)
//!   entries): only its floor stays, the sequence below which every key is
//!   expired, a few bytes beside its id. So a retry of an evicted key is
//!   answered 422 however late it comes, and a client goes on with higher
//!   sequences as before. A client that leaves more than
//!   [`max_ranges`](SessionBounds::max_ranges) gaps in its applied
//!   sequences likewise loses its oldest range to the floor.
//!
//! It must never apply a command twice for one key.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use raft_actors::core::LogIndex;
use serde::{Deserialize, Serialize};

/// How many answers and how much history the table keeps; see the
/// [module docs](self).
///
/// ```
/// use raft_actors_service::sessions::SessionBounds;
/// let b = SessionBounds { max_answers: 16, ..SessionBounds::default() };
/// assert_eq!(SessionBounds::default().max_answers, 128);
/// assert_eq!(b.idle_expiry, 100_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionBounds {
    /// Answers kept per client (at least 1).
    pub max_answers: usize,
    /// Ranges of applied sequences remembered per client beyond its kept
    /// answers (at least 1).
    pub max_ranges: usize,
    /// After this many log entries without a keyed write, a client's
    /// answers are forgotten.
    pub idle_expiry: u64,
    /// Idle clients are looked for once per this many log entries.
    pub sweep_every: u64,
}

impl Default for SessionBounds {
    fn default() -> Self {
        SessionBounds {
            max_answers: 128,
            max_ranges: 128,
            idle_expiry: 100_000,
            sweep_every: 1_024,
        }
    }
}

/// The header's value: `<client-id>:<sequence>`.
///
/// ```
/// use raft_actors_service::sessions::IdempotencyKey;
/// let k: IdempotencyKey = "web-7:42".parse().unwrap();
/// assert_eq!((k.client.as_str(), k.seq), ("web-7", 42));
/// assert!("no-sequence".parse::<IdempotencyKey>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// Who retries.
    pub client: String,
    /// Which of its writes.
    pub seq: u64,
}

/// A header value that is not `<client-id>:<sequence>`.
#[derive(Debug, thiserror::Error)]
#[error(
    "Idempotency-Key must be <client-id>:<sequence> (sequence a u64, client-id at most 256 bytes)"
)]
pub struct BadKey;

impl FromStr for IdempotencyKey {
    type Err = BadKey;

    fn from_str(s: &str) -> Result<Self, BadKey> {
        let (client, seq) = s.rsplit_once(':').ok_or(BadKey)?;
        if client.is_empty() || client.len() > 256 {
            return Err(BadKey);
        }
        let seq = seq.parse().map_err(|_| BadKey)?;
        Ok(IdempotencyKey {
            client: client.to_string(),
            seq,
        })
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.client, self.seq)
    }
}

/// What the table knows of a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<O> {
    /// Applied before, at this index, with this answer.
    Answered(LogIndex, O),
    /// Applied before, but its answer was evicted: it must not be applied
    /// again.
    Expired,
    /// Never applied, but below the client's kept answers: its answer could
    /// not be kept, so it is not applied (the client pipelined more keyed
    /// writes than [`SessionBounds::max_answers`]).
    BelowWindow,
    /// Never seen: apply it, then [`Sessions::record`] the answer.
    New,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Client<O> {
    answers: BTreeMap<u64, (LogIndex, O)>,
    /// Applied sequences whose answers were evicted: `lo -> hi`, inclusive,
    /// disjoint and not adjacent.
    evicted: BTreeMap<u64, u64>,
    /// Sequences below this are expired, applied or not.
    floor: u64,
    /// Index of the last keyed write applied for this client.
    touched: LogIndex,
}

impl<O> Client<O> {
    fn was_evicted(&self, seq: u64) -> bool {
        self.evicted
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, hi)| seq <= *hi)
    }

    /// Remembers that `seq` was applied, merging it into its neighbours.
    fn mark_evicted(&mut self, seq: u64, max_ranges: usize) {
        let mut lo = seq;
        let mut hi = seq;
        if let Some((&l, &h)) = self.evicted.range(..=seq).next_back() {
            if h.saturating_add(1) >= seq {
                lo = l;
                hi = hi.max(h);
                self.evicted.remove(&l);
            }
        }
        if let Some((&l, &h)) = self.evicted.range(seq.saturating_add(1)..).next() {
            if l == hi.saturating_add(1) {
                hi = h;
                self.evicted.remove(&l);
            }
        }
        self.evicted.insert(lo, hi);
        while self.evicted.len() > max_ranges.max(1) {
            if let Some((_, h)) = self.evicted.pop_first() {
                self.floor = self.floor.max(h.saturating_add(1));
            }
        }
    }
}

/// The session table. See the [module docs](self) for its bound.
///
/// ```
/// use raft_actors_service::sessions::{Lookup, SessionBounds, Sessions};
/// let b = SessionBounds::default();
/// let mut s = Sessions::default();
/// let k = "c:1".parse().unwrap();
/// assert_eq!(s.lookup(&k, 5), Lookup::New);
/// s.record(&k, 5, "first", &b);
/// assert_eq!(s.lookup(&k, 6), Lookup::Answered(5, "first"));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sessions<O> {
    clients: BTreeMap<String, Client<O>>,
    last_sweep: LogIndex,
}

impl<O> Default for Sessions<O> {
    fn default() -> Self {
        Sessions {
            clients: BTreeMap::new(),
            last_sweep: 0,
        }
    }
}

impl<O: Clone> Sessions<O> {
    /// What is known of `key`, as of applying the entry at `index`.
    pub fn lookup(&mut self, key: &IdempotencyKey, index: LogIndex) -> Lookup<O> {
        let Some(c) = self.clients.get_mut(&key.client) else {
            return Lookup::New;
        };
        c.touched = index;
        if let Some((i, o)) = c.answers.get(&key.seq) {
            return Lookup::Answered(*i, o.clone());
        }
        if key.seq < c.floor || c.was_evicted(key.seq) {
            return Lookup::Expired;
        }
        // The table is full and this key is older than every kept answer:
        // recording it would evict it at once.
        let full = !c.answers.is_empty() && c.evicted.keys().next().is_some();
        match c.answers.first_key_value() {
            Some((&lowest, _)) if full && key.seq < lowest => Lookup::BelowWindow,
            _ => Lookup::New,
        }
    }

    /// Records the answer of `key`, applied at `index`, evicting the
    /// client's oldest answers beyond `bounds`.
    pub fn record(
        &mut self,
        key: &IdempotencyKey,
        index: LogIndex,
        output: O,
        bounds: &SessionBounds,
    ) {
        let c = self
            .clients
            .entry(key.client.clone())
            .or_insert_with(|| Client {
                answers: BTreeMap::new(),
                evicted: BTreeMap::new(),
                floor: 0,
                touched: index,
            });
        c.touched = index;
        c.answers.insert(key.seq, (index, output));
        while c.answers.len() > bounds.max_answers.max(1) {
            if let Some((seq, _)) = c.answers.pop_first() {
                c.mark_evicted(seq, bounds.max_ranges);
            }
        }
    }

    /// Forgets idle clients, once every [`SessionBounds::sweep_every`]
    /// entries; call before applying the entry at `index`.
    pub fn sweep(&mut self, index: LogIndex, bounds: &SessionBounds) {
        if index < self.last_sweep.saturating_add(bounds.sweep_every) {
            return;
        }
        self.last_sweep = index;
        for c in self.clients.values_mut() {
            if index.saturating_sub(c.touched) > bounds.idle_expiry {
                let last_answer = c.answers.last_key_value().map(|(s, _)| *s);
                let last_evicted = c.evicted.last_key_value().map(|(_, h)| *h);
                if let Some(last) = last_answer.max(last_evicted) {
                    c.floor = c.floor.max(last.saturating_add(1));
                }
                c.answers.clear();
                c.evicted.clear();
            }
        }
    }

    /// How many answers are kept, over all clients.
    pub fn answers(&self) -> usize {
        self.clients.values().map(|c| c.answers.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: &str, seq: u64) -> IdempotencyKey {
        IdempotencyKey {
            client: c.into(),
            seq,
        }
    }

    fn apply(s: &mut Sessions<u64>, c: &str, seq: u64, index: LogIndex, b: &SessionBounds) {
        assert_eq!(s.lookup(&key(c, seq), index), Lookup::New, "{c}:{seq}");
        s.record(&key(c, seq), index, seq, b);
    }

    #[test]
    fn evicted_answers_are_expired_not_new() {
        let b = SessionBounds::default();
        let mut s = Sessions::default();
        for seq in 0..(b.max_answers as u64 + 10) {
            apply(&mut s, "a", seq, seq + 1, &b);
        }
        assert_eq!(s.lookup(&key("a", 3), 1000), Lookup::Expired);
        assert_eq!(s.lookup(&key("a", 20), 1000), Lookup::Answered(21, 20));
        assert_eq!(s.lookup(&key("b", 3), 1000), Lookup::New);
    }

    #[test]
    fn a_pipelined_key_below_the_window_is_refused_never_called_expired() {
        let b = SessionBounds {
            max_answers: 4,
            ..SessionBounds::default()
        };
        let mut s = Sessions::default();
        // Keys 0..10 in flight at once; 3 arrives after all the others.
        let mut index = 0;
        for seq in (0..10).filter(|q| *q != 3) {
            index += 1;
            apply(&mut s, "p", seq, index, &b);
        }
        assert_eq!(s.lookup(&key("p", 3), index + 1), Lookup::BelowWindow);
        // Applied ones below the window stay expired; 3 is still unapplied.
        assert_eq!(s.lookup(&key("p", 2), index + 1), Lookup::Expired);
        assert_eq!(s.lookup(&key("p", 4), index + 1), Lookup::Expired);
        assert_eq!(s.lookup(&key("p", 6), index + 1), Lookup::Answered(6, 6));
        // A key inside the window that arrives late is still applied.
        let mut t = Sessions::default();
        for seq in [0, 2, 3] {
            index += 1;
            apply(&mut t, "q", seq, index, &b);
        }
        assert_eq!(t.lookup(&key("q", 1), index), Lookup::New);
    }

    #[test]
    fn sequential_clients_cost_one_range() {
        let b = SessionBounds {
            max_answers: 2,
            max_ranges: 1,
            ..SessionBounds::default()
        };
        let mut s = Sessions::default();
        for seq in 0..50 {
            apply(&mut s, "a", seq, seq + 1, &b);
        }
        for seq in 0..48 {
            assert_eq!(s.lookup(&key("a", seq), 100), Lookup::Expired, "{seq}");
        }
        assert_eq!(s.answers(), 2);
    }

    #[test]
    fn idle_clients_are_forgotten_by_log_index() {
        let b = SessionBounds::default();
        let mut s = Sessions::default();
        s.record(&key("idle", 1), 1, (), &b);
        s.record(&key("busy", 1), 1, (), &b);
        s.record(&key("busy", 2), b.idle_expiry, (), &b);
        s.sweep(b.idle_expiry + b.sweep_every, &b);
        assert_eq!(s.answers(), 2, "the idle client's answer is dropped");
        assert_eq!(
            s.lookup(&key("busy", 2), 0),
            Lookup::Answered(b.idle_expiry, ())
        );
        // Its retry is expired, never new: it must not apply twice.
        assert_eq!(s.lookup(&key("idle", 1), 0), Lookup::Expired);
        assert_eq!(s.lookup(&key("idle", 2), 0), Lookup::New);
    }

    #[test]
    fn keys_parse_strictly() {
        assert!("a:b:7"
            .parse::<IdempotencyKey>()
            .is_ok_and(|k| k.client == "a:b"));
        for bad in ["", ":1", "a:", "a:-1", "a:x"] {
            assert!(bad.parse::<IdempotencyKey>().is_err(), "{bad}");
        }
    }
}
