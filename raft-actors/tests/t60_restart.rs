//! Restarts: a caught panic, a crash, a failing disk. Pending requests of
//! the dead incarnation fail with an explicit error, nothing acknowledged
//! is lost, and the node rejoins; a node whose storage cannot be read stays
//! down and says why. The bodies live in `raft_actors::testing::cases`,
//! shared with the socket transports.

mod common;

use common::memory;
use raft_actors::testing::cases;

#[actix_rt::test]
async fn caught_panic_fails_pending_requests_and_the_node_rejoins() {
    cases::caught_panic_fails_pending_requests_and_the_node_rejoins(memory(30)).await;
}

#[actix_rt::test]
async fn crashed_follower_restarts_from_storage_and_rebuilds_its_state_machine() {
    cases::crashed_follower_restarts_from_storage_and_rebuilds_its_state_machine(memory(31)).await;
}

#[actix_rt::test]
async fn snapshot_is_saved_and_restores_a_crashed_state_machine() {
    cases::snapshot_is_saved_and_restores_a_crashed_state_machine(memory(32)).await;
}

#[actix_rt::test]
async fn failing_disk_stops_the_node_and_unreadable_storage_keeps_it_down() {
    cases::failing_disk_stops_the_node_and_unreadable_storage_keeps_it_down(memory(33)).await;
}

#[actix_rt::test]
async fn shutdown_interrupts_pending_requests_and_refuses_new_ones() {
    cases::shutdown_interrupts_pending_requests_and_refuses_new_ones(memory(34)).await;
}
