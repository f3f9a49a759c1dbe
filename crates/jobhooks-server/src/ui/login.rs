//! `/login/` and `/logout/`. A refused login says the same thing, after the same delay and the
//! same hashing work, whether the user is unknown, has no password, or typed a wrong one.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jobhooks_model::ports::Storage;
use jobhooks_model::{LoginSession, OffsetDateTime};
use serde::Deserialize;
use serde_json::json;

use super::form::{CSRF_FIELD, CSRF_REFUSED, FormData, Posted};
use super::render::{Flash, PageError, is_local_path, redirect_with, render};
use super::visitor::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, cookie, origin_is_ours, set_cookie};
use crate::AppState;

/// Django's message for a refused login: it does not say which part was wrong.
pub(crate) const LOGIN_REFUSED: &str =
    "Please enter a correct username and password. Note that both fields may be case-sensitive.";

#[derive(Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

fn next_or_home(next: Option<&str>) -> String {
    next.filter(|next| is_local_path(next)).unwrap_or("/").to_owned()
}

/// The login form's CSRF token: the cookie's, or a new one set with the page.
fn login_csrf(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, LOGIN_CSRF_COOKIE).filter(|value| value.len() == 32) {
        Some(value) => (value.to_owned(), false),
        None => (uuid::Uuid::new_v4().simple().to_string(), true),
    }
}

fn login_page(headers: &HeaderMap, next: &str, username: &str, error: Option<&str>, secure: bool) -> Response {
    let (csrf, new) = login_csrf(headers);
    let mut response = render(
        None,
        "login.html",
        json!({"csrf_token": csrf, "next": next, "username": username, "error": error, "title": "Log in"}),
    );
    if new {
        response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, None, secure));
    }
    response
}

pub(crate) async fn form<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    login_page(&headers, &next_or_home(next.next.as_deref()), "", None, state.ui.secure_cookies)
}

pub(crate) async fn submit<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = FormData::parse(&body);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let offered = form.text(CSRF_FIELD);
    let same = !expected.is_empty()
        && expected.len() == offered.len()
        && expected.bytes().zip(offered.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0;
    if !origin_is_ours(&headers) || !same {
        return Err(PageError::forbidden(CSRF_REFUSED));
    }
    let next = next_or_home(Some(form.text("next")));
    let username = form.text("username").to_owned();
    let password = form.text_untrimmed("password").to_owned();
    if !crate::auth::verify_password(&state, &username, password).await? {
        tracing::info!(username = %username, "a login was refused");
        let mut response = login_page(&headers, &next, &username, Some(LOGIN_REFUSED), state.ui.secure_cookies);
        *response.status_mut() = StatusCode::OK;
        return Ok(response);
    }
    let now = OffsetDateTime::now_utc();
    let user_agent = headers.get(header::USER_AGENT).and_then(|agent| agent.to_str().ok()).unwrap_or("");
    let opened = LoginSession::open(&username, now, user_agent);
    state.store.add_login(opened.session).await?;
    let idle = time::Duration::try_from(state.ui.session_idle).unwrap_or(time::Duration::MAX);
    if let Err(error) = state.store.end_idle_logins(now - idle).await {
        tracing::warn!(%error, "could not end idle sessions; they are refused all the same");
    }
    tracing::info!(username = %username, "logged in");
    let mut response = Redirect::to(&next).into_response();
    let max_age = state.ui.session_idle.as_secs();
    let cookies = response.headers_mut();
    cookies.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &opened.key, Some(max_age), state.ui.secure_cookies));
    cookies.append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", Some(0), state.ui.secure_cookies));
    Ok(response)
}

pub(crate) async fn logout<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    posted: Posted,
) -> Result<Response, PageError> {
    match state.store.end_login(&posted.visitor.session.id).await {
        Ok(_) | Err(jobhooks_model::CatalogError::NotFound { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    let mut response = redirect_with("/login/", Flash::success("You are logged out."));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0), state.ui.secure_cookies));
    Ok(response)
}
