//! Actor clusters on redb (over the memory network): group commit under
//! load, restarts that restore the snapshot and replay the tail, a full
//! close and reopen of every file, and a lagging follower caught up by
//! InstallSnapshot that stores what it received.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use raft_actors::core::{Config, NodeId};
use raft_actors::node::NodeConfig;
use raft_actors::storage::Storage;
use raft_actors::testing::{cases::T, Kv, KvCommand, TestCluster, TypedBuilder};
use raft_actors::Consistency;
use raft_actors_storage_redb::{RedbStorage, SNAPSHOT_DIR};

type Opened = Arc<Mutex<BTreeMap<NodeId, RedbStorage>>>;

/// A cluster builder whose node `id` keeps its log in `root/id`; every
/// store opened is also kept in the returned map (a clone, to inspect).
fn on_redb(size: u64, cfg: NodeConfig, root: &Path) -> (TypedBuilder<Kv>, Opened) {
    let opened: Opened = Arc::default();
    let keep = Arc::clone(&opened);
    let root: PathBuf = root.to_path_buf();
    let b = TestCluster::memory(size)
        .seed(3)
        .config(cfg)
        .apply(Kv::default)
        .storage(move |id, membership| {
            let mut s = RedbStorage::open(root.join(id.to_string())).expect("open the store");
            if s.is_fresh() {
                s.bootstrap(membership.clone()).expect("bootstrap");
            }
            keep.lock().expect("lock").insert(id, s.clone());
            Box::new(s)
        });
    (b, opened)
}

/// How many temporary and named snapshot files `dir` holds.
fn snapshot_files(dir: &Path) -> (usize, usize) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .expect("the snapshot dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let count = |ext: &str| names.iter().filter(|n| n.ends_with(ext)).count();
    (count(".tmp"), count(".snap"))
}

fn store(opened: &Opened, id: NodeId) -> RedbStorage {
    opened.lock().expect("lock")[&id].clone()
}

fn put(key: u64, value: u64) -> KvCommand {
    KvCommand::Put { key, value }
}

/// Asserts that a read on node `id` finds `key + offset` for each key.
async fn assert_holds(
    c: &raft_actors::testing::TestCluster<Kv>,
    id: NodeId,
    keys: &[u64],
    offset: u64,
    consistency: Consistency,
) {
    for &key in keys {
        let v = c.raft(id).read(key, consistency).await.expect("read");
        assert_eq!(v, Some(key + offset), "key {key} on node {id}");
    }
}

/// Writes through whichever node leads, again if leadership moved under
/// the write (a put is idempotent, so a retry of one that did apply is
/// harmless); answers its index.
async fn write(c: &raft_actors::testing::TestCluster<Kv>, cmd: KvCommand) -> u64 {
    let deadline = Instant::now() + T;
    loop {
        let leader = c.wait_for_leader(T).await.expect("a leader");
        match c.raft(leader).propose(cmd.clone()).await {
            Ok(applied) => return applied.index,
            Err(e) => assert!(Instant::now() < deadline, "write {cmd:?}: {e}"),
        }
    }
}

#[actix_rt::test]
async fn concurrent_proposals_share_fsyncs_and_no_ready_takes_two() {
    let dir = tempfile::tempdir().expect("dir");
    // Long election timeouts (2 to 4 s): the counts below are the
    // leader's, and a starved CI machine must not move leadership
    // mid-burst. Group commit does not depend on them.
    let cfg = NodeConfig {
        core: Config {
            election_ticks: 200,
            ..Config::default()
        },
        ..NodeConfig::default()
    };
    let (b, opened) = on_redb(3, cfg, dir.path());
    let c = b.start().await.expect("cluster");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let before = store(&opened, leader).stats();

    let writes = join_all((0..256u64).map(|k| c.raft(leader).propose(put(k, k)))).await;
    let last = writes
        .into_iter()
        .map(|w| w.expect("write").index)
        .max()
        .expect("writes");
    c.wait_all_applied(last, T).await.expect("applied");

    let after = store(&opened, leader).stats();
    let fsyncs = after.fsyncs - before.fsyncs;
    let entries = after.entries - before.entries;
    assert!(entries >= 256, "the leader wrote every entry: {entries}");
    assert!(
        fsyncs * 8 <= entries,
        "group commit: {entries} entries took {fsyncs} fsyncs"
    );
    // The node publishes the store's counts: at most one fsync per Ready
    // (the store's extra commit is the bootstrap's; writes that only move
    // the commit index skip the fsync).
    let m = c.raft(leader).current();
    assert_eq!(
        m.fsyncs,
        Some(after.fsyncs),
        "the node shows the store's fsyncs"
    );
    assert!(
        m.storage_writes + 1 >= after.fsyncs,
        "one fsync per Ready at most"
    );
    assert_eq!(m.entries_persisted, after.entries);
    let ratio = m.entries_per_fsync().expect("redb counts fsyncs");
    assert!(ratio > 4.0, "entries per fsync: {ratio}");
    c.shutdown().await;
}

#[actix_rt::test]
async fn restarts_restore_the_snapshot_and_replay_the_tail_even_after_a_full_close() {
    let dir = tempfile::tempdir().expect("dir");
    let (b, opened) = on_redb(
        3,
        raft_actors::testing::cases::snapshot_config_every(20, 5),
        dir.path(),
    );
    let c = b.start().await.expect("cluster");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let mut last = 0;
    for key in 0..50 {
        last = write(&c, put(key, key + 1000)).await;
    }
    c.wait_all_applied(last, T).await.expect("applied");

    // On disk: a snapshot, the log compacted up to it but for the trailing
    // entries, and the tail after it.
    let deadline = Instant::now() + T;
    let mut poll = actix_rt::time::interval(Duration::from_millis(5));
    let follower = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("follower");
    let state = loop {
        poll.tick().await;
        let state = store(&opened, follower).load().await.expect("load");
        let snap = state.snapshot.as_ref().map_or(0, |s| s.meta.index);
        if snap >= 40
            && state
                .entries
                .first()
                .is_some_and(|e| e.index + 5 <= snap + 1)
        {
            break state;
        }
        assert!(Instant::now() < deadline, "no snapshot on disk: {state:?}");
    };
    assert_eq!(state.last_index(), last, "the tail is on disk");
    assert!(
        state.entries.first().expect("entries").index > 1,
        "the log was compacted"
    );

    // A crash and restart: the node reloads through its store (the same
    // open handle, so redb's view of the file); the full close below
    // reopens the files themselves.
    c.crash(follower).await;
    c.restart(follower).await.expect("restart");
    c.wait_all_applied(last, T)
        .await
        .expect("applied after restart");
    assert_holds(&c, follower, &[0, 25, 49], 1000, Consistency::Stale).await;

    // A full close: every node gone, every file closed, then a new cluster
    // on the same dirs.
    c.shutdown().await;
    drop(c);
    opened.lock().expect("lock").clear();
    raft_actors::testing::cases::wait_reopenable(1..=3, |id| {
        RedbStorage::open(dir.path().join(id.to_string())).map(drop)
    })
    .await;
    let (b, _reopened) = on_redb(
        3,
        raft_actors::testing::cases::snapshot_config_every(20, 5),
        dir.path(),
    );
    let c = b.start().await.expect("cluster again");
    let leader = c.wait_for_leader(T).await.expect("leader again");
    let keys: Vec<u64> = (0..50).collect();
    assert_holds(&c, leader, &keys, 1000, Consistency::Linearizable).await;
    let more = write(&c, put(99, 1)).await;
    assert!(more > last, "the log goes on after the old one");
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_lagging_follower_installs_the_leaders_snapshot_on_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let (b, opened) = on_redb(
        3,
        raft_actors::testing::cases::snapshot_config_every(20, 0),
        dir.path(),
    );
    let c = b.start().await.expect("cluster");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("follower");
    c.crash(lagging).await;
    let mut last = 0;
    for key in 0..60 {
        last = write(&c, put(key, key + 100)).await;
    }
    let before = store(&opened, lagging).load().await.expect("load");
    assert!(
        before.snapshot.is_none(),
        "the follower had no snapshot yet"
    );
    c.restart(lagging).await.expect("restart");
    c.wait_all_applied(last, T).await.expect("caught up");
    let after = store(&opened, lagging).load().await.expect("load");
    let snap = after.snapshot.expect("the follower stored the snapshot");
    assert!(snap.meta.index >= 40, "snapshot at {}", snap.meta.index);
    assert!(
        after.hard_state.commit >= snap.meta.index,
        "an installed snapshot is committed"
    );
    assert_holds(&c, lagging, &[0, 30, 59], 100, Consistency::Stale).await;
    c.shutdown().await;
}

/// The memory network, with a switch that stalls every InstallSnapshot
/// transfer after its first chunk, and a count of the chunks followers
/// acknowledged short of the end (proof that a transfer is half done).
#[derive(Clone)]
struct StallingNetwork {
    inner: raft_actors::transport::MemoryNetwork,
    stall: Arc<std::sync::atomic::AtomicBool>,
    partial_acks: Arc<std::sync::atomic::AtomicU64>,
}

struct StallingTransport {
    inner: raft_actors::transport::MemoryTransport,
    net: StallingNetwork,
}

impl raft_actors::transport::Transport for StallingTransport {
    fn send(
        &self,
        to: NodeId,
        mut messages: Vec<raft_actors::core::Message>,
    ) -> Result<(), raft_actors::transport::TransportError> {
        use raft_actors::core::Body;
        use std::sync::atomic::Ordering;
        let stall = self.net.stall.load(Ordering::SeqCst);
        messages.retain(|m| match &m.body {
            Body::InstallSnapshot { offset, .. } => !(stall && *offset > 0),
            Body::SnapshotResponse {
                next_offset, done, ..
            } => {
                if *next_offset > 0 && !*done {
                    self.net.partial_acks.fetch_add(1, Ordering::SeqCst);
                }
                true
            }
            _ => true,
        });
        self.inner.send(to, messages)
    }
}

impl raft_actors::testing::ClusterNetwork for StallingNetwork {
    fn transport(
        &mut self,
        id: NodeId,
        _ids: &[NodeId],
    ) -> Box<dyn raft_actors::transport::Transport> {
        Box::new(StallingTransport {
            inner: self.inner.transport(id),
            net: self.clone(),
        })
    }
    fn register(&mut self, id: NodeId, mailbox: actix::Recipient<raft_actors::transport::Peer>) {
        self.inner.register(id, mailbox);
    }
    fn unregister(&mut self, id: NodeId) {
        self.inner.unregister(id);
    }
}

/// A cluster on redb in `dir` where `lagging` missed 200 writes (values
/// `key + offset`) and is being sent a snapshot that stalls after its
/// first chunk, which it acknowledged.
struct HalfTransferred {
    c: raft_actors::testing::TestCluster<Kv>,
    net: StallingNetwork,
    opened: Opened,
    leader: NodeId,
    lagging: NodeId,
    last: u64,
    /// What the lagging node had stored before the transfer began.
    before: raft_actors::storage::LogState,
}

async fn half_transferred(dir: &Path, seed: u64, offset: u64) -> HalfTransferred {
    use std::sync::atomic::Ordering;
    let net = StallingNetwork {
        inner: raft_actors::transport::MemoryNetwork::new(seed),
        stall: Arc::default(),
        partial_acks: Arc::default(),
    };
    let (b, opened) = on_redb(
        3,
        raft_actors::testing::cases::snapshot_config_every(20, 0),
        dir,
    );
    let c = b.network(net.clone()).start().await.expect("cluster");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("follower");
    let mut last = 0;
    for key in 0..5 {
        last = write(&c, put(key, 1)).await;
    }
    c.wait_all_applied(last, T).await.expect("applied");
    c.crash(lagging).await;
    for key in 0..200 {
        last = write(&c, put(key, key + offset)).await;
    }
    let before = store(&opened, lagging).load().await.expect("load");
    assert!(before.snapshot.is_none(), "no snapshot before the transfer");

    tracing::info!("--- the transfer stalls after its first chunk");
    net.stall.store(true, Ordering::SeqCst);
    c.restart(lagging).await.expect("restart");
    let deadline = Instant::now() + T;
    let mut poll = actix_rt::time::interval(Duration::from_millis(2));
    while net.partial_acks.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no chunk was ever acknowledged");
        poll.tick().await;
    }
    HalfTransferred {
        c,
        net,
        opened,
        leader,
        lagging,
        last,
        before,
    }
}

#[actix_rt::test]
async fn a_crash_in_the_middle_of_a_snapshot_transfer_leaves_the_old_state_intact() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().expect("dir");
    tracing::info!("--- the follower crashes mid-way");
    let HalfTransferred {
        c,
        net,
        opened,
        lagging,
        last,
        before: old,
        ..
    } = half_transferred(dir.path(), 5, 7).await;
    c.crash(lagging).await;
    let after = store(&opened, lagging)
        .load()
        .await
        .expect("load after the crash");
    assert_eq!(after.snapshot, old.snapshot, "no half snapshot on disk");
    assert_eq!(after.entries, old.entries, "the old log is intact");
    assert_eq!(after.membership, old.membership);
    let files = dir.path().join(lagging.to_string()).join(SNAPSHOT_DIR);
    let (tmp, snap) = snapshot_files(&files);
    assert_eq!(
        (tmp, snap),
        (1, 0),
        "the received chunks are in a temporary file, unnamed"
    );

    tracing::info!("--- the transfer resumes from scratch and completes");
    net.stall.store(false, Ordering::SeqCst);
    c.restart(lagging).await.expect("restart again");
    c.wait_all_applied(last, T).await.expect("caught up");
    let done = store(&opened, lagging).load().await.expect("load");
    assert!(done.snapshot.is_some(), "the snapshot was installed");
    assert_eq!(
        snapshot_files(&files),
        (0, 1),
        "the partial file was deleted at open; the transfer started over and named its file"
    );
    assert_holds(&c, lagging, &[0, 199], 7, Consistency::Stale).await;
    c.shutdown().await;
}

/// The leader keeps no payload of an applied entry in memory: what a
/// lagging follower missed is read back from the redb file.
#[actix_rt::test]
async fn a_lagging_follower_catches_up_from_entries_read_back_from_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let (b, _) = on_redb(
        3,
        raft_actors::testing::cases::no_log_cache_config(),
        dir.path(),
    );
    raft_actors::testing::cases::lagging_follower_catches_up_from_entries_read_back(b).await;
}

/// The sender's side of the choice that transfers restart cleanly: the
/// leader crashes with a transfer half done; the new leader sends its own
/// snapshot from byte 0, which replaces the half-received file, and the
/// follower installs it whole.
#[actix_rt::test]
async fn a_leader_crash_in_the_middle_of_a_snapshot_transfer_starts_it_over_from_the_new_leader() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().expect("dir");
    tracing::info!("--- the leader crashes mid-way");
    let HalfTransferred {
        c,
        net,
        opened,
        leader,
        lagging,
        last,
        ..
    } = half_transferred(dir.path(), 6, 9).await;
    // Checked before the crash: once another node leads, its first chunk
    // may be replacing the file (delete, then create) as this looks.
    let files = dir.path().join(lagging.to_string()).join(SNAPSHOT_DIR);
    assert_eq!(
        snapshot_files(&files),
        (1, 0),
        "the chunks received so far are in a temporary file"
    );
    c.crash(leader).await;
    let half = store(&opened, lagging).load().await.expect("load");
    assert!(
        half.snapshot.is_none(),
        "nothing installed from half a snapshot"
    );

    tracing::info!("--- the new leader starts its own transfer from byte 0");
    net.stall.store(false, Ordering::SeqCst);
    c.wait_until("the follower caught up from the new leader", T, |m| {
        m.get(&lagging).is_some_and(|m| m.applied >= last)
    })
    .await
    .expect("caught up");
    let new_leader = c.wait_for_leader(T).await.expect("a new leader");
    assert_ne!(new_leader, leader);
    let done = store(&opened, lagging).load().await.expect("load");
    assert!(
        done.snapshot.is_some(),
        "the new leader's snapshot was installed"
    );
    assert_eq!(
        snapshot_files(&files),
        (0, 1),
        "the half-received file was replaced, and the whole one named"
    );
    assert_holds(&c, lagging, &[0, 199], 9, Consistency::Stale).await;

    c.restart(leader).await.expect("the old leader comes back");
    c.wait_all_applied(last, T).await.expect("all caught up");
    c.shutdown().await;
}
