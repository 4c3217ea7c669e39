//! How records sit in a segment file: a checksummed header naming the
//! format, the group and the segment's place in the sequence, then frames
//! of `[length u32][crc32 of the length u32][crc32 of the record u32][record]
//! [0xA5]`, all little-endian.
//!
//! Reading a segment back tells a torn tail from damage. The writer syncs
//! every frame before it writes the next, so only the last frame of the
//! last segment can be half on disk after a power loss; it is cut there
//! (and only there) if its header never reached the disk whole, it runs
//! past the end of the file, or one of its 512-byte sectors never reached
//! the disk (all zeros, nothing after it), the rule etcd's WAL uses. Any
//! other bad frame is damage: it must never be skipped or cut, since the
//! writes it holds were acknowledged. The length has a checksum of its
//! own, so a damaged length is damage, not a frame "running past the end";
//! and a tail is cut only if no sound frame starts anywhere after it (one
//! that does was synced later: what lies before it is damage).

use serde::{Deserialize, Serialize};

use raft_actors::core::{Entry, HardState, LogIndex, Membership, Snapshot};

/// The first bytes of every segment.
pub const MAGIC: [u8; 8] = *b"RAFTWAL\n";
/// The segment format this build writes and reads. Version 1 carries a
/// group id in every segment header, for stores shared by many groups.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of a segment header: magic, version, group, sequence, crc.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4;
/// Bytes before a frame's record: length, its checksum, the record's
/// checksum.
pub const FRAME_HEAD: usize = 12;
/// The byte that ends every frame: never zero, so a frame whose last
/// sector never reached the disk (zeros) cannot pass for a sound one whose
/// record happens to end in zeros.
pub const TRAILER: u8 = 0xA5;
/// The largest record a frame may claim; a larger length is damage.
pub const MAX_RECORD: usize = 1 << 30;
/// The unit a disk writes whole, for telling a torn frame from a bad one.
const SECTOR: usize = 512;

/// A segment's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The Raft group whose log this is (0 for a single-group store).
    pub group: u64,
    /// The segment's place in the sequence, from 1.
    pub seq: u64,
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.group.to_le_bytes());
        out[20..28].copy_from_slice(&self.seq.to_le_bytes());
        let crc = crc32fast::hash(&out[..28]);
        out[28..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a header, refusing anything but this format's.
    pub fn decode(bytes: &[u8]) -> Result<Header, String> {
        if bytes.len() < HEADER_LEN {
            return Err(format!(
                "{} bytes, shorter than a segment header",
                bytes.len()
            ));
        }
        if bytes[..8] != MAGIC {
            return Err("not a raft-actors log segment (bad magic)".into());
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let long = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        if word(28) != crc32fast::hash(&bytes[..28]) {
            return Err("segment header checksum mismatch".into());
        }
        let version = word(8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "segment format version {version}, this build reads only version {FORMAT_VERSION}"
            ));
        }
        Ok(Header {
            group: long(12),
            seq: long(20),
        })
    }
}

/// One record, as read back.
#[derive(Debug, Deserialize)]
pub enum Record {
    /// The state a segment starts from: written first in every segment, so
    /// the segments before it can go once their entries are compacted.
    Base {
        /// The hard state then.
        hard_state: HardState,
        /// The configuration stored then.
        membership: Membership,
        /// The snapshot recorded then.
        snapshot: Option<Snapshot>,
    },
    /// One write: a `ToPersist` without its chunks.
    Batch {
        /// A snapshot recorded.
        snapshot: Option<Snapshot>,
        /// Whether it came from the leader.
        snapshot_received: bool,
        /// Whether the log held the received snapshot's last entry, so the
        /// entries after it stayed: decided when written, since a replay
        /// that starts after older segments went cannot tell.
        kept: bool,
        /// A new hard state.
        hard_state: Option<HardState>,
        /// Entries appended, replacing those from the first one's index.
        entries: Vec<Entry>,
        /// Entries up to here compacted.
        compact_to: Option<LogIndex>,
        /// The founding configuration.
        membership: Option<Membership>,
    },
}

/// [`Record`] borrowed for writing: the same encoding, no copies.
#[derive(Debug, Serialize)]
pub enum RecordRef<'a> {
    /// See [`Record::Base`].
    Base {
        /// The hard state.
        hard_state: &'a HardState,
        /// The configuration.
        membership: &'a Membership,
        /// The snapshot.
        snapshot: Option<&'a Snapshot>,
    },
    /// See [`Record::Batch`].
    Batch {
        /// A snapshot recorded.
        snapshot: Option<&'a Snapshot>,
        /// Whether it came from the leader.
        snapshot_received: bool,
        /// See [`Record::Batch`].
        kept: bool,
        /// A new hard state.
        hard_state: Option<&'a HardState>,
        /// Entries appended.
        entries: &'a [Entry],
        /// Entries up to here compacted.
        compact_to: Option<LogIndex>,
        /// The founding configuration.
        membership: Option<&'a Membership>,
    },
}

/// A record framed: length, the length's checksum, the record's checksum,
/// the record. The length has a checksum of its own, so a damaged length
/// can never pass for a frame cut short by a crash.
pub fn encode(record: &RecordRef<'_>) -> Result<Vec<u8>, String> {
    let size = postcard::experimental::serialized_size(record).map_err(|e| e.to_string())?;
    if size > MAX_RECORD {
        return Err(format!(
            "a record of {size} bytes, over the {MAX_RECORD} a frame may hold"
        ));
    }
    let mut out = vec![0u8; FRAME_HEAD + size + 1];
    postcard::to_slice(record, &mut out[FRAME_HEAD..FRAME_HEAD + size])
        .map_err(|e| e.to_string())?;
    out[FRAME_HEAD + size] = TRAILER;
    let len = (size as u32).to_le_bytes();
    out[..4].copy_from_slice(&len);
    out[4..8].copy_from_slice(&crc32fast::hash(&len).to_le_bytes());
    let crc = crc32fast::hash(&out[FRAME_HEAD..FRAME_HEAD + size]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// What reading a segment's frames found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Each whole frame: its offset in the file and its record's bytes'
    /// range.
    pub frames: Vec<(usize, std::ops::Range<usize>)>,
    /// Where the sound frames end: the length the file is cut to.
    pub end: usize,
    /// Why the bytes after `end` were taken for a torn write, if any are
    /// there.
    pub torn: Option<String>,
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Reads the frames of a segment whose header is sound. `last` says
/// whether it is the last segment, the only one that may end torn: there,
/// anything after the sound frames is cut (`torn` says why) if it can be a
/// write the crash cut short; in any other segment every byte must belong
/// to a sound frame. Answers the damage (offset and why) otherwise.
pub fn scan(bytes: &[u8], last: bool) -> Result<Scan, (usize, String)> {
    let mut scan = Scan {
        end: HEADER_LEN,
        ..Scan::default()
    };
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let torn = |what: &str, from: usize, scan: Scan| tail(bytes, at, from, last, scan, what);
        if rest.len() < FRAME_HEAD {
            return torn("a cut frame header", at + 1, scan);
        }
        let len_bytes = &rest[..4];
        if crc32fast::hash(len_bytes) != word(rest, 4) {
            if header_partly_unwritten(bytes, at) {
                return torn("a frame header never written whole", at + 1, scan);
            }
            return Err((at, "frame length checksum mismatch".into()));
        }
        let len = word(rest, 0) as usize;
        if len > MAX_RECORD {
            return Err((at, format!("a frame claims {len} bytes")));
        }
        let end = at + FRAME_HEAD + len + 1;
        if end > bytes.len() {
            return torn("a frame running past the end", end, scan);
        }
        let record = at + FRAME_HEAD..end - 1;
        if crc32fast::hash(&bytes[record.clone()]) != word(rest, 8) || bytes[end - 1] != TRAILER {
            if bytes[end..].iter().all(|b| *b == 0) && has_zero_sector(bytes, at, end) {
                // Its length is sound: anything synced after it starts
                // past its end, not inside its own record.
                return torn("a frame with a sector never written", end, scan);
            }
            return Err((at, "frame checksum mismatch".into()));
        }
        scan.frames.push((at, record));
        at = end;
        scan.end = end;
    }
    Ok(scan)
}

/// The bytes from `at` on are not a whole frame: in the last segment, a
/// write the crash cut short (cut at `at`), unless a sound frame starts
/// somewhere after it: frames were synced after this one, so it is damage
/// (a lost sector in the middle of the log), never a tail to cut.
/// Anywhere else, damage.
fn tail(
    bytes: &[u8],
    at: usize,
    search_from: usize,
    last: bool,
    mut scan: Scan,
    what: &str,
) -> Result<Scan, (usize, String)> {
    if !last {
        return Err((at, format!("{what} in a segment a later one follows")));
    }
    if let Some(next) = sound_frame_after(bytes, search_from) {
        return Err((
            at,
            format!("{what}, with a sound frame at byte {next} after it"),
        ));
    }
    scan.end = at;
    scan.torn = Some(format!("{what} at byte {at}"));
    Ok(scan)
}

/// The first offset from `from` on where a whole, sound frame starts (its
/// length's checksum and its record's both hold). Only run on the way to
/// cutting a tail, at most one segment long.
fn sound_frame_after(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(FRAME_HEAD - 1)).find(|&at| {
        if crc32fast::hash(&bytes[at..at + 4]) != word(bytes, at + 4) {
            return false;
        }
        let len = word(bytes, at) as usize;
        let Some(end) = (at + FRAME_HEAD + 1).checked_add(len) else {
            return false;
        };
        len <= MAX_RECORD
            && end <= bytes.len()
            && bytes[end - 1] == TRAILER
            && crc32fast::hash(&bytes[at + FRAME_HEAD..end - 1]) == word(bytes, at + 8)
    })
}

/// Whether the frame header at `at` crosses a sector boundary with one
/// side of it all zeros: half of it reached the disk.
fn header_partly_unwritten(bytes: &[u8], at: usize) -> bool {
    let end = at + FRAME_HEAD;
    let boundary = (at / SECTOR + 1) * SECTOR;
    if boundary >= end {
        return bytes[at..end].iter().all(|b| *b == 0);
    }
    bytes[at..boundary].iter().all(|b| *b == 0) || bytes[boundary..end].iter().all(|b| *b == 0)
}

/// Whether a 512-byte sector lying wholly inside `at..end` is all zeros,
/// or the frame's part of its last sector is: what a write cut short
/// leaves. A sound frame's last byte is [`TRAILER`], never zero; a record
/// holding a whole sector of zeros (a value of zeros) is the one case
/// where bit rot in the last frame passes for a torn write, as in etcd's
/// WAL.
fn has_zero_sector(bytes: &[u8], at: usize, end: usize) -> bool {
    let mut from = at.div_ceil(SECTOR) * SECTOR;
    while from + SECTOR <= end {
        if bytes[from..from + SECTOR].iter().all(|b| *b == 0) {
            return true;
        }
        from += SECTOR;
    }
    let partial = ((end - 1) / SECTOR * SECTOR).max(at);
    bytes[partial..end].iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_actors::core::Payload;

    fn segment(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Header { group: 0, seq: 1 }.encode().to_vec();
        for r in records {
            out.extend_from_slice(r);
        }
        out
    }

    fn batch(index: LogIndex, size: usize) -> Vec<u8> {
        let e = Entry {
            index,
            term: 1,
            payload: Payload::Command(bytes::Bytes::from(vec![7u8; size])),
        };
        encode(&RecordRef::Batch {
            snapshot: None,
            snapshot_received: false,
            kept: false,
            hard_state: None,
            entries: std::slice::from_ref(&e),
            compact_to: None,
            membership: None,
        })
        .expect("encodes")
    }

    #[test]
    fn a_header_of_another_version_or_kind_is_refused_in_one_line() {
        let mut h = Header { group: 7, seq: 3 }.encode();
        assert_eq!(Header::decode(&h), Ok(Header { group: 7, seq: 3 }));
        h[8] = 2;
        let crc = crc32fast::hash(&h[..28]);
        h[28..].copy_from_slice(&crc.to_le_bytes());
        let err = Header::decode(&h).expect_err("version 2");
        assert!(err.contains("version 2") && !err.contains('\n'), "{err}");
        assert!(Header::decode(b"RAFTWAL\nxx").is_err());
        assert!(Header::decode(&[0u8; HEADER_LEN])
            .expect_err("magic")
            .contains("magic"));
    }

    #[test]
    fn a_torn_last_frame_is_cut_and_a_bad_middle_frame_is_damage() {
        let (a, b) = (batch(1, 100), batch(2, 2000));
        let whole = segment(&[a.clone(), b.clone()]);
        let s = scan(&whole, true).expect("sound");
        assert_eq!(
            (s.frames.len(), s.end, s.torn.is_none()),
            (2, whole.len(), true)
        );
        // Cut anywhere inside the last frame: the first frame survives.
        for cut in HEADER_LEN + a.len() + 1..whole.len() {
            let s = scan(&whole[..cut], true).expect("torn tail");
            assert_eq!(
                (s.frames.len(), s.end),
                (1, HEADER_LEN + a.len()),
                "cut at {cut}"
            );
            assert!(s.torn.is_some());
            assert!(
                scan(&whole[..cut], false).is_err(),
                "not the last segment: damage"
            );
        }
        // A sector of the last frame never written: torn.
        let mut lost = whole.clone();
        let start = HEADER_LEN + a.len() + 600;
        let sector = (start / 512 + 1) * 512;
        lost[sector..sector + 512].fill(0);
        assert_eq!(scan(&lost, true).expect("torn").frames.len(), 1);
        // A flipped bit in the first frame, the second one after it: damage.
        let mut flipped = whole.clone();
        flipped[HEADER_LEN + FRAME_HEAD + 10] ^= 1;
        assert_eq!(scan(&flipped, true).expect_err("damage").0, HEADER_LEN);
        // A flipped bit in the last frame, no sector lost: damage too.
        let mut flipped = whole;
        let at = flipped.len() - 3;
        flipped[at] ^= 1;
        assert!(scan(&flipped, true).is_err());
    }

    #[test]
    fn a_damaged_length_is_damage_and_zeros_after_the_last_frame_are_cut() {
        let (a, b) = (batch(1, 100), batch(2, 2000));
        let whole = segment(&[a.clone(), b]);
        // A length flipped so the last frame seems to run past the end: its
        // own checksum says it is damage, not a write cut short.
        let mut long = whole.clone();
        long[HEADER_LEN + a.len() + 2] ^= 0x01;
        let err = scan(&long, true).expect_err("a damaged length");
        assert_eq!(err.0, HEADER_LEN + a.len(), "{}", err.1);
        assert!(err.1.contains("length"), "{}", err.1);
        // The file grew but the last frame never reached the disk: zeros,
        // cut in the last segment, damage in any other.
        let mut grown = segment(std::slice::from_ref(&a));
        grown.extend_from_slice(&[0u8; 700]);
        let s = scan(&grown, true).expect("zeros at the tail");
        assert_eq!((s.frames.len(), s.end), (1, HEADER_LEN + a.len()));
        assert!(s.torn.is_some(), "the zeros are cut, not kept");
        assert!(scan(&grown, false).is_err());
        for short in 1..FRAME_HEAD {
            let mut few = segment(std::slice::from_ref(&a));
            few.extend(std::iter::repeat_n(0u8, short));
            assert_eq!(
                scan(&few, true).expect("a few zeros").end,
                HEADER_LEN + a.len()
            );
        }
        // A frame header zeroed (a sector lost) with sound frames after it,
        // in the last segment: damage, never a tail to cut.
        let three = segment(&[a.clone(), batch(2, 100), batch(3, 100)]);
        let mut lost = three.clone();
        let second = HEADER_LEN + a.len();
        lost[second..second + FRAME_HEAD].fill(0);
        let err = scan(&lost, true).expect_err("frames follow the lost header");
        assert_eq!(err.0, second, "{}", err.1);
        // The last sector of a small last frame never written, however few
        // of its bytes lie in it: torn (its trailer is never zero).
        for first in 100..700 {
            let small = batch(2, 3);
            let one = segment(&[batch(1, first), small.clone()]);
            let end = one.len();
            let boundary = (end - 1) / 512 * 512;
            if end - boundary > 20 || boundary <= end - small.len() {
                continue;
            }
            let mut lost = one.clone();
            lost[boundary..].fill(0);
            let s = scan(&lost, true).unwrap_or_else(|e| panic!("torn at {first}: {e:?}"));
            assert_eq!(s.frames.len(), 1, "first {first}");
        }
        // A torn last frame whose record holds a sound frame (a value that
        // is an encoded frame): cut, not taken for frames synced after it.
        let inner = batch(9, 10);
        let nested = encode(&RecordRef::Batch {
            snapshot: None,
            snapshot_received: false,
            kept: false,
            hard_state: None,
            entries: &[Entry {
                index: 2,
                term: 1,
                payload: Payload::Command(bytes::Bytes::from(
                    [inner.clone(), vec![1u8; 700]].concat(),
                )),
            }],
            compact_to: None,
            membership: None,
        })
        .expect("encodes");
        let whole = segment(&[a.clone(), nested]);
        let s = scan(&whole[..whole.len() - 5], true).expect("cut short: torn");
        assert_eq!(s.frames.len(), 1);
        let mut lost = whole.clone();
        let boundary = (whole.len() - 1) / 512 * 512;
        lost[boundary..].fill(0);
        assert_eq!(
            scan(&lost, true)
                .expect("last sector lost: torn")
                .frames
                .len(),
            1
        );
        // A record whose last bytes are zeros, with a flipped bit: damage,
        // not a sector never written.
        let mut rot = whole;
        rot[HEADER_LEN + a.len() + FRAME_HEAD + 3] ^= 0x20;
        assert!(scan(&rot, true).is_err());
    }
}
