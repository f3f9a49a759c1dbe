//! What an operator watches: `/health` (the process answers), `/ready` (the store answers and the
//! dispatcher, if any, runs) and `/metrics` in Prometheus' text format (the queue by state, the
//! dispatcher's runs by outcome and by job, attempt durations and commit-to-start latencies as
//! histograms by job, and HTTP requests by route and status). None of them needs a
//! token: they say how much, never what.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jobhooks_dispatch::{Histogram, JobMetrics};
use jobhooks_model::ports::Storage;
use serde_json::json;

use crate::AppState;

/// Requests served, by route and status.
#[derive(Default)]
pub(crate) struct RequestCounts(Mutex<BTreeMap<(String, u16), u64>>);

pub(crate) fn routes<S: Storage + 'static>() -> Router<AppState<S>> {
    Router::new().route("/health", get(health)).route("/ready", get(ready::<S>)).route("/metrics", get(metrics::<S>))
}

/// Counts each request under its route's pattern (`/api/extras/job-hooks/{name}/`), so that the
/// number of series does not grow with names; requests that match no route count as `unmatched`.
pub(crate) async fn count_requests<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    let mut counts = state.requests.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *counts.entry((route, response.status().as_u16())).or_default() += 1;
    response
}

/// The process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Liveness: the process answers (`{\"status\": \"ok\"}`); no token needed",
    security(()),
    responses((status = 200, description = "`{\"status\": \"ok\"}`")),
)]
pub(crate) async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "status": "ok" }))
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    summary = "Readiness: the store answers and the dispatcher beside the API runs; no token needed",
    security(()),
    responses(
        (status = 200, description = "`{\"ready\": true}`"),
        (status = 503, description = "`{\"ready\": false, \"reason\": …}`"),
    ),
)]
pub(crate) async fn ready<S: Storage + 'static>(State(state): State<AppState<S>>) -> Response {
    if let Err(error) = state.store.depth().await {
        tracing::warn!(%error, "not ready: the store does not answer");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false, "reason": "the store does not answer" })),
        )
            .into_response();
    }
    if state.dispatcher.as_ref().is_some_and(|dispatcher| !dispatcher.is_running()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false, "reason": "the dispatcher stopped" })),
        )
            .into_response();
    }
    axum::Json(json!({ "ready": true })).into_response()
}

/// Writes one metric family: its help, its type, and its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value with Prometheus' escapes.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The per-job families: outcomes, attempt durations, and commit-to-start latencies.
fn by_job(out: &mut String, jobs: &BTreeMap<String, JobMetrics>) {
    let outcomes: Vec<(String, f64)> = jobs
        .iter()
        .flat_map(|(job, metrics)| {
            let job = label(job);
            [
                ("success", metrics.succeeded),
                ("failure", metrics.failed),
                ("retry", metrics.retried),
                ("dead_letter", metrics.dead_lettered),
            ]
            .map(|(outcome, count)| (format!("{{job=\"{job}\",outcome=\"{outcome}\"}}"), count as f64))
        })
        .collect();
    family(
        out,
        "jobhooks_job_runs_total",
        "counter",
        "Attempts this process's dispatcher ended, by job and outcome.",
        &outcomes,
    );
    histogram(out, "jobhooks_run_duration_seconds", "How long attempts took, by job.", jobs, |metrics| {
        &metrics.duration
    });
    histogram(
        out,
        "jobhooks_run_start_latency_seconds",
        "How long first attempts waited from their commit or press to their start, by job.",
        jobs,
        |metrics| &metrics.start_latency,
    );
}

/// One histogram family with a series per job: `_bucket{le}`, `_sum` and `_count`.
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    jobs: &BTreeMap<String, JobMetrics>,
    of: impl Fn(&JobMetrics) -> &Histogram,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (job, metrics) in jobs {
        let job = label(job);
        let histogram = of(metrics);
        for (bound, count) in histogram.cumulative() {
            let le = if bound.is_infinite() { "+Inf".to_owned() } else { bound.to_string() };
            let _ = writeln!(out, "{name}_bucket{{job=\"{job}\",le=\"{le}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_sum{{job=\"{job}\"}} {}", histogram.sum());
        let _ = writeln!(out, "{name}_count{{job=\"{job}\"}} {}", histogram.count());
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics (text exposition format): the queue, runs by job and outcome, requests by route; no token needed unless the server is configured to ask for one (server.metrics_need_a_token)",
    security(()),
    responses((status = 200, description = "Prometheus text", content_type = "text/plain")),
)]
pub(crate) async fn metrics<S: Storage + 'static>(State(state): State<AppState<S>>, mut parts: Parts) -> Response {
    if state.limits.metrics_need_a_token
        && let Err(refused) =
            <crate::Caller as FromRequestParts<AppState<S>>>::from_request_parts(&mut parts, &state).await
    {
        return refused.into_response();
    }
    let mut out = String::new();
    match state.store.depth().await {
        Ok(depth) => {
            let samples = [("pending", depth.pending), ("leased", depth.leased), ("dead", depth.dead)]
                .map(|(name, count)| (format!("{{state=\"{name}\"}}"), count as f64));
            family(&mut out, "jobhooks_queue_runs", "gauge", "Runs in the queue, by state.", &samples);
        }
        Err(error) => tracing::warn!(%error, "the queue's depth is missing from /metrics: the store does not answer"),
    }
    let waiting = [(String::new(), crate::limits::waiting(&state) as f64)];
    family(
        &mut out,
        "jobhooks_api_waiting_requests",
        "gauge",
        "Requests waiting for a run to end (`?wait=`).",
        &waiting,
    );
    if let Some(dispatcher) = &state.dispatcher
        && let Ok(stats) = dispatcher.stats().await
    {
        let outcomes = [
            ("success", stats.succeeded),
            ("failure", stats.failed),
            ("retry", stats.retried),
            ("dead_letter", stats.dead_lettered),
            ("lease_lost", stats.lease_lost),
            ("given_back", stats.given_back),
        ]
        .map(|(outcome, count)| (format!("{{outcome=\"{outcome}\"}}"), count as f64));
        family(
            &mut out,
            "jobhooks_runs_total",
            "counter",
            "Runs this process's dispatcher ended, by outcome.",
            &outcomes,
        );
        let in_flight = [(String::new(), stats.in_flight as f64)];
        family(&mut out, "jobhooks_runs_in_flight", "gauge", "Runs this process's dispatcher is running.", &in_flight);
        let running = [(String::new(), if dispatcher.is_running() { 1.0 } else { 0.0 })];
        family(&mut out, "jobhooks_dispatcher_running", "gauge", "Whether the dispatcher runs.", &running);
        by_job(&mut out, &dispatcher.jobs());
    }
    let requests: Vec<(String, f64)> = state
        .requests
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .map(|((route, status), count)| (format!("{{route=\"{}\",status=\"{status}\"}}", label(route)), *count as f64))
        .collect();
    family(
        &mut out,
        "jobhooks_http_requests_total",
        "counter",
        "HTTP requests served, by route and status.",
        &requests,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
