//! The top-level fields of one change's snapshots that its conditions read, found once per change.
//!
//! Many hooks read the same few fields of a change. The first time a field is read, it is found in
//! the snapshots' maps (a search by name in each) and kept in a small open-addressing table,
//! found again by the name's hash. Once a change has had [`INDEX_AFTER_MISSES`] fields looked up
//! that way, every field of both snapshots is put in the table in one pass, which costs less than
//! searching the maps for each of many fields; from then on a field the table lacks is in neither
//! snapshot. A change no condition reads costs nothing: the table is allocated on the first read.

use serde_json::{Map, Value};

/// How many fields are looked up one by one before every field of the snapshots is indexed.
const INDEX_AFTER_MISSES: usize = 4;

/// The table's size before it indexes every field (a power of two).
const FIRST_SLOTS: usize = 32;

/// What a field's name is found by: its hash, length and first eight bytes, so that a name of at
/// most eight bytes is compared without reading it (a condition's field and the snapshot's key
/// each live in their own allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FieldKey {
    hash: u64,
    head: u64,
    len: usize,
}

impl FieldKey {
    /// The key of the field `name`.
    pub(super) fn of(name: &str) -> Self {
        let bytes = name.as_bytes();
        let mut head = [0u8; 8];
        let first = bytes.len().min(8);
        head[..first].copy_from_slice(&bytes[..first]);
        Self { hash: field_hash(name), head: u64::from_le_bytes(head), len: bytes.len() }
    }
}

/// A top-level field of a change's snapshots, as the table keeps it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member<'a> {
    key: FieldKey,
    name: &'a str,
    /// Its value before and after the change (`None` where that snapshot lacks it).
    pub(super) values: [Option<&'a Value>; 2],
    /// Whether the two values differ, once a condition has asked.
    pub(super) differs: Option<bool>,
}

/// The fields read so far; see the module's doc.
#[derive(Debug, Default)]
pub(super) struct FieldTable<'a> {
    /// Open addressing with linear probing; a slot is the top bits of the hash. At most half full.
    slots: Vec<Option<Member<'a>>>,
    len: usize,
    /// Fields looked up in the maps one by one.
    misses: usize,
    /// Every field of both snapshots is in the table.
    complete: bool,
}

impl<'a> FieldTable<'a> {
    /// Runs `read` on the field `name` (whose key is `key`) of the snapshots `sides` (the
    /// prechange and the postchange, where they are objects).
    pub(super) fn read<R>(
        &mut self,
        sides: [Option<&'a Map<String, Value>>; 2],
        key: FieldKey,
        name: &str,
        read: impl FnOnce(&mut Member<'a>) -> R,
    ) -> R {
        if self.slots.is_empty() {
            self.slots.resize(FIRST_SLOTS, None);
        }
        if let Some(slot) = self.find(key, name) {
            return read(self.slots[slot].as_mut().expect("found slots are full"));
        }
        if self.complete {
            return read(&mut Member { key, name: "", values: [None, None], differs: None });
        }
        self.misses += 1;
        if self.misses > INDEX_AFTER_MISSES {
            self.index_all(sides);
            return self.read(sides, key, name, read);
        }
        let found = sides.map(|side| side.and_then(|fields| fields.get_key_value(name)));
        let values = found.map(|side| side.map(|(_, value)| value));
        match found.into_iter().flatten().next() {
            Some((found_name, _)) => {
                let slot = self.insert(Member { key, name: found_name.as_str(), values, differs: None });
                read(self.slots[slot].as_mut().expect("inserted slots are full"))
            }
            // A field neither side has is looked up again each time: it has no name to keep here.
            None => read(&mut Member { key, name: "", values, differs: None }),
        }
    }

    /// The slot holding `name` (whose key is `key`).
    fn find(&self, key: FieldKey, name: &str) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(key.hash);
        while let Some(member) = &self.slots[slot] {
            if member.key == key
                && (key.len <= 8 || crate::short_text::same_bytes(&member.name.as_bytes()[8..], &name.as_bytes()[8..]))
            {
                return Some(slot);
            }
            slot = (slot + 1) & mask;
        }
        None
    }

    /// Where a hash's probe starts.
    fn home(&self, hash: u64) -> usize {
        (hash >> (u64::BITS - self.slots.len().trailing_zeros())) as usize
    }

    /// Keeps `member` (not in the table yet), growing the table to stay at most half full; its slot.
    fn insert(&mut self, member: Member<'a>) -> usize {
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize(self.slots.len() * 2);
        }
        let mask = self.slots.len() - 1;
        let mut slot = self.home(member.key.hash);
        while self.slots[slot].is_some() {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = Some(member);
        self.len += 1;
        slot
    }

    /// Moves the table to `slots` slots (a power of two, more than twice its fields).
    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![None; slots]);
        self.len = 0;
        for kept in old.into_iter().flatten() {
            self.insert(kept);
        }
    }

    /// Puts every field of both snapshots in the table.
    fn index_all(&mut self, sides: [Option<&'a Map<String, Value>>; 2]) {
        let most = sides.iter().flatten().map(|fields| fields.len()).sum::<usize>() + self.len;
        if most * 2 > self.slots.len() {
            self.resize((most * 2).next_power_of_two());
        }
        for (side, fields) in sides.iter().enumerate() {
            for (name, value) in fields.iter().flat_map(|fields| fields.iter()) {
                let key = FieldKey::of(name);
                match self.find(key, name) {
                    Some(slot) => {
                        let member = self.slots[slot].as_mut().expect("found slots are full");
                        member.values[side] = Some(value);
                    }
                    None => {
                        let mut values = [None, None];
                        values[side] = Some(value);
                        self.insert(Member { key, name, values, differs: None });
                    }
                }
            }
        }
        self.complete = true;
    }
}

/// A hash of a field's name, eight bytes at a time (as `rustc`'s FxHash): names are short, and a
/// change's conditions hash them often. The table takes its top bits, which every byte reaches.
fn field_hash(name: &str) -> u64 {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut words = name.as_bytes().chunks_exact(8);
    let mix = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    let hash = words
        .by_ref()
        .fold(name.len() as u64, |hash, word| mix(hash, u64::from_le_bytes(word.try_into().expect("chunks of eight"))));
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    mix(hash, u64::from_le_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(value: &Value) -> Option<&Map<String, Value>> {
        value.as_object()
    }

    proptest! {
        /// Whatever the order and number of reads (one by one, then indexed), a field reads as the
        /// maps hold it.
        #[test]
        fn the_table_reads_as_the_maps(
            pre in prop::collection::btree_map("[ab]{1,10}", 0..3i64, 0..40),
            post in prop::collection::btree_map("[ab]{1,10}", 0..3i64, 0..40),
            reads in prop::collection::vec("[ab]{1,10}", 0..60),
        ) {
            let (pre, post) = (json!(pre), json!(post));
            let mut table = FieldTable::default();
            for name in reads.iter().chain(&reads) {
                let values = table.read([object(&pre), object(&post)], FieldKey::of(name), name, |member| member.values);
                prop_assert_eq!(values, [pre.get(name), post.get(name)], "{}", name);
            }
        }
    }

    #[test]
    fn a_large_object_is_indexed_whole() {
        let pre: Map<String, Value> = (0..300).map(|n| (format!("f{n}"), json!(n))).collect();
        let post: Map<String, Value> = (0..300).map(|n| (format!("g{n}"), json!(n))).collect();
        let mut table = FieldTable::default();
        for n in 0..300 {
            for name in [format!("f{n}"), format!("g{n}"), format!("h{n}")] {
                let values = table.read([Some(&pre), Some(&post)], FieldKey::of(&name), &name, |member| member.values);
                assert_eq!(values, [pre.get(&name), post.get(&name)], "{name}");
            }
        }
        assert!(table.complete && table.len == 600 && table.slots.len() >= 1200);
    }
}
