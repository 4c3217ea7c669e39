//! [`lanes`]: the bounded outgoing queue of one peer, in two lanes, for
//! socket adapters: everything else goes before InstallSnapshot chunks.
//!
//! A snapshot chunk can be large (`snapshot_chunk_bytes`), and a heartbeat
//! queued behind a few of them would arrive late enough to start an
//! election. So chunks wait in a lane of their own, and each write takes
//! every queued control batch first and at most one chunk batch after
//! them: a heartbeat waits for at most one chunk already on the wire. Raft
//! needs no order between the two (each message carries its term; a chunk
//! is acknowledged by offset). This module must never hold more than its
//! two bounds, and never reorder batches within a lane.

use std::task::Poll;

use tokio::sync::mpsc;

use crate::core::{Body, GroupId, Message};

/// One [`Transport::send`](super::Transport::send)'s messages and the Raft
/// group they belong to: what a lane queues, so one peer's queue (and
/// connection) can carry the batches of many groups.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupBatch {
    /// The Raft group of every message.
    pub group: GroupId,
    /// The messages, in send order.
    pub messages: Vec<Message>,
}

/// The sending side, held by [`Transport::send`](super::Transport::send).
#[derive(Clone, Debug)]
pub struct LaneSender {
    control: mpsc::Sender<GroupBatch>,
    bulk: mpsc::Sender<GroupBatch>,
}

/// The receiving side, held by the adapter's connection task.
#[derive(Debug)]
pub struct LaneReceiver {
    control: mpsc::Receiver<GroupBatch>,
    bulk: mpsc::Receiver<GroupBatch>,
}

/// Snapshot chunk batches queued per peer: the core keeps one chunk in
/// flight per follower (resent after a heartbeat), so a few suffice.
pub const SNAPSHOT_LANE_CAPACITY: usize = 4;

/// A queue of up to `capacity` control batches and
/// [`SNAPSHOT_LANE_CAPACITY`] snapshot chunk batches.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::core::{Body, Message, Membership, SnapshotMeta};
/// use raft_actors::transport::lanes;
/// let (tx, mut rx) = lanes(16);
/// let chunk = Message { from: 1, to: 2, term: 1, body: Body::InstallSnapshot {
///     meta: SnapshotMeta { index: 9, term: 1, membership: Membership::voters([1, 2]) },
///     size: 4096, checksum: 0, offset: 0, data: vec![0u8; 1024].into(), done: false } };
/// let beat = Message { from: 1, to: 2, term: 1, body: Body::TimeoutNow };
/// tx.try_send(0, vec![chunk.clone(), chunk]).expect("queued");
/// tx.try_send(7, vec![beat.clone()]).expect("queued");
/// // The heartbeat, queued last, leaves first, with its group; then one
/// // chunk batch.
/// let write = rx.next_write(8).await.expect("open");
/// assert_eq!((write[0].group, &write[0].messages), (7, &vec![beat]));
/// assert_eq!(write.len(), 2);
/// # }
/// ```
pub fn lanes(capacity: usize) -> (LaneSender, LaneReceiver) {
    lanes_with(capacity, SNAPSHOT_LANE_CAPACITY)
}

fn lanes_with(control: usize, bulk: usize) -> (LaneSender, LaneReceiver) {
    let (ctx, crx) = mpsc::channel(control.max(1));
    let (btx, brx) = mpsc::channel(bulk.max(1));
    (
        LaneSender {
            control: ctx,
            bulk: btx,
        },
        LaneReceiver {
            control: crx,
            bulk: brx,
        },
    )
}

fn is_bulk(m: &Message) -> bool {
    matches!(m.body, Body::InstallSnapshot { .. })
}

impl LaneSender {
    /// Queues `messages` of Raft group `group`, split by lane (order kept
    /// within each). Answers `Err(n)` with how many messages were dropped
    /// because a lane was full or closed; the rest were queued.
    pub fn try_send(&self, group: GroupId, messages: Vec<Message>) -> Result<(), u64> {
        let (bulk, control): (Vec<Message>, Vec<Message>) = if messages.iter().any(is_bulk) {
            messages.into_iter().partition(is_bulk)
        } else {
            (Vec::new(), messages)
        };
        let mut dropped = 0;
        for (lane, batch) in [(&self.control, control), (&self.bulk, bulk)] {
            if batch.is_empty() {
                continue;
            }
            let n = batch.len() as u64;
            let batch = GroupBatch {
                group,
                messages: batch,
            };
            if lane.try_send(batch).is_err() {
                dropped += n;
            }
        }
        if dropped == 0 {
            Ok(())
        } else {
            Err(dropped)
        }
    }
}

impl LaneReceiver {
    /// Whether every sender is gone (the transport dropped this peer's
    /// queue, e.g. because the peer moved): nothing more will arrive once
    /// the lanes are drained.
    pub fn is_closed(&self) -> bool {
        self.control.is_closed() && self.bulk.is_closed()
    }

    /// Waits for the next batch, control lane first; `None` once the
    /// sender is gone and both lanes are empty.
    pub async fn recv(&mut self) -> Option<GroupBatch> {
        std::future::poll_fn(|cx| {
            let control = match self.control.poll_recv(cx) {
                Poll::Ready(Some(b)) => return Poll::Ready(Some(b)),
                Poll::Ready(None) => true,
                Poll::Pending => false,
            };
            match self.bulk.poll_recv(cx) {
                Poll::Ready(Some(b)) => Poll::Ready(Some(b)),
                Poll::Ready(None) if control => Poll::Ready(None),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// Waits for what one write should carry: every queued control batch
    /// (up to `max` batches), then at most one bulk batch. Cancel-safe:
    /// nothing is taken before the first batch is, and nothing after it
    /// waits.
    pub async fn next_write(&mut self, max: usize) -> Option<Vec<GroupBatch>> {
        let first = self.recv().await?;
        let bulk_taken = first.messages.iter().any(is_bulk);
        let mut batches = vec![first];
        while batches.len() < max.max(1) {
            match self.control.try_recv() {
                Ok(b) => batches.push(b),
                Err(_) => break,
            }
        }
        if !bulk_taken {
            if let Ok(b) = self.bulk.try_recv() {
                batches.push(b);
            }
        }
        Some(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Membership, SnapshotMeta};

    fn chunk(offset: u64) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 1,
            body: Body::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 9,
                    term: 1,
                    membership: Membership::voters([1, 2]),
                },
                size: 1 << 20,
                checksum: 0,
                offset,
                data: vec![0u8; 64].into(),
                done: false,
            },
        }
    }

    fn g0(messages: Vec<Message>) -> GroupBatch {
        GroupBatch { group: 0, messages }
    }

    fn beat(term: u64) -> Message {
        Message {
            from: 1,
            to: 2,
            term,
            body: Body::TimeoutNow,
        }
    }

    #[actix_rt::test]
    async fn control_overtakes_chunks_and_one_write_carries_one_chunk_batch() {
        let (tx, mut rx) = lanes_with(16, 8);
        for i in 0..4 {
            tx.try_send(0, vec![chunk(i * 64)]).expect("queued");
        }
        tx.try_send(0, vec![beat(1), chunk(256)]).expect("queued");
        tx.try_send(0, vec![beat(2)]).expect("queued");
        let w = rx.next_write(8).await.expect("write");
        assert_eq!(
            w,
            vec![g0(vec![beat(1)]), g0(vec![beat(2)]), g0(vec![chunk(0)])]
        );
        // Then the chunks, in order, one per write.
        for offset in [64, 128, 192, 256] {
            assert_eq!(rx.next_write(8).await, Some(vec![g0(vec![chunk(offset)])]));
        }
        drop(tx);
        assert_eq!(rx.next_write(8).await, None);
    }

    #[actix_rt::test]
    async fn full_lanes_drop_and_count_without_blocking_the_other() {
        let (tx, mut rx) = lanes_with(2, 1);
        tx.try_send(0, vec![chunk(0)]).expect("queued");
        assert_eq!(tx.try_send(0, vec![chunk(64), chunk(128)]), Err(2));
        tx.try_send(0, vec![beat(1)]).expect("control has room");
        tx.try_send(0, vec![beat(2)]).expect("control has room");
        assert_eq!(tx.try_send(0, vec![beat(3), chunk(64)]), Err(2));
        assert_eq!(rx.recv().await, Some(g0(vec![beat(1)])));
    }

    #[actix_rt::test]
    async fn batches_of_many_groups_keep_their_group_and_their_order() {
        let (tx, mut rx) = lanes_with(16, 4);
        for (group, term) in [(3, 1), (0, 2), (3, 3), (9, 4)] {
            tx.try_send(group, vec![beat(term)]).expect("queued");
        }
        tx.try_send(5, vec![chunk(0)]).expect("queued");
        let w = rx.next_write(8).await.expect("write");
        let got: Vec<(GroupId, u64)> = w.iter().map(|b| (b.group, b.messages[0].term)).collect();
        assert_eq!(got, vec![(3, 1), (0, 2), (3, 3), (9, 4), (5, 1)]);
    }
}
