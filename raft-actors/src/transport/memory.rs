//! [`MemoryNetwork`]: an in-process network between actor nodes, with
//! faults injected per directed link under one seed.
//!
//! Each node registers its mailbox; a [`MemoryTransport`] sends to the
//! mailboxes of the others. Faults (drop, delay, duplicate, reorder,
//! partition) are decided by one seeded RNG, so the same seed draws the
//! same faults for the same sequence of sends. It must never alter a
//! message, and never deliver across a partition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::Recipient;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{estimated_size, PeerMetrics, Transport, TransportError};
use crate::core::{Message, NodeId};
use crate::transport::Peer;

/// Faults on one directed link. Probabilities are per message, in `0..=1`.
///
/// ```
/// use raft_actors::transport::LinkFaults;
/// use std::time::Duration;
/// let lossy = LinkFaults { drop: 0.1, max_delay: Duration::from_millis(5), ..Default::default() };
/// assert!(!lossy.is_clean());
/// assert!(LinkFaults::default().is_clean());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Chance a message is lost.
    pub drop: f64,
    /// Chance a message is delivered twice.
    pub duplicate: f64,
    /// Chance a message is held back by a random delay up to `max_delay`,
    /// so later ones overtake it.
    pub reorder: f64,
    /// Every message is delayed by a random time up to this.
    pub max_delay: Duration,
}

impl LinkFaults {
    /// Whether the link delivers everything at once, in order.
    pub fn is_clean(&self) -> bool {
        self.drop == 0.0 && self.duplicate == 0.0 && self.reorder == 0.0 && self.max_delay.is_zero()
    }
}

/// Counts of what the network did, for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to a mailbox (duplicates count twice).
    pub delivered: u64,
    /// Messages lost to `drop` or a partition.
    pub dropped: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Messages held back by a delay.
    pub delayed: u64,
}

/// A shared in-process network. Clones are handles to the same network.
///
/// ```
/// use raft_actors::transport::MemoryNetwork;
/// let net = MemoryNetwork::new(7);
/// net.isolate(1);
/// assert!(net.is_blocked(1, 2) && net.is_blocked(3, 1) && !net.is_blocked(2, 3));
/// net.heal();
/// net.mute(2);
/// assert!(net.is_blocked(2, 3) && !net.is_blocked(3, 2));
/// net.heal();
/// assert!(!net.is_blocked(1, 2));
/// ```
#[derive(Clone, Debug)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    mailboxes: BTreeMap<NodeId, Recipient<Peer>>,
    /// Directed links that deliver nothing.
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Nodes cut off from everyone, both ways (including nodes that
    /// register later).
    isolated: BTreeSet<NodeId>,
    /// Nodes whose sends are lost, while they still hear everyone.
    muted: BTreeSet<NodeId>,
    faults: BTreeMap<(NodeId, NodeId), LinkFaults>,
    default_faults: LinkFaults,
    rng: ChaCha8Rng,
    max_batch_bytes: usize,
    stats: NetworkStats,
    /// Each directed link's counts (bytes by [`estimated_size`]).
    links: BTreeMap<(NodeId, NodeId), Link>,
}

/// What one directed link carried: sent is delivered here (a delayed
/// message counts when it is sent).
#[derive(Clone, Copy, Debug, Default)]
struct Link {
    bytes: u64,
    messages: u64,
    frames: u64,
    drops: u64,
}

/// The default largest batch a link carries: 16 MiB, well above the core's
/// default 1 MiB per AppendEntries.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 16 << 20;

impl MemoryNetwork {
    /// A clean network whose faults, once set, are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        MemoryNetwork {
            inner: Arc::new(Mutex::new(Inner {
                mailboxes: BTreeMap::new(),
                blocked: BTreeSet::new(),
                isolated: BTreeSet::new(),
                muted: BTreeSet::new(),
                faults: BTreeMap::new(),
                default_faults: LinkFaults::default(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
                stats: NetworkStats::default(),
                links: BTreeMap::new(),
            })),
        }
    }

    /// Registers (or replaces) node `id`'s mailbox: batches sent to `id`
    /// arrive there from now on.
    pub fn register(&self, id: NodeId, mailbox: Recipient<Peer>) {
        self.lock().mailboxes.insert(id, mailbox);
    }

    /// Forgets node `id`: sends to it fail with
    /// [`TransportError::UnknownPeer`] until it registers again.
    pub fn unregister(&self, id: NodeId) {
        self.lock().mailboxes.remove(&id);
    }

    /// The transport node `id` sends with.
    pub fn transport(&self, id: NodeId) -> MemoryTransport {
        MemoryTransport {
            id,
            net: self.clone(),
        }
    }

    /// Sets the largest batch (by [`estimated_size`]) a link carries.
    pub fn set_max_batch_bytes(&self, max: usize) {
        self.lock().max_batch_bytes = max;
    }

    /// Sets the faults of the directed link `from -> to`.
    pub fn set_link(&self, from: NodeId, to: NodeId, faults: LinkFaults) {
        self.lock().faults.insert((from, to), faults);
    }

    /// Sets the faults of every link without its own setting.
    pub fn set_all(&self, faults: LinkFaults) {
        self.lock().default_faults = faults;
    }

    /// Blocks the directed link `from -> to`.
    pub fn block(&self, from: NodeId, to: NodeId) {
        self.lock().blocked.insert((from, to));
    }

    /// Cuts `id` off from every other node, both ways.
    pub fn isolate(&self, id: NodeId) {
        self.lock().isolated.insert(id);
    }

    /// Loses everything `id` sends, one way: it still hears the others
    /// (including nodes that register later).
    pub fn mute(&self, id: NodeId) {
        self.lock().muted.insert(id);
    }

    /// Splits the nodes into two sides that cannot reach each other.
    pub fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        let mut inner = self.lock();
        for a in side_a {
            for b in side_b {
                inner.blocked.insert((*a, *b));
                inner.blocked.insert((*b, *a));
            }
        }
    }

    /// Removes every partition and every link fault.
    pub fn heal(&self) {
        let mut inner = self.lock();
        inner.blocked.clear();
        inner.isolated.clear();
        inner.muted.clear();
        inner.faults.clear();
        inner.default_faults = LinkFaults::default();
    }

    /// Whether `from -> to` is blocked.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.lock().cut(from, to)
    }

    /// Node `id`'s counts per peer, as a socket transport reports them
    /// ([`NetworkTransport::peer_metrics`](super::NetworkTransport::peer_metrics)):
    /// bytes are [`estimated_size`]s, a frame is a batch delivered, and
    /// the network has no connections to re-establish.
    ///
    /// ```
    /// use raft_actors::transport::MemoryNetwork;
    /// let net = MemoryNetwork::new(1);
    /// assert!(net.peer_metrics(1).is_empty());
    /// ```
    pub fn peer_metrics(&self, id: NodeId) -> BTreeMap<NodeId, PeerMetrics> {
        let inner = self.lock();
        let mut out: BTreeMap<NodeId, PeerMetrics> = BTreeMap::new();
        for (&(from, to), l) in &inner.links {
            if from == id {
                let p = out.entry(to).or_default();
                p.bytes_sent += l.bytes;
                p.messages_sent += l.messages;
                p.frames_sent += l.frames;
                p.drops += l.drops;
            } else if to == id {
                let p = out.entry(from).or_default();
                p.bytes_received += l.bytes;
                p.messages_received += l.messages;
                p.frames_received += l.frames;
            }
        }
        out
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetworkStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section below only inserts, removes or counts: a
        // panic inside one leaves nothing half-done, so a poisoned lock's
        // data is sound.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(
        &self,
        from: NodeId,
        to: NodeId,
        messages: Vec<Message>,
    ) -> Result<(), TransportError> {
        let mut inner = self.lock();
        let mailbox = inner
            .mailboxes
            .get(&to)
            .cloned()
            .ok_or(TransportError::UnknownPeer(to))?;
        let size = estimated_size(&messages);
        if size > inner.max_batch_bytes {
            return Err(TransportError::TooLarge {
                size,
                max: inner.max_batch_bytes,
            });
        }
        let count = messages.len() as u64;
        if inner.cut(from, to) {
            inner.stats.dropped += count;
            inner.links.entry((from, to)).or_default().drops += count;
            return Ok(());
        }
        let faults = inner
            .faults
            .get(&(from, to))
            .copied()
            .unwrap_or(inner.default_faults);
        if faults.is_clean() {
            inner.stats.delivered += count;
            let link = inner.links.entry((from, to)).or_default();
            (link.bytes, link.messages, link.frames) = (
                link.bytes + size as u64,
                link.messages + count,
                link.frames + 1,
            );
            drop(inner);
            // An actor that stopped for good drops the batch: that is a
            // crashed peer, which Raft treats as loss.
            mailbox.do_send(Peer { messages });
            return Ok(());
        }
        let mut now = Vec::with_capacity(messages.len());
        let mut later: Vec<(Duration, Message)> = Vec::new();
        for m in messages {
            if inner.rng.gen_bool(faults.drop.clamp(0.0, 1.0)) {
                inner.stats.dropped += 1;
                continue;
            }
            let copies = if inner.rng.gen_bool(faults.duplicate.clamp(0.0, 1.0)) {
                inner.stats.duplicated += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let m = m.clone();
                let mut delay = Duration::ZERO;
                if !faults.max_delay.is_zero() {
                    delay = faults.max_delay.mul_f64(inner.rng.gen::<f64>());
                }
                if inner.rng.gen_bool(faults.reorder.clamp(0.0, 1.0)) {
                    let window = faults.max_delay.max(Duration::from_millis(5));
                    delay += window.mul_f64(inner.rng.gen::<f64>());
                }
                inner.stats.delivered += 1;
                if delay.is_zero() {
                    now.push(m);
                } else {
                    inner.stats.delayed += 1;
                    later.push((delay, m));
                }
            }
        }
        let sent = (now.len() + later.len()) as u64;
        let link = inner.links.entry((from, to)).or_default();
        link.drops += count.saturating_sub(sent);
        if sent > 0 {
            link.bytes += size as u64;
            link.messages += sent;
            link.frames += 1;
        }
        drop(inner);
        if !now.is_empty() {
            mailbox.do_send(Peer { messages: now });
        }
        for (delay, m) in later {
            let mailbox = mailbox.clone();
            actix_rt::spawn(async move {
                actix_rt::time::sleep(delay).await;
                mailbox.do_send(Peer { messages: vec![m] });
            });
        }
        Ok(())
    }
}

impl Inner {
    fn cut(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
            || self.isolated.contains(&from)
            || self.isolated.contains(&to)
            || self.muted.contains(&from)
    }
}

/// Node `id`'s side of a [`MemoryNetwork`].
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    id: NodeId,
    net: MemoryNetwork,
}

impl MemoryTransport {
    /// The network this transport sends on.
    pub fn network(&self) -> &MemoryNetwork {
        &self.net
    }

    /// This node's counts per peer (see [`MemoryNetwork::peer_metrics`]).
    pub fn peer_metrics(&self) -> BTreeMap<NodeId, PeerMetrics> {
        self.net.peer_metrics(self.id)
    }
}

impl Transport for MemoryTransport {
    fn send(&self, to: NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.net.deliver(self.id, to, messages)
    }
}
