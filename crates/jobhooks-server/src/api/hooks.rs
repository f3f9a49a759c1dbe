//! Job hooks: list (with Nautobot's filters), create, read, change, delete; a hook is addressed by
//! its id or, where unambiguous, its name.

use super::*;
use jobhooks_model::{Condition, HookFilter, WEBHOOK_JOB, Webhook};

/// The filters of the job hook list, as Nautobot's `JobHookFilterSet`.
const HOOK_FILTERS: &[&str] =
    &["id", "q", "name", "content_types", "enabled", "job", "type_create", "type_update", "type_delete"];

/// A job hook to write, as Nautobot's serializer takes it: `job` as an id, a nested record
/// (`{"id": …}`) or a class path. Read-only fields a client sends back (`url`, `display`, …) are
/// ignored; other unknown fields are refused.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookWrite {
    /// Taken on create only; given by the store when absent.
    id: Option<Uuid>,
    name: Option<String>,
    #[schema(value_type = Option<Vec<String>>)]
    content_types: Option<Vec<ContentType>>,
    job: Option<JobReference>,
    enabled: Option<bool>,
    type_create: Option<bool>,
    type_update: Option<bool>,
    type_delete: Option<bool>,
    /// NetBox's event-rule conditions; `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    conditions: Option<Option<Value>>,
    changed_fields: Option<Vec<String>>,
    /// An outbound webhook (Nautobot's webhook fields: `payload_url`, `http_method`,
    /// `http_content_type`, `additional_headers`, `body_template`, `secret`, `ssl_verification`)
    /// in place of a job; `null` removes it. A `secret` of `********` keeps the stored one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    webhook: Option<Option<Value>>,
}

/// A field that is present, even as `null`: `Some(None)`; an absent one stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(deserializer).map(Some)
}

impl HookWrite {
    async fn patch<S: Storage>(self, state: &AppState<S>) -> Answer<JobHookPatch> {
        let job = match self.job {
            Some(reference) => Some(reference.class_path(&*state.store).await?),
            // A webhook's job is the built-in one that sends it.
            None if matches!(self.webhook, Some(Some(_))) => Some(WEBHOOK_JOB.to_owned()),
            None => None,
        };
        Ok(JobHookPatch {
            name: self.name,
            content_types: self.content_types,
            job,
            enabled: self.enabled,
            type_create: self.type_create,
            type_update: self.type_update,
            type_delete: self.type_delete,
            conditions: match self.conditions {
                Some(Some(json)) => Some(Some(
                    Condition::from_json(&json).map_err(|error| field_error("conditions", error.to_string()))?,
                )),
                Some(None) => Some(None),
                None => None,
            },
            changed_fields: self.changed_fields,
            webhook: match self.webhook {
                Some(Some(json)) => Some(Some(
                    serde_json::from_value::<Webhook>(json)
                        .map_err(|error| field_error("webhook", error.to_string()))?,
                )),
                Some(None) => Some(None),
                None => None,
            },
        })
    }

    /// The whole hook this write describes (a create or a PUT): name, content types and job are
    /// required.
    async fn whole<S: Storage>(self, state: &AppState<S>) -> Answer<JobHook> {
        let id = self.id;
        let patch = self.patch(state).await?;
        let mut missing = ValidationErrors::default();
        for (field, absent) in [
            ("name", patch.name.is_none()),
            ("content_types", patch.content_types.is_none()),
            ("job", patch.job.is_none()),
        ] {
            if absent {
                missing.add(field, "This field is required.");
            }
        }
        missing.into_result().map_err(ApiError::Validation)?;
        let mut hook = patch.apply_to(&JobHook::new("", Vec::new(), ""));
        hook.id = id.unwrap_or_default();
        Ok(hook)
    }
}

/// What a write of a hook with a webhook needs beyond the hook permission: `extras.add_webhook` to
/// create one, `extras.change_webhook` to change one (sending requests from the server is a power
/// of its own), and a destination the allow-list admits.
fn guard_webhook<S: Storage>(
    state: &AppState<S>,
    caller: &Caller,
    hook: &JobHook,
    stored: Option<&JobHook>,
) -> Answer<()> {
    match webhook_refusal(&state.webhook_policy, &caller.0, hook, stored) {
        None => Ok(()),
        Some(WebhookRefusal::Permission(permission)) => caller.require(permission),
        Some(WebhookRefusal::Destination(message)) => Err(field_error("webhook", message)),
    }
}

/// Why a hook's webhook may not be written by `user` under `policy`.
pub(crate) enum WebhookRefusal {
    /// The permission it lacks.
    Permission(&'static str),
    /// What the allow-list says, under `webhook`.
    Destination(String),
}

/// Whether `user` may write `hook` (replacing `stored`, when there is one) as far as its webhook
/// goes: the permission to add or change webhooks, and a destination `policy` admits. A webhook
/// left as it was needs neither.
pub(crate) fn webhook_refusal(
    policy: &jobhooks_model::WebhookPolicy,
    user: &jobhooks_model::User,
    hook: &JobHook,
    stored: Option<&JobHook>,
) -> Option<WebhookRefusal> {
    let webhook = hook.webhook.as_ref()?;
    if stored.is_some_and(|stored| stored.webhook.as_ref() == Some(webhook)) {
        return None;
    }
    let permission = if stored.is_some() { "extras.change_webhook" } else { "extras.add_webhook" };
    if !user.has_perm(permission) {
        return Some(WebhookRefusal::Permission(permission));
    }
    match webhook.literal_host() {
        Some(host) if policy.may_admit_host(&host) => None,
        Some(host) => Some(WebhookRefusal::Destination(format!(
            "payload_url: {host} is not a destination the webhook allow-list (webhooks.allowed_destinations) admits"
        ))),
        None if policy.is_open() => None,
        None => Some(WebhookRefusal::Destination(
            "payload_url: with a webhook allow-list, the URL's host is written out, not a template".to_owned(),
        )),
    }
}

/// The hook `key` names: its id, else its name.
pub(crate) async fn hook_by_key<S: Storage>(state: &AppState<S>, key: &str) -> Answer<JobHook> {
    let found = match key.parse::<Uuid>() {
        Ok(id) => state.store.find_hooks(&HookFilter::id(id)).await?.into_iter().next(),
        Err(_) => state.store.get_hook(key).await?,
    };
    found.ok_or_else(|| ApiError::missing("job hook", key))
}

async fn shaped<S: Storage>(state: &AppState<S>, hook: &JobHook, query: &ListQuery, uri: &Uri) -> Answer<JobHookView> {
    let shaper = query.shaper(uri).with_jobs(state.store.get_job(&hook.job).await?);
    Ok(JobHookView::of(hook, &shaper))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-hooks/",
    tag = "job hooks",
    summary = "List job hooks",
    description = "Filters: `id`, `q` (in the name), `name`, `content_types`, `enabled`, `job` (id or class path), `type_create`, `type_update`, `type_delete`; any other parameter is a 400.",
    params(PageQuery, DepthQuery),
    responses((status = 200, body = Page<JobHookView>), Refusals),
)]
pub(crate) async fn list_hooks<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobHook>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<JobHookView>>> {
    let query = ListQuery::of(&uri, HOOK_FILTERS)?;
    let shaper = query.shaper(&uri).with_jobs(state.store.list_jobs().await?);
    let mut filter = HookFilter::default();
    filter.ids = query.uuids("id")?;
    filter.names = query.strings("name");
    filter.search = query.strings("q");
    filter.content_types = query.content_types("content_types")?;
    filter.jobs = query.values("job").iter().map(|job| shaper.job_class_path(job)).collect();
    filter.enabled = query.flag("enabled")?;
    filter.type_create = query.flag("type_create")?;
    filter.type_update = query.flag("type_update")?;
    filter.type_delete = query.flag("type_delete")?;
    let hooks: Vec<JobHookView> =
        state.store.find_hooks(&filter).await?.iter().map(|hook| JobHookView::of(hook, &shaper)).collect();
    Ok(Json(Page::of(hooks, query.page, &uri)))
}

#[utoipa::path(
    post,
    path = "/api/extras/job-hooks/",
    tag = "job hooks",
    summary = "Create a job hook",
    request_body = HookWrite,
    responses((status = 201, body = JobHookView), Refusals),
)]
pub(crate) async fn create_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<AddJobHook>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Write(write): Write<HookWrite>,
) -> Answer<(StatusCode, Json<JobHookView>)> {
    let query = ListQuery::of(&uri, &[])?;
    let hook = write.whole(&state).await?;
    if hook.webhook.as_ref().is_some_and(|webhook| webhook.secret == jobhooks_model::SECRET_MASK) {
        return Err(field_error(
            "webhook",
            format!("secret: give the secret itself; {} stands for a stored one", jobhooks_model::SECRET_MASK),
        ));
    }
    guard_webhook(&state, &caller, &hook, None)?;
    let hook = state.store.create_hook(hook).await?;
    Ok((StatusCode::CREATED, Json(shaped(&state, &hook, &query, &uri).await?)))
}

#[utoipa::path(
    get,
    path = "/api/extras/job-hooks/{key}/",
    tag = "job hooks",
    summary = "One job hook, by id or name",
    params(KeyPath, DepthQuery),
    responses((status = 200, body = JobHookView), Refusals),
)]
pub(crate) async fn get_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ViewJobHook>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<JobHookView>> {
    let query = ListQuery::of(&uri, &[])?;
    let hook = hook_by_key(&state, &key).await?;
    Ok(Json(shaped(&state, &hook, &query, &uri).await?))
}

#[utoipa::path(
    patch,
    path = "/api/extras/job-hooks/{key}/",
    tag = "job hooks",
    summary = "Change the fields given of a job hook",
    params(KeyPath),
    request_body = HookWrite,
    responses((status = 200, body = JobHookView), Refusals),
)]
pub(crate) async fn patch_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobHook>,
    caller: Caller,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    Write(write): Write<HookWrite>,
) -> Answer<Json<JobHookView>> {
    let query = ListQuery::of(&uri, &[])?;
    let stored = hook_by_key(&state, &key).await?;
    let patch = write.patch(&state).await?;
    guard_webhook(&state, &caller, &patch.clone().apply_to(&stored), Some(&stored))?;
    let hook = state.store.update_hook(&stored.name, patch).await?;
    Ok(Json(shaped(&state, &hook, &query, &uri).await?))
}

#[utoipa::path(
    put,
    path = "/api/extras/job-hooks/{key}/",
    tag = "job hooks",
    summary = "Replace a job hook",
    params(KeyPath),
    request_body = HookWrite,
    responses((status = 200, body = JobHookView), Refusals),
)]
pub(crate) async fn put_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<ChangeJobHook>,
    caller: Caller,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    Write(write): Write<HookWrite>,
) -> Answer<Json<JobHookView>> {
    let query = ListQuery::of(&uri, &[])?;
    let stored = hook_by_key(&state, &key).await?;
    let replacement = JobHookPatch::from(write.whole(&state).await?);
    guard_webhook(&state, &caller, &replacement.clone().apply_to(&stored), Some(&stored))?;
    let hook = state.store.update_hook(&stored.name, replacement).await?;
    Ok(Json(shaped(&state, &hook, &query, &uri).await?))
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-hooks/{key}/",
    tag = "job hooks",
    summary = "Delete a job hook",
    params(KeyPath),
    responses((status = 204, description = "Deleted"), Refusals),
)]
pub(crate) async fn delete_hook<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobHook>,
    Path(key): Path<String>,
) -> Answer<StatusCode> {
    let stored = hook_by_key(&state, &key).await?;
    state.store.delete_hook(&stored.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/extras/job-hooks/",
    tag = "job hooks",
    summary = "Delete several job hooks: the body lists them, `[{\"id\": …}, …]`; all of them exist or none is deleted",
    request_body = Vec<BulkId>,
    responses((status = 204, description = "Deleted"), Refusals),
)]
pub(crate) async fn delete_hooks<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    _allowed: Allowed<DeleteJobHook>,
    Body(ids): Body<Vec<BulkId>>,
) -> Answer<StatusCode> {
    let mut names = Vec::with_capacity(ids.len());
    for BulkId { id } in ids {
        names.push(hook_by_key(&state, &id.to_string()).await?.name);
    }
    for name in names {
        state.store.delete_hook(&name).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
