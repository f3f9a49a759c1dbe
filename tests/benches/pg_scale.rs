//! The PostgreSQL store across processes, two measurements criterion cannot make, written as JSON
//! to `target/bench/` for `cargo xtask bench`:
//!
//! - `pg_scale.json`: 64 committers in this process each commit one update of their own device per
//!   round (as `pg/e2e_changes` does) while dispatcher processes (this binary again, with
//!   `JOBHOOKS_BENCH_CHILD=dispatch`) drain them; the time ends when every run is complete.
//!   Trials alternate between one dispatcher process and two, on the same database; the figure is
//!   the ratio of the median throughputs, two processes over one.
//! - `pg_latency.json`: an offered load of 500 changes/s (one change committed every 2 ms, each by
//!   its own task, spread over 500 devices) with one dispatcher in another process, after one
//!   second of the same load unrecorded; the time from each commit call to its receiver starting,
//!   as the wall clock of this machine reads it in both processes, in an HDR histogram (p50, p99,
//!   p999, max), with its two parts: the commit (call to return) and the delivery (return to the
//!   receiver's start). Beside it, the machine's floor in the same run: the naive commit in raw
//!   SQL at the same offered load, call to return (`raw_commit_p50_ms`, `raw_commit_p99_ms`).
//!
//! - `pg_latency_load.json`: latency where the throughput is measured. The store's capacity first
//!   (64 committers, one dispatcher process, as `scale` measures it), then at 50% and at 80% of
//!   it, offered over 64 devices (the throughput bench's concurrency, so object lines queue), the
//!   store and `raw_sql_best` (`support/raw_sql_best.rs`) one after the other at each point: for
//!   the store, commit call to receiver start; for `raw_sql_best`, commit call to its run's claim;
//!   p50, p99 and p999 from 10,000 samples per point (2,000 with `JOBHOOKS_BENCH_QUICK=1`), after
//!   one second of the same load unrecorded.
//!
//! The server is `JOBHOOKS_TEST_PG`, or a throwaway cluster. `cargo bench -p jobhooks-tests --bench
//! pg_scale [-- scale|latency]`; under `cargo test` (no `--bench` argument) both run at a tiny
//! scale and write nothing.
#![allow(missing_docs)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use jobhooks_dispatch::DispatcherConfig;
use jobhooks_model::Action;
use jobhooks_model::ports::{ChangeStore, JobQueue, ObjectWrites, QueueReader};
use jobhooks_postgres::PgStore;
use jobhooks_postgres::testing::TestServer;
use serde_json::json;
use tokio::sync::{Notify, mpsc};

const CHILD_ENV: &str = "JOBHOOKS_BENCH_CHILD";
const URL_ENV: &str = "JOBHOOKS_BENCH_PG_URL";
const COMMITTERS: u64 = 64;
const OFFERED_PER_S: u64 = 500;
const DEVICES: u64 = 500;

#[derive(Clone, Copy)]
struct Scale {
    trials: usize,
    rounds: u64,
    load_seconds: u64,
    /// Samples per point of the latency under load.
    load_samples: u64,
    report: bool,
}

const MEASURE: Scale = Scale { trials: 5, rounds: 40, load_seconds: 20, load_samples: 10_000, report: true };
const QUICK: Scale = Scale { trials: 3, rounds: 20, load_seconds: 5, load_samples: 2_000, report: true };
const SMOKE: Scale = Scale { trials: 1, rounds: 2, load_seconds: 1, load_samples: 50, report: false };

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn main() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("dispatch") {
        let url = std::env::var(URL_ENV).expect("the parent passes the database URL");
        runtime().block_on(dispatch_child(&url));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|arg| arg == "--bench");
    let filters: Vec<&String> = args.iter().filter(|arg| !arg.starts_with("--")).collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|filter| name.contains(filter.as_str()));
    let scale = match (benching, support::quick()) {
        (false, _) => SMOKE,
        (true, true) => QUICK,
        (true, false) => MEASURE,
    };
    let runtime = runtime();
    if wanted("scale") {
        let report = runtime.block_on(measure_scale(scale));
        write_json(scale, "pg_scale.json", &report);
    }
    if wanted("latency") {
        let report = runtime.block_on(measure_latency(scale));
        write_json(scale, "pg_latency.json", &report);
    }
    if wanted("load") {
        let report = runtime.block_on(measure_latency_under_load(scale));
        write_json(scale, "pg_latency_load.json", &report);
    }
}

fn write_json(scale: Scale, name: &str, value: &serde_json::Value) {
    support::write_report(scale.report, name, value);
}

/// A dispatcher process: runs the trivial receiver with the default configuration, says `ready`,
/// then `start <change> <unix nanos>` for each receiver start, until its parent closes its stdin.
async fn dispatch_child(url: &str) {
    let store = Arc::new(PgStore::connect(url).await.unwrap());
    let (starts, mut started) = mpsc::unbounded_channel();
    support::report_starts(Some(starts));
    let dispatcher = support::dispatch(store, DispatcherConfig::default()).await;
    let printer = tokio::spawn(async move {
        let wall_clock_now = SystemTime::now();
        let monotonic_now = Instant::now();
        say("ready".to_owned());
        while let Some((change, at)) = started.recv().await {
            let wall = wall_clock_now + at.duration_since(monotonic_now);
            say(format!("start {} {}", change.0, unix_nanos(wall)));
        }
    });
    // The parent ends the child by closing its stdin.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).map(|read| read > 0).unwrap_or(false) {}
    })
    .await
    .unwrap();
    dispatcher.shutdown(Duration::from_secs(5)).await;
    printer.abort();
}

/// Writes one line to stdout at once.
fn say(line: String) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

/// Dispatcher processes, each reporting its receiver starts.
struct Dispatchers {
    children: Vec<Child>,
}

/// What the children report: the number of starts, and each change's start time.
#[derive(Default)]
struct Starts {
    count: AtomicU64,
    times: Mutex<HashMap<u64, u64>>,
    progress: Notify,
}

impl Dispatchers {
    /// Starts `count` dispatcher processes on `url` and returns once each says it is ready.
    fn start(count: usize, url: &str, starts: &Arc<Starts>) -> Self {
        let mut children = Vec::new();
        let (ready, readiness) = std::sync::mpsc::channel();
        for _ in 0..count {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env(CHILD_ENV, "dispatch")
                .env(URL_ENV, url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let (starts, ready) = (starts.clone(), ready.clone());
            std::thread::spawn(move || {
                for line in stdout.lines() {
                    let Ok(line) = line else { break };
                    let mut words = line.split(' ');
                    match (words.next(), words.next(), words.next()) {
                        (Some("ready"), _, _) => ready.send(()).unwrap(),
                        (Some("start"), Some(change), Some(at)) => {
                            starts.times.lock().unwrap().insert(change.parse().unwrap(), at.parse().unwrap());
                            starts.count.fetch_add(1, Ordering::SeqCst);
                            starts.progress.notify_waiters();
                        }
                        _ => panic!("unexpected line from a dispatcher: {line}"),
                    }
                }
            });
            children.push(child);
        }
        for _ in 0..count {
            readiness.recv_timeout(Duration::from_secs(60)).expect("a dispatcher process did not start");
        }
        Self { children }
    }

    fn stop(self) {
        for mut child in self.children {
            drop(child.stdin.take());
            let status = child.wait().unwrap();
            assert!(status.success(), "a dispatcher process failed: {status}");
        }
    }
}

/// Waits until `starts` counts `total`, then until the queue has nothing pending or leased.
async fn drained(store: &PgStore, starts: &Starts, total: u64) {
    tokio::time::timeout(Duration::from_secs(300), async {
        loop {
            let progress = starts.progress.notified();
            if starts.count.load(Ordering::SeqCst) >= total {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), progress).await;
        }
        loop {
            let seen = store.work_generation();
            let depth = store.depth().await.unwrap();
            if depth.pending == 0 && depth.leased == 0 {
                break;
            }
            store.wait_for_work(seen, Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dispatchers drained the queue within 5 minutes");
}

async fn prepared_database() -> String {
    let url = TestServer::shared().fresh_database().await;
    let store = PgStore::connect(&url).await.unwrap();
    support::install(&store, &[Action::Update]).await;
    url
}

async fn measure_scale(scale: Scale) -> serde_json::Value {
    let url = prepared_database().await;
    let store = Arc::new(PgStore::connect(&url).await.unwrap());
    let starts = Arc::new(Starts::default());
    let mut per_s: HashMap<usize, Vec<f64>> = HashMap::new();
    let mut round = 0;
    for _ in 0..scale.trials {
        for processes in [1, 2] {
            let dispatchers = Dispatchers::start(processes, &url, &starts);
            let total = starts.count.load(Ordering::SeqCst) + COMMITTERS * scale.rounds;
            let begin = Instant::now();
            support::commit_rounds(&store, COMMITTERS, round, scale.rounds).await;
            drained(&store, &starts, total).await;
            let elapsed = begin.elapsed();
            round += scale.rounds;
            dispatchers.stop();
            per_s.entry(processes).or_default().push((COMMITTERS * scale.rounds) as f64 / elapsed.as_secs_f64());
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let one = median(per_s.get_mut(&1).unwrap());
    let two = median(per_s.get_mut(&2).unwrap());
    json!({
        "ratio_2_vs_1": two / one,
        "one_process_per_s": one,
        "two_processes_per_s": two,
        "trials": scale.trials,
        "changes_per_trial": COMMITTERS * scale.rounds,
        "all_per_s": { "1": per_s[&1], "2": per_s[&2] },
    })
}

async fn measure_latency(scale: Scale) -> serde_json::Value {
    let url = prepared_database().await;
    let store = Arc::new(PgStore::connect(&url).await.unwrap());
    let starts = Arc::new(Starts::default());
    let dispatchers = Dispatchers::start(1, &url, &starts);
    // Each change's commit call and return, in unix nanos.
    let calls: Arc<Mutex<HashMap<u64, (u64, u64)>>> = Arc::default();
    // One second of the same load first, unrecorded: both processes open their connections and
    // prepare their statements.
    let total = offer(scale, |sequence, recorded| {
        let (store, calls) = (store.clone(), calls.clone());
        async move {
            let called = unix_nanos(SystemTime::now());
            let receipt = store
                .commit(&support::web(), support::update(sequence % DEVICES, sequence), ObjectWrites::Apply)
                .await
                .unwrap();
            let returned = unix_nanos(SystemTime::now());
            if recorded {
                calls.lock().unwrap().insert(receipt.changes[0].0, (called, returned));
            }
        }
    })
    .await;
    drained(&store, &starts, total).await;
    dispatchers.stop();
    let raw = raw_commit_latency(&url, scale).await;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut commit_histogram = histogram.clone();
    let mut delivery_histogram = histogram.clone();
    let pending_after = store.depth().await.unwrap().pending;
    let calls = calls.lock().unwrap();
    let started = starts.times.lock().unwrap();
    for (change, (called, returned)) in calls.iter() {
        let start = started[change];
        histogram.record(start.saturating_sub(*called).max(1)).unwrap();
        commit_histogram.record(returned.saturating_sub(*called).max(1)).unwrap();
        delivery_histogram.record(start.saturating_sub(*returned).max(1)).unwrap();
    }
    let ms = |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1e6;
    json!({
        "p50_ms": ms(&histogram, 0.5),
        "p99_ms": ms(&histogram, 0.99),
        "p999_ms": ms(&histogram, 0.999),
        "max_ms": histogram.max() as f64 / 1e6,
        "commit_p50_ms": ms(&commit_histogram, 0.5),
        "commit_p99_ms": ms(&commit_histogram, 0.99),
        "delivery_p50_ms": ms(&delivery_histogram, 0.5),
        "delivery_p99_ms": ms(&delivery_histogram, 0.99),
        "raw_commit_p50_ms": ms(&raw, 0.5),
        "raw_commit_p99_ms": ms(&raw, 0.99),
        "samples": histogram.len(),
        "offered_per_s": OFFERED_PER_S,
        "seconds": scale.load_seconds,
        "pending_after": pending_after,
    })
}

/// The machine's own floor, measured right after the store on the same database and at the same
/// offered load: the naive commit in raw SQL (`support::raw_commit`, as `pg/raw_sql` commits), each
/// commit's latency from call to return, after one second unrecorded.
async fn raw_commit_latency(url: &str, scale: Scale) -> Histogram<u64> {
    let pool = support::raw_pool(url);
    pool.get().await.unwrap().batch_execute(support::RAW_SCHEMA).await.unwrap();
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap()));
    offer(scale, |sequence, recorded| {
        let (pool, histogram) = (pool.clone(), histogram.clone());
        async move {
            let called = Instant::now();
            support::raw_commit(&pool, sequence % DEVICES, sequence).await;
            if recorded {
                let nanos = called.elapsed().as_nanos() as u64;
                histogram.lock().unwrap().record(nanos.max(1)).unwrap();
            }
        }
    })
    .await;
    Arc::try_unwrap(histogram).unwrap().into_inner().unwrap()
}

/// Offers the latency load: one `commit` every `1 / OFFERED_PER_S` seconds, each a task of its
/// own, for one unrecorded second and then `scale.load_seconds`; `commit` is given the sequence
/// number and whether its time counts. Returns how many were offered, once all have finished.
async fn offer<F>(scale: Scale, commit: impl Fn(u64, bool) -> F) -> u64
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    offer_at(OFFERED_PER_S as f64, OFFERED_PER_S, OFFERED_PER_S * scale.load_seconds, commit).await
}

/// Offers `per_s` commits a second, each a task of its own: `warm_up` unrecorded, then `recorded`;
/// `commit` is given the sequence number and whether its time counts. Returns how many were
/// offered, once all have finished. (tokio's timer has 1 ms ticks: above 1,000/s, the commits of
/// one millisecond start together.)
async fn offer_at<F>(per_s: f64, warm_up: u64, recorded: u64, commit: impl Fn(u64, bool) -> F) -> u64
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let total = warm_up + recorded;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut commits = Vec::with_capacity(total as usize);
    for sequence in 0..total {
        ticks.tick().await;
        commits.push(tokio::spawn(commit(sequence, sequence >= warm_up)));
    }
    for commit in commits {
        commit.await.unwrap();
    }
    total
}

/// See `pg_latency_load.json` in the module's documentation.
async fn measure_latency_under_load(scale: Scale) -> serde_json::Value {
    let url = prepared_database().await;
    let store = Arc::new(PgStore::connect(&url).await.unwrap());
    let starts = Arc::new(Starts::default());
    let dispatchers = Dispatchers::start(1, &url, &starts);
    // The capacity, as `scale` measures it with one dispatcher process.
    let total = starts.count.load(Ordering::SeqCst) + COMMITTERS * scale.rounds;
    let begin = Instant::now();
    support::commit_rounds(&store, COMMITTERS, 0, scale.rounds).await;
    drained(&store, &starts, total).await;
    let capacity = (COMMITTERS * scale.rounds) as f64 / begin.elapsed().as_secs_f64();

    let best = Arc::new(
        support::raw_sql_best::RawSqlBest::create(support::raw_pool(&TestServer::shared().fresh_database().await))
            .await,
    );
    let mut points = Vec::new();
    let mut round = scale.rounds;
    for fraction in [0.5, 0.8] {
        let per_s = capacity * fraction;
        let warm_up = per_s as u64;
        let ours = store_latency(&store, &starts, per_s, warm_up, scale.load_samples, round).await;
        round += warm_up + scale.load_samples;
        let raw = raw_best_latency(&best, per_s, warm_up, scale.load_samples).await;
        let ms = |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1e6;
        points.push(json!({
            "fraction": fraction,
            "offered_per_s": per_s,
            "p50_ms": ms(&ours, 0.5),
            "p99_ms": ms(&ours, 0.99),
            "p999_ms": ms(&ours, 0.999),
            "samples": ours.len(),
            "raw_sql_best_p50_ms": ms(&raw, 0.5),
            "raw_sql_best_p99_ms": ms(&raw, 0.99),
            "raw_sql_best_p999_ms": ms(&raw, 0.999),
            "raw_sql_best_samples": raw.len(),
        }));
    }
    dispatchers.stop();
    json!({
        "capacity_per_s": capacity,
        "devices": COMMITTERS,
        "samples_per_point": scale.load_samples,
        "points": points,
    })
}

/// The store at `per_s` over 64 devices: commit call to receiver start, after `warm_up` commits.
async fn store_latency(
    store: &Arc<PgStore>,
    starts: &Arc<Starts>,
    per_s: f64,
    warm_up: u64,
    samples: u64,
    first_round: u64,
) -> Histogram<u64> {
    let calls: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let before = starts.count.load(Ordering::SeqCst);
    let offered = offer_at(per_s, warm_up, samples, |sequence, recorded| {
        let (store, calls) = (store.clone(), calls.clone());
        async move {
            let called = unix_nanos(SystemTime::now());
            let device = sequence % COMMITTERS;
            let change = support::update(device, first_round + sequence);
            let receipt = store.commit(&support::web(), change, ObjectWrites::Apply).await.unwrap();
            if recorded {
                calls.lock().unwrap().insert(receipt.changes[0].0, called);
            }
        }
    })
    .await;
    drained(store, starts, before + offered).await;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let started = starts.times.lock().unwrap();
    for (change, called) in calls.lock().unwrap().iter() {
        histogram.record(started[change].saturating_sub(*called).max(1)).unwrap();
    }
    histogram
}

/// `raw_sql_best` at `per_s` over 64 devices: commit call to its run's claim, after `warm_up`
/// commits.
async fn raw_best_latency(
    best: &Arc<support::raw_sql_best::RawSqlBest>,
    per_s: f64,
    warm_up: u64,
    samples: u64,
) -> Histogram<u64> {
    let total = warm_up + samples;
    let done = Arc::new(AtomicU64::new(0));
    let (work, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let claims: support::raw_sql_best::Claims = Arc::default();
    let writers: Vec<_> = (0..support::raw_sql_best::WRITERS)
        .map(|_| tokio::spawn(best.clone().write(work.clone(), stop.clone())))
        .collect();
    let workers: Vec<_> = (0..DispatcherConfig::default().workers)
        .map(|_| {
            let (pool, work, done, claims) = (best.pool.clone(), work.clone(), done.clone(), claims.clone());
            tokio::spawn(support::raw_sql_best::worker(pool, work, done, total, Some(claims)))
        })
        .collect();
    let calls: Arc<Mutex<HashMap<i64, u64>>> = Arc::default();
    offer_at(per_s, warm_up, samples, |sequence, recorded| {
        let (best, calls) = (best.clone(), calls.clone());
        async move {
            let called = unix_nanos(SystemTime::now());
            let change = best.commit(sequence % COMMITTERS, sequence).await;
            if recorded {
                calls.lock().unwrap().insert(change, called);
            }
        }
    })
    .await;
    for worker in workers {
        worker.await.unwrap();
    }
    stop.notify_waiters();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let claims = claims.lock().unwrap();
    for (change, called) in calls.lock().unwrap().iter() {
        histogram.record(claims[change].saturating_sub(*called).max(1)).unwrap();
    }
    histogram
}
