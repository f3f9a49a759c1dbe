//! Which jobs, job hooks and job buttons to list: the filters of Nautobot's REST API on
//! `/api/extras/jobs/`, `/job-hooks/` and `/job-buttons/`, as typed data a store evaluates
//! ([`Catalog::find_jobs`](crate::ports::Catalog::find_jobs) and its siblings).
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

use crate::{ContentType, JobButton, JobHook, JobKind, JobRecord};

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
