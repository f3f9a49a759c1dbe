//! Recently committed changes, kept decoded: the run a commit queues reads its change, its
//! prechange and its object a moment later, and a change session reads the objects it is about to
//! change. Served from here, none of them decodes a record the store encoded a moment before.
//!
//! What it holds is what the tree holds, never more:
//!
//! - invariant: an entry is added while its change is staged, under the writer mutex, and served
//!   only once the change is in the tree: every change id up to `applied_through` was applied or
//!   rolled back, and a rolled-back operation removes its entries (`forget_from`) before the
//!   writer mutex is let go. A reader therefore never sees a change a crash could still lose, nor
//!   one that failed.
//! - invariant: changes are never rewritten, only removed by pruning, which empties the cache
//!   (`clear`), as does a restore: a cached change, its prechange and an object's holder read the
//!   same as from the tree. (A restore writes only into a store without changes.)
//! - invariant: its size is bounded: entries go oldest first once their estimated size passes the
//!   capacity ([`crate::StoreConfig::change_cache_capacity`]; zero keeps nothing).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jobhooks_model::{ChangeId, ObjectChange, ObjectRef};

/// Recently committed changes by id, and the change that holds each of their objects.
pub(crate) struct RecentChanges {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    changes: HashMap<ChangeId, Cached>,
    /// Cached change ids, oldest first: the order they leave in.
    order: VecDeque<ChangeId>,
    /// The estimated size of the cached changes.
    size: usize,
    /// The change holding each object's current data (`None`: deleted), for objects whose latest
    /// applied change is cached.
    holders: HashMap<ObjectRef, Holder>,
    /// Every change up to this id is in the tree or was rolled back.
    applied_through: u64,
}

struct Cached {
    /// The change as stored.
    change: Arc<ObjectChange>,
    /// Where its prechange comes from.
    prechange: Prechange,
    size: usize,
}

/// Where a change's prechange comes from, as a read of the tree finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prechange {
    /// The change's own record: its object had no earlier change.
    Stored,
    /// The data of the object's previous change.
    DataOf(ChangeId),
}

#[derive(Clone, Copy)]
struct Holder {
    change: Option<ChangeId>,
    /// The change that made it so.
    since: ChangeId,
}

/// A cached change as a reader gets it: with its prechange, unless that is the data of a change
/// the cache no longer has (`missing_prechange`), which the reader reads from the tree.
pub(crate) struct Recent {
    pub change: ObjectChange,
    pub missing_prechange: Option<ChangeId>,
}

/// What a committed change does to its object's holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holds {
    /// The change holds the object's data now.
    Object,
    /// The change deleted the object.
    Nothing,
    /// The change was recorded without being applied: the holder is as before.
    Unchanged,
}

impl RecentChanges {
    /// An empty cache of at most `capacity` bytes (estimated).
    pub(crate) fn new(capacity: usize) -> Self {
        Self { state: Mutex::new(State::default()), capacity }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every method leaves the state consistent before it can panic (no user code runs here).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether it keeps anything: with no capacity, staging need not prepare entries.
    pub(crate) fn keeps(&self) -> bool {
        self.capacity > 0
    }

    /// Adds `change`, as stored, being staged, whose encoded record is `encoded_len` bytes long.
    pub(crate) fn staged(&self, change: ObjectChange, prechange: Prechange, holds: Holds, encoded_len: usize) {
        if self.capacity == 0 {
            return;
        }
        // Decoded JSON takes a few times its text.
        let size = encoded_len.saturating_mul(3).saturating_add(256);
        let mut state = self.state();
        let id = change.id;
        match holds {
            Holds::Object => {
                state.holders.insert(change.object_ref(), Holder { change: Some(id), since: id });
            }
            Holds::Nothing => {
                state.holders.insert(change.object_ref(), Holder { change: None, since: id });
            }
            Holds::Unchanged => {}
        }
        if let Some(replaced) = state.changes.insert(id, Cached { change: Arc::new(change), prechange, size }) {
            state.size -= replaced.size;
        } else {
            state.order.push_back(id);
        }
        state.size += size;
        while state.size > self.capacity {
            let Some(oldest) = state.order.pop_front() else { break };
            state.evict(oldest);
        }
    }

    /// Says that every change up to `through` is in the tree (or was rolled back).
    pub(crate) fn applied(&self, through: u64) {
        let mut state = self.state();
        state.applied_through = state.applied_through.max(through);
    }

    /// Removes the changes from `first` on: their operation failed.
    pub(crate) fn forget_from(&self, first: ChangeId) {
        let mut state = self.state();
        let gone: Vec<ChangeId> = state.order.iter().copied().filter(|id| *id >= first).collect();
        if gone.is_empty() {
            return;
        }
        state.order.retain(|id| *id < first);
        for id in gone {
            state.evict(id);
        }
        state.holders.retain(|_, holder| holder.since < first);
    }

    /// Empties the cache: changes were removed from the tree.
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        let applied_through = state.applied_through;
        *state = State { applied_through, ..State::default() };
    }

    /// Change `id` with its prechange, if it is cached and in the tree.
    pub(crate) fn change(&self, id: ChangeId) -> Option<Recent> {
        let (change, previous) = {
            let state = self.state();
            if id.0 > state.applied_through {
                return None;
            }
            let cached = state.changes.get(&id)?;
            let previous = match cached.prechange {
                Prechange::Stored => None,
                Prechange::DataOf(previous) => Some((previous, state.changes.get(&previous).map(|p| p.change.clone()))),
            };
            (cached.change.clone(), previous)
        };
        // The deep copies are made with the lock let go.
        let mut change = ObjectChange::clone(&change);
        let missing_prechange = match previous {
            None => None,
            Some((_, Some(previous))) => {
                change.prechange = Some(previous.object_data.clone());
                None
            }
            Some((previous, None)) => Some(previous),
        };
        Some(Recent { change, missing_prechange })
    }

    /// The object change `id` left, if it is cached and in the tree: `Some(None)` after a delete.
    pub(crate) fn object_left_by(&self, id: ChangeId) -> Option<Option<jobhooks_model::Object>> {
        let change = {
            let state = self.state();
            if id.0 > state.applied_through {
                return None;
            }
            state.changes.get(&id)?.change.clone()
        };
        Some(change.resulting_object())
    }

    /// The change holding `reference`'s current data (`Some(None)`: it was deleted), if the cache
    /// knows it.
    pub(crate) fn holder(&self, reference: &ObjectRef) -> Option<Option<ChangeId>> {
        let state = self.state();
        let holder = state.holders.get(reference)?;
        (holder.since.0 <= state.applied_through).then_some(holder.change)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state().changes.len()
    }
}

impl State {
    /// Removes change `id` (already out of `order`), and its object's holder if it made it.
    fn evict(&mut self, id: ChangeId) {
        let Some(cached) = self.changes.remove(&id) else { return };
        self.size -= cached.size;
        let reference = cached.change.object_ref();
        if self.holders.get(&reference).is_some_and(|holder| holder.since == id) {
            self.holders.remove(&reference);
        }
    }
}

#[cfg(test)]
mod tests {
    use jobhooks_model::{Action, ChangeContext, ChangeContextKind, ContentType, Object, PendingChange, json};

    use super::*;

    fn change(id: u64, object: &str, data: serde_json::Value) -> ObjectChange {
        let context = ChangeContext::new(ChangeContextKind::Web, None, "");
        let pending = PendingChange::new(Action::Update, &Object::new(reference(object), object, data).unwrap());
        ObjectChange::from_pending(ChangeId(id), jobhooks_model::OffsetDateTime::UNIX_EPOCH, &context, pending, None)
    }

    fn reference(object: &str) -> ObjectRef {
        ObjectRef::new(ContentType::new("dcim.device").unwrap(), object).unwrap()
    }

    #[test]
    fn serves_a_change_only_once_it_is_applied() {
        let recent = RecentChanges::new(1 << 20);
        recent.staged(change(1, "a", json!({"n": 1})), Prechange::Stored, Holds::Object, 10);
        assert!(recent.change(ChangeId(1)).is_none());
        assert!(recent.object_left_by(ChangeId(1)).is_none());
        assert_eq!(recent.holder(&reference("a")), None);
        recent.applied(1);
        assert_eq!(recent.change(ChangeId(1)).unwrap().change.object_data, json!({"n": 1}));
        assert_eq!(recent.object_left_by(ChangeId(1)).unwrap().unwrap().data()["n"], 1);
        assert_eq!(recent.holder(&reference("a")), Some(Some(ChangeId(1))));
    }

    #[test]
    fn a_staged_holder_hides_until_applied() {
        let recent = RecentChanges::new(1 << 20);
        recent.staged(change(1, "a", json!({})), Prechange::Stored, Holds::Object, 10);
        recent.applied(1);
        recent.staged(change(2, "a", json!({})), Prechange::DataOf(ChangeId(1)), Holds::Nothing, 10);
        // Change 2 is not in the tree yet: the cache cannot say who holds the object.
        assert_eq!(recent.holder(&reference("a")), None);
        recent.applied(2);
        assert_eq!(recent.holder(&reference("a")), Some(None));
        recent.staged(change(3, "a", json!({})), Prechange::DataOf(ChangeId(2)), Holds::Unchanged, 10);
        recent.applied(3);
        assert_eq!(recent.holder(&reference("a")), Some(None));
    }

    #[test]
    fn a_failed_operation_leaves_nothing() {
        let recent = RecentChanges::new(1 << 20);
        recent.staged(change(1, "a", json!({})), Prechange::Stored, Holds::Object, 10);
        recent.staged(change(2, "b", json!({})), Prechange::Stored, Holds::Object, 10);
        recent.forget_from(ChangeId(2));
        recent.applied(2);
        assert!(recent.change(ChangeId(1)).is_some());
        assert!(recent.change(ChangeId(2)).is_none());
        assert_eq!(recent.holder(&reference("b")), None);
        assert_eq!(recent.len(), 1);
    }

    #[test]
    fn stays_within_its_capacity_oldest_first() {
        let recent = RecentChanges::new(3 * (3 * 10 + 256));
        for id in 1..=5 {
            recent.staged(change(id, &format!("o{id}"), json!({})), Prechange::Stored, Holds::Object, 10);
        }
        recent.applied(5);
        assert_eq!(recent.len(), 3);
        assert!(recent.change(ChangeId(2)).is_none());
        assert!(recent.change(ChangeId(3)).is_some());
        // An evicted change takes its object's holder with it.
        assert_eq!(recent.holder(&reference("o2")), None);
        assert_eq!(recent.holder(&reference("o5")), Some(Some(ChangeId(5))));
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let recent = RecentChanges::new(0);
        assert!(!recent.keeps());
        recent.staged(change(1, "a", json!({})), Prechange::Stored, Holds::Object, 10);
        recent.applied(1);
        assert!(recent.change(ChangeId(1)).is_none());
        assert_eq!(recent.holder(&reference("a")), None);
    }

    #[test]
    fn the_prechange_is_the_previous_data_while_that_is_cached() {
        let recent = RecentChanges::new(2 * (3 * 10 + 256));
        recent.staged(change(1, "a", json!({"n": 1})), Prechange::Stored, Holds::Object, 10);
        recent.staged(change(2, "a", json!({"n": 2})), Prechange::DataOf(ChangeId(1)), Holds::Object, 10);
        recent.applied(2);
        let cached = recent.change(ChangeId(2)).unwrap();
        assert_eq!((cached.change.prechange, cached.missing_prechange), (Some(json!({"n": 1})), None));
        // Change 1 leaves: the reader is told to read its data from the tree.
        recent.staged(change(3, "b", json!({})), Prechange::Stored, Holds::Object, 10);
        recent.applied(3);
        let cached = recent.change(ChangeId(2)).unwrap();
        assert_eq!((cached.change.prechange, cached.missing_prechange), (None, Some(ChangeId(1))));
    }

    #[test]
    fn clearing_keeps_what_was_applied() {
        let recent = RecentChanges::new(1 << 20);
        recent.staged(change(1, "a", json!({})), Prechange::Stored, Holds::Object, 10);
        recent.applied(1);
        recent.clear();
        assert!(recent.change(ChangeId(1)).is_none());
        recent.staged(change(2, "a", json!({})), Prechange::Stored, Holds::Object, 10);
        assert!(recent.change(ChangeId(2)).is_none());
        recent.applied(2);
        assert!(recent.change(ChangeId(2)).is_some());
    }
}
