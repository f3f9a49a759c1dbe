//! Object lines: the runs about one object start in the order they were queued, whichever process
//! claims them.
//!
//! Each run with a line carries `head`: whether no earlier run of its line is unfinished. Claims
//! take only heads, so a claim reads the runs it takes and no others, however long the lines
//! behind them are. `head` is decided when a run joins a line (it is the head when its line has no
//! unfinished run) and when a run leaves the unfinished states (the earliest unfinished run of its
//! line becomes the head). Both happen under the line's transaction-scoped advisory lock, taken in
//! a statement of its own before the statement that decides: under `READ COMMITTED` that
//! statement's snapshot then sees whatever the lock's previous holder committed, so a run joining a
//! line and the run ahead of it leaving are never decided from snapshots that miss each other.
//!
//! Invariant: an unfinished run with `head` false has an earlier unfinished run in its line; when a
//! line's earliest unfinished run is not a head, the transaction that made it so has not
//! committed.

use std::sync::LazyLock;

use jobhooks_model::StorageFailure;

use crate::db::Db;
use crate::db_error;

/// The statuses of unfinished runs, as SQL.
pub(crate) const UNFINISHED: &str = "('PENDING', 'STARTED', 'RETRYING')";

/// Locks lines given by their keys, in the order given.
pub(crate) const LOCK: &str = "SELECT pg_advisory_xact_lock(key) FROM unnest($1::bigint[]) AS key";

/// Makes the earliest unfinished run of each line given its head (see [`promote_heads`]).
pub(crate) static PROMOTE_HEADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobhooks_runs SET head = true WHERE id IN (
             SELECT next.id FROM unnest($1::text[]) AS finished(line)
             CROSS JOIN LATERAL (SELECT id FROM jobhooks_runs
                                 WHERE line = finished.line AND status IN {UNFINISHED}
                                 ORDER BY place LIMIT 1) next)
           AND NOT head"
    )
});

/// The advisory lock key of `line`: 64-bit FNV-1a of its UTF-8 bytes, with `jh` mixed into the
/// offset basis. Part of the storage layout: every process sharing a database must compute the
/// same key. A collision only makes two lines wait for each other.
pub(crate) fn lock_key(line: &str) -> i64 {
    fnv1a(line.as_bytes())
}

fn fnv1a(bytes: &[u8]) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325 ^ 0x6a68;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = bytes.iter().fold(OFFSET, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
    hash as i64
}

/// Takes the advisory locks of `lines` until the transaction ends, in ascending key order (the
/// order every writer follows, so that two writers never wait for each other in a cycle).
pub(crate) async fn lock<'a>(client: &impl Db, lines: impl IntoIterator<Item = &'a str>) -> Result<(), StorageFailure> {
    let mut keys: Vec<i64> = lines.into_iter().map(lock_key).collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    client.execute(LOCK, &[&keys]).await.map_err(db_error("cannot lock the runs' object lines"))?;
    Ok(())
}

/// Makes the earliest unfinished run of each of `lines` its head, and says how many runs became
/// heads. Runs after runs of these lines became final (or left them); the caller holds the lines'
/// locks.
pub(crate) async fn promote_heads(client: &impl Db, lines: &[String]) -> Result<u64, StorageFailure> {
    if lines.is_empty() {
        return Ok(0);
    }
    client.execute(&PROMOTE_HEADS, &[&lines]).await.map_err(db_error("cannot move the runs' object lines on"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lock_keys_are_stable() {
        // Processes of different builds share a database: the key of a line must never change.
        assert_eq!(lock_key(""), 0xcbf2_9ce4_8422_494d_u64 as i64);
        assert_eq!(lock_key("dcim.device/1"), lock_key("dcim.device/1"));
        assert_ne!(lock_key("dcim.device/1"), lock_key("dcim.device/2"));
    }

    proptest! {
        #[test]
        fn lines_differing_in_one_byte_have_different_keys(
            line in proptest::collection::vec(any::<u8>(), 1..40),
            at in any::<prop::sample::Index>(),
            other in any::<u8>(),
        ) {
            // Each step of FNV-1a is a bijection of the state, so one different byte always
            // gives a different key: lines of one object type never share a lock by accident.
            let at = at.index(line.len());
            prop_assume!(line[at] != other);
            let mut changed = line.clone();
            changed[at] = other;
            prop_assert_ne!(fnv1a(&line), fnv1a(&changed));
        }
    }
}
