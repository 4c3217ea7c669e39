//! [`Histogram`]: fixed-bucket counts of latencies and sizes the node
//! measures (storage writes, fsyncs, applies, snapshots), published in its
//! [`Metrics`](crate::node::Metrics) as plain numbers, so an exporter (the
//! service's Prometheus `/metrics`) renders them without this crate
//! depending on one.
//!
//! Recording is one bucket search and three additions: it must never
//! allocate on the hot path, block, or fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the latency buckets, in nanoseconds: 25 µs doubling to
/// about 3.3 s; slower samples land in the overflow bucket (`+Inf`).
pub const LATENCY_BOUNDS_NANOS: [u64; 18] = {
    let mut b = [0u64; 18];
    let mut i = 0;
    while i < 18 {
        b[i] = 25_000 << i;
        i += 1;
    }
    b
};

/// Upper bounds of the count buckets (entries per storage write): 1, 2, 4,
/// ... 4096; larger samples land in the overflow bucket.
pub const COUNT_BOUNDS: [u64; 13] = {
    let mut b = [0u64; 13];
    let mut i = 0;
    while i < 13 {
        b[i] = 1 << i;
        i += 1;
    }
    b
};

/// The most buckets a histogram has (the latency bounds and `+Inf`).
const MAX_BUCKETS: usize = LATENCY_BOUNDS_NANOS.len() + 1;

/// Samples counted into fixed buckets, with their sum.
///
/// ```
/// use raft_actors::histogram::Histogram;
/// use std::time::Duration;
/// let mut h = Histogram::latency();
/// h.observe_duration(Duration::from_micros(30));
/// h.observe_duration(Duration::from_secs(10));
/// assert_eq!((h.count(), h.sum()), (2, 10_000_030_000));
/// let cumulative: Vec<u64> = h.cumulative().map(|(_, n)| n).collect();
/// assert_eq!(cumulative[0], 0); // 30 µs is above the 25 µs bound
/// assert_eq!(cumulative[1], 1);
/// assert_eq!(*cumulative.last().unwrap(), 2); // +Inf holds every sample
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, then the overflow bucket; not cumulative. An
    /// array, not a `Vec`: the node copies its histograms into every
    /// metrics it publishes, and a copy must not allocate.
    counts: [u64; MAX_BUCKETS],
    sum: u64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::latency()
    }
}

impl Histogram {
    /// A histogram of durations in nanoseconds ([`LATENCY_BOUNDS_NANOS`]).
    pub fn latency() -> Self {
        Self::with_bounds(&LATENCY_BOUNDS_NANOS)
    }

    /// A histogram of counts ([`COUNT_BOUNDS`]).
    pub fn counts() -> Self {
        Self::with_bounds(&COUNT_BOUNDS)
    }

    fn with_bounds(bounds: &'static [u64]) -> Self {
        Histogram {
            // At most MAX_BUCKETS - 1 bounds: both constants are.
            bounds: &bounds[..bounds.len().min(MAX_BUCKETS - 1)],
            counts: [0; MAX_BUCKETS],
            sum: 0,
            count: 0,
        }
    }

    /// Counts one sample of `value` (in the histogram's unit).
    pub fn observe(&mut self, value: u64) {
        let bucket = self.bounds.partition_point(|b| *b < value);
        if let Some(c) = self.counts.get_mut(bucket) {
            *c += 1;
        }
        self.sum = self.sum.saturating_add(value);
        self.count += 1;
    }

    /// Counts one duration, in nanoseconds.
    pub fn observe_duration(&mut self, took: Duration) {
        self.observe(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// How many samples were counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the samples (saturating), in the histogram's unit.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Each bucket's upper bound (`None` for the overflow bucket) with how
    /// many samples it holds, not cumulated.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        self.counts[..=self.bounds.len()]
            .iter()
            .enumerate()
            .map(|(i, n)| (self.bounds.get(i).copied(), *n))
    }

    /// Each bucket's upper bound with the samples at or below it, the
    /// Prometheus way (the last, `None`, is `+Inf` and holds every sample).
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        self.buckets().scan(0u64, |acc, (bound, n)| {
            *acc += n;
            Some((bound, *acc))
        })
    }
}

/// A [`Histogram`] shared between actors (the apply actor records, the
/// node publishes). Clones share it.
#[derive(Clone, Debug, Default)]
pub struct SharedHistogram(Arc<Mutex<Histogram>>);

impl SharedHistogram {
    /// Counts one duration.
    pub fn observe_duration(&self, took: Duration) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe_duration(took);
    }

    /// A copy of the counts as they are now.
    pub fn get(&self) -> Histogram {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_at_or_above_them() {
        let mut h = Histogram::counts();
        for v in [0, 1, 2, 3, 4096, 4097] {
            h.observe(v);
        }
        let b: Vec<(Option<u64>, u64)> = h.buckets().collect();
        assert_eq!(b[0], (Some(1), 2)); // 0 and 1
        assert_eq!(b[1], (Some(2), 1));
        assert_eq!(b[2], (Some(4), 1));
        assert_eq!(b[12], (Some(4096), 1));
        assert_eq!(b[13], (None, 1));
        assert_eq!(h.cumulative().last(), Some((None, 6)));
        assert_eq!(h.sum(), 1 + 2 + 3 + 4096 + 4097);
    }

    #[test]
    fn latency_bounds_double_from_25_microseconds() {
        assert_eq!(LATENCY_BOUNDS_NANOS[0], 25_000);
        assert_eq!(LATENCY_BOUNDS_NANOS[17], 25_000 << 17);
        let shared = SharedHistogram::default();
        shared.clone().observe_duration(Duration::from_millis(1));
        assert_eq!(shared.get().count(), 1);
    }
}
