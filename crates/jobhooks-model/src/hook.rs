//! Job hooks: which changes run which job hook receiver, and their validation.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Action, ChangeContextKind, Condition, ConditionInput, ContentType, JobKind, JobRecord, ObjectChange,
    ValidationErrors, Webhook, validate_name,
};

pub(crate) const NOT_RUNNABLE: &str = "The selected Job is not installed and enabled";
const NO_EVENT: &str = "You must select at least one type: create, update, and/or delete.";
/// The most fields a hook's `changed_fields` may list.
pub const MAX_CHANGED_FIELDS: usize = 100;

fn yes() -> bool {
    true
}

/// A job hook: run `job` when an object of one of `content_types` is created, updated or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobHook {
    /// Its id: given when the hook is first stored (nil until then), kept through renames and by
    /// export and import.
    #[serde(default)]
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// The object types that trigger it (at least one).
    pub content_types: Vec<ContentType>,
    /// The class path of the job hook receiver it runs.
    pub job: String,
    /// An inactive hook runs nothing. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fires on create.
    #[serde(default)]
    pub type_create: bool,
    /// Fires on update.
    #[serde(default)]
    pub type_update: bool,
    /// Fires on delete.
    #[serde(default)]
    pub type_delete: bool,
    /// Only changes this condition admits run the hook (NetBox's event-rule conditions over the
    /// change's snapshots, see [`Condition`]); `None` admits every change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub conditions: Option<Condition>,
    /// For an update, the hook runs only when one of these fields (top-level names of the object's
    /// data) is in the change's differences; empty, every update runs it. Creates and deletes are
    /// not narrowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    /// For an outbound webhook, where and how it sends its request; its job is then the built-in
    /// [`WEBHOOK_JOB`](crate::WEBHOOK_JOB). `None` for a hook that runs a receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// When it was first stored (`None` for a hook stored before hooks kept times).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub created: Option<OffsetDateTime>,
    /// When it was last changed.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<OffsetDateTime>,
}

impl JobHook {
    /// An enabled hook that fires on no event yet: set at least one with [`JobHook::on`].
    pub fn new(name: impl Into<String>, content_types: Vec<ContentType>, job: impl Into<String>) -> Self {
        Self {
            id: Uuid::nil(),
            name: name.into(),
            content_types,
            job: job.into(),
            enabled: true,
            type_create: false,
            type_update: false,
            type_delete: false,
            conditions: None,
            changed_fields: Vec::new(),
            webhook: None,
            created: None,
            last_updated: None,
        }
    }

    /// An enabled outbound webhook that fires on no event yet: its job is the built-in
    /// [`WEBHOOK_JOB`](crate::WEBHOOK_JOB).
    ///
    /// ```
    /// use jobhooks_model::{Action, ContentType, JobHook, Webhook, WEBHOOK_JOB};
    /// let devices = vec![ContentType::new("dcim.device").unwrap()];
    /// let hook = JobHook::webhook("to cmdb", devices, Webhook::new("https://cmdb.example/in")).on([Action::Update]);
    /// assert_eq!(hook.job, WEBHOOK_JOB);
    /// ```
    pub fn webhook(name: impl Into<String>, content_types: Vec<ContentType>, webhook: Webhook) -> Self {
        Self { webhook: Some(webhook), ..Self::new(name, content_types, crate::WEBHOOK_JOB) }
    }

    /// Makes the hook run only for changes `condition` admits.
    pub fn when(mut self, condition: Condition) -> Self {
        self.conditions = Some(condition);
        self
    }

    /// Makes the hook run for an update only when one of `fields` changed.
    pub fn on_changes_of(mut self, fields: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.changed_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the change `input` describes, made with `action`, passes the hook's changed fields
    /// and conditions (not its content types, events or `enabled`).
    pub fn admits(&self, action: Action, input: &ConditionInput<'_>) -> bool {
        let fields_changed =
            action != Action::Update || self.changed_fields.is_empty() || input.changed_any(&self.changed_fields);
        fields_changed && self.conditions.as_ref().is_none_or(|condition| condition.holds(input))
    }

    /// The hook as a store writes it at `now`: a new random id if it has none, `created` if it has
    /// none, and `last_updated` now.
    pub fn stamped(mut self, now: OffsetDateTime) -> Self {
        crate::record_id::stamp(&mut self.id, &mut self.created, &mut self.last_updated, now, Uuid::new_v4);
        self
    }

    /// Makes the hook fire on `actions`.
    pub fn on(mut self, actions: impl IntoIterator<Item = Action>) -> Self {
        for action in actions {
            *self.flag_mut(action) = true;
        }
        self
    }

    /// Whether the hook fires on `action` (ignoring `enabled`).
    pub fn fires_on(&self, action: Action) -> bool {
        match action {
            Action::Create => self.type_create,
            Action::Update => self.type_update,
            Action::Delete => self.type_delete,
        }
    }

    fn flag_mut(&mut self, action: Action) -> &mut bool {
        match action {
            Action::Create => &mut self.type_create,
            Action::Update => &mut self.type_update,
            Action::Delete => &mut self.type_delete,
        }
    }

    /// The actions the hook fires on.
    pub fn events(&self) -> impl Iterator<Item = Action> + '_ {
        Action::ALL.into_iter().filter(|&a| self.fires_on(a))
    }
}

/// A partial update of a [`JobHook`]: fields left `None` keep their stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobHookPatch {
    /// New name.
    pub name: Option<String>,
    /// New content types.
    pub content_types: Option<Vec<ContentType>>,
    /// New job.
    pub job: Option<String>,
    /// New enabled flag.
    pub enabled: Option<bool>,
    /// New create flag.
    pub type_create: Option<bool>,
    /// New update flag.
    pub type_update: Option<bool>,
    /// New delete flag.
    pub type_delete: Option<bool>,
    /// New conditions: `Some(None)` (JSON `null`) removes them.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub conditions: Option<Option<Condition>>,
    /// New changed fields (an empty list: every update).
    pub changed_fields: Option<Vec<String>>,
    /// A new webhook: `Some(None)` (JSON `null`) makes the hook run its job instead. A secret
    /// given as [`SECRET_MASK`](crate::SECRET_MASK) keeps the stored one.
    #[serde(default, deserialize_with = "present")]
    pub webhook: Option<Option<Webhook>>,
}

/// A field that is present, even as `null`: `Some(None)`; an absent one stays `None` (`default`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A patch that replaces every field with `hook`'s (a PUT, or an edit form).
impl From<JobHook> for JobHookPatch {
    fn from(hook: JobHook) -> Self {
        Self {
            name: Some(hook.name),
            content_types: Some(hook.content_types),
            job: Some(hook.job),
            enabled: Some(hook.enabled),
            type_create: Some(hook.type_create),
            type_update: Some(hook.type_update),
            type_delete: Some(hook.type_delete),
            conditions: Some(hook.conditions),
            changed_fields: Some(hook.changed_fields),
            webhook: Some(hook.webhook),
        }
    }
}

impl JobHookPatch {
    /// The stored hook with this patch's values laid over it (the job included, unlike Nautobot).
    pub fn apply_to(self, stored: &JobHook) -> JobHook {
        JobHook {
            id: stored.id,
            name: self.name.unwrap_or_else(|| stored.name.clone()),
            content_types: self.content_types.unwrap_or_else(|| stored.content_types.clone()),
            job: self.job.unwrap_or_else(|| stored.job.clone()),
            enabled: self.enabled.unwrap_or(stored.enabled),
            type_create: self.type_create.unwrap_or(stored.type_create),
            type_update: self.type_update.unwrap_or(stored.type_update),
            type_delete: self.type_delete.unwrap_or(stored.type_delete),
            conditions: self.conditions.unwrap_or_else(|| stored.conditions.clone()),
            changed_fields: self.changed_fields.unwrap_or_else(|| stored.changed_fields.clone()),
            webhook: match self.webhook {
                Some(Some(mut webhook)) => {
                    // The mask stands for the stored secret; with none stored it stays, and is
                    // refused where a hook is created.
                    if webhook.secret == crate::SECRET_MASK
                        && let Some(stored) = &stored.webhook
                    {
                        webhook.secret = stored.secret.clone();
                    }
                    Some(webhook)
                }
                Some(None) => None,
                None => stored.webhook.clone(),
            },
            created: stored.created,
            last_updated: stored.last_updated,
        }
    }
}

/// The checks hooks and buttons share: name, content types, the job's existence and kind, and the
/// `enabled` rule.
pub(crate) fn check_common(
    errors: &mut ValidationErrors,
    name: &str,
    content_types: &[ContentType],
    job_path: &str,
    job: Option<&JobRecord>,
    expected_kind: JobKind,
    enabled: bool,
) {
    if let Err(e) = validate_name("name", name) {
        errors.add("name", e.to_string());
    }
    if content_types.is_empty() {
        errors.add("content_types", crate::ModelError::NoContentTypes.to_string());
    }
    match job {
        None => errors.add(
            "job",
            format!(
                "Job {job_path} does not exist: register it and start the dispatcher once, or check the class path"
            ),
        ),
        Some(job) if job.kind != expected_kind => {
            errors.add("job", format!("Job {job_path} is a {}, not a {expected_kind}", job.kind))
        }
        Some(job) if enabled && !job.is_runnable() => errors.add("enabled", NOT_RUNNABLE),
        Some(_) => {}
    }
}

/// Validates `hook` against the contract of job hooks, given the other stored hooks (excluding
/// the one being updated) and the record of its job (`None` if no such job exists).
///
/// Messages, keyed by field: `__all__` when no event is selected; `enabled` when the hook is
/// enabled but its job is not installed and enabled; `type_create`/`type_update`/`type_delete`, one
/// per content type, when another hook with the same job and content type shares that event; `name`
/// when another hook has the name; `job` when the job is unknown or not a job hook receiver.
///
/// ```
/// use jobhooks_model::{Action, ContentType, JobHook, JobKind, JobRecord, validate_hook};
/// let job = JobRecord { enabled: true, ..JobRecord::new("app::Audit", "Audit", JobKind::JobHookReceiver) };
/// let device = vec![ContentType::new("dcim.device").unwrap()];
/// let first = JobHook::new("first", device.clone(), "app::Audit").on([Action::Create]);
/// let second = JobHook::new("second", device, "app::Audit").on([Action::Create, Action::Delete]);
/// let errors = validate_hook(&second, [&first], Some(&job)).unwrap_err();
/// assert_eq!(
///     errors.field("type_create"),
///     ["A job hook already exists for create on dcim.device to job app::Audit"]
/// );
/// ```
pub fn validate_hook<'a>(
    hook: &JobHook,
    others: impl IntoIterator<Item = &'a JobHook>,
    job: Option<&JobRecord>,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    check_common(&mut errors, &hook.name, &hook.content_types, &hook.job, job, JobKind::JobHookReceiver, hook.enabled);
    if hook.events().next().is_none() {
        errors.add(ValidationErrors::NON_FIELD, NO_EVENT);
    }
    if hook.changed_fields.len() > MAX_CHANGED_FIELDS {
        errors.add("changed_fields", format!("At most {MAX_CHANGED_FIELDS} fields."));
    }
    for field in &hook.changed_fields {
        if field.is_empty() || field.chars().any(char::is_control) || field.len() > crate::MAX_NAME_LEN {
            errors
                .add("changed_fields", format!("`{field}` is not a field name: a top-level key of the object's data"));
        }
    }
    if !hook.changed_fields.is_empty() && !hook.type_update {
        errors.add("changed_fields", "Changed fields narrow updates: select the update type too.");
    }
    match &hook.webhook {
        Some(webhook) => {
            webhook.check(&mut errors);
            if hook.job != crate::WEBHOOK_JOB {
                errors.add("job", format!("A webhook's job is {}, the built-in job that sends it", crate::WEBHOOK_JOB));
            }
        }
        None if hook.job == crate::WEBHOOK_JOB => {
            errors.add("webhook", "This field is required: the webhook job sends the hook's webhook.");
        }
        None => {}
    }
    let others: Vec<&JobHook> = others.into_iter().collect();
    if others.iter().any(|other| other.name == hook.name) {
        errors.add("name", format!("A job hook named {} already exists", hook.name));
    }
    if !hook.id.is_nil() && others.iter().any(|other| other.id == hook.id) {
        errors.add("id", format!("A job hook with id {} already exists", hook.id));
    }
    for action in hook.events() {
        for content_type in &hook.content_types {
            // As Nautobot's rules: one hook per job, and one webhook per URL, for each event and type.
            let same_target = |other: &JobHook| match (&hook.webhook, &other.webhook) {
                (Some(webhook), Some(theirs)) => webhook.payload_url == theirs.payload_url,
                (None, None) => other.job == hook.job,
                _ => false,
            };
            let conflict =
                others.iter().any(|o| same_target(o) && o.fires_on(action) && o.content_types.contains(content_type));
            if conflict {
                let message = match &hook.webhook {
                    Some(webhook) => format!(
                        "A webhook already exists for {action} on {content_type} to URL {}",
                        webhook.payload_url
                    ),
                    None => format!("A job hook already exists for {action} on {content_type} to job {}", hook.job),
                };
                errors.add(format!("type_{action}"), message);
            }
        }
    }
    errors.into_result()
}

/// Which hooks a committed change runs, as Nautobot matches them: none for a change made in a
/// `job-hook` context; else the enabled hooks among `hooks` that list the change's content type,
/// fire on its action and admit it (their changed fields and conditions, [`JobHook::admits`]), in
/// the order given, except those whose job is not installed and enabled, which are returned apart
/// (to be logged with `JobHook {hook} is enabled, but the underlying Job {job} is not installed and
/// enabled`). The change's differences are computed once, and only if a hook reads them.
///
/// A store that matches many changes against the same hooks keeps them as a
/// [`HookMatcher`](crate::HookMatcher), which gives the same answer with less work per change (and
/// costs more to build than one change's matching).
pub fn match_hooks<'a>(
    context: ChangeContextKind,
    change: &ObjectChange,
    hooks: impl IntoIterator<Item = &'a JobHook>,
    job: impl Fn(&str) -> Option<&'a JobRecord>,
) -> HookMatches<'a> {
    let mut matches = HookMatches::default();
    if context == ChangeContextKind::JobHook {
        return matches;
    }
    let input = ConditionInput::of(change);
    for hook in hooks {
        let wanted = hook.enabled
            && hook.fires_on(change.action)
            && hook.content_types.contains(&change.changed_object_type)
            && hook.admits(change.action, &input);
        if wanted {
            matches.sort(hook, &job);
        }
    }
    matches
}

/// What [`match_hooks`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HookMatches<'a> {
    /// The hooks that each get one run.
    pub run: Vec<&'a JobHook>,
    /// Enabled matching hooks skipped because their job is not installed and enabled.
    pub skipped: Vec<&'a JobHook>,
}

impl<'a> HookMatches<'a> {
    /// Adds `hook`, which the change matched, to those that run if `job` says its job can run, else
    /// to those skipped.
    pub(crate) fn sort(&mut self, hook: &'a JobHook, job: impl Fn(&str) -> Option<&'a JobRecord>) {
        if job(&hook.job).is_some_and(JobRecord::is_runnable) {
            self.run.push(hook);
        } else {
            self.skipped.push(hook);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn job(kind: JobKind, installed: bool, enabled: bool) -> JobRecord {
        JobRecord { installed, enabled, ..JobRecord::new("app::Audit", "Audit", kind) }
    }

    fn cts(names: &[&str]) -> Vec<ContentType> {
        names.iter().map(|n| ContentType::new(*n).unwrap()).collect()
    }

    fn runnable() -> JobRecord {
        job(JobKind::JobHookReceiver, true, true)
    }

    #[test]
    fn a_valid_hook_passes() {
        let hook = JobHook::new("h", cts(&["dcim.device"]), "app::Audit").on([Action::Update]);
        assert_eq!(validate_hook(&hook, [], Some(&runnable())), Ok(()));
    }

    #[test]
    fn no_event_is_refused() {
        let hook = JobHook::new("h", cts(&["dcim.device"]), "app::Audit");
        let errors = validate_hook(&hook, [], Some(&runnable())).unwrap_err();
        assert_eq!(errors.field("__all__"), [NO_EVENT]);
    }

    #[test]
    fn enabled_needs_an_installed_enabled_job() {
        let hook = JobHook::new("h", cts(&["dcim.device"]), "app::Audit").on([Action::Create]);
        for record in [job(JobKind::JobHookReceiver, false, true), job(JobKind::JobHookReceiver, true, false)] {
            let errors = validate_hook(&hook, [], Some(&record)).unwrap_err();
            assert_eq!(errors.field("enabled"), [NOT_RUNNABLE]);
        }
        let disabled = JobHook { enabled: false, ..hook };
        assert_eq!(validate_hook(&disabled, [], Some(&job(JobKind::JobHookReceiver, false, false))), Ok(()));
    }

    #[test]
    fn job_must_exist_and_be_a_hook_receiver() {
        let hook = JobHook::new("h", cts(&["dcim.device"]), "app::Audit").on([Action::Create]);
        let errors = validate_hook(&hook, [], None).unwrap_err();
        assert!(errors.field("job")[0].starts_with("Job app::Audit does not exist"));
        let errors = validate_hook(&hook, [], Some(&job(JobKind::JobButtonReceiver, true, true))).unwrap_err();
        assert_eq!(errors.field("job"), ["Job app::Audit is a job button receiver, not a job hook receiver"]);
    }

    #[test]
    fn conflicts_give_one_error_per_event_and_content_type() {
        let existing = JobHook::new("old", cts(&["dcim.device", "dcim.location"]), "app::Audit")
            .on([Action::Create, Action::Update]);
        let new = JobHook::new("new", cts(&["dcim.device", "dcim.location", "dcim.rack"]), "app::Audit")
            .on([Action::Create, Action::Delete]);
        let errors = validate_hook(&new, [&existing], Some(&runnable())).unwrap_err();
        assert_eq!(
            errors.field("type_create"),
            [
                "A job hook already exists for create on dcim.device to job app::Audit",
                "A job hook already exists for create on dcim.location to job app::Audit",
            ]
        );
        assert!(errors.field("type_delete").is_empty());
        assert!(errors.field("type_update").is_empty());
        let other_job = JobHook { job: "app::Other".into(), ..existing };
        assert_eq!(validate_hook(&new, [&other_job], Some(&runnable())), Ok(()));
    }

    #[test]
    fn names_are_unique_and_bounded() {
        let hook = JobHook::new("h", cts(&["dcim.device"]), "app::Audit").on([Action::Create]);
        let twin = JobHook { content_types: cts(&["dcim.rack"]), ..hook.clone() };
        let errors = validate_hook(&hook, [&twin], Some(&runnable())).unwrap_err();
        assert_eq!(errors.field("name"), ["A job hook named h already exists"]);
        let long = JobHook { name: "x".repeat(101), ..hook.clone() };
        assert!(validate_hook(&long, [], Some(&runnable())).unwrap_err().field("name")[0].contains("at most 100"));
        let none = JobHook { content_types: vec![], ..hook };
        assert_eq!(
            validate_hook(&none, [], Some(&runnable())).unwrap_err().field("content_types"),
            ["at least one content type is required"]
        );
    }

    #[test]
    fn patch_fills_from_the_stored_hook_job_included() {
        let stored = JobHook::new("h", cts(&["dcim.device"]), "app::Audit").on([Action::Create]);
        let patched = JobHookPatch { type_update: Some(true), ..Default::default() }.apply_to(&stored);
        assert_eq!(patched.job, "app::Audit");
        assert!(patched.type_create && patched.type_update && !patched.type_delete);
        assert!(serde_json::from_str::<JobHookPatch>(r#"{"bogus": 1}"#).is_err());
    }

    fn update(before: serde_json::Value, after: serde_json::Value) -> ObjectChange {
        let reference = crate::ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap();
        let object = crate::Object::new(reference, "dev-1", after).unwrap();
        let pending = crate::PendingChange::new(Action::Update, &object)
            .with_pre_data(before.as_object().cloned().unwrap_or_default());
        let context = crate::ChangeContext::web("alice");
        ObjectChange::from_pending(crate::ChangeId(1), OffsetDateTime::UNIX_EPOCH, &context, pending, None)
    }

    #[test]
    fn conditions_and_changed_fields_narrow_what_a_hook_runs_for() {
        let job = runnable();
        let any = JobHook::new("any", cts(&["dcim.device"]), "app::Audit").on([Action::Update]);
        let active = any
            .clone()
            .when(Condition::from_json(&serde_json::json!({"attr": "postchange.status", "value": "active"})).unwrap());
        let serial = any.clone().on_changes_of(["serial"]);
        let named = |hook: JobHook, name: &str| JobHook { name: name.into(), ..hook };
        let hooks = [any, named(active, "active"), named(serial, "serial")];
        let names = |change: &ObjectChange| {
            let matched = match_hooks(ChangeContextKind::Web, change, &hooks, |_| Some(&job));
            matched.run.iter().map(|hook| hook.name.as_str()).collect::<Vec<_>>()
        };
        use serde_json::json;
        let activated = update(json!({"status": "planned", "serial": "A"}), json!({"status": "active", "serial": "A"}));
        assert_eq!(names(&activated), ["any", "active"]);
        let reserialed =
            update(json!({"status": "planned", "serial": "A"}), json!({"status": "planned", "serial": "B"}));
        assert_eq!(names(&reserialed), ["any", "serial"]);
    }

    #[test]
    fn changed_fields_are_names_and_need_updates() {
        let hook =
            JobHook::new("h", cts(&["dcim.device"]), "app::Audit").on([Action::Create]).on_changes_of(["", "ok"]);
        let errors = validate_hook(&hook, [], Some(&runnable())).unwrap_err();
        assert_eq!(
            errors.field("changed_fields"),
            [
                "`` is not a field name: a top-level key of the object's data",
                "Changed fields narrow updates: select the update type too."
            ]
        );
    }

    #[test]
    fn webhooks_are_one_per_url_event_and_type_and_name_their_job() {
        let webhook_job =
            JobRecord { enabled: true, ..JobRecord::new(crate::WEBHOOK_JOB, "Webhook", JobKind::JobHookReceiver) };
        let to = |url: &str| JobHook::webhook("w", cts(&["dcim.device"]), Webhook::new(url)).on([Action::Update]);
        let first = JobHook { name: "first".into(), ..to("https://a.example/") };
        assert_eq!(validate_hook(&to("https://b.example/"), [&first], Some(&webhook_job)), Ok(()));
        let errors = validate_hook(&to("https://a.example/"), [&first], Some(&webhook_job)).unwrap_err();
        assert_eq!(
            errors.field("type_update"),
            ["A webhook already exists for update on dcim.device to URL https://a.example/"]
        );
        let mut wrong_job = to("https://a.example/");
        wrong_job.job = "app::Audit".into();
        let errors = validate_hook(&wrong_job, [], Some(&runnable())).unwrap_err();
        assert!(errors.field("job")[0].starts_with("A webhook's job is jobhooks::webhooks::Webhook"), "{errors:?}");
        let no_webhook = JobHook { webhook: None, ..to("https://a.example/") };
        let errors = validate_hook(&no_webhook, [], Some(&webhook_job)).unwrap_err();
        assert_eq!(errors.field("webhook"), ["This field is required: the webhook job sends the hook's webhook."]);
    }

    #[test]
    fn a_patch_keeps_a_masked_secret_and_removes_a_webhook() {
        let stored = JobHook::webhook("w", cts(&["dcim.device"]), Webhook::new("https://a.example/").secret("s3cret"));
        let masked = JobHookPatch {
            webhook: Some(Some(Webhook::new("https://b.example/").secret(crate::SECRET_MASK))),
            ..Default::default()
        };
        let patched = masked.apply_to(&stored).webhook.unwrap();
        assert_eq!((patched.payload_url.as_str(), patched.secret.as_str()), ("https://b.example/", "s3cret"));
        let removed: JobHookPatch = serde_json::from_str(r#"{"webhook": null}"#).unwrap();
        assert_eq!(removed.apply_to(&stored).webhook, None);
    }

    #[test]
    fn a_patch_sets_or_removes_conditions() {
        let condition = Condition::from_json(&serde_json::json!({"attr": "postchange.x", "value": 1})).unwrap();
        let stored =
            JobHook::new("h", cts(&["dcim.device"]), "app::Audit").on([Action::Create]).when(condition.clone());
        let kept: JobHookPatch = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
        assert_eq!(kept.apply_to(&stored).conditions, Some(condition));
        let removed: JobHookPatch = serde_json::from_str(r#"{"conditions": null}"#).unwrap();
        assert_eq!(removed.apply_to(&stored).conditions, None);
        let bad = serde_json::from_str::<JobHookPatch>(r#"{"conditions": {"attr": "x", "value": 1}}"#).unwrap_err();
        assert!(bad.to_string().contains("must start with prechange."), "{bad}");
    }
}
