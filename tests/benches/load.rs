//! Two measurements criterion cannot make, written as JSON to `target/bench/` for
//! `cargo xtask bench`:
//!
//! - `latency.json`: an offered load of 1,000 changes/s for 30 s (one change committed every
//!   millisecond, each by its own task, whether or not earlier ones have finished), with a
//!   dispatcher in its default configuration; the time from each commit returning to its receiver
//!   starting, in an HDR histogram (p50, p99, p999, max). A receiver that starts before its commit's
//!   flush returns counts as 0.
//! - `queue_rss.json`: the peak RSS of a process that opens a store holding 1,000,000 pending runs
//!   and starts a dispatcher draining them (until 20,000 have completed). The store is filled by
//!   this process first; the measured process is a fresh child (this binary with `--drain-rss`).
//!   The baseline is another fresh child that opens the same files with raw sled, reads the
//!   queue's prefixes, then writes what draining as many runs writes (`--sled-open-rss`): the
//!   memory sled itself needs for that store and those writes.
//!
//! `cargo bench -p jobhooks-tests --bench load [-- latency|rss]`. Under `cargo test` (no
//! `--bench` argument) both run at a tiny scale and write nothing: the tests check they work.
#![allow(missing_docs)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use jobhooks_dispatch::DispatcherConfig;
use jobhooks_model::ports::{ChangeStore, ObjectWrites};
use jobhooks_model::{Action, ChangeId, ChangeSet, PendingChange};
use jobhooks_store::{Durability, Store, StoreConfig};
use serde_json::json;
use tokio::sync::mpsc;

const OFFERED_PER_S: u64 = 1_000;
const FILL_BATCH: u64 = 1_000;

/// How much to do: the measurement under `cargo bench`, a smoke run under `cargo test --benches`
/// (which runs this binary without `--bench`), so that the tests only check that it works.
#[derive(Clone, Copy)]
struct Scale {
    load_seconds: u64,
    queued: u64,
    drained: u64,
    report: bool,
}

const MEASURE: Scale = Scale { load_seconds: 30, queued: 1_000_000, drained: 20_000, report: true };
const SMOKE: Scale = Scale { load_seconds: 1, queued: 2 * FILL_BATCH, drained: 200, report: false };

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn write_json(scale: Scale, name: &str, value: &serde_json::Value) {
    support::write_report(scale.report, name, value);
}

fn latency(scale: Scale) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        support::install(&*store, &[Action::Update]).await;
        let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
        let (starts, mut started) = mpsc::unbounded_channel();
        support::report_starts(Some(starts));
        let committed: Arc<Mutex<HashMap<ChangeId, Instant>>> = Arc::default();
        let total = OFFERED_PER_S * scale.load_seconds;
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / OFFERED_PER_S));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let begin = Instant::now();
        let mut commits = Vec::with_capacity(total as usize);
        for n in 0..total {
            tick.tick().await;
            let (store, committed) = (store.clone(), committed.clone());
            commits.push(tokio::spawn(async move {
                let receipt =
                    store.commit(&support::web(), support::update(n % 1_000, n), ObjectWrites::Apply).await.unwrap();
                let now = Instant::now();
                committed.lock().unwrap().insert(receipt.changes[0], now);
            }));
        }
        for commit in commits {
            commit.await.unwrap();
        }
        let offered_for = begin.elapsed();
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for _ in 0..total {
            let (change, start) = started.recv().await.unwrap();
            let commit_returned = committed.lock().unwrap()[&change];
            let micros = start.saturating_duration_since(commit_returned).as_micros() as u64;
            histogram.record(micros.max(1)).unwrap();
        }
        support::report_starts(None);
        dispatcher.drain().await.unwrap();
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
        write_json(
            scale,
            "latency.json",
            &json!({
                "offered_per_s": OFFERED_PER_S, "seconds": offered_for.as_secs_f64(), "samples": histogram.len(),
                "p50_ms": ms(0.50), "p99_ms": ms(0.99), "p999_ms": ms(0.999), "max_ms": histogram.max() as f64 / 1_000.0,
            }),
        );
    });
}

/// Fills the store at `path` with `queued` pending runs: creates of small distinct objects, 1,000
/// per commit, each matched by one hook.
fn fill(path: &Path, queued: u64) {
    runtime().block_on(async {
        let background = StoreConfig::default().durability(Durability::Background { every_ms: 1_000 });
        let store = Store::open_with(path, background).unwrap();
        support::install(&store, &[Action::Create]).await;
        for batch in 0..queued / FILL_BATCH {
            let mut set = ChangeSet::default();
            for n in 0..FILL_BATCH {
                set.record(PendingChange::new(Action::Create, &support::device(batch * FILL_BATCH + n, 0, 3)));
            }
            store.commit(&support::web(), set, ObjectWrites::Apply).await.unwrap();
        }
        store.flush().await.unwrap();
    });
}

/// In the measured child: opens the filled store, drains `drained` runs, prints the peak RSS.
fn drain_and_report_rss(path: &Path, drained: u64) {
    runtime().block_on(async {
        let store = Arc::new(Store::open(path).unwrap());
        let (starts, mut started) = mpsc::unbounded_channel();
        support::report_starts(Some(starts));
        let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
        let pending_at_start = dispatcher.stats().await.unwrap().queue.pending;
        for _ in 0..drained {
            started.recv().await.unwrap();
        }
        let peak = jobhooks_tests::memory_mb("VmHWM:");
        dispatcher.shutdown(Duration::from_secs(10)).await;
        println!("{}", json!({"pending_at_start": pending_at_start, "peak_rss_mb": peak}));
    });
}

/// In the baseline child: opens the same store with raw sled (the store's cache size) and reads the
/// prefixes the store reads when it opens; then writes what draining `drained` runs writes (per
/// run its queue entry removed and a 600-byte result written; a batch and a flush per 8 runs).
/// Prints the peak RSS after each step.
fn sled_open_rss(path: &Path, drained: usize) {
    let db = sled::Config::new().path(path).cache_capacity(StoreConfig::default().cache_capacity).open().unwrap();
    let tree = db.open_tree("jobhooks").unwrap();
    let keys: usize = ["rdy/", "wai/", "dly/", "ded/"].iter().map(|p| tree.scan_prefix(p).count()).sum();
    let opened = jobhooks_tests::memory_mb("VmHWM:");
    let ready: Vec<(sled::IVec, sled::IVec)> = tree.scan_prefix("rdy/").take(drained).map(Result::unwrap).collect();
    for runs in ready.chunks(8) {
        let mut batch = sled::Batch::default();
        for (key, _) in runs {
            batch.remove(key.clone());
            batch.insert([&b"res/"[..], &key[4..]].concat(), vec![b'r'; 600]);
        }
        tree.apply_batch(batch).unwrap();
        db.flush().unwrap();
    }
    let peak = jobhooks_tests::memory_mb("VmHWM:");
    println!("{}", json!({"keys_read": keys, "open_peak_rss_mb": opened, "drain_peak_rss_mb": peak}));
}

/// Runs this binary with `args` and returns the JSON it prints.
fn child(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let child = std::process::Command::new(std::env::current_exe().unwrap()).args(args).output().unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
    serde_json::from_slice(&child.stdout).unwrap()
}

fn queue_rss(scale: Scale) {
    let dir = tempfile::tempdir().unwrap();
    let filling = Instant::now();
    fill(dir.path(), scale.queued);
    let fill_seconds = filling.elapsed().as_secs_f64();
    let drained = scale.drained.to_string();
    let report = child(&["--drain-rss".as_ref(), dir.path().as_os_str(), drained.as_ref()]);
    // After the measured child: the baseline's raw writes leave the store unfit for the dispatcher.
    let sled_alone = child(&["--sled-open-rss".as_ref(), dir.path().as_os_str(), drained.as_ref()]);
    write_json(
        scale,
        "queue_rss.json",
        &json!({"queued": scale.queued, "drained": scale.drained, "fill_seconds": fill_seconds,
                "pending_at_start": report["pending_at_start"], "peak_rss_mb": report["peak_rss_mb"],
                "raw_sled_open_peak_rss_mb": sled_alone["open_peak_rss_mb"],
                "raw_sled_drain_peak_rss_mb": sled_alone["drain_peak_rss_mb"]}),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--drain-rss") {
        drain_and_report_rss(Path::new(&args[at + 1]), args[at + 2].parse().unwrap());
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--sled-open-rss") {
        sled_open_rss(Path::new(&args[at + 1]), args[at + 2].parse().unwrap());
        return;
    }
    // `cargo bench` passes `--bench`; a further argument picks one measurement.
    let scale = if args.iter().any(|a| a == "--bench") { MEASURE } else { SMOKE };
    let only = args.iter().find(|a| !a.starts_with("--")).map(String::as_str);
    if only.is_none_or(|o| o == "latency") {
        latency(scale);
    }
    if only.is_none_or(|o| o == "rss") {
        queue_rss(scale);
    }
}
