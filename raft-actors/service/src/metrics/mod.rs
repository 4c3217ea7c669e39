//! [`ServiceMetrics`]: the node's `/metrics`, in the Prometheus text format
//! (prometheus-client; cargo feature `metrics`): role, term, leader, commit
//! and applied index, per-peer match index and lag, proposals and their
//! latency, storage write, fsync and apply latency, entries per write,
//! snapshots taken, sent and installed (count, bytes, duration), elections
//! and leader changes, and per peer the transport's bytes, frames,
//! messages, reconnects and drops.
//!
//! Everything but proposals is copied at scrape time from the node's
//! metrics watch ([`raft_actors::node::Metrics`], with its
//! [`Activity`](raft_actors::node::Activity)) and the transport's
//! [`PeerMetrics`]; only proposals are counted as they happen. It must
//! never slow a request beyond one histogram update, and never wait on the
//! node: a scrape reads what was last published.
//!
//! The series a dashboard may query are listed in [`SERIES`];
//! `grafana/raft-actors.json` (beside this crate's README) queries them.

mod copied;
mod text;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use raft_actors::core::{NodeId, Role};
use raft_actors::node::{Metrics, SnapshotStats};
use raft_actors::transport::PeerMetrics;

use copied::{CopiedCounter, CopiedHistogram};

type Labels = Vec<(String, String)>;
type Counters = Family<Labels, CopiedCounter>;

/// Every series `/metrics` exports, as Prometheus names them (a histogram
/// by its base name: `_bucket`, `_sum` and `_count` follow).
pub const SERIES: &[&str] = &[
    "raft_role",
    "raft_term",
    "raft_leader",
    "raft_commit_index",
    "raft_applied_index",
    "raft_last_index",
    "raft_peer_match_index",
    "raft_replication_lag_entries",
    "raft_proposals_total",
    "raft_proposal_latency_seconds",
    "raft_writes_in_flight",
    "raft_storage_writes",
    "raft_storage_write_seconds",
    "raft_fsync_seconds",
    "raft_fsyncs_total",
    "raft_entries_persisted",
    "raft_entries_per_fsync",
    "raft_entries_per_write",
    "raft_apply_seconds",
    "raft_apply_lag_entries",
    "raft_apply_refused_total",
    "raft_entries_read_back_total",
    "raft_snapshots_taken_total",
    "raft_snapshots_sent_total",
    "raft_snapshots_installed_total",
    "raft_snapshot_bytes_total",
    "raft_snapshot_seconds",
    "raft_elections_started_total",
    "raft_elections_won_total",
    "raft_leader_changes_total",
    "raft_transport_bytes_total",
    "raft_transport_frames_total",
    "raft_transport_messages_total",
    "raft_transport_reconnects_total",
    "raft_transport_drops_total",
    "raft_transport_drops",
    "raft_transport_reconnects",
];

/// Nanoseconds per second: a divisor, so that bounds print as `0.0016`.
const NANOS: f64 = 1e9;

#[derive(Default)]
struct Inner {
    registry: Mutex<Registry>,
    role: Family<Labels, Gauge>,
    term: Gauge,
    leader: Gauge,
    commit: Gauge,
    applied: Gauge,
    last_index: Gauge,
    match_index: Family<Labels, Gauge>,
    lag: Family<Labels, Gauge>,
    proposals: Family<Labels, Counter>,
    latency: Option<Histogram>,
    writes_in_flight: Gauge,
    storage_writes: Gauge,
    storage_write: CopiedHistogram,
    fsync: CopiedHistogram,
    fsyncs: CopiedCounter,
    apply_lag: Gauge,
    apply_refused: CopiedCounter,
    entries_read_back: CopiedCounter,
    entries_persisted: Gauge,
    entries_per_fsync: Gauge<f64, AtomicU64>,
    entries_per_write: CopiedHistogram,
    apply: CopiedHistogram,
    snapshots_taken: CopiedCounter,
    snapshots_sent: CopiedCounter,
    snapshots_installed: CopiedCounter,
    snapshot_bytes: Counters,
    snapshot_seconds: Family<Labels, CopiedHistogram>,
    elections_started: CopiedCounter,
    elections_won: CopiedCounter,
    leader_changes: CopiedCounter,
    transport_bytes: Counters,
    transport_frames: Counters,
    transport_messages: Counters,
    transport_reconnects: Counters,
    transport_drops: Counters,
    transport_tls_refused: CopiedCounter,
    drops: Family<Labels, Gauge>,
    reconnects: Family<Labels, Gauge>,
}

/// The node's metrics. Clones share them.
///
/// ```
/// use raft_actors::node::Metrics;
/// use raft_actors_service::metrics::{ServiceMetrics, SERIES};
/// let text = ServiceMetrics::new().render(&Metrics::starting(1), false, &Default::default());
/// assert!(text.contains("raft_term 0\n"));
/// assert!(text.contains("raft_storage_write_seconds_count 0\n"));
/// ```
#[derive(Clone)]
pub struct ServiceMetrics {
    inner: Arc<Inner>,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut i = Inner {
            latency: Some(Histogram::new(exponential_buckets(0.000_1, 2.0, 18))),
            ..Inner::default()
        };
        let mut r = Registry::with_prefix("raft");
        let mut reg = |name: &str, help: &str, m: &dyn MetricClone| m.register(&mut r, name, help);
        reg(
            "role",
            "1 for the node's current role (leader, follower, candidate, learner)",
            &i.role,
        );
        reg("term", "The node's current term", &i.term);
        reg(
            "leader",
            "The id of the leader this node follows (0: none known)",
            &i.leader,
        );
        reg(
            "commit_index",
            "Highest log index known committed",
            &i.commit,
        );
        reg("applied_index", "Highest log index applied", &i.applied);
        reg(
            "last_index",
            "Index of the node's last log entry",
            &i.last_index,
        );
        reg(
            "peer_match_index",
            "Leader only: each peer's match index",
            &i.match_index,
        );
        reg(
            "replication_lag_entries",
            "Leader only: entries each peer's log is behind the leader's",
            &i.lag,
        );
        reg(
            "proposals",
            "Writes proposed through this node, by outcome",
            &i.proposals,
        );
        if let Some(latency) = &i.latency {
            reg(
                "proposal_latency_seconds",
                "Time from proposing a write to its answer",
                latency,
            );
        }
        reg(
            "writes_in_flight",
            "Storage writes handed out and not yet durable",
            &i.writes_in_flight,
        );
        reg(
            "storage_writes",
            "Storage write batches since start (one fsync each on redb)",
            &i.storage_writes,
        );
        reg(
            "storage_write_seconds",
            "Time of each storage write, around the storage call",
            &i.storage_write,
        );
        reg(
            "fsync_seconds",
            "Time of each storage write that synced to disk",
            &i.fsync,
        );
        reg(
            "fsyncs",
            "Fsyncs the storage counted since it was opened (storages that count them)",
            &i.fsyncs,
        );
        reg(
            "apply_lag_entries",
            "Committed entries handed to the state machine's thread and not yet applied",
            &i.apply_lag,
        );
        reg(
            "apply_refused",
            "Requests refused with 503 because the state machine was too far behind (backpressure)",
            &i.apply_refused,
        );
        reg(
            "entries_read_back",
            "Log entries read back from storage to send to followers (their payloads were dropped from memory)",
            &i.entries_read_back,
        );
        reg(
            "transport_tls_refused",
            "Peers refused for their TLS certificate (none, another CA, expired, naming another node)",
            &i.transport_tls_refused,
        );
        reg(
            "entries_persisted",
            "Log entries persisted since start",
            &i.entries_persisted,
        );
        reg(
            "entries_per_fsync",
            "Log entries per storage write since start: the group commit's yield",
            &i.entries_per_fsync,
        );
        reg(
            "entries_per_write",
            "Log entries carried by each storage write",
            &i.entries_per_write,
        );
        reg(
            "apply_seconds",
            "Time to apply each batch of committed entries in the state machine",
            &i.apply,
        );
        reg(
            "snapshots_taken",
            "Snapshots of this node's state machine",
            &i.snapshots_taken,
        );
        reg(
            "snapshots_sent",
            "Snapshots sent as leader and confirmed by the follower",
            &i.snapshots_sent,
        );
        reg(
            "snapshots_installed",
            "Snapshots received from a leader and stored",
            &i.snapshots_installed,
        );
        reg(
            "snapshot_bytes",
            "Snapshot bytes, by kind (taken, sent, installed)",
            &i.snapshot_bytes,
        );
        reg(
            "snapshot_seconds",
            "Time of each snapshot, by kind (taken, sent, installed)",
            &i.snapshot_seconds,
        );
        reg(
            "elections_started",
            "Elections this node started as a candidate",
            &i.elections_started,
        );
        reg("elections_won", "Elections this node won", &i.elections_won);
        reg(
            "leader_changes",
            "Leaderships this node saw begin (a new leader, or a new term's)",
            &i.leader_changes,
        );
        reg(
            "transport_bytes",
            "Bytes on the links with each peer, by direction (sent, received)",
            &i.transport_bytes,
        );
        reg(
            "transport_frames",
            "Frames on the links with each peer, by direction",
            &i.transport_frames,
        );
        reg(
            "transport_messages",
            "Raft messages on the links with each peer, by direction",
            &i.transport_messages,
        );
        reg(
            "transport_reconnects",
            "Connections to each peer re-established after a failure",
            &i.transport_reconnects,
        );
        reg(
            "transport_drops",
            "Messages to each peer dropped by the transport",
            &i.transport_drops,
        );
        reg("transport_drops", "Messages to each peer dropped (queue full, broken connection); see raft_transport_drops_total", &i.drops);
        reg(
            "transport_reconnects",
            "Connections to each peer re-established; see raft_transport_reconnects_total",
            &i.reconnects,
        );
        i.registry = Mutex::new(r);
        ServiceMetrics { inner: Arc::new(i) }
    }

    /// Counts one proposal and its latency.
    pub fn proposal(&self, took: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.inner
            .proposals
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
        if let Some(latency) = &self.inner.latency {
            latency.observe(took.as_secs_f64());
        }
    }

    /// The text exposition, refreshed from the node's metrics `m`, whether
    /// it is a learner, and the transport's per-peer counts.
    pub fn render(
        &self,
        m: &Metrics,
        learner: bool,
        peers: &BTreeMap<NodeId, PeerMetrics>,
    ) -> String {
        let i = &self.inner;
        let role = crate::cluster::role_of(m.role, learner);
        for r in ["leader", "follower", "candidate", "learner"] {
            i.role
                .get_or_create(&label("role", r))
                .set(i64::from(r == role));
        }
        i.term.set(g(m.term));
        i.leader.set(g(m.leader.unwrap_or(0)));
        i.commit.set(g(m.commit));
        i.applied.set(g(m.applied));
        i.last_index.set(g(m.last_index));
        i.writes_in_flight.set(g(m.writes_in_flight));
        i.storage_writes.set(g(m.storage_writes));
        i.entries_persisted.set(g(m.entries_persisted));
        i.entries_per_fsync.set(m.entries_per_write());
        i.fsyncs.set(m.fsyncs.unwrap_or(0));
        i.apply_lag.set(g(m.apply_lag));
        i.apply_refused.set(m.apply_refused);
        i.entries_read_back.set(m.entries_read_back);
        i.lag.clear();
        i.match_index.clear();
        if m.role == Role::Leader {
            for (peer, matched) in m.matched.iter().filter(|(p, _)| **p != m.id) {
                let lag = m.last_index.saturating_sub(*matched);
                i.lag.get_or_create(&peer_label(*peer)).set(g(lag));
                i.match_index
                    .get_or_create(&peer_label(*peer))
                    .set(g(*matched));
            }
        }
        self.copy_activity(m);
        self.copy_peers(peers);
        let mut out = String::new();
        let r = i.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &r);
        text::prometheus_text(&out)
    }

    /// The transport's count of peers refused for their certificate
    /// ([`NetworkTransport::tls_refused`](raft_actors::transport::NetworkTransport::tls_refused)).
    pub fn set_tls_refused(&self, n: u64) {
        self.inner.transport_tls_refused.set(n);
    }

    fn copy_activity(&self, m: &Metrics) {
        let (i, a) = (&self.inner, &m.activity);
        i.storage_write.set(&a.storage_write, NANOS);
        i.fsync.set(&a.fsync, NANOS);
        i.entries_per_write.set(&a.entries_per_write, 1.0);
        i.apply.set(&a.apply, NANOS);
        let kinds: [(&str, &SnapshotStats, &CopiedCounter); 3] = [
            ("taken", &a.snapshots_taken, &i.snapshots_taken),
            ("sent", &a.snapshots_sent, &i.snapshots_sent),
            ("installed", &a.snapshots_installed, &i.snapshots_installed),
        ];
        for (kind, s, count) in kinds {
            count.set(s.count);
            i.snapshot_bytes
                .get_or_create(&label("kind", kind))
                .set(s.bytes);
            i.snapshot_seconds
                .get_or_create(&label("kind", kind))
                .set(&s.seconds, NANOS);
        }
        i.elections_started.set(a.events.elections_started);
        i.elections_won.set(a.events.elections_won);
        i.leader_changes.set(a.events.leader_changes);
    }

    fn copy_peers(&self, peers: &BTreeMap<NodeId, PeerMetrics>) {
        let i = &self.inner;
        for (peer, p) in peers {
            let both = [("sent", p), ("received", p)];
            for (dir, p) in both {
                let (bytes, frames, messages) = match dir {
                    "sent" => (p.bytes_sent, p.frames_sent, p.messages_sent),
                    _ => (p.bytes_received, p.frames_received, p.messages_received),
                };
                let l = directed(*peer, dir);
                i.transport_bytes.get_or_create(&l).set(bytes);
                i.transport_frames.get_or_create(&l).set(frames);
                i.transport_messages.get_or_create(&l).set(messages);
            }
            i.transport_drops
                .get_or_create(&peer_label(*peer))
                .set(p.drops);
            i.transport_reconnects
                .get_or_create(&peer_label(*peer))
                .set(p.reconnects);
            i.drops.get_or_create(&peer_label(*peer)).set(g(p.drops));
            i.reconnects
                .get_or_create(&peer_label(*peer))
                .set(g(p.reconnects));
        }
    }
}

/// Registers a clone of a metric (clones share their values).
trait MetricClone {
    fn register(&self, r: &mut Registry, name: &str, help: &str);
}

impl<M: Metric + Clone> MetricClone for M {
    fn register(&self, r: &mut Registry, name: &str, help: &str) {
        r.register(name, help, self.clone());
    }
}

fn g(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn label(key: &str, value: &str) -> Labels {
    vec![(key.into(), value.into())]
}

fn peer_label(peer: NodeId) -> Labels {
    label("peer", &peer.to_string())
}

fn directed(peer: NodeId, direction: &str) -> Labels {
    vec![
        ("peer".into(), peer.to_string()),
        ("direction".into(), direction.into()),
    ]
}

#[cfg(test)]
mod tests;
