//! [`next_op`]: a seeded stream of the writes a Raft node sends its
//! storage (appends, conflicts that replace a tail, new terms and votes,
//! commit-only batches, snapshots with compaction, a leader's snapshot,
//! truncations), each valid for the state it is drawn from, and
//! [`send`], which hands one to the store.
//!
//! It must never draw a write the store would refuse as out of order: a
//! refusal here would be the test's bug, and it would hide the power cut.

use bytes::Bytes;
use raft_actors::core::{Entry, HardState, LogIndex, Membership, Payload, SnapshotMeta};
use raft_actors::storage::{Snapshot, Storage, StorageError, ToPersist};
use raft_actors_storage_redb::RedbStorage;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use crate::model::{Image, Op};

/// The configuration a blank store is bootstrapped with.
pub fn voters() -> Membership {
    Membership::voters([1, 2, 3])
}

/// The next operation for a store holding `now`.
pub fn next_op(now: &Image, rng: &mut ChaCha8Rng) -> Op {
    if now.is_blank() {
        return Op::Bootstrap(voters());
    }
    let hs = now.hard_state;
    if hs.term == 0 {
        return Op::Write(hard_state(HardState {
            term: 1,
            vote: Some(1),
            commit: 0,
        }));
    }
    let (offset, last, commit) = (now.offset(), now.last_index(), hs.commit);
    match rng.gen_range(0..100) {
        0..=44 => append(now, last + 1, hs, rng),
        45..=51 if last > commit && last > offset => {
            // A follower repairing a conflict (§5.3): a new leader's entries
            // replace an uncommitted tail.
            let from = rng.gen_range(commit.max(offset) + 1..=last);
            let hs = HardState {
                term: hs.term + 1,
                vote: Some(rng.gen_range(1..=3)),
                ..hs
            };
            append(now, from, hs, rng)
        }
        52..=59 => Op::Write(hard_state(HardState {
            term: hs.term + 1,
            vote: rng.gen_bool(0.7).then(|| rng.gen_range(1..=3)),
            commit,
        })),
        60..=79 if last > commit => Op::Write(hard_state(HardState {
            commit: rng.gen_range(commit + 1..=last),
            ..hs
        })),
        80..=89 if commit > now.snapshot_index() && now.entry(commit).is_some() => {
            // The node's own snapshot at its commit index; the log is
            // compacted up to it but for a few trailing entries.
            let term = now.entry(commit).map_or(0, |e| e.term);
            let (snapshot, _) = snapshot(commit, term, now.membership.clone(), rng);
            let keep = rng.gen_range(0..=4);
            let compact_to = commit.saturating_sub(keep).max(offset);
            Op::Write(ToPersist {
                snapshot: Some(snapshot),
                compact_to: (compact_to > offset).then_some(compact_to),
                ..ToPersist::default()
            })
        }
        90..=94 => {
            // A leader's snapshot: one that matches a held entry keeps the
            // log after it; one past the log replaces the whole log.
            let matching = now
                .entries
                .iter()
                .filter(|e| e.index > now.snapshot_index())
                .map(|e| (e.index, e.term))
                .collect::<Vec<_>>();
            let (index, term) = match matching.len() {
                n if n > 0 && rng.gen_bool(0.5) => matching[rng.gen_range(0..n)],
                _ => (last + rng.gen_range(1..=20), hs.term),
            };
            let members = if rng.gen_bool(0.3) {
                Membership::voters([1, 2, 3, 4])
            } else {
                now.membership.clone()
            };
            let (snapshot, data) = snapshot(index, term, members, rng);
            Op::Write(ToPersist {
                snapshot_chunks: vec![raft_actors::core::SnapshotChunk {
                    snapshot: snapshot.clone(),
                    offset: 0,
                    data,
                }],
                snapshot: Some(snapshot),
                snapshot_received: true,
                ..ToPersist::default()
            })
        }
        _ => append(now, last + 1, hs, rng),
    }
}

fn hard_state(hs: HardState) -> ToPersist {
    ToPersist {
        hard_state: Some(hs),
        ..ToPersist::default()
    }
}

/// Entries from `from` on, of the term of `hs` (saved with them), with a
/// commit index moved up to a point among them now and then.
fn append(now: &Image, from: LogIndex, mut hs: HardState, rng: &mut ChaCha8Rng) -> Op {
    let count = rng.gen_range(1..=6);
    let entries: Vec<Entry> = (from..from + count)
        .map(|index| Entry {
            index,
            term: hs.term,
            payload: payload(rng),
        })
        .collect();
    let last = from + count - 1;
    if rng.gen_bool(0.5) && last > hs.commit {
        hs.commit = rng.gen_range(hs.commit..=last);
    }
    let changed = hs != now.hard_state;
    Op::Write(ToPersist {
        hard_state: changed.then_some(hs),
        entries,
        ..ToPersist::default()
    })
}

/// Mostly small commands, some spanning pages, a few no-ops and
/// configurations.
fn payload(rng: &mut ChaCha8Rng) -> Payload {
    match rng.gen_range(0..20) {
        0 => Payload::Noop,
        1 => Payload::Config(Box::new(Membership::voters([1, 2, 3]))),
        2..=4 => Payload::Command(bytes(rng.gen_range(4_000..24_000), rng)),
        _ => Payload::Command(bytes(rng.gen_range(0..600), rng)),
    }
}

/// A snapshot's record and its bytes (this workload models the log's disk;
/// the bytes go to the in-memory snapshot store of a backend).
fn snapshot(
    index: LogIndex,
    term: u64,
    membership: Membership,
    rng: &mut ChaCha8Rng,
) -> (Snapshot, Bytes) {
    let meta = SnapshotMeta {
        index,
        term,
        membership,
    };
    let data = bytes(rng.gen_range(0..10_000), rng);
    (Snapshot::of(meta, &data), data)
}

fn bytes(len: usize, rng: &mut ChaCha8Rng) -> Bytes {
    let mut b = vec![0u8; len];
    rng.fill_bytes(&mut b);
    Bytes::from(b)
}

/// Hands `op` to the store and waits for its answer.
pub async fn send(store: &mut RedbStorage, op: Op) -> Result<(), StorageError> {
    match op {
        Op::Bootstrap(m) => store.bootstrap(m),
        Op::Write(batch) => store.write(batch).await,
    }
}
