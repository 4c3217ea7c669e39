//! A seeded whole-cluster simulation of Raft cores, with faults, checked at
//! every step against the Raft paper's five safety properties, linearizable
//! reads and exactly-once commands, then for liveness once the faults heal.
//!
//! Cores are driven as a real driver would (persist, then send and apply,
//! then advance), in one of two [`DriverMode`]s: each batch executed at
//! once, or persists in flight while the core keeps being stepped, as the
//! node drives it; the network loses, duplicates, delays, reorders,
//! replays (long after) and partitions messages; nodes crash (also in the
//! middle of a `Ready`) and restart from what they persisted; each node's
//! clock drifts and stalls ([`NodeClock`]), and its core is told the
//! clock's reading before every input, as the node tells it. One seed decides everything, so a
//! failure replays exactly: run it again with `trace` on.
//!
//! ```
//! use raft_actors::simulation::{run, SimConfig};
//! let report = run(&SimConfig::new(3, 42)).expect("no violation");
//! assert!(report.writes_acked > 0 && report.liveness_ticks.is_some());
//! ```
//!
//! Must never touch a core except through its public API: what it checks
//! is what a user of the core can rely on.

mod checker;
mod clock;
mod config;
mod driver;
mod network;
mod node;
mod runner;

pub use checker::{Checker, Property, Violation};
pub use clock::NodeClock;
pub use config::{DriverMode, Report, SimConfig};
pub use network::{Network, NetworkFaults};
pub use node::{state_hash, CrashPoint, Disk, DriveOutput, SimNode, StateMachine};
pub use runner::run;
