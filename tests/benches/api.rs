//! The API end to end, beside the same writes through the library, in one run
//! (`cargo bench -p jobhooks-tests --bench api`; `JOBHOOKS_BENCH_QUICK=1` for short runs).
//!
//! - `api/e2e_changes`: 64 HTTP clients (reqwest, keep-alive) each `PUT` one 30-field device of
//!   their own per round to a server on 127.0.0.1 (axum, the sled store, the dispatcher beside it
//!   in the default configuration, one hook, the trivial receiver); the time ends when every run
//!   is complete.
//! - `api/library_changes`: the same writes by 64 tasks through a `ChangeSession` on a store of
//!   the same kind, with the same dispatcher, hook and receiver.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::Catalog;
use jobhooks_model::{Action, ApiToken, ChangeSession, OffsetDateTime, User};
use jobhooks_server::{AppState, router, serve};
use jobhooks_store::Store;

const CLIENTS: u64 = 64;

struct Served {
    base: String,
    key: String,
    dispatcher: Dispatcher<Store>,
    _dir: tempfile::TempDir,
}

async fn store_with_hook() -> (Arc<Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("store")).unwrap());
    support::install(&*store, &[Action::Update, Action::Create]).await;
    (store, dir)
}

async fn served() -> Served {
    let (store, dir) = store_with_hook().await;
    store.put_user(User::superuser("bench").unwrap()).await.unwrap();
    let issued = ApiToken::issue("bench", OffsetDateTime::now_utc(), None, "bench");
    store.add_token(issued.token).await.unwrap();
    let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(AppState::new(store).with_dispatcher(dispatcher.monitor()));
    tokio::spawn(serve(listener, app, std::future::pending()));
    Served { base, key: issued.key, dispatcher, _dir: dir }
}

fn bench_api(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (server, library, _library_dir, library_dispatcher) = runtime.block_on(async {
        let server = served().await;
        let (library, dir) = store_with_hook().await;
        let dispatcher = support::dispatch(library.clone(), DispatcherConfig::default()).await;
        (server, library, dir, dispatcher)
    });
    let clients: Vec<reqwest::Client> = (0..CLIENTS).map(|_| reqwest::Client::new()).collect();
    let mut group = c.benchmark_group("api");
    let seconds = if support::quick() { 5 } else { 15 };
    group.throughput(Throughput::Elements(CLIENTS)).sample_size(10).measurement_time(Duration::from_secs(seconds));

    let rounds = AtomicU64::new(0);
    group.bench_function("e2e_changes", |b| {
        b.iter_custom(|iters| {
            let first = rounds.fetch_add(iters, Ordering::Relaxed);
            runtime.block_on(async {
                let begin = Instant::now();
                let writers: Vec<_> = clients
                    .iter()
                    .enumerate()
                    .map(|(id, client)| {
                        let (client, base, key) = (client.clone(), server.base.clone(), server.key.clone());
                        tokio::spawn(async move {
                            for round in first..first + iters {
                                let device = support::device(id as u64, round, 30);
                                let response = client
                                    .put(format!("{base}/api/objects/dcim.device/{id}/"))
                                    .header("Authorization", format!("Token {key}"))
                                    .json(&serde_json::json!({"repr": "dev", "data": device.data()}))
                                    .send()
                                    .await
                                    .unwrap();
                                assert_eq!(response.status(), 200);
                            }
                        })
                    })
                    .collect();
                for writer in writers {
                    writer.await.unwrap();
                }
                server.dispatcher.drain().await.unwrap();
                begin.elapsed()
            })
        })
    });

    let library_rounds = AtomicU64::new(0);
    group.bench_function("library_changes", |b| {
        b.iter_custom(|iters| {
            let first = library_rounds.fetch_add(iters, Ordering::Relaxed);
            runtime.block_on(async {
                let begin = Instant::now();
                let writers: Vec<_> = (0..CLIENTS)
                    .map(|id| {
                        let store = library.clone();
                        tokio::spawn(async move {
                            for round in first..first + iters {
                                let mut session = ChangeSession::new(support::web(), store.clone());
                                session.save(support::device(id, round, 30)).await.unwrap();
                                session.commit().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for writer in writers {
                    writer.await.unwrap();
                }
                library_dispatcher.drain().await.unwrap();
                begin.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_api);
criterion_main!(benches);
