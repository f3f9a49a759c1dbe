//! Application objects: read, write through a change session (so hooks run), and their buttons.

use super::*;

/// The object a path names.
pub(crate) fn object_at(content_type: &str, id: &str) -> Result<ObjectRef, ApiError> {
    ContentType::new(content_type)
        .and_then(|content_type| ObjectRef::new(content_type, id))
        .map_err(|error| ApiError::BadRequest(error.to_string()))
}

/// Permission names of an object type: `dcim.device` -> `dcim.view_device`.
pub(crate) fn object_permission(object: &ObjectRef, action: &str) -> String {
    let content_type = object.content_type().as_str();
    let (app, model) = content_type.split_once('.').unwrap_or((content_type, content_type));
    format!("{app}.{action}_{model}")
}

#[utoipa::path(
    get,
    path = "/api/objects/{content_type}/{id}/",
    tag = "objects",
    summary = "One object (the type's `view` permission)",
    params(ObjectPath),
    responses((status = 200, body = ApplicationObject), Refusals),
)]
pub(crate) async fn get_object<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path((content_type, id)): Path<(String, String)>,
) -> Answer<Json<Object>> {
    let object = object_at(&content_type, &id)?;
    caller.require(&object_permission(&object, "view"))?;
    state.store.get_object(&object).await?.map(Json).ok_or_else(|| ApiError::missing("object", &object))
}

/// An object write's body: the data, and the text shown for it (default: the stored one, else
/// the id).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectBody {
    repr: Option<String>,
    data: serde_json::Map<String, Value>,
}

/// What an object write answers: the object as written (`null` after a delete), the change it
/// recorded, and the hook runs that change queued.
#[derive(Serialize, ToSchema)]
pub(crate) struct ObjectWritten {
    #[schema(value_type = Option<ApplicationObject>)]
    object: Option<Object>,
    change: Option<ChangeId>,
    runs: Vec<RunId>,
}

/// Writes through a change session in a `web` change context with the caller as user, one per
/// request, so that API writes trigger hooks exactly as an application's do. `None` deletes.
pub(crate) async fn write_object<S: Storage + 'static>(
    state: &AppState<S>,
    caller: &Caller,
    object: ObjectRef,
    written: Option<Object>,
) -> Answer<ObjectWritten> {
    let mut session = state.store.session(ChangeContext::web(caller.0.username.clone()));
    match &written {
        Some(object) => session.save(object.clone()).await?,
        None => {
            session.delete(&object).await?;
        }
    }
    let receipt = session.commit().await?;
    Ok(ObjectWritten { object: written, change: receipt.changes.first().copied(), runs: receipt.runs })
}

#[utoipa::path(
    put,
    path = "/api/objects/{content_type}/{id}/",
    tag = "objects",
    summary = "Create or replace an object's data, as a web change that triggers hooks",
    params(ObjectPath),
    request_body = ObjectBody,
    responses((status = 200, body = ObjectWritten), Refusals),
)]
pub(crate) async fn put_object<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path((content_type, id)): Path<(String, String)>,
    Body(body): Body<ObjectBody>,
) -> Answer<Json<ObjectWritten>> {
    let reference = object_at(&content_type, &id)?;
    let existing = state.store.get_object(&reference).await?;
    caller.require(&object_permission(&reference, if existing.is_some() { "change" } else { "add" }))?;
    let repr = body.repr.or_else(|| existing.map(|object| object.repr().to_owned())).unwrap_or_else(|| id.clone());
    let object = Object::new(reference.clone(), repr, Value::Object(body.data))
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    Ok(Json(write_object(&state, &caller, reference, Some(object)).await?))
}

/// A partial object write: data keys given replace the stored ones, the others stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectPatch {
    repr: Option<String>,
    #[serde(default)]
    data: serde_json::Map<String, Value>,
}

#[utoipa::path(
    patch,
    path = "/api/objects/{content_type}/{id}/",
    tag = "objects",
    summary = "Merge data keys into an object, as a web change that triggers hooks",
    params(ObjectPath),
    request_body = ObjectPatch,
    responses((status = 200, body = ObjectWritten), Refusals),
)]
pub(crate) async fn patch_object<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path((content_type, id)): Path<(String, String)>,
    Body(patch): Body<ObjectPatch>,
) -> Answer<Json<ObjectWritten>> {
    let reference = object_at(&content_type, &id)?;
    caller.require(&object_permission(&reference, "change"))?;
    let existing = state.store.get_object(&reference).await?.ok_or_else(|| ApiError::missing("object", &reference))?;
    let mut data = existing.data().clone();
    data.extend(patch.data);
    let repr = patch.repr.unwrap_or_else(|| existing.repr().to_owned());
    let object = Object::new(reference.clone(), repr, Value::Object(data))
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    Ok(Json(write_object(&state, &caller, reference, Some(object)).await?))
}

#[utoipa::path(
    delete,
    path = "/api/objects/{content_type}/{id}/",
    tag = "objects",
    summary = "Delete an object, as a web change that triggers hooks",
    params(ObjectPath),
    responses((status = 200, body = ObjectWritten), Refusals),
)]
pub(crate) async fn delete_object<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path((content_type, id)): Path<(String, String)>,
) -> Answer<Json<ObjectWritten>> {
    let reference = object_at(&content_type, &id)?;
    caller.require(&object_permission(&reference, "delete"))?;
    if state.store.get_object(&reference).await?.is_none() {
        return Err(ApiError::missing("object", &reference));
    }
    Ok(Json(write_object(&state, &caller, reference, None).await?))
}

#[utoipa::path(
    get,
    path = "/api/objects/{content_type}/{id}/buttons/",
    tag = "objects",
    summary = "The buttons an object shows the caller",
    params(ObjectPath),
    responses((status = 200, body = Vec<RenderedButton>), Refusals),
)]
pub(crate) async fn object_buttons<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path((content_type, id)): Path<(String, String)>,
) -> Answer<Json<Vec<RenderedButton>>> {
    let reference = object_at(&content_type, &id)?;
    caller.require(&object_permission(&reference, "view"))?;
    let object = state.store.get_object(&reference).await?.ok_or_else(|| ApiError::missing("object", &reference))?;
    Ok(Json(buttons_for(&*state.store, &object, &caller.0).await?))
}
