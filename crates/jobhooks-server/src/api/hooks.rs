//! Job hooks: list, create, read, change, delete.

use super::*;

#[utoipa::path(
    get,
    path = "/api/extras/job-hooks/",
    tag = "job hooks",
    summary = "List job hooks",
    params(PageQuery),
    responses((status = 200, body = Page<JobHook>), Refusals),
)]
pub(crate) async fn list_hooks<S: Storage + 'static>(
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
pub(crate) async fn create_hook<S: Storage + 'static>(
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
pub(crate) async fn get_hook<S: Storage + 'static>(
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
pub(crate) async fn patch_hook<S: Storage + 'static>(
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
pub(crate) async fn put_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobHook>,
    Path(name): Path<String>,
    Body(hook): Body<JobHook>,
) -> Answer<Json<JobHook>> {
    Ok(Json(state.store.update_hook(&name, JobHookPatch::from(hook)).await?))
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-hooks/{name}/",
    tag = "job hooks",
    summary = "Delete a job hook",
    params(NamePath),
    responses((status = 204, description = "Deleted"), Refusals),
)]
pub(crate) async fn delete_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobHook>,
    Path(name): Path<String>,
) -> Answer<StatusCode> {
    state.store.delete_hook(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
