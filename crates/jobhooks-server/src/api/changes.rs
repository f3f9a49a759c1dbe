//! The change log: list with Nautobot's filters, one change with its snapshots.

use super::*;

/// The filters of the change log, as Nautobot's `ObjectChangeFilterSet`.
const CHANGE_FILTERS: &[&str] = &[
    "id",
    "q",
    "user",
    "user_id",
    "user_name",
    "request_id",
    "action",
    "changed_object_type",
    "changed_object_id",
    "change_context",
    "change_context_detail",
    "object_repr",
];

#[utoipa::path(
    get,
    path = "/api/extras/object-changes/",
    tag = "object changes",
    summary = "List object changes, newest first",
    description = "Filters: `id`, `q` (in the object's text), `user` (username or id), `user_id`, `user_name`, `request_id`, `action`, `changed_object_type`, `changed_object_id`, `change_context`, `change_context_detail`, `object_repr`; any other parameter is a 400.",
    params(PageQuery, DepthQuery),
    responses((status = 200, body = Page<ObjectChangeView>), Refusals),
)]
pub(crate) async fn list_changes<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewObjectChange>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<ObjectChangeView>>> {
    let query = ListQuery::of(&uri, CHANGE_FILTERS)?;
    let users = if query.depth > 0 { state.store.list_users().await? } else { Vec::new() };
    let shaper = query.shaper(&uri).with_users(users);
    let mut types = Vec::new();
    for value in query.values("changed_object_type") {
        types.push(
            ContentType::new(value.as_str()).map_err(|error| field_error("changed_object_type", error.to_string()))?,
        );
    }
    let mut requests = Vec::new();
    for value in query.values("request_id") {
        requests.push(value.parse::<Uuid>().map_err(|_| field_error("request_id", "Enter a valid UUID.".into()))?);
    }
    let ids = query.values("changed_object_id");
    // The whole log, or one object's changes: a page through the store's index, which passes over
    // the offset's changes unread; past the end, nothing is read.
    let only_object = ["changed_object_type", "changed_object_id"];
    let others_given = CHANGE_FILTERS.iter().any(|key| !only_object.contains(key) && !query.values(key).is_empty());
    let paged = match (types.as_slice(), ids) {
        _ if others_given => None,
        ([], []) => Some(None),
        ([content_type], [id]) => Some(Some(
            ObjectRef::new(content_type.clone(), id.as_str())
                .map_err(|error| field_error("changed_object_id", error.to_string()))?,
        )),
        _ => None,
    };
    if let Some(object) = paged {
        let count = usize::try_from(state.store.count_changes_of(object.as_ref()).await?).unwrap_or(usize::MAX);
        let offset = query.page.offset.unwrap_or(0);
        let changes = if offset < count {
            state.store.change_page(&ChangePage::new(object, offset, query.page.limit())).await?
        } else {
            Vec::new()
        };
        let views = changes.iter().map(|change| ObjectChangeView::of(change, &shaper)).collect();
        return Ok(Json(Page::at(views, count, query.page, &uri)));
    }
    // Other filters: the narrowest read the store has (one request's changes, or one object's, or
    // the whole log a chunk at a time), filtered here; only the page's changes are kept.
    let admitted = |change: &jobhooks_model::ObjectChange| {
        let user = change.user.as_deref().unwrap_or("");
        let user_matches =
            |wanted: &str| !user.is_empty() && (wanted == user || wanted == crate::shapes::user_id(user).to_string());
        (types.is_empty() || types.contains(&change.changed_object_type))
            && (requests.is_empty() || requests.contains(&change.request_id))
            && query.admits("changed_object_id", |id| id == change.changed_object_id)
            && query.admits("id", |id| id == change.id.0.to_string())
            && query.admits("user", user_matches)
            && query.admits("user_id", user_matches)
            && query.admits("user_name", |name| name == change.user_name)
            && query.admits("action", |action| action == change.action.as_str())
            && query.admits("change_context", |context| context == change.change_context.as_str())
            && query.admits("change_context_detail", |detail| detail == change.change_context_detail)
            && query.admits("object_repr", |repr| repr == change.object_repr)
            && query.admits_search(&[&change.object_repr])
    };
    let mut page = PageOf::new(query.page);
    match (types.as_slice(), ids, requests.as_slice()) {
        (_, _, [request]) => {
            // One request's changes, in order: newest first here, as Nautobot lists them.
            let mut changes = state.store.changes_for_request(*request).await?;
            changes.reverse();
            changes.into_iter().filter(|change| admitted(change)).for_each(|change| page.offer(change));
        }
        (types, ids, _) => {
            let object = match (types, ids) {
                ([content_type], [id]) => Some(
                    ObjectRef::new(content_type.clone(), id.as_str())
                        .map_err(|error| field_error("changed_object_id", error.to_string()))?,
                ),
                _ => None,
            };
            let mut read = 0;
            loop {
                let chunk = state.store.change_page(&ChangePage::new(object.clone(), read, SCAN_CHUNK)).await?;
                let got = chunk.len();
                read += got;
                chunk.into_iter().filter(|change| admitted(change)).for_each(|change| page.offer(change));
                if got < SCAN_CHUNK {
                    break;
                }
            }
        }
    }
    let views = page.shown.iter().map(|change| ObjectChangeView::of(change, &shaper)).collect();
    Ok(Json(Page::at(views, page.count, query.page, &uri)))
}

/// How many changes a filter the store has no index for reads at a time.
const SCAN_CHUNK: usize = 1_000;

/// A change with the object's state before and after it and their differences.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChangeWithSnapshots {
    #[serde(flatten)]
    change: ObjectChangeView,
    /// `{"prechange", "postchange", "differences"}`, as Nautobot's `get_snapshots`.
    #[schema(value_type = Object)]
    snapshots: Value,
}

#[utoipa::path(
    get,
    path = "/api/extras/object-changes/{id}/",
    tag = "object changes",
    summary = "One object change with its snapshots",
    params(IdPath, DepthQuery),
    responses((status = 200, body = ChangeWithSnapshots), Refusals),
)]
pub(crate) async fn get_change<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewObjectChange>,
    Path(id): Path<u64>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<ChangeWithSnapshots>> {
    let query = ListQuery::of(&uri, &[])?;
    let users = if query.depth > 0 { state.store.list_users().await? } else { Vec::new() };
    let change = state.store.get_change(ChangeId(id)).await?.ok_or_else(|| ApiError::missing("change", id))?;
    let snapshots = serde_json::to_value(change.get_snapshots()).unwrap_or(Value::Null);
    let change = ObjectChangeView::of(&change, &query.shaper(&uri).with_users(users));
    Ok(Json(ChangeWithSnapshots { change, snapshots }))
}
