//! Reads through the actor layer: linearizable and lease reads see every
//! acknowledged write, and a partitioned old leader never serves stale
//! data. The bodies live in `raft_actors::testing::cases`, shared with the
//! socket transports.

mod common;

use common::memory;
use raft_actors::testing::cases;

#[actix_rt::test]
async fn linearizable_and_lease_reads_see_acknowledged_writes_on_every_node() {
    cases::linearizable_and_lease_reads_see_acknowledged_writes_on_every_node(memory(20)).await;
}

#[actix_rt::test]
async fn partitioned_old_leader_never_answers_a_linearizable_read_with_stale_data() {
    cases::partitioned_old_leader_never_answers_a_linearizable_read_with_stale_data(memory(21))
        .await;
}

#[actix_rt::test]
async fn a_read_on_a_leader_that_loses_its_quorum_fails_with_no_quorum() {
    cases::a_read_on_a_leader_that_loses_its_quorum_fails_with_no_quorum(memory(23)).await;
}

#[actix_rt::test]
async fn a_leader_frozen_past_its_lease_serves_no_stale_lease_read() {
    cases::a_leader_frozen_past_its_lease_serves_no_stale_lease_read(memory(24)).await;
}
