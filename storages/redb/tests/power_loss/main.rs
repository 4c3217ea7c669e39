//! Power loss for the redb storage. A SIGKILL keeps the page cache, so the
//! crash test (`tests/crash.rs`) cannot tell a synced write from one the
//! kernel still held; these rounds run `RedbStorage` on a modelled disk
//! with a volatile cache ([`disk`]) and cut its power at seeded points.
//!
//! A round starts on a blank disk and sends the store a seeded stream of
//! writes ([`workload`]) while the model ([`model`]) records what it
//! acknowledged. The power fails in the middle of a seeded sync (one of
//! redb's own at open and repair included, or the one a write waits for);
//! the store is reopened on what the medium kept, checked, written to
//! again, cut again, [`CRASHES`] times, then reopened a last time.
//! Checked at every reopen:
//!
//! - on an honest disk that keeps what was synced, the store opens, and
//!   holds everything it acknowledged;
//! - on a disk that tore its last write-back, it opens holding everything
//!   it acknowledged, or refuses with a typed error; it never shows a
//!   wrong or half-written state (the model allows the last synced state,
//!   later unsynced ones, and the write cut short, whole);
//! - on a lying or lagging disk, the check catches the loss (so the
//!   checks above are not vacuous).
//!
//! A panic inside redb while it opens a torn file is not the store's
//! fault, but not a clean refusal either: such rounds are counted and
//! reported apart, and `POWER_LOSS_STRICT=1` fails on them.
//!
//! An fsync that fails with the power on is [`fsync_error`]'s: the store
//! refuses every call until it is reopened.
//!
//! `cargo test -p raft-actors-storage-redb --test power_loss` runs
//! [`ROUNDS`] rounds per disk, round `r` on seed `r`;
//! `POWER_LOSS_ROUNDS=5000` runs more, `POWER_LOSS_SEED=100000` from
//! another seed on. A failure names its round's seed:
//! `POWER_LOSS_SEED=<seed> POWER_LOSS_ROUNDS=1` replays it alone.

mod disk;
mod fsync_error;
mod model;
mod workload;

use std::collections::BTreeMap;

use disk::{Disk, Kind};
use futures::executor::block_on;
use model::{Model, Violation};
use raft_actors::storage::Storage;
use raft_actors_storage_redb::{RedbError, RedbStorage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rounds per disk by default (`POWER_LOSS_ROUNDS` overrides).
const ROUNDS: u64 = 200;
/// Power cuts per round before the last reopen.
const CRASHES: usize = 3;
/// Writes sent to one incarnation at most, if no cut stops it first.
const MAX_WRITES: usize = 80;
/// Cuts fall within this many syncs of an open.
const MAX_CUT: u64 = 40;

fn env_u64(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v}: not a number")),
        Err(_) => default,
    }
}

/// How one round ended.
#[derive(Debug)]
enum End {
    /// Every reopen held what it must.
    Intact,
    /// A reopen refused the surviving image with a typed error; what it
    /// had acknowledged before is then gone from the store (allowed only
    /// of a disk that tore a write, or before any acknowledgement).
    Refused {
        acknowledged: bool,
        error: String,
        /// Whether a power loss of the round filled sector 0, where redb
        /// keeps its only header (both commit slots), with garbage.
        header_garbled: bool,
    },
    /// redb panicked while opening the surviving image.
    Panicked(String),
}

/// Why a round failed.
#[derive(Debug)]
struct Failure {
    kind: Kind,
    seed: u64,
    crash: usize,
    what: String,
    violation: Option<Violation>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} disk, round seed {}, after power cut {}: {}",
            self.kind, self.seed, self.crash, self.what
        )
    }
}

/// One round on a fresh disk of `kind`, all its choices drawn from `seed`.
fn round(kind: Kind, seed: u64) -> Result<End, Failure> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Model::new();
    let mut image = Vec::new();
    let fail = |crash, what: String, violation| Failure {
        kind,
        seed,
        crash,
        what,
        violation,
    };
    let trace = std::env::var_os("POWER_LOSS_TRACE").is_some();
    let mut header_garbled = false;
    for crash in 0..=CRASHES {
        let disk = Disk::new(kind, rng.gen(), std::mem::take(&mut image));
        let last = crash == CRASHES;
        let cut = (!last).then(|| rng.gen_range(1..=MAX_CUT));
        if let Some(n) = cut {
            disk.fail_at_sync(n);
        }
        if trace {
            eprintln!("[{seed}] open {crash}: {disk:?}, power fails at sync {cut:?}");
        }
        let mut store = match RedbStorage::open_backend(disk.clone(), "power-loss") {
            Ok(store) => store,
            Err(_) if disk.is_off() => {
                // The power failed while redb opened or repaired the
                // file: nothing was answered; open again on what is left.
                image = disk.power_off();
                header_garbled |= disk.garbled() == Some(0);
                continue;
            }
            Err(RedbError::Panicked { reason, .. }) => return Ok(End::Panicked(reason)),
            Err(e) => {
                let acknowledged = !model.durable().is_blank();
                if acknowledged && matches!(kind, Kind::Honest) {
                    let what = format!("an honest disk's store is refused: {e}");
                    return Err(fail(crash, what, None));
                }
                return Ok(End::Refused {
                    acknowledged,
                    error: e.to_string(),
                    header_garbled,
                });
            }
        };
        let found = match block_on(store.load()) {
            Ok(state) => model::Image::from(state),
            Err(e) => {
                return Err(fail(
                    crash,
                    format!("an opened store fails to load: {e}"),
                    None,
                ))
            }
        };
        if let Err(v) = model.check(&found) {
            return Err(fail(crash, v.to_string(), Some(v)));
        }
        model.reopened(found);
        if last {
            break;
        }
        for _ in 0..MAX_WRITES {
            let op = workload::next_op(model.current(), &mut rng);
            let (next, synced) = model.current().after(&op);
            if trace {
                eprintln!("[{seed}]   {synced} {:.160}", format!("{op:?}"));
            }
            match block_on(workload::send(&mut store, op.clone())) {
                Ok(()) => model.answered(next, synced),
                Err(_) if disk.is_off() => {
                    model.cut_short(next);
                    break;
                }
                Err(e) => {
                    let what = format!(
                        "a write failed with the power on: {e} ({:.300})",
                        format!("{op:?}")
                    );
                    return Err(fail(crash, what, None));
                }
            }
        }
        drop(store);
        image = disk.power_off();
        header_garbled |= disk.garbled() == Some(0);
        if trace {
            eprintln!("[{seed}] power off: {disk:?}, {} bytes kept", image.len());
        }
    }
    Ok(End::Intact)
}

/// What the rounds on one kind of disk came to.
#[derive(Debug, Default)]
struct Tally {
    intact: u64,
    refused_before_ack: u64,
    /// Refusals after acknowledgements, by error and whether the header
    /// sector was garbled: the round seeds.
    refused_after_ack: BTreeMap<(String, bool), Vec<u64>>,
    panicked: Vec<(u64, String)>,
    failures: Vec<Failure>,
}

/// Runs `rounds` rounds on disks of `kind`, from `base` on; stops at the
/// first failure if `first_failure`.
fn run(kind: Kind, base: u64, rounds: u64, first_failure: bool) -> Tally {
    let mut t = Tally::default();
    for r in 0..rounds {
        let seed = base.wrapping_add(r);
        match round(kind, seed) {
            Ok(End::Intact) => t.intact += 1,
            Ok(End::Refused {
                acknowledged: false,
                ..
            }) => t.refused_before_ack += 1,
            Ok(End::Refused {
                error,
                header_garbled,
                ..
            }) => t
                .refused_after_ack
                .entry((error, header_garbled))
                .or_default()
                .push(seed),
            Ok(End::Panicked(reason)) => t.panicked.push((seed, reason)),
            Err(f) => {
                t.failures.push(f);
                if first_failure {
                    break;
                }
            }
        }
    }
    let refused: usize = t.refused_after_ack.values().map(Vec::len).sum();
    eprintln!(
        "{kind:?} disk, {rounds} rounds from seed {base}: {} intact, {} refused before any \
         acknowledgement, {refused} refused after, {} redb panics, {} failures",
        t.intact,
        t.refused_before_ack,
        t.panicked.len(),
        t.failures.len()
    );
    for ((error, garbled), seeds) in &t.refused_after_ack {
        let header = if *garbled {
            "redb's header sector garbled"
        } else {
            "header sector whole"
        };
        eprintln!(
            "  refused {} times, {header} ({seeds:?}): {error}",
            seeds.len()
        );
    }
    for (seed, reason) in &t.panicked {
        eprintln!("  redb panicked opening a surviving image (round seed {seed}): {reason}");
    }
    t
}

fn settings() -> (u64, u64, bool) {
    (
        env_u64("POWER_LOSS_SEED", 0),
        env_u64("POWER_LOSS_ROUNDS", ROUNDS),
        env_u64("POWER_LOSS_STRICT", 0) != 0,
    )
}

/// The checks of an honest or tearing disk: no failure, and no redb panic
/// in strict mode.
fn assert_sound(kind: Kind) -> Tally {
    let (seed, rounds, strict) = settings();
    let t = run(kind, seed, rounds, false);
    if let Some(f) = t.failures.first() {
        panic!("{} of {rounds} rounds failed; first: {f}", t.failures.len());
    }
    if strict && !t.panicked.is_empty() {
        panic!(
            "POWER_LOSS_STRICT: redb panicked opening {} surviving images (seeds {:?})",
            t.panicked.len(),
            t.panicked.iter().map(|p| p.0).collect::<Vec<_>>()
        );
    }
    t
}

#[test]
fn an_honest_disk_keeps_every_acknowledged_write() {
    let t = assert_sound(Kind::Honest);
    assert!(
        t.refused_after_ack.is_empty(),
        "an honest disk's store is never refused"
    );
    assert!(t.intact > 0, "no round ran to its end");
}

#[test]
fn a_torn_write_back_is_repaired_or_refused_never_misread() {
    let t = assert_sound(Kind::Torn);
    // redb keeps both commit slots in sector 0: garbage there loses the
    // file, and a clean refusal is all that can be asked. Any other tear
    // must be repaired.
    let refused: Vec<_> = t
        .refused_after_ack
        .iter()
        .filter(|((_, header_garbled), _)| !header_garbled)
        .collect();
    assert!(
        refused.is_empty(),
        "a tear that left redb's header sector whole was refused: {refused:?}"
    );
    assert!(t.intact > 0, "no round ran to its end");
}

/// A disk that loses acknowledged writes must fail the check: the rounds
/// above prove something only if it would.
fn assert_caught(kind: Kind) {
    let (seed, rounds, _) = settings();
    let t = run(kind, seed, rounds.min(ROUNDS), true);
    let lost = t
        .failures
        .iter()
        .filter(|f| matches!(f.violation, Some(Violation::Lost(_))))
        .count();
    assert!(
        lost > 0,
        "a {kind:?} disk lost no acknowledged write the check saw in {} rounds",
        rounds.min(ROUNDS)
    );
}

#[test]
fn a_lying_disk_that_ignores_syncs_is_caught() {
    assert_caught(Kind::Lying);
}

#[test]
fn a_lagging_disk_that_loses_the_last_sync_is_caught() {
    assert_caught(Kind::Lagging);
}
