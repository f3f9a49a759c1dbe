//! A write set over the store's tree with read-your-writes, applied as one atomic batch.

use std::collections::BTreeMap;
use std::ops::Bound;

use jobhooks_model::{BackendError, StorageFailure};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::disk::Stored;
use crate::io::IoCounters;

/// The pending writes of one atomic operation. Reads see the pending writes first. Nothing reaches
/// the tree until [`Staging::apply`], which writes everything with one `apply_batch` (atomic on one
/// tree), so an operation that fails halfway writes nothing.
///
/// A staging can also start from writes staged by earlier operations and not yet applied
/// ([`Staging::after`]): the operation reads through them, and when it fails,
/// [`Staging::roll_back`] gives them back as they were.
pub(crate) struct Staging<'t> {
    tree: &'t sled::Tree,
    io: &'t IoCounters,
    overlay: Overlay,
    /// The values the overlay held before this operation's writes, for [`Staging::roll_back`].
    undo: Option<Vec<(Vec<u8>, Option<Staged>)>>,
    /// How the operation changes the queue's counts, applied to the writer's once the batch is.
    pub counts: QueueCounts,
}

/// A write not yet applied: the new value, or `None` to remove the key.
pub(crate) type Staged = Option<Vec<u8>>;

/// Writes not yet applied to the tree, by key.
pub(crate) type Overlay = BTreeMap<Vec<u8>, Staged>;

/// A value read through a [`Staging`]: a pending write, or the stored value.
pub(crate) enum Bytes<'s> {
    Staged(&'s [u8]),
    Stored(sled::IVec),
}

impl AsRef<[u8]> for Bytes<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Bytes<'_> {
    /// The bytes as sled holds them: a stored value without a copy, a pending one copied.
    pub fn into_ivec(self) -> sled::IVec {
        match self {
            Bytes::Staged(bytes) => sled::IVec::from(bytes),
            Bytes::Stored(bytes) => bytes,
        }
    }
}

impl std::ops::Deref for Bytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Staged(bytes) => bytes,
            Bytes::Stored(bytes) => bytes,
        }
    }
}

/// Runs by state: totals in the writer, deltas in a [`Staging`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueCounts {
    /// Runs queued and neither finished nor dead-lettered (pending, retrying or leased).
    pub unfinished: i64,
    /// Of those, the ones claimed by a worker (lapsed claims included until taken over).
    pub leased: i64,
    /// Dead-lettered runs.
    pub dead: i64,
}

impl QueueCounts {
    /// Applies a change the run state machine decided.
    pub fn apply(&mut self, change: jobhooks_model::CountChange) {
        self.unfinished += change.pending + change.leased;
        self.leased += change.leased;
        self.dead += change.dead;
    }
}

impl std::ops::AddAssign for QueueCounts {
    fn add_assign(&mut self, delta: Self) {
        self.unfinished += delta.unfinished;
        self.leased += delta.leased;
        self.dead += delta.dead;
    }
}

impl<'t> Staging<'t> {
    pub fn new(tree: &'t sled::Tree, io: &'t IoCounters) -> Self {
        Self { tree, io, overlay: Overlay::new(), undo: None, counts: QueueCounts::default() }
    }

    /// A staging whose operation comes after the earlier operations' writes `earlier`.
    pub fn after(tree: &'t sled::Tree, io: &'t IoCounters, earlier: Overlay) -> Self {
        Self { tree, io, overlay: earlier, undo: Some(Vec::new()), counts: QueueCounts::default() }
    }

    /// The earlier writes and this operation's, and the operation's change to the queue's counts.
    pub fn into_parts(self) -> (Overlay, QueueCounts) {
        (self.overlay, self.counts)
    }

    /// The earlier writes as they were before this operation.
    pub fn roll_back(self) -> Overlay {
        let mut overlay = self.overlay;
        for (key, before) in self.undo.into_iter().flatten().rev() {
            match before {
                Some(value) => overlay.insert(key, value),
                None => overlay.remove(&key),
            };
        }
        overlay
    }

    fn stage(&mut self, key: Vec<u8>, value: Staged) {
        match &mut self.undo {
            Some(undo) => {
                let before = self.overlay.insert(key.clone(), value);
                undo.push((key, before));
            }
            None => {
                self.overlay.insert(key, value);
            }
        }
    }

    /// The value at `key`, counting pending writes. Stored values are returned as sled holds
    /// them, without a copy.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes<'_>>, StorageFailure> {
        match self.overlay.get(key) {
            Some(pending) => Ok(pending.as_deref().map(Bytes::Staged)),
            None => {
                self.io.read(1);
                Ok(self.tree.get(key).map_err(backend_error)?.map(Bytes::Stored))
            }
        }
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.stage(key, Some(value));
    }

    pub fn put_record<T: Stored>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StorageFailure> {
        self.put(key, encode(&value.to_record())?);
        Ok(())
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.stage(key, None);
    }

    /// The entries whose keys fall in `range`, counting pending writes, in key order (or, with
    /// `reverse`, from the greatest key down). This is the one way an operation scans: a pending
    /// write shadows the stored value of its key, and a pending removal hides it.
    pub fn scan(&self, range: KeyRange, reverse: bool) -> Scan<'_> {
        let io = self.io;
        let stored = self.tree.range::<Vec<u8>, _>(range.clone()).inspect(move |_| io.read(1));
        let pending = self.overlay.range::<Vec<u8>, _>(range);
        let (stored, pending): (StoredIter<'_>, PendingIter<'_>) = if reverse {
            (Box::new(stored.rev()), Box::new(pending.rev()))
        } else {
            (Box::new(stored), Box::new(pending))
        };
        Scan { stored: stored.peekable(), pending: pending.peekable(), reverse }
    }

    /// The entries under `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Scan<'_> {
        self.scan(prefix_range(prefix), false)
    }

    /// The entries under `prefix`, greatest key first.
    pub fn scan_prefix_rev(&self, prefix: &[u8]) -> Scan<'_> {
        self.scan(prefix_range(prefix), true)
    }

    /// The greatest key starting with `prefix` and its value, counting pending writes.
    pub fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<(Vec<u8>, Bytes<'_>)>, StorageFailure> {
        self.scan_prefix_rev(prefix).next().transpose().map(|last| last.map(|(key, value)| (key.to_vec(), value)))
    }

    /// The keys under `prefix`, counting pending writes, in order.
    pub fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StorageFailure> {
        self.scan_prefix(prefix).map(|entry| entry.map(|(key, _)| key.to_vec())).collect()
    }

    /// Whether `key` exists, counting pending writes.
    pub fn contains(&self, key: &[u8]) -> Result<bool, StorageFailure> {
        match self.overlay.get(key) {
            Some(pending) => Ok(pending.is_some()),
            None => {
                self.io.read(1);
                self.tree.contains_key(key).map_err(backend_error)
            }
        }
    }

    /// Writes this operation's own writes to the tree key by key, in the order it staged them,
    /// and gives back the earlier writes, still unapplied.
    ///
    /// The operation must have derived what it wrote from applied state only, never from the
    /// earlier writes: they may yet be lost in a crash that keeps these. And these are not atomic
    /// together either: a crash may keep any prefix of them, so each must leave the store
    /// consistent on its own. What this buys is sled's cost: a batch makes sled write its log out
    /// twice, a plain insert does not.
    pub fn apply_own_writes(self) -> Result<(Overlay, QueueCounts), StorageFailure> {
        let mut overlay = self.overlay;
        // A key staged twice is written once, with its last value, where it was first staged.
        for (key, _) in self.undo.into_iter().flatten() {
            let Some(value) = overlay.remove(&key) else { continue };
            self.io.wrote(1);
            match value {
                Some(value) => self.tree.insert(&key, value).map(drop),
                None => self.tree.remove(&key).map(drop),
            }
            .map_err(backend_error)?;
        }
        Ok((overlay, self.counts))
    }

    /// Whether a write to `key` is staged and not yet applied.
    pub fn has_pending_write(&self, key: &[u8]) -> bool {
        self.overlay.contains_key(key)
    }

    /// Writes everything atomically and returns the operation's change to the queue's counts.
    pub fn apply(self) -> Result<QueueCounts, StorageFailure> {
        if self.overlay.is_empty() {
            // sled writes out its log around every batch, even an empty one.
            return Ok(self.counts);
        }
        let mut batch = sled::Batch::default();
        self.io.batch(self.overlay.len() as u64);
        for (key, value) in self.overlay {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        self.tree.apply_batch(batch).map_err(backend_error)?;
        Ok(self.counts)
    }
}

/// One entry of a [`Scan`].
pub(crate) type Entry<'s> = Result<(Bytes<'s>, Bytes<'s>), StorageFailure>;

/// Entries copied out of a scan, to write to while going through them.
pub(crate) type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A range of keys, as [`Staging::scan`] takes it.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keys starting with `prefix`.
pub(crate) fn prefix_range(prefix: &[u8]) -> KeyRange {
    let end = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), end)
}

/// The keys from `from` (included) to `to` (excluded).
pub(crate) fn key_range(from: Vec<u8>, to: Vec<u8>) -> KeyRange {
    (Bound::Included(from), Bound::Excluded(to))
}

type StoredIter<'s> = Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + Send + 's>;
type PendingIter<'s> = Box<dyn Iterator<Item = (&'s Vec<u8>, &'s Staged)> + Send + 's>;

/// Stored entries and pending writes of one range, merged in key order: see [`Staging::scan`].
pub(crate) struct Scan<'s> {
    stored: std::iter::Peekable<StoredIter<'s>>,
    pending: std::iter::Peekable<PendingIter<'s>>,
    reverse: bool,
}

/// Which side a scan takes its next entry from.
enum Side {
    Stored,
    Pending,
    /// Both sides hold the same key: the pending write wins.
    Both,
}

impl<'s> Iterator for Scan<'s> {
    type Item = Entry<'s>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let side = match (self.stored.peek(), self.pending.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(Ok(_)), None) => Side::Stored,
                (None, Some(_)) => Side::Pending,
                (Some(Ok((stored, _))), Some((pending, _))) => match pending.as_slice().cmp(stored.as_ref()) {
                    std::cmp::Ordering::Equal => Side::Both,
                    std::cmp::Ordering::Less if !self.reverse => Side::Pending,
                    std::cmp::Ordering::Greater if self.reverse => Side::Pending,
                    _ => Side::Stored,
                },
            };
            if let Side::Stored = side {
                return Some(match self.stored.next()? {
                    Ok((key, value)) => Ok((Bytes::Stored(key), Bytes::Stored(value))),
                    Err(e) => Err(backend_error(e)),
                });
            }
            if let Side::Both = side {
                self.stored.next();
            }
            let (key, value) = self.pending.next()?;
            if let Some(value) = value {
                return Some(Ok((Bytes::Staged(key), Bytes::Staged(value))));
            }
        }
    }
}

/// The least key greater than every key starting with `prefix` (`None` when there is none).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageFailure> {
    serde_json::to_vec(value).map_err(|e| StorageFailure::Backend(BackendError::new("cannot encode a record", e)))
}

/// Decodes the record of `T` stored at `key` and checks it; a record that does not decode or
/// does not pass is corrupt.
pub(crate) fn decode_record<T: Stored>(kind: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, StorageFailure> {
    let record: T::Record = decode(kind, key, bytes)?;
    T::from_record(record).map_err(|reason| corrupt(kind, key, &reason))
}

pub(crate) fn decode<T: DeserializeOwned>(kind: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, StorageFailure> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(kind, key, &e.to_string()))
}

/// The error for a record of `kind` at `key` that cannot be read, saying why.
pub(crate) fn corrupt(kind: &'static str, key: &[u8], reason: &str) -> StorageFailure {
    StorageFailure::Corrupt {
        kind,
        key: String::from_utf8_lossy(key).escape_default().to_string(),
        reason: reason.into(),
    }
}

/// The id that ends the index key `key` (of an index of `kind`).
pub(crate) fn indexed_id(kind: &'static str, key: &[u8]) -> Result<u64, StorageFailure> {
    crate::keys::trailing_id(key).ok_or_else(|| corrupt(kind, key, "the key does not end with an id"))
}

/// A sled failure as the ports report it: the sled error is the source.
pub(crate) fn backend_error(e: sled::Error) -> StorageFailure {
    StorageFailure::Backend(BackendError::new("the sled database failed", e))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::Staging;

    /// Keys from a small alphabet, so that stored and pending keys collide and share prefixes.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0xff]), 1..4)
    }

    type Model = BTreeMap<Vec<u8>, Vec<u8>>;

    /// Applies `writes` to `model` in order.
    fn apply_to(model: &mut Model, writes: impl IntoIterator<Item = (Vec<u8>, super::Staged)>) {
        for (key, value) in writes {
            match value {
                Some(value) => model.insert(key, value),
                None => model.remove(&key),
            };
        }
    }

    /// A tree holding `stored`, the earlier writes as an overlay, the operation's writes, and
    /// what the tree holds once all of them are applied.
    fn world(
        stored: BTreeMap<Vec<u8>, u8>,
        earlier: BTreeMap<Vec<u8>, Option<u8>>,
        pending: Vec<(Vec<u8>, Option<u8>)>,
    ) -> (sled::Tree, super::Overlay, Vec<(Vec<u8>, super::Staged)>, Model) {
        let tree = sled::Config::new().temporary(true).open().unwrap().open_tree("t").unwrap();
        let stored: Model = stored.into_iter().map(|(key, value)| (key, vec![value])).collect();
        for (key, value) in &stored {
            tree.insert(key, value.clone()).unwrap();
        }
        let earlier: super::Overlay =
            earlier.into_iter().map(|(key, value)| (key, value.map(|value| vec![value]))).collect();
        let pending: Vec<_> = pending.into_iter().map(|(key, value)| (key, value.map(|value| vec![value]))).collect();
        let mut model = stored;
        apply_to(&mut model, earlier.clone());
        apply_to(&mut model, pending.clone());
        (tree, earlier, pending, model)
    }

    fn stage_all(st: &mut Staging<'_>, pending: Vec<(Vec<u8>, super::Staged)>) {
        for (key, value) in pending {
            match value {
                Some(value) => st.put(key, value),
                None => st.remove(key),
            }
        }
    }

    fn tree_contents(tree: &sled::Tree) -> Model {
        tree.iter()
            .map(|item| item.map(|(key, value)| (key.to_vec(), value.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    proptest! {
        /// Reads through a staging agree with the tree the staged writes would make.
        #[test]
        fn reads_see_pending_writes_over_the_tree_and_a_roll_back_restores_earlier_ones(
            stored in prop::collection::btree_map(key(), any::<u8>(), 0..12),
            earlier in prop::collection::btree_map(key(), prop::option::of(any::<u8>()), 0..6),
            pending in prop::collection::vec((key(), prop::option::of(any::<u8>())), 0..12),
            prefix in prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0xff]), 0..3),
        ) {
            let keys_stored: Vec<_> = stored.keys().cloned().collect();
            let (tree, earlier, pending, model) = world(stored, earlier, pending);
            let mut st = Staging::after(&tree, &crate::io::UNCOUNTED, earlier.clone());
            stage_all(&mut st, pending);
            let under_prefix: Vec<_> = model.iter().filter(|(key, _)| key.starts_with(&prefix)).collect();
            let last = st.last_with_prefix(&prefix).unwrap().map(|(key, value)| (key, value.to_vec()));
            prop_assert_eq!(last, under_prefix.last().map(|(key, value)| ((*key).clone(), (*value).clone())));
            let keys: Vec<_> = under_prefix.iter().map(|(key, _)| (*key).clone()).collect();
            prop_assert_eq!(st.keys_with_prefix(&prefix).unwrap(), keys);
            for key in &keys_stored {
                prop_assert_eq!(st.get(key).unwrap().map(|value| value.to_vec()), model.get(key).cloned());
                prop_assert_eq!(st.contains(key).unwrap(), model.contains_key(key));
            }
            prop_assert_eq!(st.roll_back(), earlier);
        }

        /// A scan of any range, either way, gives what the tree would hold once the staged writes
        /// are applied.
        #[test]
        fn scans_merge_pending_writes_with_the_tree_in_either_direction(
            stored in prop::collection::btree_map(key(), any::<u8>(), 0..12),
            earlier in prop::collection::btree_map(key(), prop::option::of(any::<u8>()), 0..6),
            pending in prop::collection::vec((key(), prop::option::of(any::<u8>())), 0..12),
            from in key(),
            to in key(),
            reverse in any::<bool>(),
        ) {
            let (tree, earlier, pending, model) = world(stored, earlier, pending);
            let mut st = Staging::after(&tree, &crate::io::UNCOUNTED, earlier);
            stage_all(&mut st, pending);
            let (from, to) = if from <= to { (from, to) } else { (to, from) };
            let mut expected: Vec<_> =
                model.range(from.clone()..to.clone()).map(|(key, value)| (key.clone(), value.clone())).collect();
            if reverse {
                expected.reverse();
            }
            let found: Vec<_> = st
                .scan(super::key_range(from, to), reverse)
                .map(|entry| entry.map(|(key, value)| (key.to_vec(), value.to_vec())))
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(found, expected);
        }

        /// Applying an operation's own writes puts exactly them in the tree and leaves the earlier
        /// writes (but those to the same keys, which the operation's supersede) to apply after.
        #[test]
        fn applying_own_writes_leaves_the_earlier_ones_deferred(
            stored in prop::collection::btree_map(key(), any::<u8>(), 0..12),
            earlier in prop::collection::btree_map(key(), prop::option::of(any::<u8>()), 0..6),
            pending in prop::collection::vec((key(), prop::option::of(any::<u8>())), 0..12),
        ) {
            let (tree, earlier, pending, model) = world(stored, earlier, pending);
            let mut own = tree_contents(&tree);
            apply_to(&mut own, pending.clone());
            let mut st = Staging::after(&tree, &crate::io::UNCOUNTED, earlier.clone());
            stage_all(&mut st, pending.clone());
            let (left, _) = st.apply_own_writes().unwrap();
            prop_assert_eq!(tree_contents(&tree), own);
            let mut expected_left = earlier;
            for (key, _) in &pending {
                expected_left.remove(key);
            }
            prop_assert_eq!(&left, &expected_left);
            Staging::after(&tree, &crate::io::UNCOUNTED, left).apply().unwrap();
            prop_assert_eq!(tree_contents(&tree), model);
        }
    }
}
