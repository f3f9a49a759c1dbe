//! The jobhooks REST API, shaped like Nautobot's (`/api/extras/job-hooks/`, `/api/extras/jobs/`,
//! `/api/extras/job-results/`, …), over any store that implements the ports.
//!
//! - **Authentication**: `Authorization: Token <key>` with a key issued by
//!   `jobhooks users token add` ([`jobhooks_model::ApiToken`]); 401 without a valid one.
//! - **Permissions** are the users' own, Django style: `extras.view_jobhook`, `extras.add_jobhook`,
//!   `extras.change_jobhook`, `extras.delete_jobhook`, `extras.view_job`, `extras.change_job`,
//!   `extras.view_jobresult`, and `extras.run_job` (with the job's own object-level limits) to run
//!   a job on an object or replay a run; superusers may do all. 403 names the permission missing.
//! - **Lists** paginate with `limit` and `offset` and answer `count`, `next`, `previous` and
//!   `results`.
//! - **Errors** are JSON: `{"field": ["message"]}` for validation, with the messages of the
//!   catalog's rules, `{"detail": "…"}` otherwise; bad input is a 4xx, never a 500. Bodies are at
//!   most [`BODY_LIMIT`] bytes.
//! - **The OpenAPI document** of every route is at `/api/docs/openapi.json`, generated from the
//!   handlers and the model's types.
//! - **Operations** for superusers: `POST /api/backup/` (with [`AppState::with_backup`]),
//!   `GET /api/export/` (JSON lines for `jobhooks import`), `POST /api/prune/`.
//!
//! Serving a store (the `jobhooks serve` command does this with the dispatcher beside it):
//!
//! ```
//! use std::sync::Arc;
//! use jobhooks_server::{AppState, router, serve};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let store = Arc::new(jobhooks_store_memory::MemoryStore::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! // This one stops at once; a real server stops on SIGTERM or SIGINT.
//! serve(listener, router(AppState::new(store)), async {}).await
//! # }
//! ```

mod api;
pub mod auth;
mod error;
mod limits;
mod metrics;
mod page;
pub mod shapes;
mod ui;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use jobhooks_dispatch::Monitor;
use jobhooks_model::ports::{Backup, Storage};

pub use auth::{Allowed, Caller, Needs};
pub use error::ApiError;
pub use limits::{HttpLimits, serve_with};
pub use page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageOf, PageQuery};
pub use ui::UiConfig;

/// The largest request body the API reads (1 MiB); a larger one is refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler shares: the store, the dispatcher beside it (if any), and the request
/// counts.
pub struct AppState<S> {
    store: Arc<S>,
    dispatcher: Option<Monitor<S>>,
    backup: Option<Arc<dyn Backup>>,
    /// The only directory backups through the API are written under.
    backup_dir: Option<std::path::PathBuf>,
    requests: Arc<metrics::RequestCounts>,
    limits: HttpLimits,
    /// A place for each request that may wait for a run (`?wait=`).
    waiters: Arc<tokio::sync::Semaphore>,
    /// How the web pages treat logins.
    ui: UiConfig,
    /// The bridge from Nautobot's webhooks (`POST /api/ingest/nautobot/`); off when `None`.
    nautobot_ingest: Option<Arc<api::NautobotIngest>>,
    /// Where webhooks may send requests (checked when a hook is saved).
    webhook_policy: jobhooks_model::WebhookPolicy,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            dispatcher: self.dispatcher.clone(),
            backup: self.backup.clone(),
            backup_dir: self.backup_dir.clone(),
            requests: self.requests.clone(),
            limits: self.limits.clone(),
            waiters: self.waiters.clone(),
            ui: self.ui.clone(),
            nautobot_ingest: self.nautobot_ingest.clone(),
            webhook_policy: self.webhook_policy.clone(),
        }
    }
}

impl<S: Storage + 'static> AppState<S> {
    /// The API's state over `store`, without a dispatcher (`/ready` then needs the store only).
    pub fn new(store: Arc<S>) -> Self {
        let limits = HttpLimits::default();
        let waiters = Arc::new(tokio::sync::Semaphore::new(limits.max_waiters));
        Self {
            store,
            dispatcher: None,
            backup: None,
            backup_dir: None,
            requests: Arc::default(),
            limits,
            waiters,
            ui: UiConfig::default(),
            nautobot_ingest: None,
            webhook_policy: jobhooks_model::WebhookPolicy::anywhere(),
        }
    }

    /// With `limits` on requests: how long one may run, and how many may wait for runs at once.
    /// Give [`serve_with`] the same, for the limits on connections.
    pub fn with_limits(mut self, limits: HttpLimits) -> Self {
        self.waiters = Arc::new(tokio::sync::Semaphore::new(limits.max_waiters));
        self.limits = limits;
        self
    }

    /// With `ui` for the web pages' logins (how long a session may idle, `Secure` cookies, how
    /// passwords are hashed).
    pub fn with_ui(mut self, ui: UiConfig) -> Self {
        self.ui = ui;
        self
    }

    /// With the dispatcher that runs beside the API: `/ready` needs it running, and `/metrics`
    /// reports its runs.
    pub fn with_dispatcher(mut self, dispatcher: Monitor<S>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// With a way to back the store up (the sled store is one): `POST /api/backup/` copies it,
    /// while it serves, into a directory on the server's machine.
    pub fn with_backup(mut self, backup: Arc<dyn Backup>) -> Self {
        self.backup = Some(backup);
        self
    }

    /// With the bridge from Nautobot on: `POST /api/ingest/nautobot/` records the changes
    /// Nautobot's webhooks report, when the body is signed with `secret` (the webhook's secret in
    /// Nautobot). Without it the route answers 404.
    pub fn with_nautobot_ingest(mut self, secret: impl Into<String>) -> Self {
        let ingest = api::NautobotIngest { secret: secret.into(), recording: tokio::sync::Mutex::new(()) };
        self.nautobot_ingest = Some(Arc::new(ingest));
        self
    }

    /// With `policy` restricting where webhooks may send: a hook whose webhook's host it does not
    /// admit is refused when saved (the dispatcher checks again, after DNS, before each request).
    pub fn with_webhook_policy(mut self, policy: jobhooks_model::WebhookPolicy) -> Self {
        self.webhook_policy = policy;
        self
    }

    /// With the directory backups through the API are written under: a target elsewhere is
    /// refused, and without one every backup through the API is (a caller must not choose where
    /// on the server's disk a copy of the store lands).
    pub fn with_backup_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.backup_dir = Some(dir.into());
        self
    }
}

/// Every route of the API, `/health`, `/ready` and `/metrics`, with the body limit, the request
/// timeout and request counting.
pub fn router<S: Storage + 'static>(state: AppState<S>) -> Router {
    with_layers(api::routes::<S>().merge(metrics::routes::<S>()).merge(ui::routes::<S>()), state)
}

/// The routes apart, to serve on two addresses: the API and the pages on one, `/health`,
/// `/ready` and `/metrics` on the other (a private address, for the monitoring system alone).
pub fn routers_apart<S: Storage + 'static>(state: AppState<S>) -> (Router, Router) {
    let main = with_layers(api::routes::<S>().merge(ui::routes::<S>()), state.clone());
    (main, with_layers(metrics::routes::<S>(), state))
}

fn with_layers<S: Storage + 'static>(routes: Router<AppState<S>>, state: AppState<S>) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response_with_state((), api_version))
        .layer(axum::middleware::from_fn_with_state(state.clone(), absolute_uri::<S>))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::request_timeout::<S>))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_requests::<S>))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The API version this server speaks, as Nautobot's `API-Version` header says it; a client may
/// ask for it with `Accept: application/json; version=2.4`.
pub const API_VERSION: &str = "2.4";

/// Adds `API-Version` to every answer under `/api/`.
async fn api_version(
    axum::extract::State(()): axum::extract::State<()>,
    uri: axum::http::Uri,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        response.headers_mut().insert("api-version", axum::http::HeaderValue::from_static(API_VERSION));
    }
    response
}

/// Makes the URI an API handler sees absolute (`server.external_url`, else `http://` and the
/// `Host` header), so that the links of its answers (`next`, `previous`) are, as DRF's are.
async fn absolute_uri<S: Storage + 'static>(
    axum::extract::State(state): axum::extract::State<AppState<S>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let uri = request.uri().clone();
    if uri.path().starts_with("/api/") && uri.authority().is_none() {
        let origin = match &state.ui.external_url {
            Some(url) => Some(url.clone()),
            None => request
                .headers()
                .get(axum::http::header::HOST)
                .and_then(|host| host.to_str().ok())
                .map(|host| format!("http://{host}")),
        };
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        if let Some(Ok(absolute)) = origin.map(|origin| format!("{origin}{path_and_query}").parse::<axum::http::Uri>())
        {
            request.extensions_mut().insert(axum::extract::OriginalUri(absolute));
        }
    }
    next.run(request).await
}

/// No route: `{"detail": "Not found."}` under `/api/`, an error page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        return ApiError::NotFound("Not found.".into()).into_response();
    }
    ui::not_found_page()
}

/// A route without the method: DRF's JSON 405 under `/api/`, an error page elsewhere.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let detail = format!("Method \"{method}\" not allowed.");
    if uri.path().starts_with("/api/") {
        return ApiError::Body { status: axum::http::StatusCode::METHOD_NOT_ALLOWED, detail }.into_response();
    }
    ui::error_page(axum::http::StatusCode::METHOD_NOT_ALLOWED, detail)
}

/// Serves `router` on `listener` under the default [`HttpLimits`] until `shutdown` completes,
/// then lets requests in flight finish (see [`serve_with`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, &HttpLimits::default(), shutdown).await
}
