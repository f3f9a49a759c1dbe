//! `cargo xtask soak [--changes N]`: commits N changes (default 1,000,000) through to completed
//! hook runs with retention on, printing memory and store size as it goes, then the peak RSS and
//! the store's size after a final prune. The committers hold the backlog (changes committed whose
//! runs have not started) under `BACKLOG`, as a load balancer in front of a real system would: the
//! soak measures a sustained load the dispatcher keeps up with, not an ever-growing queue.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, JobQueue, ObjectWrites, QueueMaintenance, QueueReader, Retention};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobContext, JobError, JobHook, JobHookReceiver,
    Object, ObjectChange, OffsetDateTime, PendingChange, async_trait, json,
};
use jobhooks_register::{Registry, register_job_hook_receiver};
use jobhooks_store::Store;
use jobhooks_tests::{memory_mb, object};

/// Runs started, for the committers' backlog bound.
static STARTED: AtomicU64 = AtomicU64::new(0);

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
        STARTED.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

register_job_hook_receiver!(Trivial);

const COMMITTERS: u64 = 64;
const OBJECTS: u64 = 10_000;
const BACKLOG: u64 = 5_000;

fn size_mb(dir: &Path) -> f64 {
    fn walk(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir) as f64 / 1_048_576.0
}

fn update(id: u64, round: u64) -> ChangeSet {
    let mut data = serde_json::Map::new();
    for field in 0..30 {
        data.insert(format!("field_{field:02}"), json!(format!("value-{field}-{round}")));
    }
    let mut set = ChangeSet::default();
    set.record(PendingChange::new(Action::Update, &object("dcim.device", &id.to_string(), "dev", data.into())));
    set
}

fn main() -> std::process::ExitCode {
    let mut changes: u64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--changes", Some(n)) => changes = n,
            _ => {
                eprintln!("usage: soak [--changes N]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(soak(changes));
    std::process::ExitCode::SUCCESS
}

async fn soak(changes: u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path()).expect("a fresh store"));
    let registry = Registry::from_linked().expect("registry");
    registry.sync_into(&*store, jobhooks_model::SyncMode::Full).await.expect("sync");
    let job = format!("{}::Trivial", module_path!());
    store.set_job_enabled(&job, true).await.expect("enable");
    let devices = vec![ContentType::new("dcim.device").expect("valid")];
    store.create_hook(JobHook::new("soak", devices, job.as_str()).on([Action::Update])).await.expect("hook");
    let retention = Retention { results_for: Some(Duration::from_secs(5)), changes_for: Some(Duration::from_secs(5)) };
    let config = DispatcherConfig::default().workers(8).retention(retention).prune_every(Duration::from_secs(2));
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.expect("start");

    let begin = Instant::now();
    let committed = Arc::new(AtomicU64::new(0));
    let step = (changes / 10).max(1);
    let committers: Vec<_> = (0..COMMITTERS)
        .map(|task| {
            let (store, committed) = (store.clone(), committed.clone());
            tokio::spawn(async move {
                let mut round = 0;
                let mut rng = fastrand::Rng::with_seed(task);
                while committed.fetch_add(1, Ordering::SeqCst) < changes {
                    round += 1;
                    while committed.load(Ordering::SeqCst).saturating_sub(STARTED.load(Ordering::SeqCst)) > BACKLOG {
                        store.wait_for_work(store.work_generation(), Duration::from_millis(20)).await;
                    }
                    let context = ChangeContext::new(ChangeContextKind::Web, Some("soak".into()), "");
                    store
                        .commit(&context, update(rng.u64(0..OBJECTS), round), ObjectWrites::Apply)
                        .await
                        .expect("commit");
                }
            })
        })
        .collect();
    let mut reported = 0;
    while committers.iter().any(|c| !c.is_finished()) {
        let done = committed.load(Ordering::SeqCst).min(changes);
        if done >= reported + step {
            reported = done - done % step;
            let rate = done as f64 / begin.elapsed().as_secs_f64();
            println!(
                "soak: {done} committed, {rate:.0}/s, RSS {:.0} MB, store {:.0} MB, queue {:?}",
                memory_mb("VmRSS:"),
                size_mb(dir.path()),
                store.depth().await.expect("depth")
            );
        }
        store.wait_for_work(store.work_generation(), Duration::from_millis(500)).await;
    }
    for committer in committers {
        committer.await.expect("committer");
    }
    dispatcher.drain().await.expect("drain");
    let elapsed = begin.elapsed();
    let stats = dispatcher.stats().await.expect("stats");
    dispatcher.shutdown(Duration::from_secs(10)).await;
    let pruned = store.prune(&retention, OffsetDateTime::now_utc() + Duration::from_secs(10)).await.expect("prune");
    store.flush().await.expect("flush");
    println!(
        "soak: changes {changes}, runs completed {}, {:.0} s, {:.0} changes/s through to completed runs, peak RSS {:.0} MB, store {:.0} MB after the final prune (removed {} results, {} changes)",
        stats.succeeded,
        elapsed.as_secs_f64(),
        changes as f64 / elapsed.as_secs_f64(),
        memory_mb("VmHWM:"),
        size_mb(dir.path()),
        pruned.results,
        pruned.changes
    );
}
