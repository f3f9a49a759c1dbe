//! The on-disk format is a promise. A store written by the current format, committed under
//! `tests/fixtures/format-4/store/`, must open and read back exactly as recorded beside it in
//! `format-4/expected.json`: jobs, hooks, buttons, users, objects, every change with its
//! snapshots, and every result (succeeded with writes, failed, dead-lettered, waiting for a
//! retry, pending, and claimed by a process that died holding the claim). A store of the format
//! before it (`format-3/`) must open migrated and read back as it did.
//!
//! A change to the store or to the model's types that alters what a stored record reads back as
//! fails this test. Such a change needs a new format version, a migration from this one, and a new
//! fixture beside this one. Write the fixture of a new format version with
//! `JOBHOOKS_WRITE_FIXTURE=1 cargo test -p jobhooks-store --test format`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jobhooks_model::ports::{
    Catalog, ChangeStore, Completion, JobQueue, ObjectReader, Outcome, QueueReader, ResultFilter,
};
use jobhooks_model::{
    Action, ButtonClass, ChangeContext, ChangeContextKind, ChangeSet, Clock, ContentType, JobButton, JobHook,
    JobInputs, JobKind, JobSpec, LogEntry, LogLevel, LoggedObject, ManualClock, Object, ObjectRef, OffsetDateTime,
    Permission, RecordKind, SyncMode, User, Value, derived_id, json,
};
use jobhooks_store::{FORMAT_VERSION, OpenError, Store, StoreConfig};

mod support;
use support::copy_dir;

const HOOK_JOB: &str = "fixture::jobs::Audit";
const BUTTON_JOB: &str = "fixture::jobs::Press";

/// The committed store of format 3, which opening migrates.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-3")
}

/// The committed store of the current format.
fn current_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-4")
}

/// When the fixture of the current format is opened: after everything in it, so that the claim
/// its process died holding ends at a time the fixture records.
fn reopened_at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_226_200).unwrap() // 2026-01-01 00:10 UTC
}

/// Opens the store at `dir` on a clock stopped at [`reopened_at`].
fn open_at_fixed_time(dir: &Path) -> Result<Store, OpenError> {
    Store::open_with(dir, StoreConfig::default().clock(Arc::new(ManualClock::at(reopened_at()))))
}

fn device(id: &str, serial: &str) -> Object {
    let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
    Object::new(reference, format!("dev-{id}"), json!({"name": format!("dev-{id}"), "serial": serial})).unwrap()
}

fn spec(class_path: &str, kind: JobKind) -> JobSpec {
    JobSpec {
        class_path: class_path.into(),
        name: class_path.into(),
        description: String::new(),
        kind,
        hidden: true,
        former_class_paths: vec![],
    }
}

/// Writes a store holding one record of every kind and state.
async fn write_fixture(dir: &Path) {
    let start = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(); // 2026-01-01 00:00 UTC
    let clock = ManualClock::at(start);
    let store = Store::open_with(dir, StoreConfig::default().clock(Arc::new(clock.clone()))).unwrap();
    let jobs = [spec(HOOK_JOB, JobKind::JobHookReceiver), spec(BUTTON_JOB, JobKind::JobButtonReceiver)];
    store.sync_jobs(&jobs, SyncMode::Full).await.unwrap();
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    store.set_job_enabled(BUTTON_JOB, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    let hook = JobHook::new("audit", devices.clone(), HOOK_JOB).on([Action::Create, Action::Update, Action::Delete]);
    store.create_hook(hook).await.unwrap();
    let mut button = JobButton::new("press", devices, "Press {{ obj }}", BUTTON_JOB);
    button.group_name = Some("Operations".into());
    button.button_class = ButtonClass::Danger;
    button.weight = 50;
    store.create_button(button).await.unwrap();
    store.put_user(User { is_superuser: true, ..User::new("root").unwrap() }).await.unwrap();
    let alice = User::new("alice").unwrap().with_permission(Permission::new("extras.run_job"));
    store.put_user(alice).await.unwrap();

    let web = |user: &str| ChangeContext::new(ChangeContextKind::Web, Some(user.into()), "");
    let mut session = store.session(web("alice"));
    session.save(device("1", "A1")).await.unwrap();
    session.save(device("2", "B1")).await.unwrap();
    session.save(device("3", "C1")).await.unwrap();
    session.commit().await.unwrap();
    clock.advance(Duration::from_secs(60));
    let mut session = store.session(web("bob"));
    session.save(device("1", "A2")).await.unwrap();
    session.delete(device("2", "").reference()).await.unwrap();
    session.commit().await.unwrap();
    clock.advance(Duration::from_secs(60));

    // Five hook runs: one succeeds with a write, one fails, one is dead-lettered, one waits for a
    // retry, one stays pending. A button press stays pending too.
    let leased = store.lease_batch(clock.now(), Duration::from_secs(300), 4).await.unwrap();
    assert_eq!(leased.len(), 3, "device 1's second run waits behind its first");
    let mut writes = ChangeSet::default();
    writes.save(&device("1", "A3"), Some(&device("1", "A2")));
    let job_hook = ChangeContext::new(ChangeContextKind::JobHook, Some("alice".into()), "");
    let outcomes = [
        Outcome::Succeeded { writes: Some((job_hook, writes)) },
        Outcome::Failed,
        Outcome::RetryAt(clock.now() + Duration::from_secs(3600)),
    ];
    for ((lease, _), outcome) in leased.into_iter().zip(outcomes) {
        store.complete(Completion { lease, outcome, logs: logs(clock.now()) }).await.unwrap();
    }
    let next = store.lease_batch(clock.now(), Duration::from_secs(300), 1).await.unwrap();
    let (lease, _) = next.into_iter().next().expect("device 1's second run is ready now");
    store.complete(Completion { lease, outcome: Outcome::DeadLettered, logs: Vec::new() }).await.unwrap();
    let inputs = JobInputs::Button { object_pk: "3".into(), object_model_name: "dcim.device".into() };
    store.enqueue(BUTTON_JOB, Some("alice".into()), inputs).await.unwrap();
    // A second press, claimed by a worker when the process dies: its claim is in an attempt
    // journal, which the next open ends as a lapsed attempt.
    let inputs = JobInputs::Button { object_pk: "1".into(), object_model_name: "dcim.device".into() };
    let pressed = store.enqueue(BUTTON_JOB, Some("root".into()), inputs).await.unwrap();
    let claimed = store.lease_batch(clock.now(), Duration::from_secs(300), 8).await.unwrap();
    let claimed: Vec<_> = claimed.iter().map(|(lease, _)| lease.run).collect();
    assert!(claimed.contains(&pressed), "the press on device 1 is ready: device 1's line is empty");
    store.flush().await.unwrap();
}

/// One log entry of every level, one of them about an object.
fn logs(at: OffsetDateTime) -> Vec<LogEntry> {
    let levels = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Success,
        LogLevel::Warning,
        LogLevel::Failure,
        LogLevel::Error,
        LogLevel::Critical,
    ];
    let mut logs: Vec<LogEntry> = levels
        .into_iter()
        .map(|level| LogEntry { time: at, level, grouping: "main".into(), message: format!("{level}"), object: None })
        .collect();
    let device = device("1", "");
    logs[1].object = Some(LoggedObject { repr: device.repr().to_owned(), reference: device.reference().clone() });
    logs
}

/// Everything the store holds, read through the ports, as JSON.
async fn read_back(store: &Store) -> Value {
    let mut changes = Vec::new();
    let all = store.changes_between(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::now_utc(), usize::MAX).await.unwrap();
    for change in all {
        let snapshots = change.get_snapshots();
        let object = store.get_object(&change.object_ref()).await.unwrap();
        changes.push(json!({"change": change, "snapshots": snapshots, "object_now": object}));
    }
    json!({
        "format": FORMAT_VERSION,
        "jobs": store.list_jobs().await.unwrap(),
        "hooks": store.list_hooks().await.unwrap(),
        "buttons": store.list_buttons().await.unwrap(),
        "users": store.list_users().await.unwrap(),
        "objects": store.list_objects(&ContentType::new("dcim.device").unwrap()).await.unwrap(),
        "changes": changes,
        "results": store.list_results(&ResultFilter::default()).await.unwrap(),
        "depth": store.depth().await.unwrap(),
    })
}

/// The fixture's jobs, hooks and buttons were written before records had ids: each reads back with
/// the id derived from its kind and name, and no times.
fn give_derived_ids(expected: &mut Value) {
    for (list, kind, key) in [
        ("jobs", RecordKind::Job, "class_path"),
        ("hooks", RecordKind::JobHook, "name"),
        ("buttons", RecordKind::JobButton, "name"),
    ] {
        for record in expected[list].as_array_mut().into_iter().flatten() {
            let id = derived_id(kind, record[key].as_str().unwrap_or_default());
            record.as_object_mut().unwrap().entry("id").or_insert_with(|| json!(id));
        }
    }
}

#[tokio::test]
async fn a_store_of_the_current_format_reads_back_identically() {
    let fixture = current_fixture();
    if std::env::var_os("JOBHOOKS_WRITE_FIXTURE").is_some() {
        let _ = std::fs::remove_dir_all(&fixture);
        write_fixture(&fixture.join("store")).await;
        // Read back from a copy, so that the committed store keeps its claim.
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture.join("store"), dir.path());
        let store = open_at_fixed_time(dir.path()).unwrap();
        let expected = serde_json::to_string_pretty(&read_back(&store).await).unwrap();
        std::fs::write(fixture.join("expected.json"), expected + "\n").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture.join("store"), dir.path());
    let store = open_at_fixed_time(dir.path()).expect("the committed store opens");
    assert_eq!(store.migrated_from(), None, "the committed store is of {FORMAT_VERSION}");
    let found = read_back(&store).await;
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap()).unwrap();
    assert_eq!(
        found,
        expected,
        "the committed store reads back differently: the format changed without a new version and a migration.\nfound:\n{}",
        serde_json::to_string_pretty(&found).unwrap()
    );
    assert_eq!(found["results"].as_array().map(Vec::len), Some(7), "every kind of result is in the fixture");
    let claimed = &found["results"][0];
    assert_eq!((claimed["status"].as_str(), claimed["attempts"].as_u64()), (Some("PENDING"), Some(1)));
    assert!(claimed["logs"][0]["message"].as_str().unwrap().contains("lapsed"), "{claimed}");
}

/// The committed store of format 3 opens migrated, reads back exactly as it did, and says so in
/// its format key.
#[tokio::test]
async fn a_store_of_the_previous_format_opens_migrated_and_reads_back_as_before() {
    let fixture = fixture();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture.join("store"), dir.path());
    let store = Store::open(dir.path()).expect("the committed store of format 3 opens");
    assert_eq!(store.migrated_from(), Some("jobhooks-store/3"));
    let found = read_back(&store).await;
    drop(store);
    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap()).unwrap();
    give_derived_ids(&mut expected);
    expected["format"] = json!(FORMAT_VERSION);
    assert_eq!(
        found,
        expected,
        "the store of format 3 reads back differently once migrated.\nfound:\n{}",
        serde_json::to_string_pretty(&found).unwrap()
    );
    assert_eq!(found["results"].as_array().map(Vec::len), Some(6), "every kind of result is in the fixture");
    let reopened = Store::open(dir.path()).unwrap();
    assert_eq!(reopened.migrated_from(), None, "the migration is written");
}

/// A record of the committed store keeps its derived id when it is next written, and gains its
/// times then; a new one gets a new id; all of it survives a reopen.
#[tokio::test]
async fn the_committed_stores_records_keep_their_derived_ids_when_written() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture().join("store"), dir.path());
    let derived = derived_id(RecordKind::JobHook, "audit");
    let (changed, created) = {
        let store = Store::open(dir.path()).unwrap();
        let hook = store.get_hook("audit").await.unwrap().unwrap();
        assert_eq!((hook.id, hook.created, hook.last_updated), (derived, None, None));
        let patch = jobhooks_model::JobHookPatch { name: Some("audited".into()), ..Default::default() };
        let changed = store.update_hook("audit", patch).await.unwrap();
        let devices = vec![ContentType::new("dcim.rack").unwrap()];
        let created = store.create_hook(JobHook::new("racks", devices, HOOK_JOB).on([Action::Create])).await.unwrap();
        (changed, created)
    };
    assert_eq!(changed.id, derived);
    assert!(changed.created.is_some() && changed.last_updated.is_some());
    assert!(!created.id.is_nil() && created.id != derived);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get_hook("audited").await.unwrap(), Some(changed));
    assert_eq!(store.get_hook("racks").await.unwrap(), Some(created));
}

/// The committed store, whose hook job was recorded under a name the program no longer uses (as
/// `std::any::type_name` named instances): the next sync renames it with its hook and button, a
/// full sync that loses it remembers what it disabled across a reopen, and a restore gives it back.
#[tokio::test]
async fn the_committed_store_has_a_job_renamed_then_suspended_and_restored() {
    const RENAMED: &str = "fixture::Audit";
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture().join("store"), dir.path());
    let renamed = JobSpec { former_class_paths: vec![HOOK_JOB.into()], ..spec(RENAMED, JobKind::JobHookReceiver) };
    let button = spec(BUTTON_JOB, JobKind::JobButtonReceiver);
    {
        let store = Store::open(dir.path()).unwrap();
        let report = store.sync_jobs(&[renamed.clone(), button.clone()], SyncMode::Full).await.unwrap();
        assert_eq!(report.renamed, [(HOOK_JOB.to_owned(), RENAMED.to_owned())]);
        assert!(store.get_job(HOOK_JOB).await.unwrap().is_none());
        assert!(store.get_job(RENAMED).await.unwrap().unwrap().is_runnable(), "it keeps its flags");
        let hook = store.get_hook("audit").await.unwrap().unwrap();
        assert_eq!((hook.job.as_str(), hook.enabled), (RENAMED, true));
        let report = store.sync_jobs(std::slice::from_ref(&button), SyncMode::Full).await.unwrap();
        assert_eq!(report.disabled_hooks, ["audit"]);
    }
    let store = Store::open(dir.path()).unwrap();
    let suspended = store.get_job(RENAMED).await.unwrap().unwrap().suspended;
    assert_eq!(suspended.map(|s| (s.enabled, s.hooks)), Some((true, vec!["audit".to_owned()])));
    store.sync_jobs(&[renamed, button], SyncMode::Full).await.unwrap();
    let report = store.restore_jobs(&[]).await.unwrap();
    assert_eq!(
        (report.restored.as_slice(), report.enabled_hooks.as_slice()),
        ([RENAMED.to_owned()].as_slice(), ["audit".to_owned()].as_slice())
    );
    assert!(store.get_hook("audit").await.unwrap().unwrap().enabled);
}

/// The committed store, written before passwords and login sessions existed: its users have no
/// password until one is set, and a password and a session written into it are there after a
/// reopen (`pwd/` and `lgn/` keys are added within format 3).
#[tokio::test]
async fn the_committed_store_gains_passwords_and_sessions_that_survive_a_reopen() {
    use jobhooks_model::ports::Logins;
    use jobhooks_model::{LoginSession, PasswordCost, PasswordHash};
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture().join("store"), dir.path());
    let opened = LoginSession::open("alice", OffsetDateTime::now_utc(), "test");
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get_password("alice").await.unwrap(), None);
        assert_eq!(store.list_logins(None).await.unwrap(), []);
        let hash = PasswordHash::new("long enough", PasswordCost::Cheapest).unwrap();
        store.set_password("alice", Some(hash)).await.unwrap();
        store.add_login(opened.session.clone()).await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(store.get_password("alice").await.unwrap().unwrap().verify("long enough"));
    assert_eq!(store.get_login(&opened.session.id).await.unwrap(), Some(opened.session));
}

#[test]
fn a_store_of_another_format_is_refused_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture().join("store"), dir.path());
    {
        // Rewrite the format key as an older version would have written it.
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("jobhooks").unwrap().insert(b"meta/format", &b"jobhooks-store/2"[..]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path()).err().expect("an older format is refused");
    assert!(matches!(err, OpenError::IncompatibleFormat { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("format version jobhooks-store/2"), "{message}");
    assert!(message.contains(FORMAT_VERSION), "{message}");
}
