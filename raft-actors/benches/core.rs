//! The pure core alone: a 3-node cluster exchanging messages in one thread,
//! no I/O (persisting is a no-op), 100-byte proposals in batches. Measures
//! entries committed (and applied on the leader) per second.
//!
//! `cargo bench -p raft-actors --bench core`

use std::collections::VecDeque;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raft_actors::core::{Config, Membership, Message, RaftCore, Recovered, Role};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

struct Cluster {
    nodes: Vec<RaftCore>,
    queue: VecDeque<Message>,
    applied: Vec<u64>,
}

impl Cluster {
    fn new() -> Self {
        let members = Membership::voters([1, 2, 3]);
        let nodes = (1..=3)
            .map(|id| {
                let rng = ChaCha8Rng::seed_from_u64(id);
                RaftCore::new(
                    id,
                    Config::default(),
                    Recovered::bootstrap(members.clone()),
                    rng,
                )
                .expect("valid config")
            })
            .collect();
        let mut c = Cluster {
            nodes,
            queue: VecDeque::new(),
            applied: vec![0; 3],
        };
        while c.nodes[0].role() != Role::Leader {
            for n in &mut c.nodes {
                n.tick();
            }
            c.pump();
        }
        c
    }

    /// Executes every Ready and delivers every message until quiet.
    fn pump(&mut self) {
        loop {
            for (i, n) in self.nodes.iter_mut().enumerate() {
                while let Some(rd) = n.ready() {
                    let (_persist, gate) = rd.split(); // memory "disk": nothing to do
                    let after = gate.persisted();
                    self.queue.extend(after.messages);
                    self.applied[i] += after.committed.len() as u64;
                    n.advance();
                }
            }
            if self.queue.is_empty() {
                return;
            }
            while let Some(m) = self.queue.pop_front() {
                let to = (m.to - 1) as usize;
                self.nodes[to].step(m);
            }
        }
    }
}

fn commit_throughput(c: &mut Criterion) {
    let payload = Bytes::from(vec![7u8; 100]);
    let mut group = c.benchmark_group("core_3_nodes");
    for batch in [64u64, 1024] {
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(
            BenchmarkId::new("commit_100B", batch),
            &batch,
            |b, &batch| {
                let mut cluster = Cluster::new();
                let mut id = 0;
                b.iter(|| {
                    let target = cluster.applied[0] + batch;
                    for _ in 0..batch {
                        id += 1;
                        cluster.nodes[0]
                            .propose(id, payload.clone())
                            .expect("leader accepts");
                    }
                    while cluster.applied[0] < target {
                        cluster.pump();
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, commit_throughput);
criterion_main!(benches);
