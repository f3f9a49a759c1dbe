//! The routes and their handlers: each checks the caller's permission, calls the store's ports
//! (or the dispatcher's rules for runs), and answers JSON.

use std::time::Duration;

use axum::extract::{FromRequest, OriginalUri, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jobhooks_dispatch::{RenderedButton, buttons_for, press, run_job_on};
use jobhooks_model::ports::{OpenSession, QueueDepth, ResultFilter, Storage};
use jobhooks_model::{
    ApiToken, ChangeContext, ChangeId, ContentType, JobButton, JobButtonPatch, JobHook, JobHookPatch, JobRecord,
    JobResult, JobStatus, Object, ObjectChange, ObjectRef, OffsetDateTime, RUN_JOB_PERMISSION, RunId, User,
    ValidationErrors,
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
use crate::{ApiError, AppState, Caller, Page, PageQuery};

type Answer<T> = Result<T, ApiError>;

/// The model's `Object` under another name, for the OpenAPI attributes: utoipa reads a type named
/// `Object` as any JSON object.
type ApplicationObject = Object;

/// A JSON body; a body that is not the endpoint's JSON is refused with a JSON error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            // JSON of the wrong shape is a 400, as Django REST framework answers it (axum: 422).
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    other => other,
                };
                Err(ApiError::Body { status, detail: rejection.body_text() })
            }
        }
    }
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
    paths(status, backup, export, prune, users, create_user, list_tokens, create_token, get_token, delete_token, list_hooks, create_hook, get_hook, patch_hook, put_hook, delete_hook, list_buttons, create_button, get_button, patch_button, put_button, delete_button, press_button, list_jobs, restore_jobs, get_job, patch_job, run_job, list_results, get_result, replay_result, list_changes, get_change, get_object, put_object, patch_object, delete_object, object_buttons, openapi_document, crate::metrics::health, crate::metrics::ready, crate::metrics::metrics),
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

/// A hook's or a button's name in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct NamePath {
    /// The name.
    name: String,
}

/// A change's or a result's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct IdPath {
    /// The id.
    id: u64,
}

/// A job's class path in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct JobPath {
    /// The job's class path.
    class_path: String,
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
struct TokenAuthentication;

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
async fn openapi_document() -> impl axum::response::IntoResponse {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(
        DOCUMENT
            .get_or_init(|| serde_json::to_value(<ApiDoc as utoipa::OpenApi>::openapi()).unwrap_or(Value::Null))
            .clone(),
    )
}

pub fn routes<S: Storage + 'static>() -> Router<AppState<S>> {
    Router::new()
        .route("/api/docs/openapi.json", get(openapi_document))
        .route("/api/status/", get(status::<S>))
        .route("/api/backup/", post(backup::<S>))
        .route("/api/export/", get(export::<S>))
        .route("/api/prune/", post(prune::<S>))
        .route("/api/users/", get(users::<S>).post(create_user::<S>))
        .route("/api/users/tokens/", get(list_tokens::<S>).post(create_token::<S>))
        .route("/api/users/tokens/{id}/", get(get_token::<S>).delete(delete_token::<S>))
        .route("/api/extras/job-hooks/", get(list_hooks::<S>).post(create_hook::<S>))
        .route(
            "/api/extras/job-hooks/{name}/",
            get(get_hook::<S>).patch(patch_hook::<S>).put(put_hook::<S>).delete(delete_hook::<S>),
        )
        .route("/api/extras/job-buttons/", get(list_buttons::<S>).post(create_button::<S>))
        .route(
            "/api/extras/job-buttons/{name}/",
            get(get_button::<S>).patch(patch_button::<S>).put(put_button::<S>).delete(delete_button::<S>),
        )
        .route("/api/extras/job-buttons/{name}/press/", post(press_button::<S>))
        .route("/api/extras/object-changes/", get(list_changes::<S>))
        .route("/api/extras/object-changes/{id}/", get(get_change::<S>))
        .route(
            "/api/objects/{content_type}/{id}/",
            get(get_object::<S>).put(put_object::<S>).patch(patch_object::<S>).delete(delete_object::<S>),
        )
        .route("/api/objects/{content_type}/{id}/buttons/", get(object_buttons::<S>))
        .route("/api/extras/jobs/", get(list_jobs::<S>))
        .route("/api/extras/jobs/restore/", post(restore_jobs::<S>))
        .route("/api/extras/jobs/{class_path}/", get(get_job::<S>).patch(patch_job::<S>))
        .route("/api/extras/jobs/{class_path}/run/", post(run_job::<S>))
        .route("/api/extras/job-results/", get(list_results::<S>))
        .route("/api/extras/job-results/{id}/", get(get_result::<S>))
        .route("/api/extras/job-results/{id}/replay/", post(replay_result::<S>))
}

/// What `GET /api/status/` answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct ServerStatus {
    /// This server's version.
    #[serde(rename = "jobhooks-version")]
    version: &'static str,
    /// Whose token the request carried.
    user: String,
    /// The queue's runs by state.
    queue: QueueDepth,
}

#[utoipa::path(
    get,
    path = "/api/status/",
    tag = "status",
    summary = "The server's version, the caller and the queue",
    responses((status = 200, body = ServerStatus), Refusals),
)]
async fn status<S: Storage + 'static>(State(state): State<AppState<S>>, caller: Caller) -> Answer<Json<ServerStatus>> {
    let queue = state.store.depth().await?;
    Ok(Json(ServerStatus { version: env!("CARGO_PKG_VERSION"), user: caller.0.username, queue }))
}

#[utoipa::path(
    get,
    path = "/api/users/",
    tag = "users",
    summary = "List users (superusers)",
    params(PageQuery),
    responses((status = 200, body = Page<User>), Refusals),
)]
async fn users<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Params(page): Params<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<jobhooks_model::User>>> {
    caller.require_superuser()?;
    Ok(Json(Page::of(state.store.list_users().await?, page, &uri)))
}

/// Where `POST /api/backup/` copies the store: a new or empty directory on the server's machine.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupTarget {
    path: String,
}

/// What a backup copied, and where.
#[derive(Serialize, ToSchema)]
pub(crate) struct BackupDone {
    path: String,
    records: u64,
    bytes: u64,
}

#[utoipa::path(
    post,
    path = "/api/backup/",
    tag = "operations",
    summary = "Copy the store, while it serves, into a new directory under the server's backup directory (superusers; sled only)",
    request_body = BackupTarget,
    responses((status = 201, body = BackupDone), Refusals),
)]
async fn backup<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(target): Body<BackupTarget>,
) -> Answer<(StatusCode, Json<BackupDone>)> {
    caller.require_superuser()?;
    if target.path.is_empty() {
        return Err(field_error("path", "This field may not be blank.".into()));
    }
    let backup = state.backup.as_ref().ok_or_else(|| {
        ApiError::Conflict(
            "this store is not backed up through jobhooks: back PostgreSQL up with its own tools (pg_dump)".into(),
        )
    })?;
    let path = std::path::Path::new(&target.path);
    within_backup_dir(state.backup_dir.as_deref(), path)?;
    let report = backup.backup_to(path).await?;
    tracing::info!(path = %target.path, records = report.records, "backed the store up");
    Ok((StatusCode::CREATED, Json(BackupDone { path: target.path, records: report.records, bytes: report.bytes })))
}

/// Refuses a backup target that is not under `dir` (symbolic links and `..` resolved), or any
/// target when no directory is set.
fn within_backup_dir(dir: Option<&std::path::Path>, target: &std::path::Path) -> Result<(), ApiError> {
    let dir = dir.ok_or_else(|| {
        ApiError::Conflict(
            "backups through the API are written only under the server's backup directory, and none is set: \
             set server.backup_dir (JOBHOOKS_SERVER_BACKUP_DIR), or run `jobhooks backup` where the store is"
                .into(),
        )
    })?;
    let outside = || field_error("path", format!("backups are written only under {}", dir.display()));
    if !target.is_absolute() {
        return Err(field_error("path", "give an absolute path".to_owned()));
    }
    let parent = target.parent().ok_or_else(outside)?;
    let (Ok(parent), Ok(dir)) = (std::fs::canonicalize(parent), std::fs::canonicalize(dir)) else {
        return Err(outside());
    };
    if parent.starts_with(&dir) && target.file_name().is_some_and(|name| name != "..") {
        Ok(())
    } else {
        Err(outside())
    }
}

#[utoipa::path(
    get,
    path = "/api/export/",
    tag = "operations",
    summary = "Every record of the store as JSON lines, for `jobhooks import` (superusers)",
    responses((status = 200, content_type = "application/x-ndjson", body = String), Refusals),
)]
async fn export<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
) -> Answer<([(axum::http::HeaderName, &'static str); 1], String)> {
    caller.require_superuser()?;
    let now = OffsetDateTime::now_utc();
    let snapshot = jobhooks_model::transfer::export(&*state.store, now).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], snapshot.json_lines(now)))
}

/// How long `POST /api/prune/` keeps what it may remove.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PruneAfter {
    /// Days to keep finished results.
    results_days: Option<u32>,
    /// Days to keep changes (an object's latest change, and changes with kept results, stay).
    changes_days: Option<u32>,
}

#[utoipa::path(
    post,
    path = "/api/prune/",
    tag = "operations",
    summary = "Remove finished results and old changes now, as retention would (superusers)",
    request_body = PruneAfter,
    responses((status = 200, body = jobhooks_model::ports::PruneReport), Refusals),
)]
async fn prune<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(after): Body<PruneAfter>,
) -> Answer<Json<jobhooks_model::ports::PruneReport>> {
    caller.require_superuser()?;
    let retention = jobhooks_model::ports::Retention::from_days(after.results_days, after.changes_days);
    if retention == jobhooks_model::ports::Retention::default() {
        let mut errors = ValidationErrors::default();
        errors.add(ValidationErrors::NON_FIELD, "Give results_days, changes_days or both.");
        return Err(ApiError::Validation(errors));
    }
    Ok(Json(state.store.prune(&retention, OffsetDateTime::now_utc()).await?))
}

/// A user to add or replace, as `POST /api/users/` takes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    username: String,
    #[serde(default)]
    is_superuser: bool,
    #[serde(default)]
    permissions: Vec<jobhooks_model::Permission>,
}

#[utoipa::path(
    post,
    path = "/api/users/",
    tag = "users",
    summary = "Add or replace a user (superusers)",
    request_body = NewUser,
    responses((status = 201, body = User), Refusals),
)]
async fn create_user<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(new): Body<NewUser>,
) -> Answer<(StatusCode, Json<jobhooks_model::User>)> {
    caller.require_superuser()?;
    let mut user =
        jobhooks_model::User::new(new.username).map_err(|error| field_error("username", error.to_string()))?;
    user.is_superuser = new.is_superuser;
    user.permissions = new.permissions;
    state.store.put_user(user.clone()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Whose tokens a caller may manage: its own, or anyone's for a superuser.
fn may_manage_tokens_of(caller: &Caller, user: &str) -> Result<(), ApiError> {
    if caller.0.is_superuser || caller.0.username == user {
        Ok(())
    } else {
        Err(ApiError::Refused(
            "You do not have permission to perform this action: only superusers may manage another user's tokens."
                .into(),
        ))
    }
}

/// A token as the API shows it: never its hash, and its key only in the answer that issued it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ShownToken {
    /// The token's public name, the middle of its key.
    id: String,
    /// The user it acts as.
    user: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    description: String,
    /// The key (`Authorization: Token <key>`), shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

fn shown_token(token: &ApiToken) -> ShownToken {
    ShownToken {
        id: token.id.clone(),
        user: token.user.clone(),
        created: token.created,
        expires: token.expires,
        description: token.description.clone(),
        key: None,
    }
}

/// The filter of the tokens list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TokenQuery {
    user: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/users/tokens/",
    tag = "users",
    summary = "List API tokens: the caller's own, or with `user` (superusers: every token)",
    params(TokenQuery),
    responses((status = 200, body = Page<ShownToken>), Refusals),
)]
async fn list_tokens<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Params(query): Params<TokenQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<ShownToken>>> {
    // Without a filter a superuser sees every token, anyone else their own.
    let user = match query.user {
        Some(user) => Some(user),
        None if caller.0.is_superuser => None,
        None => Some(caller.0.username.clone()),
    };
    if let Some(user) = &user {
        may_manage_tokens_of(&caller, user)?;
    }
    let tokens = state.store.list_tokens(user.as_deref()).await?.iter().map(shown_token).collect();
    Ok(Json(Page::of(tokens, PageQuery { limit: query.limit, offset: query.offset }, &uri)))
}

/// A token to issue, as `POST /api/users/tokens/` takes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// Whose (default: the caller's).
    user: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    #[serde(default)]
    description: String,
}

#[utoipa::path(
    post,
    path = "/api/users/tokens/",
    tag = "users",
    summary = "Issue a token; the answer carries its key, once",
    request_body = NewToken,
    responses((status = 201, body = ShownToken), Refusals),
)]
async fn create_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(new): Body<NewToken>,
) -> Answer<(StatusCode, Json<ShownToken>)> {
    let user = new.user.unwrap_or_else(|| caller.0.username.clone());
    may_manage_tokens_of(&caller, &user)?;
    if state.store.get_user(&user).await?.is_none() {
        return Err(field_error("user", format!("user `{user}` does not exist")));
    }
    let now = jobhooks_model::to_microseconds(OffsetDateTime::now_utc());
    if new.expires.is_some_and(|expires| expires <= now) {
        return Err(field_error("expires", "a token must expire in the future".to_owned()));
    }
    let issued = ApiToken::issue(&user, now, new.expires, new.description);
    state.store.add_token(issued.token.clone()).await?;
    let mut shown = shown_token(&issued.token);
    shown.key = Some(issued.key);
    Ok((StatusCode::CREATED, Json(shown)))
}

#[utoipa::path(
    get,
    path = "/api/users/tokens/{id}/",
    tag = "users",
    summary = "One token",
    params(TokenPath),
    responses((status = 200, body = ShownToken), Refusals),
)]
async fn get_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<Json<ShownToken>> {
    let token = state.store.get_token(&id).await?.ok_or_else(|| ApiError::missing("token", &id))?;
    may_manage_tokens_of(&caller, &token.user)?;
    Ok(Json(shown_token(&token)))
}

#[utoipa::path(
    delete,
    path = "/api/users/tokens/{id}/",
    tag = "users",
    summary = "Revoke a token",
    params(TokenPath),
    responses((status = 204, description = "Revoked"), Refusals),
)]
async fn delete_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<StatusCode> {
    let token = state.store.get_token(&id).await?.ok_or_else(|| ApiError::missing("token", &id))?;
    may_manage_tokens_of(&caller, &token.user)?;
    state.store.delete_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/extras/job-hooks/",
    tag = "job hooks",
    summary = "List job hooks",
    params(PageQuery),
    responses((status = 200, body = Page<JobHook>), Refusals),
)]
async fn list_hooks<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobHook>,
    Params(page): Params<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobHook>>> {
    Ok(Json(Page::of(state.store.list_hooks().await?, page, &uri)))
}

#[utoipa::path(
    post,
    path = "/api/extras/job-hooks/",
    tag = "job hooks",
    summary = "Create a job hook",
    request_body = JobHook,
    responses((status = 201, body = JobHook), Refusals),
)]
async fn create_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<AddJobHook>,
    Body(hook): Body<JobHook>,
) -> Answer<(StatusCode, Json<JobHook>)> {
    Ok((StatusCode::CREATED, Json(state.store.create_hook(hook).await?)))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-hooks/{name}/",
    tag = "job hooks",
    summary = "One job hook",
    params(NamePath),
    responses((status = 200, body = JobHook), Refusals),
)]
async fn get_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobHook>,
    Path(name): Path<String>,
) -> Answer<Json<JobHook>> {
    state.store.get_hook(&name).await?.map(Json).ok_or_else(|| ApiError::missing("job hook", &name))
}

#[utoipa::path(
    patch,
    path = "/api/extras/job-hooks/{name}/",
    tag = "job hooks",
    summary = "Change the fields given of a job hook",
    params(NamePath),
    request_body = JobHookPatch,
    responses((status = 200, body = JobHook), Refusals),
)]
async fn patch_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobHook>,
    Path(name): Path<String>,
    Body(patch): Body<JobHookPatch>,
) -> Answer<Json<JobHook>> {
    Ok(Json(state.store.update_hook(&name, patch).await?))
}

#[utoipa::path(
    put,
    path = "/api/extras/job-hooks/{name}/",
    tag = "job hooks",
    summary = "Replace a job hook",
    params(NamePath),
    request_body = JobHook,
    responses((status = 200, body = JobHook), Refusals),
)]
async fn put_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobHook>,
    Path(name): Path<String>,
    Body(hook): Body<JobHook>,
) -> Answer<Json<JobHook>> {
    let patch = JobHookPatch {
        name: Some(hook.name),
        content_types: Some(hook.content_types),
        job: Some(hook.job),
        enabled: Some(hook.enabled),
        type_create: Some(hook.type_create),
        type_update: Some(hook.type_update),
        type_delete: Some(hook.type_delete),
    };
    Ok(Json(state.store.update_hook(&name, patch).await?))
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-hooks/{name}/",
    tag = "job hooks",
    summary = "Delete a job hook",
    params(NamePath),
    responses((status = 204, description = "Deleted"), Refusals),
)]
async fn delete_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobHook>,
    Path(name): Path<String>,
) -> Answer<StatusCode> {
    state.store.delete_hook(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/extras/jobs/",
    tag = "jobs",
    summary = "List jobs",
    params(PageQuery),
    responses((status = 200, body = Page<JobRecord>), Refusals),
)]
async fn list_jobs<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJob>,
    Params(page): Params<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobRecord>>> {
    Ok(Json(Page::of(state.store.list_jobs().await?, page, &uri)))
}

#[utoipa::path(
    get,
    path = "/api/extras/jobs/{class_path}/",
    tag = "jobs",
    summary = "One job",
    params(JobPath),
    responses((status = 200, body = JobRecord), Refusals),
)]
async fn get_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJob>,
    Path(class_path): Path<String>,
) -> Answer<Json<JobRecord>> {
    state.store.get_job(&class_path).await?.map(Json).ok_or_else(|| ApiError::missing("job", &class_path))
}

/// The fields of a job the API may change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobChange {
    enabled: bool,
}

#[utoipa::path(
    patch,
    path = "/api/extras/jobs/{class_path}/",
    tag = "jobs",
    summary = "Enable or disable a job",
    params(JobPath),
    request_body = JobChange,
    responses((status = 200, body = JobRecord), Refusals),
)]
async fn patch_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJob>,
    Path(class_path): Path<String>,
    Body(change): Body<JobChange>,
) -> Answer<Json<JobRecord>> {
    Ok(Json(state.store.set_job_enabled(&class_path, change.enabled).await?))
}

/// Which jobs to restore: every job with something to restore when `jobs` is absent or empty.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobsToRestore {
    #[serde(default)]
    jobs: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/extras/jobs/restore/",
    tag = "jobs",
    summary = "Enable again what a full job sync disabled when it uninstalled jobs, once they are linked again",
    request_body = JobsToRestore,
    responses((status = 200, body = jobhooks_model::JobRestoreReport), Refusals),
)]
async fn restore_jobs<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJob>,
    Body(which): Body<JobsToRestore>,
) -> Answer<Json<jobhooks_model::JobRestoreReport>> {
    Ok(Json(state.store.restore_jobs(&which.jobs).await?))
}

/// Nautobot's job button body: the object the job runs on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunOn {
    object_pk: String,
    object_model_name: String,
}

#[utoipa::path(
    post,
    path = "/api/extras/jobs/{class_path}/run/",
    tag = "jobs",
    summary = "Run a job button receiver on an object, as Nautobot's job buttons do",
    params(JobPath),
    request_body = RunOn,
    responses((status = 201, body = JobRun), Refusals),
)]
async fn run_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(class_path): Path<String>,
    Body(run): Body<RunOn>,
) -> Answer<(StatusCode, Json<JobRun>)> {
    let object = ContentType::new(run.object_model_name.as_str())
        .and_then(|content_type| ObjectRef::new(content_type, run.object_pk.as_str()))
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let run = run_job_on(&*state.store, &caller.0, &class_path, &object).await?;
    let result = state.store.get_result(run).await?.ok_or_else(|| ApiError::missing("job result", run))?;
    Ok((StatusCode::CREATED, Json(JobRun { job_result: result })))
}

/// Presses the button `name` on the body's object as the caller: refused when the button is not
/// offered on the object's type, then for the reasons of the job run endpoint.
#[utoipa::path(
    post,
    path = "/api/extras/job-buttons/{name}/press/",
    tag = "job buttons",
    summary = "Press a button on an object: run its job there as the caller",
    params(NamePath),
    request_body = RunOn,
    responses((status = 201, body = JobRun), Refusals),
)]
async fn press_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(run): Body<RunOn>,
) -> Answer<(StatusCode, Json<JobRun>)> {
    let object = ContentType::new(run.object_model_name.as_str())
        .and_then(|content_type| ObjectRef::new(content_type, run.object_pk.as_str()))
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let run = press(&*state.store, &caller.0, &name, &object).await?;
    let result = state.store.get_result(run).await?.ok_or_else(|| ApiError::missing("job result", run))?;
    Ok((StatusCode::CREATED, Json(JobRun { job_result: result })))
}

/// The filters of the results list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResultQuery {
    job: Option<String>,
    status: Option<String>,
    object_change: Option<u64>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn status_of(text: &str) -> Result<JobStatus, ApiError> {
    serde_json::from_value(Value::String(text.to_ascii_uppercase())).map_err(|_| {
        let mut errors = jobhooks_model::ValidationErrors::default();
        errors.add("status", format!("Select a valid choice. {text} is not one of the available choices."));
        ApiError::Validation(errors)
    })
}

#[utoipa::path(
    get,
    path = "/api/extras/job-results/",
    tag = "job results",
    summary = "List job results, newest first",
    params(ResultQuery),
    responses((status = 200, body = Page<JobResult>), Refusals),
)]
async fn list_results<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobResult>,
    Params(query): Params<ResultQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobResult>>> {
    let page = PageQuery { limit: query.limit, offset: query.offset };
    // The store reads only as far as the page reaches, and counts the rest.
    let filter = ResultFilter {
        job: query.job,
        status: query.status.as_deref().map(status_of).transpose()?,
        change: query.object_change.map(ChangeId),
        limit: Some(page.end()),
    };
    let count = state.store.count_results(&filter).await?;
    let first = state.store.list_results(&filter).await?;
    Ok(Json(Page::window(first, usize::try_from(count).unwrap_or(usize::MAX), page, &uri)))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-results/{id}/",
    tag = "job results",
    summary = "One job result with its log",
    params(IdPath, ResultWait),
    responses((status = 200, body = JobResult), Refusals),
)]
async fn get_result<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobResult>,
    Path(id): Path<u64>,
    Params(wait): Params<ResultWait>,
) -> Answer<Json<JobResult>> {
    let wait = Duration::from_secs(wait.wait.unwrap_or(0).min(MAX_WAIT_SECONDS));
    // A place among the waiters, held until the answer; none is needed to answer at once.
    let _place = if wait.is_zero() { None } else { Some(crate::limits::waiter_place(&state)?) };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Read the generation first: a run that ends after the read moves it on.
        let seen = state.store.work_generation();
        let result = state.store.get_result(RunId(id)).await?.ok_or_else(|| ApiError::missing("job result", id))?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if result.status.is_final() || left.is_zero() {
            return Ok(Json(result));
        }
        // Runs ended by this process's dispatcher wake the wait at once; at most a second passes
        // before another process's are seen.
        state.store.wait_for_work(seen, left.min(Duration::from_secs(1))).await;
    }
}

/// The longest `?wait=` a result request may ask for, in seconds.
const MAX_WAIT_SECONDS: u64 = 60;

/// `?wait=SECONDS`: answer once the run has ended, or when the wait is over.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResultWait {
    /// Seconds to wait for the run to end (at most 60; default 0, answer at once).
    wait: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/api/extras/job-results/{id}/replay/",
    tag = "job results",
    summary = "Queue a dead-lettered run again (its own user or a superuser, with extras.run_job for its job); the answer's log needs extras.view_jobresult",
    params(IdPath),
    responses((status = 200, body = JobResult), Refusals),
)]
async fn replay_result<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Answer<Json<JobResult>> {
    let result = state.store.get_result(RunId(id)).await?.ok_or_else(|| ApiError::missing("job result", id))?;
    let own = result.user.as_deref() == Some(caller.0.username.as_str());
    if !own && !caller.0.is_superuser {
        return Err(ApiError::Refused(format!("Only the user who ran run {id}, or a superuser, may replay it.")));
    }
    if !caller.0.can_run_job(&result.job) {
        return Err(ApiError::Forbidden(format!("{RUN_JOB_PERMISSION} for {}", result.job)));
    }
    state.store.replay(RunId(id)).await?;
    let mut replayed = state.store.get_result(RunId(id)).await?.ok_or_else(|| ApiError::missing("job result", id))?;
    // The answer holds only what the caller may view: the log needs the permission to view results.
    if !caller.0.has_perm("extras.view_jobresult") {
        replayed.logs.clear();
    }
    Ok(Json(replayed))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-buttons/",
    tag = "job buttons",
    summary = "List job buttons",
    params(PageQuery),
    responses((status = 200, body = Page<JobButton>), Refusals),
)]
async fn list_buttons<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobButton>,
    Params(page): Params<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobButton>>> {
    Ok(Json(Page::of(state.store.list_buttons().await?, page, &uri)))
}

#[utoipa::path(
    post,
    path = "/api/extras/job-buttons/",
    tag = "job buttons",
    summary = "Create a job button",
    request_body = JobButton,
    responses((status = 201, body = JobButton), Refusals),
)]
async fn create_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<AddJobButton>,
    Body(button): Body<JobButton>,
) -> Answer<(StatusCode, Json<JobButton>)> {
    Ok((StatusCode::CREATED, Json(state.store.create_button(button).await?)))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-buttons/{name}/",
    tag = "job buttons",
    summary = "One job button",
    params(NamePath),
    responses((status = 200, body = JobButton), Refusals),
)]
async fn get_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobButton>,
    Path(name): Path<String>,
) -> Answer<Json<JobButton>> {
    state.store.get_button(&name).await?.map(Json).ok_or_else(|| ApiError::missing("job button", &name))
}

#[utoipa::path(
    patch,
    path = "/api/extras/job-buttons/{name}/",
    tag = "job buttons",
    summary = "Change the fields given of a job button",
    params(NamePath),
    request_body = JobButtonPatch,
    responses((status = 200, body = JobButton), Refusals),
)]
async fn patch_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobButton>,
    Path(name): Path<String>,
    Body(patch): Body<JobButtonPatch>,
) -> Answer<Json<JobButton>> {
    Ok(Json(state.store.update_button(&name, patch).await?))
}

#[utoipa::path(
    put,
    path = "/api/extras/job-buttons/{name}/",
    tag = "job buttons",
    summary = "Replace a job button",
    params(NamePath),
    request_body = JobButton,
    responses((status = 200, body = JobButton), Refusals),
)]
async fn put_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobButton>,
    Path(name): Path<String>,
    Body(button): Body<JobButton>,
) -> Answer<Json<JobButton>> {
    let patch = JobButtonPatch {
        name: Some(button.name),
        content_types: Some(button.content_types),
        text: Some(button.text),
        job: Some(button.job),
        weight: Some(button.weight),
        group_name: Some(button.group_name),
        button_class: Some(button.button_class),
        confirmation: Some(button.confirmation),
        enabled: Some(button.enabled),
    };
    Ok(Json(state.store.update_button(&name, patch).await?))
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-buttons/{name}/",
    tag = "job buttons",
    summary = "Delete a job button",
    params(NamePath),
    responses((status = 204, description = "Deleted"), Refusals),
)]
async fn delete_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobButton>,
    Path(name): Path<String>,
) -> Answer<StatusCode> {
    state.store.delete_button(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The filters of the changes list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangeQuery {
    changed_object_type: Option<String>,
    changed_object_id: Option<String>,
    request_id: Option<Uuid>,
    limit: Option<usize>,
    offset: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/extras/object-changes/",
    tag = "object changes",
    summary = "List object changes, newest first",
    params(ChangeQuery),
    responses((status = 200, body = Page<ObjectChange>), Refusals),
)]
async fn list_changes<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewObjectChange>,
    Params(query): Params<ChangeQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<ObjectChange>>> {
    let content_type = query
        .changed_object_type
        .as_deref()
        .map(ContentType::new)
        .transpose()
        .map_err(|error| field_error("changed_object_type", error.to_string()))?;
    let page = PageQuery { limit: query.limit, offset: query.offset };
    if content_type.is_none() && query.changed_object_id.is_none() && query.request_id.is_none() {
        // The whole log: the store reads only as far as the page reaches, newest first.
        let count = usize::try_from(state.store.count_changes().await?).unwrap_or(usize::MAX);
        let first = state.store.latest_changes(page.end()).await?;
        return Ok(Json(Page::window(first, count, page, &uri)));
    }
    let mut changes = match (&content_type, &query.changed_object_id, query.request_id) {
        (_, _, Some(request)) => state.store.changes_for_request(request).await?,
        (Some(content_type), Some(id), None) => {
            let object = ObjectRef::new(content_type.clone(), id.as_str())
                .map_err(|error| field_error("changed_object_id", error.to_string()))?;
            state.store.changes_for_object(&object, usize::MAX).await?
        }
        _ => {
            let far = OffsetDateTime::now_utc() + std::time::Duration::from_secs(366 * 86_400);
            state.store.changes_between(OffsetDateTime::UNIX_EPOCH, far, usize::MAX).await?
        }
    };
    changes.retain(|change| {
        content_type.as_ref().is_none_or(|content_type| &change.changed_object_type == content_type)
            && query.changed_object_id.as_ref().is_none_or(|id| &change.changed_object_id == id)
    });
    // Newest first, as Nautobot lists them.
    changes.sort_by_key(|change| std::cmp::Reverse(change.id.0));
    Ok(Json(Page::of(changes, page, &uri)))
}

fn field_error(field: &str, message: String) -> ApiError {
    let mut errors = jobhooks_model::ValidationErrors::default();
    errors.add(field, message);
    ApiError::Validation(errors)
}

/// A change with its snapshots, as `GET /api/extras/object-changes/{id}/` shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChangeWithSnapshots {
    #[serde(flatten)]
    change: ObjectChange,
    /// `get_snapshots()`: `prechange`, `postchange` and their `differences` (`added`, `removed`).
    #[schema(value_type = Object)]
    snapshots: Value,
}

#[utoipa::path(
    get,
    path = "/api/extras/object-changes/{id}/",
    tag = "object changes",
    summary = "One object change with its snapshots",
    params(IdPath),
    responses((status = 200, body = ChangeWithSnapshots), Refusals),
)]
async fn get_change<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewObjectChange>,
    Path(id): Path<u64>,
) -> Answer<Json<ChangeWithSnapshots>> {
    let change = state.store.get_change(ChangeId(id)).await?.ok_or_else(|| ApiError::missing("change", id))?;
    let snapshots = serde_json::to_value(change.get_snapshots()).unwrap_or(Value::Null);
    Ok(Json(ChangeWithSnapshots { change, snapshots }))
}

/// The object a path names.
fn object_at(content_type: &str, id: &str) -> Result<ObjectRef, ApiError> {
    ContentType::new(content_type)
        .and_then(|content_type| ObjectRef::new(content_type, id))
        .map_err(|error| ApiError::BadRequest(error.to_string()))
}

/// Permission names of an object type: `dcim.device` -> `dcim.view_device`.
fn object_permission(object: &ObjectRef, action: &str) -> String {
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
async fn get_object<S: Storage + 'static>(
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

/// What running a job on an object answers: the queued run's result.
#[derive(Serialize, ToSchema)]
pub(crate) struct JobRun {
    job_result: JobResult,
}

/// Writes through a change session in a `web` change context with the caller as user, one per
/// request, so that API writes trigger hooks exactly as an application's do. `None` deletes.
async fn write_object<S: Storage + 'static>(
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
async fn put_object<S: Storage + 'static>(
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
async fn patch_object<S: Storage + 'static>(
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
async fn delete_object<S: Storage + 'static>(
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
async fn object_buttons<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path((content_type, id)): Path<(String, String)>,
) -> Answer<Json<Vec<RenderedButton>>> {
    let reference = object_at(&content_type, &id)?;
    caller.require(&object_permission(&reference, "view"))?;
    let object = state.store.get_object(&reference).await?.ok_or_else(|| ApiError::missing("object", &reference))?;
    Ok(Json(buttons_for(&*state.store, &object, &caller.0).await?))
}
