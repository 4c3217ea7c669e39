//! The HTTP transport passes the `Transport` conformance suite over
//! loopback, in plain text and over mutual TLS, and lets heartbeats overtake snapshot chunks.

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

#[actix_rt::test]
async fn conformance_over_mutual_tls() {
    common::init_logging();
    transport_suite(common::Harness::new(&[1, 2, 3], 1 << 20).with_tls()).await;
}

#[actix_rt::test]
async fn snapshot_chunks_do_not_delay_heartbeats_over_tls() {
    common::init_logging();
    heartbeats_overtake_snapshot_chunks(common::Harness::new(&[1, 2], 1 << 20).with_tls()).await;
}
