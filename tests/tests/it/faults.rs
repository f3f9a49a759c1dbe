//! Injected storage faults (write, flush and decode errors): the dispatcher keeps serving, no
//! entry is lost, each run's effect lands once, and every failure is visible.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, JobQueue, ObjectReader, ObjectWrites, QueueReader};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, Clock, ContentType, JobContext, JobError, JobHook,
    JobHookReceiver, JobStatus, Object, ObjectChange, OffsetDateTime, async_trait, json,
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
    registry.sync_into(&*store, jobhooks_model::SyncMode::Full).await.unwrap();
    let job = format!("{}::Audit", module_path!());
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("audit", devices, job.as_str()).on([Action::Create])).await.unwrap();
    let config = DispatcherConfig::default().lease(Duration::from_millis(300)).idle_wakeup(Duration::from_millis(20));
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    Setup { _dir: dir, store, dispatcher }
}

async fn create_device(
    store: &FaultyStore<Store>,
    id: &str,
) -> Result<jobhooks_model::ports::CommitReceipt, jobhooks_model::ChangeError> {
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

/// Records the id of each gate it runs for; the run for gate `first` holds on until released.
#[derive(Default)]
struct Gated;

static GATED_CALLS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static FIRST_STARTED: std::sync::LazyLock<tokio::sync::Notify> = std::sync::LazyLock::new(Default::default);
static RELEASE_FIRST: std::sync::LazyLock<tokio::sync::Notify> = std::sync::LazyLock::new(Default::default);

#[async_trait]
impl JobHookReceiver for Gated {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        GATED_CALLS.lock().unwrap().push(change.changed_object_id.clone());
        if change.changed_object_id == "first" {
            FIRST_STARTED.notify_one();
            RELEASE_FIRST.notified().await;
        }
        Ok(())
    }
}

register_job_hook_receiver!(Gated);

/// Defect found in acceptance testing: with `per_job_limit`, a worker checked its claim before it
/// waited for the job's permit, so a run could start on a claim that lapsed while it waited, after
/// another worker had taken the run over: the run ran twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_waited_for_its_jobs_permit_does_not_start_on_a_lapsed_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(Store::open(dir.path()).unwrap()));
    let registry = Registry::from_linked().unwrap();
    registry.sync_into(&*store, jobhooks_model::SyncMode::Full).await.unwrap();
    let job = format!("{}::Gated", module_path!());
    store.set_job_enabled(&job, true).await.unwrap();
    let gates = vec![ContentType::new("app.gate").unwrap()];
    store.create_hook(JobHook::new("gated", gates, job.as_str()).on([Action::Create])).await.unwrap();
    let clock = jobhooks_model::ManualClock::starting_now();
    let lease = Duration::from_secs(60);
    let config = DispatcherConfig::default()
        .workers(2)
        .lease_batch(1)
        .per_job_limit(Some(1))
        .lease(lease)
        .run_timeout(Duration::from_secs(30))
        .clock(Arc::new(clock.clone()));
    let mut leased = store.leased_runs();
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    let bound = Duration::from_secs(10);
    let create_gate = |id: &'static str| {
        let store = store.clone();
        async move {
            let mut changes = ChangeSet::default();
            changes.save(&object("app.gate", id, id, json!({})), None);
            let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
            store.commit(&context, changes, ObjectWrites::Apply).await.unwrap()
        }
    };

    create_gate("first").await;
    tokio::time::timeout(bound, FIRST_STARTED.notified()).await.expect("the first run starts and holds the permit");
    let second = create_gate("second").await.runs[0];
    tokio::time::timeout(bound, leased.wait_for(|count| *count >= 2))
        .await
        .expect("the other worker leases the second run")
        .unwrap();
    // While that worker waits for the job's only permit, both claims lapse, and another process
    // takes both runs over and finishes them.
    clock.advance(lease + Duration::from_secs(1));
    let takeover = store.inner.lease_batch(clock.now(), lease, 2).await.unwrap();
    assert_eq!(takeover.iter().map(|(claim, _)| claim.run).max(), Some(second), "both claims lapsed");
    for (claim, _) in takeover {
        let done = jobhooks_model::ports::Completion {
            lease: claim,
            outcome: jobhooks_model::Outcome::Succeeded { writes: None },
            logs: Vec::new(),
        };
        store.complete(done).await.unwrap();
    }

    RELEASE_FIRST.notify_one();
    tokio::time::timeout(bound, dispatcher.drain()).await.expect("the queue drains").unwrap();
    assert_eq!(*GATED_CALLS.lock().unwrap(), ["first"], "the second run was not started on its lapsed claim");
    let stats = dispatcher.stats().await.unwrap();
    assert_eq!((stats.lease_lost, stats.given_back), (1, 1), "the first's outcome is discarded: {stats:?}");
}
