//! `jobhooks serve` and `jobhooks run`: the API server and the dispatcher, until interrupted.

use crate::backend::Session;
use crate::{Failure, Outcome};
use jobhooks_model::ports::{Backup, Storage, SyncMode};
use std::sync::Arc;
use std::time::Duration;

/// Starts listening for Ctrl-C (SIGINT) and SIGTERM (what `docker stop` and systemd send) now,
/// and returns what completes when either comes.
#[cfg(unix)]
pub(crate) fn interrupt_listener() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt())?;
    let mut terminations = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupts.recv() => {}
            _ = terminations.recv() => {}
        }
    })
}

/// Starts listening for Ctrl-C now, and returns what completes when it comes.
#[cfg(not(unix))]
pub(crate) fn interrupt_listener() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// For `serve` (`listen` is `Some(--listen)`), the listener bound to `--listen` (a host name is
/// resolved), else to the config's `server.listen`; `None` for other commands.
pub(crate) async fn listener_for(
    listen: &Option<Option<String>>,
    config: &crate::config::Config,
) -> Result<Option<tokio::net::TcpListener>, Failure> {
    let Some(listen) = listen else { return Ok(None) };
    let addresses: Vec<std::net::SocketAddr> = match listen {
        Some(listen) => tokio::net::lookup_host(listen.as_str())
            .await
            .map_err(|e| {
                Failure::bad_input(format!("--listen `{listen}` is not an address to listen on (`host:port`): {e}"))
            })?
            .collect(),
        None => vec![config.server.listen],
    };
    let mut last = None;
    for address in &addresses {
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => return Ok(Some(listener)),
            Err(error) => last = Some((address, error)),
        }
    }
    Err(match last {
        Some((address, error)) => Failure::failed(format!("cannot listen on {address}: {error}")),
        None => Failure::bad_input("--listen names no address"),
    })
}

/// Serves the API on `listener`, with a dispatcher of `workers` unless `None`, until SIGTERM or
/// Ctrl-C: then the server stops taking requests and finishes those in flight, and the dispatcher
/// has `grace` seconds for its runs.
pub(crate) async fn serve_api<S: Storage + 'static>(
    s: &Session<S>,
    listener: tokio::net::TcpListener,
    workers: Option<usize>,
    grace: u64,
    backup: Option<Arc<dyn Backup>>,
    demo: bool,
) -> Outcome {
    let dispatcher = match workers {
        Some(workers) => Some(s.dispatcher(workers, SyncMode::Additive).await?),
        None => None,
    };
    let address = listener.local_addr().map_err(|e| Failure::failed(format!("cannot listen: {e}")))?;
    let metrics_listener = match s.config.server.metrics_listen.as_str() {
        "" => None,
        metrics_address => Some(tokio::net::TcpListener::bind(metrics_address).await.map_err(|e| {
            Failure::failed(format!("cannot listen for /metrics on {metrics_address} (server.metrics_listen): {e}"))
        })?),
    };
    let interrupted = interrupt_listener().map_err(|e| Failure::failed(format!("cannot wait for signals: {e}")))?;
    // One signal stops both servers.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        interrupted.await;
        let _ = stop.send(true);
    });
    let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stopped| *stopped).await;
    };
    let ui = s.config.ui();
    if demo {
        seed_demo(s, &ui, address).await?;
    }
    let metrics_address = match &metrics_listener {
        Some(listener) => {
            let metrics = listener.local_addr().map_err(|e| Failure::failed(format!("cannot listen: {e}")))?;
            format!(", /health, /ready and /metrics at http://{metrics}/")
        }
        None => String::new(),
    };
    crate::say::progress(&format!(
        "serving http://{address}/api/ and the web pages at http://{address}/ from {}{metrics_address}; SIGTERM or Ctrl-C to stop",
        s.location
    ));
    let limits = s.config.http_limits(Duration::from_secs(grace));
    let mut state = jobhooks_server::AppState::new(s.store.clone()).with_limits(limits.clone()).with_ui(ui);
    if let Some(dispatcher) = &dispatcher {
        state = state.with_dispatcher(dispatcher.monitor());
    }
    if let Some(backup) = backup {
        state = state.with_backup(backup);
    }
    state = state.with_webhook_policy(s.config.webhook_policy());
    if !s.config.ingest.nautobot.secret.is_empty() {
        state = state.with_nautobot_ingest(s.config.ingest.nautobot.secret.clone());
    }
    if !s.config.server.backup_dir.is_empty() {
        state = state.with_backup_dir(&s.config.server.backup_dir);
    }
    let served = match metrics_listener {
        None => jobhooks_server::serve_with(listener, jobhooks_server::router(state), &limits, stopped(stopping)).await,
        Some(metrics_listener) => {
            let (main, metrics) = jobhooks_server::routers_apart(state);
            let metrics_limits = limits.clone();
            let metrics_stopping = stopping.clone();
            let metrics_served = tokio::spawn(async move {
                jobhooks_server::serve_with(metrics_listener, metrics, &metrics_limits, stopped(metrics_stopping)).await
            });
            let main_served = jobhooks_server::serve_with(listener, main, &limits, stopped(stopping)).await;
            let metrics_served = metrics_served.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
            main_served.and(metrics_served)
        }
    };
    served.map_err(|e| Failure::failed(format!("the server failed: {e}")))?;
    if let Some(dispatcher) = dispatcher {
        crate::say::progress(&format!("stopping; runs in flight have {grace}s to finish"));
        let report = dispatcher.shutdown(Duration::from_secs(grace)).await;
        crate::say::progress(&format!("stopped ({} run(s) given back to the queue)", report.abandoned));
    } else {
        crate::say::progress("stopped");
    }
    Ok(())
}

pub(crate) async fn run_dispatcher<S: Storage + 'static>(
    s: &Session<S>,
    workers: usize,
    grace: u64,
    job_sync: SyncMode,
) -> Outcome {
    let dispatcher = s.dispatcher(workers, job_sync).await?;
    // Listen before saying so: a Ctrl-C right after the message must stop the dispatcher
    // gracefully, not kill the process.
    let interrupted = interrupt_listener().map_err(|e| Failure::failed(format!("cannot wait for Ctrl-C: {e}")))?;
    crate::say::progress(&format!("dispatching from {} with {workers} workers; SIGTERM or Ctrl-C to stop", s.location));
    interrupted.await;
    crate::say::progress(&format!("stopping; runs in flight have {grace}s to finish"));
    let report = dispatcher.shutdown(Duration::from_secs(grace)).await;
    crate::say::progress(&format!("stopped ({} run(s) given back to the queue)", report.abandoned));
    Ok(())
}

/// Seeds the demo's store and prints how to log in.
#[cfg(feature = "demo")]
async fn seed_demo<S: Storage + 'static>(
    s: &Session<S>,
    ui: &jobhooks_server::UiConfig,
    address: std::net::SocketAddr,
) -> Outcome {
    let logins = jobhooks_examples::demo::seed(&s.store, ui.password_cost)
        .await
        .map_err(|error| Failure::failed(format!("cannot seed the demo: {error}")))?;
    println!("The demo is seeded. Open http://{address}/objects/dcim.location/hq/ and log in as:");
    for login in &logins {
        println!("  {:<6} password {}  ({})", login.username, login.password, login.can);
    }
    Ok(())
}

#[cfg(not(feature = "demo"))]
async fn seed_demo<S: Storage + 'static>(
    _s: &Session<S>,
    _ui: &jobhooks_server::UiConfig,
    _address: std::net::SocketAddr,
) -> Outcome {
    Err(Failure::bad_input("this build has no demo: build jobhooks with its `demo` feature"))
}
