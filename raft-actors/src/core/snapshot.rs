//! Snapshots and log compaction (§7): the driver's state machine snapshot,
//! the compaction that follows it, and InstallSnapshot in chunks to a
//! follower that needs compacted entries.
//!
//! The core never holds a snapshot's bytes: they live in the driver's
//! snapshot store (a file beside the log, or memory), and the core knows
//! only what a snapshot covers, its size and its checksum. A chunk to send
//! leaves the core empty, for the driver to fill from its store
//! ([`Message::chunk_to_read`]); a chunk received goes to the driver's
//! store with the next persist ([`ToPersist::snapshot_chunks`](super::ToPersist::snapshot_chunks)),
//! and the core checks the checksum of the whole before it installs it.
//! Must never compact an entry that no snapshot covers, nor install a
//! snapshot older than what is committed, nor one whose bytes do not match
//! its checksum.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Body, LogIndex, Membership, Message, NodeId, ProgressState, RaftCore, Role, Term};

/// What a snapshot covers: the log up to `index`, and the configuration in
/// force there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Last index covered.
    pub index: LogIndex,
    /// Term of that entry.
    pub term: Term,
    /// The configuration in force at `index`.
    pub membership: Membership,
}

/// A stored snapshot as the core and the log storage know it: what it
/// covers, and the size and checksum of its bytes. The bytes themselves
/// are in a [`SnapshotStore`](crate::storage::SnapshotStore), found by
/// index and checksum, and streamed from there.
///
/// ```
/// use raft_actors::core::{Membership, Snapshot, SnapshotMeta};
/// let meta = SnapshotMeta { index: 10, term: 2, membership: Membership::voters([1, 2, 3]) };
/// let snap = Snapshot::of(meta, b"state");
/// assert_eq!(snap.size, 5);
/// assert_eq!(snap.checksum, raft_actors::core::checksum(b"state"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// Length of the state machine's serialized state, in bytes.
    pub size: u64,
    /// CRC-32 ([`checksum`]) of those bytes.
    pub checksum: u32,
}

impl Snapshot {
    /// The snapshot `meta` covers, of `size` bytes with CRC `checksum`.
    pub fn new(meta: SnapshotMeta, size: u64, checksum: u32) -> Snapshot {
        Snapshot {
            meta,
            size,
            checksum,
        }
    }

    /// The snapshot of `data` (size and checksum computed), for tests and
    /// stores that hold the bytes at hand.
    pub fn of(meta: SnapshotMeta, data: &[u8]) -> Snapshot {
        Snapshot {
            meta,
            size: data.len() as u64,
            checksum: checksum(data),
        }
    }
}

/// The CRC-32 a [`Snapshot`] carries of its bytes.
///
/// ```
/// assert_eq!(raft_actors::core::checksum(b""), 0);
/// assert_ne!(raft_actors::core::checksum(b"a"), raft_actors::core::checksum(b"b"));
/// ```
pub fn checksum(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// A chunk of a snapshot received from the leader: the driver writes it to
/// its store's file being received, at `offset`, with the batch it came in
/// ([`ToPersist::snapshot_chunks`](super::ToPersist::snapshot_chunks)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The snapshot being received.
    pub snapshot: Snapshot,
    /// Where the chunk starts. A chunk at 0 starts the file over.
    pub offset: u64,
    /// Its bytes.
    pub data: Bytes,
}

/// The bytes a driver reads from its snapshot store to fill an
/// InstallSnapshot chunk the core left empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRead {
    /// The snapshot to read from.
    pub snapshot: Snapshot,
    /// The first byte.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

impl Message {
    /// The chunk to read from the snapshot store before sending this
    /// message: `Some` for an InstallSnapshot whose bytes the core left to
    /// the driver, `None` for every other message (and for a chunk filled
    /// already). `chunk_bytes` is the core's
    /// [`snapshot_chunk_bytes`](super::Config::snapshot_chunk_bytes).
    ///
    /// ```
    /// use raft_actors::core::{Body, Membership, Message, Snapshot, SnapshotMeta};
    /// let meta = SnapshotMeta { index: 9, term: 1, membership: Membership::voters([1, 2]) };
    /// let snap = Snapshot::of(meta.clone(), &[7u8; 10]);
    /// let mut m = Message { from: 1, to: 2, term: 1, body: Body::InstallSnapshot {
    ///     meta, size: snap.size, checksum: snap.checksum, offset: 4,
    ///     data: bytes::Bytes::new(), done: false } };
    /// let read = m.chunk_to_read(4).expect("a chunk to read");
    /// assert_eq!((read.offset, read.len), (4, 4));
    /// m.fill_chunk(bytes::Bytes::from_static(&[7u8; 4]));
    /// assert!(m.chunk_to_read(4).is_none());
    /// ```
    pub fn chunk_to_read(&self, chunk_bytes: usize) -> Option<ChunkRead> {
        match &self.body {
            Body::InstallSnapshot {
                meta,
                size,
                checksum,
                offset,
                data,
                ..
            } if data.is_empty() && offset < size => Some(ChunkRead {
                snapshot: Snapshot::new(meta.clone(), *size, *checksum),
                offset: *offset,
                len: (size - offset).min(chunk_bytes as u64),
            }),
            _ => None,
        }
    }

    /// Puts the bytes read for [`chunk_to_read`](Self::chunk_to_read) in
    /// the message (nothing for any other message).
    pub fn fill_chunk(&mut self, bytes: Bytes) {
        if let Body::InstallSnapshot { data, .. } = &mut self.body {
            *data = bytes;
        }
    }
}

/// What the core makes of a snapshot its driver could not read whole
/// ([`RaftCore::snapshot_unreadable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnreadableSnapshot {
    /// The one before the current: dropped, and its transfers start over
    /// with the current one.
    Dropped,
    /// The current one: none of it is sent any more, the next
    /// [`Ready`](super::Ready) asks for a snapshot
    /// ([`AfterPersist::snapshot_wanted`](super::AfterPersist::snapshot_wanted)),
    /// which replaces it, at its index if nothing was applied since, and
    /// transfers start over with that one.
    Rebuilding,
    /// The current one, which already replaced a damaged one: the disk
    /// loses what is written to it, and the driver must stop the node (its
    /// restart refuses the damaged file).
    Stop,
    /// Neither: nothing to do.
    NotHeld,
}

/// Why [`RaftCore::snapshot_taken`] refused a snapshot.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The snapshot claims an index not yet handed out to apply.
    #[error("snapshot at {index} is past the applied index {applied}")]
    NotApplied {
        /// The snapshot's index.
        index: LogIndex,
        /// The applied index.
        applied: LogIndex,
    },
    /// A snapshot at or after `index` exists already.
    #[error("a snapshot at {current} exists already")]
    Stale {
        /// The existing snapshot's index.
        current: LogIndex,
    },
}

/// A snapshot being received, chunk by chunk: its bytes go to the
/// driver's store; the core keeps how many arrived and their running CRC.
#[derive(Debug)]
pub(crate) struct Incoming {
    snapshot: Snapshot,
    received: u64,
    crc: u32,
}

impl RaftCore {
    /// The driver took a snapshot of its state machine at `index` (at most
    /// the applied index) and its store holds its `size` bytes with CRC
    /// `checksum`. The core keeps it to send to lagging followers, hands it
    /// back in the next [`ToPersist`](super::ToPersist) to be recorded,
    /// and compacts the log up to `index - trailing_logs`.
    pub fn snapshot_taken(
        &mut self,
        index: LogIndex,
        size: u64,
        checksum: u32,
    ) -> Result<(), SnapshotError> {
        if index > self.log.applied {
            return Err(SnapshotError::NotApplied {
                index,
                applied: self.log.applied,
            });
        }
        let current = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
        // A damaged snapshot is replaced by one at its index too (nothing
        // may have been applied since).
        let newer = index > current || (self.snapshot_damaged && index == current);
        let Some(term) = self.log.term(index).filter(|_| newer) else {
            return Err(SnapshotError::Stale {
                current: current.max(self.log.offset()),
            });
        };
        let meta = SnapshotMeta {
            index,
            term,
            membership: self.configs.at(index),
        };
        let snap = Snapshot {
            meta,
            size,
            checksum,
        };
        let replaced = self.snapshot.replace(snap.clone());
        self.snapshot_rebuilt = std::mem::take(&mut self.snapshot_damaged);
        if self.snapshot_rebuilt {
            // The damaged one is no snapshot to go on with: every transfer
            // starts over with this one.
            self.previous_snapshot = None;
            for pr in self.progress.values_mut() {
                if pr.state == ProgressState::Snapshot {
                    pr.start_snapshot(index);
                }
            }
        } else {
            self.previous_snapshot = replaced;
        }
        self.snapshot_to_store = Some(snap);
        self.snapshot_requested = false;
        // Keep `trailing_logs` entries for followers that lag a little: a
        // log is far cheaper to send than a snapshot. Only durable entries
        // may go (the rest are still to be written).
        let compact_to = index
            .saturating_sub(self.cfg.trailing_logs)
            .min(self.log.stable);
        if compact_to > self.log.offset() {
            self.log.compact(compact_to);
            self.configs.compact(compact_to);
            self.compact_to = Some(compact_to);
        }
        Ok(())
    }

    /// Leader: `peer` needs entries that were compacted; send the snapshot.
    pub(super) fn start_snapshot(&mut self, peer: NodeId) {
        let Some(index) = self.snapshot.as_ref().map(|s| s.meta.index) else {
            return;
        };
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.start_snapshot(index);
        }
        self.send_snapshot_chunk(peer);
    }

    /// Whether the current snapshot is damaged and waits to be replaced
    /// ([`UnreadableSnapshot::Rebuilding`]): a driver whose snapshot build
    /// then fails must stop the node, or no follower that needs a
    /// snapshot would ever get one from it.
    pub fn snapshot_damaged(&self) -> bool {
        self.snapshot_damaged
    }

    /// The driver could not read `snapshot` whole from its store, or read
    /// it with another checksum than its record's (see [`UnreadableSnapshot`]).
    pub fn snapshot_unreadable(&mut self, snapshot: &Snapshot) -> UnreadableSnapshot {
        if self.previous_snapshot.as_ref() == Some(snapshot) {
            self.previous_snapshot = None;
            let peers: Vec<NodeId> = self.progress.keys().copied().collect();
            for peer in peers {
                self.send_snapshot_chunk(peer);
            }
            return UnreadableSnapshot::Dropped;
        }
        if self.snapshot.as_ref() != Some(snapshot) {
            return UnreadableSnapshot::NotHeld;
        }
        if self.snapshot_rebuilt {
            return UnreadableSnapshot::Stop;
        }
        if !self.snapshot_damaged {
            self.snapshot_damaged = true;
            self.rebuild_wanted = true;
        }
        UnreadableSnapshot::Rebuilding
    }

    /// Leader: sends the next chunk of the snapshot to `peer`, one at a
    /// time, so heartbeats and other peers never wait behind a snapshot.
    pub(super) fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let Some(current) = &self.snapshot else {
            return;
        };
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        if pr.state != ProgressState::Snapshot {
            return;
        }
        let snap = if pr.snapshot_index == current.meta.index {
            current
        } else {
            match &self.previous_snapshot {
                // A newer snapshot was taken while this one was being sent:
                // its file is still kept, so the transfer goes on (with a
                // large state and writes going on, starting over with every
                // new snapshot could never finish).
                Some(previous)
                    if pr.snapshot_index == previous.meta.index && pr.snapshot_offset > 0 =>
                {
                    previous
                }
                // Not started yet, or its file is gone: the newest one.
                _ => {
                    pr.start_snapshot(current.meta.index);
                    current
                }
            }
        };
        // None of a damaged file leaves; the one replacing it will.
        if pr.snapshot_in_flight || (self.snapshot_damaged && snap == current) {
            return;
        }
        let len = snap.size;
        let offset = pr.snapshot_offset.min(len);
        let end = (offset + self.cfg.snapshot_chunk_bytes as u64).min(len);
        pr.snapshot_in_flight = true;
        self.events.snapshot_bytes_sent += end - offset;
        // The bytes are the driver's to read from its store (see
        // `Message::chunk_to_read`): the core never holds a snapshot.
        let body = Body::InstallSnapshot {
            meta: snap.meta.clone(),
            size: snap.size,
            checksum: snap.checksum,
            offset,
            data: Bytes::new(),
            done: end == len,
        };
        self.send(peer, body);
    }

    /// Follower: one chunk of a snapshot from the leader of this term.
    pub(super) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        snapshot: Snapshot,
        offset: u64,
        data: Bytes,
        done: bool,
    ) {
        let meta = &snapshot.meta;
        let end = offset.checked_add(data.len() as u64);
        // An index past MAX_TERM cannot be reached honestly either (one entry
        // per nanosecond for 290 years), and would overflow the log's cursors.
        // A chunk past the snapshot's size, or a last chunk that does not
        // reach it, is no chunk of it.
        if self.role == Role::Leader
            || meta.term > self.term
            || meta.term == 0
            || meta.index > super::MAX_TERM
            || snapshot.size > self.cfg.max_snapshot_bytes
            || end.is_none_or(|end| end > snapshot.size || done != (end == snapshot.size))
        {
            self.counters.malformed += 1;
            return;
        }
        self.follow(from);
        let index = meta.index;
        if index <= self.log.commit {
            // Everything it covers is committed here already.
            self.incoming = None;
            return self.send(
                from,
                Body::SnapshotResponse {
                    index,
                    next_offset: 0,
                    done: true,
                },
            );
        }
        let fresh = offset == 0;
        let inc = match &mut self.incoming {
            Some(inc) if inc.snapshot == snapshot => inc,
            _ if fresh => self.incoming.insert(Incoming {
                snapshot: snapshot.clone(),
                received: 0,
                crc: 0,
            }),
            _ => {
                // A chunk of a snapshot we are not receiving (or no longer
                // are, after a restart): start over. Transfers never resume
                // across a restart of either side; they start cleanly.
                return self.send(
                    from,
                    Body::SnapshotResponse {
                        index,
                        next_offset: 0,
                        done: false,
                    },
                );
            }
        };
        if fresh {
            inc.received = 0;
            inc.crc = 0;
        }
        if offset != inc.received {
            let next_offset = inc.received;
            return self.ask_for_chunk(from, index, next_offset);
        }
        let mut crc = crc32fast::Hasher::new_with_initial(inc.crc);
        crc.update(&data);
        inc.crc = crc.finalize();
        inc.received += data.len() as u64;
        let (received, crc) = (inc.received, inc.crc);
        // To the store with the next persist; the answer leaves after it.
        self.snapshot_chunks.push(SnapshotChunk {
            snapshot: snapshot.clone(),
            offset,
            data,
        });
        if !done {
            return self.ask_for_chunk(from, index, received);
        }
        self.incoming = None;
        if crc != snapshot.checksum {
            // Damaged on the way (or sent damaged): never installed. The
            // leader sends it again from the start.
            self.counters.malformed += 1;
            return self.ask_for_chunk(from, index, 0);
        }
        self.install(snapshot);
        // Leaves after the snapshot is durable (Ready's order rule).
        self.send(
            from,
            Body::SnapshotResponse {
                index,
                next_offset: 0,
                done: true,
            },
        );
    }

    /// Follower: tells the leader which byte of snapshot `index` to send next.
    fn ask_for_chunk(&mut self, to: NodeId, index: LogIndex, next_offset: u64) {
        let done = false;
        self.send(
            to,
            Body::SnapshotResponse {
                index,
                next_offset,
                done,
            },
        );
    }

    /// Follower: puts a complete snapshot in place of the log it covers.
    fn install(&mut self, snap: Snapshot) {
        let (index, term) = (snap.meta.index, snap.meta.term);
        let keeps_suffix = self.log.term(index) == Some(term);
        self.log.restore(index, term);
        if keeps_suffix {
            self.configs.compact(index);
        } else {
            self.configs =
                super::conf_change::ConfigHistory::new(index, snap.meta.membership.clone());
        }
        self.refresh_membership();
        self.previous_snapshot = self.snapshot.replace(snap.clone());
        self.snapshot_to_store = Some(snap.clone());
        self.snapshot_to_restore = Some(snap);
        self.snapshot_requested = false;
        // A damaged snapshot of ours is replaced by the leader's.
        (
            self.snapshot_damaged,
            self.rebuild_wanted,
            self.snapshot_rebuilt,
        ) = (false, false, false);
    }

    /// Leader: a follower's answer to a snapshot chunk.
    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        next_offset: u64,
        done: bool,
    ) {
        if self.role == Role::Leader && index > self.log.last_index() {
            self.counters.malformed += 1;
            return;
        }
        let Some(pr) = self.answering_peer(from) else {
            return;
        };
        if done {
            if pr.state == ProgressState::Snapshot && pr.snapshot_index == index {
                self.events.snapshots_sent += 1;
            }
            let Some(pr) = self.progress.get_mut(&from) else {
                return;
            };
            if pr.snapshot_done(index) {
                self.maybe_commit();
            }
        } else if pr.state == ProgressState::Snapshot && pr.snapshot_index == index {
            pr.snapshot_in_flight = false;
            pr.snapshot_offset = next_offset;
        }
    }
}
