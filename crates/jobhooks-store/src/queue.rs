//! The durable job queue and the job results.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jobhooks_model::ports::{
    CommitReceipt, Completion, JobQueue, Lease, ObjectWrites, PruneReport, QueueDepth, QueueMaintenance, QueueReader,
    ResultFilter, Retention,
};
use jobhooks_model::{
    IllegalTransition, JobInputs, JobResult, JobStatus, MaintenanceError, OffsetDateTime, Outcome, QUEUED, QueueError,
    RunEvent, RunId, StorageFailure, lapse_entry, transition,
};

use crate::claims::{Claims, Held};
use crate::lines::{
    decode_entry, entry_at, join_object_line, leave_line, missing, put_result, queued_entry, read_change_json,
    run_object, stored_result,
};
use crate::records::{self, QueueEntry, from_micros, micros};
use crate::staging::{Entries, Entry, QueueCounts, Staging, corrupt, indexed_id, key_range};
use crate::{Commit, Store, Txn, keys};

/// Shows a result as the queue sees it: a claimed run is `STARTED`, with the start time and the
/// attempts of its claim (claims are kept in memory and do not rewrite results).
fn overlay(mut result: JobResult, entry: &QueueEntry, claim: Option<&Held>) -> JobResult {
    result.attempts = entry.attempts;
    if let Some(held) = claim {
        result.status = JobStatus::Started;
        result.started = Some(from_micros(held.started));
        result.attempts = held.attempts;
    }
    result
}

/// The result of the queued run `run`: as stored, or as queued when nothing is stored yet; then as
/// the queue sees it, with `claim`, the claim on the run if it is ready.
fn queued_result(
    st: &Staging<'_>,
    run: RunId,
    entry: &QueueEntry,
    claim: Option<&Held>,
) -> Result<JobResult, StorageFailure> {
    let result = if entry.result_stored {
        stored_result(st, run)?.ok_or_else(|| missing("job result", run))?
    } else {
        entry.pending_result(run)
    };
    Ok(overlay(result, entry, claim))
}

/// The claim on the queued run `run` whose entry is stored under `key`: only a ready run can be
/// claimed (a claim ended by a retry stays in memory until the retry is applied, but the run is
/// no longer ready by then).
fn claim_of<'c>(claims: &'c Claims, run: RunId, key: &[u8]) -> Option<&'c Held> {
    key.starts_with(keys::READY).then(|| claims.get(run)).flatten()
}

impl Store {
    /// The entry and claim of `lease`'s run, or `LeaseLost` when the claim lapsed and was taken
    /// over, released, or ended, or the run is gone.
    fn claimed_entry(txn: &Txn<'_>, lease: &Lease) -> Result<(QueueEntry, Held), QueueError> {
        let lost = QueueError::LeaseLost { run: lease.run.0 };
        let held = *txn.claims().active(lease.run).filter(|held| held.token == lease.token).ok_or(lost.clone())?;
        let entry = entry_at(txn.view(), &keys::ready(lease.run)).ok().flatten().ok_or(lost)?;
        Ok((entry, held))
    }

    /// Moves retries that are due into the ready runs.
    fn promote_due_retries(st: &mut Staging<'_>, now: OffsetDateTime) -> Result<(), QueueError> {
        let step = transition(JobStatus::Retrying, RunEvent::RetryDue)?;
        // Retries are keyed by due time: those due are the keys before the next microsecond.
        let due_before = keys::delayed(now + Duration::from_micros(1), RunId(0));
        let due: Entries = st
            .scan(key_range(keys::DELAYED.to_vec(), due_before), false)
            .map(|entry| entry.map(|(key, value)| (key.to_vec(), value.to_vec())))
            .collect::<Result<_, _>>()?;
        for (key, value) in due {
            let run = RunId(indexed_id("retry index", &key)?);
            let entry = decode_entry(&key, &value)?;
            st.remove(key);
            st.put(keys::ready(run), value);
            st.counts.apply(step.counts);
            if entry.result_stored {
                let mut result = stored_result(st, run)?.ok_or_else(|| missing("job result", run))?;
                result.status = step.to;
                put_result(st, &result)?;
            }
        }
        Ok(())
    }

    /// Stages the completion of one claimed run: its result, its place in the queue, and on
    /// success its writes; the claim leaves its attempt journal in the same write. Refuses with
    /// `LeaseLost`, staging nothing, when the lease lapsed.
    fn stage_completion(&self, txn: &mut Txn<'_>, completion: Completion) -> Result<CommitReceipt, QueueError> {
        let Completion { lease, outcome, logs } = completion;
        let run = lease.run;
        let (entry, held) = Self::claimed_entry(txn, &lease)?;
        let step = transition(JobStatus::Started, outcome.event())?;
        let (w, st, claims) = txn.edit_claims();
        let now = w.now();
        let mut result = queued_result(st, run, &entry, Some(&held))?;
        result.logs.extend(logs);
        result.status = step.to;
        if step.completes {
            result.completed = Some(now);
        }
        st.counts.apply(step.counts);
        claims.settle(st, run, true);
        // From here on the result is stored, with the claim's attempts: the entry says so
        // wherever it goes.
        let entry = QueueEntry { lease: None, attempts: held.attempts, result_stored: true, ..entry };
        if step.leaves_line {
            leave_line(st, run, &entry)?;
        }
        match &outcome {
            Outcome::RetryAt(at) => {
                st.remove(keys::ready(run));
                st.put(keys::delayed(*at, run), entry.encode());
            }
            // A dead run gives up its object's turn; a replay queues it again.
            Outcome::DeadLettered => st.put(keys::dead(run), QueueEntry { next: None, ..entry }.encode()),
            _ => {}
        }
        put_result(st, &result)?;
        match outcome {
            Outcome::Succeeded { writes: Some((context, changes)) } => {
                let (w, st) = txn.parts();
                Ok(self.stage_changes(w, st, &context, changes, ObjectWrites::Apply)?)
            }
            _ => Ok(CommitReceipt::default()),
        }
    }

    /// Gives a claim up as `event` (lease expired, released, given back) decides: the run is
    /// ready again, at the head of its line, its entry holding the attempts `event` leaves it,
    /// and the claim leaves its attempt journal. Returns the unclaimed entry.
    fn unclaim<E: From<StorageFailure> + From<IllegalTransition>>(
        txn: &mut Txn<'_>,
        run: RunId,
        entry: QueueEntry,
        held: Held,
        event: RunEvent,
        now: OffsetDateTime,
    ) -> Result<QueueEntry, E> {
        let step = transition(JobStatus::Started, event)?;
        let (_, st, claims) = txn.edit_claims();
        st.counts.apply(step.counts);
        claims.settle(st, run, false);
        let mut entry = QueueEntry { lease: None, attempts: step.attempts.apply(held.attempts), ..entry };
        if step.notes_lapse {
            let mut result = queued_result(st, run, &entry, None)?;
            result.status = step.to;
            result.logs.push(lapse_entry(result.attempts, now));
            put_result(st, &result)?;
            entry.result_stored = true;
        }
        st.put(keys::ready(run), entry.encode());
        Ok(entry)
    }

    /// Makes `lease`'s run pending again at once, as `event` (released, given back) decides.
    async fn unclaim_durably(&self, lease: &Lease, event: RunEvent) -> Result<(), QueueError> {
        self.write_durably(|txn| {
            let (entry, held) = Self::claimed_entry(txn, lease)?;
            let now = txn.parts().0.now();
            Self::unclaim::<QueueError>(txn, lease.run, entry, held, event, now)
        })
        .await?;
        self.signal_work();
        Ok(())
    }

    /// Releases every claim whose deadline (in microseconds) `lapsed` says has lapsed, noting the
    /// lapse in its run's log at `now`; how many.
    fn release_leases(&self, now: OffsetDateTime, lapsed: impl Fn(i64) -> bool) -> Result<usize, MaintenanceError> {
        if self.claims().lapsed(&lapsed).is_empty() {
            return Ok(0);
        }
        let (released, _ticket) = self.transact(Commit::Now, |txn| {
            let lapsed_runs = txn.claims().lapsed(&lapsed);
            for &(run, held) in &lapsed_runs {
                let entry = entry_at(txn.view(), &keys::ready(run))?.ok_or_else(|| missing("queue entry", run))?;
                Self::unclaim::<MaintenanceError>(txn, run, entry, held, RunEvent::LeaseExpired, now)?;
            }
            Ok::<_, MaintenanceError>(lapsed_runs.len())
        })?;
        if released > 0 {
            self.signal_work();
        }
        Ok(released)
    }

    pub(crate) fn signal_work(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.work.notify_waiters();
    }
}

#[async_trait::async_trait]
impl JobQueue for Store {
    async fn enqueue(&self, job: &str, user: Option<String>, inputs: JobInputs) -> Result<RunId, QueueError> {
        let run = self
            .write_durably(|txn| {
                if txn.catalog().job(job).is_none() {
                    return Err(QueueError::NotFound { kind: "job", key: job.to_owned() });
                }
                let (w, st) = txn.parts();
                let run = w.new_run();
                let object = run_object(st, &inputs)?;
                let entry = QueueEntry::queued(job, user, inputs, w.now());
                join_object_line(st, object.as_ref(), run, entry)?;
                st.counts.apply(QUEUED);
                Ok(run)
            })
            .await?;
        self.signal_work();
        Ok(run)
    }

    async fn lease_next(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
    ) -> Result<Option<(Lease, JobResult)>, QueueError> {
        Ok(self.lease_batch(now, lease_for, 1).await?.pop())
    }

    async fn lease_batch(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<(Lease, JobResult)>, QueueError> {
        if self.first_retry_time().is_some_and(|due| due <= now) {
            self.transact(Commit::Now, |txn| Self::promote_due_retries(txn.staging(), now))?;
        }
        // A claim writes only its batch's attempt journal, and needs no flush: if the journal is
        // lost in a crash, so is the claim, and the run is simply ready again. With
        // `applied_only`, a claim leaves alone the runs whose entries have deferred writes: it
        // writes ahead of them, so what it writes must not build on them.
        let claim = |applied_only: bool| {
            move |txn: &mut Txn<'_>| {
                let deadline = now.max(txn.parts().0.now()) + lease_for;
                // Only the first run in each object's line is ready, so every ready run may start,
                // unless a worker holds it and its claim has not lapsed.
                let mut candidates = Vec::new();
                let claims = txn.claims();
                let st = txn.view();
                for item in st.scan_prefix(keys::READY) {
                    if candidates.len() >= max {
                        break;
                    }
                    let (key, value) = item?;
                    let run = RunId(indexed_id("ready index", &key)?);
                    let held = claims.get(run).copied();
                    if held.is_some_and(|held| held.ended || held.deadline > micros(now)) {
                        continue;
                    }
                    // Taking a lapsed claim over rewrites its journal, which must not build on
                    // deferred writes either.
                    let journal_pending = held.is_some_and(|held| st.has_pending_write(&held.journal_key()));
                    if applied_only && (st.has_pending_write(&key) || journal_pending) {
                        continue;
                    }
                    candidates.push((run, decode_entry(&key, &value)?, held));
                }
                let step = transition(JobStatus::Pending, RunEvent::Leased)?;
                let mut batch = Vec::with_capacity(candidates.len());
                for (run, entry, lapsed) in candidates {
                    let entry = match lapsed {
                        Some(held) => Self::unclaim::<QueueError>(txn, run, entry, held, RunEvent::LeaseExpired, now)?,
                        None => entry,
                    };
                    txn.staging().counts.apply(step.counts);
                    batch.push((run, step.attempts.apply(entry.attempts), entry));
                }
                let (_, st, claims) = txn.edit_claims();
                let runs: Vec<(RunId, u32)> = batch.iter().map(|(run, attempts, _)| (*run, *attempts)).collect();
                let held = claims.claim_batch(st, &runs, micros(now), micros(deadline));
                let mut claimed = Vec::with_capacity(batch.len());
                for ((run, _, entry), held) in batch.into_iter().zip(held) {
                    let result = queued_result(st, run, &entry, Some(&held))?;
                    claimed.push((Lease { run, token: held.token, deadline: from_micros(held.deadline) }, result));
                }
                Ok::<_, QueueError>(claimed)
            }
        };
        // Claims leave the commit group's writes to its flush, which applies them as one batch,
        // and write their entries key by key: each claim stands alone, and sled writes its log
        // out around every batch. Only when the tree holds nothing to claim do the deferred
        // writes go in with the claims, so that an idle worker starts a run before its commit's
        // flush returns.
        let (mut claimed, mut ticket) = self.transact(Commit::OwnWrites, claim(true))?;
        if claimed.is_empty() {
            (claimed, ticket) = self.transact(Commit::Now, claim(false))?;
        }
        // After a crash, a run queued before it may be what took the process down: its claim
        // must count as an attempt even if this process dies too, so it waits for its journal.
        if claimed.iter().any(|(lease, _)| lease.run.0 < self.inner.claim_durably_below) {
            self.inner.flusher.wait_durable(ticket, || self.flush()).await?;
        }
        Ok(claimed)
    }

    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, QueueError> {
        let receipt = self.write_durably(|txn| self.stage_completion(txn, completion)).await?;
        // A finished run may make the next run of its object ready.
        self.signal_work();
        Ok(receipt)
    }

    async fn complete_batch(
        &self,
        completions: Vec<Completion>,
    ) -> Result<Vec<Result<CommitReceipt, QueueError>>, QueueError> {
        let outcomes = self
            .write_durably(|txn| {
                let mut outcomes = Vec::with_capacity(completions.len());
                for completion in completions {
                    // A lapsed lease is refused before anything of its completion is staged, so
                    // it refuses only its own run; any other error fails the whole batch.
                    match self.stage_completion(txn, completion) {
                        Err(lost @ QueueError::LeaseLost { .. }) => outcomes.push(Err(lost)),
                        other => outcomes.push(Ok(other?)),
                    }
                }
                Ok::<_, QueueError>(outcomes)
            })
            .await?;
        self.signal_work();
        Ok(outcomes)
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.unclaim_durably(lease, RunEvent::Released).await
    }

    async fn give_back(&self, lease: &Lease) -> Result<(), QueueError> {
        self.unclaim_durably(lease, RunEvent::GivenBack).await
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
        let now = self.inner.clock.now();
        let next_retry = self.first_retry_time().filter(|&at| at > now);
        let wait = next_retry.map_or(at_most, |at| Duration::try_from(at - now).unwrap_or_default().min(at_most));
        let _woken_or_timed_out = tokio::time::timeout(wait, notified).await;
    }
}

#[async_trait::async_trait]
impl QueueReader for Store {
    async fn depth(&self) -> Result<QueueDepth, StorageFailure> {
        let counts = self.writer().counts;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueDepth {
            pending: count(counts.unfinished - counts.leased),
            leased: count(counts.leased),
            dead: count(counts.dead),
        })
    }

    async fn get_result(&self, run: RunId) -> Result<Option<JobResult>, StorageFailure> {
        let st = self.view();
        let stored = stored_result(&st, run)?;
        if stored.as_ref().is_some_and(|result| !matches!(result.status, JobStatus::Pending | JobStatus::Retrying)) {
            return Ok(stored);
        }
        match queued_entry(&st, run)? {
            Some((key, entry)) => queued_result(&st, run, &entry, claim_of(&self.claims(), run, &key)).map(Some),
            // No entry: the run was never queued, or it ended between the two reads, its result
            // and the removal of its entry written together. Read the result again: `stored` may
            // be from before it was written.
            None => stored_result(&st, run),
        }
    }

    async fn list_results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>, StorageFailure> {
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut results = Vec::new();
        // Named runs, or the runs of named changes: read each, newest first.
        if let Some(mut runs) = self.named_runs(filter)? {
            runs.sort_unstable_by(|a, b| b.cmp(a));
            runs.dedup();
            for run in runs {
                results.extend(self.get_result(run).await?.filter(|r| filter.admits(r)));
            }
            return Ok(results.into_iter().skip(filter.offset).take(limit).collect());
        }
        // The results the offset passes over are counted from their headers when the headers
        // decide, and never kept.
        let header_decides = header_decides(filter);
        let mut to_skip = filter.offset;
        let headers = HeaderFilter::new(filter);
        let st = self.view();
        let claims = self.claims();
        for item in Self::records_newest_first(&st) {
            if results.len() >= limit {
                break;
            }
            let (run, record) = item?;
            let result = match record {
                RunRecord::Result(key, value) => {
                    if !headers.may_match(&key, &value)? {
                        continue;
                    }
                    if to_skip > 0 && header_decides {
                        to_skip -= 1;
                        continue;
                    }
                    self.get_result(run).await?
                }
                // A stored result is listed from `res/`.
                RunRecord::Queued(key, value) => {
                    let entry = decode_entry(&key, &value)?;
                    if entry.result_stored {
                        continue;
                    }
                    Some(queued_result(&st, run, &entry, claim_of(&claims, run, &key))?)
                }
            };
            match result.filter(|result| filter.admits(result)) {
                Some(_) if to_skip > 0 => to_skip -= 1,
                Some(result) => results.push(result),
                None => {}
            }
        }
        Ok(results)
    }

    async fn results_after(&self, after: RunId, limit: usize) -> Result<Vec<JobResult>, StorageFailure> {
        let mut results = Vec::new();
        let st = self.view();
        let claims = self.claims();
        for item in Self::run_records(&st, after, false) {
            if results.len() >= limit {
                break;
            }
            let (run, record) = item?;
            match record {
                RunRecord::Result(..) => results.extend(self.get_result(run).await?),
                // A stored result is listed from `res/`.
                RunRecord::Queued(key, value) => {
                    let entry = decode_entry(&key, &value)?;
                    if !entry.result_stored {
                        results.push(queued_result(&st, run, &entry, claim_of(&claims, run, &key))?);
                    }
                }
            }
        }
        Ok(results)
    }

    async fn count_results(&self, filter: &ResultFilter) -> Result<u64, StorageFailure> {
        if !filter.ids.is_empty() || !filter.changes.is_empty() {
            let unlimited = filter.unpaged();
            return Ok(self.list_results(&unlimited).await?.len() as u64);
        }
        let header_decides = header_decides(filter);
        let headers = HeaderFilter::new(filter);
        let mut count = 0;
        let st = self.view();
        let claims = self.claims();
        for item in Self::records_newest_first(&st) {
            let (run, record) = item?;
            match record {
                RunRecord::Result(key, value) => {
                    if headers.may_match(&key, &value)? {
                        let counted =
                            header_decides || self.get_result(run).await?.is_some_and(|result| filter.admits(&result));
                        count += u64::from(counted);
                    }
                }
                RunRecord::Queued(key, value) => {
                    let entry = decode_entry(&key, &value)?;
                    if !entry.result_stored
                        && filter.admits(&queued_result(&st, run, &entry, claim_of(&claims, run, &key))?)
                    {
                        count += 1;
                    }
                }
            }
        }
        Ok(count)
    }
}

#[async_trait::async_trait]
impl QueueMaintenance for Store {
    async fn release_expired(&self, now: OffsetDateTime) -> Result<usize, MaintenanceError> {
        self.release_leases(now, |deadline| deadline <= micros(now))
    }

    async fn replay(&self, run: RunId) -> Result<(), MaintenanceError> {
        self.write_durably(|txn| {
            let st = txn.staging();
            let Some(entry) = entry_at(st, &keys::dead(run))? else {
                return Err(MaintenanceError::Refused {
                    reason: format!("run {run} is not dead-lettered; only dead-lettered runs can be replayed"),
                });
            };
            let step = transition(JobStatus::DeadLettered, RunEvent::Replayed)?;
            st.remove(keys::dead(run));
            st.counts.apply(step.counts);
            let mut result = stored_result(st, run)?.ok_or_else(|| missing("job result", run))?;
            result.attempts = step.attempts.apply(result.attempts);
            result.completed = None;
            result.status = step.to;
            put_result(st, &result)?;
            // A replay joins the back of its object's line, like a run queued now.
            let object = run_object(st, &entry.inputs)?;
            let entry = QueueEntry { attempts: result.attempts, lease: None, next: None, result_stored: true, ..entry };
            Ok(join_object_line(st, object.as_ref(), run, entry)?)
        })
        .await?;
        self.signal_work();
        Ok(())
    }

    async fn prune(&self, retention: &Retention, now: OffsetDateTime) -> Result<PruneReport, MaintenanceError> {
        Ok(self.prune_pass(retention, now).await?)
    }
}

/// A record that gives a run's result: its stored result, or the queue entry of a run that has
/// stored nothing yet.
enum RunRecord {
    Result(sled::IVec, sled::IVec),
    Queued(sled::IVec, sled::IVec),
}

/// What a stored result's header says of a filter: the header names the result's job and stored
/// status, so most records are skipped without decoding. A stored PENDING or RETRYING status may
/// show as STARTED, so a filter on STARTED lets both through.
/// Whether a stored result's header decides the filter: it holds the job and the status, not the
/// user; and a stored PENDING or RETRYING status may show as STARTED, so a filter on STARTED,
/// PENDING or RETRYING reads the results. A queued run's entry is small and read whole.
fn header_decides(filter: &ResultFilter) -> bool {
    filter.users.is_empty()
        && filter
            .statuses
            .iter()
            .all(|status| matches!(status, JobStatus::Success | JobStatus::Failure | JobStatus::DeadLettered))
}

struct HeaderFilter<'f> {
    jobs: &'f [String],
    status_tags: Option<Vec<u8>>,
}

impl<'f> HeaderFilter<'f> {
    fn new(filter: &'f ResultFilter) -> Self {
        let tags_of = |status: &JobStatus| match status {
            JobStatus::Started => vec![keys::status_tag(JobStatus::Pending), keys::status_tag(JobStatus::Retrying)],
            other => vec![keys::status_tag(*other)],
        };
        let status_tags = (!filter.statuses.is_empty()).then(|| filter.statuses.iter().flat_map(tags_of).collect());
        Self { jobs: &filter.jobs, status_tags }
    }

    /// Whether the result stored under `key` as `value` may pass the filter.
    fn may_match(&self, key: &[u8], value: &[u8]) -> Result<bool, StorageFailure> {
        let header = records::decode_result_header(value).ok_or_else(|| corrupt("job result", key, "no header"))?;
        let job_matches = self.jobs.is_empty() || self.jobs.iter().any(|job| job.as_bytes() == header.job);
        Ok(job_matches && self.status_tags.as_ref().is_none_or(|tags| tags.contains(&header.status_tag)))
    }
}

impl Store {
    /// The runs a filter names, when it names some: its runs, or else the runs its changes
    /// queued (in no order, perhaps repeated).
    fn named_runs(&self, filter: &ResultFilter) -> Result<Option<Vec<RunId>>, StorageFailure> {
        if !filter.ids.is_empty() {
            return Ok(Some(filter.ids.clone()));
        }
        if filter.changes.is_empty() {
            return Ok(None);
        }
        let st = self.view();
        let mut runs = Vec::new();
        for change in &filter.changes {
            runs.extend(
                read_change_json::<serde::de::IgnoredAny>(&st, *change)?.map(|(runs, _)| runs).unwrap_or_default(),
            );
        }
        Ok(Some(runs))
    }
}

type RunRecords<'s> = Box<dyn Iterator<Item = Result<(RunId, RunRecord), StorageFailure>> + Send + 's>;

impl Store {
    /// Every stored result and every queued run, newest first: `res/` merged with the queue's
    /// prefixes by run id. A run may come twice, from its result and its queue entry.
    fn records_newest_first<'s>(st: &'s Staging<'_>) -> RunRecords<'s> {
        Self::run_records(st, RunId(0), true)
    }

    /// What [`Store::records_newest_first`] lists, for the runs after `after`, in either order.
    fn run_records<'s>(st: &'s Staging<'_>, after: RunId, newest_first: bool) -> RunRecords<'s> {
        fn by_id<'s>(
            kind: &'static str,
            record: fn(sled::IVec, sled::IVec) -> RunRecord,
        ) -> impl Fn(Entry<'s>) -> Result<(RunId, RunRecord), StorageFailure> {
            move |item| {
                let (key, value) = item?;
                Ok((RunId(indexed_id(kind, &key)?), record(key.into_ivec(), value.into_ivec())))
            }
        }
        let after_in = |prefix: &[u8]| {
            let start = [prefix, &after.0.saturating_add(1).to_be_bytes()].concat();
            (std::ops::Bound::Included(start), crate::staging::prefix_range(prefix).1)
        };
        // Retries are few and sorted by due time: sort them by id here.
        let mut delayed: Vec<_> = st
            .scan_prefix(keys::DELAYED)
            .map(by_id("retry index", RunRecord::Queued))
            .filter(|item| item.as_ref().map_or(true, |(run, _)| *run > after))
            .collect();
        // Errors first, so that they end the listing.
        let order = move |item: &Result<(RunId, RunRecord), StorageFailure>| {
            let id = item.as_ref().map_or(u64::MAX, |(run, _)| run.0);
            if newest_first { u64::MAX - id } else { id.wrapping_add(1) }
        };
        delayed.sort_by_key(order);
        let sources: Vec<RunRecords<'s>> = vec![
            Box::new(st.scan(after_in(keys::RESULT), newest_first).map(by_id("job result", RunRecord::Result))),
            Box::new(st.scan(after_in(keys::READY), newest_first).map(by_id("ready index", RunRecord::Queued))),
            Box::new(st.scan(after_in(keys::WAITING), newest_first).map(by_id("line", RunRecord::Queued))),
            Box::new(delayed.into_iter()),
        ];
        Box::new(itertools::kmerge_by(sources, move |a: &_, b: &_| order(a) < order(b)))
    }
}

/// Counts the runs by state, once at open.
pub(crate) fn count_runs(st: &Staging<'_>) -> Result<QueueCounts, StorageFailure> {
    let mut counts = QueueCounts::default();
    for prefix in [keys::WAITING, keys::DELAYED, keys::DEAD] {
        for item in st.scan_prefix(prefix) {
            item?;
            *(if prefix == keys::DEAD { &mut counts.dead } else { &mut counts.unfinished }) += 1;
        }
    }
    for item in st.scan_prefix(keys::READY) {
        let (key, value) = item?;
        let entry = decode_entry(&key, &value)?;
        counts.unfinished += 1;
        counts.leased += i64::from(entry.lease.is_some());
    }
    Ok(counts)
}

/// The greatest run id ever handed out: of the runs still queued or holding a result, and of
/// those whose results were pruned.
pub(crate) fn last_run_id(st: &Staging<'_>) -> Result<u64, StorageFailure> {
    let mut last = match st.get(keys::LAST_PRUNED_RUN)? {
        Some(bytes) => {
            keys::trailing_id(&bytes).ok_or_else(|| corrupt("run counter", keys::LAST_PRUNED_RUN, "not an id"))?
        }
        None => 0,
    };
    for prefix in [keys::RESULT, keys::READY, keys::WAITING, keys::DEAD] {
        let key = st.last_with_prefix(prefix)?.map(|(key, _)| key);
        last = last.max(key.and_then(|key| keys::trailing_id(&key)).unwrap_or(0));
    }
    for item in st.scan_prefix(keys::DELAYED) {
        let (key, _) = item?;
        last = last.max(keys::trailing_id(&key).unwrap_or(0));
    }
    Ok(last)
}

impl Store {
    /// When the first retry falls due, if any is waiting.
    fn first_retry_time(&self) -> Option<OffsetDateTime> {
        let view = self.view();
        let (key, _) = view.scan_prefix(keys::DELAYED).next()?.ok()?;
        let raw: [u8; 8] = key.get(keys::DELAYED.len()..keys::DELAYED.len() + 8)?.try_into().ok()?;
        Some(from_micros((u64::from_be_bytes(raw) ^ (1 << 63)) as i64))
    }
}
