//! The run state machine: one pure transition function that every store follows. A store persists
//! what [`transition`] decides (the new state, the attempt count, the queue's counts, the object's
//! line); it decides none of it itself.
//!
//! ```text
//!            queued                 replayed
//!   (new) ──────────► PENDING ◄───────────────────── DEAD_LETTERED
//!                      │  ▲ ▲                                ▲
//!               leased │  │ │ released / given back /        │ dead-lettered
//!                      ▼  │ │ lease expired                  │
//!                    STARTED ─────────────────────────────────┘
//!                      │  │ retry at ──► RETRYING ── retry due ──► PENDING
//!                      │  └──────────► SUCCESS / FAILURE
//! ```

use time::OffsetDateTime;

use crate::ports::Lease;
use crate::{ChangeContext, ChangeSet, JobStatus, LogEntry};

/// What happens to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunEvent {
    /// A worker claims it: an attempt starts.
    Leased,
    /// Its claim lapsed and the run is claimable again (noted in its log); the attempt counts.
    LeaseExpired,
    /// Its worker gives it back without an outcome (shutdown); the attempt counts.
    Released,
    /// Its worker gives it back before starting it; the attempt does not count.
    GivenBack,
    /// The attempt succeeded: the run is over.
    Succeeded,
    /// The attempt failed for good: the run is over.
    Failed,
    /// The attempt failed and the run is to run again at a later time.
    RetryScheduled,
    /// The retry's time came.
    RetryDue,
    /// The attempt failed and no attempt is left: the run waits for a replay.
    DeadLettered,
    /// A dead-lettered run is queued again, as a new series of attempts.
    Replayed,
}

/// How a transition changes the number of runs in each place of the queue, in the terms of
/// [`QueueDepth`](crate::ports::QueueDepth).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountChange {
    /// Waiting to run (pending or retrying).
    pub pending: i64,
    /// Claimed by a worker.
    pub leased: i64,
    /// Dead-lettered.
    pub dead: i64,
}

/// What becomes of the attempt count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// Unchanged.
    Keep,
    /// One more attempt started.
    Increment,
    /// The claim did not start an attempt after all.
    Decrement,
    /// A new series of attempts (a replay).
    Reset,
}

impl Attempts {
    /// Applies the change to `attempts`.
    pub fn apply(self, attempts: u32) -> u32 {
        match self {
            Attempts::Keep => attempts,
            Attempts::Increment => attempts.saturating_add(1),
            Attempts::Decrement => attempts.saturating_sub(1),
            Attempts::Reset => 0,
        }
    }
}

/// What a store does for one event: the run's new state and everything that follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The run's new state (its result's status).
    pub to: JobStatus,
    /// What becomes of the attempt count.
    pub attempts: Attempts,
    /// How the queue's counts change.
    pub counts: CountChange,
    /// The run gives up its object's turn: the next run of the object may start.
    pub leaves_line: bool,
    /// The run joins the back of its object's line again.
    pub joins_line: bool,
    /// The run is over now: its result gets its completion time.
    pub completes: bool,
    /// Its log says that an attempt's claim lapsed.
    pub notes_lapse: bool,
}

/// An event that does not apply to a run in its state; nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a run that is {from} cannot be {event}")]
pub struct IllegalTransition {
    /// The run's state.
    pub from: JobStatus,
    /// What was to happen, as words.
    pub event: &'static str,
}

impl RunEvent {
    fn words(self) -> &'static str {
        match self {
            RunEvent::Leased => "leased",
            RunEvent::LeaseExpired => "expired",
            RunEvent::Released => "released",
            RunEvent::GivenBack => "given back",
            RunEvent::Succeeded => "completed as SUCCESS",
            RunEvent::Failed => "completed as FAILURE",
            RunEvent::RetryScheduled => "scheduled for a retry",
            RunEvent::RetryDue => "made due",
            RunEvent::DeadLettered => "dead-lettered",
            RunEvent::Replayed => "replayed",
        }
    }
}

/// The entry a run's log gets when the claim of its attempt `attempt` lapsed before the attempt's
/// outcome was recorded ([`Transition::notes_lapse`]): the worker died, stalled, or could not write.
pub fn lapse_entry(attempt: u32, at: OffsetDateTime) -> LogEntry {
    LogEntry {
        time: at,
        level: crate::LogLevel::Warning,
        grouping: "initialization".to_owned(),
        message: format!("The lease of attempt {attempt} lapsed before its outcome was recorded; the run starts again"),
        object: None,
    }
}

/// The counts of a run newly queued (a commit's hook run, a button press).
pub const QUEUED: CountChange = CountChange { pending: 1, leased: 0, dead: 0 };

/// What `event` does to a run that is `from`.
///
/// ```
/// use jobhooks_model::{JobStatus, RunEvent, transition};
/// let step = transition(JobStatus::Started, RunEvent::DeadLettered).unwrap();
/// assert_eq!(step.to, JobStatus::DeadLettered);
/// assert!(step.leaves_line && step.completes);
/// assert_eq!((step.counts.leased, step.counts.dead), (-1, 1));
/// assert!(transition(JobStatus::Success, RunEvent::Replayed).is_err());
/// ```
pub fn transition(from: JobStatus, event: RunEvent) -> Result<Transition, IllegalTransition> {
    let step = |to, attempts, (pending, leased, dead)| Transition {
        to,
        attempts,
        counts: CountChange { pending, leased, dead },
        leaves_line: false,
        joins_line: false,
        completes: false,
        notes_lapse: false,
    };
    use JobStatus::{DeadLettered, Failure, Pending, Retrying, Started, Success};
    Ok(match (from, event) {
        (Pending, RunEvent::Leased) => step(Started, Attempts::Increment, (-1, 1, 0)),
        (Started, RunEvent::LeaseExpired) => {
            Transition { notes_lapse: true, ..step(Pending, Attempts::Keep, (1, -1, 0)) }
        }
        (Started, RunEvent::Released) => step(Pending, Attempts::Keep, (1, -1, 0)),
        (Started, RunEvent::GivenBack) => step(Pending, Attempts::Decrement, (1, -1, 0)),
        (Started, RunEvent::Succeeded) => {
            Transition { leaves_line: true, completes: true, ..step(Success, Attempts::Keep, (0, -1, 0)) }
        }
        (Started, RunEvent::Failed) => {
            Transition { leaves_line: true, completes: true, ..step(Failure, Attempts::Keep, (0, -1, 0)) }
        }
        (Started, RunEvent::RetryScheduled) => step(Retrying, Attempts::Keep, (1, -1, 0)),
        (Retrying, RunEvent::RetryDue) => step(Pending, Attempts::Keep, (0, 0, 0)),
        (Started, RunEvent::DeadLettered) => {
            Transition { leaves_line: true, completes: true, ..step(DeadLettered, Attempts::Keep, (0, -1, 1)) }
        }
        (DeadLettered, RunEvent::Replayed) => {
            Transition { joins_line: true, ..step(Pending, Attempts::Reset, (1, 0, -1)) }
        }
        (from, event) => return Err(IllegalTransition { from, event: event.words() }),
    })
}

/// How a leased run ended: what its worker reports when it completes the run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// It succeeded; its object writes (a job run's change context and changes) commit with it.
    Succeeded {
        /// The attempt's writes, if it made any.
        writes: Option<(ChangeContext, ChangeSet)>,
    },
    /// It failed for good.
    Failed,
    /// It failed and runs again at `at`.
    RetryAt(OffsetDateTime),
    /// It failed and no attempt is left: it waits for a replay.
    DeadLettered,
}

impl Outcome {
    /// The event a store applies for it.
    pub fn event(&self) -> RunEvent {
        match self {
            Outcome::Succeeded { .. } => RunEvent::Succeeded,
            Outcome::Failed => RunEvent::Failed,
            Outcome::RetryAt(_) => RunEvent::RetryScheduled,
            Outcome::DeadLettered => RunEvent::DeadLettered,
        }
    }

    /// The status the run's result gets.
    pub fn status(&self) -> JobStatus {
        match self {
            Outcome::Succeeded { .. } => JobStatus::Success,
            Outcome::Failed => JobStatus::Failure,
            Outcome::RetryAt(_) => JobStatus::Retrying,
            Outcome::DeadLettered => JobStatus::DeadLettered,
        }
    }
}

/// How a leased run ended, with the claim it ran under and the entries its attempt logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The claim being completed.
    pub lease: Lease,
    /// How it ended.
    pub outcome: Outcome,
    /// Entries the attempt wrote, appended to the result's log.
    pub logs: Vec<LogEntry>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EVENTS: [RunEvent; 10] = [
        RunEvent::Leased,
        RunEvent::LeaseExpired,
        RunEvent::Released,
        RunEvent::GivenBack,
        RunEvent::Succeeded,
        RunEvent::Failed,
        RunEvent::RetryScheduled,
        RunEvent::RetryDue,
        RunEvent::DeadLettered,
        RunEvent::Replayed,
    ];

    /// Which count a run in `state` is counted in.
    fn counted_in(state: JobStatus) -> CountChange {
        match state {
            JobStatus::Pending | JobStatus::Retrying => CountChange { pending: 1, ..CountChange::default() },
            JobStatus::Started => CountChange { leased: 1, ..CountChange::default() },
            JobStatus::DeadLettered => CountChange { dead: 1, ..CountChange::default() },
            JobStatus::Success | JobStatus::Failure => CountChange::default(),
        }
    }

    #[test]
    fn finished_runs_take_no_event() {
        for from in [JobStatus::Success, JobStatus::Failure] {
            for event in EVENTS {
                let err = transition(from, event).unwrap_err();
                assert!(err.to_string().starts_with(&format!("a run that is {from} cannot be")), "{err}");
            }
        }
    }

    #[test]
    fn outcomes_map_to_their_events_and_statuses() {
        let outcomes = [
            Outcome::Succeeded { writes: None },
            Outcome::Failed,
            Outcome::RetryAt(OffsetDateTime::UNIX_EPOCH),
            Outcome::DeadLettered,
        ];
        for outcome in outcomes {
            assert_eq!(transition(JobStatus::Started, outcome.event()).unwrap().to, outcome.status());
        }
    }

    proptest! {
        /// Any sequence of events, applied where legal, keeps the counts equal to the number of
        /// runs in each state, never lets attempts go below zero where they started, and only
        /// leaves a line from `STARTED`.
        #[test]
        fn counts_follow_the_states(events in prop::collection::vec((0usize..4, 0usize..10), 0..200)) {
            let mut runs = [JobStatus::Pending; 4];
            let mut attempts = [0u32; 4];
            let mut counts = CountChange { pending: 4, ..CountChange::default() };
            for (run, event) in events {
                let Ok(step) = transition(runs[run], EVENTS[event]) else { continue };
                prop_assert!(!step.leaves_line || runs[run] == JobStatus::Started);
                prop_assert_eq!(step.completes, step.to.is_final());
                runs[run] = step.to;
                attempts[run] = step.attempts.apply(attempts[run]);
                counts.pending += step.counts.pending;
                counts.leased += step.counts.leased;
                counts.dead += step.counts.dead;
                let expected = runs.iter().fold(CountChange::default(), |sum, &state| {
                    let one = counted_in(state);
                    CountChange { pending: sum.pending + one.pending, leased: sum.leased + one.leased, dead: sum.dead + one.dead }
                });
                prop_assert_eq!(counts, expected);
                if runs[run] == JobStatus::Started {
                    prop_assert!(attempts[run] >= 1, "a started run has an attempt");
                }
            }
        }
    }
}
