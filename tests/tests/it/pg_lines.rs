//! Object lines on PostgreSQL under the load of the `pg/e2e_changes` bench: 64 committers each
//! updating their own device round after round (so every line always has a run finishing while the
//! next is committed), group commit, and the in-process dispatcher. Every run must complete: a
//! line whose next run is not promoted when the one before it finishes stalls the drain. The
//! contract kit's concurrent case runs in one task and did not meet the stall this guards against.

use std::sync::Arc;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites, QueueReader};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobContext, JobError, JobHook, JobHookReceiver,
    Object, ObjectChange, PendingChange, SyncMode, async_trait, json,
};
use jobhooks_postgres::PgStore;
use jobhooks_postgres::testing::TestServer;
use jobhooks_register::{Registry, register_job_hook_receiver};
use jobhooks_tests::{class_path, object};

const COMMITTERS: usize = 64;
const ROUNDS: usize = 15;

/// Does nothing, successfully.
#[derive(Default)]
struct LineWalker;

#[async_trait]
impl JobHookReceiver for LineWalker {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        Ok(())
    }
}

register_job_hook_receiver!(LineWalker);

fn update(device: usize, round: usize) -> ChangeSet {
    let mut changes = ChangeSet::default();
    let device = object("dcim.device", &device.to_string(), "device", json!({"round": round}));
    changes.record(PendingChange::new(Action::Update, &device));
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_keep_moving_under_the_bench_load_on_postgresql() {
    let store = Arc::new(PgStore::connect(&TestServer::shared().fresh_database().await).await.unwrap());
    let registry = Registry::from_linked().unwrap();
    registry.sync_into(&*store, SyncMode::Full).await.unwrap();
    let job = class_path(module_path!(), "LineWalker");
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("walk", devices, job.as_str()).on([Action::Update])).await.unwrap();
    let dispatcher = Dispatcher::start(store.clone(), registry, DispatcherConfig::default()).await.unwrap();

    let committers: Vec<_> = (0..COMMITTERS)
        .map(|device| {
            let store = store.clone();
            tokio::spawn(async move {
                let context = ChangeContext::new(ChangeContextKind::Web, Some("u".into()), "");
                for round in 0..ROUNDS {
                    store.commit(&context, update(device, round), ObjectWrites::Apply).await.unwrap();
                }
            })
        })
        .collect();
    for committer in committers {
        committer.await.unwrap();
    }
    let drained = tokio::time::timeout(Duration::from_secs(120), dispatcher.drain()).await;
    let depth = store.depth().await.unwrap();
    assert!(drained.is_ok(), "the lines stalled: {depth:?} after 120 s");
    drained.unwrap().unwrap();
    assert_eq!((depth.pending, depth.leased, depth.dead), (0, 0, 0));
    assert_eq!(store.count_changes().await.unwrap(), (COMMITTERS * ROUNDS) as u64);
    dispatcher.shutdown(Duration::from_secs(5)).await;
}
