//! The exposition of known numbers: names, labels, units and bounds.

use std::collections::BTreeMap;
use std::time::Duration;

use raft_actors::core::Role;
use raft_actors::node::Metrics;
use raft_actors::transport::PeerMetrics;

use super::{ServiceMetrics, SERIES};

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn node_numbers_are_exported_in_seconds_with_their_labels() {
    let mut m = Metrics {
        role: Role::Leader,
        leader: Some(1),
        last_index: 10,
        matched: BTreeMap::from([(1, 10), (2, 7)]),
        ..Metrics::starting(1)
    };
    let a = &mut m.activity;
    a.storage_write.observe_duration(Duration::from_millis(1));
    a.snapshots_taken.count = 1;
    a.snapshots_taken.bytes = 300;
    a.snapshots_sent
        .seconds
        .observe_duration(Duration::from_secs(2));
    a.events.elections_won = 3;
    let peers = BTreeMap::from([(
        2,
        PeerMetrics {
            bytes_sent: 5,
            frames_received: 4,
            drops: 1,
            ..PeerMetrics::default()
        },
    )]);
    let text = ServiceMetrics::new().render(&m, false, &peers);
    let want = [
        ("raft_leader", 1.0),
        ("raft_peer_match_index{peer=\"2\"}", 7.0),
        ("raft_replication_lag_entries{peer=\"2\"}", 3.0),
        // 1 ms: above the 0.8 ms bound, within the 1.6 ms one.
        ("raft_storage_write_seconds_bucket{le=\"0.0008\"}", 0.0),
        ("raft_storage_write_seconds_bucket{le=\"0.0016\"}", 1.0),
        ("raft_storage_write_seconds_bucket{le=\"+Inf\"}", 1.0),
        ("raft_storage_write_seconds_sum", 0.001),
        ("raft_storage_write_seconds_count", 1.0),
        ("raft_fsync_seconds_count", 0.0),
        ("raft_snapshots_taken_total", 1.0),
        ("raft_snapshot_bytes_total{kind=\"taken\"}", 300.0),
        ("raft_snapshot_seconds_sum{kind=\"sent\"}", 2.0),
        ("raft_elections_won_total", 3.0),
        (
            "raft_transport_bytes_total{peer=\"2\",direction=\"sent\"}",
            5.0,
        ),
        (
            "raft_transport_frames_total{peer=\"2\",direction=\"received\"}",
            4.0,
        ),
        ("raft_transport_drops_total{peer=\"2\"}", 1.0),
        ("raft_transport_drops{peer=\"2\"}", 1.0),
    ];
    for (series, v) in want {
        assert_eq!(sample(&text, series), Some(v), "{series} in:\n{text}");
    }
    // The leader's own match index is not a peer's.
    assert!(!text.contains("raft_peer_match_index{peer=\"1\"}"));
    assert!(text.contains("# TYPE raft_elections_won_total counter\n"));
    assert!(text.contains("# TYPE raft_transport_drops gauge\n"));
    assert!(text.contains("# TYPE raft_storage_write_seconds histogram\n"));
    for name in SERIES {
        assert!(
            text.contains(&format!("# TYPE {name} "))
                || text.contains(&format!("# TYPE {name}_total ")),
            "{name}"
        );
    }
}
