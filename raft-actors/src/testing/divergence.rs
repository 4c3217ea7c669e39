//! [`Fingerprints`]: catches replicas whose state machines diverge. Each
//! node's `Apply` is wrapped so that, after applying entry `i` (every
//! `every`-th entry), it hashes its own snapshot and records the hash for
//! `i`; replicas that applied the same entries must hold the same state, so
//! the first index at which two recorded hashes differ is where a
//! non-deterministic `Apply` (a clock read, a random number, `HashMap`
//! iteration order) went wrong. A node restarted in the test is checked
//! against its former self as well.
//!
//! It only observes: the wrapped state machine's outputs, answers and
//! snapshots pass through unchanged.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::apply::Apply;
use crate::core::{LogIndex, NodeId};
use crate::node::ApplyFactory;
use crate::type_config::TypeConfig;

/// Every recorded state hash: by log index, each (node, hash).
type Book = BTreeMap<LogIndex, Vec<(NodeId, u64)>>;

/// Where replicas first disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The first log index after which two replicas' states differ.
    pub index: LogIndex,
    /// Every hash recorded there, by node (a node twice if it was
    /// restarted and applied the entry again).
    pub hashes: Vec<(NodeId, u64)>,
}

/// The state hashes of every replica, by log index. Clones share one book.
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use std::time::Duration;
/// use raft_actors::testing::{Fingerprints, Kv, KvCommand, TestCluster};
/// let book = Fingerprints::every(1);
/// let cluster = TestCluster::memory(3)
///     .apply(Kv::default)
///     .fingerprints(&book)
///     .start()
///     .await
///     .expect("starts");
/// let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.expect("a leader");
/// let out = cluster.raft(leader).propose(KvCommand::Put { key: 1, value: 2 }).await;
/// let index = out.expect("applied").index;
/// cluster.wait_all_applied(index, Duration::from_secs(10)).await.expect("applied everywhere");
/// assert_eq!(book.first_divergence(), None);
/// assert!(book.compared() >= 1);
/// cluster.shutdown().await;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Fingerprints {
    every: u64,
    book: Arc<Mutex<Book>>,
}

impl Fingerprints {
    /// A book that hashes the state after every `every`-th entry (1: after
    /// each; larger for big states, whose snapshot costs more to hash).
    pub fn every(every: u64) -> Self {
        Fingerprints {
            every: every.max(1),
            book: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // Pushes only: a poisoned lock's data is sound.
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `factory`'s state machines, as node `node` runs them, recording
    /// into this book.
    pub fn wrap<C: TypeConfig>(&self, node: NodeId, factory: ApplyFactory<C>) -> ApplyFactory<C> {
        let book = self.clone();
        Arc::new(move || {
            Box::new(Fingerprinted {
                node,
                inner: factory(),
                book: book.clone(),
            }) as Box<dyn Apply<C>>
        })
    }

    fn record(&self, index: LogIndex, node: NodeId, hash: u64) {
        self.lock().entry(index).or_default().push((node, hash));
    }

    /// The first index at which recorded states differ, if any.
    pub fn first_divergence(&self) -> Option<Divergence> {
        self.lock()
            .iter()
            .find(|(_, hashes)| hashes.iter().any(|(_, h)| *h != hashes[0].1))
            .map(|(index, hashes)| Divergence {
                index: *index,
                hashes: hashes.clone(),
            })
    }

    /// How many indexes were recorded by two replicas or more: how much
    /// the check compared (a test shows it compared something).
    pub fn compared(&self) -> usize {
        self.lock().values().filter(|h| h.len() >= 2).count()
    }
}

/// A state machine that records a hash of its state after applying.
struct Fingerprinted<C: TypeConfig> {
    node: NodeId,
    inner: Box<dyn Apply<C>>,
    book: Fingerprints,
}

impl<C: TypeConfig> Apply<C> for Fingerprinted<C> {
    fn apply(&mut self, index: LogIndex, command: C::Command) -> C::Output {
        let output = self.inner.apply(index, command);
        if index % self.book.every == 0 {
            // The snapshot's encoding is the state as the cluster would
            // ship it; a state that cannot be encoded is not compared.
            if let Ok(bytes) = postcard::to_allocvec(&self.inner.snapshot()) {
                let mut h = DefaultHasher::new();
                h.write(&bytes);
                self.book.record(index, self.node, h.finish());
            }
        }
        output
    }

    fn query(&self, query: C::Query) -> C::QueryAnswer {
        self.inner.query(query)
    }

    fn snapshot(&self) -> C::Snapshot {
        self.inner.snapshot()
    }

    fn restore(&mut self, snapshot: C::Snapshot) {
        self.inner.restore(snapshot);
    }
}
