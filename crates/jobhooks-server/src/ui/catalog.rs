//! `/hooks/` and `/buttons/`: list, detail, create, edit and delete, with the catalog's own
//! validation messages shown beside the fields they concern and the form kept as typed.

use axum::extract::{Path, State};
use axum::response::Response;
use jobhooks_model::ports::Storage;
use jobhooks_model::{
    ButtonClass, CatalogError, ContentType, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobKind, ValidationErrors,
};
use serde_json::{Map, Value, json};

use super::form::{FormData, Posted};
use super::render::{Flash, PageError, page, redirect_with};
use super::visitor::Visitor;
use crate::AppState;

fn path_segment(name: &str) -> String {
    form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

/// Content types typed into one field, separated by commas, spaces or lines.
fn content_types(form: &FormData, errors: &mut ValidationErrors) -> Vec<ContentType> {
    let mut types = Vec::new();
    for name in form.text("content_types").split([',', ' ', '\n', '\r']).filter(|name| !name.is_empty()) {
        match ContentType::new(name) {
            Ok(content_type) => types.push(content_type),
            Err(error) => errors.add("content_types", error.to_string()),
        }
    }
    types
}

/// Why a write was refused, as messages by field; `Err` when the store itself failed.
fn refusal(error: CatalogError) -> Result<ValidationErrors, PageError> {
    let mut errors = ValidationErrors::default();
    match error {
        CatalogError::Validation(validation) => return Ok(validation),
        CatalogError::Invalid(error) => errors.add(ValidationErrors::NON_FIELD, error.to_string()),
        CatalogError::NotFound { .. } => errors.add(ValidationErrors::NON_FIELD, error.to_string()),
        CatalogError::Storage(failure) => return Err(failure.into()),
        other => errors.add(ValidationErrors::NON_FIELD, other.to_string()),
    }
    Ok(errors)
}

fn errors_json(errors: &ValidationErrors) -> Value {
    let mut map = Map::new();
    for (field, messages) in errors.iter() {
        map.insert(field.to_owned(), json!(messages));
    }
    Value::Object(map)
}

async fn receivers<S: Storage + 'static>(state: &AppState<S>, kind: JobKind) -> Result<Vec<Value>, PageError> {
    let mut jobs: Vec<Value> = state
        .store
        .list_jobs()
        .await?
        .into_iter()
        .filter(|job| job.kind == kind)
        .map(|job| json!({"class_path": job.class_path, "name": job.name, "runnable": job.is_runnable()}))
        .collect();
    jobs.sort_by(|a, b| a["class_path"].as_str().cmp(&b["class_path"].as_str()));
    Ok(jobs)
}

// Hooks.

fn hook_json(hook: &JobHook) -> Value {
    json!({
        "name": hook.name,
        "url": format!("/hooks/{}/", path_segment(&hook.name)),
        "content_types": hook.content_types.iter().map(ContentType::as_str).collect::<Vec<_>>().join(", "),
        "job": hook.job,
        "enabled": hook.enabled,
        "type_create": hook.type_create,
        "type_update": hook.type_update,
        "type_delete": hook.type_delete,
        "conditions": hook.conditions.as_ref().map(|conditions| serde_json::to_string_pretty(&conditions.to_json()).unwrap_or_default()),
        "changed_fields": hook.changed_fields.join(", "),
        "webhook": hook.webhook.as_ref().map(|webhook| json!({
            "payload_url": webhook.payload_url,
            "http_method": webhook.http_method.as_str(),
            "http_content_type": webhook.http_content_type,
            "additional_headers": webhook.additional_headers,
            "body_template": webhook.body_template,
            "signed": !webhook.secret.is_empty(),
            "ssl_verification": webhook.ssl_verification,
        })),
    })
}

/// The webhook a form describes, if its URL is filled in. An empty secret keeps the stored one
/// (the form never shows it).
fn webhook_of(form: &FormData, errors: &mut ValidationErrors) -> Option<jobhooks_model::Webhook> {
    let url = form.text("payload_url").trim().to_owned();
    if url.is_empty() {
        return None;
    }
    let method = form.text("http_method");
    let method = jobhooks_model::HttpMethod::from_name(method).unwrap_or_else(|| {
        errors.add("webhook", format!("http_method: `{method}` is not one of GET, POST, PUT, PATCH, DELETE"));
        jobhooks_model::HttpMethod::Post
    });
    let secret = match form.text("secret") {
        "" => jobhooks_model::SECRET_MASK.to_owned(),
        secret => secret.to_owned(),
    };
    let mut webhook = jobhooks_model::Webhook::new(url)
        .method(method)
        .body(form.text("body_template").replace("\r\n", "\n"))
        .secret(secret);
    webhook.additional_headers = form.text("additional_headers").replace("\r\n", "\n").trim().to_owned();
    let content_type = form.text("http_content_type");
    if !content_type.trim().is_empty() {
        webhook.http_content_type = content_type.trim().to_owned();
    }
    webhook.ssl_verification = form.checked("ssl_verification");
    Some(webhook)
}

/// The hook a form describes, or why it cannot.
fn hook_of(form: &FormData) -> Result<JobHook, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let types = content_types(form, &mut errors);
    let conditions = match form.text("conditions").trim() {
        "" => None,
        text => match serde_json::from_str::<Value>(text) {
            Ok(json) => match jobhooks_model::Condition::from_json(&json) {
                Ok(condition) => Some(condition),
                Err(error) => {
                    errors.add("conditions", error.to_string());
                    None
                }
            },
            Err(error) => {
                errors.add("conditions", format!("not JSON: {error}"));
                None
            }
        },
    };
    let webhook = webhook_of(form, &mut errors);
    if webhook.is_some() && !form.text("job").is_empty() {
        errors.add("job", "Choose a job or a webhook URL, not both.");
    }
    errors.into_result()?;
    let job = if webhook.is_some() { jobhooks_model::WEBHOOK_JOB.to_owned() } else { form.text("job").to_owned() };
    let mut hook = JobHook::new(form.text("name"), types, job);
    hook.webhook = webhook;
    hook.conditions = conditions;
    hook.changed_fields = form
        .text("changed_fields")
        .split(',')
        .map(str::trim)
        .filter(|field| !field.is_empty())
        .map(str::to_owned)
        .collect();
    hook.enabled = form.checked("enabled");
    hook.type_create = form.checked("type_create");
    hook.type_update = form.checked("type_update");
    hook.type_delete = form.checked("type_delete");
    Ok(hook)
}

async fn hook_form<S: Storage + 'static>(
    state: &AppState<S>,
    visitor: &Visitor,
    editing: Option<&str>,
    typed: Value,
    errors: &ValidationErrors,
) -> Result<Response, PageError> {
    let action =
        editing.map_or_else(|| "/hooks/add/".to_owned(), |name| format!("/hooks/{}/edit/", path_segment(name)));
    let mut response = page(
        visitor,
        "hook_form.html",
        json!({
            "title": editing.map_or_else(|| "Add a job hook".to_owned(), |name| format!("Edit job hook {name}")),
            "action": action,
            "typed": typed,
            "errors": errors_json(errors),
            "jobs": receivers(state, JobKind::JobHookReceiver).await?,
        }),
    );
    if !errors.is_empty() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

pub(crate) async fn hooks<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    visitor.require("extras.view_jobhook")?;
    let hooks: Vec<Value> = state.store.list_hooks().await?.iter().map(hook_json).collect();
    let may_add = visitor.user.has_perm("extras.add_jobhook");
    Ok(page(&visitor, "hooks.html", json!({"title": "Job hooks", "hooks": hooks, "may_add": may_add})))
}

pub(crate) async fn hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    visitor.require("extras.view_jobhook")?;
    let hook = state.store.get_hook(&name).await?.ok_or_else(|| PageError::not_found("job hook", &name))?;
    let (may_change, may_delete) =
        (visitor.user.has_perm("extras.change_jobhook"), visitor.user.has_perm("extras.delete_jobhook"));
    Ok(page(
        &visitor,
        "hook.html",
        json!({"title": format!("Job hook {name}"), "hook": hook_json(&hook), "may_change": may_change, "may_delete": may_delete}),
    ))
}

/// `hook` when the visitor may write its webhook where it sends; else why not, under `webhook`.
fn webhook_allowed<S: Storage>(
    state: &AppState<S>,
    visitor: &Visitor,
    hook: JobHook,
    stored: Option<&JobHook>,
) -> Result<JobHook, ValidationErrors> {
    use crate::api::WebhookRefusal;
    let mut errors = ValidationErrors::default();
    if hook.webhook.as_ref().is_some_and(|webhook| webhook.secret == jobhooks_model::SECRET_MASK) {
        // No secret typed for a new webhook: it is unsigned.
        let mut hook = hook;
        if let Some(webhook) = &mut hook.webhook {
            webhook.secret = String::new();
        }
        return webhook_allowed(state, visitor, hook, stored);
    }
    match crate::api::webhook_refusal(&state.webhook_policy, &visitor.user, &hook, stored) {
        None => return Ok(hook),
        Some(WebhookRefusal::Permission(permission)) => {
            errors.add("webhook", format!("You do not have permission to send webhooks: {permission} is required."))
        }
        Some(WebhookRefusal::Destination(message)) => errors.add("webhook", message),
    }
    Err(errors)
}

pub(crate) async fn new_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    visitor.require("extras.add_jobhook")?;
    let typed = json!({"enabled": "on", "type_create": "on", "type_update": "on", "type_delete": "on", "ssl_verification": "on", "http_method": "POST"});
    hook_form(&state, &visitor, None, typed, &ValidationErrors::default()).await
}

pub(crate) async fn create_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    posted: Posted,
) -> Result<Response, PageError> {
    let Posted { visitor, form } = posted;
    visitor.require("extras.add_jobhook")?;
    let errors = match hook_of(&form).and_then(|hook| webhook_allowed(&state, &visitor, hook, None)) {
        Ok(hook) => match state.store.create_hook(hook).await {
            Ok(hook) => {
                let url = format!("/hooks/{}/", path_segment(&hook.name));
                return Ok(redirect_with(&url, Flash::success(format!("Created job hook {}.", hook.name))));
            }
            Err(error) => refusal(error)?,
        },
        Err(errors) => errors,
    };
    hook_form(&state, &visitor, None, Value::Object(form.typed()), &errors).await
}

pub(crate) async fn edit_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    visitor.require("extras.change_jobhook")?;
    let hook = state.store.get_hook(&name).await?.ok_or_else(|| PageError::not_found("job hook", &name))?;
    let on = |flag: bool| if flag { "on" } else { "" };
    let typed = json!({
        "name": hook.name,
        "content_types": hook_json(&hook)["content_types"],
        "job": hook.job,
        "enabled": on(hook.enabled),
        "type_create": on(hook.type_create),
        "type_update": on(hook.type_update),
        "type_delete": on(hook.type_delete),
        "conditions": hook_json(&hook)["conditions"],
        "changed_fields": hook_json(&hook)["changed_fields"],
        "payload_url": hook.webhook.as_ref().map(|webhook| webhook.payload_url.clone()),
        "http_method": hook.webhook.as_ref().map_or("POST", |webhook| webhook.http_method.as_str()),
        "http_content_type": hook.webhook.as_ref().map(|webhook| webhook.http_content_type.clone()),
        "additional_headers": hook.webhook.as_ref().map(|webhook| webhook.additional_headers.clone()),
        "body_template": hook.webhook.as_ref().map(|webhook| webhook.body_template.clone()),
        "ssl_verification": on(hook.webhook.as_ref().is_none_or(|webhook| webhook.ssl_verification)),
        "signed": hook.webhook.as_ref().is_some_and(|webhook| !webhook.secret.is_empty()),
    });
    hook_form(&state, &visitor, Some(&name), typed, &ValidationErrors::default()).await
}

pub(crate) async fn update_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let Posted { visitor, form } = posted;
    visitor.require("extras.change_jobhook")?;
    let stored = state.store.get_hook(&name).await?.ok_or_else(|| PageError::not_found("job hook", &name))?;
    let checked = hook_of(&form).and_then(|hook| {
        let hook = JobHookPatch::from(hook).apply_to(&stored);
        webhook_allowed(&state, &visitor, hook, Some(&stored))
    });
    let errors = match checked {
        Ok(hook) => match state.store.update_hook(&name, JobHookPatch::from(hook)).await {
            Ok(hook) => {
                let url = format!("/hooks/{}/", path_segment(&hook.name));
                return Ok(redirect_with(&url, Flash::success(format!("Saved job hook {}.", hook.name))));
            }
            Err(error) => refusal(error)?,
        },
        Err(errors) => errors,
    };
    hook_form(&state, &visitor, Some(&name), Value::Object(form.typed()), &errors).await
}

pub(crate) async fn confirm_delete_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    visitor.require("extras.delete_jobhook")?;
    state.store.get_hook(&name).await?.ok_or_else(|| PageError::not_found("job hook", &name))?;
    Ok(page(
        &visitor,
        "confirm_delete.html",
        json!({
            "title": format!("Delete job hook {name}"),
            "what": format!("job hook {name}"),
            "action": format!("/hooks/{}/delete/", path_segment(&name)),
            "cancel": format!("/hooks/{}/", path_segment(&name)),
        }),
    ))
}

pub(crate) async fn delete_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    posted.visitor.require("extras.delete_jobhook")?;
    state.store.delete_hook(&name).await?;
    Ok(redirect_with("/hooks/", Flash::success(format!("Deleted job hook {name}."))))
}

// Buttons.

fn button_json(button: &JobButton) -> Value {
    json!({
        "name": button.name,
        "url": format!("/buttons/{}/", path_segment(&button.name)),
        "content_types": button.content_types.iter().map(ContentType::as_str).collect::<Vec<_>>().join(", "),
        "text": button.text,
        "job": button.job,
        "weight": button.weight,
        "group_name": button.group_name,
        "button_class": button.button_class.as_str(),
        "confirmation": button.confirmation,
        "enabled": button.enabled,
    })
}

const BUTTON_CLASSES: [&str; 7] = ["default", "primary", "success", "info", "warning", "danger", "link"];

fn button_of(form: &FormData) -> Result<JobButton, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let types = content_types(form, &mut errors);
    let weight = match form.text("weight") {
        "" => 100,
        text => text.parse::<i32>().unwrap_or_else(|_| {
            errors.add("weight", "Enter a whole number.");
            100
        }),
    };
    let button_class = form.text("button_class").parse::<ButtonClass>().unwrap_or_else(|error| {
        errors.add("button_class", error.to_string());
        ButtonClass::Default
    });
    errors.into_result()?;
    // The text keeps its spaces and lines: it is a template.
    let mut button = JobButton::new(form.text("name"), types, form.text_untrimmed("text"), form.text("job"));
    button.weight = weight;
    button.group_name = Some(form.text("group_name").to_owned()).filter(|group| !group.is_empty());
    button.button_class = button_class;
    button.confirmation = form.checked("confirmation");
    button.enabled = form.checked("enabled");
    Ok(button)
}

async fn button_form<S: Storage + 'static>(
    state: &AppState<S>,
    visitor: &Visitor,
    editing: Option<&str>,
    typed: Value,
    errors: &ValidationErrors,
) -> Result<Response, PageError> {
    let action =
        editing.map_or_else(|| "/buttons/add/".to_owned(), |name| format!("/buttons/{}/edit/", path_segment(name)));
    let mut response = page(
        visitor,
        "button_form.html",
        json!({
            "title": editing.map_or_else(|| "Add a job button".to_owned(), |name| format!("Edit job button {name}")),
            "action": action,
            "typed": typed,
            "errors": errors_json(errors),
            "jobs": receivers(state, JobKind::JobButtonReceiver).await?,
            "classes": BUTTON_CLASSES,
        }),
    );
    if !errors.is_empty() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

pub(crate) async fn buttons<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    visitor.require("extras.view_jobbutton")?;
    let buttons: Vec<Value> = state.store.list_buttons().await?.iter().map(button_json).collect();
    let may_add = visitor.user.has_perm("extras.add_jobbutton");
    Ok(page(&visitor, "buttons.html", json!({"title": "Job buttons", "buttons": buttons, "may_add": may_add})))
}

pub(crate) async fn button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    visitor.require("extras.view_jobbutton")?;
    let button = state.store.get_button(&name).await?.ok_or_else(|| PageError::not_found("job button", &name))?;
    let (may_change, may_delete) =
        (visitor.user.has_perm("extras.change_jobbutton"), visitor.user.has_perm("extras.delete_jobbutton"));
    Ok(page(
        &visitor,
        "button.html",
        json!({"title": format!("Job button {name}"), "button": button_json(&button), "may_change": may_change, "may_delete": may_delete}),
    ))
}

pub(crate) async fn new_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    visitor.require("extras.add_jobbutton")?;
    let typed = json!({"enabled": "on", "weight": "100", "button_class": "default"});
    button_form(&state, &visitor, None, typed, &ValidationErrors::default()).await
}

pub(crate) async fn create_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    posted: Posted,
) -> Result<Response, PageError> {
    let Posted { visitor, form } = posted;
    visitor.require("extras.add_jobbutton")?;
    let errors = match button_of(&form) {
        Ok(button) => match state.store.create_button(button).await {
            Ok(button) => {
                let url = format!("/buttons/{}/", path_segment(&button.name));
                return Ok(redirect_with(&url, Flash::success(format!("Created job button {}.", button.name))));
            }
            Err(error) => refusal(error)?,
        },
        Err(errors) => errors,
    };
    button_form(&state, &visitor, None, Value::Object(form.typed()), &errors).await
}

pub(crate) async fn edit_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    visitor.require("extras.change_jobbutton")?;
    let button = state.store.get_button(&name).await?.ok_or_else(|| PageError::not_found("job button", &name))?;
    let on = |flag: bool| if flag { "on" } else { "" };
    let mut typed = button_json(&button);
    typed["enabled"] = on(button.enabled).into();
    typed["confirmation"] = on(button.confirmation).into();
    typed["weight"] = button.weight.to_string().into();
    button_form(&state, &visitor, Some(&name), typed, &ValidationErrors::default()).await
}

pub(crate) async fn update_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let Posted { visitor, form } = posted;
    visitor.require("extras.change_jobbutton")?;
    let errors = match button_of(&form) {
        Ok(button) => match state.store.update_button(&name, JobButtonPatch::from(button)).await {
            Ok(button) => {
                let url = format!("/buttons/{}/", path_segment(&button.name));
                return Ok(redirect_with(&url, Flash::success(format!("Saved job button {}.", button.name))));
            }
            Err(error) => refusal(error)?,
        },
        Err(errors) => errors,
    };
    button_form(&state, &visitor, Some(&name), Value::Object(form.typed()), &errors).await
}

pub(crate) async fn confirm_delete_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    visitor.require("extras.delete_jobbutton")?;
    state.store.get_button(&name).await?.ok_or_else(|| PageError::not_found("job button", &name))?;
    Ok(page(
        &visitor,
        "confirm_delete.html",
        json!({
            "title": format!("Delete job button {name}"),
            "what": format!("job button {name}"),
            "action": format!("/buttons/{}/delete/", path_segment(&name)),
            "cancel": format!("/buttons/{}/", path_segment(&name)),
        }),
    ))
}

pub(crate) async fn delete_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    posted.visitor.require("extras.delete_jobbutton")?;
    state.store.delete_button(&name).await?;
    Ok(redirect_with("/buttons/", Flash::success(format!("Deleted job button {name}."))))
}
