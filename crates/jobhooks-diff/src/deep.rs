//! A path-level deep diff whose operations are RFC 6902 JSON Patch operations.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::members::{Member, pair_members};
use crate::pointer::{escape_token, unescape_token};

/// Above this many cells (`removed-middle × added-middle` elements) a list is diffed position by
/// position instead of by longest common subsequence, which keeps the diff of huge lists linear.
const LCS_CELL_LIMIT: usize = 1 << 16;

/// One operation of a deep diff: an RFC 6902 JSON Patch operation, addressed by an RFC 6901 JSON
/// Pointer, that also carries the value it removes or replaces.
///
/// Serialized, a list of these is a valid JSON Patch (RFC 6902 ignores the extra `old` member), and
/// a plain JSON Patch without `old` deserializes into it. Values borrow from the diffed documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum DeepChange<'a> {
    /// `value` appears at `path` (a new object member, or an element inserted into a list).
    Add {
        /// Where the value appears.
        path: String,
        /// The new value.
        value: Cow<'a, Value>,
    },
    /// The value at `path` disappears (a member removed, or an element removed from a list).
    Remove {
        /// Where the value was.
        path: String,
        /// The value removed, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Cow<'a, Value>>,
    },
    /// The value at `path` is replaced by `value`.
    Replace {
        /// Where the value changes.
        path: String,
        /// The value before, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Cow<'a, Value>>,
        /// The value after.
        value: Cow<'a, Value>,
    },
}

impl DeepChange<'_> {
    /// The JSON Pointer this operation addresses.
    pub fn path(&self) -> &str {
        match self {
            DeepChange::Add { path, .. } | DeepChange::Remove { path, .. } | DeepChange::Replace { path, .. } => path,
        }
    }

    /// Copies the borrowed values so the operation outlives the diffed documents.
    pub fn into_owned(self) -> DeepChange<'static> {
        let own = |v: Cow<'_, Value>| Cow::Owned(v.into_owned());
        match self {
            DeepChange::Add { path, value } => DeepChange::Add { path, value: own(value) },
            DeepChange::Remove { path, old } => DeepChange::Remove { path, old: old.map(own) },
            DeepChange::Replace { path, old, value } => {
                DeepChange::Replace { path, old: old.map(own), value: own(value) }
            }
        }
    }
}

/// Why a patch could not be applied. The document is left untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The path is not a JSON Pointer (a pointer is empty or starts with `/`).
    #[error("`{path}` is not a JSON Pointer: it must be empty or start with `/`")]
    InvalidPointer {
        /// The offending path.
        path: String,
    },
    /// A member or element named by the path does not exist.
    #[error("nothing at `{path}`: the patch does not fit this document")]
    PathNotFound {
        /// The path that names nothing.
        path: String,
    },
    /// A list index in the path is not a number within the list's bounds.
    #[error("`{path}` has an invalid list index (not a number, or beyond the list's end)")]
    InvalidIndex {
        /// The path with the bad index.
        path: String,
    },
    /// The path goes through a value that is neither an object nor a list.
    #[error("`{path}` goes through a value that is neither an object nor a list")]
    NotAContainer {
        /// The path that cannot be followed.
        path: String,
    },
}

/// Computes the operations that turn `from` into `to`.
///
/// Objects are compared member by member and lists element by element (a longest common
/// subsequence after trimming the common prefix and suffix), so one tag removed from a list is one
/// `remove` of that element, and a changed field inside a nested object is one `replace` of that
/// field. `deep_diff(a, a)` is empty and `apply(a, &deep_diff(a, b)) == b`.
///
/// ```
/// use serde_json::json;
/// let tags = |n: usize| json!({"tags": (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>()});
/// let (before, after) = (tags(50), tags(49));
/// let diff = jobhooks_diff::deep_diff(&before, &after);
/// assert_eq!(diff.len(), 1);
/// assert_eq!(diff[0].path(), "/tags/49");
/// ```
pub fn deep_diff<'a>(from: &'a Value, to: &'a Value) -> Vec<DeepChange<'a>> {
    let mut changes = Vec::new();
    let mut path = String::new();
    diff_values(from, to, &mut path, &mut changes);
    changes
}

fn diff_values<'a>(from: &'a Value, to: &'a Value, path: &mut String, out: &mut Vec<DeepChange<'a>>) {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => diff_objects(a, b, path, out),
        (Value::Array(a), Value::Array(b)) => diff_arrays(a, b, path, out),
        _ if from == to => {}
        _ => out.push(DeepChange::Replace {
            path: path.clone(),
            old: Some(Cow::Borrowed(from)),
            value: Cow::Borrowed(to),
        }),
    }
}

/// Appends `token` to `path` as one more reference token.
fn push_token(path: &mut String, token: &str) {
    path.push('/');
    path.push_str(&escape_token(token));
}

/// Appends a list index to `path` as one more reference token.
fn push_index(path: &mut String, index: usize) {
    use std::fmt::Write;
    let _infallible = write!(path, "/{index}");
}

/// Runs `f` with `token` appended to `path` as one more reference token.
fn with_token<R>(path: &mut String, token: &str, f: impl FnOnce(&mut String) -> R) -> R {
    let len = path.len();
    push_token(path, token);
    let result = f(path);
    path.truncate(len);
    result
}

/// Runs `f` with the list index `index` appended to `path`.
fn with_index<R>(path: &mut String, index: usize, f: impl FnOnce(&mut String) -> R) -> R {
    let len = path.len();
    push_index(path, index);
    let result = f(path);
    path.truncate(len);
    result
}

fn diff_objects<'a>(
    a: &'a Map<String, Value>,
    b: &'a Map<String, Value>,
    path: &mut String,
    out: &mut Vec<DeepChange<'a>>,
) {
    pair_members(a, b, |member| match member {
        Member::Both(key, old, new) => diff_member(old, new, path, out, |path| push_token(path, key)),
        Member::OnlyFirst(key, old) => with_token(path, key, |path| {
            out.push(DeepChange::Remove { path: path.clone(), old: Some(Cow::Borrowed(old)) })
        }),
        Member::OnlySecond(key, new) => {
            with_token(path, key, |path| out.push(DeepChange::Add { path: path.clone(), value: Cow::Borrowed(new) }))
        }
    });
}

/// Diffs one member (an object's field or a list's element) whose token `push` appends to `path`.
/// Equal scalars, the common case, return before the path is touched.
fn diff_member<'a>(
    old: &'a Value,
    new: &'a Value,
    path: &mut String,
    out: &mut Vec<DeepChange<'a>>,
    push: impl FnOnce(&mut String),
) {
    let containers = matches!((old, new), (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_)));
    if !containers && old == new {
        return;
    }
    let len = path.len();
    push(path);
    diff_values(old, new, path, out);
    path.truncate(len);
}

/// One step of an edit script over two lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Keep,
    Delete,
    Insert,
}

fn diff_arrays<'a>(a: &'a [Value], b: &'a [Value], path: &mut String, out: &mut Vec<DeepChange<'a>>) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let script = edit_script(a_mid, b_mid);

    let (mut index, mut ai, mut bi) = (prefix, 0, 0);
    let mut steps = script.iter().peekable();
    while let Some(&step) = steps.next() {
        if step == Edit::Keep {
            index += 1;
            ai += 1;
            bi += 1;
            continue;
        }
        // A run of deletions and insertions between two kept elements: pair them up as in-place
        // changes (diffed recursively), then remove or insert whatever is left over.
        let (mut deletes, mut inserts) = (0, 0);
        let mut count = |s: Edit| match s {
            Edit::Delete => deletes += 1,
            Edit::Insert => inserts += 1,
            Edit::Keep => {}
        };
        count(step);
        while let Some(&&next) = steps.peek() {
            if next == Edit::Keep {
                break;
            }
            count(next);
            steps.next();
        }
        let paired = deletes.min(inserts);
        for _ in 0..paired {
            diff_member(&a_mid[ai], &b_mid[bi], path, out, |path| push_index(path, index));
            index += 1;
            ai += 1;
            bi += 1;
        }
        for _ in paired..deletes {
            with_index(path, index, |path| {
                out.push(DeepChange::Remove { path: path.clone(), old: Some(Cow::Borrowed(&a_mid[ai])) })
            });
            ai += 1;
        }
        for _ in paired..inserts {
            with_index(path, index, |path| {
                out.push(DeepChange::Add { path: path.clone(), value: Cow::Borrowed(&b_mid[bi]) })
            });
            index += 1;
            bi += 1;
        }
    }
}

/// The shortest edit script from `a` to `b` by longest common subsequence, or a positional one when
/// the lists are too long for the quadratic table.
fn edit_script(a: &[Value], b: &[Value]) -> Vec<Edit> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 || n.saturating_mul(m) > LCS_CELL_LIMIT {
        let common = n.min(m);
        let mut script = Vec::with_capacity(n.max(m) + common);
        for _ in 0..common {
            script.extend([Edit::Delete, Edit::Insert]);
        }
        script.extend(std::iter::repeat_n(Edit::Delete, n - common));
        script.extend(std::iter::repeat_n(Edit::Insert, m - common));
        return script;
    }
    // lcs[i * (m + 1) + j] = length of the LCS of a[i..] and b[j..].
    let width = m + 1;
    let mut lcs = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut script = Vec::with_capacity(n + m);
    while i < n && j < m {
        if a[i] == b[j] {
            script.push(Edit::Keep);
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
            script.push(Edit::Delete);
            i += 1;
        } else {
            script.push(Edit::Insert);
            j += 1;
        }
    }
    script.extend(std::iter::repeat_n(Edit::Delete, n - i));
    script.extend(std::iter::repeat_n(Edit::Insert, m - j));
    script
}

/// Applies `patch` to a copy of `doc` and returns the result; `doc` itself is never modified, so a
/// patch that fails halfway leaves nothing half-applied.
///
/// ```
/// use serde_json::json;
/// let patch: Vec<jobhooks_diff::DeepChange> = serde_json::from_value(json!([
///     {"op": "add", "path": "/tags/-", "value": "new"},
///     {"op": "replace", "path": "/serial", "value": "B2"},
/// ])).unwrap();
/// let doc = json!({"serial": "A1", "tags": ["old"]});
/// assert_eq!(
///     jobhooks_diff::apply(&doc, &patch).unwrap(),
///     json!({"serial": "B2", "tags": ["old", "new"]})
/// );
/// ```
pub fn apply(doc: &Value, patch: &[DeepChange<'_>]) -> Result<Value, PatchError> {
    let mut result = doc.clone();
    for change in patch {
        apply_one(&mut result, change)?;
    }
    Ok(result)
}

fn apply_one(doc: &mut Value, change: &DeepChange<'_>) -> Result<(), PatchError> {
    let path = change.path();
    let Some((parent_path, last)) = split_last(path)? else {
        // The empty pointer names the whole document.
        return match change {
            DeepChange::Add { value, .. } | DeepChange::Replace { value, .. } => {
                *doc = value.clone().into_owned();
                Ok(())
            }
            DeepChange::Remove { .. } => Err(PatchError::PathNotFound { path: path.to_owned() }),
        };
    };
    let parent = resolve_mut(doc, parent_path, path)?;
    let not_found = || PatchError::PathNotFound { path: path.to_owned() };
    let bad_index = || PatchError::InvalidIndex { path: path.to_owned() };
    match parent {
        Value::Object(map) => match change {
            DeepChange::Add { value, .. } => {
                map.insert(last.into_owned(), value.clone().into_owned());
            }
            DeepChange::Remove { .. } => {
                map.remove(last.as_ref()).ok_or_else(not_found)?;
            }
            DeepChange::Replace { value, .. } => {
                *map.get_mut(last.as_ref()).ok_or_else(not_found)? = value.clone().into_owned();
            }
        },
        Value::Array(list) => match change {
            DeepChange::Add { value, .. } => {
                let index = if last == "-" { list.len() } else { parse_index(&last).ok_or_else(bad_index)? };
                if index > list.len() {
                    return Err(bad_index());
                }
                list.insert(index, value.clone().into_owned());
            }
            DeepChange::Remove { .. } => {
                let index = parse_index(&last).filter(|&i| i < list.len()).ok_or_else(bad_index)?;
                list.remove(index);
            }
            DeepChange::Replace { value, .. } => {
                let index = parse_index(&last).filter(|&i| i < list.len()).ok_or_else(bad_index)?;
                list[index] = value.clone().into_owned();
            }
        },
        _ => return Err(PatchError::NotAContainer { path: path.to_owned() }),
    }
    Ok(())
}

/// Splits a pointer into its parent pointer and its last token; `None` for the empty pointer.
fn split_last(path: &str) -> Result<Option<(&str, Cow<'_, str>)>, PatchError> {
    if path.is_empty() {
        return Ok(None);
    }
    if !path.starts_with('/') {
        return Err(PatchError::InvalidPointer { path: path.to_owned() });
    }
    let cut = path.rfind('/').unwrap_or(0);
    Ok(Some((&path[..cut], unescape_token(&path[cut + 1..]))))
}

/// RFC 6901 array index: `0` or digits without a leading zero.
fn parse_index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

fn resolve_mut<'v>(doc: &'v mut Value, pointer: &str, full_path: &str) -> Result<&'v mut Value, PatchError> {
    let mut current = doc;
    if pointer.is_empty() {
        return Ok(current);
    }
    for token in pointer[1..].split('/') {
        let token = unescape_token(token);
        current = match current {
            Value::Object(map) => map.get_mut(token.as_ref()),
            Value::Array(list) => parse_index(&token).and_then(|i| list.get_mut(i)),
            _ => return Err(PatchError::NotAContainer { path: full_path.to_owned() }),
        }
        .ok_or_else(|| PatchError::PathNotFound { path: full_path.to_owned() })?;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ops(from: &Value, to: &Value) -> Value {
        serde_json::to_value(deep_diff(from, to)).unwrap()
    }

    #[test]
    fn nested_field_change_is_one_replace() {
        let from = json!({"custom_fields": {"owner": "a", "rack": 1}});
        let to = json!({"custom_fields": {"owner": "b", "rack": 1}});
        assert_eq!(
            ops(&from, &to),
            json!([{"op": "replace", "path": "/custom_fields/owner", "old": "a", "value": "b"}])
        );
    }

    #[test]
    fn member_added_and_removed() {
        let from = json!({"a": 1, "b": 2});
        let to = json!({"b": 2, "c/d": 3});
        assert_eq!(
            ops(&from, &to),
            json!([{"op": "remove", "path": "/a", "old": 1}, {"op": "add", "path": "/c~1d", "value": 3}])
        );
    }

    #[test]
    fn removing_one_tag_from_the_middle_is_one_remove() {
        let from = json!({"tags": ["a", "b", "c", "d"]});
        let to = json!({"tags": ["a", "b", "d"]});
        assert_eq!(ops(&from, &to), json!([{"op": "remove", "path": "/tags/2", "old": "c"}]));
    }

    #[test]
    fn insertions_and_changes_in_lists() {
        let from = json!([{"id": 1, "v": "x"}, "keep", 3]);
        let to = json!([{"id": 1, "v": "y"}, "new", "keep", 3, 4]);
        let patch = deep_diff(&from, &to);
        assert_eq!(apply(&from, &patch).unwrap(), to);
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "replace", "path": "/0/v", "old": "x", "value": "y"},
                {"op": "add", "path": "/1", "value": "new"},
                {"op": "add", "path": "/4", "value": 4},
            ])
        );
    }

    #[test]
    fn long_lists_fall_back_to_positional_diff() {
        let from = Value::Array((0..400).map(Value::from).collect());
        let to = Value::Array((0..400).rev().map(Value::from).collect());
        assert_eq!(apply(&from, &deep_diff(&from, &to)).unwrap(), to);
    }

    #[test]
    fn type_change_replaces_whole_value() {
        assert_eq!(
            ops(&json!({"a": [1]}), &json!({"a": {"x": 1}})),
            json!([{"op": "replace", "path": "/a", "old": [1], "value": {"x": 1}}])
        );
        assert_eq!(ops(&json!(1), &json!(2)), json!([{"op": "replace", "path": "", "old": 1, "value": 2}]));
    }

    #[test]
    fn bad_patches_are_errors_not_panics() {
        let doc = json!({"a": [1, 2], "s": "x"});
        let cases = [
            (json!({"op": "remove", "path": "/missing"}), PatchError::PathNotFound { path: "/missing".into() }),
            (json!({"op": "remove", "path": "a"}), PatchError::InvalidPointer { path: "a".into() }),
            (json!({"op": "remove", "path": "/a/7"}), PatchError::InvalidIndex { path: "/a/7".into() }),
            (json!({"op": "add", "path": "/a/01", "value": 0}), PatchError::InvalidIndex { path: "/a/01".into() }),
            (json!({"op": "add", "path": "/a/3", "value": 0}), PatchError::InvalidIndex { path: "/a/3".into() }),
            (json!({"op": "replace", "path": "/s/x", "value": 0}), PatchError::NotAContainer { path: "/s/x".into() }),
            (
                json!({"op": "replace", "path": "/x/y/z", "value": 0}),
                PatchError::PathNotFound { path: "/x/y/z".into() },
            ),
            (json!({"op": "remove", "path": ""}), PatchError::PathNotFound { path: "".into() }),
        ];
        for (op, expected) in cases {
            let change: DeepChange = serde_json::from_value(op).unwrap();
            assert_eq!(apply(&doc, &[change]), Err(expected));
        }
    }

    #[test]
    fn failed_patch_leaves_document_untouched() {
        let doc = json!({"a": 1});
        let patch = vec![
            DeepChange::Replace { path: "/a".into(), old: None, value: Cow::Owned(json!(2)) },
            DeepChange::Remove { path: "/nope".into(), old: None },
        ];
        assert!(apply(&doc, &patch).is_err());
        assert_eq!(doc, json!({"a": 1}));
    }

    pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::from),
            "[a-c/~]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-d/~]{1,2}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn applying_the_diff_yields_the_target(a in arb_json(), b in arb_json()) {
            let patch = deep_diff(&a, &b);
            prop_assert_eq!(apply(&a, &patch).unwrap(), b.clone());
            // The serialized form is a JSON Patch that round-trips too.
            let reparsed: Vec<DeepChange> = serde_json::from_str(&serde_json::to_string(&patch).unwrap()).unwrap();
            prop_assert_eq!(apply(&a, &reparsed).unwrap(), b);
        }

        #[test]
        fn diff_of_a_value_with_itself_is_empty(a in arb_json()) {
            prop_assert!(deep_diff(&a, &a).is_empty());
        }

        #[test]
        fn removing_one_element_is_one_remove(list in prop::collection::vec(arb_json(), 1..20), at in any::<prop::sample::Index>()) {
            let index = at.index(list.len());
            let mut shorter = list.clone();
            let gone = shorter.remove(index);
            let (from, to) = (Value::Array(list), Value::Array(shorter));
            let patch = deep_diff(&from, &to);
            prop_assert_eq!(patch.len(), 1);
            match &patch[0] {
                DeepChange::Remove { old: Some(old), .. } => prop_assert_eq!(old.as_ref(), &gone),
                other => prop_assert!(false, "expected one remove, got {:?}", other),
            }
        }

        #[test]
        fn arbitrary_patches_never_panic(a in arb_json(), b in arb_json(), c in arb_json()) {
            // A diff computed against one document, applied to another: an error or a value, never a panic.
            let patch = deep_diff(&a, &b);
            let _outcome = apply(&c, &patch);
        }
    }
}
