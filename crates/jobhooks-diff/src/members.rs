//! Pairing up the members of two JSON objects, the step both diffs start from.

use serde_json::{Map, Value};

/// One key of either object, with its value on each side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Member<'a> {
    /// The key is in both objects.
    Both(&'a str, &'a Value, &'a Value),
    /// The key is only in the first object.
    OnlyFirst(&'a str, &'a Value),
    /// The key is only in the second object.
    OnlySecond(&'a str, &'a Value),
}

impl<'a> Member<'a> {
    /// The member's key.
    pub(crate) fn key(&self) -> &'a str {
        match *self {
            Member::Both(key, ..) | Member::OnlyFirst(key, _) | Member::OnlySecond(key, _) => key,
        }
    }
}

/// Visits every key of `a` (in `a`'s order), then every key only `b` has (in `b`'s order).
///
/// Two versions of one record usually have the same keys in the same order, so both objects are
/// walked in lockstep while their keys line up: one string comparison per key instead of a map
/// lookup. After the first mismatch the rest is paired by lookup, which is correct whatever the
/// map's iteration order.
pub(crate) fn pair_members<'a>(
    a: &'a Map<String, Value>,
    b: &'a Map<String, Value>,
    mut visit: impl FnMut(Member<'a>),
) {
    let (mut rest_a, mut rest_b) = (a.iter(), b.iter());
    loop {
        let (before_a, before_b) = (rest_a.clone(), rest_b.clone());
        match (rest_a.next(), rest_b.next()) {
            (Some((ka, va)), Some((kb, vb))) if ka == kb => {
                visit(Member::Both(ka, va, vb));
            }
            _ => {
                rest_a = before_a;
                rest_b = before_b;
                break;
            }
        }
    }
    for (key, old) in rest_a {
        match b.get(key) {
            Some(new) => visit(Member::Both(key, old, new)),
            None => visit(Member::OnlyFirst(key, old)),
        }
    }
    // The keys walked in lockstep are keys of `a`, so only the rest of `b` can hold new ones.
    for (key, new) in rest_b.filter(|(key, _)| !a.contains_key(key.as_str())) {
        visit(Member::OnlySecond(key, new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn object(pairs: &BTreeMap<String, u8>) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect()
    }

    proptest! {
        /// Every key is visited exactly once, on the right side, with the right values.
        #[test]
        fn pairs_every_key_once(a in prop::collection::btree_map("[a-e]{1,2}", 0u8..3, 0..12),
                                b in prop::collection::btree_map("[a-e]{1,2}", 0u8..3, 0..12)) {
            let (ma, mb) = (object(&a), object(&b));
            let mut seen = BTreeMap::new();
            pair_members(&ma, &mb, |member| {
                let (key, old, new) = match member {
                    Member::Both(k, o, n) => (k, Some(o.clone()), Some(n.clone())),
                    Member::OnlyFirst(k, o) => (k, Some(o.clone()), None),
                    Member::OnlySecond(k, n) => (k, None, Some(n.clone())),
                };
                assert!(seen.insert(key.to_owned(), (old, new)).is_none(), "{key} visited twice");
            });
            let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).cloned().collect();
            prop_assert_eq!(seen.len(), keys.len());
            for (key, (old, new)) in seen {
                prop_assert_eq!(old, a.get(&key).map(|v| Value::from(*v)));
                prop_assert_eq!(new, b.get(&key).map(|v| Value::from(*v)));
            }
        }
    }
}
