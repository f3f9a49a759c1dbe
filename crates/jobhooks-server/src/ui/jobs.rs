//! `/jobs/`: the job receivers, hidden ones on request, each enabled or disabled by a form.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use jobhooks_model::ports::Storage;
use serde::Deserialize;
use serde_json::{Value, json};

use super::form::Posted;
use super::render::{Flash, PageError, page, redirect_with};
use super::visitor::Visitor;
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct Shown {
    #[serde(default)]
    hidden: bool,
}

pub(crate) async fn list<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Query(shown): Query<Shown>,
) -> Result<Response, PageError> {
    visitor.require("extras.view_job")?;
    let mut jobs = state.store.list_jobs().await?;
    jobs.sort_by(|a, b| a.class_path.cmp(&b.class_path));
    let hidden = jobs.iter().filter(|job| job.hidden).count();
    let rows: Vec<Value> = jobs
        .iter()
        .filter(|job| shown.hidden || !job.hidden)
        .map(|job| {
            json!({
                "class_path": job.class_path,
                "name": job.name,
                "description": job.description,
                "kind": job.kind.to_string(),
                "installed": job.installed,
                "enabled": job.enabled,
                "hidden": job.hidden,
                "toggle_url": format!("/jobs/{}/enabled/", form_urlencoded::byte_serialize(job.class_path.as_bytes()).collect::<String>()),
            })
        })
        .collect();
    let may_change = visitor.user.has_perm("extras.change_job");
    Ok(page(
        &visitor,
        "jobs.html",
        json!({"title": "Jobs", "jobs": rows, "hidden": hidden, "showing_hidden": shown.hidden, "may_change": may_change}),
    ))
}

pub(crate) async fn set_enabled<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(class_path): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    posted.visitor.require("extras.change_job")?;
    let enabled = posted.form.text("enabled") == "true";
    let job = state.store.set_job_enabled(&class_path, enabled).await?;
    let word = if job.enabled { "Enabled" } else { "Disabled" };
    Ok(redirect_with("/jobs/?hidden=true", Flash::success(format!("{word} job {}.", job.class_path))))
}
