//! Retention: pruning finished results and old changes so that the store stays bounded.

use std::collections::BTreeSet;
use std::ops::Bound;

use jobhooks_model::ports::{PruneReport, Retention};
use jobhooks_model::{ChangeFacts, ChangeId, ContentType, OffsetDateTime, StorageFailure};
use serde::Deserialize;
use uuid::Uuid;

use crate::changes::commits_of_request;
use crate::lines::{queued_entry, read_change_json, recorded_object};
use crate::staging::{Entries, Staging, corrupt, decode, indexed_id};
use crate::{Commit, Store, keys, records};

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

/// Up to [`STEP`] entries after the key `after`: what one step examines.
fn step_from(st: &Staging<'_>, after: Vec<u8>) -> Result<Entries, StorageFailure> {
    st.scan((Bound::Excluded(after), Bound::Unbounded), false)
        .take(STEP)
        .map(|entry| entry.map(|(key, value)| (key.to_vec(), value.to_vec())))
        .collect()
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
                    self.transact(Commit::Now, |txn| Self::prune_results_step(txn.staging(), retention, now, after))?;
                report.results += removed;
                resume = next;
                tokio::task::yield_now().await;
            }
        }
        if retention.changes_for.is_some() {
            let mut resume = Some(keys::CHANGE.to_vec());
            while let Some(after) = resume {
                let ((removed, next), _ticket) = self.transact(Commit::Now, |txn| {
                    let step = Self::prune_changes_step(txn.staging(), retention, now, after)?;
                    if step.0 > 0 {
                        // Cached changes and prechanges must not outlive the pruned records; the
                        // cache is emptied before the removal reaches the tree.
                        self.inner.recent.clear();
                    }
                    Ok::<_, StorageFailure>(step)
                })?;
                if removed > 0 {
                    // Counts of the change log made before are counted again.
                    self.inner.change_removals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                report.changes += removed;
                resume = next;
                tokio::task::yield_now().await;
            }
        }
        Ok(report)
    }

    /// Removes up to [`STEP`] results that `retention` lets go at `now`, from `after` on.
    fn prune_results_step(
        st: &mut Staging<'_>,
        retention: &Retention,
        now: OffsetDateTime,
        after: Vec<u8>,
    ) -> Result<(u64, Resume), StorageFailure> {
        let Some(cutoff) = retention.results_cutoff(now) else { return Ok((0, None)) };
        let mut removed = 0;
        let mut last = None;
        for (key, value) in step_from(st, after)? {
            if !key.starts_with(keys::RESULT) {
                return Ok((removed, None));
            }
            let header =
                records::decode_result_header(&value).ok_or_else(|| corrupt("job result", &key, "no header"))?;
            let result: Created = decode("job result", &key, header.json)?;
            let status = keys::status_of_tag(header.status_tag)
                .ok_or_else(|| corrupt("job result", &key, "an unknown status tag"))?;
            if result.created >= cutoff {
                // Results are numbered in the order they were queued: all later ones are newer.
                return Ok((removed, None));
            }
            if retention.may_prune_result(status, result.created, now) {
                let run = indexed_id("job result", &key)?;
                st.remove(key.clone());
                let last_pruned = st.get(keys::LAST_PRUNED_RUN)?.and_then(|bytes| keys::trailing_id(&bytes));
                if last_pruned.is_none_or(|last| run > last) {
                    st.put(keys::LAST_PRUNED_RUN.to_vec(), run.to_be_bytes().to_vec());
                }
                removed += 1;
            }
            last = Some(key);
        }
        Ok((removed, last))
    }

    /// Removes up to [`STEP`] changes that `retention` lets go at `now`, from `after` on.
    fn prune_changes_step(
        st: &mut Staging<'_>,
        retention: &Retention,
        now: OffsetDateTime,
        after: Vec<u8>,
    ) -> Result<(u64, Resume), StorageFailure> {
        let Some(cutoff) = retention.changes_cutoff(now) else { return Ok((0, None)) };
        let mut removed = Vec::new();
        let mut last = None;
        for (key, _) in step_from(st, after)? {
            if !key.starts_with(keys::CHANGE) {
                break;
            }
            let Some(id) = keys::trailing_id(&key).map(ChangeId) else { continue };
            let Some((runs, change)) = read_change_json::<ChangeKeys>(st, id)? else { continue };
            if change.time >= cutoff {
                // Changes are numbered in time order: all later ones are newer.
                last = None;
                break;
            }
            last = Some(key.clone());
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
        Self::prune_emptied_commits(st, &removed)?;
        Ok((removed.len() as u64, last))
    }

    /// Removes the request index entry of each commit whose changes are now all pruned.
    fn prune_emptied_commits(st: &mut Staging<'_>, removed: &[(Uuid, ChangeId)]) -> Result<(), StorageFailure> {
        let requests: BTreeSet<Uuid> = removed.iter().map(|&(request, _)| request).collect();
        let mut emptied = Vec::new();
        for request in requests {
            for commit in commits_of_request(st, request) {
                let (key, changes_of_commit) = commit?;
                // The scan counts this step's removals: a change still there keeps its commit.
                if st.scan(changes_of_commit, false).next().transpose()?.is_none() {
                    emptied.push(key);
                }
            }
        }
        for key in emptied {
            st.remove(key);
        }
        Ok(())
    }
}
