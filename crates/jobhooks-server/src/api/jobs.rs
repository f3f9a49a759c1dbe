//! Jobs: list, read, enable, restore after a sync, and run on an object (a button press too).

use super::*;

/// What running a job on an object answers: the queued run's result.
#[derive(Serialize, ToSchema)]
pub(crate) struct JobRun {
    job_result: JobResult,
}

#[utoipa::path(
    get,
    path = "/api/extras/jobs/",
    tag = "jobs",
    summary = "List jobs",
    params(PageQuery),
    responses((status = 200, body = Page<JobRecord>), Refusals),
)]
pub(crate) async fn list_jobs<S: Storage + 'static>(
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
pub(crate) async fn get_job<S: Storage + 'static>(
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
pub(crate) async fn patch_job<S: Storage + 'static>(
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
pub(crate) async fn restore_jobs<S: Storage + 'static>(
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
pub(crate) async fn run_job<S: Storage + 'static>(
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
pub(crate) async fn press_button<S: Storage + 'static>(
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
