//! [`Flags`]: the command line of every service, as the reference
//! (`examples/REFERENCE.md` in the repository) lists it, under the
//! service's own name, version and description ([`Flags::command_of`]).
//!
//! It must never exit on its own: [`Flags::parse_or_exit`] is the one place
//! that turns a bad flag into one line on stderr and a non-zero exit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use raft_actors::core::NodeId;

use super::security::TlsFiles;
use super::Service;

/// Which log storage a node keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StorageKind {
    /// Durable, in `<data-dir>/raft.redb`.
    Redb,
    /// Durable, an append-only log in `<data-dir>/wal/`: one sequential
    /// write and one fdatasync per batch.
    Wal,
    /// In memory: lost when the process ends.
    Memory,
}

/// How nodes talk to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// Length-prefixed frames over TCP.
    Tcp,
    /// HTTP POSTs.
    Http,
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Human,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

impl StorageKind {
    /// The flag's value.
    pub fn name(self) -> &'static str {
        match self {
            StorageKind::Redb => "redb",
            StorageKind::Wal => "wal",
            StorageKind::Memory => "memory",
        }
    }
}

impl TransportKind {
    /// The flag's value.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Http => "http",
        }
    }
}

/// The initial voters, `1=127.0.0.1:7001,2=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peers(pub BTreeMap<NodeId, SocketAddr>);

fn parse_peers(s: &str) -> Result<Peers, String> {
    let mut peers = BTreeMap::new();
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}` is not <id>=<host:port>"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("`{id}` is not a node id"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{addr}` is not a socket address"))?;
        if peers.insert(id, addr).is_some() {
            return Err(format!("node {id} is named twice"));
        }
    }
    if peers.is_empty() {
        return Err("no peers named".into());
    }
    Ok(Peers(peers))
}

/// The flags of every service.
#[derive(Clone, Debug, Parser)]
// The name, version and description are the service's, set by
// `command_of`: these are only the derive's placeholders.
#[command(version, about = "A replicated service on raft-actors.")]
pub struct Flags {
    /// This node's id.
    #[arg(long)]
    pub id: NodeId,
    /// Where peers reach this node.
    #[arg(long)]
    pub raft_addr: SocketAddr,
    /// Where the client API is served.
    #[arg(long)]
    pub http_addr: SocketAddr,
    /// The initial voters, itself included: `1=host:port,2=host:port,...`.
    /// Used only to bootstrap an empty data dir.
    #[arg(long, value_parser = parse_peers)]
    pub peers: Option<Peers>,
    /// Where the node keeps its state.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The log storage.
    #[arg(long, value_enum, default_value_t = StorageKind::Redb)]
    pub storage: StorageKind,
    /// The transport between nodes.
    #[arg(long, value_enum, default_value_t = TransportKind::Tcp)]
    pub transport: TransportKind,
    /// Nodes of another cluster id are refused at the transport.
    #[arg(long, default_value_t = 1)]
    pub cluster_id: u64,
    /// Length of one Raft tick in milliseconds (election timeout: 10 to 20
    /// ticks, heartbeat: 1).
    #[arg(long, default_value_t = 50)]
    pub tick_ms: u64,
    /// How long a client request waits before answering 504, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub timeout_ms: u64,
    /// Snapshot and compact the log automatically after this many applied
    /// entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot, for slow followers.
    #[arg(long, default_value_t = 1_000)]
    pub trailing_logs: u64,
    /// How much shorter than the election timeout (10 ticks) a leader's
    /// lease is, in ticks: 1 to 9. Lease reads (`?consistency=lease`) stay
    /// linearizable while no node's clock runs faster than the leader's by
    /// more than the ratio 9 / (10 - margin): 12.5% with the default 2, 50%
    /// with 4. A larger margin tolerates more drift, a smaller one serves
    /// more reads from the lease.
    #[arg(long, default_value_t = 2)]
    pub lease_margin_ticks: u64,
    /// How many Raft groups the keys are spread over (1 to 1,024; a key's
    /// group is its FNV-1a hash modulo this). Fixed when the data dir is
    /// founded: a restarted node keeps its own.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub groups: u64,
    /// On how many nodes each group beyond group 0 lives (group 0, the
    /// cluster's own, lives on every voter). Fixed with `--groups`.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub replication: u64,
    /// With `--groups`: a group beyond group 0 that had nothing to do for
    /// this many ticks stops its timers (no tick, no heartbeat) until a
    /// request or a peer's message wakes it, so idle groups cost almost
    /// nothing. Group 0 never quiesces: it keeps watching the cluster. A
    /// quiesced group whose leader died elects a new one once a request
    /// reaches it. Every node must run a version that knows quiescing
    /// (older ones cannot read its messages). Off by default.
    #[arg(long, value_name = "TICKS", value_parser = clap::value_parser!(u64).range(1..))]
    pub quiesce_after_ticks: Option<u64>,
    /// Log lines as `human` text or `json` objects, one per line; the level
    /// comes from `RUST_LOG` (default `info`; `debug` adds a line per HTTP
    /// request: method, route, status, latency).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// A file holding the cluster API's token: changes to the cluster
    /// (`POST`/`DELETE /cluster/members`, `POST /cluster/leader`,
    /// `POST /cluster/snapshot`) then need `Authorization: Bearer <token>`.
    /// Every node of a cluster needs the same token.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// With `--admin-token-file`: `/status`, `/cluster/status`, `/health`,
    /// `/metrics` and `/ui` need the token too.
    #[arg(long, requires = "admin_token_file")]
    pub admin_token_protects_reads: bool,
    /// This node's certificate toward its peers (PEM); it must name
    /// `node-<id>` as a DNS subject alternative name. With
    /// `--peer-tls-key` and `--peer-tls-ca`: mutual TLS between nodes.
    #[arg(long, value_name = "FILE", requires_all = ["peer_tls_key", "peer_tls_ca"])]
    pub peer_tls_cert: Option<PathBuf>,
    /// The private key of `--peer-tls-cert` (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["peer_tls_cert", "peer_tls_ca"])]
    pub peer_tls_key: Option<PathBuf>,
    /// The CA peers' certificates must chain to (PEM): a peer is accepted
    /// only with a certificate from it naming the node id it claims.
    #[arg(long, value_name = "FILE", requires_all = ["peer_tls_cert", "peer_tls_key"])]
    pub peer_tls_ca: Option<PathBuf>,
    /// The client API's certificate (PEM): with `--client-tls-key`, the
    /// client API is served over HTTPS. Renewed files are read on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "client_tls_key")]
    pub client_tls_cert: Option<PathBuf>,
    /// The private key of `--client-tls-cert` (PEM).
    #[arg(long, value_name = "FILE", requires = "client_tls_cert")]
    pub client_tls_key: Option<PathBuf>,
    /// Clients must present a certificate chaining to this CA (PEM).
    #[arg(long, value_name = "FILE", requires = "client_tls_cert")]
    pub client_tls_ca: Option<PathBuf>,
}

impl Flags {
    /// The parser of service `S`'s command line, under `S`'s own name,
    /// version and description ([`Service::NAME`], [`Service::VERSION`],
    /// [`Service::ABOUT`]), not the framework's.
    ///
    /// ```
    /// use raft_actors_service::flags::Flags;
    /// # use raft_actors_service::{LogIndex, Service};
    /// #[derive(Default)]
    /// struct Board;
    /// impl Service for Board {
    ///     const NAME: &'static str = "leaderboard";
    ///     const VERSION: &'static str = "2.3.4"; // env!("CARGO_PKG_VERSION") in a real crate
    ///     const ABOUT: &'static str = "A replicated leaderboard";
    ///     // ...
    /// #   type Command = (); type Output = (); type Query = (); type Answer = ();
    /// #   type Snapshot = ();
    /// #   fn apply(&mut self, _: LogIndex, _: ()) {}
    /// #   fn query(&self, _: ()) {}
    /// #   fn snapshot(&self) {}
    /// #   fn restore(&mut self, _: ()) {}
    /// #   fn routes(_: &mut actix_web::web::ServiceConfig) {}
    /// }
    /// let mut cmd = Flags::command_of::<Board>();
    /// assert_eq!(cmd.render_version(), "leaderboard 2.3.4\n");
    /// assert!(cmd.render_help().to_string().starts_with("A replicated leaderboard"));
    /// ```
    pub fn command_of<S: Service>() -> clap::Command {
        let version = if S::VERSION.is_empty() {
            "unversioned"
        } else {
            S::VERSION
        };
        let about = if S::ABOUT.is_empty() {
            format!("{}: a replicated service on raft-actors.", S::NAME)
        } else {
            S::ABOUT.to_string()
        };
        Flags::command()
            .name(S::NAME)
            .version(version)
            .about(about)
            .long_about(None)
    }

    /// Parses the process's arguments for service `S`. `--help` and
    /// `--version` print and exit 0; a bad flag prints one line on stderr
    /// and exits 2.
    pub fn parse_or_exit<S: Service>() -> Flags {
        let flags = Flags::command_of::<S>()
            .try_get_matches()
            .and_then(|m| Flags::from_arg_matches(&m))
            .and_then(|f| f.check().map(|()| f));
        match flags {
            Ok(f) => f,
            Err(e) if !e.use_stderr() => {
                let _ = e.print();
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{}: error: {} (see --help)", S::NAME, usage_line(&e));
                std::process::exit(2);
            }
        }
    }

    /// The TLS files the flags name.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            peer_cert: self.peer_tls_cert.clone(),
            peer_key: self.peer_tls_key.clone(),
            peer_ca: self.peer_tls_ca.clone(),
            client_cert: self.client_tls_cert.clone(),
            client_key: self.client_tls_key.clone(),
            client_ca: self.client_tls_ca.clone(),
        }
    }

    fn check(&self) -> Result<(), clap::Error> {
        let bad = |msg: String| clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg);
        if self.id == 0 {
            return Err(bad("--id must be at least 1 (0 is never a node id)".into()));
        }
        if let Some(Peers(peers)) = &self.peers {
            if peers.contains_key(&0) {
                return Err(bad("--peers names node 0, which is never a node id".into()));
            }
            match peers.get(&self.id) {
                None => {
                    return Err(bad(format!(
                        "--peers does not name this node ({})",
                        self.id
                    )))
                }
                Some(a) if *a != self.raft_addr => {
                    return Err(bad(format!(
                        "--peers gives node {} the address {a}, but --raft-addr is {}",
                        self.id, self.raft_addr
                    )))
                }
                Some(_) => {}
            }
        }
        if self.tick_ms == 0 || self.timeout_ms == 0 {
            return Err(bad("--tick-ms and --timeout-ms must be positive".into()));
        }
        if !(1..10).contains(&self.lease_margin_ticks) {
            return Err(bad(
                "--lease-margin-ticks must be 1 to 9 (the election timeout is 10 ticks)".into(),
            ));
        }
        Ok(())
    }
}

/// A usage error on one line: clap's message spans several (the error,
/// the missing flags, a usage), so its first paragraph is folded into one.
///
/// ```
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Args { #[arg(long)] id: u64 }
/// let e = Args::try_parse_from(["tool"]).err().unwrap();
/// let line = raft_actors_service::flags::usage_line(&e);
/// assert!(line.contains("--id") && !line.contains('\n'), "{line}");
/// ```
pub fn usage_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let first = first.join(" ");
    first.strip_prefix("error: ").unwrap_or(&first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_refuse_garbage() {
        let p = parse_peers("1=127.0.0.1:7001,2=127.0.0.1:7002").expect("parses");
        assert_eq!(p.0.len(), 2);
        for bad in [
            "",
            "1",
            "x=127.0.0.1:1",
            "1=nowhere",
            "1=127.0.0.1:1,1=127.0.0.1:2",
        ] {
            assert!(parse_peers(bad).is_err(), "{bad}");
        }
    }
}
