//! Retention: pruning finished results and old changes so that the store stays bounded.

use std::collections::BTreeSet;

use jobhooks_model::ports::{PruneReport, Retention};
use jobhooks_model::{ChangeFacts, ChangeId, ContentType, OffsetDateTime, StorageFailure};
use serde::Deserialize;
use uuid::Uuid;

use crate::changes::commits_of_request;
use crate::lines::{queued_entry, read_change_json, recorded_object};
use crate::staging::{Staging, backend_error, corrupt, decode, indexed_id};
use crate::{Store, keys, records};

/// Records examined per step; the writer lock is released between steps.
const STEP: usize = 512;

/// Where a pruning pass stands: the last key it examined, or done.
type Resume = Option<Vec<u8>>;

/// The fields of a change that pruning needs.
#[derive(Deserialize)]
struct ChangeKeys {
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    request_id: Uuid,
    changed_object_type: ContentType,
    changed_object_id: String,
}

/// The field of a result that pruning needs.
#[derive(Deserialize)]
struct Created {
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
}

impl Store {
    pub(crate) async fn prune_pass(
        &self,
        retention: &Retention,
        now: OffsetDateTime,
    ) -> Result<PruneReport, StorageFailure> {
        let mut report = PruneReport::default();
        if retention.results_for.is_some() {
            let mut resume = Some(keys::RESULT.to_vec());
            while let Some(after) = resume {
                let ((removed, next), _ticket) =
                    self.write(|_, st| self.prune_results_step(st, retention, now, after))?;
                report.results += removed;
                resume = next;
                tokio::task::yield_now().await;
            }
        }
        if retention.changes_for.is_some() {
            let mut resume = Some(keys::CHANGE.to_vec());
            while let Some(after) = resume {
                let ((removed, next), _ticket) =
                    self.write(|_, st| self.prune_changes_step(st, retention, now, after))?;
                report.changes += removed;
                resume = next;
                tokio::task::yield_now().await;
            }
        }
        Ok(report)
    }

    /// Removes up to [`STEP`] results that `retention` lets go at `now`, from `after` on.
    fn prune_results_step(
        &self,
        st: &mut Staging<'_>,
        retention: &Retention,
        now: OffsetDateTime,
        after: Vec<u8>,
    ) -> Result<(u64, Resume), StorageFailure> {
        let Some(cutoff) = retention.results_cutoff(now) else { return Ok((0, None)) };
        let mut removed = 0;
        let mut last = None;
        for entry in self.inner.tree.range(after.clone()..).take(STEP) {
            let (key, value) = entry.map_err(backend_error)?;
            if !key.starts_with(keys::RESULT) {
                return Ok((removed, None));
            }
            if key.as_ref() == after.as_slice() {
                continue;
            }
            let header =
                records::decode_result_header(&value).ok_or_else(|| corrupt("job result", &key, "no header"))?;
            let result: Created = decode("job result", &key, header.json)?;
            if result.created >= cutoff {
                // Results are numbered in the order they were queued: all later ones are newer.
                return Ok((removed, None));
            }
            let status = keys::status_of_tag(header.status_tag)
                .ok_or_else(|| corrupt("job result", &key, "an unknown status tag"))?;
            if retention.may_prune_result(status, result.created, now) {
                st.remove(key.to_vec());
                let run = indexed_id("job result", &key)?;
                let last_pruned = st.get(keys::LAST_PRUNED_RUN)?.and_then(|bytes| keys::trailing_id(&bytes));
                if last_pruned.is_none_or(|last| run > last) {
                    st.put(keys::LAST_PRUNED_RUN.to_vec(), run.to_be_bytes().to_vec());
                }
                removed += 1;
            }
            last = Some(key.to_vec());
        }
        Ok((removed, last))
    }

    /// Removes up to [`STEP`] changes that `retention` lets go at `now`, from `after` on.
    fn prune_changes_step(
        &self,
        st: &mut Staging<'_>,
        retention: &Retention,
        now: OffsetDateTime,
        after: Vec<u8>,
    ) -> Result<(u64, Resume), StorageFailure> {
        let Some(cutoff) = retention.changes_cutoff(now) else { return Ok((0, None)) };
        let mut removed = Vec::new();
        let mut last = None;
        for key in self.inner.tree.range(after.clone()..).keys().take(STEP) {
            let key = key.map_err(backend_error)?;
            if !key.starts_with(keys::CHANGE) {
                break;
            }
            if key.as_ref() == after.as_slice() {
                continue;
            }
            let Some(id) = keys::trailing_id(&key).map(ChangeId) else { continue };
            let Some((runs, change)) = read_change_json::<ChangeKeys>(st, id)? else { continue };
            if change.time >= cutoff {
                // Changes are numbered in time order: all later ones are newer.
                last = None;
                break;
            }
            last = Some(key.to_vec());
            let object = recorded_object(change.changed_object_type, change.changed_object_id)?;
            let latest = st.last_with_prefix(&keys::changes_of_object(&object))?;
            let is_latest = latest.and_then(|(k, _)| keys::trailing_id(&k)) == Some(id.0);
            let mut has_kept_runs = false;
            for &run in &runs {
                has_kept_runs |= st.contains(&keys::result(run))? || queued_entry(st, run)?.is_some();
            }
            let facts = ChangeFacts { time: change.time, is_latest_of_object: is_latest, has_kept_runs };
            if !retention.may_prune_change(facts, now) {
                continue;
            }
            st.remove(keys::change(id));
            st.remove(keys::change_by_object(&object, id));
            removed.push((change.request_id, id));
        }
        self.prune_emptied_commits(st, &removed)?;
        Ok((removed.len() as u64, last))
    }

    /// Removes the request index entry of each commit whose changes are now all pruned.
    fn prune_emptied_commits(&self, st: &mut Staging<'_>, removed: &[(Uuid, ChangeId)]) -> Result<(), StorageFailure> {
        let requests: BTreeSet<Uuid> = removed.iter().map(|&(request, _)| request).collect();
        for request in requests {
            for commit in commits_of_request(&self.inner.tree, request) {
                let (key, changes_of_commit) = commit?;
                let mut emptied = true;
                for change in self.inner.tree.range(changes_of_commit).keys() {
                    if st.contains(&change.map_err(backend_error)?)? {
                        emptied = false;
                        break;
                    }
                }
                if emptied {
                    st.remove(key.to_vec());
                }
            }
        }
        Ok(())
    }
}
