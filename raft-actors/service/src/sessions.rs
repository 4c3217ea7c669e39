//! [`Sessions`]: the table of recent answers per client that makes writes
//! with an `Idempotency-Key` exactly-once. It lives in the replicated state
//! machine, so it survives leader changes and restarts and travels in
//! snapshots.
//!
//! The bound, applied identically by every node because it is measured in
//! log indexes, never in wall-clock time:
//! - per client, the answers of the [`MAX_ANSWERS_PER_CLIENT`] highest
//!   sequence numbers are kept; a key below the lowest kept one is
//!   *expired* (answered 422, never applied);
//! - a client none of whose keyed writes was applied in the last
//!   [`IDLE_EXPIRY_ENTRIES`] log entries loses its answers (checked once
//!   every [`SWEEP_EVERY`] entries): only its floor stays, the sequence
//!   below which every key is expired, a few bytes beside its id. So a
//!   retry of an evicted key is answered 422 however late it comes, and a
//!   client goes on with higher sequences as before.
//!
//! It must never apply a command twice for one key.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use raft_actors::core::LogIndex;
use serde::{Deserialize, Serialize};

/// How many answers are kept per client.
pub const MAX_ANSWERS_PER_CLIENT: usize = 128;
/// After this many log entries without a keyed write, a client is forgotten.
pub const IDLE_EXPIRY_ENTRIES: u64 = 100_000;
/// Idle clients are looked for once per this many log entries.
pub const SWEEP_EVERY: u64 = 1_024;

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
    /// Its answer was evicted: it must not be applied again.
    Expired,
    /// Never seen: apply it, then [`Sessions::record`] the answer.
    New,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Client<O> {
    answers: BTreeMap<u64, (LogIndex, O)>,
    /// Sequences below this were evicted.
    floor: u64,
    /// Index of the last keyed write applied for this client.
    touched: LogIndex,
}

/// The session table. See the [module docs](self) for its bound.
///
/// ```
/// use raft_actors_service::sessions::{Lookup, Sessions};
/// let mut s = Sessions::default();
/// let k = "c:1".parse().unwrap();
/// assert_eq!(s.lookup(&k, 5), Lookup::New);
/// s.record(&k, 5, "first");
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
        match c.answers.get(&key.seq) {
            Some((i, o)) => Lookup::Answered(*i, o.clone()),
            None if key.seq < c.floor => Lookup::Expired,
            None => Lookup::New,
        }
    }

    /// Records the answer of `key`, applied at `index`, evicting the
    /// client's oldest answers beyond the bound.
    pub fn record(&mut self, key: &IdempotencyKey, index: LogIndex, output: O) {
        let c = self
            .clients
            .entry(key.client.clone())
            .or_insert_with(|| Client {
                answers: BTreeMap::new(),
                floor: 0,
                touched: index,
            });
        c.touched = index;
        c.answers.insert(key.seq, (index, output));
        while c.answers.len() > MAX_ANSWERS_PER_CLIENT {
            if let Some((seq, _)) = c.answers.pop_first() {
                c.floor = c.floor.max(seq + 1);
            }
        }
    }

    /// Forgets idle clients, once every [`SWEEP_EVERY`] entries; call
    /// before applying the entry at `index`.
    pub fn sweep(&mut self, index: LogIndex) {
        if index < self.last_sweep + SWEEP_EVERY {
            return;
        }
        self.last_sweep = index;
        for c in self.clients.values_mut() {
            if index.saturating_sub(c.touched) > IDLE_EXPIRY_ENTRIES {
                if let Some((&last, _)) = c.answers.last_key_value() {
                    c.floor = c.floor.max(last.saturating_add(1));
                }
                c.answers.clear();
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

    #[test]
    fn evicted_answers_are_expired_not_new() {
        let mut s = Sessions::default();
        for seq in 0..(MAX_ANSWERS_PER_CLIENT as u64 + 10) {
            assert_eq!(s.lookup(&key("a", seq), seq + 1), Lookup::New);
            s.record(&key("a", seq), seq + 1, seq);
        }
        assert_eq!(s.lookup(&key("a", 3), 1000), Lookup::Expired);
        assert_eq!(s.lookup(&key("a", 20), 1000), Lookup::Answered(21, 20));
        assert_eq!(s.lookup(&key("b", 3), 1000), Lookup::New);
    }

    #[test]
    fn idle_clients_are_forgotten_by_log_index() {
        let mut s = Sessions::default();
        s.record(&key("idle", 1), 1, ());
        s.record(&key("busy", 1), 1, ());
        s.record(&key("busy", 2), IDLE_EXPIRY_ENTRIES, ());
        s.sweep(IDLE_EXPIRY_ENTRIES + SWEEP_EVERY);
        assert_eq!(s.answers(), 2, "the idle client's answer is dropped");
        assert_eq!(
            s.lookup(&key("busy", 2), 0),
            Lookup::Answered(IDLE_EXPIRY_ENTRIES, ())
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
