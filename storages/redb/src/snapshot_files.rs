//! [`FileSnapshots`]: a node's snapshots as files in `snapshots/` beside
//! the redb file, like hashicorp raft's FileSnapshotStore.
//!
//! A snapshot is written to a temporary file, its CRC computed on the way,
//! fsynced, renamed to `<index>-<crc>.snap` and the dir fsynced: a crash
//! leaves either no file or a whole one. The redb store records which one
//! is current (index, term, size, CRC); a file that record names but that
//! is missing or does not match is refused when the store opens, so a
//! node never starts on it. Temporary files left by a crash are deleted at
//! open, under the store's lock. Must never name a file before its bytes are durable.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use raft_actors::core::{ChunkRead, LogIndex, Snapshot, SnapshotChunk};
use raft_actors::storage::snapshots::{damaged, keep_set};
use raft_actors::storage::{SnapshotSink, SnapshotStore, StorageError};

/// The dir inside the data dir.
pub const SNAPSHOT_DIR: &str = "snapshots";
const SNAP_EXT: &str = "snap";
const TMP_EXT: &str = "tmp";
/// Reads and writes go through buffers of this size.
const BUF_BYTES: usize = 1 << 20;

/// A snapshot being taken is made durable every this many bytes as it is
/// written (RocksDB's `bytes_per_sync`): one fsync of half a gigabyte at
/// the end would hold the file system's journal, and every log fsync of
/// this node behind it, for seconds; small ones spread the write-back.
const SYNC_EVERY_BYTES: u64 = 16 << 20;

/// Snapshot files in one dir: written to a temporary file, checksummed,
/// fsynced and renamed to `<index>-<crc>.snap`; the current one and the
/// one before it kept.
///
/// ```
/// use std::io::{Read, Write};
/// use raft_actors::core::{Membership, Snapshot, SnapshotMeta};
/// use raft_actors::storage::SnapshotStore;
/// use raft_actors_storage_redb::FileSnapshots;
/// let dir = tempfile::tempdir()?;
/// let store = FileSnapshots::open(dir.path())?;
/// let mut sink = store.create()?;
/// sink.write_all(b"the state")?;
/// let (size, checksum) = sink.finish(42)?;
/// let meta = SnapshotMeta { index: 42, term: 3, membership: Membership::voters([1]) };
/// let snap = Snapshot { meta, size, checksum };
/// store.verify(&snap)?;
/// let mut back = String::new();
/// store.open(&snap)?.read_to_string(&mut back)?;
/// assert_eq!(back, "the state");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileSnapshots {
    dir: PathBuf,
    receiving: Mutex<Option<Receiving>>,
    /// Random, per store: see `tmp_path`.
    tag: u64,
    next_tmp: AtomicU64,
}

/// The file of the snapshot being received.
#[derive(Debug)]
struct Receiving {
    snapshot: Snapshot,
    file: File,
    path: PathBuf,
    written: u64,
    crc: u32,
}

impl FileSnapshots {
    /// Opens (creating if missing) the snapshot dir `dir`. A new dir is
    /// made durable in its parent at once: a snapshot recorded later must
    /// not lose its dir to a power cut.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileSnapshots, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |e: std::io::Error| StorageError::Io(format!("{}: {e}", dir.display()));
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(io)?;
            if let Some(parent) = dir.parent() {
                File::open(parent).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        // A random number without a dependency: std's hasher keys are
        // drawn from the OS for each RandomState.
        let tag = {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        Ok(FileSnapshots {
            dir,
            receiving: Mutex::new(None),
            tag,
            next_tmp: AtomicU64::new(0),
        })
    }

    /// Deletes the temporary files a crash left (a snapshot being taken or
    /// received). Only the process that holds the store's lock may call
    /// it: another one's files may be in use.
    pub fn remove_temporary(&self) -> Result<(), StorageError> {
        for entry in fs::read_dir(&self.dir).map_err(|e| self.io(&self.dir, e))? {
            let path = entry.map_err(|e| self.io(&self.dir, e))?.path();
            if path.extension().is_some_and(|e| e == TMP_EXT) {
                fs::remove_file(&path).map_err(|e| self.io(&path, e))?;
            }
        }
        Ok(())
    }

    /// The dir the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a snapshot is named by.
    pub fn path_of(&self, index: LogIndex, checksum: u32) -> PathBuf {
        self.dir
            .join(format!("{index:020}-{checksum:08x}.{SNAP_EXT}"))
    }

    fn io(&self, path: &Path, e: impl std::fmt::Display) -> StorageError {
        StorageError::Io(format!("{}: {e}", path.display()))
    }

    /// A temporary file's name, used by no other store: the pid, this
    /// store's random tag (two stores of one process on one dir differ)
    /// and its own counter. Files are created exclusively besides.
    fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let (pid, tag) = (std::process::id(), self.tag);
        self.dir
            .join(format!("{what}-{pid}-{tag:016x}-{n}.{TMP_EXT}"))
    }

    /// A new temporary file for `what` (`taking`, `receiving`), created
    /// exclusively: never one another writer has open.
    fn create_tmp(&self, what: &str) -> Result<(File, PathBuf), StorageError> {
        let path = self.tmp_path(what);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| self.io(&path, e))?;
        Ok((file, path))
    }

    /// Makes a finished file durable under its name.
    fn name(&self, file: &File, tmp: &Path, index: LogIndex, crc: u32) -> Result<(), StorageError> {
        name_file(&self.dir, file, tmp, index, crc)
    }

    fn receiving(&self) -> MutexGuard<'_, Option<Receiving>> {
        // Each change below is made only after its write succeeded: the
        // state behind a poisoned lock is sound.
        self.receiving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The snapshot files held, by index and CRC.
    pub fn held(&self) -> Result<Vec<(LogIndex, u32)>, StorageError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| self.io(&self.dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| self.io(&self.dir, e))?.path();
            if path.extension().is_none_or(|e| e != SNAP_EXT) {
                continue;
            }
            let parsed = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.split_once('-'))
                .and_then(|(i, c)| Some((i.parse().ok()?, u32::from_str_radix(c, 16).ok()?)));
            if let Some(key) = parsed {
                out.push(key);
            }
        }
        Ok(out)
    }
}

/// Makes a finished file durable under its name: fsync, rename, fsync of
/// the dir (so the rename itself survives a power cut).
fn name_file(
    dir: &Path,
    file: &File,
    tmp: &Path,
    index: LogIndex,
    crc: u32,
) -> Result<(), StorageError> {
    let io = |p: &Path, e: std::io::Error| StorageError::Io(format!("{}: {e}", p.display()));
    file.sync_all().map_err(|e| io(tmp, e))?;
    let path = dir.join(format!("{index:020}-{crc:08x}.{SNAP_EXT}"));
    fs::rename(tmp, &path).map_err(|e| io(&path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// A snapshot being written by this node: a temporary file and the CRC
/// and size of what went into it.
struct FileSink {
    /// `None` once finished.
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    crc: crc32fast::Hasher,
    size: u64,
    /// Bytes written since the last intermediate sync.
    unsynced: u64,
    dir: PathBuf,
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(finished)?;
        let n = file.write(buf)?;
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY_BYTES {
            file.flush()?;
            file.get_ref().sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().ok_or_else(finished)?.flush()
    }
}

fn finished() -> std::io::Error {
    std::io::Error::other("snapshot sink finished already")
}

impl SnapshotSink for FileSink {
    fn finish(mut self: Box<Self>, index: LogIndex) -> Result<(u64, u32), StorageError> {
        let tmp = self.tmp.clone();
        let io = |e: std::io::Error| StorageError::Io(format!("{}: {e}", tmp.display()));
        let file = self.file.take().ok_or_else(|| io(finished()))?;
        let file = file.into_inner().map_err(|e| io(e.into_error()))?;
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        name_file(&self.dir, &file, &self.tmp, index, crc)?;
        Ok((self.size, crc))
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Unfinished (or finished: then renamed away already).
        let _ = fs::remove_file(&self.tmp);
    }
}

impl SnapshotStore for FileSnapshots {
    fn create(&self) -> Result<Box<dyn SnapshotSink>, StorageError> {
        let (file, tmp) = self.create_tmp("taking")?;
        Ok(Box::new(FileSink {
            file: Some(BufWriter::with_capacity(BUF_BYTES, file)),
            tmp,
            crc: crc32fast::Hasher::new(),
            size: 0,
            unsynced: 0,
            dir: self.dir.clone(),
        }))
    }

    fn open(&self, snapshot: &Snapshot) -> Result<Box<dyn Read + Send>, StorageError> {
        let path = self.path_of(snapshot.meta.index, snapshot.checksum);
        let file =
            File::open(&path).map_err(|e| damaged(snapshot, format!("{}: {e}", path.display())))?;
        Ok(Box::new(BufReader::with_capacity(BUF_BYTES, file)))
    }

    fn read_chunk(&self, read: &ChunkRead) -> Result<Bytes, StorageError> {
        let s = &read.snapshot;
        let path = self.path_of(s.meta.index, s.checksum);
        let file = File::open(&path).map_err(|e| damaged(s, format!("{}: {e}", path.display())))?;
        let len = usize::try_from(read.len).map_err(|e| self.io(&path, e))?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, read.offset)
            .map_err(|e| damaged(s, format!("{}: {e}", path.display())))?;
        Ok(Bytes::from(buf))
    }

    fn receive(&self, chunk: &SnapshotChunk) -> Result<(), StorageError> {
        let mut receiving = self.receiving();
        if chunk.offset == 0 {
            if let Some(old) = receiving.take() {
                let _ = fs::remove_file(&old.path);
            }
            let (file, path) = self.create_tmp("receiving")?;
            *receiving = Some(Receiving {
                snapshot: chunk.snapshot.clone(),
                file,
                path,
                written: 0,
                crc: 0,
            });
        }
        let Some(r) = receiving
            .as_mut()
            .filter(|r| r.snapshot == chunk.snapshot && r.written == chunk.offset)
        else {
            return Err(StorageError::OutOfOrder(format!(
                "snapshot chunk at {} of a transfer not under way",
                chunk.offset
            )));
        };
        r.file
            .seek(SeekFrom::Start(r.written))
            .and_then(|_| r.file.write_all(&chunk.data))
            .map_err(|e| StorageError::Io(format!("{}: {e}", r.path.display())))?;
        let mut crc = crc32fast::Hasher::new_with_initial(r.crc);
        crc.update(&chunk.data);
        r.crc = crc.finalize();
        r.written += chunk.data.len() as u64;
        Ok(())
    }

    fn complete(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let mut receiving = self.receiving();
        let Some(r) = receiving.take_if(|r| r.snapshot == *snapshot) else {
            return Err(StorageError::OutOfOrder(format!(
                "snapshot at {} completed but not received",
                snapshot.meta.index
            )));
        };
        if r.written != snapshot.size || r.crc != snapshot.checksum {
            let _ = fs::remove_file(&r.path);
            return Err(damaged(snapshot, "received bytes do not match"));
        }
        self.name(&r.file, &r.path, snapshot.meta.index, r.crc)
    }

    fn verify(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let path = self.path_of(snapshot.meta.index, snapshot.checksum);
        let bad = |what: String| damaged(snapshot, format!("file {}: {what}", path.display()));
        let mut file = File::open(&path).map_err(|e| bad(e.to_string()))?;
        let len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
        if len != snapshot.size {
            return Err(bad(format!("{len} bytes, not {}", snapshot.size)));
        }
        let mut crc = crc32fast::Hasher::new();
        let mut buf = vec![0u8; BUF_BYTES];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => crc.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(bad(e.to_string())),
            }
        }
        if crc.finalize() != snapshot.checksum {
            return Err(bad("checksum mismatch (damaged)".into()));
        }
        Ok(())
    }

    fn retain(&self, current: &Snapshot) -> Result<(), StorageError> {
        let held = self.held()?;
        let keep = keep_set(held.iter().copied(), current);
        for key in held.into_iter().filter(|k| !keep.contains(k)) {
            let path = self.path_of(key.0, key.1);
            fs::remove_file(&path).map_err(|e| self.io(&path, e))?;
        }
        Ok(())
    }
}
