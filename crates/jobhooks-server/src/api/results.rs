//! Job results: list, read (waiting for a run to end if asked), replay a dead letter.

use super::*;

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

pub(crate) fn status_of(text: &str) -> Result<JobStatus, ApiError> {
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
pub(crate) async fn list_results<S: Storage + 'static>(
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
pub(crate) async fn get_result<S: Storage + 'static>(
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
pub(crate) const MAX_WAIT_SECONDS: u64 = 60;

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
pub(crate) async fn replay_result<S: Storage + 'static>(
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
