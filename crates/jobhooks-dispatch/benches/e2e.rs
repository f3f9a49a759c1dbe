//! End to end: changes committed through to completed hook runs, with a trivial receiver, results
//! stored durably (group commit), 30-field objects.
//!
//! - `e2e/runs`: throughput, 64 concurrent committers, each change matched by one hook.
//! - `e2e/commit_to_receiver_start`: latency from a commit returning to its receiver starting, one
//!   change at a time; the p50 and p99 of the samples are printed after the criterion summary.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobContext, JobError, JobHook, JobHookReceiver,
    Object, ObjectChange, ObjectRef, PendingChange, async_trait, json,
};
use jobhooks_register::{Registry, register_job_hook_receiver};
use jobhooks_store::Store;
use tokio::sync::mpsc;

const COMMITTERS: usize = 64;

static STARTED: OnceLock<Mutex<Option<mpsc::UnboundedSender<Instant>>>> = OnceLock::new();

#[derive(Default)]
struct Trivial;

#[async_trait]
impl JobHookReceiver for Trivial {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        if let Some(tx) = STARTED.get_or_init(Mutex::default).lock().unwrap().as_ref() {
            let _ = tx.send(Instant::now());
        }
        Ok(())
    }
}

register_job_hook_receiver!(Trivial);

fn device(id: usize, round: u64) -> ChangeSet {
    let mut data = serde_json::Map::new();
    for field in 0..30 {
        data.insert(format!("field_{field:02}"), json!(format!("value-{field}-{round}")));
    }
    let object = Object::new(
        ObjectRef::new(ContentType::new("dcim.device").unwrap(), id.to_string()).unwrap(),
        "dev",
        data.into(),
    );
    let mut set = ChangeSet::default();
    set.record(PendingChange::new(Action::Update, &object));
    set
}

fn web() -> ChangeContext {
    ChangeContext::new(ChangeContextKind::Web, Some("u".into()), "")
}

async fn start() -> (tempfile::TempDir, Arc<Store>, Dispatcher<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let registry = Registry::from_linked().unwrap();
    registry.sync_into(&*store).await.unwrap();
    let job = format!("{}::Trivial", module_path!());
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("h", devices, job.as_str()).on([Action::Update])).await.unwrap();
    let config = DispatcherConfig { workers: 8, ..DispatcherConfig::default() };
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    (dir, store, dispatcher)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn bench_e2e(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_dir, store, dispatcher) = runtime.block_on(start());
    let mut group = c.benchmark_group("e2e");

    group.throughput(Throughput::Elements(COMMITTERS as u64)).sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("runs", |b| {
        b.iter_custom(|iters| {
            let store = store.clone();
            runtime.block_on(async {
                let begin = Instant::now();
                let committers: Vec<_> = (0..COMMITTERS)
                    .map(|id| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            for round in 0..iters {
                                store.commit(&web(), device(id, round), ObjectWrites::Apply).await.unwrap();
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

    let samples = Arc::new(Mutex::new(Vec::new()));
    group.throughput(Throughput::Elements(1)).sample_size(50).measurement_time(Duration::from_secs(5));
    group.bench_function("commit_to_receiver_start", |b| {
        b.iter_custom(|iters| {
            let (tx, mut rx) = mpsc::unbounded_channel();
            *STARTED.get_or_init(Mutex::default).lock().unwrap() = Some(tx);
            let store = store.clone();
            let samples = samples.clone();
            let total = runtime.block_on(async move {
                let mut total = Duration::ZERO;
                for round in 0..iters {
                    store.commit(&web(), device(0, round), ObjectWrites::Apply).await.unwrap();
                    let committed = Instant::now();
                    let started = rx.recv().await.unwrap();
                    let latency = started.saturating_duration_since(committed);
                    samples.lock().unwrap().push(latency);
                    total += latency;
                }
                total
            });
            *STARTED.get_or_init(Mutex::default).lock().unwrap() = None;
            total
        })
    });
    group.finish();
    let mut sorted = samples.lock().unwrap().clone();
    sorted.sort_unstable();
    if !sorted.is_empty() {
        println!(
            "e2e/commit_to_receiver_start percentiles over {} samples: p50 {:?}, p99 {:?}, p999 {:?}",
            sorted.len(),
            percentile(&sorted, 0.50),
            percentile(&sorted, 0.99),
            percentile(&sorted, 0.999)
        );
    }
    runtime.block_on(async { dispatcher.drain().await.unwrap() });
}

criterion_group!(benches, bench_e2e);
criterion_main!(benches);
