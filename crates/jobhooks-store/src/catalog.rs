//! The catalog: job records, hooks, buttons and users, cached in memory and validated on write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use jobhooks_model::OffsetDateTime;
use jobhooks_model::ports::Catalog;
use jobhooks_model::{
    Action, ApiToken, CatalogError, ContentType, HookMatcher, JobButton, JobButtonPatch, JobHook, JobHookPatch,
    JobRecord, JobRestoreReport, JobSpec, JobSyncPlan, LoginSession, PasswordHash, StorageFailure, SyncMode,
    SyncReport, User, plan_job_restore, plan_job_sync, validate_button, validate_hook, validate_name,
    validate_new_token,
};

use crate::disk::Stored;
use crate::staging::{Staging, decode_record};
use crate::{Store, keys};

/// Every catalog record, in memory. Derived from disk at open and kept in step by the writers, so
/// reads and hook matching never scan the tree. Hooks are indexed by (content type, action), so the
/// cost of matching a change does not grow with hooks defined for other types.
#[derive(Default, Clone)]
pub(crate) struct CatalogCache {
    jobs: BTreeMap<String, JobRecord>,
    hooks: BTreeMap<String, JobHook>,
    buttons: BTreeMap<String, JobButton>,
    users: BTreeMap<String, User>,
    tokens: BTreeMap<String, ApiToken>,
    pub(crate) passwords: BTreeMap<String, PasswordHash>,
    pub(crate) logins: BTreeMap<String, LoginSession>,
    hook_index: HashMap<(ContentType, Action), IndexedHooks>,
}

/// The hooks on one content type and action.
#[derive(Default, Clone)]
struct IndexedHooks {
    names: BTreeSet<String>,
    /// Those hooks prepared for matching; built when a change first needs it after they changed.
    matcher: OnceLock<Arc<HookMatcher>>,
}

fn load_all<T: Stored>(
    st: &Staging<'_>,
    prefix: &[u8],
    kind: &'static str,
) -> Result<BTreeMap<String, T>, StorageFailure> {
    let mut records = BTreeMap::new();
    for entry in st.scan_prefix(prefix) {
        let (key, value) = entry?;
        let name = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        records.insert(name, decode_record(kind, &key, &value)?);
    }
    Ok(records)
}

impl CatalogCache {
    pub fn load(st: &Staging<'_>) -> Result<Self, StorageFailure> {
        let mut cache = Self {
            jobs: load_all(st, keys::JOB, "job")?,
            buttons: load_all(st, keys::BUTTON, "job button")?,
            users: load_all(st, keys::USER, "user")?,
            tokens: load_all(st, keys::TOKEN, "token")?,
            passwords: load_all(st, keys::PASSWORD, "password")?,
            logins: load_all(st, keys::LOGIN, "login session")?,
            ..Self::default()
        };
        let hooks: BTreeMap<String, JobHook> = load_all(st, keys::HOOK, "job hook")?;
        hooks.into_values().for_each(|hook| cache.index_hook(hook));
        Ok(cache)
    }

    fn index_hook(&mut self, hook: JobHook) {
        for content_type in &hook.content_types {
            for action in hook.events() {
                let indexed = self.hook_index.entry((content_type.clone(), action)).or_default();
                indexed.names.insert(hook.name.clone());
                indexed.matcher = OnceLock::new();
            }
        }
        self.hooks.insert(hook.name.clone(), hook);
    }

    fn unindex_hook(&mut self, name: &str) -> Option<JobHook> {
        let hook = self.hooks.remove(name)?;
        for content_type in &hook.content_types {
            for action in hook.events() {
                if let Some(indexed) = self.hook_index.get_mut(&(content_type.clone(), action)) {
                    indexed.names.remove(name);
                    indexed.matcher = OnceLock::new();
                }
            }
        }
        Some(hook)
    }

    pub fn job(&self, class_path: &str) -> Option<&JobRecord> {
        self.jobs.get(class_path)
    }

    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.get(username)
    }

    /// The hooks with `content_type` and `action`'s flag set, enabled or not, by name, prepared
    /// for matching; `None` when there are none.
    pub fn hooks_for(&self, content_type: &ContentType, action: Action) -> Option<&HookMatcher> {
        let indexed = self.hook_index.get(&(content_type.clone(), action))?;
        let matcher = indexed.matcher.get_or_init(|| {
            Arc::new(HookMatcher::new(indexed.names.iter().filter_map(|name| self.hooks.get(name)).cloned()))
        });
        Some(matcher)
    }

    /// Writes a job sync's or a job restore's plan; returns its report.
    /// The records it writes are stamped as changed at `now`.
    pub(crate) fn apply<R>(
        &mut self,
        staging: &mut Staging<'_>,
        plan: JobSyncPlan<R>,
        now: OffsetDateTime,
    ) -> Result<R, StorageFailure> {
        let JobSyncPlan { jobs, removed_jobs, hooks, buttons, report } = plan;
        for class_path in removed_jobs {
            staging.remove(keys::named(keys::JOB, &class_path));
            self.jobs.remove(&class_path);
        }
        for job in jobs {
            self.put_job(staging, job.stamped(now))?;
        }
        for hook in hooks {
            let name = hook.name.clone();
            self.put_hook(staging, hook.stamped(now), Some(&name))?;
        }
        for button in buttons {
            let name = button.name.clone();
            self.put_button(staging, button.stamped(now), Some(&name))?;
        }
        Ok(report)
    }

    pub fn put_job(&mut self, staging: &mut Staging<'_>, job: JobRecord) -> Result<(), StorageFailure> {
        staging.put_record(keys::named(keys::JOB, &job.class_path), &job)?;
        self.jobs.insert(job.class_path.clone(), job);
        Ok(())
    }

    /// Stores `hook`, replacing the hook `replacing` (which may have another name).
    pub(crate) fn put_hook(
        &mut self,
        staging: &mut Staging<'_>,
        hook: JobHook,
        replacing: Option<&str>,
    ) -> Result<(), StorageFailure> {
        if let Some(old) = replacing {
            self.remove_hook(staging, old);
        }
        staging.put_record(keys::named(keys::HOOK, &hook.name), &hook)?;
        self.index_hook(hook);
        Ok(())
    }

    fn remove_hook(&mut self, staging: &mut Staging<'_>, name: &str) -> Option<JobHook> {
        staging.remove(keys::named(keys::HOOK, name));
        self.unindex_hook(name)
    }

    pub(crate) fn put_button(
        &mut self,
        staging: &mut Staging<'_>,
        button: JobButton,
        replacing: Option<&str>,
    ) -> Result<(), StorageFailure> {
        if let Some(old) = replacing {
            self.remove_button(staging, old);
        }
        staging.put_record(keys::named(keys::BUTTON, &button.name), &button)?;
        self.buttons.insert(button.name.clone(), button);
        Ok(())
    }

    pub(crate) fn put_user(&mut self, staging: &mut Staging<'_>, user: User) -> Result<(), StorageFailure> {
        staging.put_record(keys::named(keys::USER, &user.username), &user)?;
        self.users.insert(user.username.clone(), user);
        Ok(())
    }

    pub(crate) fn has_user(&self, username: &str) -> bool {
        self.users.contains_key(username)
    }

    pub(crate) fn put_password(
        &mut self,
        staging: &mut Staging<'_>,
        username: &str,
        hash: PasswordHash,
    ) -> Result<(), StorageFailure> {
        staging.put_record(keys::named(keys::PASSWORD, username), &hash)?;
        self.passwords.insert(username.to_owned(), hash);
        Ok(())
    }

    pub(crate) fn remove_password(&mut self, staging: &mut Staging<'_>, username: &str) {
        staging.remove(keys::named(keys::PASSWORD, username));
        self.passwords.remove(username);
    }

    pub(crate) fn put_login(&mut self, staging: &mut Staging<'_>, session: LoginSession) -> Result<(), StorageFailure> {
        staging.put_record(keys::named(keys::LOGIN, &session.id), &session)?;
        self.logins.insert(session.id.clone(), session);
        Ok(())
    }

    pub(crate) fn remove_login(&mut self, staging: &mut Staging<'_>, id: &str) -> Option<LoginSession> {
        staging.remove(keys::named(keys::LOGIN, id));
        self.logins.remove(id)
    }

    pub(crate) fn put_token(&mut self, staging: &mut Staging<'_>, token: ApiToken) -> Result<(), StorageFailure> {
        staging.put_record(keys::named(keys::TOKEN, &token.id), &token)?;
        self.tokens.insert(token.id.clone(), token);
        Ok(())
    }

    fn remove_token(&mut self, staging: &mut Staging<'_>, id: &str) -> Option<ApiToken> {
        staging.remove(keys::named(keys::TOKEN, id));
        self.tokens.remove(id)
    }

    fn remove_button(&mut self, staging: &mut Staging<'_>, name: &str) -> Option<JobButton> {
        staging.remove(keys::named(keys::BUTTON, name));
        self.buttons.remove(name)
    }

    /// The stored hooks a candidate must be validated against: those with its job (conflicts)
    /// and the one with its name (uniqueness), minus the hook being updated.
    fn hooks_to_check<'a>(&'a self, candidate: &'a JobHook, updating: Option<&'a str>) -> Vec<&'a JobHook> {
        self.hooks
            .values()
            .filter(|h| Some(h.name.as_str()) != updating)
            .filter(|h| h.job == candidate.job || h.name == candidate.name || h.id == candidate.id)
            .collect()
    }
}

fn not_found(kind: &'static str, key: &str) -> CatalogError {
    CatalogError::not_found(kind, key)
}

#[async_trait::async_trait]
impl Catalog for Store {
    async fn sync_jobs(&self, linked: &[JobSpec], mode: SyncMode) -> Result<SyncReport, CatalogError> {
        {
            // Most syncs change nothing: plan under the read lock, and write only when needed.
            let catalog = self.catalog();
            let plan =
                plan_job_sync(catalog.jobs.values(), catalog.hooks.values(), catalog.buttons.values(), linked, mode);
            if plan.is_empty() {
                return Ok(plan.report);
            }
        }
        let now = self.inner.clock.now();
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            let plan =
                plan_job_sync(catalog.jobs.values(), catalog.hooks.values(), catalog.buttons.values(), linked, mode);
            Ok(catalog.apply(st, plan, now)?)
        })
        .await
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>, StorageFailure> {
        Ok(self.catalog().jobs.values().cloned().collect())
    }

    async fn find_jobs(&self, filter: &jobhooks_model::JobFilter) -> Result<Vec<JobRecord>, StorageFailure> {
        Ok(self.catalog().jobs.values().filter(|job| filter.admits(job)).cloned().collect())
    }

    async fn get_job(&self, class_path: &str) -> Result<Option<JobRecord>, StorageFailure> {
        Ok(self.catalog().job(class_path).cloned())
    }

    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, CatalogError> {
        let now = self.inner.clock.now();
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            let job = catalog.job(class_path).ok_or_else(|| not_found("job", class_path))?;
            let job = JobRecord { enabled, ..job.clone() }.stamped(now);
            catalog.put_job(st, job.clone())?;
            Ok(job)
        })
        .await
    }

    async fn restore_jobs(&self, only: &[String]) -> Result<JobRestoreReport, CatalogError> {
        let now = self.inner.clock.now();
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            let plan = plan_job_restore(catalog.jobs.values(), catalog.hooks.values(), catalog.buttons.values(), only);
            Ok(catalog.apply(st, plan, now)?)
        })
        .await
    }

    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, CatalogError> {
        let hook = hook.stamped(self.inner.clock.now());
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            let others = catalog.hooks_to_check(&hook, None);
            validate_hook(&hook, others, catalog.job(&hook.job))?;
            catalog.put_hook(st, hook.clone(), None)?;
            Ok(hook)
        })
        .await
    }

    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, CatalogError> {
        let now = self.inner.clock.now();
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            let stored = catalog.hooks.get(name).ok_or_else(|| not_found("job hook", name))?;
            let hook = patch.apply_to(stored).stamped(now);
            let others = catalog.hooks_to_check(&hook, Some(name));
            validate_hook(&hook, others, catalog.job(&hook.job))?;
            catalog.put_hook(st, hook.clone(), Some(name))?;
            Ok(hook)
        })
        .await
    }

    async fn delete_hook(&self, name: &str) -> Result<JobHook, CatalogError> {
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            catalog.remove_hook(st, name).ok_or_else(|| not_found("job hook", name))
        })
        .await
    }

    async fn get_hook(&self, name: &str) -> Result<Option<JobHook>, StorageFailure> {
        Ok(self.catalog().hooks.get(name).cloned())
    }

    async fn list_hooks(&self) -> Result<Vec<JobHook>, StorageFailure> {
        Ok(self.catalog().hooks.values().cloned().collect())
    }

    async fn find_hooks(&self, filter: &jobhooks_model::HookFilter) -> Result<Vec<JobHook>, StorageFailure> {
        Ok(self.catalog().hooks.values().filter(|hook| filter.admits(hook)).cloned().collect())
    }

    async fn create_button(&self, button: JobButton) -> Result<JobButton, CatalogError> {
        let button = button.stamped(self.inner.clock.now());
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            let same_name = catalog.buttons.values().filter(|other| other.name == button.name || other.id == button.id);
            validate_button(&button, same_name, catalog.job(&button.job))?;
            catalog.put_button(st, button.clone(), None)?;
            Ok(button)
        })
        .await
    }

    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, CatalogError> {
        let now = self.inner.clock.now();
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            let stored = catalog.buttons.get(name).ok_or_else(|| not_found("job button", name))?;
            let button = patch.apply_to(stored).stamped(now);
            let same_name = catalog.buttons.get(&button.name).filter(|b| b.name != name);
            validate_button(&button, same_name, catalog.job(&button.job))?;
            catalog.put_button(st, button.clone(), Some(name))?;
            Ok(button)
        })
        .await
    }

    async fn delete_button(&self, name: &str) -> Result<JobButton, CatalogError> {
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            catalog.remove_button(st, name).ok_or_else(|| not_found("job button", name))
        })
        .await
    }

    async fn get_button(&self, name: &str) -> Result<Option<JobButton>, StorageFailure> {
        Ok(self.catalog().buttons.get(name).cloned())
    }

    async fn list_buttons(&self) -> Result<Vec<JobButton>, StorageFailure> {
        Ok(self.catalog().buttons.values().cloned().collect())
    }

    async fn find_buttons(&self, filter: &jobhooks_model::ButtonFilter) -> Result<Vec<JobButton>, StorageFailure> {
        Ok(self.catalog().buttons.values().filter(|button| filter.admits(button)).cloned().collect())
    }

    async fn put_user(&self, user: User) -> Result<(), CatalogError> {
        validate_name("username", &user.username)?;
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            Ok(catalog.put_user(st, user)?)
        })
        .await
    }

    async fn get_user(&self, username: &str) -> Result<Option<User>, StorageFailure> {
        Ok(self.catalog().user(username).cloned())
    }

    async fn list_users(&self) -> Result<Vec<User>, StorageFailure> {
        Ok(self.catalog().users.values().cloned().collect())
    }

    async fn add_token(&self, token: ApiToken) -> Result<(), CatalogError> {
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            validate_new_token(
                &token,
                catalog.users.contains_key(&token.user),
                catalog.tokens.contains_key(&token.id),
            )?;
            Ok(catalog.put_token(st, token)?)
        })
        .await
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, StorageFailure> {
        Ok(self.catalog().tokens.get(id).cloned())
    }

    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StorageFailure> {
        let catalog = self.catalog();
        let mut tokens: Vec<ApiToken> =
            catalog.tokens.values().filter(|token| user.is_none_or(|user| token.user == user)).cloned().collect();
        tokens.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(tokens)
    }

    async fn delete_token(&self, id: &str) -> Result<ApiToken, CatalogError> {
        self.write_durably(|txn| {
            let (st, catalog) = txn.edit_catalog();
            catalog.remove_token(st, id).ok_or_else(|| not_found("token", id))
        })
        .await
    }
}
