//! Conditions on job hooks, in the form of NetBox's event rules: which changes a hook cares about.
//!
//! A condition is a test of one value of a change (a *leaf*) or a list of conditions that must all
//! (`and`) or any (`or`) hold:
//!
//! ```json
//! {"and": [
//!   {"attr": "postchange.status", "value": "active"},
//!   {"attr": "differences.added.serial", "op": "regex", "value": "^SN-", "negate": true}
//! ]}
//! ```
//!
//! `attr` is a dotted path into the change's snapshots, as `ObjectChange::get_snapshots()` gives
//! them: `prechange.…`, `postchange.…` or `differences.added.…` / `differences.removed.…`. Through a
//! list, a path continues into each member (`postchange.tags.name` is the list of the tags' names),
//! or takes one member by its index (`postchange.tags.0.name`). A path that is not in the data reads
//! as `null`. `op` is one of `eq` (the default), `gt`, `gte`, `lt`, `lte` (numbers with numbers,
//! strings with strings), `in` (the value is a list holding the data), `contains` (a string holding
//! the value, a list holding it, or an object with it as a key) and `regex` (a string matching the
//! pattern from its start, as NetBox's `re.match`; patterns run in linear time). `negate` inverts
//! the leaf.
//!
//! Conditions are checked when they are read ([`Condition::from_json`]): a bad path, an unknown
//! operator, a regex that does not compile, an `in` without a list each have a message naming where
//! in the condition it is. A hook holds only conditions that passed.
//!
//! ```
//! use jobhooks_model::{Condition, ConditionInput, json};
//!
//! let condition = Condition::from_json(&json!({"attr": "postchange.status", "value": "active"})).unwrap();
//! let before = json!({"status": "planned"});
//! let after = json!({"status": "active"});
//! assert!(condition.holds(&ConditionInput::new(Some(&before), Some(&after))));
//! assert!(!condition.holds(&ConditionInput::new(Some(&after), Some(&before))));
//! let bad = Condition::from_json(&json!({"attr": "status", "value": "active"})).unwrap_err();
//! assert_eq!(
//!     bad.to_string(),
//!     "attr: `status` must start with prechange., postchange. or differences."
//! );
//! ```

use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

mod fields;
mod pattern;

pub(crate) use fields::FieldNumbers;
use fields::{FieldKey, FieldTable, Member};
use pattern::Pattern;

/// The most leaves one hook's condition may hold.
pub const MAX_CONDITION_LEAVES: usize = 64;
/// The deepest nesting of `and` and `or` one hook's condition may have.
pub const MAX_CONDITION_DEPTH: usize = 8;
/// The longest regular expression a leaf may hold, in bytes.
pub const MAX_REGEX_LEN: usize = 1_000;
/// The most memory one compiled regular expression may take, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a condition cannot be used: where in it, and what is wrong there. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
#[non_exhaustive]
pub struct ConditionError {
    /// Where: `attr`, `and[1].op`, …
    pub at: String,
    /// What is wrong there.
    pub reason: String,
}

impl ConditionError {
    fn new(at: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { at: at.into(), reason: reason.into() }
    }
}

/// A comparison of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ConditionOp {
    /// Equal (numbers by value: `1` equals `1.0`).
    #[default]
    Eq,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// The data is one of the value's members (the value is a list).
    In,
    /// The data holds the value: a substring, a member, or a key.
    Contains,
    /// The data is a string that matches the value (a pattern) from its start.
    Regex,
}

impl ConditionOp {
    /// Every operator.
    pub const ALL: [ConditionOp; 8] = [
        ConditionOp::Eq,
        ConditionOp::Gt,
        ConditionOp::Gte,
        ConditionOp::Lt,
        ConditionOp::Lte,
        ConditionOp::In,
        ConditionOp::Contains,
        ConditionOp::Regex,
    ];

    /// The operator's name: `eq`, `gt`, `gte`, `lt`, `lte`, `in`, `contains` or `regex`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionOp::Eq => "eq",
            ConditionOp::Gt => "gt",
            ConditionOp::Gte => "gte",
            ConditionOp::Lt => "lt",
            ConditionOp::Lte => "lte",
            ConditionOp::In => "in",
            ConditionOp::Contains => "contains",
            ConditionOp::Regex => "regex",
        }
    }

    /// The operator named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// Which snapshot a path starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Root {
    Prechange,
    Postchange,
    Differences,
}

impl Root {
    fn as_str(self) -> &'static str {
        match self {
            Root::Prechange => "prechange",
            Root::Postchange => "postchange",
            Root::Differences => "differences",
        }
    }
}

/// A test of one value of a change.
#[derive(Debug, Clone)]
pub struct ConditionLeaf {
    root: Root,
    path: Vec<String>,
    op: ConditionOp,
    value: Value,
    negate: bool,
    /// The value as a compiled pattern, for `regex`.
    pattern: Option<Pattern>,
    /// The top-level field the leaf reads, as it is looked up.
    field: LeafField,
}

/// The top-level field a leaf reads (`path[0]`, or `path[1]` under the differences), with what
/// reading it needs worked out when the condition is read, so that evaluating the leaf touches
/// only the leaf.
#[derive(Debug, Clone)]
struct LeafField {
    /// The field's name.
    name: Box<str>,
    /// Its key in a change's [`ConditionInput`].
    key: FieldKey,
    /// Where in the path the part below the field starts.
    rest: usize,
    /// Under the differences: `added` (rather than `removed`).
    added: bool,
    /// The field is never in the differences (`last_updated`).
    excluded: bool,
    /// Its number in a [`FieldNumbering`], once a hook matcher has given it one.
    number: Option<u32>,
}

impl LeafField {
    /// The field `name`, read from its path at `rest - 1`; `added` under the differences.
    fn new(name: &str, rest: usize, added: bool) -> Self {
        Self {
            key: FieldKey::of(name),
            excluded: jobhooks_diff::EXCLUDED_FROM_DIFF.contains(&name),
            name: name.into(),
            rest,
            added,
            number: None,
        }
    }
}

/// A hook's `changed_fields`, each numbered in a [`FieldNumbering`].
#[derive(Debug, Clone)]
pub(crate) struct NumberedFields(Vec<LeafField>);

/// Numbers the top-level fields the conditions of many hooks read, so that a change finds each of
/// them by name once and its leaves find it by number after that (see
/// [`HookMatcher`](crate::HookMatcher)).
#[derive(Debug, Default)]
pub(crate) struct FieldNumbering {
    numbers: FieldNumbers,
}

impl FieldNumbering {
    /// The numbers given.
    pub(crate) fn into_numbers(self) -> FieldNumbers {
        self.numbers
    }

    fn number(&mut self, field: &mut LeafField) {
        field.number = Some(self.numbers.number(&field.name));
    }

    /// `fields` (a hook's `changed_fields`), numbered.
    pub(crate) fn fields(&mut self, fields: &[String]) -> NumberedFields {
        NumberedFields(
            fields
                .iter()
                .map(|name| {
                    let mut field = LeafField::new(name, 1, false);
                    self.number(&mut field);
                    field
                })
                .collect(),
        )
    }

    /// A copy of `condition` whose leaves read their fields by number.
    pub(crate) fn condition(&mut self, condition: &Condition) -> Condition {
        match condition {
            Condition::And(all) => Condition::And(all.iter().map(|member| self.condition(member)).collect()),
            Condition::Or(any) => Condition::Or(any.iter().map(|member| self.condition(member)).collect()),
            Condition::Leaf(leaf) => {
                let mut leaf = leaf.clone();
                self.number(&mut leaf.field);
                Condition::Leaf(leaf)
            }
        }
    }
}

impl PartialEq for ConditionLeaf {
    fn eq(&self, other: &Self) -> bool {
        (self.root, &self.path, self.op, &self.value, self.negate)
            == (other.root, &other.path, other.op, &other.value, other.negate)
    }
}

impl Eq for ConditionLeaf {}

impl ConditionLeaf {
    /// The dotted path, as written.
    pub fn attr(&self) -> String {
        std::iter::once(self.root.as_str()).chain(self.path.iter().map(String::as_str)).collect::<Vec<_>>().join(".")
    }

    /// The comparison.
    pub fn op(&self) -> ConditionOp {
        self.op
    }

    /// The value compared with.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Whether the leaf is inverted.
    pub fn negate(&self) -> bool {
        self.negate
    }

    /// Whether the leaf reads the differences (which must then be computed).
    fn reads_differences(&self) -> bool {
        self.root == Root::Differences
    }

    fn holds(&self, input: &ConditionInput<'_>) -> bool {
        let (found, below) = match self.root {
            Root::Prechange => input.snapshot(input.prechange, 0, &self.field, &self.path),
            Root::Postchange => input.snapshot(input.postchange, 1, &self.field, &self.path),
            Root::Differences => input.difference(&self.field, &self.path),
        };
        if below.is_empty() { self.test(found) } else { self.test(&resolve(found, below)) }
    }

    /// Whether the leaf holds of `data`, the value at its path.
    fn test(&self, data: &Value) -> bool {
        let result = match self.op {
            ConditionOp::Eq => loosely_equal(data, &self.value),
            ConditionOp::Gt => compare(data, &self.value) == Some(Ordering::Greater),
            ConditionOp::Gte => matches!(compare(data, &self.value), Some(Ordering::Greater | Ordering::Equal)),
            ConditionOp::Lt => compare(data, &self.value) == Some(Ordering::Less),
            ConditionOp::Lte => matches!(compare(data, &self.value), Some(Ordering::Less | Ordering::Equal)),
            ConditionOp::In => {
                self.value.as_array().is_some_and(|members| members.iter().any(|member| loosely_equal(data, member)))
            }
            ConditionOp::Contains => match (data, &self.value) {
                (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
                (Value::Array(members), wanted) => members.iter().any(|member| loosely_equal(member, wanted)),
                (Value::Object(fields), Value::String(key)) => fields.contains_key(key),
                _ => false,
            },
            ConditionOp::Regex => match (data, &self.pattern) {
                (Value::String(text), Some(pattern)) => pattern.is_match(text),
                _ => false,
            },
        };
        result != self.negate
    }
}

/// A condition on changes: a leaf, or conditions that must all or any hold. Serialized as NetBox
/// writes it; read (and checked) with [`Condition::from_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// Every one holds (`{"and": [...]}`; an empty list always holds).
    And(Vec<Condition>),
    /// One of them holds (`{"or": [...]}`; an empty list never holds).
    Or(Vec<Condition>),
    /// One test.
    Leaf(ConditionLeaf),
}

impl Condition {
    /// Reads and checks a condition from its JSON form.
    pub fn from_json(json: &Value) -> Result<Self, ConditionError> {
        let mut leaves = 0;
        let condition = parse(json, "", 0, &mut leaves)?;
        if leaves > MAX_CONDITION_LEAVES {
            return Err(ConditionError::new(
                "conditions",
                format!("{leaves} tests; a hook's condition may hold at most {MAX_CONDITION_LEAVES}"),
            ));
        }
        Ok(condition)
    }

    /// The condition's JSON form, as NetBox writes it.
    pub fn to_json(&self) -> Value {
        match self {
            Condition::And(all) => serde_json::json!({"and": all.iter().map(Condition::to_json).collect::<Vec<_>>()}),
            Condition::Or(any) => serde_json::json!({"or": any.iter().map(Condition::to_json).collect::<Vec<_>>()}),
            Condition::Leaf(leaf) => {
                let mut fields = Map::new();
                fields.insert("attr".into(), Value::String(leaf.attr()));
                fields.insert("value".into(), leaf.value.clone());
                fields.insert("op".into(), Value::String(leaf.op.as_str().into()));
                fields.insert("negate".into(), Value::Bool(leaf.negate));
                Value::Object(fields)
            }
        }
    }

    /// Whether the change `input` describes passes the condition.
    pub fn holds(&self, input: &ConditionInput<'_>) -> bool {
        match self {
            Condition::And(all) => all.iter().all(|condition| condition.holds(input)),
            Condition::Or(any) => any.iter().any(|condition| condition.holds(input)),
            Condition::Leaf(leaf) => leaf.holds(input),
        }
    }

    /// Whether some leaf reads the differences.
    pub fn reads_differences(&self) -> bool {
        match self {
            Condition::And(all) | Condition::Or(all) => all.iter().any(Condition::reads_differences),
            Condition::Leaf(leaf) => leaf.reads_differences(),
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Value::deserialize(deserializer)?;
        Condition::from_json(&json).map_err(serde::de::Error::custom)
    }
}

/// A snapshot's members.
type Fields = Map<String, Value>;

/// What a condition is checked against: a change's snapshots. The differences are computed the
/// first time a condition reads them, once per change.
#[derive(Debug)]
pub struct ConditionInput<'a> {
    prechange: Option<&'a Value>,
    postchange: Option<&'a Value>,
    differences: OnceLock<Value>,
    /// The top-level fields conditions have read so far.
    fields: RefCell<FieldTable<'a>>,
}

/// The value of a path that leads nowhere.
static NULL: Value = Value::Null;

impl<'a> ConditionInput<'a> {
    /// The snapshots of a change: its data before (`None` for a create) and after (`None` for a
    /// delete).
    pub fn new(prechange: Option<&'a Value>, postchange: Option<&'a Value>) -> Self {
        Self { prechange, postchange, differences: OnceLock::new(), fields: RefCell::new(FieldTable::default()) }
    }

    /// For a [`HookMatcher`](crate::HookMatcher) whose hooks read the fields `numbers` numbered.
    pub(crate) fn numbered(
        prechange: Option<&'a Value>,
        postchange: Option<&'a Value>,
        numbers: &'a FieldNumbers,
    ) -> Self {
        let fields = RefCell::new(FieldTable::numbered(numbers));
        Self { prechange, postchange, differences: OnceLock::new(), fields }
    }

    /// The top-level `field` of the prechange (`side` 0) or the postchange (1), where it is an
    /// object; found in the maps the first time, then kept.
    fn member(&self, field: &LeafField, side: usize) -> Option<&'a Value> {
        self.kept_member(field, |member| member.values[side])
    }

    /// Whether the top-level `field` differs between the prechange and the postchange (a missing
    /// value counts), and its value on `side`; the comparison is made once per change and field.
    fn member_differs(&self, field: &LeafField, side: usize) -> (bool, Option<&'a Value>) {
        self.kept_member(field, |member| {
            let differs = *member.differs.get_or_insert_with(|| member.values[0] != member.values[1]);
            (differs, member.values[side])
        })
    }

    /// Runs `read` on `field`, kept once read.
    fn kept_member<R>(&self, field: &LeafField, read: impl FnOnce(&mut Member<'a>) -> R) -> R {
        let sides = [self.prechange, self.postchange].map(|snapshot| snapshot.and_then(Value::as_object));
        self.fields.borrow_mut().read(sides, field.key, &field.name, field.number, read)
    }

    /// Where `path` (whose first member is `field`) leads under `snapshot` (side 0 the prechange,
    /// 1 the postchange): a value and the part of the path still to follow from it ([`resolve`]).
    /// Its first field is found through [`ConditionInput::member`]; no snapshot reads as `null`.
    fn snapshot<'p>(
        &self,
        snapshot: Option<&'a Value>,
        side: usize,
        field: &LeafField,
        path: &'p [String],
    ) -> (&'a Value, &'p [String]) {
        match snapshot {
            None => (&NULL, &[]),
            Some(Value::Object(_)) => {
                self.member(field, side).map_or((&NULL, &[]), |value| (value, &path[field.rest..]))
            }
            Some(data) => (data, path),
        }
    }

    /// The snapshots of `change`.
    pub fn of(change: &'a crate::ObjectChange) -> Self {
        Self::new(change.prechange_data(), change.postchange_data())
    }

    /// `{"added": …, "removed": …}`, as `get_snapshots()` gives them.
    pub fn differences(&self) -> &Value {
        self.differences.get_or_init(|| {
            let differences = jobhooks_diff::snapshots(self.prechange, self.postchange).differences;
            serde_json::json!({"added": differences.added, "removed": differences.removed})
        })
    }

    /// Whether one of `fields` (top-level names of the object's data) changed: it is a key of the
    /// differences' `added` or `removed`.
    pub fn changed_any(&self, fields: &[String]) -> bool {
        if self.both_objects().is_some() {
            return self.any_differs(fields.iter().map(|name| LeafField::new(name, 1, false)));
        }
        self.changed_in_differences(fields)
    }

    /// [`ConditionInput::changed_any`] for fields a hook matcher numbered.
    pub(crate) fn changed_any_numbered(&self, fields: &NumberedFields, names: &[String]) -> bool {
        if self.both_objects().is_some() {
            return self.any_differs(fields.0.iter());
        }
        self.changed_in_differences(names)
    }

    /// Whether one of `fields` differs between the snapshots, both objects.
    fn any_differs<F: std::borrow::Borrow<LeafField>>(&self, fields: impl IntoIterator<Item = F>) -> bool {
        // A key is in the differences exactly when its values differ (a missing value counts).
        fields.into_iter().any(|field| !field.borrow().excluded && self.member_differs(field.borrow(), 0).0)
    }

    /// Whether one of `fields` is a key of the differences' `added` or `removed`.
    fn changed_in_differences(&self, fields: &[String]) -> bool {
        let differences = self.differences();
        let changed =
            |side: &str, field: &str| differences[side].as_object().is_some_and(|keys| keys.contains_key(field));
        fields.iter().any(|field| changed("added", field) || changed("removed", field))
    }

    /// Where `path` (`added.…` or `removed.…`) leads under the differences, as
    /// [`ConditionInput::snapshot`]. When both snapshots are objects and the path names a key, it
    /// is read from them key by key, as the differences would hold it, without building the
    /// differences.
    fn difference<'p>(&self, field: &LeafField, path: &'p [String]) -> (&Value, &'p [String]) {
        // `differences.added` alone is the whole of one side.
        if self.both_objects().is_some() && path.len() >= field.rest {
            if field.excluded {
                return (&NULL, &[]);
            }
            let value = match self.member_differs(field, usize::from(field.added)) {
                (true, value) => value,
                (false, _) => None,
            };
            return value.map_or((&NULL, &[]), |value| (value, &path[field.rest..]));
        }
        (self.differences(), path)
    }

    /// Both snapshots, when both are non-empty objects: the differences are then key by key.
    fn both_objects(&self) -> Option<(&'a Fields, &'a Fields)> {
        match (self.prechange, self.postchange) {
            (Some(Value::Object(pre)), Some(Value::Object(post))) if !pre.is_empty() && !post.is_empty() => {
                Some((pre, post))
            }
            _ => None,
        }
    }
}

/// The value at `path` under `data`: through a list, each member's (or, for a number, one
/// member); `null` where the path leads nowhere.
fn resolve<'v>(data: &'v Value, path: &[String]) -> Cow<'v, Value> {
    let Some((first, rest)) = path.split_first() else { return Cow::Borrowed(data) };
    match data {
        Value::Object(fields) => match fields.get(first) {
            Some(inner) => resolve(inner, rest),
            None => Cow::Borrowed(&NULL),
        },
        Value::Array(members) => match first.parse::<usize>() {
            Ok(index) => members.get(index).map_or(Cow::Borrowed(&NULL), |member| resolve(member, rest)),
            Err(_) => {
                Cow::Owned(Value::Array(members.iter().map(|member| resolve(member, path).into_owned()).collect()))
            }
        },
        _ => Cow::Borrowed(&NULL),
    }
}

/// JSON equality, numbers by value.
fn loosely_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => left == right,
    }
}

/// The order of two numbers or two strings; `None` for anything else.
fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// `at` with `field` after it.
fn under(at: &str, field: &str) -> String {
    if at.is_empty() { field.to_owned() } else { format!("{at}.{field}") }
}

fn parse(json: &Value, at: &str, depth: usize, leaves: &mut usize) -> Result<Condition, ConditionError> {
    let Value::Object(fields) = json else {
        return Err(ConditionError::new(
            if at.is_empty() { "conditions" } else { at },
            "a condition is an object: {\"attr\", \"value\", \"op\", \"negate\"}, {\"and\": [...]} or {\"or\": [...]}",
        ));
    };
    for (key, build) in [("and", Condition::And as fn(Vec<Condition>) -> Condition), ("or", Condition::Or)] {
        let Some(members) = fields.get(key) else { continue };
        let here = under(at, key);
        if fields.len() != 1 {
            return Err(ConditionError::new(here, format!("`{key}` stands alone in its object")));
        }
        if depth >= MAX_CONDITION_DEPTH {
            return Err(ConditionError::new(here, format!("conditions nest at most {MAX_CONDITION_DEPTH} deep")));
        }
        let Value::Array(members) = members else {
            return Err(ConditionError::new(here, "a list of conditions is required"));
        };
        let parsed: Result<Vec<_>, _> = members
            .iter()
            .enumerate()
            .map(|(index, member)| parse(member, &format!("{here}[{index}]"), depth + 1, leaves))
            .collect();
        return parsed.map(build);
    }
    *leaves += 1;
    if let Some(unknown) = fields.keys().find(|key| !["attr", "value", "op", "negate"].contains(&key.as_str())) {
        return Err(ConditionError::new(
            under(at, unknown),
            "unknown key: a condition has attr, value, op and negate, or is {\"and\": [...]} or {\"or\": [...]}",
        ));
    }
    let attr = match fields.get("attr") {
        Some(Value::String(attr)) => attr,
        Some(_) => return Err(ConditionError::new(under(at, "attr"), "a dotted path (a string) is required")),
        None => return Err(ConditionError::new(under(at, "attr"), "This field is required.")),
    };
    let mut segments = attr.split('.');
    let root = match segments.next() {
        Some("prechange") => Root::Prechange,
        Some("postchange") => Root::Postchange,
        Some("differences") => Root::Differences,
        _ => {
            return Err(ConditionError::new(
                under(at, "attr"),
                format!("`{attr}` must start with prechange., postchange. or differences."),
            ));
        }
    };
    let path: Vec<String> = segments.map(str::to_owned).collect();
    if path.is_empty() || path.iter().any(String::is_empty) {
        return Err(ConditionError::new(
            under(at, "attr"),
            format!("`{attr}` needs a field after `{}.`, and no empty part", root.as_str()),
        ));
    }
    if root == Root::Differences && !matches!(path[0].as_str(), "added" | "removed") {
        return Err(ConditionError::new(
            under(at, "attr"),
            format!("`{attr}`: the differences are `differences.added.…` and `differences.removed.…`"),
        ));
    }
    let op = match fields.get("op") {
        None => ConditionOp::Eq,
        Some(Value::String(name)) => ConditionOp::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = ConditionOp::ALL.iter().map(|op| op.as_str()).collect();
            ConditionError::new(under(at, "op"), format!("unknown operator `{name}`: use one of {}", names.join(", ")))
        })?,
        Some(_) => return Err(ConditionError::new(under(at, "op"), "an operator's name (a string) is required")),
    };
    let negate = match fields.get("negate") {
        None => false,
        Some(Value::Bool(negate)) => *negate,
        Some(_) => return Err(ConditionError::new(under(at, "negate"), "true or false is required")),
    };
    let Some(value) = fields.get("value") else {
        return Err(ConditionError::new(under(at, "value"), "This field is required."));
    };
    let here = under(at, "value");
    let pattern = match (op, value) {
        (ConditionOp::In, value) if !value.is_array() => {
            return Err(ConditionError::new(here, "`in` takes a list of values"));
        }
        (ConditionOp::Gt | ConditionOp::Gte | ConditionOp::Lt | ConditionOp::Lte, value)
            if !value.is_number() && !value.is_string() =>
        {
            return Err(ConditionError::new(here, format!("`{}` compares with a number or a string", op.as_str())));
        }
        (ConditionOp::Regex, Value::String(pattern)) => {
            if pattern.len() > MAX_REGEX_LEN {
                return Err(ConditionError::new(here, format!("a pattern is at most {MAX_REGEX_LEN} bytes")));
            }
            let compiled = Pattern::new(pattern, REGEX_SIZE_LIMIT)
                .map_err(|error| ConditionError::new(&here, format!("the pattern does not compile: {error}")))?;
            Some(compiled)
        }
        (ConditionOp::Regex, _) => return Err(ConditionError::new(here, "`regex` takes a pattern (a string)")),
        _ => None,
    };
    let field = if root == Root::Differences { 1 } else { 0 };
    let field = LeafField::new(path.get(field).map_or("", String::as_str), field + 1, path[0] == "added");
    Ok(Condition::Leaf(ConditionLeaf { root, path, op, value: value.clone(), negate, pattern, field }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn condition(json: Value) -> Condition {
        Condition::from_json(&json).unwrap()
    }

    fn refused(json: Value) -> String {
        Condition::from_json(&json).unwrap_err().to_string()
    }

    fn holds(condition_json: Value, before: Option<Value>, after: Option<Value>) -> bool {
        condition(condition_json).holds(&ConditionInput::new(before.as_ref(), after.as_ref()))
    }

    #[test]
    fn every_operator_compares_as_netbox_does() {
        let after =
            json!({"status": "active", "vlan": 10, "tags": [{"name": "core"}, {"name": "edge"}], "name": "sw-01"});
        let cases = [
            (json!({"attr": "postchange.status", "value": "active"}), true),
            (json!({"attr": "postchange.vlan", "value": 10.0}), true),
            (json!({"attr": "postchange.vlan", "op": "gt", "value": 9}), true),
            (json!({"attr": "postchange.vlan", "op": "gte", "value": 10}), true),
            (json!({"attr": "postchange.vlan", "op": "lt", "value": 10}), false),
            (json!({"attr": "postchange.vlan", "op": "lte", "value": 10}), true),
            (json!({"attr": "postchange.name", "op": "gt", "value": "sw-00"}), true),
            (json!({"attr": "postchange.vlan", "op": "gt", "value": "9"}), false),
            (json!({"attr": "postchange.status", "op": "in", "value": ["active", "planned"]}), true),
            (json!({"attr": "postchange.name", "op": "contains", "value": "-0"}), true),
            (json!({"attr": "postchange.tags.name", "op": "contains", "value": "edge"}), true),
            (json!({"attr": "postchange.tags.1.name", "value": "edge"}), true),
            (json!({"attr": "postchange.tags.7.name", "value": null}), true),
            (json!({"attr": "postchange.name", "op": "regex", "value": "sw-\\d+"}), true),
            (json!({"attr": "postchange.name", "op": "regex", "value": "\\d+"}), false),
            (json!({"attr": "postchange.missing", "value": null}), true),
            (json!({"attr": "postchange.status", "value": "active", "negate": true}), false),
        ];
        for (json, expected) in &cases {
            assert_eq!(holds(json.clone(), None, Some(after.clone())), *expected, "{json}");
        }
    }

    #[test]
    fn more_fields_than_are_kept_are_still_read_right() {
        let pre: Map<String, Value> = (0..100).map(|n| (format!("f{n}"), json!(n))).collect();
        let post: Map<String, Value> = (0..100).map(|n| (format!("f{n}"), json!(n % 2))).collect();
        let (pre, post) = (Value::Object(pre), Value::Object(post));
        let input = ConditionInput::new(Some(&pre), Some(&post));
        for _ in 0..2 {
            for n in 0..100 {
                let name = format!("f{n}");
                let field = LeafField::new(&name, 1, false);
                assert_eq!([0, 1].map(|side| input.member(&field, side)), [pre.get(&name), post.get(&name)], "{name}");
                assert_eq!(input.changed_any(std::slice::from_ref(&name)), n != n % 2, "{name}");
            }
            let absent = LeafField::new("absent", 1, false);
            assert_eq!([0, 1].map(|side| input.member(&absent, side)), [None, None]);
        }
    }

    #[test]
    fn and_or_and_differences() {
        let before = json!({"status": "planned", "serial": "A"});
        let after = json!({"status": "active", "serial": "A"});
        let both = json!({"and": [
            {"attr": "prechange.status", "value": "planned"},
            {"or": [{"attr": "differences.added.status", "value": "active"}, {"attr": "postchange.serial", "value": "Z"}]}
        ]});
        assert!(holds(both.clone(), Some(before.clone()), Some(after.clone())));
        assert!(!holds(both, Some(after.clone()), Some(before.clone())));
        assert!(holds(json!({"and": []}), None, None), "an empty `and` holds");
        assert!(!holds(json!({"or": []}), None, None), "an empty `or` does not");
        let input = ConditionInput::new(Some(&before), Some(&after));
        assert!(input.changed_any(&["status".into()]));
        assert!(!input.changed_any(&["serial".into(), "name".into()]));
        let create = ConditionInput::new(None, Some(&after));
        assert!(!condition(json!({"attr": "prechange.status", "value": "planned"})).holds(&create));
    }

    #[test]
    fn bad_conditions_are_refused_where_they_are_wrong() {
        assert_eq!(
            refused(json!("x")),
            "conditions: a condition is an object: {\"attr\", \"value\", \"op\", \"negate\"}, {\"and\": [...]} or {\"or\": [...]}"
        );
        assert_eq!(
            refused(json!({"attr": "postchange.x", "value": 1, "op": "like"})),
            "op: unknown operator `like`: use one of eq, gt, gte, lt, lte, in, contains, regex"
        );
        assert_eq!(refused(json!({"and": [{"attr": "postchange.x"}]})), "and[0].value: This field is required.");
        assert_eq!(refused(json!({"or": [{"value": 1}]})), "or[0].attr: This field is required.");
        assert_eq!(
            refused(json!({"attr": "postchange.", "value": 1})),
            "attr: `postchange.` needs a field after `postchange.`, and no empty part"
        );
        assert_eq!(
            refused(json!({"attr": "differences.status", "value": 1})),
            "attr: `differences.status`: the differences are `differences.added.…` and `differences.removed.…`"
        );
        assert_eq!(
            refused(json!({"attr": "postchange.x", "value": "a", "op": "in"})),
            "value: `in` takes a list of values"
        );
        assert_eq!(
            refused(json!({"attr": "postchange.x", "value": [1], "op": "gt"})),
            "value: `gt` compares with a number or a string"
        );
        assert!(
            refused(json!({"attr": "postchange.x", "value": "(", "op": "regex"}))
                .starts_with("value: the pattern does not compile")
        );
        assert_eq!(
            refused(json!({"attr": "postchange.x", "value": 1, "negate": "yes"})),
            "negate: true or false is required"
        );
        assert_eq!(
            refused(json!({"attr": "postchange.x", "value": 1, "extra": 1})),
            "extra: unknown key: a condition has attr, value, op and negate, or is {\"and\": [...]} or {\"or\": [...]}"
        );
        assert_eq!(refused(json!({"and": [], "or": []})), "and: `and` stands alone in its object");
        let mut deep = json!({"attr": "postchange.x", "value": 1});
        for _ in 0..=MAX_CONDITION_DEPTH {
            deep = json!({"and": [deep]});
        }
        assert!(refused(deep).ends_with(&format!("conditions nest at most {MAX_CONDITION_DEPTH} deep")));
        let many: Vec<Value> =
            (0..=MAX_CONDITION_LEAVES).map(|_| json!({"attr": "postchange.x", "value": 1})).collect();
        assert_eq!(
            refused(json!({"or": many})),
            format!(
                "conditions: {} tests; a hook's condition may hold at most {MAX_CONDITION_LEAVES}",
                MAX_CONDITION_LEAVES + 1
            )
        );
        let long = "a".repeat(MAX_REGEX_LEN + 1);
        assert_eq!(
            refused(json!({"attr": "postchange.x", "value": long, "op": "regex"})),
            format!("value: a pattern is at most {MAX_REGEX_LEN} bytes")
        );
    }

    #[test]
    fn a_pathological_pattern_runs_in_linear_time() {
        // Exponential for a backtracking engine; linear here.
        let evil = condition(json!({"attr": "postchange.x", "op": "regex", "value": "(a+)+$"}));
        let text = json!({"x": format!("{}!", "a".repeat(10_000))});
        assert!(!evil.holds(&ConditionInput::new(None, Some(&text))));
    }

    fn leaf() -> impl Strategy<Value = Value> {
        let roots =
            prop_oneof![Just("prechange"), Just("postchange"), Just("differences.added"), Just("differences.removed")];
        let values = prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,5}".prop_map(Value::from),
            Just(Value::Null),
            prop::collection::vec("[a-z]{0,3}".prop_map(Value::from), 0..3).prop_map(Value::from),
        ];
        (roots, "[a-z]{1,5}(\\.[a-z0-9]{1,3}){0,2}", 0..8usize, values, any::<bool>()).prop_map(
            |(root, path, op, value, negate)| {
                let op = ConditionOp::ALL[op];
                let value = match op {
                    ConditionOp::In if !value.is_array() => Value::Array(vec![value]),
                    ConditionOp::Gt | ConditionOp::Gte | ConditionOp::Lt | ConditionOp::Lte
                        if !value.is_number() && !value.is_string() =>
                    {
                        Value::from(1)
                    }
                    ConditionOp::Regex => Value::from("[a-z]*"),
                    _ => value,
                };
                json!({"attr": format!("{root}.{path}"), "op": op.as_str(), "value": value, "negate": negate})
            },
        )
    }

    fn tree() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|all| json!({"and": all})),
                prop::collection::vec(inner, 0..4).prop_map(|any| json!({"or": any})),
            ]
        })
    }

    fn data() -> impl Strategy<Value = Option<Value>> {
        let scalar =
            prop_oneof![any::<i64>().prop_map(Value::from), "[a-z]{0,4}".prop_map(Value::from), Just(Value::Null)];
        prop::option::of(prop::collection::btree_map("[a-z]{1,3}", scalar, 0..5).prop_map(|fields| json!(fields)))
    }

    fn arb_snapshot() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![Just(Value::Null), (0..3i64).prop_map(Value::from), "[xy]{0,2}".prop_map(Value::from)];
        let member = prop_oneof![leaf.clone(), prop::collection::btree_map("[ab]", leaf, 0..2).prop_map(|m| json!(m))];
        prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c", "last_updated"]), member, 0..4)
            .prop_map(|members| json!(members))
    }

    /// The leaf reading `attr`.
    fn leaf_at(attr: &str) -> ConditionLeaf {
        match condition(json!({"attr": attr, "value": null})) {
            Condition::Leaf(leaf) => leaf,
            other => panic!("not a leaf: {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn differences_read_key_by_key_equal_the_built_ones(
            pre in proptest::option::of(arb_snapshot()),
            post in proptest::option::of(arb_snapshot()),
            side in prop::sample::select(vec!["added", "removed"]),
            key in prop::sample::select(vec!["a", "b", "c", "last_updated"]),
            inner in proptest::option::of(prop::sample::select(vec!["a", "b"])),
        ) {
            let input = ConditionInput::new(pre.as_ref(), post.as_ref());
            let mut path = vec![side.to_owned(), key.to_owned()];
            path.extend(inner.map(str::to_owned));
            let built = resolve(input.differences(), &path).into_owned();
            let leaf = leaf_at(&format!("differences.{}", path.join(".")));
            let followed = |(value, below): (&Value, &[String])| resolve(value, below).into_owned();
            prop_assert_eq!(followed(input.difference(&leaf.field, &leaf.path)), built);
            let whole_side = leaf_at(&format!("differences.{side}"));
            prop_assert_eq!(
                followed(input.difference(&whole_side.field, &whole_side.path)),
                input.differences()[side].clone()
            );
            // The snapshots read through the kept fields, cold and warm, as read directly.
            let field_path = path[1..].to_vec();
            let leaf = leaf_at(&format!("postchange.{}", field_path.join(".")));
            for _ in 0..2 {
                for (side, snapshot) in [(0, pre.as_ref()), (1, post.as_ref())] {
                    let direct = snapshot.map_or(Value::Null, |data| resolve(data, &field_path).into_owned());
                    let kept = followed(input.snapshot(snapshot, side, &leaf.field, &leaf.path));
                    prop_assert_eq!(kept, direct);
                }
            }
            let fields = [key.to_owned()];
            let differences = input.differences();
            let in_built = ["added", "removed"]
                .iter()
                .any(|side| differences[*side].as_object().is_some_and(|keys| keys.contains_key(key)));
            prop_assert_eq!(input.changed_any(&fields), in_built);
        }

        #[test]
        fn conditions_read_back_from_what_they_write(json in tree()) {
            let condition = Condition::from_json(&json).unwrap();
            let written = condition.to_json();
            prop_assert_eq!(Condition::from_json(&written).unwrap(), condition.clone());
            let through_serde: Condition = serde_json::from_str(&serde_json::to_string(&condition).unwrap()).unwrap();
            prop_assert_eq!(through_serde, condition);
        }

        #[test]
        fn and_is_all_or_is_any_and_negate_inverts(json in tree(), before in data(), after in data()) {
            let condition = Condition::from_json(&json).unwrap();
            let input = ConditionInput::new(before.as_ref(), after.as_ref());
            let parts = |key: &str| json[key].as_array().map(|members| {
                members.iter().map(|member| Condition::from_json(member).unwrap().holds(&input)).collect::<Vec<_>>()
            });
            if let Some(all) = parts("and") {
                prop_assert_eq!(condition.holds(&input), all.iter().all(|holds| *holds));
            } else if let Some(any) = parts("or") {
                prop_assert_eq!(condition.holds(&input), any.iter().any(|holds| *holds));
            } else {
                let mut flipped = json.clone();
                flipped["negate"] = Value::Bool(!json["negate"].as_bool().unwrap_or(false));
                let flipped = Condition::from_json(&flipped).unwrap();
                prop_assert_ne!(condition.holds(&input), flipped.holds(&input));
            }
        }

        #[test]
        fn any_json_is_a_condition_or_a_clear_error(json in any::<String>().prop_map(|text| serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))) {
            if let Err(error) = Condition::from_json(&json) {
                prop_assert!(!error.reason.is_empty());
            }
        }
    }
}
