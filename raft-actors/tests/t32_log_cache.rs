//! The log cache as a core sees it, driven by hand with no clock: however
//! long the log grows between snapshots, the payloads it holds weigh at
//! most `log_cache_bytes` plus what is not applied yet, and an entry whose
//! payload was dropped never reaches a peer, a storage or the state
//! machine without it.

use bytes::Bytes;
use raft_actors::core::{Body, Config, Entry, Membership, Message, Payload, RaftCore, Recovered};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const VALUE: usize = 1024;
const BUDGET: u64 = 16 * 1024;

fn follower(budget: Option<u64>) -> RaftCore {
    let cfg = Config {
        log_cache_bytes: budget,
        // No snapshot: the log only grows.
        snapshot_threshold: 0,
        ..Config::default()
    };
    let rng = ChaCha8Rng::seed_from_u64(3);
    let boot = Recovered::bootstrap(Membership::voters([1, 2, 3]));
    RaftCore::new(2, cfg, boot, rng).expect("a valid core")
}

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        payload: Payload::Command(Bytes::from(vec![index as u8; VALUE])),
    }
}

/// The leader of term 1 sends entries `from..=to`, committing up to `commit`.
fn append(from: u64, to: u64, commit: u64) -> Message {
    Message {
        from: 1,
        to: 2,
        term: 1,
        body: Body::Append {
            prev_index: from - 1,
            prev_term: if from == 1 { 0 } else { 1 },
            entries: (from..=to).map(entry).collect(),
            commit,
        },
    }
}

/// Runs the driver loop: persists (checking nothing unread is persisted),
/// applies (likewise) and acknowledges. Answers the entries applied.
fn drain(core: &mut RaftCore) -> Vec<Entry> {
    let mut applied = Vec::new();
    while let Some(rd) = core.ready() {
        let (persist, gate) = rd.split();
        assert!(
            persist
                .entries
                .iter()
                .all(|e| !matches!(e.payload, Payload::Unread { .. })),
            "an unread payload handed to storage"
        );
        let after = gate.persisted();
        assert!(
            after
                .committed
                .iter()
                .all(|e| !matches!(e.payload, Payload::Unread { .. })),
            "an unread payload handed to apply"
        );
        applied.extend(after.committed);
        core.advance();
    }
    applied
}

/// Payload bytes the core holds for `lo..=hi`.
fn held(core: &RaftCore, lo: u64, hi: u64) -> u64 {
    core.entries(lo, hi)
        .iter()
        .filter(|e| !matches!(e.payload, Payload::Unread { .. }))
        .map(|e| e.payload.len() as u64)
        .sum()
}

#[test]
fn the_payloads_held_stay_within_the_budget_however_long_the_log() {
    let mut core = follower(Some(BUDGET));
    let mut applied = 0;
    // 2,000 entries of 1 KiB, 50 at a time, each batch committing the one
    // before: 2 MiB through a log that is never compacted.
    for batch in 0..40u64 {
        let (from, to) = (batch * 50 + 1, batch * 50 + 50);
        core.step(append(from, to, from - 1));
        applied += drain(&mut core).len();
        let unapplied = (to - core.status().applied) * VALUE as u64;
        assert!(
            held(&core, 1, to) <= BUDGET + unapplied,
            "after {to}: {} bytes held, budget {BUDGET} + {unapplied} not applied",
            held(&core, 1, to)
        );
    }
    assert_eq!(applied, 1950, "every committed entry applied, whole");
    // Every entry is still in the log (terms, lengths), the old ones unread.
    let log = core.entries(1, 2000);
    assert_eq!(log.len(), 2000);
    assert!(matches!(log[0].payload, Payload::Unread { len } if len == VALUE as u64));
    assert!(matches!(log[1999].payload, Payload::Command(_)));
}

#[test]
fn without_a_budget_every_payload_stays() {
    let mut core = follower(None);
    core.step(append(1, 200, 0));
    drain(&mut core);
    core.step(append(201, 201, 200));
    drain(&mut core);
    assert_eq!(held(&core, 1, 201), 201 * VALUE as u64);
}

#[test]
fn an_append_carrying_an_unread_payload_is_refused_and_counted() {
    let mut core = follower(Some(BUDGET));
    let mut m = append(1, 2, 0);
    if let Body::Append { entries, .. } = &mut m.body {
        entries[1].payload = Payload::Unread { len: 1 };
    }
    let before = core.counters().malformed;
    core.step(m);
    drain(&mut core);
    assert_eq!(core.counters().malformed, before + 1);
    assert_eq!(core.status().last_index, 0, "nothing of it stored");
}
