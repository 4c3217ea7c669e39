//! The HTTP transport passes the `Transport` conformance suite over
//! loopback.

mod common;

use raft_actors::testing::transport_suite;

#[actix_rt::test]
async fn conformance() {
    common::init_logging();
    transport_suite(common::Harness::new(&[1, 2, 3], 1 << 20)).await;
}
