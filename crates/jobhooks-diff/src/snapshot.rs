//! Nautobot-shaped snapshots: `prechange`, `postchange` and shallow `differences`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::members::{Member, pair_members};

/// Keys never reported in `differences`: they change on every save and carry no meaning.
pub const EXCLUDED_FROM_DIFF: &[&str] = &["last_updated"];

/// The value of `ObjectChange.get_snapshots()`.
///
/// Serializes to exactly
/// `{"prechange": …, "postchange": …, "differences": {"added": …, "removed": …}}`, with `null` for
/// every `None`. The pre- and post-change documents are borrowed from the caller; only the differing
/// values are copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshots<'a> {
    /// The object's data before the change; `None` for a create.
    pub prechange: Option<Cow<'a, Value>>,
    /// The object's data after the change; `None` for a delete.
    pub postchange: Option<Cow<'a, Value>>,
    /// What changed between the two.
    pub differences: Differences,
}

/// The `differences` member of [`Snapshots`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Differences {
    /// Keys whose value is new or different after the change, with their new values.
    pub added: Option<Value>,
    /// For each key of `added`, its value before the change (`null` where it had none), plus every
    /// key that the change removed, with its old value.
    pub removed: Option<Value>,
}

impl Snapshots<'_> {
    /// Copies the borrowed documents so the snapshots outlive their source.
    pub fn into_owned(self) -> Snapshots<'static> {
        Snapshots {
            prechange: self.prechange.map(|v| Cow::Owned(v.into_owned())),
            postchange: self.postchange.map(|v| Cow::Owned(v.into_owned())),
            differences: self.differences,
        }
    }
}

/// Python truthiness of a JSON value: `null`, `false`, `0`, `""`, `[]` and `{}` are false.
///
/// ```
/// use serde_json::json;
/// assert!(!jobhooks_diff::is_truthy(&json!({})));
/// assert!(jobhooks_diff::is_truthy(&json!({"a": null})));
/// ```
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Nautobot's `shallow_compare_dict`: every key of `post` whose value differs from `pre`'s (a key
/// absent from `pre` counts as different), with `post`'s value, unless the key is in `exclude`.
///
/// Nested objects and lists are compared and reported whole. Keys only in `pre` are not reported.
///
/// ```
/// use serde_json::json;
/// let pre = json!({"a": 1, "b": {"x": 1}, "gone": true});
/// let post = json!({"a": 1, "b": {"x": 2}, "new": 3, "last_updated": "now"});
/// let diff = jobhooks_diff::shallow_compare(
///     pre.as_object().unwrap(),
///     post.as_object().unwrap(),
///     &["last_updated"],
/// );
/// assert_eq!(serde_json::Value::Object(diff), json!({"b": {"x": 2}, "new": 3}));
/// ```
pub fn shallow_compare(pre: &Map<String, Value>, post: &Map<String, Value>, exclude: &[&str]) -> Map<String, Value> {
    let mut added = Map::new();
    pair_members(pre, post, |member| match member {
        Member::Both(key, old, new) if old != new && !exclude.contains(&key) => {
            added.insert(key.to_owned(), new.clone());
        }
        Member::OnlySecond(key, new) if !exclude.contains(&key) => {
            added.insert(key.to_owned(), new.clone());
        }
        _ => {}
    });
    added
}

/// `added` and `removed` of two object snapshots, in one walk over their members.
fn object_differences(pre: &Map<String, Value>, post: &Map<String, Value>) -> Differences {
    let (mut added, mut removed) = (Map::new(), Map::new());
    pair_members(pre, post, |member| match member {
        Member::Both(_, old, new) if old == new => {}
        _ if EXCLUDED_FROM_DIFF.contains(&member.key()) => {}
        Member::Both(key, old, new) => {
            added.insert(key.to_owned(), new.clone());
            removed.insert(key.to_owned(), old.clone());
        }
        Member::OnlyFirst(key, old) => {
            removed.insert(key.to_owned(), old.clone());
        }
        Member::OnlySecond(key, new) => {
            added.insert(key.to_owned(), new.clone());
            removed.insert(key.to_owned(), Value::Null);
        }
    });
    Differences { added: Some(Value::Object(added)), removed: Some(Value::Object(removed)) }
}

/// Builds the snapshots of a change from the object's data before and after it.
///
/// Pass `None` for the prechange of a create and for the postchange of a delete. The rules, with
/// Python truthiness (an empty object counts as absent):
///
/// - both present: `added` is [`shallow_compare`] of the two (excluding `last_updated`);
///   `removed` holds, for each key of `added`, the prechange's value (`null` where it had none),
///   and, beyond Nautobot, each key only the prechange has, with its old value;
/// - only the prechange: `added` is `null`, `removed` the whole prechange;
/// - otherwise: `added` is the whole postchange, `removed` is `null`.
///
/// Documents that are not JSON objects cannot be compared key by key; when both are present and
/// either is not an object, the whole postchange is `added` and the whole prechange `removed`.
///
/// ```
/// use serde_json::json;
/// let device = json!({"name": "r1"});
/// let created = jobhooks_diff::snapshots(None, Some(&device));
/// assert_eq!(
///     serde_json::to_value(&created).unwrap(),
///     json!({"prechange": null, "postchange": {"name": "r1"},
///            "differences": {"added": {"name": "r1"}, "removed": null}})
/// );
/// ```
pub fn snapshots<'a>(prechange: Option<&'a Value>, postchange: Option<&'a Value>) -> Snapshots<'a> {
    let pre = prechange.filter(|v| is_truthy(v));
    let post = postchange.filter(|v| is_truthy(v));
    let differences = match (pre, post) {
        (Some(Value::Object(pre)), Some(Value::Object(post))) => object_differences(pre, post),
        (Some(pre), Some(post)) => Differences { added: Some(post.clone()), removed: Some(pre.clone()) },
        (Some(pre), None) => Differences { added: None, removed: Some(pre.clone()) },
        (None, _) => Differences { added: postchange.cloned(), removed: None },
    };
    Snapshots { prechange: prechange.map(Cow::Borrowed), postchange: postchange.map(Cow::Borrowed), differences }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn to_json(s: &Snapshots<'_>) -> Value {
        serde_json::to_value(s).unwrap()
    }

    #[test]
    fn create_reports_whole_postchange_as_added() {
        let post = json!({"name": "r1", "serial": "A"});
        assert_eq!(
            to_json(&snapshots(None, Some(&post))),
            json!({"prechange": null, "postchange": post,
                   "differences": {"added": post, "removed": null}})
        );
    }

    #[test]
    fn update_reports_changed_keys_and_their_old_values() {
        let pre = json!({"name": "r1", "serial": "A", "site": "s1"});
        let post = json!({"name": "r1", "serial": "B", "site": "s1", "asset_tag": "T"});
        assert_eq!(
            to_json(&snapshots(Some(&pre), Some(&post))),
            json!({"prechange": pre, "postchange": post,
                   "differences": {"added": {"serial": "B", "asset_tag": "T"},
                                   "removed": {"serial": "A", "asset_tag": null}}})
        );
    }

    #[test]
    fn delete_reports_whole_prechange_as_removed() {
        let pre = json!({"name": "r1"});
        assert_eq!(
            to_json(&snapshots(Some(&pre), None)),
            json!({"prechange": pre, "postchange": null,
                   "differences": {"added": null, "removed": pre}})
        );
    }

    #[test]
    fn empty_prechange_counts_as_absent() {
        let pre = json!({});
        let post = json!({"name": "r1"});
        let s = snapshots(Some(&pre), Some(&post));
        assert_eq!(s.prechange.as_deref(), Some(&pre), "prechange is reported as given");
        assert_eq!(s.differences, Differences { added: Some(post.clone()), removed: None });
    }

    #[test]
    fn empty_postchange_counts_as_absent() {
        let pre = json!({"name": "r1"});
        let differences = snapshots(Some(&pre), Some(&json!({}))).differences;
        assert_eq!(differences, Differences { added: None, removed: Some(pre.clone()) });
    }

    #[test]
    fn both_absent_gives_null_differences() {
        let s = snapshots(None, None);
        assert_eq!(s.differences, Differences { added: None, removed: None });
        let differences = snapshots(Some(&json!({})), Some(&json!({}))).differences;
        assert_eq!(differences, Differences { added: Some(json!({})), removed: None });
    }

    #[test]
    fn last_updated_is_never_reported() {
        let pre = json!({"name": "r1", "last_updated": "t1"});
        let post = json!({"name": "r1", "last_updated": "t2"});
        let s = snapshots(Some(&pre), Some(&post));
        assert_eq!(s.differences, Differences { added: Some(json!({})), removed: Some(json!({})) });
        let dropped = json!({"name": "r1"});
        let s = snapshots(Some(&pre), Some(&dropped));
        assert_eq!(s.differences.removed, Some(json!({})));
    }

    #[test]
    fn nested_values_are_compared_and_reported_whole() {
        let pre = json!({"custom_fields": {"a": 1, "b": 2}, "tags": ["x", "y"]});
        let post = json!({"custom_fields": {"a": 1, "b": 3}, "tags": ["x", "y"]});
        let s = snapshots(Some(&pre), Some(&post));
        assert_eq!(s.differences.added, Some(json!({"custom_fields": {"a": 1, "b": 3}})));
        assert_eq!(s.differences.removed, Some(json!({"custom_fields": {"a": 1, "b": 2}})));
    }

    #[test]
    fn key_only_in_prechange_is_removed_not_added() {
        let pre = json!({"name": "r1", "comments": "old"});
        let post = json!({"name": "r1"});
        let s = snapshots(Some(&pre), Some(&post));
        assert_eq!(s.differences.added, Some(json!({})));
        assert_eq!(s.differences.removed, Some(json!({"comments": "old"})));
    }

    #[test]
    fn non_object_documents_are_reported_whole() {
        let differences = snapshots(Some(&json!([1])), Some(&json!([2]))).differences;
        assert_eq!(differences, Differences { added: Some(json!([2])), removed: Some(json!([1])) });
    }

    #[test]
    fn deserializes_what_it_serializes() {
        let pre = json!({"a": 1});
        let post = json!({"a": 2});
        let s = snapshots(Some(&pre), Some(&post));
        let back: Snapshots<'static> = serde_json::from_value(to_json(&s)).unwrap();
        assert_eq!(back, s.into_owned());
    }

    pub(crate) fn small_object() -> impl Strategy<Value = Map<String, Value>> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(Value::from),
            "[ab]{0,2}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[ab]", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-e]|last_updated", value, 0..6).prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn added_keys_are_exactly_the_differing_keys(pre in small_object(), post in small_object()) {
            let (pre_v, post_v) = (Value::Object(pre.clone()), Value::Object(post.clone()));
            let s = snapshots(Some(&pre_v), Some(&post_v));
            if pre.is_empty() || post.is_empty() {
                return Ok(());
            }
            let added = s.differences.added.as_ref().and_then(Value::as_object).unwrap();
            for (key, value) in &post {
                let differs = pre.get(key) != Some(value) && key != "last_updated";
                prop_assert_eq!(added.get(key), differs.then_some(value));
            }
            prop_assert!(added.keys().all(|k| post.contains_key(k)));
        }

        #[test]
        fn removed_keys_come_from_added_or_only_from_prechange(pre in small_object(), post in small_object()) {
            let (pre_v, post_v) = (Value::Object(pre.clone()), Value::Object(post.clone()));
            let s = snapshots(Some(&pre_v), Some(&post_v));
            if pre.is_empty() || post.is_empty() {
                return Ok(());
            }
            let added = s.differences.added.as_ref().and_then(Value::as_object).unwrap();
            let removed = s.differences.removed.as_ref().and_then(Value::as_object).unwrap();
            for (key, old) in removed {
                if added.contains_key(key) {
                    prop_assert_eq!(old, pre.get(key).unwrap_or(&Value::Null));
                } else {
                    prop_assert!(!post.contains_key(key));
                    prop_assert_eq!(Some(old), pre.get(key));
                }
            }
        }
    }
}
