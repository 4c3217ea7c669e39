//! The segment files of one log in a dir: their names, listing them in
//! order, creating one durably, and the dir's lock.
//!
//! A segment is `<seq>.wal` with `seq` in 16 hex digits, so names sort in
//! sequence order. A new segment is synced, and the dir with it, before
//! any write in it is acknowledged: a power cut must not lose the file
//! acknowledged writes live in. Nothing here reads frames.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::frame::Header;

/// The file beside the segments that says a log was created in this dir:
/// a dir holding it and no segment lost its log.
pub const MARKER: &str = "FORMAT";
const LOCK: &str = "LOCK";
const EXT: &str = "wal";
const TMP: &str = "tmp";

/// The path of segment `seq` in `dir`.
pub fn path_of(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.{EXT}"))
}

/// The segments in `dir`, in sequence order, checked to follow each other
/// with no gap (a gap is a lost segment). Other files are left alone.
pub fn list(dir: &Path) -> Result<Vec<u64>, WalError> {
    let io = |e: std::io::Error| WalError::io(dir, e);
    let mut seqs = Vec::new();
    for item in fs::read_dir(dir).map_err(io)? {
        let path = item.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXT) {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let seq = u64::from_str_radix(stem, 16)
            .map_err(|_| WalError::corrupt(&path, 0, "a segment whose name is not its number"))?;
        seqs.push(seq);
    }
    seqs.sort_unstable();
    for pair in seqs.windows(2) {
        if pair[0].checked_add(1) != Some(pair[1]) {
            return Err(WalError::corrupt(
                &path_of(dir, pair[0].saturating_add(1)),
                0,
                format!(
                    "segment {} is missing between {} and {}",
                    pair[0].saturating_add(1),
                    pair[0],
                    pair[1]
                ),
            ));
        }
    }
    Ok(seqs)
}

/// Creates segment `header.seq` holding its header and `first` (its base
/// record): written under a temporary name, synced, renamed into place and
/// the dir synced, so a crash leaves either no segment or a whole one.
/// Answers the file, open for appending.
pub fn create(dir: &Path, header: Header, first: &[u8]) -> Result<File, WalError> {
    let path = path_of(dir, header.seq);
    let tmp = path.with_extension(TMP);
    let io = |p: &Path, e: std::io::Error| WalError::io(p, e);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(first);
    file.write_all(&bytes).map_err(|e| io(&tmp, e))?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    sync_dir(dir)?;
    OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| io(&path, e))
}

/// Deletes the temporary files of segments a crash left half made. Only
/// the holder of the dir's lock may call it.
pub fn remove_temporary(dir: &Path) -> Result<(), WalError> {
    for item in fs::read_dir(dir).map_err(|e| WalError::io(dir, e))? {
        let path = item.map_err(|e| WalError::io(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) == Some(TMP) {
            fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Makes the dir's entries (files created, renamed, deleted) durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io(dir, e))
}

/// Takes the dir's lock, held as long as the answered file is open: a
/// second process (or store) on the same dir is refused, not let write
/// beside the first.
pub fn lock(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    // SAFETY: flock on a descriptor this function owns; no memory is
    // shared with the call.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(WalError::Locked(dir.to_path_buf()));
    }
    Ok(file)
}
