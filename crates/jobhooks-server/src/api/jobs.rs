//! Jobs: list (with Nautobot's filters), read, enable, restore after a sync, and run on an object
//! (a button press too). A job is addressed by its id, its class path, or its name when no other
//! job has that name.

use super::*;
use jobhooks_model::JobFilter;

/// The filters of the job list, as Nautobot's `JobFilterSet` (and `class_path`, jobhooks' name for
/// a job).
const JOB_FILTERS: &[&str] = &[
    "id",
    "q",
    "name",
    "module_name",
    "job_class_name",
    "grouping",
    "installed",
    "enabled",
    "hidden",
    "is_job_hook_receiver",
    "is_job_button_receiver",
    "class_path",
];

/// What running a job answers, as Nautobot's: the queued run's result, and no schedule (jobhooks
/// runs jobs at once).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobRun {
    /// Always `null`.
    #[schema(value_type = Object)]
    pub scheduled_job: Value,
    /// The run's result.
    pub job_result: JobResultView,
}

/// The job `key` names: its id, its class path, or its name when only one job has it.
pub(crate) async fn job_by_key<S: Storage>(state: &AppState<S>, key: &str) -> Answer<JobRecord> {
    let jobs = state.store.list_jobs().await?;
    let found = match key.parse::<Uuid>() {
        Ok(id) => jobs.into_iter().find(|job| job.id == id),
        Err(_) => match jobs.iter().position(|job| job.class_path == key) {
            Some(at) => Some(jobs.into_iter().nth(at).expect("the position is in the list")),
            None => {
                let mut named = jobs.into_iter().filter(|job| job.name == key);
                match (named.next(), named.next()) {
                    (Some(job), None) => Some(job),
                    (Some(_), Some(_)) => {
                        return Err(ApiError::BadRequest(format!(
                            "More than one job is named {key}: give its id or its class path."
                        )));
                    }
                    _ => None,
                }
            }
        },
    };
    found.ok_or_else(|| ApiError::missing("job", key))
}

fn shaped(job: &JobRecord, query: &ListQuery, uri: &Uri) -> JobView {
    JobView::of(job, &query.shaper(uri))
}

#[utoipa::path(
    get,
    path = "/api/extras/jobs/",
    tag = "jobs",
    summary = "List jobs",
    description = "Filters: `id`, `q` (in the name or class path), `name`, `module_name`, `job_class_name`, `grouping`, `installed`, `enabled`, `hidden`, `is_job_hook_receiver`, `is_job_button_receiver`, `class_path`; any other parameter is a 400.",
    params(PageQuery, DepthQuery),
    responses((status = 200, body = Page<JobView>), Refusals),
)]
pub(crate) async fn list_jobs<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJob>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobView>>> {
    let query = ListQuery::of(&uri, JOB_FILTERS)?;
    let mut filter = JobFilter::default();
    filter.ids = query.uuids("id")?;
    filter.names = query.strings("name");
    filter.search = query.strings("q");
    filter.class_paths = query.strings("class_path");
    filter.module_names = query.strings("module_name");
    filter.groupings = query.strings("grouping");
    filter.job_class_names = query.strings("job_class_name");
    filter.installed = query.flag("installed")?;
    filter.enabled = query.flag("enabled")?;
    filter.hidden = query.flag("hidden")?;
    filter.is_job_hook_receiver = query.flag("is_job_hook_receiver")?;
    filter.is_job_button_receiver = query.flag("is_job_button_receiver")?;
    let jobs: Vec<JobView> =
        state.store.find_jobs(&filter).await?.iter().map(|job| shaped(job, &query, &uri)).collect();
    Ok(Json(Page::of(jobs, query.page, &uri)))
}

#[utoipa::path(
    get,
    path = "/api/extras/jobs/{key}/",
    tag = "jobs",
    summary = "One job, by id, class path or name",
    params(JobPath),
    responses((status = 200, body = JobView), Refusals),
)]
pub(crate) async fn get_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJob>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<JobView>> {
    let query = ListQuery::of(&uri, &[])?;
    Ok(Json(shaped(&job_by_key(&state, &key).await?, &query, &uri)))
}

/// The fields of a job the API may change: `enabled` (the others are the code's).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobChange {
    enabled: bool,
}

#[utoipa::path(
    patch,
    path = "/api/extras/jobs/{key}/",
    tag = "jobs",
    summary = "Enable or disable a job",
    params(JobPath),
    request_body = JobChange,
    responses((status = 200, body = JobView), Refusals),
)]
pub(crate) async fn patch_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJob>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    Write(change): Write<JobChange>,
) -> Answer<Json<JobView>> {
    let query = ListQuery::of(&uri, &[])?;
    let job = job_by_key(&state, &key).await?;
    let job = state.store.set_job_enabled(&job.class_path, change.enabled).await?;
    Ok(Json(shaped(&job, &query, &uri)))
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

/// The object a job button receiver runs on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunOn {
    object_pk: String,
    object_model_name: String,
}

impl RunOn {
    fn object(&self) -> Answer<ObjectRef> {
        ContentType::new(self.object_model_name.as_str())
            .map_err(|error| field_error("object_model_name", error.to_string()))
            .and_then(|content_type| {
                ObjectRef::new(content_type, self.object_pk.as_str())
                    .map_err(|error| field_error("object_pk", error.to_string()))
            })
    }
}

/// A run's schedule, as Nautobot's: jobhooks runs only `immediately`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RunSchedule {
    interval: Option<String>,
}

/// Nautobot's body for running a job: the job's `data` (for a job button receiver, the object it
/// runs on), and where and when to run it, of which jobhooks has one queue, `default`, and runs at
/// once. The object alone (`{"object_pk", "object_model_name"}`), as jobhooks took it before, is
/// taken too.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunBody {
    data: Option<RunOn>,
    task_queue: Option<String>,
    job_queue: Option<String>,
    schedule: Option<RunSchedule>,
    object_pk: Option<String>,
    object_model_name: Option<String>,
    /// pynautobot sends the job it runs in the body too; the path names it.
    #[serde(default, rename = "job_id")]
    #[schema(ignore)]
    _job_id: Option<serde::de::IgnoredAny>,
    /// As `job_id`.
    #[serde(default, rename = "job_name")]
    #[schema(ignore)]
    _job_name: Option<serde::de::IgnoredAny>,
}

impl RunBody {
    /// The object to run on, once the queue and the schedule are ones jobhooks has.
    fn object(self) -> Answer<ObjectRef> {
        if self.task_queue.is_some() && self.job_queue.is_some() {
            return Err(field_error(
                "task_queue",
                "task_queue and job_queue are both specified. Please specify only one or another.".into(),
            ));
        }
        if let Some(queue) = self.task_queue.or(self.job_queue).filter(|queue| queue != DEFAULT_QUEUE) {
            return Err(field_error("task_queue", format!("\"{queue}\" is not a valid choice.")));
        }
        let interval = self.schedule.and_then(|schedule| schedule.interval);
        if let Some(interval) = interval.filter(|interval| interval != "immediately") {
            return Err(field_error(
                "schedule",
                format!("jobhooks runs jobs immediately; the interval {interval} is not supported."),
            ));
        }
        match (self.data, self.object_pk, self.object_model_name) {
            (Some(data), None, None) => data.object(),
            (None, Some(object_pk), Some(object_model_name)) => RunOn { object_pk, object_model_name }.object(),
            (None, _, _) => Err(field_error("data", "This field is required.".into())),
            (Some(_), _, _) => Err(ApiError::BadRequest(
                "Give the object in data, or as object_pk and object_model_name, not both.".into(),
            )),
        }
    }
}

async fn answer_run<S: Storage>(state: &AppState<S>, run: RunId, uri: &Uri) -> Answer<(StatusCode, Json<JobRun>)> {
    let result = state.store.get_result(run).await?.ok_or_else(|| ApiError::missing("job result", run))?;
    let query = ListQuery::of(uri, &[])?;
    let shaper = query.shaper(uri).with_jobs(state.store.list_jobs().await?);
    let job_result = JobResultView::of(&result, &shaper);
    Ok((StatusCode::CREATED, Json(JobRun { scheduled_job: Value::Null, job_result })))
}

#[utoipa::path(
    post,
    path = "/api/extras/jobs/{key}/run/",
    tag = "jobs",
    summary = "Run a job button receiver on an object, as Nautobot's job buttons do",
    params(JobPath),
    request_body = RunBody,
    responses((status = 201, body = JobRun), Refusals),
)]
pub(crate) async fn run_job<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    Body(body): Body<RunBody>,
) -> Answer<(StatusCode, Json<JobRun>)> {
    let object = body.object()?;
    // A key that names no job is passed on as a class path, for the run's own refusal.
    let class_path = match job_by_key(&state, &key).await {
        Ok(job) => job.class_path,
        Err(_) => key,
    };
    let run = run_job_on(&*state.store, &caller.0, &class_path, &object).await?;
    answer_run(&state, run, &uri).await
}

/// Presses the button `key` on the body's object as the caller: refused when the button is not
/// offered on the object's type, then for the reasons of the job run endpoint.
#[utoipa::path(
    post,
    path = "/api/extras/job-buttons/{key}/press/",
    tag = "job buttons",
    summary = "Press a button on an object: run its job there as the caller",
    params(KeyPath),
    request_body = RunBody,
    responses((status = 201, body = JobRun), Refusals),
)]
pub(crate) async fn press_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    Body(body): Body<RunBody>,
) -> Answer<(StatusCode, Json<JobRun>)> {
    let object = body.object()?;
    let name = match button_by_key(&state, &key).await {
        Ok(button) => button.name,
        Err(_) => key,
    };
    let run = press(&*state.store, &caller.0, &name, &object).await?;
    answer_run(&state, run, &uri).await
}
