//! The dispatcher's own tests, on the in-memory store: receivers given as instances with shared
//! data, how a run's outcome is concluded (retries, dead letters, failure entries), batches cut
//! short when a claim would lapse, per-job limits, and shutdown with a run in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites, QueueReader};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobContext, JobError, JobHook, JobHookReceiver,
    JobStatus, ManualClock, Object, ObjectChange, ObjectRef, SharedData, async_trait, json,
};
use jobhooks_register::{JobMeta, Registry};
use jobhooks_store_memory::MemoryStore;
use tokio::sync::Notify;

use crate::{Dispatcher, DispatcherConfig};
use jobhooks_model::SyncMode;

jobhooks_register::job_class!(Counting);
jobhooks_register::job_class!(Holding);
jobhooks_register::job_class!(Failing);
jobhooks_register::job_class!(Concurrent);

/// Counts its runs in its own state, and logs the shared prefix it finds.
struct Counting {
    runs: Arc<AtomicUsize>,
}

/// A value shared with every run.
struct Prefix(&'static str);

#[async_trait]
impl JobHookReceiver for Counting {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let prefix = ctx.data::<Prefix>().map_or("none", |prefix| prefix.0);
        ctx.log_info(format!("{prefix}: {change}"));
        Ok(())
    }
}

/// Holds its run until `release` is notified.
struct Holding {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl JobHookReceiver for Holding {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        self.started.notify_one();
        self.release.notified().await;
        Ok(())
    }
}

const BOUND: Duration = Duration::from_secs(10);

/// A store whose only job is the registry's hook receiver, enabled, with a hook on device creates.
async fn hooked_store(registry: &Registry) -> MemoryStore {
    let store = MemoryStore::new();
    registry.sync_into(&store, jobhooks_model::SyncMode::Full).await.unwrap();
    let job = registry.jobs().next().unwrap().class_path();
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("h", devices, job.as_str()).on([Action::Create])).await.unwrap();
    store
}

async fn create_devices(store: &MemoryStore, ids: &[&str]) -> Vec<jobhooks_model::RunId> {
    let mut changes = ChangeSet::default();
    for id in ids {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), *id).unwrap();
        changes.save(&Object::new(reference, *id, json!({})).unwrap(), None);
    }
    let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
    store.commit(&context, changes, ObjectWrites::Apply).await.unwrap().runs
}

#[tokio::test]
async fn a_receiver_instance_keeps_its_state_and_reaches_the_shared_data() {
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = Registry::default()
        .with_hook_receiver(Counting { runs: runs.clone() }, JobMeta::new().name("Counting"))
        .unwrap();
    let store = Arc::new(hooked_store(&registry).await);
    let config = DispatcherConfig::default().data(SharedData::new().with(Prefix("audit")));
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    let queued = create_devices(&store, &["1", "2"]).await;
    tokio::time::timeout(BOUND, dispatcher.drain()).await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one instance served both runs");
    let result = store.get_result(queued[0]).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Success);
    assert_eq!(result.logs[1].message, "audit: dcim.device 1 created by alice");
    dispatcher.shutdown(BOUND).await;
}

/// Every entry of a run's log, the receiver's and the dispatcher's, is timed by the dispatcher's
/// clock, like its claims and retries.
#[tokio::test]
async fn log_entries_are_timed_by_the_dispatchers_clock() {
    let at = jobhooks_model::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let clock = ManualClock::at(at);
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = Registry::default().with_hook_receiver(Counting { runs }, JobMeta::new()).unwrap();
    let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    registry.sync_into(&*store, jobhooks_model::SyncMode::Full).await.unwrap();
    let job = registry.jobs().next().unwrap().class_path();
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    store.create_hook(JobHook::new("h", devices, job.as_str()).on([Action::Create])).await.unwrap();
    let config = DispatcherConfig::default().clock(Arc::new(clock));
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    let queued = create_devices(&store, &["1"]).await;
    tokio::time::timeout(BOUND, dispatcher.drain()).await.unwrap().unwrap();
    let result = store.get_result(queued[0]).await.unwrap().unwrap();
    assert_eq!(result.logs.len(), 3, "{:?}", result.logs);
    assert!(result.logs.iter().all(|entry| entry.time == at), "{:?}", result.logs);
    dispatcher.shutdown(BOUND).await;
}

#[tokio::test]
async fn a_factory_builds_a_receiver_per_run() {
    let built = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let (built_in_factory, runs_in_factory) = (built.clone(), runs.clone());
    let factory = move || {
        built_in_factory.fetch_add(1, Ordering::SeqCst);
        Counting { runs: runs_in_factory.clone() }
    };
    let registry = Registry::default().with_hook_receiver_factory(factory, JobMeta::new()).unwrap();
    let err = registry.clone().with_hook_receiver(Counting { runs: runs.clone() }, JobMeta::new()).unwrap_err();
    assert!(err.to_string().contains("is registered twice"), "{err}");
    let store = Arc::new(hooked_store(&registry).await);
    let dispatcher = Dispatcher::start(store.clone(), registry, DispatcherConfig::default()).await.unwrap();
    create_devices(&store, &["1", "2", "3"]).await;
    tokio::time::timeout(BOUND, dispatcher.drain()).await.unwrap().unwrap();
    assert_eq!((built.load(Ordering::SeqCst), runs.load(Ordering::SeqCst)), (3, 3));
    dispatcher.shutdown(BOUND).await;
}

#[tokio::test]
async fn a_run_whose_claim_would_lapse_before_it_could_finish_is_given_back_unstarted() {
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = Registry::default().with_hook_receiver(Counting { runs: runs.clone() }, JobMeta::new()).unwrap();
    let store = Arc::new(hooked_store(&registry).await);
    // Two runs, queued before the dispatcher starts, so that one worker claims both at once.
    let queued = create_devices(&store, &["1", "2"]).await;
    let config = DispatcherConfig::default()
        .workers(1)
        .lease_batch(2)
        .lease(Duration::from_secs(10))
        .run_timeout(Duration::from_secs(30))
        .clock(Arc::new(ManualClock::starting_now()));
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    tokio::time::timeout(BOUND, dispatcher.drain()).await.unwrap().unwrap();
    let stats = dispatcher.stats().await.unwrap();
    assert_eq!((stats.succeeded, stats.given_back), (2, 1), "{stats:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "each ran once");
    for run in queued {
        assert_eq!(store.get_result(run).await.unwrap().unwrap().attempts, 1, "a give-back is not an attempt");
    }
    dispatcher.shutdown(BOUND).await;
}

#[tokio::test]
async fn shutdown_gives_a_run_in_flight_back_to_run_again() {
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let holding = Holding { started: started.clone(), release };
    let registry = Registry::default().with_hook_receiver(holding, JobMeta::new()).unwrap();
    let store = Arc::new(hooked_store(&registry).await);
    let dispatcher = Dispatcher::start(store.clone(), registry, DispatcherConfig::default()).await.unwrap();
    let queued = create_devices(&store, &["1"]).await;
    tokio::time::timeout(BOUND, started.notified()).await.unwrap();
    let report = dispatcher.shutdown(Duration::from_millis(20)).await;
    assert_eq!(report.abandoned, 1);
    let result = store.get_result(queued[0]).await.unwrap().unwrap();
    assert_eq!((result.status, result.attempts), (JobStatus::Pending, 1), "pending again; the attempt counts");
    assert_eq!(store.depth().await.unwrap().pending, 1);
}

/// Fails every run with an error, or, with `verdict`, logs `failure` and returns `Ok`.
struct Failing {
    verdict: bool,
}

#[async_trait]
impl JobHookReceiver for Failing {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        if self.verdict {
            ctx.log_failure("the serial is wrong");
            return Ok(());
        }
        Err("the CMDB is down".into())
    }
}

/// An error is retried as the job's policy says, then dead-lettered; a `failure` entry is the
/// receiver's own verdict and fails the run at once.
#[tokio::test]
async fn errors_are_retried_then_dead_lettered_and_a_failure_entry_is_final() {
    let registry = Registry::default().with_hook_receiver(Failing { verdict: false }, JobMeta::new()).unwrap();
    let store = Arc::new(hooked_store(&registry).await);
    let job = registry.jobs().next().unwrap().class_path();
    let policy = crate::RetryPolicy::retries(2, Duration::ZERO, Duration::ZERO).without_jitter();
    let config = DispatcherConfig::default().job_retry(std::collections::HashMap::from([(job.clone(), policy)]));
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    let queued = create_devices(&store, &["1"]).await;
    tokio::time::timeout(BOUND, dispatcher.drain()).await.unwrap().unwrap();
    let result = store.get_result(queued[0]).await.unwrap().unwrap();
    assert_eq!((result.status, result.attempts), (JobStatus::DeadLettered, 2), "{:?}", result.logs);
    let messages: Vec<&str> = result.logs.iter().map(|entry| entry.message.as_str()).collect();
    assert!(messages.contains(&"the CMDB is down"), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("Retrying in")), "{messages:?}");
    assert_eq!(messages.last(), Some(&"Dead-lettered after 2 attempts"));
    let jobs = dispatcher.monitor().jobs();
    let failing = jobs.get(&job).expect("the job's figures");
    assert_eq!((failing.retried, failing.dead_lettered, failing.succeeded), (1, 1, 0));
    assert_eq!(failing.duration.count(), 2, "each attempt is timed");
    assert_eq!(failing.start_latency.count(), 1, "only the first attempt's wait is the commit's latency");
    dispatcher.shutdown(BOUND).await;

    let registry = Registry::default().with_hook_receiver(Failing { verdict: true }, JobMeta::new()).unwrap();
    let store = Arc::new(hooked_store(&registry).await);
    let dispatcher = Dispatcher::start(store.clone(), registry, DispatcherConfig::default()).await.unwrap();
    let queued = create_devices(&store, &["1"]).await;
    tokio::time::timeout(BOUND, dispatcher.drain()).await.unwrap().unwrap();
    let result = store.get_result(queued[0]).await.unwrap().unwrap();
    assert_eq!((result.status, result.attempts), (JobStatus::Failure, 1), "{:?}", result.logs);
    dispatcher.shutdown(BOUND).await;
}

/// Counts the runs of its job in flight at once, and the most there ever were.
struct Concurrent {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[async_trait]
impl JobHookReceiver for Concurrent {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        let running = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(running, Ordering::SeqCst);
        // Give the other workers every chance to start a run of this job meanwhile.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// With `per_job_limit`, no more runs of one job run at once than it allows, however many
/// workers are free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_job_limit_bounds_the_runs_of_a_job_in_flight() {
    let most = Arc::new(AtomicUsize::new(0));
    let receiver = Concurrent { now: Arc::new(AtomicUsize::new(0)), most: most.clone() };
    let registry = Registry::default().with_hook_receiver(receiver, JobMeta::new()).unwrap();
    let store = Arc::new(hooked_store(&registry).await);
    let config = DispatcherConfig::default().workers(4).lease_batch(1).per_job_limit(Some(1));
    let dispatcher = Dispatcher::start(store.clone(), registry, config).await.unwrap();
    let ids: Vec<String> = (0..12).map(|n| n.to_string()).collect();
    let queued = create_devices(&store, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await;
    tokio::time::timeout(BOUND, dispatcher.drain()).await.unwrap().unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 1);
    for run in queued {
        assert_eq!(store.get_result(run).await.unwrap().unwrap().status, JobStatus::Success);
    }
    dispatcher.shutdown(BOUND).await;
}

/// On a store that reads changes together, the hook runs of a batch read their changes and objects
/// together when the first starts, and a run uses what was read only when it starts within `FRESH`
/// (20 ms) of the read: a later run sees its object as it is when it starts.
#[tokio::test]
async fn a_batch_reads_its_changes_ahead_only_while_they_are_fresh() {
    let store = MemoryStore::new();
    let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
    let device = |id: &str, version: u64| {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
        Object::new(reference, id, json!({"version": version})).unwrap()
    };
    let save = |object: Object| {
        let store = &store;
        let context = &context;
        async move {
            let mut changes = ChangeSet::default();
            changes.save(&object, None);
            store.commit(context, changes, ObjectWrites::Apply).await.unwrap().changes[0]
        }
    };
    let (a, b, c) = (save(device("a", 1)).await, save(device("b", 1)).await, save(device("c", 1)).await);
    let missing = jobhooks_model::ChangeId(999);
    let mut reads = crate::run::BatchReads::for_changes([a, b, missing, c], true);
    let start = jobhooks_model::OffsetDateTime::now_utc();
    let ms = |n: u64| start + Duration::from_millis(n);

    let first = reads.change_and_object(&store, a, start).await.unwrap();
    assert_eq!(first, store.get_change_and_object(a).await.unwrap(), "as a read of its own");
    save(device("b", 2)).await;
    let (_, object) = reads.change_and_object(&store, b, ms(20)).await.unwrap().unwrap();
    assert_eq!(object, Some(device("b", 1)), "read 20 ms before its start: fresh");
    assert_eq!(reads.change_and_object(&store, missing, ms(20)).await.unwrap(), None, "asked for, not found");
    save(device("c", 2)).await;
    let (change, object) = reads.change_and_object(&store, c, ms(21)).await.unwrap().unwrap();
    assert_eq!((change.id, object), (c, Some(device("c", 2))), "read 21 ms before its start: read again");

    // A store whose reads are local (`reads_changes_together` is false, as the memory store's)
    // has each run read its own change when it starts.
    assert!(!store.reads_changes_together());
    let mut reads = crate::run::BatchReads::for_changes([a, b], store.reads_changes_together());
    reads.change_and_object(&store, a, start).await.unwrap();
    save(device("b", 3)).await;
    let (_, object) = reads.change_and_object(&store, b, start).await.unwrap().unwrap();
    assert_eq!(object, Some(device("b", 3)), "not read ahead: read as it starts");
}

#[tokio::test]
async fn an_empty_registry_with_a_full_sync_is_refused_and_names_link() {
    let store = Arc::new(MemoryStore::new());
    store
        .sync_jobs(
            &Registry::default()
                .with_hook_receiver(Counting { runs: Default::default() }, JobMeta::new())
                .unwrap()
                .specs(),
            SyncMode::Full,
        )
        .await
        .unwrap();
    let Err(refused) = Dispatcher::start(store.clone(), Registry::default(), DispatcherConfig::default()).await else {
        panic!("an empty registry with a full sync must be refused");
    };
    assert!(matches!(refused, crate::Error::EmptyRegistry));
    assert!(refused.to_string().contains("call its `link()` before `Registry::from_linked()`"), "{refused}");
    assert!(store.list_jobs().await.unwrap()[0].installed, "nothing was uninstalled");
    let additive = DispatcherConfig::default().job_sync(SyncMode::Additive);
    let dispatcher = Dispatcher::start(store, Registry::default(), additive).await.unwrap();
    dispatcher.shutdown(Duration::from_secs(5)).await;
}
