//! Retention: pruning finished results and old changes so that the store stays bounded.

use jobhooks_model::ports::{PruneReport, Retention};
use jobhooks_model::{ChangeId, ContentType, JobResult, JobStatus, ObjectRef, OffsetDateTime, RunId, StoreError};
use serde::Deserialize;
use uuid::Uuid;

use crate::staging::{Staging, decode};
use crate::{Store, backend_error, keys};

/// Records examined per step; the writer lock is released between steps.
const STEP: usize = 512;

/// Where a pruning pass stands: the last key it examined, or done.
type Resume = Option<Vec<u8>>;

/// The fields of a change that pruning needs.
#[derive(Deserialize)]
struct ChangeKeys {
    request_id: Uuid,
    changed_object_type: ContentType,
    changed_object_id: String,
}

impl Store {
    pub(crate) async fn prune_pass(
        &self,
        retention: &Retention,
        now: OffsetDateTime,
    ) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        if let Some(keep) = retention.results_for {
            let cutoff = now - keep;
            let mut resume = Some(keys::RESULT.to_vec());
            while let Some(after) = resume {
                let ((removed, next), _ticket) = self.write(|_, st| self.prune_results_step(st, cutoff, after))?;
                report.results += removed;
                resume = next;
                tokio::task::yield_now().await;
            }
        }
        if let Some(keep) = retention.changes_for {
            let cutoff = now - keep;
            let mut resume = Some(keys::CHANGE_BY_TIME.to_vec());
            while let Some(after) = resume {
                let ((removed, next), _ticket) = self.write(|_, st| self.prune_changes_step(st, cutoff, after))?;
                report.changes += removed;
                resume = next;
                tokio::task::yield_now().await;
            }
        }
        Ok(report)
    }

    /// Removes up to [`STEP`] finished results queued before `cutoff`, from `after` on.
    fn prune_results_step(
        &self,
        st: &mut Staging<'_>,
        cutoff: OffsetDateTime,
        after: Vec<u8>,
    ) -> Result<(u64, Resume), StoreError> {
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
            let result: JobResult = decode("job result", &key, &value)?;
            if result.created >= cutoff {
                // Results are numbered in the order they were queued: all later ones are newer.
                return Ok((removed, None));
            }
            if matches!(result.status, JobStatus::Success | JobStatus::Failure) {
                remove_result(st, &result);
                removed += 1;
            }
            last = Some(key.to_vec());
        }
        Ok((removed, last))
    }

    /// Removes up to [`STEP`] changes made before `cutoff`, from `after` on, keeping each object's
    /// latest change and changes whose results are kept.
    fn prune_changes_step(
        &self,
        st: &mut Staging<'_>,
        cutoff: OffsetDateTime,
        after: Vec<u8>,
    ) -> Result<(u64, Resume), StoreError> {
        let bound = keys::time_bound(cutoff);
        let mut removed = 0;
        let mut last = None;
        for key in self.inner.tree.range(after.clone()..bound).keys().take(STEP) {
            let key = key.map_err(backend_error)?;
            if key.as_ref() == after.as_slice() {
                continue;
            }
            last = Some(key.to_vec());
            let Some(id) = keys::trailing_id(&key).map(ChangeId) else { continue };
            let Some(bytes) = self.inner.tree.get(keys::change(id)).map_err(backend_error)? else { continue };
            let change: ChangeKeys = decode("change", &keys::change(id), &bytes)?;
            let object = ObjectRef { content_type: change.changed_object_type, id: change.changed_object_id };
            let latest = self.inner.tree.scan_prefix(keys::changes_of_object(&object)).keys().next_back().transpose();
            let is_latest = latest.map_err(backend_error)?.and_then(|k| keys::trailing_id(&k)) == Some(id.0);
            let has_results = self.inner.tree.scan_prefix(keys::results_of_change(id)).next().is_some();
            if is_latest || has_results {
                continue;
            }
            st.remove(keys::change(id));
            st.remove(keys::change_by_object(&object, id));
            st.remove(keys::change_by_request(change.request_id, id));
            st.remove(key.to_vec());
            removed += 1;
        }
        Ok((removed, last))
    }
}

fn remove_result(st: &mut Staging<'_>, result: &JobResult) {
    let run: RunId = result.id;
    st.remove(keys::result(run));
    st.remove(keys::result_by_job(&result.job, run));
    st.remove(keys::result_by_status(result.status, run));
    if let Some(change) = result.change_id() {
        st.remove(keys::result_by_change(change, run));
    }
}
