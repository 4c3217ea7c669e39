//! [`FaultyStorage`]: a [`Storage`] wrapper that makes a disk fail on a
//! seeded schedule, so tests can check what a node does when its disk
//! lies to it: a write that fails (nothing of it became durable), an fsync
//! that fails (the batch may or may not be durable, and the page cache may
//! have dropped it: PostgreSQL's "fsyncgate"), and a read at load that
//! returns corrupt bytes (which the inner layer's checksum catches).
//!
//! The worst case is modelled, not the kind one: after a failed fsync the
//! wrapper decides by seed whether the inner store kept the batch, and from
//! then on it refuses every further write until the store is loaded again
//! (a new incarnation), so a node that retries can never see the retry
//! succeed; the attempts are counted in [`FaultStats::refused`], which a
//! correct node keeps at 0. A corrupt record is reported as
//! [`StorageError::Corrupt`], never handed back as a wrong value.
//!
//! It decides only which call fails; it must never reorder, merge or alter
//! what it forwards, nor hand back anything a failed call did not make
//! durable in the inner store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::storage::{LogState, Storage, StorageError, StorageStats, ToPersist};

/// What a write suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// The write itself fails: nothing of the batch reaches the inner store.
    Fails,
    /// The write went through but its fsync failed: the inner store kept
    /// the whole batch (`kept`) or none of it, and the node cannot know
    /// which. The wrapper refuses every write after it in the incarnation.
    FsyncFails {
        /// Whether the inner store kept the batch.
        kept: bool,
    },
}

/// When a [`FaultyStorage`] fails: seeded probabilities, and faults at
/// chosen calls. Deterministic: the `n`th write (or load) of a store meets
/// the same fault for the same plan, whatever happened before it.
///
/// ```
/// use raft_actors::testing::{FaultPlan, WriteFault};
/// let plan = FaultPlan::seeded(7).write_failures(0.1).fsync_failures(0.1);
/// let faults: Vec<_> = (1..=100).map(|n| plan.write_fault(n, true)).collect();
/// let again: Vec<_> = (1..=100).map(|n| plan.write_fault(n, true)).collect();
/// assert_eq!(faults, again);
/// assert!(faults.contains(&Some(WriteFault::Fails)));
/// let explicit = FaultPlan::none().at_write(3, WriteFault::FsyncFails { kept: false });
/// assert_eq!(explicit.write_fault(2, true), None);
/// assert_eq!(explicit.write_fault(3, true), Some(WriteFault::FsyncFails { kept: false }));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    seed: u64,
    write_failure: f64,
    fsync_failure: f64,
    corrupt_load: f64,
    writes: BTreeMap<u64, WriteFault>,
    loads: BTreeSet<u64>,
}

/// Salts that keep the draws for one call independent of each other.
const SALT_WRITE: u64 = 1;
const SALT_FSYNC: u64 = 2;
const SALT_KEPT: u64 = 3;
const SALT_LOAD: u64 = 4;
const SALT_INDEX: u64 = 5;

impl FaultPlan {
    /// No faults at all.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// No faults yet, drawn from `seed` once probabilities are set.
    pub fn seeded(seed: u64) -> Self {
        FaultPlan {
            seed,
            ..FaultPlan::default()
        }
    }

    /// Each write fails outright with probability `p`.
    pub fn write_failures(mut self, p: f64) -> Self {
        self.write_failure = clamp(p);
        self
    }

    /// Each write that must sync and did not fail outright has its fsync
    /// fail with probability `p`.
    pub fn fsync_failures(mut self, p: f64) -> Self {
        self.fsync_failure = clamp(p);
        self
    }

    /// Each load finds a corrupt record with probability `p`.
    pub fn corrupt_loads(mut self, p: f64) -> Self {
        self.corrupt_load = clamp(p);
        self
    }

    /// The `n`th write (counted from 1 over the store's life) meets `fault`,
    /// whatever the probabilities say.
    pub fn at_write(mut self, n: u64, fault: WriteFault) -> Self {
        self.writes.insert(n, fault);
        self
    }

    /// The `n`th load (counted from 1) finds a corrupt record.
    pub fn at_load(mut self, n: u64) -> Self {
        self.loads.insert(n);
        self
    }

    /// What the `n`th write meets by this plan; an fsync fault only where
    /// the write `must_sync` (a lazy write asks for no fsync to fail).
    pub fn write_fault(&self, n: u64, must_sync: bool) -> Option<WriteFault> {
        if let Some(fault) = self.writes.get(&n) {
            return Some(*fault);
        }
        if self.draw(n, SALT_WRITE) < self.write_failure {
            return Some(WriteFault::Fails);
        }
        if must_sync && self.draw(n, SALT_FSYNC) < self.fsync_failure {
            let kept = mix(self.seed, n, SALT_KEPT) & 1 == 1;
            return Some(WriteFault::FsyncFails { kept });
        }
        None
    }

    /// Whether the `n`th load finds a corrupt record by this plan.
    pub fn load_corrupt(&self, n: u64) -> bool {
        self.loads.contains(&n) || self.draw(n, SALT_LOAD) < self.corrupt_load
    }

    /// A uniform draw in `[0, 1)` for call `n`.
    fn draw(&self, n: u64, salt: u64) -> f64 {
        (mix(self.seed, n, salt) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn clamp(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// splitmix64 over the seed, the call and a salt: a pure function, so a
/// decision never depends on how many draws came before it.
fn mix(seed: u64, n: u64, salt: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a [`FaultyStorage`] did since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Loads asked for, and those that succeeded (each starts an
    /// incarnation).
    pub loads: u64,
    /// Loads that succeeded.
    pub incarnations: u64,
    /// Writes that reached the schedule (refused ones are not counted).
    pub writes: u64,
    /// Writes failed outright.
    pub write_failures: u64,
    /// Writes whose fsync failed, and how many of those the inner store
    /// kept anyway.
    pub fsync_failures: u64,
    /// Of `fsync_failures`, those the inner store kept.
    pub fsync_failures_kept: u64,
    /// Loads that found a corrupt record.
    pub corrupt_loads: u64,
    /// Writes tried after a failed write or a corrupt load and before the
    /// next clean load (a retry, or a node that went on regardless):
    /// refused, and 0 for a correct node.
    pub refused: u64,
}

impl FaultStats {
    /// Faults injected of every kind.
    pub fn injected(&self) -> u64 {
        self.write_failures + self.fsync_failures + self.corrupt_loads
    }
}

/// Shared by a [`FaultyStorage`] and its [`FaultHandle`]s.
#[derive(Debug, Default)]
struct Shared {
    plan: FaultPlan,
    /// Seeded faults fire only while enabled; armed and planned ones too.
    enabled: bool,
    /// The fault of the next write that must sync, armed by a test.
    armed_write: Option<WriteFault>,
    armed_loads: u64,
    corrupt_every_load: bool,
    /// Set by a failed write or a corrupt load: why every later write is
    /// refused until a clean load.
    poisoned: Option<String>,
    stats: FaultStats,
}

/// A test's control of a [`FaultyStorage`] the node owns: its counters,
/// and faults armed for the next call.
#[derive(Clone, Debug)]
pub struct FaultHandle {
    shared: Arc<Mutex<Shared>>,
}

impl FaultHandle {
    /// What the storage did so far.
    pub fn stats(&self) -> FaultStats {
        lock(&self.shared).stats
    }

    /// Turns the plan's seeded faults off (or on again), e.g. for a quiet
    /// end of a test; faults armed here still fire.
    pub fn set_enabled(&self, enabled: bool) {
        lock(&self.shared).enabled = enabled;
    }

    /// The next write that must sync meets `fault`.
    pub fn fail_next_write(&self, fault: WriteFault) {
        lock(&self.shared).armed_write = Some(fault);
    }

    /// The next load finds a corrupt record.
    pub fn corrupt_next_load(&self) {
        lock(&self.shared).armed_loads += 1;
    }

    /// Every load finds a corrupt record (or none does again): a record
    /// corrupt on the medium, not in transit.
    pub fn corrupt_every_load(&self, on: bool) {
        lock(&self.shared).corrupt_every_load = on;
    }

    /// Whether writes are refused now (a write failed in this incarnation).
    pub fn is_poisoned(&self) -> bool {
        lock(&self.shared).poisoned.is_some()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Every update under this lock is a few field assignments with no
    // call that can panic in between: a poisoned lock's data is sound.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// A [`Storage`] whose disk fails on a [`FaultPlan`]. See the
/// [module docs](self).
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::core::{Entry, HardState, Membership, Payload};
/// use raft_actors::storage::{MemoryStorage, Storage, StorageError, ToPersist};
/// use raft_actors::testing::{FaultPlan, FaultyStorage, WriteFault};
/// let memory = MemoryStorage::new(Membership::voters([1]));
/// let plan = FaultPlan::none().at_write(1, WriteFault::FsyncFails { kept: false });
/// let mut disk = FaultyStorage::new(memory.clone(), plan);
/// let faults = disk.handle();
/// disk.load().await.expect("load");
/// let batch = ToPersist {
///     hard_state: Some(HardState { term: 1, vote: Some(1), commit: 0 }),
///     entries: vec![Entry { index: 1, term: 1, payload: Payload::Noop }],
///     ..ToPersist::default()
/// };
/// assert!(disk.write(batch.clone()).await.is_err()); // the fsync failed
/// // A retry is refused, so it can never be seen to succeed.
/// assert!(matches!(disk.write(batch.clone()).await, Err(StorageError::Io(_))));
/// assert_eq!(faults.stats().refused, 1);
/// // A new incarnation loads what is durable, and may write again.
/// assert!(disk.load().await.expect("reload").entries.is_empty());
/// disk.write(batch).await.expect("written");
/// assert_eq!(memory.state().entries.len(), 1);
/// # }
/// ```
#[derive(Debug)]
pub struct FaultyStorage<S> {
    inner: S,
    shared: Arc<Mutex<Shared>>,
}

impl<S: Storage> FaultyStorage<S> {
    /// Wraps `inner`; faults follow `plan` (enabled).
    pub fn new(inner: S, plan: FaultPlan) -> Self {
        FaultyStorage {
            inner,
            shared: Arc::new(Mutex::new(Shared {
                plan,
                enabled: true,
                ..Shared::default()
            })),
        }
    }

    /// The test's control of this storage, to keep once the node owns it.
    pub fn handle(&self) -> FaultHandle {
        FaultHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The wrapped store.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Runs one write through the schedule: refused while poisoned, else
    /// failed, half-done or forwarded as the plan says.
    async fn mutate(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let must_sync = batch.must_sync;
        let fault = {
            let mut s = lock(&self.shared);
            if let Some(why) = &s.poisoned {
                let err = StorageError::Io(format!("write refused: {why}; reload the storage"));
                s.stats.refused += 1;
                return Err(err);
            }
            s.stats.writes += 1;
            let n = s.stats.writes;
            let armed = if must_sync {
                s.armed_write.take()
            } else {
                None
            };
            let planned = s.plan.write_fault(n, must_sync);
            let fault = armed.or(if s.enabled || s.plan.writes.contains_key(&n) {
                planned
            } else {
                None
            });
            match fault {
                Some(WriteFault::Fails) => {
                    s.stats.write_failures += 1;
                    s.poisoned = Some(format!("write {n} failed"));
                }
                Some(WriteFault::FsyncFails { kept }) => {
                    s.stats.fsync_failures += 1;
                    s.stats.fsync_failures_kept += u64::from(kept);
                    // Whatever the disk says later, this incarnation can
                    // no longer know what is durable: fsyncgate.
                    s.poisoned = Some(format!("the fsync of write {n} failed"));
                }
                None => {}
            }
            fault.map(|f| (n, f))
        };
        match fault {
            None => self.inner.write(batch).await,
            Some((n, WriteFault::Fails)) => Err(StorageError::Io(format!(
                "injected write failure (write {n}): nothing of it is durable"
            ))),
            Some((n, WriteFault::FsyncFails { kept })) => {
                if kept {
                    self.inner.write(batch).await?;
                }
                Err(StorageError::Io(format!(
                    "injected fsync failure (write {n}): it may or may not be durable"
                )))
            }
        }
    }
}

#[async_trait]
impl<S: Storage> Storage for FaultyStorage<S> {
    fn snapshots(&self) -> crate::storage::SharedSnapshots {
        self.inner.snapshots()
    }

    /// The inner layer's: the core asks only for durable entries, which it
    /// holds.
    fn log_reader(&self) -> Option<crate::storage::SharedLogReader> {
        self.inner.log_reader()
    }

    /// Starts an incarnation: writes are accepted again. A corrupt record
    /// is reported as the inner layer's checksum would report it.
    async fn load(&mut self) -> Result<LogState, StorageError> {
        let state = self.inner.load().await?;
        let mut s = lock(&self.shared);
        s.stats.loads += 1;
        let n = s.stats.loads;
        let armed = s.armed_loads > 0 || s.corrupt_every_load;
        s.armed_loads = s.armed_loads.saturating_sub(1);
        let planned = s.plan.load_corrupt(n) && (s.enabled || s.plan.loads.contains(&n));
        if armed || planned {
            s.stats.corrupt_loads += 1;
            // A node that went on after this load would write on a log it
            // never read: refuse (and count) its writes as retries.
            s.poisoned = Some(format!("load {n} found a corrupt record"));
            // The bad record: one of the stored entries, or the metadata
            // (index 0) of a store without any.
            let index = match state.entries.len() as u64 {
                0 => 0,
                len => {
                    let pick = mix(s.plan.seed, n, SALT_INDEX) % len;
                    state.entries.get(pick as usize).map_or(0, |e| e.index)
                }
            };
            return Err(StorageError::Corrupt {
                index,
                reason: format!("checksum mismatch (injected at load {n})"),
            });
        }
        s.poisoned = None;
        s.stats.incarnations += 1;
        Ok(state)
    }

    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        self.mutate(batch).await
    }

    fn stats(&self) -> StorageStats {
        self.inner.stats()
    }
}

#[cfg(test)]
#[path = "faulty_storage_tests.rs"]
mod tests;
