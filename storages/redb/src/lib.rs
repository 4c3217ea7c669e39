//! Durable log storage for raft-actors on [redb](https://docs.rs/redb).
//!
//! [`RedbStorage`] implements [`raft_actors::storage::Storage`]: a node's
//! hard state, log, configuration and latest snapshot in one redb file in
//! the node's data dir. What it guarantees:
//!
//! - **Group commit.** Everything one `Ready` asks to persist (snapshot,
//!   hard state, entries, compaction) is one write transaction with
//!   immediate durability: one fsync. Under load many entries share it
//!   ([`RedbStats::entries_per_fsync`]).
//! - **Crash safety.** A transaction is on disk whole or not at all, so a
//!   `kill -9` at any moment leaves the last acknowledged state: a snapshot
//!   received from the leader replaces the old one and its log atomically.
//! - **Refusal over damage.** Every record carries a format version byte
//!   and a checksum ([`record`]); the file carries a format marker. A
//!   damaged, truncated or inconsistent store, or one from a newer format,
//!   fails [`RedbStorage::open`] with one clear [`RedbError`]: no panic, no
//!   silent loss of acknowledged entries.
//! - **Power loss.** A write is acknowledged only once redb's commit has
//!   synced it; a disk that loses or tears what was not synced loses no
//!   acknowledged write and never makes the store misread one
//!   (`tests/power_loss/` runs it on [`RedbStorage::open_backend`] with
//!   such disks).
//! - **Poisoned by a failed write.** Once a write fails on I/O (a commit
//!   whose fsync failed among them), every later call is refused until the
//!   store is reopened: after a failed fsync the kernel may have dropped
//!   the dirty pages, so a retry that succeeds would prove nothing
//!   (PostgreSQL's fsyncgate). A node on it stops at the first failure and
//!   cannot reload on the same handle: restart the process.
//!   (`tests/power_loss/fsync_error.rs`.)
//! - **No blocking on async threads.** The database lives on a thread of
//!   its own; the node awaits its answers.
//! - **Snapshots as files.** A snapshot's bytes are a file in `snapshots/`
//!   beside the database ([`FileSnapshots`]: written to a temporary file,
//!   checksummed, fsynced, renamed; the last two kept), streamed in and out;
//!   the database records which one is current. A missing or damaged
//!   snapshot file fails [`RedbStorage::open`] with one clear error.
//!
//! # Layout
//! - [`record`]: the versioned, checksummed record format.
//! - `store`: the database and its operations (blocking; storage thread only).
//! - `groups`: [`RedbGroups`], the file and its storage thread, shared by
//!   the groups in it; their batches queued together share a transaction.
//! - `storage`: [`RedbStorage`], one group's async handle, the node's.
//! - `snapshot_files`: [`FileSnapshots`], the snapshot files.
//! - `error`: [`RedbError`].

mod error;
mod groups;
pub mod record;
mod snapshot_files;
mod storage;
mod store;

pub use error::RedbError;
pub use groups::RedbGroups;
/// redb's disk interface, for [`RedbStorage::open_backend`]: re-exported
/// so a custom disk implements the very version this crate links.
pub use redb::StorageBackend;
pub use snapshot_files::{FileSnapshots, SNAPSHOT_DIR};
pub use storage::{RedbStats, RedbStorage};
