//! The binary records of the queue and the object index, and the binary headers in front of change
//! and result records.
//!
//! Queue entries are read and rewritten on every lease and completion, so they are fixed-width
//! integers and a few short strings, not JSON. Change and result records stay JSON (they are
//! what users read), behind a small header holding what scans and the queue need without decoding
//! the JSON. Every decoder checks lengths: arbitrary bytes give `None`, never a panic.

use jobhooks_model::{ChangeId, JobInputs, JobResult, JobStatus, OffsetDateTime, RunId};

/// `at` as microseconds since the epoch, the unit of the binary records.
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

/// The time `micros` microseconds after the epoch.
pub(crate) fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A queued run (`rdy/`, `wai/`, `dly/` and `ded/` values): where it stands, its place in its
/// object's line, and what its pending result is made of, so that a queued run needs no result
/// record until it has something to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueEntry {
    /// How many leases the run has had: the number of the current one, telling it from lapsed
    /// ones. Never reset, not even by a replay.
    pub leases: u64,
    /// How many times it has been started since it was queued or replayed.
    pub attempts: u32,
    /// The current claim: its deadline and when it started (microseconds since the epoch).
    pub lease: Option<Claim>,
    /// The run behind this one in its object's line, which becomes ready when this one leaves.
    pub next: Option<RunId>,
    /// Whether `res/` holds the run's result (an earlier attempt logged something, or it was
    /// replayed); otherwise its result is [`QueueEntry::pending_result`].
    pub result_stored: bool,
    /// When it was queued (microseconds since the epoch).
    pub created: i64,
    pub job: String,
    pub user: Option<String>,
    pub inputs: JobInputs,
}

/// A worker's claim on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    pub deadline: i64,
    pub started: i64,
}

const HOOK_INPUTS: u8 = 0;
const BUTTON_INPUTS: u8 = 1;
/// A webhook's run: the change, then the id of the hook that says where to send.
const WEBHOOK_INPUTS: u8 = 2;

impl QueueEntry {
    /// The entry of a run just queued.
    pub fn queued(job: &str, user: Option<String>, inputs: JobInputs, created: OffsetDateTime) -> Self {
        Self {
            leases: 0,
            attempts: 0,
            lease: None,
            next: None,
            result_stored: false,
            created: micros(created),
            job: job.to_owned(),
            user,
            inputs,
        }
    }

    /// The result of run `run` while nothing has been stored for it.
    pub fn pending_result(&self, run: RunId) -> JobResult {
        let created = from_micros(self.created);
        JobResult::pending(run, self.job.clone(), self.user.clone(), self.inputs.clone(), created)
    }

    /// `leases u64 | attempts u32 | claimed u8 | deadline i64 | started i64 | next u64 (0: none) |
    /// created i64 | result stored u8 | job | user present u8 | user | inputs tag u8 | change u64, or
    /// pk and model`, big-endian, each string a u16 length and its bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.job.len());
        out.extend_from_slice(&self.leases.to_be_bytes());
        out.extend_from_slice(&self.attempts.to_be_bytes());
        let claim = self.lease.unwrap_or(Claim { deadline: 0, started: 0 });
        out.push(u8::from(self.lease.is_some()));
        out.extend_from_slice(&claim.deadline.to_be_bytes());
        out.extend_from_slice(&claim.started.to_be_bytes());
        out.extend_from_slice(&self.next.map_or(0, |run| run.0).to_be_bytes());
        out.extend_from_slice(&self.created.to_be_bytes());
        out.push(u8::from(self.result_stored));
        put_str(&mut out, &self.job);
        out.push(u8::from(self.user.is_some()));
        put_str(&mut out, self.user.as_deref().unwrap_or_default());
        match &self.inputs {
            JobInputs::Hook { object_change, hook: None } => {
                out.push(HOOK_INPUTS);
                out.extend_from_slice(&object_change.0.to_be_bytes());
            }
            JobInputs::Hook { object_change, hook: Some(hook) } => {
                out.push(WEBHOOK_INPUTS);
                out.extend_from_slice(&object_change.0.to_be_bytes());
                out.extend_from_slice(hook.as_bytes());
            }
            JobInputs::Button { object_pk, object_model_name } => {
                out.push(BUTTON_INPUTS);
                put_str(&mut out, object_pk);
                put_str(&mut out, object_model_name);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let leases = r.u64()?;
        let attempts = u32::from_be_bytes(r.take()?);
        let claimed = r.flag()?;
        let claim = Claim { deadline: r.u64()? as i64, started: r.u64()? as i64 };
        let next = Some(r.u64()?).filter(|&run| run != 0).map(RunId);
        let created = r.u64()? as i64;
        let result_stored = r.flag()?;
        let job = r.string()?;
        let has_user = r.flag()?;
        let user = Some(r.string()?).filter(|_| has_user);
        let inputs = match r.take::<1>()? {
            [HOOK_INPUTS] => JobInputs::Hook { object_change: ChangeId(r.u64()?), hook: None },
            [WEBHOOK_INPUTS] => JobInputs::Hook {
                object_change: ChangeId(r.u64()?),
                hook: Some(uuid::Uuid::from_bytes(r.take::<16>()?)),
            },
            [BUTTON_INPUTS] => JobInputs::Button { object_pk: r.string()?, object_model_name: r.string()? },
            _ => return None,
        };
        let lease = claimed.then_some(claim);
        r.0.is_empty().then_some(Self { leases, attempts, lease, next, result_stored, created, job, user, inputs })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Reads a record front to back; every read checks the length.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }

    fn flag(&mut self) -> Option<bool> {
        match self.take::<1>()? {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::from(u16::from_be_bytes(self.take()?));
        let bytes = self.0.get(..len)?;
        self.0 = &self.0[len..];
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// What a change did to the object repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Repository {
    /// The object exists after the change, and the change holds its data.
    Holds = b'H',
    /// The change deleted the object from the repository.
    Removed = b'R',
    /// The change was recorded without being applied (`ObjectWrites::RecordOnly`).
    NotApplied = b'N',
}

/// An object index entry (`cob/` value): what its change did to the object repository, and the
/// last run queued in the object's line when the entry was last written. Only the object's newest
/// entry is read for the line: joining the line reads it there and writes it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectIndexEntry {
    pub repository: Repository,
    pub line_tail: Option<RunId>,
}

impl ObjectIndexEntry {
    /// `repository u8 [| line tail u64]`.
    pub fn encode(self) -> Vec<u8> {
        let mut out = vec![self.repository as u8];
        if let Some(tail) = self.line_tail {
            out.extend_from_slice(&tail.0.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let repository = match r.take::<1>()? {
            [b'H'] => Repository::Holds,
            [b'R'] => Repository::Removed,
            [b'N'] => Repository::NotApplied,
            _ => return None,
        };
        let line_tail = if r.0.is_empty() { None } else { Some(RunId(r.u64()?)) };
        r.0.is_empty().then_some(Self { repository, line_tail })
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

/// One outstanding claim in an attempt journal: the run, and its attempts counting the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalEntry {
    pub run: RunId,
    pub attempts: u32,
}

/// An attempt journal (`att/` values): `(run u64 | attempts u32)…`, the claims of one lease batch
/// that have not been settled by a write of their run's own.
pub(crate) fn encode_journal(entries: &[JournalEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 * entries.len());
    for entry in entries {
        out.extend_from_slice(&entry.run.0.to_be_bytes());
        out.extend_from_slice(&entry.attempts.to_be_bytes());
    }
    out
}

/// The claims of an attempt journal; `None` unless `bytes` is a whole number of entries.
pub(crate) fn decode_journal(bytes: &[u8]) -> Option<Vec<JournalEntry>> {
    let mut r = Reader(bytes);
    let mut entries = Vec::with_capacity(bytes.len() / 12);
    while !r.0.is_empty() {
        let run = RunId(r.u64()?);
        let attempts = u32::from_be_bytes(r.take()?);
        entries.push(JournalEntry { run, attempts });
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inputs() -> impl Strategy<Value = JobInputs> {
        prop_oneof![
            any::<u64>().prop_map(|id| JobInputs::Hook { object_change: ChangeId(id), hook: None }),
            (any::<u64>(), any::<u128>()).prop_map(|(id, hook)| JobInputs::Hook {
                object_change: ChangeId(id),
                hook: Some(uuid::Uuid::from_u128(hook)),
            }),
            ("[a-z0-9-]{0,12}", "[a-z.]{0,20}")
                .prop_map(|(object_pk, object_model_name)| JobInputs::Button { object_pk, object_model_name }),
        ]
    }

    fn entry() -> impl Strategy<Value = QueueEntry> {
        (
            (any::<u64>(), any::<u32>(), any::<Option<(i64, i64)>>(), any::<Option<u64>>()),
            (any::<bool>(), any::<i64>(), "[a-z.:]{0,30}", any::<Option<String>>(), inputs()),
        )
            .prop_map(|((leases, attempts, lease, next), (result_stored, created, job, user, inputs))| {
                QueueEntry {
                    leases,
                    attempts,
                    lease: lease.map(|(deadline, started)| Claim { deadline, started }),
                    next: next.filter(|&n| n != 0).map(RunId),
                    result_stored,
                    created,
                    job,
                    user,
                    inputs,
                }
            })
    }

    proptest! {
        #[test]
        fn queue_entries_round_trip(entry in entry()) {
            prop_assert_eq!(QueueEntry::decode(&entry.encode()), Some(entry));
        }

        #[test]
        fn object_index_entries_round_trip(which in 0usize..3, tail in any::<Option<u64>>()) {
            let repository = [Repository::Holds, Repository::Removed, Repository::NotApplied][which];
            let entry = ObjectIndexEntry { repository, line_tail: tail.map(RunId) };
            prop_assert_eq!(ObjectIndexEntry::decode(&entry.encode()), Some(entry));
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
        fn attempt_journals_round_trip(claims in prop::collection::vec((any::<u64>(), any::<u32>()), 0..40)) {
            let entries: Vec<JournalEntry> =
                claims.into_iter().map(|(run, attempts)| JournalEntry { run: RunId(run), attempts }).collect();
            prop_assert_eq!(decode_journal(&encode_journal(&entries)), Some(entries));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Some(entries) = decode_journal(&bytes) {
                prop_assert_eq!(entries.len() * 12, bytes.len());
            }
            let _ = QueueEntry::decode(&bytes);
            let _ = ObjectIndexEntry::decode(&bytes);
            let _ = decode_change(&bytes);
            let _ = decode_result_header(&bytes).map(|h| h.json.len());
        }
    }
}
