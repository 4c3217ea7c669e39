//! Prometheus metrics whose values are copied in at scrape time from
//! cumulative numbers the node keeps (a counter set to a total, a
//! histogram set from a [`raft_actors::histogram::Histogram`]), for
//! prometheus-client to encode beside the metrics it counts itself.
//!
//! It must never count anything itself: a value is whatever was last set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use raft_actors::histogram::Histogram;

/// A counter set to a total kept elsewhere. Clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct CopiedCounter(Arc<AtomicU64>);

impl CopiedCounter {
    /// Sets the total.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

impl TypedMetric for CopiedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for CopiedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.0.load(Ordering::Relaxed), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[derive(Debug, Default)]
struct Values {
    sum: f64,
    count: u64,
    /// Upper bound (`f64::MAX` for `+Inf`) and count, not cumulated.
    buckets: Vec<(f64, u64)>,
}

/// A histogram set from a node [`Histogram`], its bounds and sum divided
/// into the exported unit. Clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct CopiedHistogram(Arc<Mutex<Values>>);

impl CopiedHistogram {
    /// Copies `h` in, each bound and the sum divided by `per_unit` (1e9
    /// for nanoseconds to seconds).
    pub fn set(&self, h: &Histogram, per_unit: f64) {
        let buckets = h
            .buckets()
            .map(|(bound, n)| (bound.map_or(f64::MAX, |b| b as f64 / per_unit), n))
            .collect();
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *v = Values {
            sum: h.sum() as f64 / per_unit,
            count: h.count(),
            buckets,
        };
    }
}

impl TypedMetric for CopiedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for CopiedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if v.buckets.is_empty() {
            // Never set: an empty histogram still shows its series.
            let empty = [(f64::MAX, 0)];
            return encoder.encode_histogram::<NoLabelSet>(0.0, 0, &empty, None);
        }
        encoder.encode_histogram::<NoLabelSet>(v.sum, v.count, &v.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
