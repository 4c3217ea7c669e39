//! Faults of the user's state machine and of restarts from a snapshot: a
//! panic in `Apply` restarts the node with a state machine rebuilt from
//! snapshot and log (nothing acknowledged lost), and a node restarted from
//! a snapshot serves reads at once. The bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::memory;
use raft_actors::testing::cases;

#[actix_rt::test]
async fn a_panic_in_apply_restarts_the_node_with_a_rebuilt_state_machine() {
    cases::a_panic_in_apply_restarts_the_node_with_a_rebuilt_state_machine(memory(65)).await;
}

#[actix_rt::test]
async fn a_node_restarted_from_a_snapshot_serves_linearizable_reads_at_once() {
    cases::a_node_restarted_from_a_snapshot_serves_linearizable_reads_at_once(memory(66)).await;
}
