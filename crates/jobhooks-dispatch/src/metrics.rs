//! What a dispatcher measures of its runs, by job: how each ended, how long it ran, and how long
//! it waited from its commit (or press) to its first start. Read through [`crate::Monitor::jobs`];
//! the server exposes them on `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use jobhooks_model::JobStatus;
use serde::{Deserialize, Serialize};

/// The upper bounds of [`Histogram`]'s buckets, in seconds: from a millisecond to five minutes.
pub const BUCKETS: [f64; 15] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Durations counted into fixed buckets, the way Prometheus' histograms are: each bucket counts
/// the observations at most its bound, plus a count and a sum of all.
///
/// ```
/// use std::time::Duration;
/// use jobhooks_dispatch::Histogram;
///
/// let mut latency = Histogram::default();
/// latency.observe(Duration::from_millis(3));
/// latency.observe(Duration::from_secs(2));
/// let at_most_10_ms = latency.cumulative().find(|(bound, _)| *bound == 0.01).unwrap().1;
/// assert_eq!((at_most_10_ms, latency.count()), (1, 2));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last counts those above every bound.
    counts: [u64; BUCKETS.len() + 1],
    /// The sum of the observations, in seconds.
    sum: f64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum += seconds;
    }

    /// Each bound with the observations at most it, ascending; the last bound is `f64::INFINITY`
    /// and counts every observation.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKETS.iter().copied().chain(std::iter::once(f64::INFINITY)).zip(self.counts.iter().scan(0, |total, count| {
            *total += count;
            Some(*total)
        }))
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the observations, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }
}

/// One job's runs as this dispatcher saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobMetrics {
    /// Runs that ended in `SUCCESS`.
    pub succeeded: u64,
    /// Runs that ended in `FAILURE`.
    pub failed: u64,
    /// Failed attempts scheduled for retry.
    pub retried: u64,
    /// Runs dead-lettered.
    pub dead_lettered: u64,
    /// How long attempts took, from preparing the run to its outcome.
    pub duration: Histogram,
    /// How long first attempts waited from the commit (or press) that queued them to their start.
    pub start_latency: Histogram,
}

/// The per-job figures a dispatcher's workers share.
#[derive(Debug, Default)]
pub(crate) struct RunMetrics(Mutex<BTreeMap<String, JobMetrics>>);

impl RunMetrics {
    fn with<T>(&self, job: &str, change: impl FnOnce(&mut JobMetrics) -> T) -> T {
        let mut jobs = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !jobs.contains_key(job) {
            jobs.insert(job.to_owned(), JobMetrics::default());
        }
        change(jobs.get_mut(job).expect("inserted above"))
    }

    /// A first attempt of `job` started `latency` after its commit.
    pub fn started(&self, job: &str, latency: Duration) {
        self.with(job, |metrics| metrics.start_latency.observe(latency));
    }

    /// An attempt of `job` took `duration` and ended `status`.
    pub fn ended(&self, job: &str, duration: Duration, status: JobStatus) {
        self.with(job, |metrics| {
            metrics.duration.observe(duration);
            let counter = match status {
                JobStatus::Success => &mut metrics.succeeded,
                JobStatus::Retrying => &mut metrics.retried,
                JobStatus::DeadLettered => &mut metrics.dead_lettered,
                _ => &mut metrics.failed,
            };
            *counter += 1;
        });
    }

    /// Every job's figures so far.
    pub fn snapshot(&self) -> BTreeMap<String, JobMetrics> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bounds_are_inclusive_and_the_last_bucket_takes_the_rest() {
        let mut histogram = Histogram::default();
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_secs(3_600));
        let cumulative: Vec<(f64, u64)> = histogram.cumulative().collect();
        assert_eq!(cumulative[0], (0.001, 1), "a millisecond is in the 1 ms bucket");
        assert_eq!(cumulative[BUCKETS.len() - 1], (300.0, 1));
        assert_eq!(cumulative[BUCKETS.len()], (f64::INFINITY, 2));
    }

    #[test]
    fn outcomes_are_counted_by_job() {
        let metrics = RunMetrics::default();
        metrics.started("a", Duration::from_millis(2));
        metrics.ended("a", Duration::from_millis(5), JobStatus::Success);
        metrics.ended("a", Duration::from_millis(5), JobStatus::Retrying);
        metrics.ended("b", Duration::from_millis(5), JobStatus::DeadLettered);
        let jobs = metrics.snapshot();
        assert_eq!((jobs["a"].succeeded, jobs["a"].retried, jobs["a"].start_latency.count()), (1, 1, 1));
        assert_eq!((jobs["b"].dead_lettered, jobs["b"].duration.count()), (1, 1));
    }

    proptest! {
        /// The cumulative counts never fall, the last is the count, each counts exactly the
        /// observations at most its bound, and the sum is the observations' sum.
        #[test]
        fn a_histogram_agrees_with_its_observations(micros in proptest::collection::vec(0u64..400_000_000, 0..64)) {
            let mut histogram = Histogram::default();
            for value in &micros {
                histogram.observe(Duration::from_micros(*value));
            }
            let cumulative: Vec<(f64, u64)> = histogram.cumulative().collect();
            prop_assert!(cumulative.windows(2).all(|pair| pair[0].1 <= pair[1].1 && pair[0].0 < pair[1].0));
            prop_assert_eq!(cumulative.last().map(|last| last.1), Some(micros.len() as u64));
            prop_assert_eq!(histogram.count(), micros.len() as u64);
            for (bound, count) in cumulative {
                let expected = micros.iter().filter(|value| Duration::from_micros(**value).as_secs_f64() <= bound).count();
                prop_assert_eq!(count, expected as u64);
            }
            let sum: f64 = micros.iter().map(|value| Duration::from_micros(*value).as_secs_f64()).sum();
            prop_assert!((histogram.sum() - sum).abs() < 1e-6 * sum.max(1.0));
        }
    }
}
