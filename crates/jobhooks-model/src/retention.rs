//! Retention rules: what a store may prune, decided here and applied by every store.

use time::OffsetDateTime;

use crate::JobStatus;
use crate::ports::Retention;

/// What a store knows about one change when it considers pruning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeFacts {
    /// When it was committed.
    pub time: OffsetDateTime,
    /// It is its object's latest change: the object's current state, and the prechange of the
    /// object's next change.
    pub is_latest_of_object: bool,
    /// A run it queued is still queued or still has a result.
    pub has_kept_runs: bool,
}

impl Retention {
    /// Results queued before this time may be pruned, if they ended; `None`: keep them all.
    pub fn results_cutoff(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.results_for.map(|keep| now - keep)
    }

    /// Changes committed before this time may be pruned, unless still needed; `None`: keep all.
    pub fn changes_cutoff(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.changes_for.map(|keep| now - keep)
    }

    /// Whether a result of `status`, queued at `created`, may be pruned at `now`: only runs that
    /// ended (`SUCCESS` or `FAILURE`), never pending, running, retrying or dead-lettered ones.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobhooks_model::{JobStatus, OffsetDateTime};
    /// use jobhooks_model::ports::Retention;
    /// let week = Retention { results_for: Some(Duration::from_secs(7 * 86_400)), changes_for: None };
    /// let now = OffsetDateTime::now_utc();
    /// let old = now - Duration::from_secs(8 * 86_400);
    /// assert!(week.may_prune_result(JobStatus::Success, old, now));
    /// assert!(!week.may_prune_result(JobStatus::DeadLettered, old, now));
    /// ```
    pub fn may_prune_result(&self, status: JobStatus, created: OffsetDateTime, now: OffsetDateTime) -> bool {
        matches!(status, JobStatus::Success | JobStatus::Failure)
            && self.results_cutoff(now).is_some_and(|cutoff| created < cutoff)
    }

    /// Whether the change described by `facts` may be pruned at `now`: it is older than
    /// `changes_for`, not its object's latest change, and none of its runs is still queued or has
    /// a result.
    pub fn may_prune_change(&self, facts: ChangeFacts, now: OffsetDateTime) -> bool {
        !facts.is_latest_of_object
            && !facts.has_kept_runs
            && self.changes_cutoff(now).is_some_and(|cutoff| facts.time < cutoff)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    const STATUSES: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Started,
        JobStatus::Success,
        JobStatus::Failure,
        JobStatus::Retrying,
        JobStatus::DeadLettered,
    ];

    fn policy(results: Option<u64>, changes: Option<u64>) -> Retention {
        Retention { results_for: results.map(Duration::from_secs), changes_for: changes.map(Duration::from_secs) }
    }

    proptest! {
        #[test]
        fn unfinished_and_dead_runs_and_needed_changes_are_never_pruned(
            results in prop::option::of(0u64..1000),
            changes in prop::option::of(0u64..1000),
            age in 0u64..2000,
            status in 0usize..6,
            is_latest_of_object in any::<bool>(),
            has_kept_runs in any::<bool>(),
        ) {
            let retention = policy(results, changes);
            let now = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
            let then = now - Duration::from_secs(age);
            let status = STATUSES[status];
            let pruned = retention.may_prune_result(status, then, now);
            prop_assert_eq!(pruned, status.is_final() && status != JobStatus::DeadLettered && results.is_some_and(|keep| age > keep));
            let facts = ChangeFacts { time: then, is_latest_of_object, has_kept_runs };
            let pruned = retention.may_prune_change(facts, now);
            prop_assert_eq!(pruned, !is_latest_of_object && !has_kept_runs && changes.is_some_and(|keep| age > keep));
            // Keeping forever prunes nothing.
            prop_assert!(!Retention::default().may_prune_result(status, then, now));
            prop_assert!(!Retention::default().may_prune_change(facts, now));
        }
    }
}
