//! The object repository, the change log, and the transactional outbox.

use std::ops::Bound;

use jobhooks_model::ports::{ChangePage, ChangeStore, CommitReceipt, ObjectReader, ObjectWrites};
use jobhooks_model::{
    Action, ChangeContext, ChangeError, ChangeId, ChangeSet, ContentType, JobInputs, Object, ObjectChange, ObjectRef,
    OffsetDateTime, RunId, StorageFailure,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::disk::ChangeRecordRef;
use crate::lines::{join_line, latest_index_entry, read_change, read_change_json, recorded_object};
use crate::recent::{Holds, Prechange, Recent};
use crate::records::{self, ObjectIndexEntry, QueueEntry, Repository};
use crate::staging::{Bytes, KeyRange, Staging, corrupt, encode, indexed_id, key_range};
use crate::{Store, Writer, keys};

/// What a change record says about the object it leaves: decoded into an object without copying
/// its data, as [`ObjectChange::resulting_object`] would.
#[derive(Deserialize)]
struct ResultingObject {
    action: Action,
    changed_object_type: ContentType,
    changed_object_id: String,
    object_repr: String,
    object_data: serde_json::Value,
}

impl ResultingObject {
    fn into_object(self) -> Option<Object> {
        if self.action == Action::Delete {
            return None;
        }
        let reference = ObjectRef::new(self.changed_object_type, self.changed_object_id).ok()?;
        Object::new(reference, self.object_repr, self.object_data).ok()
    }
}

impl Store {
    /// Stages the changes of one change context: change records and their indexes, the objects
    /// (with [`ObjectWrites::Apply`]), and a queued run per matching hook.
    pub(crate) fn stage_changes(
        &self,
        w: &mut Writer,
        st: &mut Staging<'_>,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, StorageFailure> {
        let mut receipt = CommitReceipt::default();
        let now = w.now();
        for pending in changes.into_changes() {
            let id = ChangeId(w.next_change);
            w.next_change += 1;
            let reference = pending.object.clone();
            let previous = latest_index_entry(st, &reference)?;
            // The prechange is the data of the object's previous change, found again when the
            // change is read (as Nautobot does): each object's data is stored once. Only pre-data
            // the writer supplied for an object without history is stored with the change.
            // Hooks see the pre-data the writer supplied (their conditions read it).
            let mut record = ObjectChange::from_pending(id, now, context, pending, None);
            // The object's line passes from its previous change to this one.
            let mut line_tail = previous.as_ref().and_then(|(_, index)| index.line_tail);
            let runs = self.stage_hook_runs(w, st, &record, context, now, &mut line_tail)?;
            if previous.is_some() {
                record.prechange = None;
            }
            let encoded = encode(&ChangeRecordRef::of(&record))?;
            st.put(keys::change(id), records::encode_change(&runs, &encoded));
            // The object index is also the object repository: the object is the result of its latest
            // applied change, so its data is never written twice.
            let repository = match (objects, record.action) {
                (ObjectWrites::RecordOnly, _) => Repository::NotApplied,
                (ObjectWrites::Apply, Action::Create | Action::Update) => Repository::Holds,
                (ObjectWrites::Apply, Action::Delete) => Repository::Removed,
            };
            st.put(keys::change_by_object(&reference, id), ObjectIndexEntry { repository, line_tail }.encode());
            if self.inner.recent.keeps() {
                let prechange = match previous.as_ref().and_then(|(key, _)| keys::trailing_id(key)) {
                    Some(previous) => Prechange::DataOf(ChangeId(previous)),
                    None => Prechange::Stored,
                };
                let holds = match repository {
                    Repository::Holds => Holds::Object,
                    Repository::Removed => Holds::Nothing,
                    Repository::NotApplied => Holds::Unchanged,
                };
                self.inner.recent.staged(record, prechange, holds, encoded.len());
            }
            receipt.changes.push(id);
            receipt.runs.extend(runs);
        }
        if let (Some(&first), Some(&last)) = (receipt.changes.first(), receipt.changes.last()) {
            st.put(keys::commit_of_request(context.request_id, first), last.0.to_be_bytes().to_vec());
        }
        Ok(receipt)
    }

    /// Queues a run of each enabled hook that `record` matches, in the line that ends at
    /// `line_tail`, which ends at the last of them afterwards.
    fn stage_hook_runs(
        &self,
        w: &mut Writer,
        st: &mut Staging<'_>,
        record: &ObjectChange,
        context: &ChangeContext,
        now: OffsetDateTime,
        line_tail: &mut Option<RunId>,
    ) -> Result<Vec<RunId>, StorageFailure> {
        let catalog = self.catalog();
        // The catalog indexes hooks by content type and action: the rule sees only candidates.
        let matches = catalog
            .hooks_for(&record.changed_object_type, record.action)
            .map(|hooks| hooks.matches(context.kind, record, |job| catalog.job(job)))
            .unwrap_or_default();
        for hook in &matches.skipped {
            let (name, job) = (&hook.name, &hook.job);
            tracing::warn!(
                hook = %name, job = %job, change = %record.id,
                "JobHook {name} is enabled, but the underlying Job {job} is not installed and enabled"
            );
        }
        // A webhook's run keeps its hook, which says where to send.
        let jobs: Vec<(String, Option<uuid::Uuid>)> =
            matches.run.iter().map(|hook| (hook.job.clone(), hook.webhook.as_ref().map(|_| hook.id))).collect();
        drop(catalog);
        let mut runs = Vec::with_capacity(jobs.len());
        for (job, hook) in jobs {
            let run = w.new_run();
            let inputs = JobInputs::Hook { object_change: record.id, hook };
            join_line(st, *line_tail, run, QueueEntry::queued(&job, context.user.clone(), inputs, now))?;
            st.counts.apply(jobhooks_model::QUEUED);
            *line_tail = Some(run);
            runs.push(run);
        }
        Ok(runs)
    }

    /// The data of the change of `reference` just before `before`: the prechange of `before`.
    /// Only that field is decoded.
    fn previous_data(
        &self,
        st: &Staging<'_>,
        reference: &ObjectRef,
        before: ChangeId,
    ) -> Result<Option<serde_json::Value>, StorageFailure> {
        let range = key_range(keys::changes_of_object(reference), keys::change_by_object(reference, before));
        let previous = st.scan(range, true).next().transpose()?;
        let Some((key, _)) = previous else { return Ok(None) };
        let id = ChangeId(indexed_id("change index", &key)?);
        Ok(read_change_json::<DataOnly>(st, id)?.map(|(_, change)| change.object_data))
    }

    /// The change `id` with its prechange.
    pub(crate) fn read_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StorageFailure> {
        let st = self.view();
        if let Some(Recent { mut change, missing_prechange }) = self.inner.recent.change(id) {
            if let Some(previous) = missing_prechange {
                change.prechange = read_change_json::<DataOnly>(&st, previous)?.map(|(_, change)| change.object_data);
            }
            return Ok(Some(change));
        }
        let Some(mut change) = read_change(&st, id)? else { return Ok(None) };
        if let Some(previous) = self.previous_data(&st, &change.object_ref(), id)? {
            change.prechange = Some(previous);
        }
        Ok(Some(change))
    }

    /// The changes named by the ids ending `keys_in_order`, in that order.
    fn changes_by_index<'s>(
        &self,
        keys_in_order: impl Iterator<Item = Result<(Bytes<'s>, Bytes<'s>), StorageFailure>>,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        let mut changes = Vec::new();
        for entry in keys_in_order.take(limit) {
            let (key, _) = entry?;
            if let Some(change) =
                keys::trailing_id(&key).map(ChangeId).map(|id| self.read_change(id)).transpose()?.flatten()
            {
                changes.push(change);
            }
        }
        Ok(changes)
    }

    /// The first change at or after `at` (changes are numbered in time order), by binary search
    /// over the ids: changes have no time index.
    fn first_change_at(&self, at: OffsetDateTime) -> Result<u64, StorageFailure> {
        let st = self.view();
        let (mut low, mut high) = (1, self.writer().next_change);
        while low < high {
            let middle = low + (high - low) / 2;
            // The first change that exists at or after `middle` (pruning leaves gaps).
            let found = st.scan(key_range(keys::change(ChangeId(middle)), keys::change(ChangeId(high))), false).next();
            let Some((key, _)) = found.transpose()? else {
                high = middle;
                continue;
            };
            let id = keys::trailing_id(&key).unwrap_or(high);
            match read_change_json::<TimeOnly>(&st, ChangeId(id))? {
                Some((_, change)) if change.time < at => low = id + 1,
                _ => high = middle,
            }
        }
        Ok(low)
    }
}

/// The fields of a stored change a [`ChangeFilter`](jobhooks_model::ChangeFilter) reads: the
/// rest of the record (its object's data, above all) is passed over unread.
#[derive(Deserialize)]
struct FilteredFields {
    user: Option<String>,
    user_name: String,
    request_id: Uuid,
    action: Action,
    changed_object_type: String,
    changed_object_id: String,
    change_context: jobhooks_model::ChangeContextKind,
    change_context_detail: String,
    object_repr: String,
}

impl Store {
    /// The ids of the changes `filter` may admit, newest first, from the narrowest index the
    /// store has for it: one object's changes, one request's, or the whole log.
    fn candidate_changes<'s>(
        st: &'s Staging<'_>,
        filter: &jobhooks_model::ChangeFilter,
    ) -> Box<dyn Iterator<Item = Result<ChangeId, StorageFailure>> + 's> {
        let ids_of = |entries: crate::staging::Scan<'s>| {
            entries.map(|entry| entry.and_then(|(key, _)| Ok(ChangeId(indexed_id("change index", &key)?))))
        };
        if let Some(object) = filter.object() {
            return Box::new(ids_of(st.scan_prefix_rev(&keys::changes_of_object(&object))));
        }
        if let [request] = filter.request_ids.as_slice() {
            let mut commits: Vec<_> = commits_of_request(st, *request).collect();
            commits.reverse();
            return Box::new(commits.into_iter().flat_map(move |commit| -> Box<dyn Iterator<Item = _>> {
                match commit {
                    Ok((_, changes)) => Box::new(ids_of(st.scan(changes, true))),
                    Err(failure) => Box::new(std::iter::once(Err(failure))),
                }
            }));
        }
        Box::new(ids_of(st.scan_prefix_rev(keys::CHANGE)))
    }

    /// Whether the change `id` passes `filter`, read from the fields the filter reads.
    fn passes(st: &Staging<'_>, id: ChangeId, filter: &jobhooks_model::ChangeFilter) -> Result<bool, StorageFailure> {
        let Some((_, fields)) = read_change_json::<FilteredFields>(st, id)? else { return Ok(false) };
        let mut borrowed = jobhooks_model::ChangeFields::of_parts(id, fields.action, fields.request_id);
        borrowed.user = fields.user.as_deref();
        borrowed.user_name = &fields.user_name;
        borrowed.content_type = &fields.changed_object_type;
        borrowed.object_id = &fields.changed_object_id;
        borrowed.change_context = fields.change_context;
        borrowed.change_context_detail = &fields.change_context_detail;
        borrowed.object_repr = &fields.object_repr;
        Ok(filter.admits_fields(&borrowed))
    }
}

#[derive(Deserialize)]
struct TimeOnly {
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
}

/// The time of the latest change (the epoch when there is none): change times never go back, not
/// even across restarts, so that ids and times sort alike.
pub(crate) fn last_change_time(st: &Staging<'_>) -> Result<OffsetDateTime, StorageFailure> {
    let last = st.last_with_prefix(keys::CHANGE)?.map(|(key, _)| key);
    let Some(id) = last.and_then(|key| keys::trailing_id(&key)) else { return Ok(OffsetDateTime::UNIX_EPOCH) };
    Ok(read_change_json::<TimeOnly>(st, ChangeId(id))?.map_or(OffsetDateTime::UNIX_EPOCH, |(_, c)| c.time))
}

#[derive(Deserialize)]
struct DataOnly {
    object_data: serde_json::Value,
}

/// The commits of one change context: each commit's request index key and the range of its
/// change keys (its changes are numbered from first to last).
pub(crate) fn commits_of_request<'s>(
    st: &'s Staging<'_>,
    request: Uuid,
) -> impl Iterator<Item = Result<(Vec<u8>, KeyRange), StorageFailure>> + 's {
    st.scan_prefix(&keys::changes_of_request(request)).map(|commit| {
        let (key, last) = commit?;
        let first = indexed_id("request index", &key)?;
        let last = <[u8; 8]>::try_from(last.as_ref())
            .map_err(|_| corrupt("request index", &key, "the entry does not hold the commit's last change id"))?;
        let last = keys::change(ChangeId(u64::from_be_bytes(last)));
        let changes = (Bound::Included(keys::change(ChangeId(first))), Bound::Included(last));
        Ok((key.to_vec(), changes))
    })
}

/// The change that holds an object's current data, from the newest of `entries` (an object's index
/// entries, newest first) that was applied to the repository.
fn holding_change<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    entries: impl Iterator<Item = Result<(K, V), StorageFailure>>,
) -> Result<Option<ChangeId>, StorageFailure> {
    for entry in entries {
        let (key, value) = entry?;
        let (key, value) = (key.as_ref(), value.as_ref());
        let index =
            ObjectIndexEntry::decode(value).ok_or_else(|| corrupt("object index", key, "not an object index entry"))?;
        match index.repository {
            Repository::Holds => return Ok(keys::trailing_id(key).map(ChangeId)),
            Repository::Removed => return Ok(None),
            Repository::NotApplied => {}
        }
    }
    Ok(None)
}

impl Store {
    /// The change that holds the current data of `reference` in the repository.
    fn object_pointer(&self, reference: &ObjectRef) -> Result<Option<ChangeId>, StorageFailure> {
        if let Some(holder) = self.inner.recent.holder(reference) {
            return Ok(holder);
        }
        holding_change(self.view().scan_prefix_rev(&keys::changes_of_object(reference)))
    }

    /// The object as change `id`, which the repository says holds it, left it. Only the change's
    /// own record is read: an object needs no prechange.
    fn object_held_by(&self, reference: &ObjectRef, id: ChangeId) -> Result<Object, StorageFailure> {
        let object = match self.inner.recent.object_left_by(id) {
            Some(object) => object,
            None => {
                let st = self.view();
                let change = read_change_json::<ResultingObject>(&st, id)?.map(|(_, change)| change);
                change.and_then(ResultingObject::into_object)
            }
        };
        object.ok_or_else(|| StorageFailure::Corrupt {
            kind: "object",
            key: reference.to_string(),
            reason: format!("it points at change {id}, which does not exist or left no object"),
        })
    }
}

#[async_trait::async_trait]
impl ObjectReader for Store {
    async fn get_object(&self, reference: &ObjectRef) -> Result<Option<Object>, StorageFailure> {
        match self.object_pointer(reference)? {
            Some(id) => self.object_held_by(reference, id).map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl ChangeStore for Store {
    async fn commit(
        &self,
        context: &ChangeContext,
        changes: ChangeSet,
        objects: ObjectWrites,
    ) -> Result<CommitReceipt, ChangeError> {
        if changes.is_empty() {
            return Ok(CommitReceipt::default());
        }
        let receipt = self
            .write_durably(|txn| {
                let (w, st) = txn.parts();
                self.stage_changes(w, st, context, changes, objects)
            })
            .await?;
        if !receipt.runs.is_empty() {
            self.signal_work();
        }
        Ok(receipt)
    }

    async fn get_change(&self, id: ChangeId) -> Result<Option<ObjectChange>, StorageFailure> {
        self.read_change(id)
    }

    async fn get_change_and_object(
        &self,
        id: ChangeId,
    ) -> Result<Option<(ObjectChange, Option<Object>)>, StorageFailure> {
        let Some(change) = self.read_change(id)? else { return Ok(None) };
        let reference = change.object_ref();
        let object = match self.object_pointer(&reference)? {
            // Still the object's latest change: the object is this change's result.
            Some(latest) if latest == id => change.resulting_object(),
            Some(latest) => Some(self.object_held_by(&reference, latest)?),
            None => None,
        };
        Ok(Some((change, object)))
    }

    async fn changes_for_object(&self, object: &ObjectRef, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        self.changes_by_index(self.view().scan_prefix_rev(&keys::changes_of_object(object)), limit)
    }

    async fn changes_for_request(&self, request_id: Uuid) -> Result<Vec<ObjectChange>, StorageFailure> {
        let mut changes = Vec::new();
        let st = self.view();
        for commit in commits_of_request(&st, request_id) {
            let (_, changes_of_commit) = commit?;
            changes.extend(self.changes_by_index(st.scan(changes_of_commit, false), usize::MAX)?);
        }
        Ok(changes)
    }

    async fn changes_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        let (first, end) = (self.first_change_at(from)?, self.first_change_at(to)?);
        let st = self.view();
        self.changes_by_index(
            st.scan(key_range(keys::change(ChangeId(first)), keys::change(ChangeId(end))), false),
            limit,
        )
    }

    async fn object_types(&self) -> Result<Vec<ContentType>, StorageFailure> {
        // `cob/{content type}\0…`: one seek per type, each past every key of the type before it.
        let view = self.view();
        let mut types = Vec::new();
        let mut from = keys::CHANGE_BY_OBJECT.to_vec();
        let end = crate::staging::prefix_range(keys::CHANGE_BY_OBJECT).1;
        while let Some(entry) = view.scan((std::ops::Bound::Included(from.clone()), end.clone()), false).next() {
            let (key, _) = entry?;
            let rest = &key[keys::CHANGE_BY_OBJECT.len()..];
            let name = rest.split(|byte| *byte == 0).next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            types.push(
                ContentType::new(name.clone())
                    .map_err(|error| StorageFailure::corrupt("object index", &name, error))?,
            );
            from = keys::objects_of_type(&name);
            *from.last_mut().expect("ends with NUL") = 1;
        }
        Ok(types)
    }

    async fn list_objects(&self, content_type: &ContentType) -> Result<Vec<Object>, StorageFailure> {
        self.objects_after(content_type, None, usize::MAX).await
    }

    async fn objects_after(
        &self,
        content_type: &ContentType,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Object>, StorageFailure> {
        // The object index holds every change of every object of the type, grouped by object
        // (`{prefix}{id}\0{change id}`): take each object's holding change, newest first within
        // the group. Ids never contain NUL, so `{prefix}{after}\x01` is past every key of `after`
        // and before every greater id's.
        let prefix = keys::objects_of_type(content_type.as_str());
        let range = match after {
            Some(after) => {
                let start = [prefix.as_slice(), after.as_bytes(), &[1]].concat();
                (std::ops::Bound::Included(start), crate::staging::prefix_range(&prefix).1)
            }
            None => crate::staging::prefix_range(&prefix),
        };
        // `{prefix}{id}\0{change id}`: the object's id.
        let object_of = |key: &[u8]| key.get(prefix.len()..key.len().saturating_sub(9)).map(<[u8]>::to_vec);
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut objects = Vec::new();
        // The object of one group of entries, if a change of the group holds it.
        let held = |entries: &mut Vec<(Vec<u8>, Vec<u8>)>| -> Result<Option<Object>, StorageFailure> {
            let id = entries.last().and_then(|(key, _)| object_of(key)).unwrap_or_default();
            let Some(change) = holding_change(entries.drain(..).rev().map(Ok))? else {
                return Ok(None);
            };
            let reference = recorded_object(content_type.clone(), String::from_utf8_lossy(&id).into_owned())?;
            self.object_held_by(&reference, change).map(Some)
        };
        for entry in self.view().scan(range, false) {
            if objects.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            if entries.last().is_some_and(|(last, _)| object_of(last) != object_of(&key)) {
                objects.extend(held(&mut entries)?);
            }
            entries.push((key.to_vec(), value.to_vec()));
        }
        if objects.len() < limit {
            objects.extend(held(&mut entries)?);
        }
        Ok(objects)
    }

    async fn changes_after(&self, after: ChangeId, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let st = self.view();
        let range = key_range(keys::change(ChangeId(after.0.saturating_add(1))), keys::change(ChangeId(u64::MAX)));
        self.changes_by_index(st.scan(range, false), limit)
    }

    async fn latest_changes(&self, limit: usize) -> Result<Vec<ObjectChange>, StorageFailure> {
        let st = self.view();
        self.changes_by_index(st.scan_prefix_rev(keys::CHANGE), limit)
    }

    async fn count_changes(&self) -> Result<u64, StorageFailure> {
        let removals = self.inner.change_removals.load(std::sync::atomic::Ordering::SeqCst);
        let mut counted = self.inner.change_count.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if counted.removals != Some(removals) {
            *counted = ChangeCount { removals: Some(removals), ..ChangeCount::default() };
        }
        // Only the changes committed since the last count are read: their keys come after it.
        let st = self.view();
        let since = key_range(keys::change(ChangeId(counted.through + 1)), keys::change(ChangeId(u64::MAX)));
        for entry in st.scan(since, false) {
            let (key, _) = entry?;
            counted.count += 1;
            counted.through = keys::trailing_id(&key).unwrap_or(counted.through);
        }
        Ok(counted.count)
    }

    async fn change_page(&self, page: &ChangePage) -> Result<Vec<ObjectChange>, StorageFailure> {
        // The offset's keys are passed over; only the page's changes are read.
        let st = self.view();
        let prefix = match &page.object {
            Some(object) => keys::changes_of_object(object),
            None => keys::CHANGE.to_vec(),
        };
        self.changes_by_index(st.scan_prefix_rev(&prefix).skip(page.offset), page.limit)
    }

    async fn find_changes(
        &self,
        filter: &jobhooks_model::ChangeFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ObjectChange>, StorageFailure> {
        if filter.only_object() {
            return self.change_page(&ChangePage::new(filter.object(), offset, limit)).await;
        }
        let st = self.view();
        let (mut skipped, mut page) = (0, Vec::new());
        for id in Self::candidate_changes(&st, filter) {
            if page.len() >= limit {
                break;
            }
            let id = id?;
            if !Self::passes(&st, id, filter)? {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            page.extend(self.read_change(id)?);
        }
        Ok(page)
    }

    async fn count_changes_where(&self, filter: &jobhooks_model::ChangeFilter) -> Result<u64, StorageFailure> {
        if filter.only_object() {
            return self.count_changes_of(filter.object().as_ref()).await;
        }
        let st = self.view();
        let mut count = 0;
        for id in Self::candidate_changes(&st, filter) {
            count += u64::from(Self::passes(&st, id?, filter)?);
        }
        Ok(count)
    }

    async fn count_changes_of(&self, object: Option<&ObjectRef>) -> Result<u64, StorageFailure> {
        match object {
            Some(object) => count_keys(self.view().scan_prefix(&keys::changes_of_object(object))),
            None => self.count_changes().await,
        }
    }
}

/// The change log's size as last counted: `count` keys up to the change `through`, counted when
/// `removals` changes had been removed. Changes are added with ids past every earlier one and
/// removed only by pruning, so the next count adds the keys past `through`, unless changes were
/// removed since, when it counts again from the start.
#[derive(Debug, Default)]
pub(crate) struct ChangeCount {
    through: u64,
    count: u64,
    removals: Option<u64>,
}

/// How many entries `entries` yields, their values unread.
fn count_keys<'s>(
    entries: impl Iterator<Item = Result<(Bytes<'s>, Bytes<'s>), StorageFailure>>,
) -> Result<u64, StorageFailure> {
    let mut count = 0;
    for entry in entries {
        entry?;
        count += 1;
    }
    Ok(count)
}
