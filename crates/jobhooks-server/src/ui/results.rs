//! `/results/`: job results with filters, and one result's page. While a run is pending, running
//! or retrying, its page follows it: the script asks for the result's body with `?wait=`, which
//! answers as soon as the run moves (the API's wait, on the store's work signal), and stops once
//! the status is final; without the script, the page reloads itself every few seconds.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use jobhooks_model::ports::{ResultFilter, Storage};
use jobhooks_model::{JobInputs, JobResult, JobStatus, ObjectRef, RunId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::changes::shown_time;
use super::form::Posted;
use super::form::given;
use super::objects::object_url;
use super::render::{Flash, PageError, page, redirect_with, render};
use super::visitor::Visitor;
use crate::AppState;
use crate::api::status_of;

const PER_PAGE: usize = 50;
/// The longest a page's script waits for a run to move, per request.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// A status as the page shows it: its name, a mark that does not rely on colour, and a style.
pub(crate) fn status_badge(status: JobStatus) -> Value {
    let (label, mark, style) = match status {
        JobStatus::Pending => ("PENDING", "…", "pending"),
        JobStatus::Started => ("STARTED", "▶", "running"),
        JobStatus::Retrying => ("RETRYING", "↻", "running"),
        JobStatus::Success => ("SUCCESS", "✔", "success"),
        JobStatus::Failure => ("FAILURE", "✘", "failure"),
        JobStatus::DeadLettered => ("DEAD_LETTERED", "☠", "failure"),
    };
    json!({"label": label, "mark": mark, "style": style, "final": status.is_final()})
}

/// The object a run is about, when it is a button press: its reference.
fn object_of(result: &JobResult) -> Option<ObjectRef> {
    match &result.inputs {
        JobInputs::Button { object_pk, object_model_name } => {
            jobhooks_model::ContentType::new(object_model_name.as_str())
                .and_then(|content_type| ObjectRef::new(content_type, object_pk.as_str()))
                .ok()
        }
        _ => None,
    }
}

fn result_row(result: &JobResult) -> Value {
    let object = object_of(result);
    json!({
        "id": result.id.0,
        "url": format!("/results/{}/", result.id.0),
        "job": result.job,
        "user": result.user,
        "status": status_badge(result.status),
        "created": shown_time(result.created),
        "object": object.as_ref().map(|reference| json!({"label": reference.to_string(), "url": object_url(reference)})),
        "change": match &result.inputs { JobInputs::Hook { object_change, .. } => Some(object_change.0), _ => None },
    })
}

/// May `visitor` see `result`: with `extras.view_jobresult`, or when the run is their own.
fn may_view(visitor: &Visitor, result: &JobResult) -> bool {
    visitor.user.has_perm("extras.view_jobresult") || result.user.as_deref() == Some(visitor.user.username.as_str())
}

#[derive(Deserialize, Default)]
pub(crate) struct ResultQuery {
    job: Option<String>,
    status: Option<String>,
    user: Option<String>,
    object: Option<String>,
    page: Option<usize>,
}

/// How many results the object filter reads at a time.
const OBJECT_SCAN_CHUNK: usize = 1_000;

pub(crate) async fn list<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Query(query): Query<ResultQuery>,
) -> Result<Response, PageError> {
    let everyone = visitor.user.has_perm("extras.view_jobresult");
    let status = given(&query.status).map(status_of).transpose()?;
    let user = if everyone { given(&query.user).map(str::to_owned) } else { Some(visitor.user.username.clone()) };
    let object = given(&query.object);
    let number = query.page.unwrap_or(1).max(1);
    let mut filter = ResultFilter::default();
    filter.jobs.extend(given(&query.job).map(str::to_owned));
    filter.statuses.extend(status);
    filter.users.extend(user);
    let (results, count) = match object {
        // A run's object is in its inputs (a press) or its change (a hook run), which no index
        // holds: one walk through the results, oldest first a chunk at a time, keeping the ids
        // of the object's runs; then the page's runs are read.
        Some(object) => {
            let mut matching = Vec::new();
            let mut after = RunId(0);
            loop {
                let chunk = state.store.results_after(after, OBJECT_SCAN_CHUNK).await?;
                let Some(last) = chunk.last() else { break };
                after = last.id;
                let of_object = |result: &&JobResult| {
                    filter.admits(result) && object_of(result).is_some_and(|reference| reference.to_string() == object)
                };
                matching.extend(chunk.iter().filter(of_object).map(|result| result.id));
            }
            let count = matching.len();
            let mut shown = Vec::new();
            for run in matching.iter().rev().skip((number - 1).saturating_mul(PER_PAGE)).take(PER_PAGE) {
                shown.extend(state.store.get_result(*run).await?);
            }
            (shown, count)
        }
        None => {
            let count = usize::try_from(state.store.count_results(&filter).await?).unwrap_or(usize::MAX);
            let offset = (number - 1).saturating_mul(PER_PAGE);
            let page = filter.offset(offset).limit(PER_PAGE);
            let results = if offset < count { state.store.list_results(&page).await? } else { Vec::new() };
            (results, count)
        }
    };
    let mut jobs: Vec<String> = state.store.list_jobs().await?.into_iter().map(|job| job.class_path).collect();
    jobs.sort();
    let rows: Vec<Value> = results.iter().map(result_row).collect();
    Ok(page(
        &visitor,
        "results.html",
        json!({
            "title": "Job results",
            "results": rows,
            "count": count,
            "page": number,
            "pages": count.div_ceil(PER_PAGE).max(1),
            "everyone": everyone,
            "jobs": jobs,
            "statuses": ["PENDING", "STARTED", "RETRYING", "SUCCESS", "FAILURE", "DEAD_LETTERED"],
            "filter": {"job": query.job, "status": query.status, "user": query.user, "object": query.object},
        }),
    ))
}

#[derive(Deserialize, Default)]
pub(crate) struct Follow {
    /// Answer the body only (for the page's script).
    #[serde(default)]
    fragment: bool,
    /// What the page shows now (`{status}:{log lines}`): answer once the run differs from it.
    seen: Option<String>,
    /// Seconds to wait for that (at most 20).
    wait: Option<u64>,
}

fn fingerprint(result: &JobResult) -> String {
    format!("{}:{}", status_badge(result.status)["label"].as_str().unwrap_or_default(), result.logs.len())
}

fn result_context(result: &JobResult, visitor: &Visitor) -> Value {
    let logs: Vec<Value> = result
        .logs
        .iter()
        .map(|entry| {
            json!({
                "time": shown_time(entry.time),
                "level": entry.level.to_string(),
                "grouping": entry.grouping,
                "message": entry.message,
                "object": entry.object.as_ref().map(|logged| json!({"label": logged.repr, "url": object_url(&logged.reference)})),
            })
        })
        .collect();
    let own = result.user.as_deref() == Some(visitor.user.username.as_str());
    json!({
        "result": result_row(result),
        "fingerprint": fingerprint(result),
        "attempts": result.attempts,
        "started": result.started.map(shown_time),
        "completed": result.completed.map(shown_time),
        "inputs": serde_json::to_string_pretty(&result.inputs).unwrap_or_default(),
        "logs": logs,
        "may_replay": result.status == JobStatus::DeadLettered
            && (own || visitor.user.is_superuser)
            && visitor.user.can_run_job(&result.job),
    })
}

pub(crate) async fn detail<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(id): Path<u64>,
    Query(follow): Query<Follow>,
) -> Result<Response, PageError> {
    let read =
        || async { state.store.get_result(RunId(id)).await?.ok_or_else(|| PageError::not_found("job result", id)) };
    let mut result = read().await?;
    if !may_view(&visitor, &result) {
        return Err(PageError::forbidden(
            "You may see only your own job results: extras.view_jobresult is required to see others'.",
        ));
    }
    if let (Some(seen), Some(wait)) = (&follow.seen, follow.wait) {
        let wait = Duration::from_secs(wait).min(MAX_WAIT);
        let _place = crate::limits::waiter_place(&state)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Read the generation first: a run that moves after the read moves it on.
            let generation = state.store.work_generation();
            result = read().await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if fingerprint(&result) != *seen || result.status.is_final() || left.is_zero() {
                break;
            }
            state.store.wait_for_work(generation, left.min(Duration::from_secs(1))).await;
        }
    }
    let mut context = result_context(&result, &visitor);
    if follow.fragment {
        return Ok(render(Some(&visitor), "result_body.html", context));
    }
    context["title"] = format!("Job result {id}").into();
    Ok(page(&visitor, "result.html", context))
}

pub(crate) async fn replay<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(id): Path<u64>,
    posted: Posted,
) -> Result<Response, PageError> {
    let user = &posted.visitor.user;
    let back = format!("/results/{id}/");
    let result = state.store.get_result(RunId(id)).await?.ok_or_else(|| PageError::not_found("job result", id))?;
    let own = result.user.as_deref() == Some(user.username.as_str());
    if !own && !user.is_superuser {
        return Ok(redirect_with(
            &back,
            Flash::error(format!("Only the user who ran run {id}, or a superuser, may replay it.")),
        ));
    }
    if !user.can_run_job(&result.job) {
        let refused = crate::ApiError::Forbidden(format!("{} for {}", jobhooks_model::RUN_JOB_PERMISSION, result.job));
        return Ok(redirect_with(&back, Flash::error(refused.to_string())));
    }
    match state.store.replay(RunId(id)).await {
        Ok(()) => Ok(redirect_with(&back, Flash::success("The run is queued again."))),
        Err(jobhooks_model::MaintenanceError::Storage(failure)) => Err(failure.into()),
        Err(refused) => Ok(redirect_with(&back, Flash::error(refused.to_string()))),
    }
}
