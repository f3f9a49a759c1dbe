//! The durable job queue and the job results.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jobhooks_model::ports::{
    CommitReceipt, Completion, JobQueue, Lease, ObjectWrites, PruneReport, QueueDepth, ResultFilter, Retention,
};
use jobhooks_model::{JobInputs, JobResult, JobStatus, LogEntry, LogLevel, OffsetDateTime, RunId, StoreError};

use crate::changes::{EntryState, QueueEntry, from_micros, put_result, run_object, stage_run};
use crate::staging::{Staging, decode};
use crate::{Store, backend_error, keys};

fn missing(kind: &'static str, run: RunId) -> StoreError {
    StoreError::Corrupt { kind, key: run.to_string(), reason: "the run's queue entry or result is missing".into() }
}

/// Records in the run's log that an attempt's lease lapsed before its outcome was recorded (the
/// worker died, stalled, or could not write), so the retry is visible in the result.
fn note_lapsed_lease(result: &mut JobResult, now: OffsetDateTime) {
    result.logs.push(LogEntry {
        time: now,
        level: LogLevel::Warning,
        grouping: "initialization".to_owned(),
        message: format!(
            "The lease of attempt {} lapsed before its outcome was recorded; the run starts again",
            result.attempts
        ),
        object: None,
    });
}

fn corrupt_index(kind: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        kind,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "the key does not end with a run id".into(),
    }
}

impl Store {
    fn entry(st: &Staging<'_>, run: RunId) -> Result<QueueEntry, StoreError> {
        st.get_json(&keys::queue(run), "queue entry")?.ok_or_else(|| missing("queue entry", run))
    }

    fn result_of(st: &Staging<'_>, run: RunId) -> Result<JobResult, StoreError> {
        st.get_json(&keys::result(run), "job result")?.ok_or_else(|| missing("job result", run))
    }

    /// Stores `result` with a new status (and updates its status index).
    fn set_status(st: &mut Staging<'_>, mut result: JobResult, status: JobStatus) -> Result<JobResult, StoreError> {
        let previous = result.status;
        result.status = status;
        put_result(st, &result, Some(previous))?;
        Ok(result)
    }

    /// Moves a run's index key and entry to `state` at `at`.
    fn move_entry(
        st: &mut Staging<'_>,
        run: RunId,
        entry: &QueueEntry,
        state: EntryState,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let old_at = from_micros(entry.at);
        match entry.state {
            EntryState::Pending => st.remove(keys::ready(old_at, run)),
            EntryState::Leased => st.remove(keys::leased(old_at, run)),
            EntryState::Dead => {}
        }
        match state {
            EntryState::Pending => st.put(keys::ready(at, run), Vec::new()),
            EntryState::Leased => st.put(keys::leased(at, run), Vec::new()),
            EntryState::Dead => {}
        }
        st.put_json(keys::queue(run), &entry.with(state, at))
    }

    /// Ends a run's stay in the queue: no entry, and no longer holding its object's turn.
    fn finish_entry(st: &mut Staging<'_>, run: RunId, entry: &QueueEntry) {
        let at = from_micros(entry.at);
        match entry.state {
            EntryState::Pending => st.remove(keys::ready(at, run)),
            EntryState::Leased => st.remove(keys::leased(at, run)),
            EntryState::Dead => {}
        }
        st.remove(keys::queue(run));
        if let Some(object) = &entry.object {
            st.remove(keys::run_of_object(object, run));
        }
    }

    /// The runs whose index key under `prefix` is at or before `now`, in key order.
    fn due(&self, prefix: &[u8], now: OffsetDateTime) -> impl Iterator<Item = Result<RunId, StoreError>> + '_ {
        let bound = [prefix, &keys::time(now)[..], &[0xff; 8][..]].concat();
        self.inner.tree.range(prefix.to_vec()..=bound).keys().map(|key| {
            let key = key.map_err(backend_error)?;
            keys::trailing_id(&key).map(RunId).ok_or_else(|| corrupt_index("queue index", &key))
        })
    }

    /// Whether an older unfinished run of the same object holds its turn.
    fn waits_for_older_run(&self, run: RunId, entry: &QueueEntry) -> Result<bool, StoreError> {
        let Some(object) = &entry.object else { return Ok(false) };
        let first = self.inner.tree.scan_prefix(keys::runs_of_object(object)).keys().next().transpose();
        let first = first.map_err(backend_error)?;
        Ok(first.and_then(|k| keys::trailing_id(&k)).is_some_and(|oldest| oldest < run.0))
    }

    /// The first time under `prefix`, if any.
    fn first_time(&self, prefix: &[u8]) -> Option<OffsetDateTime> {
        let key = self.inner.tree.scan_prefix(prefix).keys().next()?.ok()?;
        let raw: [u8; 8] = key.get(prefix.len()..prefix.len() + 8)?.try_into().ok()?;
        Some(from_micros((u64::from_be_bytes(raw) ^ (1 << 63)) as i64))
    }

    /// Stages the completion of one claimed run: its result, its queue entry's new state, and on
    /// success its writes. Refuses with `LeaseLost`, staging nothing, when the lease lapsed.
    fn stage_completion(
        &self,
        w: &mut crate::Writer,
        st: &mut Staging<'_>,
        completion: Completion,
    ) -> Result<CommitReceipt, StoreError> {
        let Completion { lease, status, logs, retry_at, writes } = completion;
        let run = lease.run;
        let entry = Self::entry(st, run).ok().filter(|e| e.state == EntryState::Leased && e.leases == lease.token);
        let Some(entry) = entry else { return Err(StoreError::LeaseLost { run: run.0 }) };
        let now = w.now();
        let mut result = Self::result_of(st, run)?;
        result.logs.extend(logs);
        match status {
            JobStatus::Retrying => Self::move_entry(st, run, &entry, EntryState::Pending, retry_at.unwrap_or(now))?,
            JobStatus::DeadLettered => {
                result.completed = Some(now);
                Self::move_entry(st, run, &entry, EntryState::Dead, now)?;
                // A dead run no longer holds its object's turn; a replay takes it back.
                if let Some(object) = &entry.object {
                    st.remove(keys::run_of_object(object, run));
                }
            }
            JobStatus::Success | JobStatus::Failure => {
                result.completed = Some(now);
                Self::finish_entry(st, run, &entry);
            }
            JobStatus::Pending | JobStatus::Started => {
                return Err(StoreError::Refused {
                    reason: format!(
                        "a run cannot be completed as {status}: use SUCCESS, FAILURE, RETRYING or DEAD_LETTERED"
                    ),
                });
            }
        }
        Self::set_status(st, result, status)?;
        match writes.filter(|_| status == JobStatus::Success) {
            Some((context, changes)) => self.stage_changes(w, st, &context, changes, ObjectWrites::Apply),
            None => Ok(CommitReceipt::default()),
        }
    }

    pub(crate) fn signal_work(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.work.notify_waiters();
    }
}

#[async_trait::async_trait]
impl JobQueue for Store {
    async fn enqueue(&self, job: &str, user: Option<String>, inputs: JobInputs) -> Result<RunId, StoreError> {
        let run = self
            .write_durably(|w, st| {
                if w.catalog.job(job).is_none() {
                    return Err(StoreError::not_found("job", job));
                }
                let now = w.now();
                let object = run_object(&inputs, None);
                stage_run(w, st, job, user, inputs, object, now)
            })
            .await?;
        self.signal_work();
        Ok(run)
    }

    async fn lease_next(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
    ) -> Result<Option<(Lease, JobResult)>, StoreError> {
        Ok(self.lease_batch(now, lease_for, 1).await?.pop())
    }

    async fn lease_batch(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<(Lease, JobResult)>, StoreError> {
        // A lease needs no flush: if it is lost in a crash, the run is simply pending again.
        let (claimed, _ticket) = self.write(|w, st| {
            // Runs whose lease lapsed already held their object's turn: take them over first. The
            // object index is not changed by leasing, so a second run of one object stays behind.
            let deadline = from_micros(crate::changes::micros(now.max(w.now()) + lease_for));
            let mut claimed = Vec::new();
            for run in self.due(keys::LEASED, now).chain(self.due(keys::READY, now)) {
                if claimed.len() >= max {
                    break;
                }
                let run = run?;
                let entry = Self::entry(st, run)?;
                if entry.state != EntryState::Leased && self.waits_for_older_run(run, &entry)? {
                    continue;
                }
                let lapsed = entry.state == EntryState::Leased;
                let leases = entry.leases + 1;
                Self::move_entry(st, run, &QueueEntry { leases, ..entry }, EntryState::Leased, deadline)?;
                let mut result = Self::result_of(st, run)?;
                if lapsed {
                    note_lapsed_lease(&mut result, now);
                }
                result.attempts += 1;
                result.started = Some(now);
                let result = Self::set_status(st, result, JobStatus::Started)?;
                claimed.push((Lease { run, token: leases, deadline }, result));
            }
            Ok(claimed)
        })?;
        Ok(claimed)
    }

    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, StoreError> {
        let receipt = self.write_durably(|w, st| self.stage_completion(w, st, completion)).await?;
        // A finished run may unblock the next run of its object.
        self.signal_work();
        Ok(receipt)
    }

    async fn complete_batch(
        &self,
        completions: Vec<Completion>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        let outcomes = self
            .write_durably(|w, st| {
                let mut outcomes = Vec::with_capacity(completions.len());
                for completion in completions {
                    // A lapsed lease is refused before anything of its completion is staged, so
                    // it refuses only its own run; any other error fails the whole batch.
                    match self.stage_completion(w, st, completion) {
                        Err(lost @ StoreError::LeaseLost { .. }) => outcomes.push(Err(lost)),
                        other => outcomes.push(Ok(other?)),
                    }
                }
                Ok(outcomes)
            })
            .await?;
        self.signal_work();
        Ok(outcomes)
    }

    async fn release_expired(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let (released, _ticket) = self.write(|_, st| {
            let expired: Vec<RunId> = self.due(keys::LEASED, now).collect::<Result<_, _>>()?;
            for &run in &expired {
                let entry = Self::entry(st, run)?;
                Self::move_entry(st, run, &entry, EntryState::Pending, now)?;
                let mut result = Self::result_of(st, run)?;
                note_lapsed_lease(&mut result, now);
                Self::set_status(st, result, JobStatus::Pending)?;
            }
            Ok(expired.len())
        })?;
        if released > 0 {
            self.signal_work();
        }
        Ok(released)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.write_durably(|w, st| {
            let entry =
                Self::entry(st, lease.run).ok().filter(|e| e.state == EntryState::Leased && e.leases == lease.token);
            let Some(entry) = entry else { return Err(StoreError::LeaseLost { run: lease.run.0 }) };
            let now = w.now();
            Self::move_entry(st, lease.run, &entry, EntryState::Pending, now)?;
            let result = Self::result_of(st, lease.run)?;
            Self::set_status(st, result, JobStatus::Pending).map(drop)
        })
        .await?;
        self.signal_work();
        Ok(())
    }

    fn work_generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    async fn wait_for_work(&self, seen: u64, at_most: Duration) {
        let notified = self.inner.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.work_generation() > seen {
            return;
        }
        // Sleep no longer than until the next scheduled run or lease deadline. Due runs that are
        // waiting for an older run of their object wake us through the completion signal instead.
        let now = OffsetDateTime::now_utc();
        let next = [self.first_time(keys::READY), self.first_time(keys::LEASED)]
            .into_iter()
            .flatten()
            .filter(|&at| at > now)
            .min();
        let wait = next.map_or(at_most, |at| Duration::try_from(at - now).unwrap_or_default().min(at_most));
        let _woken_or_timed_out = tokio::time::timeout(wait, notified).await;
    }

    async fn replay(&self, run: RunId) -> Result<(), StoreError> {
        self.write_durably(|w, st| {
            let entry = st.get_json::<QueueEntry>(&keys::queue(run), "queue entry")?;
            let Some(entry) = entry.filter(|e| e.state == EntryState::Dead) else {
                return Err(StoreError::Refused {
                    reason: format!("run {run} is not dead-lettered; only dead-lettered runs can be replayed"),
                });
            };
            let now = w.now();
            Self::move_entry(st, run, &entry, EntryState::Pending, now)?;
            if let Some(object) = &entry.object {
                st.put(keys::run_of_object(object, run), Vec::new());
            }
            let mut result = Self::result_of(st, run)?;
            result.attempts = 0;
            result.completed = None;
            Self::set_status(st, result, JobStatus::Pending).map(drop)
        })
        .await?;
        self.signal_work();
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth, StoreError> {
        let count = |prefix: &[u8]| self.inner.tree.scan_prefix(prefix).keys().count() as u64;
        Ok(QueueDepth {
            pending: count(keys::READY),
            leased: count(keys::LEASED),
            dead: count(&keys::results_with_status(JobStatus::DeadLettered)),
        })
    }

    async fn prune(&self, retention: &Retention, now: OffsetDateTime) -> Result<PruneReport, StoreError> {
        self.prune_pass(retention, now).await
    }

    async fn get_result(&self, run: RunId) -> Result<Option<JobResult>, StoreError> {
        let key = keys::result(run);
        let value = self.inner.tree.get(&key).map_err(backend_error)?;
        value.map(|bytes| decode("job result", &key, &bytes)).transpose()
    }

    async fn list_results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>, StoreError> {
        let prefix = match (&filter.change, &filter.job, filter.status) {
            (Some(change), _, _) => keys::results_of_change(*change),
            (None, Some(job), _) => keys::results_of_job(job),
            (None, None, Some(status)) => keys::results_with_status(status),
            (None, None, None) => keys::RESULT.to_vec(),
        };
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut results = Vec::new();
        for key in self.inner.tree.scan_prefix(&prefix).keys().rev() {
            if results.len() >= limit {
                break;
            }
            let key = key.map_err(backend_error)?;
            let run = keys::trailing_id(&key).map(RunId).ok_or_else(|| corrupt_index("result index", &key))?;
            let Some(result) = self.get_result(run).await? else { continue };
            let wanted = filter.job.as_ref().is_none_or(|j| *j == result.job)
                && filter.status.is_none_or(|s| s == result.status)
                && filter.change.is_none_or(|c| Some(c) == result.change_id());
            if wanted {
                results.push(result);
            }
        }
        Ok(results)
    }
}
