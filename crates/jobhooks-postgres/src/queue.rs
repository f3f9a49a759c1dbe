//! The durable job queue and its results: one row per run. Claims lock rows with
//! `FOR UPDATE SKIP LOCKED`, so processes claiming at once never wait for each other nor take the
//! same run; a run is claimable only while no earlier run of its object's line is unfinished.

use std::sync::LazyLock;
use std::time::Duration;

use jobhooks_model::ports::{
    ClaimReads, CommitReceipt, Completion, JobQueue, Lease, LeasedBatch, ObjectWrites, Outcome, PruneReport,
    QueueDepth, QueueMaintenance, QueueReader, ResultFilter, Retention,
};
use jobhooks_model::{
    Attempts, BackendError, ChangeFacts, ChangeId, ContentType, JobInputs, JobResult, JobStatus, MaintenanceError,
    ObjectChange, ObjectRef, OffsetDateTime, QueueError, RunEvent, RunId, StorageFailure, lapse_entry, transition,
};
use tokio_postgres::Row;

use crate::db::{Db, Pipelined};

use crate::catalog::{JOB_COLUMNS, USER_COLUMNS, job_at, user_at};
use crate::changes::{
    CHANGE_COLUMNS, Commit, OBJECT_AFTER_CHANGE, OBJECT_WITH_CHANGE, RunInputs, RunRows, change_and_object_at,
    stage_commits,
};
use crate::lines::{self, UNFINISHED};
use crate::records::{LogRecord, corrupt, line_key, log_entries, log_records, status_name, status_of};
use crate::{PgStore, db_error};

/// Rows examined per pruning step; each step is its own short transaction.
const PRUNE_STEP: i64 = 500;

const RUN_COLUMNS: &str = "id, job, user_id, change_id, object_pk, object_model_name, status, attempts, leases, \
     created, started, completed, logs, line, hook_id";

/// A run's row: its result as the queue shows it, its lease number and its object line.
struct RunRow {
    result: JobResult,
    leases: i64,
    line: Option<String>,
}

fn run_of(row: &Row) -> Result<RunRow, StorageFailure> {
    let id: i64 = row.get(0);
    let bad = |reason: String| corrupt("job result", id, reason);
    let inputs = match (row.get::<_, Option<i64>>(3), row.get::<_, Option<String>>(4), row.get::<_, Option<String>>(5))
    {
        (Some(change), _, _) => JobInputs::Hook { object_change: ChangeId(change as u64), hook: row.get(14) },
        (None, Some(object_pk), Some(object_model_name)) => JobInputs::Button { object_pk, object_model_name },
        _ => return Err(bad("it has neither a change nor an object".into())),
    };
    let status: String = row.get(6);
    let status = status_of(&status).ok_or_else(|| bad(format!("unknown status `{status}`")))?;
    let records: Vec<LogRecord> =
        serde_json::from_value(row.get(12)).map_err(|e| bad(format!("its log does not decode: {e}")))?;
    let result = JobResult {
        id: RunId(id as u64),
        job: row.get(1),
        user: row.get(2),
        inputs,
        status,
        attempts: u32::try_from(row.get::<_, i32>(7)).unwrap_or(0),
        created: row.get(9),
        started: row.get(10),
        completed: row.get(11),
        logs: log_entries(records).map_err(bad)?,
    };
    Ok(RunRow { result, leases: row.get(8), line: row.get(13) })
}

pub(crate) fn logs_value(result: &JobResult) -> serde_json::Value {
    serde_json::to_value(log_records(&result.logs)).unwrap_or_else(|_| serde_json::Value::Array(Vec::new()))
}

pub(crate) fn attempts_value(result: &JobResult) -> i32 {
    i32::try_from(result.attempts).unwrap_or(i32::MAX)
}

/// Locks the run of `lease` and returns it, or `LeaseLost` when the claim lapsed and was taken
/// over, was released, or the run is gone.
async fn claimed(client: &impl Db, lease: &Lease) -> Result<RunRow, QueueError> {
    let row = client
        .query_opt(
            &format!("SELECT {RUN_COLUMNS} FROM jobhooks_runs WHERE id = $1 FOR UPDATE"),
            &[&(lease.run.0 as i64)],
        )
        .await
        .map_err(db_error("cannot read a run"))?;
    let run = row.as_ref().map(run_of).transpose()?;
    run.filter(|run| run.result.status == JobStatus::Started && run.leases == lease.token as i64)
        .ok_or(QueueError::LeaseLost { run: lease.run.0 })
}

/// Gives a claim up as `event` (lease expired, released, given back) decides: the run is pending
/// again, at the head of its line.
async fn unclaim<E: From<StorageFailure> + From<jobhooks_model::IllegalTransition>>(
    client: &impl Db,
    mut result: JobResult,
    event: RunEvent,
    now: OffsetDateTime,
) -> Result<JobResult, E> {
    let step = transition(JobStatus::Started, event)?;
    result.status = step.to;
    result.attempts = step.attempts.apply(result.attempts);
    if step.notes_lapse {
        result.logs.push(lapse_entry(result.attempts, now));
    }
    client
        .execute(
            "UPDATE jobhooks_runs SET status = $2, attempts = $3, deadline = NULL, logs = $4 WHERE id = $1",
            &[&(result.id.0 as i64), &status_name(result.status), &attempts_value(&result), &logs_value(&result)],
        )
        .await
        .map_err(db_error("cannot give a claim up"))?;
    Ok(result)
}

/// The line a run about `inputs` joins: its object's, when the store has a change of it.
pub(crate) async fn line_of(client: &impl Db, inputs: &JobInputs) -> Result<Option<String>, StorageFailure> {
    let object = match inputs {
        JobInputs::Hook { object_change, .. } => {
            let row = client
                .query_opt(
                    "SELECT content_type, object_id FROM jobhooks_changes WHERE id = $1",
                    &[&(object_change.0 as i64)],
                )
                .await
                .map_err(db_error("cannot read a change"))?;
            row.and_then(|row| {
                let content_type = ContentType::new(row.get::<_, String>(0)).ok()?;
                ObjectRef::new(content_type, row.get::<_, String>(1)).ok()
            })
        }
        JobInputs::Button { object_pk, object_model_name } => ContentType::new(object_model_name.as_str())
            .ok()
            .and_then(|content_type| ObjectRef::new(content_type, object_pk.as_str()).ok()),
    };
    let Some(object) = object else { return Ok(None) };
    let known = client
        .query_opt(
            "SELECT 1 FROM jobhooks_changes WHERE content_type = $1 AND object_id = $2 LIMIT 1",
            &[&object.content_type().as_str(), &object.id()],
        )
        .await
        .map_err(db_error("cannot read an object's changes"))?
        .is_some();
    Ok(known.then(|| line_key(&object)))
}

/// Where the columns a claim reads for its runs start in its rows, after the run's
/// ([`RUN_COLUMNS`]): the change with its object (four columns), the job, the user, and the
/// user's name.
const CLAIM_CHANGE_AT: usize = column_count(RUN_COLUMNS);
const CLAIM_JOB_AT: usize = CLAIM_CHANGE_AT + OBJECT_AFTER_CHANGE + 4;
const CLAIM_USER_AT: usize = CLAIM_JOB_AT + column_count(JOB_COLUMNS);
const CLAIM_USERNAME_AT: usize = CLAIM_USER_AT + column_count(USER_COLUMNS);

/// The number of columns in a list of plain column names separated by commas.
const fn column_count(columns: &str) -> usize {
    let bytes = columns.as_bytes();
    let (mut count, mut at) = (1, 0);
    while at < bytes.len() {
        if bytes[at] == b',' {
            count += 1;
        }
        at += 1;
    }
    count
}

/// Claims up to `max` pending heads in one statement: each gets the `started` status, one more
/// attempt and lease, and `deadline`. The same statement reads what each claimed run starts with:
/// its change and object (as `get_changes_and_objects` reads them), its job and its user.
static CLAIM_PENDING: LazyLock<String> = LazyLock::new(|| {
    let run: Vec<String> = RUN_COLUMNS.split(", ").map(|column| format!("r.{column}")).collect();
    let job: Vec<String> = JOB_COLUMNS.split(", ").map(|column| format!("j.{column}")).collect();
    let user: Vec<String> = USER_COLUMNS.split(", ").map(|column| format!("u.{column}")).collect();
    format!(
        "WITH picked AS (SELECT id FROM jobhooks_runs WHERE head AND status = 'PENDING'
                         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED),
         claimed AS (UPDATE jobhooks_runs r SET status = $2, attempts = r.attempts + 1, leases = r.leases + 1,
                         deadline = $3, started = $4, due = NULL
                     FROM picked WHERE r.id = picked.id
                     RETURNING {run})
         SELECT {run}, {CHANGE_COLUMNS}, {OBJECT_WITH_CHANGE}, {job}, {user},
                coalesce(r.user_id, $5)
         FROM claimed r
         LEFT JOIN jobhooks_changes c ON c.id = r.change_id
         LEFT JOIN jobhooks_objects o ON o.content_type = c.content_type AND o.object_id = c.object_id
         LEFT JOIN jobhooks_jobs j ON j.class_path = r.job
         LEFT JOIN jobhooks_users u ON u.username = coalesce(r.user_id, $5)",
        run = run.join(", "),
        job = job.join(", "),
        user = user.join(", "),
    )
});

async fn claim_pending(
    client: &impl Db,
    max: usize,
    deadline: OffsetDateTime,
    now: OffsetDateTime,
    started: JobStatus,
) -> Result<LeasedBatch, QueueError> {
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let rows = client
        .query(CLAIM_PENDING.as_str(), &[&limit, &status_name(started), &deadline, &now, &ObjectChange::UNDEFINED_USER])
        .await
        .map_err(db_error("cannot claim runs"))?;
    let mut batch = LeasedBatch::default();
    batch.reads.read_at = Some(now);
    for row in &rows {
        let RunRow { result, leases, .. } = run_of(row)?;
        read_with_claim(&mut batch.reads, row, &result);
        batch.runs.push((Lease { run: result.id, token: leases as u64, deadline }, result));
    }
    batch.runs.sort_by_key(|(lease, _)| lease.run);
    Ok(batch)
}

/// Records what a claim's `row` read for its run `result`. A record that does not decode is left
/// unanswered: the dispatcher reads it again, and fails the run with the reason.
fn read_with_claim(reads: &mut ClaimReads, row: &Row, result: &JobResult) {
    if let Some(change) = result.change_id()
        && let Some(found) = joined::<i64, _>(row, CLAIM_CHANGE_AT, change_and_object_at)
    {
        reads.changes.insert(change, found);
    }
    if let Some(job) = joined::<String, _>(row, CLAIM_JOB_AT, job_at) {
        reads.jobs.insert(result.job.clone(), job);
    }
    if let Some(user) = joined::<String, _>(row, CLAIM_USER_AT, user_at) {
        reads.users.insert(row.get(CLAIM_USERNAME_AT), user);
    }
}

/// The record a `LEFT JOIN` put at `at` in `row`, decoded: `Some(None)` when the join found none
/// (its first column, of type `K`, is null), `None` when it does not decode.
fn joined<K: for<'a> tokio_postgres::types::FromSql<'a>, T>(
    row: &Row,
    at: usize,
    decode: impl FnOnce(&Row, usize) -> Result<T, StorageFailure>,
) -> Option<Option<T>> {
    match row.get::<_, Option<K>>(at) {
        Some(_) => decode(row, at).ok().map(Some),
        None => Some(None),
    }
}

/// Writes the new states of completed runs, given column by column.
const COMPLETE_RUNS: &str = "UPDATE jobhooks_runs r SET status = u.status, attempts = u.attempts, deadline = NULL,
         due = u.due, completed = u.completed, logs = u.logs
     FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::timestamptz[], $5::timestamptz[], $6::jsonb[])
       AS u(id, status, attempts, due, completed, logs)
     WHERE r.id = u.id";

/// The new state of completed runs, column by column, written in one statement.
#[derive(Default)]
struct CompletionColumns {
    ids: Vec<i64>,
    statuses: Vec<&'static str>,
    attempts: Vec<i32>,
    due: Vec<Option<OffsetDateTime>>,
    completed: Vec<Option<OffsetDateTime>>,
    logs: Vec<serde_json::Value>,
}

impl CompletionColumns {
    fn push(&mut self, result: &JobResult, due: Option<OffsetDateTime>) {
        self.ids.push(result.id.0 as i64);
        self.statuses.push(status_name(result.status));
        self.attempts.push(attempts_value(result));
        self.due.push(due);
        self.completed.push(result.completed);
        self.logs.push(logs_value(result));
    }

    async fn execute(&self, client: &impl Db) -> Result<(), StorageFailure> {
        if self.ids.is_empty() {
            return Ok(());
        }
        client
            .execute(
                COMPLETE_RUNS,
                &[&self.ids, &self.statuses, &self.attempts, &self.due, &self.completed, &self.logs],
            )
            .await
            .map_err(db_error("cannot record the runs' outcomes"))?;
        Ok(())
    }
}

impl PgStore {
    /// Records `completions` in `transaction`, which it begins and commits: one transaction (one
    /// commit to disk) for the whole batch in two round trips: the runs read and locked with the
    /// `BEGIN`; their new states, their lines' locks and next heads with the `COMMIT` (when runs
    /// that succeeded made writes, the new states and locks go first, and the promotion and the
    /// writes in round trips of their own before the `COMMIT`). A lapsed lease refuses only its
    /// own run; any other error leaves the transaction for the caller to roll back. The second
    /// value says whether runs became ready for other processes to claim: a line's next run became
    /// its head, a run waits for a retry, or the writes queued runs.
    async fn complete_in(
        &self,
        transaction: &Pipelined,
        completions: Vec<Completion>,
    ) -> Result<(Vec<Result<CommitReceipt, QueueError>>, bool), QueueError> {
        let ids: Vec<i64> = completions.iter().map(|completion| completion.lease.run.0 as i64).collect();
        let read = format!("SELECT {RUN_COLUMNS} FROM jobhooks_runs WHERE id = ANY($1) FOR UPDATE");
        let (begun, rows) = tokio::join!(transaction.begin(), async { transaction.query(&read, &[&ids]).await });
        begun.map_err(db_error("cannot begin a transaction"))?;
        let rows = rows.map_err(db_error("cannot read the runs"))?;
        let mut current = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let run = run_of(row)?;
            current.insert(run.result.id, run);
        }
        let now = self.now();
        let mut update = CompletionColumns::default();
        let mut outcomes = Vec::with_capacity(completions.len());
        let mut writes = Vec::new();
        let mut finished_lines = Vec::new();
        let mut waits_for_retry = false;
        for Completion { lease, outcome, logs } in completions {
            let claimed = current
                .remove(&lease.run)
                .filter(|run| run.result.status == JobStatus::Started && run.leases == lease.token as i64);
            let Some(RunRow { mut result, line, .. }) = claimed else {
                outcomes.push(Err(QueueError::LeaseLost { run: lease.run.0 }));
                continue;
            };
            let step = transition(JobStatus::Started, outcome.event())?;
            result.status = step.to;
            result.attempts = step.attempts.apply(result.attempts);
            result.logs.extend(logs);
            if step.completes {
                result.completed = Some(now);
            }
            let due = match &outcome {
                Outcome::RetryAt(at) => Some(*at),
                _ => None,
            };
            update.push(&result, due);
            if result.status.is_final() {
                finished_lines.extend(line);
            } else {
                waits_for_retry = true;
            }
            if let Outcome::Succeeded { writes: Some((context, changes)) } = outcome {
                writes.push((outcomes.len(), context, changes));
            }
            outcomes.push(Ok(CommitReceipt::default()));
        }
        let (positions, commits): (Vec<usize>, Vec<Commit>) = writes
            .into_iter()
            .map(|(index, context, changes)| (index, Commit { context, changes, objects: ObjectWrites::Apply }))
            .unzip();
        // The runs that finished leave their lines: the next run of each becomes its head. The
        // promotion decides from what the lines' locks protect: it runs after the lock statement,
        // so its snapshot is taken once the locks are held and sees what each lock's last holder
        // committed. Every statement sent with the COMMIT is prepared first: one still waiting for
        // its preparation would be overtaken by the COMMIT and run after it, outside the
        // transaction and without the locks, and a group commit of the same object could then
        // queue its next run behind a finished head that nothing promotes.
        let finished = finished_lines.iter().map(String::as_str);
        let commit_error = db_error("cannot record the runs' outcomes");
        let (promoted, queued) = if commits.is_empty() {
            let last = [COMPLETE_RUNS, lines::LOCK, lines::PROMOTE_HEADS.as_str()];
            transaction.prepare(&last).await.map_err(&commit_error)?;
            let (updated, locked, promoted, committed) = tokio::join!(
                update.execute(transaction),
                lines::lock(transaction, finished),
                lines::promote_heads(transaction, &finished_lines),
                transaction.commit()
            );
            updated?;
            locked?;
            let promoted = promoted?;
            committed.map_err(commit_error)?;
            (promoted, false)
        } else {
            let (updated, locked) = tokio::join!(update.execute(transaction), lines::lock(transaction, finished));
            updated?;
            locked?;
            let promoted = lines::promote_heads(transaction, &finished_lines).await?;
            let receipts = stage_commits(transaction, now, &commits).await?;
            let queued = receipts.iter().any(|receipt| !receipt.runs.is_empty());
            for (index, receipt) in positions.into_iter().zip(receipts) {
                outcomes[index] = Ok(receipt);
            }
            transaction.commit().await.map_err(commit_error)?;
            (promoted, queued)
        };
        Ok((outcomes, waits_for_retry || promoted > 0 || queued))
    }

    async fn unclaim_durably(&self, lease: &Lease, event: RunEvent) -> Result<(), QueueError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let outcome = async {
            let run = claimed(&transaction, lease).await?;
            unclaim::<QueueError>(&transaction, run.result, event, self.now()).await
        }
        .await;
        crate::finish(transaction, outcome, "cannot give a claim up").await?;
        self.work_ready();
        Ok(())
    }

    /// Claims up to `max` runs of any claimable kind (pending, claimed past their deadline,
    /// retrying and due) in one transaction, each moved by the model's steps.
    async fn claim_any(
        &self,
        now: OffsetDateTime,
        deadline: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<(Lease, JobResult)>, QueueError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = transaction
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM jobhooks_runs
                     WHERE (head AND status IN ('PENDING', 'RETRYING') AND (status = 'PENDING' OR due <= $1))
                        OR (head AND status = 'STARTED' AND deadline <= $1)
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
                ),
                &[&now, &limit],
            )
            .await
            .map_err(db_error("cannot claim runs"))?;
        let due = transition(JobStatus::Retrying, RunEvent::RetryDue)?;
        let leased = transition(JobStatus::Pending, RunEvent::Leased)?;
        let mut claimed = Vec::with_capacity(rows.len());
        let (mut ids, mut attempts) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for row in &rows {
            let RunRow { mut result, leases, .. } = run_of(row)?;
            match result.status {
                JobStatus::Started => {
                    result = unclaim::<QueueError>(&transaction, result, RunEvent::LeaseExpired, now).await?;
                }
                JobStatus::Retrying => {
                    result.status = due.to;
                    result.attempts = due.attempts.apply(result.attempts);
                }
                _ => {}
            }
            result.status = leased.to;
            result.attempts = leased.attempts.apply(result.attempts);
            result.started = Some(now);
            ids.push(result.id.0 as i64);
            attempts.push(attempts_value(&result));
            claimed.push((Lease { run: result.id, token: (leases + 1) as u64, deadline }, result));
        }
        // One statement claims them all, each with the attempts the model decided.
        if !ids.is_empty() {
            transaction
                .execute(
                    "UPDATE jobhooks_runs r SET status = $3, attempts = u.attempts, leases = r.leases + 1,
                         deadline = $4, started = $5, due = NULL
                     FROM unnest($1::bigint[], $2::integer[]) AS u(id, attempts) WHERE r.id = u.id",
                    &[&ids, &attempts, &status_name(leased.to), &deadline, &now],
                )
                .await
                .map_err(db_error("cannot claim runs"))?;
        }
        transaction.commit().await.map_err(db_error("cannot claim runs"))?;
        Ok(claimed)
    }

    async fn first_retry(&self) -> Result<Option<OffsetDateTime>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT min(due) FROM jobhooks_runs WHERE status = 'RETRYING'", &[])
            .await
            .map_err(db_error("cannot read the retries"))?;
        Ok(row.get(0))
    }
}

#[async_trait::async_trait]
impl JobQueue for PgStore {
    async fn enqueue(&self, job: &str, user: Option<String>, inputs: JobInputs) -> Result<RunId, QueueError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        if crate::catalog::job(&transaction, job).await?.is_none() {
            return Err(QueueError::NotFound { kind: "job", key: job.to_owned() });
        }
        let line = line_of(&transaction, &inputs).await?;
        lines::lock(&transaction, line.as_deref()).await?;
        let mut rows = RunRows::default();
        rows.push(job, user.as_deref(), RunInputs::from(&inputs), line.as_deref());
        let Some(&run) = rows.insert(&transaction, self.now()).await?.first() else {
            return Err(StorageFailure::Backend(BackendError::message("PostgreSQL queued no run")).into());
        };
        transaction.commit().await.map_err(db_error("cannot queue a run"))?;
        self.work_ready();
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
        Ok(self.lease_batch_with_reads(now, lease_for, max).await?.runs)
    }

    async fn lease_batch_with_reads(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
        max: usize,
    ) -> Result<LeasedBatch, QueueError> {
        let deadline = now.max(self.now()) + lease_for;
        let leased = transition(JobStatus::Pending, RunEvent::Leased)?;
        let mut batch = LeasedBatch::default();
        // Most claims take pending runs only, for which the model's step is a plain increment of
        // the attempts: one statement, no transaction around it. Runs whose claim lapsed or whose
        // retry is due need the model run by run, in the transaction below, which reads nothing
        // for them.
        if leased.attempts == Attempts::Increment {
            let client = self.client().await?;
            // Whether lapsed or due runs wait is asked with the claim, in the same round trip.
            let (pending, lapsed_or_due) = tokio::join!(claim_pending(&client, max, deadline, now, leased.to), async {
                client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM jobhooks_runs WHERE status = 'STARTED' AND deadline <= $1)
                                 OR EXISTS (SELECT 1 FROM jobhooks_runs WHERE status = 'RETRYING' AND due <= $1)",
                        &[&now],
                    )
                    .await
            });
            batch = pending?;
            if batch.runs.len() >= max {
                return Ok(batch);
            }
            let lapsed_or_due: bool = lapsed_or_due.map_err(db_error("cannot claim runs"))?.get(0);
            if !lapsed_or_due {
                return Ok(batch);
            }
            // The transaction takes a connection of its own; a pool of one must not wait for it.
            drop(client);
        }
        let more = self.claim_any(now, deadline, max - batch.runs.len()).await?;
        batch.runs.extend(more);
        Ok(batch)
    }

    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, QueueError> {
        self.complete_batch(vec![completion]).await?.pop().unwrap_or(Ok(CommitReceipt::default()))
    }

    async fn complete_batch(
        &self,
        completions: Vec<Completion>,
    ) -> Result<Vec<Result<CommitReceipt, QueueError>>, QueueError> {
        let transaction = Pipelined::new(self.client().await?);
        match self.complete_in(&transaction, completions).await {
            Ok((outcomes, ready)) => {
                // The other processes are told only of runs they could claim now or later: most
                // completions leave no run behind them, and telling would wake every dispatcher
                // for nothing. This handle's workers are woken either way.
                if ready {
                    self.work_ready();
                } else {
                    self.work_ready_here();
                }
                Ok(outcomes)
            }
            Err(error) => {
                transaction.rollback().await;
                Err(error)
            }
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.unclaim_durably(lease, RunEvent::Released).await
    }

    async fn give_back(&self, lease: &Lease) -> Result<(), QueueError> {
        self.unclaim_durably(lease, RunEvent::GivenBack).await
    }

    fn work_generation(&self) -> u64 {
        self.inner.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait_for_work(&self, seen: u64, at_most: Duration) {
        self.listen_for_work();
        let notified = self.inner.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.work_generation() > seen {
            return;
        }
        // Sleep no longer than until the next retry falls due; a store that cannot say waits the
        // full bound, and the dispatcher's next claim meets the failure.
        let now = self.inner.clock.now();
        let next_retry = self.first_retry().await.ok().flatten().filter(|&at| at > now);
        let wait = next_retry.map_or(at_most, |at| Duration::try_from(at - now).unwrap_or_default().min(at_most));
        let _woken_or_timed_out = tokio::time::timeout(wait, notified).await;
    }
}

#[async_trait::async_trait]
impl QueueReader for PgStore {
    async fn depth(&self) -> Result<QueueDepth, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE status <> 'STARTED'), count(*) FILTER (WHERE status = 'STARTED'),
                         (SELECT count(*) FROM jobhooks_runs WHERE status = 'DEAD_LETTERED')
                     FROM jobhooks_runs WHERE status IN {UNFINISHED}"
                ),
                &[],
            )
            .await
            .map_err(db_error("cannot count the runs"))?;
        let count = |index: usize| u64::try_from(row.get::<_, i64>(index)).unwrap_or(0);
        Ok(QueueDepth { pending: count(0), leased: count(1), dead: count(2) })
    }

    async fn get_result(&self, run: RunId) -> Result<Option<JobResult>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {RUN_COLUMNS} FROM jobhooks_runs WHERE id = $1"), &[&(run.0 as i64)])
            .await
            .map_err(db_error("cannot read a result"))?;
        Ok(row.as_ref().map(run_of).transpose()?.map(|run| run.result))
    }

    async fn list_results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>, StorageFailure> {
        let client = self.client().await?;
        let limit = filter.limit.map_or(i64::MAX, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let params = ResultFilterParams::of(filter);
        let mut values = params.values();
        values.extend([&offset as &(dyn tokio_postgres::types::ToSql + Sync), &limit]);
        let rows = client
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM jobhooks_runs WHERE {RESULT_FILTER} ORDER BY id DESC OFFSET $6 LIMIT $7"
                ),
                &values,
            )
            .await
            .map_err(db_error("cannot read results"))?;
        rows.iter().map(|row| run_of(row).map(|run| run.result)).collect()
    }

    async fn results_after(&self, after: RunId, limit: usize) -> Result<Vec<JobResult>, StorageFailure> {
        let (after, limit) = (after.0 as i64, i64::try_from(limit).unwrap_or(i64::MAX));
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {RUN_COLUMNS} FROM jobhooks_runs WHERE id > $1 ORDER BY id LIMIT $2"),
                &[&after, &limit],
            )
            .await
            .map_err(db_error("cannot read results"))?;
        rows.iter().map(|row| run_of(row).map(|run| run.result)).collect()
    }

    async fn count_results(&self, filter: &ResultFilter) -> Result<u64, StorageFailure> {
        let client = self.client().await?;
        let params = ResultFilterParams::of(filter);
        let row = client
            .query_one(&format!("SELECT count(*) FROM jobhooks_runs WHERE {RESULT_FILTER}"), &params.values())
            .await
            .map_err(db_error("cannot count results"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }
}

/// A [`ResultFilter`] in SQL, over `jobhooks_runs`: an empty array admits every run. Its
/// parameters are [`ResultFilterParams::values`], `$1` to `$5`.
const RESULT_FILTER: &str = "(cardinality($1::bigint[]) = 0 OR id = ANY($1))
    AND (cardinality($2::text[]) = 0 OR job = ANY($2)) AND (cardinality($3::text[]) = 0 OR status = ANY($3))
    AND (cardinality($4::bigint[]) = 0 OR change_id = ANY($4)) AND (cardinality($5::text[]) = 0 OR user_id = ANY($5))";

/// The parameters of [`RESULT_FILTER`] for one filter.
struct ResultFilterParams<'a> {
    ids: Vec<i64>,
    filter: &'a ResultFilter,
    statuses: Vec<&'static str>,
    changes: Vec<i64>,
}

impl<'a> ResultFilterParams<'a> {
    fn of(filter: &'a ResultFilter) -> Self {
        Self {
            ids: filter.ids.iter().map(|id| id.0 as i64).collect(),
            filter,
            statuses: filter.statuses.iter().map(|status| status_name(*status)).collect(),
            changes: filter.changes.iter().map(|change| change.0 as i64).collect(),
        }
    }

    fn values(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        vec![&self.ids, &self.filter.jobs, &self.statuses, &self.changes, &self.filter.users]
    }
}

#[async_trait::async_trait]
impl QueueMaintenance for PgStore {
    async fn release_expired(&self, now: OffsetDateTime) -> Result<usize, MaintenanceError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let rows = transaction
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM jobhooks_runs WHERE status = 'STARTED' AND deadline <= $1
                     FOR UPDATE SKIP LOCKED"
                ),
                &[&now],
            )
            .await
            .map_err(db_error("cannot read the claims"))?;
        for row in &rows {
            unclaim::<MaintenanceError>(&transaction, run_of(row)?.result, RunEvent::LeaseExpired, now).await?;
        }
        transaction.commit().await.map_err(db_error("cannot release lapsed claims"))?;
        if !rows.is_empty() {
            self.work_ready();
        }
        Ok(rows.len())
    }

    async fn replay(&self, run: RunId) -> Result<(), MaintenanceError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let outcome = async {
            let row = transaction
                .query_opt(
                    &format!("SELECT {RUN_COLUMNS} FROM jobhooks_runs WHERE id = $1 FOR UPDATE"),
                    &[&(run.0 as i64)],
                )
                .await
                .map_err(db_error("cannot read a run"))?;
            let result = row.as_ref().map(run_of).transpose()?.map(|run| run.result);
            let Some(mut result) = result.filter(|result| result.status == JobStatus::DeadLettered) else {
                return Err(MaintenanceError::Refused {
                    reason: format!("run {run} is not dead-lettered; only dead-lettered runs can be replayed"),
                });
            };
            let step = transition(JobStatus::DeadLettered, RunEvent::Replayed)?;
            result.status = step.to;
            result.attempts = step.attempts.apply(result.attempts);
            // A replay joins the back of its object's line, like a run queued now.
            let line = line_of(&transaction, &result.inputs).await?;
            lines::lock(&transaction, line.as_deref()).await?;
            transaction
                .execute(
                    &format!(
                        "UPDATE jobhooks_runs SET status = $2, attempts = $3, completed = NULL, due = NULL, line = $4,
                             place = nextval('jobhooks_line_places'),
                             head = $4::text IS NULL OR NOT EXISTS (SELECT 1 FROM jobhooks_runs
                                                                   WHERE line = $4 AND status IN {UNFINISHED})
                         WHERE id = $1"
                    ),
                    &[&(run.0 as i64), &status_name(result.status), &attempts_value(&result), &line],
                )
                .await
                .map_err(db_error("cannot replay a run"))?;
            Ok(())
        }
        .await;
        crate::finish(transaction, outcome, "cannot replay a run").await?;
        self.work_ready();
        Ok(())
    }

    async fn prune(&self, retention: &Retention, now: OffsetDateTime) -> Result<PruneReport, MaintenanceError> {
        let mut report = PruneReport::default();
        let client = self.client().await?;
        if let Some(cutoff) = retention.results_cutoff(now) {
            let mut after = 0_i64;
            loop {
                let rows = client
                    .query(
                        "SELECT id, status, created FROM jobhooks_runs WHERE created < $1 AND id > $2
                         ORDER BY id LIMIT $3",
                        &[&cutoff, &after, &PRUNE_STEP],
                    )
                    .await
                    .map_err(db_error("cannot read results to prune"))?;
                let Some(last) = rows.last() else { break };
                after = last.get(0);
                let mut prunable = Vec::new();
                for row in &rows {
                    let status: String = row.get(1);
                    let status = status_of(&status).ok_or_else(|| {
                        corrupt("job result", row.get::<_, i64>(0), format!("unknown status `{status}`"))
                    })?;
                    if retention.may_prune_result(status, row.get(2), now) {
                        prunable.push(row.get::<_, i64>(0));
                    }
                }
                // A run claimed since it was read is not final any more: only final runs go.
                let removed = client
                    .execute(
                        "DELETE FROM jobhooks_runs WHERE id = ANY($1) AND status IN ('SUCCESS', 'FAILURE')",
                        &[&prunable],
                    )
                    .await
                    .map_err(db_error("cannot prune results"))?;
                report.results += removed;
                if (rows.len() as i64) < PRUNE_STEP {
                    break;
                }
            }
        }
        if let Some(cutoff) = retention.changes_cutoff(now) {
            let mut after = 0_i64;
            loop {
                let rows = client
                    .query(
                        "SELECT c.id, c.time,
                            NOT EXISTS (SELECT 1 FROM jobhooks_changes l WHERE l.content_type = c.content_type
                                AND l.object_id = c.object_id AND l.id > c.id),
                            EXISTS (SELECT 1 FROM jobhooks_runs r WHERE r.change_id = c.id)
                         FROM jobhooks_changes c WHERE c.time < $1 AND c.id > $2 ORDER BY c.id LIMIT $3",
                        &[&cutoff, &after, &PRUNE_STEP],
                    )
                    .await
                    .map_err(db_error("cannot read changes to prune"))?;
                let Some(last) = rows.last() else { break };
                after = last.get(0);
                let prunable: Vec<i64> = rows
                    .iter()
                    .filter(|row| {
                        let facts = ChangeFacts {
                            time: row.get(1),
                            is_latest_of_object: row.get(2),
                            has_kept_runs: row.get(3),
                        };
                        retention.may_prune_change(facts, now)
                    })
                    .map(|row| row.get(0))
                    .collect();
                let removed = client
                    .execute(
                        "DELETE FROM jobhooks_changes c WHERE c.id = ANY($1)
                           AND NOT EXISTS (SELECT 1 FROM jobhooks_runs r WHERE r.change_id = c.id)",
                        &[&prunable],
                    )
                    .await
                    .map_err(db_error("cannot prune changes"))?;
                report.changes += removed;
                if (rows.len() as i64) < PRUNE_STEP {
                    break;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jobhooks_model::ports::{Catalog, ChangeStore, Completion, JobQueue, ObjectWrites, Outcome};
    use jobhooks_model::{
        Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, Object, ObjectRef, OffsetDateTime,
        PendingChange, User, json,
    };

    use crate::PgStore;
    use crate::testing::{TestServer, install_device_hook};

    const JOB: &str = "app::jobs::Audit";
    const LEASE: Duration = Duration::from_secs(60);

    async fn record(store: &PgStore, action: Action, id: &str) {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
        let mut changes = ChangeSet::default();
        changes.record(PendingChange::new(action, &Object::new(reference, id, json!({"name": id})).unwrap()));
        let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
        store.commit(&context, changes, ObjectWrites::Apply).await.unwrap();
    }

    /// Whether completing the one run `store` can claim tells the other processes of work.
    async fn completion_announces(store: &PgStore, outcome: Outcome) -> bool {
        let claimed = store.lease_batch(OffsetDateTime::now_utc(), LEASE, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "one run is claimable");
        let lease = claimed[0].0.clone();
        let transaction = crate::db::Pipelined::new(store.client().await.unwrap());
        let completion = Completion { lease, outcome, logs: vec![] };
        let (outcomes, announces) = store.complete_in(&transaction, vec![completion]).await.unwrap();
        assert!(outcomes[0].is_ok(), "the lease holds");
        announces
    }

    /// A completion that leaves nothing to claim keeps quiet; one whose object has a run waiting
    /// behind it, or that schedules a retry, tells the other processes.
    #[tokio::test]
    async fn a_completion_is_announced_only_when_it_leaves_runs_to_claim() {
        let store = PgStore::connect(&TestServer::shared().fresh_database().await).await.unwrap();
        install_device_hook(&store, "audit", JOB, [Action::Create, Action::Update]).await;
        record(&store, Action::Create, "alone").await;
        assert!(!completion_announces(&store, Outcome::Succeeded { writes: None }).await, "nothing follows");

        record(&store, Action::Create, "followed").await;
        record(&store, Action::Update, "followed").await;
        assert!(completion_announces(&store, Outcome::Succeeded { writes: None }).await, "the update follows");
        assert!(!completion_announces(&store, Outcome::Failed).await, "the update was the last run");

        record(&store, Action::Create, "retried").await;
        let later = OffsetDateTime::now_utc() - Duration::from_secs(1);
        assert!(completion_announces(&store, Outcome::RetryAt(later)).await, "the retry is due");
        assert!(!completion_announces(&store, Outcome::DeadLettered).await, "dead letters wait for a replay");
    }

    #[test]
    fn claim_columns_are_counted_as_the_lists_hold_them() {
        for list in [super::RUN_COLUMNS, crate::catalog::JOB_COLUMNS, crate::catalog::USER_COLUMNS] {
            assert_eq!(super::column_count(list), list.split(", ").count(), "{list}");
        }
    }

    /// A claim answers every change, job and user of the runs it claims, in the same statement,
    /// as the reads they stand for return them: the column offsets of its rows are right.
    #[tokio::test]
    async fn a_claim_reads_every_change_job_and_user_of_its_runs() {
        let store = PgStore::connect(&TestServer::shared().fresh_database().await).await.unwrap();
        install_device_hook(&store, "audit", JOB, [Action::Create, Action::Delete]).await;
        store.put_user(User::superuser("alice").unwrap()).await.unwrap();
        record(&store, Action::Create, "d1").await;
        record(&store, Action::Create, "d2").await;
        let now = OffsetDateTime::now_utc();
        let first = store.lease_batch_with_reads(now, LEASE, 10).await.unwrap();
        assert_eq!(first.runs.len(), 2);
        let changes: Vec<_> = first.runs.iter().filter_map(|(_, result)| result.change_id()).collect();
        let read = store.get_changes_and_objects(&changes).await.unwrap();
        assert_eq!(first.reads.changes.len(), 2);
        for (change, object) in read {
            assert!(object.is_some());
            assert_eq!(first.reads.changes[&change.id], Some((change, object)));
        }
        assert_eq!(first.reads.jobs[JOB], store.get_job(JOB).await.unwrap());
        assert!(first.reads.jobs[JOB].is_some());
        assert_eq!(first.reads.users["alice"], Some(User::superuser("alice").unwrap()));
        assert_eq!(first.reads.read_at, Some(now));

        let completions = first
            .runs
            .iter()
            .map(|(lease, _)| Completion {
                lease: lease.clone(),
                outcome: Outcome::Succeeded { writes: None },
                logs: vec![],
            })
            .collect();
        store.complete_batch(completions).await.unwrap();
        record(&store, Action::Delete, "d2").await;
        let second = store.lease_batch_with_reads(now, LEASE, 10).await.unwrap();
        let change = second.runs[0].1.change_id().unwrap();
        let (deleted, object) = second.reads.changes[&change].clone().expect("the change is read");
        assert_eq!((deleted.action, object), (Action::Delete, None), "the deleted object is gone");
    }
}
