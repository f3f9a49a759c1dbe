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
//! - `pg/e2e_changes_long_run`: `pg/e2e_changes` on a database that already holds 1,000,000
//!   changes with their finished runs (100,000 with `JOBHOOKS_BENCH_QUICK=1`), written through
//!   the store and drained before the clock starts, retention off: what index growth and
//!   autovacuum cost once the tables are no longer fresh.
//! - `pg/raw_sql_best`: what a PostgreSQL expert writes for the same guarantees
//!   (`support/raw_sql_best.rs`): application-side group commit, one statement per group with
//!   data-modifying CTEs over `unnest` arrays, four groups in flight; workers claim and complete
//!   in batches as in `pg/raw_sql`.
//! - `pg/graphile_worker`: graphile_worker 0.14 (a Rust PostgreSQL job queue, on the same client
//!   through its `driver-tokio-postgres` feature) enqueueing the same number of empty jobs from 64
//!   tasks and completing them, with its batching off. Its settings are the fastest found here: 16
//!   concurrent jobs (4 and 64 were slower) and a 10 ms poll interval (its default of 1 s gives a
//!   few jobs per second, since a worker that finds the queue empty waits for the next poll).
//! - `pg/graphile_worker_tuned`: the same, tuned for throughput as its documentation advises: its
//!   default sqlx driver, a local queue (jobs fetched 64 at a time), completions batched every
//!   2 ms (`complete_job_batch_delay`), and enqueues batched with `add_jobs` (the 64 tasks hand
//!   their jobs to one batcher, as group commit does).
//!
//! After the criterion benches, the contenders the targets compare (`e2e_changes`,
//! `e2e_changes_long_run`, `raw_sql_best`, `graphile_worker_tuned`) run again in alternating
//! trials (3 quick, 5 otherwise, each of 64 × 20 or 64 × 40 changes per contender, the order
//! turning each trial): their medians and ratios go to `pg_alternated.json`, which
//! `cargo xtask bench` takes the ratio targets from.
//!
//! Beside the times, what each contender cost the server per change over all its iterations (WAL
//! bytes, and transactions that wrote: each a WAL flush unless PostgreSQL groups commits) goes to
//! `pg_costs.json` in the bench output directory.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

mod support;

use support::raw_sql_best::{self, RawSqlBest};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jobhooks_dispatch::DispatcherConfig;
use jobhooks_model::Action;
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
        .map(|_| tokio::spawn(raw_sql_best::worker(pool.clone(), work.clone(), done.clone(), total, None)))
        .collect();
    for task in committers.into_iter().chain(workers) {
        task.await.unwrap();
    }
}

/// `rounds` rounds of `pg/raw_sql_best` from round `first`: returns when every run is complete.
async fn raw_best_round(best: &Arc<RawSqlBest>, rounds: u64, first: u64) {
    let total = COMMITTERS * rounds;
    let done = Arc::new(AtomicU64::new(0));
    let (work, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let writers: Vec<_> =
        (0..raw_sql_best::WRITERS).map(|_| tokio::spawn(best.clone().write(work.clone(), stop.clone()))).collect();
    let workers: Vec<_> = (0..DispatcherConfig::default().workers)
        .map(|_| tokio::spawn(raw_sql_best::worker(best.pool.clone(), work.clone(), done.clone(), total, None)))
        .collect();
    let committers: Vec<_> = (0..COMMITTERS)
        .map(|id| {
            let best = best.clone();
            tokio::spawn(async move {
                for round in first..first + rounds {
                    best.commit(id, round).await;
                }
            })
        })
        .collect();
    for task in committers.into_iter().chain(workers) {
        task.await.unwrap();
    }
    stop.notify_waiters();
    for writer in writers {
        writer.await.unwrap();
    }
}

/// Empty jobs completed by graphile_worker so far, and a signal per completion.
static GRAPHILE_DONE: AtomicU64 = AtomicU64::new(0);
static GRAPHILE_PROGRESS: Notify = Notify::const_new();

#[derive(Clone, serde::Deserialize, serde::Serialize)]
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

/// Starts graphile_worker with `options` and what both its rows share: the empty job, 16
/// concurrent jobs and connections, a 10 ms poll; with the task that runs it, which ends once it
/// is asked to shut down.
async fn start_graphile_worker(
    options: graphile_worker::WorkerOptions,
) -> (Arc<graphile_worker::Worker>, tokio::task::JoinHandle<()>) {
    let worker = options
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
    let task = tokio::spawn(async move { running.run().await.unwrap() });
    (worker, task)
}

/// graphile_worker with its defaults, on the store's client (tokio-postgres).
async fn graphile_worker(url: &str) -> Arc<graphile_worker::Worker> {
    let database = graphile_worker::tokio_postgres::TokioPostgresDatabase::from_url(url, 16).unwrap();
    start_graphile_worker(graphile_worker::WorkerOptions::default().database(database)).await.0
}

/// graphile_worker tuned for throughput: the sqlx driver, a local queue, batched completions.
async fn graphile_worker_tuned(url: &str) -> (Arc<graphile_worker::Worker>, tokio::task::JoinHandle<()>) {
    let options = graphile_worker::WorkerOptions::default()
        .database_url(url)
        .local_queue(graphile_worker::LocalQueueConfig::default().with_size(64))
        .complete_job_batch_delay(Duration::from_millis(2));
    start_graphile_worker(options).await
}

/// Jobs waiting for the batcher of `pg/graphile_worker_tuned`, each with its enqueuer's signal.
type WaitingJobs = std::sync::Mutex<Vec<(EmptyJob, tokio::sync::oneshot::Sender<()>)>>;

/// 64 tasks hand `rounds` empty jobs each to one batcher, which enqueues every waiting job with one
/// `add_jobs`; returns when all of them are complete.
async fn graphile_tuned_round(worker: &graphile_worker::Worker, rounds: u64, first: u64) {
    let target = GRAPHILE_DONE.load(Ordering::SeqCst) + COMMITTERS * rounds;
    let waiting: Arc<WaitingJobs> = Arc::default();
    let (wake, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let batcher = {
        let (utils, waiting, wake, stop) = (worker.create_utils(), waiting.clone(), wake.clone(), stop.clone());
        tokio::spawn(async move {
            let spec = graphile_worker::JobSpec::default();
            loop {
                let batch = std::mem::take(&mut *waiting.lock().unwrap());
                if batch.is_empty() {
                    tokio::select! {
                        () = wake.notified() => continue,
                        () = stop.notified() => return,
                    }
                }
                let jobs: Vec<(EmptyJob, &graphile_worker::JobSpec)> =
                    batch.iter().map(|(job, _)| (EmptyJob { change: job.change }, &spec)).collect();
                utils.add_jobs(&jobs).await.unwrap();
                for (_, added) in batch {
                    let _ = added.send(());
                }
            }
        })
    };
    let enqueuers: Vec<_> = (0..COMMITTERS)
        .map(|id| {
            let (waiting, wake) = (waiting.clone(), wake.clone());
            tokio::spawn(async move {
                for round in first..first + rounds {
                    let (added, made) = tokio::sync::oneshot::channel();
                    waiting.lock().unwrap().push((EmptyJob { change: id * 1_000_000 + round }, added));
                    wake.notify_one();
                    made.await.unwrap();
                }
            })
        })
        .collect();
    for enqueuer in enqueuers {
        enqueuer.await.unwrap();
    }
    stop.notify_one();
    batcher.await.unwrap();
    loop {
        let progress = GRAPHILE_PROGRESS.notified();
        if GRAPHILE_DONE.load(Ordering::SeqCst) >= target {
            return;
        }
        progress.await;
    }
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

/// 64 committers commit `rounds` updates each of their own device to `store` from round `first`;
/// returns when `dispatcher` has run every one.
async fn e2e_round(store: &Arc<PgStore>, dispatcher: &jobhooks_dispatch::Dispatcher<PgStore>, rounds: u64, first: u64) {
    support::commit_rounds(store, COMMITTERS, first, rounds).await;
    dispatcher.drain().await.unwrap();
}

/// Where the server stands: the WAL written so far, and the transaction ids handed out (one per
/// transaction that wrote; with `synchronous_commit` on, each is a WAL flush unless PostgreSQL
/// groups their commits). Read without writing, so reading them changes neither.
async fn server_position(pool: &deadpool_postgres::Pool) -> (u64, u64) {
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint,
                    pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await
        .unwrap();
    (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64)
}

/// What each contender cost the server per change, over all its iterations: WAL bytes and write
/// transactions (`pg_costs.json`).
#[derive(Default)]
struct ServerCosts {
    per_contender: serde_json::Map<String, serde_json::Value>,
}

impl ServerCosts {
    fn add(&mut self, name: &str, before: (u64, u64), after: (u64, u64), changes: u64) {
        if changes == 0 {
            // A bench the filter left out.
            return;
        }
        let changes = changes as f64;
        self.per_contender.insert(
            name.to_owned(),
            serde_json::json!({
                "wal_bytes_per_change": (after.0 - before.0) as f64 / changes,
                "write_transactions_per_change": (after.1 - before.1) as f64 / changes,
                "changes": changes,
            }),
        );
    }
}

/// Runs criterion's bench `name`, each iteration `round(rounds, first)` (64 changes a round, from
/// round `first`), counting the rounds in `rounds_done`; adds what it cost the server, read on
/// `pool`, to `costs`.
fn bench_rounds<F: std::future::Future<Output = ()>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    costs: &mut ServerCosts,
    pool: &deadpool_postgres::Pool,
    name: &str,
    rounds_done: &AtomicU64,
    round: impl Fn(u64, u64) -> F,
) {
    let (position, before) = (runtime.block_on(server_position(pool)), rounds_done.load(Ordering::Relaxed));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let first = rounds_done.fetch_add(iters, Ordering::Relaxed);
            runtime.block_on(async {
                let begin = Instant::now();
                round(iters, first).await;
                begin.elapsed()
            })
        })
    });
    let changes = (rounds_done.load(Ordering::Relaxed) - before) * COMMITTERS;
    costs.add(name, position, runtime.block_on(server_position(pool)), changes);
}

/// Changes (with their finished runs) in the long-run database before its bench starts.
fn long_run_changes() -> u64 {
    if support::quick() { 100_000 } else { 1_000_000 }
}

fn bench_pg(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = TestServer::shared();
    let (store, dispatcher, raw, best) = runtime.block_on(async {
        let store = Arc::new(PgStore::connect_with(&server.fresh_database().await, PgConfig::default()).await.unwrap());
        support::install(&*store, &[Action::Update]).await;
        let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
        let raw_url = server.fresh_database().await;
        let raw = support::raw_pool(&raw_url);
        raw.get().await.unwrap().batch_execute(support::RAW_SCHEMA).await.unwrap();
        let best = Arc::new(RawSqlBest::create(support::raw_pool(&server.fresh_database().await)).await);
        (store, dispatcher, raw, best)
    });
    let mut costs = ServerCosts::default();
    let mut group = c.benchmark_group("pg");
    let seconds = if support::quick() { 5 } else { 15 };
    group.throughput(Throughput::Elements(COMMITTERS)).sample_size(10).measurement_time(Duration::from_secs(seconds));
    let rounds_done = AtomicU64::new(0);
    bench_rounds(&mut group, &runtime, &mut costs, &raw, "e2e_changes", &rounds_done, |rounds, first| {
        e2e_round(&store, &dispatcher, rounds, first)
    });
    // The same on a database that has run `long_run_changes()` changes already.
    let (long_store, long_dispatcher) = runtime.block_on(async {
        let store = Arc::new(PgStore::connect_with(&server.fresh_database().await, PgConfig::default()).await.unwrap());
        support::install(&*store, &[Action::Update]).await;
        let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
        let begin = Instant::now();
        e2e_round(&store, &dispatcher, long_run_changes() / COMMITTERS, 0).await;
        println!(
            "pg/e2e_changes_long_run: {} changes written and run first, in {:?}",
            long_run_changes(),
            begin.elapsed()
        );
        (store, dispatcher)
    });
    let long_rounds = AtomicU64::new(long_run_changes() / COMMITTERS);
    bench_rounds(&mut group, &runtime, &mut costs, &raw, "e2e_changes_long_run", &long_rounds, |rounds, first| {
        e2e_round(&long_store, &long_dispatcher, rounds, first)
    });
    let raw_rounds = AtomicU64::new(0);
    bench_rounds(&mut group, &runtime, &mut costs, &raw, "raw_sql", &raw_rounds, |rounds, first| {
        raw_round(&raw, rounds, first)
    });
    let best_rounds = AtomicU64::new(0);
    bench_rounds(&mut group, &runtime, &mut costs, &raw, "raw_sql_best", &best_rounds, |rounds, first| {
        raw_best_round(&best, rounds, first)
    });
    // Started only now: its workers poll, and would take the machine from the benches before.
    let graphile = runtime.block_on(async { graphile_worker(&server.fresh_database().await).await });
    let graphile_rounds = AtomicU64::new(0);
    bench_rounds(&mut group, &runtime, &mut costs, &raw, "graphile_worker", &graphile_rounds, |rounds, first| {
        graphile_round(&graphile, rounds, first)
    });
    // One graphile_worker at a time: the first one stops polling before the second starts.
    graphile.request_shutdown();
    let tuned_url = runtime.block_on(server.fresh_database());
    let (tuned, tuned_task) = runtime.block_on(graphile_worker_tuned(&tuned_url));
    let tuned_rounds = AtomicU64::new(0);
    bench_rounds(&mut group, &runtime, &mut costs, &raw, "graphile_worker_tuned", &tuned_rounds, |rounds, first| {
        graphile_tuned_round(&tuned, rounds, first)
    });
    group.finish();
    // graphile_worker runs only in its turns below: idle, its workers still poll.
    tuned.request_shutdown();
    runtime.block_on(tuned_task).unwrap();
    // The ratios the targets name, from trials that take the contenders in turn (each trial in
    // another order), so that the machine's moods fall on all of them alike.
    let trials = if support::quick() { 3 } else { 5 };
    let rounds = if support::quick() { 20 } else { 40 };
    let contenders = ["e2e_changes", "e2e_changes_long_run", "raw_sql_best", "graphile_worker_tuned"];
    let mut per_s: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    // CPU µs per change, of this process (the client: committers, dispatcher or workers) and of
    // the server's processes, summed over the trials.
    let mut cpu: BTreeMap<&str, (std::time::Duration, std::time::Duration)> = BTreeMap::new();
    runtime.block_on(async {
        for trial in 0..trials {
            for turn in 0..contenders.len() {
                let contender = contenders[(trial + turn) % contenders.len()];
                let (client, server) = (support::Spent::now(), support::postgres_cpu());
                let begin = Instant::now();
                match contender {
                    "e2e_changes" => {
                        e2e_round(&store, &dispatcher, rounds, rounds_done.fetch_add(rounds, Ordering::Relaxed)).await;
                    }
                    "e2e_changes_long_run" => {
                        let first = long_rounds.fetch_add(rounds, Ordering::Relaxed);
                        e2e_round(&long_store, &long_dispatcher, rounds, first).await;
                    }
                    "raw_sql_best" => {
                        raw_best_round(&best, rounds, best_rounds.fetch_add(rounds, Ordering::Relaxed)).await
                    }
                    _ => {
                        let (tuned, task) = graphile_worker_tuned(&tuned_url).await;
                        let (client, server) = (support::Spent::now(), support::postgres_cpu());
                        let begin = Instant::now();
                        graphile_tuned_round(&tuned, rounds, tuned_rounds.fetch_add(rounds, Ordering::Relaxed)).await;
                        let elapsed = begin.elapsed();
                        let spent = cpu.entry(contender).or_default();
                        spent.0 += support::Spent::now().since(client).cpu;
                        spent.1 += support::postgres_cpu().saturating_sub(server);
                        tuned.request_shutdown();
                        task.await.unwrap();
                        per_s.entry(contender).or_default().push((COMMITTERS * rounds) as f64 / elapsed.as_secs_f64());
                        continue;
                    }
                }
                per_s.entry(contender).or_default().push((COMMITTERS * rounds) as f64 / begin.elapsed().as_secs_f64());
                let spent = cpu.entry(contender).or_default();
                spent.0 += support::Spent::now().since(client).cpu;
                spent.1 += support::postgres_cpu().saturating_sub(server);
            }
        }
    });
    let median = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let medians: BTreeMap<&str, f64> = per_s.iter().map(|(name, values)| (*name, median(values))).collect();
    let alternated = serde_json::json!({
        "trials": trials,
        "changes_per_trial": COMMITTERS * rounds,
        "median_per_s": medians,
        "all_per_s": per_s,
        "pg_vs_raw_sql_best": medians["e2e_changes"] / medians["raw_sql_best"],
        "pg_vs_graphile_worker_tuned": medians["e2e_changes"] / medians["graphile_worker_tuned"],
        "pg_long_run_vs_fresh": medians["e2e_changes_long_run"] / medians["e2e_changes"],
        "cpu_us_per_change": cpu.iter().map(|(name, (client, server))| {
            let changes = (trials as u64 * COMMITTERS * rounds) as f64;
            (name.to_string(), serde_json::json!({
                "client": client.as_secs_f64() * 1e6 / changes,
                "server": server.as_secs_f64() * 1e6 / changes,
            }))
        }).collect::<serde_json::Map<_, _>>(),
    });
    let measured = std::env::args().any(|arg| arg == "--bench");
    support::write_report(measured, "pg_alternated.json", &alternated);
    runtime.block_on(async { long_dispatcher.shutdown(Duration::from_secs(5)).await });
    support::write_report(measured, "pg_costs.json", &serde_json::Value::Object(costs.per_contender));
    runtime.block_on(async { dispatcher.shutdown(Duration::from_secs(5)).await });
}

criterion_group!(benches, bench_pg);
criterion_main!(benches);
