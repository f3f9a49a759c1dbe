//! Templates, embedded in the binary and rendered with HTML autoescaping; the answers pages make
//! (a page, a redirect with a message for the next page, an error page); the static files.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jobhooks_model::{CatalogError, StorageFailure, StoreError};
use serde_json::{Value, json};

use super::visitor::{FLASH_COOKIE, Visitor, set_cookie};
use crate::ApiError;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("home.html", include_str!("templates/home.html")),
    ("object_types.html", include_str!("templates/object_types.html")),
    ("object_list.html", include_str!("templates/object_list.html")),
    ("object.html", include_str!("templates/object.html")),
    ("confirm_press.html", include_str!("templates/confirm_press.html")),
    ("results.html", include_str!("templates/results.html")),
    ("result.html", include_str!("templates/result.html")),
    ("result_body.html", include_str!("templates/result_body.html")),
    ("hooks.html", include_str!("templates/hooks.html")),
    ("hook.html", include_str!("templates/hook.html")),
    ("hook_form.html", include_str!("templates/hook_form.html")),
    ("buttons.html", include_str!("templates/buttons.html")),
    ("button.html", include_str!("templates/button.html")),
    ("button_form.html", include_str!("templates/button_form.html")),
    ("confirm_delete.html", include_str!("templates/confirm_delete.html")),
    ("jobs.html", include_str!("templates/jobs.html")),
    ("changes.html", include_str!("templates/changes.html")),
    ("change.html", include_str!("templates/change.html")),
    ("account.html", include_str!("templates/account.html")),
];

static TEMPLATE_ENV: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        if let Err(error) = env.add_template(name, source) {
            // A template that does not parse is a bug of this crate: the unit test below fails on it.
            tracing::error!(template = name, %error, "a page template does not parse");
        }
    }
    env.add_filter("json", |value: minijinja::Value| -> String {
        serde_json::to_string_pretty(&value).unwrap_or_default()
    });
    env
});

/// A message for the next page, carried in a cookie across a redirect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Flash {
    /// `success`, `info`, `warning` or `error`.
    pub level: String,
    pub text: String,
    /// A link the message offers ("Click here for the results.").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<(String, String)>,
}

impl Flash {
    pub fn success(text: impl Into<String>) -> Self {
        Self { level: "success".into(), text: text.into(), link: None }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self { level: "error".into(), text: text.into(), link: None }
    }

    pub fn with_link(mut self, label: impl Into<String>, href: impl Into<String>) -> Self {
        self.link = Some((label.into(), href.into()));
        self
    }

    /// Hex of its JSON: a cookie value needs no quoting then.
    fn encode(&self) -> String {
        serde_json::to_vec(self).unwrap_or_default().iter().map(|byte| format!("{byte:02x}")).collect()
    }

    pub fn decode(hex: &str) -> Option<Self> {
        if !hex.len().is_multiple_of(2) || hex.len() > 8192 {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok()).collect();
        let flash: Flash = serde_json::from_slice(&bytes?).ok()?;
        // Only local links: a forged cookie cannot send the reader elsewhere.
        match &flash.link {
            Some((_, href)) if !is_local_path(href) => None,
            _ => Some(flash),
        }
    }
}

/// Whether `path` is a path on this server (`/…`, not `//host…` nor `/\host…`).
pub(crate) fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") && !path.contains(['\r', '\n'])
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No valid session: log in first, then come back to `next`.
    Login { next: String },
    /// Another refusal, shown on an error page with `status`.
    Status { status: StatusCode, message: String },
}

impl PageError {
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        PageError::Status { status, message: message.into() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::status(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(kind: &'static str, key: impl std::fmt::Display) -> Self {
        Self::status(StatusCode::NOT_FOUND, StoreError::not_found(kind, key).to_string())
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        let status = match &error {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Body { status, .. } => *status,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage(failure) => {
                tracing::error!(error = %failure, "a page failed in the store");
                return Self::status(StatusCode::INTERNAL_SERVER_ERROR, "The store failed; see the server's log.");
            }
        };
        Self::status(status, message)
    }
}

impl From<StorageFailure> for PageError {
    fn from(failure: StorageFailure) -> Self {
        ApiError::from(failure).into()
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<CatalogError> for PageError {
    fn from(error: CatalogError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login { next } => {
                let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Redirect::to(&format!("/login/?next={next}")).into_response()
            }
            PageError::Status { status, message } => {
                let title = status.canonical_reason().unwrap_or("Error");
                let mut response =
                    render(None, "error.html", json!({"title": title, "message": message, "status": status.as_u16()}));
                *response.status_mut() = status;
                response
            }
        }
    }
}

/// A page of the logged-in user's: `template` with `context`, plus what every page shows (the
/// user, the CSRF token, the message the last request left).
pub(crate) fn page(visitor: &Visitor, template: &str, context: Value) -> Response {
    let mut response = render(Some(visitor), template, context);
    if visitor.flash.is_some() {
        response.headers_mut().append(header::SET_COOKIE, set_cookie(FLASH_COOKIE, "", Some(0), false));
    }
    response
}

/// Renders `template`; the common context comes from `visitor` when there is one.
pub(crate) fn render(visitor: Option<&Visitor>, template: &str, context: Value) -> Response {
    let mut context = match context {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(visitor) = visitor {
        context
            .insert("me".into(), json!({"username": visitor.user.username, "is_superuser": visitor.user.is_superuser}));
        context.insert("csrf_token".into(), visitor.csrf_token().into());
        if let Some(flash) = &visitor.flash {
            context.insert("flash".into(), serde_json::to_value(flash).unwrap_or_default());
        }
    }
    let rendered = TEMPLATE_ENV.get_template(template).and_then(|template| template.render(&context));
    match rendered {
        Ok(html) => html_response(html),
        Err(error) => {
            tracing::error!(template, error = %format!("{error:#}"), "a page failed to render");
            let mut response = html_response(
                "<!doctype html><title>Error</title><p>This page failed to render; see the server's log.</p>".into(),
            );
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

fn html_response(html: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    secure_headers(response.headers_mut());
    response
}

/// What every page answer carries: no script, style or frame from elsewhere, no sniffing.
fn secure_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A redirect to `location` (303: the browser follows with a GET), leaving `flash` for the page
/// it lands on.
pub(crate) fn redirect_with(location: &str, flash: Flash) -> Response {
    let mut response = Redirect::to(location).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(FLASH_COOKIE, &flash.encode(), None, false));
    response
}

/// `/static/{file}`: the stylesheet and the script, embedded.
pub(crate) async fn static_file(Path(file): Path<String>) -> Response {
    let (content_type, body): (&str, &'static str) = match file.as_str() {
        "style.css" => ("text/css; charset=utf-8", include_str!("static/style.css")),
        "app.js" => ("text/javascript; charset=utf-8", include_str!("static/app.js")),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = minijinja::Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|error| panic!("{name}: {error:#}"));
        }
    }

    #[test]
    fn a_flash_survives_its_cookie_and_a_forged_link_elsewhere_is_dropped() {
        let flash = Flash::success("Job enqueued.").with_link("Click here for the results.", "/results/7/");
        assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        let forged = Flash::success("x").with_link("y", "//evil.example/");
        assert_eq!(Flash::decode(&forged.encode()), None);
        assert_eq!(Flash::decode("zz"), None);
        assert_eq!(Flash::decode("abc"), None);
    }

    #[test]
    fn local_paths_only() {
        assert!(is_local_path("/objects/dcim.device/1/"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("/\\evil.example/"));
        assert!(!is_local_path("https://evil.example/"));
        assert!(!is_local_path("objects/"));
    }
}
