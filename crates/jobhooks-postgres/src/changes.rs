//! The change log, the object repository and the outbox: a commit writes its changes, the objects
//! and one queued run per matching hook in the transaction it is given.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use jobhooks_model::ports::{ChangePage, ChangeStore, CommitReceipt, ObjectReader, ObjectWrites};
use jobhooks_model::{
    Action, BackendError, ChangeContext, ChangeError, ChangeId, ChangeSet, ContentType, HookMatcher, JobInputs,
    JobRecord, JobStatus, Object, ObjectChange, ObjectRef, OffsetDateTime, PendingChange, RunId, StorageFailure,
};
use tokio_postgres::Row;

use crate::db::{Db, Pipelined};
use uuid::Uuid;

use crate::lines::{self, UNFINISHED};
use crate::records::{action_name, action_of, context_name, context_of, corrupt, line_key, status_name};
use crate::{ANNOUNCE, PgStore, WORK_CHANNEL, catalog, db_error};

/// A change's columns, then the data of the object's change before it (its prechange).
pub(crate) const CHANGE_COLUMNS: &str = "c.id, c.time, c.user_id, c.user_name, c.request_id, c.action, c.content_type, \
     c.object_id, c.related_type, c.related_id, c.object_repr, c.object_data, c.prechange, c.change_context, \
     c.change_context_detail, (SELECT p.object_data FROM jobhooks_changes p WHERE p.content_type = c.content_type \
     AND p.object_id = c.object_id AND p.id < c.id ORDER BY p.id DESC LIMIT 1)";

fn change_of(row: &Row) -> Result<ObjectChange, StorageFailure> {
    change_at(row, 0)
}

/// The change whose columns ([`CHANGE_COLUMNS`]) start at `first` in `row`.
fn change_at(row: &Row, first: usize) -> Result<ObjectChange, StorageFailure> {
    let id: i64 = row.get(first);
    let bad = |reason: String| corrupt("change", id, reason);
    let action: String = row.get(first + 5);
    let action = action_of(&action).ok_or_else(|| bad(format!("unknown action `{action}`")))?;
    let changed_object_type = ContentType::new(row.get::<_, String>(first + 6)).map_err(|e| bad(e.to_string()))?;
    let changed_object_id: String = row.get(first + 7);
    ObjectRef::new(changed_object_type.clone(), changed_object_id.as_str()).map_err(|e| bad(e.to_string()))?;
    let related_object = match (row.get::<_, Option<String>>(first + 8), row.get::<_, Option<String>>(first + 9)) {
        (Some(content_type), Some(id)) => {
            let content_type = ContentType::new(content_type).map_err(|e| bad(e.to_string()))?;
            Some(ObjectRef::new(content_type, id).map_err(|e| bad(e.to_string()))?)
        }
        _ => None,
    };
    let context: String = row.get(first + 13);
    let change_context = context_of(&context).ok_or_else(|| bad(format!("unknown change context `{context}`")))?;
    let stored_prechange: Option<serde_json::Value> = row.get(first + 12);
    let previous: Option<serde_json::Value> = row.get(first + 15);
    Ok(ObjectChange {
        id: ChangeId(id as u64),
        time: row.get(first + 1),
        user: row.get(first + 2),
        user_name: row.get(first + 3),
        request_id: row.get(first + 4),
        action,
        changed_object_type,
        changed_object_id,
        related_object,
        object_repr: row.get(first + 10),
        object_data: row.get(first + 11),
        prechange: previous.or(stored_prechange),
        change_context,
        change_context_detail: row.get(first + 14),
    })
}

/// Where an object's columns start in a row of [`CHANGE_COLUMNS`] followed by an object's.
pub(crate) const OBJECT_AFTER_CHANGE: usize = 16;

/// The columns of the object `o` read with a change `c` (see [`change_and_object_at`]): its data
/// only when it differs from the change's, which it equals unless the object changed since. A
/// claim reads one JSON document less per run, and the client decodes one less.
pub(crate) const OBJECT_WITH_CHANGE: &str =
    "o.content_type, o.object_id, o.repr, CASE WHEN o.data = c.object_data THEN NULL ELSE o.data END";

/// A row of [`CHANGE_COLUMNS`] followed by the columns of the object (null when there is none).
fn change_and_object_of(row: &Row) -> Result<(ObjectChange, Option<Object>), StorageFailure> {
    change_and_object_at(row, 0)
}

/// [`CHANGE_COLUMNS`] and an object's columns, starting at `first` in `row`.
pub(crate) fn change_and_object_at(row: &Row, first: usize) -> Result<(ObjectChange, Option<Object>), StorageFailure> {
    let change = change_at(row, first)?;
    let at = first + OBJECT_AFTER_CHANGE;
    let object = match row.get::<_, Option<String>>(at) {
        Some(_) => {
            let data = match row.get::<_, Option<serde_json::Value>>(at + 3) {
                Some(data) => data,
                None => change.object_data.clone(),
            };
            Some(object_from(row, at, data)?)
        }
        None => None,
    };
    Ok((change, object))
}

fn object_of(row: &Row) -> Result<Object, StorageFailure> {
    object_at(row, 0)
}

/// The object in `row` whose four columns (content type, id, repr, data) start at `first`.
fn object_at(row: &Row, first: usize) -> Result<Object, StorageFailure> {
    object_from(row, first, row.get::<_, serde_json::Value>(first + 3))
}

/// The object whose content type, id and repr start at `first` in `row`, with `data`.
fn object_from(row: &Row, first: usize, data: serde_json::Value) -> Result<Object, StorageFailure> {
    let (content_type, id): (String, String) = (row.get(first), row.get(first + 1));
    let bad = |reason: String| corrupt("object", format!("{content_type} {id}"), reason);
    let reference =
        ObjectRef::new(ContentType::new(content_type.as_str()).map_err(|e| bad(e.to_string()))?, id.as_str())
            .map_err(|e| bad(e.to_string()))?;
    Object::new(reference, row.get::<_, String>(first + 2), data).map_err(|e| bad(e.to_string()))
}

/// One commit: a change context's changes, and whether they write the objects.
pub(crate) struct Commit {
    pub(crate) context: ChangeContext,
    pub(crate) changes: ChangeSet,
    pub(crate) objects: ObjectWrites,
}

/// Writes the changes of `commits`, the objects they apply and the hook runs they trigger through
/// `client`, which is a transaction: the caller commits it. Two round trips whatever the number of
/// commits: the hooks read, the lines locked and the change ids taken together, then the changes,
/// the runs and the objects each written in one statement, together. The receipts are in the order
/// of `commits`.
pub(crate) async fn stage_commits(
    client: &impl Db,
    now: OffsetDateTime,
    commits: &[Commit],
) -> Result<Vec<CommitReceipt>, ChangeError> {
    Ok(stage(client, None, now, commits).await?.0)
}

/// Writes `commits` as [`stage_commits`] does, in `transaction`, which it begins with the first
/// round trip and commits with the second: two round trips in all. When the commits queued runs,
/// the `NOTIFY` that announces them follows the `COMMIT` in the same round trip; the second value
/// says whether it was sent (false: no runs, or the notification failed after the commit). On an
/// error the transaction may still be open; the caller rolls it back.
pub(crate) async fn commit_alone(
    transaction: &Pipelined,
    now: OffsetDateTime,
    commits: &[Commit],
) -> Result<(Vec<CommitReceipt>, bool), ChangeError> {
    stage(transaction, Some(transaction), now, commits).await
}

/// [`stage_commits`], in `own` when it is given: begun with the first round trip, committed (and
/// announced) with the second.
async fn stage(
    client: &impl Db,
    own: Option<&Pipelined>,
    now: OffsetDateTime,
    commits: &[Commit],
) -> Result<(Vec<CommitReceipt>, bool), ChangeError> {
    let pending: Vec<(usize, &PendingChange)> = commits
        .iter()
        .enumerate()
        .flat_map(|(index, commit)| commit.changes.changes().iter().map(move |change| (index, change)))
        .collect();
    let mut content_types: Vec<&str> =
        pending.iter().map(|(_, change)| change.object.content_type().as_str()).collect();
    content_types.sort_unstable();
    content_types.dedup();
    // Every changed object's line is locked, in the one order every writer follows, before
    // anything is written: the runs' places in their lines are decided under it, and two groups
    // writing the same objects wait for each other here rather than in a cycle on their rows.
    let line_keys: Vec<String> = pending.iter().map(|(_, change)| line_key(&change.object)).collect();
    let begin = async {
        match own {
            Some(transaction) => transaction.begin().await.map_err(db_error("cannot begin a transaction")),
            None => Ok(()),
        }
    };
    let (begun, hooks, locked, ids) = tokio::join!(
        begin,
        catalog::hooks_on(client, &content_types),
        lines::lock(client, line_keys.iter().map(String::as_str)),
        change_ids(client, pending.len())
    );
    begun?;
    let (hooks, jobs) = hooks?;
    locked?;
    let ids = ids?;
    if ids.len() != pending.len() {
        return Err(
            StorageFailure::Backend(BackendError::message("PostgreSQL gave fewer change ids than asked for")).into()
        );
    }
    let jobs: HashMap<&str, &JobRecord> = jobs.iter().map(|job| (job.class_path.as_str(), job)).collect();
    let matcher = HookMatcher::new(&hooks);
    let mut staged = Vec::with_capacity(pending.len());
    let mut matched = Vec::with_capacity(pending.len());
    for ((index, change), id) in pending.into_iter().zip(ids) {
        let context = &commits[index].context;
        let record = ObjectChange::from_pending(id, now, context, change.clone(), None);
        let matches = matcher.matches(context.kind, &record, |job| jobs.get(job).copied());
        for hook in &matches.skipped {
            let (name, job) = (&hook.name, &hook.job);
            tracing::warn!(
                hook = %name, job = %job, change = %id,
                "JobHook {name} is enabled, but the underlying Job {job} is not installed and enabled"
            );
        }
        staged.push((index, record));
        matched.push(matches.run);
    }
    let mut receipts = vec![CommitReceipt::default(); commits.len()];
    let mut changes = ChangeRows::default();
    let mut runs = RunRows::default();
    let mut run_commits = Vec::new();
    let mut objects = ObjectRows::default();
    let mut seen_objects = HashSet::new();
    for (((index, change), hooks), line) in staged.iter().zip(&matched).zip(&line_keys) {
        // As Nautobot finds a prechange (from the object's change before), only the first change
        // of an object keeps the one it carries.
        changes.push(change, seen_objects.insert(line.as_str()));
        let user = commits[*index].context.user.as_deref();
        for hook in hooks {
            // A webhook's run keeps its hook, which says where to send.
            let webhook = hook.webhook.as_ref().map(|_| hook.id);
            runs.push(&hook.job, user, RunInputs::Hook(change.id, webhook), Some(line));
            run_commits.push(*index);
        }
        if commits[*index].objects == ObjectWrites::Apply {
            objects.push(change);
        }
        receipts[*index].changes.push(change.id);
    }
    // The three writes are independent: the client pipelines them, with the COMMIT of a
    // transaction of their own and, when it queued runs, the notification that announces them
    // (a transaction of its own after the COMMIT, see `ANNOUNCE`).
    let announce = own.is_some() && !run_commits.is_empty();
    let commit = async {
        match own {
            Some(transaction) => {
                let (committed, announced) = tokio::join!(transaction.commit(), async {
                    if announce { Some(transaction.execute(ANNOUNCE, &[&WORK_CHANNEL]).await) } else { None }
                });
                committed.map_err(db_error("cannot commit changes"))?;
                Ok::<bool, StorageFailure>(announced.is_some_and(|announced| announced.is_ok()))
            }
            None => Ok(false),
        }
    };
    if let Some(transaction) = own {
        transaction.prepare(&write_statements()).await.map_err(db_error("cannot prepare the writes"))?;
    }
    let (changes, run_ids, objects, committed) =
        tokio::join!(changes.insert(client), runs.insert(client, now), objects.write(client), commit);
    changes?;
    objects?;
    let run_ids = run_ids?;
    let announced = committed?;
    for (index, run) in run_commits.into_iter().zip(run_ids) {
        receipts[index].runs.push(run);
    }
    Ok((receipts, announced))
}

/// Takes `count` change ids in one statement, in ascending order (a statement does not promise
/// the order in which it calls `nextval`; the changes of a commit are numbered in their order).
pub(crate) async fn change_ids(client: &impl Db, count: usize) -> Result<Vec<ChangeId>, StorageFailure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let row = client
        .query_one(
            "SELECT ARRAY(SELECT nextval('jobhooks_change_ids') FROM generate_series(1, $1))",
            &[&i32::try_from(count).unwrap_or(i32::MAX)],
        )
        .await
        .map_err(db_error("cannot number the changes"))?;
    let mut ids: Vec<i64> = row.get(0);
    ids.sort_unstable();
    Ok(ids.into_iter().map(|id| ChangeId(id as u64)).collect())
}

/// Inserts changes given column by column; a change keeps the prechange it carries only when it is
/// the first of its object in the statement and the log holds no change of its object.
const INSERT_CHANGES: &str =
    "INSERT INTO jobhooks_changes (id, time, user_id, user_name, request_id, action, content_type,
         object_id, related_type, related_id, object_repr, object_data, prechange, change_context,
         change_context_detail)
     SELECT u.id, u.time, u.user_id, u.user_name, u.request_id, u.action, u.content_type, u.object_id,
         u.related_type, u.related_id, u.object_repr, u.object_data,
         CASE WHEN u.first AND earlier.id IS NULL THEN u.prechange END,
         u.change_context, u.change_context_detail
     FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::uuid[], $6::text[],
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::jsonb[],
         $14::boolean[], $15::text[], $16::text[])
       AS u(id, time, user_id, user_name, request_id, action, content_type, object_id, related_type,
         related_id, object_repr, object_data, prechange, first, change_context, change_context_detail)
     -- One index probe per change (a subquery here may be planned as a hash of the whole log).
     LEFT JOIN LATERAL (SELECT p.id FROM jobhooks_changes p
                        WHERE p.content_type = u.content_type AND p.object_id = u.object_id
                        LIMIT 1) earlier ON true";

/// Changes to insert, column by column, written in one statement.
#[derive(Default)]
pub(crate) struct ChangeRows<'a> {
    ids: Vec<i64>,
    times: Vec<OffsetDateTime>,
    user_ids: Vec<Option<&'a str>>,
    user_names: Vec<&'a str>,
    request_ids: Vec<Uuid>,
    actions: Vec<&'static str>,
    content_types: Vec<&'a str>,
    object_ids: Vec<&'a str>,
    related_types: Vec<Option<&'a str>>,
    related_ids: Vec<Option<&'a str>>,
    reprs: Vec<&'a str>,
    data: Vec<&'a serde_json::Value>,
    prechanges: Vec<Option<&'a serde_json::Value>>,
    firsts: Vec<bool>,
    contexts: Vec<&'static str>,
    details: Vec<&'a str>,
}

impl<'a> ChangeRows<'a> {
    /// Adds `change` under its id. `first_of_object` says that no change before it in these rows
    /// is of its object: only then may it keep its prechange, when the store holds no change of
    /// the object either.
    pub(crate) fn push(&mut self, change: &'a ObjectChange, first_of_object: bool) {
        let related = change.related_object.as_ref();
        self.ids.push(change.id.0 as i64);
        self.times.push(change.time);
        self.user_ids.push(change.user.as_deref());
        self.user_names.push(&change.user_name);
        self.request_ids.push(change.request_id);
        self.actions.push(action_name(change.action));
        self.content_types.push(change.changed_object_type.as_str());
        self.object_ids.push(&change.changed_object_id);
        self.related_types.push(related.map(|r| r.content_type().as_str()));
        self.related_ids.push(related.map(ObjectRef::id));
        self.reprs.push(&change.object_repr);
        self.data.push(&change.object_data);
        self.prechanges.push(change.prechange.as_ref());
        self.firsts.push(first_of_object);
        self.contexts.push(context_name(change.change_context));
        self.details.push(&change.change_context_detail);
    }

    pub(crate) async fn insert(&self, client: &impl Db) -> Result<(), StorageFailure> {
        if self.ids.is_empty() {
            return Ok(());
        }
        client
            .execute(
                INSERT_CHANGES,
                &[
                    &self.ids,
                    &self.times,
                    &self.user_ids,
                    &self.user_names,
                    &self.request_ids,
                    &self.actions,
                    &self.content_types,
                    &self.object_ids,
                    &self.related_types,
                    &self.related_ids,
                    &self.reprs,
                    &self.data,
                    &self.prechanges,
                    &self.firsts,
                    &self.contexts,
                    &self.details,
                ],
            )
            .await
            .map_err(db_error("cannot record the changes"))?;
        Ok(())
    }
}

/// What a run is about, as its row holds it.
#[derive(Clone, Copy)]
pub(crate) enum RunInputs<'a> {
    /// A hook's run of a change, and the hook when it is a webhook's.
    Hook(ChangeId, Option<uuid::Uuid>),
    /// A button's run on an object.
    Button { object_pk: &'a str, object_model_name: &'a str },
}

impl<'a> From<&'a JobInputs> for RunInputs<'a> {
    fn from(inputs: &'a JobInputs) -> Self {
        match inputs {
            JobInputs::Hook { object_change, hook } => RunInputs::Hook(*object_change, *hook),
            JobInputs::Button { object_pk, object_model_name } => RunInputs::Button { object_pk, object_model_name },
        }
    }
}

/// Queues runs given column by column (see [`RunRows::insert`]).
static INSERT_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                    $6::text[], $7::boolean[], $10::uuid[]) WITH ORDINALITY
                  AS u(job, user_id, change_id, object_pk, object_model_name, line, first, hook_id, row)),
          taken AS (SELECT nextval('jobhooks_run_ids') AS id, nextval('jobhooks_line_places') AS place
                    FROM u),
          numbered AS (SELECT id, place, row_number() OVER (ORDER BY id) AS row FROM taken)
     INSERT INTO jobhooks_runs (id, job, user_id, change_id, object_pk, object_model_name, status,
         attempts, leases, created, logs, line, place, head, hook_id)
     SELECT n.id, u.job, u.user_id, u.change_id, u.object_pk, u.object_model_name, $8, 0, 0, $9,
         '[]', u.line, n.place, u.line IS NULL OR (u.first AND ahead.id IS NULL), u.hook_id
     FROM u JOIN numbered n ON n.row = u.row
     LEFT JOIN LATERAL (SELECT r.id FROM jobhooks_runs r
                        WHERE r.line = u.line AND r.status IN {UNFINISHED}
                        LIMIT 1) ahead ON true
     RETURNING id"
    )
});

/// Removes objects given column by column.
const DELETE_OBJECTS: &str =
    "DELETE FROM jobhooks_objects o USING unnest($1::text[], $2::text[]) AS g(content_type, object_id)
     WHERE o.content_type = g.content_type AND o.object_id = g.object_id";

/// Writes objects given column by column, whether they exist or not.
const UPSERT_OBJECTS: &str = "INSERT INTO jobhooks_objects (content_type, object_id, repr, data)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
     ON CONFLICT (content_type, object_id) DO UPDATE SET repr = excluded.repr, data = excluded.data";

/// The statements of a group's second round trip: its writes, and the notification after its
/// `COMMIT`.
fn write_statements() -> [&'static str; 5] {
    [INSERT_CHANGES, INSERT_RUNS.as_str(), DELETE_OBJECTS, UPSERT_OBJECTS, ANNOUNCE]
}

/// Runs to queue, column by column, written in one statement.
#[derive(Default)]
pub(crate) struct RunRows<'a> {
    jobs: Vec<&'a str>,
    users: Vec<Option<&'a str>>,
    change_ids: Vec<Option<i64>>,
    object_pks: Vec<Option<&'a str>>,
    object_model_names: Vec<Option<&'a str>>,
    lines: Vec<Option<&'a str>>,
    /// Whether no run before it in these rows is of its line: only then may it be its line's head.
    firsts: Vec<bool>,
    /// A webhook's run's hook.
    hook_ids: Vec<Option<uuid::Uuid>>,
    seen_lines: HashSet<&'a str>,
}

impl<'a> RunRows<'a> {
    /// Adds a pending run of `job` about `inputs` at the back of `line` (none: no line). The
    /// caller holds the lines' locks (`lines::lock`) until the rows are written.
    pub(crate) fn push(&mut self, job: &'a str, user: Option<&'a str>, inputs: RunInputs<'a>, line: Option<&'a str>) {
        let (change_id, object_pk, object_model_name, hook_id) = match inputs {
            RunInputs::Hook(change, hook) => (Some(change.0 as i64), None, None, hook),
            RunInputs::Button { object_pk, object_model_name } => {
                (None, Some(object_pk), Some(object_model_name), None)
            }
        };
        self.hook_ids.push(hook_id);
        self.jobs.push(job);
        self.users.push(user);
        self.change_ids.push(change_id);
        self.object_pks.push(object_pk);
        self.object_model_names.push(object_model_name);
        self.lines.push(line);
        self.firsts.push(line.is_none_or(|line| self.seen_lines.insert(line)));
    }

    /// Queues the runs with a pending result made at `now`, and returns their ids in the order
    /// they were pushed. The statement numbers them: each row takes a run id and a place in its
    /// line from the sequences, and the rows are matched to the values in ascending order, so the
    /// runs of a line are placed in the order they were pushed. Whether a run is its line's head
    /// is decided here, under the lines' locks: it is when its line has no unfinished run.
    pub(crate) async fn insert(&self, client: &impl Db, now: OffsetDateTime) -> Result<Vec<RunId>, StorageFailure> {
        if self.jobs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = client
            .query(
                &INSERT_RUNS,
                &[
                    &self.jobs,
                    &self.users,
                    &self.change_ids,
                    &self.object_pks,
                    &self.object_model_names,
                    &self.lines,
                    &self.firsts,
                    &status_name(JobStatus::Pending),
                    &now,
                    &self.hook_ids,
                ],
            )
            .await
            .map_err(db_error("cannot queue the runs"))?;
        // Row k took the k-th smallest id.
        let mut ids: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
        if ids.len() != self.jobs.len() {
            return Err(StorageFailure::Backend(BackendError::message("PostgreSQL queued fewer runs than asked for")));
        }
        ids.sort_unstable();
        Ok(ids.into_iter().map(|id| RunId(id as u64)).collect())
    }
}

/// The objects a group of changes leaves: for each object, what its last change made of it.
#[derive(Default)]
struct ObjectRows<'a> {
    last: BTreeMap<(&'a str, &'a str), Option<(&'a str, &'a serde_json::Value)>>,
}

impl<'a> ObjectRows<'a> {
    fn push(&mut self, change: &'a ObjectChange) {
        let key = (change.changed_object_type.as_str(), change.changed_object_id.as_str());
        let state = match change.action {
            Action::Delete => None,
            Action::Create | Action::Update => Some((change.object_repr.as_str(), &change.object_data)),
        };
        self.last.insert(key, state);
    }

    /// Removes the deleted objects and writes the others, in key order, one statement each.
    async fn write(&self, client: &impl Db) -> Result<(), StorageFailure> {
        let (mut gone_types, mut gone_ids) = (Vec::new(), Vec::new());
        let (mut types, mut ids, mut reprs, mut data) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (&(content_type, id), state) in &self.last {
            match state {
                None => {
                    gone_types.push(content_type);
                    gone_ids.push(id);
                }
                Some((repr, value)) => {
                    types.push(content_type);
                    ids.push(id);
                    reprs.push(*repr);
                    data.push(*value);
                }
            }
        }
        let remove = async {
            if gone_ids.is_empty() {
                return Ok(0);
            }
            client
                .execute(DELETE_OBJECTS, &[&gone_types, &gone_ids])
                .await
                .map_err(db_error("cannot remove the objects"))
        };
        let upsert = async {
            if ids.is_empty() {
                return Ok(0);
            }
            client
                .execute(UPSERT_OBJECTS, &[&types, &ids, &reprs, &data])
                .await
                .map_err(db_error("cannot write the objects"))
        };
        let (removed, written) = tokio::join!(remove, upsert);
        removed?;
        written?;
        Ok(())
    }
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
        let commit = Commit { context: context.clone(), changes, objects };
        let receipt =
            stage_commits(transaction, self.now(), std::slice::from_ref(&commit)).await?.pop().unwrap_or_default();
        // Sent when (and only if) the caller's transaction commits.
        if !receipt.runs.is_empty() {
            transaction.execute(ANNOUNCE, &[&WORK_CHANNEL]).await.map_err(db_error("cannot notify the dispatchers"))?;
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

/// A [`ChangeFilter`](jobhooks_model::ChangeFilter) in SQL, over `jobhooks_changes c`: an empty
/// array admits every change. Its parameters are [`ChangeFilterParams::values`], `$1` to `$11`.
/// One object's changes and one request's are read through their indexes; a search lowercases
/// by the database's rules.
const CHANGE_FILTER: &str = "(cardinality($1::bigint[]) = 0 OR c.id = ANY($1))
    AND NOT EXISTS (SELECT 1 FROM unnest($2::text[]) term WHERE position(lower(term) IN lower(c.object_repr)) = 0)
    AND (cardinality($3::text[]) = 0 OR c.user_id = ANY($3))
    AND (cardinality($4::text[]) = 0 OR c.user_name = ANY($4))
    AND (cardinality($5::uuid[]) = 0 OR c.request_id = ANY($5))
    AND (cardinality($6::text[]) = 0 OR c.action = ANY($6))
    AND (cardinality($7::text[]) = 0 OR c.content_type = ANY($7))
    AND (cardinality($8::text[]) = 0 OR c.object_id = ANY($8))
    AND (cardinality($9::text[]) = 0 OR c.change_context = ANY($9))
    AND (cardinality($10::text[]) = 0 OR c.change_context_detail = ANY($10))
    AND (cardinality($11::text[]) = 0 OR c.object_repr = ANY($11))";

/// The parameters of [`CHANGE_FILTER`] for one filter.
struct ChangeFilterParams<'a> {
    ids: Vec<i64>,
    filter: &'a jobhooks_model::ChangeFilter,
    actions: Vec<&'static str>,
    content_types: Vec<&'a str>,
    contexts: Vec<&'static str>,
}

impl<'a> ChangeFilterParams<'a> {
    fn of(filter: &'a jobhooks_model::ChangeFilter) -> Self {
        Self {
            ids: filter.ids.iter().map(|id| id.0 as i64).collect(),
            filter,
            actions: filter.actions.iter().map(|action| crate::records::action_name(*action)).collect(),
            content_types: filter.content_types.iter().map(|content_type| content_type.as_str()).collect(),
            contexts: filter.change_contexts.iter().map(|context| crate::records::context_name(*context)).collect(),
        }
    }

    fn values(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        vec![
            &self.ids,
            &self.filter.search,
            &self.filter.users,
            &self.filter.user_names,
            &self.filter.request_ids,
            &self.actions,
            &self.content_types,
            &self.filter.object_ids,
            &self.contexts,
            &self.filter.change_context_details,
            &self.filter.object_reprs,
        ]
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
        self.commit_in_group(Commit { context: context.clone(), changes, objects }).await
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
                    "SELECT {CHANGE_COLUMNS}, {OBJECT_WITH_CHANGE}
                     FROM jobhooks_changes c LEFT JOIN jobhooks_objects o
                       ON o.content_type = c.content_type AND o.object_id = c.object_id
                     WHERE c.id = $1"
                ),
                &[&(id.0 as i64)],
            )
            .await
            .map_err(db_error("cannot read a change and its object"))?;
        row.as_ref().map(change_and_object_of).transpose()
    }

    fn reads_changes_together(&self) -> bool {
        true
    }

    async fn get_changes_and_objects(
        &self,
        ids: &[ChangeId],
    ) -> Result<Vec<(ObjectChange, Option<Object>)>, StorageFailure> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0 as i64).collect();
        let read = format!(
            "SELECT {CHANGE_COLUMNS}, {OBJECT_WITH_CHANGE}
             FROM unnest($1::bigint[]) WITH ORDINALITY AS asked(id, position)
             JOIN jobhooks_changes c ON c.id = asked.id
             LEFT JOIN jobhooks_objects o ON o.content_type = c.content_type AND o.object_id = c.object_id
             ORDER BY asked.position"
        );
        // Planned at every call: the plan for the ids given beats the plan for any ids.
        let client = self.client().await?;
        let rows = client.query(&read, &[&ids]).await.map_err(db_error("cannot read changes and their objects"))?;
        rows.iter().map(change_and_object_of).collect()
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

    async fn changes_after(&self, after: ChangeId, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let (after, limit) = (after.0 as i64, i64::try_from(limit).unwrap_or(i64::MAX));
        self.query_changes("c.id > $1 ORDER BY c.id LIMIT $2", &[&after, &limit]).await
    }

    async fn objects_after(
        &self,
        content_type: &ContentType,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Object>, StorageFailure> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT content_type, object_id, repr, data FROM jobhooks_objects
                 WHERE content_type = $1 AND ($2::text IS NULL OR object_id COLLATE \"C\" > $2)
                 ORDER BY object_id COLLATE \"C\" LIMIT $3",
                &[&content_type.as_str(), &after, &limit],
            )
            .await
            .map_err(db_error("cannot read objects"))?;
        rows.iter().map(object_of).collect()
    }

    async fn object_types(&self) -> Result<Vec<ContentType>, StorageFailure> {
        let client = self.client().await?;
        let rows = client
            .query(
                // A skip scan of each table's leading index column: one probe per type.
                "WITH RECURSIVE objects AS (
                     (SELECT content_type FROM jobhooks_objects ORDER BY content_type LIMIT 1)
                     UNION ALL
                     SELECT (SELECT o.content_type FROM jobhooks_objects o WHERE o.content_type > objects.content_type
                             ORDER BY o.content_type LIMIT 1)
                     FROM objects WHERE objects.content_type IS NOT NULL
                 ), changes AS (
                     (SELECT content_type FROM jobhooks_changes ORDER BY content_type LIMIT 1)
                     UNION ALL
                     SELECT (SELECT c.content_type FROM jobhooks_changes c WHERE c.content_type > changes.content_type
                             ORDER BY c.content_type LIMIT 1)
                     FROM changes WHERE changes.content_type IS NOT NULL
                 )
                 SELECT t.content_type FROM (
                     SELECT content_type FROM objects WHERE content_type IS NOT NULL
                     UNION SELECT content_type FROM changes WHERE content_type IS NOT NULL
                 ) t ORDER BY t.content_type COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(db_error("cannot read the object types"))?;
        rows.iter()
            .map(|row| {
                let name: String = row.get(0);
                ContentType::new(name.clone()).map_err(|error| corrupt("object type", &name, error))
            })
            .collect()
    }

    async fn latest_changes(&self, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_changes("TRUE ORDER BY c.id DESC LIMIT $1", &[&limit]).await
    }

    async fn count_changes(&self) -> Result<u64, StorageFailure> {
        self.count_changes_of(None).await
    }

    async fn change_page(&self, page: &ChangePage) -> Result<Vec<ObjectChange>, StorageFailure> {
        let (offset, limit) =
            (i64::try_from(page.offset).unwrap_or(i64::MAX), i64::try_from(page.limit).unwrap_or(i64::MAX));
        let (content_type, id) = object_columns(page.object.as_ref());
        self.query_changes(
            "($1::text IS NULL OR (c.content_type = $1 AND c.object_id = $2)) ORDER BY c.id DESC OFFSET $3 LIMIT $4",
            &[&content_type, &id, &offset, &limit],
        )
        .await
    }

    async fn find_changes(
        &self,
        filter: &jobhooks_model::ChangeFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        let (offset, limit) = (i64::try_from(offset).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX));
        let params = ChangeFilterParams::of(filter);
        let mut values = params.values();
        values.extend([&offset as &(dyn tokio_postgres::types::ToSql + Sync), &limit]);
        self.query_changes(&format!("{CHANGE_FILTER} ORDER BY c.id DESC OFFSET $12 LIMIT $13"), &values).await
    }

    async fn count_changes_where(&self, filter: &jobhooks_model::ChangeFilter) -> Result<u64, StorageFailure> {
        let client = self.client().await?;
        let params = ChangeFilterParams::of(filter);
        let row = client
            .query_one(&format!("SELECT count(*) FROM jobhooks_changes c WHERE {CHANGE_FILTER}"), &params.values())
            .await
            .map_err(db_error("cannot count changes"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
    }

    async fn count_changes_of(&self, object: Option<&ObjectRef>) -> Result<u64, StorageFailure> {
        let client = self.client().await?;
        let (content_type, id) = object_columns(object);
        let row = client
            .query_one(
                "SELECT count(*) FROM jobhooks_changes
                 WHERE $1::text IS NULL OR (content_type = $1 AND object_id = $2)",
                &[&content_type, &id],
            )
            .await
            .map_err(db_error("cannot count changes"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }
}

/// An object's content type and id as query parameters; both `None` for the whole log.
fn object_columns(object: Option<&ObjectRef>) -> (Option<&str>, Option<&str>) {
    (object.map(|object| object.content_type().as_str()), object.map(ObjectRef::id))
}
