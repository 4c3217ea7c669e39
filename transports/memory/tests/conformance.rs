//! The memory transport passes the `Transport` conformance suite, clean and
//! (for the rules that still hold) under faults.

use actix::Recipient;
use raft_actors::node::messages::peer::Peer;
use raft_actors::testing::{transport_suite, TransportHarness};
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
