//! [`transport_suite`]: the [`Transport`] contract as one test any adapter
//! can run.

use std::time::Duration;

use actix::{Actor, Context, Handler, Recipient};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::core::{Body, Entry, Message, NodeId, Payload};
use crate::transport::Peer;
use crate::transport::{Transport, TransportError};

/// What the suite needs from an adapter: endpoints bound to mailboxes.
pub trait TransportHarness {
    /// The adapter.
    type T: Transport;
    /// Creates (or re-creates, after [`disconnect`](Self::disconnect)) node
    /// `id`'s endpoint: what it sends goes out through the returned
    /// transport; what others send to `id` arrives at `inbox`.
    fn endpoint(&mut self, id: NodeId, inbox: Recipient<Peer>) -> Self::T;
    /// Takes node `id` off the network, as a crash would, and returns once
    /// it is off (a socket adapter waits for its port to be free, so
    /// [`endpoint`](Self::endpoint) can bind it again).
    // Not `Send`: the suite runs on one actix thread, so the bound the
    // lint asks for would only burden adapters.
    #[allow(async_fn_in_trait)]
    async fn disconnect(&mut self, id: NodeId);
    /// The largest batch the adapter carries; the suite sends one bigger.
    fn max_batch_bytes(&self) -> usize;
}

/// A mailbox that passes what it receives to a channel.
struct Collector(mpsc::UnboundedSender<Peer>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Peer> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Peer, _: &mut Self::Context) {
        let _ = self.0.send(msg);
    }
}

/// A mailbox for tests of transports: what it receives comes out of the
/// returned channel.
pub fn inbox() -> (Recipient<Peer>, mpsc::UnboundedReceiver<Peer>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Collector(tx).start().recipient(), rx)
}

/// A heartbeat from `from` to `to`: the smallest message a transport test
/// can send.
pub fn heartbeat(from: NodeId, to: NodeId, seq: u64) -> Message {
    Message {
        from,
        to,
        term: 1,
        body: Body::Heartbeat { commit: 0, seq },
    }
}

const DEADLINE: Duration = Duration::from_secs(5);

/// Sends a heartbeat from `from` to `to` through `t` on every poll (20 ms)
/// until `done` holds, panicking after the suite's deadline (5 s). For
/// tests of an adapter's connections: the first batches may meet a link
/// still being dialled, and are dropped.
pub async fn send_until(
    t: &impl Transport,
    from: NodeId,
    to: NodeId,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let deadline = actix_rt::time::Instant::now() + DEADLINE;
    let mut poll = actix_rt::time::interval(Duration::from_millis(20));
    while !done() {
        assert!(
            actix_rt::time::Instant::now() < deadline,
            "timed out: {what}"
        );
        let _ = t.send(to, vec![heartbeat(from, to, 1)]);
        poll.tick().await;
    }
}

/// [`send_until`] a batch from `from` arrives at `rx`; answers it.
pub async fn send_until_delivered(
    t: &impl Transport,
    from: NodeId,
    to: NodeId,
    rx: &mut mpsc::UnboundedReceiver<Peer>,
) -> Peer {
    let mut got = None;
    send_until(
        t,
        from,
        to,
        &format!("a batch from {from} to reach {to}"),
        || {
            got = rx.try_recv().ok();
            got.is_some()
        },
    )
    .await;
    got.expect("send_until returns once a batch arrived")
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Peer>, what: &str) -> Peer {
    match actix_rt::time::timeout(DEADLINE, rx.recv()).await {
        Ok(Some(p)) => p,
        _ => panic!("transport suite: {what}: nothing arrived within {DEADLINE:?}"),
    }
}

/// The next delivery into an [`inbox`], within the suite's deadline (5 s).
///
/// # Panics
/// If nothing arrives in time.
pub async fn delivered(rx: &mut mpsc::UnboundedReceiver<Peer>) -> Peer {
    next(rx, "a delivery").await
}

/// Waits until `done` holds, looked at every 5 ms, within the suite's
/// deadline (5 s): for an adapter's counters, which notify no one.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// let mut n = 0;
/// raft_actors::testing::eventually("three looks", || { n += 1; n >= 3 }).await;
/// # }
/// ```
///
/// # Panics
/// If `done` does not hold in time, naming `what`.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = actix_rt::time::Instant::now() + DEADLINE;
    let mut poll = actix_rt::time::interval(Duration::from_millis(5));
    while !done() {
        assert!(
            actix_rt::time::Instant::now() < deadline,
            "timed out: {what}"
        );
        poll.tick().await;
    }
}

/// Runs the transport contract against an adapter, inside an actix system.
/// Panics, naming the broken rule, on the first violation.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use raft_actors::transport::{MemoryNetwork, MemoryTransport};
/// use raft_actors::testing::{transport_suite, TransportHarness};
/// struct H(MemoryNetwork);
/// impl TransportHarness for H {
///     type T = MemoryTransport;
///     fn endpoint(&mut self, id: u64, inbox: actix::Recipient<raft_actors::transport::Peer>) -> MemoryTransport {
///         self.0.register(id, inbox);
///         self.0.transport(id)
///     }
///     async fn disconnect(&mut self, id: u64) { self.0.unregister(id) }
///     fn max_batch_bytes(&self) -> usize { 1 << 16 }
/// }
/// let net = MemoryNetwork::new(1);
/// net.set_max_batch_bytes(1 << 16);
/// transport_suite(H(net)).await;
/// # }
/// ```
pub async fn transport_suite<H: TransportHarness>(mut h: H) {
    let (in1, mut rx1) = inbox();
    let (in2, mut rx2) = inbox();
    let (in3, _rx3) = inbox();
    let t1 = h.endpoint(1, in1);
    let t2 = h.endpoint(2, in2);
    let _t3 = h.endpoint(3, in3);

    // Delivery, unaltered, with entries' payloads intact.
    let append = Message {
        from: 1,
        to: 2,
        term: 3,
        body: Body::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry {
                index: 1,
                term: 3,
                payload: Payload::Command(Bytes::from_static(b"payload")),
            }],
            commit: 0,
        },
    };
    t1.send(2, vec![append.clone(), heartbeat(1, 2, 1)])
        .expect("send to a known peer");
    let got = next(&mut rx2, "delivery").await;
    assert_eq!(
        got.messages,
        vec![append, heartbeat(1, 2, 1)],
        "a batch arrives unaltered"
    );

    // Ordering per link: batches on one link arrive in send order.
    for seq in 0..100 {
        t1.send(2, vec![heartbeat(1, 2, seq)]).expect("send");
    }
    let mut seqs = Vec::new();
    while seqs.len() < 100 {
        for m in next(&mut rx2, "ordered batches").await.messages {
            if let Body::Heartbeat { seq, .. } = m.body {
                seqs.push(seq);
            }
        }
    }
    assert_eq!(seqs, (0..100).collect::<Vec<_>>(), "per-link order");

    // Both directions.
    t2.send(1, vec![heartbeat(2, 1, 7)]).expect("send back");
    assert_eq!(
        next(&mut rx1, "reverse link").await.messages,
        vec![heartbeat(2, 1, 7)]
    );

    // An unknown peer is refused at once.
    assert_eq!(
        t1.send(99, vec![heartbeat(1, 99, 1)]),
        Err(TransportError::UnknownPeer(99)),
        "unknown peer"
    );

    // An oversized batch is refused, not cut or sent.
    let big = Message {
        from: 1,
        to: 2,
        term: 1,
        body: Body::ForwardProposals {
            proposals: vec![(1, Bytes::from(vec![0u8; h.max_batch_bytes() + 1]))],
        },
    };
    assert!(
        matches!(t1.send(2, vec![big]), Err(TransportError::TooLarge { .. })),
        "oversized batch refused"
    );

    // A dead peer delays no other.
    h.disconnect(3).await;
    let _ = t1.send(3, vec![heartbeat(1, 3, 1)]);
    t1.send(2, vec![heartbeat(1, 2, 500)]).expect("send");
    let got = next(&mut rx2, "send past a dead peer").await;
    assert_eq!(
        got.messages,
        vec![heartbeat(1, 2, 500)],
        "dead peer delays no other"
    );

    // Reconnect: a peer that comes back (new mailbox) gets later batches.
    h.disconnect(2).await;
    let (in2b, mut rx2b) = inbox();
    let _t2b = h.endpoint(2, in2b);
    let deadline = actix_rt::time::Instant::now() + DEADLINE;
    loop {
        let _ = t1.send(2, vec![heartbeat(1, 2, 900)]);
        match actix_rt::time::timeout(Duration::from_millis(50), rx2b.recv()).await {
            Ok(Some(p)) => {
                assert_eq!(p.messages, vec![heartbeat(1, 2, 900)], "after reconnect");
                break;
            }
            _ if actix_rt::time::Instant::now() > deadline => {
                panic!("transport suite: no delivery after the peer reconnected")
            }
            _ => {}
        }
    }
}

/// For adapters that queue snapshot chunks in a lane of their own
/// ([`lanes`](crate::transport::lanes): the TCP and HTTP transports): a
/// heartbeat sent after a backlog of InstallSnapshot chunks arrives before
/// them, and the chunks still arrive, in order. (The memory network
/// delivers in send order and has no such lane.)
///
/// ```no_run
/// # async fn f(h: impl raft_actors::testing::TransportHarness) {
/// raft_actors::testing::heartbeats_overtake_snapshot_chunks(h).await;
/// # }
/// ```
pub async fn heartbeats_overtake_snapshot_chunks<H: TransportHarness>(mut h: H) {
    use crate::core::{Membership, SnapshotMeta};
    let (in1, _rx1) = inbox();
    let (in2, mut rx2) = inbox();
    let t1 = h.endpoint(1, in1);
    let _t2 = h.endpoint(2, in2);
    let len = (h.max_batch_bytes() / 4).max(1);
    let chunk = |i: u64| Message {
        from: 1,
        to: 2,
        term: 1,
        body: Body::InstallSnapshot {
            meta: SnapshotMeta {
                index: 100,
                term: 1,
                membership: Membership::voters([1, 2]),
            },
            size: 1 << 30,
            checksum: 0,
            offset: i * len as u64,
            data: Bytes::from(vec![i as u8; len]),
            done: false,
        },
    };
    let chunks = crate::transport::SNAPSHOT_LANE_CAPACITY as u64;
    for i in 0..chunks {
        t1.send(2, vec![chunk(i)]).expect("a chunk is queued");
    }
    t1.send(2, vec![heartbeat(1, 2, 9)])
        .expect("a heartbeat is queued");
    let first = next(&mut rx2, "the first delivery").await;
    assert_eq!(
        first.messages,
        vec![heartbeat(1, 2, 9)],
        "a heartbeat queued behind snapshot chunks arrives first"
    );
    for i in 0..chunks {
        let got = next(&mut rx2, "a snapshot chunk").await;
        assert_eq!(got.messages, vec![chunk(i)], "chunks arrive in order");
    }
}
