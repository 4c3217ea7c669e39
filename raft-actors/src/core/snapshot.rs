//! Snapshots and log compaction (§7): the driver's state machine snapshot,
//! the compaction that follows it, and InstallSnapshot in chunks to a
//! follower that needs compacted entries.
//!
//! The snapshot's bytes are opaque and reference-counted: the core hands
//! out slices of them as chunks without copying. Must never compact an
//! entry that no snapshot covers, nor install a snapshot older than what is
//! committed.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Body, LogIndex, Membership, NodeId, ProgressState, RaftCore, Role, Term};

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

/// A state machine snapshot with its metadata.
///
/// ```
/// use raft_actors::core::{Membership, Snapshot, SnapshotMeta};
/// let meta = SnapshotMeta { index: 10, term: 2, membership: Membership::voters([1, 2, 3]) };
/// let snap = Snapshot { meta, data: "state".into() };
/// assert_eq!(snap.data.len(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The state machine's serialized state, opaque to the core.
    pub data: Bytes,
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

/// A snapshot being received, chunk by chunk.
#[derive(Debug)]
pub(crate) struct Incoming {
    meta: SnapshotMeta,
    buf: Vec<u8>,
}

impl RaftCore {
    /// The driver took a snapshot of its state machine at `index` (at most
    /// the applied index). The core keeps it to send to lagging followers,
    /// hands it back in the next [`ToPersist`](super::ToPersist) to be
    /// stored, and compacts the log up to `index - trailing_logs`.
    pub fn snapshot_taken(&mut self, index: LogIndex, data: Bytes) -> Result<(), SnapshotError> {
        if index > self.log.applied {
            return Err(SnapshotError::NotApplied {
                index,
                applied: self.log.applied,
            });
        }
        let current = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
        let Some(term) = self.log.term(index).filter(|_| index > current) else {
            return Err(SnapshotError::Stale {
                current: current.max(self.log.offset()),
            });
        };
        let meta = SnapshotMeta {
            index,
            term,
            membership: self.configs.at(index),
        };
        let snap = Snapshot { meta, data };
        self.snapshot = Some(snap.clone());
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

    /// Leader: sends the next chunk of the snapshot to `peer`, one at a
    /// time, so heartbeats and other peers never wait behind a snapshot.
    pub(super) fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let Some(snap) = &self.snapshot else { return };
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        if pr.state != ProgressState::Snapshot {
            return;
        }
        if pr.snapshot_index != snap.meta.index {
            // A newer snapshot replaced the one being sent: send that one.
            pr.start_snapshot(snap.meta.index);
        }
        if pr.snapshot_in_flight {
            return;
        }
        let len = snap.data.len() as u64;
        let offset = pr.snapshot_offset.min(len);
        let end = (offset + self.cfg.snapshot_chunk_bytes as u64).min(len);
        pr.snapshot_in_flight = true;
        self.events.snapshot_bytes_sent += end - offset;
        let body = Body::InstallSnapshot {
            meta: snap.meta.clone(),
            offset,
            data: snap.data.slice(offset as usize..end as usize),
            done: end == len,
        };
        self.send(peer, body);
    }

    /// Follower: one chunk of a snapshot from the leader of this term.
    pub(super) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
    ) {
        // An index past MAX_TERM cannot be reached honestly either (one entry
        // per nanosecond for 290 years), and would overflow the log's cursors.
        if self.role == Role::Leader
            || meta.term > self.term
            || meta.term == 0
            || meta.index > super::MAX_TERM
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
            Some(inc) if inc.meta == meta => inc,
            _ if fresh => self.incoming.insert(Incoming {
                meta: meta.clone(),
                buf: Vec::new(),
            }),
            _ => {
                // A chunk of a snapshot we are not receiving: start over.
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
            inc.buf.clear();
        }
        if offset != inc.buf.len() as u64 {
            let next_offset = inc.buf.len() as u64;
            return self.ask_for_chunk(from, index, next_offset);
        }
        if inc.buf.len() + data.len() > self.cfg.max_snapshot_bytes {
            self.counters.malformed += 1;
            self.incoming = None;
            return;
        }
        inc.buf.extend_from_slice(&data);
        if !done {
            let next_offset = inc.buf.len() as u64;
            return self.ask_for_chunk(from, index, next_offset);
        }
        let Some(inc) = self.incoming.take() else {
            return;
        };
        let snap = Snapshot {
            meta: inc.meta,
            data: Bytes::from(inc.buf),
        };
        self.install(snap);
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
        self.snapshot = Some(snap.clone());
        self.snapshot_to_store = Some(snap.clone());
        self.snapshot_to_restore = Some(snap);
        self.snapshot_requested = false;
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
