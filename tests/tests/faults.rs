//! Injected storage faults (write, flush and decode errors): the dispatcher keeps serving, no
//! entry is lost, each run's effect lands once, and every failure is visible.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, JobQueue, ObjectReader, ObjectWrites};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobContext, JobError, JobHook, JobHookReceiver,
    JobStatus, Object, ObjectChange, OffsetDateTime, async_trait, json,
};
use jobhooks_register::{Registry, register_job_hook_receiver};
use jobhooks_store::Store;
use jobhooks_tests::faults::FaultyStore;
use jobhooks_tests::{log_lines, object};

/// Writes one audit object per run.
#[derive(Default)]
struct Audit;

#[async_trait]
impl JobHookReceiver for Audit {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        ctx.save(object("app.audit", &change.id.to_string(), "audit", json!({"change": change.id}))).await?;
        Ok(())
    }
}

register_job_hook_receiver!(Audit);

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<FaultyStore<Store>>,
    dispatcher: Dispatcher<FaultyStore<Store>>,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(Store::open(dir.path()).unwrap()));
    let registry = Registry::from_linked().unwrap();
    registry.sync_into(&*store).await.unwrap();
    let job = format!("{}::Audit", module_path!());
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("audit", devices, job.as_str()).on([Action::Create])).await.unwrap();
    let config = DispatcherConfig {
        lease: Duration::from_millis(300),
        idle_wakeup: Duration::from_millis(20),
        ..DispatcherConfig::default()
    };
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    Setup { _dir: dir, store, dispatcher }
}

async fn create_device(
    store: &FaultyStore<Store>,
    id: &str,
) -> Result<jobhooks_model::ports::CommitReceipt, jobhooks_model::StoreError> {
    let mut changes = ChangeSet::default();
    changes.save(&object("dcim.device", id, id, json!({})), None);
    let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
    store.commit(&context, changes, ObjectWrites::Apply).await
}

#[tokio::test]
async fn a_failed_commit_writes_nothing_and_queues_nothing() {
    let s = setup().await;
    s.store.faults.commits.store(1, Ordering::SeqCst);
    let err = create_device(&s.store, "1").await.unwrap_err();
    assert_eq!(err.to_string(), "storage failed: injected write error");
    let far = OffsetDateTime::now_utc() + Duration::from_secs(60);
    assert!(s.store.changes_between(OffsetDateTime::UNIX_EPOCH, far, 10).await.unwrap().is_empty());
    assert_eq!(s.store.depth().await.unwrap(), Default::default());
    // The next commit goes through and its run happens.
    let receipt = create_device(&s.store, "1").await.unwrap();
    s.dispatcher.drain().await.unwrap();
    assert_eq!(s.store.get_result(receipt.runs[0]).await.unwrap().unwrap().status, JobStatus::Success);
}

#[tokio::test]
async fn failed_completions_leave_the_run_to_run_again_and_its_effect_lands_once() {
    let s = setup().await;
    s.store.faults.completes.store(2, Ordering::SeqCst);
    let receipt = create_device(&s.store, "1").await.unwrap();
    s.dispatcher.drain().await.unwrap();
    let result = s.store.get_result(receipt.runs[0]).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Success);
    assert_eq!(result.attempts, 3, "two completions failed, the third landed");
    let lapses: Vec<_> = log_lines(&result).into_iter().filter(|l| l.contains("lapsed")).collect();
    assert_eq!(
        lapses,
        [
            "warning The lease of attempt 1 lapsed before its outcome was recorded; the run starts again",
            "warning The lease of attempt 2 lapsed before its outcome was recorded; the run starts again",
        ],
        "each failure is visible in the run's result"
    );
    let audit = object("app.audit", &receipt.changes[0].to_string(), "", json!({})).reference().clone();
    assert!(s.store.get_object(&audit).await.unwrap().is_some());
    assert_eq!(s.store.changes_for_object(&audit, 10).await.unwrap().len(), 1, "the effect landed once");
}

#[tokio::test]
async fn the_dispatcher_keeps_serving_after_failed_leases() {
    let s = setup().await;
    s.store.faults.leases.store(3, Ordering::SeqCst);
    let receipt = create_device(&s.store, "1").await.unwrap();
    s.dispatcher.drain().await.unwrap();
    assert_eq!(s.store.faults.leases.load(Ordering::SeqCst), 0, "the failures happened");
    assert_eq!(s.store.get_result(receipt.runs[0]).await.unwrap().unwrap().status, JobStatus::Success);
}

#[tokio::test]
async fn an_undecodable_change_fails_its_run_visibly() {
    let s = setup().await;
    s.store.faults.corrupt_changes.store(1, Ordering::SeqCst);
    let receipt = create_device(&s.store, "1").await.unwrap();
    s.dispatcher.drain().await.unwrap();
    let result = s.store.get_result(receipt.runs[0]).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Failure);
    let expected = format!(
        "failure Could not prepare the run: corrupt change record `{}`: injected decode error; restore the store from a backup or remove the record",
        receipt.changes[0]
    );
    assert_eq!(log_lines(&result), ["info Running job".to_owned(), expected]);
    // The next change runs normally.
    let next = create_device(&s.store, "2").await.unwrap();
    s.dispatcher.drain().await.unwrap();
    assert_eq!(s.store.get_result(next.runs[0]).await.unwrap().unwrap().status, JobStatus::Success);
}
