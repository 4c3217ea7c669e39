//! [`SentChunks`]: the checksum of a snapshot as its chunks are read from
//! the store to be sent, so a leader whose own file was damaged after it
//! was written finds out at the last chunk and stops, instead of sending
//! bytes every follower refuses, from byte 0, forever.
//!
//! It only watches what the driver reads; it must never change a chunk,
//! nor hold one (a running CRC per peer, nothing else).

use std::collections::BTreeMap;

use crate::core::{ChunkRead, LogIndex, NodeId};

/// Per peer, the transfer being read in order: the snapshot's index, the
/// next offset expected and the CRC of the bytes before it.
#[derive(Default)]
pub(in crate::node) struct SentChunks {
    by_peer: BTreeMap<NodeId, ((LogIndex, u32), u64, crc32fast::Hasher)>,
}

impl SentChunks {
    /// Notes the chunk read for `to`. A chunk at 0 starts a transfer; the
    /// next one in order extends it; another (a chunk sent again, a
    /// newer snapshot) is not counted. Answers why the file is damaged
    /// when a transfer read in order ends with another checksum than the
    /// snapshot's record.
    pub(super) fn read(
        &mut self,
        to: NodeId,
        read: &ChunkRead,
        bytes: &[u8],
    ) -> Result<(), String> {
        let index = read.snapshot.meta.index;
        let key = (index, read.snapshot.checksum);
        if read.offset == 0 {
            self.by_peer.insert(to, (key, 0, crc32fast::Hasher::new()));
        }
        let Some((at, next, crc)) = self.by_peer.get_mut(&to) else {
            return Ok(());
        };
        if *at != key || *next != read.offset {
            if *at != key {
                self.by_peer.remove(&to);
            }
            return Ok(());
        }
        crc.update(bytes);
        *next += bytes.len() as u64;
        if *next < read.snapshot.size {
            return Ok(());
        }
        let Some((_, _, crc)) = self.by_peer.remove(&to) else {
            return Ok(());
        };
        let got = crc.finalize();
        if got == read.snapshot.checksum {
            Ok(())
        } else {
            Err(format!(
                "the snapshot at {index} read back with checksum {got:08x}, recorded {:08x}: \
                 its file is damaged",
                read.snapshot.checksum
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{checksum, Membership, Snapshot, SnapshotMeta};

    fn read(snapshot: &Snapshot, offset: u64, len: u64) -> ChunkRead {
        ChunkRead {
            snapshot: snapshot.clone(),
            offset,
            len,
        }
    }

    #[test]
    fn a_damaged_file_is_caught_at_its_last_chunk_read_in_order() {
        let data = b"0123456789abcdef";
        let meta = SnapshotMeta {
            index: 7,
            term: 1,
            membership: Membership::voters([1, 2]),
        };
        let good = Snapshot::new(meta, data.len() as u64, checksum(data));
        let mut sent = SentChunks::default();
        // In order, with a chunk sent twice: whole, and right.
        assert_eq!(sent.read(2, &read(&good, 0, 8), &data[..8]), Ok(()));
        assert_eq!(sent.read(2, &read(&good, 0, 8), &data[..8]), Ok(()));
        assert_eq!(sent.read(2, &read(&good, 8, 8), &data[8..]), Ok(()));
        // The same chunks with a byte flipped: caught at the last one.
        let mut bad = *data;
        bad[3] ^= 1;
        assert_eq!(sent.read(2, &read(&good, 0, 8), &bad[..8]), Ok(()));
        let caught = sent.read(2, &read(&good, 8, 8), &bad[8..]);
        assert!(caught.is_err_and(|e| e.contains("damaged")));
        // A transfer joined midway is not judged.
        assert_eq!(sent.read(3, &read(&good, 8, 8), &bad[8..]), Ok(()));
    }
}
