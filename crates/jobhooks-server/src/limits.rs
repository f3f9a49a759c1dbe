//! What one caller can hold of the server: how long it may take to send a request's headers, how
//! long a request may run, how many connections are open at once, and how many requests wait for
//! a run (`?wait=`) at once.
//!
//! [`serve_with`] accepts connections itself (`axum::serve` offers no header timeout and no cap):
//! it stops accepting while `max_connections` are open, so that a flood of connections waits in
//! the kernel's backlog instead of taking memory, and closes a connection whose client has not sent
//! a whole request head within `header_read_timeout`, whether it is new or idle between requests,
//! so that slow-loris clients let go of their places.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jobhooks_model::ports::Storage;

use crate::{ApiError, AppState};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Limits on what callers can hold of the server. Start from [`Default`]; new limits may be
/// added in minor releases.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// How long a client has to send a request's head, on a new connection or between requests
    /// of a kept-alive one; then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a request may run before it is answered 503 (longer than the longest `?wait=`).
    pub request_timeout: Duration,
    /// Connections open at once; beyond, new ones wait to be accepted.
    pub max_connections: usize,
    /// Requests waiting for a run to end (`?wait=`) at once; beyond, 429.
    pub max_waiters: usize,
    /// How long requests in flight have to finish once the server is told to stop.
    pub shutdown_grace: Duration,
    /// Whether `/metrics` needs a valid token, as the API does. Off by default, as Prometheus
    /// scrapes without one; turn it on when the API's address is reachable by callers who should
    /// not see the queue's figures and per-job counts.
    pub metrics_need_a_token: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(90),
            max_connections: 1024,
            max_waiters: 256,
            shutdown_grace: Duration::from_secs(30),
            metrics_need_a_token: false,
        }
    }
}

impl HttpLimits {
    /// The limits with `header_read_timeout`.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The limits with `request_timeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The limits with `max_connections` (at least 1).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The limits with `max_waiters`.
    pub fn max_waiters(mut self, waiters: usize) -> Self {
        self.max_waiters = waiters;
        self
    }

    /// The limits with `/metrics` behind a token (or not).
    pub fn metrics_need_a_token(mut self, need: bool) -> Self {
        self.metrics_need_a_token = need;
        self
    }

    /// The limits with `shutdown_grace`.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes; then stops accepting,
/// lets requests in flight finish for `limits.shutdown_grace`, and closes what is left.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => match place {
                Ok(place) => place,
                Err(_closed) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted: the
                    // next accept may succeed; a short pause keeps a persistent error from spinning.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let header_read_timeout = limits.header_read_timeout;
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _place = place;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ended = connection.as_mut() => {}
                _stopping = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ended = connection.await;
                }
            }
        });
        // Connections that ended leave the set as they go, so that it holds only open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _told = stopping.send(true);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "requests still in flight after the grace period were cut off");
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// Answers 503 for a request that runs longer than the state's `request_timeout`.
pub(crate) async fn request_timeout<S: Storage + 'static>(
    State(state): State<AppState<S>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => ApiError::TimedOut(format!(
            "The request took longer than {} s, the most this server allows.",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

/// A place for a request that waits for a run, or 429 when every place is taken.
pub(crate) fn waiter_place<S>(state: &AppState<S>) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state.waiters.clone().try_acquire_owned().map_err(|_full| {
        ApiError::Busy(format!(
            "{} requests wait for runs already, the most this server allows: retry later, or ask without ?wait=",
            state.limits.max_waiters
        ))
    })
}

/// How many requests wait for runs now.
pub(crate) fn waiting<S>(state: &AppState<S>) -> usize {
    state.limits.max_waiters.saturating_sub(state.waiters.available_permits())
}
