//! Retry policies: how many attempts a run gets and how long it waits between them.

use std::time::Duration;

/// How a failed attempt (an error, a panic or a timeout) is followed up.
///
/// With `max_attempts == 1` (the default, as in Nautobot) a failed run is simply `FAILURE`. With
/// more, a failed attempt is retried after an exponential backoff with jitter, and a run that failed
/// on every attempt is dead-lettered, to be inspected and replayed.
///
/// ```
/// use std::time::Duration;
/// use jobhooks_dispatch::{AfterFailure, RetryPolicy};
/// let policy = RetryPolicy::retries(3, Duration::from_millis(100), Duration::from_secs(10)).without_jitter();
/// assert_eq!(policy.after_failure(1, 0.0), AfterFailure::RetryIn(Duration::from_millis(100)));
/// assert_eq!(policy.after_failure(2, 0.0), AfterFailure::RetryIn(Duration::from_millis(200)));
/// assert_eq!(policy.after_failure(3, 0.0), AfterFailure::DeadLetter);
/// assert_eq!(RetryPolicy::default().after_failure(1, 0.0), AfterFailure::Fail);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
    /// Whether to randomize each wait within its upper half, so that runs that failed together do
    /// not retry together.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            jitter: true,
        }
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterFailure {
    /// The run ends in `FAILURE` (no retries configured).
    Fail,
    /// The run is retried after the wait.
    RetryIn(Duration),
    /// Every attempt failed: the run is dead-lettered.
    DeadLetter,
}

impl RetryPolicy {
    /// `max_attempts` attempts in all, waiting `initial_backoff` after the first failure, doubling
    /// up to `max_backoff`, with jitter.
    pub fn retries(max_attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self { max_attempts: max_attempts.max(1), initial_backoff, max_backoff, jitter: true }
    }

    /// The same policy without jitter (deterministic waits).
    pub fn without_jitter(self) -> Self {
        Self { jitter: false, ..self }
    }

    /// What follows the failure of attempt `attempt` (1 for the first). `random` in `[0, 1)` picks
    /// the jitter.
    pub fn after_failure(&self, attempt: u32, random: f64) -> AfterFailure {
        if self.max_attempts <= 1 {
            AfterFailure::Fail
        } else if attempt >= self.max_attempts {
            AfterFailure::DeadLetter
        } else {
            AfterFailure::RetryIn(self.backoff(attempt, random))
        }
    }

    /// The wait after the failure of attempt `attempt`.
    pub fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self.initial_backoff.saturating_mul(1 << doublings).min(self.max_backoff);
        if self.jitter { base.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0)) } else { base }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn backoff_is_bounded_and_grows(
            initial_ms in 1u64..10_000, max_ms in 1u64..1_000_000, attempt in 1u32..100, random in 0.0f64..1.0
        ) {
            let policy = RetryPolicy::retries(1000, Duration::from_millis(initial_ms), Duration::from_millis(max_ms));
            let wait = policy.backoff(attempt, random);
            let base = policy.without_jitter().backoff(attempt, random);
            prop_assert!(wait <= base && wait >= base / 2, "{wait:?} outside [{:?}, {base:?}]", base / 2);
            prop_assert!(base <= Duration::from_millis(max_ms));
            prop_assert!(policy.without_jitter().backoff(attempt + 1, random) >= base);
        }

        #[test]
        fn the_last_attempt_dead_letters(max in 2u32..20, attempt in 1u32..40) {
            let policy = RetryPolicy::retries(max, Duration::from_millis(1), Duration::from_millis(10));
            let outcome = policy.after_failure(attempt, 0.5);
            prop_assert_eq!(outcome == AfterFailure::DeadLetter, attempt >= max);
        }
    }
}
