//! The object repository, the change log, and the transactional outbox.

use jobhooks_model::ports::{ChangeStore, CommitReceipt, ObjectReader, ObjectWrites};
use jobhooks_model::{
    ChangeContext, ChangeContextKind, ChangeId, ChangeSet, ContentType, JobInputs, JobResult, Object, ObjectChange,
    ObjectRef, OffsetDateTime, RunId, StoreError,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::staging::{Staging, decode};
use crate::{Store, Writer, backend_error, keys};

/// Where a queued run stands. Kept small: the run's details live in its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueEntry {
    pub state: EntryState,
    /// Pending: runnable from this time; leased: the lease's deadline (microseconds since the
    /// epoch). Unused when dead.
    pub at: i64,
    /// How many leases the run has had: the number of the current one, telling it from earlier
    /// lapsed ones.
    pub leases: u64,
    /// The object the run is about (`content type\0id`): runs of one object start one at a time,
    /// in the order they were queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EntryState {
    /// Waiting to run.
    Pending,
    /// Claimed by a worker until `at`.
    Leased,
    /// Failed on every allowed attempt; waits for a replay.
    Dead,
}

impl QueueEntry {
    pub fn with(&self, state: EntryState, at: OffsetDateTime) -> Self {
        Self { state, at: micros(at), ..self.clone() }
    }
}

/// The ordering key of a run about `reference`.
pub(crate) fn ordering_key(reference: &ObjectRef) -> String {
    format!("{}\0{}", reference.content_type, reference.id)
}

/// The object a run is about, from its inputs (buttons) or its change (hooks).
pub(crate) fn run_object(inputs: &JobInputs, change_object: Option<&ObjectRef>) -> Option<String> {
    match inputs {
        JobInputs::Hook { .. } => change_object.map(ordering_key),
        JobInputs::Button { object_pk, object_model_name } => ContentType::new(object_model_name.as_str())
            .ok()
            .and_then(|ct| ObjectRef::new(ct, object_pk.as_str()).ok())
            .as_ref()
            .map(ordering_key),
    }
}

pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub(crate) fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Store {
    /// Stages the changes of one change context: change records with their prechange and their
    /// indexes, the objects (with [`ObjectWrites::Apply`]), and a queued run per matching hook.
    pub(crate) fn stage_changes(
        &self,
        w: &mut Writer,
        st: &mut Staging<'_>,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, StoreError> {
        let mut receipt = CommitReceipt::default();
        let now = w.now();
        for pending in changes.into_changes() {
            let id = ChangeId(w.next_change);
            w.next_change += 1;
            let reference = pending.object.clone();
            let prechange = self.previous_data(st, &reference)?;
            let record = ObjectChange::from_pending(id, now, context, pending, prechange);

            st.put_json(keys::change(id), &record)?;
            st.put(keys::change_by_object(&reference, id), Vec::new());
            st.put(keys::change_by_request(context.request_id, id), Vec::new());
            st.put(keys::change_by_time(now, id), Vec::new());
            if objects == ObjectWrites::Apply {
                // The repository points at the object's latest change, which holds its data: each
                // object's data is written once per change.
                match record.resulting_object() {
                    Some(_) => st.put(keys::object(&reference), id.0.to_be_bytes().to_vec()),
                    None => st.remove(keys::object(&reference)),
                }
            }
            receipt.changes.push(id);
            if context.kind == ChangeContextKind::JobHook {
                continue;
            }
            let targets: Vec<(String, String)> = w
                .catalog
                .hooks_for(&record.changed_object_type, record.action)
                .filter(|hook| hook.enabled)
                .map(|hook| (hook.name.clone(), hook.job.clone()))
                .collect();
            for (hook, job) in targets {
                if !w.catalog.job(&job).is_some_and(|j| j.is_runnable()) {
                    tracing::warn!(
                        hook = %hook, job = %job, change = %id,
                        "JobHook {hook} is enabled, but the underlying Job {job} is not installed and enabled"
                    );
                    continue;
                }
                let inputs = JobInputs::Hook { object_change: id };
                let object = run_object(&inputs, Some(&reference));
                receipt.runs.push(stage_run(w, st, &job, context.user.clone(), inputs, object, now)?);
            }
        }
        Ok(receipt)
    }

    /// The data of the latest change of `reference` so far, counting staged ones. Only that field
    /// is decoded: the rest of the record (its own prechange included) is skipped.
    fn previous_data(&self, st: &Staging<'_>, reference: &ObjectRef) -> Result<Option<serde_json::Value>, StoreError> {
        #[derive(Deserialize)]
        struct DataOnly {
            object_data: serde_json::Value,
        }
        let Some(key) = st.last_key_with_prefix(&keys::changes_of_object(reference))? else {
            return Ok(None);
        };
        let id = keys::trailing_id(&key).map(ChangeId).ok_or_else(|| StoreError::Corrupt {
            kind: "change index",
            key: String::from_utf8_lossy(&key).into_owned(),
            reason: "the key does not end with a change id".into(),
        })?;
        Ok(st.get_json::<DataOnly>(&keys::change(id), "change")?.map(|change| change.object_data))
    }

    fn read_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StoreError> {
        let key = keys::change(id);
        let value = self.inner.tree.get(&key).map_err(backend_error)?;
        value.map(|bytes| decode("change", &key, &bytes)).transpose()
    }

    /// The changes named by the ids ending the keys under `prefix`, in key order.
    fn changes_by_index(
        &self,
        keys_in_order: impl Iterator<Item = Result<sled::IVec, sled::Error>>,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StoreError> {
        let mut changes = Vec::new();
        for key in keys_in_order.take(limit) {
            let key = key.map_err(backend_error)?;
            if let Some(change) =
                keys::trailing_id(&key).map(ChangeId).map(|id| self.read_change(id)).transpose()?.flatten()
            {
                changes.push(change);
            }
        }
        Ok(changes)
    }
}

/// Stages one queued run of `job` with its pending result and the result's indexes.
pub(crate) fn stage_run(
    w: &mut Writer,
    st: &mut Staging<'_>,
    job: &str,
    user: Option<String>,
    inputs: JobInputs,
    object: Option<String>,
    now: OffsetDateTime,
) -> Result<RunId, StoreError> {
    let run = RunId(w.next_run);
    w.next_run += 1;
    let result = JobResult::pending(run, job, user, inputs, now);
    if let Some(object) = &object {
        st.put(keys::run_of_object(object, run), Vec::new());
    }
    st.put_json(keys::queue(run), &QueueEntry { state: EntryState::Pending, at: micros(now), leases: 0, object })?;
    st.put(keys::ready(now, run), Vec::new());
    st.put(keys::result_by_job(job, run), Vec::new());
    if let Some(change) = result.change_id() {
        st.put(keys::result_by_change(change, run), Vec::new());
    }
    put_result(st, &result, None)?;
    Ok(run)
}

/// Stores `result`, moving its status index entry from `previous` status.
pub(crate) fn put_result(
    st: &mut Staging<'_>,
    result: &JobResult,
    previous: Option<jobhooks_model::JobStatus>,
) -> Result<(), StoreError> {
    if let Some(previous) = previous.filter(|&p| p != result.status) {
        st.remove(keys::result_by_status(previous, result.id));
    }
    st.put(keys::result_by_status(result.status, result.id), Vec::new());
    st.put_json(keys::result(result.id), result)
}

#[async_trait::async_trait]
impl ObjectReader for Store {
    async fn get_object(&self, reference: &ObjectRef) -> Result<Option<Object>, StoreError> {
        let key = keys::object(reference);
        let Some(pointer) = self.inner.tree.get(&key).map_err(backend_error)? else {
            return Ok(None);
        };
        let id = <[u8; 8]>::try_from(pointer.as_ref()).map(u64::from_be_bytes).map_err(|_| StoreError::Corrupt {
            kind: "object",
            key: reference.to_string(),
            reason: "the record is not a change id".into(),
        })?;
        let change = self.read_change(ChangeId(id))?.ok_or_else(|| StoreError::Corrupt {
            kind: "object",
            key: reference.to_string(),
            reason: format!("it points at change {id}, which does not exist"),
        })?;
        Ok(change.resulting_object())
    }
}

#[async_trait::async_trait]
impl ChangeStore for Store {
    async fn commit(
        &self,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, StoreError> {
        if changes.is_empty() {
            return Ok(CommitReceipt::default());
        }
        let receipt = self.write_durably(|w, st| self.stage_changes(w, st, context, changes, objects)).await?;
        if !receipt.runs.is_empty() {
            self.signal_work();
        }
        Ok(receipt)
    }

    async fn get_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StoreError> {
        self.read_change(id)
    }

    async fn changes_for_object(&self, object: &ObjectRef, limit: usize) -> Result<Vec<ObjectChange>, StoreError> {
        self.changes_by_index(self.inner.tree.scan_prefix(keys::changes_of_object(object)).keys().rev(), limit)
    }

    async fn changes_for_request(&self, request_id: Uuid) -> Result<Vec<ObjectChange>, StoreError> {
        self.changes_by_index(self.inner.tree.scan_prefix(keys::changes_of_request(request_id)).keys(), usize::MAX)
    }

    async fn changes_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StoreError> {
        let range = self.inner.tree.range(keys::time_bound(from)..keys::time_bound(to));
        self.changes_by_index(range.keys(), limit)
    }

    async fn list_objects(&self, content_type: &ContentType) -> Result<Vec<Object>, StoreError> {
        let mut objects = Vec::new();
        for key in self.inner.tree.scan_prefix(keys::objects_of_type(content_type.as_str())).keys() {
            let key = key.map_err(backend_error)?;
            let id = String::from_utf8_lossy(&key[keys::objects_of_type(content_type.as_str()).len()..]).into_owned();
            let reference = ObjectRef { content_type: content_type.clone(), id };
            objects.extend(self.get_object(&reference).await?);
        }
        Ok(objects)
    }
}
