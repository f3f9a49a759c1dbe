//! What the cases share: the jobs they enable, the objects they change, and small steps.

use std::time::Duration;

use jobhooks_model::ports::{CommitReceipt, Completion, Lease, ObjectWrites, Outcome, Storage};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobHook, JobInputs, JobKind, JobResult, JobSpec,
    Object, ObjectRef, OffsetDateTime, RunId, SyncMode, json,
};

/// The job hook receiver every case's hooks run.
pub const HOOK_JOB: &str = "conformance::HookJob";
/// The job button receiver every case's presses run.
pub const BUTTON_JOB: &str = "conformance::ButtonJob";
/// How long the cases' claims last.
pub const LEASE: Duration = Duration::from_secs(30);

pub(crate) fn spec(class_path: &str, kind: JobKind) -> JobSpec {
    JobSpec {
        class_path: class_path.into(),
        name: class_path.into(),
        description: String::new(),
        kind,
        hidden: true,
        former_class_paths: vec![],
    }
}

/// Installs and enables [`HOOK_JOB`] and [`BUTTON_JOB`].
pub(crate) async fn ready<S: Storage>(store: &S) {
    let linked = [spec(HOOK_JOB, JobKind::JobHookReceiver), spec(BUTTON_JOB, JobKind::JobButtonReceiver)];
    store.sync_jobs(&linked, SyncMode::Full).await.expect("the jobs sync");
    store.set_job_enabled(HOOK_JOB, true).await.expect("the hook job exists");
    store.set_job_enabled(BUTTON_JOB, true).await.expect("the button job exists");
}

/// [`ready`], with a hook `h` on device creates and updates.
pub(crate) async fn hooked<S: Storage>(store: &S) {
    ready(store).await;
    store.create_hook(hook("h", &["dcim.device"], &[Action::Create, Action::Update])).await.expect("the hook is valid");
}

pub(crate) fn ct(name: &str) -> ContentType {
    ContentType::new(name).expect("a valid content type")
}

pub(crate) fn hook(name: &str, types: &[&str], actions: &[Action]) -> JobHook {
    JobHook::new(name, types.iter().map(|t| ct(t)).collect(), HOOK_JOB).on(actions.iter().copied())
}

pub(crate) fn reference(id: &str) -> ObjectRef {
    ObjectRef::new(ct("dcim.device"), id).expect("a valid id")
}

pub(crate) fn device(id: &str, serial: &str) -> Object {
    Object::new(reference(id), format!("dev-{id}"), json!({"name": format!("dev-{id}"), "serial": serial}))
        .expect("object data")
}

pub(crate) fn web(user: &str) -> ChangeContext {
    ChangeContext::new(ChangeContextKind::Web, Some(user.into()), "")
}

/// Commits saves of `objects` (creates, or updates of what the store holds) in one web context.
pub(crate) async fn save<S: Storage>(store: &S, objects: &[Object]) -> CommitReceipt {
    let mut changes = ChangeSet::default();
    for object in objects {
        let existing = store.get_object(object.reference()).await.expect("objects are readable");
        changes.save(object, existing.as_ref());
    }
    store.commit(&web("alice"), changes, ObjectWrites::Apply).await.expect("the commit succeeds")
}

/// Commits the delete of device `id`.
pub(crate) async fn delete<S: Storage>(store: &S, id: &str) -> CommitReceipt {
    let existing = store.get_object(&reference(id)).await.expect("objects are readable").expect("the device exists");
    let mut changes = ChangeSet::default();
    changes.delete(&existing);
    store.commit(&web("alice"), changes, ObjectWrites::Apply).await.expect("the commit succeeds")
}

/// Queues a press of the button job on device `id`.
pub(crate) async fn press<S: Storage>(store: &S, id: &str) -> RunId {
    let inputs = JobInputs::Button { object_pk: id.into(), object_model_name: "dcim.device".into() };
    store.enqueue(BUTTON_JOB, Some("alice".into()), inputs).await.expect("the job exists")
}

/// Leases every claimable run at `now`.
pub(crate) async fn lease_all<S: Storage>(store: &S, now: OffsetDateTime) -> Vec<(Lease, JobResult)> {
    store.lease_batch(now, LEASE, 100).await.expect("leasing works")
}

/// A completion of `lease` with `outcome` and one log entry.
pub(crate) fn completion(lease: &Lease, outcome: Outcome) -> Completion {
    let log = jobhooks_model::LogEntry {
        time: OffsetDateTime::now_utc(),
        level: jobhooks_model::LogLevel::Info,
        grouping: "main".into(),
        message: format!("ended {}", outcome.status()),
        object: None,
    };
    Completion { lease: lease.clone(), outcome, logs: vec![log] }
}

/// The runs of `claimed`, sorted.
pub(crate) fn runs(claimed: &[(Lease, JobResult)]) -> Vec<RunId> {
    let mut runs: Vec<RunId> = claimed.iter().map(|(lease, _)| lease.run).collect();
    runs.sort();
    runs
}
