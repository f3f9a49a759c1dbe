//! The web pages: job buttons on object pages, results that update while they run, hooks and
//! buttons edited in forms, the change log, jobs, and one's own tokens.
//!
//! Pages are rendered on the server from templates embedded in the binary (minijinja, with HTML
//! autoescaping); a few lines of plain JavaScript (`static/app.js`) open confirmation dialogs and
//! follow a running result, and every page works without it. A person logs in with a password
//! (see [`jobhooks_model::LoginSession`]); every state-changing form carries the session's CSRF
//! token and is refused from a foreign `Origin`. `/api/` is untouched: it takes tokens only.
//!
//! One module per page family: [`login`] (log in and out), [`home`], [`objects`] (with the
//! buttons and pressing them), [`results`], [`catalog`] (hooks and buttons), [`jobs`],
//! [`changes`], [`account`] (tokens, sessions, users). [`visitor`] is the logged-in user's
//! extractor and the CSRF check; [`render`] the templates and the answers they make.

mod account;
mod catalog;
mod changes;
mod form;
mod home;
mod jobs;
mod login;
mod objects;
mod render;
mod results;
mod visitor;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use jobhooks_model::PasswordCost;
use jobhooks_model::ports::Storage;

use crate::AppState;

/// How the web pages treat logins.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UiConfig {
    /// How long a session may stay unused before it ends (Django's default: 14 days).
    pub session_idle: Duration,
    /// Whether the session cookie is marked `Secure` (sent over HTTPS only): on when the server's
    /// external URL is `https://…`.
    pub secure_cookies: bool,
    /// How much work hashing a password takes ([`PasswordCost::Cheapest`] in tests only).
    pub password_cost: PasswordCost,
    /// How long a refused login waits before answering, whoever was named.
    pub refused_login_delay: Duration,
    /// The URL people and clients reach the server at (`server.external_url`), for absolute links
    /// in answers; `None`: `http://` and the request's `Host`.
    pub external_url: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(14 * 24 * 3600),
            secure_cookies: false,
            password_cost: PasswordCost::Recommended,
            refused_login_delay: Duration::from_millis(500),
            external_url: None,
        }
    }
}

impl UiConfig {
    /// The defaults, with cookies `Secure` when `external_url` is an `https://` URL.
    pub fn for_external_url(external_url: Option<&str>) -> Self {
        Self {
            secure_cookies: external_url.is_some_and(|url| url.starts_with("https://")),
            external_url: external_url.map(|url| url.trim_end_matches('/').to_owned()),
            ..Self::default()
        }
    }

    /// With sessions ending after `idle` unused.
    pub fn session_idle(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
    }

    /// With passwords hashed at `cost`.
    pub fn password_cost(mut self, cost: PasswordCost) -> Self {
        self.password_cost = cost;
        self
    }

    /// With refused logins answered after `delay`.
    pub fn refused_login_delay(mut self, delay: Duration) -> Self {
        self.refused_login_delay = delay;
        self
    }
}

/// The page of a path that names nothing.
pub(crate) fn not_found_page() -> axum::response::Response {
    error_page(axum::http::StatusCode::NOT_FOUND, "There is no page here.".to_owned())
}

/// An error page with `status` and `message`.
pub(crate) fn error_page(status: axum::http::StatusCode, message: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    render::PageError::status(status, message).into_response()
}

/// Every page's route, and the static files under `/static/`.
pub(crate) fn routes<S: Storage + 'static>() -> Router<AppState<S>> {
    Router::new()
        .route("/", get(home::home::<S>))
        .route("/login/", get(login::form::<S>).post(login::submit::<S>))
        .route("/logout/", post(login::logout::<S>))
        .route("/static/{file}", get(render::static_file))
        .route("/objects/", get(objects::types::<S>))
        .route("/objects/{content_type}/", get(objects::list::<S>))
        .route("/objects/{content_type}/{id}/", get(objects::detail::<S>))
        .route(
            "/objects/{content_type}/{id}/buttons/{button}/",
            get(objects::confirm_press::<S>).post(objects::press::<S>),
        )
        .route("/results/", get(results::list::<S>))
        .route("/results/{id}/", get(results::detail::<S>))
        .route("/results/{id}/replay/", post(results::replay::<S>))
        .route("/hooks/", get(catalog::hooks::<S>))
        .route("/hooks/add/", get(catalog::new_hook::<S>).post(catalog::create_hook::<S>))
        .route("/hooks/{name}/", get(catalog::hook::<S>))
        .route("/hooks/{name}/edit/", get(catalog::edit_hook::<S>).post(catalog::update_hook::<S>))
        .route("/hooks/{name}/delete/", get(catalog::confirm_delete_hook::<S>).post(catalog::delete_hook::<S>))
        .route("/buttons/", get(catalog::buttons::<S>))
        .route("/buttons/add/", get(catalog::new_button::<S>).post(catalog::create_button::<S>))
        .route("/buttons/{name}/", get(catalog::button::<S>))
        .route("/buttons/{name}/edit/", get(catalog::edit_button::<S>).post(catalog::update_button::<S>))
        .route("/buttons/{name}/delete/", get(catalog::confirm_delete_button::<S>).post(catalog::delete_button::<S>))
        .route("/jobs/", get(jobs::list::<S>))
        .route("/jobs/{class_path}/enabled/", post(jobs::set_enabled::<S>))
        .route("/changes/", get(changes::list::<S>))
        .route("/changes/{id}/", get(changes::detail::<S>))
        .route("/account/", get(account::show::<S>))
        .route("/account/tokens/", post(account::create_token::<S>))
        .route("/account/tokens/{id}/delete/", post(account::delete_token::<S>))
        .route("/account/sessions/{id}/end/", post(account::end_session::<S>))
}
