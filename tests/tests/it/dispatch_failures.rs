//! How the dispatcher handles what goes wrong: disabled and uninstalled jobs, missing objects,
//! errors, panics, timeouts, retries then dead letters then replay, per-object ordering under
//! concurrency, and shutdown with runs in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use jobhooks_dispatch::{DispatcherConfig, RetryPolicy};
use jobhooks_model::ports::{Catalog, JobQueue, QueueMaintenance, QueueReader};
use jobhooks_model::{
    Action, ContentType, JobButton, JobButtonReceiver, JobContext, JobError, JobHook, JobHookReceiver, JobInputs,
    JobKind, JobSpec, JobStatus, Object, ObjectChange, async_trait, json,
};
use jobhooks_register::{register_job_button_receiver, register_job_hook_receiver};
use jobhooks_tests::{Harness, class_path, log_lines, object};
use tokio::sync::Notify;

fn ct(name: &str) -> ContentType {
    ContentType::new(name).unwrap()
}

fn job(type_name: &str) -> String {
    class_path(module_path!(), type_name)
}

async fn hook_on(h: &Harness, name: &str, content_type: &str, type_name: &str) {
    let hook = JobHook::new(name, vec![ct(content_type)], job(type_name).as_str()).on([Action::Create, Action::Update]);
    h.store.create_hook(hook).await.unwrap();
}

/// Does nothing, successfully.
#[derive(Default)]
struct Quiet;

#[async_trait]
impl JobHookReceiver for Quiet {
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

register_job_hook_receiver!(Quiet);

#[tokio::test]
async fn a_job_disabled_after_its_run_was_queued_fails_the_run() {
    let h = Harness::start(DispatcherConfig::default().workers(1)).await;
    hook_on(&h, "quiet", "dcim.site", "Quiet").await;
    let (dir, store) = h.stop().await;
    let config = DispatcherConfig::default();
    let mut session =
        store.session(jobhooks_model::ChangeContext::new(jobhooks_model::ChangeContextKind::Web, Some("a".into()), ""));
    session.save(object("dcim.site", "s1", "S1", json!({}))).await.unwrap();
    session.commit().await.unwrap();
    store.set_job_enabled(&job("Quiet"), false).await.unwrap();
    let registry = jobhooks_register::Registry::from_linked().unwrap();
    let dispatcher = jobhooks_dispatch::Dispatcher::start(store.clone(), registry, config).await.unwrap();
    dispatcher.drain().await.unwrap();
    let results = store.list_results(&Default::default()).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, JobStatus::Failure);
    assert_eq!(
        log_lines(&results[0]).last().unwrap(),
        &format!("failure Job {} is not enabled to be run!", job("Quiet"))
    );
    drop(dir);
}

#[tokio::test]
async fn a_run_of_a_job_no_longer_linked_fails() {
    let h = Harness::start(DispatcherConfig::default()).await;
    let gone = JobSpec {
        class_path: "gone::Job".into(),
        name: "Gone".into(),
        description: String::new(),
        kind: JobKind::JobButtonReceiver,
        hidden: true,
        former_class_paths: vec![],
    };
    let mut specs: Vec<JobSpec> = jobhooks_register::Registry::from_linked().unwrap().specs();
    specs.push(gone);
    h.store.sync_jobs(&specs, jobhooks_model::SyncMode::Full).await.unwrap();
    h.store.set_job_enabled("gone::Job", true).await.unwrap();
    let inputs = JobInputs::Button { object_pk: "1".into(), object_model_name: "dcim.site".into() };
    let run = h.store.enqueue("gone::Job", None, inputs).await.unwrap();
    h.dispatcher.drain().await.unwrap();
    let result = h.store.get_result(run).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Failure);
    assert_eq!(log_lines(&result).last().unwrap(), "failure Job gone::Job is not presently installed!");
}

#[tokio::test]
async fn a_missing_object_fails_the_run_saying_which() {
    let h = Harness::start(DispatcherConfig::default()).await;
    let simple = "jobhooks_examples::ExampleSimpleJobButtonReceiver";
    h.store.create_button(JobButton::new("b", vec![ct("dcim.location")], "Go", simple)).await.unwrap();
    let missing = object("dcim.location", "404", "Nowhere", json!({}));
    // A press on an object that does not exist is refused up front ...
    let refused = h
        .dispatcher
        .press(&jobhooks_model::User::superuser("root").unwrap(), "b", missing.reference())
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), "dcim.location 404 does not exist");
    // ... and a run whose object is gone by the time it starts (deleted after the press) fails.
    let inputs =
        jobhooks_model::JobInputs::Button { object_pk: "404".into(), object_model_name: "dcim.location".into() };
    let run = h.store.enqueue(simple, Some("root".into()), inputs).await.unwrap();
    h.dispatcher.drain().await.unwrap();
    let result = h.store.get_result(run).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Failure);
    assert_eq!(log_lines(&result), ["info Running job", "failure Object dcim.location 404 does not exist"]);
}

/// Fails with an error.
#[derive(Default)]
struct Failing;

#[async_trait]
impl JobHookReceiver for Failing {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        ctx.save(object("dcim.audit", "never", "never", json!({}))).await?;
        Err("the device is not reachable".into())
    }
}

register_job_hook_receiver!(Failing);

/// Panics.
#[derive(Default)]
struct Panicking;

#[async_trait]
impl JobHookReceiver for Panicking {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        panic!("boom")
    }
}

register_job_hook_receiver!(Panicking);

/// Never returns.
#[derive(Default)]
struct Hanging;

#[async_trait]
impl JobHookReceiver for Hanging {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

register_job_hook_receiver!(Hanging);

/// Logs a failure and returns Ok.
#[derive(Default)]
struct LogsFailure;

#[async_trait]
impl JobHookReceiver for LogsFailure {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        ctx.log_failure("the serial is wrong");
        Ok(())
    }
}

register_job_hook_receiver!(LogsFailure);

#[tokio::test]
async fn errors_panics_timeouts_and_failure_entries_fail_the_run_and_the_workers_survive() {
    let config = DispatcherConfig::default().workers(1).run_timeout(Duration::from_millis(200));
    let h = Harness::start(config).await;
    hook_on(&h, "failing", "dcim.a", "Failing").await;
    hook_on(&h, "panicking", "dcim.b", "Panicking").await;
    hook_on(&h, "hanging", "dcim.c", "Hanging").await;
    hook_on(&h, "logs-failure", "dcim.d", "LogsFailure").await;
    hook_on(&h, "quiet", "dcim.e", "Quiet").await;
    for content_type in ["dcim.a", "dcim.b", "dcim.c", "dcim.d", "dcim.e"] {
        h.save("alice", &[object(content_type, "1", "x", json!({}))]).await;
    }
    let last = |type_name: &'static str| {
        let h = &h;
        async move { log_lines(&h.results_of(&job(type_name)).await[0]).last().cloned().unwrap() }
    };
    assert_eq!(last("Failing").await, "error the device is not reachable");
    assert_eq!(last("Panicking").await, "error Job panicked: boom");
    assert_eq!(last("Hanging").await, "error Job timed out after 200ms");
    assert_eq!(last("LogsFailure").await, "failure the serial is wrong");
    for type_name in ["Failing", "Panicking", "Hanging", "LogsFailure"] {
        assert_eq!(h.results_of(&job(type_name)).await[0].status, JobStatus::Failure, "{type_name}");
    }
    assert_eq!(h.results_of(&job("Quiet")).await[0].status, JobStatus::Success, "the one worker survived them all");
    let audit = object("dcim.audit", "never", "never", json!({})).reference().clone();
    assert_eq!(
        jobhooks_model::ports::ObjectReader::get_object(&*h.store, &audit).await.unwrap(),
        None,
        "a failed run writes nothing"
    );
    let stats = h.dispatcher.stats().await.unwrap();
    assert_eq!((stats.succeeded, stats.failed), (1, 4));
}

static FLAKY_FAILS: AtomicBool = AtomicBool::new(true);

/// Fails while `FLAKY_FAILS` is set.
#[derive(Default)]
struct Flaky;

#[async_trait]
impl JobHookReceiver for Flaky {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        let attempt = ctx.run().attempt;
        if FLAKY_FAILS.load(Ordering::SeqCst) {
            return Err(format!("attempt {attempt} failed").into());
        }
        ctx.log_info(format!("attempt {attempt} worked"));
        Ok(())
    }
}

register_job_hook_receiver!(Flaky);

#[tokio::test]
async fn retries_then_dead_letter_then_replay() {
    let retry = RetryPolicy::retries(3, Duration::from_millis(5), Duration::from_millis(20));
    let config = DispatcherConfig::default().job_retry(HashMap::from([(job("Flaky"), retry)]));
    let h = Harness::start(config).await;
    hook_on(&h, "flaky", "dcim.flaky", "Flaky").await;
    h.save("alice", &[object("dcim.flaky", "1", "x", json!({}))]).await;
    let result = h.results_of(&job("Flaky")).await.remove(0);
    assert_eq!(result.status, JobStatus::DeadLettered);
    assert_eq!(result.attempts, 3);
    let errors: Vec<_> =
        result.logs.iter().filter(|e| e.level == jobhooks_model::LogLevel::Error).map(|e| e.message.as_str()).collect();
    assert_eq!(errors, ["attempt 1 failed", "attempt 2 failed", "attempt 3 failed", "Dead-lettered after 3 attempts"]);
    assert_eq!(h.store.depth().await.unwrap().dead, 1);
    let stats = h.dispatcher.stats().await.unwrap();
    assert_eq!((stats.retried, stats.dead_lettered), (2, 1));

    FLAKY_FAILS.store(false, Ordering::SeqCst);
    h.store.replay(result.id).await.unwrap();
    let replayed = h.results_of(&job("Flaky")).await.remove(0);
    assert_eq!(replayed.status, JobStatus::Success);
    assert_eq!(log_lines(&replayed).last().unwrap(), "success Job completed");
    assert!(log_lines(&replayed).contains(&"info attempt 1 worked".to_owned()));
}

static ORDER: LazyLock<Mutex<Vec<u64>>> = LazyLock::new(Mutex::default);
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static OVERLAPS: AtomicUsize = AtomicUsize::new(0);

/// Records the order in which it sees the changes of one object, and whether two ever overlap.
#[derive(Default)]
struct Ordered;

#[async_trait]
impl JobHookReceiver for Ordered {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        change: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        if RUNNING.fetch_add(1, Ordering::SeqCst) > 0 {
            OVERLAPS.fetch_add(1, Ordering::SeqCst);
        }
        // Give other workers every chance to start a run of the same object meanwhile.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        ORDER.lock().unwrap().push(change.id.0);
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

register_job_hook_receiver!(Ordered);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_one_object_run_one_at_a_time_in_change_order_under_concurrency() {
    let h = Harness::start(DispatcherConfig::default().workers(8)).await;
    hook_on(&h, "ordered", "dcim.ordered", "Ordered").await;
    let mut committers = Vec::new();
    for committer in 0..4 {
        let store = h.store.clone();
        committers.push(tokio::spawn(async move {
            for round in 0..10 {
                let context =
                    jobhooks_model::ChangeContext::new(jobhooks_model::ChangeContextKind::Web, Some("a".into()), "");
                let mut session = store.session(context);
                session
                    .save(object("dcim.ordered", "1", "one", json!({"by": committer, "round": round})))
                    .await
                    .unwrap();
                session.commit().await.unwrap();
            }
        }));
    }
    for committer in committers {
        committer.await.unwrap();
    }
    let results = h.results_of(&job("Ordered")).await;
    assert_eq!(results.len(), 40);
    assert!(results.iter().all(|r| r.status == JobStatus::Success));
    let order = ORDER.lock().unwrap().clone();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted, "runs started in the order of the object's changes");
    assert_eq!(OVERLAPS.load(Ordering::SeqCst), 0, "never two runs of one object at once");
}

static STARTED: LazyLock<Notify> = LazyLock::new(Notify::new);
static RELEASE: LazyLock<Notify> = LazyLock::new(Notify::new);
static SLOW_HANGS: AtomicBool = AtomicBool::new(true);

/// Tells the test it started, then waits to be released (or, when told, forever).
#[derive(Default)]
struct Slow;

#[async_trait]
impl JobButtonReceiver for Slow {
    async fn receive_job_button(&self, ctx: &mut JobContext, obj: Object) -> Result<(), JobError> {
        let wait = RELEASE.notified();
        STARTED.notify_one();
        if SLOW_HANGS.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        wait.await;
        ctx.log_info_about(&obj, "released");
        Ok(())
    }
}

register_job_button_receiver!(Slow);

#[tokio::test]
async fn shutdown_lets_runs_finish_by_the_deadline_and_gives_the_rest_back() {
    let config = DispatcherConfig::default().run_timeout(Duration::from_secs(3600));
    let h = Harness::start(config.clone()).await;
    let target = object("dcim.slow", "1", "slow", json!({}));
    h.save("alice", std::slice::from_ref(&target)).await;
    h.store.create_button(JobButton::new("slow", vec![ct("dcim.slow")], "Go", job("Slow").as_str())).await.unwrap();
    let root = jobhooks_model::User::superuser("root").unwrap();

    // A run that hangs past the deadline is stopped and given back.
    let started = STARTED.notified();
    let run = h.dispatcher.press(&root, "slow", target.reference()).await.unwrap();
    started.await;
    let (dir, store) = {
        let report = h.dispatcher.shutdown(Duration::from_millis(100)).await;
        assert_eq!(report.abandoned, 1);
        (h.dir, h.store)
    };
    assert_eq!(store.get_result(run).await.unwrap().unwrap().status, JobStatus::Pending);

    // After a restart it runs again; this time it finishes within the shutdown deadline.
    SLOW_HANGS.store(false, Ordering::SeqCst);
    let started = STARTED.notified();
    let h = Harness::start_on(dir, store, config).await;
    started.await;
    let stopping = tokio::spawn(h.dispatcher.shutdown(Duration::from_secs(3600)));
    RELEASE.notify_one();
    assert_eq!(stopping.await.unwrap().abandoned, 0);
    let result = h.store.get_result(run).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Success);
    assert_eq!(result.attempts, 2);
    assert!(log_lines(&result).contains(&"info released".to_owned()));
}

#[tokio::test]
async fn a_missing_change_fails_the_run_saying_which() {
    let h = Harness::start(DispatcherConfig::default()).await;
    let run = h
        .store
        .enqueue(&job("Quiet"), None, JobInputs::Hook { object_change: jobhooks_model::ChangeId(999), hook: None })
        .await
        .unwrap();
    h.dispatcher.drain().await.unwrap();
    let result = h.store.get_result(run).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Failure);
    assert_eq!(log_lines(&result), ["info Running job", "failure ObjectChange 999 does not exist"]);
}

static LIMITED_RUNNING: AtomicUsize = AtomicUsize::new(0);
static LIMITED_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Tracks how many of its runs run at once.
#[derive(Default)]
struct Limited;

#[async_trait]
impl JobHookReceiver for Limited {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        let now = LIMITED_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        LIMITED_PEAK.fetch_max(now, Ordering::SeqCst);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        LIMITED_RUNNING.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

register_job_hook_receiver!(Limited);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_job_limit_caps_concurrent_runs_of_a_job() {
    let h = Harness::start(DispatcherConfig::default().workers(6).per_job_limit(Some(2))).await;
    hook_on(&h, "limited", "dcim.limited", "Limited").await;
    let objects: Vec<Object> = (0..12).map(|i| object("dcim.limited", &i.to_string(), "x", json!({}))).collect();
    h.save("alice", &objects).await;
    let results = h.results_of(&job("Limited")).await;
    assert_eq!(results.len(), 12);
    assert!(results.iter().all(|r| r.status == JobStatus::Success));
    let peak = LIMITED_PEAK.load(Ordering::SeqCst);
    assert!((1..=2).contains(&peak), "at most 2 runs of the job at once, saw {peak}");
}

#[tokio::test]
async fn a_batch_gives_back_the_runs_its_claim_would_not_cover() {
    let h = Harness::start(DispatcherConfig::default()).await;
    hook_on(&h, "quiet", "dcim.batched", "Quiet").await;
    let (dir, store) = h.stop().await;
    let targets: Vec<Object> =
        (0..4).map(|i| object("dcim.batched", &i.to_string(), "batched", json!({ "i": i }))).collect();
    let mut session =
        store.session(jobhooks_model::ChangeContext::new(jobhooks_model::ChangeContextKind::Web, Some("a".into()), ""));
    for target in targets {
        session.save(target).await.unwrap();
    }
    session.commit().await.unwrap();

    // A receiver may take longer than a claim lasts: after the first run of a batch, the claims
    // of the others no longer cover a run, so they go back to the queue instead of starting.
    let config = DispatcherConfig::default()
        .workers(1)
        .lease_batch(4)
        .lease(Duration::from_secs(30))
        .run_timeout(Duration::from_secs(60));
    let registry = jobhooks_register::Registry::from_linked().unwrap();
    let dispatcher = jobhooks_dispatch::Dispatcher::start(store.clone(), registry, config).await.unwrap();
    dispatcher.drain().await.unwrap();

    let stats = dispatcher.stats().await.unwrap();
    assert_eq!((stats.succeeded, stats.given_back), (4, 3 + 2 + 1), "batches of 4, 3, 2 and 1 runs each ran one");
    let results = store.list_results(&Default::default()).await.unwrap();
    assert!(results.iter().all(|r| r.status == JobStatus::Success && r.attempts == 1), "{results:?}");
    drop(dir);
}
