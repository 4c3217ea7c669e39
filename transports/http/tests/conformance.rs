//! The HTTP transport passes the `Transport` conformance suite over
//! loopback, and lets heartbeats overtake snapshot chunks.

mod common;

use raft_actors::testing::{heartbeats_overtake_snapshot_chunks, transport_suite};

#[actix_rt::test]
async fn conformance() {
    common::init_logging();
    transport_suite(common::Harness::new(&[1, 2, 3], 1 << 20)).await;
}

#[actix_rt::test]
async fn snapshot_chunks_do_not_delay_heartbeats() {
    common::init_logging();
    heartbeats_overtake_snapshot_chunks(common::Harness::new(&[1, 2], 1 << 20)).await;
}
