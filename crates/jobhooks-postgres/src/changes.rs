//! The change log, the object repository and the outbox: a commit writes its changes, the objects
//! and one queued run per matching hook in the transaction it is given.

use std::collections::HashMap;

use jobhooks_model::ports::{ChangeStore, CommitReceipt, ObjectReader, ObjectWrites};
use jobhooks_model::{
    Action, ChangeContext, ChangeError, ChangeId, ChangeSet, ContentType, JobInputs, JobRecord, JobStatus, Object,
    ObjectChange, ObjectRef, OffsetDateTime, RunId, StorageFailure, match_hooks,
};
use tokio_postgres::Row;

use crate::db::Db;
use uuid::Uuid;

use crate::lines::{self, UNFINISHED};
use crate::records::{action_name, action_of, context_name, context_of, corrupt, line_key, status_name};
use crate::{PgStore, WORK_CHANNEL, catalog, db_error};

/// A change's columns, then the data of the object's change before it (its prechange).
const CHANGE_COLUMNS: &str = "c.id, c.time, c.user_id, c.user_name, c.request_id, c.action, c.content_type, \
     c.object_id, c.related_type, c.related_id, c.object_repr, c.object_data, c.prechange, c.change_context, \
     c.change_context_detail, (SELECT p.object_data FROM jobhooks_changes p WHERE p.content_type = c.content_type \
     AND p.object_id = c.object_id AND p.id < c.id ORDER BY p.id DESC LIMIT 1)";

fn change_of(row: &Row) -> Result<ObjectChange, StorageFailure> {
    let id: i64 = row.get(0);
    let bad = |reason: String| corrupt("change", id, reason);
    let action: String = row.get(5);
    let action = action_of(&action).ok_or_else(|| bad(format!("unknown action `{action}`")))?;
    let changed_object_type = ContentType::new(row.get::<_, String>(6)).map_err(|e| bad(e.to_string()))?;
    let changed_object_id: String = row.get(7);
    ObjectRef::new(changed_object_type.clone(), changed_object_id.as_str()).map_err(|e| bad(e.to_string()))?;
    let related_object = match (row.get::<_, Option<String>>(8), row.get::<_, Option<String>>(9)) {
        (Some(content_type), Some(id)) => {
            let content_type = ContentType::new(content_type).map_err(|e| bad(e.to_string()))?;
            Some(ObjectRef::new(content_type, id).map_err(|e| bad(e.to_string()))?)
        }
        _ => None,
    };
    let context: String = row.get(13);
    let change_context = context_of(&context).ok_or_else(|| bad(format!("unknown change context `{context}`")))?;
    let stored_prechange: Option<serde_json::Value> = row.get(12);
    let previous: Option<serde_json::Value> = row.get(15);
    Ok(ObjectChange {
        id: ChangeId(id as u64),
        time: row.get(1),
        user: row.get(2),
        user_name: row.get(3),
        request_id: row.get(4),
        action,
        changed_object_type,
        changed_object_id,
        related_object,
        object_repr: row.get(10),
        object_data: row.get(11),
        prechange: previous.or(stored_prechange),
        change_context,
        change_context_detail: row.get(14),
    })
}

/// Where an object's columns start in a row of [`CHANGE_COLUMNS`] followed by an object's.
const OBJECT_AFTER_CHANGE: usize = 16;

fn object_of(row: &Row) -> Result<Object, StorageFailure> {
    object_at(row, 0)
}

/// The object in `row` whose four columns (content type, id, repr, data) start at `first`.
fn object_at(row: &Row, first: usize) -> Result<Object, StorageFailure> {
    let (content_type, id): (String, String) = (row.get(first), row.get(first + 1));
    let bad = |reason: String| corrupt("object", format!("{content_type} {id}"), reason);
    let reference =
        ObjectRef::new(ContentType::new(content_type.as_str()).map_err(|e| bad(e.to_string()))?, id.as_str())
            .map_err(|e| bad(e.to_string()))?;
    Object::new(reference, row.get::<_, String>(first + 2), row.get::<_, serde_json::Value>(first + 3))
        .map_err(|e| bad(e.to_string()))
}

/// Writes the changes of one change context, the objects (with [`ObjectWrites::Apply`]) and the
/// hook runs they trigger through `client`, which is a transaction: the caller commits it.
pub(crate) async fn stage_changes(
    client: &impl Db,
    now: OffsetDateTime,
    context: &ChangeContext,
    changes: ChangeSet,
    objects: ObjectWrites,
) -> Result<CommitReceipt, ChangeError> {
    // The hooks first: the runs each change triggers, so that the object lines the runs join are
    // locked at once, in the one order every writer follows, before any run is written.
    let changes = changes.into_changes();
    let mut hooks_by_type = HashMap::new();
    for pending in &changes {
        let content_type = pending.object.content_type().as_str();
        if !hooks_by_type.contains_key(content_type) {
            let (hooks, jobs) = catalog::hooks_on(client, content_type).await?;
            let jobs: HashMap<String, JobRecord> = jobs.into_iter().map(|job| (job.class_path.clone(), job)).collect();
            hooks_by_type.insert(content_type.to_owned(), (hooks, jobs));
        }
    }
    let matched: Vec<_> = changes
        .iter()
        .map(|pending| {
            let (hooks, jobs) = &hooks_by_type[pending.object.content_type().as_str()];
            match_hooks(context.kind, pending.object.content_type(), pending.action, hooks, |job| jobs.get(job))
        })
        .collect();
    let lines: Vec<String> = changes
        .iter()
        .zip(&matched)
        .filter(|(_, matches)| !matches.run.is_empty())
        .map(|(pending, _)| line_key(&pending.object))
        .collect();
    lines::lock(client, lines.iter().map(String::as_str)).await?;
    let mut receipt = CommitReceipt::default();
    for (pending, matches) in changes.into_iter().zip(matched) {
        let mut change = ObjectChange::from_pending(ChangeId(0), now, context, pending, None);
        let reference = change.object_ref();
        let (content_type, object_id) = (reference.content_type().as_str(), reference.id());
        change.id = insert_change(client, None, &change).await?;
        for hook in &matches.skipped {
            let (name, job) = (&hook.name, &hook.job);
            tracing::warn!(
                hook = %name, job = %job, change = %change.id,
                "JobHook {name} is enabled, but the underlying Job {job} is not installed and enabled"
            );
        }
        let line = line_key(&reference);
        let inputs = JobInputs::Hook { object_change: change.id };
        // The runs and the object are written at once: the client pipelines their statements.
        let runs = async {
            let mut runs = Vec::with_capacity(matches.run.len());
            for hook in &matches.run {
                runs.push(insert_run(client, &hook.job, context.user.as_deref(), &inputs, Some(&line), now).await?);
            }
            Ok::<_, StorageFailure>(runs)
        };
        let object = write_object(client, objects, &change, content_type, object_id);
        let (runs, object) = tokio::join!(runs, object);
        object?;
        receipt.runs.extend(runs?);
        receipt.changes.push(change.id);
    }
    Ok(receipt)
}

/// Records `change` under `id`, or under the next id when `None`. As Nautobot finds a prechange
/// (from the object's change before), only the first change of an object keeps the one it
/// carries.
pub(crate) async fn insert_change(
    client: &impl Db,
    id: Option<ChangeId>,
    change: &ObjectChange,
) -> Result<ChangeId, StorageFailure> {
    let reference = change.object_ref();
    let related = change.related_object.as_ref();
    let id: i64 = client
        .query_one(
            "INSERT INTO jobhooks_changes (id, time, user_id, user_name, request_id, action, content_type,
                 object_id, related_type, related_id, object_repr, object_data, prechange, change_context,
                 change_context_detail)
             VALUES (COALESCE($15::bigint, nextval('jobhooks_change_ids')), $1, $2, $3, $4, $5, $6, $7, $8, $9,
                 $10, $11,
                 CASE WHEN EXISTS (SELECT 1 FROM jobhooks_changes
                                   WHERE content_type = $6 AND object_id = $7) THEN NULL
                      ELSE $12::jsonb END,
                 $13, $14)
             RETURNING id",
            &[
                &change.time,
                &change.user,
                &change.user_name,
                &change.request_id,
                &action_name(change.action),
                &reference.content_type().as_str(),
                &reference.id(),
                &related.map(|r| r.content_type().as_str()),
                &related.map(ObjectRef::id),
                &change.object_repr,
                &change.object_data,
                &change.prechange,
                &context_name(change.change_context),
                &change.change_context_detail,
                &id.map(|id| id.0 as i64),
            ],
        )
        .await
        .map_err(db_error("cannot record a change"))?
        .get(0);
    Ok(ChangeId(id as u64))
}

/// Writes the object a change leaves into the repository (with [`ObjectWrites::Apply`]).
async fn write_object(
    client: &impl Db,
    objects: ObjectWrites,
    change: &ObjectChange,
    content_type: &str,
    object_id: &str,
) -> Result<(), StorageFailure> {
    match (objects, change.action) {
        (ObjectWrites::RecordOnly, _) => {}
        (ObjectWrites::Apply, Action::Delete) => {
            client
                .execute(
                    "DELETE FROM jobhooks_objects WHERE content_type = $1 AND object_id = $2",
                    &[&content_type, &object_id],
                )
                .await
                .map_err(db_error("cannot remove an object"))?;
        }
        (ObjectWrites::Apply, Action::Create | Action::Update) => {
            client
                .execute(
                    "INSERT INTO jobhooks_objects (content_type, object_id, repr, data) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (content_type, object_id) DO UPDATE SET repr = $3, data = $4",
                    &[&content_type, &object_id, &change.object_repr, &change.object_data],
                )
                .await
                .map_err(db_error("cannot write an object"))?;
        }
    }
    Ok(())
}

/// Queues one run of `job` at the back of `line` (none: no line) with a pending result. The
/// caller holds the line's lock (`lines::lock`): whether the run is its line's head is decided here.
pub(crate) async fn insert_run(
    client: &impl Db,
    job: &str,
    user: Option<&str>,
    inputs: &JobInputs,
    line: Option<&str>,
    now: OffsetDateTime,
) -> Result<RunId, StorageFailure> {
    let (change_id, object_pk, object_model_name) = match inputs {
        JobInputs::Hook { object_change } => (Some(object_change.0 as i64), None, None),
        JobInputs::Button { object_pk, object_model_name } => {
            (None, Some(object_pk.as_str()), Some(object_model_name.as_str()))
        }
    };
    let row = client
        .query_one(
            &format!(
                "INSERT INTO jobhooks_runs (id, job, user_id, change_id, object_pk, object_model_name, status,
                     attempts, leases, created, logs, line, place, head)
                 VALUES (nextval('jobhooks_run_ids'), $1, $2, $3, $4, $5, $6, 0, 0, $7, '[]', $8,
                     nextval('jobhooks_line_places'),
                     $8::text IS NULL OR NOT EXISTS (SELECT 1 FROM jobhooks_runs
                                                     WHERE line = $8 AND status IN {UNFINISHED}))
                 RETURNING id"
            ),
            &[&job, &user, &change_id, &object_pk, &object_model_name, &status_name(JobStatus::Pending), &now, &line],
        )
        .await
        .map_err(db_error("cannot queue a run"))?;
    Ok(RunId(row.get::<_, i64>(0) as u64))
}

impl PgStore {
    /// Records the changes of one change context inside the caller's own `transaction`: the
    /// changes, the objects (with [`ObjectWrites::Apply`]) and the hook runs they trigger commit
    /// or roll back with the caller's own writes. The dispatchers are notified when it commits.
    ///
    /// This is what an application that keeps its objects in the same PostgreSQL database uses:
    /// its write and the hook runs it triggers can never be separated.
    pub async fn commit_in(
        &self,
        transaction: &tokio_postgres::Transaction<'_>,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, ChangeError> {
        let receipt = stage_changes(transaction, self.now(), context, changes, objects).await?;
        // Sent when (and only if) the caller's transaction commits.
        if !receipt.runs.is_empty() {
            transaction
                .execute("SELECT pg_notify($1, '')", &[&WORK_CHANNEL])
                .await
                .map_err(db_error("cannot notify the dispatchers"))?;
        }
        Ok(receipt)
    }

    async fn query_changes(
        &self,
        condition: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {CHANGE_COLUMNS} FROM jobhooks_changes c WHERE {condition}"), params)
            .await
            .map_err(db_error("cannot read changes"))?;
        rows.iter().map(change_of).collect()
    }
}

#[async_trait::async_trait]
impl ObjectReader for PgStore {
    async fn get_object(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT content_type, object_id, repr, data FROM jobhooks_objects
                 WHERE content_type = $1 AND object_id = $2",
                &[&reference.content_type().as_str(), &reference.id()],
            )
            .await
            .map_err(db_error("cannot read an object"))?;
        row.as_ref().map(object_of).transpose()
    }
}

#[async_trait::async_trait]
impl ChangeStore for PgStore {
    async fn commit(
        &self,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, ChangeError> {
        if changes.is_empty() {
            return Ok(CommitReceipt::default());
        }
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db_error("cannot begin a transaction"))?;
        let receipt = stage_changes(&transaction, self.now(), context, changes, objects).await?;
        transaction.commit().await.map_err(db_error("cannot commit changes"))?;
        if !receipt.runs.is_empty() {
            self.work_ready();
        }
        Ok(receipt)
    }

    async fn get_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StorageFailure> {
        Ok(self.query_changes("c.id = $1", &[&(id.0 as i64)]).await?.pop())
    }

    async fn get_change_and_object(
        &self,
        id: ChangeId,
    ) -> Result<Option<(ObjectChange, Option<Object>)>, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CHANGE_COLUMNS}, o.content_type, o.object_id, o.repr, o.data
                     FROM jobhooks_changes c LEFT JOIN jobhooks_objects o
                       ON o.content_type = c.content_type AND o.object_id = c.object_id
                     WHERE c.id = $1"
                ),
                &[&(id.0 as i64)],
            )
            .await
            .map_err(db_error("cannot read a change and its object"))?;
        let Some(row) = row else { return Ok(None) };
        let change = change_of(&row)?;
        let object = match row.get::<_, Option<String>>(OBJECT_AFTER_CHANGE) {
            Some(_) => Some(object_at(&row, OBJECT_AFTER_CHANGE)?),
            None => None,
        };
        Ok(Some((change, object)))
    }

    async fn changes_for_object(&self, object: &ObjectRef, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_changes(
            "c.content_type = $1 AND c.object_id = $2 ORDER BY c.id DESC LIMIT $3",
            &[&object.content_type().as_str(), &object.id(), &limit],
        )
        .await
    }

    async fn changes_for_request(&self, request_id: Uuid) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.query_changes("c.request_id = $1 ORDER BY c.id", &[&request_id]).await
    }

    async fn changes_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_changes("c.time >= $1 AND c.time < $2 ORDER BY c.id LIMIT $3", &[&from, &to, &limit]).await
    }

    async fn list_objects(&self, content_type: &ContentType) -> Result<Vec<Object>, StorageFailure> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT content_type, object_id, repr, data FROM jobhooks_objects WHERE content_type = $1
                 ORDER BY object_id COLLATE \"C\"",
                &[&content_type.as_str()],
            )
            .await
            .map_err(db_error("cannot read objects"))?;
        rows.iter().map(object_of).collect()
    }

    async fn latest_changes(&self, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_changes("TRUE ORDER BY c.id DESC LIMIT $1", &[&limit]).await
    }

    async fn count_changes(&self) -> Result<u64, StorageFailure> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM jobhooks_changes", &[])
            .await
            .map_err(db_error("cannot count changes"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }
}
