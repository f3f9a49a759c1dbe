//! Job buttons: list (with Nautobot's filters), create, read, change, delete; a button is
//! addressed by its id or, where unambiguous, its name.

use super::*;
use jobhooks_model::ButtonFilter;

/// The filters of the job button list, as Nautobot's `JobButtonFilterSet`.
const BUTTON_FILTERS: &[&str] = &[
    "id",
    "q",
    "name",
    "content_types",
    "enabled",
    "text",
    "job",
    "weight",
    "group_name",
    "button_class",
    "confirmation",
];

/// A job button to write, as Nautobot's serializer takes it: `job` as an id, a nested record or a
/// class path; an empty `group_name` is no group. Read-only fields are ignored, other unknown
/// fields refused.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ButtonWrite {
    /// Taken on create only; given by the store when absent.
    id: Option<Uuid>,
    name: Option<String>,
    #[schema(value_type = Option<Vec<String>>)]
    content_types: Option<Vec<ContentType>>,
    text: Option<String>,
    job: Option<JobReference>,
    weight: Option<i32>,
    #[serde(default, deserialize_with = "group_name")]
    group_name: Option<Option<String>>,
    #[schema(value_type = Option<String>)]
    button_class: Option<jobhooks_model::ButtonClass>,
    confirmation: Option<bool>,
    enabled: Option<bool>,
}

/// A given `group_name`: `null` and `""` are no group.
fn group_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    let group = Option::<String>::deserialize(deserializer)?;
    Ok(Some(group.filter(|group| !group.is_empty())))
}

impl ButtonWrite {
    async fn patch<S: Storage>(self, state: &AppState<S>) -> Answer<JobButtonPatch> {
        let job = match self.job {
            Some(reference) => Some(reference.class_path(&*state.store).await?),
            None => None,
        };
        Ok(JobButtonPatch {
            name: self.name,
            content_types: self.content_types,
            text: self.text,
            job,
            weight: self.weight,
            group_name: self.group_name,
            button_class: self.button_class,
            confirmation: self.confirmation,
            enabled: self.enabled,
        })
    }

    /// The whole button this write describes (a create or a PUT): name, content types, text and
    /// job are required; the rest take Nautobot's defaults.
    async fn whole<S: Storage>(self, state: &AppState<S>) -> Answer<JobButton> {
        let id = self.id;
        let patch = self.patch(state).await?;
        let mut missing = ValidationErrors::default();
        let required = [
            ("name", patch.name.is_none()),
            ("content_types", patch.content_types.is_none()),
            ("text", patch.text.is_none()),
            ("job", patch.job.is_none()),
        ];
        for (field, absent) in required {
            if absent {
                missing.add(field, "This field is required.");
            }
        }
        missing.into_result().map_err(ApiError::Validation)?;
        let mut button = patch.apply_to(&JobButton::new("", Vec::new(), "", ""));
        button.id = id.unwrap_or_default();
        Ok(button)
    }
}

/// The button `key` names: its id, else its name.
pub(crate) async fn button_by_key<S: Storage>(state: &AppState<S>, key: &str) -> Answer<JobButton> {
    let found = match key.parse::<Uuid>() {
        Ok(id) => state.store.find_buttons(&ButtonFilter::id(id)).await?.into_iter().next(),
        Err(_) => state.store.get_button(key).await?,
    };
    found.ok_or_else(|| ApiError::missing("job button", key))
}

async fn shaped<S: Storage>(
    state: &AppState<S>,
    button: &JobButton,
    query: &ListQuery,
    uri: &Uri,
) -> Answer<JobButtonView> {
    let shaper = query.shaper(uri).with_jobs(state.store.get_job(&button.job).await?);
    Ok(JobButtonView::of(button, &shaper))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-buttons/",
    tag = "job buttons",
    summary = "List job buttons",
    description = "Filters: `id`, `q` (in the name or text), `name`, `content_types`, `enabled`, `text`, `job` (id or class path), `weight`, `group_name`, `button_class`, `confirmation`; any other parameter is a 400.",
    params(PageQuery, DepthQuery),
    responses((status = 200, body = Page<JobButtonView>), Refusals),
)]
pub(crate) async fn list_buttons<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobButton>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobButtonView>>> {
    let query = ListQuery::of(&uri, BUTTON_FILTERS)?;
    let shaper = query.shaper(&uri).with_jobs(state.store.list_jobs().await?);
    let mut filter = ButtonFilter::default();
    filter.ids = query.uuids("id")?;
    filter.names = query.strings("name");
    filter.search = query.strings("q");
    filter.content_types = query.content_types("content_types")?;
    filter.texts = query.strings("text");
    filter.jobs = query.values("job").iter().map(|job| shaper.job_class_path(job)).collect();
    filter.weights = query.parsed("weight", |weight| weight.parse().map_err(|_| "Enter a whole number.".to_owned()))?;
    filter.group_names = query.strings("group_name");
    filter.button_classes = query.strings("button_class");
    filter.enabled = query.flag("enabled")?;
    filter.confirmation = query.flag("confirmation")?;
    let buttons: Vec<JobButtonView> =
        state.store.find_buttons(&filter).await?.iter().map(|button| JobButtonView::of(button, &shaper)).collect();
    Ok(Json(Page::of(buttons, query.page, &uri)))
}

#[utoipa::path(
    post,
    path = "/api/extras/job-buttons/",
    tag = "job buttons",
    summary = "Create a job button",
    request_body = ButtonWrite,
    responses((status = 201, body = JobButtonView), Refusals),
)]
pub(crate) async fn create_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<AddJobButton>,
    OriginalUri(uri): OriginalUri,
    Write(write): Write<ButtonWrite>,
) -> Answer<(StatusCode, Json<JobButtonView>)> {
    let query = ListQuery::of(&uri, &[])?;
    let button = state.store.create_button(write.whole(&state).await?).await?;
    Ok((StatusCode::CREATED, Json(shaped(&state, &button, &query, &uri).await?)))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-buttons/{key}/",
    tag = "job buttons",
    summary = "One job button, by id or name",
    params(KeyPath, DepthQuery),
    responses((status = 200, body = JobButtonView), Refusals),
)]
pub(crate) async fn get_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobButton>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<JobButtonView>> {
    let query = ListQuery::of(&uri, &[])?;
    let button = button_by_key(&state, &key).await?;
    Ok(Json(shaped(&state, &button, &query, &uri).await?))
}

#[utoipa::path(
    patch,
    path = "/api/extras/job-buttons/{key}/",
    tag = "job buttons",
    summary = "Change the fields given of a job button",
    params(KeyPath),
    request_body = ButtonWrite,
    responses((status = 200, body = JobButtonView), Refusals),
)]
pub(crate) async fn patch_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobButton>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    Write(write): Write<ButtonWrite>,
) -> Answer<Json<JobButtonView>> {
    let query = ListQuery::of(&uri, &[])?;
    let stored = button_by_key(&state, &key).await?;
    let button = state.store.update_button(&stored.name, write.patch(&state).await?).await?;
    Ok(Json(shaped(&state, &button, &query, &uri).await?))
}

#[utoipa::path(
    put,
    path = "/api/extras/job-buttons/{key}/",
    tag = "job buttons",
    summary = "Replace a job button",
    params(KeyPath),
    request_body = ButtonWrite,
    responses((status = 200, body = JobButtonView), Refusals),
)]
pub(crate) async fn put_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobButton>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    Write(write): Write<ButtonWrite>,
) -> Answer<Json<JobButtonView>> {
    let query = ListQuery::of(&uri, &[])?;
    let stored = button_by_key(&state, &key).await?;
    let replacement = JobButtonPatch::from(write.whole(&state).await?);
    let button = state.store.update_button(&stored.name, replacement).await?;
    Ok(Json(shaped(&state, &button, &query, &uri).await?))
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-buttons/{key}/",
    tag = "job buttons",
    summary = "Delete a job button",
    params(KeyPath),
    responses((status = 204, description = "Deleted"), Refusals),
)]
pub(crate) async fn delete_button<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobButton>,
    Path(key): Path<String>,
) -> Answer<StatusCode> {
    let stored = button_by_key(&state, &key).await?;
    state.store.delete_button(&stored.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-buttons/",
    tag = "job buttons",
    summary = "Delete several job buttons: the body lists them, `[{\"id\": …}, …]`; all of them exist or none is deleted",
    request_body = Vec<BulkId>,
    responses((status = 204, description = "Deleted"), Refusals),
)]
pub(crate) async fn delete_buttons<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobButton>,
    Body(ids): Body<Vec<BulkId>>,
) -> Answer<StatusCode> {
    let mut names = Vec::with_capacity(ids.len());
    for BulkId { id } in ids {
        names.push(button_by_key(&state, &id.to_string()).await?.name);
    }
    for name in names {
        state.store.delete_button(&name).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
