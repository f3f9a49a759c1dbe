//! The durable job queue and the job results.

use std::time::Duration;

use jobhooks_model::ports::{CommitReceipt, Completion, JobQueue, Lease, ObjectWrites, QueueDepth, ResultFilter};
use jobhooks_model::{JobInputs, JobResult, JobStatus, OffsetDateTime, RunId, StoreError};

use crate::changes::{QueueEntry, from_micros, micros, put_result, stage_run};
use crate::staging::{Staging, decode};

use crate::{Store, backend_error, keys};

fn missing(kind: &'static str, run: RunId) -> StoreError {
    StoreError::Corrupt { kind, key: run.to_string(), reason: "the run's queue entry or result is missing".into() }
}

impl Store {
    fn entry(st: &Staging<'_>, run: RunId) -> Result<Option<QueueEntry>, StoreError> {
        st.get_json(&keys::queue(run), "queue entry")
    }

    fn result_of(st: &Staging<'_>, run: RunId) -> Result<JobResult, StoreError> {
        st.get_json(&keys::result(run), "job result")?.ok_or_else(|| missing("job result", run))
    }

    /// The first key under `prefix` whose time is at or before `now`, and its run.
    fn first_due(&self, prefix: &[u8], now: OffsetDateTime) -> Result<Option<(Vec<u8>, RunId)>, StoreError> {
        let Some(key) = self.inner.tree.scan_prefix(prefix).keys().next().transpose().map_err(backend_error)? else {
            return Ok(None);
        };
        let bound = [prefix, &keys::time(now)[..]].concat();
        if key.as_ref()[..prefix.len() + 8] > bound[..] {
            return Ok(None);
        }
        Ok(keys::trailing_id(&key).map(|id| (key.to_vec(), RunId(id))))
    }

    /// Counts the keys under `prefix`.
    fn count(&self, prefix: &[u8]) -> u64 {
        self.inner.tree.scan_prefix(prefix).keys().count() as u64
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
                stage_run(w, st, job, user, inputs, now)
            })
            .await?;
        self.inner.work.notify_waiters();
        Ok(run)
    }

    async fn lease_next(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
    ) -> Result<Option<(Lease, JobResult)>, StoreError> {
        // A lease needs no flush: if it is lost in a crash, the run is simply pending again.
        let (claimed, _ticket) = self.write(|w, st| {
            // Runs whose lease lapsed are older than any pending run: take them over first.
            let Some((index_key, run)) = self.first_due(keys::LEASED, now)?.or(self.first_due(keys::READY, now)?)
            else {
                return Ok(None);
            };
            let leases = match Self::entry(st, run)?.ok_or_else(|| missing("queue entry", run))? {
                QueueEntry::Pending { leases, .. } | QueueEntry::Leased { leases, .. } => leases + 1,
                QueueEntry::Dead { .. } => return Err(missing("queue entry", run)),
            };
            let deadline = now.max(w.now()) + lease_for;
            st.remove(index_key);
            st.put(keys::leased(deadline, run), Vec::new());
            st.put_json(keys::queue(run), &QueueEntry::Leased { deadline: micros(deadline), leases })?;
            let mut result = Self::result_of(st, run)?;
            let previous = result.status;
            result.status = JobStatus::Started;
            result.attempts += 1;
            result.started = Some(now);
            put_result(st, &result, Some(previous))?;
            Ok(Some((Lease { run, token: leases, deadline: from_micros(micros(deadline)) }, result)))
        })?;
        Ok(claimed)
    }

    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, StoreError> {
        let Completion { lease, status, logs, retry_at, writes } = completion;
        let run = lease.run;
        let retrying = status == JobStatus::Retrying;
        let receipt = self
            .write_durably(|w, st| {
                let deadline = match Self::entry(st, run)? {
                    Some(QueueEntry::Leased { deadline, leases }) if leases == lease.token => deadline,
                    _ => return Err(StoreError::LeaseLost { run: run.0 }),
                };
                let now = w.now();
                st.remove(keys::leased(from_micros(deadline), run));
                let mut result = Self::result_of(st, run)?;
                let previous = result.status;
                result.status = status;
                result.logs.extend(logs);
                match status {
                    JobStatus::Retrying => {
                        let due = retry_at.unwrap_or(now);
                        st.put(keys::ready(due, run), Vec::new());
                        st.put_json(keys::queue(run), &QueueEntry::Pending { due: micros(due), leases: lease.token })?;
                    }
                    JobStatus::DeadLettered => {
                        result.completed = Some(now);
                        st.put_json(keys::queue(run), &QueueEntry::Dead { leases: lease.token })?;
                    }
                    JobStatus::Success | JobStatus::Failure => {
                        result.completed = Some(now);
                        st.remove(keys::queue(run));
                    }
                    JobStatus::Pending | JobStatus::Started => {
                        return Err(StoreError::Refused {
                            reason: format!(
                                "a run cannot be completed as {status}: use SUCCESS, FAILURE, RETRYING or DEAD_LETTERED"
                            ),
                        });
                    }
                }
                put_result(st, &result, Some(previous))?;
                match writes.filter(|_| status == JobStatus::Success) {
                    Some((context, changes)) => self.stage_changes(w, st, &context, changes, ObjectWrites::Apply),
                    None => Ok(CommitReceipt::default()),
                }
            })
            .await?;
        if retrying || !receipt.runs.is_empty() {
            self.inner.work.notify_waiters();
        }
        Ok(receipt)
    }

    async fn release_expired(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let (released, _ticket) = self.write(|_, st| {
            let bound = [keys::LEASED, &keys::time(now)[..], &[0xff; 8][..]].concat();
            let expired: Vec<sled::IVec> = self
                .inner
                .tree
                .range(keys::LEASED.to_vec()..=bound)
                .keys()
                .collect::<Result<_, _>>()
                .map_err(backend_error)?;
            for index_key in &expired {
                let run = keys::trailing_id(index_key).map(RunId).ok_or_else(|| StoreError::Corrupt {
                    kind: "lease index",
                    key: String::from_utf8_lossy(index_key).into_owned(),
                    reason: "the key does not end with a run id".into(),
                })?;
                let leases = match Self::entry(st, run)? {
                    Some(QueueEntry::Leased { leases, .. }) => leases,
                    _ => return Err(missing("queue entry", run)),
                };
                st.remove(index_key.to_vec());
                st.put(keys::ready(now, run), Vec::new());
                st.put_json(keys::queue(run), &QueueEntry::Pending { due: micros(now), leases })?;
                let mut result = Self::result_of(st, run)?;
                let previous = result.status;
                result.status = JobStatus::Pending;
                put_result(st, &result, Some(previous))?;
            }
            Ok(expired.len())
        })?;
        if released > 0 {
            self.inner.work.notify_waiters();
        }
        Ok(released)
    }

    async fn replay(&self, run: RunId) -> Result<(), StoreError> {
        self.write_durably(|w, st| {
            let leases = match Self::entry(st, run)? {
                Some(QueueEntry::Dead { leases }) => leases,
                _ => {
                    return Err(StoreError::Refused {
                        reason: format!("run {run} is not dead-lettered; only dead-lettered runs can be replayed"),
                    });
                }
            };
            let now = w.now();
            st.put(keys::ready(now, run), Vec::new());
            st.put_json(keys::queue(run), &QueueEntry::Pending { due: micros(now), leases })?;
            let mut result = Self::result_of(st, run)?;
            let previous = result.status;
            result.status = JobStatus::Pending;
            result.attempts = 0;
            result.completed = None;
            put_result(st, &result, Some(previous))
        })
        .await?;
        self.inner.work.notify_waiters();
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth, StoreError> {
        Ok(QueueDepth {
            pending: self.count(keys::READY),
            leased: self.count(keys::LEASED),
            dead: self.count(&keys::results_with_status(JobStatus::DeadLettered)),
        })
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
            let Some(result) = keys::trailing_id(&key).map(RunId) else { continue };
            let Some(result) = self.get_result(result).await? else { continue };
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
