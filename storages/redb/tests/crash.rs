//! Crash safety at process level: a 3-node cluster on redb (then on the
//! append-only log storage) over TCP, one process per node, killed with
//! SIGKILL at random moments (one node, a majority, or all at once) and
//! restarted, round after round, while
//! clients write. Checked: every acknowledged write is there at the end,
//! no node's term or vote ever goes backwards (so no node votes twice in
//! a term), and the cluster takes writes again after every round.
//!
//! `cargo test -p raft-actors-storage-redb --test crash` runs 50 rounds on
//! redb, then 50 on the append-only log storage (`raft-actors-storage-wal`);
//! `CRASH_ROUNDS=500` more, `CRASH_SEED=7` another kill pattern,
//! `CRASH_STORAGE=redb` or `wal` only one. The test binary is also the
//! node: it re-executes itself with `CRASH_NODE` set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use raft_actors::apply::Apply;
use raft_actors::core::{Config, HardState, Membership, NodeId};
use raft_actors::node::NodeConfig;
use raft_actors::storage::{LogState, Storage, StorageError, ToPersist};
use raft_actors::testing::{Kv, KvCommand};
use raft_actors::{Consistency, Raft};
use raft_actors_storage_redb::RedbStorage;
use raft_actors_storage_wal::WalStorage;
use raft_actors_transport_tcp::{TcpConfig, TcpTransport};
use rand::{Rng, SeedableRng};

const NODES: u64 = 3;
const CLUSTER_ID: u64 = 0xc2a5;

fn main() {
    if std::env::var_os("CRASH_NODE").is_some() {
        node_main();
    } else {
        orchestrate();
    }
}

// ---------------------------------------------------------------- the node

/// Settings a node process takes from its environment.
struct NodeArgs {
    id: NodeId,
    dir: PathBuf,
    raft: BTreeMap<NodeId, SocketAddr>,
    client: SocketAddr,
}

fn env_parse<T: std::str::FromStr>(key: &str) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} missing or malformed"))
}

/// Reports every hard state it made durable on stdout (`HS term vote`),
/// and the one it loaded (`LOADED term vote`), for the orchestrator's
/// term and vote checks. A line goes out only after the write returned.
struct Reporting(Box<dyn Storage>);

fn report(tag: &str, hs: &HardState) {
    println!("{tag} {} {}", hs.term, hs.vote.unwrap_or(0));
}

#[async_trait]
impl Storage for Reporting {
    fn snapshots(&self) -> raft_actors::storage::SharedSnapshots {
        self.0.snapshots()
    }
    async fn load(&mut self) -> Result<LogState, StorageError> {
        let state = self.0.load().await?;
        report("LOADED", &state.hard_state);
        Ok(state)
    }
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let hs = batch.hard_state;
        let snapshot = batch
            .snapshot
            .as_ref()
            .map(|s| (s.meta.index, batch.snapshot_received));
        self.0.write(batch).await?;
        if let Some(hs) = hs {
            report("HS", &hs);
        }
        match snapshot {
            Some((index, true)) => println!("SNAP installed {index}"),
            Some((index, false)) => println!("SNAP taken {index}"),
            None => {}
        }
        Ok(())
    }
}

fn node_main() {
    let args = NodeArgs {
        id: env_parse("CRASH_NODE"),
        dir: PathBuf::from(env_parse::<String>("CRASH_DIR")),
        raft: (1..=NODES)
            .map(|id| (id, env_parse(&format!("CRASH_RAFT_{id}"))))
            .collect(),
        client: env_parse("CRASH_CLIENT"),
    };
    let sys = actix::System::new();
    sys.block_on(async move {
        if let Err(e) = run_node(args).await {
            eprintln!("crash node: {e}");
            std::process::exit(2);
        }
        futures::future::pending::<()>().await;
    });
}

async fn run_node(args: NodeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let storage: Box<dyn Storage> = match env_parse::<String>("CRASH_STORAGE").as_str() {
        "wal" => {
            let mut s = WalStorage::open(&args.dir)?;
            if s.is_fresh() {
                s.bootstrap(Membership::voters(1..=NODES))?;
            }
            Box::new(s)
        }
        _ => {
            let mut s = RedbStorage::open(&args.dir)?;
            if s.is_fresh() {
                s.bootstrap(Membership::voters(1..=NODES))?;
            }
            Box::new(s)
        }
    };
    let mut tcp = TcpConfig::new(args.id, CLUSTER_ID, args.raft.clone());
    tcp.backoff_max = Duration::from_millis(50);
    let transport = TcpTransport::new(tcp)?;
    let cfg = NodeConfig {
        core: Config {
            // Snapshots, compaction and InstallSnapshot happen often, so
            // kills land in the middle of them too.
            snapshot_threshold: 40,
            trailing_logs: 10,
            snapshot_chunk_bytes: 256,
            ..Config::default()
        },
        seed: args.id,
        ..NodeConfig::default()
    };
    let apply: raft_actors::node::ApplyFactory<Kv> =
        Arc::new(|| Box::new(Kv::default()) as Box<dyn Apply<Kv>>);
    let raft = Raft::start(
        args.id,
        cfg,
        Box::new(Reporting(storage)),
        Box::new(transport.clone()),
        apply,
    )
    .with_timeout(Duration::from_secs(2));
    transport.serve(
        TcpListener::bind(args.raft[&args.id])?,
        raft.addr().clone().recipient(),
    )?;
    let clients = tokio::net::TcpListener::bind(args.client).await?;
    println!("READY");
    actix_rt::spawn(async move {
        while let Ok((conn, _)) = clients.accept().await {
            actix_rt::spawn(serve_client(conn, raft.clone()));
        }
    });
    Ok(())
}

/// One line in, one line out: `PUT k v` → `OK index`, `GET k`
/// (linearizable) or `SGET k` (this node's state) → `VAL v` or `NONE`,
/// `APPLIED` → `APPLIED index`; failures → `ERR reason`.
async fn serve_client(conn: tokio::net::TcpStream, raft: Raft<Kv>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (rd, mut wr) = conn.into_split();
    let mut lines = tokio::io::BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["PUT", k, v] => match (k.parse(), v.parse()) {
                (Ok(key), Ok(value)) => match raft.propose(KvCommand::Put { key, value }).await {
                    Ok(applied) => format!("OK {}", applied.index),
                    Err(e) => format!("ERR {e}"),
                },
                _ => "ERR bad numbers".into(),
            },
            ["APPLIED"] => format!("APPLIED {}", raft.current().applied),
            [get @ ("GET" | "SGET"), k] => match k.parse() {
                Ok(key) => match raft
                    .read(
                        key,
                        if *get == "GET" {
                            Consistency::Linearizable
                        } else {
                            Consistency::Stale
                        },
                    )
                    .await
                {
                    Ok(Some(v)) => format!("VAL {v}"),
                    Ok(None) => "NONE".into(),
                    Err(e) => format!("ERR {e}"),
                },
                Err(_) => "ERR bad key".into(),
            },
            _ => "ERR unknown command".into(),
        };
        if wr
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
}

// -------------------------------------------------------- the orchestrator

struct Proc {
    child: Child,
    reader: JoinHandle<()>,
}

struct Cluster {
    dirs: BTreeMap<NodeId, PathBuf>,
    raft: BTreeMap<NodeId, SocketAddr>,
    client: BTreeMap<NodeId, SocketAddr>,
    procs: BTreeMap<NodeId, Proc>,
    lines: mpsc::Sender<(NodeId, String)>,
    /// `redb` or `wal`, for the node processes.
    storage: String,
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

impl Cluster {
    fn start(&mut self, id: NodeId) {
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.env("CRASH_NODE", id.to_string())
            .env("CRASH_DIR", &self.dirs[&id])
            .env("CRASH_CLIENT", self.client[&id].to_string())
            .env("CRASH_STORAGE", &self.storage)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (peer, addr) in &self.raft {
            cmd.env(format!("CRASH_RAFT_{peer}"), addr.to_string());
        }
        let mut child = cmd.spawn().expect("spawn a node");
        let out = child.stdout.take().expect("stdout");
        let lines = self.lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if lines.send((id, line)).is_err() {
                    break;
                }
            }
        });
        self.procs.insert(id, Proc { child, reader });
    }

    /// SIGKILL to every victim first (at once, as a power cut would),
    /// then waits for each process and the last of its output. A victim
    /// that had already exited on its own fails the test: a node must not
    /// die, or refuse to start, by itself.
    fn kill(&mut self, ids: &[NodeId]) {
        let mut victims = Vec::new();
        for id in ids {
            if let Some(mut p) = self.procs.remove(id) {
                if let Ok(Some(status)) = p.child.try_wait() {
                    panic!("node {id} exited on its own ({status}) before it was killed");
                }
                let _ = p.child.kill();
                victims.push(p);
            }
        }
        for mut p in victims {
            let _ = p.child.wait();
            let _ = p.reader.join();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.procs.values_mut() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// One request on a fresh connection, bounded by `timeout`.
fn request(addr: SocketAddr, line: &str, timeout: Duration) -> Option<String> {
    let mut conn = TcpStream::connect_timeout(&addr, timeout).ok()?;
    conn.set_read_timeout(Some(timeout)).ok()?;
    conn.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut answer = String::new();
    BufReader::new(conn).read_line(&mut answer).ok()?;
    Some(answer.trim().to_string())
}

/// What the nodes' stdout said about their hard states, checked as it
/// arrives: per node, terms never decrease, a vote never changes within a
/// term, and a restart loads nothing older than what was made durable.
#[derive(Default)]
struct Votes {
    last: BTreeMap<NodeId, (u64, u64)>,
    loads: u64,
    changes: u64,
    /// `READY` lines per node: a (re)started node serves.
    ready: BTreeMap<NodeId, u64>,
    snapshots_taken: u64,
    snapshots_installed: u64,
}

impl Votes {
    fn see(&mut self, id: NodeId, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["READY"] => *self.ready.entry(id).or_default() += 1,
            ["SNAP", "taken", _] => self.snapshots_taken += 1,
            ["SNAP", "installed", _] => self.snapshots_installed += 1,
            _ => {}
        }
        let (tag, term, vote) = match words.as_slice() {
            [tag @ ("HS" | "LOADED"), t, v] => (
                *tag,
                t.parse::<u64>().expect("term"),
                v.parse::<u64>().expect("vote"),
            ),
            _ => return,
        };
        let (last_term, last_vote) = self.last.get(&id).copied().unwrap_or((0, 0));
        assert!(
            term >= last_term,
            "node {id}: term went back from {last_term} to {term} ({line})"
        );
        if term == last_term && last_vote != 0 {
            assert_eq!(
                vote, last_vote,
                "node {id} voted twice in term {term}: for {last_vote}, then {vote} ({line})"
            );
        }
        if tag == "LOADED" {
            self.loads += 1;
        } else {
            self.changes += 1;
        }
        self.last.insert(id, (term, vote));
    }
}

fn orchestrate() {
    let storages = match std::env::var("CRASH_STORAGE") {
        Ok(one) => vec![one],
        Err(_) => vec!["redb".to_string(), "wal".to_string()],
    };
    for storage in storages {
        orchestrate_on(&storage);
    }
}

/// The rounds on one storage (`redb` or `wal`).
fn orchestrate_on(storage: &str) {
    let rounds: u64 = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let root = tempfile::tempdir().expect("temp dir");
    let (tx, lines) = mpsc::channel();
    let ids: Vec<NodeId> = (1..=NODES).collect();
    let mut cluster = Cluster {
        dirs: ids
            .iter()
            .map(|id| (*id, root.path().join(id.to_string())))
            .collect(),
        raft: ids.iter().map(|id| (*id, free_addr())).collect(),
        client: ids.iter().map(|id| (*id, free_addr())).collect(),
        procs: BTreeMap::new(),
        lines: tx,
        storage: storage.to_string(),
    };
    for id in &ids {
        cluster.start(*id);
    }
    let mut votes = Votes::default();
    wait_ready(&ids, &lines, &mut votes, 0);

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<JoinHandle<u64>> = (0..3u64)
        .map(|w| {
            let (acked, acks, stop) = (Arc::clone(&acked), Arc::clone(&acks), Arc::clone(&stop));
            let addrs: Vec<SocketAddr> = cluster.client.values().copied().collect();
            std::thread::spawn(move || write_until(w, &addrs, &stop, &acked, &acks))
        })
        .collect();

    let mut patterns = [0u64; 3];
    for round in 0..rounds {
        // A random moment: after a random number of further acknowledged
        // writes (which also proves the cluster took writes again).
        let target = acks.load(Ordering::SeqCst) + rng.gen_range(1..=25);
        wait_for_acks(&acks, target, &lines, &mut votes, round);
        let pattern = rng.gen_range(0..3usize);
        patterns[pattern] += 1;
        let mut victims = ids.clone();
        for i in (1..victims.len()).rev() {
            victims.swap(i, rng.gen_range(0..=i));
        }
        victims.truncate(pattern + 1);
        cluster.kill(&victims);
        drain(&lines, &mut votes);
        for id in &victims {
            cluster.start(*id);
        }
        wait_ready(&victims, &lines, &mut votes, round);
    }
    let target = acks.load(Ordering::SeqCst) + 5;
    wait_for_acks(&acks, target, &lines, &mut votes, rounds);
    stop.store(true, Ordering::SeqCst);
    let attempted: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();

    // Every acknowledged write must be there: read through the leader
    // (linearizable), and in every node's own state once it has applied
    // the last acknowledged index.
    let acked = acked.lock().expect("lock").clone();
    let addrs: Vec<SocketAddr> = cluster.client.values().copied().collect();
    for (n, a) in acked.iter().enumerate() {
        let answer = ask(addrs[n % addrs.len()], &format!("GET {}", a.key));
        assert_eq!(
            answer,
            format!("VAL {}", a.value),
            "acknowledged write {}={} (index {}) was lost",
            a.key,
            a.value,
            a.index
        );
    }
    let last = acked.iter().map(|a| a.index).max().unwrap_or(0);
    for (id, addr) in &cluster.client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let applied = ask(*addr, "APPLIED");
            let at: u64 = applied
                .strip_prefix("APPLIED ")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if at >= last {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} never applied {last}: {applied}"
            );
            std::thread::park_timeout(Duration::from_millis(5));
        }
        for a in &acked {
            assert_eq!(
                ask(*addr, &format!("SGET {}", a.key)),
                format!("VAL {}", a.value),
                "node {id} lacks acknowledged write {}={}",
                a.key,
                a.value
            );
        }
    }
    drain(&lines, &mut votes);
    assert!(
        votes.loads >= rounds,
        "every restart reported what it loaded"
    );
    assert!(
        votes.snapshots_taken > 0,
        "no snapshot was taken: the run did not exercise compaction"
    );
    println!(
        "crash test on {storage}: {rounds} rounds (one node {}, a majority {}, all {}), {} writes acknowledged of {attempted} attempted, all present on every node; {} hard states and {} loads checked; {} snapshots taken, {} installed",
        patterns[0],
        patterns[1],
        patterns[2],
        acked.len(),
        votes.changes,
        votes.loads,
        votes.snapshots_taken,
        votes.snapshots_installed
    );
    drop(cluster);
}

/// An acknowledged write.
#[derive(Clone, Copy, Debug)]
struct Acked {
    key: u64,
    value: u64,
    index: u64,
}

/// One request, retried (bounded) until the node answers it: for the final
/// checks, when every node is up.
fn ask(addr: SocketAddr, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match request(addr, line, Duration::from_secs(3)) {
            Some(a) if !a.starts_with("ERR") => return a,
            other => assert!(
                Instant::now() < deadline,
                "{addr} never answered {line}: {other:?}"
            ),
        }
        // A client's retry backoff, not a wait standing in for a condition.
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

/// Waits, bounded, until every node in `ids` said `READY` once more than
/// before this wait: each restarted node opened its store and serves.
fn wait_ready(
    ids: &[NodeId],
    lines: &mpsc::Receiver<(NodeId, String)>,
    votes: &mut Votes,
    round: u64,
) {
    let want: BTreeMap<NodeId, u64> = ids
        .iter()
        .map(|id| (*id, votes.ready.get(id).copied().unwrap_or(0) + 1))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while want
        .iter()
        .any(|(id, n)| votes.ready.get(id).copied().unwrap_or(0) < *n)
    {
        assert!(
            Instant::now() < deadline,
            "round {round}: nodes {ids:?} did not all start: ready {:?}",
            votes.ready
        );
        if let Ok((id, line)) = lines.recv_timeout(Duration::from_millis(20)) {
            votes.see(id, &line);
        }
    }
}

fn drain(lines: &mpsc::Receiver<(NodeId, String)>, votes: &mut Votes) {
    while let Ok((id, line)) = lines.try_recv() {
        votes.see(id, &line);
    }
}

/// Waits, bounded, until `acks` reaches `target`, checking the nodes'
/// reports meanwhile.
fn wait_for_acks(
    acks: &AtomicU64,
    target: u64,
    lines: &mpsc::Receiver<(NodeId, String)>,
    votes: &mut Votes,
    round: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "round {round}: the cluster took no writes for 60 s"
        );
        match lines.recv_timeout(Duration::from_millis(20)) {
            Ok((id, line)) => votes.see(id, &line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the cluster holds a sender"),
        }
    }
}

/// A writer: unique keys, round robin over the nodes; an acknowledged
/// write is recorded, a failed one is simply not (it may or may not have
/// been applied). Answers how many it attempted.
fn write_until(
    w: u64,
    addrs: &[SocketAddr],
    stop: &AtomicBool,
    acked: &Mutex<Vec<Acked>>,
    acks: &AtomicU64,
) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let key = (w << 40) | n;
        let value = key.wrapping_mul(7) + 1;
        let addr = addrs[((w + n) as usize) % addrs.len()];
        n += 1;
        match request(addr, &format!("PUT {key} {value}"), Duration::from_secs(3)) {
            Some(a) if a.starts_with("OK ") => {
                let index = a[3..].parse().expect("OK carries the index");
                acked
                    .lock()
                    .expect("lock")
                    .push(Acked { key, value, index });
                acks.fetch_add(1, Ordering::SeqCst);
            }
            // A client's retry backoff, not a wait for a condition: a
            // node that is down or has no leader yet answers at once, and
            // retrying in a hot loop would starve the restarting nodes
            // of the CPU they need to elect a leader.
            _ => std::thread::park_timeout(Duration::from_millis(5)),
        }
    }
    n
}
