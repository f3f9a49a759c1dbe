//! `/`: what the store holds, with links: objects by type, the latest results, the runs that
//! failed.

use axum::extract::State;
use axum::response::Response;
use jobhooks_model::JobStatus;
use jobhooks_model::ports::{ResultFilter, Storage};
use serde_json::{Value, json};

use super::render::{PageError, page};
use super::results::status_badge;
use super::visitor::Visitor;
use crate::AppState;

const SHOWN: usize = 10;

pub(crate) async fn home<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let types: Vec<Value> =
        state.store.object_types().await?.iter().map(|content_type| json!({"name": content_type.as_str()})).collect();
    let everyone = visitor.user.has_perm("extras.view_jobresult");
    let mine =
        |result: &jobhooks_model::JobResult| everyone || result.user.as_deref() == Some(visitor.user.username.as_str());
    let row = |result: &jobhooks_model::JobResult| {
        json!({
            "id": result.id.0,
            "url": format!("/results/{}/", result.id.0),
            "job": result.job,
            "user": result.user,
            "status": status_badge(result.status),
        })
    };
    let recent = ResultFilter::default().limit(if everyone { SHOWN } else { 500 });
    let recent: Vec<Value> =
        state.store.list_results(&recent).await?.iter().filter(|r| mine(r)).take(SHOWN).map(row).collect();
    let mut failing = Vec::new();
    for status in [JobStatus::Failure, JobStatus::DeadLettered] {
        let filter = ResultFilter::default().status(status).limit(SHOWN);
        failing.extend(state.store.list_results(&filter).await?.into_iter().filter(|r| mine(r)));
    }
    failing.sort_by_key(|result| std::cmp::Reverse(result.id.0));
    let failing: Vec<Value> = failing.iter().take(SHOWN).map(row).collect();
    let depth = state.store.depth().await?;
    Ok(page(
        &visitor,
        "home.html",
        json!({
            "title": "Home",
            "types": types,
            "recent": recent,
            "failing": failing,
            "depth": serde_json::to_value(depth).unwrap_or_default(),
            "changes": state.store.count_changes().await?,
        }),
    ))
}
