//! `raft-load`: drives a running raft-kv, raft-counter or raft-queue over
//! HTTP with N concurrent clients for a duration, and prints throughput and
//! latency percentiles.
//!
//! ```text
//! raft-load --target http://127.0.0.1:8001 --service kv --clients 64 --duration 10s
//! raft-load --target http://127.0.0.1:2379 --service etcd --clients 64   # the same load on etcd
//! ```
//!
//! Each client is a thread with its own kept-alive connection, issuing one
//! request at a time (closed loop). Only 2xx answers (and a queue's 204)
//! count as operations; others are tallied by status.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Kv,
    Counter,
    Queue,
    /// An etcd v3 cluster through its HTTP/JSON gateway (`/v3/kv/put`,
    /// `/v3/kv/range`), for side-by-side figures with the same clients.
    Etcd,
}

#[derive(Parser, Debug)]
#[command(
    name = "raft-load",
    version,
    about = "Load generator for the example services"
)]
struct Args {
    /// Node client URLs, comma-separated; clients are spread over them.
    #[arg(long, value_delimiter = ',', required = true)]
    target: Vec<String>,
    /// Which service the targets run.
    #[arg(long, value_enum, default_value_t = Kind::Kv)]
    service: Kind,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long to run: `10s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Percent of operations that are reads (GET /kv, GET /counter, GET /queue/len).
    #[arg(long, default_value_t = 0)]
    read_percent: u8,
    /// Value size for raft-kv writes and raft-queue pushes, in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Distinct keys written by raft-kv clients.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// `?consistency=` of reads.
    #[arg(long, default_value = "linearizable")]
    consistency: String,
    /// Write each of the `--keys` keys once (`k0`, `k1`, ...), spread over
    /// the clients, then stop: fills raft-kv with `keys × value_size`
    /// bytes of values. `--duration` and `--read-percent` are ignored.
    #[arg(long)]
    fill: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{s}`: use ms, s or m")),
    }
}

/// What one client saw.
struct Tally {
    latency: Histogram<u64>,
    failures: BTreeMap<String, u64>,
}

/// A tiny deterministic generator per client (xorshift), so runs repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn client(args: &Args, n: usize, until: Instant) -> anyhow::Result<Tally> {
    let base = &args.target[n % args.target.len()];
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
    let value = vec![b'x'; args.value_size];
    let b64 = base64::engine::general_purpose::STANDARD;
    let etcd_value = b64.encode(&value);
    let mut tally = Tally {
        latency: Histogram::new_with_bounds(1, 120_000_000, 3).context("histogram")?,
        failures: BTreeMap::new(),
    };
    let c = &args.consistency;
    let mut next_fill = n as u64;
    loop {
        let key = if args.fill {
            if next_fill >= args.keys {
                break;
            }
            next_fill += args.clients as u64;
            next_fill - args.clients as u64
        } else if Instant::now() >= until {
            break;
        } else {
            rng.next() % args.keys
        };
        let read = !args.fill && (rng.next() % 100) < u64::from(args.read_percent);
        let started = Instant::now();
        let res = match (args.service, read) {
            (Kind::Kv, false) => agent.put(&format!("{base}/kv/k{key}")).send_bytes(&value),
            (Kind::Kv, true) => agent
                .get(&format!("{base}/kv/k{key}?consistency={c}"))
                .call(),
            (Kind::Counter, false) => agent
                .post(&format!("{base}/counter/add"))
                .send_bytes(br#"{"delta": 1}"#),
            (Kind::Counter, true) => agent.get(&format!("{base}/counter?consistency={c}")).call(),
            (Kind::Queue, false) if rng.next() % 2 == 0 => {
                agent.post(&format!("{base}/queue")).send_bytes(&value)
            }
            (Kind::Queue, false) => agent.post(&format!("{base}/queue/pop")).call(),
            (Kind::Queue, true) => agent
                .get(&format!("{base}/queue/len?consistency={c}"))
                .call(),
            (Kind::Etcd, false) => agent.post(&format!("{base}/v3/kv/put")).send_bytes(
                format!(
                    r#"{{"key":"{}","value":"{}"}}"#,
                    b64.encode(format!("k{key}")),
                    etcd_value
                )
                .as_bytes(),
            ),
            // etcd's range is linearizable unless `serializable` is set.
            (Kind::Etcd, true) => agent.post(&format!("{base}/v3/kv/range")).send_bytes(
                format!(
                    r#"{{"key":"{}","serializable":{}}}"#,
                    b64.encode(format!("k{key}")),
                    c == "stale"
                )
                .as_bytes(),
            ),
        };
        let outcome = match res {
            Ok(r) => {
                // Drain the body so the connection is reused.
                let mut sink = Vec::new();
                let _ = r.into_reader().take(8 << 20).read_to_end(&mut sink);
                None
            }
            // A kv read of a key never written is a fine answer.
            Err(ureq::Error::Status(404, _)) if read => None,
            Err(ureq::Error::Status(code, _)) => Some(code.to_string()),
            Err(ureq::Error::Transport(t)) => Some(format!("transport: {}", t.kind())),
        };
        match outcome {
            None => {
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency.saturating_record(us.max(1));
            }
            Some(why) => *tally.failures.entry(why).or_default() += 1,
        }
    }
    Ok(tally)
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let until = Instant::now() + args.duration;
    let started = Instant::now();
    let tallies: Vec<anyhow::Result<Tally>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.clients)
            .map(|n| {
                let args = &args;
                s.spawn(move || client(args, n, until))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client panicked")))
            })
            .collect()
    });
    let took = started.elapsed().as_secs_f64();
    let mut all = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).context("histogram")?;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for t in tallies {
        let t = t?;
        all.add(&t.latency).context("merging histograms")?;
        for (k, v) in t.failures {
            *failures.entry(k).or_default() += v;
        }
    }
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "service={:?} clients={} duration={:.1}s read_percent={} value_size={}",
        args.service, args.clients, took, args.read_percent, args.value_size
    );
    println!(
        "ok={} failed={} throughput={:.0} ops/s",
        all.len(),
        failures.values().sum::<u64>(),
        all.len() as f64 / took
    );
    println!(
        "latency ms: p50={:.2} p90={:.2} p99={:.2} p99.9={:.2} max={:.2}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        all.max() as f64 / 1000.0
    );
    if !failures.is_empty() {
        println!("failures: {failures:?}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
