//! Snapshots as streams: the [`SnapshotView`] a state machine hands out
//! for its snapshot to be written off its thread, and the framing of the
//! items it writes ([`write_item`], [`read_item`]).
//!
//! An item is a little-endian `u32` length and a record of
//! [`encode`] (a version byte, then postcard),
//! so a state machine of any size is written and read one item at a time
//! and is never whole in memory twice. A reader must never accept an item
//! cut short: a snapshot ends only between items.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::type_config::{decode, encode};

/// The largest item [`read_item`] accepts: a length past it is damage,
/// not a record to allocate for.
pub const MAX_ITEM_BYTES: usize = 1 << 30;

/// A consistent view of a state machine, written to a snapshot on a thread
/// of its own (see [`Apply::snapshot_view`](super::Apply::snapshot_view)).
/// Any `FnOnce(&mut dyn Write) -> io::Result<()>` that is `Send` is one.
///
/// ```
/// use raft_actors::apply::SnapshotView;
/// let view: Box<dyn SnapshotView> = Box::new(|out: &mut dyn std::io::Write| out.write_all(b"hi"));
/// let mut file = Vec::new();
/// view.write_to(&mut file)?;
/// assert_eq!(file, b"hi");
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait SnapshotView: Send {
    /// Writes the whole snapshot to `out`.
    fn write_to(self: Box<Self>, out: &mut dyn Write) -> io::Result<()>;
}

impl<F> SnapshotView for F
where
    F: FnOnce(&mut dyn Write) -> io::Result<()> + Send,
{
    fn write_to(self: Box<Self>, out: &mut dyn Write) -> io::Result<()> {
        (*self)(out)
    }
}

/// The view of a state kept as one value: writes it as one item (what
/// [`Apply::snapshot_view`](super::Apply::snapshot_view) does by default).
///
/// ```
/// use raft_actors::apply::{read_whole, view_of};
/// let mut file = Vec::new();
/// view_of(vec![1u64, 2, 3]).write_to(&mut file)?;
/// assert_eq!(read_whole::<Vec<u64>>(&mut file.as_slice())?, vec![1, 2, 3]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn view_of<T: Serialize + Send + 'static>(state: T) -> Box<dyn SnapshotView> {
    Box::new(move |out: &mut dyn Write| write_item(out, &state))
}

/// Reads a snapshot [`view_of`] wrote: its one item, then the end of the
/// input, so a source that checks the bytes at their end (the node's does)
/// has checked them before the state is used. An empty snapshot, or one
/// with more than one item, is an error.
pub fn read_whole<T: DeserializeOwned>(input: &mut dyn Read) -> io::Result<T> {
    let state = read_item(input)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "empty snapshot"))?;
    let mut rest = [0u8; 1];
    loop {
        match input.read(&mut rest) {
            Ok(0) => return Ok(state),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bytes after the snapshot's one item",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes one item: its length, then its record.
///
/// ```
/// use raft_actors::apply::{read_item, write_item};
/// let mut file = Vec::new();
/// write_item(&mut file, &("key", 1u64))?;
/// write_item(&mut file, &("other", 2u64))?;
/// let mut input = file.as_slice();
/// assert_eq!(read_item::<(String, u64)>(&mut input)?, Some(("key".into(), 1)));
/// assert_eq!(read_item::<(String, u64)>(&mut input)?, Some(("other".into(), 2)));
/// assert_eq!(read_item::<(String, u64)>(&mut input)?, None); // the end
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_item<T: Serialize>(out: &mut dyn Write, item: &T) -> io::Result<()> {
    let record = encode(item).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let len = u32::try_from(record.len())
        .ok()
        .filter(|&len| len as usize <= MAX_ITEM_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "snapshot item over 1 GiB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&record)
}

/// Reads the next item; `None` at the end of the snapshot (between
/// items). An item cut short, too long, or that does not decode is an
/// error.
pub fn read_item<T: DeserializeOwned>(input: &mut dyn Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(cut_short()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_ITEM_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot item of {len} bytes"),
        ));
    }
    let mut record = vec![0u8; len];
    input.read_exact(&mut record).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => cut_short(),
        _ => e,
    })?;
    decode(&record)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot item cut short")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_cut_short_or_damaged_is_refused_and_never_read_as_the_end() {
        let mut file = Vec::new();
        write_item(&mut file, &(7u64, "seven")).expect("writes");
        for cut in 1..file.len() {
            let mut input = &file[..cut];
            assert!(
                read_item::<(u64, String)>(&mut input).is_err(),
                "cut at {cut} of {}",
                file.len()
            );
        }
        let mut bad = file.clone();
        bad[4] = 99; // the version byte
        assert!(read_item::<(u64, String)>(&mut bad.as_slice()).is_err());
        let huge = (u32::MAX).to_le_bytes();
        assert!(read_item::<u64>(&mut huge.as_slice()).is_err());
    }
}
