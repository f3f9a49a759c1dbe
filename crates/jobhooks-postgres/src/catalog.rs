//! Job records, job hooks, job buttons and users. Writes are validated by the model's pure
//! validation against the rows as they are, under a transaction-scoped advisory lock, so that two
//! processes cannot both pass a check that only one of their writes may pass.

use std::collections::BTreeMap;

use jobhooks_model::ports::Catalog;
use jobhooks_model::{
    ApiToken, CatalogError, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobRecord, JobRestoreReport, JobSpec,
    JobSyncPlan, OffsetDateTime, StorageFailure, SyncMode, SyncReport, User, plan_job_restore, plan_job_sync,
    validate_button, validate_hook, validate_name, validate_new_token,
};
use tokio_postgres::Row;

use crate::db::Db;

use crate::records::{
    PermissionRecord, button_class_of, content_type_names, content_types, corrupt, kind_name, kind_of,
    permission_records, permissions,
};
use crate::{PgStore, db_error};

/// The advisory lock key of catalog writes (`catalog!` in ASCII).
const CATALOG_LOCK: i64 = 0x6361_7461_6c6f_6721;

pub(crate) const JOB_COLUMNS: &str =
    "class_path, name, description, kind, installed, enabled, hidden, suspended, id, created, last_updated";
const HOOK_COLUMNS: &str = "name, content_types, job, enabled, type_create, type_update, type_delete, id, created, \
    last_updated, conditions, changed_fields, webhook";
const BUTTON_COLUMNS: &str = "name, content_types, text, job, weight, group_name, button_class, confirmation, enabled, \
    id, created, last_updated";

fn job_of(row: &Row) -> Result<JobRecord, StorageFailure> {
    job_at(row, 0)
}

/// The job whose columns ([`JOB_COLUMNS`]) start at `at` in `row`.
pub(crate) fn job_at(row: &Row, at: usize) -> Result<JobRecord, StorageFailure> {
    let class_path: String = row.get(at);
    let kind: String = row.get(at + 3);
    let kind = kind_of(&kind).ok_or_else(|| corrupt("job", &class_path, format!("unknown kind `{kind}`")))?;
    Ok(JobRecord {
        name: row.get(at + 1),
        description: row.get(at + 2),
        kind,
        installed: row.get(at + 4),
        enabled: row.get(at + 5),
        hidden: row.get(at + 6),
        suspended: row
            .get::<_, Option<serde_json::Value>>(at + 7)
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| corrupt("job", &class_path, format!("bad suspension: {e}")))?,
        id: row.get(at + 8),
        created: row.get(at + 9),
        last_updated: row.get(at + 10),
        class_path,
    })
}

fn hook_of(row: &Row) -> Result<JobHook, StorageFailure> {
    let name: String = row.get(0);
    let types = content_types(row.get(1)).map_err(|reason| corrupt("job hook", &name, reason))?;
    let mut hook = JobHook::new(name, types, row.get::<_, String>(2));
    hook.enabled = row.get(3);
    hook.type_create = row.get(4);
    hook.type_update = row.get(5);
    hook.type_delete = row.get(6);
    hook.id = row.get(7);
    hook.created = row.get(8);
    hook.last_updated = row.get(9);
    if let Some(conditions) = row.get::<_, Option<serde_json::Value>>(10) {
        let conditions = jobhooks_model::Condition::from_json(&conditions)
            .map_err(|error| corrupt("job hook", &hook.name, error.to_string()))?;
        hook.conditions = Some(conditions);
    }
    hook.changed_fields = row.get(11);
    if let Some(webhook) = row.get::<_, Option<serde_json::Value>>(12) {
        let webhook = serde_json::from_value(webhook)
            .map_err(|error| corrupt("job hook", &hook.name, format!("bad webhook: {error}")))?;
        hook.webhook = Some(webhook);
    }
    Ok(hook)
}

fn button_of(row: &Row) -> Result<JobButton, StorageFailure> {
    let name: String = row.get(0);
    let types = content_types(row.get(1)).map_err(|reason| corrupt("job button", &name, reason))?;
    let class: String = row.get(6);
    let button_class =
        button_class_of(&class).ok_or_else(|| corrupt("job button", &name, format!("unknown class `{class}`")))?;
    let mut button = JobButton::new(name, types, row.get::<_, String>(2), row.get::<_, String>(3));
    button.weight = row.get(4);
    button.group_name = row.get(5);
    button.button_class = button_class;
    button.confirmation = row.get(7);
    button.enabled = row.get(8);
    button.id = row.get(9);
    button.created = row.get(10);
    button.last_updated = row.get(11);
    Ok(button)
}

/// A user's columns, in the order [`user_at`] reads them.
pub(crate) const USER_COLUMNS: &str = "username, is_superuser, permissions";

fn user_of(row: &Row) -> Result<User, StorageFailure> {
    user_at(row, 0)
}

/// The user whose columns ([`USER_COLUMNS`]) start at `at` in `row`.
pub(crate) fn user_at(row: &Row, at: usize) -> Result<User, StorageFailure> {
    let username: String = row.get(at);
    let records: Vec<PermissionRecord> = serde_json::from_value(row.get(at + 2))
        .map_err(|e| corrupt("user", &username, format!("its permissions do not decode: {e}")))?;
    let mut user = User::new(username.as_str()).map_err(|e| corrupt("user", &username, e))?;
    user.is_superuser = row.get(at + 1);
    user.permissions = permissions(records);
    Ok(user)
}

pub(crate) async fn jobs(client: &impl Db) -> Result<BTreeMap<String, JobRecord>, StorageFailure> {
    let rows = client
        .query(&format!("SELECT {JOB_COLUMNS} FROM jobhooks_jobs ORDER BY class_path"), &[])
        .await
        .map_err(db_error("cannot read the jobs"))?;
    rows.iter().map(|row| job_of(row).map(|job| (job.class_path.clone(), job))).collect()
}

pub(crate) async fn hooks(client: &impl Db) -> Result<BTreeMap<String, JobHook>, StorageFailure> {
    let rows = client
        .query(&format!("SELECT {HOOK_COLUMNS} FROM jobhooks_hooks ORDER BY name"), &[])
        .await
        .map_err(db_error("cannot read the job hooks"))?;
    rows.iter().map(|row| hook_of(row).map(|hook| (hook.name.clone(), hook))).collect()
}

/// The hooks on any of `content_types`, by name, and their jobs (those that exist), for matching
/// changes: one query.
pub(crate) async fn hooks_on(
    client: &impl Db,
    content_types: &[&str],
) -> Result<(Vec<JobHook>, Vec<JobRecord>), StorageFailure> {
    let rows = client
        .query(
            "SELECT h.name, h.content_types, h.job, h.enabled, h.type_create, h.type_update, h.type_delete,
                    h.id, h.created, h.last_updated, h.conditions, h.changed_fields, h.webhook,
                    j.class_path, j.name, j.description, j.kind, j.installed, j.enabled, j.hidden, j.suspended,
                    j.id, j.created, j.last_updated
             FROM jobhooks_hooks h LEFT JOIN jobhooks_jobs j ON j.class_path = h.job
             WHERE h.content_types && $1::text[] ORDER BY h.name",
            &[&content_types],
        )
        .await
        .map_err(db_error("cannot read the job hooks"))?;
    let mut hooks = Vec::with_capacity(rows.len());
    let mut jobs = Vec::new();
    for row in &rows {
        hooks.push(hook_of(row)?);
        if row.get::<_, Option<String>>(13).is_some() {
            jobs.push(job_at(row, 13)?);
        }
    }
    Ok((hooks, jobs))
}

/// The jobs `filter` admits: the query narrows by ids, names, class paths and flags; the rest of
/// the filter (searches, the parts of class paths) is checked on what it reads.
async fn jobs_where(client: &impl Db, filter: &jobhooks_model::JobFilter) -> Result<Vec<JobRecord>, StorageFailure> {
    let rows = client
        .query(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobhooks_jobs
                 WHERE (cardinality($1::uuid[]) = 0 OR id = ANY($1)) AND (cardinality($2::text[]) = 0 OR name = ANY($2))
                   AND (cardinality($3::text[]) = 0 OR class_path = ANY($3))
                   AND ($4::boolean IS NULL OR installed = $4) AND ($5::boolean IS NULL OR enabled = $5)
                   AND ($6::boolean IS NULL OR hidden = $6)"
            ),
            &[&filter.ids, &filter.names, &filter.class_paths, &filter.installed, &filter.enabled, &filter.hidden],
        )
        .await
        .map_err(db_error("cannot read the jobs"))?;
    let found: BTreeMap<String, JobRecord> =
        rows.iter().map(|row| job_of(row).map(|job| (job.class_path.clone(), job))).collect::<Result<_, _>>()?;
    Ok(found.into_values().filter(|job| filter.admits(job)).collect())
}

/// The hooks `filter` admits: the query narrows by ids, names, content types, jobs and `enabled`;
/// the rest is checked on what it reads.
async fn hooks_where(client: &impl Db, filter: &jobhooks_model::HookFilter) -> Result<Vec<JobHook>, StorageFailure> {
    let content_types: Vec<&str> = filter.content_types.iter().map(|content_type| content_type.as_str()).collect();
    let rows = client
        .query(
            &format!(
                "SELECT {HOOK_COLUMNS} FROM jobhooks_hooks
                 WHERE (cardinality($1::uuid[]) = 0 OR id = ANY($1)) AND (cardinality($2::text[]) = 0 OR name = ANY($2))
                   AND (cardinality($3::text[]) = 0 OR content_types && $3)
                   AND (cardinality($4::text[]) = 0 OR job = ANY($4)) AND ($5::boolean IS NULL OR enabled = $5)"
            ),
            &[&filter.ids, &filter.names, &content_types, &filter.jobs, &filter.enabled],
        )
        .await
        .map_err(db_error("cannot read the job hooks"))?;
    let found: BTreeMap<String, JobHook> =
        rows.iter().map(|row| hook_of(row).map(|hook| (hook.name.clone(), hook))).collect::<Result<_, _>>()?;
    Ok(found.into_values().filter(|hook| filter.admits(hook)).collect())
}

/// The buttons `filter` admits: the query narrows by ids, names, content types, jobs and
/// `enabled`; the rest is checked on what it reads.
async fn buttons_where(
    client: &impl Db,
    filter: &jobhooks_model::ButtonFilter,
) -> Result<Vec<JobButton>, StorageFailure> {
    let content_types: Vec<&str> = filter.content_types.iter().map(|content_type| content_type.as_str()).collect();
    let rows = client
        .query(
            &format!(
                "SELECT {BUTTON_COLUMNS} FROM jobhooks_buttons
                 WHERE (cardinality($1::uuid[]) = 0 OR id = ANY($1)) AND (cardinality($2::text[]) = 0 OR name = ANY($2))
                   AND (cardinality($3::text[]) = 0 OR content_types && $3)
                   AND (cardinality($4::text[]) = 0 OR job = ANY($4)) AND ($5::boolean IS NULL OR enabled = $5)"
            ),
            &[&filter.ids, &filter.names, &content_types, &filter.jobs, &filter.enabled],
        )
        .await
        .map_err(db_error("cannot read the job buttons"))?;
    let found: BTreeMap<String, JobButton> =
        rows.iter().map(|row| button_of(row).map(|button| (button.name.clone(), button))).collect::<Result<_, _>>()?;
    Ok(found.into_values().filter(|button| filter.admits(button)).collect())
}

pub(crate) async fn buttons(client: &impl Db) -> Result<BTreeMap<String, JobButton>, StorageFailure> {
    let rows = client
        .query(&format!("SELECT {BUTTON_COLUMNS} FROM jobhooks_buttons ORDER BY name"), &[])
        .await
        .map_err(db_error("cannot read the job buttons"))?;
    rows.iter().map(|row| button_of(row).map(|button| (button.name.clone(), button))).collect()
}

pub(crate) async fn job(client: &impl Db, class_path: &str) -> Result<Option<JobRecord>, StorageFailure> {
    let row = client
        .query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobhooks_jobs WHERE class_path = $1"), &[&class_path])
        .await
        .map_err(db_error("cannot read a job"))?;
    row.as_ref().map(job_of).transpose()
}

/// Writes a job sync's or a job restore's plan; returns its report.
/// The rows it writes are stamped as changed at `now`.
async fn apply<R>(client: &impl Db, plan: JobSyncPlan<R>, now: OffsetDateTime) -> Result<R, StorageFailure> {
    for class_path in &plan.removed_jobs {
        client
            .execute("DELETE FROM jobhooks_jobs WHERE class_path = $1", &[class_path])
            .await
            .map_err(db_error("cannot rename a job"))?;
    }
    for job in plan.jobs {
        put_job(client, &job.stamped(now)).await?;
    }
    for hook in plan.hooks {
        put_hook(client, &hook.stamped(now)).await?;
    }
    for button in plan.buttons {
        put_button(client, &button.stamped(now)).await?;
    }
    Ok(plan.report)
}

pub(crate) async fn put_job(client: &impl Db, job: &JobRecord) -> Result<(), StorageFailure> {
    let suspended = job.suspended.as_ref().map(|suspension| serde_json::json!(suspension));
    client
        .execute(
            "INSERT INTO jobhooks_jobs
                 (class_path, name, description, kind, installed, enabled, hidden, suspended, id, created, last_updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (class_path) DO UPDATE SET name = $2, description = $3, kind = $4, installed = $5,
                 enabled = $6, hidden = $7, suspended = $8, id = $9, created = $10, last_updated = $11",
            &[
                &job.class_path,
                &job.name,
                &job.description,
                &kind_name(job.kind),
                &job.installed,
                &job.enabled,
                &job.hidden,
                &suspended,
                &job.id,
                &job.created,
                &job.last_updated,
            ],
        )
        .await
        .map_err(db_error("cannot write a job"))?;
    Ok(())
}

pub(crate) async fn put_hook(client: &impl Db, hook: &JobHook) -> Result<(), StorageFailure> {
    client
        .execute(
            "INSERT INTO jobhooks_hooks (name, content_types, job, enabled, type_create, type_update, type_delete,
                 id, created, last_updated, conditions, changed_fields, webhook)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (name) DO UPDATE SET content_types = $2, job = $3, enabled = $4, type_create = $5,
                 type_update = $6, type_delete = $7, id = $8, created = $9, last_updated = $10, conditions = $11,
                 changed_fields = $12, webhook = $13",
            &[
                &hook.name,
                &content_type_names(&hook.content_types),
                &hook.job,
                &hook.enabled,
                &hook.type_create,
                &hook.type_update,
                &hook.type_delete,
                &hook.id,
                &hook.created,
                &hook.last_updated,
                &hook.conditions.as_ref().map(jobhooks_model::Condition::to_json),
                &hook.changed_fields,
                &hook.webhook.as_ref().map(|webhook| serde_json::to_value(webhook).unwrap_or_default()),
            ],
        )
        .await
        .map_err(db_error("cannot write a job hook"))?;
    Ok(())
}

pub(crate) async fn put_button(client: &impl Db, button: &JobButton) -> Result<(), StorageFailure> {
    client
        .execute(
            "INSERT INTO jobhooks_buttons (name, content_types, text, job, weight, group_name, button_class,
                 confirmation, enabled, id, created, last_updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (name) DO UPDATE SET content_types = $2, text = $3, job = $4, weight = $5,
                 group_name = $6, button_class = $7, confirmation = $8, enabled = $9, id = $10, created = $11,
                 last_updated = $12",
            &[
                &button.name,
                &content_type_names(&button.content_types),
                &button.text,
                &button.job,
                &button.weight,
                &button.group_name,
                &button.button_class.as_str(),
                &button.confirmation,
                &button.enabled,
                &button.id,
                &button.created,
                &button.last_updated,
            ],
        )
        .await
        .map_err(db_error("cannot write a job button"))?;
    Ok(())
}

async fn delete_row(client: &impl Db, table: &str, name: &str, context: &'static str) -> Result<u64, StorageFailure> {
    client.execute(&format!("DELETE FROM {table} WHERE name = $1"), &[&name]).await.map_err(db_error(context))
}

/// Runs `op` in a transaction that holds the catalog lock, and commits it when `op` succeeds.
macro_rules! in_catalog_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let value = {
            let $tx = &transaction;
            $tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK])
                .await
                .map_err(db_error("cannot take the catalog lock"))?;
            $body
        };
        transaction.commit().await.map_err(db_error("cannot commit a catalog write"))?;
        Ok(value)
    }};
}

#[async_trait::async_trait]
impl Catalog for PgStore {
    async fn sync_jobs(&self, linked: &[JobSpec], mode: SyncMode) -> Result<SyncReport, CatalogError> {
        let now = self.inner.clock.now();
        in_catalog_transaction!(self, |tx| {
            let (jobs, hooks, buttons) = (jobs(tx).await?, hooks(tx).await?, buttons(tx).await?);
            apply(tx, plan_job_sync(jobs.values(), hooks.values(), buttons.values(), linked, mode), now).await?
        })
    }

    async fn restore_jobs(&self, only: &[String]) -> Result<JobRestoreReport, CatalogError> {
        let now = self.inner.clock.now();
        in_catalog_transaction!(self, |tx| {
            let (jobs, hooks, buttons) = (jobs(tx).await?, hooks(tx).await?, buttons(tx).await?);
            apply(tx, plan_job_restore(jobs.values(), hooks.values(), buttons.values(), only), now).await?
        })
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>, StorageFailure> {
        Ok(jobs(&self.client().await?).await?.into_values().collect())
    }

    async fn find_jobs(&self, filter: &jobhooks_model::JobFilter) -> Result<Vec<JobRecord>, StorageFailure> {
        jobs_where(&self.client().await?, filter).await
    }

    async fn get_job(&self, class_path: &str) -> Result<Option<JobRecord>, StorageFailure> {
        job(&self.client().await?, class_path).await
    }

    async fn set_job_enabled(&self, class_path: &str, enabled: bool) -> Result<JobRecord, CatalogError> {
        let now = self.inner.clock.now();
        in_catalog_transaction!(self, |tx| {
            let stored = job(tx, class_path).await?.ok_or_else(|| CatalogError::not_found("job", class_path))?;
            let updated = JobRecord { enabled, ..stored }.stamped(now);
            put_job(tx, &updated).await?;
            updated
        })
    }

    async fn create_hook(&self, hook: JobHook) -> Result<JobHook, CatalogError> {
        let hook = hook.stamped(self.inner.clock.now());
        in_catalog_transaction!(self, |tx| {
            let others = hooks(tx).await?;
            let job = job(tx, &hook.job).await?;
            validate_hook(&hook, others.values(), job.as_ref())?;
            put_hook(tx, &hook).await?;
            hook
        })
    }

    async fn update_hook(&self, name: &str, patch: JobHookPatch) -> Result<JobHook, CatalogError> {
        let now = self.inner.clock.now();
        in_catalog_transaction!(self, |tx| {
            let others = hooks(tx).await?;
            let stored = others.get(name).ok_or_else(|| CatalogError::not_found("job hook", name))?;
            let hook = patch.apply_to(stored).stamped(now);
            let job = job(tx, &hook.job).await?;
            validate_hook(&hook, others.values().filter(|other| other.name != name), job.as_ref())?;
            delete_row(tx, "jobhooks_hooks", name, "cannot write a job hook").await?;
            put_hook(tx, &hook).await?;
            hook
        })
    }

    async fn delete_hook(&self, name: &str) -> Result<JobHook, CatalogError> {
        in_catalog_transaction!(self, |tx| {
            let stored = hooks(tx).await?.remove(name).ok_or_else(|| CatalogError::not_found("job hook", name))?;
            delete_row(tx, "jobhooks_hooks", name, "cannot delete a job hook").await?;
            stored
        })
    }

    async fn get_hook(&self, name: &str) -> Result<Option<JobHook>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {HOOK_COLUMNS} FROM jobhooks_hooks WHERE name = $1"), &[&name])
            .await
            .map_err(db_error("cannot read a job hook"))?;
        row.as_ref().map(hook_of).transpose()
    }

    async fn list_hooks(&self) -> Result<Vec<JobHook>, StorageFailure> {
        Ok(hooks(&self.client().await?).await?.into_values().collect())
    }

    async fn find_hooks(&self, filter: &jobhooks_model::HookFilter) -> Result<Vec<JobHook>, StorageFailure> {
        hooks_where(&self.client().await?, filter).await
    }

    async fn create_button(&self, button: JobButton) -> Result<JobButton, CatalogError> {
        let button = button.stamped(self.inner.clock.now());
        in_catalog_transaction!(self, |tx| {
            let existing = buttons(tx).await?;
            let job = job(tx, &button.job).await?;
            let others = existing.values().filter(|other| other.name == button.name || other.id == button.id);
            validate_button(&button, others, job.as_ref())?;
            put_button(tx, &button).await?;
            button
        })
    }

    async fn update_button(&self, name: &str, patch: JobButtonPatch) -> Result<JobButton, CatalogError> {
        let now = self.inner.clock.now();
        in_catalog_transaction!(self, |tx| {
            let existing = buttons(tx).await?;
            let stored = existing.get(name).ok_or_else(|| CatalogError::not_found("job button", name))?;
            let button = patch.apply_to(stored).stamped(now);
            let same_name = existing.get(&button.name).filter(|other| other.name != name);
            let job = job(tx, &button.job).await?;
            validate_button(&button, same_name, job.as_ref())?;
            delete_row(tx, "jobhooks_buttons", name, "cannot write a job button").await?;
            put_button(tx, &button).await?;
            button
        })
    }

    async fn delete_button(&self, name: &str) -> Result<JobButton, CatalogError> {
        in_catalog_transaction!(self, |tx| {
            let stored = buttons(tx).await?.remove(name).ok_or_else(|| CatalogError::not_found("job button", name))?;
            delete_row(tx, "jobhooks_buttons", name, "cannot delete a job button").await?;
            stored
        })
    }

    async fn get_button(&self, name: &str) -> Result<Option<JobButton>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {BUTTON_COLUMNS} FROM jobhooks_buttons WHERE name = $1"), &[&name])
            .await
            .map_err(db_error("cannot read a job button"))?;
        row.as_ref().map(button_of).transpose()
    }

    async fn list_buttons(&self) -> Result<Vec<JobButton>, StorageFailure> {
        Ok(buttons(&self.client().await?).await?.into_values().collect())
    }

    async fn find_buttons(&self, filter: &jobhooks_model::ButtonFilter) -> Result<Vec<JobButton>, StorageFailure> {
        buttons_where(&self.client().await?, filter).await
    }

    async fn put_user(&self, user: User) -> Result<(), CatalogError> {
        validate_name("username", &user.username)?;
        let permissions = serde_json::to_value(permission_records(&user.permissions)).map_err(|e| {
            StorageFailure::Backend(jobhooks_model::BackendError::new("cannot encode a user's permissions", e))
        })?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO jobhooks_users (username, is_superuser, permissions) VALUES ($1, $2, $3)
                 ON CONFLICT (username) DO UPDATE SET is_superuser = $2, permissions = $3",
                &[&user.username, &user.is_superuser, &permissions],
            )
            .await
            .map_err(db_error("cannot write a user"))?;
        Ok(())
    }

    async fn get_user(&self, username: &str) -> Result<Option<User>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {USER_COLUMNS} FROM jobhooks_users WHERE username = $1"), &[&username])
            .await
            .map_err(db_error("cannot read a user"))?;
        row.as_ref().map(user_of).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StorageFailure> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {USER_COLUMNS} FROM jobhooks_users ORDER BY username"), &[])
            .await
            .map_err(db_error("cannot read the users"))?;
        rows.iter().map(user_of).collect()
    }

    async fn add_token(&self, token: ApiToken) -> Result<(), CatalogError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let row = transaction
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM jobhooks_users WHERE username = $1 FOR SHARE),
                        EXISTS (SELECT 1 FROM jobhooks_tokens WHERE id = $2)",
                &[&token.user, &token.id],
            )
            .await
            .map_err(db_error("cannot read the token's user"))?;
        validate_new_token(&token, row.get(0), row.get(1))?;
        insert_token(&transaction, &token).await?;
        transaction.commit().await.map_err(db_error("cannot write a token"))?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {TOKEN_COLUMNS} FROM jobhooks_tokens WHERE id = $1"), &[&id])
            .await
            .map_err(db_error("cannot read a token"))?;
        Ok(row.as_ref().map(token_of))
    }

    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StorageFailure> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM jobhooks_tokens WHERE ($1::text IS NULL OR username = $1)
                     ORDER BY created, id"
                ),
                &[&user],
            )
            .await
            .map_err(db_error("cannot read the tokens"))?;
        Ok(rows.iter().map(token_of).collect())
    }

    async fn delete_token(&self, id: &str) -> Result<ApiToken, CatalogError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("DELETE FROM jobhooks_tokens WHERE id = $1 RETURNING {TOKEN_COLUMNS}"), &[&id])
            .await
            .map_err(db_error("cannot revoke a token"))?;
        row.as_ref().map(token_of).ok_or_else(|| CatalogError::NotFound { kind: "token", key: id.to_owned() })
    }
}

/// Writes `token`'s row (for a new token, and for a restored one).
pub(crate) async fn insert_token(client: &impl Db, token: &ApiToken) -> Result<(), StorageFailure> {
    client
        .execute(
            &format!("INSERT INTO jobhooks_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                &token.id,
                &token.user,
                &token.key_hash,
                &token.created,
                &token.expires,
                &token.description,
                &token.write_enabled,
            ],
        )
        .await
        .map_err(db_error("cannot write a token"))?;
    Ok(())
}

const TOKEN_COLUMNS: &str = "id, username, key_hash, created, expires, description, write_enabled";

fn token_of(row: &Row) -> ApiToken {
    ApiToken {
        id: row.get(0),
        user: row.get(1),
        key_hash: row.get(2),
        created: row.get(3),
        expires: row.get(4),
        description: row.get(5),
        write_enabled: row.get(6),
    }
}
