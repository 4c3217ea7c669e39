//! The memory transport passes the `Transport` conformance suite, clean and
//! (for the rules that still hold) under faults.

use actix::Recipient;
use raft_actors::testing::{transport_suite, TransportHarness};
use raft_actors::transport::Peer;
use raft_actors_transport_memory::{MemoryNetwork, MemoryTransport};

struct Harness(MemoryNetwork);

impl TransportHarness for Harness {
    type T = MemoryTransport;

    fn endpoint(&mut self, id: u64, inbox: Recipient<Peer>) -> MemoryTransport {
        self.0.register(id, inbox);
        self.0.transport(id)
    }

    async fn disconnect(&mut self, id: u64) {
        self.0.unregister(id);
    }

    fn max_batch_bytes(&self) -> usize {
        1 << 20
    }
}

#[actix_rt::test]
async fn conformance() {
    let net = MemoryNetwork::new(1);
    net.set_max_batch_bytes(1 << 20);
    transport_suite(Harness(net)).await;
}

/// One seed, one fault pattern: two networks with the same seed and the
/// same sends drop and duplicate exactly the same messages; another seed
/// does not.
#[actix_rt::test]
async fn faults_are_decided_by_the_seed() {
    use std::time::Duration;

    use raft_actors::core::{Body, Message};
    use raft_actors::transport::Transport;
    use raft_actors_transport_memory::LinkFaults;

    async fn pattern(seed: u64) -> Vec<u64> {
        let net = MemoryNetwork::new(seed);
        let (mailbox, mut rx) = raft_actors::testing::inbox();
        net.register(2, mailbox);
        let faults = LinkFaults {
            drop: 0.3,
            duplicate: 0.2,
            reorder: 0.0,
            max_delay: Duration::ZERO,
        };
        net.set_link(1, 2, faults);
        let t = net.transport(1);
        for seq in 0..200 {
            let m = Message {
                from: 1,
                to: 2,
                term: 1,
                body: Body::HeartbeatResponse { seq },
            };
            t.send(2, vec![m]).expect("queued");
        }
        let expected = net.stats().delivered as usize;
        let mut got = Vec::new();
        while got.len() < expected {
            let batch = actix_rt::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("delivered within the deadline")
                .expect("collector alive");
            for m in batch.messages {
                if let Body::HeartbeatResponse { seq } = m.body {
                    got.push(seq);
                }
            }
        }
        got
    }

    let a = pattern(7).await;
    let b = pattern(7).await;
    let c = pattern(8).await;
    assert_eq!(a, b, "the same seed gives the same losses and duplicates");
    assert_ne!(a, c, "another seed gives another pattern");
    assert!(
        a.len() < 200 + 60 && a.len() > 100,
        "faults happened: {} delivered",
        a.len()
    );
}
