//! Time as the rules see it: every component that compares deadlines, schedules retries or stamps
//! records asks a [`Clock`], so that tests can move time on instead of waiting for it.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

/// Tells the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock, to the microsecond: every time jobhooks records has the precision
/// PostgreSQL keeps, so that times read the same from every store and in every answer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        to_microseconds(OffsetDateTime::now_utc())
    }
}

/// `time` without its nanoseconds below the microsecond.
pub fn to_microseconds(time: OffsetDateTime) -> OffsetDateTime {
    time.replace_nanosecond(time.nanosecond() / 1_000 * 1_000).unwrap_or(time)
}

/// The system clock, shared: the default of every component that takes a clock.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that stands still until it is moved: for tests of leases, deadlines and retries.
/// Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use jobhooks_model::{Clock, ManualClock};
/// let clock = ManualClock::starting_now();
/// let before = clock.now();
/// clock.advance(Duration::from_secs(301));
/// assert_eq!(clock.now() - before, Duration::from_secs(301));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn at(at: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// A clock standing at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::at(to_microseconds(OffsetDateTime::now_utc()))
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_keeps_microseconds() {
        let now = SystemClock.now();
        assert_eq!(now.nanosecond() % 1_000, 0);
        let precise = OffsetDateTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_234_567_891);
        assert_eq!(to_microseconds(precise).unix_timestamp_nanos(), 1_234_567_000);
    }
}
