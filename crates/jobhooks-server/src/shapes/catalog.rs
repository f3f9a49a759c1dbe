//! Jobs, job hooks, job buttons and users as Nautobot's API shows them.

use jobhooks_model::{
    ButtonClass, ContentType, JobButton, JobHook, JobKind, JobRecord, OffsetDateTime, Permission, Suspension, User,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Related, ShapeError, Shaper};

/// A job (`extras.job`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    /// Its id: derived from the class path it was first recorded under.
    pub id: Uuid,
    /// `extras.job`.
    pub object_type: String,
    /// Its name.
    pub display: String,
    /// Its address.
    pub url: String,
    /// The module part of its class path.
    pub module_name: String,
    /// The type name part of its class path.
    pub job_class_name: String,
    /// Its module, as Nautobot groups jobs.
    pub grouping: String,
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Linked into the running program.
    pub installed: bool,
    /// Allowed to run.
    pub enabled: bool,
    /// Left out of job listings unless asked for.
    pub hidden: bool,
    /// Whether job hooks run it.
    pub is_job_hook_receiver: bool,
    /// Whether job buttons run it.
    pub is_job_button_receiver: bool,
    /// Always false: receivers take no variables.
    pub has_sensitive_variables: bool,
    /// Always false.
    pub dryrun_default: bool,
    /// Always false.
    pub read_only: bool,
    /// Always false: jobhooks runs without approval.
    pub approval_required: bool,
    /// The queues it may run on: jobhooks has one, `default`.
    pub task_queues: Vec<String>,
    /// When it was first recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// When its record last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_updated: Option<OffsetDateTime>,
    /// jobhooks: its class path, `module::Type`, which names it in hooks, buttons and runs.
    pub class_path: String,
    /// jobhooks: what a full sync disabled when it found the job no longer linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspension>,
}

impl JobView {
    /// Its `object_type`.
    pub const OBJECT_TYPE: &'static str = "extras.job";

    /// The path of the job with `id`.
    pub fn path(id: Uuid) -> String {
        format!("/api/extras/jobs/{id}/")
    }

    /// `job` as Nautobot shows it.
    pub fn of(job: &JobRecord, shaper: &Shaper) -> Self {
        Self {
            id: job.id,
            object_type: Self::OBJECT_TYPE.to_owned(),
            display: job.name.clone(),
            url: shaper.url(&Self::path(job.id)),
            module_name: job.module_name().to_owned(),
            job_class_name: job.job_class_name().to_owned(),
            grouping: job.module_name().to_owned(),
            name: job.name.clone(),
            description: job.description.clone(),
            installed: job.installed,
            enabled: job.enabled,
            hidden: job.hidden,
            is_job_hook_receiver: job.kind == JobKind::JobHookReceiver,
            is_job_button_receiver: job.kind == JobKind::JobButtonReceiver,
            has_sensitive_variables: false,
            dryrun_default: false,
            read_only: false,
            approval_required: false,
            task_queues: vec![crate::api::DEFAULT_QUEUE.to_owned()],
            created: job.created,
            last_updated: job.last_updated,
            class_path: job.class_path.clone(),
            suspended: job.suspended.clone(),
        }
    }
}

impl TryFrom<JobView> for JobRecord {
    type Error = ShapeError;

    fn try_from(view: JobView) -> Result<Self, ShapeError> {
        let kind = match (view.is_job_hook_receiver, view.is_job_button_receiver) {
            (true, false) => JobKind::JobHookReceiver,
            (false, true) => JobKind::JobButtonReceiver,
            _ => {
                return Err(ShapeError::Invalid {
                    field: "is_job_hook_receiver",
                    reason: "a job is either a job hook receiver or a job button receiver".into(),
                });
            }
        };
        Ok(JobRecord {
            id: view.id,
            description: view.description,
            installed: view.installed,
            enabled: view.enabled,
            hidden: view.hidden,
            suspended: view.suspended,
            created: view.created,
            last_updated: view.last_updated,
            ..JobRecord::new(view.class_path, view.name, kind)
        })
    }
}

fn class_path_of(job: Option<Related<JobView>>) -> Result<String, ShapeError> {
    let job = job.ok_or(ShapeError::Invalid { field: "job", reason: "the job is not recorded".into() })?;
    Ok(job.whole("job")?.class_path)
}

/// A job hook (`extras.jobhook`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobHookView {
    /// Its id.
    pub id: Uuid,
    /// `extras.jobhook`.
    pub object_type: String,
    /// Its name.
    pub display: String,
    /// Its address.
    pub url: String,
    /// Its unique name.
    pub name: String,
    /// The object types whose changes run it.
    #[schema(value_type = Vec<String>)]
    pub content_types: Vec<ContentType>,
    /// The job hook receiver it runs (`null` if that job is not recorded).
    #[schema(value_type = Object)]
    pub job: Option<Related<JobView>>,
    /// An inactive hook runs nothing.
    pub enabled: bool,
    /// Runs on create.
    pub type_create: bool,
    /// Runs on update.
    pub type_update: bool,
    /// Runs on delete.
    pub type_delete: bool,
    /// Only changes this condition admits run it (NetBox's event-rule form); `null`: every change.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<jobhooks_model::Condition>,
    /// For an update, it runs only when one of these fields changed; empty: every update.
    #[serde(default)]
    pub changed_fields: Vec<String>,
    /// An outbound webhook it sends in place of running a job (`null`: it runs its job); a secret
    /// is shown as `********`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub webhook: Option<jobhooks_model::Webhook>,
    /// When it was first stored.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_updated: Option<OffsetDateTime>,
}

impl JobHookView {
    /// Its `object_type`.
    pub const OBJECT_TYPE: &'static str = "extras.jobhook";

    /// `hook` as Nautobot shows it.
    pub fn of(hook: &JobHook, shaper: &Shaper) -> Self {
        Self {
            id: hook.id,
            object_type: Self::OBJECT_TYPE.to_owned(),
            display: hook.name.clone(),
            url: shaper.url(&format!("/api/extras/job-hooks/{}/", hook.id)),
            name: hook.name.clone(),
            content_types: hook.content_types.clone(),
            job: shaper.related_job(&hook.job),
            enabled: hook.enabled,
            type_create: hook.type_create,
            type_update: hook.type_update,
            type_delete: hook.type_delete,
            conditions: hook.conditions.clone(),
            changed_fields: hook.changed_fields.clone(),
            webhook: hook.webhook.clone().map(|mut webhook| {
                if !webhook.secret.is_empty() {
                    webhook.secret = jobhooks_model::SECRET_MASK.to_owned();
                }
                webhook
            }),
            created: hook.created,
            last_updated: hook.last_updated,
        }
    }
}

impl TryFrom<JobHookView> for JobHook {
    type Error = ShapeError;

    fn try_from(view: JobHookView) -> Result<Self, ShapeError> {
        let mut hook = JobHook::new(view.name, view.content_types, class_path_of(view.job)?);
        hook.id = view.id;
        hook.enabled = view.enabled;
        hook.type_create = view.type_create;
        hook.type_update = view.type_update;
        hook.type_delete = view.type_delete;
        hook.conditions = view.conditions;
        hook.changed_fields = view.changed_fields;
        hook.webhook = view.webhook;
        hook.created = view.created;
        hook.last_updated = view.last_updated;
        Ok(hook)
    }
}

/// A job button (`extras.jobbutton`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobButtonView {
    /// Its id.
    pub id: Uuid,
    /// `extras.jobbutton`.
    pub object_type: String,
    /// Its name.
    pub display: String,
    /// Its address.
    pub url: String,
    /// Its unique name.
    pub name: String,
    /// The object types it appears on.
    #[schema(value_type = Vec<String>)]
    pub content_types: Vec<ContentType>,
    /// Its label, a Jinja2 template.
    pub text: String,
    /// The job button receiver it runs (`null` if that job is not recorded).
    #[schema(value_type = Object)]
    pub job: Option<Related<JobView>>,
    /// Its order within its group.
    pub weight: i32,
    /// Its group; empty when it has none, as in Nautobot.
    pub group_name: String,
    /// How it looks: `default`, `primary`, `success`, `info`, `warning`, `danger` or `link`.
    pub button_class: String,
    /// Whether pressing it asks first.
    pub confirmation: bool,
    /// An inactive button is not shown.
    pub enabled: bool,
    /// When it was first stored.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_updated: Option<OffsetDateTime>,
}

impl JobButtonView {
    /// Its `object_type`.
    pub const OBJECT_TYPE: &'static str = "extras.jobbutton";

    /// `button` as Nautobot shows it.
    pub fn of(button: &JobButton, shaper: &Shaper) -> Self {
        Self {
            id: button.id,
            object_type: Self::OBJECT_TYPE.to_owned(),
            display: button.name.clone(),
            url: shaper.url(&format!("/api/extras/job-buttons/{}/", button.id)),
            name: button.name.clone(),
            content_types: button.content_types.clone(),
            text: button.text.clone(),
            job: shaper.related_job(&button.job),
            weight: button.weight,
            group_name: button.group_name.clone().unwrap_or_default(),
            button_class: button.button_class.as_str().to_owned(),
            confirmation: button.confirmation,
            enabled: button.enabled,
            created: button.created,
            last_updated: button.last_updated,
        }
    }
}

impl TryFrom<JobButtonView> for JobButton {
    type Error = ShapeError;

    fn try_from(view: JobButtonView) -> Result<Self, ShapeError> {
        let mut button = JobButton::new(view.name, view.content_types, view.text, class_path_of(view.job)?);
        button.id = view.id;
        button.weight = view.weight;
        button.group_name = Some(view.group_name).filter(|group| !group.is_empty());
        button.button_class = view
            .button_class
            .parse::<ButtonClass>()
            .map_err(|error| ShapeError::Invalid { field: "button_class", reason: error.to_string() })?;
        button.confirmation = view.confirmation;
        button.enabled = view.enabled;
        button.created = view.created;
        button.last_updated = view.last_updated;
        Ok(button)
    }
}

/// A user (`users.user`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    /// Its id, derived from the username.
    pub id: Uuid,
    /// `users.user`.
    pub object_type: String,
    /// The username.
    pub display: String,
    /// Its address.
    pub url: String,
    /// The login name.
    pub username: String,
    /// A superuser may do everything.
    pub is_superuser: bool,
    /// Always true: a user who may not log in is removed, not deactivated.
    pub is_active: bool,
    /// jobhooks: what the user may do; only in `/api/users/users/`, to superusers and the user
    /// themself, never in a record that relates to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub permissions: Option<Vec<Permission>>,
}

impl UserView {
    /// Its `object_type`.
    pub const OBJECT_TYPE: &'static str = "users.user";

    /// The path of the user with `id`.
    pub fn path(id: Uuid) -> String {
        format!("/api/users/users/{id}/")
    }

    /// `user` as Nautobot shows it, with the user's permissions.
    pub fn of(user: &User, shaper: &Shaper) -> Self {
        Self { permissions: Some(user.permissions.clone()), ..Self::related(user, shaper) }
    }

    /// `user` as a record that relates to them shows them: without their permissions.
    pub fn related(user: &User, shaper: &Shaper) -> Self {
        let id = super::user_id(&user.username);
        Self {
            id,
            object_type: Self::OBJECT_TYPE.to_owned(),
            display: user.username.clone(),
            url: shaper.url(&Self::path(id)),
            username: user.username.clone(),
            is_superuser: user.is_superuser,
            is_active: true,
            permissions: None,
        }
    }
}

/// The username of a related user: whole, it says; brief, it is not known.
pub(crate) fn username_of(user: Option<Related<UserView>>) -> Result<Option<String>, ShapeError> {
    user.map(|user| user.whole("user").map(|user| user.username)).transpose()
}

/// A value the model takes, from an answer's JSON.
pub(crate) fn decoded<T: serde::de::DeserializeOwned>(field: &'static str, value: Value) -> Result<T, ShapeError> {
    serde_json::from_value(value).map_err(|error| ShapeError::Invalid { field, reason: error.to_string() })
}
