//! The log cache through the actor runtime, over any transport and
//! storage that reads back: a leader that dropped the payloads of applied
//! entries from memory still brings a lagging follower up with entries
//! (not a snapshot), read back from its storage.

use tracing::info;

use super::snapshot::{holds_keys, write_keys};
use super::{follower_of, T};
use crate::testing::{KeyValue, TypedBuilder};

/// Node settings for the log cache case: no payload of an applied entry
/// kept in memory, and no snapshot, so the only way to catch up is
/// entries read back from storage.
pub fn no_log_cache_config() -> crate::node::NodeConfig {
    crate::node::NodeConfig {
        core: crate::core::Config {
            log_cache_bytes: Some(0),
            snapshot_threshold: 0,
            ..crate::core::Config::default()
        },
        ..crate::node::NodeConfig::default()
    }
}

/// A follower cut off while the others write 40 keys catches up once
/// healed, from entries its leader reads back from storage (counted in
/// its metrics), and serves every write. Build the cluster with
/// [`no_log_cache_config`] on a storage with a log reader.
pub async fn lagging_follower_catches_up_from_entries_read_back<C: KeyValue>(b: TypedBuilder<C>) {
    let c = b.start().await.expect("cluster starts");
    let leader = c.wait_for_leader(T).await.expect("leader");
    let lagging = follower_of(&c, leader);
    info!(lagging, "--- cut a follower off; the others write 40 keys");
    c.faults().isolate(lagging);
    let last = write_keys(&c, leader, 40).await;
    let before = c.metrics()[&leader].entries_read_back;

    info!("--- heal: the entries it missed are read back from the leader's storage");
    c.faults().heal();
    c.wait_until("the follower caught up", T, |m| {
        m.get(&lagging).is_some_and(|m| m.applied >= last)
    })
    .await
    .expect("the follower caught up");
    let metrics = c.metrics();
    let read_back = metrics[&leader].entries_read_back - before;
    assert!(
        read_back >= 40,
        "the leader read back the entries it sent ({read_back})"
    );
    let installed = metrics[&lagging].activity.snapshots_installed.count;
    assert_eq!(installed, 0, "caught up by entries, not by a snapshot");
    holds_keys(&c, lagging, &[0, 17, 39]).await;
    c.shutdown().await;
}
