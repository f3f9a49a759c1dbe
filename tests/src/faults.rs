//! A storage wrapper that fails chosen operations, to show that the dispatcher keeps serving, loses
//! no entry, and makes every failure visible.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jobhooks_model::ports::{
    Catalog, ChangeStore, CommitReceipt, Completion, JobQueue, Lease, ObjectReader, ObjectWrites, PruneReport,
    QueueDepth, QueueMaintenance, QueueReader, ResultFilter, Retention, SyncMode, SyncReport,
};
use jobhooks_model::{
    ApiToken, CatalogError, ChangeContext, ChangeError, ChangeId, ChangeSet, ContentType, JobButton, JobButtonPatch,
    JobHook, JobHookPatch, JobInputs, JobRecord, JobResult, JobSpec, MaintenanceError, Object, ObjectChange, ObjectRef,
    OffsetDateTime, QueueError, RunId, StorageFailure, User, async_trait,
};
use uuid::Uuid;

/// How many of the next calls of each kind fail.
#[derive(Debug, Default)]
pub struct Faults {
    /// `commit` fails with a write error.
    pub commits: AtomicUsize,
    /// `complete` fails with a flush error (nothing of the completion is written).
    pub completes: AtomicUsize,
    /// `lease_next` fails with a write error.
    pub leases: AtomicUsize,
    /// `get_change` fails as if the record could not be decoded.
    pub corrupt_changes: AtomicUsize,
    /// `results_after` (an export's page of results) fails with a read error.
    pub result_pages: AtomicUsize,
    /// When set, `changes_after` (an export's page of changes) waits for a permit of this
    /// semaphore: a test holds an export in the middle of the log.
    pub change_pages_gate: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>>,
}

impl Faults {
    fn take(counter: &AtomicUsize) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

/// `inner`, with the failures `faults` asks for, counting the runs it leases.
pub struct FaultyStore<S> {
    /// The store underneath.
    pub inner: S,
    /// What to fail next.
    pub faults: Faults,
    leased: tokio::sync::watch::Sender<usize>,
}

impl<S> FaultyStore<S> {
    /// Wraps `inner`, failing nothing yet.
    pub fn new(inner: S) -> Self {
        Self { inner, faults: Faults::default(), leased: tokio::sync::watch::Sender::new(0) }
    }

    /// How many runs were leased through this wrapper so far; await a count with `wait_for`.
    pub fn leased_runs(&self) -> tokio::sync::watch::Receiver<usize> {
        self.leased.subscribe()
    }
}

fn injected(what: &str) -> StorageFailure {
    StorageFailure::Backend(jobhooks_model::BackendError::message(format!("injected {what} error")))
}

#[async_trait]
impl<S: ObjectReader> ObjectReader for FaultyStore<S> {
    async fn get_object(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        self.inner.get_object(reference).await
    }
}

#[async_trait]
impl<S: ChangeStore> ChangeStore for FaultyStore<S> {
    async fn commit(
        &self,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, ChangeError> {
        if Faults::take(&self.faults.commits) {
            return Err(injected("write").into());
        }
        self.inner.commit(context, changes, objects).await
    }
    async fn get_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StorageFailure> {
        if Faults::take(&self.faults.corrupt_changes) {
            return Err(StorageFailure::Corrupt {
                kind: "change",
                key: id.to_string(),
                reason: "injected decode error".into(),
            });
        }
        self.inner.get_change(id).await
    }
    async fn changes_for_object(&self, object: &ObjectRef, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.inner.changes_for_object(object, limit).await
    }
    async fn changes_for_request(&self, request_id: Uuid) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.inner.changes_for_request(request_id).await
    }
    async fn changes_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.inner.changes_between(from, to, limit).await
    }
    async fn list_objects(&self, content_type: &ContentType) -> Result<Vec<Object>, StorageFailure> {
        self.inner.list_objects(content_type).await
    }
    async fn changes_after(&self, after: ChangeId, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        if let Some(gate) = self.faults.change_pages_gate.get() {
            gate.acquire().await.map_err(|_| injected("closed gate"))?.forget();
        }
        self.inner.changes_after(after, limit).await
    }
    async fn objects_after(
        &self,
        content_type: &ContentType,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Object>, StorageFailure> {
        self.inner.objects_after(content_type, after, limit).await
    }
    async fn object_types(&self) -> Result<Vec<ContentType>, StorageFailure> {
        self.inner.object_types().await
    }
    async fn latest_changes(&self, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.inner.latest_changes(limit).await
    }
    async fn change_page(&self, page: &jobhooks_model::ports::ChangePage) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.inner.change_page(page).await
    }
    async fn count_changes_of(&self, object: Option<&ObjectRef>) -> Result<u64, StorageFailure> {
        self.inner.count_changes_of(object).await
    }
    async fn count_changes(&self) -> Result<u64, StorageFailure> {
        self.inner.count_changes().await
    }
    async fn find_changes(
        &self,
        filter: &jobhooks_model::ChangeFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.inner.find_changes(filter, offset, limit).await
    }
    async fn count_changes_where(&self, filter: &jobhooks_model::ChangeFilter) -> Result<u64, StorageFailure> {
        self.inner.count_changes_where(filter).await
    }
}

#[async_trait]
impl<S: jobhooks_model::ports::Logins> jobhooks_model::ports::Logins for FaultyStore<S> {
    async fn set_password(
        &self,
        username: &str,
        password: Option<jobhooks_model::PasswordHash>,
    ) -> Result<(), CatalogError> {
        self.inner.set_password(username, password).await
    }
    async fn get_password(&self, username: &str) -> Result<Option<jobhooks_model::PasswordHash>, StorageFailure> {
        self.inner.get_password(username).await
    }
    async fn add_login(&self, session: jobhooks_model::LoginSession) -> Result<(), CatalogError> {
        self.inner.add_login(session).await
    }
    async fn get_login(&self, id: &str) -> Result<Option<jobhooks_model::LoginSession>, StorageFailure> {
        self.inner.get_login(id).await
    }
    async fn touch_login(&self, id: &str, at: jobhooks_model::OffsetDateTime) -> Result<(), StorageFailure> {
        self.inner.touch_login(id, at).await
    }
    async fn list_logins(&self, user: Option<&str>) -> Result<Vec<jobhooks_model::LoginSession>, StorageFailure> {
        self.inner.list_logins(user).await
    }
    async fn end_login(&self, id: &str) -> Result<jobhooks_model::LoginSession, CatalogError> {
        self.inner.end_login(id).await
    }
    async fn end_idle_logins(&self, idle_since: jobhooks_model::OffsetDateTime) -> Result<usize, StorageFailure> {
        self.inner.end_idle_logins(idle_since).await
    }
}

#[async_trait]
impl<S: Catalog> Catalog for FaultyStore<S> {
    async fn sync_jobs(&self, linked: &[JobSpec], mode: SyncMode) -> Result<SyncReport, CatalogError> {
        self.inner.sync_jobs(linked, mode).await
    }
    async fn list_jobs(&self) -> Result<Vec<JobRecord>, StorageFailure> {
        self.inner.list_jobs().await
    }
    async fn find_jobs(&self, filter: &jobhooks_model::JobFilter) -> Result<Vec<JobRecord>, StorageFailure> {
        self.inner.find_jobs(filter).await
    }
    async fn get_job(&self, class_path: &str) -> Result<Option<JobRecord>, StorageFailure> {
        self.inner.get_job(class_path).await
    }
    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, CatalogError> {
        self.inner.set_job_enabled(class_path, enabled).await
    }
    async fn restore_jobs(&self, only: &[String]) -> Result<jobhooks_model::JobRestoreReport, CatalogError> {
        self.inner.restore_jobs(only).await
    }
    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, CatalogError> {
        self.inner.create_hook(hook).await
    }
    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, CatalogError> {
        self.inner.update_hook(name, patch).await
    }
    async fn delete_hook(&self, name: &str) -> Result<JobHook, CatalogError> {
        self.inner.delete_hook(name).await
    }
    async fn get_hook(&self, name: &str) -> Result<Option<JobHook>, StorageFailure> {
        self.inner.get_hook(name).await
    }
    async fn list_hooks(&self) -> Result<Vec<JobHook>, StorageFailure> {
        self.inner.list_hooks().await
    }
    async fn find_hooks(&self, filter: &jobhooks_model::HookFilter) -> Result<Vec<JobHook>, StorageFailure> {
        self.inner.find_hooks(filter).await
    }
    async fn create_button(&self, button: JobButton) -> Result<JobButton, CatalogError> {
        self.inner.create_button(button).await
    }
    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, CatalogError> {
        self.inner.update_button(name, patch).await
    }
    async fn delete_button(&self, name: &str) -> Result<JobButton, CatalogError> {
        self.inner.delete_button(name).await
    }
    async fn get_button(&self, name: &str) -> Result<Option<JobButton>, StorageFailure> {
        self.inner.get_button(name).await
    }
    async fn list_buttons(&self) -> Result<Vec<JobButton>, StorageFailure> {
        self.inner.list_buttons().await
    }
    async fn find_buttons(&self, filter: &jobhooks_model::ButtonFilter) -> Result<Vec<JobButton>, StorageFailure> {
        self.inner.find_buttons(filter).await
    }
    async fn put_user(&self, user: User) -> Result<(), CatalogError> {
        self.inner.put_user(user).await
    }
    async fn get_user(&self, username: &str) -> Result<Option<User>, StorageFailure> {
        self.inner.get_user(username).await
    }
    async fn list_users(&self) -> Result<Vec<User>, StorageFailure> {
        self.inner.list_users().await
    }
    async fn add_token(&self, token: ApiToken) -> Result<(), CatalogError> {
        self.inner.add_token(token).await
    }
    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, StorageFailure> {
        self.inner.get_token(id).await
    }
    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StorageFailure> {
        self.inner.list_tokens(user).await
    }
    async fn delete_token(&self, id: &str) -> Result<ApiToken, CatalogError> {
        self.inner.delete_token(id).await
    }
}

#[async_trait]
impl<S: JobQueue> JobQueue for FaultyStore<S> {
    async fn enqueue(&self, job: &str, user: Option<String>, inputs: JobInputs) -> Result<RunId, QueueError> {
        self.inner.enqueue(job, user, inputs).await
    }

    async fn lease_next(
        &self,
        now: OffsetDateTime,
        lease_for: Duration,
    ) -> Result<Option<(Lease, JobResult)>, QueueError> {
        if Faults::take(&self.faults.leases) {
            return Err(injected("write").into());
        }
        let leased = self.inner.lease_next(now, lease_for).await;
        if let Ok(Some(_)) = &leased {
            self.leased.send_modify(|count| *count += 1);
        }
        leased
    }

    async fn complete(&self, completion: Completion) -> Result<CommitReceipt, QueueError> {
        if Faults::take(&self.faults.completes) {
            return Err(injected("flush").into());
        }
        self.inner.complete(completion).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.inner.release(lease).await
    }

    async fn give_back(&self, lease: &Lease) -> Result<(), QueueError> {
        self.inner.give_back(lease).await
    }

    fn work_generation(&self) -> u64 {
        self.inner.work_generation()
    }

    async fn wait_for_work(&self, seen: u64, at_most: Duration) {
        self.inner.wait_for_work(seen, at_most).await
    }
}

#[async_trait]
impl<S: QueueReader> QueueReader for FaultyStore<S> {
    async fn depth(&self) -> Result<QueueDepth, StorageFailure> {
        self.inner.depth().await
    }

    async fn get_result(&self, run: RunId) -> Result<Option<JobResult>, StorageFailure> {
        self.inner.get_result(run).await
    }

    async fn list_results(&self, filter: &ResultFilter) -> Result<Vec<JobResult>, StorageFailure> {
        self.inner.list_results(filter).await
    }

    async fn count_results(&self, filter: &ResultFilter) -> Result<u64, StorageFailure> {
        self.inner.count_results(filter).await
    }

    async fn results_after(&self, after: RunId, limit: usize) -> Result<Vec<JobResult>, StorageFailure> {
        if Faults::take(&self.faults.result_pages) {
            return Err(injected("read"));
        }
        self.inner.results_after(after, limit).await
    }
}

#[async_trait]
impl<S: QueueMaintenance> QueueMaintenance for FaultyStore<S> {
    async fn release_expired(&self, now: OffsetDateTime) -> Result<usize, MaintenanceError> {
        self.inner.release_expired(now).await
    }

    async fn replay(&self, run: RunId) -> Result<(), MaintenanceError> {
        self.inner.replay(run).await
    }

    async fn prune(&self, retention: &Retention, now: OffsetDateTime) -> Result<PruneReport, MaintenanceError> {
        self.inner.prune(retention, now).await
    }
}
