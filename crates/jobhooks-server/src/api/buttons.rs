//! Job buttons: list, create, read, change, delete.

use super::*;

#[utoipa::path(
    get,
    path = "/api/extras/job-buttons/",
    tag = "job buttons",
    summary = "List job buttons",
    params(PageQuery),
    responses((status = 200, body = Page<JobButton>), Refusals),
)]
pub(crate) async fn list_buttons<S: Storage + 'static>(
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
pub(crate) async fn create_button<S: Storage + 'static>(
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
pub(crate) async fn get_button<S: Storage + 'static>(
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
pub(crate) async fn patch_button<S: Storage + 'static>(
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
pub(crate) async fn put_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobButton>,
    Path(name): Path<String>,
    Body(button): Body<JobButton>,
) -> Answer<Json<JobButton>> {
    Ok(Json(state.store.update_button(&name, JobButtonPatch::from(button)).await?))
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-buttons/{name}/",
    tag = "job buttons",
    summary = "Delete a job button",
    params(NamePath),
    responses((status = 204, description = "Deleted"), Refusals),
)]
pub(crate) async fn delete_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobButton>,
    Path(name): Path<String>,
) -> Answer<StatusCode> {
    state.store.delete_button(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
