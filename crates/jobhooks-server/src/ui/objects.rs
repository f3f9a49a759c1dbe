//! `/objects/`: content types, their objects, and one object's page with its data, its change log
//! and its job buttons, rendered for the logged-in user as Nautobot renders them; pressing one.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use jobhooks_dispatch::{RenderedButton, buttons_for, press as press_button};
use jobhooks_model::ObjectRef;
use jobhooks_model::ports::Storage;
use serde::Deserialize;
use serde_json::{Value, json};

use super::changes::change_row;
use super::form::Posted;
use super::render::{Flash, PageError, page, redirect_with};
use super::visitor::Visitor;
use crate::AppState;
use crate::api::{object_at, object_permission};

/// Objects per page of a type's list.
const PER_PAGE: usize = 50;
/// Changes shown on an object's page; the change log lists the rest.
const CHANGES_SHOWN: usize = 25;

#[derive(Deserialize)]
pub(crate) struct PageNumber {
    page: Option<usize>,
}

/// The link of an object's page.
pub(crate) fn object_url(reference: &ObjectRef) -> String {
    let id: String = form_urlencoded::byte_serialize(reference.id().as_bytes()).collect();
    format!("/objects/{}/{id}/", reference.content_type())
}

fn reference(content_type: &str, id: &str) -> Result<ObjectRef, PageError> {
    object_at(content_type, id).map_err(PageError::from)
}

pub(crate) async fn types<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let mut types = Vec::new();
    for content_type in state.store.object_types().await? {
        let count = state.store.list_objects(&content_type).await?.len();
        types.push(json!({"name": content_type.as_str(), "count": count}));
    }
    Ok(page(&visitor, "object_types.html", json!({"title": "Objects", "types": types})))
}

pub(crate) async fn list<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(content_type): Path<String>,
    Query(number): Query<PageNumber>,
) -> Result<Response, PageError> {
    let content_type = jobhooks_model::ContentType::new(content_type.as_str())
        .map_err(|error| PageError::status(axum::http::StatusCode::BAD_REQUEST, error.to_string()))?;
    let objects = state.store.list_objects(&content_type).await?;
    let pages = objects.len().div_ceil(PER_PAGE).max(1);
    let number = number.page.unwrap_or(1).clamp(1, pages);
    let shown: Vec<Value> = objects
        .iter()
        .skip((number - 1) * PER_PAGE)
        .take(PER_PAGE)
        .map(|object| json!({"id": object.id(), "repr": object.repr(), "url": object_url(object.reference())}))
        .collect();
    Ok(page(
        &visitor,
        "object_list.html",
        json!({
            "title": content_type.as_str(),
            "content_type": content_type.as_str(),
            "objects": shown,
            "count": objects.len(),
            "page": number,
            "pages": pages,
        }),
    ))
}

/// The buttons as the page lays them out: ungrouped ones first, then one menu per group, each in
/// the order `buttons_for` gives (weight, then name).
fn lay_out(buttons: Vec<RenderedButton>, reference: &ObjectRef) -> (Vec<Value>, Vec<Value>) {
    let mut ungrouped = Vec::new();
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for button in buttons {
        let shown = json!({
            "name": button.name,
            "job": button.job,
            "text": button.text,
            "class": button.button_class.as_str(),
            "confirmation": button.confirmation_prompt,
            "disabled": button.disabled,
            "reason": button.disabled_reason,
            "error": button.error,
            "press_url": format!("{}buttons/{}/", object_url(reference), form_urlencoded::byte_serialize(button.name.as_bytes()).collect::<String>()),
        });
        match button.group_name {
            None => ungrouped.push(shown),
            Some(group) => match groups.iter_mut().find(|(name, _)| *name == group) {
                Some((_, members)) => members.push(shown),
                None => groups.push((group, vec![shown])),
            },
        }
    }
    let groups = groups.into_iter().map(|(name, buttons)| json!({"name": name, "buttons": buttons})).collect();
    (ungrouped, groups)
}

pub(crate) async fn detail<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path((content_type, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let reference = reference(&content_type, &id)?;
    visitor.require(&object_permission(&reference, "view"))?;
    let object = state.store.get_object(&reference).await?;
    let changes = state.store.changes_for_object(&reference, CHANGES_SHOWN + 1).await?;
    if object.is_none() && changes.is_empty() {
        return Err(PageError::not_found("object", &reference));
    }
    let (ungrouped, groups) = match &object {
        Some(object) => lay_out(buttons_for(&*state.store, object, &visitor.user).await?, &reference),
        None => (Vec::new(), Vec::new()),
    };
    let more = changes.len() > CHANGES_SHOWN;
    let changes: Vec<Value> = changes.iter().take(CHANGES_SHOWN).map(change_row).collect();
    let data: BTreeMap<&String, String> = object
        .as_ref()
        .map(|object| object.data().iter().map(|(field, value)| (field, display_value(value))).collect())
        .unwrap_or_default();
    let repr = object.as_ref().map_or_else(|| reference.id().to_owned(), |object| object.repr().to_owned());
    Ok(page(
        &visitor,
        "object.html",
        json!({
            "title": repr,
            "content_type": reference.content_type().as_str(),
            "id": reference.id(),
            "exists": object.is_some(),
            "data": data,
            "ungrouped": ungrouped,
            "groups": groups,
            "changes": changes,
            "more_changes": more,
            "changes_url": format!("/changes/?changed_object_type={}&changed_object_id={}", reference.content_type(), form_urlencoded::byte_serialize(reference.id().as_bytes()).collect::<String>()),
        }),
    ))
}

/// A value as a cell shows it: strings bare, the rest as JSON.
pub(crate) fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// Without JavaScript, a button that asks for confirmation links here: the prompt, Confirm and
/// Cancel.
pub(crate) async fn confirm_press<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path((content_type, id, button)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let reference = reference(&content_type, &id)?;
    let object = state.store.get_object(&reference).await?.ok_or_else(|| PageError::not_found("object", &reference))?;
    let stored = state.store.get_button(&button).await?.ok_or_else(|| PageError::not_found("job button", &button))?;
    Ok(page(
        &visitor,
        "confirm_press.html",
        json!({
            "title": "Confirm",
            "prompt": stored.confirmation_prompt(&object),
            "press_url": format!("{}buttons/{}/", object_url(&reference), form_urlencoded::byte_serialize(button.as_bytes()).collect::<String>()),
            "object_url": object_url(&reference),
        }),
    ))
}

/// Pressing a button: like Nautobot, back to the object's page with "Job enqueued" and a link to
/// the result, or with the refusal in the API's words.
pub(crate) async fn press<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path((content_type, id, button)): Path<(String, String, String)>,
    posted: Posted,
) -> Result<Response, PageError> {
    let reference = reference(&content_type, &id)?;
    let back = object_url(&reference);
    let flash = match press_button(&*state.store, &posted.visitor.user, &button, &reference).await {
        Ok(run) => {
            Flash::success("Job enqueued.").with_link("Click here for the results.", format!("/results/{}/", run.0))
        }
        Err(jobhooks_dispatch::PressError::Store(error)) if matches!(error, jobhooks_model::StoreError::Storage(_)) => {
            return Err(error.into());
        }
        Err(refused) => Flash::error(crate::ApiError::from(refused).to_string()),
    };
    Ok(redirect_with(&back, flash))
}
