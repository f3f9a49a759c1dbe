//! What the dispatcher's benches share: a trivial receiver that reports when it starts, 30-field
//! device changes, a store with a dispatcher running, and the naive commit in raw SQL that the
//! PostgreSQL benches measure the store against.
#![allow(dead_code)] // each bench uses part of it

pub mod raw_sql_best;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::Storage;
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeId, ChangeSet, ContentType, JobContext, JobError, JobHook,
    JobHookReceiver, Object, ObjectChange, ObjectRef, PendingChange, async_trait, json,
};
use jobhooks_register::{Registry, register_job_hook_receiver};
use tokio::sync::mpsc;

// The allocator the `jobhooks` binary runs with (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the receiver reports each start: the change and when.
pub type Starts = mpsc::UnboundedSender<(ChangeId, Instant)>;

static STARTS: OnceLock<Mutex<Option<Starts>>> = OnceLock::new();

/// Reports every receiver start to `starts` from now on (`None` stops reporting).
pub fn report_starts(starts: Option<Starts>) {
    *STARTS.get_or_init(Mutex::default).lock().unwrap() = starts;
}

#[derive(Default)]
struct Trivial;

#[async_trait]
impl JobHookReceiver for Trivial {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        if let Some(starts) = STARTS.get_or_init(Mutex::default).lock().unwrap().as_ref() {
            let _ = starts.send((change.id, Instant::now()));
        }
        Ok(())
    }
}

register_job_hook_receiver!(Trivial);

/// What users' receivers do most: read the change's snapshots and log what differs.
#[derive(Default)]
struct SnapshotLogger;

#[async_trait]
impl JobHookReceiver for SnapshotLogger {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        let snapshots = change.get_snapshots();
        let added = snapshots.differences.added.as_ref().and_then(|added| added.as_object()).map_or(0, |a| a.len());
        ctx.log_info(format!("{change}: {added} fields changed"));
        Ok(())
    }
}

register_job_hook_receiver!(SnapshotLogger);

/// The class path of the snapshot-logging receiver.
pub fn snapshot_job() -> String {
    format!("{}::SnapshotLogger", module_path!())
}

/// The class path of the trivial receiver.
pub fn trivial_job() -> String {
    format!("{}::Trivial", module_path!())
}

/// An object with `fields` string fields, all of them changing with `round`.
pub fn device(id: u64, round: u64, fields: usize) -> Object {
    let mut data = serde_json::Map::new();
    for field in 0..fields {
        data.insert(format!("field_{field:02}"), json!(format!("value-{field}-{round}")));
    }
    let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id.to_string()).unwrap();
    Object::new(reference, "dev", data.into()).unwrap()
}

/// An update of the 30-field device `id`.
pub fn update(id: u64, round: u64) -> ChangeSet {
    let mut set = ChangeSet::default();
    set.record(PendingChange::new(Action::Update, &device(id, round, 30)));
    set
}

pub fn web() -> ChangeContext {
    ChangeContext::new(ChangeContextKind::Web, Some("u".into()), "")
}

/// `committers` tasks each commit `rounds` updates of their own device (the task's number), from
/// round `first`; returns when all are committed.
#[allow(dead_code)]
pub async fn commit_rounds<S: jobhooks_model::ports::ChangeStore + 'static>(
    store: &Arc<S>,
    committers: u64,
    first: u64,
    rounds: u64,
) {
    let tasks: Vec<_> = (0..committers)
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in first..first + rounds {
                    store.commit(&web(), update(id, round), jobhooks_model::ports::ObjectWrites::Apply).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Links the trivial receiver's job into `store`, enabled, with a hook on device `events`.
pub async fn install<S: Storage>(store: &S, events: &[Action]) -> Registry {
    install_job(store, events, &trivial_job()).await
}

/// Links `job` into `store`, enabled, with a hook on device `events`.
pub async fn install_job<S: Storage>(store: &S, events: &[Action], job: &str) -> Registry {
    let registry = Registry::from_linked().unwrap();
    registry.sync_into(store, jobhooks_model::SyncMode::Full).await.unwrap();
    let job = job.to_owned();
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("devices", devices, job.as_str()).on(events.iter().copied())).await.unwrap();
    registry
}

/// A dispatcher with `config` on `store`, whose hooks are already installed.
pub async fn dispatch<S: Storage + 'static>(store: Arc<S>, config: DispatcherConfig) -> Dispatcher<S> {
    let registry = Registry::from_linked().unwrap();
    Dispatcher::start(store, registry, config).await.unwrap()
}

/// Where benches write what criterion does not record (`JOBHOOKS_BENCH_OUT`, else
/// `target/bench`).
pub fn output_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("JOBHOOKS_BENCH_OUT").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn quick() -> bool {
    std::env::var_os("JOBHOOKS_BENCH_QUICK").is_some()
}

/// Serves `store`'s API and pages on 127.0.0.1 until the bench ends; the address, `http://…`.
#[allow(dead_code)]
pub async fn serve_in_background<S: Storage + 'static>(store: std::sync::Arc<S>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = jobhooks_server::router(jobhooks_server::AppState::new(store));
    tokio::spawn(jobhooks_server::serve(listener, app, std::future::pending()));
    base
}

/// The scale a bench runs at: `measure` under `cargo bench`, `quick` with `JOBHOOKS_BENCH_QUICK`
/// set, and `smoke` under `cargo test` (no `--bench` argument), which reports nothing.
#[allow(dead_code)]
pub fn scale<T>(measure: T, quick: T, smoke: T) -> T {
    match (std::env::args().any(|arg| arg == "--bench"), self::quick()) {
        (false, _) => smoke,
        (true, true) => quick,
        (true, false) => measure,
    }
}

/// Writes `value` as `name` in [`output_dir`] for `cargo xtask bench` when `report`; a smoke run
/// only prints it.
#[allow(dead_code)]
pub fn write_report(report: bool, name: &str, value: &serde_json::Value) {
    if !report {
        println!("{name} (smoke run, not written): {value}");
        return;
    }
    let path = output_dir().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
    println!("{}: {value}", path.display());
}

/// What this process has spent so far: CPU time (user and system, every thread, to 10 ms) and
/// bytes handed to `write` and its kin (`wchar` in `/proc/self/io`); 0 where there are no such
/// files.
#[derive(Debug, Clone, Copy, Default)]
#[allow(dead_code)]
pub struct Spent {
    pub cpu: std::time::Duration,
    pub written: u64,
}

#[allow(dead_code)]
impl Spent {
    pub fn now() -> Self {
        // `utime` and `stime`, the 14th and 15th fields of `/proc/self/stat` (after the command's
        // name in parentheses), in Linux's fixed 100 ticks a second.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: u64 =
            after_name.split_whitespace().skip(11).take(2).filter_map(|field| field.parse::<u64>().ok()).sum();
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let written = io
            .lines()
            .find_map(|line| line.strip_prefix("wchar:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        Self { cpu: std::time::Duration::from_millis(ticks * 10), written }
    }

    /// What was spent between `earlier` and this.
    pub fn since(self, earlier: Spent) -> Spent {
        Spent { cpu: self.cpu.saturating_sub(earlier.cpu), written: self.written.saturating_sub(earlier.written) }
    }
}

/// What a contender asked of sled: keys read and written, batches, flushes. The store counts its
/// own (`Store::io`); the raw contenders count theirs with [`SledOpCounters`].
#[derive(Debug, Clone, Copy, Default)]
#[allow(dead_code)]
pub struct SledOps {
    pub key_reads: u64,
    pub key_writes: u64,
    pub batches: u64,
    pub flushes: u64,
}

#[allow(dead_code)]
impl SledOps {
    pub fn of_store(io: jobhooks_store::StoreIo) -> Self {
        Self { key_reads: io.key_reads, key_writes: io.key_writes, batches: io.batches, flushes: io.flushes }
    }

    /// What was asked between `earlier` and this.
    pub fn since(self, earlier: SledOps) -> SledOps {
        SledOps {
            key_reads: self.key_reads - earlier.key_reads,
            key_writes: self.key_writes - earlier.key_writes,
            batches: self.batches - earlier.batches,
            flushes: self.flushes - earlier.flushes,
        }
    }
}

/// Counters a raw contender bumps as it calls sled.
#[derive(Debug, Default)]
#[allow(dead_code)]
pub struct SledOpCounters {
    key_writes: std::sync::atomic::AtomicU64,
    batches: std::sync::atomic::AtomicU64,
    flushes: std::sync::atomic::AtomicU64,
}

#[allow(dead_code)]
impl SledOpCounters {
    pub fn wrote(&self, keys: u64) {
        self.key_writes.fetch_add(keys, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn batch(&self, keys: u64) {
        self.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.wrote(keys);
    }

    pub fn flushed(&self) {
        self.flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// What was counted so far; the raw contenders read nothing back.
    pub fn ops(&self) -> SledOps {
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        SledOps {
            key_reads: 0,
            key_writes: load(&self.key_writes),
            batches: load(&self.batches),
            flushes: load(&self.flushes),
        }
    }
}

/// CPU time (user and system, to 10 ms) spent so far by the processes named `postgres` that this
/// user can read: the PostgreSQL server's share of a measurement, on this machine. Zero where
/// there is no `/proc`.
pub fn postgres_cpu() -> std::time::Duration {
    let mut ticks = 0;
    for process in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(process.path().join("stat")) else { continue };
        let Some((name, rest)) = stat.split_once(") ") else { continue };
        if !name.ends_with("(postgres") {
            continue;
        }
        ticks += rest.split_whitespace().skip(11).take(2).filter_map(|field| field.parse::<u64>().ok()).sum::<u64>();
    }
    std::time::Duration::from_millis(ticks * 10)
}

/// What one bench function spent per change, over all its iterations.
#[derive(Debug, Default)]
#[allow(dead_code)]
pub struct Costs {
    spent: Spent,
    ops: SledOps,
    changes: u64,
}

#[allow(dead_code)]
impl Costs {
    /// Counts `spent` on `changes` changes.
    pub fn add(&mut self, spent: Spent, changes: u64) {
        self.spent.cpu += spent.cpu;
        self.spent.written += spent.written;
        self.changes += changes;
    }

    /// Counts `ops`, asked of sled while the changes were counted.
    pub fn add_ops(&mut self, ops: SledOps) {
        self.ops.key_reads += ops.key_reads;
        self.ops.key_writes += ops.key_writes;
        self.ops.batches += ops.batches;
        self.ops.flushes += ops.flushes;
    }

    /// `{"cpu_us_per_change", "bytes_written_per_change", "sled_key_reads_per_change",
    /// "sled_key_writes_per_change", "sled_batches_per_change", "sled_flushes_per_change",
    /// "changes"}`.
    pub fn per_change(&self) -> serde_json::Value {
        let changes = self.changes.max(1) as f64;
        json!({
            "cpu_us_per_change": self.spent.cpu.as_secs_f64() * 1e6 / changes,
            "bytes_written_per_change": self.spent.written as f64 / changes,
            "sled_key_reads_per_change": self.ops.key_reads as f64 / changes,
            "sled_key_writes_per_change": self.ops.key_writes as f64 / changes,
            "sled_batches_per_change": self.ops.batches as f64 / changes,
            "sled_flushes_per_change": self.ops.flushes as f64 / changes,
            "changes": self.changes,
        })
    }
}

/// The tables of the naive pattern in raw SQL (`pg/raw_sql`, and the raw commit of the latency
/// bench).
pub const RAW_SCHEMA: &str =
    "CREATE TABLE raw_changes (id bigserial PRIMARY KEY, object_id text NOT NULL, data jsonb NOT NULL);
     CREATE TABLE raw_objects (id text PRIMARY KEY, data jsonb NOT NULL);
     CREATE TABLE raw_runs (id bigserial PRIMARY KEY, change_id bigint NOT NULL, status text NOT NULL,
         result text);
     CREATE INDEX ON raw_runs (id) WHERE status = 'pending';";

/// The wall clock in unix nanoseconds, as both processes of a latency measurement read it.
#[allow(dead_code)]
pub fn unix_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A pool of 16 connections, as the store's, for the raw SQL.
pub fn raw_pool(url: &str) -> deadpool_postgres::Pool {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    deadpool_postgres::Pool::builder(manager).max_size(16).build().unwrap()
}

/// The naive commit: a change row, a run row and an object upsert in one transaction, for the
/// 30-field device `id` at `round`; statements prepared once per connection, as the store prepares
/// its own.
pub async fn raw_commit(pool: &deadpool_postgres::Pool, id: u64, round: u64) {
    let data = serde_json::Value::Object(device(id, round, 30).data().clone());
    let id = id.to_string();
    let mut client = pool.get().await.unwrap();
    let transaction = client.transaction().await.unwrap();
    let insert_change = transaction
        .prepare_cached("INSERT INTO raw_changes (object_id, data) VALUES ($1, $2) RETURNING id")
        .await
        .unwrap();
    let insert_run =
        transaction.prepare_cached("INSERT INTO raw_runs (change_id, status) VALUES ($1, 'pending')").await.unwrap();
    let upsert_object = transaction
        .prepare_cached("INSERT INTO raw_objects (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = $2")
        .await
        .unwrap();
    let change: i64 = transaction.query_one(&insert_change, &[&id, &data]).await.unwrap().get(0);
    transaction.execute(&insert_run, &[&change]).await.unwrap();
    transaction.execute(&upsert_object, &[&id, &data]).await.unwrap();
    transaction.commit().await.unwrap();
}
