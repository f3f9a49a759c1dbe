//! The claims this process's workers hold, kept in memory (format 4).
//!
//! A claim writes nothing to its run's queue entry: only one process opens a store, so the claims
//! of the process that holds it are all there are, and a crash ends every one of them. What must
//! outlive a crash is that the claim was an attempt: a run whose receiver takes the process down
//! every time has to reach its dead letter, not loop forever. So the claims of one lease batch are
//! written, with the claim, as one attempt journal (`att/{journal}`: each run and its attempts
//! counting this claim). A write that settles a claim (the run's completion, or the claim given
//! up) takes the run out of its journal in the same batch, and the journal's key goes once its
//! last claim is settled: a lease batch whose runs complete together costs one journal write and
//! one removal. Opening a store counts every claim still in a journal as an attempt that lapsed
//! (`Store::recover_claims`).
//!
//! The claims are published like the catalog: readers clone an `Arc`, an operation edits a copy
//! that the engine publishes under the writer mutex once the operation's writes are in (see
//! `Store::transact`). A completed run's claim stays visible, marked ended, until the completion is
//! applied to the tree, so that a reader never sees a run that is running as pending.

use std::collections::HashMap;

use jobhooks_model::RunId;

use crate::keys;
use crate::records::{JournalEntry, encode_journal};
use crate::staging::Staging;

/// A claim on one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// Tells this claim from earlier, lapsed ones on the same run.
    pub token: u64,
    /// When the claim lapses (microseconds since the epoch).
    pub deadline: i64,
    /// When the claim was taken (microseconds since the epoch).
    pub started: i64,
    /// The run's attempts, this claim's included.
    pub attempts: u32,
    /// The attempt journal that lists the claim.
    journal: u64,
    /// The run's completion is staged, not yet applied to the tree.
    pub ended: bool,
}

impl Held {
    /// The key of the attempt journal that lists the claim.
    pub fn journal_key(&self) -> Vec<u8> {
        keys::attempts(self.journal)
    }
}

/// Every claim this process holds, and the attempt journals that list them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claims {
    held: HashMap<RunId, Held>,
    /// The unsettled claims of each journal, as its key holds them.
    journals: HashMap<u64, Vec<JournalEntry>>,
    /// Claims ended by completions that are staged but not yet applied to the tree.
    ending: Vec<(RunId, u64)>,
    next_token: u64,
    next_journal: u64,
}

impl Claims {
    /// No claims. Journals are numbered from 1: opening a store removes every journal it finds.
    pub fn new() -> Self {
        Self { next_journal: 1, next_token: 1, ..Self::default() }
    }

    /// The claim on `run`, ended or not.
    pub fn get(&self, run: RunId) -> Option<&Held> {
        self.held.get(&run)
    }

    /// The claim on `run` that a worker still holds.
    pub fn active(&self, run: RunId) -> Option<&Held> {
        self.held.get(&run).filter(|held| !held.ended)
    }

    /// How many claims are held, ended ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// The runs whose active claims `lapsed` says have lapsed (by deadline), oldest first.
    pub fn lapsed(&self, lapsed: impl Fn(i64) -> bool) -> Vec<(RunId, Held)> {
        let mut runs: Vec<(RunId, Held)> = self
            .held
            .iter()
            .filter(|(_, held)| !held.ended && lapsed(held.deadline))
            .map(|(run, held)| (*run, *held))
            .collect();
        runs.sort_unstable_by_key(|(run, _)| *run);
        runs
    }

    /// Claims `runs` (each with its attempts, this claim's included) as one lease batch until
    /// `deadline`, staging their attempt journal. Returns each claim.
    pub fn claim_batch(
        &mut self,
        st: &mut Staging<'_>,
        runs: &[(RunId, u32)],
        started: i64,
        deadline: i64,
    ) -> Vec<Held> {
        if runs.is_empty() {
            return Vec::new();
        }
        let journal = self.next_journal;
        self.next_journal += 1;
        let entries: Vec<JournalEntry> = runs.iter().map(|&(run, attempts)| JournalEntry { run, attempts }).collect();
        st.put(keys::attempts(journal), encode_journal(&entries));
        self.journals.insert(journal, entries);
        runs.iter()
            .map(|&(run, attempts)| {
                let held = Held { token: self.next_token, deadline, started, attempts, journal, ended: false };
                self.next_token += 1;
                self.held.insert(run, held);
                held
            })
            .collect()
    }

    /// Settles the claim on `run`: takes it out of its journal (staging the journal's rewrite,
    /// or its removal when it was the last), and ends it. A completion keeps it visible until it
    /// is applied (`until_applied`); a claim given up is gone at once.
    pub fn settle(&mut self, st: &mut Staging<'_>, run: RunId, until_applied: bool) {
        let Some(held) = self.held.get_mut(&run) else { return };
        if let Some(entries) = self.journals.get_mut(&held.journal) {
            entries.retain(|entry| entry.run != run);
            if entries.is_empty() {
                self.journals.remove(&held.journal);
                st.remove(keys::attempts(held.journal));
            } else {
                st.put(keys::attempts(held.journal), encode_journal(entries));
            }
        }
        if until_applied {
            held.ended = true;
            self.ending.push((run, held.token));
        } else {
            self.held.remove(&run);
        }
    }

    /// Whether claims ended by staged completions wait for them to be applied.
    pub fn has_ending(&self) -> bool {
        !self.ending.is_empty()
    }

    /// Forgets the claims of completions now applied to the tree.
    pub fn forget_ended(&mut self) {
        for (run, token) in std::mem::take(&mut self.ending) {
            if self.held.get(&run).is_some_and(|held| held.token == token) {
                self.held.remove(&run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::IoCounters;
    use crate::records::decode_journal;
    use proptest::prelude::*;

    /// An empty tree to stage on, and its counters.
    fn scratch() -> (tempfile::TempDir, sled::Tree, IoCounters) {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("t").unwrap();
        (dir, tree, IoCounters::new())
    }

    fn journal_in(st: &Staging<'_>, journal: u64) -> Option<Vec<JournalEntry>> {
        st.get(&keys::attempts(journal)).unwrap().map(|bytes| decode_journal(&bytes).unwrap())
    }

    proptest! {
        /// However a lease batch's claims are settled, its journal on disk lists exactly the
        /// claims not yet settled, and is gone once all are.
        #[test]
        fn a_journal_lists_exactly_the_unsettled_claims(
            batch in 1usize..12,
            settle_order in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            until_applied in any::<bool>(),
        ) {
            let (_dir, tree, io) = scratch();
            let mut st = Staging::new(&tree, &io);
            let mut claims = Claims::new();
            let runs: Vec<(RunId, u32)> = (0..batch as u64).map(|run| (RunId(run + 10), run as u32 + 1)).collect();
            let held = claims.claim_batch(&mut st, &runs, 5, 9);
            prop_assert_eq!(held.len(), batch);
            let journal = 1;
            let mut unsettled: Vec<(RunId, u32)> = runs.clone();
            for index in settle_order {
                let (run, _) = runs[index.index(runs.len())];
                claims.settle(&mut st, run, until_applied);
                unsettled.retain(|&(r, _)| r != run);
                prop_assert_eq!(claims.active(run), None);
                let expected: Vec<JournalEntry> =
                    unsettled.iter().map(|&(run, attempts)| JournalEntry { run, attempts }).collect();
                let found = journal_in(&st, journal);
                if expected.is_empty() {
                    prop_assert_eq!(found, None);
                } else {
                    prop_assert_eq!(found, Some(expected));
                }
            }
            claims.forget_ended();
            prop_assert_eq!(claims.len(), unsettled.len());
        }
    }

    #[test]
    fn an_ended_claim_is_forgotten_only_if_not_claimed_again() {
        let (_dir, tree, io) = scratch();
        let mut st = Staging::new(&tree, &io);
        let mut claims = Claims::new();
        let first = claims.claim_batch(&mut st, &[(RunId(1), 1), (RunId(2), 1)], 0, 10);
        claims.settle(&mut st, RunId(1), true);
        claims.settle(&mut st, RunId(2), true);
        assert_eq!(claims.get(RunId(1)).map(|held| held.ended), Some(true));
        // Run 2 retried at once and claimed again before the completion was applied.
        let second = claims.claim_batch(&mut st, &[(RunId(2), 2)], 20, 30);
        assert_ne!(first[1].token, second[0].token);
        claims.forget_ended();
        assert_eq!(claims.get(RunId(1)), None);
        assert_eq!(claims.active(RunId(2)), Some(&second[0]));
    }
}
