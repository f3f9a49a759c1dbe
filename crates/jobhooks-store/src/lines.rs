//! Object lines and the records both the change log and the queue keep.
//!
//! Runs about one object wait in a line, each behind the run queued before it, so that they start
//! one at a time in order. A commit appends hook runs to their object's line; the queue appends
//! button presses and replays, and moves a line on when its head finishes. Both read and write
//! queue entries, results and change records through the functions here, which sit below both.

use jobhooks_model::{ChangeId, ContentType, JobInputs, JobResult, ObjectChange, ObjectRef, RunId, StorageFailure};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::disk::{ChangeRecord, Stored};
use crate::keys;
use crate::records::{self, ObjectIndexEntry, QueueEntry};
use crate::staging::{Staging, corrupt, decode, decode_record, encode};

/// A run whose queue entry or result should be there and is not: the store is corrupt.
pub(crate) fn missing(kind: &'static str, run: RunId) -> StorageFailure {
    StorageFailure::Corrupt { kind, key: run.to_string(), reason: "the run's queue entry or result is missing".into() }
}

/// Decodes the queue entry stored at `key`.
pub(crate) fn decode_entry(key: &[u8], bytes: &[u8]) -> Result<QueueEntry, StorageFailure> {
    QueueEntry::decode(bytes).ok_or_else(|| corrupt("queue entry", key, "not a queue entry"))
}

/// Reads the queue entry at `key`.
pub(crate) fn entry_at(st: &Staging<'_>, key: &[u8]) -> Result<Option<QueueEntry>, StorageFailure> {
    st.get(key)?.map(|bytes| decode_entry(key, &bytes)).transpose()
}

/// Reads the result of `run` as stored (without the queue's view of it).
pub(crate) fn stored_result(st: &Staging<'_>, run: RunId) -> Result<Option<JobResult>, StorageFailure> {
    let key = keys::result(run);
    let Some(bytes) = st.get(&key)? else { return Ok(None) };
    let header = records::decode_result_header(&bytes).ok_or_else(|| corrupt("job result", &key, "no header"))?;
    decode_record("job result", &key, header.json).map(Some)
}

/// Where the unfinished run `run` is queued (ready or claimed, waiting in line, or waiting for a
/// retry), and its entry.
pub(crate) fn queued_entry(st: &Staging<'_>, run: RunId) -> Result<Option<(Vec<u8>, QueueEntry)>, StorageFailure> {
    for key in [keys::ready(run), keys::waiting(run)] {
        if let Some(entry) = entry_at(st, &key)? {
            return Ok(Some((key, entry)));
        }
    }
    // Few runs wait for a retry at once: a scan finds the run among them.
    for key in st.keys_with_prefix(keys::DELAYED)? {
        if keys::trailing_id(&key) == Some(run.0) {
            let entry = entry_at(st, &key)?;
            return Ok(entry.map(|entry| (key, entry)));
        }
    }
    Ok(None)
}

/// Queues `run` behind `tail`, the last run that joined its object's line, or makes it ready
/// when `tail` is unfinished no longer (or there is none): the line was empty. The caller counts
/// the run (a new run is [`QUEUED`]; a replay follows its transition).
pub(crate) fn join_line(
    st: &mut Staging<'_>,
    tail: Option<RunId>,
    run: RunId,
    entry: QueueEntry,
) -> Result<(), StorageFailure> {
    match tail.map(|tail| queued_entry(st, tail)).transpose()?.flatten() {
        Some((key, last)) => {
            st.put(key, QueueEntry { next: Some(run), ..last }.encode());
            st.put(keys::waiting(run), entry.encode());
        }
        None => st.put(keys::ready(run), entry.encode()),
    }
    Ok(())
}

/// Takes the head `run` out of its object's line (it finished or died): the run behind it becomes
/// ready.
pub(crate) fn leave_line(st: &mut Staging<'_>, run: RunId, entry: &QueueEntry) -> Result<(), StorageFailure> {
    st.remove(keys::ready(run));
    let Some(next) = entry.next else { return Ok(()) };
    let key = keys::waiting(next);
    let waiting = st.get(&key)?.map(|bytes| bytes.to_vec());
    let waiting = waiting.ok_or_else(|| corrupt("queue entry", &key, "the run next in line is not waiting"))?;
    st.remove(key);
    st.put(keys::ready(next), waiting);
    Ok(())
}

/// The object a run is about: the changed object of a hook run's change (`None` once the change is
/// pruned), or the object a button was pressed on (`None` when its type or id is invalid).
pub(crate) fn run_object(st: &Staging<'_>, inputs: &JobInputs) -> Result<Option<ObjectRef>, StorageFailure> {
    Ok(match inputs {
        JobInputs::Hook { object_change, .. } => {
            read_change_json::<ObjectOnly>(st, *object_change)?.map(|(_, change)| change.object_ref()).transpose()?
        }
        JobInputs::Button { object_pk, object_model_name } => {
            ContentType::new(object_model_name.as_str()).ok().and_then(|ct| ObjectRef::new(ct, object_pk.as_str()).ok())
        }
    })
}

#[derive(Deserialize)]
struct ObjectOnly {
    changed_object_type: ContentType,
    changed_object_id: String,
}

impl ObjectOnly {
    fn object_ref(self) -> Result<ObjectRef, StorageFailure> {
        recorded_object(self.changed_object_type, self.changed_object_id)
    }
}

/// The reference of a recorded change's object; an id that no longer passes the model's checks
/// means the record is corrupt.
pub(crate) fn recorded_object(content_type: ContentType, id: String) -> Result<ObjectRef, StorageFailure> {
    ObjectRef::new(content_type, id).map_err(|e| StorageFailure::Corrupt {
        kind: "change",
        key: "changed_object_id".to_owned(),
        reason: e.to_string(),
    })
}

/// The newest object index entry of `reference` and its key: the object's latest change, which
/// holds the last run that joined the object's line.
pub(crate) fn latest_index_entry(
    st: &Staging<'_>,
    reference: &ObjectRef,
) -> Result<Option<(Vec<u8>, ObjectIndexEntry)>, StorageFailure> {
    let Some((key, value)) = st.last_with_prefix(&keys::changes_of_object(reference))? else { return Ok(None) };
    let entry =
        ObjectIndexEntry::decode(&value).ok_or_else(|| corrupt("object index", &key, "not an object index entry"))?;
    Ok(Some((key, entry)))
}

/// Queues `run` at the back of `object`'s line and makes it the line's last run. A run about an
/// object the store has no change of (or none) has no line: it is ready at once.
pub(crate) fn join_object_line(
    st: &mut Staging<'_>,
    object: Option<&ObjectRef>,
    run: RunId,
    entry: QueueEntry,
) -> Result<(), StorageFailure> {
    let latest = object.map(|object| latest_index_entry(st, object)).transpose()?.flatten();
    join_line(st, latest.as_ref().and_then(|(_, index)| index.line_tail), run, entry)?;
    if let Some((key, index)) = latest {
        st.put(key, ObjectIndexEntry { line_tail: Some(run), ..index }.encode());
    }
    Ok(())
}

/// The change `id` as stored (its prechange only when it is stored with it).
pub(crate) fn read_change(st: &Staging<'_>, id: ChangeId) -> Result<Option<ObjectChange>, StorageFailure> {
    let Some((_, record)) = read_change_json::<ChangeRecord>(st, id)? else { return Ok(None) };
    ObjectChange::from_record(record).map(Some).map_err(|reason| corrupt("change", &keys::change(id), &reason))
}

/// The runs change `id` queued and its JSON decoded as `T`.
pub(crate) fn read_change_json<T: DeserializeOwned>(
    st: &Staging<'_>,
    id: ChangeId,
) -> Result<Option<(Vec<RunId>, T)>, StorageFailure> {
    let key = keys::change(id);
    let Some(bytes) = st.get(&key)? else { return Ok(None) };
    let (runs, json) = records::decode_change(&bytes)
        .ok_or_else(|| corrupt("change", &key, "the record is shorter than its header"))?;
    Ok(Some((runs, decode("change", &key, json)?)))
}

/// Stores `result`.
pub(crate) fn put_result(st: &mut Staging<'_>, result: &JobResult) -> Result<(), StorageFailure> {
    st.put(keys::result(result.id), records::encode_result(result.status, &result.job, &encode(&result.to_record())?));
    Ok(())
}
