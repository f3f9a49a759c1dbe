//! Passwords and login sessions of the web pages, for `jobhooks users passwd` and `jobhooks users
//! sessions` through a server: a user manages their own, a superuser anyone's.

use super::*;
use jobhooks_model::{LoginSession, PasswordHash};

/// A password to set, or `null` to remove it (the user can then no longer log in).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPassword {
    password: Option<String>,
}

/// What setting a password answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct PasswordSet {
    username: String,
    /// Whether the user can log in now.
    has_password: bool,
}

/// A user's name in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct UserPath {
    /// The user's name.
    username: String,
}

#[utoipa::path(
    put,
    path = "/api/users/{username}/password/",
    tag = "users",
    summary = "Set or remove a user's web password (the user or a superuser); every session of the user ends",
    params(UserPath),
    request_body = NewPassword,
    responses((status = 200, body = PasswordSet), Refusals),
)]
pub(crate) async fn set_password<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(username): Path<String>,
    Body(new): Body<NewPassword>,
) -> Answer<Json<PasswordSet>> {
    if !caller.0.is_superuser && caller.0.username != username {
        return Err(ApiError::Refused(
            "You do not have permission to perform this action: only superusers may set another user's password."
                .into(),
        ));
    }
    let hash = match new.password {
        None => None,
        Some(password) => {
            let cost = state.ui.password_cost;
            let hashed =
                tokio::task::spawn_blocking(move || PasswordHash::new(&password, cost)).await.map_err(|_| {
                    ApiError::Body { status: StatusCode::INTERNAL_SERVER_ERROR, detail: "hashing failed".into() }
                })?;
            Some(hashed.map_err(|refused| field_error("password", refused.to_string()))?)
        }
    };
    let has_password = hash.is_some();
    state.store.set_password(&username, hash).await?;
    Ok(Json(PasswordSet { username, has_password }))
}

/// A login session as the API shows it: never its key's hash.
#[derive(Serialize, Deserialize, ToSchema)]
pub(crate) struct ShownSession {
    /// The session's public name.
    id: String,
    user: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
    user_agent: String,
}

fn shown_session(session: &LoginSession) -> ShownSession {
    ShownSession {
        id: session.id.clone(),
        user: session.user.clone(),
        created: session.created,
        last_seen: session.last_seen,
        user_agent: session.user_agent.clone(),
    }
}

#[utoipa::path(
    get,
    path = "/api/users/sessions/",
    tag = "users",
    summary = "List web login sessions: the caller's own, or with `user` (superusers: every session)",
    params(TokenQuery),
    responses((status = 200, body = Page<ShownSession>), Refusals),
)]
pub(crate) async fn list_sessions<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Params(query): Params<TokenQuery>,
    OriginalUri(uri): OriginalUri,
) -> Answer<Json<Page<ShownSession>>> {
    let user = listed_for(&caller, query.user.clone())?;
    let sessions: Vec<ShownSession> =
        state.store.list_logins(user.as_deref()).await?.iter().map(shown_session).collect();
    Ok(Json(Page::of(sessions, PageQuery { limit: query.limit, offset: query.offset }, &uri)))
}

#[utoipa::path(
    delete,
    path = "/api/users/sessions/{id}/",
    tag = "users",
    summary = "End a web login session (its user or a superuser)",
    params(TokenPath),
    responses((status = 204), Refusals),
)]
pub(crate) async fn end_session<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Answer<StatusCode> {
    let session = state.store.get_login(&id).await?.ok_or_else(|| ApiError::missing("session", &id))?;
    may_manage_tokens_of(&caller, &session.user)?;
    state.store.end_login(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
