//! A histogram for the request path: each HTTP thread observes into its own
//! shard, which only that thread writes (plain loads and stores of atomics,
//! no lock and no read-modify-write shared between threads), and a scrape
//! sums the shards. The crate's `Histogram` takes a write lock per
//! observation, shared by every thread that observes it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// One series: its bucket bounds and every thread's shard of it.
#[derive(Clone, Debug)]
pub(crate) struct Sharded {
    /// The buckets' upper bounds, the last one `f64::MAX` (`+Inf`).
    bounds: Arc<[f64]>,
    shards: Arc<Mutex<Vec<Arc<Shard>>>>,
}

/// One thread's observations of a series.
#[derive(Debug)]
pub(crate) struct Shard {
    bounds: Arc<[f64]>,
    /// The sum's `f64` bits.
    sum: AtomicU64,
    /// Observations per bucket (not cumulative).
    buckets: Box<[AtomicU64]>,
}

impl Sharded {
    /// A series with these buckets' upper bounds (and `+Inf`).
    pub(crate) fn new(bounds: impl IntoIterator<Item = f64>) -> Sharded {
        let bounds: Arc<[f64]> = bounds.into_iter().chain([f64::MAX]).collect();
        Sharded {
            bounds,
            shards: Arc::default(),
        }
    }

    /// A new shard for the calling thread to keep and observe into.
    pub(crate) fn shard(&self) -> Arc<Shard> {
        let shard = Arc::new(Shard {
            bounds: Arc::clone(&self.bounds),
            sum: AtomicU64::new(0f64.to_bits()),
            buckets: self.bounds.iter().map(|_| AtomicU64::new(0)).collect(),
        });
        self.lock().push(Arc::clone(&shard));
        shard
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Shard>>> {
        // A shard list stays whole whatever panicked while holding it.
        self.shards.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sum, the count and the per-bucket counts over every shard. The
    /// count is the buckets' total, so the exposition is consistent even
    /// while threads observe.
    fn totals(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = self.bounds.iter().map(|&b| (b, 0)).collect();
        let mut sum = 0.0;
        for shard in self.lock().iter() {
            sum += f64::from_bits(shard.sum.load(Relaxed));
            for (total, n) in buckets.iter_mut().zip(shard.buckets.iter()) {
                total.1 += n.load(Relaxed);
            }
        }
        let count = buckets.iter().map(|b| b.1).sum();
        (sum, count, buckets)
    }
}

impl Shard {
    /// Records `v`. Only the thread that owns the shard calls this, so a
    /// load and a store cannot lose an update.
    pub(crate) fn observe(&self, v: f64) {
        let sum = f64::from_bits(self.sum.load(Relaxed)) + v;
        self.sum.store(sum.to_bits(), Relaxed);
        // `+Inf` (f64::MAX) takes what no bound does, NaN included.
        let at = self
            .bounds
            .iter()
            .position(|&bound| v <= bound)
            .unwrap_or(self.bounds.len() - 1);
        let bucket = &self.buckets[at];
        bucket.store(bucket.load(Relaxed) + 1, Relaxed);
    }
}

impl TypedMetric for Sharded {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Sharded {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.totals();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_sum_at_scrape() {
        let series = Sharded::new([1.0, 10.0]);
        let (a, b) = (series.shard(), series.shard());
        a.observe(0.5);
        a.observe(5.0);
        b.observe(20.0);
        b.observe(1.0);
        let (sum, count, buckets) = series.totals();
        assert_eq!(sum, 26.5);
        assert_eq!(count, 4);
        assert_eq!(buckets, vec![(1.0, 2), (10.0, 1), (f64::MAX, 1)]);
        // A thread observing while another scrapes.
        let shard = series.shard();
        let writer = std::thread::spawn(move || (0..1000).for_each(|_| shard.observe(2.0)));
        writer.join().unwrap();
        assert_eq!(series.totals().1, 1004);
    }
}
