//! What opening a store does with the claims of the process that held it before, and the
//! migration from format 3.
//!
//! Only one process opens a store at a time, so every claim found at open belongs to a process
//! that is gone: it ends, counted as an attempt that lapsed (its run's log says so), and the run is
//! ready again. Format 4 finds those claims in the attempt journals (`att/`, see `claims.rs`);
//! format 3 wrote each claim into its run's queue entry. Either way the work is one atomic batch,
//! so a crash while opening leaves the store as it was, to be opened again.

use jobhooks_model::{JobStatus, MaintenanceError, OffsetDateTime, RunEvent, RunId, lapse_entry, transition};

use crate::lines::{decode_entry, entry_at, put_result, stored_result};
use crate::records::{JournalEntry, QueueEntry, decode_journal};
use crate::staging::{Staging, corrupt, indexed_id};
use crate::{Commit, FORMAT_VERSION, Store, keys};

/// Writes the end of a claim that lapsed with its process: the run's entry, unclaimed, holding
/// `attempts`, and its result with the lapse noted.
fn end_lapsed_claim(
    st: &mut Staging<'_>,
    run: RunId,
    entry: QueueEntry,
    attempts: u32,
    now: OffsetDateTime,
) -> Result<(), MaintenanceError> {
    let step = transition(JobStatus::Started, RunEvent::LeaseExpired)?;
    let mut result = if entry.result_stored {
        stored_result(st, run)?.ok_or_else(|| crate::lines::missing("job result", run))?
    } else {
        entry.pending_result(run)
    };
    result.attempts = attempts;
    result.status = step.to;
    result.logs.push(lapse_entry(attempts, now));
    put_result(st, &result)?;
    let entry = QueueEntry { lease: None, attempts, result_stored: true, ..entry };
    st.put(keys::ready(run), entry.encode());
    Ok(())
}

impl Store {
    /// Ends the claims that the attempt journals found at open list, each counted as an attempt,
    /// and removes the journals, in one batch. Returns how many claims ended.
    pub(crate) fn recover_claims(&self) -> Result<usize, MaintenanceError> {
        let now = self.inner.clock.now();
        let (ended, _ticket) = self.transact(Commit::Now, |txn| {
            let st = txn.staging();
            let mut journals = Vec::new();
            for item in st.scan_prefix(keys::ATTEMPTS) {
                let (key, value) = item?;
                let entries =
                    decode_journal(&value).ok_or_else(|| corrupt("attempt journal", &key, "not an attempt journal"))?;
                journals.push((key.to_vec(), entries));
            }
            let mut ended = 0;
            for (key, entries) in journals {
                st.remove(key);
                for JournalEntry { run, attempts } in entries {
                    // A claim is in a journal until a write of its run settles it, so its run is
                    // still ready with the attempts before the claim; a store that says otherwise
                    // already holds the attempt.
                    let Some(entry) = entry_at(st, &keys::ready(run))? else { continue };
                    if entry.attempts >= attempts {
                        continue;
                    }
                    end_lapsed_claim(st, run, entry, attempts, now)?;
                    ended += 1;
                }
            }
            Ok::<_, MaintenanceError>(ended)
        })?;
        Ok(ended)
    }

    /// Migrates a store of format 3 in place, in one batch: the claims its queue entries hold end
    /// (each already counted as an attempt there), and the format key says 4. Returns how many
    /// claims ended.
    pub(crate) fn migrate_from_format_3(&self) -> Result<usize, MaintenanceError> {
        let now = self.inner.clock.now();
        let (ended, _ticket) = self.transact(Commit::Now, |txn| {
            let st = txn.staging();
            let mut claimed = Vec::new();
            for item in st.scan_prefix(keys::READY) {
                let (key, value) = item?;
                let entry = decode_entry(&key, &value)?;
                if entry.lease.is_some() {
                    claimed.push((RunId(indexed_id("ready index", &key)?), entry));
                }
            }
            let ended = claimed.len();
            let step = transition(JobStatus::Started, RunEvent::LeaseExpired)?;
            for (run, entry) in claimed {
                st.counts.apply(step.counts);
                let attempts = entry.attempts;
                end_lapsed_claim(st, run, entry, attempts, now)?;
            }
            st.put(keys::FORMAT.to_vec(), FORMAT_VERSION.as_bytes().to_vec());
            Ok::<_, MaintenanceError>(ended)
        })?;
        Ok(ended)
    }
}
