//! The change log: list with Nautobot's filters, one change with its snapshots.

use super::*;
use jobhooks_model::{ChangeFilter, ChangeId};

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
    let mut filter = ChangeFilter::default();
    filter.ids =
        query.parsed("id", |id| id.parse().map(ChangeId).map_err(|_| "A whole number is required.".to_owned()))?;
    filter.search = query.strings("q");
    // A user is named by username or by id; a change keeps its user's name.
    let users = state.store.list_users().await?;
    let username_of = |wanted: &String| {
        let by_id = users.iter().find(|user| crate::shapes::user_id(&user.username).to_string() == *wanted);
        by_id.map_or_else(|| wanted.clone(), |user| user.username.clone())
    };
    filter.users = query.values("user").iter().chain(query.values("user_id")).map(username_of).collect();
    filter.user_names = query.strings("user_name");
    filter.request_ids = query.parsed("request_id", |id| id.parse().map_err(|_| "Enter a valid UUID.".to_owned()))?;
    filter.actions = query.parsed("action", |action| {
        action.parse().map_err(|_| format!("Select a valid choice. {action} is not one of the available choices."))
    })?;
    filter.content_types = query.content_types("changed_object_type")?;
    filter.object_ids = query.strings("changed_object_id");
    filter.change_contexts = query.parsed("change_context", |context| {
        jobhooks_model::ChangeContextKind::from_name(context)
            .ok_or_else(|| format!("Select a valid choice. {context} is not one of the available choices."))
    })?;
    filter.change_context_details = query.strings("change_context_detail");
    filter.object_reprs = query.strings("object_repr");
    if let ([content_type], [id]) = (filter.content_types.as_slice(), filter.object_ids.as_slice()) {
        ObjectRef::new(content_type.clone(), id.as_str())
            .map_err(|error| field_error("changed_object_id", error.to_string()))?;
    }
    // The store reads through its narrowest index for the filter and passes over the offset's
    // changes; past the end, nothing is read.
    let count = usize::try_from(state.store.count_changes_where(&filter).await?).unwrap_or(usize::MAX);
    let offset = query.page.offset.unwrap_or(0);
    let changes =
        if offset < count { state.store.find_changes(&filter, offset, query.page.limit()).await? } else { Vec::new() };
    let views = changes.iter().map(|change| ObjectChangeView::of(change, &shaper)).collect();
    Ok(Json(Page::at(views, count, query.page, &uri)))
}

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
