//! Object changes: what one create, update or delete records, and how the changes of one change
//! context merge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ContentType, ModelError, Object, ObjectRef};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The object came into being.
    Create,
    /// The object's data changed.
    Update,
    /// The object went away.
    Delete,
}

impl Action {
    /// Every action, in the order create, update, delete.
    pub const ALL: [Action; 3] = [Action::Create, Action::Update, Action::Delete];

    /// `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    /// `created`, `updated` or `deleted`, as in a change's display.
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| ModelError::InvalidAction { value: s.into() })
    }
}

/// Where a change came from. Changes from `job-hook` never trigger job hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChangeContextKind {
    /// A web request.
    #[serde(rename = "web")]
    Web,
    /// A job run (including job button receivers).
    #[serde(rename = "job")]
    Job,
    /// A job hook receiver run.
    #[serde(rename = "job-hook")]
    JobHook,
    /// Application code outside any request or job.
    #[serde(rename = "orm")]
    Orm,
    /// Unknown origin.
    #[serde(rename = "unknown")]
    Unknown,
}

impl ChangeContextKind {
    /// Every kind.
    pub const ALL: [ChangeContextKind; 5] = [
        ChangeContextKind::Web,
        ChangeContextKind::Job,
        ChangeContextKind::JobHook,
        ChangeContextKind::Orm,
        ChangeContextKind::Unknown,
    ];

    /// The kind whose wire name ([`ChangeContextKind::as_str`]) is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The wire name: `web`, `job`, `job-hook`, `orm` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeContextKind::Web => "web",
            ChangeContextKind::Job => "job",
            ChangeContextKind::JobHook => "job-hook",
            ChangeContextKind::Orm => "orm",
            ChangeContextKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ChangeContextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is changing things, and in which request, job run or batch. Every change recorded in one
/// context shares its request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeContext {
    /// The user's name, if a user is known.
    pub user: Option<String>,
    /// One id per context.
    pub request_id: Uuid,
    /// Where the changes come from.
    pub kind: ChangeContextKind,
    /// More about the origin, e.g. the class path of the job making the changes.
    pub detail: String,
}

impl ChangeContext {
    /// A new context with a fresh request id.
    pub fn new(kind: ChangeContextKind, user: Option<String>, detail: impl Into<String>) -> Self {
        Self { user, request_id: Uuid::new_v4(), kind, detail: detail.into() }
    }

    /// A web request by `user`: what an application's views and the REST API record.
    ///
    /// ```
    /// use jobhooks_model::{ChangeContext, ChangeContextKind};
    /// let context = ChangeContext::web("alice");
    /// assert_eq!((context.kind, context.user.as_deref()), (ChangeContextKind::Web, Some("alice")));
    /// ```
    pub fn web(user: impl Into<String>) -> Self {
        Self::new(ChangeContextKind::Web, Some(user.into()), "")
    }

    /// A job run (a job button receiver's included) as `user`; `job` is the job's class path.
    pub fn job(user: impl Into<String>, job: impl Into<String>) -> Self {
        Self::new(ChangeContextKind::Job, Some(user.into()), job)
    }

    /// A job hook receiver's run as `user`; `job` is the job's class path. Changes recorded in
    /// this context trigger no hooks (no recursion).
    pub fn job_hook(user: impl Into<String>, job: impl Into<String>) -> Self {
        Self::new(ChangeContextKind::JobHook, Some(user.into()), job)
    }

    /// Application code outside any request or job (a migration, a script), with no user.
    pub fn orm() -> Self {
        Self::new(ChangeContextKind::Orm, None, "")
    }

    /// The same context, recorded as made by `user`.
    pub fn by(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
}

/// The id of a recorded change. Ids grow with commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ChangeId(pub u64);

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A change not yet committed: one entry of a [`ChangeSet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingChange {
    /// What happened.
    pub action: Action,
    /// To which object.
    pub object: ObjectRef,
    /// The object's text.
    pub repr: String,
    /// The object's data after the change; for a delete, its data just before.
    pub data: Map<String, Value>,
    /// The object's data before the change, when the writer knows it. Used as the prechange when
    /// the store holds no earlier change of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_data: Option<Map<String, Value>>,
    /// Another object this change concerns (e.g. the device of an interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_object: Option<ObjectRef>,
}

impl PendingChange {
    /// A change of `object` with its current data.
    pub fn new(action: Action, object: &Object) -> Self {
        Self {
            action,
            object: object.reference().clone(),
            repr: object.repr().to_owned(),
            data: object.data().clone(),
            pre_data: None,
            related_object: None,
        }
    }

    /// Sets the data the object had before the change.
    pub fn with_pre_data(mut self, pre_data: Map<String, Value>) -> Self {
        self.pre_data = Some(pre_data);
        self
    }

    /// The object as this change leaves it; `None` after a delete.
    pub fn resulting_object(&self) -> Option<Object> {
        (self.action != Action::Delete)
            .then(|| Object::from_fields(self.object.clone(), self.repr.clone(), self.data.clone()))
    }
}

/// The changes of one change context, merged as they are recorded.
///
/// Changes to the same object merge (the context has one user, so "same object" is the rule):
///
/// | recorded        | then     | gives                                   |
/// |-----------------|----------|-----------------------------------------|
/// | create          | update   | one `create` with the latest data       |
/// | update          | update   | one `update` with the latest data       |
/// | update          | delete   | one `delete`                            |
/// | delete          | create   | one `update` with the new data          |
/// | create          | delete   | `create` then `delete` (hooks fire for both) |
/// | create, delete  | create   | one `create` with the latest data       |
///
/// A merged record keeps the position of the object's first record and the pre-data of the first.
///
/// ```
/// use jobhooks_model::{Action, ChangeSet, ContentType, Object, ObjectRef, PendingChange, json};
/// let r = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap();
/// let mut set = ChangeSet::default();
/// set.record(PendingChange::new(Action::Create, &Object::new(r.clone(), "r1", json!({"serial": "A"})).unwrap()));
/// set.record(PendingChange::new(Action::Update, &Object::new(r, "r1", json!({"serial": "B"})).unwrap()));
/// assert_eq!(set.changes().len(), 1);
/// assert_eq!(set.changes()[0].action, Action::Create);
/// assert_eq!(set.changes()[0].data["serial"], "B");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeSet {
    changes: Vec<PendingChange>,
}

impl ChangeSet {
    /// Records one change, merging it with earlier changes of the same object. An update that
    /// leaves the object's data as it was (its pre-data equals its data) is no change, as in
    /// Nautobot 3.3: it is dropped, and records nothing and runs no hook when committed.
    pub fn record(&mut self, change: PendingChange) {
        let object = change.object.clone();
        self.merge(change);
        let unchanged = |change: &PendingChange| {
            change.object == object && change.action == Action::Update && change.pre_data.as_ref() == Some(&change.data)
        };
        if let Some(last) = self.changes.iter().rposition(|change| change.object == object)
            && unchanged(&self.changes[last])
        {
            self.changes.remove(last);
        }
    }

    /// Merges `change` with the earlier changes of its object.
    fn merge(&mut self, change: PendingChange) {
        let mut same_object = self.changes.iter().enumerate().rev().filter(|(_, c)| c.object == change.object);
        let Some((last, _)) = same_object.next() else {
            self.changes.push(change);
            return;
        };
        let before_last = same_object.next().map(|(i, _)| i);
        let latest = &self.changes[last];
        match (latest.action, change.action) {
            (Action::Delete, Action::Create | Action::Update) => {
                if let Some(created) = before_last.filter(|&i| self.changes[i].action == Action::Create) {
                    // The object was created and deleted within this context: it is simply created.
                    self.changes.remove(last);
                    self.absorb(created, change, Action::Create);
                } else {
                    let pre_data = latest.pre_data.clone().unwrap_or_else(|| latest.data.clone());
                    self.absorb(last, change, Action::Update);
                    self.changes[last].pre_data = Some(pre_data);
                }
            }
            (Action::Delete, Action::Delete) => self.absorb(last, change, Action::Delete),
            (Action::Create, Action::Delete) => self.changes.push(change),
            (Action::Create, _) => self.absorb(last, change, Action::Create),
            (Action::Update, action) => self.absorb(last, change, action.max(Action::Update)),
        }
    }

    /// Replaces the record at `index` with `change` as `action`, keeping the record's pre-data:
    /// the later change's pre-data is the state after the earlier change, not before the merge.
    fn absorb(&mut self, index: usize, change: PendingChange, action: Action) {
        let slot = &mut self.changes[index];
        let pre_data = slot.pre_data.take();
        *slot = PendingChange { action, pre_data, ..change };
    }

    /// Records that `object` was saved; `existing` is the object as stored before (none for a new
    /// object), which decides between create and update and supplies the pre-data.
    pub fn save(&mut self, object: &Object, existing: Option<&Object>) {
        let change = match existing {
            Some(before) => PendingChange::new(Action::Update, object).with_pre_data(before.data().clone()),
            None => PendingChange::new(Action::Create, object),
        };
        self.record(change);
    }

    /// Records that `existing` was deleted.
    pub fn delete(&mut self, existing: &Object) {
        self.record(PendingChange::new(Action::Delete, existing));
    }

    /// The merged changes, in order.
    pub fn changes(&self) -> &[PendingChange] {
        &self.changes
    }

    /// The merged changes, in order.
    pub fn into_changes(self) -> Vec<PendingChange> {
        self.changes
    }

    /// No change was recorded.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How `object` stands after these changes: `Some(Some(_))` written, `Some(None)` deleted,
    /// `None` untouched by this set.
    pub fn current(&self, object: &ObjectRef) -> Option<Option<Object>> {
        self.changes.iter().rev().find(|c| &c.object == object).map(PendingChange::resulting_object)
    }
}

/// Merges the ordered changes of one change context (see [`ChangeSet`] for the rules).
pub fn merge_changes(changes: impl IntoIterator<Item = PendingChange>) -> Vec<PendingChange> {
    let mut set = ChangeSet::default();
    changes.into_iter().for_each(|c| set.record(c));
    set.into_changes()
}

/// One recorded create, update or delete of an application object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectChange {
    /// Its id, growing with commit order.
    pub id: ChangeId,
    /// When it was committed.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The user who made it, if known.
    pub user: Option<String>,
    /// The user's name, or `Undefined` without a user.
    pub user_name: String,
    /// Shared by every change of one change context.
    pub request_id: Uuid,
    /// What happened.
    pub action: Action,
    /// The changed object's type.
    pub changed_object_type: ContentType,
    /// The changed object's id.
    pub changed_object_id: String,
    /// Another object the change concerns.
    pub related_object: Option<ObjectRef>,
    /// The changed object's text.
    pub object_repr: String,
    /// The object's data after the change; for a delete, its data just before the delete.
    pub object_data: Value,
    /// The object's data before the change: the data of the object's previous change (as Nautobot
    /// finds it; a store fills it in when it reads the change), else the pre-data the writer
    /// supplied. `None` when neither exists, e.g. after the previous change was pruned.
    pub prechange: Option<Value>,
    /// Where the change came from.
    pub change_context: ChangeContextKind,
    /// More about where it came from, e.g. a job's class path.
    pub change_context_detail: String,
}

impl ObjectChange {
    /// The user name shown when a change has no user.
    pub const UNDEFINED_USER: &'static str = "Undefined";

    /// Builds the record of `change` made in `context`, with the prechange the store found.
    pub fn from_pending(
        id: ChangeId,
        time: OffsetDateTime,
        context: &ChangeContext,
        change: PendingChange,
        prechange: Option<Value>,
    ) -> Self {
        Self {
            id,
            time,
            user_name: context.user.clone().unwrap_or_else(|| Self::UNDEFINED_USER.to_owned()),
            user: context.user.clone(),
            request_id: context.request_id,
            action: change.action,
            changed_object_type: change.object.content_type().clone(),
            changed_object_id: change.object.id().to_owned(),
            related_object: change.related_object,
            object_repr: change.repr,
            object_data: Value::Object(change.data),
            prechange: prechange.or(change.pre_data.map(Value::Object)),
            change_context: context.kind,
            change_context_detail: context.detail.clone(),
        }
    }

    /// The changed object's reference.
    pub fn object_ref(&self) -> ObjectRef {
        // The id was checked when the change was recorded (a `PendingChange` holds an `ObjectRef`).
        ObjectRef::recorded(self.changed_object_type.clone(), self.changed_object_id.clone())
    }

    /// The object as this change left it; `None` for a delete.
    pub fn resulting_object(&self) -> Option<Object> {
        if self.action == Action::Delete {
            return None;
        }
        Object::new(self.object_ref(), self.object_repr.clone(), self.object_data.clone()).ok()
    }

    /// The prechange as Nautobot defines it: none for a create; for a delete without an earlier
    /// record, the change's own data.
    pub fn prechange_data(&self) -> Option<&Value> {
        match self.action {
            Action::Create => None,
            Action::Update => self.prechange.as_ref(),
            Action::Delete => self.prechange.as_ref().or(Some(&self.object_data)),
        }
    }

    /// The postchange: none for a delete, else the object's data.
    pub fn postchange_data(&self) -> Option<&Value> {
        (self.action != Action::Delete).then_some(&self.object_data)
    }

    /// `{"prechange", "postchange", "differences": {"added", "removed"}}`, exactly as Nautobot's
    /// `ObjectChange.get_snapshots()` shapes them (see [`jobhooks_diff::snapshots`]).
    pub fn get_snapshots(&self) -> jobhooks_diff::Snapshots<'_> {
        jobhooks_diff::snapshots(self.prechange_data(), self.postchange_data())
    }

    /// The path-level diff from prechange to postchange (a missing side counts as `{}`).
    pub fn deep_differences(&self) -> Vec<jobhooks_diff::DeepChange<'_>> {
        static EMPTY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| Value::Object(Default::default()));
        let pre = self.prechange_data().unwrap_or(&EMPTY);
        let post = self.postchange_data().unwrap_or(&EMPTY);
        jobhooks_diff::deep_diff(pre, post)
    }
}

impl fmt::Display for ObjectChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} by {}",
            self.changed_object_type,
            self.object_repr,
            self.action.past_tense(),
            self.user_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(id: &str, data: Value) -> Object {
        Object::new(ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap(), format!("dev-{id}"), data)
            .unwrap()
    }

    /// Data whose one field `v` is `value`, so that merges can be followed by one value.
    fn v(value: Value) -> Map<String, Value> {
        Map::from_iter([("v".to_owned(), value)])
    }

    fn change(action: Action, id: &str, value: Value) -> PendingChange {
        PendingChange::new(action, &obj(id, Value::Object(v(value))))
    }

    fn actions(changes: &[PendingChange]) -> Vec<(Action, &str, &Value)> {
        changes.iter().map(|c| (c.action, c.object.id(), &c.data["v"])).collect()
    }

    #[test]
    fn create_then_update_is_one_create_with_latest_data() {
        let merged = merge_changes([change(Action::Create, "1", json!(1)), change(Action::Update, "1", json!(2))]);
        assert_eq!(actions(&merged), [(Action::Create, "1", &json!(2))]);
    }

    #[test]
    fn update_then_update_is_one_update_keeping_first_pre_data() {
        let merged = merge_changes([
            change(Action::Update, "1", json!(2)).with_pre_data(v(json!(1))),
            change(Action::Update, "1", json!(3)).with_pre_data(v(json!(2))),
        ]);
        assert_eq!(actions(&merged), [(Action::Update, "1", &json!(3))]);
        assert_eq!(merged[0].pre_data, Some(v(json!(1))));
    }

    #[test]
    fn update_then_delete_is_one_delete() {
        let merged = merge_changes([
            change(Action::Update, "1", json!(2)).with_pre_data(v(json!(1))),
            change(Action::Delete, "1", json!(2)),
        ]);
        assert_eq!(actions(&merged), [(Action::Delete, "1", &json!(2))]);
        assert_eq!(merged[0].pre_data, Some(v(json!(1))));
    }

    #[test]
    fn delete_then_create_is_one_update() {
        let merged = merge_changes([change(Action::Delete, "1", json!(1)), change(Action::Create, "1", json!(2))]);
        assert_eq!(actions(&merged), [(Action::Update, "1", &json!(2))]);
        assert_eq!(merged[0].pre_data, Some(v(json!(1))), "the deleted data is the pre-data");
    }

    #[test]
    fn a_save_that_changes_nothing_records_nothing() {
        let mut set = ChangeSet::default();
        set.save(&obj("1", json!({"v": 1})), Some(&obj("1", json!({"v": 1}))));
        assert!(set.is_empty(), "the same data again is no change");
        let merged = merge_changes([
            change(Action::Update, "1", json!(2)).with_pre_data(v(json!(1))),
            change(Action::Update, "1", json!(1)).with_pre_data(v(json!(2))),
        ]);
        assert!(merged.is_empty(), "a change and its undoing are no change");
        let merged = merge_changes([change(Action::Delete, "1", json!(1)), change(Action::Create, "1", json!(1))]);
        assert!(merged.is_empty(), "deleting and creating the same object again is no change");
        let unknown = merge_changes([change(Action::Update, "1", json!(1))]);
        assert_eq!(unknown.len(), 1, "an update whose pre-data is not known is kept");
        let merged = merge_changes([
            change(Action::Update, "1", json!(1)).with_pre_data(v(json!(1))),
            change(Action::Update, "1", json!(2)).with_pre_data(v(json!(1))),
        ]);
        assert_eq!(actions(&merged), [(Action::Update, "1", &json!(2))], "a later real change is recorded");
    }

    #[test]
    fn create_then_delete_is_two_records() {
        let merged = merge_changes([change(Action::Create, "1", json!(1)), change(Action::Delete, "1", json!(1))]);
        assert_eq!(actions(&merged), [(Action::Create, "1", &json!(1)), (Action::Delete, "1", &json!(1))]);
    }

    #[test]
    fn create_delete_create_is_one_create() {
        let merged = merge_changes([
            change(Action::Create, "1", json!(1)),
            change(Action::Update, "2", json!("x")),
            change(Action::Delete, "1", json!(1)),
            change(Action::Create, "1", json!(3)),
        ]);
        assert_eq!(actions(&merged), [(Action::Create, "1", &json!(3)), (Action::Update, "2", &json!("x"))]);
    }

    #[test]
    fn merged_record_keeps_first_position() {
        let merged = merge_changes([
            change(Action::Update, "1", json!(1)),
            change(Action::Update, "2", json!(1)),
            change(Action::Update, "1", json!(2)),
        ]);
        assert_eq!(actions(&merged), [(Action::Update, "1", &json!(2)), (Action::Update, "2", &json!(1))]);
    }

    #[test]
    fn current_reads_the_latest_state() {
        let mut set = ChangeSet::default();
        let o = obj("1", json!({"a": 1}));
        set.save(&o, None);
        assert_eq!(set.current(o.reference()), Some(Some(o.clone())));
        set.delete(&o);
        assert_eq!(set.current(o.reference()), Some(None));
        assert_eq!(set.current(obj("2", json!({})).reference()), None);
    }

    fn recorded(action: Action, data: Value, prechange: Option<Value>) -> ObjectChange {
        let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
        let change = PendingChange::new(action, &obj("1", data));
        ObjectChange::from_pending(ChangeId(7), OffsetDateTime::UNIX_EPOCH, &context, change, prechange)
    }

    #[test]
    fn display_reads_like_nautobot() {
        assert_eq!(recorded(Action::Update, json!({}), None).to_string(), "dcim.device dev-1 updated by alice");
        let mut anonymous = recorded(Action::Create, json!({}), None);
        anonymous.user_name = ObjectChange::UNDEFINED_USER.into();
        assert_eq!(anonymous.to_string(), "dcim.device dev-1 created by Undefined");
    }

    #[test]
    fn snapshots_follow_the_action() {
        let create = recorded(Action::Create, json!({"s": 1}), Some(json!({"s": 0})));
        assert_eq!(create.get_snapshots().prechange, None, "a create has no prechange");
        let update = recorded(Action::Update, json!({"s": 2}), Some(json!({"s": 1})));
        assert_eq!(update.get_snapshots().differences.added, Some(json!({"s": 2})));
        assert_eq!(update.get_snapshots().differences.removed, Some(json!({"s": 1})));
        let delete = recorded(Action::Delete, json!({"s": 2}), None);
        let snaps = delete.get_snapshots();
        assert_eq!(snaps.prechange.as_deref(), Some(&json!({"s": 2})), "a delete without history uses its own data");
        assert_eq!(snaps.postchange, None);
        assert_eq!(snaps.differences.removed, Some(json!({"s": 2})));
        assert_eq!(update.deep_differences().len(), 1);
    }

    #[test]
    fn enums_use_wire_names() {
        assert_eq!(serde_json::to_value(ChangeContextKind::JobHook).unwrap(), json!("job-hook"));
        assert_eq!(serde_json::to_value(Action::Delete).unwrap(), json!("delete"));
        assert_eq!("update".parse::<Action>().unwrap(), Action::Update);
        assert!("remove".parse::<Action>().unwrap_err().to_string().contains("create, update or delete"));
    }

    fn arb_change() -> impl Strategy<Value = PendingChange> {
        (prop::sample::select(Action::ALL.to_vec()), 0u8..3, 0u32..1000)
            .prop_map(|(action, id, data)| change(action, &id.to_string(), json!(data)))
    }

    proptest! {
        #[test]
        fn merged_changes_hold_one_record_per_object_except_create_then_delete(
            input in prop::collection::vec(arb_change(), 0..24)
        ) {
            let merged = merge_changes(input.clone());
            for id in ["0", "1", "2"] {
                let of_object: Vec<_> = merged.iter().filter(|c| c.object.id() == id).collect();
                match of_object.as_slice() {
                    [] | [_] => {}
                    [first, second] => {
                        prop_assert_eq!(first.action, Action::Create);
                        prop_assert_eq!(second.action, Action::Delete);
                    }
                    more => prop_assert!(false, "{} records for one object", more.len()),
                }
                // A merged create never carries pre-data from a later change.
                if let Some(created) = of_object.first().filter(|c| c.action == Action::Create) {
                    let first_in = input.iter().find(|c| c.object.id() == id).unwrap();
                    if first_in.action == Action::Create {
                        prop_assert_eq!(&created.pre_data, &first_in.pre_data);
                    }
                }
                // The last data recorded for an object always wins, unless the object ends as
                // it was: deleted, then saved again with the data it had, which is no change.
                let last_in = input.iter().rev().find(|c| c.object.id() == id);
                let last_out = merged.iter().rev().find(|c| c.object.id() == id);
                match (last_in, last_out) {
                    (Some(last), None) => {
                        let restored = input.iter().any(|c| {
                            c.object.id() == id
                                && c.action == Action::Delete
                                && (c.data == last.data || c.pre_data.as_ref() == Some(&last.data))
                        });
                        prop_assert!(last.action != Action::Delete && restored, "{:?} was dropped", last);
                    }
                    _ => {
                        prop_assert_eq!(last_in.map(|c| &c.data), last_out.map(|c| &c.data));
                        prop_assert_eq!(
                            last_in.map(|c| c.action == Action::Delete),
                            last_out.map(|c| c.action == Action::Delete)
                        );
                    }
                }
            }
        }

        #[test]
        fn merging_is_idempotent(input in prop::collection::vec(arb_change(), 0..24)) {
            let once = merge_changes(input);
            prop_assert_eq!(merge_changes(once.clone()), once);
        }
    }
}
