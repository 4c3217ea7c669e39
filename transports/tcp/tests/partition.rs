//! Partitions over real sockets: every directed link of a 3-node TCP
//! cluster runs through a fault-injecting `TcpProxy`. Clients record a
//! history while the leader is partitioned and healed, a minority is cut
//! off, and links turn slow and lossy; the history must be linearizable.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TcpNetwork;
use futures::future::join_all;
use raft_actors::core::{NodeId, Role};
use raft_actors::testing::{
    check_linearizable, History, Kv, KvCommand, OpKind, Outcome, ProxyFaults, TcpProxy, TestCluster,
};
use raft_actors::Consistency;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::info;

const T: Duration = Duration::from_secs(10);
const IDS: [NodeId; 3] = [1, 2, 3];
const CLIENTS: u64 = 6;
const OPS_PER_CLIENT: u64 = 30;
const KEYS: u64 = 3;

/// A proxy per directed link `(from, to)`.
struct Links(BTreeMap<(NodeId, NodeId), TcpProxy>);

impl Links {
    /// Cuts `id` off, both ways.
    fn isolate(&self, id: NodeId) {
        for ((a, b), p) in &self.0 {
            if *a == id || *b == id {
                p.cut();
            }
        }
    }
    /// Cuts only what `id` sends.
    fn mute(&self, id: NodeId) {
        for ((a, _), p) in &self.0 {
            if *a == id {
                p.cut();
            }
        }
    }
    fn set_all(&self, f: ProxyFaults) {
        self.0.values().for_each(|p| p.set(f));
    }
    fn heal(&self) {
        self.0.values().for_each(TcpProxy::heal);
    }
}

async fn proxied_cluster(seed: u64) -> (TestCluster<Kv>, Links) {
    common::init_logging();
    let mut net = TcpNetwork::bind(&IDS, seed);
    let mut links = BTreeMap::new();
    for a in IDS {
        for b in IDS.into_iter().filter(|b| *b != a) {
            let p = TcpProxy::start(net.addr(b), seed * 100 + a * 10 + b)
                .await
                .expect("proxy");
            net = net.route(a, b, p.addr());
            links.insert((a, b), p);
        }
    }
    let c = TestCluster::memory(3)
        .seed(seed)
        .apply(Kv::default)
        .network(net)
        .start()
        .await
        .expect("cluster starts");
    (c, Links(links))
}

/// Waits until `done` reaches `n` (clients' progress, not a clock).
async fn ops_done(done: &AtomicU64, n: u64) {
    let deadline = tokio::time::Instant::now() + T * 3;
    while done.load(Ordering::Relaxed) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "clients stalled below {n} ops"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Clients issuing reads and writes on random nodes, recorded in `history`.
async fn clients(c: Arc<TestCluster<Kv>>, history: History, done: Arc<AtomicU64>, seed: u64) {
    let value = Arc::new(AtomicU64::new(1));
    join_all((0..CLIENTS).map(|client| {
        let (c, history, done, value) = (
            Arc::clone(&c),
            history.clone(),
            Arc::clone(&done),
            Arc::clone(&value),
        );
        async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + client);
            for _ in 0..OPS_PER_CLIENT {
                let node = rng.gen_range(1..=3);
                let raft = c
                    .raft(node)
                    .clone()
                    .with_timeout(Duration::from_millis(800));
                let key = rng.gen_range(0..KEYS);
                if rng.gen_bool(0.5) {
                    let v = value.fetch_add(1, Ordering::Relaxed);
                    let op = history.invoke(client, key, OpKind::Write(v));
                    match raft.propose(KvCommand::Put { key, value: v }).await {
                        Ok(_) => history.ok(op, None),
                        Err(e) => history.error(op, &e),
                    }
                } else {
                    let op = history.invoke(client, key, OpKind::Read);
                    match raft.read(key, Consistency::Linearizable).await {
                        Ok(v) => history.ok(op, v),
                        Err(e) => history.error(op, &e),
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
    .await;
}

fn check(history: &History, seed: u64) {
    let ops = history.ops();
    let ok = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .count();
    info!(seed, ops = ops.len(), ok, "--- check the history");
    assert!(
        ok > ops.len() / 4,
        "too few successes ({ok} of {}) to mean anything",
        ops.len()
    );
    if let Err(e) = check_linearizable(&ops) {
        panic!("seed {seed}: not linearizable: {e}\n{e:#?}");
    }
}

#[actix_rt::test]
async fn partitioned_leader_minority_and_lossy_links_keep_the_history_linearizable() {
    let seed = 21;
    let (c, links) = proxied_cluster(seed).await;
    let c = Arc::new(c);
    let old = c.wait_for_leader(T).await.expect("first leader");
    let history = History::new();
    let done = Arc::new(AtomicU64::new(0));
    let total = CLIENTS * OPS_PER_CLIENT;

    let script = {
        let c = Arc::clone(&c);
        let done = Arc::clone(&done);
        async move {
            ops_done(&done, total / 6).await;
            info!(old, "--- partition the leader");
            links.isolate(old);
            let new = c
                .wait_for_leader_except(&[old], T)
                .await
                .expect("the majority elects a new leader");
            ops_done(&done, total / 3).await;
            info!(new, "--- heal: the old leader follows the new one");
            links.heal();
            c.wait_until("old leader rejoins", T, |m| {
                m[&old].role == Role::Follower && m[&old].leader == m[&new].leader
            })
            .await
            .expect("old leader rejoins");
            ops_done(&done, total / 2).await;
            let leader = c.wait_for_leader(T).await.expect("leader");
            let minority = IDS.into_iter().find(|i| *i != leader).expect("a follower");
            info!(minority, "--- partition a minority");
            links.isolate(minority);
            ops_done(&done, total * 2 / 3).await;
            info!("--- heal; slow, lossy links");
            links.set_all(ProxyFaults {
                cut: false,
                delay: Duration::from_millis(1),
                drop: 0.01,
            });
            ops_done(&done, total * 5 / 6).await;
            info!("--- heal everything");
            links.heal();
            links
        }
    };
    let (_, links) = futures::join!(
        clients(Arc::clone(&c), history.clone(), Arc::clone(&done), seed),
        script
    );
    let dropped: u64 = links.0.values().map(|p| p.stats().dropped).sum();
    let cut: u64 = links.0.values().map(|p| p.stats().cut).sum();
    info!(dropped, cut, "--- proxy faults injected");
    assert!(cut > 0, "the partitions cut connections");
    check(&history, seed);
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_leader_cut_one_way_is_replaced_and_then_follows() {
    let (c, links) = proxied_cluster(22).await;
    let old = c.wait_for_leader(T).await.expect("leader");
    let old_term = c.raft(old).current().term;
    info!(
        old,
        "--- cut what the leader sends; it still hears the others"
    );
    links.mute(old);
    let new = c
        .wait_for_leader_except(&[old], T)
        .await
        .expect("followers that stop hearing the leader elect another");
    assert!(c.raft(new).current().term > old_term);
    info!("--- the old leader hears the new term and steps down");
    c.wait_until("old steps down", T, |m| m[&old].role != Role::Leader)
        .await
        .expect("old leader steps down");
    links.heal();
    let out = c
        .raft(new)
        .propose(KvCommand::Put { key: 1, value: 1 })
        .await;
    let leader = c.wait_for_leader(T).await.expect("a leader after healing");
    if out.is_err() {
        // Leadership may have moved once more while healing; write there.
        c.raft(leader)
            .propose(KvCommand::Put { key: 1, value: 1 })
            .await
            .expect("write after healing");
    }
    let index = c.raft(leader).current().commit;
    c.wait_all_applied(index, T).await.expect("all catch up");
    c.shutdown().await;
}
