//! A histogram of durations built from atomics, for the proxy hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A histogram of durations built from atomics: observing takes no lock.
/// Clones share the same buckets.
#[derive(Debug, Clone)]
pub struct AtomicHistogram {
    inner: Arc<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    bounds: Vec<f64>,
    bounds_nanos: Vec<u64>,
    /// One more than `bounds`: the last is +Inf.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    /// Buckets with these upper bounds, in seconds, ascending.
    pub fn new(bounds: &[f64]) -> Self {
        let inner = Buckets {
            bounds: bounds.to_vec(),
            bounds_nanos: bounds.iter().map(|b| (b * 1e9) as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let b = &*self.inner;
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = b.bounds_nanos.partition_point(|&b| b < nanos);
        b.counts[bucket].fetch_add(1, Ordering::Relaxed);
        b.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let b = &*self.inner;
        let mut total = 0;
        let buckets = b
            .bounds
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(&b.counts)
            .map(|(bound, count)| {
                let c = count.load(Ordering::Relaxed);
                total += c;
                (bound, c)
            })
            .collect();
        (b.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9, total, buckets)
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
