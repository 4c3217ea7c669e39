//! Crash safety at process level: a 3-node cluster on redb over TCP, one
//! process per node, killed with SIGKILL at random moments (one node, a
//! majority, or all at once) and restarted, round after round, while
//! clients write. Checked: every acknowledged write is there at the end,
//! no node's term or vote ever goes backwards (so no node votes twice in
//! a term), and the cluster takes writes again after every round.
//!
//! `cargo test -p raft-actors-storage-redb --test crash` runs 50 rounds;
//! `CRASH_ROUNDS=500` more, `CRASH_SEED=7` another kill pattern. The test
//! binary is also the node: it re-executes itself with `CRASH_NODE` set.

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
use raft_actors::core::{Config, Entry, HardState, LogIndex, Membership, NodeId};
use raft_actors::node::NodeConfig;
use raft_actors::storage::{LogState, Snapshot, Storage, StorageError, ToPersist};
use raft_actors::testing::{Kv, KvCommand};
use raft_actors::{Consistency, Raft};
use raft_actors_storage_redb::RedbStorage;
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
struct Reporting(RedbStorage);

fn report(tag: &str, hs: &HardState) {
    println!("{tag} {} {}", hs.term, hs.vote.unwrap_or(0));
}

#[async_trait]
impl Storage for Reporting {
    async fn load(&mut self) -> Result<LogState, StorageError> {
        let state = self.0.load().await?;
        report("LOADED", &state.hard_state);
        Ok(state)
    }
    async fn append(&mut self, hs: Option<HardState>, e: Vec<Entry>) -> Result<(), StorageError> {
        self.0.append(hs, e).await?;
        if let Some(hs) = hs {
            report("HS", &hs);
        }
        Ok(())
    }
    async fn entries(&mut self, lo: LogIndex, hi: LogIndex) -> Result<Vec<Entry>, StorageError> {
        self.0.entries(lo, hi).await
    }
    async fn truncate(&mut self, from: LogIndex) -> Result<(), StorageError> {
        self.0.truncate(from).await
    }
    async fn save_membership(&mut self, m: Membership) -> Result<(), StorageError> {
        self.0.save_membership(m).await
    }
    async fn save_snapshot(&mut self, s: Snapshot) -> Result<(), StorageError> {
        self.0.save_snapshot(s).await
    }
    async fn install_snapshot(&mut self, s: Snapshot) -> Result<(), StorageError> {
        self.0.install_snapshot(s).await
    }
    async fn compact(&mut self, upto: LogIndex) -> Result<(), StorageError> {
        self.0.compact(upto).await
    }
    async fn write(&mut self, batch: ToPersist) -> Result<(), StorageError> {
        let hs = batch.hard_state;
        self.0.write(batch).await?;
        if let Some(hs) = hs {
            report("HS", &hs);
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
    let mut storage = RedbStorage::open(&args.dir)?;
    if storage.is_fresh() {
        storage.bootstrap(Membership::voters(1..=NODES))?;
    }
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

/// One line in, one line out: `PUT k v` → `OK index`, `GET k` → `VAL v` or
/// `NONE`; failures → `ERR reason`.
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
            ["GET", k] => match k.parse() {
                Ok(key) => match raft.read(key, Consistency::Linearizable).await {
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

    /// SIGKILL, then wait for the process and for the last of its output.
    fn kill(&mut self, id: NodeId) {
        if let Some(mut p) = self.procs.remove(&id) {
            let _ = p.child.kill();
            let _ = p.child.wait();
            let _ = p.reader.join();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<NodeId> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill(id);
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
}

impl Votes {
    fn see(&mut self, id: NodeId, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
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
    };
    for id in &ids {
        cluster.start(*id);
    }

    let acked: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<JoinHandle<u64>> = (0..3u64)
        .map(|w| {
            let (acked, acks, stop) = (Arc::clone(&acked), Arc::clone(&acks), Arc::clone(&stop));
            let addrs: Vec<SocketAddr> = cluster.client.values().copied().collect();
            std::thread::spawn(move || write_until(w, &addrs, &stop, &acked, &acks))
        })
        .collect();

    let mut votes = Votes::default();
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
        for id in &victims {
            cluster.kill(*id);
        }
        drain(&lines, &mut votes);
        for id in &victims {
            cluster.start(*id);
        }
    }
    let target = acks.load(Ordering::SeqCst) + 5;
    wait_for_acks(&acks, target, &lines, &mut votes, rounds);
    stop.store(true, Ordering::SeqCst);
    let attempted: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();

    // Every acknowledged write must be there.
    let acked = acked.lock().expect("lock").clone();
    let addrs: Vec<SocketAddr> = cluster.client.values().copied().collect();
    for (n, (key, value)) in acked.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = loop {
            let addr = addrs[n % addrs.len()];
            match request(addr, &format!("GET {key}"), Duration::from_secs(3)) {
                Some(a) if a.starts_with("VAL") || a == "NONE" => break a,
                other => assert!(
                    Instant::now() < deadline,
                    "no answer to a read of {key}: {other:?}"
                ),
            }
        };
        assert_eq!(
            answer,
            format!("VAL {value}"),
            "acknowledged write {key}={value} was lost"
        );
    }
    drain(&lines, &mut votes);
    assert!(
        votes.loads >= rounds,
        "every restart reported what it loaded"
    );
    println!(
        "crash test: {rounds} rounds (one node {}, a majority {}, all {}), {} writes acknowledged of {attempted} attempted, all present; {} hard states and {} loads checked",
        patterns[0],
        patterns[1],
        patterns[2],
        acked.len(),
        votes.changes,
        votes.loads
    );
    drop(cluster);
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
    acked: &Mutex<Vec<(u64, u64)>>,
    acks: &AtomicU64,
) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let key = (w << 40) | n;
        let value = key.wrapping_mul(7) + 1;
        let addr = addrs[((w + n) as usize) % addrs.len()];
        n += 1;
        match request(addr, &format!("PUT {key} {value}"), Duration::from_secs(3)) {
            Some(a) if a.starts_with("OK") => {
                acked.lock().expect("lock").push((key, value));
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
