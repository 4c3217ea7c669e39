//! [`main`]: a service's whole life from the command line: flags, logs,
//! then the [`ServiceBuilder`] with what the flags say, and shutdown on
//! SIGTERM or SIGINT (a SIGHUP re-reads the TLS files). A thin layer: everything it sets can be set in code.
//!
//! Every fallible step of start-up (a bad flag, an address in use, an
//! unreadable data dir) ends the process with one line on stderr and a
//! non-zero exit. It must never leave the node running after the HTTP
//! server stopped.

use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::admin::{AdminToken, AdminTokenError};
use super::builder::ServiceBuilder;
use super::flags::{Flags, LogFormat};
use super::held_logs::HeldStderr;
use super::security::{Tls, TlsSetupError};
use super::Service;

/// Runs service `S` with the process's command line; returns the exit code.
///
/// ```no_run
/// # use raft_actors_service::Service;
/// # fn demo<S: Service>() -> std::process::ExitCode {
/// raft_actors_service::main::<S>()
/// # }
/// ```
pub fn main<S: Service>() -> ExitCode {
    few_malloc_arenas();
    let flags = Flags::parse_or_exit::<S>();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Held until the node has a store of its own: a node refused for a
    // lost data dir prints its one line and nothing else.
    let logs = HeldStderr::new();
    let writer = logs.clone();
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer.clone());
    match flags.log_format {
        LogFormat::Json => logger.json().init(),
        LogFormat::Human => logger
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let system = actix_rt::System::new();
    match system.block_on(run::<S>(flags, logs.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logs.discard();
            eprintln!("{}: error: {}", S::NAME, one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Caps glibc's malloc at two arenas, before any thread starts. By default
/// it keeps up to eight per core, and a node's threads (the actors', the
/// storage's, the snapshot writer) each fragment one of their own: with a
/// large state that is tens of MiB of peak memory over the state itself
/// (measured with `examples/bench/snapshots.sh`: 20 to 30 MiB per process
/// with 512 MiB of state). Other allocators ignore it.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and changes a setting of the
    // allocator; it is called before this process starts any thread.
    unsafe {
        let _ = libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Why the flags do not describe a node that can start.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// The admin token file cannot be used.
    #[error(transparent)]
    AdminToken(#[from] AdminTokenError),
    /// A TLS file cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// The builder the flags describe; `Err` if the admin token file or a TLS
/// file cannot be used.
pub fn builder<S: Service>(flags: &Flags) -> Result<ServiceBuilder<S>, FlagsError> {
    let mut b = ServiceBuilder::<S>::new(flags.id)
        .raft_addr(flags.raft_addr)
        .http_addr(flags.http_addr)
        .data_dir(flags.data_dir.clone())
        .storage(flags.storage)
        .transport(flags.transport)
        .cluster_id(flags.cluster_id)
        .timeout(Duration::from_millis(flags.timeout_ms))
        .snapshot_threshold(flags.snapshot_threshold)
        .trailing_logs(flags.trailing_logs)
        .groups(flags.groups, flags.replication)
        .quiesce_groups(flags.quiesce_after_ticks)
        .configure(|cfg| {
            cfg.tick = Duration::from_millis(flags.tick_ms);
            cfg.core.lease_margin_ticks = flags.lease_margin_ticks;
        })
        .handle_signals(true);
    if let Some(p) = &flags.peers {
        b = b.peers(p.0.clone());
    }
    if let Some(path) = &flags.admin_token_file {
        let token = AdminToken::from_file(path)?;
        b = b.admin_token(token.protecting_reads(flags.admin_token_protects_reads));
    }
    Ok(b.tls(Tls::load(&flags.tls_files())?))
}

async fn run<S: Service>(flags: Flags, logs: HeldStderr) -> Result<(), Box<dyn std::error::Error>> {
    let node = builder::<S>(&flags)?.start().await?;
    actix_rt::spawn(release_logs_once_founded(
        node.node().raft().metrics(),
        logs,
    ));
    node.stopped().await?;
    Ok(())
}

/// Writes the held logs out once the node has a store of its own (loaded,
/// and not founding one); a refused node's are dropped by `main`.
async fn release_logs_once_founded(
    mut metrics: tokio::sync::watch::Receiver<raft_actors::node::Metrics>,
    logs: HeldStderr,
) {
    let founded = metrics
        .wait_for(|m| m.lost_data.is_some() || (m.incarnation >= 1 && !m.founding))
        .await
        .map(|m| m.lost_data.is_none());
    if founded.unwrap_or(true) {
        logs.release();
    }
}

/// An error and its sources on one line: `outer: inner: root`.
///
/// ```
/// use raft_actors_service::run::one_line;
/// let e = std::io::Error::other("disk on fire");
/// assert_eq!(one_line(&e), "disk on fire");
/// ```
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // `#[error(transparent)]` repeats its source's text.
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    line.replace('\n', " ")
}
