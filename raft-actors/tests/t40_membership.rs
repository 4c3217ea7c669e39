//! Membership changes through the actor runtime: remove a follower, add it
//! back as a learner and promote it once caught up, remove the leader
//! itself; writes go on throughout. The body lives in
//! `raft_actors::testing::cases`, shared with the socket transports.

mod common;

use common::memory;
use raft_actors::testing::cases;

#[actix_rt::test]
async fn remove_readd_promote_and_remove_the_leader() {
    cases::remove_readd_promote_and_remove_the_leader(memory(40)).await;
}
