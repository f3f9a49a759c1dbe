//! End to end: changes committed through to completed hook runs, side by side with raw sled doing
//! a naive equivalent write pattern.
//!
//! - `e2e/runs`: 64 concurrent committers, each change a 30-field device update matched by one
//!   hook whose receiver does nothing; results stored durably (group commit); the time includes
//!   draining every run. Change sets are built before the clock starts.
//! - `e2e/raw_sled_pattern`: raw sled doing what the issue calibrates against, with the same
//!   runtime, concurrency and group flush: per change one batch of four 600-byte writes and a flush
//!   (shared by concurrent committers), then per run a lease write, and per worker batch (as many
//!   workers and runs per batch as the dispatcher's defaults) a completion batch (lease removed, a
//!   200-byte result written) and a flush.
//! - `e2e/raw_sled_best`: what a sled expert would write for the same guarantees, with the same
//!   runtime, committers and objects: per change its record (the device's data, encoded), the
//!   object's current data and a small run key, written for a whole commit group by one writer
//!   task in one batch with one flush; runs handed to workers in memory (no lease write);
//!   completions (the run key rewritten with a 200-byte result) one batch and one flush per worker
//!   batch.
//! - `e2e/drain_queued`: the runs half alone: the same changes committed first, then a dispatcher
//!   started on them; the time is its drain. (`group64/store_commit` in the store's commit bench
//!   is the commits half alone.)
//! - `e2e/session_snapshots`: the workload users run most: 64 committers saving 30-field devices
//!   through a `ChangeSession` (the store supplies the pre-data), a receiver that reads the
//!   snapshots and logs the differences; results stored durably, draining included.
//! - `e2e/commit_to_receiver_start`: one change at a time, from the commit being called to its
//!   receiver starting; an idle worker may start the run before the commit's flush returns (the
//!   full latency metric is `benches/load.rs`).
//!
//! Beside the times, what `runs`, the two raw contenders and `session_snapshots` spend per change
//! (CPU time of the process, bytes handed to `write`, sled keys read and written, batches and
//! flushes) goes to `e2e_costs.json` in the bench
//! output directory.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jobhooks_dispatch::DispatcherConfig;
use jobhooks_model::ports::{ChangeStore, ObjectWrites};
use jobhooks_model::{Action, ChangeSet};
use jobhooks_store::{Durability, FlushCoordinator, Store};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

const COMMITTERS: u64 = 64;

/// Raw sled's side: committers hand run ids to workers through a channel.
struct RawPattern {
    db: sled::Db,
    tree: sled::Tree,
    flusher: FlushCoordinator,
    next: AtomicU64,
    /// Runs a worker takes at once: the dispatcher's default.
    lease_batch: usize,
    ops: support::SledOpCounters,
}

impl RawPattern {
    async fn flush(&self) {
        let ticket = self.flusher.record_write();
        let flush = || async {
            self.ops.flushed();
            self.db.flush_async().await.map(drop)
        };
        self.flusher.wait_durable(ticket, flush).await.unwrap();
    }

    async fn commit(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut batch = sled::Batch::default();
        for prefix in [b"chg/", b"obj/", b"que/", b"res/"] {
            batch.insert([&prefix[..], &n.to_be_bytes()].concat(), vec![b'x'; 600]);
        }
        self.tree.apply_batch(batch).unwrap();
        self.ops.batch(4);
        self.flush().await;
        n
    }

    async fn work(self: Arc<Self>, runs: Arc<Mutex<mpsc::UnboundedReceiver<u64>>>, done: mpsc::UnboundedSender<usize>) {
        let mut claimed = Vec::with_capacity(self.lease_batch);
        while runs.lock().await.recv_many(&mut claimed, self.lease_batch).await > 0 {
            for n in &claimed {
                self.tree.insert([&b"lse/"[..], &n.to_be_bytes()].concat(), &[0u8; 16][..]).unwrap();
                self.ops.wrote(1);
            }
            let mut completion = sled::Batch::default();
            for n in &claimed {
                completion.remove([&b"lse/"[..], &n.to_be_bytes()].concat());
                completion.insert([&b"res/"[..], &n.to_be_bytes()].concat(), vec![b'r'; 200]);
            }
            self.tree.apply_batch(completion).unwrap();
            self.ops.batch(2 * claimed.len() as u64);
            self.flush().await;
            let _ = done.send(claimed.len());
            claimed.clear();
        }
    }
}

/// `e2e/raw_sled_best`'s side: committers queue their records for one writer task, which writes
/// each commit group in one batch with one flush, then hands the runs to the workers.
struct RawBest {
    db: sled::Db,
    tree: sled::Tree,
    next: AtomicU64,
    /// Commits waiting for the writer.
    waiting: std::sync::Mutex<Vec<WaitingCommit>>,
    wake: Notify,
    ops: support::SledOpCounters,
}

/// A change waiting for `RawBest`'s writer.
struct WaitingCommit {
    number: u64,
    record: Vec<u8>,
    object_key: Vec<u8>,
    data: Vec<u8>,
    durable: oneshot::Sender<()>,
}

impl RawBest {
    /// Queues the change of device `id` at `round` and waits for it to be durable.
    async fn commit(&self, id: u64, round: u64) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let object = support::device(id, round, 30);
        let data = serde_json::to_vec(object.data()).unwrap();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend_from_slice(&id.to_be_bytes());
        record.extend_from_slice(b"update");
        record.extend_from_slice(&data);
        let (durable, made_durable) = oneshot::channel();
        let object_key = [&b"obj/"[..], &id.to_be_bytes()].concat();
        self.waiting.lock().unwrap().push(WaitingCommit { number: n, record, object_key, data, durable });
        self.wake.notify_one();
        made_durable.await.unwrap();
    }

    /// Writes commit groups until `stop`, handing their runs to `runs`.
    async fn write(self: Arc<Self>, runs: mpsc::UnboundedSender<u64>, stop: Arc<Notify>) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = stop.notified() => return,
            }
            let group = std::mem::take(&mut *self.waiting.lock().unwrap());
            if group.is_empty() {
                continue;
            }
            let mut batch = sled::Batch::default();
            for commit in &group {
                batch.insert([&b"chg/"[..], &commit.number.to_be_bytes()].concat(), &commit.record[..]);
                batch.insert(&commit.object_key[..], &commit.data[..]);
                batch.insert([&b"run/"[..], &commit.number.to_be_bytes()].concat(), &b"q"[..]);
            }
            self.tree.apply_batch(batch).unwrap();
            self.ops.batch(3 * group.len() as u64);
            self.ops.flushed();
            self.db.flush_async().await.unwrap();
            for commit in group {
                let _ = runs.send(commit.number);
                let _ = commit.durable.send(());
            }
        }
    }

    async fn work(self: Arc<Self>, runs: Arc<Mutex<mpsc::UnboundedReceiver<u64>>>, done: mpsc::UnboundedSender<usize>) {
        let mut claimed = Vec::with_capacity(DispatcherConfig::default().lease_batch);
        while runs.lock().await.recv_many(&mut claimed, DispatcherConfig::default().lease_batch).await > 0 {
            let mut completion = sled::Batch::default();
            for n in &claimed {
                completion.insert([&b"run/"[..], &n.to_be_bytes()].concat(), vec![b'r'; 200]);
            }
            self.tree.apply_batch(completion).unwrap();
            self.ops.batch(claimed.len() as u64);
            self.ops.flushed();
            self.db.flush_async().await.unwrap();
            let _ = done.send(claimed.len());
            claimed.clear();
        }
    }
}

/// Each committer's changes: `rounds` updates of its own device.
fn change_sets(rounds: u64) -> Vec<Vec<ChangeSet>> {
    (0..COMMITTERS).map(|id| (0..rounds).map(|round| support::update(id, round)).collect()).collect()
}

/// Commits each committer's changes in order, the committers concurrently.
async fn commit_all(store: &Arc<Store>, sets: Vec<Vec<ChangeSet>>) {
    let committers: Vec<_> = sets
        .into_iter()
        .map(|sets| {
            let store = store.clone();
            tokio::spawn(async move {
                for set in sets {
                    store.commit(&support::web(), set, ObjectWrites::Apply).await.unwrap();
                }
            })
        })
        .collect();
    for committer in committers {
        committer.await.unwrap();
    }
}

fn bench_e2e(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("store")).unwrap());
    let dispatcher = runtime.block_on(async {
        support::install(&*store, &[Action::Update]).await;
        support::dispatch(store.clone(), DispatcherConfig::default()).await
    });
    let mut group = c.benchmark_group("e2e");
    let seconds = if support::quick() { 4 } else { 10 };
    group.throughput(Throughput::Elements(COMMITTERS)).sample_size(10).measurement_time(Duration::from_secs(seconds));
    // What each contender spends per change, beside its time (`e2e_costs.json`).
    let costs = RefCell::new(BTreeMap::<&str, support::Costs>::new());
    let spent_since = |name: &'static str, changes: u64, start: support::Spent, ops: support::SledOps| {
        let mut costs = costs.borrow_mut();
        let costs = costs.entry(name).or_default();
        costs.add(support::Spent::now().since(start), changes);
        costs.add_ops(ops);
    };
    let store_ops = |store: &Store| support::SledOps::of_store(store.io());
    group.bench_function("runs", |b| {
        b.iter_custom(|iters| {
            let sets = change_sets(iters);
            let (start, ops) = (support::Spent::now(), store_ops(&store));
            let elapsed = runtime.block_on(async {
                let begin = Instant::now();
                commit_all(&store, sets).await;
                dispatcher.drain().await.unwrap();
                begin.elapsed()
            });
            spent_since("runs", COMMITTERS * iters, start, store_ops(&store).since(ops));
            elapsed
        })
    });

    let raw_db = sled::open(dir.path().join("raw")).unwrap();
    let raw = Arc::new(RawPattern {
        tree: raw_db.open_tree("raw").unwrap(),
        db: raw_db,
        flusher: FlushCoordinator::new(Durability::GroupCommit),
        next: AtomicU64::new(0),
        lease_batch: DispatcherConfig::default().lease_batch,
        ops: support::SledOpCounters::default(),
    });
    group.bench_function("raw_sled_pattern", |b| {
        b.iter_custom(|iters| {
            let (start, ops) = (support::Spent::now(), raw.ops.ops());
            let elapsed = runtime.block_on(async {
                let (runs_tx, runs_rx) = mpsc::unbounded_channel();
                let (done_tx, mut done_rx) = mpsc::unbounded_channel();
                let runs_rx = Arc::new(Mutex::new(runs_rx));
                let begin = Instant::now();
                let workers: Vec<_> = (0..DispatcherConfig::default().workers)
                    .map(|_| tokio::spawn(raw.clone().work(runs_rx.clone(), done_tx.clone())))
                    .collect();
                let committers: Vec<_> = (0..COMMITTERS)
                    .map(|_| {
                        let (raw, runs_tx) = (raw.clone(), runs_tx.clone());
                        tokio::spawn(async move {
                            for _ in 0..iters {
                                let _ = runs_tx.send(raw.commit().await);
                            }
                        })
                    })
                    .collect();
                let mut completed = 0;
                while completed < (COMMITTERS * iters) as usize {
                    completed += done_rx.recv().await.unwrap();
                }
                let elapsed = begin.elapsed();
                drop(runs_tx);
                for task in committers.into_iter().chain(workers) {
                    task.await.unwrap();
                }
                elapsed
            });
            spent_since("raw_sled_pattern", COMMITTERS * iters, start, raw.ops.ops().since(ops));
            elapsed
        })
    });

    let best_db = sled::open(dir.path().join("best")).unwrap();
    let best = Arc::new(RawBest {
        tree: best_db.open_tree("best").unwrap(),
        db: best_db,
        next: AtomicU64::new(0),
        waiting: std::sync::Mutex::new(Vec::new()),
        wake: Notify::new(),
        ops: support::SledOpCounters::default(),
    });
    let best_rounds = AtomicU64::new(0);
    group.bench_function("raw_sled_best", |b| {
        b.iter_custom(|iters| {
            let first = best_rounds.fetch_add(iters, Ordering::Relaxed);
            let (start, ops) = (support::Spent::now(), best.ops.ops());
            let elapsed = runtime.block_on(async {
                let (runs_tx, runs_rx) = mpsc::unbounded_channel();
                let (done_tx, mut done_rx) = mpsc::unbounded_channel();
                let runs_rx = Arc::new(Mutex::new(runs_rx));
                let stop = Arc::new(Notify::new());
                let begin = Instant::now();
                let writer = tokio::spawn(best.clone().write(runs_tx, stop.clone()));
                let workers: Vec<_> = (0..DispatcherConfig::default().workers)
                    .map(|_| tokio::spawn(best.clone().work(runs_rx.clone(), done_tx.clone())))
                    .collect();
                let committers: Vec<_> = (0..COMMITTERS)
                    .map(|id| {
                        let best = best.clone();
                        tokio::spawn(async move {
                            for round in first..first + iters {
                                best.commit(id, round).await;
                            }
                        })
                    })
                    .collect();
                let mut completed = 0;
                while completed < (COMMITTERS * iters) as usize {
                    completed += done_rx.recv().await.unwrap();
                }
                let elapsed = begin.elapsed();
                stop.notify_one();
                // The writer's channel closes with it, which ends the workers.
                for task in committers.into_iter().chain([writer]).chain(workers) {
                    task.await.unwrap();
                }
                elapsed
            });
            spent_since("raw_sled_best", COMMITTERS * iters, start, best.ops.ops().since(ops));
            elapsed
        })
    });

    group.bench_function("drain_queued", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(dir.path().join("store")).unwrap());
            runtime.block_on(async {
                support::install(&*store, &[Action::Update]).await;
                commit_all(&store, change_sets(iters)).await;
                let begin = Instant::now();
                let dispatcher = support::dispatch(store.clone(), DispatcherConfig::default()).await;
                dispatcher.drain().await.unwrap();
                let elapsed = begin.elapsed();
                dispatcher.shutdown(Duration::from_secs(5)).await;
                elapsed
            })
        })
    });

    // The workload users run most: objects saved through a `ChangeSession` (the store supplies the
    // pre-data), a receiver that reads the snapshots and logs the differences, results durable.
    let session_dir = tempfile::tempdir().unwrap();
    let session_store = Arc::new(Store::open(session_dir.path()).unwrap());
    let session_dispatcher = runtime.block_on(async {
        support::install_job(&*session_store, &[Action::Create, Action::Update], &support::snapshot_job()).await;
        support::dispatch(session_store.clone(), DispatcherConfig::default()).await
    });
    let rounds_done = AtomicU64::new(0);
    group.bench_function("session_snapshots", |b| {
        b.iter_custom(|iters| {
            let first = rounds_done.fetch_add(iters, Ordering::Relaxed);
            let (start, ops) = (support::Spent::now(), store_ops(&session_store));
            let elapsed = runtime.block_on(async {
                let begin = Instant::now();
                let committers: Vec<_> = (0..COMMITTERS)
                    .map(|id| {
                        let store = session_store.clone();
                        tokio::spawn(async move {
                            for round in first..first + iters {
                                let mut session = store.session(support::web());
                                session.save(support::device(id, round, 30)).await.unwrap();
                                session.commit().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for committer in committers {
                    committer.await.unwrap();
                }
                session_dispatcher.drain().await.unwrap();
                begin.elapsed()
            });
            spent_since("session_snapshots", COMMITTERS * iters, start, store_ops(&session_store).since(ops));
            elapsed
        })
    });

    group.throughput(Throughput::Elements(1)).sample_size(30).measurement_time(Duration::from_secs(seconds / 2));
    group.bench_function("commit_to_receiver_start", |b| {
        b.iter_custom(|iters| {
            let (starts, mut started) = mpsc::unbounded_channel();
            support::report_starts(Some(starts));
            let total = runtime.block_on(async {
                let mut total = Duration::ZERO;
                for round in 0..iters {
                    let set = support::update(0, round);
                    let asked = Instant::now();
                    store.commit(&support::web(), set, ObjectWrites::Apply).await.unwrap();
                    let (_, start) = started.recv().await.unwrap();
                    total += start.saturating_duration_since(asked);
                }
                total
            });
            support::report_starts(None);
            total
        })
    });
    group.finish();
    runtime.block_on(async { dispatcher.drain().await.unwrap() });
    let per_change: serde_json::Map<String, serde_json::Value> =
        costs.borrow().iter().map(|(name, costs)| ((*name).to_owned(), costs.per_change())).collect();
    let measured = std::env::args().any(|arg| arg == "--bench");
    support::write_report(measured, "e2e_costs.json", &serde_json::Value::Object(per_change));
}

criterion_group!(benches, bench_e2e);
criterion_main!(benches);
