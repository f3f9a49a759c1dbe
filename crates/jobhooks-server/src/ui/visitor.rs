//! Who is looking at a page: the session cookie, checked against the stored session, then its
//! user. A page without a valid session redirects to `/login/?next=…`. Also the cookies the pages
//! use, and the check every posted form passes (the CSRF token, the `Origin`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use jobhooks_model::ports::Storage;
use jobhooks_model::{LoginSession, OffsetDateTime, User};

use super::render::{Flash, PageError};
use crate::AppState;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "jobhooks_session";
/// The cookie the login form's CSRF token is checked against (there is no session yet).
pub(crate) const LOGIN_CSRF_COOKIE: &str = "jobhooks_login_csrf";
/// The cookie a message for the next page travels in.
pub(crate) const FLASH_COOKIE: &str = "jobhooks_flash";

/// The logged-in user of a page request.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    pub user: User,
    pub session: LoginSession,
    /// The session's key (from the cookie), to derive the CSRF token from.
    key: String,
    /// A message the previous request left for this page.
    pub flash: Option<Flash>,
}

impl Visitor {
    /// The CSRF token every form of this session carries.
    pub fn csrf_token(&self) -> String {
        LoginSession::csrf_token(&self.key)
    }

    /// Whether `offered` is this session's CSRF token.
    pub fn csrf_matches(&self, offered: &str) -> bool {
        LoginSession::csrf_matches(&self.key, offered)
    }

    /// Refuses with 403, saying which permission is missing, unless the user has `permission`.
    pub fn require(&self, permission: &str) -> Result<(), PageError> {
        if self.user.has_perm(permission) {
            Ok(())
        } else {
            Err(PageError::forbidden(format!(
                "You do not have permission to see or do this: {permission} is required. Ask an administrator to grant it."
            )))
        }
    }
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, path `/`, `Secure` when asked; `max_age` in
/// seconds (`Some(0)` removes the cookie, `None` makes it last as long as the browser session).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The path and query of the request, for `?next=`.
fn here(parts: &Parts) -> String {
    parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

impl<S: Storage + 'static> FromRequestParts<AppState<S>> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let login = || PageError::Login { next: here(parts) };
        let key = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(login)?.to_owned();
        let id = LoginSession::id_of_key(&key).map_err(|_| login())?;
        let session = state.store.get_login(id).await.map_err(PageError::from)?.ok_or_else(login)?;
        let now = OffsetDateTime::now_utc();
        let idle = time::Duration::try_from(state.ui.session_idle).unwrap_or(time::Duration::MAX);
        if session.accepts(&key, now, idle).is_err() {
            return Err(login());
        }
        let user = state.store.get_user(&session.user).await.map_err(PageError::from)?.ok_or_else(login)?;
        if session.needs_touch(now) {
            state.store.touch_login(&session.id, now).await.map_err(PageError::from)?;
        }
        let flash = cookie(&parts.headers, FLASH_COOKIE).and_then(Flash::decode);
        Ok(Visitor { user, session, key, flash })
    }
}

/// Whether the request's `Origin`, when it sends one, is this server: a form posted from another
/// site is refused (with the CSRF token, this stops cross-site requests that ride on the cookie).
pub(crate) fn origin_is_ours(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|host| host.to_str().ok()) else { return false };
    let Ok(origin) = origin.to_str() else { return false };
    let Some(origin_host) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn cookies_are_found_by_name_among_several_headers() {
        let map = headers(&[("cookie", "a=1; jobhooks_session=js_x"), ("cookie", "b=2")]);
        assert_eq!(cookie(&map, SESSION_COOKIE), Some("js_x"));
        assert_eq!(cookie(&map, "b"), Some("2"));
        assert_eq!(cookie(&map, "c"), None);
    }

    #[test]
    fn only_this_servers_origin_may_post() {
        let host = ("host", "127.0.0.1:8080");
        assert!(origin_is_ours(&headers(&[host])), "no Origin: not a cross-site browser request");
        assert!(origin_is_ours(&headers(&[host, ("origin", "http://127.0.0.1:8080")])));
        assert!(!origin_is_ours(&headers(&[host, ("origin", "http://evil.example")])));
        assert!(!origin_is_ours(&headers(&[host, ("origin", "null")])));
        assert!(!origin_is_ours(&headers(&[("origin", "http://127.0.0.1:8080")])), "no Host to compare with");
    }

    #[test]
    fn cookies_are_http_only_same_site_and_secure_when_asked() {
        let value = set_cookie("n", "v", Some(60), true);
        assert_eq!(value.to_str().unwrap(), "n=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure");
    }
}
