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
//!   The baseline is another fresh child that opens the same files with raw sled and reads the
//!   queue's prefixes (`--sled-open-rss`): the memory sled itself needs for that store.
//!
//! `cargo bench -p jobhooks-dispatch --bench load [-- latency|rss]`.
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
const LOAD_SECONDS: u64 = 30;
const QUEUED: u64 = 1_000_000;
const FILL_BATCH: u64 = 1_000;
const DRAINED: u64 = 20_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn write_json(name: &str, value: &serde_json::Value) {
    let path = support::output_dir().join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    println!("{}: {value}", path.display());
}

fn latency() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        support::install(&store, &[Action::Update]).await;
        let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
        let (starts, mut started) = mpsc::unbounded_channel();
        support::report_starts(Some(starts));
        let committed: Arc<Mutex<HashMap<ChangeId, Instant>>> = Arc::default();
        let total = OFFERED_PER_S * LOAD_SECONDS;
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
            "latency.json",
            &json!({
                "offered_per_s": OFFERED_PER_S, "seconds": offered_for.as_secs_f64(), "samples": histogram.len(),
                "p50_ms": ms(0.50), "p99_ms": ms(0.99), "p999_ms": ms(0.999), "max_ms": histogram.max() as f64 / 1_000.0,
            }),
        );
    });
}

/// Fills the store at `path` with `QUEUED` pending runs: creates of small distinct objects, 1,000
/// per commit, each matched by one hook.
fn fill(path: &Path) {
    runtime().block_on(async {
        let background =
            StoreConfig { durability: Durability::Background { every_ms: 1_000 }, ..StoreConfig::default() };
        let store = Store::open_with(path, background).unwrap();
        support::install(&store, &[Action::Create]).await;
        for batch in 0..QUEUED / FILL_BATCH {
            let mut set = ChangeSet::default();
            for n in 0..FILL_BATCH {
                set.record(PendingChange::new(Action::Create, &support::device(batch * FILL_BATCH + n, 0, 3)));
            }
            store.commit(&support::web(), set, ObjectWrites::Apply).await.unwrap();
        }
        store.flush().await.unwrap();
    });
}

/// In the measured child: opens the filled store, drains `DRAINED` runs, prints the peak RSS.
fn drain_and_report_rss(path: &Path) {
    runtime().block_on(async {
        let store = Arc::new(Store::open(path).unwrap());
        let (starts, mut started) = mpsc::unbounded_channel();
        support::report_starts(Some(starts));
        let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
        let pending_at_start = dispatcher.stats().await.unwrap().queue.pending;
        for _ in 0..DRAINED {
            started.recv().await.unwrap();
        }
        let peak = support::memory_mb("VmHWM:");
        dispatcher.shutdown(Duration::from_secs(10)).await;
        println!("{}", json!({"pending_at_start": pending_at_start, "peak_rss_mb": peak}));
    });
}

/// In the baseline child: opens the same store with raw sled (the store's cache size), reads the
/// prefixes the store reads when it opens, prints the peak RSS.
fn sled_open_rss(path: &Path) {
    let db = sled::Config::new().path(path).cache_capacity(StoreConfig::default().cache_capacity).open().unwrap();
    let tree = db.open_tree("jobhooks").unwrap();
    let keys: usize = ["rob/", "rdy/", "ded/"].iter().map(|p| tree.scan_prefix(p).count()).sum();
    println!("{}", json!({"keys_read": keys, "peak_rss_mb": support::memory_mb("VmHWM:")}));
}

/// Runs this binary with `flag` on `path` and returns the JSON it prints.
fn child(flag: &str, path: &Path) -> serde_json::Value {
    let child = std::process::Command::new(std::env::current_exe().unwrap()).arg(flag).arg(path).output().unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
    serde_json::from_slice(&child.stdout).unwrap()
}

fn queue_rss() {
    let dir = tempfile::tempdir().unwrap();
    let filling = Instant::now();
    fill(dir.path());
    let fill_seconds = filling.elapsed().as_secs_f64();
    let sled_alone = child("--sled-open-rss", dir.path());
    let report = child("--drain-rss", dir.path());
    write_json(
        "queue_rss.json",
        &json!({"queued": QUEUED, "drained": DRAINED, "fill_seconds": fill_seconds,
                "pending_at_start": report["pending_at_start"], "peak_rss_mb": report["peak_rss_mb"],
                "raw_sled_open_peak_rss_mb": sled_alone["peak_rss_mb"]}),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--drain-rss") {
        drain_and_report_rss(Path::new(&args[at + 1]));
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--sled-open-rss") {
        sled_open_rss(Path::new(&args[at + 1]));
        return;
    }
    // `cargo bench` passes `--bench`; a further argument picks one measurement.
    let only = args.iter().find(|a| !a.starts_with("--")).map(String::as_str);
    if only.is_none_or(|o| o == "latency") {
        latency();
    }
    if only.is_none_or(|o| o == "rss") {
        queue_rss();
    }
}
