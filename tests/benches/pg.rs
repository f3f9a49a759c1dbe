//! The PostgreSQL store end to end, beside the naive pattern in raw SQL with the same client, in
//! one run (`cargo bench -p jobhooks-tests --bench pg`; `JOBHOOKS_BENCH_QUICK=1` for short runs).
//! The server is a throwaway cluster with PostgreSQL's default durability (`synchronous_commit`
//! on), or `JOBHOOKS_TEST_PG`.
//!
//! - `pg/e2e_changes`: 64 concurrent committers each commit one update of their own device per
//!   round through `ChangeStore::commit` (change, object, one hook run, in one transaction); an
//!   in-process dispatcher with the default configuration runs the trivial receiver; the time ends
//!   when every run is complete.
//! - `pg/raw_sql`: the same number of transactions of a change row, a run row and an object
//!   upsert by 64 committers, and 4 workers that claim runs in batches of 32 with
//!   `FOR UPDATE SKIP LOCKED` and complete them in a second transaction; statements prepared once
//!   per connection, as the store prepares its own.
//! - `pg/graphile_worker`: graphile_worker 0.14 (a Rust PostgreSQL job queue, on the same client
//!   through its `driver-tokio-postgres` feature) enqueueing the same number of empty jobs from 64
//!   tasks and completing them. Its settings are the fastest found here: 16 concurrent jobs (4 and
//!   64 were slower) and a 10 ms poll interval (its default of 1 s gives a few jobs per second,
//!   since a worker that finds the queue empty waits for the next poll).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jobhooks_dispatch::DispatcherConfig;
use jobhooks_model::Action;
use jobhooks_model::ports::{ChangeStore, ObjectWrites};
use jobhooks_postgres::testing::TestServer;
use jobhooks_postgres::{PgConfig, PgStore};
use tokio::sync::Notify;

const COMMITTERS: u64 = 64;

/// The naive pattern: one transaction per change, workers claiming batches.
async fn raw_round(pool: &deadpool_postgres::Pool, rounds: u64, first: u64) {
    let total = COMMITTERS * rounds;
    let done = Arc::new(AtomicU64::new(0));
    let work = Arc::new(Notify::new());
    let committers: Vec<_> = (0..COMMITTERS)
        .map(|id| {
            let (pool, work) = (pool.clone(), work.clone());
            tokio::spawn(async move {
                for round in first..first + rounds {
                    support::raw_commit(&pool, id, round).await;
                    work.notify_waiters();
                }
            })
        })
        .collect();
    let workers: Vec<_> = (0..DispatcherConfig::default().workers)
        .map(|_| {
            let (pool, work, done) = (pool.clone(), work.clone(), done.clone());
            tokio::spawn(async move {
                while done.load(Ordering::SeqCst) < total {
                    let notified = work.notified();
                    let client = pool.get().await.unwrap();
                    let claim = client
                        .prepare_cached(
                            "UPDATE raw_runs SET status = 'leased' WHERE id IN (SELECT id FROM raw_runs
                                 WHERE status = 'pending' ORDER BY id LIMIT 32 FOR UPDATE SKIP LOCKED)
                             RETURNING id",
                        )
                        .await
                        .unwrap();
                    let claimed: Vec<i64> =
                        client.query(&claim, &[]).await.unwrap().iter().map(|row| row.get(0)).collect();
                    if claimed.is_empty() {
                        let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
                        continue;
                    }
                    let complete = client
                        .prepare_cached("UPDATE raw_runs SET status = 'done', result = 'ok' WHERE id = ANY($1)")
                        .await
                        .unwrap();
                    client.execute(&complete, &[&claimed]).await.unwrap();
                    done.fetch_add(claimed.len() as u64, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in committers.into_iter().chain(workers) {
        task.await.unwrap();
    }
}

/// Empty jobs completed by graphile_worker so far, and a signal per completion.
static GRAPHILE_DONE: AtomicU64 = AtomicU64::new(0);
static GRAPHILE_PROGRESS: Notify = Notify::const_new();

#[derive(serde::Deserialize, serde::Serialize)]
struct EmptyJob {
    change: u64,
}

impl graphile_worker_task_handler::TaskHandler for EmptyJob {
    const IDENTIFIER: &'static str = "empty";

    async fn run(self, _ctx: graphile_worker::WorkerContext) -> impl graphile_worker::IntoTaskHandlerResult {
        GRAPHILE_DONE.fetch_add(1, Ordering::SeqCst);
        GRAPHILE_PROGRESS.notify_waiters();
        Ok::<(), String>(())
    }
}

async fn graphile_worker(url: &str) -> Arc<graphile_worker::Worker> {
    let worker = graphile_worker::WorkerOptions::default()
        .database_url(url)
        .concurrency(16)
        .max_pg_conn(16)
        .poll_interval(Duration::from_millis(10))
        .listen_os_shutdown_signals(false)
        .define_job::<EmptyJob>()
        .init()
        .await
        .unwrap();
    let worker = Arc::new(worker);
    let running = worker.clone();
    tokio::spawn(async move { running.run().await.unwrap() });
    worker
}

/// 64 tasks enqueue `rounds` empty jobs each; returns when all of them are complete.
async fn graphile_round(worker: &graphile_worker::Worker, rounds: u64, first: u64) {
    let target = GRAPHILE_DONE.load(Ordering::SeqCst) + COMMITTERS * rounds;
    let enqueuers: Vec<_> = (0..COMMITTERS)
        .map(|id| {
            let utils = worker.create_utils();
            tokio::spawn(async move {
                for round in first..first + rounds {
                    let job = EmptyJob { change: id * 1_000_000 + round };
                    utils.add_job(job, graphile_worker::JobSpec::default()).await.unwrap();
                }
            })
        })
        .collect();
    for enqueuer in enqueuers {
        enqueuer.await.unwrap();
    }
    loop {
        let progress = GRAPHILE_PROGRESS.notified();
        if GRAPHILE_DONE.load(Ordering::SeqCst) >= target {
            return;
        }
        progress.await;
    }
}

fn bench_pg(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = TestServer::shared();
    let (store, dispatcher, raw) = runtime.block_on(async {
        let store = Arc::new(PgStore::connect_with(&server.fresh_database().await, PgConfig::default()).await.unwrap());
        support::install(&*store, &[Action::Update]).await;
        let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
        let raw_url = server.fresh_database().await;
        let raw = support::raw_pool(&raw_url);
        raw.get().await.unwrap().batch_execute(support::RAW_SCHEMA).await.unwrap();
        (store, dispatcher, raw)
    });
    let mut group = c.benchmark_group("pg");
    let seconds = if support::quick() { 5 } else { 15 };
    group.throughput(Throughput::Elements(COMMITTERS)).sample_size(10).measurement_time(Duration::from_secs(seconds));
    let rounds_done = AtomicU64::new(0);
    group.bench_function("e2e_changes", |b| {
        b.iter_custom(|iters| {
            let first = rounds_done.fetch_add(iters, Ordering::Relaxed);
            runtime.block_on(async {
                let begin = Instant::now();
                let committers: Vec<_> = (0..COMMITTERS)
                    .map(|id| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            for round in first..first + iters {
                                store
                                    .commit(&support::web(), support::update(id, round), ObjectWrites::Apply)
                                    .await
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for committer in committers {
                    committer.await.unwrap();
                }
                dispatcher.drain().await.unwrap();
                begin.elapsed()
            })
        })
    });
    let raw_rounds = AtomicU64::new(0);
    group.bench_function("raw_sql", |b| {
        b.iter_custom(|iters| {
            let first = raw_rounds.fetch_add(iters, Ordering::Relaxed);
            runtime.block_on(async {
                let begin = Instant::now();
                raw_round(&raw, iters, first).await;
                begin.elapsed()
            })
        })
    });
    // Started only now: its workers poll, and would take the machine from the benches before.
    let graphile = runtime.block_on(async { graphile_worker(&server.fresh_database().await).await });
    let graphile_rounds = AtomicU64::new(0);
    group.bench_function("graphile_worker", |b| {
        b.iter_custom(|iters| {
            let first = graphile_rounds.fetch_add(iters, Ordering::Relaxed);
            runtime.block_on(async {
                let begin = Instant::now();
                graphile_round(&graphile, iters, first).await;
                begin.elapsed()
            })
        })
    });
    group.finish();
    graphile.request_shutdown();
    runtime.block_on(async { dispatcher.shutdown(Duration::from_secs(5)).await });
}

criterion_group!(benches, bench_pg);
criterion_main!(benches);
