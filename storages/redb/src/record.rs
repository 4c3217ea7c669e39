//! The on-disk record: how every value this crate stores is laid out, and
//! the checks that make a damaged one an error instead of a wrong value.
//!
//! A record is `[format version: u8][crc32 of the body: u32 LE][postcard
//! body]`. The version comes first so a file written by a newer build is
//! recognised as such, not misread; the checksum catches flipped or torn
//! bytes that postcard alone would often decode into a plausible value.
//! This module must never panic on any input, nor allocate more than the
//! record it is given.

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// The record format this build writes and reads.
/// Format 2: a snapshot record holds its metadata, size and CRC; the
/// bytes are a file in `snapshots/` (format 1 held them in the record).
/// Format 3: every key starts with its Raft group (`(group, index)`,
/// `(group, name)`), so one file can hold many groups.
pub const RECORD_VERSION: u8 = 3;

const HEADER: usize = 1 + 4;

/// Why a stored record cannot be read back.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than its header: a torn or truncated write.
    #[error("truncated record ({0} bytes)")]
    Truncated(usize),
    /// Written by a newer build of this crate.
    #[error("record written by format version {0}, newer than this build's {RECORD_VERSION}")]
    Newer(u8),
    /// A version byte no build ever wrote.
    #[error("unknown record format version {0}")]
    Unknown(u8),
    /// The body does not match its checksum: the bytes were damaged.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the body read.
        computed: u32,
    },
    /// The checksum holds but the body is not a value of the expected type.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// Encodes `value` as a record.
///
/// ```
/// use raft_actors_storage_redb::record::{decode, encode, RECORD_VERSION};
/// let rec = encode(&7u64)?;
/// assert_eq!(rec[0], RECORD_VERSION);
/// assert_eq!(decode::<u64>(&rec)?, 7);
/// # Ok::<(), raft_actors_storage_redb::record::RecordError>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, RecordError> {
    let mut buf = vec![RECORD_VERSION, 0, 0, 0, 0];
    let mut buf = postcard::to_extend(value, std::mem::take(&mut buf))
        .map_err(|e| RecordError::Malformed(e.to_string()))?;
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[1..HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

/// Decodes a record written by [`encode`], checking version and checksum
/// before the body is parsed.
pub fn decode<T: DeserializeOwned>(record: &[u8]) -> Result<T, RecordError> {
    let Some(&version) = record.first() else {
        return Err(RecordError::Truncated(0));
    };
    match version {
        RECORD_VERSION => {}
        v if v > RECORD_VERSION => return Err(RecordError::Newer(v)),
        v => return Err(RecordError::Unknown(v)),
    }
    if record.len() < HEADER {
        return Err(RecordError::Truncated(record.len()));
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&record[1..HEADER]);
    let stored = u32::from_le_bytes(crc);
    let body = &record[HEADER..];
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    postcard::from_bytes(body).map_err(|e| RecordError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_actors::core::{Entry, HardState, Payload};

    fn sample() -> Entry {
        Entry {
            index: 7,
            term: 3,
            payload: Payload::Command("set x=1".into()),
        }
    }

    #[test]
    fn round_trip() {
        let rec = encode(&sample()).expect("encode");
        assert_eq!(rec[0], RECORD_VERSION);
        assert_eq!(decode::<Entry>(&rec), Ok(sample()));
        let hs = HardState {
            term: 9,
            vote: Some(2),
            commit: 4,
        };
        assert_eq!(decode::<HardState>(&encode(&hs).expect("encode")), Ok(hs));
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_an_error() {
        let rec = encode(&sample()).expect("encode");
        for byte in 0..rec.len() {
            for bit in 0..8 {
                let mut bad = rec.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode::<Entry>(&bad).is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
        for len in 0..rec.len() {
            assert!(decode::<Entry>(&rec[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn versions_are_told_apart() {
        let mut rec = encode(&sample()).expect("encode");
        rec[0] = RECORD_VERSION + 1;
        assert_eq!(
            decode::<Entry>(&rec),
            Err(RecordError::Newer(RECORD_VERSION + 1))
        );
        rec[0] = 0;
        assert_eq!(decode::<Entry>(&rec), Err(RecordError::Unknown(0)));
    }
}
