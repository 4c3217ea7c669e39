//! Durable log storage for raft-actors as an append-only log of segment
//! files: the write path etcd's WAL and RabbitMQ ra's take.
//!
//! [`WalStorage`] implements [`raft_actors::storage::Storage`]. What it
//! guarantees:
//!
//! - **One sequential write and one fdatasync per `Ready`.** Everything a
//!   batch persists (snapshot record, hard state, entries, compaction) is
//!   one checksummed frame appended to the current segment; a batch that
//!   only moves the commit index or compacts writes nothing and rides on
//!   the next synced one (what a restart may then see is the `Storage`
//!   contract's lazy-write rule). A B-tree store (redb) writes about eight
//!   pages at scattered offsets per commit instead.
//! - **Crash and power-loss safety.** A frame is acknowledged only once it
//!   is synced, and nothing is written after it before that: so only the
//!   last frame can be torn, and it is cut at open; any other bad frame,
//!   a missing segment, or a segment of another format or group refuses
//!   the open with one clear [`WalError`], never a shorter log.
//! - **Bounded files.** Segments roll over at 64 MiB, each starting with a
//!   base record of the state then; once every entry of the oldest ones
//!   is compacted into a durable snapshot they are deleted.
//! - **Poisoned by a failed write.** After a failed write or fsync every
//!   later call is refused until the log is reopened (fsyncgate).
//! - **Snapshots as files**, as the redb storage keeps them
//!   ([`raft_actors_storage_redb::FileSnapshots`], in `snapshots/`).
//! - **A group id in every segment header**, for one store shared by many
//!   Raft groups; format version 1.
//!
//! The retained log is held in memory beside the files, as etcd keeps its
//! raft `MemoryStorage` beside its WAL: reads never touch the disk.
//!
//! # Layout
//! - [`frame`]: the segment and frame format, and telling a torn tail
//!   from damage.
//! - `segments`: naming, listing and creating segment files; the lock.
//! - `log`: the segments and the image in memory (blocking).
//! - `storage`: [`WalStorage`], the async handle the node holds.
//! - `error`: [`WalError`].

mod error;
pub mod frame;
mod log;
mod segments;
mod storage;

pub use error::WalError;
pub use log::SEGMENT_BYTES;
pub use storage::{WalStorage, WAL_DIR};
