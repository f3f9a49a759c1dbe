//! The durable job queue and the job results.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jobhooks_model::ports::{
    CommitReceipt, Completion, JobQueue, Lease, ObjectWrites, PruneReport, QueueDepth, ResultFilter, Retention,
};
use jobhooks_model::{JobInputs, JobResult, JobStatus, LogEntry, LogLevel, OffsetDateTime, RunId, StoreError};

use crate::changes::{put_result, read_change_json, run_object, stage_run};
use crate::records::{self, Claim, InLine, QueueEntry};
use crate::staging::{QueueCounts, Staging, corrupt, decode, indexed_id};
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

pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub(crate) fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Decodes the queue entry stored at `key`.
fn decode_entry(key: &[u8], bytes: &[u8]) -> Result<QueueEntry, StoreError> {
    QueueEntry::decode(bytes).ok_or_else(|| corrupt("queue entry", key, "not a queue entry"))
}

/// Reads the queue entry at `key`.
fn entry_at(st: &Staging<'_>, key: &[u8]) -> Result<Option<QueueEntry>, StoreError> {
    st.get(key)?.map(|bytes| decode_entry(key, &bytes)).transpose()
}

/// Reads the result of `run` as stored (without the queue's view of it).
pub(crate) fn stored_result(st: &Staging<'_>, run: RunId) -> Result<Option<JobResult>, StoreError> {
    let key = keys::result(run);
    let Some(bytes) = st.get(&key)? else { return Ok(None) };
    let header = records::decode_result_header(&bytes).ok_or_else(|| corrupt("job result", &key, "no header"))?;
    decode("job result", &key, header.json).map(Some)
}

/// Shows a stored result as the queue sees it: a claimed run is `STARTED`, and attempts and start
/// time come from its queue entry (leases do not rewrite results).
fn overlay(mut result: JobResult, entry: Option<&QueueEntry>) -> JobResult {
    if let Some(entry) = entry {
        result.attempts = entry.attempts;
        if let Some(claim) = entry.lease {
            result.status = JobStatus::Started;
            result.started = Some(from_micros(claim.started));
        }
    }
    result
}

/// The queue entry of the head run `run`, ready or waiting for a retry, and its key.
fn head_entry(st: &Staging<'_>, run: RunId) -> Result<Option<(Vec<u8>, QueueEntry)>, StoreError> {
    let ready = keys::ready(run);
    if let Some(entry) = entry_at(st, &ready)? {
        return Ok(Some((ready, entry)));
    }
    // Few runs wait for a retry at once: a scan finds the run among them.
    for key in st.keys_with_prefix(keys::DELAYED)? {
        if keys::trailing_id(&key) == Some(run.0) {
            let entry = entry_at(st, &key)?;
            return Ok(entry.map(|entry| (key, entry)));
        }
    }
    Ok(None)
}

/// Puts `run` at its place (by id) in its object's line. It is ready at once when the line was
/// empty; an older run (a replay) also takes the turn from an unclaimed head.
pub(crate) fn join_line(st: &mut Staging<'_>, run: RunId, object: String, in_line: InLine) -> Result<(), StoreError> {
    let first = st.first_key_with_prefix(&keys::runs_of_object(&object))?;
    st.put(keys::run_of_object(&object, run), in_line.encode());
    let Some(first) = first else {
        st.put(keys::ready(run), in_line.entry(object).encode());
        return Ok(());
    };
    let head = RunId(indexed_id("object line", &first)?);
    if run < head
        && let Some((key, entry)) = head_entry(st, head)?
        && entry.lease.is_none()
    {
        st.remove(key);
        st.put(keys::run_of_object(&object, head), entry.in_line().encode());
        st.put(keys::ready(run), in_line.entry(object).encode());
    }
    Ok(())
}

/// Makes the first run in `object`'s line ready, if there is one.
fn promote_first(st: &mut Staging<'_>, object: &str) -> Result<(), StoreError> {
    let Some(key) = st.first_key_with_prefix(&keys::runs_of_object(object))? else { return Ok(()) };
    let run = RunId(indexed_id("object line", &key)?);
    let in_line = st.get(&key)?.and_then(|bytes| InLine::decode(&bytes));
    let in_line = in_line.ok_or_else(|| corrupt("object line", &key, "not a run's counters"))?;
    st.put(keys::ready(run), in_line.entry(object.to_owned()).encode());
    Ok(())
}

/// Takes a finished or dead run out of its object's line; the next run in line becomes ready.
fn leave_line(st: &mut Staging<'_>, run: RunId, entry: &QueueEntry) -> Result<(), StoreError> {
    st.remove(keys::ready(run));
    st.remove(keys::run_of_object(&entry.object, run));
    st.counts.unfinished -= 1;
    promote_first(st, &entry.object)
}

/// Queues the unclaimed head `run` again, ready at `due` (at once when `None`), unless an older run
/// joined its object's line meanwhile (a replay): that run takes the turn and `run` waits behind it.
fn requeue_head(
    st: &mut Staging<'_>,
    run: RunId,
    entry: QueueEntry,
    due: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    st.remove(keys::ready(run));
    let first = st.first_key_with_prefix(&keys::runs_of_object(&entry.object))?;
    if first.as_deref().and_then(keys::trailing_id) == Some(run.0) {
        match due {
            Some(due) => st.put(keys::delayed(due, run), entry.encode()),
            None => st.put(keys::ready(run), entry.encode()),
        }
        return Ok(());
    }
    st.put(keys::run_of_object(&entry.object, run), entry.in_line().encode());
    promote_first(st, &entry.object)
}

impl Store {
    fn result_of(st: &Staging<'_>, run: RunId) -> Result<JobResult, StoreError> {
        stored_result(st, run)?.ok_or_else(|| missing("job result", run))
    }

    /// The claimed entry of `lease`'s run, or `LeaseLost` when the claim lapsed and was taken over,
    /// released, or the run is gone.
    fn claimed_entry(st: &Staging<'_>, lease: &Lease) -> Result<QueueEntry, StoreError> {
        entry_at(st, &keys::ready(lease.run))
            .ok()
            .flatten()
            .filter(|e| e.lease.is_some() && e.leases == lease.token)
            .ok_or(StoreError::LeaseLost { run: lease.run.0 })
    }

    /// Moves retries that are due into the ready runs.
    fn promote_due_retries(&self, st: &mut Staging<'_>, now: OffsetDateTime) -> Result<(), StoreError> {
        let bound = [keys::DELAYED, &keys::time(now)[..], &[0xff; 8][..]].concat();
        for item in self.inner.tree.range(keys::DELAYED.to_vec()..=bound) {
            let (key, value) = item.map_err(backend_error)?;
            let run = RunId(indexed_id("retry index", &key)?);
            let entry = decode_entry(&key, &value)?;
            st.remove(key.to_vec());
            st.put(keys::ready(run), entry.encode());
        }
        Ok(())
    }

    /// Stages the completion of one claimed run: its result, its place in the queue, and on
    /// success its writes. Refuses with `LeaseLost`, staging nothing, when the lease lapsed.
    fn stage_completion(
        &self,
        w: &mut crate::Writer,
        st: &mut Staging<'_>,
        completion: Completion,
    ) -> Result<CommitReceipt, StoreError> {
        let Completion { lease, status, logs, retry_at, writes } = completion;
        let run = lease.run;
        let entry = Self::claimed_entry(st, &lease)?;
        let now = w.now();
        let mut result = overlay(Self::result_of(st, run)?, Some(&entry));
        result.logs.extend(logs);
        result.status = status;
        st.counts.leased -= 1;
        match status {
            JobStatus::Retrying => {
                requeue_head(st, run, QueueEntry { lease: None, ..entry }, Some(retry_at.unwrap_or(now)))?;
            }
            JobStatus::DeadLettered => {
                result.completed = Some(now);
                // A dead run gives up its object's turn; a replay queues it again.
                leave_line(st, run, &entry)?;
                st.put(keys::dead(run), QueueEntry { lease: None, ..entry }.encode());
                st.counts.dead += 1;
            }
            JobStatus::Success | JobStatus::Failure => {
                result.completed = Some(now);
                leave_line(st, run, &entry)?;
            }
            JobStatus::Pending | JobStatus::Started => {
                return Err(StoreError::Refused {
                    reason: format!(
                        "a run cannot be completed as {status}: use SUCCESS, FAILURE, RETRYING or DEAD_LETTERED"
                    ),
                });
            }
        }
        put_result(st, &result)?;
        match writes.filter(|_| status == JobStatus::Success) {
            Some((context, changes)) => self.stage_changes(w, st, &context, changes, ObjectWrites::Apply),
            None => Ok(CommitReceipt::default()),
        }
    }

    /// Gives a lapsed or released claim up: the run is queued again, and a lapse is noted in its log.
    fn unclaim(
        st: &mut Staging<'_>,
        run: RunId,
        entry: QueueEntry,
        lapsed_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        requeue_head(st, run, QueueEntry { lease: None, ..entry.clone() }, None)?;
        st.counts.leased -= 1;
        if let Some(now) = lapsed_at {
            let mut result = Self::result_of(st, run)?;
            result.attempts = entry.attempts;
            note_lapsed_lease(&mut result, now);
            put_result(st, &result)?;
        }
        Ok(())
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
        if self.first_retry_time().is_some_and(|due| due <= now) {
            self.write(|_, st| self.promote_due_retries(st, now))?;
        }
        // A lease needs no flush: if it is lost in a crash, the run is simply ready again.
        let (claimed, _ticket) = self.write(|w, st| {
            let deadline = now.max(w.now()) + lease_for;
            let mut claimed = Vec::new();
            // Only the first run in each object's line is ready, so every ready run may start,
            // unless another worker holds it and its claim has not lapsed.
            for item in self.inner.tree.scan_prefix(keys::READY) {
                if claimed.len() >= max {
                    break;
                }
                let (key, _) = item.map_err(backend_error)?;
                let Some(entry) = entry_at(st, &key)? else { continue };
                if entry.lease.is_some_and(|claim| claim.deadline > micros(now)) {
                    continue;
                }
                let run = RunId(indexed_id("ready index", &key)?);
                let entry = if entry.lease.is_some() {
                    Self::unclaim(st, run, entry, Some(now))?;
                    // An older run of its object may have taken the turn (a replay).
                    let Some(entry) = entry_at(st, &key)? else { continue };
                    entry
                } else {
                    entry
                };
                let claim = Claim { deadline: micros(deadline), started: micros(now) };
                let entry =
                    QueueEntry { leases: entry.leases + 1, attempts: entry.attempts + 1, lease: Some(claim), ..entry };
                st.put(key.to_vec(), entry.encode());
                st.counts.leased += 1;
                let result = overlay(Self::result_of(st, run)?, Some(&entry));
                claimed.push((Lease { run, token: entry.leases, deadline: from_micros(claim.deadline) }, result));
            }
            Ok(claimed)
        })?;
        Ok(claimed)
    }

    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, StoreError> {
        let receipt = self.write_durably(|w, st| self.stage_completion(w, st, completion)).await?;
        // A finished run may make the next run of its object ready.
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
            let mut released = 0;
            for item in self.inner.tree.scan_prefix(keys::READY) {
                let (key, value) = item.map_err(backend_error)?;
                let entry = decode_entry(&key, &value)?;
                if entry.lease.is_some_and(|claim| claim.deadline <= micros(now)) {
                    let run = RunId(indexed_id("ready index", &key)?);
                    Self::unclaim(st, run, entry, Some(now))?;
                    released += 1;
                }
            }
            Ok(released)
        })?;
        if released > 0 {
            self.signal_work();
        }
        Ok(released)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.write_durably(|_, st| {
            let entry = Self::claimed_entry(st, lease)?;
            Self::unclaim(st, lease.run, entry, None)
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
        // Sleep no longer than until the next retry falls due. Lapsed claims are found by the next
        // lease after at most `at_most`; runs waiting for an older run of their object are woken
        // by the completion signal.
        let now = OffsetDateTime::now_utc();
        let next_retry = self.first_retry_time().filter(|&at| at > now);
        let wait = next_retry.map_or(at_most, |at| Duration::try_from(at - now).unwrap_or_default().min(at_most));
        let _woken_or_timed_out = tokio::time::timeout(wait, notified).await;
    }

    async fn replay(&self, run: RunId) -> Result<(), StoreError> {
        self.write_durably(|_, st| {
            let Some(entry) = entry_at(st, &keys::dead(run))? else {
                return Err(StoreError::Refused {
                    reason: format!("run {run} is not dead-lettered; only dead-lettered runs can be replayed"),
                });
            };
            st.remove(keys::dead(run));
            st.counts.dead -= 1;
            st.counts.unfinished += 1;
            join_line(st, run, entry.object, InLine { leases: entry.leases, attempts: 0 })?;
            let mut result = Self::result_of(st, run)?;
            result.attempts = 0;
            result.completed = None;
            result.status = JobStatus::Pending;
            put_result(st, &result)
        })
        .await?;
        self.signal_work();
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth, StoreError> {
        let counts = self.writer().counts;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueDepth {
            pending: count(counts.unfinished - counts.leased),
            leased: count(counts.leased),
            dead: count(counts.dead),
        })
    }

    async fn prune(&self, retention: &Retention, now: OffsetDateTime) -> Result<PruneReport, StoreError> {
        self.prune_pass(retention, now).await
    }

    async fn get_result(&self, run: RunId) -> Result<Option<JobResult>, StoreError> {
        let st = Staging::new(&self.inner.tree);
        let Some(result) = stored_result(&st, run)? else { return Ok(None) };
        let entry = if matches!(result.status, JobStatus::Pending | JobStatus::Retrying) {
            entry_at(&st, &keys::ready(run))?
        } else {
            None
        };
        Ok(Some(overlay(result, entry.as_ref())))
    }

    async fn list_results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>, StoreError> {
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut results = Vec::new();
        if let Some(change) = filter.change {
            let st = Staging::new(&self.inner.tree);
            let runs =
                read_change_json::<serde::de::IgnoredAny>(&st, change)?.map(|(runs, _)| runs).unwrap_or_default();
            for run in runs.into_iter().rev() {
                results.extend(self.get_result(run).await?.filter(|r| self.wanted(filter, r)));
            }
            results.truncate(limit);
            return Ok(results);
        }
        // The header names each result's job and stored status, so most records are skipped
        // without decoding. A stored PENDING or RETRYING status may show as STARTED.
        let status_tags: Option<Vec<u8>> = filter.status.map(|status| match status {
            JobStatus::Started => vec![keys::status_tag(JobStatus::Pending), keys::status_tag(JobStatus::Retrying)],
            other => vec![keys::status_tag(other)],
        });
        for item in self.inner.tree.scan_prefix(keys::RESULT).rev() {
            if results.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(backend_error)?;
            let header =
                records::decode_result_header(&value).ok_or_else(|| corrupt("job result", &key, "no header"))?;
            let job_matches = filter.job.as_ref().is_none_or(|job| job.as_bytes() == header.job);
            let status_may_match = status_tags.as_ref().is_none_or(|tags| tags.contains(&header.status_tag));
            if !(job_matches && status_may_match) {
                continue;
            }
            let run = RunId(indexed_id("job result", &key)?);
            results.extend(self.get_result(run).await?.filter(|r| self.wanted(filter, r)));
        }
        Ok(results)
    }
}

/// Counts the runs by state, once at open.
pub(crate) fn count_runs(tree: &sled::Tree) -> Result<QueueCounts, StoreError> {
    let mut counts = QueueCounts::default();
    for item in tree.scan_prefix(keys::RUN_OF_OBJECT).keys() {
        item.map_err(backend_error)?;
        counts.unfinished += 1;
    }
    for item in tree.scan_prefix(keys::READY) {
        let (key, value) = item.map_err(backend_error)?;
        let entry = decode_entry(&key, &value)?;
        counts.leased += i64::from(entry.lease.is_some());
    }
    for item in tree.scan_prefix(keys::DEAD).keys() {
        item.map_err(backend_error)?;
        counts.dead += 1;
    }
    Ok(counts)
}

impl Store {
    fn wanted(&self, filter: &ResultFilter, result: &JobResult) -> bool {
        filter.job.as_ref().is_none_or(|j| *j == result.job)
            && filter.status.is_none_or(|s| s == result.status)
            && filter.change.is_none_or(|c| Some(c) == result.change_id())
    }

    /// When the first retry falls due, if any is waiting.
    fn first_retry_time(&self) -> Option<OffsetDateTime> {
        let key = self.inner.tree.scan_prefix(keys::DELAYED).keys().next()?.ok()?;
        let raw: [u8; 8] = key.get(keys::DELAYED.len()..keys::DELAYED.len() + 8)?.try_into().ok()?;
        Some(from_micros((u64::from_be_bytes(raw) ^ (1 << 63)) as i64))
    }
}
