//! Commit throughput of the store against raw sled inserts of the same bytes with the same flush
//! policy, measured side by side in one run:
//!
//! - `single/*`: one committer; every commit flushes before it returns.
//! - `group64/*`: 64 concurrent committers sharing flushes (group commit). The raw baseline inserts
//!   the same bytes from 64 tasks with the same group commit (`FlushCoordinator`).
//!
//! A commit is one change context with one 30-field device update matched by one hook: the change
//! record (with its prechange), its three index keys, the object pointer, a queue entry, a pending
//! result and its three index keys.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobHook, JobKind, JobSpec, Object, ObjectRef,
    PendingChange, json,
};
use jobhooks_store::{Durability, FlushCoordinator, Store, StoreConfig};

const CONCURRENCY: usize = 64;

fn device(id: usize, round: u64) -> Object {
    let mut data = serde_json::Map::new();
    for field in 0..30 {
        data.insert(format!("field_{field:02}"), json!(format!("value-{field}-{round}")));
    }
    Object::new(ObjectRef::new(ContentType::new("dcim.device").unwrap(), id.to_string()).unwrap(), "dev", data.into())
}

fn change_set(id: usize, round: u64) -> ChangeSet {
    let mut set = ChangeSet::default();
    set.record(
        PendingChange::new(Action::Update, &device(id, round)).with_pre_data(device(id, round.wrapping_sub(1)).data),
    );
    set
}

async fn store(durability: Durability) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), StoreConfig { durability, ..StoreConfig::default() }).unwrap();
    let job = JobSpec {
        class_path: "bench::Hook".into(),
        name: "Hook".into(),
        description: String::new(),
        kind: JobKind::JobHookReceiver,
        hidden: true,
    };
    store.sync_jobs(&[job]).await.unwrap();
    store.set_job_enabled("bench::Hook", true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("h", devices, "bench::Hook").on([Action::Update])).await.unwrap();
    (dir, store)
}

/// The bytes one commit writes, as separate values, measured from a real commit's records.
fn commit_bytes() -> Vec<Vec<u8>> {
    let object = device(0, 1);
    let record = json!({"id": 1, "time": "2026-11-25T00:00:00Z", "user": "u", "user_name": "u",
        "request_id": "6f1f8f5e-0d65-4c8e-a1f4-2b1e0f6f9d11", "action": "update",
        "changed_object_type": "dcim.device", "changed_object_id": "0", "related_object": null,
        "object_repr": "dev", "object_data": object.data, "prechange": device(0, 0).data,
        "change_context": "web", "change_context_detail": ""});
    let result = json!({"id": 1, "job": "bench::Hook", "user": "u", "inputs": {"object_change": 1},
        "status": "PENDING", "attempts": 0, "created": "2026-11-25T00:00:00Z", "started": null,
        "completed": null, "logs": []});
    let queue = json!({"state": "pending", "due": 1_764_028_800_000_000i64, "leases": 0});
    let mut values = vec![
        serde_json::to_vec(&record).unwrap(),
        serde_json::to_vec(&result).unwrap(),
        serde_json::to_vec(&queue).unwrap(),
    ];
    values.extend(std::iter::repeat_n(Vec::new(), 8));
    values.push(8u64.to_be_bytes().to_vec());
    values
}

fn raw_commit(tree: &sled::Tree, n: u64, values: &[Vec<u8>]) {
    let mut batch = sled::Batch::default();
    for (i, value) in values.iter().enumerate() {
        batch.insert([&n.to_be_bytes()[..], &[i as u8]].concat(), value.clone());
    }
    tree.apply_batch(batch).unwrap();
}

fn bench_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let values = Arc::new(commit_bytes());

    let mut single = c.benchmark_group("single");
    single.throughput(Throughput::Elements(1)).sample_size(20).measurement_time(Duration::from_secs(5));
    let (_d1, flush_each) = runtime.block_on(store(Durability::FlushEach));
    let mut round = 0;
    single.bench_function("store_commit", |b| {
        b.iter(|| {
            round += 1;
            runtime.block_on(flush_each.commit(&web(), change_set(0, round), ObjectWrites::Apply)).unwrap()
        })
    });
    let raw_dir = tempfile::tempdir().unwrap();
    let raw_db = sled::open(raw_dir.path()).unwrap();
    let raw_tree = raw_db.open_tree("raw").unwrap();
    let mut n = 0;
    single.bench_function("raw_sled", |b| {
        b.iter(|| {
            n += 1;
            raw_commit(&raw_tree, n, &values);
            runtime.block_on(raw_db.flush_async()).unwrap()
        })
    });
    single.finish();

    let mut group = c.benchmark_group("group64");
    group.throughput(Throughput::Elements(CONCURRENCY as u64)).sample_size(10).measurement_time(Duration::from_secs(8));
    let (_d2, grouped) = runtime.block_on(store(Durability::GroupCommit));
    group.bench_function("store_commit", |b| {
        b.iter_custom(|iters| {
            let store = grouped.clone();
            runtime.block_on(async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..CONCURRENCY)
                    .map(|task| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            for round in 0..iters {
                                store.commit(&web(), change_set(task, round), ObjectWrites::Apply).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    let raw_db = Arc::new(raw_db);
    let raw_flusher = Arc::new(FlushCoordinator::new(Durability::GroupCommit));
    group.bench_function("raw_sled", |b| {
        b.iter_custom(|iters| {
            let (db, tree, values, flusher) = (raw_db.clone(), raw_tree.clone(), values.clone(), raw_flusher.clone());
            runtime.block_on(async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..CONCURRENCY as u64)
                    .map(|task| {
                        let (db, tree, values, flusher) = (db.clone(), tree.clone(), values.clone(), flusher.clone());
                        tokio::spawn(async move {
                            for round in 0..iters {
                                raw_commit(&tree, (task << 40) | round, &values);
                                let ticket = flusher.record_write();
                                flusher
                                    .wait_durable(ticket, || async { db.flush_async().await.map(drop) })
                                    .await
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn web() -> ChangeContext {
    ChangeContext::new(ChangeContextKind::Web, Some("u".into()), "")
}

criterion_group!(benches, bench_commit);
criterion_main!(benches);
