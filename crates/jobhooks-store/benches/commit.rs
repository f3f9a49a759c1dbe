//! Commit throughput of the store against raw sled, and the cost of matching against many hooks,
//! measured side by side in one run:
//!
//! - `group64/*`: 64 concurrent committers with group commit. A commit is one change context with
//!   one 30-field device update matched by one hook. `raw_sled` inserts the records a real commit
//!   wrote (read back from the tree, so the same keys and bytes, each key suffixed to stay unique)
//!   as one batch per commit into one tree, from 64 tasks sharing flushes through the same
//!   [`FlushCoordinator`].
//! - `single/*`: the same with one committer and a flush per commit.
//! - `match/interleaved`: one commit at a time (flushed in the background, so that only the
//!   commit's own work is timed), alternating between a store with 10 hooks and one with 10,000,
//!   all but one of them on other content types. Alternating lets both meet the machine as it is
//!   at the same moment: the ratio of two runs one after the other followed the machine's load.
//!   Every commit is timed on its own, and the median of each store goes to
//!   `$JOBHOOKS_BENCH_OUT/match.json` (printed when that is unset).
//!
//! - `conditions/hooks100`: a [`HookMatcher`] (as the store keeps one per content type and action)
//!   deciding one 30-field device update against 100 hooks on devices, each with a condition (a third of them read the differences, a third list changed
//!   fields and match a regex), none of which admits it: what conditions cost a change when every
//!   hook on its type has one. The regex hooks share one pattern, and so its compiled form.
//!   `conditions/hooks100_distinct_patterns` is the same with a pattern of its own per hook (of the
//!   same shortest match). The stores of `match/interleaved` carry a condition on every hook as
//!   well.
//!
//! Change sets are built before the clock starts. `JOBHOOKS_BENCH_QUICK=1` shortens the
//! measurement (`cargo xtask bench --quick`).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

// The allocator the `jobhooks` binary runs with (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeId, ChangeSet, Condition, ContentType, HookMatcher, JobHook,
    JobKind, JobRecord, JobSpec, Object, ObjectChange, ObjectRef, PendingChange, json,
};
use jobhooks_store::{Durability, FlushCoordinator, Store, StoreConfig};

const CONCURRENCY: usize = 64;
const JOB: &str = "bench::Hook";

fn quick() -> bool {
    std::env::var_os("JOBHOOKS_BENCH_QUICK").is_some()
}

fn device(id: usize, round: u64) -> Object {
    let mut data = serde_json::Map::new();
    for field in 0..30 {
        data.insert(format!("field_{field:02}"), json!(format!("value-{field}-{round}")));
    }
    Object::new(ObjectRef::new(ContentType::new("dcim.device").unwrap(), id.to_string()).unwrap(), "dev", data.into())
        .unwrap()
}

fn change_set(id: usize, round: u64) -> ChangeSet {
    let mut set = ChangeSet::default();
    set.record(PendingChange::new(Action::Update, &device(id, round)));
    set
}

fn web() -> ChangeContext {
    ChangeContext::new(ChangeContextKind::Web, Some("u".into()), "")
}

/// A store with the bench job and `hooks` hooks: one on devices, the rest on other content types.
async fn store(path: &Path, durability: Durability, hooks: usize) -> Store {
    let store = Store::open_with(path, StoreConfig::default().durability(durability)).unwrap();
    let job = JobSpec {
        class_path: JOB.into(),
        name: "Hook".into(),
        description: String::new(),
        kind: JobKind::JobHookReceiver,
        hidden: true,
        former_class_paths: vec![],
    };
    store.sync_jobs(&[job], jobhooks_model::SyncMode::Full).await.unwrap();
    store.set_job_enabled(JOB, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    // Every hook has a condition; the device hook's admits every bench change.
    let admitting = json!({"attr": "postchange.field_00", "value": "^value-0-", "op": "regex"});
    let hook = JobHook::new("devices", devices, JOB).on([Action::Update]);
    store.create_hook(hook.when(Condition::from_json(&admitting).unwrap())).await.unwrap();
    for n in 1..hooks {
        let other = vec![ContentType::new(format!("app{}.model{n}", n % 100)).unwrap()];
        let hook = JobHook::new(format!("other-{n}"), other, JOB).on([Action::Update]);
        store.create_hook(hook.when(refusing_condition(n, false))).await.unwrap();
    }
    // So that writing out the setup does not overlap the measurement.
    store.flush().await.unwrap();
    store
}

/// A condition that admits no bench change; which fields it reads, and how, varies with `n`: an
/// equality or a regex on the new data, or (one in three) a test of the differences. The regex is
/// the same for every `n` unless `distinct_pattern`.
fn refusing_condition(n: usize, distinct_pattern: bool) -> Condition {
    let field = format!("field_{:02}", n % 30);
    let pattern = if distinct_pattern { format!("^value-\\d+-(?:x|y{n})") } else { "^value-\\d+-x".to_owned() };
    let json = match n % 3 {
        0 => json!({"attr": format!("postchange.{field}"), "value": "planned"}),
        1 => json!({"or": [
            {"attr": format!("postchange.{field}"), "value": pattern, "op": "regex"},
            {"attr": format!("prechange.{field}"), "value": ["a", "b", "c"], "op": "in"},
        ]}),
        _ => json!({"and": [
            {"attr": format!("differences.added.{field}"), "value": null, "negate": true},
            {"attr": format!("postchange.{field}"), "value": "value", "op": "contains", "negate": true},
        ]}),
    };
    Condition::from_json(&json).unwrap()
}

/// `conditions/hooks100`: see the module's doc.
fn bench_conditions(c: &mut Criterion) {
    let job = JobRecord { enabled: true, ..JobRecord::new(JOB, "Hook", JobKind::JobHookReceiver) };
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    let hooks = |distinct_patterns: bool| -> Vec<JobHook> {
        (0..100)
            .map(|n| {
                let hook = JobHook::new(format!("conditioned-{n}"), devices.clone(), JOB).on([Action::Update]);
                let hook = hook.when(refusing_condition(n, distinct_patterns));
                if n % 3 == 1 { hook.on_changes_of([format!("field_{:02}", (n + 7) % 30)]) } else { hook }
            })
            .collect()
    };
    let before = device(1, 1);
    let pending = PendingChange::new(Action::Update, &device(1, 2)).with_pre_data(before.data().clone());
    let change =
        ObjectChange::from_pending(ChangeId(1), jobhooks_model::OffsetDateTime::UNIX_EPOCH, &web(), pending, None);
    let mut group = c.benchmark_group("conditions");
    group.throughput(Throughput::Elements(1));
    for (name, distinct_patterns) in [("hooks100", false), ("hooks100_distinct_patterns", true)] {
        let hooks = HookMatcher::new(hooks(distinct_patterns));
        group.bench_function(name, |b| {
            b.iter(|| {
                let matched = hooks.matches(ChangeContextKind::Web, &change, |_| Some(&job));
                assert!(matched.run.is_empty());
                matched
            })
        });
    }
    group.finish();
}

fn tree_records(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = sled::open(path).unwrap();
    let tree = db.open_tree("jobhooks").unwrap();
    tree.iter().map(|item| item.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

/// The records one commit writes: a real commit's new or changed records, read back from its tree.
fn commit_records(runtime: &tokio::runtime::Runtime) -> Vec<(Vec<u8>, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let store = store(dir.path(), Durability::FlushEach, 1).await;
        store.commit(&web(), change_set(0, 0), ObjectWrites::Apply).await.unwrap();
    });
    let before = tree_records(dir.path());
    runtime.block_on(async {
        let store = Store::open(dir.path()).unwrap();
        store.commit(&web(), change_set(0, 1), ObjectWrites::Apply).await.unwrap();
    });
    tree_records(dir.path()).into_iter().filter(|(k, v)| before.get(k) != Some(v)).collect()
}

fn raw_commit(tree: &sled::Tree, n: u64, records: &[(Vec<u8>, Vec<u8>)]) {
    let mut batch = sled::Batch::default();
    for (key, value) in records {
        batch.insert([&key[..], &n.to_be_bytes()[..]].concat(), value.clone());
    }
    tree.apply_batch(batch).unwrap();
}

/// Runs `commit(task, round)` for `iters` rounds in each of `CONCURRENCY` tasks and times it.
fn concurrently<F, Fut>(runtime: &tokio::runtime::Runtime, iters: u64, commit: F) -> Duration
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    runtime.block_on(async move {
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|task| {
                let commit = commit.clone();
                tokio::spawn(async move {
                    for round in 0..iters {
                        commit(task, round).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    })
}

fn bench_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let records = Arc::new(commit_records(&runtime));
    let dir = tempfile::tempdir().unwrap();
    let raw_db = sled::open(dir.path().join("raw")).unwrap();
    let raw_tree = raw_db.open_tree("raw").unwrap();
    let raw_count = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let mut group = c.benchmark_group("group64");
    group.throughput(Throughput::Elements(CONCURRENCY as u64)).sample_size(10);
    group.measurement_time(Duration::from_secs(if quick() { 3 } else { 8 }));
    let grouped = runtime.block_on(store(&dir.path().join("group"), Durability::GroupCommit, 1));
    group.bench_function("store_commit", |b| {
        b.iter_custom(|iters| {
            // Built before the clock starts: the bench times commits, not object construction.
            let sets: Arc<Vec<Vec<std::sync::Mutex<Option<ChangeSet>>>>> = Arc::new(
                (0..CONCURRENCY)
                    .map(|task| (0..iters).map(|round| std::sync::Mutex::new(Some(change_set(task, round)))).collect())
                    .collect(),
            );
            let store = grouped.clone();
            concurrently(&runtime, iters, move |task, round| {
                let (store, sets) = (store.clone(), sets.clone());
                async move {
                    let set = sets[task][round as usize].lock().unwrap().take().unwrap();
                    store.commit(&web(), set, ObjectWrites::Apply).await.unwrap();
                }
            })
        })
    });
    let raw_db = Arc::new(raw_db);
    let raw_flusher = Arc::new(FlushCoordinator::new(Durability::GroupCommit));
    group.bench_function("raw_sled", |b| {
        b.iter_custom(|iters| {
            let (db, tree, records, flusher, count) =
                (raw_db.clone(), raw_tree.clone(), records.clone(), raw_flusher.clone(), raw_count.clone());
            concurrently(&runtime, iters, move |_, _| {
                let (db, tree, records, flusher, count) =
                    (db.clone(), tree.clone(), records.clone(), flusher.clone(), count.clone());
                async move {
                    raw_commit(&tree, count.fetch_add(1, std::sync::atomic::Ordering::Relaxed), &records);
                    let ticket = flusher.record_write();
                    flusher.wait_durable(ticket, || async { db.flush_async().await.map(drop) }).await.unwrap();
                }
            })
        })
    });
    group.finish();

    let mut single = c.benchmark_group("single");
    single.throughput(Throughput::Elements(1)).sample_size(20);
    single.measurement_time(Duration::from_secs(if quick() { 2 } else { 5 }));
    let flush_each = runtime.block_on(store(&dir.path().join("single"), Durability::FlushEach, 1));
    let mut round = 0;
    single.bench_function("store_commit", |b| {
        b.iter_batched(
            || {
                round += 1;
                change_set(0, round)
            },
            |set| runtime.block_on(flush_each.commit(&web(), set, ObjectWrites::Apply)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    single.bench_function("raw_sled", |b| {
        b.iter(|| {
            raw_commit(&raw_tree, raw_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed), &records);
            runtime.block_on(raw_db.flush_async()).unwrap()
        })
    });
    single.finish();

    bench_match(c, &runtime, dir.path());
    bench_conditions(c);
}

/// `match/interleaved`: see the module's doc.
fn bench_match(c: &mut Criterion, runtime: &tokio::runtime::Runtime, dir: &Path) {
    let background = Durability::Background { every_ms: 500 };
    let stores =
        [10, 10_000].map(|hooks| runtime.block_on(store(&dir.join(format!("match{hooks}")), background, hooks)));
    let mut times: [Vec<Duration>; 2] = Default::default();
    let mut round: u64 = 0;
    let mut matching = c.benchmark_group("match");
    matching.throughput(Throughput::Elements(2));
    matching.measurement_time(Duration::from_secs(if quick() { 4 } else { 10 }));
    matching.bench_function("interleaved", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                // Which store goes first alternates as well, so that neither always follows the other.
                let first = (round % 2) as usize;
                for which in [first, 1 - first] {
                    let set = change_set((round % 1000) as usize, round);
                    let start = Instant::now();
                    runtime.block_on(stores[which].commit(&web(), set, ObjectWrites::Apply)).unwrap();
                    let took = start.elapsed();
                    times[which].push(took);
                    total += took;
                }
            }
            total
        })
    });
    matching.finish();
    if times.iter().any(Vec::is_empty) {
        // The group was filtered out: nothing to report.
        return;
    }
    let [ten, ten_thousand] = times.map(|mut times| {
        times.sort_unstable();
        times[times.len() / 2].as_nanos() as u64
    });
    let report = json!({"hooks_10_ns": ten, "hooks_10000_ns": ten_thousand, "commits_each": round});
    match std::env::var_os("JOBHOOKS_BENCH_OUT") {
        Some(out) => {
            let path = Path::new(&out).join("match.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
            println!("{}: {report}", path.display());
        }
        None => println!("match: {report}"),
    }
}

criterion_group!(benches, bench_commit);
criterion_main!(benches);
