//! Job results: list (with Nautobot's filters), read (waiting for a run to end if asked), replay a
//! dead letter; and their logs, at `/api/extras/job-logs/` and `/api/extras/job-results/{id}/logs/`.

use super::*;
use std::collections::BTreeSet;

/// The filters of the result list: Nautobot's `JobResultFilterSet`'s, `job` (a class path, id or
/// name, as `job_model`) and jobhooks' `object_change` (the runs of one change).
const RESULT_FILTERS: &[&str] =
    &["id", "q", "name", "job_model", "job_model_id", "job", "status", "user", "object_change"];

/// The filters of the log entries: Nautobot's `JobLogEntryFilterSet`'s.
const LOG_FILTERS: &[&str] = &["id", "q", "job_result", "log_level", "grouping"];

/// The statuses a status filter's value stands for: Celery's states (`FAILURE` takes dead-lettered
/// runs too, as their status shows), or jobhooks' own names.
pub(crate) fn statuses_of(text: &str) -> Result<Vec<JobStatus>, ApiError> {
    let upper = text.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "FAILURE" => vec![JobStatus::Failure, JobStatus::DeadLettered],
        "RETRY" => vec![JobStatus::Retrying],
        _ => vec![serde_json::from_value(Value::String(upper)).map_err(|_| {
            field_error("status", format!("Select a valid choice. {text} is not one of the available choices."))
        })?],
    })
}

/// The one status a single status filter stands for, for the store to filter on.
pub(crate) fn status_of(text: &str) -> Result<JobStatus, ApiError> {
    match statuses_of(text)?.as_slice() {
        [status] => Ok(*status),
        _ => Ok(JobStatus::Failure),
    }
}

#[utoipa::path(
    get,
    path = "/api/extras/job-results/",
    tag = "job results",
    summary = "List job results, newest first",
    description = "Filters: `id`, `q` (in the job's name), `name` (the job's), `job_model` or `job_model_id` or `job` (the job's id, class path or name), `status` (`PENDING`, `STARTED`, `RETRY`, `SUCCESS`, `FAILURE`; a dead-lettered run is a `FAILURE`), `user` (username or id), `object_change`; any other parameter is a 400.",
    params(PageQuery, DepthQuery),
    responses((status = 200, body = Page<JobResultView>), Refusals),
)]
pub(crate) async fn list_results<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobResult>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobResultView>>> {
    let query = ListQuery::of(&uri, RESULT_FILTERS)?;
    let jobs = state.store.list_jobs().await?;
    let users = if query.depth > 0 { state.store.list_users().await? } else { Vec::new() };
    let shaper = query.shaper(&uri).with_jobs(jobs.clone()).with_users(users);
    let mut filter = ResultFilter::default();
    filter.ids =
        query.parsed("id", |id| id.parse().map(RunId).map_err(|_| "A whole number is required.".to_owned()))?;
    // Each family of job filters names a set of jobs (a key that names no job names none); the
    // runs listed are of the jobs every given family names.
    let mut job_sets: Vec<BTreeSet<String>> = Vec::new();
    let references: Vec<&String> =
        ["job_model", "job_model_id", "job"].iter().flat_map(|key| query.values(key)).collect();
    if !references.is_empty() {
        job_sets.push(references.iter().filter_map(|key| job_class_path(&jobs, key)).collect());
    }
    if !query.values("name").is_empty() {
        let named = jobs.iter().filter(|job| query.admits("name", |name| name == job.name));
        job_sets.push(named.map(|job| job.class_path.clone()).collect());
    }
    if !query.values("q").is_empty() {
        let found = jobs.iter().filter(|job| query.admits_search(&[&job.name]));
        job_sets.push(found.map(|job| job.class_path.clone()).collect());
    }
    if let Some((first, others)) = job_sets.split_first() {
        let wanted = first.iter().filter(|job| others.iter().all(|set| set.contains(*job)));
        filter.jobs = wanted.cloned().collect();
        if filter.jobs.is_empty() {
            return Ok(Json(Page::at(Vec::new(), 0, query.page, &uri)));
        }
    }
    for value in query.values("status") {
        filter.statuses.extend(statuses_of(value)?);
    }
    filter.changes = query.parsed("object_change", |change| {
        change.parse().map(ChangeId).map_err(|_| "A whole number is required.".to_owned())
    })?;
    // A user is given by username or by id.
    if !query.values("user").is_empty() {
        let users = state.store.list_users().await?;
        filter.users = query
            .values("user")
            .iter()
            .map(|value| {
                let by_id = users.iter().find(|user| crate::shapes::user_id(&user.username).to_string() == *value);
                by_id.map_or_else(|| value.clone(), |user| user.username.clone())
            })
            .collect();
    }
    // The store reads through its filters, skips the offset's results and reads one page; past
    // the end, nothing is read.
    let count = usize::try_from(state.store.count_results(&filter).await?).unwrap_or(usize::MAX);
    let offset = query.page.offset.unwrap_or(0);
    let page = filter.offset(offset).limit(query.page.limit());
    let results = if offset < count { state.store.list_results(&page).await? } else { Vec::new() };
    let views = results.iter().map(|result| JobResultView::of(result, &shaper)).collect();
    Ok(Json(Page::at(views, count, query.page, &uri)))
}

/// The class path of the job `key` names among `jobs` (id, class path or name), if any.
fn job_class_path(jobs: &[JobRecord], key: &str) -> Option<String> {
    let id = key.parse::<Uuid>().ok();
    jobs.iter()
        .find(|job| Some(job.id) == id || job.class_path == key)
        .or_else(|| jobs.iter().find(|job| job.name == key))
        .map(|job| job.class_path.clone())
}

#[utoipa::path(
    get,
    path = "/api/extras/job-results/{id}/",
    tag = "job results",
    summary = "One job result",
    params(IdPath, ResultWait, DepthQuery),
    responses((status = 200, body = JobResultView), Refusals),
)]
pub(crate) async fn get_result<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobResult>,
    Path(id): Path<u64>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<JobResultView>> {
    let query = ListQuery::of(&uri, &["wait"])?;
    let wait = match query.values("wait").last() {
        Some(seconds) => {
            seconds.parse::<u64>().map_err(|_| field_error("wait", "A whole number is required.".into()))?
        }
        None => 0,
    };
    let result = wait_for_result(&state, RunId(id), Duration::from_secs(wait.min(MAX_WAIT_SECONDS))).await?;
    Ok(Json(JobResultView::of(&result, &result_shaper(&state, &query, &uri).await?)))
}

/// The result of `run`, once it is final or `wait` has passed.
async fn wait_for_result<S: Storage>(state: &AppState<S>, run: RunId, wait: Duration) -> Answer<JobResult> {
    // A place among the waiters, held until the answer; none is needed to answer at once.
    let _place = if wait.is_zero() { None } else { Some(crate::limits::waiter_place(state)?) };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Read the generation first: a run that ends after the read moves it on.
        let seen = state.store.work_generation();
        let result = state.store.get_result(run).await?.ok_or_else(|| ApiError::missing("job result", run))?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if result.status.is_final() || left.is_zero() {
            return Ok(result);
        }
        // Runs ended by this process's dispatcher wake the wait at once; at most a second passes
        // before another process's are seen.
        state.store.wait_for_work(seen, left.min(Duration::from_secs(1))).await;
    }
}

/// A shaper for results: it knows the jobs, and the users when records nest.
async fn result_shaper<S: Storage>(state: &AppState<S>, query: &ListQuery, uri: &Uri) -> Answer<crate::shapes::Shaper> {
    let users = if query.depth > 0 { state.store.list_users().await? } else { Vec::new() };
    Ok(query.shaper(uri).with_jobs(state.store.list_jobs().await?).with_users(users))
}

/// The longest `?wait=` in seconds.
pub(crate) const MAX_WAIT_SECONDS: u64 = 60;

/// How long to wait for the run to end before answering.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResultWait {
    /// Seconds to wait for the run to end (at most 60); the answer comes as soon as it does.
    #[allow(dead_code)]
    wait: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/api/extras/job-results/{id}/replay/",
    tag = "job results",
    summary = "Queue a dead-lettered run again (its own user or a superuser, with extras.run_job for its job)",
    params(IdPath),
    responses((status = 200, body = JobResultView), Refusals),
)]
pub(crate) async fn replay_result<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<u64>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<JobResultView>> {
    let query = ListQuery::of(&uri, &[])?;
    let result = state.store.get_result(RunId(id)).await?.ok_or_else(|| ApiError::missing("job result", id))?;
    let own = result.user.as_deref() == Some(caller.0.username.as_str());
    if !own && !caller.0.is_superuser {
        return Err(ApiError::Refused(format!("Only the user who ran run {id}, or a superuser, may replay it.")));
    }
    if !caller.0.can_run_job(&result.job) {
        return Err(ApiError::Forbidden(format!("{RUN_JOB_PERMISSION} for {}", result.job)));
    }
    state.store.replay(RunId(id)).await?;
    let replayed = state.store.get_result(RunId(id)).await?.ok_or_else(|| ApiError::missing("job result", id))?;
    Ok(Json(JobResultView::of(&replayed, &result_shaper(&state, &query, &uri).await?)))
}

/// The entries of `result`'s log the query admits, as views.
fn log_views(result: &JobResult, query: &ListQuery, shaper: &crate::shapes::Shaper) -> Vec<JobLogView> {
    result
        .logs
        .iter()
        .enumerate()
        .filter(|(index, entry)| {
            query.admits("id", |id| id == crate::shapes::log_id(result.id, *index))
                && query.admits("log_level", |level| level.eq_ignore_ascii_case(entry.level.as_str()))
                && query.admits("grouping", |grouping| grouping == entry.grouping)
                && query.admits_search(&[&entry.message])
        })
        .map(|(index, entry)| JobLogView::of(result, index, entry, shaper))
        .collect()
}

#[utoipa::path(
    get,
    path = "/api/extras/job-logs/",
    tag = "job results",
    summary = "List the log entries of a run, oldest first",
    description = "Filters: `job_result` (required: entries are kept with their run, and listed one run at a time), `id`, `q` (in the message), `log_level`, `grouping`; any other parameter is a 400.",
    params(PageQuery, DepthQuery),
    responses((status = 200, body = Page<JobLogView>), Refusals),
)]
pub(crate) async fn list_logs<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobResult>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobLogView>>> {
    let query = ListQuery::of(&uri, LOG_FILTERS)?;
    let shaper = result_shaper(&state, &query, &uri).await?;
    let runs = query.values("job_result");
    if runs.is_empty() {
        return Err(field_error(
            "job_result",
            "Give the run whose log to list: job_result=<id> (log entries are listed one run at a time).".into(),
        ));
    }
    let mut entries = Vec::new();
    for run in runs {
        let run = run.parse::<u64>().map_err(|_| field_error("job_result", "A whole number is required.".into()))?;
        if let Some(result) = state.store.get_result(RunId(run)).await? {
            entries.extend(log_views(&result, &query, &shaper));
        }
    }
    Ok(Json(Page::of(entries, query.page, &uri)))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-results/{id}/logs/",
    tag = "job results",
    summary = "The log entries of one run, oldest first",
    params(IdPath, PageQuery, DepthQuery),
    responses((status = 200, body = Page<JobLogView>), Refusals),
)]
pub(crate) async fn result_logs<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobResult>,
    Path(id): Path<u64>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobLogView>>> {
    let query = ListQuery::of(&uri, LOG_FILTERS)?;
    let shaper = result_shaper(&state, &query, &uri).await?;
    let result = state.store.get_result(RunId(id)).await?.ok_or_else(|| ApiError::missing("job result", id))?;
    Ok(Json(Page::of(log_views(&result, &query, &shaper), query.page, &uri)))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-logs/{id}/",
    tag = "job results",
    summary = "One log entry, by its id `{run}-{index}`",
    params(LogPath, DepthQuery),
    responses((status = 200, body = JobLogView), Refusals),
)]
pub(crate) async fn get_log<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobResult>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<JobLogView>> {
    let query = ListQuery::of(&uri, &[])?;
    let (run, index) = crate::shapes::parse_log_id(&id).ok_or_else(|| ApiError::missing("log entry", &id))?;
    let result = state.store.get_result(run).await?.ok_or_else(|| ApiError::missing("log entry", &id))?;
    let entry = result.logs.get(index).ok_or_else(|| ApiError::missing("log entry", &id))?;
    Ok(Json(JobLogView::of(&result, index, entry, &result_shaper(&state, &query, &uri).await?)))
}
