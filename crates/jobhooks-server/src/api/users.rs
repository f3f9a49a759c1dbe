//! Users and their API tokens.

use super::*;

#[utoipa::path(
    get,
    path = "/api/users/",
    tag = "users",
    summary = "List users (superusers)",
    params(PageQuery),
    responses((status = 200, body = Page<User>), Refusals),
)]
pub(crate) async fn users<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Params(page): Params<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<jobhooks_model::User>>> {
    caller.require_superuser()?;
    Ok(Json(Page::of(state.store.list_users().await?, page, &uri)))
}

/// A user to add or replace, as `POST /api/users/` takes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    username: String,
    #[serde(default)]
    is_superuser: bool,
    #[serde(default)]
    permissions: Vec<jobhooks_model::Permission>,
}

#[utoipa::path(
    post,
    path = "/api/users/",
    tag = "users",
    summary = "Add or replace a user (superusers)",
    request_body = NewUser,
    responses((status = 201, body = User), Refusals),
)]
pub(crate) async fn create_user<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(new): Body<NewUser>,
) -> Answer<(StatusCode, Json<jobhooks_model::User>)> {
    caller.require_superuser()?;
    let mut user =
        jobhooks_model::User::new(new.username).map_err(|error| field_error("username", error.to_string()))?;
    user.is_superuser = new.is_superuser;
    user.permissions = new.permissions;
    state.store.put_user(user.clone()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Whose tokens a caller may manage: its own, or anyone's for a superuser.
pub(crate) fn may_manage_tokens_of(caller: &Caller, user: &str) -> Result<(), ApiError> {
    if caller.0.is_superuser || caller.0.username == user {
        Ok(())
    } else {
        Err(ApiError::Refused(
            "You do not have permission to perform this action: only superusers may manage another user's tokens."
                .into(),
        ))
    }
}

/// Whose tokens or sessions a list shows: the `user` asked for (the caller's own, or anyone's for
/// a superuser); without one, a superuser's list has everyone's and anyone else's their own.
pub(crate) fn listed_for(caller: &Caller, user: Option<String>) -> Result<Option<String>, ApiError> {
    let user = match user {
        Some(user) => Some(user),
        None if caller.0.is_superuser => None,
        None => Some(caller.0.username.clone()),
    };
    if let Some(user) = &user {
        may_manage_tokens_of(caller, user)?;
    }
    Ok(user)
}

/// A token as the API shows it: never its hash, and its key only in the answer that issued it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ShownToken {
    /// The token's public name, the middle of its key.
    id: String,
    /// The user it acts as.
    user: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    description: String,
    /// Whether it may write.
    write_enabled: bool,
    /// The key (`Authorization: Token <key>`), shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

pub(crate) fn shown_token(token: &ApiToken) -> ShownToken {
    ShownToken {
        id: token.id.clone(),
        user: token.user.clone(),
        created: token.created,
        expires: token.expires,
        description: token.description.clone(),
        write_enabled: token.write_enabled,
        key: None,
    }
}

/// The filter of the tokens list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TokenQuery {
    pub(crate) user: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/users/tokens/",
    tag = "users",
    summary = "List API tokens: the caller's own, or with `user` (superusers: every token)",
    params(TokenQuery),
    responses((status = 200, body = Page<ShownToken>), Refusals),
)]
pub(crate) async fn list_tokens<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Params(query): Params<TokenQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<ShownToken>>> {
    let user = listed_for(&caller, query.user.clone())?;
    let tokens = state.store.list_tokens(user.as_deref()).await?.iter().map(shown_token).collect();
    Ok(Json(Page::of(tokens, PageQuery { limit: query.limit, offset: query.offset }, &uri)))
}

/// A token to issue, as `POST /api/users/tokens/` takes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// Whose: the caller's own (the default); a token for another user is refused, as in Nautobot.
    user: Option<String>,
    /// When it stops working; no later than the token the request came with.
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    #[serde(default)]
    description: String,
    /// Whether it may write (default: yes).
    #[serde(default = "yes")]
    write_enabled: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(
    post,
    path = "/api/users/tokens/",
    tag = "users",
    summary = "Issue a token; the answer carries its key, once",
    request_body = NewToken,
    responses((status = 201, body = ShownToken), Refusals),
)]
pub(crate) async fn create_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Body(new): Body<NewToken>,
) -> Answer<(StatusCode, Json<ShownToken>)> {
    let user = new.user.unwrap_or_else(|| caller.0.username.clone());
    jobhooks_model::may_mint(&caller.1, &user, new.expires).map_err(|refused| match refused {
        jobhooks_model::MintRefused::Outlives { .. } => field_error("expires", refused.to_string()),
        other => ApiError::Refused(format!("You do not have permission to perform this action: {other}.")),
    })?;
    let now = jobhooks_model::to_microseconds(OffsetDateTime::now_utc());
    if new.expires.is_some_and(|expires| expires <= now) {
        return Err(field_error("expires", "a token must expire in the future".to_owned()));
    }
    let mut issued = ApiToken::issue(&user, now, new.expires, new.description);
    issued.token.write_enabled = new.write_enabled;
    state.store.add_token(issued.token.clone()).await?;
    let mut shown = shown_token(&issued.token);
    shown.key = Some(issued.key);
    Ok((StatusCode::CREATED, Json(shown)))
}

#[utoipa::path(
    get,
    path = "/api/users/tokens/{id}/",
    tag = "users",
    summary = "One token",
    params(TokenPath),
    responses((status = 200, body = ShownToken), Refusals),
)]
pub(crate) async fn get_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<Json<ShownToken>> {
    let token = state.store.get_token(&id).await?.ok_or_else(|| ApiError::missing("token", &id))?;
    may_manage_tokens_of(&caller, &token.user)?;
    Ok(Json(shown_token(&token)))
}

#[utoipa::path(
    delete,
    path = "/api/users/tokens/{id}/",
    tag = "users",
    summary = "Revoke a token",
    params(TokenPath),
    responses((status = 204, description = "Revoked"), Refusals),
)]
pub(crate) async fn delete_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<StatusCode> {
    let token = state.store.get_token(&id).await?.ok_or_else(|| ApiError::missing("token", &id))?;
    may_manage_tokens_of(&caller, &token.user)?;
    state.store.delete_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `POST /api/users/tokens/provision/` takes (every field optional; the body may be empty).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProvisionToken {
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires: Option<OffsetDateTime>,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    write_enabled: bool,
}

/// The user and password of `Authorization: Basic …`.
fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[utoipa::path(
    post,
    path = "/api/users/tokens/provision/",
    tag = "users",
    summary = "Make a token for the user whose name and web password `Authorization: Basic` gives (Nautobot's provisioning)",
    request_body = ProvisionToken,
    responses((status = 201, body = ShownToken), Refusals),
    security(()),
)]
pub(crate) async fn provision_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Answer<(StatusCode, Json<ShownToken>)> {
    let refused = || ApiError::Unauthenticated("Invalid username/password.".into());
    let (username, password) = basic_credentials(&headers).ok_or_else(refused)?;
    let new: ProvisionToken = if body.iter().all(u8::is_ascii_whitespace) {
        ProvisionToken { write_enabled: true, ..ProvisionToken::default() }
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::Body { status: StatusCode::BAD_REQUEST, detail: error.to_string() })?
    };
    if !crate::auth::verify_password(&state, &username, password).await? {
        return Err(refused());
    }
    let now = jobhooks_model::to_microseconds(OffsetDateTime::now_utc());
    if new.expires.is_some_and(|expires| expires <= now) {
        return Err(field_error("expires", "a token must expire in the future".to_owned()));
    }
    let mut issued = ApiToken::issue(&username, now, new.expires, new.description);
    issued.token.write_enabled = new.write_enabled;
    state.store.add_token(issued.token.clone()).await?;
    let mut shown = shown_token(&issued.token);
    shown.key = Some(issued.key);
    Ok((StatusCode::CREATED, Json(shown)))
}

/// The filters of Nautobot's user list.
const USER_FILTERS: &[&str] = &["id", "q", "username", "is_superuser"];

#[utoipa::path(
    get,
    path = "/api/users/users/",
    tag = "users",
    summary = "List users as Nautobot shows them (superusers only)",
    description = "Filters: `id`, `q` (in the username), `username`, `is_superuser`; any other parameter is a 400.",
    params(PageQuery),
    responses((status = 200, body = Page<UserView>), Refusals),
)]
pub(crate) async fn list_user_views<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<UserView>>> {
    caller.require_superuser()?;
    let query = ListQuery::of(&uri, USER_FILTERS)?;
    let shaper = query.shaper(&uri);
    let mut users = Vec::new();
    for user in state.store.list_users().await? {
        let kept = query.admits("id", |id| id == crate::shapes::user_id(&user.username).to_string())
            && query.admits("username", |name| name == user.username)
            && query.admits_search(&[&user.username])
            && query.admits_flag("is_superuser", user.is_superuser)?;
        if kept {
            users.push(UserView::of(&user, &shaper));
        }
    }
    Ok(Json(Page::of(users, query.page, &uri)))
}

#[utoipa::path(
    get,
    path = "/api/users/users/{key}/",
    tag = "users",
    summary = "One user, by id or username (superusers, or the user themself)",
    params(KeyPath),
    responses((status = 200, body = UserView), Refusals),
)]
pub(crate) async fn get_user_view<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<UserView>> {
    let query = ListQuery::of(&uri, &[])?;
    let own = key == caller.0.username || key == crate::shapes::user_id(&caller.0.username).to_string();
    if !own {
        caller.require_superuser()?;
    }
    let user = match key.parse::<Uuid>() {
        Ok(id) => state.store.list_users().await?.into_iter().find(|user| crate::shapes::user_id(&user.username) == id),
        Err(_) => state.store.get_user(&key).await?,
    };
    let user = user.ok_or_else(|| ApiError::missing("user", &key))?;
    Ok(Json(UserView::of(&user, &query.shaper(&uri))))
}
