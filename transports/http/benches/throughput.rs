//! Messages and bytes per second between two nodes over HTTP on loopback:
//! small (an Append of one 100-byte entry per send) and large (an Append
//! of 64 such entries per send). `cargo bench -p raft-actors-transport-http`.
//!
//! A full queue answers `Unreachable`; the sender then yields and retries,
//! so the figure is what the link sustains, not what it drops.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use bytes::Bytes;
use raft_actors::core::{Body, Entry, Message, Payload};
use raft_actors::transport::Peer;
use raft_actors::transport::Transport;
use raft_actors_transport_http::{HttpConfig, HttpTransport};

struct Count(Arc<AtomicU64>);
impl Actor for Count {
    type Context = Context<Self>;
}
impl Handler<Peer> for Count {
    type Result = ();
    fn handle(&mut self, msg: Peer, _: &mut Self::Context) {
        self.0
            .fetch_add(msg.messages.len() as u64, Ordering::Relaxed);
    }
}

fn append(entries: usize) -> Message {
    Message {
        from: 1,
        to: 2,
        term: 1,
        body: Body::Append {
            prev_index: 0,
            prev_term: 0,
            entries: (0..entries as u64)
                .map(|i| Entry {
                    index: i + 1,
                    term: 1,
                    payload: Payload::Command(Bytes::from(vec![7u8; 100])),
                })
                .collect(),
            commit: 0,
        },
    }
}

async fn run(name: &str, entries: usize, sends: u64) {
    let l1 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let l2 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peers: std::collections::BTreeMap<u64, _> = [
        (1, l1.local_addr().expect("addr")),
        (2, l2.local_addr().expect("addr")),
    ]
    .into();
    let got = Arc::new(AtomicU64::new(0));
    let t1 = HttpTransport::new(HttpConfig::new(1, 1, peers.clone()));
    let t2 = HttpTransport::new(HttpConfig::new(2, 1, peers));
    t1.serve(l1, Count(Arc::new(AtomicU64::new(0))).start().recipient())
        .expect("serve");
    t2.serve(l2, Count(Arc::clone(&got)).start().recipient())
        .expect("serve");
    let msg = append(entries);
    // Warm up: connect and handshake before the clock starts.
    while got.load(Ordering::Relaxed) == 0 {
        let _ = t1.send(2, vec![msg.clone()]);
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    let base = got.load(Ordering::Relaxed);
    let bytes0 = t1.metrics().peers[&2].bytes_sent;
    let start = Instant::now();
    let mut sent = 0;
    while sent < sends {
        if t1.send(2, vec![msg.clone()]).is_ok() {
            sent += 1;
        } else {
            actix_rt::task::yield_now().await;
        }
    }
    while got.load(Ordering::Relaxed) < base + sends {
        actix_rt::task::yield_now().await;
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = t1.metrics().peers[&2].bytes_sent - bytes0;
    println!(
        "http {name:5}: {:>10.0} msgs/s {:>10.0} entries/s {:>8.1} MB/s ({sends} sends, {secs:.2}s)",
        sends as f64 / secs,
        (sends * entries as u64) as f64 / secs,
        bytes as f64 / secs / 1e6,
    );
    t1.shutdown().await;
    t2.shutdown().await;
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 200 } else { 300_000 };
    actix_rt::System::new().block_on(async move {
        run("small", 1, n).await;
        run("large", 64, n / 10).await;
    });
}
