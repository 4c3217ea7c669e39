//! The Prometheus `/metrics` (cargo feature `metrics`) of a real cluster:
//! three service nodes in one process over TCP, writes, a snapshot, a
//! fourth node that can only catch up from that snapshot, a leadership
//! transfer. Every series the Grafana dashboard
//! (`grafana/raft-actors.json`) queries is exported, and the values move
//! with what the cluster did. Every wait is bounded and on a condition.
#![cfg(feature = "metrics")]

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use raft_actors_service::flags::StorageKind;
use raft_actors_service::http::read_json;
use raft_actors_service::metrics::SERIES;
use raft_actors_service::{
    ApiError, LogIndex, Node, NodeId, RunningService, Service, ServiceBuilder,
};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);
const DASHBOARD: &str = include_str!("../grafana/raft-actors.json");
/// Writes the tests make, one after the other.
const WRITES: u64 = 20;

#[derive(Default)]
struct Counter(i64);

impl Service for Counter {
    const NAME: &'static str = "metrics-counter";
    type Command = i64;
    type Output = i64;
    type Query = ();
    type Answer = i64;
    type Snapshot = i64;
    fn apply(&mut self, _: LogIndex, delta: i64) -> i64 {
        self.0 += delta;
        self.0
    }
    fn query(&self, _: ()) -> i64 {
        self.0
    }
    fn snapshot(&self) -> i64 {
        self.0
    }
    fn restore(&mut self, v: i64) {
        self.0 = v;
    }
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/add", web::post().to(add));
    }
}

#[derive(serde::Deserialize)]
struct Add {
    delta: i64,
}

async fn add(
    node: web::Data<Node<Counter>>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Add { delta } = read_json(body).await?;
    let w = node.write(&req, delta).await?;
    Ok(HttpResponse::Ok().json(json!({ "index": w.index, "value": w.output })))
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")
}

fn builder(id: NodeId, raft: TcpListener) -> ServiceBuilder<Counter> {
    ServiceBuilder::<Counter>::new(id)
        .raft_listener(raft)
        .http_listener(listener())
        .storage(StorageKind::Memory)
        .configure(|cfg| {
            cfg.tick = Duration::from_millis(20);
            // A snapshot compacts the whole log: a node added after it can
            // only catch up from the snapshot.
            cfg.core.trailing_logs = 0;
        })
        .http_workers(1)
}

async fn call(method: &str, url: String, body: Option<Value>) -> (u16, String) {
    let client = awc::Client::builder().timeout(T).finish();
    let req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    let sent = match body {
        Some(b) => req.send_body(b.to_string()).await,
        None => req.send().await,
    };
    let mut res = sent.expect("the node answers");
    let bytes = res.body().limit(16 << 20).await.expect("a body");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, text) = call("GET", format!("http://{addr}/metrics"), None).await;
    assert_eq!(status, 200, "{text}");
    text
}

/// The sum of the samples of series `name` whose labels contain every
/// one of `labels` (`peer="2"`, ...); `None` if there is none.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, v) = match line.rsplit_once(' ') {
            Some(p) => p,
            None => continue,
        };
        let (n, l) = series.split_once('{').unwrap_or((series, ""));
        if n == name && labels.iter().all(|want| l.contains(want)) {
            let v: f64 = v.parse().expect("a sample value");
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

fn at_least(text: &str, name: &str, labels: &[&str], min: f64) {
    let v = value(text, name, labels).unwrap_or_else(|| panic!("{name}{labels:?} missing"));
    assert!(v >= min, "{name}{labels:?} = {v}, want >= {min}");
}

/// Scrapes node `id` until `ok` holds of the text, or panics after `T`
/// with the last text. Between scrapes it waits for the node's metrics to
/// change (everything these waits look for is published there), never for
/// a fixed time.
async fn wait_metrics(f: &Fixture, id: NodeId, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let addr = f.http(id);
    let mut changes = f.node(id).node().raft().metrics();
    let deadline = Instant::now() + T;
    loop {
        changes.borrow_and_update();
        let text = scrape(addr).await;
        if ok(&text) {
            return text;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let changed = actix_rt::time::timeout(left, changes.changed()).await;
        assert!(
            matches!(changed, Ok(Ok(()))),
            "{what} not seen within {T:?}:\n{text}"
        );
    }
}

/// The `raft_` series each panel's PromQL names, panel by panel.
fn dashboard_series() -> BTreeSet<String> {
    let d: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert!(
        d["title"].is_string() && d["panels"].is_array(),
        "a dashboard model"
    );
    let mut panels: Vec<&Value> = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        panels.push(p);
        panels.extend(p["panels"].as_array().into_iter().flatten());
    }
    let mut names = BTreeSet::new();
    let mut queried = 0;
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let targets = p["targets"].as_array().expect("a panel has targets");
        assert!(!targets.is_empty(), "panel {} queries nothing", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("a target has an expr");
            let found: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| w.starts_with("raft_"))
                .collect();
            assert!(!found.is_empty(), "{expr} queries no raft_ series");
            names.extend(found.into_iter().map(String::from));
            queried += 1;
        }
    }
    assert!(queried >= 20, "only {queried} queries");
    names
}

/// A 3-node cluster that took `WRITES` writes and a snapshot, and a fourth
/// node, a learner, that caught up from that snapshot.
struct Fixture {
    nodes: Vec<RunningService<Counter>>,
    leader: NodeId,
    last: LogIndex,
}

impl Fixture {
    async fn start() -> Fixture {
        let raft: Vec<TcpListener> = (0..3).map(|_| listener()).collect();
        let peers: Vec<_> = (1..=3)
            .zip(&raft)
            .map(|(id, l)| (id, l.local_addr().expect("addr")))
            .collect();
        let mut nodes = Vec::new();
        for (id, l) in (1..=3).zip(raft) {
            let b = builder(id, l).peers(peers.clone());
            nodes.push(b.start().await.expect("a node starts"));
        }
        let m = nodes[0]
            .node()
            .raft()
            .wait_for(T, |m| m.leader.is_some())
            .await
            .expect("a leader within the deadline");
        let leader = m.leader.expect("waited for it");
        let mut f = Fixture {
            nodes,
            leader,
            last: 0,
        };
        for _ in 0..WRITES {
            let url = format!("http://{}/add", f.http(leader));
            let (status, body) = call("POST", url, Some(json!({ "delta": 1 }))).await;
            assert_eq!(status, 200, "{body}");
            let v: Value = serde_json::from_str(&body).expect("json");
            f.last = v["index"].as_u64().expect("an index");
        }
        let url = format!("http://{}/cluster/snapshot", f.http(leader));
        let (status, body) = call("POST", url, Some(json!({}))).await;
        assert_eq!(status, 200, "{body}");
        // Node 4 joins after the log was compacted: only the snapshot can
        // catch it up.
        let l4 = listener();
        let raft4 = l4.local_addr().expect("addr");
        f.nodes
            .push(builder(4, l4).start().await.expect("node 4 starts"));
        let url = format!("http://{}/cluster/members", f.http(leader));
        let add = json!({ "id": 4, "raft_addr": raft4.to_string(), "role": "learner" });
        let (status, body) = call("POST", url, Some(add)).await;
        assert_eq!(status, 200, "{body}");
        let last = f.last;
        f.node(4)
            .node()
            .raft()
            .wait_for(T, move |m| m.applied >= last)
            .await
            .expect("node 4 catches up");
        f
    }

    fn node(&self, id: NodeId) -> &RunningService<Counter> {
        self.nodes
            .iter()
            .find(|n| n.node().id() == id)
            .expect("a node of the fixture")
    }

    fn http(&self, id: NodeId) -> SocketAddr {
        self.node(id).http_addr()
    }

    async fn stop(self) {
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}

#[actix_rt::test]
async fn every_series_the_dashboard_queries_is_exported() {
    let queried = dashboard_series();
    let f = Fixture::start().await;
    // The leader exports every series (per-peer replication included);
    // wait until its view of node 4 is there.
    let text = wait_metrics(&f, f.leader, "node 4's match index", |t| {
        value(t, "raft_peer_match_index", &["peer=\"4\""]).is_some()
    })
    .await;
    let exported: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "queried, not exported: {missing:?}\n{text}"
    );
    // And every series the crate documents is exported, under its name.
    for name in SERIES {
        let typed = [format!("# TYPE {name} "), format!("# TYPE {name}_total ")];
        assert!(
            typed.iter().any(|t| text.contains(t.as_str())),
            "{name} has no # TYPE line"
        );
    }
    f.stop().await;
}

#[actix_rt::test]
async fn the_values_move_with_what_the_cluster_did() {
    let f = Fixture::start().await;
    let (leader, n) = (f.leader, WRITES as f64);
    let text = wait_metrics(&f, leader, "the snapshot sent to node 4", |t| {
        value(t, "raft_snapshots_sent_total", &[]).is_some_and(|v| v >= 1.0)
            && value(t, "raft_peer_match_index", &["peer=\"4\""])
                .is_some_and(|v| v >= f.last as f64)
    })
    .await;
    // Writes: proposed, timed, persisted, synced, applied.
    at_least(&text, "raft_proposals_total", &["outcome=\"ok\""], n);
    at_least(&text, "raft_proposal_latency_seconds_count", &[], n);
    at_least(&text, "raft_storage_write_seconds_count", &[], n);
    at_least(
        &text,
        "raft_storage_write_seconds_bucket",
        &["le=\"+Inf\""],
        n,
    );
    at_least(
        &text,
        "raft_storage_write_seconds_sum",
        &[],
        f64::MIN_POSITIVE,
    );
    at_least(&text, "raft_fsync_seconds_count", &[], n);
    at_least(&text, "raft_entries_per_write_sum", &[], n);
    at_least(&text, "raft_apply_seconds_count", &[], n);
    at_least(&text, "raft_commit_index", &[], f.last as f64);
    at_least(&text, "raft_applied_index", &[], f.last as f64);
    // The snapshot: taken, and sent to node 4.
    at_least(&text, "raft_snapshots_taken_total", &[], 1.0);
    at_least(&text, "raft_snapshot_bytes_total", &["kind=\"taken\""], 1.0);
    at_least(
        &text,
        "raft_snapshot_seconds_count",
        &["kind=\"taken\""],
        1.0,
    );
    at_least(&text, "raft_snapshot_bytes_total", &["kind=\"sent\""], 1.0);
    at_least(
        &text,
        "raft_snapshot_seconds_count",
        &["kind=\"sent\""],
        1.0,
    );
    // The election that made it leader.
    at_least(&text, "raft_elections_started_total", &[], 1.0);
    at_least(&text, "raft_elections_won_total", &[], 1.0);
    // The links with every peer carried bytes and frames both ways.
    for peer in (1..=4).filter(|p| *p != leader) {
        let p = format!("peer=\"{peer}\"");
        for dir in ["direction=\"sent\"", "direction=\"received\""] {
            for name in ["raft_transport_bytes_total", "raft_transport_frames_total"] {
                at_least(&text, name, &[p.as_str(), dir], 1.0);
            }
        }
        at_least(&text, "raft_peer_match_index", &[p.as_str()], f.last as f64);
    }
    // Node 4 installed the snapshot.
    let four = wait_metrics(&f, 4, "node 4's installed snapshot", |t| {
        value(t, "raft_snapshots_installed_total", &[]).is_some_and(|v| v >= 1.0)
    })
    .await;
    at_least(
        &four,
        "raft_snapshot_bytes_total",
        &["kind=\"installed\""],
        1.0,
    );
    at_least(
        &four,
        "raft_snapshot_seconds_count",
        &["kind=\"installed\""],
        1.0,
    );
    // Every node names the leader, and saw one leadership begin.
    for id in 1..=4 {
        let t = wait_metrics(&f, id, "the leader's id", |t| {
            value(t, "raft_leader", &[]) == Some(leader as f64)
        })
        .await;
        at_least(&t, "raft_leader_changes_total", &[], 1.0);
    }

    // Leadership moves: the new leader won an election, every voter saw a
    // second leadership begin.
    let to = (1..=3).find(|p| *p != leader).expect("another voter");
    let url = format!("http://{}/cluster/leader", f.http(leader));
    let (status, body) = call("POST", url, Some(json!({ "id": to }))).await;
    assert_eq!(status, 200, "{body}");
    let t = wait_metrics(&f, to, "the new leader's election", |t| {
        value(t, "raft_role", &["role=\"leader\""]) == Some(1.0)
    })
    .await;
    at_least(&t, "raft_elections_won_total", &[], 1.0);
    for id in 1..=3 {
        wait_metrics(&f, id, "the second leadership", |t| {
            value(t, "raft_leader", &[]) == Some(to as f64)
                && value(t, "raft_leader_changes_total", &[]).is_some_and(|v| v >= 2.0)
        })
        .await;
    }
    f.stop().await;
}
