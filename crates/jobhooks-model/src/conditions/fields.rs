//! The top-level fields of one change's snapshots that its conditions read, found once per change.
//!
//! Many hooks read the same few fields of a change. The first time a field is read, it is found in
//! the snapshots' maps (a search by name in each) and kept in a small open-addressing table,
//! found again by the name's hash. Once a change has had [`INDEX_AFTER_MISSES`] fields looked up
//! that way, every field of both snapshots is put in the table in one pass, which costs less than
//! searching the maps for each of many fields; from then on a field the table lacks is in neither
//! snapshot. A change no condition reads costs nothing: the table is allocated on the first read.
//!
//! A [`HookMatcher`](crate::HookMatcher) numbers the fields its hooks read; once read, a numbered
//! field is found by its number, without hashing its name again.

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

impl<'a> Member<'a> {
    /// A field neither snapshot has.
    fn absent(key: FieldKey) -> Self {
        Self { key, name: "", values: [None, None], differs: None }
    }
}

/// An empty slot of a [`NameIndex`].
const EMPTY: u32 = u32::MAX;

/// Names found by their [`FieldKey`]: open addressing with linear probing over the indexes of
/// entries kept elsewhere, a name's first slot being the top bits of its hash; at most half full.
#[derive(Debug, Default, Clone)]
struct NameIndex {
    slots: Vec<u32>,
}

impl NameIndex {
    /// The index of the entry named `name` (whose key is `key`); `entry` gives an entry's key and
    /// name.
    fn find<'n>(&self, key: FieldKey, name: &str, entry: impl Fn(u32) -> (FieldKey, &'n str)) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = self.home(key.hash);
        while self.slots[slot] != EMPTY {
            let at = self.slots[slot];
            let (found, found_name) = entry(at);
            if found == key
                && (key.len <= 8 || crate::short_text::same_bytes(&found_name.as_bytes()[8..], &name.as_bytes()[8..]))
            {
                return Some(at);
            }
            slot = (slot + 1) & mask;
        }
        None
    }

    /// Makes room for `count` entries, placing again the `placed` entries already in, whose hashes
    /// `hash` gives.
    fn reserve(&mut self, count: usize, placed: usize, hash: impl Fn(usize) -> u64) {
        if count * 2 <= self.slots.len() {
            return;
        }
        self.slots = vec![EMPTY; (count * 2).next_power_of_two().max(FIRST_SLOTS)];
        for at in 0..placed {
            self.place(hash(at), at);
        }
    }

    /// Puts the entry at `at`, whose hash is `hash`, in its slot (after a [`NameIndex::reserve`]).
    fn place(&mut self, hash: u64, at: usize) {
        let mask = self.slots.len() - 1;
        let mut slot = self.home(hash);
        while self.slots[slot] != EMPTY {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = u32::try_from(at).expect("fewer than 2^32 names");
    }

    /// Where a hash's probe starts.
    fn home(&self, hash: u64) -> usize {
        (hash >> (u64::BITS - self.slots.len().trailing_zeros())) as usize
    }
}

/// Numbers for the top-level fields many conditions read (a [`HookMatcher`](crate::HookMatcher)'s).
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldNumbers {
    /// The numbered fields, by number.
    names: Vec<(FieldKey, Box<str>)>,
    index: NameIndex,
}

impl FieldNumbers {
    /// The number of the field `name`, given it if it has none.
    pub(super) fn number(&mut self, name: &str) -> u32 {
        let key = FieldKey::of(name);
        if let Some(number) = self.get(key, name) {
            return number;
        }
        let names = &self.names;
        self.index.reserve(names.len() + 1, names.len(), |at| names[at].0.hash);
        self.index.place(key.hash, self.names.len());
        self.names.push((key, name.into()));
        u32::try_from(self.names.len() - 1).expect("fewer than 2^32 names")
    }

    /// The number of the field `name` (whose key is `key`).
    fn get(&self, key: FieldKey, name: &str) -> Option<u32> {
        self.index.find(key, name, |at| {
            let (key, name) = &self.names[at as usize];
            (*key, &**name)
        })
    }

    /// How many fields are numbered.
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }
}

/// The fields read so far; see the module's doc.
#[derive(Debug, Default)]
pub(super) struct FieldTable<'a> {
    /// The fields found by name, in the order they were.
    members: Vec<Member<'a>>,
    /// `members` by name.
    index: NameIndex,
    /// Fields looked up in the maps one by one.
    misses: usize,
    /// Every field of both snapshots is in the table.
    complete: bool,
    /// The numbers of the fields the conditions reading this change read, if they were numbered.
    numbers: Option<&'a FieldNumbers>,
    /// The numbered fields, by number, once read (all at once when that costs less).
    numbered: Vec<Option<Member<'a>>>,
}

impl<'a> FieldTable<'a> {
    /// A table for a change read through conditions whose fields `numbers` numbered.
    pub(super) fn numbered(numbers: &'a FieldNumbers) -> Self {
        Self { numbers: Some(numbers), numbered: vec![None; numbers.len()], ..Self::default() }
    }

    /// Runs `read` on the field `name` (whose key is `key`, and number `number` if it has one) of
    /// the snapshots `sides` (the prechange and the postchange, where they are objects).
    pub(super) fn read<R>(
        &mut self,
        sides: [Option<&'a Map<String, Value>>; 2],
        key: FieldKey,
        name: &str,
        number: Option<u32>,
        read: impl FnOnce(&mut Member<'a>) -> R,
    ) -> R {
        if let Some(number) = number.map(|number| number as usize).filter(|&number| number < self.numbered.len()) {
            if self.numbered[number].is_none() {
                self.read_numbered(sides, key, name, number);
            }
            return read(self.numbered[number].as_mut().expect("a numbered field is read before it is used"));
        }
        match self.lookup(sides, key, name) {
            Some(at) => read(&mut self.members[at as usize]),
            None => read(&mut Member::absent(key)),
        }
    }

    /// Reads the field `name` (whose key is `key`) numbered `number`: every numbered field at once,
    /// in one pass over the snapshots, when there are enough of them that this costs less than
    /// searching the maps for each (a search takes about as long as eight steps of the pass).
    fn read_numbered(&mut self, sides: [Option<&'a Map<String, Value>>; 2], key: FieldKey, name: &str, number: usize) {
        let numbers = self.numbers.expect("only a numbered table has numbered fields");
        let in_snapshots = sides.iter().flatten().map(|fields| fields.len()).sum::<usize>();
        if in_snapshots > 8 * self.numbered.len() {
            let values = sides.map(|side| side.and_then(|fields| fields.get(name)));
            self.numbered[number] = Some(Member { key, name: "", values, differs: None });
            return;
        }
        for member in &mut self.numbered {
            member.get_or_insert(Member::absent(key));
        }
        // Keeps the values of `name` found so far (on one side or both).
        let mut keep = |name: &str, values: [Option<&'a Value>; 2]| {
            if let Some(number) = numbers.get(FieldKey::of(name), name) {
                let member = self.numbered[number as usize].as_mut().expect("every numbered field is read");
                for (kept, found) in member.values.iter_mut().zip(values) {
                    *kept = found.or(*kept);
                }
            }
        };
        // Two snapshots of one object mostly hold the same fields in the same order: while they
        // do, a field is looked up once for both.
        let [mut before, mut after] = sides.map(|fields| fields.into_iter().flatten());
        loop {
            match (before.next(), after.next()) {
                (Some((name, value)), Some((after_name, after_value)))
                    if crate::short_text::same_bytes(name.as_bytes(), after_name.as_bytes()) =>
                {
                    keep(name, [Some(value), Some(after_value)]);
                }
                (first_before, first_after) => {
                    first_before.into_iter().chain(before).for_each(|(name, value)| keep(name, [Some(value), None]));
                    first_after.into_iter().chain(after).for_each(|(name, value)| keep(name, [None, Some(value)]));
                    return;
                }
            }
        }
    }

    /// The index of the member `name` (whose key is `key`), or `None` if neither side has it.
    fn lookup(&mut self, sides: [Option<&'a Map<String, Value>>; 2], key: FieldKey, name: &str) -> Option<u32> {
        if let Some(at) = self.find(key, name) {
            return Some(at);
        }
        if self.complete {
            return None;
        }
        self.misses += 1;
        if self.misses > INDEX_AFTER_MISSES {
            self.index_all(sides);
            return self.find(key, name);
        }
        let found = sides.map(|side| side.and_then(|fields| fields.get_key_value(name)));
        let values = found.map(|side| side.map(|(_, value)| value));
        // A field neither side has is looked up again each time: it has no name to keep here.
        let (found_name, _) = found.into_iter().flatten().next()?;
        Some(self.insert(Member { key, name: found_name.as_str(), values, differs: None }))
    }

    /// The index of the member `name` (whose key is `key`).
    fn find(&self, key: FieldKey, name: &str) -> Option<u32> {
        self.index.find(key, name, |at| {
            let member = &self.members[at as usize];
            (member.key, member.name)
        })
    }

    /// Keeps `member` (not in the table yet); its index.
    fn insert(&mut self, member: Member<'a>) -> u32 {
        self.reserve(self.members.len() + 1);
        self.index.place(member.key.hash, self.members.len());
        self.members.push(member);
        u32::try_from(self.members.len() - 1).expect("a change has fewer than 2^32 fields")
    }

    /// Makes room for `count` members.
    fn reserve(&mut self, count: usize) {
        let members = &self.members;
        self.index.reserve(count, members.len(), |at| members[at].key.hash);
    }

    /// Puts every field of both snapshots in the table.
    fn index_all(&mut self, sides: [Option<&'a Map<String, Value>>; 2]) {
        let most = sides.iter().flatten().map(|fields| fields.len()).sum::<usize>() + self.members.len();
        self.reserve(most);
        self.members.reserve(most - self.members.len());
        for (side, fields) in sides.iter().enumerate() {
            for (name, value) in fields.iter().flat_map(|fields| fields.iter()) {
                let key = FieldKey::of(name);
                match self.find(key, name) {
                    Some(at) => self.members[at as usize].values[side] = Some(value),
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
            // Half the reads are by a number, as a hook matcher gives; few numbered fields are read
            // one by one, many all at once.
            let mut numbers = FieldNumbers::default();
            let numbered: Vec<Option<u32>> =
                reads.iter().enumerate().map(|(index, name)| (index % 2 == 0).then(|| numbers.number(name))).collect();
            let mut table = FieldTable::numbered(&numbers);
            for (name, number) in reads.iter().zip(&numbered).chain(reads.iter().zip(&numbered).rev()) {
                let number = *number;
                let values =
                    table.read([object(&pre), object(&post)], FieldKey::of(name), name, number, |member| member.values);
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
                let values =
                    table.read([Some(&pre), Some(&post)], FieldKey::of(&name), &name, None, |member| member.values);
                assert_eq!(values, [pre.get(&name), post.get(&name)], "{name}");
            }
        }
        assert!(table.complete && table.members.len() == 600 && table.index.slots.len() >= 1200);
    }
}
