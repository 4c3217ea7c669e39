//! [`group_suite`]: the multi-raft part of the [`NetworkTransport`]
//! contract as one test any socket adapter can run: one transport per
//! node carries the batches of many Raft groups, and each batch reaches
//! its own group's mailbox, never another group's.

use std::net::TcpListener;
use std::time::Duration;

use tokio::sync::mpsc;

use super::transport_suite::{heartbeat, inbox};
use crate::core::{Body, GroupId, DEFAULT_GROUP};
use crate::transport::{NetworkTransport, Peer};

const DEADLINE: Duration = Duration::from_secs(5);

/// Groups the suite routes, beside [`DEFAULT_GROUP`].
pub const SUITE_GROUPS: GroupId = 24;

/// The heartbeat sequence numbers a batch carries, to tell groups apart.
fn seqs(p: &Peer) -> Vec<u64> {
    p.messages
        .iter()
        .filter_map(|m| match m.body {
            Body::Heartbeat { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

/// Runs the groups contract: `a` is node 1 and `b` node 2 of one cluster,
/// each constructed knowing where the other listens (`la`, `lb`), neither
/// serving yet, both with [`DEFAULT_GROUP`] as their own group. `a` serves
/// [`DEFAULT_GROUP`] and groups `1..=SUITE_GROUPS`, each to its own
/// mailbox; `b` sends every group a heartbeat whose sequence number is
/// the group, resending (every 20 ms) until it arrives, as Raft would.
///
/// # Panics
/// If a group's batch does not arrive within 5 s, or arrives at another
/// group's mailbox.
pub async fn group_suite(
    a: &dyn NetworkTransport,
    la: TcpListener,
    b: &dyn NetworkTransport,
    lb: TcpListener,
) {
    let (m0, rx0) = inbox();
    a.serve(la, m0).expect("node 1 serves");
    let mut rxs: Vec<mpsc::UnboundedReceiver<Peer>> = vec![rx0];
    for g in 1..=SUITE_GROUPS {
        let (m, rx) = inbox();
        a.serve_group(g, m);
        rxs.push(rx);
    }
    let (mb, _rxb) = inbox();
    b.serve(lb, mb).expect("node 2 serves");
    let senders: Vec<_> = (0..=SUITE_GROUPS).map(|g| b.group_sender(g)).collect();
    let deadline = actix_rt::time::Instant::now() + DEADLINE;
    let mut poll = actix_rt::time::interval(Duration::from_millis(20));
    let mut arrived = vec![false; rxs.len()];
    while arrived.iter().any(|a| !a) {
        assert!(
            actix_rt::time::Instant::now() < deadline,
            "group suite: groups {:?} got nothing within {DEADLINE:?}",
            arrived
                .iter()
                .enumerate()
                .filter(|(_, a)| !**a)
                .map(|(g, _)| g)
                .collect::<Vec<_>>()
        );
        for (g, sender) in senders.iter().enumerate() {
            if !arrived[g] {
                let _ = sender.send(1, vec![heartbeat(2, 1, g as u64)]);
            }
        }
        poll.tick().await;
        for (g, rx) in rxs.iter_mut().enumerate() {
            while let Ok(p) = rx.try_recv() {
                assert_eq!(
                    seqs(&p),
                    vec![g as u64],
                    "group suite: group {g}'s mailbox got another group's batch"
                );
                arrived[g] = true;
            }
        }
    }
    assert_eq!(DEFAULT_GROUP, 0, "the suite numbers groups from 0");
}
