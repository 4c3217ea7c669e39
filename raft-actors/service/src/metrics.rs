//! [`ServiceMetrics`]: the node's `/metrics`, in the Prometheus text format
//! (prometheus-client): role, term, commit and applied index, proposals and
//! their latency, entries per fsync, per-peer replication lag, transport
//! drops and reconnects.
//!
//! Gauges are refreshed from the runtime's and the transport's counters at
//! scrape time; only proposals are counted as they happen. It must never
//! slow a request beyond one histogram update.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use raft_actors::core::{NodeId, Role};
use raft_actors::node::Metrics;
use raft_actors::transport::PeerMetrics;

type Labels = Vec<(String, String)>;

struct Inner {
    registry: Mutex<Registry>,
    role: Family<Labels, Gauge>,
    term: Gauge,
    commit: Gauge,
    applied: Gauge,
    last_index: Gauge,
    proposals: Family<Labels, Counter>,
    latency: Histogram,
    lag: Family<Labels, Gauge>,
    drops: Family<Labels, Gauge>,
    reconnects: Family<Labels, Gauge>,
    storage_writes: Gauge,
    entries_persisted: Gauge,
    entries_per_fsync: Gauge<f64, AtomicU64>,
}

/// The node's metrics. Clones share them.
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
        let inner = Inner {
            registry: Mutex::new(Registry::with_prefix("raft")),
            role: Family::default(),
            term: Gauge::default(),
            commit: Gauge::default(),
            applied: Gauge::default(),
            last_index: Gauge::default(),
            proposals: Family::default(),
            latency: Histogram::new(exponential_buckets(0.000_1, 2.0, 18)),
            lag: Family::default(),
            drops: Family::default(),
            reconnects: Family::default(),
            storage_writes: Gauge::default(),
            entries_persisted: Gauge::default(),
            entries_per_fsync: Gauge::default(),
        };
        {
            let mut r = inner.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register(
                "role",
                "1 for the node's current role (leader, follower, candidate, learner)",
                inner.role.clone(),
            );
            r.register("term", "The node's current term", inner.term.clone());
            r.register(
                "commit_index",
                "Highest log index known committed",
                inner.commit.clone(),
            );
            r.register(
                "applied_index",
                "Highest log index applied",
                inner.applied.clone(),
            );
            r.register(
                "last_index",
                "Index of the node's last log entry",
                inner.last_index.clone(),
            );
            r.register(
                "proposals",
                "Writes proposed through this node, by outcome",
                inner.proposals.clone(),
            );
            r.register(
                "proposal_latency_seconds",
                "Time from proposing a write to its answer",
                inner.latency.clone(),
            );
            r.register(
                "replication_lag_entries",
                "Leader only: entries each peer's log is behind the leader's",
                inner.lag.clone(),
            );
            r.register(
                "transport_drops",
                "Messages to each peer dropped by the transport (queue full, broken connection)",
                inner.drops.clone(),
            );
            r.register(
                "transport_reconnects",
                "Connections to each peer re-established after a failure",
                inner.reconnects.clone(),
            );
            r.register(
                "storage_writes",
                "Storage write batches since start (one fsync each on redb)",
                inner.storage_writes.clone(),
            );
            r.register(
                "entries_persisted",
                "Log entries persisted since start",
                inner.entries_persisted.clone(),
            );
            r.register(
                "entries_per_fsync",
                "Log entries per storage write since start: the group commit's yield",
                inner.entries_per_fsync.clone(),
            );
        }
        ServiceMetrics {
            inner: Arc::new(inner),
        }
    }

    /// Counts one proposal and its latency.
    pub fn proposal(&self, took: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.inner
            .proposals
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
        self.inner.latency.observe(took.as_secs_f64());
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
                .get_or_create(&vec![("role".into(), r.into())])
                .set(i64::from(r == role));
        }
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        i.term.set(g(m.term));
        i.commit.set(g(m.commit));
        i.applied.set(g(m.applied));
        i.last_index.set(g(m.last_index));
        i.storage_writes.set(g(m.storage_writes));
        i.entries_persisted.set(g(m.entries_persisted));
        i.entries_per_fsync.set(m.entries_per_write());
        i.lag.clear();
        if m.role == Role::Leader {
            for (peer, matched) in &m.matched {
                if *peer != m.id {
                    i.lag
                        .get_or_create(&peer_label(*peer))
                        .set(g(m.last_index.saturating_sub(*matched)));
                }
            }
        }
        for (peer, p) in peers {
            i.drops.get_or_create(&peer_label(*peer)).set(g(p.drops));
            i.reconnects
                .get_or_create(&peer_label(*peer))
                .set(g(p.reconnects));
        }
        let mut out = String::new();
        let r = i.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &r);
        prometheus_text(&out)
    }
}

/// The Prometheus text format (0.0.4) of what prometheus-client writes as
/// OpenMetrics: the same samples, without the `# EOF` terminator, and with
/// each counter's `# HELP`/`# TYPE` naming its `_total` sample, as
/// Prometheus' own text format does.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn peer_label(peer: NodeId) -> Labels {
    vec![("peer".into(), peer.to_string())]
}

#[cfg(test)]
mod tests {
    use super::prometheus_text;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP raft_proposals Proposals.\n# TYPE raft_proposals counter\nraft_proposals_total{outcome=\"ok\"} 3\n# HELP raft_term Term.\n# TYPE raft_term gauge\nraft_term 2\n# EOF\n";
        let text = prometheus_text(om);
        assert!(!text.contains("# EOF"));
        assert!(text.contains("# TYPE raft_proposals_total counter\n"));
        assert!(text.contains("# HELP raft_proposals_total Proposals.\n"));
        assert!(text.contains("raft_proposals_total{outcome=\"ok\"} 3\n"));
        assert!(text.contains("# TYPE raft_term gauge\nraft_term 2\n"));
    }
}
