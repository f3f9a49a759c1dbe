//! Importing an export into a new store: every record written as a commit and the queue would have
//! written it, in one transaction.

use std::collections::BTreeMap;

use jobhooks_model::ports::{Restore, RestoreError, RestoreReport};
use jobhooks_model::transfer::{Snapshot, check_new, restored_status};
use jobhooks_model::{Action, ChangeId, CountChange, JobResult, JobStatus, ObjectRef, QUEUED};

use crate::disk::ChangeRecordRef;
use crate::lines::{join_object_line, latest_index_entry, put_result, run_object};
use crate::records::{self, ObjectIndexEntry, QueueEntry, Repository};
use crate::staging::encode;
use crate::{Store, keys};

/// The change that holds each object of `snapshot`: the newest change of it that left it as the
/// snapshot has it. One pass over the changes, newest first.
fn holders(snapshot: &Snapshot) -> Result<BTreeMap<ObjectRef, ChangeId>, RestoreError> {
    let objects: BTreeMap<&ObjectRef, _> = snapshot.objects.iter().map(|object| (object.reference(), object)).collect();
    let mut holders = BTreeMap::new();
    for change in snapshot.changes.iter().rev() {
        let reference = change.object_ref();
        if holders.contains_key(&reference) {
            continue;
        }
        if let Some(object) = objects.get(&reference)
            && change.resulting_object().as_ref() == Some(*object)
        {
            holders.insert(reference, change.id);
        }
    }
    match snapshot.objects.iter().find(|object| !holders.contains_key(object.reference())) {
        Some(object) => {
            Err(RestoreError::Invalid(format!("object {} is not what any of its changes left", object.reference())))
        }
        None => Ok(holders),
    }
}

#[async_trait::async_trait]
impl Restore for Store {
    async fn restore(&self, snapshot: &Snapshot) -> Result<RestoreReport, RestoreError> {
        check_new(self).await?;
        let holders = holders(snapshot)?;
        let runs_by_change = snapshot.runs_by_change();
        let report = self
            .write_durably(|txn| -> Result<RestoreReport, RestoreError> {
                let mut report = RestoreReport::default();
                {
                    let (st, catalog) = txn.edit_catalog();
                    for job in &snapshot.jobs {
                        catalog.put_job(st, job.clone())?;
                    }
                    for user in &snapshot.users {
                        catalog.put_user(st, user.clone())?;
                    }
                    for token in &snapshot.tokens {
                        catalog.put_token(st, token.clone())?;
                    }
                    for hook in &snapshot.hooks {
                        catalog.put_hook(st, hook.clone(), None)?;
                    }
                    for button in &snapshot.buttons {
                        catalog.put_button(st, button.clone(), None)?;
                    }
                }
                let (writer, st) = txn.parts();
                let mut commit: Option<(uuid::Uuid, ChangeId, ChangeId)> = None;
                for change in &snapshot.changes {
                    let reference = change.object_ref();
                    // As a commit stores it: the prechange is found again from the previous change.
                    let mut record = change.clone();
                    if latest_index_entry(st, &reference)?.is_some() {
                        record.prechange = None;
                    }
                    let runs = runs_by_change.get(&change.id).cloned().unwrap_or_default();
                    st.put(
                        keys::change(change.id),
                        records::encode_change(&runs, &encode(&ChangeRecordRef::of(&record))?),
                    );
                    let repository = match holders.get(&reference) {
                        Some(holder) if *holder == change.id => Repository::Holds,
                        None if change.action == Action::Delete => Repository::Removed,
                        _ => Repository::NotApplied,
                    };
                    st.put(
                        keys::change_by_object(&reference, change.id),
                        ObjectIndexEntry { repository, line_tail: None }.encode(),
                    );
                    // Consecutive changes of one request are one commit of it.
                    commit = match commit {
                        Some((request, first, _)) if request == change.request_id => Some((request, first, change.id)),
                        Some((request, first, last)) => {
                            st.put(keys::commit_of_request(request, first), last.0.to_be_bytes().to_vec());
                            Some((change.request_id, change.id, change.id))
                        }
                        None => Some((change.request_id, change.id, change.id)),
                    };
                    writer.next_change = writer.next_change.max(change.id.0 + 1);
                    writer.last_time = writer.last_time.max(change.time);
                    report.changes += 1;
                }
                if let Some((request, first, last)) = commit {
                    st.put(keys::commit_of_request(request, first), last.0.to_be_bytes().to_vec());
                }
                for result in &snapshot.results {
                    let status = restored_status(result.status);
                    let restored = JobResult { status, ..result.clone() };
                    put_result(st, &restored)?;
                    let entry = QueueEntry {
                        attempts: result.attempts,
                        result_stored: true,
                        ..QueueEntry::queued(&result.job, result.user.clone(), result.inputs.clone(), result.created)
                    };
                    match status {
                        JobStatus::DeadLettered => {
                            st.put(keys::dead(result.id), entry.encode());
                            st.counts.apply(CountChange { pending: 0, leased: 0, dead: 1 });
                        }
                        JobStatus::Pending => {
                            let object = run_object(st, &result.inputs)?;
                            join_object_line(st, object.as_ref(), result.id, entry)?;
                            st.counts.apply(QUEUED);
                            report.queued += 1;
                        }
                        _ => {}
                    }
                    writer.next_run = writer.next_run.max(result.id.0 + 1);
                    report.results += 1;
                }
                Ok(report)
            })
            .await?;
        self.signal_work();
        Ok(report)
    }
}
