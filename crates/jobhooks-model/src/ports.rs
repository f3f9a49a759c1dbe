//! The storage ports: what the dispatcher and the command line need from storage, with no backend
//! type in any signature.
//!
//! The embedded default (`jobhooks-store`, on sled) implements every trait here; a team that
//! outgrows one machine implements them on PostgreSQL. Work is claimed with leases that carry a
//! deadline (the shape of `SELECT … FOR UPDATE SKIP LOCKED … ` plus a `leased_until` column), never
//! with in-process locks alone, so many dispatcher processes can share one queue.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{CatalogError, ChangeError, MaintenanceError, QueueError, StorageFailure};
pub use crate::lifecycle::{Completion, Outcome};
pub use crate::sync::{SyncMode, SyncReport};
use crate::{
    ApiToken, ChangeContext, ChangeId, ChangeSet, ContentType, JobButton, JobButtonPatch, JobHook, JobHookPatch,
    JobInputs, JobRecord, JobResult, JobSpec, JobStatus, LoginSession, Object, ObjectChange, ObjectRef, PasswordHash,
    RunId, User,
};

/// Reads application objects.
#[async_trait::async_trait]
pub trait ObjectReader: Send + Sync {
    /// The object `reference`, or `None` if it does not exist.
    async fn get_object(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure>;
}

/// What one commit wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReceipt {
    /// The recorded changes, in order.
    pub changes: Vec<ChangeId>,
    /// The hook runs queued for them, in order.
    pub runs: Vec<RunId>,
}

/// Whether a commit writes the changed objects into the store's object repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectWrites {
    /// Write created and updated objects, remove deleted ones (the embedded object repository).
    Apply,
    /// Record the changes only: the application keeps its objects in its own database and
    /// supplies their data and pre-data itself.
    RecordOnly,
}

/// The change log and the transactional outbox.
#[async_trait::async_trait]
pub trait ChangeStore: ObjectReader {
    /// Commits the changes of one change context atomically: the objects (with
    /// [`ObjectWrites::Apply`]), the merged change records with their prechange, and one queued run
    /// with a pending result per matching hook per change (none for `job-hook` changes). Returns
    /// once durable.
    async fn commit(
        &self,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, ChangeError>;

    /// One change.
    async fn get_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StorageFailure>;

    /// One change and its object as it is now (`None` when the repository does not hold it), what
    /// a job hook run is called with. Backends override it when they can read both at once; the
    /// sled store does not decode a change twice when it is still its object's latest.
    async fn get_change_and_object(
        &self,
        id: ChangeId,
    ) -> Result<Option<(ObjectChange, Option<Object>)>, StorageFailure> {
        let Some(change) = self.get_change(id).await? else { return Ok(None) };
        let object = self.get_object(&change.object_ref()).await?;
        Ok(Some((change, object)))
    }

    /// The changes `ids` with their objects, each as [`get_change_and_object`] reads it, in the
    /// order of `ids`; an id without a change is left out. What the dispatcher reads for a batch
    /// of hook runs when [`reads_changes_together`] says it pays: backends override it when one
    /// read can serve them all. The default reads them one by one.
    ///
    /// [`get_change_and_object`]: ChangeStore::get_change_and_object
    /// [`reads_changes_together`]: ChangeStore::reads_changes_together
    async fn get_changes_and_objects(
        &self,
        ids: &[ChangeId],
    ) -> Result<Vec<(ObjectChange, Option<Object>)>, StorageFailure> {
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            found.extend(self.get_change_and_object(id).await?);
        }
        Ok(found)
    }

    /// Whether [`get_changes_and_objects`] costs less than reading the changes one by one (one
    /// round trip for all of them, on a store across the network). Only then does the dispatcher
    /// read a batch's changes ahead of its runs: a change read ahead goes stale if its run starts
    /// too late, and is read again, so on a store whose reads are local the reading ahead costs
    /// more than it saves. The default is `false`.
    ///
    /// [`get_changes_and_objects`]: ChangeStore::get_changes_and_objects
    fn reads_changes_together(&self) -> bool {
        false
    }

    /// The changes of one object, newest first, at most `limit`.
    async fn changes_for_object(&self, object: &ObjectRef, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure>;

    /// The changes of one change context, in order.
    async fn changes_for_request(&self, request_id: Uuid) -> Result<Vec<ObjectChange>, StorageFailure>;

    /// The changes committed in `[from, to)`, oldest first, at most `limit`.
    async fn changes_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure>;

    /// The stored objects of one type, by id.
    async fn list_objects(&self, content_type: &ContentType) -> Result<Vec<Object>, StorageFailure>;
    /// The content types the store holds objects or changes of, in name order (a type whose
    /// objects were all deleted is listed while its changes are kept).
    async fn object_types(&self) -> Result<Vec<ContentType>, StorageFailure>;

    /// The newest `limit` changes of the whole log, newest first: a page of a listing, read
    /// without reading the rest of the log.
    async fn latest_changes(&self, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure>;

    /// How many changes the log holds.
    async fn count_changes(&self) -> Result<u64, StorageFailure>;

    /// A page of the change log, newest first: the changes of `page.object` (every change when
    /// `None`) after the first `page.offset`, at most `page.limit`. A store reads the page through
    /// its indexes and passes over the offset's changes without reading them; the default reads
    /// them and drops them.
    async fn change_page(&self, page: &ChangePage) -> Result<Vec<ObjectChange>, StorageFailure> {
        let reach = page.offset.saturating_add(page.limit);
        let changes = match &page.object {
            Some(object) => self.changes_for_object(object, reach).await?,
            None => self.latest_changes(reach).await?,
        };
        Ok(changes.into_iter().skip(page.offset).collect())
    }

    /// The changes after `after` in id order, at most `limit`: a page of a walk through the whole
    /// log that stays as fast at its millionth change as at its first (an export's). The default
    /// reads the whole log and drops what it does not return; stores read only the page.
    async fn changes_after(&self, after: ChangeId, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let everything = self.changes_between(OffsetDateTime::UNIX_EPOCH, far_future(), usize::MAX).await?;
        Ok(everything.into_iter().filter(|change| change.id > after).take(limit).collect())
    }

    /// The stored objects of one type after the object id `after` (from the first when `None`),
    /// by id, at most `limit`. The default reads every object of the type; stores read only the
    /// page.
    async fn objects_after(
        &self,
        content_type: &ContentType,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Object>, StorageFailure> {
        let objects = self.list_objects(content_type).await?;
        let after = |object: &Object| after.is_none_or(|after| object.reference().id() > after);
        Ok(objects.into_iter().filter(after).take(limit).collect())
    }

    /// A page of the changes `filter` admits, newest first: after the first `offset` of them, at
    /// most `limit`. A store reads through the narrowest index it has for the filter (one
    /// object's changes, one request's) and checks each change from the part of its record the
    /// filter reads; the cost is one walk of what the index holds, whatever the offset. The
    /// default walks the log twice through [`ChangeStore::changes_after`] (to count, then to take
    /// the page), holding one chunk and the page.
    async fn find_changes(
        &self,
        filter: &crate::ChangeFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        if filter.only_object() {
            return self.change_page(&ChangePage::new(filter.object(), offset, limit)).await;
        }
        // Newest first from `offset`: oldest first, the admitted changes numbered
        // `[count - offset - limit, count - offset)`.
        let count = usize::try_from(self.count_changes_where(filter).await?).unwrap_or(usize::MAX);
        let end = count.saturating_sub(offset);
        let start = end.saturating_sub(limit);
        let mut page = Vec::new();
        let (mut after, mut admitted) = (ChangeId(0), 0);
        while admitted < end {
            let chunk = self.changes_after(after, WALK_CHUNK).await?;
            let Some(last) = chunk.last() else { break };
            after = last.id;
            for change in chunk.into_iter().filter(|change| filter.admits(change)) {
                if (start..end).contains(&admitted) {
                    page.push(change);
                }
                admitted += 1;
            }
        }
        page.reverse();
        Ok(page)
    }

    /// How many changes [`ChangeStore::find_changes`] pages through for `filter`. The default
    /// walks the log through [`ChangeStore::changes_after`], a chunk at a time.
    async fn count_changes_where(&self, filter: &crate::ChangeFilter) -> Result<u64, StorageFailure> {
        if filter.only_object() {
            return self.count_changes_of(filter.object().as_ref()).await;
        }
        let (mut after, mut count) = (ChangeId(0), 0);
        loop {
            let chunk = self.changes_after(after, WALK_CHUNK).await?;
            let Some(last) = chunk.last() else { return Ok(count) };
            after = last.id;
            count += chunk.iter().filter(|change| filter.admits(change)).count() as u64;
        }
    }

    /// How many changes [`ChangeStore::change_page`] pages through for `object` (the whole log's
    /// when `None`). The default reads them all.
    async fn count_changes_of(&self, object: Option<&ObjectRef>) -> Result<u64, StorageFailure> {
        match object {
            Some(object) => Ok(self.changes_for_object(object, usize::MAX).await?.len() as u64),
            None => self.count_changes().await,
        }
    }
}

/// Which page of the change log to read: see [`ChangeStore::change_page`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangePage {
    /// Only this object's changes; every change when `None`.
    pub object: Option<ObjectRef>,
    /// Changes to pass over, newest first.
    pub offset: usize,
    /// The most to read.
    pub limit: usize,
}

impl ChangePage {
    /// `limit` changes after the newest `offset` (of `object`'s, or of the whole log).
    pub fn new(object: Option<ObjectRef>, offset: usize, limit: usize) -> Self {
        Self { object, offset, limit }
    }
}

/// Opens a [`ChangeSession`](crate::ChangeSession) on a shared store: `store.session(context)`
/// works on an `Arc` of any [`ChangeStore`], so code generic over the store can record and commit
/// changes.
///
/// ```
/// use std::sync::Arc;
/// use jobhooks_model::prelude::*;
///
/// async fn rename<S: ChangeStore + 'static>(store: &Arc<S>, device: &ObjectRef, name: &str) -> Result<(), ChangeError> {
///     let mut session = store.session(ChangeContext::web("alice"));
///     session.save(Object::new(device.clone(), name, json!({"name": name}))?).await?;
///     session.commit().await?;
///     Ok(())
/// }
/// ```
pub trait OpenSession {
    /// A session recording into `context`, reading this store's objects and committing to it.
    fn session(&self, context: ChangeContext) -> crate::ChangeSession;
}

impl<S: ChangeStore + 'static> OpenSession for std::sync::Arc<S> {
    fn session(&self, context: ChangeContext) -> crate::ChangeSession {
        crate::ChangeSession::new(context, self.clone())
    }
}

impl OpenSession for std::sync::Arc<dyn ChangeStore> {
    fn session(&self, context: ChangeContext) -> crate::ChangeSession {
        crate::ChangeSession::new(context, self.clone())
    }
}

/// Job records, job hooks, job buttons and users, validated on every write.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync {
    /// Makes the job records match the jobs linked into the program, as
    /// [`plan_job_sync`](crate::plan_job_sync) plans it for `mode`, in one transaction.
    async fn sync_jobs(&self, linked: &[JobSpec], mode: SyncMode) -> Result<SyncReport, CatalogError>;
    /// Every job record, by class path.
    async fn list_jobs(&self) -> Result<Vec<JobRecord>, StorageFailure>;
    /// The job records `filter` admits, by class path. The default lists every job and drops
    /// what the filter does not admit; a store narrows where it reads.
    async fn find_jobs(&self, filter: &crate::JobFilter) -> Result<Vec<JobRecord>, StorageFailure> {
        let mut jobs = self.list_jobs().await?;
        jobs.retain(|job| filter.admits(job));
        Ok(jobs)
    }
    /// One job record.
    async fn get_job(&self, class_path: &str) -> Result<Option<JobRecord>, StorageFailure>;
    /// Enables or disables a job. Disabling does not touch its hooks and buttons (they are skipped).
    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, CatalogError>;
    /// Enables again what [`SyncMode::Full`] syncs disabled when they uninstalled jobs, for the
    /// jobs `only` names (every job when empty), once they are installed again; see
    /// [`plan_job_restore`](crate::plan_job_restore). Atomic.
    async fn restore_jobs(&self, only: &[String]) -> Result<crate::JobRestoreReport, CatalogError>;

    /// Validates and stores a new hook.
    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, CatalogError>;
    /// Validates and stores a partial update of the hook `name`.
    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, CatalogError>;
    /// Deletes the hook `name` and returns it.
    async fn delete_hook(&self, name: &str) -> Result<JobHook, CatalogError>;
    /// One hook.
    async fn get_hook(&self, name: &str) -> Result<Option<JobHook>, StorageFailure>;
    /// Every hook, by name.
    async fn list_hooks(&self) -> Result<Vec<JobHook>, StorageFailure>;
    /// The hooks `filter` admits, by name. The default lists every hook and drops what the filter
    /// does not admit; a store narrows where it reads.
    async fn find_hooks(&self, filter: &crate::HookFilter) -> Result<Vec<JobHook>, StorageFailure> {
        let mut hooks = self.list_hooks().await?;
        hooks.retain(|hook| filter.admits(hook));
        Ok(hooks)
    }

    /// Validates and stores a new button.
    async fn create_button(&self, button: JobButton) -> Result<JobButton, CatalogError>;
    /// Validates and stores a partial update of the button `name`.
    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, CatalogError>;
    /// Deletes the button `name` and returns it.
    async fn delete_button(&self, name: &str) -> Result<JobButton, CatalogError>;
    /// One button.
    async fn get_button(&self, name: &str) -> Result<Option<JobButton>, StorageFailure>;
    /// Every button, by name.
    async fn list_buttons(&self) -> Result<Vec<JobButton>, StorageFailure>;
    /// The buttons `filter` admits, by name. The default lists every button and drops what the
    /// filter does not admit; a store narrows where it reads.
    async fn find_buttons(&self, filter: &crate::ButtonFilter) -> Result<Vec<JobButton>, StorageFailure> {
        let mut buttons = self.list_buttons().await?;
        buttons.retain(|button| filter.admits(button));
        Ok(buttons)
    }

    /// Creates or replaces a user.
    async fn put_user(&self, user: User) -> Result<(), CatalogError>;
    /// One user.
    async fn get_user(&self, username: &str) -> Result<Option<User>, StorageFailure>;
    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<User>, StorageFailure>;

    /// Stores an API token (see [`ApiToken::issue`]). Its user must exist (`NotFound`), its id
    /// must be new (`Invalid`).
    async fn add_token(&self, token: ApiToken) -> Result<(), CatalogError>;
    /// The token with this id.
    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, StorageFailure>;
    /// The tokens of `user` (all tokens for `None`), oldest first.
    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StorageFailure>;
    /// Revokes a token: it is removed, and returned.
    async fn delete_token(&self, id: &str) -> Result<ApiToken, CatalogError>;
}

/// Passwords and login sessions, for the web pages (see [`crate::LoginSession`]). A store keeps
/// them beside its users, so that a session opened by one process is honoured by another.
#[async_trait::async_trait]
pub trait Logins: Send + Sync {
    /// Sets (`Some`) or removes (`None`) the password of `username`, and ends every session the
    /// user has open, as Django does when a password changes. The user must exist (`NotFound`).
    async fn set_password(&self, username: &str, password: Option<PasswordHash>) -> Result<(), CatalogError>;
    /// The password hash of `username`; `None` when the user has none (and so cannot log in) or
    /// does not exist.
    async fn get_password(&self, username: &str) -> Result<Option<PasswordHash>, StorageFailure>;
    /// Stores a session just opened (see [`crate::LoginSession::open`]). Its user must exist
    /// (`NotFound`), its id must be new (`Invalid`).
    async fn add_login(&self, session: LoginSession) -> Result<(), CatalogError>;
    /// The session with this id.
    async fn get_login(&self, id: &str) -> Result<Option<LoginSession>, StorageFailure>;
    /// Records that the session was used at `at`; nothing when it has ended.
    async fn touch_login(&self, id: &str, at: OffsetDateTime) -> Result<(), StorageFailure>;
    /// The sessions of `user` (all sessions for `None`), oldest first.
    async fn list_logins(&self, user: Option<&str>) -> Result<Vec<LoginSession>, StorageFailure>;
    /// Ends a session: it is removed, and returned.
    async fn end_login(&self, id: &str) -> Result<LoginSession, CatalogError>;
    /// Ends every session last used before `idle_since`; returns how many.
    async fn end_idle_logins(&self, idle_since: OffsetDateTime) -> Result<usize, StorageFailure>;
}

/// A claim on one queued run, valid until `deadline`. Another worker may take the run over once
/// the deadline passes; completing with a lease that was taken over fails with
/// [`QueueError::LeaseLost`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The run.
    pub run: RunId,
    /// Tells this claim from later claims of the same run.
    pub token: u64,
    /// When the claim lapses.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
}

/// How many runs are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueDepth {
    /// Waiting to run (including retries not yet due).
    pub pending: u64,
    /// Claimed by a worker.
    pub leased: u64,
    /// Dead-lettered, waiting for a replay.
    pub dead: u64,
}

/// Which results to list. A list field admits a result when it is empty or when one of its values
/// matches; the fields together admit what each admits.
///
/// ```
/// use jobhooks_model::ports::ResultFilter;
/// use jobhooks_model::JobStatus;
///
/// // The newest 50 failures of one job, after the first 100.
/// let filter = ResultFilter::default()
///     .job("app::Audit")
///     .status(JobStatus::Failure)
///     .status(JobStatus::DeadLettered)
///     .offset(100)
///     .limit(50);
/// assert_eq!(filter.statuses.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ResultFilter {
    /// Only these runs.
    pub ids: Vec<RunId>,
    /// Only runs of these jobs (class paths).
    pub jobs: Vec<String>,
    /// Only runs in these states.
    pub statuses: Vec<JobStatus>,
    /// Only runs of these changes.
    pub changes: Vec<ChangeId>,
    /// Only runs as these users.
    pub users: Vec<String>,
    /// Skip this many of the results the filter admits (newest first) before listing: a store
    /// skips them without reading more of them than it must, so a far offset costs no more than
    /// the results it passes over. Counting ignores it.
    pub offset: usize,
    /// At most this many (newest first); `None` for all.
    pub limit: Option<usize>,
}

impl ResultFilter {
    /// Also admits the run `id` (only the runs named, once one is).
    pub fn id(mut self, id: RunId) -> Self {
        self.ids.push(id);
        self
    }

    /// Also admits runs of `job` (only the jobs named, once one is).
    pub fn job(mut self, job: impl Into<String>) -> Self {
        self.jobs.push(job.into());
        self
    }

    /// Also admits runs in `status` (only the states named, once one is).
    pub fn status(mut self, status: JobStatus) -> Self {
        self.statuses.push(status);
        self
    }

    /// Also admits runs of `change` (only the changes named, once one is).
    pub fn change(mut self, change: ChangeId) -> Self {
        self.changes.push(change);
        self
    }

    /// Also admits runs as `user` (only the users named, once one is).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.users.push(user.into());
        self
    }

    /// Skips the first `offset` results the filter admits.
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Lists at most `limit` results.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The same filter over every result it admits: no offset, no limit (what counting reads).
    pub fn unpaged(&self) -> Self {
        Self { offset: 0, limit: None, ..self.clone() }
    }

    /// Whether `result` passes the filter's ids, jobs, states, changes and users (not its offset
    /// and limit).
    pub fn admits(&self, result: &crate::JobResult) -> bool {
        let any_of = |empty: bool, matches: bool| empty || matches;
        any_of(self.ids.is_empty(), self.ids.contains(&result.id))
            && any_of(self.jobs.is_empty(), self.jobs.contains(&result.job))
            && any_of(self.statuses.is_empty(), self.statuses.contains(&result.status))
            && any_of(self.changes.is_empty(), result.change_id().is_some_and(|change| self.changes.contains(&change)))
            && any_of(self.users.is_empty(), result.user.as_ref().is_some_and(|user| self.users.contains(user)))
    }
}

/// How long finished results and old changes are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep results that ended (`SUCCESS` or `FAILURE`) for this long after they were queued;
    /// `None` keeps them forever. Pending, running, retrying and dead-lettered runs are never
    /// pruned.
    pub results_for: Option<Duration>,
    /// Keep changes for this long; `None` keeps them forever. A change is kept anyway while it is
    /// its object's latest change (the object's current state and the next change's prechange)
    /// or while results of its runs are kept.
    pub changes_for: Option<Duration>,
}

impl Retention {
    /// Keep finished results `results_days` days and changes `changes_days` days (`None`: forever).
    pub fn from_days(results_days: Option<u32>, changes_days: Option<u32>) -> Self {
        let days = |days: Option<u32>| days.map(|days| Duration::from_secs(u64::from(days) * 86_400));
        Self { results_for: days(results_days), changes_for: days(changes_days) }
    }
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PruneReport {
    /// Results removed.
    pub results: u64,
    /// Changes removed.
    pub changes: u64,
}

/// What a claim read with the runs it claimed, for a store that can read it in the same round trip
/// ([`JobQueue::lease_batch_with_reads`]): what the runs start with, as the store held it when
/// they were claimed. Each map answers only the keys the store looked up, found (`Some`) or not
/// (`None`); a key it holds no answer for is read as usual.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ClaimReads {
    /// When the reads were made: no earlier than the claim's `now`.
    pub read_at: Option<OffsetDateTime>,
    /// The changes of the claimed hook runs, each with its object as it is now
    /// ([`ChangeStore::get_changes_and_objects`]).
    pub changes: std::collections::HashMap<ChangeId, Option<(ObjectChange, Option<Object>)>>,
    /// The claimed runs' job records ([`Catalog::get_job`]).
    pub jobs: std::collections::HashMap<String, Option<JobRecord>>,
    /// The users the claimed runs run as ([`Catalog::get_user`]): a run's user, or
    /// [`ObjectChange::UNDEFINED_USER`] for a run without one.
    pub users: std::collections::HashMap<String, Option<User>>,
}

/// Runs claimed together, with what the claim read for them.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LeasedBatch {
    /// The claimed runs, as [`JobQueue::lease_batch`] returns them.
    pub runs: Vec<(Lease, JobResult)>,
    /// What was read with them; empty for a store that reads nothing with its claims.
    pub reads: ClaimReads,
}

impl LeasedBatch {
    /// Claimed runs, with nothing read for them.
    pub fn new(runs: Vec<(Lease, JobResult)>) -> Self {
        Self { runs, reads: ClaimReads::default() }
    }
}

/// The durable job queue, as workers use it: queue runs, claim them, and end or give back what
/// they claimed.
#[async_trait::async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues one run of `job` as `user` (a button press), with a pending result.
    async fn enqueue(&self, job: &str, user: Option<String>, inputs: JobInputs) -> Result<RunId, QueueError>;
    /// Claims the oldest runnable run (leased past its deadline, else pending and due) for
    /// `lease_for`, marks its result started, and returns the claim and the result. Runs about the
    /// same object start one at a time, in the order they were queued (a replayed run queues
    /// anew): a run waits while a run of its object queued before it is unfinished.
    async fn lease_next(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
    ) -> Result<Option<(Lease, JobResult)>, QueueError>;
    /// Claims up to `max` runnable runs at once, in the order [`JobQueue::lease_next`] would.
    /// Backends that can claim several in one write override it; the default claims one by one.
    async fn lease_batch(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
        max: usize,
    ) -> Result<Vec<(Lease, JobResult)>, QueueError> {
        let mut claimed = Vec::new();
        while claimed.len() < max {
            match self.lease_next(now, lease_for).await? {
                Some(run) => claimed.push(run),
                None => break,
            }
        }
        Ok(claimed)
    }
    /// Claims like [`JobQueue::lease_batch`], and reads with the claim what the claimed runs start
    /// with ([`ClaimReads`]) where the store can do both in one round trip, so that a dispatcher
    /// on a store across the network starts its batch one round trip sooner. The default reads
    /// nothing.
    async fn lease_batch_with_reads(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
        max: usize,
    ) -> Result<LeasedBatch, QueueError> {
        Ok(LeasedBatch::new(self.lease_batch(now, lease_for, max).await?))
    }
    /// Ends or reschedules a claimed run, committing its writes (on success), its result and its
    /// queue entry's new state atomically. Returns what the writes committed.
    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, QueueError>;
    /// Completes several claimed runs; each outcome is that of [`JobQueue::complete`] for its run
    /// (a lapsed lease refuses only its own run). Backends that can write them together, sharing
    /// one flush, override it; the default completes one by one.
    async fn complete_batch(
        &self,
        completions: Vec<Completion>,
    ) -> Result<Vec<Result<CommitReceipt, QueueError>>, QueueError> {
        let mut outcomes = Vec::with_capacity(completions.len());
        for completion in completions {
            outcomes.push(self.complete(completion).await);
        }
        Ok(outcomes)
    }
    /// Gives a claimed run back without an outcome (e.g. stopped at shutdown): pending again at
    /// once. The claim still counts as one of the run's attempts.
    async fn release(&self, lease: &Lease) -> Result<(), QueueError>;
    /// Gives a claimed run back that never started: pending again at once, and the claim does not
    /// count as one of its attempts.
    async fn give_back(&self, lease: &Lease) -> Result<(), QueueError>;
    /// A counter that grows whenever runs may have become ready (commits that queued runs,
    /// completions, retries, replays, releases).
    fn work_generation(&self) -> u64;
    /// Waits until [`JobQueue::work_generation`] exceeds `seen`, a scheduled run falls due, or
    /// `at_most` passes, whichever comes first. Dispatchers wait here instead of polling.
    async fn wait_for_work(&self, seen: u64, at_most: Duration);
}

/// What readers ask of the queue: results and how many runs are where.
#[async_trait::async_trait]
pub trait QueueReader: Send + Sync {
    /// How many runs are where.
    async fn depth(&self) -> Result<QueueDepth, StorageFailure>;
    /// One result.
    async fn get_result(&self, run: RunId) -> Result<Option<JobResult>, StorageFailure>;
    /// Results, newest first.
    async fn list_results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>, StorageFailure>;
    /// How many results [`QueueReader::list_results`] lists for `filter` without its limit,
    /// counted without reading the results themselves where the store can.
    async fn count_results(&self, filter: &ResultFilter) -> Result<u64, StorageFailure>;
    /// The results after the run `after`, oldest first, at most `limit`: a page of a walk through
    /// every result (an export's). The default lists every result; stores read only the page.
    async fn results_after(&self, after: RunId, limit: usize) -> Result<Vec<JobResult>, StorageFailure> {
        let mut results = self.list_results(&ResultFilter::default()).await?;
        results.retain(|result| result.id > after);
        results.reverse();
        results.truncate(limit);
        Ok(results)
    }
}

/// How many changes the default walks of the log read at a time.
const WALK_CHUNK: usize = 1_000;

/// A time after every change a store holds: the end of a walk through the log by time.
fn far_future() -> OffsetDateTime {
    time::PrimitiveDateTime::MAX.assume_utc()
}

/// Maintenance of the queue: lapsed leases, replays of dead letters, retention.
#[async_trait::async_trait]
pub trait QueueMaintenance: Send + Sync {
    /// Returns every lease past its deadline to pending; how many.
    async fn release_expired(&self, now: OffsetDateTime) -> Result<usize, MaintenanceError>;
    /// Queues a dead-lettered run again, as a new attempt series of the same run, behind the
    /// runs of its object queued so far.
    async fn replay(&self, run: RunId) -> Result<(), MaintenanceError>;
    /// Removes finished results and old changes past `retention` as of `now`, with their index
    /// entries, in bounded steps so that commits are not held up.
    async fn prune(&self, retention: &Retention, now: OffsetDateTime) -> Result<PruneReport, MaintenanceError>;
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Changes written.
    pub changes: u64,
    /// Job results written.
    pub results: u64,
    /// Of those, runs queued again (they had not ended).
    pub queued: u64,
}

/// Why an import was not written. Nothing was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The store already holds data: an import writes only into a new store.
    #[error("cannot import into this store: it already holds {what}; import into a new store")]
    NotNew {
        /// What it holds (`3 changes`, `job hook `x``).
        what: String,
    },
    /// The snapshot cannot be written as it is; the message says why.
    #[error("cannot import: {0}")]
    Invalid(String),
    /// Reading or writing the store failed.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
}

/// Writes an export ([`crate::transfer::Snapshot`]) into a new store.
#[async_trait::async_trait]
pub trait Restore: Send + Sync {
    /// Writes `snapshot` into this store, which must hold nothing but job records (the
    /// snapshot's replace them): every id, time, user, state and log is kept, the objects are
    /// the snapshot's, and runs that had not ended are queued again in their objects' lines, in
    /// id order, as [`crate::transfer::restored_status`] says. New changes and runs are numbered
    /// after the snapshot's. All or nothing.
    async fn restore(&self, snapshot: &crate::transfer::Snapshot) -> Result<RestoreReport, RestoreError>;
}

/// What a backup copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackupReport {
    /// Records copied.
    pub records: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// Why a backup was not made. A backup that fails leaves the store as it was; what it wrote into
/// the target may be incomplete and is not a store to open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The target is not a new or empty directory (a backup never overwrites).
    #[error("cannot back up into {path}: {reason}; give a new or empty directory")]
    Target {
        /// The target as given.
        path: String,
        /// What is there.
        reason: String,
    },
    /// This store is not backed up by jobhooks (PostgreSQL has its own tools).
    #[error("{0}")]
    Unsupported(String),
    /// Reading the store or writing the copy failed.
    #[error(transparent)]
    Storage(#[from] StorageFailure),
}

/// A consistent copy of a store into a new directory while it serves, for stores that keep their
/// data in files (sled). The copy is a store of its own, to open in place of the original.
#[async_trait::async_trait]
pub trait Backup: Send + Sync {
    /// Copies everything committed so far into `path`, a new or empty directory, as of one
    /// moment: no write is half in the copy.
    async fn backup_to(&self, path: &std::path::Path) -> Result<BackupReport, BackupError>;
}

/// Every port at once: what a dispatcher needs from one backend.
pub trait Storage: ChangeStore + Catalog + Logins + JobQueue + QueueReader + QueueMaintenance {}

impl<T: ChangeStore + Catalog + Logins + JobQueue + QueueReader + QueueMaintenance> Storage for T {}
