//! Replication through the actor layer: proposals on the leader and on
//! followers are applied everywhere, batched into few storage writes, and
//! bounded by the proposal queue. The bodies live in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::{memory, memory_with};
use raft_actors::testing::cases;

#[actix_rt::test]
async fn leader_proposals_apply_everywhere_with_outputs() {
    cases::leader_proposals_apply_everywhere(memory(10)).await;
}

#[actix_rt::test]
async fn metrics_subscription_reports_role_term_commit_and_follower_match() {
    cases::metrics_subscription_reports_role_term_commit_and_follower_match(memory(14)).await;
}

#[actix_rt::test]
async fn a_write_that_cannot_commit_times_out_with_outcome_unknown() {
    cases::a_write_that_cannot_commit_times_out_with_outcome_unknown(memory(15)).await;
}

#[actix_rt::test]
async fn proposal_on_a_follower_is_forwarded_and_applied_there() {
    cases::follower_proposal_is_forwarded(memory(11)).await;
}

#[actix_rt::test]
async fn concurrent_proposals_are_group_committed() {
    cases::concurrent_proposals_are_group_committed(memory(12)).await;
}

#[actix_rt::test]
async fn a_full_proposal_queue_answers_busy() {
    cases::a_full_proposal_queue_answers_busy(memory_with(13, cases::small_queue_config())).await;
}

#[actix_rt::test]
async fn a_lagging_follower_catches_up_from_entries_read_back_from_storage() {
    let b = memory_with(16, cases::no_log_cache_config());
    cases::lagging_follower_catches_up_from_entries_read_back(b).await;
}
