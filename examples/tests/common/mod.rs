//! The black-box harness: start the real service binaries as processes on
//! loopback, talk to them over HTTP, wait for conditions with a deadline.
//!
//! Every process is killed when its guard drops, so a failing test leaves
//! nothing running. Waits poll a condition on an interval inside a
//! deadline; no test synchronizes on a fixed delay.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod groups;
pub use groups::*;

/// The storage the cluster tests run on.
pub const STORAGE: &str = "redb";
/// Raft tick of test nodes: elections in 200 to 400 ms.
pub const TICK_MS: &str = "20";
/// How long a test waits for any one condition.
pub const WAIT: Duration = Duration::from_secs(20);

pub const KV: &str = env!("CARGO_BIN_EXE_raft-kv");
pub const COUNTER: &str = env!("CARGO_BIN_EXE_raft-counter");
pub const QUEUE: &str = env!("CARGO_BIN_EXE_raft-queue");
pub const SET: &str = env!("CARGO_BIN_EXE_raft-set");

/// A port free right now on loopback, below the ephemeral range (Linux:
/// 32768 and up): a port picked from that range could be taken by one of
/// the nodes' own outgoing connections before the node binds it.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = u64::from(std::process::id()) * 131;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((base + n) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "raft-examples-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running process, killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub stderr_path: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends SIGTERM and waits for the exit, up to `within`.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + within;
        wait_until(deadline, "the process to exit", || {
            self.child.try_wait().ok().flatten()
        })
        .ok()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `bin` with `args`, stderr to a file in `dir`.
pub fn spawn(bin: &str, args: &[String], dir: &Path, tag: &str) -> Proc {
    let stderr_path = dir.join(format!("{tag}.stderr"));
    let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
    let child = Command::new(bin)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn the service binary");
    Proc { child, stderr_path }
}

/// Polls `f` every 20 ms until it answers `Some`, or `deadline` passes.
pub fn wait_until<T>(
    deadline: Instant,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let (_keep, tick) = std::sync::mpsc::channel::<()>();
    loop {
        if let Some(t) = f() {
            return Ok(t);
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        // The poll interval: the channel never receives, so this waits
        // out the interval inside the deadline loop.
        let _ = tick.recv_timeout(Duration::from_millis(20));
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    agent_within(Duration::from_secs(60))
}

/// An agent whose every request gives up after `timeout`.
pub fn agent_within(timeout: Duration) -> ureq::Agent {
    let mut agent = ureq::AgentBuilder::new().timeout(timeout);
    // Once a test of this binary made secure clusters, every request may
    // be https: trust their CA and present the client certificate.
    if let Some(files) = SECURE.get() {
        agent = agent.tls_config(files.client.config());
    }
    agent.build()
}

/// The TLS files of every secure cluster of a test binary: one CA, a
/// certificate for nodes 1 to 9 (naming `node-<id>`, localhost and
/// 127.0.0.1, used for the peer transport and the client API alike), a
/// client certificate, and the admin token.
pub struct SecureFiles {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub token_file: PathBuf,
    pub client: raft_actors_tls::ClientTrust,
}

/// The admin token of secure clusters.
pub const SECURE_TOKEN: &str = "9c4e2a7f1b3d5e8a0c6f4b2d9e1a7c3f";

static SECURE: std::sync::OnceLock<SecureFiles> = std::sync::OnceLock::new();

/// The secure clusters' files, made on first use (under the temp dir,
/// kept for the process's life).
pub fn secure_files() -> &'static SecureFiles {
    SECURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("raft-examples-tls-{}", std::process::id()));
        let ids: Vec<u64> = (1..=9).collect();
        let files = raft_actors_tls::generate::write_cluster(&dir, &ids)
            .expect("write the test certificates");
        let token_file = dir.join("admin.token");
        std::fs::write(&token_file, format!("{SECURE_TOKEN}\n")).expect("write the token");
        // A client certificate needs only to chain to the CA: the first
        // node's serves.
        let (_, client_cert, client_key) = files.nodes[0].clone();
        let client = raft_actors_tls::ClientTrust::load(
            &[files.ca.as_path()],
            Some((client_cert.as_path(), client_key.as_path())),
        )
        .expect("the client's TLS");
        SecureFiles {
            dir,
            ca: files.ca,
            client_cert,
            client_key,
            token_file,
            client,
        }
    })
}

/// The flags of node `id` of a secure cluster: mutual TLS between nodes,
/// the client API over HTTPS requiring client certificates, the token.
pub fn secure_flags(id: u64) -> Vec<String> {
    let f = secure_files();
    let cert = f.dir.join(format!("node-{id}.pem")).display().to_string();
    let key = f
        .dir
        .join(format!("node-{id}-key.pem"))
        .display()
        .to_string();
    let ca = f.ca.display().to_string();
    [
        ("--peer-tls-cert", &cert),
        ("--peer-tls-key", &key),
        ("--peer-tls-ca", &ca),
        ("--client-tls-cert", &cert),
        ("--client-tls-key", &key),
        ("--client-tls-ca", &ca),
    ]
    .into_iter()
    .flat_map(|(flag, v)| [flag.to_string(), v.clone()])
    .chain([
        "--admin-token-file".to_string(),
        f.token_file.display().to_string(),
    ])
    .collect()
}

/// Sends one request; `None` if the connection failed.
pub fn try_request(
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Option<Answer> {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let res = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(_)) => return None,
    };
    let status = resp.status();
    let mut body = Vec::new();
    resp.into_reader()
        .take(64 << 20)
        .read_to_end(&mut body)
        .ok()?;
    Some(Answer { status, body })
}

/// Sends one request; panics if the connection fails.
pub fn request_once(
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Answer {
    try_request(method, url, body, headers)
        .unwrap_or_else(|| panic!("{method} {url}: connection failed"))
}

/// Sends a request, and again while it is answered 503 (nothing was
/// applied: an election under way, say, on a loaded machine), for up to
/// [`WAIT`]; answers the last answer.
pub fn request(method: &str, url: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Answer {
    let mut last = None;
    let answer = wait_until(Instant::now() + WAIT, "an answer other than 503", || {
        let a = request_once(method, url, body, headers);
        if a.status == 503 {
            last = Some(a);
            None
        } else {
            Some(a)
        }
    });
    answer.unwrap_or_else(|_| last.expect("at least one answer"))
}

/// Asserts the reference's error body: JSON with `error` and `leader`.
pub fn assert_error_body(a: &Answer, status: u16) -> Value {
    assert_eq!(a.status, status, "body: {}", a.text());
    let v = a.json();
    assert!(v["error"].is_string(), "no error field: {v}");
    assert!(
        v.get("leader").is_some_and(|l| l.is_null() || l.is_u64()),
        "no leader field: {v}"
    );
    v
}

/// One node's addresses and process.
pub struct Node {
    pub id: u64,
    pub raft: u16,
    pub http: u16,
    pub dir: PathBuf,
    pub proc: Option<Proc>,
    restarts: u32,
    /// `https` on a secure cluster.
    pub scheme: &'static str,
}

impl Node {
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.http)
    }
}

/// How a cluster's nodes run.
#[derive(Clone)]
pub struct Opts {
    pub bin: &'static str,
    pub storage: &'static str,
    pub transport: &'static str,
    pub tick_ms: &'static str,
    pub extra: Vec<String>,
    /// `--groups N` for raft-kv ([`kv_groups`]): added to the flags unless
    /// `extra` names `--groups` itself, and not with the WAL (one group).
    pub groups: Option<u64>,
    /// TLS everywhere and the admin token ([`secure_flags`]).
    pub secure: bool,
}

impl Opts {
    pub fn new(bin: &'static str) -> Self {
        Opts {
            bin,
            storage: STORAGE,
            transport: "tcp",
            tick_ms: TICK_MS,
            extra: Vec::new(),
            groups: if bin == KV { kv_groups() } else { None },
            secure: false,
        }
    }

    /// A cluster with TLS between nodes and to clients (client
    /// certificates required) and the admin token.
    pub fn secure(bin: &'static str) -> Self {
        secure_files();
        Opts {
            secure: true,
            ..Opts::new(bin)
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }
}

/// A cluster of service processes on loopback.
pub struct Cluster {
    pub opts: Opts,
    pub nodes: BTreeMap<u64, Node>,
    pub tmp: TempDir,
}

impl Cluster {
    /// Starts nodes `1..=n`, bootstrapped with each other as `--peers`,
    /// and waits for a leader.
    pub fn start(opts: Opts, n: u64) -> Cluster {
        let tmp = TempDir::new("cluster");
        let mut c = Cluster {
            opts,
            nodes: BTreeMap::new(),
            tmp,
        };
        for id in 1..=n {
            c.nodes.insert(
                id,
                Node {
                    id,
                    raft: free_port(),
                    http: free_port(),
                    dir: c.tmp.0.join(format!("n{id}")),
                    proc: None,
                    restarts: 0,
                    scheme: c.opts.scheme(),
                },
            );
        }
        let peers = c.peers_flag();
        for id in 1..=n {
            c.launch(id, Some(&peers));
        }
        c.wait_leader();
        c
    }

    pub fn peers_flag(&self) -> String {
        self.nodes
            .values()
            .map(|n| format!("{}=127.0.0.1:{}", n.id, n.raft))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn args(&self, id: u64, peers: Option<&str>) -> Vec<String> {
        let n = &self.nodes[&id];
        let mut a: Vec<String> = vec![
            "--id".into(),
            id.to_string(),
            "--raft-addr".into(),
            format!("127.0.0.1:{}", n.raft),
            "--http-addr".into(),
            format!("127.0.0.1:{}", n.http),
            "--data-dir".into(),
            n.dir.display().to_string(),
            "--storage".into(),
            self.opts.storage.into(),
            "--transport".into(),
            self.opts.transport.into(),
            "--tick-ms".into(),
            self.opts.tick_ms.into(),
        ];
        if let Some(p) = peers {
            a.push("--peers".into());
            a.push(p.into());
        }
        if self.opts.secure {
            a.extend(secure_flags(id));
        }
        a.extend(self.opts.extra.iter().cloned());
        if let Some(n) = self.groups() {
            let named = |f: &String| f == "--groups" || f.starts_with("--groups=");
            if !self.opts.extra.iter().any(named) {
                a.extend(["--groups".into(), n.to_string()]);
            }
        }
        a
    }

    /// Starts node `id`'s process and waits until it serves `/status`.
    pub fn launch(&mut self, id: u64, peers: Option<&str>) {
        let args = self.args(id, peers);
        let n = self.nodes.get_mut(&id).expect("known node");
        n.restarts += 1;
        let tag = format!("n{id}-{}", n.restarts);
        let mut proc = spawn(self.opts.bin, &args, &self.tmp.0, &tag);
        let url = n.url("/status");
        let served = wait_until(Instant::now() + WAIT, "the node to serve /status", || {
            if let Ok(Some(exit)) = proc.child.try_wait() {
                return Some(Err(format!("exited with {exit}")));
            }
            try_request("GET", &url, None, &[])
                .filter(|a| a.status == 200)
                .map(Ok)
        });
        if let Err(e) | Ok(Err(e)) = served.map(|r| r.map(|_| ())) {
            panic!("node {id}: {e}; stderr: {}", proc.stderr());
        }
        n.proc = Some(proc);
    }

    /// Adds a node (not yet started) with fresh ports.
    pub fn add_node(&mut self, id: u64) {
        self.nodes.insert(
            id,
            Node {
                id,
                raft: free_port(),
                http: free_port(),
                dir: self.tmp.0.join(format!("n{id}")),
                proc: None,
                restarts: 0,
                scheme: self.opts.scheme(),
            },
        );
    }

    pub fn stderr(&self, id: u64) -> String {
        self.nodes[&id]
            .proc
            .as_ref()
            .map(Proc::stderr)
            .unwrap_or_default()
    }

    pub fn url(&self, id: u64, path: &str) -> String {
        self.nodes[&id].url(path)
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.proc.is_some())
            .map(|n| n.id)
            .collect()
    }

    pub fn status(&self, id: u64) -> Option<Value> {
        try_request("GET", &self.url(id, "/status"), None, &[])
            .filter(|a| a.status == 200)
            .map(|a| a.json())
    }

    /// Waits until every running voter agrees on one leader among the
    /// running nodes; answers it.
    pub fn wait_leader(&self) -> u64 {
        self.wait_leader_among(&self.running())
    }

    pub fn wait_leader_among(&self, ids: &[u64]) -> u64 {
        wait_until(Instant::now() + WAIT, "one leader", || {
            let mut leader = None;
            for id in ids {
                let s = self.status(*id)?;
                let l = s["leader"].as_u64()?;
                if leader.is_some_and(|x| x != l) || !ids.contains(&l) {
                    return None;
                }
                leader = Some(l);
            }
            let l = leader?;
            (self.status(l)?["role"] == "leader" && self.groups_led_among(ids)).then_some(l)
        })
        .expect("a leader is elected")
    }

    /// Waits until node `id` has applied at least `index`. With several
    /// groups an index names a place in one group's log, which the caller
    /// may not know: node `id` then waits until it has applied, in every
    /// group it holds, what any running node has committed there now (all
    /// that `index` can mean, and more).
    pub fn wait_applied(&self, id: u64, index: u64) {
        if self.groups().is_some() {
            return self.wait_caught_up(id);
        }
        wait_until(Instant::now() + WAIT, "the node to apply", || {
            (self.status(id)?["applied_index"].as_u64()? >= index).then_some(())
        })
        .unwrap_or_else(|e| panic!("node {id}: {e}"));
    }

    /// SIGKILLs every node at once, starts each again on its data dir and
    /// answers the leader they elect.
    pub fn kill_all_and_relaunch(&mut self) -> u64 {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in &ids {
            self.kill(*id);
        }
        let peers = self.peers_flag();
        for id in &ids {
            self.launch(*id, Some(&peers));
        }
        self.wait_leader()
    }

    pub fn kill(&mut self, id: u64) {
        if let Some(mut p) = self.nodes.get_mut(&id).and_then(|n| n.proc.take()) {
            p.kill();
        }
    }

    /// A request to node `id`, sent again while it is answered 503.
    pub fn req(&self, id: u64, method: &str, path: &str, body: Option<&[u8]>) -> Answer {
        request(method, &self.url(id, path), body, &[])
    }

    /// A request to node `id`, sent once.
    pub fn req_once(&self, id: u64, method: &str, path: &str, body: Option<&[u8]>) -> Answer {
        request_once(method, &self.url(id, path), body, &[])
    }
}

/// Runs `bin args` to its end, `RUST_LOG` unset as a user would; answers
/// (exit code, stderr).
pub fn run(bin: &str, args: &[String]) -> (Option<i32>, String) {
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + WAIT;
    let status = wait_until(deadline, "the process to exit", || {
        child.try_wait().ok().flatten()
    });
    let status = status.unwrap_or_else(|e| {
        let _ = child.kill();
        panic!("{e}")
    });
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut err);
    }
    (status.code(), err)
}

/// Runs `bin args`, which must exit non-zero with one line on stderr that
/// mentions `mentions`; answers the line.
pub fn one_line_failure(bin: &str, args: &[String], mentions: &str) -> String {
    let (code, err) = run(bin, args);
    assert!(
        code.is_some_and(|c| c != 0),
        "exit {code:?} for {args:?}: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "not one line for {args:?}: {err:?}"
    );
    assert!(
        err.contains(mentions),
        "{err:?} does not mention {mentions:?}"
    );
    err
}

/// The flags of a one-node cluster on `raft` and `http`, its data in `dir`.
pub fn single_node_args(dir: &Path, raft: u16, http: u16) -> Vec<String> {
    [
        "--id",
        "1",
        "--raft-addr",
        &format!("127.0.0.1:{raft}"),
        "--http-addr",
        &format!("127.0.0.1:{http}"),
        "--peers",
        &format!("1=127.0.0.1:{raft}"),
        "--data-dir",
        &dir.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}
