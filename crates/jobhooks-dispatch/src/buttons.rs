//! Job buttons: which buttons an object shows a user, and what pressing one does.

use std::fmt;
use std::sync::Arc;

use jobhooks_model::ports::Storage;
use jobhooks_model::{ButtonClass, JobButton, JobInputs, Object, ObjectRef, RunId, StoreError, User};
use minijinja::value::{Enumerator, Object as TemplateObject, ObjectRepr};
use serde::{Deserialize, Serialize};

/// How much work one button text may do when rendered: enough for any real label, far too little
/// for a template written to hang the process.
pub const TEMPLATE_FUEL: u64 = 20_000;

/// A job button as shown on one object to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderedButton {
    /// The button's name.
    pub name: String,
    /// The job it runs.
    pub job: String,
    /// The rendered label (empty when rendering failed).
    pub text: String,
    /// How it looks.
    pub button_class: ButtonClass,
    /// Its group, if any.
    pub group_name: Option<String>,
    /// Its weight.
    pub weight: i32,
    /// The prompt to confirm with before running, when the button asks for confirmation.
    pub confirmation_prompt: Option<String>,
    /// Whether the button can be pressed (the user may run the job and the job is installed and
    /// enabled, and the text rendered).
    pub disabled: bool,
    /// Why the text could not be rendered, if it could not.
    pub error: Option<String>,
    /// Why the button cannot be pressed, when it is disabled: the render error, or the job's
    /// refusal in the words a press would answer with.
    pub disabled_reason: Option<String>,
}

/// Why a press was refused. The messages are Nautobot's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PressError {
    /// The job is not linked into the program.
    #[error("Unable to run or schedule job: Job is not presently installed.")]
    NotInstalled,
    /// The job is disabled.
    #[error("Unable to run or schedule job: Job is not enabled to be run.")]
    NotEnabled,
    /// The user may not run the job.
    #[error("This user does not have permission to run jobs.")]
    PermissionDenied,
    /// The button is disabled, so it is not shown and cannot be pressed.
    #[error("Job button {button} is disabled: it is not shown, so it cannot be pressed; enable it first")]
    Disabled {
        /// The button.
        button: String,
    },
    /// The button is not offered on this object's type.
    #[error("Job button {button} is not available on {content_type} objects")]
    NotAvailable {
        /// The button.
        button: String,
        /// The object's type.
        content_type: String,
    },
    /// The job is not a job button receiver, so it cannot run on an object.
    #[error("Job {job} is not a job button receiver")]
    NotAButtonReceiver {
        /// The job's class path.
        job: String,
    },
    /// The object to run on does not exist.
    #[error("{content_type} {id} does not exist")]
    NoSuchObject {
        /// The object's type.
        content_type: String,
        /// Its id.
        id: String,
    },
    /// The store failed or the button does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<jobhooks_model::StorageFailure> for PressError {
    fn from(error: jobhooks_model::StorageFailure) -> Self {
        PressError::Store(error.into())
    }
}

impl From<jobhooks_model::QueueError> for PressError {
    fn from(error: jobhooks_model::QueueError) -> Self {
        PressError::Store(error.into())
    }
}

/// `obj` in a button template: its fields by name, and its text when printed.
#[derive(Debug)]
struct TemplateObjectValue(Object);

impl TemplateObject for TemplateObjectValue {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match key.as_str()? {
            "pk" | "id" => Some(minijinja::Value::from(self.0.id())),
            field => self.0.field(field).map(minijinja::Value::from_serialize),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.data().keys().map(|k| minijinja::Value::from(k.as_str())).collect())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.repr())
    }
}

/// `user` in a button template: prints as the username.
#[derive(Debug)]
struct TemplateUser(User);

impl TemplateObject for TemplateUser {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match key.as_str()? {
            "username" => Some(minijinja::Value::from(self.0.username.as_str())),
            "is_superuser" => Some(minijinja::Value::from(self.0.is_superuser)),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.username)
    }
}

/// `perms` in a button template, as Django's: `perms.dcim.add_device` is true when the user has
/// `dcim.add_device`.
#[derive(Debug)]
struct TemplatePerms {
    user: Arc<User>,
    app_label: Option<String>,
}

impl TemplateObject for TemplatePerms {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let key = key.as_str()?;
        Some(match &self.app_label {
            None => minijinja::Value::from_object(TemplatePerms {
                user: self.user.clone(),
                app_label: Some(key.to_owned()),
            }),
            Some(app) => minijinja::Value::from(self.user.has_perm(&format!("{app}.{key}"))),
        })
    }
}

/// Renders a button text with `obj`, `user` and `perms`, bounded by [`TEMPLATE_FUEL`].
pub fn render_button_text(text: &str, object: &Object, user: &User) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    let context = minijinja::context! {
        obj => minijinja::Value::from_object(TemplateObjectValue(object.clone())),
        user => minijinja::Value::from_object(TemplateUser(user.clone())),
        perms => minijinja::Value::from_object(TemplatePerms { user: Arc::new(user.clone()), app_label: None }),
    };
    env.render_str(text, context).map_err(|e| e.to_string())
}

/// The enabled buttons on `object`'s content type, ordered by (group, weight, name) with
/// ungrouped ones first, rendered for `user`. A button whose text renders empty is left out.
pub async fn buttons_for<S: Storage + ?Sized>(
    store: &S,
    object: &Object,
    user: &User,
) -> Result<Vec<RenderedButton>, StoreError> {
    let mut buttons: Vec<JobButton> = store
        .list_buttons()
        .await?
        .into_iter()
        .filter(|b| b.enabled && b.content_types.contains(object.content_type()))
        .collect();
    buttons.sort_by(|a, b| a.display_order().cmp(&b.display_order()));
    let mut shown = Vec::with_capacity(buttons.len());
    for button in buttons {
        let job = store.get_job(&button.job).await?;
        let refusal = match &job {
            None => Some(PressError::NotInstalled),
            Some(job) if !job.installed => Some(PressError::NotInstalled),
            Some(job) if !job.enabled => Some(PressError::NotEnabled),
            Some(_) if !user.can_run_job(&button.job) => Some(PressError::PermissionDenied),
            Some(_) => None,
        };
        let (text, error) = match render_button_text(&button.text, object, user) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => (text, None),
            Err(error) => (String::new(), Some(error)),
        };
        shown.push(RenderedButton {
            confirmation_prompt: button.confirmation.then(|| button.confirmation_prompt(object)),
            disabled: refusal.is_some() || error.is_some(),
            disabled_reason: error.clone().or_else(|| refusal.map(|refusal| refusal.to_string())),
            error,
            text,
            name: button.name,
            job: button.job,
            button_class: button.button_class,
            group_name: button.group_name,
            weight: button.weight,
        });
    }
    Ok(shown)
}

/// Presses the button `button` on `object` as `user`: checks, in order, that the button is offered
/// on the object's type, that the job is installed and enabled, that the user may run it, and that
/// the object exists (**ours:** refused up front rather than failing the run), then queues one
/// run with the inputs `object_pk` and `object_model_name`, as that user. Returns the run's id.
pub async fn press<S: Storage + ?Sized>(
    store: &S,
    user: &User,
    button: &str,
    object: &ObjectRef,
) -> Result<RunId, PressError> {
    let button = store.get_button(button).await?.ok_or_else(|| StoreError::not_found("job button", button))?;
    if !button.enabled {
        // Nautobot's refusals of the job come first; then ours: a disabled button is not shown.
        check_job(store, user, &button.job).await?;
        return Err(PressError::Disabled { button: button.name });
    }
    if !button.content_types.contains(object.content_type()) {
        return Err(PressError::NotAvailable { button: button.name, content_type: object.content_type().to_string() });
    }
    run_job_on(store, user, &button.job, object).await
}

/// Runs the job button receiver `job` on `object` as `user`, the way Nautobot's job run endpoint
/// does with a button's inputs (`object_pk`, `object_model_name`): refused, in order, when the job
/// is not installed, not enabled, not a button receiver, when the user may not run it, and when
/// the object does not exist.
pub async fn run_job_on<S: Storage + ?Sized>(
    store: &S,
    user: &User,
    job: &str,
    object: &ObjectRef,
) -> Result<RunId, PressError> {
    if let Some(record) = store.get_job(job).await?
        && record.installed
        && record.enabled
        && record.kind != jobhooks_model::JobKind::JobButtonReceiver
    {
        return Err(PressError::NotAButtonReceiver { job: job.to_owned() });
    }
    if store.get_object(object).await?.is_none() {
        check_job(store, user, job).await?;
        return Err(PressError::NoSuchObject {
            content_type: object.content_type().to_string(),
            id: object.id().to_owned(),
        });
    }
    enqueue_checked(store, user, job, object).await
}

/// Nautobot's refusals of a run, in order: not installed, not enabled, no permission.
async fn check_job<S: Storage + ?Sized>(store: &S, user: &User, job: &str) -> Result<(), PressError> {
    match store.get_job(job).await? {
        Some(record) if !record.installed => Err(PressError::NotInstalled),
        None => Err(PressError::NotInstalled),
        Some(record) if !record.enabled => Err(PressError::NotEnabled),
        Some(_) if !user.can_run_job(job) => Err(PressError::PermissionDenied),
        Some(_) => Ok(()),
    }
}

async fn enqueue_checked<S: Storage + ?Sized>(
    store: &S,
    user: &User,
    job: &str,
    object: &ObjectRef,
) -> Result<RunId, PressError> {
    check_job(store, user, job).await?;
    let inputs =
        JobInputs::Button { object_pk: object.id().to_owned(), object_model_name: object.content_type().to_string() };
    Ok(store.enqueue(job, Some(user.username.clone()), inputs).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobhooks_model::{ContentType, Permission, json};

    fn location() -> Object {
        Object::new(
            ObjectRef::new(ContentType::new("dcim.location").unwrap(), "7").unwrap(),
            "HQ",
            json!({"name": "HQ", "tags": ["a"]}),
        )
        .unwrap()
    }

    #[test]
    fn templates_see_obj_user_and_perms() {
        let user = User::new("alice").unwrap().with_permission(Permission::new("dcim.add_location"));
        let text = "{{ obj }}/{{ obj.name }}/{{ obj.pk }}/{{ user }}/{% if perms.dcim.add_location %}yes{% endif %}{% if perms.dcim.add_device %}no{% endif %}";
        assert_eq!(render_button_text(text, &location(), &user).unwrap(), "HQ/HQ/7/alice/yes");
        assert_eq!(render_button_text("{% if user.is_superuser %}x{% endif %}", &location(), &user).unwrap(), "");
    }

    #[test]
    fn hostile_and_broken_templates_are_errors_not_hangs() {
        let user = User::new("alice").unwrap();
        let endless = "{% for a in range(10000) %}{% for b in range(10000) %}{{ a }}{% endfor %}{% endfor %}";
        let err = render_button_text(endless, &location(), &user).unwrap_err();
        assert!(err.contains("fuel"), "{err}");
        assert!(render_button_text("{{ obj.name ", &location(), &user).is_err());
        assert!(render_button_text("{{ obj.name | no_such_filter }}", &location(), &user).is_err());
    }
}
