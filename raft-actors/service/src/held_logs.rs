//! [`HeldStderr`]: the log writer of [`main`](crate::main), which holds
//! what is logged until the node has a store of its own.
//!
//! A node refused at start (its data dir lost a membership it held) must
//! end like every other start-up failure, with one line on stderr; but the
//! refusal comes only after the node ran for a while, asking its peers. So
//! log lines are kept in memory until the node is founded (then written
//! out, in order) or refused (then dropped). It must never reorder lines,
//! and never hold them once released.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A cheap-to-clone stderr that holds its output until released.
///
/// ```
/// use std::io::Write;
/// use raft_actors_service::held_logs::HeldStderr;
/// let logs = HeldStderr::new();
/// let mut w = logs.clone();
/// w.write_all(b"held\n").unwrap();
/// assert_eq!(logs.held(), b"held\n".len());
/// logs.discard(); // a refused node: nothing of it is printed
/// w.write_all(b"dropped\n").unwrap();
/// assert_eq!(logs.held(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct HeldStderr {
    state: Arc<Mutex<Held>>,
}

#[derive(Debug, Default)]
struct Held {
    mode: Mode,
    buf: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Holding,
    Released,
    Discarded,
}

impl HeldStderr {
    /// A writer that holds everything for now.
    pub fn new() -> Self {
        HeldStderr::default()
    }

    /// Writes out what was held, and everything from now on.
    pub fn release(&self) {
        let mut held = self.lock();
        held.mode = Mode::Released;
        let buf = std::mem::take(&mut held.buf);
        let _ = std::io::stderr().write_all(&buf);
    }

    /// Drops what was held, and everything from now on.
    pub fn discard(&self) {
        let mut held = self.lock();
        held.mode = Mode::Discarded;
        held.buf = Vec::new();
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.lock().buf.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for HeldStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut held = self.lock();
        match held.mode {
            Mode::Holding => held.buf.extend_from_slice(data),
            Mode::Discarded => {}
            Mode::Released => return std::io::stderr().write(data),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
