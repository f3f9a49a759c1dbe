//! Which jobs, job hooks, job buttons and changes to list: the filters of Nautobot's REST API on
//! `/api/extras/jobs/`, `/job-hooks/`, `/job-buttons/` and `/object-changes/`, as typed data a
//! store evaluates ([`Catalog::find_jobs`](crate::ports::Catalog::find_jobs) and its siblings,
//! [`ChangeStore::find_changes`](crate::ports::ChangeStore::find_changes)).
//!
//! Each filter is a conjunction of fields. A list field admits a record when it is empty or when
//! any of its values matches (Nautobot's `?name=a&name=b`); an `Option<bool>` field admits every
//! record when `None`. `search` is Nautobot's `q`: each value must occur, in any case, in the
//! record's name (or, for jobs, its class path; for buttons, its text).
//!
//! ```
//! use jobhooks_model::{ContentType, HookFilter, JobHook};
//!
//! let hook = JobHook::new("audit devices", vec![ContentType::new("dcim.device").unwrap()], "app::Audit");
//! let mut filter = HookFilter::default();
//! filter.search = vec!["AUDIT".into()];
//! filter.content_types = vec![ContentType::new("dcim.device").unwrap()];
//! assert!(filter.admits(&hook));
//! filter.enabled = Some(false);
//! assert!(!filter.admits(&hook));
//! ```

use uuid::Uuid;

use crate::{
    Action, ChangeContextKind, ChangeId, ContentType, JobButton, JobHook, JobKind, JobRecord, ObjectChange, ObjectRef,
};

/// Whether `value` passes a list field: the field is empty, or one of its values matches.
fn any_of<T>(wanted: &[T], matches: impl Fn(&T) -> bool) -> bool {
    wanted.is_empty() || wanted.iter().any(matches)
}

/// Whether `value` passes a flag field.
fn flag(wanted: Option<bool>, value: bool) -> bool {
    wanted.is_none_or(|wanted| wanted == value)
}

/// Whether every search term occurs, in any case, in one of `texts`.
fn found(search: &[String], texts: &[&str]) -> bool {
    search.iter().all(|term| {
        let term = term.to_lowercase();
        texts.iter().any(|text| text.to_lowercase().contains(&term))
    })
}

/// Which job records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobFilter {
    /// Only these ids.
    pub ids: Vec<Uuid>,
    /// Only these names.
    pub names: Vec<String>,
    /// In the name or the class path, in any case (Nautobot's `q`).
    pub search: Vec<String>,
    /// Only these class paths.
    pub class_paths: Vec<String>,
    /// Only these module names ([`JobRecord::module_name`]).
    pub module_names: Vec<String>,
    /// Only these groupings (a job's grouping is its module name).
    pub groupings: Vec<String>,
    /// Only these class names ([`JobRecord::job_class_name`]).
    pub job_class_names: Vec<String>,
    /// Only installed, or only uninstalled, jobs.
    pub installed: Option<bool>,
    /// Only enabled, or only disabled, jobs.
    pub enabled: Option<bool>,
    /// Only hidden, or only shown, jobs.
    pub hidden: Option<bool>,
    /// Only job hook receivers, or only other jobs.
    pub is_job_hook_receiver: Option<bool>,
    /// Only job button receivers, or only other jobs.
    pub is_job_button_receiver: Option<bool>,
}

impl JobFilter {
    /// Whether `job` passes the filter.
    pub fn admits(&self, job: &JobRecord) -> bool {
        any_of(&self.ids, |id| *id == job.id)
            && any_of(&self.names, |name| *name == job.name)
            && found(&self.search, &[&job.name, &job.class_path])
            && any_of(&self.class_paths, |class_path| *class_path == job.class_path)
            && any_of(&self.module_names, |module| module == job.module_name())
            && any_of(&self.groupings, |grouping| grouping == job.module_name())
            && any_of(&self.job_class_names, |name| name == job.job_class_name())
            && flag(self.installed, job.installed)
            && flag(self.enabled, job.enabled)
            && flag(self.hidden, job.hidden)
            && flag(self.is_job_hook_receiver, job.kind == JobKind::JobHookReceiver)
            && flag(self.is_job_button_receiver, job.kind == JobKind::JobButtonReceiver)
    }
}

/// Which job hooks to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookFilter {
    /// Only these ids.
    pub ids: Vec<Uuid>,
    /// Only these names.
    pub names: Vec<String>,
    /// In the name, in any case (Nautobot's `q`).
    pub search: Vec<String>,
    /// Only hooks of one of these content types.
    pub content_types: Vec<ContentType>,
    /// Only hooks of these jobs (class paths).
    pub jobs: Vec<String>,
    /// Only enabled, or only disabled, hooks.
    pub enabled: Option<bool>,
    /// Only hooks that do, or do not, run on creates.
    pub type_create: Option<bool>,
    /// Only hooks that do, or do not, run on updates.
    pub type_update: Option<bool>,
    /// Only hooks that do, or do not, run on deletes.
    pub type_delete: Option<bool>,
}

impl HookFilter {
    /// The hook with this id, if any.
    pub fn id(id: Uuid) -> Self {
        Self { ids: vec![id], ..Self::default() }
    }

    /// Whether `hook` passes the filter.
    pub fn admits(&self, hook: &JobHook) -> bool {
        any_of(&self.ids, |id| *id == hook.id)
            && any_of(&self.names, |name| *name == hook.name)
            && found(&self.search, &[&hook.name])
            && any_of(&self.content_types, |wanted| hook.content_types.contains(wanted))
            && any_of(&self.jobs, |job| *job == hook.job)
            && flag(self.enabled, hook.enabled)
            && flag(self.type_create, hook.type_create)
            && flag(self.type_update, hook.type_update)
            && flag(self.type_delete, hook.type_delete)
    }
}

/// Which job buttons to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ButtonFilter {
    /// Only these ids.
    pub ids: Vec<Uuid>,
    /// Only these names.
    pub names: Vec<String>,
    /// In the name or the text, in any case (Nautobot's `q`).
    pub search: Vec<String>,
    /// Only buttons of one of these content types.
    pub content_types: Vec<ContentType>,
    /// Only buttons with one of these texts.
    pub texts: Vec<String>,
    /// Only buttons of these jobs (class paths).
    pub jobs: Vec<String>,
    /// Only buttons of these weights.
    pub weights: Vec<i32>,
    /// Only buttons of these groups; `""` is no group.
    pub group_names: Vec<String>,
    /// Only buttons of these classes (`default`, `primary`, …).
    pub button_classes: Vec<String>,
    /// Only enabled, or only disabled, buttons.
    pub enabled: Option<bool>,
    /// Only buttons that do, or do not, ask for confirmation.
    pub confirmation: Option<bool>,
}

impl ButtonFilter {
    /// The button with this id, if any.
    pub fn id(id: Uuid) -> Self {
        Self { ids: vec![id], ..Self::default() }
    }

    /// Whether `button` passes the filter.
    pub fn admits(&self, button: &JobButton) -> bool {
        let group = button.group_name.as_deref().unwrap_or("");
        any_of(&self.ids, |id| *id == button.id)
            && any_of(&self.names, |name| *name == button.name)
            && found(&self.search, &[&button.name, &button.text])
            && any_of(&self.content_types, |wanted| button.content_types.contains(wanted))
            && any_of(&self.texts, |text| *text == button.text)
            && any_of(&self.jobs, |job| *job == button.job)
            && any_of(&self.weights, |weight| *weight == button.weight)
            && any_of(&self.group_names, |wanted| wanted == group)
            && any_of(&self.button_classes, |class| class == button.button_class.as_str())
            && flag(self.enabled, button.enabled)
            && flag(self.confirmation, button.confirmation)
    }
}

/// Which changes to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeFilter {
    /// Only these changes.
    pub ids: Vec<ChangeId>,
    /// In the object's text (`object_repr`), in any case (Nautobot's `q`).
    pub search: Vec<String>,
    /// Only changes made by these users (usernames).
    pub users: Vec<String>,
    /// Only changes recorded under these user names (what the change log keeps of its user).
    pub user_names: Vec<String>,
    /// Only changes of these change contexts (requests).
    pub request_ids: Vec<uuid::Uuid>,
    /// Only these actions.
    pub actions: Vec<Action>,
    /// Only changes of objects of these types.
    pub content_types: Vec<ContentType>,
    /// Only changes of objects with these ids.
    pub object_ids: Vec<String>,
    /// Only changes made in these kinds of context (web, job, …).
    pub change_contexts: Vec<ChangeContextKind>,
    /// Only changes with these context details.
    pub change_context_details: Vec<String>,
    /// Only changes of objects shown as these texts.
    pub object_reprs: Vec<String>,
}

/// The fields of a change a [`ChangeFilter`] reads, borrowed: a store can check a change against
/// a filter from the part of its record that holds them, without reading the rest.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ChangeFields<'a> {
    /// The change's id.
    pub id: ChangeId,
    /// Its user's name, if a user made it.
    pub user: Option<&'a str>,
    /// The user name it was recorded under.
    pub user_name: &'a str,
    /// Its change context.
    pub request_id: uuid::Uuid,
    /// Its action.
    pub action: Action,
    /// Its object's type.
    pub content_type: &'a str,
    /// Its object's id.
    pub object_id: &'a str,
    /// The kind of context it was made in.
    pub change_context: ChangeContextKind,
    /// The context's detail.
    pub change_context_detail: &'a str,
    /// Its object's text.
    pub object_repr: &'a str,
}

impl<'a> ChangeFields<'a> {
    /// The fields of the change `id`, with its action and request; the others empty, for a store
    /// to set from what it read.
    pub fn of_parts(id: ChangeId, action: Action, request_id: uuid::Uuid) -> Self {
        Self {
            id,
            user: None,
            user_name: "",
            request_id,
            action,
            content_type: "",
            object_id: "",
            change_context: ChangeContextKind::Unknown,
            change_context_detail: "",
            object_repr: "",
        }
    }

    /// The fields of `change`.
    pub fn of(change: &'a ObjectChange) -> Self {
        Self {
            id: change.id,
            user: change.user.as_deref(),
            user_name: &change.user_name,
            request_id: change.request_id,
            action: change.action,
            content_type: change.changed_object_type.as_str(),
            object_id: &change.changed_object_id,
            change_context: change.change_context,
            change_context_detail: &change.change_context_detail,
            object_repr: &change.object_repr,
        }
    }
}

impl ChangeFilter {
    /// Whether the filter names nothing, or nothing but one object (one type and one id that make
    /// an object reference): the changes the log, or an object's index, lists whole.
    pub fn only_object(&self) -> bool {
        let Self {
            ids,
            search,
            users,
            user_names,
            request_ids,
            actions,
            content_types,
            object_ids,
            change_contexts,
            change_context_details,
            object_reprs,
        } = self;
        let others = [ids.is_empty(), search.is_empty(), users.is_empty(), user_names.is_empty()]
            .into_iter()
            .chain([request_ids.is_empty(), actions.is_empty(), change_contexts.is_empty()])
            .chain([change_context_details.is_empty(), object_reprs.is_empty()]);
        let whole_log_or_one_object = (content_types.is_empty() && object_ids.is_empty()) || self.object().is_some();
        others.into_iter().all(|empty| empty) && whole_log_or_one_object
    }

    /// The one object the filter narrows to, when it names exactly one type and one id: the
    /// changes to read through that object's index.
    pub fn object(&self) -> Option<ObjectRef> {
        match (self.content_types.as_slice(), self.object_ids.as_slice()) {
            ([content_type], [id]) => ObjectRef::new(content_type.clone(), id.as_str()).ok(),
            _ => None,
        }
    }

    /// Whether `change` passes the filter.
    pub fn admits(&self, change: &ObjectChange) -> bool {
        self.admits_fields(&ChangeFields::of(change))
    }

    /// Whether a change with `fields` passes the filter.
    pub fn admits_fields(&self, fields: &ChangeFields<'_>) -> bool {
        any_of(&self.ids, |id| *id == fields.id)
            && found(&self.search, &[fields.object_repr])
            && any_of(&self.users, |user| Some(user.as_str()) == fields.user)
            && any_of(&self.user_names, |name| name == fields.user_name)
            && any_of(&self.request_ids, |request| *request == fields.request_id)
            && any_of(&self.actions, |action| *action == fields.action)
            && any_of(&self.content_types, |content_type| content_type.as_str() == fields.content_type)
            && any_of(&self.object_ids, |id| id == fields.object_id)
            && any_of(&self.change_contexts, |context| *context == fields.change_context)
            && any_of(&self.change_context_details, |detail| detail == fields.change_context_detail)
            && any_of(&self.object_reprs, |repr| repr == fields.object_repr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> ContentType {
        ContentType::new("dcim.device").unwrap()
    }

    #[test]
    fn an_empty_filter_admits_everything_and_each_field_narrows() {
        let hook = JobHook::new("Audit", vec![device()], "app::Audit");
        assert!(HookFilter::default().admits(&hook));
        assert!(HookFilter::id(hook.id).admits(&hook));
        assert!(!HookFilter::id(Uuid::from_u128(1)).admits(&hook));
        let named =
            |names: &[&str]| HookFilter { names: names.iter().map(|n| n.to_string()).collect(), ..Default::default() };
        assert!(named(&["x", "Audit"]).admits(&hook), "any of a field's values");
        assert!(!named(&["audit"]).admits(&hook), "names match exactly");
        let searched = HookFilter { search: vec!["UDI".into()], ..Default::default() };
        assert!(searched.admits(&hook), "a search ignores case");
        let both = HookFilter { search: vec!["aud".into(), "zzz".into()], ..Default::default() };
        assert!(!both.admits(&hook), "every search term must occur");
        let rack = HookFilter { content_types: vec![ContentType::new("dcim.rack").unwrap()], ..Default::default() };
        assert!(!rack.admits(&hook));
        let updates = HookFilter { type_update: Some(true), ..Default::default() };
        assert_eq!(updates.admits(&hook), hook.type_update);
    }

    #[test]
    fn buttons_are_filtered_by_group_weight_and_class() {
        let button = JobButton::new("b", vec![device()], "Press me", "app::Press");
        let ungrouped = ButtonFilter { group_names: vec![String::new()], ..Default::default() };
        assert!(ungrouped.admits(&button), "an empty group name is no group");
        let weighed = ButtonFilter { weights: vec![button.weight], ..Default::default() };
        assert!(weighed.admits(&button));
        let heavier = ButtonFilter { weights: vec![button.weight + 1], ..Default::default() };
        assert!(!heavier.admits(&button));
        let by_text = ButtonFilter { search: vec!["press".into()], ..Default::default() };
        assert!(by_text.admits(&button), "a search looks in the text too");
        let classed = ButtonFilter { button_classes: vec![button.button_class.as_str().into()], ..Default::default() };
        assert!(classed.admits(&button));
    }

    #[test]
    fn jobs_are_filtered_by_the_parts_of_their_class_path() {
        let job = JobRecord::new("app::audit::Audit", "Audit", JobKind::JobHookReceiver);
        let module = JobFilter { module_names: vec!["app::audit".into()], ..Default::default() };
        assert!(module.admits(&job));
        let grouping = JobFilter { groupings: vec!["app::audit".into()], ..Default::default() };
        assert!(grouping.admits(&job));
        let class = JobFilter { job_class_names: vec!["Audit".into()], ..Default::default() };
        assert!(class.admits(&job));
        let buttons = JobFilter { is_job_button_receiver: Some(true), ..Default::default() };
        assert!(!buttons.admits(&job));
        let searched = JobFilter { search: vec!["APP::AUDIT".into()], ..Default::default() };
        assert!(searched.admits(&job), "a search looks in the class path");
    }
}
