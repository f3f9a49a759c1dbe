//! `/changes/`: the change log with filters, and one change with its snapshots and differences
//! (each field shown as added, removed or changed).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use jobhooks_model::ports::Storage;
use jobhooks_model::{ChangeId, ContentType, ObjectChange, ObjectRef, OffsetDateTime};
use serde::Deserialize;
use serde_json::{Value, json};

use super::form::given;
use super::objects::{display_value, object_url};
use super::render::{PageError, page};
use super::visitor::Visitor;
use crate::AppState;

const PER_PAGE: usize = 50;

/// How a time is shown: UTC, to the second.
pub(crate) fn shown_time(time: OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// What one change altered, field by field: `added` (absent before), `removed` (absent after) or
/// `changed`, with the values before and after.
pub(crate) fn field_differences(change: &ObjectChange) -> Vec<Value> {
    let snapshots = change.get_snapshots();
    let pre = snapshots.prechange.as_deref().and_then(Value::as_object);
    let post = snapshots.postchange.as_deref().and_then(Value::as_object);
    let mut fields: Vec<&String> = pre.into_iter().chain(post).flat_map(|data| data.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter_map(|field| {
            let before = pre.and_then(|data| data.get(field));
            let after = post.and_then(|data| data.get(field));
            let kind = match (before, after) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(before), Some(after)) if before != after => "changed",
                _ => return None,
            };
            Some(json!({
                "field": field,
                "kind": kind,
                "before": before.map(display_value),
                "after": after.map(display_value),
            }))
        })
        .collect()
}

/// A change as a row of a list.
pub(crate) fn change_row(change: &ObjectChange) -> Value {
    let reference = ObjectRef::new(change.changed_object_type.clone(), change.changed_object_id.as_str()).ok();
    json!({
        "id": change.id.0,
        "url": format!("/changes/{}/", change.id.0),
        "time": shown_time(change.time),
        "user": change.user_name,
        "action": change.action.to_string(),
        "object_type": change.changed_object_type.as_str(),
        "object_repr": change.object_repr,
        "object_url": reference.as_ref().map(object_url),
        "context": change.change_context.to_string(),
        "request_id": change.request_id.to_string(),
        "differences": field_differences(change),
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct ChangeFilter {
    changed_object_type: Option<String>,
    changed_object_id: Option<String>,
    user: Option<String>,
    action: Option<String>,
    page: Option<usize>,
}

pub(crate) async fn list<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Query(filter): Query<ChangeFilter>,
) -> Result<Response, PageError> {
    visitor.require("extras.view_objectchange")?;
    let bad =
        |error: jobhooks_model::ModelError| PageError::status(axum::http::StatusCode::BAD_REQUEST, error.to_string());
    let content_type = given(&filter.changed_object_type).map(ContentType::new).transpose().map_err(bad)?;
    let object_id = given(&filter.changed_object_id);
    let (user, action) = (given(&filter.user), given(&filter.action));
    let number = filter.page.unwrap_or(1).max(1);
    let mut wanted = jobhooks_model::ChangeFilter::default();
    wanted.content_types = content_type.into_iter().collect();
    wanted.object_ids = object_id.map(str::to_owned).into_iter().collect();
    wanted.user_names = user.map(str::to_owned).into_iter().collect();
    wanted.actions = action.map(str::parse).transpose().map_err(bad)?.into_iter().collect();
    // The store reads through its narrowest index for the filter and passes over the earlier
    // pages' changes; past the end, nothing is read.
    let count = usize::try_from(state.store.count_changes_where(&wanted).await?).unwrap_or(usize::MAX);
    let offset = (number - 1).saturating_mul(PER_PAGE);
    let changes = if offset < count { state.store.find_changes(&wanted, offset, PER_PAGE).await? } else { Vec::new() };
    let rows: Vec<Value> = changes.iter().map(change_row).collect();
    Ok(page(
        &visitor,
        "changes.html",
        json!({
            "title": "Change log",
            "changes": rows,
            "count": count,
            "page": number,
            "pages": count.div_ceil(PER_PAGE).max(1),
            "filter": {
                "changed_object_type": filter.changed_object_type,
                "changed_object_id": filter.changed_object_id,
                "user": filter.user,
                "action": filter.action,
            },
        }),
    ))
}

pub(crate) async fn detail<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
    Path(id): Path<u64>,
) -> Result<Response, PageError> {
    visitor.require("extras.view_objectchange")?;
    let change =
        state.store.get_change(ChangeId(id)).await?.ok_or_else(|| PageError::not_found("object change", id))?;
    let snapshots = change.get_snapshots();
    let pretty = |value: Option<&Value>| value.map(|value| serde_json::to_string_pretty(value).unwrap_or_default());
    Ok(page(
        &visitor,
        "change.html",
        json!({
            "title": format!("Change {id}"),
            "change": change_row(&change),
            "context_detail": change.change_context_detail,
            "prechange": pretty(snapshots.prechange.as_deref()),
            "postchange": pretty(snapshots.postchange.as_deref()),
            "added": pretty(snapshots.differences.added.as_ref()),
            "removed": pretty(snapshots.differences.removed.as_ref()),
        }),
    ))
}
