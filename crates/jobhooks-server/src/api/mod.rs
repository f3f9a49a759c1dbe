//! The routes and their handlers: each checks the caller's permission, calls the store's ports
//! (or the dispatcher's rules for runs), and answers JSON.

mod buttons;
mod changes;
mod hooks;
mod ingest;
mod jobs;
mod logins;
mod objects;
mod operations;
mod query;
mod results;
mod users;

pub(crate) use buttons::*;
pub(crate) use changes::*;
pub(crate) use hooks::*;
pub(crate) use ingest::*;
pub(crate) use jobs::*;
pub(crate) use logins::*;
pub(crate) use objects::*;
pub(crate) use operations::*;
pub(crate) use query::ListQuery;
pub(crate) use results::*;
pub(crate) use users::*;

use std::time::Duration;

use axum::extract::{FromRequest, OriginalUri, Path, Query, Request, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use jobhooks_dispatch::{RenderedButton, buttons_for, press, run_job_on};
use jobhooks_model::ports::{OpenSession, QueueDepth, ResultFilter, Storage};
use jobhooks_model::{
    ApiToken, ChangeContext, ChangeId, ContentType, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobRecord,
    JobResult, JobStatus, Object, ObjectRef, OffsetDateTime, RUN_JOB_PERMISSION, RunId, User, ValidationErrors,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{
    AddJobButton, AddJobHook, Allowed, ChangeJob, ChangeJobButton, ChangeJobHook, DeleteJobButton, DeleteJobHook,
    ViewJob, ViewJobButton, ViewJobHook, ViewJobResult, ViewObjectChange,
};
use crate::error::Refusals;
use crate::shapes::{JobButtonView, JobHookView, JobLogView, JobResultView, JobView, ObjectChangeView, UserView};
use crate::{ApiError, AppState, Caller, Page, PageQuery};

pub(crate) type Answer<T> = Result<T, ApiError>;

/// The one task queue jobhooks runs jobs on, as Nautobot names its default queue.
pub(crate) const DEFAULT_QUEUE: &str = "default";

/// The model's `Object` under another name, for the OpenAPI attributes: utoipa reads a type named
/// `Object` as any JSON object.
pub(crate) type ApplicationObject = Object;

/// A JSON body; a body that is not the endpoint's JSON is refused with a JSON error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            // JSON of the wrong shape is a 400, as Django REST framework answers it (axum: 422); a
            // missing field is named with DRF's words.
            Err(rejection) => {
                let text = rejection.body_text();
                if let Some(field) = missing_field(&text) {
                    let mut errors = jobhooks_model::ValidationErrors::default();
                    errors.add(field, "This field is required.");
                    return Err(ApiError::Validation(errors));
                }
                let status = match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    other => other,
                };
                Err(ApiError::Body { status, detail: text })
            }
        }
    }
}

/// The fields of Nautobot's records that are never written: a client may send them back with a
/// record it read, and they are dropped before the body is read.
const READ_ONLY_FIELDS: &[&str] = &[
    "url",
    "display",
    "object_type",
    "created",
    "last_updated",
    "natural_slug",
    "notes_url",
    "custom_fields",
    "computed_fields",
    "relationships",
    "tags",
];

/// A JSON body that writes a record, read as Nautobot's serializers read one: its read-only
/// fields ([`READ_ONLY_FIELDS`]) are ignored, any other unknown field is refused.
pub struct Write<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Write<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Body(mut value) = Body::<Value>::from_request(request, state).await?;
        if let Some(fields) = value.as_object_mut() {
            fields.retain(|field, _| !READ_ONLY_FIELDS.contains(&field.as_str()));
        }
        serde_json::from_value(value).map(Write).map_err(|error| {
            let text = error.to_string();
            match missing_field(&text) {
                Some(field) => field_error(field, "This field is required.".to_owned()),
                None => ApiError::Body { status: StatusCode::BAD_REQUEST, detail: format!("Invalid body: {text}") },
            }
        })
    }
}

/// One record of a bulk delete's body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkId {
    id: Uuid,
}

/// A related record in a write, as Nautobot's serializers take it: its id, its natural key (a
/// job's class path), or the record itself (`{"id": …}`, as a client sends back what it read).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum JobReference {
    /// An id or a class path.
    Key(String),
    /// A nested record: its `id`, else its `class_path`.
    Nested { id: Option<Uuid>, class_path: Option<String> },
}

impl JobReference {
    /// The class path of the job this names: an id is looked up in the store (one that names no
    /// job is refused); a class path that names no job is kept, for the catalog's rules to refuse
    /// with their message.
    pub(crate) async fn class_path<S: Storage>(self, store: &S) -> Answer<String> {
        let by_id = async |id: Uuid| -> Answer<String> {
            let mut filter = jobhooks_model::JobFilter::default();
            filter.ids = vec![id];
            let found = store.find_jobs(&filter).await?.into_iter().next();
            found.map(|job| job.class_path).ok_or_else(|| {
                field_error("job", format!("Related object not found using the provided attribute(s): id={id}"))
            })
        };
        match self {
            JobReference::Key(key) => match key.parse::<Uuid>() {
                Ok(id) => by_id(id).await,
                Err(_) => Ok(key),
            },
            JobReference::Nested { id: Some(id), .. } => by_id(id).await,
            JobReference::Nested { id: None, class_path: Some(class_path) } => Ok(class_path),
            JobReference::Nested { id: None, class_path: None } => {
                Err(field_error("job", "Give the job's id or class path.".to_owned()))
            }
        }
    }
}

/// The field serde names in "missing field `name`".
fn missing_field(text: &str) -> Option<&str> {
    let rest = text.split("missing field `").nth(1)?;
    rest.split('`').next().filter(|field| !field.is_empty())
}

/// A query string; one that does not parse is refused with a JSON error.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(ApiError::Body { status: rejection.status(), detail: rejection.body_text() }),
        }
    }
}

/// The API's OpenAPI document: every route below, from its handler's `#[utoipa::path]`, with the
/// model's types as schemas. Served at `/api/docs/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "jobhooks",
        description = "Nautobot's Job Hooks and Job Buttons: the catalog, objects and their changes, runs and their results. \
            Authenticate with `Authorization: Token <key>` (`jobhooks users token add`). Lists paginate with `limit` and `offset`."
    ),
    paths(api_root, status, backup, export, prune, users, create_user, list_tokens, create_token, provision_token, get_token, delete_token, set_password, list_sessions, end_session, list_user_views, get_user_view, list_hooks, create_hook, get_hook, patch_hook, put_hook, delete_hook, delete_hooks, list_buttons, create_button, get_button, patch_button, put_button, delete_button, delete_buttons, press_button, list_jobs, restore_jobs, get_job, patch_job, run_job, list_results, get_result, result_logs, replay_result, list_logs, get_log, list_changes, get_change, get_object, put_object, patch_object, delete_object, object_buttons, ingest_nautobot, openapi_document, crate::metrics::health, crate::metrics::ready, crate::metrics::metrics),
    components(schemas(ValidationErrors, crate::error::Detail)),
    modifiers(&TokenAuthentication),
    security(("token" = [])),
)]
pub(crate) struct ApiDoc;

/// The path parameters of the endpoints, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct ObjectPath {
    /// The object's type, `app_label.model`.
    content_type: String,
    /// The object's id.
    id: String,
}

/// A hook's or a button's id, or its name, in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct KeyPath {
    /// The id (a UUID), or the name.
    key: String,
}

/// How deep related records nest in the answer.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct DepthQuery {
    /// 0 (the default): related records as `{"id", "object_type", "url"}`; 1 to 10: whole, to that depth.
    depth: Option<u8>,
}

/// A change's or a result's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct IdPath {
    /// The id.
    id: u64,
}

/// A job's id, class path or (when no other job has it) name in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct JobPath {
    /// The job's id (a UUID), class path, or name.
    key: String,
}

/// A log entry's id in the path: `{run}-{index}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct LogPath {
    /// The run's number and the entry's place in its log, `{run}-{index}`.
    id: String,
}

/// A token's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct TokenPath {
    /// The token's id, the middle of its key.
    id: String,
}

/// Declares the `token` security scheme: Nautobot's `Authorization: Token <key>` header.
pub(crate) struct TokenAuthentication;

impl utoipa::Modify for TokenAuthentication {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let header = ApiKeyValue::with_description(
            "Authorization",
            "`Token <key>`, with a key from `jobhooks users token add` or `POST /api/users/tokens/`",
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("token", SecurityScheme::ApiKey(ApiKey::Header(header)));
    }
}

/// The OpenAPI document as JSON, made once.
#[utoipa::path(
    get,
    path = "/api/docs/openapi.json",
    tag = "operations",
    summary = "This document (OpenAPI 3.1); no token needed",
    security(()),
    responses((status = 200, description = "The OpenAPI document")),
)]
pub(crate) async fn openapi_document() -> impl axum::response::IntoResponse {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(
        DOCUMENT
            .get_or_init(|| serde_json::to_value(<ApiDoc as utoipa::OpenApi>::openapi()).unwrap_or(Value::Null))
            .clone(),
    )
}

pub fn routes<S: Storage + 'static>() -> Router<AppState<S>> {
    Router::new()
        .route("/api/", get(api_root))
        .route("/api/docs/openapi.json", get(openapi_document))
        .route("/api/status/", get(status::<S>))
        .route("/api/backup/", post(backup::<S>))
        .route("/api/export/", get(export::<S>))
        .route("/api/prune/", post(prune::<S>))
        .route("/api/users/", get(users::<S>).post(create_user::<S>))
        .route("/api/users/tokens/", get(list_tokens::<S>).post(create_token::<S>))
        .route("/api/users/tokens/provision/", post(provision_token::<S>))
        .route("/api/users/tokens/{id}/", get(get_token::<S>).delete(delete_token::<S>))
        .route("/api/users/sessions/", get(list_sessions::<S>))
        .route("/api/users/sessions/{id}/", axum::routing::delete(end_session::<S>))
        .route("/api/users/{username}/password/", axum::routing::put(set_password::<S>))
        .route("/api/users/users/", get(list_user_views::<S>))
        .route("/api/users/users/{key}/", get(get_user_view::<S>))
        .route("/api/extras/job-hooks/", get(list_hooks::<S>).post(create_hook::<S>).delete(delete_hooks::<S>))
        .route(
            "/api/extras/job-hooks/{key}/",
            get(get_hook::<S>).patch(patch_hook::<S>).put(put_hook::<S>).delete(delete_hook::<S>),
        )
        .route("/api/extras/job-buttons/", get(list_buttons::<S>).post(create_button::<S>).delete(delete_buttons::<S>))
        .route(
            "/api/extras/job-buttons/{key}/",
            get(get_button::<S>).patch(patch_button::<S>).put(put_button::<S>).delete(delete_button::<S>),
        )
        .route("/api/extras/job-buttons/{key}/press/", post(press_button::<S>))
        .route("/api/extras/object-changes/", get(list_changes::<S>))
        .route("/api/extras/object-changes/{id}/", get(get_change::<S>))
        .route(
            "/api/objects/{content_type}/{id}/",
            get(get_object::<S>).put(put_object::<S>).patch(patch_object::<S>).delete(delete_object::<S>),
        )
        .route("/api/objects/{content_type}/{id}/buttons/", get(object_buttons::<S>))
        .route("/api/extras/jobs/", get(list_jobs::<S>))
        .route("/api/extras/jobs/restore/", post(restore_jobs::<S>))
        .route("/api/extras/jobs/{key}/", get(get_job::<S>).patch(patch_job::<S>))
        .route("/api/extras/jobs/{key}/run/", post(run_job::<S>))
        .route("/api/extras/job-results/", get(list_results::<S>))
        .route("/api/extras/job-results/{id}/", get(get_result::<S>))
        .route("/api/extras/job-results/{id}/logs/", get(result_logs::<S>))
        .route("/api/extras/job-results/{id}/replay/", post(replay_result::<S>))
        .route("/api/extras/job-logs/", get(list_logs::<S>))
        .route("/api/extras/job-logs/{id}/", get(get_log::<S>))
        .route("/api/ingest/nautobot/", post(ingest_nautobot::<S>))
}

pub(crate) fn field_error(field: &str, message: String) -> ApiError {
    let mut errors = jobhooks_model::ValidationErrors::default();
    errors.add(field, message);
    ApiError::Validation(errors)
}
