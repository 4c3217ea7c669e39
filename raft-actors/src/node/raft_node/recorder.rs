//! The node's [`Recorder`]: where the measurements published in
//! [`Activity`] are taken and kept across incarnations: storage writes
//! (latency, fsyncs, entries per write, snapshots installed), snapshots
//! taken, how long each snapshot transfer took as the peer's progress
//! showed it, the apply actor's latencies, and the core's [`Events`] of
//! every incarnation.
//!
//! Counting only: it must never decide anything, nor wait on anything.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::core::{Events, NodeId, ProgressState, RaftCore, Role, Status};
use crate::histogram::SharedHistogram;
use crate::node::Activity;

/// One storage write as the write path saw it.
pub(super) struct WriteTiming {
    /// How long the storage call took.
    pub took: Duration,
    /// Entries it carried.
    pub entries: u64,
    /// Whether it synced (see [`Activity::fsync`]).
    pub synced: bool,
    /// The bytes of a snapshot from the leader it stored, if it did.
    pub installed: Option<u64>,
}

/// The node's measurements. See the [module docs](self).
#[derive(Default)]
pub(super) struct Recorder {
    /// What the node itself measured; `events` holds the sum of the
    /// incarnations before the current core.
    kept: Activity,
    /// Recorded by the apply actor.
    apply: SharedHistogram,
    /// Peers a snapshot is being sent to, since when.
    sending: BTreeMap<NodeId, Instant>,
}

impl Recorder {
    /// The histogram the apply actor records its batches in.
    pub fn apply_latency(&self) -> SharedHistogram {
        self.apply.clone()
    }

    /// A storage write completed.
    pub fn written(&mut self, w: WriteTiming) {
        let a = &mut self.kept;
        a.storage_write.observe_duration(w.took);
        a.entries_per_write.observe(w.entries);
        if w.synced {
            a.fsync.observe_duration(w.took);
        }
        if let Some(bytes) = w.installed {
            a.snapshots_installed.count += 1;
            a.snapshots_installed.bytes += bytes;
            a.snapshots_installed.seconds.observe_duration(w.took);
        }
    }

    /// This node's state machine snapshot of `bytes` was handed to the
    /// core, `took` after it was asked for.
    pub fn taken(&mut self, took: Duration, bytes: u64) {
        let s = &mut self.kept.snapshots_taken;
        s.count += 1;
        s.bytes += bytes;
        s.seconds.observe_duration(took);
    }

    /// The core is dropped (a restart, a stop): its counts are kept.
    pub fn core_dropped(&mut self, core: Option<&RaftCore>) {
        if let Some(core) = core {
            self.kept.events = self.kept.events.plus(&core.events());
        }
        self.sending.clear();
    }

    /// Times snapshot transfers from the peers' progress in `status`: a
    /// peer that left the snapshot state while this node still leads got
    /// its snapshot.
    pub fn observe(&mut self, status: &Status) {
        if status.role != Role::Leader {
            self.sending.clear();
            return;
        }
        let now = Instant::now();
        let sent = &mut self.kept.snapshots_sent.seconds;
        self.sending
            .retain(|peer, since| match status.peers.get(peer) {
                Some(p) if p.state == ProgressState::Snapshot => true,
                Some(_) => {
                    sent.observe_duration(now.saturating_duration_since(*since));
                    false
                }
                None => false,
            });
        for (peer, p) in &status.peers {
            if p.state == ProgressState::Snapshot {
                self.sending.entry(*peer).or_insert(now);
            }
        }
    }

    /// Everything measured, with the current core's `events`.
    pub fn activity(&self, events: Events) -> Activity {
        let mut a = self.kept.clone();
        a.events = a.events.plus(&events);
        a.apply = self.apply.get();
        a.snapshots_sent.count = a.events.snapshots_sent;
        a.snapshots_sent.bytes = a.events.snapshot_bytes_sent;
        a
    }
}
