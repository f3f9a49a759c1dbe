//! The change log: list with filters, one change with its snapshots.

use super::*;

/// The filters of the changes list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangeQuery {
    changed_object_type: Option<String>,
    changed_object_id: Option<String>,
    request_id: Option<Uuid>,
    limit: Option<usize>,
    offset: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/extras/object-changes/",
    tag = "object changes",
    summary = "List object changes, newest first",
    params(ChangeQuery),
    responses((status = 200, body = Page<ObjectChange>), Refusals),
)]
pub(crate) async fn list_changes<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewObjectChange>,
    Params(query): Params<ChangeQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<ObjectChange>>> {
    let content_type = query
        .changed_object_type
        .as_deref()
        .map(ContentType::new)
        .transpose()
        .map_err(|error| field_error("changed_object_type", error.to_string()))?;
    let page = PageQuery { limit: query.limit, offset: query.offset };
    if content_type.is_none() && query.changed_object_id.is_none() && query.request_id.is_none() {
        // The whole log: the store reads only as far as the page reaches, newest first.
        let count = usize::try_from(state.store.count_changes().await?).unwrap_or(usize::MAX);
        let first = state.store.latest_changes(page.end()).await?;
        return Ok(Json(Page::window(first, count, page, &uri)));
    }
    let mut changes = match (&content_type, &query.changed_object_id, query.request_id) {
        (_, _, Some(request)) => state.store.changes_for_request(request).await?,
        (Some(content_type), Some(id), None) => {
            let object = ObjectRef::new(content_type.clone(), id.as_str())
                .map_err(|error| field_error("changed_object_id", error.to_string()))?;
            state.store.changes_for_object(&object, usize::MAX).await?
        }
        _ => {
            let far = OffsetDateTime::now_utc() + std::time::Duration::from_secs(366 * 86_400);
            state.store.changes_between(OffsetDateTime::UNIX_EPOCH, far, usize::MAX).await?
        }
    };
    changes.retain(|change| {
        content_type.as_ref().is_none_or(|content_type| &change.changed_object_type == content_type)
            && query.changed_object_id.as_ref().is_none_or(|id| &change.changed_object_id == id)
    });
    // Newest first, as Nautobot lists them.
    changes.sort_by_key(|change| std::cmp::Reverse(change.id.0));
    Ok(Json(Page::of(changes, page, &uri)))
}

/// A change with its snapshots, as `GET /api/extras/object-changes/{id}/` shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChangeWithSnapshots {
    #[serde(flatten)]
    change: ObjectChange,
    /// `get_snapshots()`: `prechange`, `postchange` and their `differences` (`added`, `removed`).
    #[schema(value_type = Object)]
    snapshots: Value,
}

#[utoipa::path(
    get,
    path = "/api/extras/object-changes/{id}/",
    tag = "object changes",
    summary = "One object change with its snapshots",
    params(IdPath),
    responses((status = 200, body = ChangeWithSnapshots), Refusals),
)]
pub(crate) async fn get_change<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewObjectChange>,
    Path(id): Path<u64>,
) -> Answer<Json<ChangeWithSnapshots>> {
    let change = state.store.get_change(ChangeId(id)).await?.ok_or_else(|| ApiError::missing("change", id))?;
    let snapshots = serde_json::to_value(change.get_snapshots()).unwrap_or(Value::Null);
    Ok(Json(ChangeWithSnapshots { change, snapshots }))
}
