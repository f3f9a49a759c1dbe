//! Unit tests of the sled store: every operation and every error.

use std::time::Duration;

use jobhooks_model::ports::{
    Catalog, ChangeStore, Completion, JobQueue, Lease, ObjectReader, ObjectWrites, Outcome, QueueDepth,
    QueueMaintenance, QueueReader, ResultFilter,
};

use jobhooks_model::{
    Action, CatalogError, ChangeContext, ChangeContextKind, ChangeId, ChangeSet, ContentType, JobButton,
    JobButtonPatch, JobHook, JobHookPatch, JobInputs, JobKind, JobResult, JobSpec, JobStatus, LogEntry, LogLevel,
    Object, ObjectRef, OffsetDateTime, PendingChange, QueueError, StorageFailure, User, json,
};
use tempfile::TempDir;

use crate::{Commit, FORMAT_VERSION, OpenError, Store, StoreConfig, StoreIo, keys};

pub(crate) const HOOK_JOB: &str = "app::jobs::Audit";
pub(crate) const BUTTON_JOB: &str = "app::jobs::Press";

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

/// A store with an enabled hook job and button job.
pub(crate) async fn ready_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .sync_jobs(
            &[spec(HOOK_JOB, JobKind::JobHookReceiver), spec(BUTTON_JOB, JobKind::JobButtonReceiver)],
            jobhooks_model::SyncMode::Full,
        )
        .await
        .unwrap();
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    store.set_job_enabled(BUTTON_JOB, true).await.unwrap();
    (dir, store)
}

/// A ready store with hook `h` on device creates and updates.
async fn device_hooked_store() -> (TempDir, Store) {
    let (dir, store) = ready_store().await;
    store.create_hook(hook("h", &["dcim.device"], &[Action::Create, Action::Update])).await.unwrap();
    (dir, store)
}

/// The store at `path` opened as raw sled, once the last handle's threads have let its lock go.
fn raw_sled(path: &std::path::Path) -> sled::Db {
    crate::open_db(path, &StoreConfig::default()).unwrap()
}

pub(crate) fn ct(name: &str) -> ContentType {
    ContentType::new(name).unwrap()
}

pub(crate) fn device(id: &str, serial: &str) -> Object {
    Object::new(
        ObjectRef::new(ct("dcim.device"), id).unwrap(),
        format!("dev-{id}"),
        json!({"name": format!("dev-{id}"), "serial": serial}),
    )
    .unwrap()
}

pub(crate) fn web(user: &str) -> ChangeContext {
    ChangeContext::new(ChangeContextKind::Web, Some(user.into()), "")
}

/// The inputs of a button pressed on device `pk`.
fn pressed_on_device(pk: &str) -> JobInputs {
    JobInputs::Button { object_pk: pk.into(), object_model_name: "dcim.device".into() }
}

/// Queues a run of the button job on device `pk`, as nobody.
async fn press(store: &Store, pk: &str) -> jobhooks_model::RunId {
    store.enqueue(BUTTON_JOB, None, pressed_on_device(pk)).await.unwrap()
}

fn hook(name: &str, types: &[&str], actions: &[Action]) -> JobHook {
    JobHook::new(name, types.iter().map(|t| ct(t)).collect(), HOOK_JOB).on(actions.iter().copied())
}

async fn save(store: &Store, context: ChangeContext, objects: &[Object]) -> jobhooks_model::ports::CommitReceipt {
    let mut session = store.session(context);
    for object in objects {
        session.save(object.clone()).await.unwrap();
    }
    session.commit().await.unwrap()
}

#[tokio::test]
async fn format_version_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = raw_sled(dir.path());
        let tree = db.open_tree("jobhooks").unwrap();
        assert_eq!(tree.get(keys::FORMAT).unwrap().unwrap().as_ref(), FORMAT_VERSION.as_bytes());
        tree.insert(keys::FORMAT, &b"jobhooks-store/99"[..]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, OpenError::IncompatibleFormat { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("has format version jobhooks-store/99, but this jobhooks reads version jobhooks-store/4"),
        "{err}"
    );
}

#[tokio::test]
async fn a_second_open_is_told_the_store_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let lock_wait = Duration::from_millis(20);
    let asked = std::time::Instant::now();
    let err = Store::open_with(dir.path(), StoreConfig::default().lock_wait(lock_wait)).err().unwrap();
    assert!(asked.elapsed() >= lock_wait, "gave up before the lock wait was over");
    assert!(matches!(err, OpenError::Locked { holder: None, .. }), "{err}");
    assert!(err.to_string().contains("is in use by another process"), "{err}");

    first.announce_holder("jobhooks serve at http://127.0.0.1:8080/ (pid 7)").unwrap();
    let err = Store::open_with(dir.path(), StoreConfig::default().lock_wait(lock_wait)).err().unwrap();
    assert!(
        err.to_string().ends_with("is in use by another process: jobhooks serve at http://127.0.0.1:8080/ (pid 7)"),
        "{err}"
    );
    drop(first);
    let next = Store::open(dir.path()).unwrap();
    let err = Store::open_with(dir.path(), StoreConfig::default().lock_wait(lock_wait)).err().unwrap();
    assert!(matches!(err, OpenError::Locked { holder: None, .. }), "the last holder's words are gone: {err}");
    drop(next);
}

/// Defect found in acceptance testing: a mistyped `--db` naming a directory of other files was
/// initialised as a store, and files there named like sled's were overwritten.
#[test]
fn a_directory_of_other_files_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.csv"), "serial\nA1\n").unwrap();
    std::fs::write(dir.path().join("db"), "my own db file").unwrap();
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{} is not a jobhooks store", dir.path().display())), "{err}");
    let mut left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["db", "inventory.csv"], "nothing was created");
    assert_eq!(std::fs::read_to_string(dir.path().join("db")).unwrap(), "my own db file", "nothing was overwritten");

    let file = dir.path().join("inventory.csv");
    let err = Store::open(&file).err().unwrap();
    assert!(err.to_string().contains("it is a file, not a directory"), "{err}");

    // Another program's sled database is not a store either.
    let other = tempfile::tempdir().unwrap();
    {
        let db = sled::open(other.path()).unwrap();
        db.insert(b"theirs", &b"1"[..]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(other.path()).err().unwrap();
    assert!(err.to_string().contains("a sled database of another program"), "{err}");
    assert!(!other.path().join(crate::open::LOCK_FILE).exists(), "the store's lock file is not left behind");

    // A new or empty directory becomes a store, and opens again as one.
    let empty = tempfile::tempdir().unwrap();
    drop(Store::open(empty.path()).unwrap());
    drop(Store::open(empty.path()).unwrap());
    drop(Store::open(empty.path().join("new")).unwrap());
}

/// Defect found in acceptance testing: after a crash, the runs the killed process had leased
/// waited out their lease (300 s by default) before running again.
#[tokio::test]
async fn leases_found_at_open_are_released_at_once() {
    let (dir, store) = ready_store().await;
    {
        press(&store, "1").await;
        let (_lease, result) =
            store.lease_next(OffsetDateTime::now_utc(), Duration::from_secs(300)).await.unwrap().unwrap();
        assert_eq!(result.attempts, 1);
        assert_eq!(store.depth().await.unwrap().leased, 1);
        // The process dies holding the lease.
        drop(store);
    }
    let store = Store::open(dir.path()).unwrap();
    let depth = store.depth().await.unwrap();
    assert_eq!((depth.pending, depth.leased), (1, 0), "{depth:?}");
    let (_, result) = store
        .lease_next(OffsetDateTime::now_utc(), Duration::from_secs(300))
        .await
        .unwrap()
        .expect("the run is ready again at once, not when its lease lapses");
    assert_eq!(result.attempts, 2, "the lost attempt counts");
    assert!(result.logs.iter().any(|entry| entry.message.contains("lapsed before its outcome was recorded")));
}

/// A receiver that takes the process down every time still reaches its dead letter: each claim
/// counts as an attempt across the crash, though a claim writes nothing to its run's entry.
#[tokio::test]
async fn every_claim_a_crash_ends_counts_as_an_attempt() {
    let (dir, store) = ready_store().await;
    press(&store, "1").await;
    drop(store);
    for attempt in 1..=3 {
        let store = Store::open(dir.path()).unwrap();
        let (lease, result) =
            store.lease_next(OffsetDateTime::now_utc(), Duration::from_secs(300)).await.unwrap().unwrap();
        assert_eq!(result.attempts, attempt, "the claims before this one each counted");
        assert_eq!(store.get_result(lease.run).await.unwrap().unwrap().status, JobStatus::Started);
        // The process dies running the receiver.
        drop(store);
    }
    let store = Store::open(dir.path()).unwrap();
    let (_, result) = store.lease_next(OffsetDateTime::now_utc(), Duration::from_secs(300)).await.unwrap().unwrap();
    assert_eq!(result.attempts, 4);
    let lapses = result.logs.iter().filter(|entry| entry.message.contains("lapsed before its outcome")).count();
    assert_eq!(lapses, 3, "each lost claim is in the run's log");
}

/// A claim given back was no attempt, nor does a crash after it make it one; a batch whose runs
/// all completed leaves no attempt journal behind.
#[tokio::test]
async fn a_claim_given_back_or_completed_leaves_its_attempt_journal() {
    let (dir, store) = ready_store().await;
    let first = press(&store, "1").await;
    let second = press(&store, "2").await;
    let third = press(&store, "3").await;
    let leased = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(300), 3).await.unwrap();
    assert_eq!(leased.len(), 3);
    let journals = |store: &Store| store.inner.tree.scan_prefix(keys::ATTEMPTS).count();
    assert_eq!(journals(&store), 1, "one journal for the lease batch");
    let lease = |run| leased.iter().find(|(lease, _)| lease.run == run).unwrap().0.clone();
    store.give_back(&lease(first)).await.unwrap();
    store.complete(Completion { lease: lease(second), outcome: Outcome::Failed, logs: vec![] }).await.unwrap();
    assert_eq!(journals(&store), 1, "the third claim is still unsettled");
    // The process dies holding the third claim.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(journals(&store), 0, "opening removes the journals it found");
    let attempts = |result: Option<JobResult>| result.map(|result| (result.status, result.attempts));
    assert_eq!(attempts(store.get_result(first).await.unwrap()), Some((JobStatus::Pending, 0)));
    assert_eq!(attempts(store.get_result(second).await.unwrap()), Some((JobStatus::Failure, 1)));
    assert_eq!(attempts(store.get_result(third).await.unwrap()), Some((JobStatus::Pending, 1)));
    let leased = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(300), 3).await.unwrap();
    let completions = leased
        .into_iter()
        .map(|(lease, _)| Completion { lease, outcome: Outcome::Succeeded { writes: None }, logs: vec![] })
        .collect();
    store.complete_batch(completions).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(journals(&store), 0, "a batch completed together leaves no journal");
}

/// A store of format 3 whose process died holding a claim (written into the run's entry there)
/// opens migrated: the claim ended, counted and noted as in format 3, and the format key says 4.
#[tokio::test]
async fn a_format_3_store_with_a_claim_opens_migrated() {
    let (dir, store) = ready_store().await;
    let run = press(&store, "1").await;
    drop(store);
    {
        let db = raw_sled(dir.path());
        let tree = db.open_tree("jobhooks").unwrap();
        let entry = crate::records::QueueEntry::decode(&tree.get(keys::ready(run)).unwrap().unwrap()).unwrap();
        let claim = crate::records::Claim { deadline: i64::MAX, started: 0 };
        let claimed = crate::records::QueueEntry { leases: 1, attempts: 1, lease: Some(claim), ..entry };
        tree.insert(keys::ready(run), claimed.encode()).unwrap();
        tree.insert(keys::FORMAT, &b"jobhooks-store/3"[..]).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.inner.tree.get(keys::FORMAT).unwrap().unwrap().as_ref(), FORMAT_VERSION.as_bytes());
    let depth = store.depth().await.unwrap();
    assert_eq!((depth.pending, depth.leased), (1, 0), "{depth:?}");
    let entry = crate::records::QueueEntry::decode(&store.inner.tree.get(keys::ready(run)).unwrap().unwrap()).unwrap();
    assert_eq!((entry.lease, entry.attempts), (None, 1));
    let (_, result) = store.lease_next(OffsetDateTime::now_utc(), Duration::from_secs(300)).await.unwrap().unwrap();
    assert_eq!(result.attempts, 2, "the format-3 claim counted");
    assert!(result.logs.iter().any(|entry| entry.message.contains("lapsed before its outcome was recorded")));
}

/// Defect found by killing opening processes: a process killed while sled wrote its snapshot left
/// `snap.*.generating` behind, and the store never opened again (sled #1527: `Corruption`).
#[tokio::test]
async fn a_snapshot_left_half_written_by_a_killed_process_does_not_stop_the_store_opening() {
    let (dir, store) = ready_store().await;
    let run = press(&store, "1").await;
    drop(store);
    // sled writes a snapshot when it opens a store that has a log.
    drop(Store::open(dir.path()).unwrap());
    let snapshot = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("snap."))
        .expect("sled wrote a snapshot");
    // A later snapshot, cut short: what sled leaves when killed while writing one.
    let lsn = u64::from_str_radix(&snapshot["snap.".len()..], 16).unwrap() + 0x100;
    let unfinished = dir.path().join(format!("snap.{lsn:016X}.generating"));
    std::fs::write(&unfinished, [0x5a; 40]).unwrap();
    let store = Store::open(dir.path()).expect("the store opens");
    assert!(store.get_result(run).await.unwrap().is_some(), "and holds what it held");
    assert!(!unfinished.exists(), "the half-written snapshot is gone");
}

#[test]
fn an_open_gets_the_store_once_its_holder_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let (waiting, second_started) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    let second = std::thread::spawn(move || {
        waiting.send(()).unwrap();
        Store::open_with(path, StoreConfig::default().lock_wait(Duration::from_secs(60)))
    });
    second_started.recv().unwrap();
    drop(first);
    drop(second.join().unwrap().unwrap());
    // sled lets go of the lock a moment after the last handle is dropped: reopening at once works.
    for _ in 0..20 {
        drop(Store::open(dir.path()).unwrap());
    }
}

#[tokio::test]
async fn sync_installs_new_jobs_disabled_and_uninstalls_missing_ones_disabling_their_hooks_and_buttons() {
    let (dir, store) = ready_store().await;
    let job = store.get_job(HOOK_JOB).await.unwrap().unwrap();
    assert!(job.installed && job.enabled && job.hidden);
    store.create_hook(hook("h", &["dcim.device"], &[Action::Create])).await.unwrap();
    store.create_button(JobButton::new("b", vec![ct("dcim.device")], "Go", BUTTON_JOB)).await.unwrap();

    let report = store
        .sync_jobs(&[spec("app::jobs::New", JobKind::JobHookReceiver)], jobhooks_model::SyncMode::Full)
        .await
        .unwrap();
    assert_eq!(report.added, ["app::jobs::New"]);
    assert_eq!(report.uninstalled, [HOOK_JOB, BUTTON_JOB]);
    assert_eq!(report.disabled_hooks, ["h"]);
    assert_eq!(report.disabled_buttons, ["b"]);
    let new = store.get_job("app::jobs::New").await.unwrap().unwrap();
    assert!(new.installed && !new.enabled, "a new job starts disabled");
    assert!(!store.get_hook("h").await.unwrap().unwrap().enabled);
    assert!(!store.get_button("b").await.unwrap().unwrap().enabled);

    // Everything above is on disk, not only in the cache.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.get_job(HOOK_JOB).await.unwrap().unwrap().installed);
    assert!(!store.get_hook("h").await.unwrap().unwrap().enabled);
    let report =
        store.sync_jobs(&[spec(HOOK_JOB, JobKind::JobHookReceiver)], jobhooks_model::SyncMode::Full).await.unwrap();
    assert_eq!(report.reinstalled, [HOOK_JOB]);
}

#[tokio::test]
async fn hooks_are_validated_with_the_exact_messages() {
    let (_dir, store) = ready_store().await;
    store.create_hook(hook("first", &["dcim.device"], &[Action::Create])).await.unwrap();

    let err = store.create_hook(hook("second", &["dcim.device"], &[Action::Create])).await.unwrap_err();
    let CatalogError::Validation(errors) = &err else { panic!("{err}") };
    assert_eq!(
        errors.field("type_create"),
        [format!("A job hook already exists for create on dcim.device to job {HOOK_JOB}")]
    );

    let err = store.create_hook(hook("none", &["dcim.device"], &[])).await.unwrap_err();
    assert!(err.to_string().contains("You must select at least one type: create, update, and/or delete."), "{err}");

    let err = store.create_hook(hook("first", &["dcim.rack"], &[Action::Create])).await.unwrap_err();
    assert!(err.to_string().contains("A job hook named first already exists"), "{err}");

    let unknown = JobHook { job: "app::jobs::Nope".into(), ..hook("x", &["dcim.rack"], &[Action::Create]) };
    assert!(store.create_hook(unknown).await.unwrap_err().to_string().contains("Job app::jobs::Nope does not exist"));

    store.set_job_enabled(HOOK_JOB, false).await.unwrap();
    let err = store.create_hook(hook("third", &["dcim.rack"], &[Action::Create])).await.unwrap_err();
    assert!(err.to_string().contains("enabled: The selected Job is not installed and enabled"), "{err}");
    // Nothing invalid was written.
    assert_eq!(store.list_hooks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn hook_updates_fill_from_the_stored_hook_and_can_rename() {
    let (_dir, store) = ready_store().await;
    store.create_hook(hook("a", &["dcim.device"], &[Action::Create])).await.unwrap();
    store.create_hook(hook("b", &["dcim.rack"], &[Action::Create])).await.unwrap();
    let patch = JobHookPatch { content_types: Some(vec![ct("dcim.device")]), ..Default::default() };
    let err = store.update_hook("b", patch).await.unwrap_err();
    assert!(err.to_string().contains("A job hook already exists for create on dcim.device"), "{err}");
    let updated = store.update_hook("a", JobHookPatch { type_update: Some(true), ..Default::default() }).await.unwrap();
    assert!(updated.type_create && updated.type_update);
    let renamed = store.update_hook("a", JobHookPatch { name: Some("z".into()), ..Default::default() }).await.unwrap();
    assert_eq!(renamed.name, "z");
    assert!(store.get_hook("a").await.unwrap().is_none());
    assert_eq!(store.delete_hook("z").await.unwrap().name, "z");
    assert_eq!(store.delete_hook("z").await.unwrap_err().to_string(), "job hook `z` does not exist");
    assert!(matches!(
        store.update_hook("z", JobHookPatch::default()).await.unwrap_err(),
        CatalogError::NotFound { kind: "job hook", .. }
    ));
}

#[tokio::test]
async fn buttons_crud_and_validation() {
    let (_dir, store) = ready_store().await;
    let button = JobButton::new("b", vec![ct("dcim.location")], "Run", BUTTON_JOB);
    store.create_button(button.clone()).await.unwrap();
    assert!(store.create_button(button).await.unwrap_err().to_string().contains("A job button named b already exists"));
    let wrong_kind = JobButton::new("c", vec![ct("dcim.location")], "Run", HOOK_JOB);
    assert!(
        store
            .create_button(wrong_kind)
            .await
            .unwrap_err()
            .to_string()
            .contains("is a job hook receiver, not a job button receiver")
    );
    let long = JobButtonPatch { text: Some("x".repeat(501)), ..Default::default() };
    assert!(store.update_button("b", long).await.unwrap_err().to_string().contains("at most 500"));
    let updated = store.update_button("b", JobButtonPatch { weight: Some(5), ..Default::default() }).await.unwrap();
    assert_eq!((updated.weight, updated.text.as_str()), (5, "Run"));
    assert_eq!(store.list_buttons().await.unwrap(), [updated]);
    store.delete_button("b").await.unwrap();
    assert!(store.get_button("b").await.unwrap().is_none());
}

#[tokio::test]
async fn users_round_trip() {
    let (_dir, store) = ready_store().await;
    let alice = User::new("alice").unwrap().with_permission(jobhooks_model::Permission::new("dcim.add_location"));
    store.put_user(alice.clone()).await.unwrap();
    assert_eq!(store.get_user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.list_users().await.unwrap(), [alice]);
    let bad = User { username: String::new(), is_superuser: false, permissions: vec![] };
    assert!(matches!(store.put_user(bad).await.unwrap_err(), CatalogError::Invalid(_)));
}

#[test]
fn catalog_reads_do_not_wait_for_the_writer_lock() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (_dir, store) = runtime.block_on(ready_store());
    runtime.block_on(store.put_user(User::new("alice").unwrap())).unwrap();
    // Held here as a commit group's flush holds it while sled applies the group.
    let writer = store.writer();
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    let reader = store.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let read = runtime.block_on(async { (reader.get_job(HOOK_JOB).await, reader.get_user("alice").await) });
        let _ = read_tx.send(read);
    });
    // A read that took the writer lock would never answer while it is held here.
    let (job, user) = read_rx.recv_timeout(Duration::from_secs(30)).expect("the reads waited for the writer lock");
    drop(writer);
    assert!(job.unwrap().is_some_and(|job| job.enabled));
    assert_eq!(user.unwrap().map(|user| user.username), Some("alice".to_owned()));
}

#[tokio::test]
async fn a_commit_writes_objects_changes_with_prechange_and_queues_matching_hooks() {
    let (_dir, store) = ready_store().await;
    store.create_hook(hook("on-create", &["dcim.device"], &[Action::Create, Action::Update])).await.unwrap();
    store
        .create_hook(JobHook { job: HOOK_JOB.into(), ..hook("racks", &["dcim.rack"], &[Action::Create]) })
        .await
        .unwrap();

    let first = save(&store, web("alice"), &[device("1", "A")]).await;
    assert_eq!((first.changes.len(), first.runs.len()), (1, 1));
    let second = save(&store, web("bob"), &[device("1", "B")]).await;
    let change = store.get_change(second.changes[0]).await.unwrap().unwrap();
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.prechange, Some(json!({"name": "dev-1", "serial": "A"})));
    assert_eq!(change.get_snapshots().differences.added, Some(json!({"serial": "B"})));
    assert_eq!(change.to_string(), "dcim.device dev-1 updated by bob");

    let result = store.get_result(second.runs[0]).await.unwrap().unwrap();
    assert_eq!(result.status, JobStatus::Pending);
    assert_eq!(result.job, HOOK_JOB);
    assert_eq!(result.user.as_deref(), Some("bob"), "the run runs as the change's user");
    assert_eq!(result.inputs, JobInputs::Hook { object_change: change.id, hook: None });

    assert_eq!(store.get_object(device("1", "").reference()).await.unwrap(), Some(device("1", "B")));
    let history = store.changes_for_object(device("1", "").reference(), 10).await.unwrap();
    assert_eq!(history.iter().map(|c| c.action).collect::<Vec<_>>(), [Action::Update, Action::Create], "newest first");
    assert_eq!(store.changes_for_request(change.request_id).await.unwrap(), std::slice::from_ref(&change));
    let all = store
        .changes_between(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::now_utc() + Duration::from_secs(1), 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let none = store.changes_between(OffsetDateTime::UNIX_EPOCH, change.time, 10).await.unwrap();
    assert_eq!(none.len(), 1, "the range is half-open");
    assert_eq!(store.list_objects(&ct("dcim.device")).await.unwrap(), [device("1", "B")]);
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 2, leased: 0, dead: 0 });
}

#[tokio::test]
async fn deletes_and_create_then_delete_fire_for_both() {
    let (_dir, store) = ready_store().await;
    store.create_hook(hook("all", &["dcim.device"], &[Action::Create, Action::Update, Action::Delete])).await.unwrap();
    let mut session = store.session(web("alice"));
    session.save(device("9", "A")).await.unwrap();
    session.delete(device("9", "").reference()).await.unwrap();
    let receipt = session.commit().await.unwrap();
    assert_eq!((receipt.changes.len(), receipt.runs.len()), (2, 2));
    let delete = store.get_change(receipt.changes[1]).await.unwrap().unwrap();
    assert_eq!(delete.action, Action::Delete);
    assert_eq!(
        delete.prechange,
        Some(json!({"name": "dev-9", "serial": "A"})),
        "the create in the same commit is its prechange"
    );
    assert_eq!(store.get_object(device("9", "").reference()).await.unwrap(), None);
}

#[tokio::test]
async fn job_hook_changes_disabled_hooks_and_non_runnable_jobs_queue_nothing() {
    let (_dir, store) = device_hooked_store().await;
    let by_hook = ChangeContext::new(ChangeContextKind::JobHook, Some("alice".into()), HOOK_JOB);
    let receipt = save(&store, by_hook, &[device("1", "A")]).await;
    assert_eq!((receipt.changes.len(), receipt.runs.len()), (1, 0));
    let change = store.get_change(receipt.changes[0]).await.unwrap().unwrap();
    assert_eq!((change.change_context, change.change_context_detail.as_str()), (ChangeContextKind::JobHook, HOOK_JOB));

    let by_job = ChangeContext::new(ChangeContextKind::Job, Some("alice".into()), BUTTON_JOB);
    assert_eq!(save(&store, by_job, &[device("1", "B")]).await.runs.len(), 1, "changes by other jobs trigger hooks");

    store.set_job_enabled(HOOK_JOB, false).await.unwrap();
    assert_eq!(save(&store, web("alice"), &[device("1", "C")]).await.runs.len(), 0);
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    store.update_hook("h", JobHookPatch { enabled: Some(false), ..Default::default() }).await.unwrap();
    assert_eq!(save(&store, web("alice"), &[device("1", "D")]).await.runs.len(), 0);
    assert_eq!(
        save(
            &store,
            web("alice"),
            &[Object::new(ObjectRef::new(ct("dcim.rack"), "1").unwrap(), "r", json!({})).unwrap()]
        )
        .await
        .runs
        .len(),
        0
    );
}

#[tokio::test]
async fn record_only_commits_keep_objects_out_of_the_repository() {
    let (_dir, store) = ready_store().await;
    store.create_hook(hook("h", &["dcim.device"], &[Action::Update])).await.unwrap();
    let mut changes = ChangeSet::default();
    changes.record(
        PendingChange::new(Action::Update, &device("5", "B"))
            .with_pre_data(json!({"serial": "A"}).as_object().unwrap().clone()),
    );
    let receipt = store.commit(&web("alice"), changes, ObjectWrites::RecordOnly).await.unwrap();
    assert_eq!(receipt.runs.len(), 1);
    assert_eq!(store.get_object(device("5", "").reference()).await.unwrap(), None);
    let change = store.get_change(receipt.changes[0]).await.unwrap().unwrap();
    assert_eq!(change.get_snapshots().differences.removed, Some(json!({"serial": "A", "name": null})));

    // A change recorded only leaves the repository as the last applied change left it.
    save(&store, web("alice"), &[device("6", "A"), device("7", "A"), device("10", "A")]).await;
    let mut changes = ChangeSet::default();
    changes.record(PendingChange::new(Action::Update, &device("6", "B")));
    changes.record(PendingChange::new(Action::Delete, &device("7", "A")));
    store.commit(&web("alice"), changes, ObjectWrites::RecordOnly).await.unwrap();
    let mut session = store.session(web("alice"));
    session.delete(device("10", "").reference()).await.unwrap();
    session.commit().await.unwrap();
    assert_eq!(store.get_object(device("6", "").reference()).await.unwrap(), Some(device("6", "A")));
    assert_eq!(store.get_object(device("7", "").reference()).await.unwrap(), Some(device("7", "A")));
    assert_eq!(store.get_object(device("10", "").reference()).await.unwrap(), None, "an applied delete");
    let listed = store.list_objects(&ct("dcim.device")).await.unwrap();
    assert_eq!(listed, [device("6", "A"), device("7", "A")], "ids sort as text; 5 was never applied, 10 is gone");
}

fn completion(lease: &Lease, outcome: Outcome) -> Completion {
    let log = LogEntry {
        time: OffsetDateTime::now_utc(),
        level: LogLevel::Info,
        grouping: "main".into(),
        message: format!("ended {}", outcome.status()),
        object: None,
    };
    Completion { lease: lease.clone(), outcome, logs: vec![log] }
}

async fn lease(store: &Store) -> Option<(Lease, JobResult)> {
    store.lease_next(OffsetDateTime::now_utc(), Duration::from_secs(30)).await.unwrap()
}

#[tokio::test]
async fn the_queue_leases_oldest_first_and_completes_with_writes() {
    let (_dir, store) = ready_store().await;
    let first = store.enqueue(BUTTON_JOB, Some("alice".into()), pressed_on_device("1")).await.unwrap();
    let second = store.enqueue(BUTTON_JOB, Some("alice".into()), pressed_on_device("2")).await.unwrap();
    assert!(matches!(
        store.enqueue("app::jobs::Nope", None, pressed_on_device("1")).await.unwrap_err(),
        QueueError::NotFound { kind: "job", .. }
    ));

    let (lease1, result1) = lease(&store).await.unwrap();
    assert_eq!((lease1.run, result1.status, result1.attempts), (first, JobStatus::Started, 1));
    let (lease2, _) = lease(&store).await.unwrap();
    assert_eq!(lease2.run, second);
    assert!(lease(&store).await.is_none());
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 0, leased: 2, dead: 0 });

    let context = ChangeContext::new(ChangeContextKind::Job, Some("alice".into()), BUTTON_JOB);
    let mut writes = ChangeSet::default();
    writes.save(&device("1", "X"), None);
    let receipt =
        store.complete(completion(&lease1, Outcome::Succeeded { writes: Some((context, writes)) })).await.unwrap();
    assert_eq!(receipt.changes.len(), 1);
    assert_eq!(store.get_object(device("1", "").reference()).await.unwrap(), Some(device("1", "X")));
    let done = store.get_result(first).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Success);
    assert!(done.completed.is_some());
    assert_eq!(done.logs[0].message, "ended SUCCESS");

    // A failed attempt's writes are discarded.
    let mut writes = ChangeSet::default();
    writes.save(&device("2", "Y"), None);
    let context = ChangeContext::new(ChangeContextKind::Job, Some("alice".into()), BUTTON_JOB);
    store
        .complete(Completion {
            outcome: Outcome::Failed,
            ..completion(&lease2, Outcome::Succeeded { writes: Some((context, writes)) })
        })
        .await
        .unwrap();
    assert_eq!(store.get_object(device("2", "").reference()).await.unwrap(), None);

    let err = store.complete(completion(&lease2, Outcome::Succeeded { writes: None })).await.unwrap_err();
    assert_eq!(err, QueueError::LeaseLost { run: second.0 });
    assert_eq!(store.depth().await.unwrap(), QueueDepth::default());
    let failures = store.list_results(&ResultFilter::default().status(JobStatus::Failure)).await.unwrap();
    assert_eq!(failures.iter().map(|r| r.id).collect::<Vec<_>>(), [second]);
    let by_job = store.list_results(&ResultFilter::default().job(BUTTON_JOB).limit(1)).await.unwrap();
    assert_eq!(by_job.iter().map(|r| r.id).collect::<Vec<_>>(), [second], "newest first");
}

#[tokio::test]
async fn retries_dead_letters_replays_and_expired_leases() {
    let (_dir, store) = ready_store().await;
    let run = press(&store, "1").await;
    let (first, _) = lease(&store).await.unwrap();
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    store.complete(completion(&first, Outcome::RetryAt(later))).await.unwrap();
    assert!(lease(&store).await.is_none(), "a retry is not due before its time");
    let (second, result) = store.lease_next(later, Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!((result.attempts, second.token), (2, 2));
    store.complete(completion(&second, Outcome::DeadLettered)).await.unwrap();
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 0, leased: 0, dead: 1 });
    assert_eq!(store.get_result(run).await.unwrap().unwrap().logs.len(), 2, "logs accumulate across attempts");

    store.replay(run).await.unwrap();
    assert!(store.replay(run).await.unwrap_err().to_string().contains("is not dead-lettered"));
    let (third, result) = lease(&store).await.unwrap();
    assert_eq!((result.attempts, third.token), (1, 3), "a replay starts a new attempt series with a new lease");

    // The lease lapses: another worker takes the run over, and the first worker's outcome is refused.
    let after_deadline = third.deadline + Duration::from_secs(1);
    let (taken, _) = store.lease_next(after_deadline, Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(taken.run, run);
    assert_eq!(
        store.complete(completion(&third, Outcome::Succeeded { writes: None })).await.unwrap_err(),
        QueueError::LeaseLost { run: run.0 }
    );
    assert_eq!(store.release_expired(taken.deadline + Duration::from_secs(1)).await.unwrap(), 1);
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 1, leased: 0, dead: 0 });
    assert_eq!(store.get_result(run).await.unwrap().unwrap().status, JobStatus::Pending);
    let err = store.complete(completion(&taken, Outcome::Succeeded { writes: None })).await.unwrap_err();
    assert!(matches!(err, QueueError::LeaseLost { .. }), "{err}");
}

#[tokio::test]
async fn a_corrupt_record_is_a_clear_error_not_a_panic() {
    let (_dir, store) = ready_store().await;
    let receipt = save(&store, web("alice"), &[device("1", "A")]).await;
    store.overwrite_for_tests(keys::change(receipt.changes[0]), b"{not json");
    let err = store.get_change(receipt.changes[0]).await.unwrap_err();
    assert!(matches!(err, StorageFailure::Corrupt { kind: "change", .. }), "{err}");
    assert!(err.to_string().contains("restore the store from a backup"), "{err}");
    let err = store.get_object(device("1", "").reference()).await.unwrap_err();
    assert!(matches!(err, StorageFailure::Corrupt { .. }), "{err}");
    // A commit does not read earlier changes, but the next change's prechange is the corrupt
    // record's data: reading that change is the same clear error.
    let mut session = store.session(web("alice"));
    session.record(PendingChange::new(Action::Update, &device("1", "B")));
    let next = session.commit().await.unwrap().changes[0];
    let err = store.get_change(next).await.unwrap_err();
    assert!(matches!(err, StorageFailure::Corrupt { kind: "change", .. }), "{err}");
}

#[tokio::test]
async fn a_corrupt_catalog_record_fails_the_open_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = raw_sled(dir.path());
        db.open_tree("jobhooks").unwrap().insert(keys::named(keys::HOOK, "h"), &b"[]"[..]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, OpenError::Read { .. }), "{err}");
    let cause = std::error::Error::source(&err).expect("the record's error is kept as the source").to_string();
    assert!(cause.starts_with("corrupt job hook record `hok/h`"), "{cause}");
}

#[tokio::test]
async fn runs_of_one_object_start_one_at_a_time_in_order() {
    let (_dir, store) = ready_store().await;
    // A line is found through the object's latest change: the objects exist.
    save(&store, web("alice"), &[device("1", "A"), device("2", "A")]).await;
    let first = press(&store, "1").await;
    let second = press(&store, "1").await;
    let other = press(&store, "2").await;
    let (lease1, _) = lease(&store).await.unwrap();
    assert_eq!(lease1.run, first);
    let (lease_other, _) = lease(&store).await.unwrap();
    assert_eq!(lease_other.run, other, "the second run of object 1 waits for the first");
    assert!(lease(&store).await.is_none());
    let seen = store.work_generation();
    store.complete(completion(&lease1, Outcome::Succeeded { writes: None })).await.unwrap();
    assert!(store.work_generation() > seen, "a completion signals work");
    let (lease2, _) = lease(&store).await.unwrap();
    assert_eq!(lease2.run, second);

    // A released run is pending again at once, keeping its turn; its claim counts as an attempt.
    store.release(&lease2).await.unwrap();
    let released = store.get_result(second).await.unwrap().unwrap();
    assert_eq!((released.status, released.attempts), (JobStatus::Pending, 1));
    // A run given back unstarted is pending too, and its claim does not count.
    let (lease3, _) = lease(&store).await.unwrap();
    assert_eq!(lease3.run, second);
    store.give_back(&lease3).await.unwrap();
    let given_back = store.get_result(second).await.unwrap().unwrap();
    assert_eq!((given_back.status, given_back.attempts), (JobStatus::Pending, 1));
    assert_eq!(lease(&store).await.unwrap().0.run, second);
    assert!(
        matches!(store.give_back(&lease3).await, Err(QueueError::LeaseLost { .. })),
        "an old lease cannot give back"
    );
    assert!(matches!(store.release(&lease2).await, Err(QueueError::LeaseLost { .. })), "an old lease cannot release");
}

#[tokio::test]
async fn waiting_for_work_wakes_on_a_commit() {
    let (_dir, store) = ready_store().await;
    store.create_hook(hook("h", &["dcim.device"], &[Action::Create])).await.unwrap();
    let seen = store.work_generation();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.wait_for_work(seen, Duration::from_secs(3600)).await })
    };
    save(&store, web("alice"), &[device("1", "A")]).await;
    // Completes only because the commit signalled: the timeout is an hour.
    waiter.await.unwrap();
    assert!(store.work_generation() > seen);
}

#[tokio::test]
async fn pruning_removes_finished_results_and_old_changes_but_keeps_what_is_still_needed() {
    let (_dir, store) = device_hooked_store().await;
    let other = save(&store, web("alice"), &[device("2", "C")]).await;
    let first = save(&store, web("alice"), &[device("1", "A")]).await;
    let second = save(&store, web("alice"), &[device("1", "B")]).await;
    // Device 2's run is dead-lettered; device 1's first run finishes; its second stays pending.
    let (lease_other, _) = lease(&store).await.unwrap();
    assert_eq!(lease_other.run, other.runs[0]);
    store.complete(completion(&lease_other, Outcome::DeadLettered)).await.unwrap();
    let (lease_first, _) = lease(&store).await.unwrap();
    assert_eq!(lease_first.run, first.runs[0]);
    store.complete(completion(&lease_first, Outcome::Succeeded { writes: None })).await.unwrap();

    let nothing = jobhooks_model::ports::Retention::default();
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    assert_eq!(store.prune(&nothing, later).await.unwrap(), Default::default());

    let everything_old =
        jobhooks_model::ports::Retention { results_for: Some(Duration::ZERO), changes_for: Some(Duration::ZERO) };
    let report = store.prune(&everything_old, later).await.unwrap();
    assert_eq!(report.results, 1, "only the finished result goes; pending and dead-lettered stay");
    assert_eq!(report.changes, 1, "device 1's first change goes: superseded, its result gone");
    assert!(store.get_result(first.runs[0]).await.unwrap().is_none());
    assert!(store.list_results(&ResultFilter::default().change(first.changes[0])).await.unwrap().is_empty());
    assert!(store.list_results(&ResultFilter::default().status(JobStatus::Success)).await.unwrap().is_empty());
    assert!(store.get_change(first.changes[0]).await.unwrap().is_none());
    assert_eq!(store.changes_for_object(device("1", "").reference(), 10).await.unwrap().len(), 1);
    assert!(store.get_change(second.changes[0]).await.unwrap().is_some(), "the object's latest change stays");
    assert!(store.get_change(other.changes[0]).await.unwrap().is_some(), "a change with a kept result stays");
    assert_eq!(store.get_object(device("1", "").reference()).await.unwrap(), Some(device("1", "B")));
    assert!(store.get_result(second.runs[0]).await.unwrap().is_some());
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 1, leased: 0, dead: 1 });
    // The next change of device 1 still gets its prechange.
    let third = save(&store, web("alice"), &[device("1", "C")]).await;
    let change = store.get_change(third.changes[0]).await.unwrap().unwrap();
    assert_eq!(change.prechange, Some(json!({"name": "dev-1", "serial": "B"})));
}

#[tokio::test]
async fn batches_lease_in_order_and_complete_together_refusing_only_lapsed_leases() {
    let (_dir, store) = ready_store().await;
    save(&store, web("alice"), &[device("a", "A"), device("b", "A")]).await;
    let a1 = press(&store, "a").await;
    let a2 = press(&store, "a").await;
    let b1 = press(&store, "b").await;
    let claimed = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(30), 10).await.unwrap();
    let runs: Vec<_> = claimed.iter().map(|(l, _)| l.run).collect();
    assert_eq!(runs, [a1, b1], "the second run of object a waits for the first");

    // Both leases lapse and are taken over; the batch then completes a1 with its new lease and b1
    // with its old one.
    let later = claimed[0].0.deadline + Duration::from_secs(1);
    let retaken = store.lease_batch(later, Duration::from_secs(30), 10).await.unwrap();
    assert_eq!(retaken.iter().map(|(l, _)| l.run).collect::<Vec<_>>(), [a1, b1]);
    let batch = vec![
        completion(&retaken[0].0, Outcome::Succeeded { writes: None }),
        completion(&claimed[1].0, Outcome::Succeeded { writes: None }),
    ];
    let outcomes = store.complete_batch(batch).await.unwrap();
    assert!(outcomes[0].is_ok());
    assert_eq!(outcomes[1], Err(QueueError::LeaseLost { run: b1.0 }));
    assert_eq!(store.get_result(a1).await.unwrap().unwrap().status, JobStatus::Success);
    assert_eq!(
        store.get_result(b1).await.unwrap().unwrap().status,
        JobStatus::Started,
        "the new holder's claim stands"
    );
    assert_eq!(lease(&store).await.map(|(l, _)| l.run), Some(a2), "a's second run is free to start now");
}

#[tokio::test]
async fn change_queries_follow_commits_and_pruning() {
    let (_dir, store) = ready_store().await;
    let context = web("alice");
    let first = save(&store, context.clone(), &[device("1", "A")]).await;
    let second = save(&store, context.clone(), &[device("2", "X"), device("1", "B")]).await;
    let ids: Vec<ChangeId> = first.changes.iter().chain(&second.changes).copied().collect();
    let of_request = store.changes_for_request(context.request_id).await.unwrap();
    assert_eq!(of_request.iter().map(|c| c.id).collect::<Vec<_>>(), ids, "two commits of one context, in order");
    let (update, latest) = (ids[2], second.changes[1]);
    assert_eq!(latest, update);

    // A change's object is the object as it is now, whether or not the change is still the latest.
    let (change, object) = store.get_change_and_object(first.changes[0]).await.unwrap().unwrap();
    assert_eq!((change.id, object), (first.changes[0], Some(device("1", "B"))));
    let (change, object) = store.get_change_and_object(update).await.unwrap().unwrap();
    assert_eq!(change.prechange, Some(json!({"name": "dev-1", "serial": "A"})));
    assert_eq!(object, Some(device("1", "B")));

    let times: Vec<OffsetDateTime> = of_request.iter().map(|c| c.time).collect();
    let between = store.changes_between(times[0], times[2] + Duration::from_micros(1), 10).await.unwrap();
    assert_eq!(between.iter().map(|c| c.id).collect::<Vec<_>>(), ids);
    let after_first = store.changes_between(times[0] + Duration::from_micros(1), times[2], 10).await.unwrap();
    assert!(after_first.is_empty(), "[from, to): the second commit's changes are at `to`: {after_first:?}");
    let second_commit =
        store.changes_between(times[0] + Duration::from_micros(1), times[2] + Duration::from_micros(1), 10);
    assert_eq!(second_commit.await.unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), ids[1..].to_vec());

    // Device 1's first change is superseded and has no results: pruning removes it. As in Nautobot,
    // the next change then has no prechange; queries skip the gap.
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let retention = jobhooks_model::ports::Retention { results_for: None, changes_for: Some(Duration::ZERO) };
    assert_eq!(store.prune(&retention, later).await.unwrap().changes, 1);
    assert_eq!(store.get_change(update).await.unwrap().unwrap().prechange, None);
    let remaining: Vec<ChangeId> = ids[1..].to_vec();
    let of_request = store.changes_for_request(context.request_id).await.unwrap();
    assert_eq!(of_request.iter().map(|c| c.id).collect::<Vec<_>>(), remaining);
    let between = store.changes_between(OffsetDateTime::UNIX_EPOCH, later, 10).await.unwrap();
    assert_eq!(between.iter().map(|c| c.id).collect::<Vec<_>>(), remaining);
    let first_after_gap = store.changes_between(times[0], later, 1).await.unwrap();
    assert_eq!(first_after_gap.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[1]]);
}

#[tokio::test]
async fn queued_runs_store_no_result_until_they_have_one_and_replays_join_the_back_of_the_line() {
    let (_dir, store) = device_hooked_store().await;
    let first = save(&store, web("alice"), &[device("1", "A")]).await;
    let other = save(&store, web("bob"), &[device("2", "A")]).await;
    let (r1, r2) = (first.runs[0], other.runs[0]);

    // A queued run's result is made from its queue entry: no result record is written.
    assert_eq!(store.inner.tree.scan_prefix(keys::RESULT).count(), 0);
    let pending = store.get_result(r1).await.unwrap().unwrap();
    assert_eq!(
        pending,
        JobResult::pending(r1, HOOK_JOB, Some("alice".into()), pending.inputs.clone(), pending.created)
    );
    assert_eq!(pending.inputs, JobInputs::Hook { object_change: first.changes[0], hook: None });
    let ids = |results: Vec<JobResult>| results.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_results(&ResultFilter::default()).await.unwrap()), [r2, r1], "newest first");

    // r1 dies; device 1 changes again (r3, ready at once: the line is empty); the replayed r1
    // joins the back of the line, behind r3.
    let (lease1, _) = lease(&store).await.unwrap();
    assert_eq!(lease1.run, r1);
    store.complete(completion(&lease1, Outcome::DeadLettered)).await.unwrap();
    let r3 = save(&store, web("alice"), &[device("1", "B")]).await.runs[0];
    store.replay(r1).await.unwrap();
    let claimed = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(30), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|(l, _)| l.run).collect::<Vec<_>>(), [r2, r3], "the replayed run waits");
    let listed = store.list_results(&ResultFilter::default()).await.unwrap();
    let statuses: Vec<_> = listed.iter().map(|r| (r.id, r.status)).collect();
    assert_eq!(statuses, [(r3, JobStatus::Started), (r2, JobStatus::Started), (r1, JobStatus::Pending)]);
    let started = ResultFilter::default().status(JobStatus::Started).job(HOOK_JOB).limit(1);
    assert_eq!(ids(store.list_results(&started).await.unwrap()), [r3]);
    for (lease, _) in &claimed {
        store.complete(completion(lease, Outcome::Succeeded { writes: None })).await.unwrap();
    }
    let (replayed, result) = lease(&store).await.unwrap();
    assert_eq!((replayed.run, result.logs.len()), (r1, 1), "the replay keeps the log of its first life");
    store.complete(completion(&replayed, Outcome::Succeeded { writes: None })).await.unwrap();

    // Pruning every result does not let run ids be handed out again.
    let everything = jobhooks_model::ports::Retention { results_for: Some(Duration::ZERO), changes_for: None };
    store.prune(&everything, OffsetDateTime::now_utc() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.inner.tree.scan_prefix(keys::RESULT).count(), 0);
    assert_eq!(crate::queue::last_run_id(&store.view()).unwrap(), r3.0);
}

#[tokio::test]
async fn group_commits_defer_their_writes_until_a_flush_or_an_idle_claim_applies_them() {
    let (_dir, store) = device_hooked_store().await;
    let stage = |id: &str, serial: &str| {
        let mut set = ChangeSet::default();
        set.record(PendingChange::new(Action::Create, &device(id, serial)));
        let (receipt, _ticket) = store
            .transact(Commit::Durable, |txn| {
                let (w, st) = txn.parts();
                store.stage_changes(w, st, &web("u"), set, ObjectWrites::Apply)
            })
            .unwrap();
        receipt
    };
    let lease = || store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(30), 10);
    let runs = |claimed: Vec<(Lease, JobResult)>| claimed.into_iter().map(|(lease, _)| lease).collect::<Vec<_>>();
    let first = stage("1", "a");
    // The second change of the same object reads the first through the deferred writes: it has a
    // prechange and queues behind it in the object's line.
    let second = stage("1", "b");
    let failed = store.transact(Commit::Durable, |txn| {
        let st = txn.staging();
        st.put(b"never/written".to_vec(), Vec::new());
        st.remove(keys::change(first.changes[0]));
        Err::<(), _>(QueueError::Refused { reason: "this operation fails".into() })
    });
    assert!(matches!(failed, Err(QueueError::Refused { .. })));
    // Readers see only what is applied.
    assert_eq!(store.get_change(first.changes[0]).await.unwrap(), None);

    // A claim that finds nothing in the tree applies the deferred writes with its own (without
    // the failed operation's), in one batch: the runs they made ready are claimed as that batch
    // applies, so a receiver never reads an unapplied change.
    let head = runs(lease().await.unwrap());
    assert_eq!(head.iter().map(|lease| lease.run).collect::<Vec<_>>(), first.runs);
    let second_change = store.get_change(second.changes[0]).await.unwrap().unwrap();
    assert_eq!(second_change.prechange.unwrap()["serial"], "a");
    assert!(store.get_change(first.changes[0]).await.unwrap().is_some());
    assert_eq!(store.inner.tree.get(b"never/written").unwrap(), None);

    // A claim that finds a run leaves the deferred writes to their flush, and the runs whose
    // entries they rewrite: the third change queues behind the run of `behind`.
    let behind = save(&store, web("u"), &[device("2", "a")]).await;
    let alone = save(&store, web("u"), &[device("3", "a")]).await;
    let third = stage("2", "b");
    let claimed = runs(lease().await.unwrap());
    assert_eq!(claimed.iter().map(|lease| lease.run).collect::<Vec<_>>(), alone.runs);
    assert_eq!(store.get_change(third.changes[0]).await.unwrap(), None);
    store.flush().await.unwrap();
    assert_eq!(store.get_object(device("2", "b").reference()).await.unwrap().unwrap().data()["serial"], "b");
    assert!(store.get_change(third.changes[0]).await.unwrap().is_some());
    let claimed = runs(lease().await.unwrap());
    assert_eq!(claimed.iter().map(|lease| lease.run).collect::<Vec<_>>(), behind.runs);
    store.complete(completion(&claimed[0], Outcome::Succeeded { writes: None })).await.unwrap();
    let next = runs(lease().await.unwrap());
    assert_eq!(next.iter().map(|lease| lease.run).collect::<Vec<_>>(), third.runs);
}

#[tokio::test]
async fn a_handle_whose_group_failed_to_apply_refuses_writes_but_still_reads() {
    let (_dir, store) = device_hooked_store().await;
    let kept = save(&store, web("u"), &[device("1", "a")]).await;
    // What applying a deferred group records when sled fails.
    let io = std::io::Error::other("injected I/O error");
    store
        .inner
        .broken
        .set(StorageFailure::Backend(jobhooks_model::BackendError::new("cannot apply a group", io)))
        .unwrap();
    let mut set = ChangeSet::default();
    set.record(PendingChange::new(Action::Update, &device("1", "b")));
    let err = store.commit(&web("u"), set, ObjectWrites::Apply).await.unwrap_err();
    assert_eq!(err.to_string(), "storage failed: an earlier write to the store failed; reopen the store to go on");
    assert_eq!(
        jobhooks_model::error_chain(&err),
        "storage failed: an earlier write to the store failed; reopen the store to go on: storage failed: cannot apply a group: injected I/O error",
        "the cause is kept as the source"
    );
    assert!(store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(30), 10).await.is_err());
    assert!(store.get_change(kept.changes[0]).await.unwrap().is_some());
}

#[tokio::test]
async fn writes_deferred_by_an_abandoned_commit_are_applied_when_the_store_closes() {
    let (dir, store) = device_hooked_store().await;
    let mut set = ChangeSet::default();
    set.record(PendingChange::new(Action::Create, &device("1", "a")));
    // A commit whose caller stopped waiting for its flush leaves its writes deferred.
    let (receipt, _ticket) = store
        .transact(Commit::Durable, |txn| {
            let (w, st) = txn.parts();
            store.stage_changes(w, st, &web("u"), set, ObjectWrites::Apply)
        })
        .unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(store.get_change(receipt.changes[0]).await.unwrap().is_some());
    assert_eq!(store.get_object(device("1", "a").reference()).await.unwrap().unwrap().data()["serial"], "a");
}

/// The catalog cache is published only once the operation that edited it is in the tree: an
/// operation that fails after editing it leaves readers with the catalog as it was.
#[tokio::test]
async fn a_catalog_edit_is_published_only_when_its_operation_is_written() {
    let (_dir, store) = ready_store().await;
    let failed = store.transact(Commit::Durable, |txn| {
        let (st, catalog) = txn.edit_catalog();
        catalog.put_user(st, User::new("mallory").unwrap())?;
        assert!(txn.catalog().user("mallory").is_some(), "the operation reads its own edit");
        Err::<(), _>(CatalogError::not_found("job", "x"))
    });
    assert!(matches!(failed, Err(CatalogError::NotFound { .. })));
    assert_eq!(store.get_user("mallory").await.unwrap(), None);
    assert!(!store.inner.tree.contains_key(keys::named(keys::USER, "mallory")).unwrap());

    store.put_user(User::new("alice").unwrap()).await.unwrap();
    assert!(store.get_user("alice").await.unwrap().is_some());
    assert!(store.inner.tree.contains_key(keys::named(keys::USER, "alice")).unwrap(), "published once in the tree");
}

/// Defect found in CI: a result read while its run completed could be missed (`None`), when the
/// completion landed between the read of the stored result and the read of the queue entry, and a
/// `press --wait` then said the run did not exist. A run's result is there from enqueue on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_read_while_its_run_completes_is_never_missing() {
    let (_dir, store) = ready_store().await;
    let store = std::sync::Arc::new(store);
    for attempt in 0..200 {
        let run = press(&store, &format!("d{attempt}")).await;
        let completer = {
            let store = store.clone();
            tokio::spawn(async move {
                let leased = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(60), 1).await.unwrap();
                for (lease, _) in leased {
                    let completion =
                        Completion { lease, outcome: Outcome::Succeeded { writes: None }, logs: Vec::new() };
                    store.complete(completion).await.unwrap();
                }
            })
        };
        loop {
            let result = store.get_result(run).await.unwrap();
            let result = result.unwrap_or_else(|| panic!("run {run} went missing at attempt {attempt}"));
            if result.status.is_final() {
                break;
            }
            tokio::task::yield_now().await;
        }
        completer.await.unwrap();
    }
}

/// Defect found in testing the command line: a hook's conditions and changed fields lived only in
/// the open store's memory, and a store opened again ran the hook for every change.
#[tokio::test]
async fn a_hooks_conditions_and_changed_fields_outlive_the_process() {
    let (dir, store) = ready_store().await;
    let condition = jobhooks_model::Condition::from_json(&json!({"attr": "postchange.status", "value": "active"}));
    let hook = hook("active", &["dcim.device"], &[Action::Update]).when(condition.unwrap()).on_changes_of(["status"]);
    let created = store.create_hook(hook).await.unwrap();
    let device = |status: &str| {
        let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "d1").unwrap();
        Object::new(reference, "d1", json!({ "status": status })).unwrap()
    };
    let mut session = store.session(ChangeContext::web("alice"));
    session.save(device("planned")).await.unwrap();
    session.commit().await.unwrap();
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get_hook("active").await.unwrap(), Some(created));
    let mut session = store.session(ChangeContext::web("alice"));
    session.save(device("staged")).await.unwrap();
    assert!(session.commit().await.unwrap().runs.is_empty(), "the condition is false");
    let mut session = store.session(ChangeContext::web("alice"));
    session.save(device("active")).await.unwrap();
    assert_eq!(session.commit().await.unwrap().runs.len(), 1);
}

#[tokio::test]
async fn a_change_costs_four_key_writes_in_one_batch_and_its_run_reads_it_from_memory() {
    let (_dir, store) = ready_store().await;
    store.create_hook(hook("h", &["dcim.device"], &[Action::Update])).await.unwrap();
    save(&store, web("alice"), &[device("1", "A")]).await;
    let before = store.io();
    let mut changes = jobhooks_model::ChangeSet::default();
    changes.record(PendingChange::new(Action::Update, &device("1", "B")));
    let receipt = store.commit(&web("alice"), changes, ObjectWrites::Apply).await.unwrap();
    let committed = store.io().since(before);
    // The change, its entry in the object's index, its commit's request index, its queued run.
    assert_eq!((committed.key_writes, committed.batches, committed.flushes), (4, 1, 1), "{committed:?}");

    let before = store.io();
    let (change, object) = store.get_change_and_object(receipt.changes[0]).await.unwrap().unwrap();
    assert_eq!(change.prechange.unwrap()["serial"], "A");
    assert_eq!(object.unwrap().data()["serial"], "B");
    assert_eq!(store.io().since(before), StoreIo::default(), "a change just committed is read from memory");
}
