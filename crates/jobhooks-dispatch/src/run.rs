//! Running one leased run: building the receiver and its context, calling it, and turning what
//! happened into a completion.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jobhooks_model::ports::{ClaimReads, Completion, Lease, ObjectReader, Outcome, Storage};
use jobhooks_model::{
    Action, ChangeId, ContentType, JobContext, JobError, JobInputs, JobKind, JobRecord, JobResult, LogEntry, LogLevel,
    Object, ObjectChange, ObjectRef, OffsetDateTime, RunInfo, StoreError, User,
};
use tracing::Instrument;

use crate::{AfterFailure, Shared};

const INITIALIZATION: &str = "initialization";
const POST_RUN: &str = "post_run";

/// What the receiver call ended with.
enum CallOutcome {
    /// It returned; its context holds the log and the writes.
    Returned(Box<JobContext>, Result<(), JobError>),
    /// It panicked, timed out or could not start; the message says which.
    Failed(Vec<LogEntry>, String),
}

/// What a run is called with, once its inputs are resolved.
enum Call {
    Hook { change: Box<ObjectChange>, changed_object: Option<Object> },
    Button { object: Object },
}

/// A run that fails before its receiver is called: `logs`, then a `failure` entry with `message`.
fn failed(now: OffsetDateTime, lease: &Lease, logs: Vec<LogEntry>, message: String) -> Completion {
    Completion {
        lease: lease.clone(),
        outcome: Outcome::Failed,
        logs: [logs, vec![entry(now, LogLevel::Failure, INITIALIZATION, message)]].concat(),
    }
}

fn entry(now: OffsetDateTime, level: LogLevel, grouping: &str, message: impl Into<String>) -> LogEntry {
    LogEntry { time: now, level, grouping: grouping.to_owned(), message: message.into(), object: None }
}

/// How old a change's object read ahead for a batch may be when its run starts: older, it is read
/// again, so that a run is called with its object as it is when the run starts. The read always
/// follows the run's claim, so the object is never older than the run's own change; a change
/// made to it since has a run of its own behind this one, which reads it later.
const FRESH: Duration = Duration::from_millis(20);

/// What the runs of one batch read. Job records and users are read once each: the runs of a batch
/// start within moments of each other, and most share their job and user. On a store that reads
/// many changes at once for less than one by one (`ChangeStore::reads_changes_together`), the
/// changes of the batch's hook runs are read together with their objects when the first of them
/// starts (or with the claim, by a store that reads with its claims), and each used if its run
/// starts within [`FRESH`] of the read; once one goes stale unused (the runs before it took time),
/// the rest are read one by one, as each run starts. On other stores each run reads its own.
#[derive(Default)]
pub(crate) struct BatchReads {
    jobs: HashMap<String, Option<JobRecord>>,
    users: HashMap<String, User>,
    /// The changes of the batch's hook runs not started yet, with how many runs each has.
    unstarted: HashMap<ChangeId, usize>,
    /// Changes read ahead, with their objects, and when.
    read_ahead: HashMap<ChangeId, (ObjectChange, Option<Object>)>,
    read_at: Option<OffsetDateTime>,
    /// The changes asked for when they were read ahead, found or not.
    asked: HashSet<ChangeId>,
    /// Whether the changes are read one by one from now on.
    one_by_one: bool,
}

impl BatchReads {
    /// The reads of a batch whose hook runs are about `changes`, in the order they start.
    /// `reading_ahead`: whether the store reads many changes at once for less than one by one.
    pub(crate) fn for_changes(changes: impl IntoIterator<Item = ChangeId>, reading_ahead: bool) -> Self {
        let mut reads = Self { one_by_one: !reading_ahead, ..Self::default() };
        for change in changes {
            *reads.unstarted.entry(change).or_default() += 1;
        }
        reads
    }

    /// Takes what the batch's claim read with it as read ahead: its changes are used while they
    /// are fresh, as if read when the first run started; its jobs and users for the whole batch.
    pub(crate) fn with_claim_reads(mut self, claimed: ClaimReads) -> Self {
        let ClaimReads { read_at, changes, jobs, users, .. } = claimed;
        self.jobs.extend(jobs);
        self.users.extend(users.into_iter().map(|(username, user)| {
            let user = user.unwrap_or_else(|| unknown_user(&username));
            (username, user)
        }));
        if let Some(read_at) = read_at
            && !changes.is_empty()
        {
            self.read_at = Some(read_at);
            for (id, found) in changes {
                self.asked.insert(id);
                if let Some(found) = found {
                    self.read_ahead.insert(id, found);
                }
            }
        }
        self
    }

    /// The change `id` and its object, for a run starting at `now`.
    pub(crate) async fn change_and_object<S: Storage + ?Sized>(
        &mut self,
        store: &S,
        id: ChangeId,
        now: OffsetDateTime,
    ) -> Result<Option<(ObjectChange, Option<Object>)>, StoreError> {
        let last_run = match self.unstarted.get_mut(&id) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                self.unstarted.remove(&id);
                true
            }
            None => true,
        };
        if let Some(read_at) = self.read_at
            && self.asked.contains(&id)
        {
            if now - read_at <= FRESH {
                // Not found when it was asked for: it does not exist.
                return Ok(self.take(id, last_run));
            }
            // Stale: the runs before this one took time, and so may the ones after it.
            self.one_by_one = true;
            self.read_ahead.clear();
            self.asked.clear();
        }
        if self.one_by_one {
            return Ok(store.get_change_and_object(id).await?);
        }
        let others = self.unstarted.keys().copied().filter(|&other| other != id);
        let ids: Vec<ChangeId> = std::iter::once(id).chain(others).collect();
        let found = store.get_changes_and_objects(&ids).await?;
        self.asked = ids.into_iter().collect();
        self.read_at = Some(now);
        self.read_ahead = found.into_iter().map(|(change, object)| (change.id, (change, object))).collect();
        Ok(self.take(id, last_run))
    }

    /// The change `id` read ahead: kept for the change's other runs unless this is its last.
    fn take(&mut self, id: ChangeId, last_run: bool) -> Option<(ObjectChange, Option<Object>)> {
        if last_run { self.read_ahead.remove(&id) } else { self.read_ahead.get(&id).cloned() }
    }

    /// The job `class_path`, read once per batch.
    async fn job<S: Storage + ?Sized>(
        store: &S,
        known: Option<Option<JobRecord>>,
        class_path: &str,
    ) -> Result<Option<JobRecord>, StoreError> {
        match known {
            Some(job) => Ok(job),
            None => Ok(store.get_job(class_path).await?),
        }
    }

    /// The user a run runs as: the stored user, or a user without permissions when the name is
    /// not a stored user (changes may come from users the store does not know).
    async fn user<S: Storage + ?Sized>(store: &S, known: Option<User>, username: &str) -> Result<User, StoreError> {
        if let Some(user) = known {
            return Ok(user);
        }
        Ok(store.get_user(username).await?.unwrap_or_else(|| unknown_user(username)))
    }
}

/// A user the store does not know (changes may come from users it does not know): no permissions.
fn unknown_user(username: &str) -> User {
    User { username: username.to_owned(), is_superuser: false, permissions: Vec::new() }
}

/// Resolves a run's inputs: the change and the object as it is now for a hook, the object for a
/// button. `Err` is the message of a log entry that fails the run.
async fn resolve<S: Storage + ?Sized>(
    store: &S,
    result: &JobResult,
    reads: &mut BatchReads,
    now: OffsetDateTime,
) -> Result<Result<Call, String>, StoreError> {
    match &result.inputs {
        JobInputs::Hook { object_change, .. } => {
            let Some((change, object)) = reads.change_and_object(store, *object_change, now).await? else {
                return Ok(Err(format!("ObjectChange {object_change} does not exist")));
            };
            // The object as it is when the run starts, or `None` once it no longer exists: never
            // the change's own copy of its data, which would bring a deleted object back to a
            // receiver that saves it.
            let changed_object = match change.action {
                Action::Delete => None,
                Action::Create | Action::Update => object,
            };
            Ok(Ok(Call::Hook { change: Box::new(change), changed_object }))
        }
        JobInputs::Button { object_pk, object_model_name } => {
            let reference = ContentType::new(object_model_name.as_str())
                .map_err(|e| e.to_string())
                .and_then(|ct| ObjectRef::new(ct, object_pk.as_str()).map_err(|e| e.to_string()));
            let reference = match reference {
                Ok(reference) => reference,
                Err(reason) => return Ok(Err(format!("Invalid object {object_model_name} {object_pk}: {reason}"))),
            };
            Ok(match store.get_object(&reference).await? {
                Some(object) => Ok(Call::Button { object }),
                None => Err(format!("Object {object_model_name} {object_pk} does not exist")),
            })
        }
    }
}

impl<S: Storage + 'static> Shared<S> {
    /// Runs one leased run to its completion record. A record that cannot be decoded fails the
    /// run, saying which (rerunning would meet it again); other store errors are returned, and the
    /// run is given back to run again.
    pub(crate) async fn execute(
        &self,
        lease: &Lease,
        result: JobResult,
        reads: &mut BatchReads,
    ) -> Result<Completion, StoreError> {
        match self.prepare_and_call(lease, result, reads).await {
            Err(StoreError::Storage(corrupt @ jobhooks_model::StorageFailure::Corrupt { .. })) => {
                let now = self.config.clock.now();
                let running = vec![entry(now, LogLevel::Info, INITIALIZATION, "Running job")];
                Ok(failed(now, lease, running, format!("Could not prepare the run: {corrupt}")))
            }
            other => other,
        }
    }

    async fn prepare_and_call(
        &self,
        lease: &Lease,
        result: JobResult,
        reads: &mut BatchReads,
    ) -> Result<Completion, StoreError> {
        let store = &*self.store;
        let now = self.config.clock.now();
        let failed = |logs: Vec<LogEntry>, message: String| failed(self.config.clock.now(), lease, logs, message);
        let running = vec![entry(now, LogLevel::Info, INITIALIZATION, "Running job")];
        // The job, the run's inputs and its user are read at once: on a store across the network
        // that is one round trip's wait instead of three.
        let username = result.user.as_deref().unwrap_or(ObjectChange::UNDEFINED_USER).to_owned();
        let (known_job, known_user) = (reads.jobs.get(&result.job).cloned(), reads.users.get(&username).cloned());
        let (job, user, call) = tokio::join!(
            BatchReads::job(store, known_job, &result.job),
            BatchReads::user(store, known_user, &username),
            resolve(store, &result, reads, now),
        );
        let job = job?;
        reads.jobs.insert(result.job.clone(), job.clone());
        let registered = self.registry.get(&result.job);
        let (Some(job), Some(registered)) = (job.filter(|j| j.installed), registered) else {
            return Ok(failed(running, format!("Job {} is not presently installed!", result.job)));
        };
        if !job.enabled {
            return Ok(failed(running, format!("Job {} is not enabled to be run!", result.job)));
        }
        let call = match call? {
            Ok(call) => call,
            Err(message) => return Ok(failed(running, message)),
        };
        let user = user?;
        reads.users.insert(username, user.clone());
        let info = RunInfo {
            run_id: result.id,
            job: result.job.clone(),
            kind: registered.kind(),
            attempt: result.attempts,
            change_id: result.change_id(),
            hook: match &result.inputs {
                JobInputs::Hook { hook, .. } => *hook,
                JobInputs::Button { .. } => None,
            },
        };
        let objects: Arc<dyn ObjectReader> = self.store.clone();
        let mut ctx = JobContext::new(info, user, objects)
            .with_data(self.config.data.clone())
            .with_clock(self.config.clock.clone());
        // Every line a run logs carries its span, with the fields as values (`"change": 12`).
        let span = tracing::info_span!(
            "job_run",
            job = %result.job,
            run = result.id.0,
            change = result.change_id().map(|change| change.0),
            attempt = result.attempts
        );
        span.in_scope(|| ctx.log(LogLevel::Info, INITIALIZATION, "Running job", None));
        let outcome = self.call(registered.kind(), registered, ctx, call).instrument(span.clone()).await;
        Ok(span.in_scope(|| self.conclude(lease, &result, outcome)))
    }

    /// Calls the receiver in its own task, so that a panic or a timeout ends the run, not the worker.
    async fn call(
        &self,
        kind: JobKind,
        registered: &jobhooks_register::RegisteredJob,
        mut ctx: JobContext,
        call: Call,
    ) -> CallOutcome {
        let run = ctx.run().run_id;
        let logs_so_far = ctx.logs().to_vec();
        let task = match (kind, call) {
            (JobKind::JobHookReceiver, Call::Hook { change, changed_object }) => {
                let Some(receiver) = registered.hook_receiver() else {
                    return CallOutcome::Failed(logs_so_far, "the job is not a job hook receiver".into());
                };
                tokio::spawn(
                    async move {
                        let outcome = receiver.receive_job_hook(&mut ctx, &change, change.action, changed_object).await;
                        (ctx, outcome)
                    }
                    .in_current_span(),
                )
            }
            (JobKind::JobButtonReceiver, Call::Button { object }) => {
                let Some(receiver) = registered.button_receiver() else {
                    return CallOutcome::Failed(logs_so_far, "the job is not a job button receiver".into());
                };
                tokio::spawn(
                    async move {
                        let outcome = receiver.receive_job_button(&mut ctx, object).await;
                        (ctx, outcome)
                    }
                    .in_current_span(),
                )
            }
            (kind, _) => return CallOutcome::Failed(logs_so_far, format!("a {kind} cannot run with these inputs")),
        };
        let abort = task.abort_handle();
        if let Some(entry) = self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&run) {
            entry.1 = Some(abort.clone());
        }
        match tokio::time::timeout(self.config.run_timeout, task).await {
            Ok(Ok((ctx, outcome))) => CallOutcome::Returned(Box::new(ctx), outcome),
            Ok(Err(join)) if join.is_panic() => {
                let panic = join.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-text panic payload".into());
                CallOutcome::Failed(logs_so_far, format!("Job panicked: {message}"))
            }
            Ok(Err(join)) => CallOutcome::Failed(logs_so_far, format!("Job was cancelled: {join}")),
            Err(_elapsed) => {
                abort.abort();
                CallOutcome::Failed(
                    logs_so_far,
                    format!("Job timed out after {}", format_duration(self.config.run_timeout)),
                )
            }
        }
    }

    /// Turns the call's outcome into the run's completion, applying the retry policy to errors,
    /// panics and timeouts.
    fn conclude(&self, lease: &Lease, result: &JobResult, outcome: CallOutcome) -> Completion {
        let (mut logs, error) = match outcome {
            CallOutcome::Returned(ctx, outcome) => {
                let failure_logged = ctx.has_failure();
                let (mut logs, context, changes) = ctx.into_parts();
                match outcome {
                    Ok(()) if !failure_logged => {
                        logs.push(entry(self.config.clock.now(), LogLevel::Success, POST_RUN, "Job completed"));
                        let writes = Some((context, changes));
                        return Completion { lease: lease.clone(), outcome: Outcome::Succeeded { writes }, logs };
                    }
                    // A `failure` entry is the receiver's own verdict: the run fails, without retry.
                    Ok(()) => return Completion { lease: lease.clone(), outcome: Outcome::Failed, logs },
                    Err(error) => (logs, error.to_string()),
                }
            }
            CallOutcome::Failed(logs, message) => (logs, message),
        };
        let now = self.config.clock.now();
        logs.push(entry(now, LogLevel::Error, POST_RUN, error));
        let policy = self.config.retry_policy(&result.job);
        let outcome = match policy.after_failure(result.attempts, fastrand::f64()) {
            AfterFailure::Fail => Outcome::Failed,
            AfterFailure::RetryIn(wait) => {
                logs.push(entry(
                    now,
                    LogLevel::Warning,
                    POST_RUN,
                    format!(
                        "Retrying in {} (attempt {} of {})",
                        format_duration(wait),
                        result.attempts,
                        policy.max_attempts
                    ),
                ));
                Outcome::RetryAt(now + wait)
            }
            AfterFailure::DeadLetter => {
                logs.push(entry(
                    now,
                    LogLevel::Error,
                    POST_RUN,
                    format!("Dead-lettered after {} attempts", result.attempts),
                ));
                Outcome::DeadLettered
            }
        };
        Completion { lease: lease.clone(), outcome, logs }
    }
}

fn format_duration(duration: Duration) -> String {
    if duration.as_secs() > 0 && duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use jobhooks_model::ports::{ChangeStore, ClaimReads, ObjectWrites};
    use jobhooks_model::{ChangeContext, ChangeContextKind, ChangeSet, ContentType, Object, ObjectRef, json};
    use jobhooks_store_memory::MemoryStore;

    use super::*;

    fn device(id: &str, version: u64) -> Object {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
        Object::new(reference, id, json!({"version": version})).unwrap()
    }

    async fn save(store: &MemoryStore, object: Object) -> ChangeId {
        let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
        let mut changes = ChangeSet::default();
        changes.save(&object, None);
        store.commit(&context, changes, ObjectWrites::Apply).await.unwrap().changes[0]
    }

    /// What a claim read stands in for the batch's first read: its answers are used while fresh,
    /// as if read at the claim, and read again once stale; a change it did not answer is read
    /// from the store; its jobs are known for the batch, and a user it did not find runs without
    /// permissions.
    #[tokio::test]
    async fn a_batch_starts_from_what_its_claim_read() {
        let store = MemoryStore::new();
        let (a, b, c) = (
            save(&store, device("a", 1)).await,
            save(&store, device("b", 1)).await,
            save(&store, device("c", 1)).await,
        );
        let start = OffsetDateTime::now_utc();
        let ms = |n: u64| start + Duration::from_millis(n);
        let as_claimed = |id: ChangeId, version: u64| {
            let store = &store;
            async move {
                let (change, _) = store.get_change_and_object(id).await.unwrap().unwrap();
                let object = device(&change.changed_object_id, version);
                Some((change, Some(object)))
            }
        };
        let mut claimed = ClaimReads::default();
        claimed.read_at = Some(start);
        // Versions the store does not hold, to tell the claim's answers from reads.
        claimed.changes.insert(a, as_claimed(a, 0).await);
        claimed.changes.insert(c, as_claimed(c, 0).await);
        claimed.jobs.insert("app::Audit".into(), None);
        claimed.users.insert("ghost".into(), None);
        let mut unanswered = BatchReads::for_changes([b], true).with_claim_reads(claimed.clone());
        let mut reads = BatchReads::for_changes([a, c], true).with_claim_reads(claimed);

        assert_eq!(reads.jobs.get("app::Audit"), Some(&None), "the claim's job answer is kept for the batch");
        let ghost = reads.users.get("ghost").expect("the claim's user answer is kept");
        assert!(!ghost.is_superuser && ghost.permissions.is_empty(), "an unknown user runs without permissions");

        let (_, object) = reads.change_and_object(&store, a, ms(20)).await.unwrap().unwrap();
        assert_eq!(object, Some(device("a", 0)), "fresh: the claim's answer");
        let (change, object) = reads.change_and_object(&store, c, ms(21)).await.unwrap().unwrap();
        assert_eq!((change.id, object), (c, Some(device("c", 1))), "stale: read again");
        let (change, object) = unanswered.change_and_object(&store, b, start).await.unwrap().unwrap();
        assert_eq!((change.id, object), (b, Some(device("b", 1))), "not answered by the claim: read");
    }
}
