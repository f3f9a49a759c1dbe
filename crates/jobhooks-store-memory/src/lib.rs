//! An in-memory jobhooks store: every storage port of `jobhooks-model`, held in one mutex, with
//! no persistence. Use it for unit tests of your receivers and of code that drives a dispatcher,
//! as apalis's memory backend is used; use `jobhooks-store` (sled) or the PostgreSQL store to
//! keep anything.
//!
//! It follows the model's rules and nothing else: validation (`validate_hook`,
//! `validate_button`), job sync (`plan_job_sync`), hook matching (`match_hooks`), the run state
//! machine (`transition`) and retention (`Retention::may_prune_*`). It passes the same contract
//! kit as every store (`jobhooks-conformance`).
//!
//! ```
//! use jobhooks_model::ports::{ChangeStore, ObjectReader};
//! use jobhooks_model::{ChangeContext, ChangeContextKind, ContentType, Object, ObjectRef, json};
//! use jobhooks_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let hq = ObjectRef::new(ContentType::new("dcim.location").unwrap(), "1").unwrap();
//! let mut session = store.session(ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), ""));
//! session.save(Object::new(hq.clone(), "HQ", json!({"name": "HQ"})).unwrap()).await.unwrap();
//! let receipt = session.commit().await.unwrap();
//! assert_eq!(store.get_object(&hq).await.unwrap().unwrap().repr(), "HQ");
//! assert_eq!(store.get_change(receipt.changes[0]).await.unwrap().unwrap().to_string(), "dcim.location HQ created by alice");
//! # });
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jobhooks_model::ports::{
    Catalog, ChangePage, ChangeStore, CommitReceipt, Completion, JobQueue, Lease, Logins, ObjectReader, ObjectWrites,
    Outcome, PruneReport, QueueDepth, QueueMaintenance, QueueReader, ResultFilter, Retention, SyncMode, SyncReport,
};
use jobhooks_model::{
    Action, ApiToken, CatalogError, ChangeContext, ChangeError, ChangeFacts, ChangeId, ChangeSession, ChangeSet, Clock,
    ContentType, CountChange, IllegalTransition, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobInputs,
    JobRecord, JobRestoreReport, JobResult, JobSpec, JobStatus, JobSyncPlan, LoginSession, MaintenanceError, Object,
    ObjectChange, ObjectRef, OffsetDateTime, PasswordHash, QUEUED, QueueError, RunEvent, RunId, StorageFailure, User,
    lapse_entry, match_hooks, plan_job_restore, plan_job_sync, system_clock, transition, validate_button,
    validate_hook, validate_name, validate_new_login, validate_new_token,
};
use tokio::sync::Notify;
use uuid::Uuid;

/// The in-memory store. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    work: Notify,
    generation: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// A recorded change: its record (its prechange only when the writer supplied one for an object
/// without history) and the runs it queued.
struct Recorded {
    change: ObjectChange,
    runs: Vec<RunId>,
}

/// A queued or finished run.
struct Run {
    /// The result as stored; a claimed run shows as `STARTED` (see [`Run::view`]).
    result: JobResult,
    /// Where the run stands.
    state: JobStatus,
    /// Claims so far: tells a claim from later claims of the same run.
    leases: u64,
    /// The current claim's deadline, while claimed.
    deadline: Option<OffsetDateTime>,
    /// When a retry falls due.
    due: Option<OffsetDateTime>,
    /// The object whose line the run is in, if any.
    line: Option<ObjectRef>,
}

impl Run {
    fn view(&self) -> JobResult {
        JobResult { status: self.state, ..self.result.clone() }
    }
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<String, JobRecord>,
    hooks: BTreeMap<String, JobHook>,
    buttons: BTreeMap<String, JobButton>,
    users: BTreeMap<String, User>,
    tokens: BTreeMap<String, ApiToken>,
    passwords: BTreeMap<String, PasswordHash>,
    logins: BTreeMap<String, LoginSession>,
    changes: BTreeMap<ChangeId, Recorded>,
    changes_by_object: BTreeMap<ObjectRef, Vec<ChangeId>>,
    changes_by_request: BTreeMap<Uuid, Vec<ChangeId>>,
    objects: BTreeMap<ObjectRef, Object>,
    runs: BTreeMap<RunId, Run>,
    /// Each object's unfinished runs in the order they may start.
    lines: HashMap<ObjectRef, VecDeque<RunId>>,
    counts: CountChange,
    next_change: u64,
    next_run: u64,
    last_time: Option<OffsetDateTime>,
}

/// An event the run's state does not allow: nothing is written.
fn refused(illegal: IllegalTransition) -> QueueError {
    QueueError::Refused { reason: illegal.to_string() }
}

fn add(counts: &mut CountChange, change: CountChange) {
    counts.pending += change.pending;
    counts.leased += change.leased;
    counts.dead += change.dead;
}

impl State {
    /// Writes a job sync's or a job restore's plan; returns its report.
    /// The records it writes are stamped as changed at `now`.
    fn apply<R>(&mut self, plan: JobSyncPlan<R>, now: OffsetDateTime) -> R {
        for class_path in &plan.removed_jobs {
            self.jobs.remove(class_path);
        }
        for job in plan.jobs {
            self.jobs.insert(job.class_path.clone(), job.stamped(now));
        }
        for hook in plan.hooks {
            self.hooks.insert(hook.name.clone(), hook.stamped(now));
        }
        for button in plan.buttons {
            self.buttons.insert(button.name.clone(), button.stamped(now));
        }
        plan.report
    }

    /// The current time, never earlier than a time already handed out, so that change ids and
    /// change times sort alike.
    fn now(&mut self, clock: &dyn Clock) -> OffsetDateTime {
        let now = self.last_time.map_or(clock.now(), |last| clock.now().max(last));
        self.last_time = Some(now);
        now
    }

    fn new_run(&mut self) -> RunId {
        self.next_run += 1;
        RunId(self.next_run)
    }

    /// Queues a new run at the back of `line`.
    fn queue_run(&mut self, result: JobResult, line: Option<ObjectRef>) -> RunId {
        let run = result.id;
        if let Some(object) = &line {
            self.lines.entry(object.clone()).or_default().push_back(run);
        }
        add(&mut self.counts, QUEUED);
        self.runs.insert(run, Run { result, state: JobStatus::Pending, leases: 0, deadline: None, due: None, line });
        run
    }

    fn commit(
        &mut self,
        clock: &dyn Clock,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> CommitReceipt {
        let mut receipt = CommitReceipt::default();
        let now = self.now(clock);
        for pending in changes.into_changes() {
            self.next_change += 1;
            let id = ChangeId(self.next_change);
            let reference = pending.object.clone();
            let mut change = ObjectChange::from_pending(id, now, context, pending, None);
            let matches = match_hooks(context.kind, &change, self.hooks.values(), |job| self.jobs.get(job));
            // The prechange is the previous change's data, found when the change is read.
            if self.changes_by_object.get(&reference).is_some_and(|ids| !ids.is_empty()) {
                change.prechange = None;
            }
            for hook in &matches.skipped {
                let (name, job) = (&hook.name, &hook.job);
                tracing::warn!(hook = %name, job = %job, change = %id, "JobHook {name} is enabled, but the underlying Job {job} is not installed and enabled");
            }
            // A webhook's run keeps its hook, which says where to send.
            let jobs: Vec<(String, Option<uuid::Uuid>)> =
                matches.run.iter().map(|hook| (hook.job.clone(), hook.webhook.as_ref().map(|_| hook.id))).collect();
            let mut runs = Vec::with_capacity(jobs.len());
            for (job, hook) in jobs {
                let run = self.new_run();
                let inputs = JobInputs::Hook { object_change: id, hook };
                let result = JobResult::pending(run, job, context.user.clone(), inputs, now);
                runs.push(self.queue_run(result, Some(reference.clone())));
            }
            match (objects, change.action) {
                (ObjectWrites::RecordOnly, _) => {}
                (_, Action::Delete) => {
                    self.objects.remove(&reference);
                }
                (_, Action::Create | Action::Update) => {
                    if let Some(object) = change.resulting_object() {
                        self.objects.insert(reference.clone(), object);
                    }
                }
            }
            self.changes_by_object.entry(reference).or_default().push(id);
            self.changes_by_request.entry(context.request_id).or_default().push(id);
            receipt.changes.push(id);
            receipt.runs.extend(runs.iter().copied());
            self.changes.insert(id, Recorded { change, runs });
        }
        receipt
    }

    /// A change as read: its prechange is the data of the object's change before it.
    fn read_change(&self, id: ChangeId) -> Option<ObjectChange> {
        let recorded = self.changes.get(&id)?;
        let mut change = recorded.change.clone();
        let earlier = self
            .changes_by_object
            .get(&change.object_ref())
            .and_then(|ids| ids.iter().rev().find(|&&other| other < id).and_then(|other| self.changes.get(other)));
        if let Some(previous) = earlier {
            change.prechange = Some(previous.change.object_data.clone());
        }
        Some(change)
    }

    /// The line a run about `inputs` joins: the object's, when the store has a change of it.
    fn line_of(&self, inputs: &JobInputs) -> Option<ObjectRef> {
        let object = match inputs {
            JobInputs::Hook { object_change, .. } => Some(self.changes.get(object_change)?.change.object_ref()),
            JobInputs::Button { object_pk, object_model_name } => ContentType::new(object_model_name.as_str())
                .ok()
                .and_then(|content_type| ObjectRef::new(content_type, object_pk.as_str()).ok()),
        }?;
        self.changes_by_object.contains_key(&object).then_some(object)
    }

    fn is_head(&self, run: RunId, line: Option<&ObjectRef>) -> bool {
        line.is_none_or(|object| self.lines.get(object).and_then(|line| line.front()) == Some(&run))
    }

    /// The claimed run of `lease`, or `LeaseLost` when the claim was taken over or released.
    fn claimed(&mut self, lease: &Lease) -> Result<&mut Run, QueueError> {
        self.runs
            .get_mut(&lease.run)
            .filter(|run| run.state == JobStatus::Started && run.leases == lease.token)
            .ok_or(QueueError::LeaseLost { run: lease.run.0 })
    }

    /// Applies `event` to the claimed run `run`, which goes back to pending.
    fn unclaim(&mut self, run: RunId, event: RunEvent, now: OffsetDateTime) -> Result<(), IllegalTransition> {
        let step = transition(JobStatus::Started, event)?;
        add(&mut self.counts, step.counts);
        let Some(entry) = self.runs.get_mut(&run) else { return Ok(()) };
        entry.state = step.to;
        entry.deadline = None;
        entry.result.attempts = step.attempts.apply(entry.result.attempts);
        if step.notes_lapse {
            entry.result.logs.push(lapse_entry(entry.result.attempts, now));
        }
        Ok(())
    }

    fn leave_line(&mut self, run: RunId) {
        let line = self.runs.get(&run).and_then(|entry| entry.line.clone());
        if let Some(object) = line
            && let Some(queue) = self.lines.get_mut(&object)
        {
            queue.retain(|&other| other != run);
            if queue.is_empty() {
                self.lines.remove(&object);
            }
        }
    }

    fn complete(&mut self, clock: &dyn Clock, completion: Completion) -> Result<CommitReceipt, QueueError> {
        let Completion { lease, outcome, logs } = completion;
        self.claimed(&lease)?;
        let step = transition(JobStatus::Started, outcome.event()).map_err(refused)?;
        let now = self.now(clock);
        add(&mut self.counts, step.counts);
        if step.leaves_line {
            self.leave_line(lease.run);
        }
        let run = self.runs.get_mut(&lease.run).ok_or(QueueError::LeaseLost { run: lease.run.0 })?;
        run.state = step.to;
        run.deadline = None;
        run.result.logs.extend(logs);
        if step.completes {
            run.result.completed = Some(now);
        }
        match outcome {
            Outcome::RetryAt(at) => {
                run.due = Some(at);
                Ok(CommitReceipt::default())
            }
            Outcome::Succeeded { writes: Some((context, changes)) } => {
                Ok(self.commit(clock, &context, changes, ObjectWrites::Apply))
            }
            _ => Ok(CommitReceipt::default()),
        }
    }

    fn first_retry(&self) -> Option<OffsetDateTime> {
        self.runs.values().filter(|run| run.state == JobStatus::Retrying).filter_map(|run| run.due).min()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(system_clock())
    }

    /// An empty store that asks `clock` for the time (change times, when runs were queued and
    /// finished, when the next retry falls due).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let inner =
            Inner { state: Mutex::new(State::default()), work: Notify::new(), generation: AtomicU64::new(0), clock };
        Self { inner: Arc::new(inner) }
    }

    /// A change session in `context` over this store's objects.
    pub fn session(&self, context: ChangeContext) -> ChangeSession {
        ChangeSession::new(context, Arc::new(self.clone()))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every operation checks before it changes anything, so a panic leaves no half-made change.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn signal_work(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.work.notify_waiters();
    }
}

#[async_trait::async_trait]
impl ObjectReader for MemoryStore {
    async fn get_object(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        Ok(self.state().objects.get(reference).cloned())
    }
}

#[async_trait::async_trait]
impl ChangeStore for MemoryStore {
    async fn commit(
        &self,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, ChangeError> {
        let receipt = self.state().commit(&*self.inner.clock, context, changes, objects);
        if !receipt.runs.is_empty() {
            self.signal_work();
        }
        Ok(receipt)
    }

    async fn get_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StorageFailure> {
        Ok(self.state().read_change(id))
    }

    async fn get_change_and_object(
        &self,
        id: ChangeId,
    ) -> Result<Option<(ObjectChange, Option<Object>)>, StorageFailure> {
        let state = self.state();
        Ok(state.read_change(id).map(|change| {
            let object = state.objects.get(&change.object_ref()).cloned();
            (change, object)
        }))
    }

    async fn changes_for_object(&self, object: &ObjectRef, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let state = self.state();
        let ids = state.changes_by_object.get(object).map(Vec::as_slice).unwrap_or_default();
        Ok(ids.iter().rev().take(limit).filter_map(|&id| state.read_change(id)).collect())
    }

    async fn changes_for_request(&self, request_id: Uuid) -> Result<Vec<ObjectChange>, StorageFailure> {
        let state = self.state();
        let ids = state.changes_by_request.get(&request_id).map(Vec::as_slice).unwrap_or_default();
        Ok(ids.iter().filter_map(|&id| state.read_change(id)).collect())
    }

    async fn changes_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        let state = self.state();
        let ids = state.changes.values().filter(|recorded| recorded.change.time >= from && recorded.change.time < to);
        Ok(ids.take(limit).filter_map(|recorded| state.read_change(recorded.change.id)).collect())
    }

    async fn list_objects(&self, content_type: &ContentType) -> Result<Vec<Object>, StorageFailure> {
        // The repository is ordered by reference, (content type, id): one type's objects by id.
        let state = self.state();
        Ok(state.objects.values().filter(|object| object.content_type() == content_type).cloned().collect())
    }

    async fn changes_after(&self, after: ChangeId, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let state = self.state();
        let ids = state.changes.range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded));
        Ok(ids.take(limit).filter_map(|(&id, _)| state.read_change(id)).collect())
    }

    async fn objects_after(
        &self,
        content_type: &ContentType,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Object>, StorageFailure> {
        // The repository is ordered by reference, (content type, id): start past `after`.
        let state = self.state();
        let start = after.and_then(|after| ObjectRef::new(content_type.clone(), after).ok());
        let objects = match &start {
            Some(start) => state.objects.range((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded)),
            None => state.objects.range(..),
        };
        let of_type = objects
            .map(|(_, object)| object)
            .skip_while(|object| object.content_type() < content_type)
            .take_while(|object| object.content_type() == content_type);
        Ok(of_type.take(limit).cloned().collect())
    }

    async fn object_types(&self) -> Result<Vec<ContentType>, StorageFailure> {
        let state = self.state();
        let types: std::collections::BTreeSet<ContentType> =
            state.changes_by_object.keys().map(|reference| reference.content_type().clone()).collect();
        Ok(types.into_iter().collect())
    }

    async fn latest_changes(&self, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let state = self.state();
        Ok(state.changes.keys().rev().take(limit).filter_map(|&id| state.read_change(id)).collect())
    }

    async fn count_changes(&self) -> Result<u64, StorageFailure> {
        Ok(self.state().changes.len() as u64)
    }

    async fn change_page(&self, page: &ChangePage) -> Result<Vec<ObjectChange>, StorageFailure> {
        let state = self.state();
        let ids: Vec<ChangeId> = match &page.object {
            Some(object) => state.changes_by_object.get(object).cloned().unwrap_or_default(),
            None => state.changes.keys().copied().collect(),
        };
        Ok(ids.iter().rev().skip(page.offset).take(page.limit).filter_map(|&id| state.read_change(id)).collect())
    }

    async fn count_changes_of(&self, object: Option<&ObjectRef>) -> Result<u64, StorageFailure> {
        let state = self.state();
        Ok(match object {
            Some(object) => state.changes_by_object.get(object).map_or(0, Vec::len),
            None => state.changes.len(),
        } as u64)
    }
}

#[async_trait::async_trait]
impl Catalog for MemoryStore {
    async fn sync_jobs(&self, linked: &[JobSpec], mode: SyncMode) -> Result<SyncReport, CatalogError> {
        let mut state = self.state();
        let plan = plan_job_sync(state.jobs.values(), state.hooks.values(), state.buttons.values(), linked, mode);
        let now = state.now(&*self.inner.clock);
        Ok(state.apply(plan, now))
    }

    async fn restore_jobs(&self, only: &[String]) -> Result<JobRestoreReport, CatalogError> {
        let mut state = self.state();
        let plan = plan_job_restore(state.jobs.values(), state.hooks.values(), state.buttons.values(), only);
        let now = state.now(&*self.inner.clock);
        Ok(state.apply(plan, now))
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>, StorageFailure> {
        Ok(self.state().jobs.values().cloned().collect())
    }

    async fn find_jobs(&self, filter: &jobhooks_model::JobFilter) -> Result<Vec<JobRecord>, StorageFailure> {
        Ok(self.state().jobs.values().filter(|job| filter.admits(job)).cloned().collect())
    }

    async fn get_job(&self, class_path: &str) -> Result<Option<JobRecord>, StorageFailure> {
        Ok(self.state().jobs.get(class_path).cloned())
    }

    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, CatalogError> {
        let mut state = self.state();
        let now = state.now(&*self.inner.clock);
        let job = state.jobs.get(class_path).ok_or_else(|| CatalogError::not_found("job", class_path))?;
        let job = JobRecord { enabled, ..job.clone() }.stamped(now);
        state.jobs.insert(job.class_path.clone(), job.clone());
        Ok(job)
    }

    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, CatalogError> {
        let mut state = self.state();
        let hook = hook.stamped(state.now(&*self.inner.clock));
        validate_hook(&hook, state.hooks.values(), state.jobs.get(&hook.job))?;
        state.hooks.insert(hook.name.clone(), hook.clone());
        Ok(hook)
    }

    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, CatalogError> {
        let mut state = self.state();
        let now = state.now(&*self.inner.clock);
        let stored = state.hooks.get(name).ok_or_else(|| CatalogError::not_found("job hook", name))?;
        let hook = patch.apply_to(stored).stamped(now);
        validate_hook(&hook, state.hooks.values().filter(|other| other.name != name), state.jobs.get(&hook.job))?;
        state.hooks.remove(name);
        state.hooks.insert(hook.name.clone(), hook.clone());
        Ok(hook)
    }

    async fn delete_hook(&self, name: &str) -> Result<JobHook, CatalogError> {
        self.state().hooks.remove(name).ok_or_else(|| CatalogError::not_found("job hook", name))
    }

    async fn get_hook(&self, name: &str) -> Result<Option<JobHook>, StorageFailure> {
        Ok(self.state().hooks.get(name).cloned())
    }

    async fn list_hooks(&self) -> Result<Vec<JobHook>, StorageFailure> {
        Ok(self.state().hooks.values().cloned().collect())
    }

    async fn find_hooks(&self, filter: &jobhooks_model::HookFilter) -> Result<Vec<JobHook>, StorageFailure> {
        Ok(self.state().hooks.values().filter(|hook| filter.admits(hook)).cloned().collect())
    }

    async fn create_button(&self, button: JobButton) -> Result<JobButton, CatalogError> {
        let mut state = self.state();
        let button = button.stamped(state.now(&*self.inner.clock));
        let others = state.buttons.values().filter(|other| other.name == button.name || other.id == button.id);
        validate_button(&button, others, state.jobs.get(&button.job))?;
        state.buttons.insert(button.name.clone(), button.clone());
        Ok(button)
    }

    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, CatalogError> {
        let mut state = self.state();
        let now = state.now(&*self.inner.clock);
        let stored = state.buttons.get(name).ok_or_else(|| CatalogError::not_found("job button", name))?;
        let button = patch.apply_to(stored).stamped(now);
        let same_name = state.buttons.get(&button.name).filter(|other| other.name != name);
        validate_button(&button, same_name, state.jobs.get(&button.job))?;
        state.buttons.remove(name);
        state.buttons.insert(button.name.clone(), button.clone());
        Ok(button)
    }

    async fn delete_button(&self, name: &str) -> Result<JobButton, CatalogError> {
        self.state().buttons.remove(name).ok_or_else(|| CatalogError::not_found("job button", name))
    }

    async fn get_button(&self, name: &str) -> Result<Option<JobButton>, StorageFailure> {
        Ok(self.state().buttons.get(name).cloned())
    }

    async fn list_buttons(&self) -> Result<Vec<JobButton>, StorageFailure> {
        Ok(self.state().buttons.values().cloned().collect())
    }

    async fn find_buttons(&self, filter: &jobhooks_model::ButtonFilter) -> Result<Vec<JobButton>, StorageFailure> {
        Ok(self.state().buttons.values().filter(|button| filter.admits(button)).cloned().collect())
    }

    async fn put_user(&self, user: User) -> Result<(), CatalogError> {
        validate_name("username", &user.username)?;
        self.state().users.insert(user.username.clone(), user);
        Ok(())
    }

    async fn get_user(&self, username: &str) -> Result<Option<User>, StorageFailure> {
        Ok(self.state().users.get(username).cloned())
    }

    async fn list_users(&self) -> Result<Vec<User>, StorageFailure> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn add_token(&self, token: ApiToken) -> Result<(), CatalogError> {
        let mut state = self.state();
        validate_new_token(&token, state.users.contains_key(&token.user), state.tokens.contains_key(&token.id))?;
        state.tokens.insert(token.id.clone(), token);
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, StorageFailure> {
        Ok(self.state().tokens.get(id).cloned())
    }

    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StorageFailure> {
        let mut tokens: Vec<ApiToken> =
            self.state().tokens.values().filter(|token| user.is_none_or(|user| token.user == user)).cloned().collect();
        tokens.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(tokens)
    }

    async fn delete_token(&self, id: &str) -> Result<ApiToken, CatalogError> {
        self.state().tokens.remove(id).ok_or_else(|| CatalogError::NotFound { kind: "token", key: id.to_owned() })
    }
}

#[async_trait::async_trait]
impl Logins for MemoryStore {
    async fn set_password(&self, username: &str, password: Option<PasswordHash>) -> Result<(), CatalogError> {
        let mut state = self.state();
        if !state.users.contains_key(username) {
            return Err(CatalogError::not_found("user", username));
        }
        match password {
            Some(hash) => state.passwords.insert(username.to_owned(), hash),
            None => state.passwords.remove(username),
        };
        state.logins.retain(|_, session| session.user != username);
        Ok(())
    }

    async fn get_password(&self, username: &str) -> Result<Option<PasswordHash>, StorageFailure> {
        Ok(self.state().passwords.get(username).cloned())
    }

    async fn add_login(&self, session: LoginSession) -> Result<(), CatalogError> {
        let mut state = self.state();
        validate_new_login(&session, state.users.contains_key(&session.user), state.logins.contains_key(&session.id))?;
        state.logins.insert(session.id.clone(), session);
        Ok(())
    }

    async fn get_login(&self, id: &str) -> Result<Option<LoginSession>, StorageFailure> {
        Ok(self.state().logins.get(id).cloned())
    }

    async fn touch_login(&self, id: &str, at: OffsetDateTime) -> Result<(), StorageFailure> {
        if let Some(session) = self.state().logins.get_mut(id) {
            session.last_seen = session.last_seen.max(jobhooks_model::to_microseconds(at));
        }
        Ok(())
    }

    async fn list_logins(&self, user: Option<&str>) -> Result<Vec<LoginSession>, StorageFailure> {
        let mut sessions: Vec<LoginSession> = self
            .state()
            .logins
            .values()
            .filter(|session| user.is_none_or(|user| session.user == user))
            .cloned()
            .collect();
        sessions.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(sessions)
    }

    async fn end_login(&self, id: &str) -> Result<LoginSession, CatalogError> {
        self.state().logins.remove(id).ok_or_else(|| CatalogError::not_found("session", id))
    }

    async fn end_idle_logins(&self, idle_since: OffsetDateTime) -> Result<usize, StorageFailure> {
        let mut state = self.state();
        let before = state.logins.len();
        state.logins.retain(|_, session| session.last_seen >= idle_since);
        Ok(before - state.logins.len())
    }
}

#[async_trait::async_trait]
impl JobQueue for MemoryStore {
    async fn enqueue(&self, job: &str, user: Option<String>, inputs: JobInputs) -> Result<RunId, QueueError> {
        let run = {
            let mut state = self.state();
            if !state.jobs.contains_key(job) {
                return Err(QueueError::NotFound { kind: "job", key: job.to_owned() });
            }
            let now = state.now(&*self.inner.clock);
            let line = state.line_of(&inputs);
            let run = state.new_run();
            state.queue_run(JobResult::pending(run, job, user, inputs, now), line)
        };
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
        let mut state = self.state();
        let due = transition(JobStatus::Retrying, RunEvent::RetryDue).map_err(refused)?;
        let promoted: Vec<RunId> = state
            .runs
            .iter()
            .filter(|(_, run)| run.state == JobStatus::Retrying && run.due.is_some_and(|at| at <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in promoted {
            add(&mut state.counts, due.counts);
            if let Some(run) = state.runs.get_mut(&id) {
                run.state = due.to;
                run.due = None;
            }
        }
        let deadline = now.max(state.now(&*self.inner.clock)) + lease_for;
        let claimable: Vec<RunId> = state
            .runs
            .iter()
            .filter(|&(&id, run)| {
                let ready = run.state == JobStatus::Pending
                    || (run.state == JobStatus::Started && run.deadline.is_some_and(|at| at <= now));
                ready && state.is_head(id, run.line.as_ref())
            })
            .map(|(&id, _)| id)
            .take(max)
            .collect();
        let leased = transition(JobStatus::Pending, RunEvent::Leased).map_err(refused)?;
        let mut claimed = Vec::with_capacity(claimable.len());
        for id in claimable {
            if state.runs.get(&id).is_some_and(|run| run.state == JobStatus::Started) {
                state.unclaim(id, RunEvent::LeaseExpired, now).map_err(refused)?;
            }
            add(&mut state.counts, leased.counts);
            let Some(run) = state.runs.get_mut(&id) else { continue };
            run.state = leased.to;
            run.leases += 1;
            run.deadline = Some(deadline);
            run.result.attempts = leased.attempts.apply(run.result.attempts);
            run.result.started = Some(now);
            claimed.push((Lease { run: id, token: run.leases, deadline }, run.view()));
        }
        Ok(claimed)
    }

    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, QueueError> {
        let receipt = self.state().complete(&*self.inner.clock, completion)?;
        self.signal_work();
        Ok(receipt)
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        {
            let mut state = self.state();
            state.claimed(lease)?;
            let now = state.now(&*self.inner.clock);
            state.unclaim(lease.run, RunEvent::Released, now).map_err(refused)?;
        }
        self.signal_work();
        Ok(())
    }

    async fn give_back(&self, lease: &Lease) -> Result<(), QueueError> {
        {
            let mut state = self.state();
            state.claimed(lease)?;
            let now = state.now(&*self.inner.clock);
            state.unclaim(lease.run, RunEvent::GivenBack, now).map_err(refused)?;
        }
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
        let now = self.inner.clock.now();
        let next_retry = self.state().first_retry().filter(|&at| at > now);
        let wait = next_retry.map_or(at_most, |at| Duration::try_from(at - now).unwrap_or_default().min(at_most));
        let _woken_or_timed_out = tokio::time::timeout(wait, notified).await;
    }
}

#[async_trait::async_trait]
impl QueueReader for MemoryStore {
    async fn depth(&self) -> Result<QueueDepth, StorageFailure> {
        let counts = self.state().counts;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueDepth { pending: count(counts.pending), leased: count(counts.leased), dead: count(counts.dead) })
    }

    async fn get_result(&self, run: RunId) -> Result<Option<JobResult>, StorageFailure> {
        Ok(self.state().runs.get(&run).map(Run::view))
    }

    async fn list_results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>, StorageFailure> {
        let state = self.state();
        let results = state.runs.values().rev().map(Run::view).filter(|result| filter.admits(result));
        Ok(results.skip(filter.offset).take(filter.limit.unwrap_or(usize::MAX)).collect())
    }

    async fn count_results(&self, filter: &ResultFilter) -> Result<u64, StorageFailure> {
        let unlimited = filter.unpaged();
        Ok(self.list_results(&unlimited).await?.len() as u64)
    }

    async fn results_after(&self, after: RunId, limit: usize) -> Result<Vec<JobResult>, StorageFailure> {
        let state = self.state();
        let runs = state.runs.range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded));
        Ok(runs.take(limit).map(|(_, run)| run.view()).collect())
    }
}

#[async_trait::async_trait]
impl QueueMaintenance for MemoryStore {
    async fn release_expired(&self, now: OffsetDateTime) -> Result<usize, MaintenanceError> {
        let released = {
            let mut state = self.state();
            let lapsed: Vec<RunId> = state
                .runs
                .iter()
                .filter(|(_, run)| run.state == JobStatus::Started && run.deadline.is_some_and(|at| at <= now))
                .map(|(&id, _)| id)
                .collect();
            for &id in &lapsed {
                state
                    .unclaim(id, RunEvent::LeaseExpired, now)
                    .map_err(|illegal| MaintenanceError::Refused { reason: illegal.to_string() })?;
            }
            lapsed.len()
        };
        if released > 0 {
            self.signal_work();
        }
        Ok(released)
    }

    async fn replay(&self, run: RunId) -> Result<(), MaintenanceError> {
        {
            let mut state = self.state();
            let not_dead = || MaintenanceError::Refused {
                reason: format!("run {run} is not dead-lettered; only dead-lettered runs can be replayed"),
            };
            let inputs = match state.runs.get(&run) {
                Some(entry) if entry.state == JobStatus::DeadLettered => entry.result.inputs.clone(),
                _ => return Err(not_dead()),
            };
            let step = transition(JobStatus::DeadLettered, RunEvent::Replayed)
                .map_err(|illegal| MaintenanceError::Refused { reason: illegal.to_string() })?;
            add(&mut state.counts, step.counts);
            // A replay joins the back of its object's line, like a run queued now.
            let line = state.line_of(&inputs);
            if let Some(object) = &line {
                state.lines.entry(object.clone()).or_default().push_back(run);
            }
            if let Some(entry) = state.runs.get_mut(&run) {
                entry.state = step.to;
                entry.line = line;
                entry.result.attempts = step.attempts.apply(entry.result.attempts);
                entry.result.completed = None;
            }
        }
        self.signal_work();
        Ok(())
    }

    async fn prune(&self, retention: &Retention, now: OffsetDateTime) -> Result<PruneReport, MaintenanceError> {
        let mut state = self.state();
        let mut report = PruneReport::default();
        let results: Vec<RunId> = state
            .runs
            .iter()
            .filter(|(_, run)| retention.may_prune_result(run.state, run.result.created, now))
            .map(|(&id, _)| id)
            .collect();
        for id in results {
            state.runs.remove(&id);
            report.results += 1;
        }
        let mut pruned = Vec::new();
        for (&id, recorded) in &state.changes {
            let object = recorded.change.object_ref();
            let facts = ChangeFacts {
                time: recorded.change.time,
                is_latest_of_object: state.changes_by_object.get(&object).and_then(|ids| ids.last()) == Some(&id),
                has_kept_runs: recorded.runs.iter().any(|run| state.runs.contains_key(run)),
            };
            if retention.may_prune_change(facts, now) {
                pruned.push((id, object, recorded.change.request_id));
            }
        }
        for (id, object, request) in pruned {
            state.changes.remove(&id);
            if let Some(ids) = state.changes_by_object.get_mut(&object) {
                ids.retain(|&other| other != id);
            }
            if let Some(ids) = state.changes_by_request.get_mut(&request) {
                ids.retain(|&other| other != id);
                if ids.is_empty() {
                    state.changes_by_request.remove(&request);
                }
            }
            report.changes += 1;
        }
        Ok(report)
    }
}

#[async_trait::async_trait]
impl jobhooks_model::ports::Restore for MemoryStore {
    async fn restore(
        &self,
        snapshot: &jobhooks_model::transfer::Snapshot,
    ) -> Result<jobhooks_model::ports::RestoreReport, jobhooks_model::ports::RestoreError> {
        use jobhooks_model::transfer::restored_status;
        jobhooks_model::transfer::check_new(self).await?;
        let mut report = jobhooks_model::ports::RestoreReport::default();
        {
            let mut state = self.state();
            state.jobs = snapshot.jobs.iter().map(|job| (job.class_path.clone(), job.clone())).collect();
            state.users = snapshot.users.iter().map(|user| (user.username.clone(), user.clone())).collect();
            state.tokens = snapshot.tokens.iter().map(|token| (token.id.clone(), token.clone())).collect();
            state.hooks = snapshot.hooks.iter().map(|hook| (hook.name.clone(), hook.clone())).collect();
            state.buttons = snapshot.buttons.iter().map(|button| (button.name.clone(), button.clone())).collect();
            let mut runs_by_change = snapshot.runs_by_change();
            for change in &snapshot.changes {
                let reference = change.object_ref();
                let mut stored = change.clone();
                // As a commit stores it: the prechange is found again from the previous change.
                if state.changes_by_object.get(&reference).is_some_and(|ids| !ids.is_empty()) {
                    stored.prechange = None;
                }
                state.changes_by_object.entry(reference).or_default().push(change.id);
                state.changes_by_request.entry(change.request_id).or_default().push(change.id);
                let runs = runs_by_change.remove(&change.id).unwrap_or_default();
                state.changes.insert(change.id, Recorded { change: stored, runs });
                state.next_change = state.next_change.max(change.id.0);
                state.last_time = state.last_time.max(Some(change.time));
                report.changes += 1;
            }
            state.objects =
                snapshot.objects.iter().map(|object| (object.reference().clone(), object.clone())).collect();
            for result in &snapshot.results {
                let status = restored_status(result.status);
                let unfinished = !status.is_final();
                let line = if unfinished { state.line_of(&result.inputs) } else { None };
                if let Some(object) = &line {
                    state.lines.entry(object.clone()).or_default().push_back(result.id);
                }
                match status {
                    JobStatus::Pending => add(&mut state.counts, jobhooks_model::QUEUED),
                    JobStatus::DeadLettered => state.counts.dead += 1,
                    _ => {}
                }
                let restored = JobResult { status, ..result.clone() };
                let run = Run { result: restored, state: status, leases: 0, deadline: None, due: None, line };
                state.runs.insert(result.id, run);
                state.next_run = state.next_run.max(result.id.0);
                report.results += 1;
                report.queued += u64::from(unfinished);
            }
        }
        self.signal_work();
        Ok(report)
    }
}
