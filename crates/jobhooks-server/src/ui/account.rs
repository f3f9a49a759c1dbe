//! `/account/`: one's own API tokens (a new key shown once) and login sessions (each can be
//! ended); superusers also see every user and every session.

use axum::extract::{Path, State};
use axum::response::Response;
use jobhooks_model::ports::Storage;
use jobhooks_model::{ApiToken, OffsetDateTime};
use serde_json::{Value, json};

use super::changes::shown_time;
use super::form::Posted;
use super::render::{Flash, PageError, page, redirect_with};
use super::visitor::Visitor;
use crate::AppState;

/// The longest a token made here may last, in days.
const MAX_TOKEN_DAYS: i64 = 3650;

async fn account_page<S: Storage + 'static>(
    state: &AppState<S>,
    visitor: &Visitor,
    new_key: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let me = visitor.user.username.as_str();
    let tokens: Vec<Value> = state
        .store
        .list_tokens(Some(me))
        .await?
        .iter()
        .map(|token| {
            json!({
                "id": token.id,
                "description": token.description,
                "created": shown_time(token.created),
                "expires": token.expires.map(shown_time),
                "write_enabled": token.write_enabled,
            })
        })
        .collect();
    let sessions_of = if visitor.user.is_superuser { None } else { Some(me) };
    let sessions: Vec<Value> = state
        .store
        .list_logins(sessions_of)
        .await?
        .iter()
        .map(|session| {
            json!({
                "id": session.id,
                "user": session.user,
                "user_agent": session.user_agent,
                "created": shown_time(session.created),
                "last_seen": shown_time(session.last_seen),
                "current": session.id == visitor.session.id,
            })
        })
        .collect();
    let users: Vec<Value> = if visitor.user.is_superuser {
        let mut users = Vec::new();
        for user in state.store.list_users().await? {
            let has_password = state.store.get_password(&user.username).await?.is_some();
            users.push(json!({
                "username": user.username,
                "is_superuser": user.is_superuser,
                "permissions": user.permissions.iter().map(|permission| permission.name.clone()).collect::<Vec<_>>(),
                "has_password": has_password,
            }));
        }
        users
    } else {
        Vec::new()
    };
    Ok(page(
        visitor,
        "account.html",
        json!({
            "title": "Account",
            "tokens": tokens,
            "sessions": sessions,
            "users": users,
            "new_key": new_key,
            "error": error,
        }),
    ))
}

pub(crate) async fn show<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    account_page(&state, &visitor, None, None).await
}

/// Makes a token and shows its key on the page it answers: once, never again.
pub(crate) async fn create_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    posted: Posted,
) -> Result<Response, PageError> {
    let Posted { visitor, form } = posted;
    let days = match form.text("expires_days") {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => Some(days),
            _ => {
                let error =
                    format!("Expires in: enter a number of days from 1 to {MAX_TOKEN_DAYS}, or leave it empty.");
                return account_page(&state, &visitor, None, Some(error)).await;
            }
        },
    };
    let now = OffsetDateTime::now_utc();
    let expires = days.map(|days| now + time::Duration::days(days));
    let description: String = form.text("description").chars().take(200).collect();
    let mut issued = ApiToken::issue(&visitor.user.username, now, expires, description);
    issued.token.write_enabled = !form.checked("read_only");
    state.store.add_token(issued.token).await?;
    account_page(&state, &visitor, Some(issued.key), None).await
}

pub(crate) async fn delete_token<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let visitor = posted.visitor;
    let token = state.store.get_token(&id).await?.ok_or_else(|| PageError::not_found("token", &id))?;
    if token.user != visitor.user.username && !visitor.user.is_superuser {
        return Err(PageError::forbidden("Only the token's owner, or a superuser, may revoke it."));
    }
    state.store.delete_token(&id).await?;
    Ok(redirect_with("/account/", Flash::success(format!("Revoked token {id}."))))
}

pub(crate) async fn end_session<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let visitor = posted.visitor;
    let session = state.store.get_login(&id).await?.ok_or_else(|| PageError::not_found("session", &id))?;
    if session.user != visitor.user.username && !visitor.user.is_superuser {
        return Err(PageError::forbidden("Only the session's user, or a superuser, may end it."));
    }
    state.store.end_login(&id).await?;
    Ok(redirect_with("/account/", Flash::success(format!("Ended session {id}."))))
}
