//! The binary records of the queue, and the binary headers in front of change and result records.
//!
//! Queue entries are read and rewritten on every lease and completion, so they are a few fixed-width
//! integers and the object's ordering key, not JSON. Change and result records stay JSON (they are
//! what users read), behind a small header holding what scans and the queue need without decoding
//! the JSON. Every decoder checks lengths: arbitrary bytes give `None`, never a panic.

use jobhooks_model::{JobStatus, RunId};

/// Where a head run of the queue stands (`rdy/`, `dly/` and `ded/` values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueEntry {
    /// How many leases the run has had: the number of the current one, telling it from lapsed
    /// ones. Never reset, not even by a replay.
    pub leases: u64,
    /// How many times it has been started since it was queued or replayed.
    pub attempts: u32,
    /// The current claim: its deadline and when it started (microseconds since the epoch).
    pub lease: Option<Claim>,
    /// The object the run is about (`content type\0id`): runs of one object start one at a time.
    pub object: String,
}

/// A worker's claim on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    pub deadline: i64,
    pub started: i64,
}

/// A run's counters while it waits in its object's line (`rob/` values), so that a run that loses
/// its turn to an older one keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InLine {
    pub leases: u64,
    pub attempts: u32,
}

impl InLine {
    pub fn encode(self) -> Vec<u8> {
        [&self.leases.to_be_bytes()[..], &self.attempts.to_be_bytes()[..]].concat()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let leases = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let attempts = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
        (bytes.len() == 12).then_some(Self { leases, attempts })
    }

    /// The unclaimed queue entry of a run of `object` with these counters.
    pub fn entry(self, object: String) -> QueueEntry {
        QueueEntry { leases: self.leases, attempts: self.attempts, lease: None, object }
    }
}

const ENTRY_FIXED: usize = 8 + 4 + 1 + 8 + 8;

impl QueueEntry {
    /// The counters to keep while the run waits in line.
    pub fn in_line(&self) -> InLine {
        InLine { leases: self.leases, attempts: self.attempts }
    }

    /// `leases u64 | attempts u32 | claimed u8 | deadline i64 | started i64 | object`, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_FIXED + self.object.len());
        out.extend_from_slice(&self.leases.to_be_bytes());
        out.extend_from_slice(&self.attempts.to_be_bytes());
        let claim = self.lease.unwrap_or(Claim { deadline: 0, started: 0 });
        out.push(u8::from(self.lease.is_some()));
        out.extend_from_slice(&claim.deadline.to_be_bytes());
        out.extend_from_slice(&claim.started.to_be_bytes());
        out.extend_from_slice(self.object.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let fixed = bytes.get(..ENTRY_FIXED)?;
        let leases = u64::from_be_bytes(fixed[0..8].try_into().ok()?);
        let attempts = u32::from_be_bytes(fixed[8..12].try_into().ok()?);
        let claimed = match fixed[12] {
            0 => false,
            1 => true,
            _ => return None,
        };
        let deadline = i64::from_be_bytes(fixed[13..21].try_into().ok()?);
        let started = i64::from_be_bytes(fixed[21..29].try_into().ok()?);
        let object = String::from_utf8(bytes[ENTRY_FIXED..].to_vec()).ok()?;
        Some(Self { leases, attempts, lease: claimed.then_some(Claim { deadline, started }), object })
    }
}

/// A result record: `status tag u8 | job length u16 | job | JSON of the JobResult`. Listing by
/// status or job reads the header only.
pub(crate) fn encode_result(status: JobStatus, job: &str, json: &[u8]) -> Vec<u8> {
    let job = &job.as_bytes()[..job.len().min(usize::from(u16::MAX))];
    let mut out = Vec::with_capacity(3 + job.len() + json.len());
    out.push(crate::keys::status_tag(status));
    out.extend_from_slice(&(job.len() as u16).to_be_bytes());
    out.extend_from_slice(job);
    out.extend_from_slice(json);
    out
}

/// The header of a result record and where its JSON starts.
pub(crate) struct ResultHeader<'a> {
    pub status_tag: u8,
    pub job: &'a [u8],
    pub json: &'a [u8],
}

pub(crate) fn decode_result_header(bytes: &[u8]) -> Option<ResultHeader<'_>> {
    let status_tag = *bytes.first()?;
    let len = usize::from(u16::from_be_bytes(bytes.get(1..3)?.try_into().ok()?));
    let job = bytes.get(3..3 + len)?;
    Some(ResultHeader { status_tag, job, json: &bytes[3 + len..] })
}

/// A change record: `run count u16 | run ids u64… | JSON of the ObjectChange`. The runs are those
/// the change queued, so a change's results are found without an index.
pub(crate) fn encode_change(runs: &[RunId], json: &[u8]) -> Vec<u8> {
    let runs = &runs[..runs.len().min(usize::from(u16::MAX))];
    let mut out = Vec::with_capacity(2 + 8 * runs.len() + json.len());
    out.extend_from_slice(&(runs.len() as u16).to_be_bytes());
    for run in runs {
        out.extend_from_slice(&run.0.to_be_bytes());
    }
    out.extend_from_slice(json);
    out
}

/// The runs a change queued and its JSON.
pub(crate) fn decode_change(bytes: &[u8]) -> Option<(Vec<RunId>, &[u8])> {
    let count = usize::from(u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?));
    let end = 2 + 8 * count;
    let ids = bytes.get(2..end)?;
    let runs = ids.chunks_exact(8).map(|c| RunId(u64::from_be_bytes(c.try_into().unwrap_or_default()))).collect();
    Some((runs, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = QueueEntry> {
        (any::<u64>(), any::<u32>(), any::<Option<(i64, i64)>>(), "[a-z.\0-9]{0,20}").prop_map(
            |(leases, attempts, lease, object)| QueueEntry {
                leases,
                attempts,
                lease: lease.map(|(deadline, started)| Claim { deadline, started }),
                object,
            },
        )
    }

    proptest! {
        #[test]
        fn queue_entries_round_trip(entry in entry()) {
            prop_assert_eq!(QueueEntry::decode(&entry.encode()), Some(entry));
        }

        #[test]
        fn line_counters_round_trip(leases: u64, attempts: u32) {
            let in_line = InLine { leases, attempts };
            prop_assert_eq!(InLine::decode(&in_line.encode()), Some(in_line));
        }

        #[test]
        fn headers_round_trip(runs in prop::collection::vec(any::<u64>(), 0..5), job in "[a-z:]{0,30}", json in prop::collection::vec(any::<u8>(), 0..40)) {
            let runs: Vec<RunId> = runs.into_iter().map(RunId).collect();
            let encoded = encode_change(&runs, &json);
            prop_assert_eq!(decode_change(&encoded), Some((runs, &json[..])));
            let encoded = encode_result(JobStatus::Failure, &job, &json);
            let header = decode_result_header(&encoded).unwrap();
            prop_assert_eq!((header.status_tag, header.job, header.json), (b'F', job.as_bytes(), &json[..]));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = QueueEntry::decode(&bytes);
            let _ = InLine::decode(&bytes);
            let _ = decode_change(&bytes);
            let _ = decode_result_header(&bytes).map(|h| h.json.len());
        }
    }
}
