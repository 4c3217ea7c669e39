//! [`main`]: a service's whole life from the command line: flags, logs,
//! then the [`ServiceBuilder`] with what the flags say, and shutdown on
//! SIGTERM or SIGINT. A thin layer: everything it sets can be set in code.
//!
//! Every fallible step of start-up (a bad flag, an address in use, an
//! unreadable data dir) ends the process with one line on stderr and a
//! non-zero exit. It must never leave the node running after the HTTP
//! server stopped.

use std::process::ExitCode;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::builder::ServiceBuilder;
use super::flags::Flags;
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
    let flags = Flags::parse_or_exit(S::NAME);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let system = actix_rt::System::new();
    match system.block_on(run::<S>(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: error: {}", S::NAME, one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The builder the flags describe.
pub fn builder<S: Service>(flags: &Flags) -> ServiceBuilder<S> {
    let mut b = ServiceBuilder::<S>::new(flags.id)
        .raft_addr(flags.raft_addr)
        .http_addr(flags.http_addr)
        .data_dir(flags.data_dir.clone())
        .storage(flags.storage)
        .transport(flags.transport)
        .cluster_id(flags.cluster_id)
        .timeout(Duration::from_millis(flags.timeout_ms))
        .configure(|cfg| {
            cfg.tick = Duration::from_millis(flags.tick_ms);
            cfg.core.snapshot_threshold = flags.snapshot_threshold;
            cfg.core.trailing_logs = flags.trailing_logs;
        })
        .handle_signals(true);
    if let Some(p) = &flags.peers {
        b = b.peers(p.0.clone());
    }
    b
}

async fn run<S: Service>(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    let node = builder::<S>(&flags).start().await?;
    node.stopped().await?;
    Ok(())
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
