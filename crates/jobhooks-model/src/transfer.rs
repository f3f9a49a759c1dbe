//! Export and import: a whole store as JSON lines, so that its data can move to another store (sled
//! to PostgreSQL) or another version of jobhooks.
//!
//! An export is a header line, then one [`Record`] per line: job records, users, tokens, hooks,
//! buttons, objects, changes (by id) and job results (by id). [`export`] reads it from any store
//! through the ports; [`Snapshot::from_records`] reads it back and checks that it holds together;
//! a store's [`crate::ports::Restore`] writes it into a new store, keeping every id, time, user and
//! log. Runs that had not ended are queued again as after a restart: [`restored_status`] says how.
//!
//! ```
//! use jobhooks_model::transfer::{Record, Snapshot};
//! use jobhooks_model::User;
//!
//! let lines = [
//!     r#"{"record":"header","format":1,"jobhooks":"0.1.0","exported":"2026-11-27T12:00:00Z"}"#,
//!     r#"{"record":"user","username":"alice","is_superuser":true}"#,
//! ];
//! let records = lines.iter().map(|line| serde_json::from_str::<Record>(line).map_err(|e| e.to_string()));
//! let snapshot = Snapshot::from_records(records).unwrap();
//! assert_eq!(snapshot.users, [User::superuser("alice").unwrap()]);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ports::Storage;
use crate::{
    ApiToken, ChangeId, ContentType, JobButton, JobHook, JobInputs, JobRecord, JobResult, JobStatus, Object,
    ObjectChange, ObjectRef, RunId, StorageFailure, User,
};

/// The version of the export format this jobhooks writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// The first line: what wrote the export, and when.
    Header(ExportHeader),
    /// A job record.
    Job(JobRecord),
    /// A user.
    User(User),
    /// An API token (its key's hash; never a key).
    Token(ApiToken),
    /// A job hook.
    Hook(JobHook),
    /// A job button.
    Button(JobButton),
    /// An object of the repository.
    Object(Object),
    /// A change of the log.
    Change(ObjectChange),
    /// A job result, with its log.
    Result(JobResult),
}

impl Record {
    /// The record as one line of an export: its JSON, and a newline.
    pub fn json_line(&self) -> String {
        // Records are plain data (strings, numbers, JSON values): they always serialize.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportHeader {
    /// The export format ([`EXPORT_FORMAT`]).
    pub format: u32,
    /// The version of jobhooks that wrote it.
    pub jobhooks: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub exported: OffsetDateTime,
}

/// Why an export cannot be read. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A line is not a record.
    #[error("line {line}: {reason}")]
    Unreadable {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The first line is not a header, or its format is not one this jobhooks reads.
    #[error("{0}")]
    Header(String),
    /// The records do not hold together.
    #[error("the export does not hold together: {0}")]
    Inconsistent(String),
}

/// Everything an export holds, by kind, each kind in its export order.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Job records, by class path.
    pub jobs: Vec<JobRecord>,
    /// Users, by name.
    pub users: Vec<User>,
    /// API tokens, by id.
    pub tokens: Vec<ApiToken>,
    /// Job hooks, by name.
    pub hooks: Vec<JobHook>,
    /// Job buttons, by name.
    pub buttons: Vec<JobButton>,
    /// The objects of the repository, by content type and id.
    pub objects: Vec<Object>,
    /// The change log, by id.
    pub changes: Vec<ObjectChange>,
    /// Job results, by id.
    pub results: Vec<JobResult>,
}

/// The status a run has after an import: runs that had not ended are pending again (a claim
/// belonged to a process of the old store, and a retry falls due at once); ended runs keep theirs.
pub fn restored_status(status: JobStatus) -> JobStatus {
    match status {
        JobStatus::Pending | JobStatus::Started | JobStatus::Retrying => JobStatus::Pending,
        ended @ (JobStatus::Success | JobStatus::Failure | JobStatus::DeadLettered) => ended,
    }
}

impl Snapshot {
    /// Reads the records of an export (the first must be its header), sorts each kind into its
    /// export order, and checks that they hold together: unique names and ids, tokens of known
    /// users, runs of known changes.
    pub fn from_records<E: std::fmt::Display>(
        records: impl IntoIterator<Item = Result<Record, E>>,
    ) -> Result<Self, SnapshotError> {
        let mut snapshot = Snapshot::default();
        let mut header = None;
        for (index, record) in records.into_iter().enumerate() {
            let line = index + 1;
            let record = record.map_err(|error| SnapshotError::Unreadable { line, reason: error.to_string() })?;
            match (record, &header) {
                (Record::Header(found), None) if line == 1 => {
                    if found.format != EXPORT_FORMAT {
                        return Err(SnapshotError::Header(format!(
                            "the export is in format {}, written by jobhooks {}; this jobhooks reads format {EXPORT_FORMAT}",
                            found.format, found.jobhooks
                        )));
                    }
                    header = Some(found);
                }
                (_, None) => {
                    return Err(SnapshotError::Header("the first line is not an export's header".into()));
                }
                (Record::Header(_), Some(_)) => {
                    return Err(SnapshotError::Unreadable { line, reason: "a second header".into() });
                }
                (Record::Job(job), _) => snapshot.jobs.push(job),
                (Record::User(user), _) => snapshot.users.push(user),
                (Record::Token(token), _) => snapshot.tokens.push(token),
                (Record::Hook(hook), _) => snapshot.hooks.push(hook),
                (Record::Button(button), _) => snapshot.buttons.push(button),
                (Record::Object(object), _) => snapshot.objects.push(object),
                (Record::Change(change), _) => snapshot.changes.push(change),
                (Record::Result(result), _) => snapshot.results.push(result),
            }
        }
        if header.is_none() {
            return Err(SnapshotError::Header("the export is empty: it has no header".into()));
        }
        snapshot.give_ids();
        snapshot.sort();
        snapshot.check()?;
        Ok(snapshot)
    }

    /// Gives the jobs, hooks and buttons of an export written before records had ids the ids
    /// derived from their names ([`derived_id`](crate::derived_id)), as the stores give them.
    fn give_ids(&mut self) {
        use crate::{RecordKind, derived_id};
        for job in self.jobs.iter_mut().filter(|job| job.id.is_nil()) {
            job.id = derived_id(RecordKind::Job, &job.class_path);
        }
        for hook in self.hooks.iter_mut().filter(|hook| hook.id.is_nil()) {
            hook.id = derived_id(RecordKind::JobHook, &hook.name);
        }
        for button in self.buttons.iter_mut().filter(|button| button.id.is_nil()) {
            button.id = derived_id(RecordKind::JobButton, &button.name);
        }
    }

    /// Each kind in its export order.
    fn sort(&mut self) {
        self.jobs.sort_by(|a, b| a.class_path.cmp(&b.class_path));
        self.users.sort_by(|a, b| a.username.cmp(&b.username));
        self.tokens.sort_by(|a, b| a.id.cmp(&b.id));
        self.hooks.sort_by(|a, b| a.name.cmp(&b.name));
        self.buttons.sort_by(|a, b| a.name.cmp(&b.name));
        self.objects.sort_by(|a, b| a.reference().cmp(b.reference()));
        self.changes.sort_by_key(|change| change.id);
        self.results.sort_by_key(|result| result.id);
    }

    /// Checks what an import relies on; [`Snapshot::from_records`] calls it.
    pub fn check(&self) -> Result<(), SnapshotError> {
        let inconsistent = |what: String| Err(SnapshotError::Inconsistent(what));
        let repeated = |keys: Vec<String>, kind: &str| -> Result<(), SnapshotError> {
            let mut seen = BTreeSet::new();
            match keys.into_iter().find(|key| !seen.insert(key.clone())) {
                Some(key) => Err(SnapshotError::Inconsistent(format!("{kind} `{key}` appears twice"))),
                None => Ok(()),
            }
        };
        repeated(self.jobs.iter().map(|job| job.class_path.clone()).collect(), "job")?;
        repeated(self.users.iter().map(|user| user.username.clone()).collect(), "user")?;
        repeated(self.tokens.iter().map(|token| token.id.clone()).collect(), "token")?;
        repeated(self.hooks.iter().map(|hook| hook.name.clone()).collect(), "job hook")?;
        repeated(self.buttons.iter().map(|button| button.name.clone()).collect(), "job button")?;
        let ids = |ids: Vec<uuid::Uuid>| ids.into_iter().filter(|id| !id.is_nil()).map(|id| id.to_string()).collect();
        repeated(ids(self.jobs.iter().map(|job| job.id).collect()), "job id")?;
        repeated(ids(self.hooks.iter().map(|hook| hook.id).collect()), "job hook id")?;
        repeated(ids(self.buttons.iter().map(|button| button.id).collect()), "job button id")?;
        repeated(self.objects.iter().map(|object| object.reference().to_string()).collect(), "object")?;
        repeated(self.changes.iter().map(|change| change.id.to_string()).collect(), "change")?;
        repeated(self.results.iter().map(|result| result.id.to_string()).collect(), "job result")?;
        let users: BTreeSet<&str> = self.users.iter().map(|user| user.username.as_str()).collect();
        if let Some(token) = self.tokens.iter().find(|token| !users.contains(token.user.as_str())) {
            return inconsistent(format!("token `{}` is of user `{}`, who is not in it", token.id, token.user));
        }
        let changes: BTreeSet<ChangeId> = self.changes.iter().map(|change| change.id).collect();
        if let Some(result) =
            self.results.iter().find(|result| result.change_id().is_some_and(|id| !changes.contains(&id)))
        {
            return inconsistent(format!(
                "job result {} is of change {}, which is not in it",
                result.id,
                result.change_id().map(|id| id.0).unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// The lines of the export after its header, in order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let jobs = self.jobs.iter().cloned().map(Record::Job);
        let users = self.users.iter().cloned().map(Record::User);
        let tokens = self.tokens.iter().cloned().map(Record::Token);
        let hooks = self.hooks.iter().cloned().map(Record::Hook);
        let buttons = self.buttons.iter().cloned().map(Record::Button);
        let objects = self.objects.iter().cloned().map(Record::Object);
        let changes = self.changes.iter().cloned().map(Record::Change);
        let results = self.results.iter().cloned().map(Record::Result);
        jobs.chain(users).chain(tokens).chain(hooks).chain(buttons).chain(objects).chain(changes).chain(results)
    }

    /// The export of this snapshot, taken at `now`: its header and its records, one JSON object
    /// per line.
    pub fn json_lines(&self, now: OffsetDateTime) -> String {
        let mut lines = String::new();
        for record in std::iter::once(Self::header(now)).chain(self.records()) {
            lines.push_str(&record.json_line());
        }
        lines
    }

    /// The header of an export of this snapshot written now.
    pub fn header(now: OffsetDateTime) -> Record {
        Record::Header(ExportHeader {
            format: EXPORT_FORMAT,
            jobhooks: env!("CARGO_PKG_VERSION").to_owned(),
            exported: now,
        })
    }

    /// The object whose line a run waits in, as the stores decide it: a hook run's is its
    /// change's object, a button run's the object it was pressed on, when the snapshot has a
    /// change of it (an object without changes has no line). Stores queue the runs that had not
    /// ended in these lines, in id order.
    pub fn line_of(&self, result: &JobResult) -> Option<ObjectRef> {
        let object = match &result.inputs {
            JobInputs::Hook { object_change, .. } => self
                .changes
                .binary_search_by_key(object_change, |change| change.id)
                .ok()
                .map(|at| self.changes[at].object_ref()),
            JobInputs::Button { object_pk, object_model_name } => ContentType::new(object_model_name.as_str())
                .and_then(|content_type| ObjectRef::new(content_type, object_pk.as_str()))
                .ok(),
        }?;
        self.changes.iter().any(|change| change.object_ref() == object).then_some(object)
    }

    /// The runs each change queued, by change: what a change record lists.
    pub fn runs_by_change(&self) -> BTreeMap<ChangeId, Vec<RunId>> {
        let mut runs: BTreeMap<ChangeId, Vec<RunId>> = BTreeMap::new();
        for result in &self.results {
            if let Some(change) = result.change_id() {
                runs.entry(change).or_default().push(result.id);
            }
        }
        runs
    }
}

/// Reads every record of `store` through its ports, as one snapshot: an [`Exporter`] read to its
/// end. Holds the whole store in memory; an export to a file or over HTTP reads an [`Exporter`]
/// page by page instead.
pub async fn export<S: Storage + ?Sized>(store: &S, now: OffsetDateTime) -> Result<Snapshot, StorageFailure> {
    let mut exporter = Exporter::new(store, now).await?;
    let mut snapshot = Snapshot::default();
    while let Some(records) = exporter.next_records().await? {
        for record in records {
            match record {
                Record::Header(_) => {}
                Record::Job(job) => snapshot.jobs.push(job),
                Record::User(user) => snapshot.users.push(user),
                Record::Token(token) => snapshot.tokens.push(token),
                Record::Hook(hook) => snapshot.hooks.push(hook),
                Record::Button(button) => snapshot.buttons.push(button),
                Record::Object(object) => snapshot.objects.push(object),
                Record::Change(change) => snapshot.changes.push(change),
                Record::Result(result) => snapshot.results.push(result),
            }
        }
    }
    snapshot.sort();
    Ok(snapshot)
}

/// How many objects, changes or results an [`Exporter`] reads at a time.
pub const EXPORT_PAGE: usize = 500;

/// An export read page by page from a store, in the export's order: its header, then the
/// catalog (job records, users, tokens, hooks, buttons; small, and read whole), then objects,
/// changes and results, [`EXPORT_PAGE`] at a time through the stores' keyset reads
/// ([`ChangeStore::objects_after`](crate::ports::ChangeStore::objects_after),
/// [`ChangeStore::changes_after`](crate::ports::ChangeStore::changes_after),
/// [`QueueReader::results_after`](crate::ports::QueueReader::results_after)). Memory stays at one
/// page however large the store, and each page costs the same at the end of the log as at its
/// start.
///
/// The store may serve meanwhile. The export holds the changes committed before it started and
/// the runs of those changes (and every button run); a change committed later, and its runs, are
/// left to the next export. Objects are read as they are when their page is read, and may be
/// newer than the last change exported (take the export from a quiet store, or from a backup,
/// for one instant's state).
///
/// `St` is how the exporter holds the store: `&S` to borrow it, `Arc<S>` to own a share of it
/// (for an export streamed from a server).
///
/// ```
/// # async fn example(store: &impl jobhooks_model::ports::Storage) -> Result<(), jobhooks_model::StorageFailure> {
/// use jobhooks_model::transfer::Exporter;
///
/// let mut exporter = Exporter::new(store, time::OffsetDateTime::now_utc()).await?;
/// let mut out = String::new();
/// while let Some(records) = exporter.next_records().await? {
///     for record in records {
///         out.push_str(&record.json_line());
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Exporter<St> {
    store: St,
    now: OffsetDateTime,
    /// The newest change when the export started: the last one it holds.
    through: ChangeId,
    phase: ExportPhase,
}

/// Where an [`Exporter`] is.
enum ExportPhase {
    Header,
    Catalog,
    Objects { types: std::vec::IntoIter<ContentType>, current: Option<(ContentType, Option<String>)> },
    Changes { after: ChangeId },
    Results { after: RunId },
    Done,
}

impl<St, S> Exporter<St>
where
    St: std::ops::Deref<Target = S>,
    S: Storage + ?Sized,
{
    /// An export of `store` taken at `now`; it holds the changes committed before this call.
    pub async fn new(store: St, now: OffsetDateTime) -> Result<Self, StorageFailure> {
        let through = store.latest_changes(1).await?.first().map_or(ChangeId(0), |change| change.id);
        Ok(Self { store, now, through, phase: ExportPhase::Header })
    }

    /// The next records of the export, in order; `None` once every record was read. A page may
    /// be empty.
    pub async fn next_records(&mut self) -> Result<Option<Vec<Record>>, StorageFailure> {
        let store = &*self.store;
        let records = match &mut self.phase {
            ExportPhase::Header => {
                self.phase = ExportPhase::Catalog;
                vec![Snapshot::header(self.now)]
            }
            ExportPhase::Catalog => {
                let mut catalog = Snapshot {
                    jobs: store.list_jobs().await?,
                    users: store.list_users().await?,
                    tokens: store.list_tokens(None).await?,
                    hooks: store.list_hooks().await?,
                    buttons: store.list_buttons().await?,
                    ..Snapshot::default()
                };
                catalog.sort();
                let types = store.object_types().await?.into_iter();
                self.phase = ExportPhase::Objects { types, current: None };
                catalog.records().collect()
            }
            ExportPhase::Objects { types, current } => {
                let Some((content_type, after)) = current else {
                    match types.next() {
                        Some(next) => *current = Some((next, None)),
                        None => self.phase = ExportPhase::Changes { after: ChangeId(0) },
                    }
                    return Ok(Some(Vec::new()));
                };
                let objects = store.objects_after(content_type, after.as_deref(), EXPORT_PAGE).await?;
                match objects.last() {
                    Some(last) if objects.len() == EXPORT_PAGE => *after = Some(last.reference().id().to_owned()),
                    _ => *current = None,
                }
                objects.into_iter().map(Record::Object).collect()
            }
            ExportPhase::Changes { after } => {
                let mut changes = store.changes_after(*after, EXPORT_PAGE).await?;
                let full = changes.len() == EXPORT_PAGE;
                changes.retain(|change| change.id <= self.through);
                match changes.last() {
                    Some(last) if full && last.id < self.through => *after = last.id,
                    _ => self.phase = ExportPhase::Results { after: RunId(0) },
                }
                changes.into_iter().map(Record::Change).collect()
            }
            ExportPhase::Results { after } => {
                let mut results = store.results_after(*after, EXPORT_PAGE).await?;
                match results.last() {
                    Some(last) if results.len() == EXPORT_PAGE => *after = last.id,
                    _ => self.phase = ExportPhase::Done,
                }
                // The runs of changes committed after the export started are left out with them.
                let through = self.through;
                results.retain(|result| result.change_id().is_none_or(|change| change <= through));
                results.into_iter().map(Record::Result).collect()
            }
            ExportPhase::Done => return Ok(None),
        };
        Ok(Some(records))
    }
}

/// Refuses a store that holds anything an import would write beside, but job records: what a
/// [`crate::ports::Restore`] checks before it writes.
pub async fn check_new<S: Storage + ?Sized>(store: &S) -> Result<(), crate::ports::RestoreError> {
    let not_new = |what: String| Err(crate::ports::RestoreError::NotNew { what });
    let changes = store.count_changes().await?;
    if changes > 0 {
        return not_new(format!("{changes} change(s)"));
    }
    let results = store.count_results(&crate::ports::ResultFilter::default()).await?;
    if results > 0 {
        return not_new(format!("{results} job result(s)"));
    }
    if let Some(hook) = store.list_hooks().await?.first() {
        return not_new(format!("job hook `{}`", hook.name));
    }
    if let Some(button) = store.list_buttons().await?.first() {
        return not_new(format!("job button `{}`", button.name));
    }
    if let Some(user) = store.list_users().await?.first() {
        return not_new(format!("user `{}`", user.username));
    }
    if let Some(token) = store.list_tokens(None).await?.first() {
        return not_new(format!("token `{}`", token.id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, ChangeContextKind, JobKind, json};

    fn change(id: u64, object: &str) -> ObjectChange {
        ObjectChange {
            id: ChangeId(id),
            time: OffsetDateTime::UNIX_EPOCH,
            user: None,
            user_name: "Undefined".into(),
            request_id: uuid::Uuid::nil(),
            action: Action::Create,
            changed_object_type: ContentType::new("dcim.device").unwrap(),
            changed_object_id: object.into(),
            related_object: None,
            object_repr: object.into(),
            object_data: json!({}),
            prechange: None,
            change_context: ChangeContextKind::Web,
            change_context_detail: String::new(),
        }
    }

    fn result(id: u64, inputs: JobInputs, status: JobStatus) -> JobResult {
        JobResult { status, ..JobResult::pending(RunId(id), "app::Job", None, inputs, OffsetDateTime::UNIX_EPOCH) }
    }

    fn lines(snapshot: &Snapshot) -> Vec<String> {
        snapshot.json_lines(OffsetDateTime::UNIX_EPOCH).lines().map(str::to_owned).collect()
    }

    fn read(lines: &[String]) -> Result<Snapshot, SnapshotError> {
        Snapshot::from_records(lines.iter().map(|line| serde_json::from_str::<Record>(line)))
    }

    fn sample() -> Snapshot {
        let job =
            JobRecord { enabled: true, hidden: false, ..JobRecord::new("app::Job", "Job", JobKind::JobHookReceiver) };
        let hook = JobHook::new("h", vec![ContentType::new("dcim.device").unwrap()], "app::Job").on([Action::Create]);
        let hook = hook.stamped(OffsetDateTime::UNIX_EPOCH);
        let pressed = JobInputs::Button { object_pk: "b".into(), object_model_name: "dcim.device".into() };
        Snapshot {
            jobs: vec![job],
            users: vec![User::new("alice").unwrap()],
            tokens: vec![ApiToken::issue("alice", OffsetDateTime::UNIX_EPOCH, None, "laptop").token],
            hooks: vec![hook],
            changes: vec![change(1, "a"), change(2, "b")],
            results: vec![
                result(1, JobInputs::Hook { object_change: ChangeId(2), hook: None }, JobStatus::Success),
                result(2, pressed, JobStatus::Retrying),
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_snapshot_reads_back_from_its_lines() {
        let snapshot = sample();
        assert_eq!(read(&lines(&snapshot)).unwrap(), snapshot);
    }

    #[test]
    fn records_of_an_export_without_ids_get_the_ids_the_stores_derive() {
        let mut snapshot = sample();
        snapshot.hooks[0].id = uuid::Uuid::nil();
        snapshot.jobs[0].id = uuid::Uuid::nil();
        let read = read(&lines(&snapshot)).unwrap();
        assert_eq!(read.hooks[0].id, crate::derived_id(crate::RecordKind::JobHook, "h"));
        assert_eq!(read.jobs[0].id, crate::derived_id(crate::RecordKind::Job, "app::Job"));
    }

    #[test]
    fn lines_in_any_order_after_the_header_read_the_same() {
        let snapshot = sample();
        let mut shuffled = lines(&snapshot);
        shuffled[1..].reverse();
        assert_eq!(read(&shuffled).unwrap(), snapshot);
    }

    #[test]
    fn exports_that_do_not_hold_together_are_refused_by_what_is_wrong() {
        let mut lines = lines(&sample());
        let header = lines.remove(0);
        assert_eq!(read(&lines).unwrap_err().to_string(), "the first line is not an export's header");
        lines.insert(0, header.replace("\"format\":1", "\"format\":9"));
        assert!(read(&lines).unwrap_err().to_string().contains("this jobhooks reads format 1"));
        lines[0] = header;
        lines.push("{\"record\":\"user\"}".into());
        assert!(
            read(&lines)
                .unwrap_err()
                .to_string()
                .starts_with(&format!("line {}: missing field `username`", lines.len()))
        );
        lines.pop();
        lines.push(lines[2].clone());
        assert_eq!(
            read(&lines).unwrap_err().to_string(),
            "the export does not hold together: user `alice` appears twice"
        );
        lines.pop();
        let mut orphan = sample();
        orphan.changes.remove(1);
        assert_eq!(
            orphan.check().unwrap_err().to_string(),
            "the export does not hold together: job result 1 is of change 2, which is not in it"
        );
        let mut orphan = sample();
        orphan.users.clear();
        assert!(orphan.check().unwrap_err().to_string().contains("is of user `alice`, who is not in it"));
        assert!(read(&[]).unwrap_err().to_string().contains("it has no header"));
    }

    #[test]
    fn runs_wait_in_the_lines_of_their_objects() {
        let snapshot = sample();
        let lines: Vec<String> =
            snapshot.results.iter().map(|result| snapshot.line_of(result).unwrap().to_string()).collect();
        assert_eq!(lines, ["dcim.device b", "dcim.device b"]);
        let unchanged = JobInputs::Button { object_pk: "z".into(), object_model_name: "dcim.device".into() };
        assert_eq!(snapshot.line_of(&result(3, unchanged, JobStatus::Pending)), None, "no change of z: no line");
        assert_eq!(snapshot.runs_by_change()[&ChangeId(2)], [RunId(1)]);
        assert_eq!(restored_status(JobStatus::Started), JobStatus::Pending);
        assert_eq!(restored_status(JobStatus::Retrying), JobStatus::Pending);
        assert_eq!(restored_status(JobStatus::DeadLettered), JobStatus::DeadLettered);
    }
}
