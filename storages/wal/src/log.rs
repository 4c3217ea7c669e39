//! [`Log`]: the segments of one log and the image of it kept in memory,
//! blocking. It runs only on the storage's own thread (see
//! [`crate::storage`]).
//!
//! The whole retained log is held in memory ([`LogImage`], as etcd keeps
//! its `MemoryStorage` beside its WAL), so reads never touch the disk and
//! the file is only ever appended to. A write is checked against the image
//! first (a refused batch changes nothing), then framed, appended and
//! synced, and only then applied to the image. A batch that need not sync
//! (a commit index alone, a compaction) is applied to the image at once
//! and written with the next batch that syncs: so the file holds only
//! synced frames, plus at most the one being written, which is what lets
//! [`frame::scan`] tell a torn tail from damage.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use raft_actors::core::{HardState, LogIndex};
use raft_actors::storage::memory::LogImage;
use raft_actors::storage::{write_snapshot_part, SnapshotStore, StorageError, ToPersist};

use crate::error::WalError;
use crate::frame::{self, Header, Record, RecordRef};
use crate::segments;

/// A segment is rolled over once it holds this much.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// One segment held: its number and the highest entry index written in it
/// (it can go once that is compacted away).
#[derive(Clone, Copy, Debug)]
struct Segment {
    seq: u64,
    max_index: LogIndex,
}

/// What batches that need no sync changed, to be written with the next
/// one that does.
#[derive(Debug, Default)]
struct Lazy {
    hard_state: Option<HardState>,
    compact_to: Option<LogIndex>,
}

/// The open log. See the [module docs](self).
pub(crate) struct Log {
    dir: PathBuf,
    group: u64,
    image: Arc<Mutex<LogImage>>,
    segments: Vec<Segment>,
    file: File,
    size: u64,
    lazy: Lazy,
    fsyncs: Arc<AtomicU64>,
    /// Set by the first write that failed on I/O: after a failed fsync the
    /// kernel may have dropped the pages, so nothing later is trusted
    /// until the log is reopened.
    poisoned: Option<String>,
    segment_bytes: u64,
    _lock: File,
}

pub(crate) fn lock_image(image: &Mutex<LogImage>) -> MutexGuard<'_, LogImage> {
    // Every change to the image is made after all checks, by infallible
    // vector operations: the data behind a poisoned lock is sound.
    image.lock().unwrap_or_else(|p| p.into_inner())
}

impl Log {
    /// Opens the log in `dir` (creating it), replays every segment into
    /// the image and cuts a torn tail. Answers whether it was fresh.
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> Result<(Log, bool), WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        let lock = segments::lock(dir)?;
        segments::remove_temporary(dir)?;
        let marker = dir.join(segments::MARKER);
        let mut seqs = segments::list(dir)?;
        let fresh = seqs.is_empty();
        if fresh {
            if marker.exists() {
                return Err(WalError::corrupt(
                    dir,
                    0,
                    "every segment of this log is missing",
                ));
            }
            let base = base_record(&LogImage::default())?;
            drop(segments::create(dir, Header { group: 0, seq: 1 }, &base)?);
            seqs.push(1);
        }
        if !marker.exists() {
            // After segment 1 exists: a crash between the two leaves a log
            // that opens, never a marker with no segment.
            std::fs::write(
                &marker,
                format!("raft-actors log, format {}\n", frame::FORMAT_VERSION),
            )
            .and_then(|()| std::fs::File::open(&marker).and_then(|f| f.sync_all()))
            .map_err(|e| WalError::io(&marker, e))?;
            segments::sync_dir(dir)?;
        }
        let mut image = LogImage::default();
        let mut held = Vec::new();
        let mut group = 0;
        let mut size = 0;
        for (n, seq) in seqs.iter().enumerate() {
            let last = n + 1 == seqs.len();
            let path = segments::path_of(dir, *seq);
            let bytes = std::fs::read(&path).map_err(|e| WalError::io(&path, e))?;
            let header = Header::decode(&bytes).map_err(|r| WalError::corrupt(&path, 0, r))?;
            if header.seq != *seq {
                return Err(WalError::corrupt(
                    &path,
                    0,
                    format!("holds segment {}", header.seq),
                ));
            }
            if n > 0 && header.group != group {
                return Err(WalError::corrupt(
                    &path,
                    0,
                    format!("of group {}, not {group}", header.group),
                ));
            }
            group = header.group;
            let scan = frame::scan(&bytes, last)
                .map_err(|(at, r)| WalError::corrupt(&path, at as u64, r))?;
            let mut max_index = 0;
            if scan.frames.is_empty() {
                return Err(WalError::corrupt(
                    &path,
                    0,
                    "a segment without its base record",
                ));
            }
            for (n, (at, range)) in scan.frames.iter().enumerate() {
                let record: Record = postcard::from_bytes(&bytes[range.clone()]).map_err(|e| {
                    WalError::corrupt(
                        &path,
                        *at as u64,
                        format!("a record that does not decode: {e}"),
                    )
                })?;
                if (n == 0) != matches!(record, Record::Base { .. }) {
                    return Err(WalError::corrupt(
                        &path,
                        *at as u64,
                        "a segment must start with its base record, and hold only that one",
                    ));
                }
                if let Some(i) = replay(&mut image, record) {
                    max_index = max_index.max(i);
                }
            }
            if let Some(why) = &scan.torn {
                tracing::warn!(path = %path.display(), %why, "cutting a torn write at the log's tail");
                cut(&path, scan.end as u64)?;
            }
            size = scan.end as u64;
            held.push(Segment {
                seq: *seq,
                max_index,
            });
        }
        let current = segments::path_of(dir, held.last().map_or(1, |s| s.seq));
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&current)
            .map_err(|e| WalError::io(&current, e))?;
        let log = Log {
            dir: dir.to_path_buf(),
            group,
            image: Arc::new(Mutex::new(image)),
            segments: held,
            file,
            size,
            lazy: Lazy::default(),
            fsyncs: Arc::default(),
            poisoned: None,
            segment_bytes,
            _lock: lock,
        };
        Ok((log, fresh))
    }

    /// The image, shared with readers.
    pub(crate) fn image(&self) -> Arc<Mutex<LogImage>> {
        Arc::clone(&self.image)
    }

    /// Fsyncs since the log was opened.
    pub(crate) fn fsyncs(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.fsyncs)
    }

    /// How many segment files the log holds now.
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub(crate) fn refuse_if_poisoned(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(why) => Err(StorageError::Io(format!(
                "{}: refused after an earlier write failed ({why}); reopen the log",
                self.dir.display()
            ))),
            None => Ok(()),
        }
    }

    /// Checks, writes (synced if the batch must be), applies. See the
    /// [module docs](self).
    pub(crate) fn write(
        &mut self,
        batch: ToPersist,
        snapshots: &dyn SnapshotStore,
    ) -> Result<(), StorageError> {
        self.refuse_if_poisoned()?;
        let kept = {
            let image = lock_image(&self.image);
            image.check(&batch)?;
            batch
                .snapshot
                .as_ref()
                .is_some_and(|s| batch.snapshot_received && image.holds(&s.meta))
        };
        // The snapshot's file first (chunks received, then the rename of a
        // whole one), then the frame that records it: a crash between the
        // two leaves a file no record names, which retention deletes.
        write_snapshot_part(snapshots, &batch)?;
        let recorded = batch.snapshot.clone();
        // Only a batch with nothing but a commit index or a compaction may
        // wait in memory; anything else is written now, even if marked lazy.
        let lazy = !batch.must_sync
            && batch.entries.is_empty()
            && batch.snapshot.is_none()
            && batch.membership.is_none();
        if !lazy {
            let mut hard_state = batch.hard_state.or(self.lazy.hard_state);
            if let (None, Some(hs), Some(s)) =
                (batch.hard_state, hard_state.as_mut(), &batch.snapshot)
            {
                // A lazy hard state replays after the snapshot in this
                // frame, but came before it: keep the commit index the
                // install raised.
                if batch.snapshot_received {
                    hs.commit = hs.commit.max(s.meta.index);
                }
            }
            let compact_to = batch.compact_to.max(self.lazy.compact_to);
            let bytes = frame::encode(&RecordRef::Batch {
                snapshot: batch.snapshot.as_ref(),
                snapshot_received: batch.snapshot_received,
                kept,
                hard_state: hard_state.as_ref(),
                entries: &batch.entries,
                compact_to,
                membership: batch.membership.as_ref(),
            })
            .map_err(|e| StorageError::Io(format!("cannot encode a batch: {e}")))?;
            if let Err(e) = self.append(&bytes) {
                self.poisoned = Some(e.to_string());
                return Err(e.into());
            }
            self.lazy = Lazy::default();
        } else {
            self.lazy.hard_state = batch.hard_state.or(self.lazy.hard_state);
            self.lazy.compact_to = batch.compact_to.max(self.lazy.compact_to);
        }
        if let (Some(last), Some(seg)) = (batch.entries.last(), self.segments.last_mut()) {
            seg.max_index = seg.max_index.max(last.index);
        }
        lock_image(&self.image).apply(batch);
        if let Some(current) = recorded {
            // Recorded: an old file left behind costs only disk space, and
            // the next retention tries again.
            if let Err(e) = snapshots.retain(&current) {
                tracing::warn!(%e, "old snapshot files not deleted");
            }
        }
        if !lazy {
            self.drop_compacted();
        }
        Ok(())
    }

    /// Writes what batches that need no sync changed, synced: a clean close
    /// keeps them. Nothing to do if none is pending or the log is poisoned.
    pub(crate) fn flush_lazy(&mut self) -> Result<(), StorageError> {
        if self.poisoned.is_some()
            || (self.lazy.hard_state.is_none() && self.lazy.compact_to.is_none())
        {
            return Ok(());
        }
        let bytes = frame::encode(&RecordRef::Batch {
            snapshot: None,
            snapshot_received: false,
            kept: false,
            hard_state: self.lazy.hard_state.as_ref(),
            entries: &[],
            compact_to: self.lazy.compact_to,
            membership: None,
        })
        .map_err(|e| StorageError::Io(format!("cannot encode a batch: {e}")))?;
        if let Err(e) = self.append(&bytes) {
            self.poisoned = Some(e.to_string());
            return Err(e.into());
        }
        self.lazy = Lazy::default();
        self.drop_compacted();
        Ok(())
    }

    /// Appends one frame and syncs it, rolling to a new segment first if
    /// this one is full.
    fn append(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        if self.size + bytes.len() as u64 > self.segment_bytes {
            self.roll()?;
        }
        let path = segments::path_of(&self.dir, self.current_seq());
        let written = self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // The frame was refused: it must not come back at a reopen in
            // this process from pages the kernel still holds. Cut it off
            // (best effort: the log is poisoned either way).
            let _ = self
                .file
                .set_len(self.size)
                .and_then(|()| self.file.sync_all());
            return Err(WalError::io(&path, e));
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Starts the next segment with the state the image holds now, lazy
    /// changes included (they become durable with it, in order).
    fn roll(&mut self) -> Result<(), WalError> {
        let seq = self.current_seq() + 1;
        let base = base_record(&lock_image(&self.image)).map_err(|e| WalError::io(&self.dir, e))?;
        let header = Header {
            group: self.group,
            seq,
        };
        self.file = segments::create(&self.dir, header, &base)?;
        self.fsyncs.fetch_add(2, Ordering::Relaxed);
        self.size = (frame::HEADER_LEN + base.len()) as u64;
        self.segments.push(Segment { seq, max_index: 0 });
        Ok(())
    }

    /// Deletes the oldest segments whose entries are all compacted away:
    /// the base record of the segment after them holds the state they
    /// held. Called after a synced write, so the compaction is durable
    /// before the entries it covers go.
    ///
    /// The batch that let them go is durable already: a failure here costs
    /// only disk space, logged, and the next synced write tries again.
    fn drop_compacted(&mut self) {
        let offset = lock_image(&self.image).offset();
        while self.segments.len() > 1 && self.segments[0].max_index <= offset {
            let path = segments::path_of(&self.dir, self.segments[0].seq);
            // One at a time, oldest first, each delete made durable before
            // the next: a power cut must never bring back an older segment
            // without the ones after it (a gap refuses the open).
            let gone = std::fs::remove_file(&path)
                .map_err(|e| WalError::io(&path, e))
                .and_then(|()| segments::sync_dir(&self.dir));
            if let Err(e) = gone {
                tracing::warn!(%e, "a compacted log segment was not deleted");
                return;
            }
            self.segments.remove(0);
        }
    }

    fn current_seq(&self) -> u64 {
        self.segments.last().map_or(1, |s| s.seq)
    }
}

/// The base record for the state `image` holds.
fn base_record(image: &LogImage) -> Result<Vec<u8>, WalError> {
    frame::encode(&RecordRef::Base {
        hard_state: &image.state.hard_state,
        membership: &image.state.membership,
        snapshot: image.state.snapshot.as_ref(),
    })
    .map_err(|e| WalError::Io {
        path: PathBuf::new(),
        reason: format!("cannot encode a base record: {e}"),
    })
}

/// Applies one record read back; answers the last entry index it wrote.
///
/// Replay starts at the oldest segment kept, whose base record may follow
/// entries that went with older segments: a batch that appends past the
/// image's end restarts the image's entries at its first one. Those gaps
/// are closed by the durable compaction that let the older segments go;
/// one that is not is caught by the node's check of the loaded log.
fn replay(image: &mut LogImage, record: Record) -> Option<LogIndex> {
    match record {
        Record::Base {
            hard_state,
            membership,
            snapshot,
        } => {
            image.state.hard_state = hard_state;
            image.state.membership = membership;
            image.state.snapshot = snapshot;
            None
        }
        Record::Batch {
            mut snapshot,
            snapshot_received,
            kept,
            hard_state,
            entries,
            compact_to,
            membership,
        } => {
            let last = entries.last().map(|e| e.index);
            if let Some(membership) = &membership {
                image.state.membership = membership.clone();
            }
            if snapshot_received {
                if let Some(installed) = snapshot.take() {
                    // As `LogImage::apply` installs one, but with the
                    // decision the write recorded (see `kept`).
                    let meta = &installed.meta;
                    if kept {
                        image.state.entries.retain(|e| e.index > meta.index);
                    } else {
                        image.state.entries.clear();
                    }
                    image.state.membership = meta.membership.clone();
                    let commit = &mut image.state.hard_state.commit;
                    *commit = (*commit).max(meta.index);
                    image.state.snapshot = Some(installed);
                }
            }
            if entries
                .first()
                .is_some_and(|e| e.index > image.state.last_index() + 1)
            {
                image.state.entries.clear();
            }
            image.apply(ToPersist {
                snapshot,
                snapshot_received: false,
                hard_state,
                entries,
                compact_to,
                ..ToPersist::default()
            });
            last
        }
    }
}

/// Cuts a segment to `len` bytes, durably.
fn cut(path: &Path, len: u64) -> Result<(), WalError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io(path, e))?;
    file.set_len(len).map_err(|e| WalError::io(path, e))?;
    file.sync_all().map_err(|e| WalError::io(path, e))
}
