//! [`Disk`]: a disk with a volatile write cache, as a redb
//! [`StorageBackend`], and what a power loss leaves of it.
//!
//! A write lands in the cache: reads see it at once, the medium does not
//! hold it until a sync writes the cache back. When the power fails (in
//! the middle of a chosen sync, or whenever the test pulls the plug),
//! [`Disk::power_off`] answers the image the medium holds, by the disk's
//! [`Kind`], and from then on every call fails, as the process would have
//! died. The cache is modelled by sector ([`SECTOR`] bytes, the unit a disk
//! writes atomically or tears), so what survives never depends on the
//! order in which redb issued its writes (which follows a hash map's): one
//! seed gives one image.
//!
//! It must never touch the host's files: the medium is a `Vec<u8>`, and a
//! sync of the host's page cache would prove nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redb::StorageBackend;

/// The unit a disk writes whole or tears.
pub const SECTOR: u64 = 512;

/// How a disk treats a sync, and what a power loss leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An honest disk that keeps exactly what was synced: the cache is
    /// lost whole.
    Honest,
    /// An honest disk that was writing its cache back when the power
    /// failed: a seeded share of the dirty sectors, in a seeded order,
    /// reached the medium; the sector in flight came out as it was, or as
    /// garbage; the rest never did. The file keeps its synced length or
    /// takes the new one (a coin). What was synced stays.
    Torn,
    /// A disk that answers a sync without writing anything back (it
    /// ignores flushes); at a power loss its cache, dirty since the disk
    /// was made, comes back as [`Kind::Torn`]'s does. Loses acknowledged
    /// writes: the check must catch it.
    Lying,
    /// A disk whose sync writes back what the sync before it held, so a
    /// power loss takes the last synced batch. Loses acknowledged writes:
    /// the check must catch it.
    Lagging,
}

/// A disk shared by the test (which pulls the plug) and the store (which
/// holds it as its backend). See the [module docs](self).
#[derive(Clone)]
pub struct Disk {
    inner: Arc<Mutex<State>>,
}

struct State {
    kind: Kind,
    rng: ChaCha8Rng,
    /// What reads see: the medium with the cache over it.
    view: Vec<u8>,
    /// What survives a power loss as it stands.
    medium: Vec<u8>,
    /// Sectors of `view` that differ from the medium's.
    dirty: BTreeSet<u64>,
    /// [`Kind::Lagging`]: the sectors and length the last sync held, for
    /// the medium at the next one.
    lagging: Option<(BTreeMap<u64, Vec<u8>>, usize)>,
    /// Syncs answered so far.
    syncs: u64,
    /// The power fails during this sync (counted from 1).
    fail_at: Option<u64>,
    /// This sync (counted from 1) fails with the power on, as Linux's
    /// fsync does after a write-back error: the dirty pages are marked
    /// clean without reaching the medium (fsyncgate), so a later sync
    /// would succeed having written nothing.
    sync_error_at: Option<u64>,
    /// Calls the store made, of every kind.
    calls: u64,
    /// What survived, once the power failed.
    survived: Option<Vec<u8>>,
    /// The sector a torn write-back filled with garbage, if any.
    garbled: Option<u64>,
}

fn dead() -> io::Error {
    io::Error::other("the disk has lost power")
}

impl Disk {
    /// A disk whose medium holds `image` (empty for a blank one), with an
    /// empty cache; `seed` decides what a power loss tears.
    pub fn new(kind: Kind, seed: u64, image: Vec<u8>) -> Disk {
        Disk {
            inner: Arc::new(Mutex::new(State {
                kind,
                rng: ChaCha8Rng::seed_from_u64(seed),
                view: image.clone(),
                medium: image,
                dirty: BTreeSet::new(),
                lagging: None,
                syncs: 0,
                fail_at: None,
                sync_error_at: None,
                calls: 0,
                survived: None,
                garbled: None,
            })),
        }
    }

    /// The power fails during the `n`th sync (from 1) this disk is asked
    /// for: that sync and every call after it fail.
    pub fn fail_at_sync(&self, n: u64) {
        self.state().fail_at = Some(n);
    }

    /// The `n`th sync (from 1) fails with the power on, dropping the
    /// cache as fsyncgate does (see `State::sync_error_at`).
    pub fn sync_error_at(&self, n: u64) {
        self.state().sync_error_at = Some(n);
    }

    /// Syncs answered so far, failed ones included.
    pub fn syncs(&self) -> u64 {
        self.state().syncs
    }

    /// Calls of every kind the store made on this disk.
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Whether the power has failed.
    pub fn is_off(&self) -> bool {
        self.state().survived.is_some()
    }

    /// The sector the power loss filled with garbage, if it did.
    pub fn garbled(&self) -> Option<u64> {
        self.state().garbled
    }

    /// Cuts the power, if it is still on, and answers what the medium
    /// kept.
    pub fn power_off(&self) -> Vec<u8> {
        let mut s = self.state();
        s.cut();
        s.survived.clone().expect("cut() leaves the survivors")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held (redb's, on the storage thread)
        // leaves the state whole: every method updates it at its end.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn alive(&self) -> io::Result<()> {
        match self.survived {
            Some(_) => Err(dead()),
            None => Ok(()),
        }
    }

    fn sector(&self, index: u64, of: &[u8]) -> Vec<u8> {
        let lo = (index * SECTOR) as usize;
        let hi = (lo + SECTOR as usize).min(of.len());
        of.get(lo..hi).map_or_else(Vec::new, <[u8]>::to_vec)
    }

    /// The power fails now: the medium is settled by the disk's kind.
    fn cut(&mut self) {
        if self.survived.is_some() {
            return;
        }
        let image = match self.kind {
            Kind::Honest | Kind::Lagging => self.medium.clone(),
            Kind::Torn | Kind::Lying => self.torn_write_back(),
        };
        self.survived = Some(image);
    }

    /// The medium after a write-back of the cache cut short: see
    /// [`Kind::Torn`].
    fn torn_write_back(&mut self) -> Vec<u8> {
        let mut image = self.medium.clone();
        let mut order: Vec<u64> = self.dirty.iter().copied().collect();
        order.shuffle(&mut self.rng);
        let reached = self.rng.gen_range(0..=order.len());
        for (i, &sector) in order.iter().enumerate() {
            let at = (sector * SECTOR) as usize;
            let new = self.sector(sector, &self.view);
            let bytes = if i < reached {
                new
            } else if i == reached && self.rng.gen_bool(0.5) {
                let mut garbage = vec![0u8; new.len()];
                self.rng.fill_bytes(&mut garbage);
                self.garbled = Some(sector);
                garbage
            } else {
                continue;
            };
            if image.len() < at + bytes.len() {
                image.resize(at + bytes.len(), 0);
            }
            image[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        let len = if self.rng.gen_bool(0.5) {
            self.medium.len()
        } else {
            self.view.len()
        };
        image.resize(len, 0);
        image
    }

    fn sync(&mut self) -> io::Result<()> {
        self.alive()?;
        self.syncs += 1;
        if self.fail_at == Some(self.syncs) {
            self.cut();
            return Err(dead());
        }
        if self.sync_error_at == Some(self.syncs) {
            self.dirty.clear();
            return Err(io::Error::other("injected fsync error (write-back failed)"));
        }
        match self.kind {
            Kind::Honest | Kind::Torn => {
                let len = self.view.len();
                self.medium.resize(len, 0);
                for index in std::mem::take(&mut self.dirty) {
                    let at = (index * SECTOR) as usize;
                    let end = (at + SECTOR as usize).min(len);
                    self.medium[at..end].copy_from_slice(&self.view[at..end]);
                }
            }
            Kind::Lying => {}
            Kind::Lagging => {
                if let Some((sectors, len)) = self.lagging.take() {
                    self.medium.resize(len, 0);
                    for (index, bytes) in sectors {
                        let at = (index * SECTOR) as usize;
                        let end = (at + bytes.len()).min(len);
                        if at < end {
                            self.medium[at..end].copy_from_slice(&bytes[..end - at]);
                        }
                    }
                }
                let held = self
                    .dirty
                    .iter()
                    .map(|&i| (i, self.sector(i, &self.view)))
                    .collect();
                self.lagging = Some((held, self.view.len()));
                self.dirty.clear();
            }
        }
        Ok(())
    }

    fn mark_dirty(&mut self, lo: u64, hi: u64) {
        if hi > lo {
            self.dirty.extend(lo / SECTOR..hi.div_ceil(SECTOR));
        }
    }
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state();
        f.debug_struct("Disk")
            .field("kind", &s.kind)
            .field("len", &s.view.len())
            .field("dirty_sectors", &s.dirty.len())
            .field("syncs", &s.syncs)
            .finish()
    }
}

impl StorageBackend for Disk {
    fn len(&self) -> Result<u64, io::Error> {
        let mut s = self.state();
        s.calls += 1;
        s.alive()?;
        Ok(s.view.len() as u64)
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        let mut s = self.state();
        s.calls += 1;
        s.alive()?;
        let lo = usize::try_from(offset).map_err(io::Error::other)?;
        s.view
            .get(lo..lo.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut s = self.state();
        s.calls += 1;
        s.alive()?;
        let old = s.view.len() as u64;
        s.view.resize(len as usize, 0);
        if len > old {
            s.mark_dirty(old, len);
        } else {
            let last = len.div_ceil(SECTOR);
            s.dirty.retain(|&i| i < last);
        }
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> Result<(), io::Error> {
        let mut s = self.state();
        s.calls += 1;
        s.sync()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut s = self.state();
        s.calls += 1;
        s.alive()?;
        let lo = usize::try_from(offset).map_err(io::Error::other)?;
        let hi = lo + data.len();
        if s.view.len() < hi {
            s.view.resize(hi, 0);
        }
        s.view[lo..hi].copy_from_slice(data);
        s.mark_dirty(offset, hi as u64);
        Ok(())
    }
}
