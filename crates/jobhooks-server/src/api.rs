//! The routes and their handlers: each checks the caller's permission, calls the store's ports
//! (or the dispatcher's rules for runs), and answers JSON.

use axum::extract::{FromRequest, OriginalUri, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jobhooks_dispatch::run_job_on;
use jobhooks_model::ports::{ResultFilter, Storage};
use jobhooks_model::{
    ChangeId, ContentType, JobHook, JobHookPatch, JobRecord, JobResult, JobStatus, ObjectRef, RUN_JOB_PERMISSION, RunId,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{ApiError, AppState, Caller, Page, PageQuery};

type Answer<T> = Result<T, ApiError>;

/// A JSON body; a body that is not the endpoint's JSON is refused with a JSON error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError::Body { status: rejection.status(), detail: rejection.body_text() }),
        }
    }
}

pub fn routes<S: Storage + 'static>() -> Router<AppState<S>> {
    Router::new()
        .route("/api/status/", get(status::<S>))
        .route("/api/users/", get(users::<S>))
        .route("/api/extras/job-hooks/", get(list_hooks::<S>).post(create_hook::<S>))
        .route(
            "/api/extras/job-hooks/{name}/",
            get(get_hook::<S>).patch(patch_hook::<S>).put(put_hook::<S>).delete(delete_hook::<S>),
        )
        .route("/api/extras/jobs/", get(list_jobs::<S>))
        .route("/api/extras/jobs/{class_path}/", get(get_job::<S>).patch(patch_job::<S>))
        .route("/api/extras/jobs/{class_path}/run/", post(run_job::<S>))
        .route("/api/extras/job-results/", get(list_results::<S>))
        .route("/api/extras/job-results/{id}/", get(get_result::<S>))
        .route("/api/extras/job-results/{id}/replay/", post(replay_result::<S>))
}

async fn status<S: Storage + 'static>(State(state): State<AppState<S>>, _caller: Caller) -> Answer<Json<Value>> {
    let depth = state.store.depth().await?;
    Ok(Json(json!({
        "jobhooks-version": env!("CARGO_PKG_VERSION"),
        "queue": { "pending": depth.pending, "leased": depth.leased, "dead": depth.dead },
    })))
}

async fn users<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<jobhooks_model::User>>> {
    caller.require_superuser()?;
    Ok(Json(Page::of(state.store.list_users().await?, page, &uri)))
}

async fn list_hooks<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobHook>>> {
    caller.require("extras.view_jobhook")?;
    Ok(Json(Page::of(state.store.list_hooks().await?, page, &uri)))
}

async fn create_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(hook): Body<JobHook>,
) -> Answer<(StatusCode, Json<JobHook>)> {
    caller.require("extras.add_jobhook")?;
    Ok((StatusCode::CREATED, Json(state.store.create_hook(hook).await?)))
}

async fn get_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Answer<Json<JobHook>> {
    caller.require("extras.view_jobhook")?;
    state.store.get_hook(&name).await?.map(Json).ok_or(ApiError::NotFound)
}

async fn patch_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(patch): Body<JobHookPatch>,
) -> Answer<Json<JobHook>> {
    caller.require("extras.change_jobhook")?;
    Ok(Json(state.store.update_hook(&name, patch).await?))
}

async fn put_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(hook): Body<JobHook>,
) -> Answer<Json<JobHook>> {
    caller.require("extras.change_jobhook")?;
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

async fn delete_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Answer<StatusCode> {
    caller.require("extras.delete_jobhook")?;
    state.store.delete_hook(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_jobs<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobRecord>>> {
    caller.require("extras.view_job")?;
    Ok(Json(Page::of(state.store.list_jobs().await?, page, &uri)))
}

async fn get_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(class_path): Path<String>,
) -> Answer<Json<JobRecord>> {
    caller.require("extras.view_job")?;
    state.store.get_job(&class_path).await?.map(Json).ok_or(ApiError::NotFound)
}

/// The fields of a job the API may change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobChange {
    enabled: bool,
}

async fn patch_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(class_path): Path<String>,
    Body(change): Body<JobChange>,
) -> Answer<Json<JobRecord>> {
    caller.require("extras.change_job")?;
    Ok(Json(state.store.set_job_enabled(&class_path, change.enabled).await?))
}

/// Nautobot's job button body: the object the job runs on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunOn {
    object_pk: String,
    object_model_name: String,
}

async fn run_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(class_path): Path<String>,
    Body(run): Body<RunOn>,
) -> Answer<(StatusCode, Json<Value>)> {
    let object = ContentType::new(run.object_model_name.as_str())
        .and_then(|content_type| ObjectRef::new(content_type, run.object_pk.as_str()))
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let run = run_job_on(&*state.store, &caller.0, &class_path, &object).await?;
    let result = state.store.get_result(run).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(json!({ "job_result": result }))))
}

/// The filters of the results list.
#[derive(Deserialize)]
struct ResultQuery {
    job: Option<String>,
    status: Option<String>,
    object_change: Option<u64>,
    #[serde(flatten)]
    page: PageQuery,
}

fn status_of(text: &str) -> Result<JobStatus, ApiError> {
    serde_json::from_value(Value::String(text.to_ascii_uppercase())).map_err(|_| {
        let mut errors = jobhooks_model::ValidationErrors::default();
        errors.add("status", format!("Select a valid choice. {text} is not one of the available choices."));
        ApiError::Validation(errors)
    })
}

async fn list_results<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Query(query): Query<ResultQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobResult>>> {
    caller.require("extras.view_jobresult")?;
    let filter = ResultFilter {
        job: query.job,
        status: query.status.as_deref().map(status_of).transpose()?,
        change: query.object_change.map(ChangeId),
        limit: None,
    };
    Ok(Json(Page::of(state.store.list_results(&filter).await?, query.page, &uri)))
}

async fn get_result<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Answer<Json<JobResult>> {
    caller.require("extras.view_jobresult")?;
    state.store.get_result(RunId(id)).await?.map(Json).ok_or(ApiError::NotFound)
}

async fn replay_result<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Answer<Json<JobResult>> {
    let result = state.store.get_result(RunId(id)).await?.ok_or(ApiError::NotFound)?;
    if !caller.0.can_run_job(&result.job) {
        return Err(ApiError::Forbidden(format!("{RUN_JOB_PERMISSION} for {}", result.job)));
    }
    state.store.replay(RunId(id)).await?;
    state.store.get_result(RunId(id)).await?.map(Json).ok_or(ApiError::NotFound)
}
