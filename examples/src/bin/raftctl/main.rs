//! `raftctl`: the operator CLI of every raft-actors service, talking to any
//! node's HTTP API (`/status`, `/cluster/*`, `/health`).
//!
//! Exit status: 0 done (for `health`: every member healthy), 1 the
//! operation failed or a member is unhealthy, 2 bad usage. Every error is
//! one line on stderr; `--json` prints the answer as JSON on stdout.

mod certs;
mod client;
mod commands;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use client::Client;
use raft_actors_service::admin::AdminToken;

/// Operate a raft-actors cluster through any of its nodes.
#[derive(Parser, Debug)]
#[command(
    name = "raftctl",
    version,
    about = "Operate a raft-actors cluster through any of its nodes.",
    long_about = None
)]
struct Cli {
    /// Client API addresses (`http://` or `https://host:port`),
    /// comma-separated; the first that answers serves the command.
    /// Required by every command but `certs`.
    #[arg(long, value_delimiter = ',', value_parser = endpoint)]
    endpoints: Vec<String>,
    /// Print the answer as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// How long one request may take, in milliseconds (membership changes
    /// wait for a learner to catch up).
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// A file holding the cluster's admin token (the nodes'
    /// `--admin-token-file`), sent as `Authorization: Bearer <token>`.
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<std::path::PathBuf>,
    /// Trust this CA (PEM) for `https://` endpoints (the nodes'
    /// `--client-tls-cert` must chain to it).
    #[arg(long, global = true, value_name = "FILE")]
    cacert: Option<std::path::PathBuf>,
    /// Present this certificate (PEM) to nodes that require one
    /// (`--client-tls-ca`); with `--key` and `--cacert`.
    #[arg(long, global = true, value_name = "FILE", requires_all = ["key", "cacert"])]
    cert: Option<std::path::PathBuf>,
    /// The private key of `--cert` (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every member: id, raft address, role, term, commit, applied, how
    /// far it trails the leader.
    Status,
    /// Voters and learners; add, remove, promote.
    Members {
        #[command(subcommand)]
        action: Members,
    },
    /// The leader's id; `leader move ID` hands leadership over.
    Leader {
        #[command(subcommand)]
        action: Option<LeaderAction>,
    },
    /// Snapshot the first endpoint's node and compact its log.
    Snapshot,
    /// Every member's `/health`; exit 1 unless all are healthy.
    Health,
    /// Write a test CA and certificates for a local cluster into a
    /// directory: `ca.pem`, `node-<id>.pem` and `node-<id>-key.pem` for
    /// each node (naming `node-<id>`, localhost and 127.0.0.1: for
    /// `--peer-tls-*` and `--client-tls-*` alike), `client.pem` and
    /// `client-key.pem` for raftctl or curl. For tests and trying TLS
    /// out; the CA's key is not kept.
    Certs {
        /// The directory (created if missing; files in it are replaced).
        #[arg(long)]
        out: std::path::PathBuf,
        /// The node ids, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        nodes: Vec<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum Members {
    /// Voters and learners.
    List,
    /// Add node ID, reached at RAFT_ADDR, as a voter (or a learner).
    Add {
        /// The new node's id.
        id: u64,
        /// Where peers reach it (host:port).
        raft_addr: std::net::SocketAddr,
        /// Add it as a learner, without a vote.
        #[arg(long)]
        learner: bool,
    },
    /// Remove node ID (the leader too).
    Remove {
        /// The member's id.
        id: u64,
    },
    /// Make learner ID a voter.
    Promote {
        /// The learner's id.
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
enum LeaderAction {
    /// Hand leadership to voter ID.
    Move {
        /// The voter's id.
        id: u64,
    },
}

/// An endpoint: `http://host:port` or `https://host:port`.
fn endpoint(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("`{s}` is not an http:// or https:// URL"))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(format!("`{s}` names no host"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// The TLS client `--cacert`, `--cert` and `--key` describe (`None`:
/// the default roots for `https://`).
fn tls_config(
    cli: &Cli,
) -> Result<Option<std::sync::Arc<raft_actors_tls::rustls::ClientConfig>>, raft_actors_tls::TlsError>
{
    let Some(ca) = &cli.cacert else {
        return Ok(None);
    };
    let identity = cli.cert.as_deref().zip(cli.key.as_deref());
    Ok(Some(
        raft_actors_tls::ClientTrust::load(&[ca.as_path()], identity)?.config(),
    ))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version: printed, exit 0.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // Bad usage: one line, exit 2.
        Err(e) => {
            let line = raft_actors_service::flags::usage_line(&e);
            eprintln!("raftctl: error: {line} (see --help)");
            return ExitCode::from(2);
        }
    };
    if let Command::Certs { out, nodes } = &cli.command {
        return match certs::write(out, nodes) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("raftctl: error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.endpoints.is_empty() {
        eprintln!(
            "raftctl: error: the following required arguments were not provided: \
             --endpoints <ENDPOINTS> (see --help)"
        );
        return ExitCode::from(2);
    }
    let tls = match tls_config(&cli) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("raftctl: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = match cli
        .token_file
        .as_deref()
        .map(AdminToken::from_file)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("raftctl: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Client::new(
        cli.endpoints.clone(),
        Duration::from_millis(cli.timeout_ms),
        token,
        tls,
    );
    match commands::run(&client, &cli.command) {
        Ok(done) => {
            if cli.json {
                println!("{}", done.json);
            } else {
                println!("{}", done.text);
            }
            match done.failure {
                None => ExitCode::SUCCESS,
                Some(why) => {
                    eprintln!("raftctl: {why}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("raftctl: error: {line}");
            ExitCode::FAILURE
        }
    }
}
