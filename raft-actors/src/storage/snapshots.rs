//! Where a node's snapshots live: the [`SnapshotStore`] trait every log
//! storage hands out, the sink a state machine streams a new snapshot
//! into, and [`MemorySnapshots`], the store of the in-memory adapter.
//!
//! A snapshot's bytes never pass through the core or the log storage's
//! records: the log storage records a [`Snapshot`] (what it covers, its
//! size and CRC), and the bytes are found here by index and checksum. A
//! snapshot is written whole before it is named (a temporary place, then
//! a rename, like hashicorp raft's FileSnapshotStore), so a crash leaves
//! either the old set or the new one. A store must never hand out bytes
//! that do not match the checksum they are named by.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::{StorageError, ToPersist};
use crate::core::{ChunkRead, LogIndex, Snapshot, SnapshotChunk};

/// How many snapshots a store keeps by default: the current one and the
/// one before it (a transfer of the older one may still be under way).
pub const KEEP_SNAPSHOTS: usize = 2;

/// A node's snapshot store. Its calls may block (files); the node calls
/// them off its own thread where they are long (writing, restoring), and
/// inline for one chunk.
///
/// To ensure correctness: a snapshot returned by [`SnapshotSink::finish`]
/// or made by [`complete`](Self::complete) is durable when the call
/// returns; [`verify`](Self::verify) refuses a snapshot whose bytes are
/// missing or do not match; [`retain`](Self::retain) never deletes the
/// snapshot it is given nor any newer one.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Starts a snapshot this node takes: bytes written to the sink go to
    /// a temporary place until [`SnapshotSink::finish`] names them.
    fn create(&self) -> Result<Box<dyn SnapshotSink>, StorageError>;

    /// Reads a stored snapshot from its first byte (to restore a state
    /// machine from it).
    fn open(&self, snapshot: &Snapshot) -> Result<Box<dyn Read + Send>, StorageError>;

    /// Reads one chunk of a stored snapshot, to send to a follower.
    fn read_chunk(&self, read: &ChunkRead) -> Result<Bytes, StorageError>;

    /// Writes a chunk received from the leader into the snapshot being
    /// received. A chunk at offset 0 starts it over; any other must follow
    /// the bytes written so far.
    fn receive(&self, chunk: &SnapshotChunk) -> Result<(), StorageError>;

    /// The snapshot being received is whole: checks its size and checksum
    /// and makes it durable under its name.
    fn complete(&self, snapshot: &Snapshot) -> Result<(), StorageError>;

    /// Checks that a snapshot the log storage records is here, whole: at
    /// load, so a node never starts on a damaged or missing snapshot.
    fn verify(&self, snapshot: &Snapshot) -> Result<(), StorageError>;

    /// Deletes every snapshot but `current` and the newest ones before it,
    /// [`KEEP_SNAPSHOTS`] in all; newer ones (being taken) stay.
    fn retain(&self, current: &Snapshot) -> Result<(), StorageError>;
}

/// Where a state machine writes a new snapshot. Nothing is a snapshot until
/// [`finish`](Self::finish); a sink dropped unfinished leaves nothing.
pub trait SnapshotSink: Write + Send {
    /// Makes everything written durable as the snapshot of the state at
    /// `index`; answers its size and CRC (what the core records).
    fn finish(self: Box<Self>, index: LogIndex) -> Result<(u64, u32), StorageError>;
}

/// The snapshot half of [`Storage::write`](super::Storage::write), for an
/// adapter to call first in its own: writes the batch's received chunks,
/// then completes a received snapshot. Checks before it writes, so a batch
/// refused here wrote nothing the log storage records.
pub fn write_snapshot_part(
    store: &dyn SnapshotStore,
    batch: &ToPersist,
) -> Result<(), StorageError> {
    // A received snapshot is completed right after its own last chunk: a
    // newer leader's first chunk may follow it in the same batch, and
    // would start the file being received over.
    let received = batch.snapshot.as_ref().filter(|_| batch.snapshot_received);
    let mut completed = false;
    for chunk in &batch.snapshot_chunks {
        store.receive(chunk)?;
        let end = chunk.offset + chunk.data.len() as u64;
        if let Some(snapshot) = received.filter(|s| **s == chunk.snapshot && end == s.size) {
            store.complete(snapshot)?;
            completed = true;
        }
    }
    match received {
        // Its chunks came in earlier batches.
        Some(snapshot) if !completed => store.complete(snapshot),
        // Taken here: its sink made it durable before the core heard of it.
        _ => Ok(()),
    }
}

/// Opens a stored snapshot to restore from, checking its bytes as they
/// are read: the reader fails (`InvalidData`) at its end, or as soon as it
/// runs past the recorded size, if the bytes do not match the snapshot's
/// size and checksum. A state machine restored from it therefore fails
/// rather than taking a file damaged since it was verified at load.
///
/// ```
/// use std::io::{Read, Write};
/// use raft_actors::core::{Membership, Snapshot, SnapshotMeta};
/// use raft_actors::storage::{open_verified, MemorySnapshots, SnapshotStore};
/// let store = MemorySnapshots::default();
/// let mut sink = store.create()?;
/// sink.write_all(b"state")?;
/// let (size, checksum) = sink.finish(7)?;
/// let meta = SnapshotMeta { index: 7, term: 1, membership: Membership::voters([1]) };
/// let snap = Snapshot { meta, size, checksum };
/// let mut back = Vec::new();
/// open_verified(&store, &snap)?.read_to_end(&mut back)?;
/// assert_eq!(back, b"state");
/// // Recorded as longer than the bytes are: the reader fails at the end.
/// let longer = Snapshot { size: size + 1, ..snap };
/// assert!(open_verified(&store, &longer)?.read_to_end(&mut back).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_verified(
    store: &dyn SnapshotStore,
    snapshot: &Snapshot,
) -> Result<Box<dyn Read + Send>, StorageError> {
    Ok(Box::new(Verified {
        inner: store.open(snapshot)?,
        snapshot: snapshot.clone(),
        read: 0,
        crc: crc32fast::Hasher::new(),
    }))
}

/// A reader that checks a snapshot's size and checksum as it goes.
struct Verified {
    inner: Box<dyn Read + Send>,
    snapshot: Snapshot,
    read: u64,
    crc: crc32fast::Hasher,
}

impl Verified {
    fn damaged(&self, what: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            damaged(&self.snapshot, what).to_string(),
        )
    }
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.snapshot.size {
            return Err(self.damaged(format!("longer than {} bytes", self.snapshot.size)));
        }
        self.crc.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            if self.read != self.snapshot.size {
                let what = format!("{} bytes, not {}", self.read, self.snapshot.size);
                return Err(self.damaged(what));
            }
            if self.crc.clone().finalize() != self.snapshot.checksum {
                return Err(self.damaged("checksum mismatch".into()));
            }
        }
        Ok(n)
    }
}

/// The error of a snapshot whose bytes are missing or damaged.
pub fn damaged(snapshot: &Snapshot, what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        index: snapshot.meta.index,
        reason: format!("snapshot at {}: {what}", snapshot.meta.index),
    }
}

/// Snapshots in memory, shared by clones: the store of
/// [`MemoryStorage`](super::MemoryStorage), and of tests. Kept as long as
/// the process lives; one being received is lost with a "crash" only if
/// the test drops it.
///
/// ```
/// use std::io::{Read, Write};
/// use raft_actors::core::{Membership, Snapshot, SnapshotMeta};
/// use raft_actors::storage::{MemorySnapshots, SnapshotStore};
/// let store = MemorySnapshots::default();
/// let mut sink = store.create()?;
/// sink.write_all(b"state")?;
/// let (size, checksum) = sink.finish(7)?;
/// let meta = SnapshotMeta { index: 7, term: 1, membership: Membership::voters([1]) };
/// let snap = Snapshot { meta, size, checksum };
/// let mut back = String::new();
/// store.open(&snap)?.read_to_string(&mut back)?;
/// assert_eq!(back, "state");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemorySnapshots {
    inner: Arc<Mutex<Stored>>,
}

#[derive(Debug, Default)]
struct Stored {
    /// By index and checksum.
    named: BTreeMap<(LogIndex, u32), Bytes>,
    /// The snapshot being received, and its bytes so far.
    receiving: Option<(Snapshot, Vec<u8>)>,
}

impl MemorySnapshots {
    fn lock(&self) -> MutexGuard<'_, Stored> {
        // Every change below is one infallible map or vec operation after
        // its checks: the data behind a poisoned lock is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The snapshots held, by index and checksum (for tests).
    pub fn held(&self) -> Vec<(LogIndex, u32)> {
        self.lock().named.keys().copied().collect()
    }

    /// Replaces a held snapshot's bytes, as a damaged medium would (for
    /// tests of what refuses a damaged snapshot).
    pub fn damage(&self, index: LogIndex, checksum: u32, bytes: Bytes) {
        if let Some(b) = self.lock().named.get_mut(&(index, checksum)) {
            *b = bytes;
        }
    }

    fn bytes(&self, snapshot: &Snapshot) -> Result<Bytes, StorageError> {
        let key = (snapshot.meta.index, snapshot.checksum);
        self.lock()
            .named
            .get(&key)
            .cloned()
            .ok_or_else(|| damaged(snapshot, "missing"))
    }
}

struct MemorySink {
    store: MemorySnapshots,
    buf: Vec<u8>,
}

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for MemorySink {
    fn finish(mut self: Box<Self>, index: LogIndex) -> Result<(u64, u32), StorageError> {
        let checksum = crate::core::checksum(&self.buf);
        let size = self.buf.len() as u64;
        // A grown Vec holds up to twice its bytes; kept, it would hold that.
        self.buf.shrink_to_fit();
        let bytes = Bytes::from(std::mem::take(&mut self.buf));
        self.store.lock().named.insert((index, checksum), bytes);
        Ok((size, checksum))
    }
}

impl SnapshotStore for MemorySnapshots {
    fn create(&self) -> Result<Box<dyn SnapshotSink>, StorageError> {
        Ok(Box::new(MemorySink {
            store: self.clone(),
            buf: Vec::new(),
        }))
    }

    fn open(&self, snapshot: &Snapshot) -> Result<Box<dyn Read + Send>, StorageError> {
        Ok(Box::new(std::io::Cursor::new(self.bytes(snapshot)?)))
    }

    fn read_chunk(&self, read: &ChunkRead) -> Result<Bytes, StorageError> {
        let bytes = self.bytes(&read.snapshot)?;
        let end = read.offset.saturating_add(read.len);
        if end > bytes.len() as u64 {
            return Err(damaged(&read.snapshot, "shorter than its size"));
        }
        Ok(bytes.slice(read.offset as usize..end as usize))
    }

    fn receive(&self, chunk: &SnapshotChunk) -> Result<(), StorageError> {
        let mut stored = self.lock();
        if chunk.offset == 0 {
            stored.receiving = Some((chunk.snapshot.clone(), Vec::new()));
        }
        match &mut stored.receiving {
            Some((s, buf)) if *s == chunk.snapshot && buf.len() as u64 == chunk.offset => {
                buf.extend_from_slice(&chunk.data);
                Ok(())
            }
            _ => Err(StorageError::OutOfOrder(format!(
                "snapshot chunk at {} of a transfer not under way",
                chunk.offset
            ))),
        }
    }

    fn complete(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let mut stored = self.lock();
        match stored.receiving.take() {
            Some((s, mut buf)) if s == *snapshot => {
                if buf.len() as u64 != s.size || crate::core::checksum(&buf) != s.checksum {
                    return Err(damaged(snapshot, "received bytes do not match"));
                }
                buf.shrink_to_fit();
                stored
                    .named
                    .insert((s.meta.index, s.checksum), Bytes::from(buf));
                Ok(())
            }
            other => {
                stored.receiving = other;
                Err(StorageError::OutOfOrder(format!(
                    "snapshot at {} completed but not received",
                    snapshot.meta.index
                )))
            }
        }
    }

    fn verify(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let bytes = self.bytes(snapshot)?;
        if bytes.len() as u64 != snapshot.size {
            return Err(damaged(
                snapshot,
                format!("{} bytes, not {}", bytes.len(), snapshot.size),
            ));
        }
        if crate::core::checksum(&bytes) != snapshot.checksum {
            return Err(damaged(snapshot, "checksum mismatch"));
        }
        Ok(())
    }

    fn retain(&self, current: &Snapshot) -> Result<(), StorageError> {
        let mut stored = self.lock();
        let keep: Vec<(LogIndex, u32)> = keep_set(stored.named.keys().copied(), current);
        stored.named.retain(|k, _| keep.contains(k));
        Ok(())
    }
}

/// Which of `held` [`SnapshotStore::retain`] keeps: `current`, the newest
/// before it ([`KEEP_SNAPSHOTS`] in all), and every newer one. Another one
/// at `current`'s index is the damaged one it replaced: not kept.
pub fn keep_set(
    held: impl IntoIterator<Item = (LogIndex, u32)>,
    current: &Snapshot,
) -> Vec<(LogIndex, u32)> {
    let current_key = (current.meta.index, current.checksum);
    let mut older: Vec<(LogIndex, u32)> = Vec::new();
    let mut keep = vec![current_key];
    for key in held {
        if key == current_key {
            continue;
        }
        if key.0 > current_key.0 {
            keep.push(key);
        } else if key.0 < current_key.0 {
            older.push(key);
        }
    }
    older.sort_unstable();
    let room = KEEP_SNAPSHOTS.saturating_sub(1);
    keep.extend(older.into_iter().rev().take(room));
    keep
}

/// A shared store for a log storage to hand out.
pub type SharedSnapshots = Arc<dyn SnapshotStore>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Membership, SnapshotMeta};

    fn snap(index: LogIndex, data: &[u8]) -> Snapshot {
        let meta = SnapshotMeta {
            index,
            term: 1,
            membership: Membership::voters([1]),
        };
        Snapshot::of(meta, data)
    }

    #[test]
    fn retain_keeps_the_current_its_predecessor_and_newer_ones() {
        let c = snap(30, b"c");
        let held = [(10, 1), (20, 2), (30, c.checksum), (40, 4)];
        let mut kept = keep_set(held, &c);
        kept.sort_unstable();
        assert_eq!(kept, vec![(20, 2), (30, c.checksum), (40, 4)]);
        // One at the current's index with another checksum is the damaged
        // one it replaced: it goes, and the one before stays.
        let mut kept = keep_set([(20, 2), (30, c.checksum ^ 1), (30, c.checksum)], &c);
        kept.sort_unstable();
        assert_eq!(kept, vec![(20, 2), (30, c.checksum)]);
    }

    #[test]
    fn a_received_snapshot_is_named_only_when_whole_and_matching() {
        let store = MemorySnapshots::default();
        let s = snap(5, b"abcdef");
        let chunk = |offset: u64, data: &'static [u8]| SnapshotChunk {
            snapshot: s.clone(),
            offset,
            data: Bytes::from_static(data),
        };
        store.receive(&chunk(0, b"abc")).expect("first chunk");
        // A gap is refused; the transfer goes on from where it was.
        assert!(store.receive(&chunk(4, b"ef")).is_err());
        assert!(store.complete(&s).is_err(), "not whole yet");
        store.receive(&chunk(0, b"abc")).expect("started over");
        store.receive(&chunk(3, b"xyz")).expect("second chunk");
        assert!(
            matches!(store.complete(&s), Err(StorageError::Corrupt { .. })),
            "bytes that do not match the checksum are never named"
        );
        assert!(store.held().is_empty());
        store.receive(&chunk(0, b"abc")).expect("again");
        store.receive(&chunk(3, b"def")).expect("second chunk");
        store.complete(&s).expect("whole and matching");
        store.verify(&s).expect("held");
        store.damage(5, s.checksum, Bytes::from_static(b"abcdeX"));
        assert!(matches!(
            store.verify(&s),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_verified_source_fails_on_damage_found_while_restoring() {
        let store = MemorySnapshots::default();
        let s = snap(5, b"abcdef");
        store
            .receive(&SnapshotChunk {
                snapshot: s.clone(),
                offset: 0,
                data: Bytes::from_static(b"abcdef"),
            })
            .expect("chunk");
        store.complete(&s).expect("whole");
        let read_all = |store: &MemorySnapshots| {
            let mut out = Vec::new();
            open_verified(store, &s)
                .expect("opens")
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert_eq!(read_all(&store).expect("intact"), b"abcdef");
        for damage in [&b"abcdeX"[..], b"abcde", b"abcdefg"] {
            store.damage(5, s.checksum, Bytes::copy_from_slice(damage));
            let err = read_all(&store).expect_err("damaged");
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{damage:?}");
        }
    }
}
