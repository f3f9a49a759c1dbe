//! The on-disk key layout. Every record lives in one sled tree (many trees amplify space, sled
//! #1484), under a four-byte prefix; integers are big-endian so keys sort numerically. See
//! `docs/ARCHITECTURE.md` for the table.

use jobhooks_model::{ChangeId, JobStatus, ObjectRef, RunId};
use time::OffsetDateTime;
use uuid::Uuid;

pub const FORMAT: &[u8] = b"meta/format";
/// The greatest run id whose result was pruned, so that run ids are never handed out twice.
pub const LAST_PRUNED_RUN: &[u8] = b"meta/last_pruned_run";
/// There while a process has the store open, removed when it closes the store: found at open, it
/// says that the process before did not close it (it crashed).
pub const OPENED: &[u8] = b"meta/opened";

pub const JOB: &[u8] = b"job/";
pub const HOOK: &[u8] = b"hok/";
pub const BUTTON: &[u8] = b"btn/";
pub const USER: &[u8] = b"usr/";
pub const TOKEN: &[u8] = b"tok/";
pub const PASSWORD: &[u8] = b"pwd/";
pub const LOGIN: &[u8] = b"lgn/";
pub const CHANGE: &[u8] = b"chg/";
pub const CHANGE_BY_OBJECT: &[u8] = b"cob/";
pub const CHANGE_BY_REQUEST: &[u8] = b"crq/";
pub const READY: &[u8] = b"rdy/";
pub const DELAYED: &[u8] = b"dly/";
pub const DEAD: &[u8] = b"ded/";
pub const WAITING: &[u8] = b"wai/";
pub const RESULT: &[u8] = b"res/";
pub const ATTEMPTS: &[u8] = b"att/";

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn named(prefix: &[u8], name: &str) -> Vec<u8> {
    key(&[prefix, name.as_bytes()])
}

/// `cob/{content type}\0`: the object index of every object of one type.
pub fn objects_of_type(content_type: &str) -> Vec<u8> {
    key(&[CHANGE_BY_OBJECT, content_type.as_bytes(), b"\0"])
}

pub fn change(id: ChangeId) -> Vec<u8> {
    key(&[CHANGE, &id.0.to_be_bytes()])
}

/// `cob/{content type}\0{id}\0`: names and ids never contain NUL (they reject control
/// characters).
pub fn changes_of_object(reference: &ObjectRef) -> Vec<u8> {
    key(&[CHANGE_BY_OBJECT, reference.content_type().as_str().as_bytes(), b"\0", reference.id().as_bytes(), b"\0"])
}

pub fn change_by_object(reference: &ObjectRef, id: ChangeId) -> Vec<u8> {
    key(&[&changes_of_object(reference), &id.0.to_be_bytes()])
}

pub fn changes_of_request(request: Uuid) -> Vec<u8> {
    key(&[CHANGE_BY_REQUEST, request.as_bytes()])
}

/// `crq/{request}{first change id}`: one key per commit; its value is the commit's last change id.
pub fn commit_of_request(request: Uuid, first: ChangeId) -> Vec<u8> {
    key(&[&changes_of_request(request), &first.0.to_be_bytes()])
}

/// Microseconds since the epoch, with the sign bit flipped so that earlier times sort first.
pub fn time(at: OffsetDateTime) -> [u8; 8] {
    let micros = (at.unix_timestamp_nanos() / 1_000) as i64;
    ((micros as u64) ^ (1 << 63)).to_be_bytes()
}

/// `rdy/{run}`: a run that may start (its object's turn, and due).
pub fn ready(run: RunId) -> Vec<u8> {
    key(&[READY, &run.0.to_be_bytes()])
}

/// `dly/{due}{run}`: a run waiting for its retry time.
pub fn delayed(due: OffsetDateTime, run: RunId) -> Vec<u8> {
    key(&[DELAYED, &time(due), &run.0.to_be_bytes()])
}

/// `ded/{run}`: a dead-lettered run.
pub fn dead(run: RunId) -> Vec<u8> {
    key(&[DEAD, &run.0.to_be_bytes()])
}

/// `wai/{run}`: a run behind another in its object's line.
pub fn waiting(run: RunId) -> Vec<u8> {
    key(&[WAITING, &run.0.to_be_bytes()])
}

/// `att/{journal}`: the claims of one lease batch not yet settled, so that each counts as an
/// attempt even when the process dies running it.
pub fn attempts(journal: u64) -> Vec<u8> {
    key(&[ATTEMPTS, &journal.to_be_bytes()])
}

pub fn result(run: RunId) -> Vec<u8> {
    key(&[RESULT, &run.0.to_be_bytes()])
}

pub fn status_tag(status: JobStatus) -> u8 {
    match status {
        JobStatus::Pending => b'P',
        JobStatus::Started => b'S',
        JobStatus::Success => b'O',
        JobStatus::Failure => b'F',
        JobStatus::Retrying => b'R',
        JobStatus::DeadLettered => b'D',
    }
}

/// The status a [`status_tag`] stands for; `None` for a byte that is no tag.
pub fn status_of_tag(tag: u8) -> Option<JobStatus> {
    [
        JobStatus::Pending,
        JobStatus::Started,
        JobStatus::Success,
        JobStatus::Failure,
        JobStatus::Retrying,
        JobStatus::DeadLettered,
    ]
    .into_iter()
    .find(|&status| status_tag(status) == tag)
}

/// The big-endian `u64` that ends an index key.
pub fn trailing_id(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn time_keys_sort_like_times(a in -1_000_000_000i64..4_000_000_000, b in -1_000_000_000i64..4_000_000_000) {
            let (ta, tb) = (
                OffsetDateTime::from_unix_timestamp(a).unwrap(),
                OffsetDateTime::from_unix_timestamp(b).unwrap(),
            );
            prop_assert_eq!(ta.cmp(&tb), time(ta).cmp(&time(tb)));
        }

        #[test]
        fn id_keys_sort_like_ids(a: u64, b: u64) {
            prop_assert_eq!(a.cmp(&b), change(ChangeId(a)).cmp(&change(ChangeId(b))));
            prop_assert_eq!(trailing_id(&commit_of_request(Uuid::from_u64_pair(a, b), ChangeId(b))), Some(b));
        }
    }
}
