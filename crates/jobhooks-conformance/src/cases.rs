//! The cases of the storage contract. Each takes a fresh, empty store and panics, saying which
//! rule broke, when the store does not keep it. [`store_contract!`](crate::store_contract) runs
//! them all.

use std::collections::BTreeMap;
use std::time::Duration;

use jobhooks_model::ports::{ChangePage, ObjectWrites, Outcome, QueueDepth, ResultFilter, Retention, Storage};
use jobhooks_model::{
    Action, ApiToken, CatalogError, ChangeContext, ChangeContextKind, ChangeId, ChangeSet, JobButton, JobButtonPatch,
    JobHook, JobHookPatch, JobInputs, JobKind, JobResult, JobSpec, JobStatus, LoginSession, MaintenanceError, Object,
    ObjectRef, OffsetDateTime, PasswordCost, PasswordHash, PendingChange, QueueError, RunId, SyncMode, User, json,
};
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::{
    BUTTON_JOB, HOOK_JOB, LEASE, completion, ct, delete, device, hook, hooked, lease_all, press, ready, reference,
    runs, save, spec, web,
};

fn validation(error: CatalogError) -> jobhooks_model::ValidationErrors {
    match error {
        CatalogError::Validation(errors) => errors,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Hooks and buttons are validated with the model's rules and Nautobot's messages, nothing is
/// written when they fail, and missing records are `NotFound`.
pub async fn catalog_validates_with_nautobots_messages<S: Storage>(store: &S) {
    let err = store.create_hook(hook("h", &["dcim.device"], &[Action::Create])).await.unwrap_err();
    assert!(!validation(err).field("job").is_empty(), "an unknown job is refused");
    ready(store).await;
    store.set_job_enabled(HOOK_JOB, false).await.unwrap();
    let err = store.create_hook(hook("h", &["dcim.device"], &[Action::Create])).await.unwrap_err();
    assert_eq!(validation(err).field("enabled"), ["The selected Job is not installed and enabled"]);
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    let err = store.create_hook(hook("none", &["dcim.device"], &[])).await.unwrap_err();
    assert_eq!(validation(err).field("__all__"), ["You must select at least one type: create, update, and/or delete."]);
    store.create_hook(hook("first", &["dcim.device"], &[Action::Create])).await.unwrap();
    let err = store.create_hook(hook("second", &["dcim.device"], &[Action::Create, Action::Delete])).await.unwrap_err();
    assert_eq!(
        validation(err).field("type_create"),
        [format!("A job hook already exists for create on dcim.device to job {HOOK_JOB}")]
    );
    assert_eq!(store.list_hooks().await.unwrap().len(), 1, "a refused hook is not written");
    let err = store.create_hook(hook("first", &["dcim.rack"], &[Action::Create])).await.unwrap_err();
    assert_eq!(validation(err).field("name"), ["A job hook named first already exists"]);

    let renamed = JobHookPatch { name: Some("renamed".into()), type_update: Some(true), ..Default::default() };
    let updated = store.update_hook("first", renamed).await.unwrap();
    assert!(updated.type_create && updated.type_update, "a patch keeps what it does not give");
    assert_eq!(store.get_hook("first").await.unwrap(), None, "a rename removes the old name");
    assert_eq!(store.get_hook("renamed").await.unwrap(), Some(updated.clone()));
    let err = store.update_hook("missing", JobHookPatch::default()).await.unwrap_err();
    assert_eq!(err, CatalogError::not_found("job hook", "missing"));
    assert_eq!(store.delete_hook("renamed").await.unwrap(), updated);
    assert!(matches!(store.delete_hook("renamed").await.unwrap_err(), CatalogError::NotFound { .. }));

    let button = JobButton::new("b", vec![ct("dcim.device")], "Run {{ obj }}", BUTTON_JOB);
    let button = store.create_button(button).await.unwrap();
    let err = store.create_button(JobButton { id: Uuid::nil(), ..button.clone() }).await.unwrap_err();
    assert_eq!(validation(err).field("name"), ["A job button named b already exists"]);
    let on_hook_job = JobButton::new("c", vec![ct("dcim.device")], "x", HOOK_JOB);
    assert!(!validation(store.create_button(on_hook_job).await.unwrap_err()).field("job").is_empty());
    assert_eq!(store.list_buttons().await.unwrap(), std::slice::from_ref(&button));
    assert_eq!(store.delete_button("b").await.unwrap(), button);
    assert_eq!(store.set_job_enabled("no::Such", true).await.unwrap_err(), CatalogError::not_found("job", "no::Such"));
}

/// Jobs, hooks and buttons have ids that stay with them through renames, and the times they were
/// created and last changed: a job's id is derived from the class path it was first recorded under,
/// a hook's or a button's is new, unless the caller gives one, which no other may share.
pub async fn catalog_records_have_ids_and_times<S: Storage>(store: &S) {
    ready(store).await;
    let job = store.get_job(HOOK_JOB).await.unwrap().unwrap();
    assert_eq!(job.id, jobhooks_model::derived_id(jobhooks_model::RecordKind::Job, HOOK_JOB));
    assert!(job.created.is_some() && job.last_updated >= job.created);
    let enabled = store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    assert_eq!((enabled.id, enabled.created), (job.id, job.created));
    assert!(enabled.last_updated >= job.last_updated);

    let first = store.create_hook(hook("first", &["dcim.device"], &[Action::Create])).await.unwrap();
    let second = store.create_hook(hook("second", &["dcim.rack"], &[Action::Create])).await.unwrap();
    assert!(!first.id.is_nil() && first.id != second.id, "each new hook has its own id");
    assert!(first.created.is_some() && first.created == first.last_updated);
    let renamed = JobHookPatch { name: Some("renamed".into()), ..Default::default() };
    let renamed = store.update_hook("first", renamed).await.unwrap();
    assert_eq!((renamed.id, renamed.created), (first.id, first.created), "a rename keeps the id");
    assert!(renamed.last_updated >= first.last_updated);
    assert_eq!(store.get_hook("renamed").await.unwrap(), Some(renamed.clone()));
    let given = Uuid::from_u128(0x1234);
    let mut third = hook("third", &["dcim.site"], &[Action::Create]);
    third.id = given;
    assert_eq!(store.create_hook(third).await.unwrap().id, given, "a given id is kept");
    let mut clash = hook("fourth", &["dcim.region"], &[Action::Create]);
    clash.id = given;
    let err = store.create_hook(clash).await.unwrap_err();
    assert_eq!(validation(err).field("id"), [format!("A job hook with id {given} already exists")]);

    let button = JobButton::new("b", vec![ct("dcim.device")], "Run", BUTTON_JOB);
    let button = store.create_button(button).await.unwrap();
    assert!(!button.id.is_nil() && button.created.is_some());
    let moved = JobButtonPatch { name: Some("moved".into()), ..Default::default() };
    let moved = store.update_button("b", moved).await.unwrap();
    assert_eq!((moved.id, moved.created), (button.id, button.created));
    let clash = JobButton { id: button.id, ..JobButton::new("c", vec![ct("dcim.device")], "Run", BUTTON_JOB) };
    let err = store.create_button(clash).await.unwrap_err();
    assert_eq!(validation(err).field("id"), [format!("A job button with id {} already exists", button.id)]);
}

/// Jobs, hooks and buttons are found by the filters of Nautobot's API: what a store's `find_*`
/// lists is exactly what the filter admits of the whole list, in the same order.
pub async fn catalog_lists_are_filtered_in_the_store<S: Storage>(store: &S) {
    use jobhooks_model::{ButtonFilter, HookFilter, JobFilter};
    ready(store).await;
    store.create_hook(hook("Audit devices", &["dcim.device"], &[Action::Create])).await.unwrap();
    store.create_hook(hook("audit racks", &["dcim.rack"], &[Action::Update])).await.unwrap();
    let off = JobHookPatch { enabled: Some(false), ..Default::default() };
    store.create_hook(hook("sites", &["dcim.site", "dcim.device"], &[Action::Delete])).await.unwrap();
    store.update_hook("sites", off).await.unwrap();
    let mut grouped = JobButton::new("grouped", vec![ct("dcim.device")], "Sync now", BUTTON_JOB);
    grouped.group_name = Some("Sync".into());
    grouped.weight = 50;
    store.create_button(grouped).await.unwrap();
    store.create_button(JobButton::new("plain", vec![ct("dcim.rack")], "Go", BUTTON_JOB)).await.unwrap();

    let hooks = store.list_hooks().await.unwrap();
    let device_hooks = edited(|filter: &mut HookFilter| {
        filter.content_types = vec![ct("dcim.device")];
    });
    let searched = edited(|filter: &mut HookFilter| {
        filter.search = vec!["AUDIT".into()];
    });
    let enabled_updates = edited(|filter: &mut HookFilter| {
        filter.enabled = Some(true);
        filter.type_update = Some(true);
    });
    let by_id = HookFilter::id(hooks[1].id);
    let named = edited(|filter: &mut HookFilter| {
        filter.names = vec!["sites".into(), "nothing".into()];
        filter.jobs = vec![HOOK_JOB.into()];
    });
    let nothing = edited(|filter: &mut HookFilter| {
        filter.jobs = vec!["app::Nothing".into()];
    });
    for (filter, expected) in
        [(device_hooks, 2), (searched, 2), (enabled_updates, 1), (by_id, 1), (named, 1), (nothing, 0)]
    {
        let found = store.find_hooks(&filter).await.unwrap();
        let admitted: Vec<_> = hooks.iter().filter(|hook| filter.admits(hook)).cloned().collect();
        assert_eq!(found, admitted, "{filter:?}");
        assert_eq!(found.len(), expected, "{filter:?}");
    }

    let buttons = store.list_buttons().await.unwrap();
    let in_group = edited(|filter: &mut ButtonFilter| {
        filter.group_names = vec!["Sync".into()];
        filter.weights = vec![50];
    });
    let ungrouped = edited(|filter: &mut ButtonFilter| {
        filter.group_names = vec![String::new()];
    });
    let by_text = edited(|filter: &mut ButtonFilter| {
        filter.search = vec!["sync NOW".into()];
        filter.enabled = Some(true);
    });
    let racks = edited(|filter: &mut ButtonFilter| {
        filter.content_types = vec![ct("dcim.rack")];
        filter.jobs = vec![BUTTON_JOB.into()];
    });
    for (filter, expected) in
        [(in_group, 1), (ungrouped, 1), (by_text, 1), (racks, 1), (ButtonFilter::id(Uuid::nil()), 0)]
    {
        let found = store.find_buttons(&filter).await.unwrap();
        let admitted: Vec<_> = buttons.iter().filter(|button| filter.admits(button)).cloned().collect();
        assert_eq!(found, admitted, "{filter:?}");
        assert_eq!(found.len(), expected, "{filter:?}");
    }

    let jobs = store.list_jobs().await.unwrap();
    let receivers = edited(|filter: &mut JobFilter| {
        filter.is_job_hook_receiver = Some(true);
        filter.installed = Some(true);
    });
    let by_path = edited(|filter: &mut JobFilter| {
        filter.class_paths = vec![BUTTON_JOB.into()];
    });
    let by_id = edited(|filter: &mut JobFilter| {
        filter.ids = vec![jobs[0].id];
    });
    for (filter, expected) in [(receivers, 1), (by_path, 1), (by_id, 1), (JobFilter::default(), jobs.len())] {
        let found = store.find_jobs(&filter).await.unwrap();
        let admitted: Vec<_> = jobs.iter().filter(|job| filter.admits(job)).cloned().collect();
        assert_eq!(found, admitted, "{filter:?}");
        assert_eq!(found.len(), expected, "{filter:?}");
    }
}

/// A default value changed by `edit`: a filter (whose type may grow) with some fields set.
fn edited<T: Default>(edit: impl FnOnce(&mut T)) -> T {
    let mut value = T::default();
    edit(&mut value);
    value
}

/// Job sync follows `plan_job_sync`: new jobs are installed and disabled, an additive sync never
/// uninstalls, a full one uninstalls and disables the hooks and buttons of jobs it does not link.
pub async fn job_sync_follows_its_mode<S: Storage>(store: &S) {
    let report = store.sync_jobs(&[spec(HOOK_JOB, JobKind::JobHookReceiver)], SyncMode::Full).await.unwrap();
    assert_eq!(report.added, [HOOK_JOB]);
    let job = store.get_job(HOOK_JOB).await.unwrap().unwrap();
    assert!(job.installed && !job.enabled, "a new job is installed and disabled");
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    store.create_hook(hook("h", &["dcim.device"], &[Action::Create])).await.unwrap();

    let report = store.sync_jobs(&[], SyncMode::Additive).await.unwrap();
    assert_eq!(report, Default::default(), "an additive sync that adds nothing changes nothing");
    assert!(store.get_job(HOOK_JOB).await.unwrap().unwrap().is_runnable());

    let report = store.sync_jobs(&[], SyncMode::Full).await.unwrap();
    assert_eq!(
        (report.uninstalled.as_slice(), report.disabled_hooks.as_slice()),
        ([HOOK_JOB.to_owned()].as_slice(), ["h".to_owned()].as_slice())
    );
    assert!(!store.get_job(HOOK_JOB).await.unwrap().unwrap().installed);
    assert!(!store.get_hook("h").await.unwrap().unwrap().enabled);

    let report = store.sync_jobs(&[spec(HOOK_JOB, JobKind::JobHookReceiver)], SyncMode::Additive).await.unwrap();
    assert_eq!(report.reinstalled, [HOOK_JOB]);
    let job = store.get_job(HOOK_JOB).await.unwrap().unwrap();
    assert!(job.installed && !job.enabled, "a job linked again stays disabled until enabled");
    assert_eq!(job.suspended.as_ref().map(|s| s.hooks.as_slice()), Some(["h".to_owned()].as_slice()));
    assert_eq!(store.list_jobs().await.unwrap(), [job]);
}

/// What a full sync disabled is enabled again by `restore_jobs` once the job is linked again,
/// and the suspension survives the store being read back.
pub async fn restoring_jobs_enables_what_a_sync_disabled<S: Storage>(store: &S) {
    store.sync_jobs(&[spec(HOOK_JOB, JobKind::JobHookReceiver)], SyncMode::Full).await.unwrap();
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    store.create_hook(hook("on", &["dcim.device"], &[Action::Create])).await.unwrap();
    let off = JobHook { enabled: false, ..hook("off", &["dcim.device"], &[Action::Update]) };
    store.create_hook(off).await.unwrap();
    store.sync_jobs(&[], SyncMode::Full).await.unwrap();
    let report = store.restore_jobs(&[]).await.unwrap();
    assert_eq!(report.not_installed, [HOOK_JOB], "nothing comes back while the job is missing");
    assert!(!store.get_hook("on").await.unwrap().unwrap().enabled);

    store.sync_jobs(&[spec(HOOK_JOB, JobKind::JobHookReceiver)], SyncMode::Full).await.unwrap();
    let report = store.restore_jobs(&[HOOK_JOB.to_owned()]).await.unwrap();
    assert_eq!(
        (report.restored.as_slice(), report.enabled_hooks.as_slice()),
        ([HOOK_JOB.to_owned()].as_slice(), ["on".to_owned()].as_slice())
    );
    let job = store.get_job(HOOK_JOB).await.unwrap().unwrap();
    assert!(job.is_runnable() && job.suspended.is_none());
    assert!(store.get_hook("on").await.unwrap().unwrap().enabled);
    assert!(!store.get_hook("off").await.unwrap().unwrap().enabled, "a hook that was off stays off");
    assert_eq!(store.restore_jobs(&[]).await.unwrap(), Default::default(), "nothing left to restore");
}

/// A job found under a former class path is renamed, its hooks and buttons follow it, and it
/// keeps its flags.
pub async fn a_job_under_a_former_class_path_is_renamed<S: Storage>(store: &S) {
    const FORMER: &str = "app::main::Notify";
    store.sync_jobs(&[spec(FORMER, JobKind::JobHookReceiver)], SyncMode::Full).await.unwrap();
    store.set_job_enabled(FORMER, true).await.unwrap();
    let mut on_former = hook("h", &["dcim.device"], &[Action::Create]);
    on_former.job = FORMER.into();
    store.create_hook(on_former).await.unwrap();
    let renamed = JobSpec { former_class_paths: vec![FORMER.into()], ..spec(HOOK_JOB, JobKind::JobHookReceiver) };
    let report = store.sync_jobs(&[renamed], SyncMode::Full).await.unwrap();
    assert_eq!(report.renamed, [(FORMER.to_owned(), HOOK_JOB.to_owned())]);
    assert!(report.uninstalled.is_empty() && report.disabled_hooks.is_empty(), "{report:?}");
    let jobs = store.list_jobs().await.unwrap();
    assert_eq!(jobs.iter().map(|job| job.class_path.as_str()).collect::<Vec<_>>(), [HOOK_JOB]);
    assert!(jobs[0].is_runnable(), "the renamed job keeps its flags");
    let hook = store.get_hook("h").await.unwrap().unwrap();
    assert_eq!((hook.job.as_str(), hook.enabled), (HOOK_JOB, true));
}

/// Users are stored by name; a name that breaks the naming rules is refused.
pub async fn users_are_stored_and_names_checked<S: Storage>(store: &S) {
    let bob = User::new("bob").unwrap();
    store.put_user(bob.clone()).await.unwrap();
    store.put_user(User::superuser("alice").unwrap()).await.unwrap();
    assert_eq!(store.get_user("bob").await.unwrap(), Some(bob));
    let names: Vec<String> = store.list_users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["alice", "bob"]);
    let bad = User { username: "bad\u{0}name".into(), is_superuser: false, permissions: Vec::new() };
    assert!(matches!(store.put_user(bad).await.unwrap_err(), CatalogError::Invalid(_)));
    assert_eq!(store.get_user("nobody").await.unwrap(), None);
}

/// API tokens are stored as issued (their key's hash, never the key), found by id, listed by
/// user oldest first, and revoked; a token of an unknown user or with a taken id is refused.
pub async fn tokens_are_kept_by_hash_and_revoked<S: Storage>(store: &S) {
    store.put_user(User::new("bob").unwrap()).await.unwrap();
    store.put_user(User::new("carol").unwrap()).await.unwrap();
    let now = jobhooks_model::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let later = now + Duration::from_secs(60);
    let first = ApiToken::issue("bob", now, Some(later), "laptop");
    let second = ApiToken::issue("bob", later, None, "ci");
    let mut carols = ApiToken::issue("carol", now, None, "");
    carols.token.write_enabled = false;
    for issued in [&first, &second, &carols] {
        store.add_token(issued.token.clone()).await.unwrap();
    }
    let stored = store.get_token(&first.token.id).await.unwrap().expect("the token is stored");
    assert_eq!(stored, first.token);
    assert!(stored.accepts(&first.key, now).is_ok(), "the stored hash accepts the key");
    assert!(stored.accepts(&second.key, now).is_err());
    let ids = |tokens: Vec<ApiToken>| tokens.into_iter().map(|token| token.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_tokens(Some("bob")).await.unwrap()), [first.token.id.clone(), second.token.id.clone()]);
    assert_eq!(store.list_tokens(None).await.unwrap().len(), 3);

    let stranger = ApiToken::issue("nobody", now, None, "");
    let refused = store.add_token(stranger.token).await.unwrap_err();
    assert!(matches!(&refused, CatalogError::NotFound { kind: "user", .. }), "{refused:?}");
    let mut twin = ApiToken::issue("carol", now, None, "").token;
    twin.id = carols.token.id.clone();
    assert!(matches!(store.add_token(twin).await.unwrap_err(), CatalogError::Invalid(_)));
    assert_eq!(store.get_token(&carols.token.id).await.unwrap(), Some(carols.token.clone()), "the first one stays");
    assert!(!store.get_token(&carols.token.id).await.unwrap().unwrap().write_enabled, "a read-only token stays so");

    assert_eq!(store.delete_token(&first.token.id).await.unwrap(), first.token);
    assert_eq!(store.get_token(&first.token.id).await.unwrap(), None);
    let again = store.delete_token(&first.token.id).await.unwrap_err();
    assert!(matches!(again, CatalogError::NotFound { kind: "token", .. }), "{again:?}");
}

/// Passwords are kept as their hash and removed; login sessions are stored as opened, found by id,
/// listed by user, touched forward only, ended one at a time, when idle, and all at once when the
/// user's password changes; a session or password of an unknown user is refused.
pub async fn passwords_and_login_sessions_are_kept_and_ended<S: Storage>(store: &S) {
    store.put_user(User::new("bob").unwrap()).await.unwrap();
    store.put_user(User::new("carol").unwrap()).await.unwrap();
    assert_eq!(store.get_password("bob").await.unwrap(), None, "a new user has no password");
    let hash = PasswordHash::new("correct horse", PasswordCost::Cheapest).unwrap();
    store.set_password("bob", Some(hash.clone())).await.unwrap();
    let stored = store.get_password("bob").await.unwrap().expect("the password is stored");
    assert!(stored.verify("correct horse"));
    let refused = store.set_password("nobody", Some(hash.clone())).await.unwrap_err();
    assert!(matches!(&refused, CatalogError::NotFound { kind: "user", .. }), "{refused:?}");

    let now = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let later = now + Duration::from_secs(600);
    let first = LoginSession::open("bob", now, "Firefox");
    let second = LoginSession::open("bob", later, "Chromium");
    let carols = LoginSession::open("carol", now, "");
    for opened in [&first, &second, &carols] {
        store.add_login(opened.session.clone()).await.unwrap();
    }
    assert_eq!(store.get_login(&first.session.id).await.unwrap(), Some(first.session.clone()));
    let ids = |sessions: Vec<LoginSession>| sessions.into_iter().map(|session| session.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_logins(Some("bob")).await.unwrap()),
        [first.session.id.clone(), second.session.id.clone()]
    );
    assert_eq!(store.list_logins(None).await.unwrap().len(), 3);
    let stranger = store.add_login(LoginSession::open("nobody", now, "").session).await.unwrap_err();
    assert!(matches!(&stranger, CatalogError::NotFound { kind: "user", .. }), "{stranger:?}");
    let mut twin = LoginSession::open("carol", now, "").session;
    twin.id = carols.session.id.clone();
    assert!(matches!(store.add_login(twin).await.unwrap_err(), CatalogError::Invalid(_)));

    store.touch_login(&first.session.id, later).await.unwrap();
    store.touch_login(&first.session.id, now).await.unwrap();
    assert_eq!(store.get_login(&first.session.id).await.unwrap().unwrap().last_seen, later, "touched forward only");
    store.touch_login("0000000000000000", later).await.unwrap();

    assert_eq!(store.end_idle_logins(now + Duration::from_secs(1)).await.unwrap(), 1, "carol's was idle");
    assert_eq!(store.get_login(&carols.session.id).await.unwrap(), None);
    assert_eq!(store.end_login(&second.session.id).await.unwrap(), second.session);
    let again = store.end_login(&second.session.id).await.unwrap_err();
    assert!(matches!(again, CatalogError::NotFound { kind: "session", .. }), "{again:?}");

    let third = LoginSession::open("bob", later, "");
    store.add_login(third.session.clone()).await.unwrap();
    store.set_password("bob", None).await.unwrap();
    assert_eq!(store.get_password("bob").await.unwrap(), None);
    assert_eq!(store.list_logins(Some("bob")).await.unwrap(), [], "a new password ends every session");
}

/// A commit records one change per merged change, with Nautobot's snapshots, and applies it to
/// the object repository.
pub async fn commits_record_changes_and_objects<S: Storage>(store: &S) {
    ready(store).await;
    let created = save(store, &[device("1", "A1")]).await;
    assert_eq!(created.changes.len(), 1);
    assert_eq!(store.get_object(&reference("1")).await.unwrap(), Some(device("1", "A1")));
    let updated = save(store, &[device("1", "B2")]).await;
    let change = store.get_change(updated.changes[0]).await.unwrap().unwrap();
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.to_string(), "dcim.device dev-1 updated by alice");
    assert_eq!(change.get_snapshots().differences.added, Some(json!({"serial": "B2"})));
    assert_eq!(
        change.get_snapshots().differences.removed,
        Some(json!({"serial": "A1"})),
        "the prechange is the previous change's data"
    );
    let (change, object) = store.get_change_and_object(created.changes[0]).await.unwrap().unwrap();
    assert_eq!(change.action, Action::Create);
    assert_eq!(object, Some(device("1", "B2")), "the object as it is now");
    let (_, object) = store.get_change_and_object(updated.changes[0]).await.unwrap().unwrap();
    assert_eq!(object, Some(device("1", "B2")), "the object as its latest change left it");

    let deleted = delete(store, "1").await;
    assert_eq!(store.get_object(&reference("1")).await.unwrap(), None);
    assert_eq!(store.object_types().await.unwrap(), [ct("dcim.device")], "a type whose objects were deleted");
    let site = jobhooks_model::ObjectRef::new(ct("dcim.site"), "s1").unwrap();
    save(store, &[jobhooks_model::Object::new(site, "s1", json!({"name": "s1"})).unwrap()]).await;
    assert_eq!(store.object_types().await.unwrap(), [ct("dcim.device"), ct("dcim.site")]);
    let (change, object) = store.get_change_and_object(deleted.changes[0]).await.unwrap().unwrap();
    assert_eq!((change.action, object), (Action::Delete, None));
    let ids = [deleted.changes[0], jobhooks_model::ChangeId(9_999), created.changes[0], updated.changes[0]];
    let mut one_by_one = Vec::new();
    for id in ids {
        one_by_one.extend(store.get_change_and_object(id).await.unwrap());
    }
    assert_eq!(one_by_one.len(), 3);
    assert_eq!(store.get_changes_and_objects(&ids).await.unwrap(), one_by_one, "in the order asked, missing left out");
    assert_eq!(change.get_snapshots().postchange, None);

    // Changes to one object in one context merge.
    let mut changes = ChangeSet::default();
    changes.save(&device("2", "A"), None);
    changes.save(&device("2", "B"), Some(&device("2", "A")));
    let merged = store.commit(&web("alice"), changes, ObjectWrites::Apply).await.unwrap();
    assert_eq!(merged.changes.len(), 1);
    assert_eq!(store.get_change(merged.changes[0]).await.unwrap().unwrap().action, Action::Create);
    assert_eq!(
        store.commit(&web("alice"), ChangeSet::default(), ObjectWrites::Apply).await.unwrap(),
        Default::default()
    );
    assert_eq!(store.get_change(jobhooks_model::ChangeId(9_999)).await.unwrap(), None);
}

/// Changes recorded without the repository leave it as the last applied change left it.
pub async fn record_only_commits_leave_the_repository_alone<S: Storage>(store: &S) {
    ready(store).await;
    let mut changes = ChangeSet::default();
    let pre = json!({"serial": "A"}).as_object().cloned().unwrap_or_default();
    changes.record(PendingChange::new(Action::Update, &device("5", "B")).with_pre_data(pre));
    let receipt = store.commit(&web("alice"), changes, ObjectWrites::RecordOnly).await.unwrap();
    assert_eq!(store.get_object(&reference("5")).await.unwrap(), None);
    let change = store.get_change(receipt.changes[0]).await.unwrap().unwrap();
    assert_eq!(
        change.get_snapshots().differences.removed,
        Some(json!({"serial": "A", "name": null})),
        "the writer's pre-data is the prechange"
    );

    save(store, &[device("6", "A")]).await;
    let mut changes = ChangeSet::default();
    changes.record(PendingChange::new(Action::Update, &device("6", "B")));
    store.commit(&web("alice"), changes, ObjectWrites::RecordOnly).await.unwrap();
    assert_eq!(store.get_object(&reference("6")).await.unwrap(), Some(device("6", "A")));
    assert_eq!(store.list_objects(&ct("dcim.device")).await.unwrap(), [device("6", "A")]);
}

/// Changes are found by object (newest first), by change context (in order) and by time.
pub async fn changes_are_found_by_object_request_and_time<S: Storage>(store: &S) {
    ready(store).await;
    let before = OffsetDateTime::now_utc() - Duration::from_secs(3_600);
    let first = save(store, &[device("1", "A"), device("2", "A")]).await;
    save(store, &[device("1", "B")]).await;
    let history: Vec<Action> =
        store.changes_for_object(&reference("1"), 10).await.unwrap().iter().map(|c| c.action).collect();
    assert_eq!(history, [Action::Update, Action::Create]);
    assert_eq!(store.changes_for_object(&reference("1"), 1).await.unwrap().len(), 1);
    let request = store.get_change(first.changes[0]).await.unwrap().unwrap().request_id;
    let ids: Vec<_> = store.changes_for_request(request).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(ids, first.changes);
    let after = OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let all = store.changes_between(before, after, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|pair| pair[0].id < pair[1].id), "oldest first");
    assert_eq!(store.changes_between(before, after, 2).await.unwrap().len(), 2);
    assert!(store.changes_between(after, after + Duration::from_secs(1), 10).await.unwrap().is_empty());
    let latest: Vec<_> = store.latest_changes(2).await.unwrap().iter().map(|c| c.id).collect();
    let newest_first: Vec<_> = all.iter().rev().take(2).map(|c| c.id).collect();
    assert_eq!(latest, newest_first, "the newest page of the log, newest first");
    assert_eq!(store.latest_changes(100).await.unwrap().len(), 3);
    assert_eq!(store.count_changes().await.unwrap(), 3);
    // Pages of the log and of one object's changes: an offset passes over the newest, past the
    // end is empty, and counts are of the whole list.
    let whole: Vec<ChangeId> = all.iter().rev().map(|c| c.id).collect();
    let of_one: Vec<ChangeId> =
        store.changes_for_object(&reference("1"), 10).await.unwrap().iter().map(|c| c.id).collect();
    for (object, expected) in [(None, &whole), (Some(reference("1")), &of_one)] {
        assert_eq!(store.count_changes_of(object.as_ref()).await.unwrap(), expected.len() as u64);
        for offset in 0..=expected.len() + 1 {
            for limit in [1, 2, 100] {
                let page = ChangePage::new(object.clone(), offset, limit);
                let ids: Vec<ChangeId> = store.change_page(&page).await.unwrap().iter().map(|c| c.id).collect();
                let wanted: Vec<ChangeId> = expected.iter().skip(offset).take(limit).copied().collect();
                assert_eq!(ids, wanted, "{page:?}");
            }
        }
    }
    assert_eq!(store.count_changes_of(Some(&reference("nope"))).await.unwrap(), 0);
    let listed: Vec<String> =
        store.list_objects(&ct("dcim.device")).await.unwrap().iter().map(|o| o.id().to_owned()).collect();
    assert_eq!(listed, ["1", "2"]);
}

/// The transactional outbox: a commit's changes and the runs of the hooks they match appear
/// together; `job-hook` changes and hooks whose job cannot run queue nothing.
pub async fn a_change_and_its_runs_are_committed_together<S: Storage>(store: &S) {
    hooked(store).await;
    let receipt = save(store, &[device("1", "A"), device("2", "A")]).await;
    assert_eq!(receipt.runs.len(), 2, "one run per matching hook per change");
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 2, leased: 0, dead: 0 });
    for (run, change) in receipt.runs.iter().zip(&receipt.changes) {
        let result = store.get_result(*run).await.unwrap().expect("a queued run has a pending result");
        assert_eq!(
            (result.status, result.job.as_str(), result.change_id()),
            (JobStatus::Pending, HOOK_JOB, Some(*change))
        );
        assert_eq!(result.user.as_deref(), Some("alice"), "a hook run runs as the change's user");
    }
    let from_hook = ChangeContext::new(ChangeContextKind::JobHook, Some("alice".into()), HOOK_JOB);
    let mut changes = ChangeSet::default();
    changes.save(&device("3", "A"), None);
    assert!(store.commit(&from_hook, changes, ObjectWrites::Apply).await.unwrap().runs.is_empty(), "no recursion");
    store.set_job_enabled(HOOK_JOB, false).await.unwrap();
    assert!(save(store, &[device("4", "A")]).await.runs.is_empty(), "a disabled job is skipped");
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    store.update_hook("h", JobHookPatch { enabled: Some(false), ..Default::default() }).await.unwrap();
    assert!(save(store, &[device("5", "A")]).await.runs.is_empty(), "a disabled hook is skipped");
    assert_eq!(store.depth().await.unwrap().pending, 2);
    let unknown = store
        .enqueue(
            "no::Such",
            None,
            jobhooks_model::JobInputs::Button { object_pk: "1".into(), object_model_name: "dcim.device".into() },
        )
        .await;
    assert_eq!(unknown.unwrap_err(), QueueError::NotFound { kind: "job", key: "no::Such".into() });
}

/// What a claim reads with its runs ([`JobQueue::lease_batch_with_reads`]) is what the reads it
/// stands for return: each change it answers with its object as it is now (none once deleted),
/// each job and user it answers (none when the store has no such user). A store that reads
/// nothing with its claims answers nothing; its claims are the same either way.
///
/// [`JobQueue::lease_batch_with_reads`]: jobhooks_model::ports::JobQueue::lease_batch_with_reads
pub async fn a_claim_reads_what_its_runs_start_with<S: Storage>(store: &S) {
    hooked(store).await;
    store.create_hook(hook("d", &["dcim.device"], &[Action::Delete])).await.unwrap();
    store.put_user(User::superuser("alice").unwrap()).await.unwrap();
    let now = OffsetDateTime::now_utc();
    save(store, &[device("1", "A"), device("2", "A")]).await;
    for (lease, _) in lease_all(store, now).await {
        store.complete(completion(&lease, Outcome::Succeeded { writes: None })).await.unwrap();
    }
    let updated = save(store, &[device("1", "B")]).await;
    let deleted = delete(store, "2").await;
    let inputs = jobhooks_model::JobInputs::Button { object_pk: "9".into(), object_model_name: "dcim.device".into() };
    let anonymous = store.enqueue(BUTTON_JOB, None, inputs).await.unwrap();

    let batch = store.lease_batch_with_reads(now, LEASE, 100).await.expect("leasing works");
    let mut expected = vec![updated.runs[0], deleted.runs[0], anonymous];
    expected.sort();
    assert_eq!(runs(&batch.runs), expected);
    let reads = &batch.reads;
    if let Some(read_at) = reads.read_at {
        assert!(read_at >= now, "read no earlier than the claim");
    }
    let changes: Vec<_> = batch.runs.iter().filter_map(|(_, result)| result.change_id()).collect();
    for (change, answer) in &reads.changes {
        assert!(changes.contains(change), "change {change} answered, but no claimed run is about it");
        let read = store.get_changes_and_objects(&[*change]).await.unwrap().into_iter().next();
        assert_eq!(answer, &read, "change {change} as the claim read it");
    }
    if let Some(Some((change, object))) = reads.changes.get(&deleted.changes[0]) {
        assert_eq!((change.action, object), (Action::Delete, &None), "a deleted object is gone");
    }
    for (job, answer) in &reads.jobs {
        assert!(batch.runs.iter().any(|(_, result)| &result.job == job), "job {job} answered, but no run has it");
        assert_eq!(answer, &store.get_job(job).await.unwrap(), "job {job} as the claim read it");
    }
    for (user, answer) in &reads.users {
        assert_eq!(answer, &store.get_user(user).await.unwrap(), "user {user} as the claim read it");
    }
    if let Some(anonymous) = reads.users.get(jobhooks_model::ObjectChange::UNDEFINED_USER) {
        assert_eq!(anonymous, &None, "a run without a user runs as one the store does not know");
    }
}

/// Runs about one object start one at a time, in the order they were queued; runs of other
/// objects do not wait.
pub async fn runs_of_one_object_start_one_at_a_time_in_order<S: Storage>(store: &S) {
    ready(store).await;
    save(store, &[device("1", "A"), device("2", "A")]).await;
    let first = press(store, "1").await;
    let second = press(store, "1").await;
    let other = press(store, "2").await;
    let now = OffsetDateTime::now_utc();
    let claimed = lease_all(store, now).await;
    assert_eq!(runs(&claimed), [first, other], "only the head of each line is ready");
    let started = store.get_result(first).await.unwrap().unwrap();
    assert_eq!((started.status, started.attempts), (JobStatus::Started, 1));
    assert!(lease_all(store, now).await.is_empty(), "claimed runs are not claimed twice");
    let lease = claimed.iter().find(|(lease, _)| lease.run == first).unwrap().0.clone();
    store.complete(completion(&lease, Outcome::Succeeded { writes: None })).await.unwrap();
    assert_eq!(runs(&lease_all(store, now).await), [second], "the next run in line is ready once the first ends");
    let done = store.get_result(first).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Success);
    assert!(done.completed.is_some() && done.logs.iter().any(|l| l.message == "ended SUCCESS"));
    // A press on an object the store has no change of has no line.
    let loose = press(store, "99").await;
    let again = press(store, "99").await;
    assert_eq!(runs(&lease_all(store, now).await), [loose, again]);
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 0, leased: 4, dead: 0 });
}

/// A lapsed claim is taken over by the next lease (noted in the log, the attempt counted); the
/// first worker's outcome is refused with `LeaseLost`. `release_expired` returns lapsed claims.
pub async fn leases_lapse_and_are_taken_over<S: Storage>(store: &S) {
    ready(store).await;
    let run = press(store, "1").await;
    let now = OffsetDateTime::now_utc();
    let (first, _) = store.lease_next(now, LEASE).await.unwrap().unwrap();
    assert_eq!(first.run, run);
    assert!(first.deadline >= now + LEASE);
    assert!(store.lease_next(first.deadline - Duration::from_secs(1), LEASE).await.unwrap().is_none());
    let (second, result) =
        store.lease_next(first.deadline, LEASE).await.unwrap().expect("a lapsed claim is taken over");
    assert_ne!(second.token, first.token);
    assert_eq!(result.attempts, 2);
    assert!(
        result.logs.iter().any(|l| l.message.contains("lapsed before its outcome was recorded")),
        "{:?}",
        result.logs
    );
    let err = store.complete(completion(&first, Outcome::Succeeded { writes: None })).await.unwrap_err();
    assert_eq!(err, QueueError::LeaseLost { run: run.0 });
    assert_eq!(store.release_expired(second.deadline - Duration::from_secs(1)).await.unwrap(), 0);
    assert_eq!(store.release_expired(second.deadline).await.unwrap(), 1);
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 1, leased: 0, dead: 0 });
    assert_eq!(store.get_result(run).await.unwrap().unwrap().status, JobStatus::Pending);
    assert!(matches!(store.release(&second).await.unwrap_err(), QueueError::LeaseLost { .. }));
    let (third, result) = store.lease_next(now, LEASE).await.unwrap().unwrap();
    assert_eq!(result.attempts, 3);
    store.complete(completion(&third, Outcome::Failed)).await.unwrap();
    assert_eq!(store.get_result(run).await.unwrap().unwrap().status, JobStatus::Failure);
    assert_eq!(store.depth().await.unwrap(), QueueDepth::default());
}

/// A released claim counts as an attempt; one given back before it started does not.
pub async fn released_runs_count_the_attempt_and_given_back_runs_do_not<S: Storage>(store: &S) {
    ready(store).await;
    let run = press(store, "1").await;
    let now = OffsetDateTime::now_utc();
    let (lease, _) = store.lease_next(now, LEASE).await.unwrap().unwrap();
    store.give_back(&lease).await.unwrap();
    assert_eq!(store.get_result(run).await.unwrap().unwrap().attempts, 0);
    let (lease, _) = store.lease_next(now, LEASE).await.unwrap().expect("given back: ready at once");
    store.release(&lease).await.unwrap();
    let result = store.get_result(run).await.unwrap().unwrap();
    assert_eq!((result.status, result.attempts), (JobStatus::Pending, 1));
    let (lease, result) = store.lease_next(now, LEASE).await.unwrap().expect("released: ready at once");
    assert_eq!(result.attempts, 2);
    let stale = jobhooks_model::ports::Lease { token: lease.token + 99, ..lease.clone() };
    assert!(matches!(store.give_back(&stale).await.unwrap_err(), QueueError::LeaseLost { .. }));
    store.complete(completion(&lease, Outcome::Succeeded { writes: None })).await.unwrap();
    assert!(
        matches!(store.release(&lease).await.unwrap_err(), QueueError::LeaseLost { .. }),
        "a finished run cannot be released"
    );
}

/// A retry waits until its time, and its object's later runs wait behind it.
pub async fn retries_wait_for_their_time_and_hold_the_line<S: Storage>(store: &S) {
    ready(store).await;
    save(store, &[device("1", "A")]).await;
    let first = press(store, "1").await;
    let second = press(store, "1").await;
    let now = OffsetDateTime::now_utc();
    let (lease, _) = store.lease_next(now, LEASE).await.unwrap().unwrap();
    let at = now + Duration::from_secs(60);
    store.complete(completion(&lease, Outcome::RetryAt(at))).await.unwrap();
    assert_eq!(store.get_result(first).await.unwrap().unwrap().status, JobStatus::Retrying);
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 2, leased: 0, dead: 0 });
    assert!(lease_all(store, at - Duration::from_secs(1)).await.is_empty(), "not before its time, and the line waits");
    let claimed = lease_all(store, at).await;
    assert_eq!(runs(&claimed), [first]);
    assert_eq!(claimed[0].1.attempts, 2);
    store.complete(completion(&claimed[0].0, Outcome::Succeeded { writes: None })).await.unwrap();
    assert_eq!(runs(&lease_all(store, at).await), [second]);
}

/// A dead letter gives up its object's turn; a replay queues it again at the back of the line as
/// a new series of attempts; only dead-lettered runs can be replayed.
pub async fn dead_letters_free_the_line_and_replays_join_its_back<S: Storage>(store: &S) {
    ready(store).await;
    save(store, &[device("1", "A")]).await;
    let first = press(store, "1").await;
    let second = press(store, "1").await;
    let now = OffsetDateTime::now_utc();
    let (lease, _) = store.lease_next(now, LEASE).await.unwrap().unwrap();
    store.complete(completion(&lease, Outcome::DeadLettered)).await.unwrap();
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 1, leased: 0, dead: 1 });
    let dead = store.get_result(first).await.unwrap().unwrap();
    assert_eq!(dead.status, JobStatus::DeadLettered);
    assert!(dead.completed.is_some());
    let (next, _) = store.lease_next(now, LEASE).await.unwrap().expect("the dead run gave up its turn");
    assert_eq!(next.run, second);
    store.replay(first).await.unwrap();
    let replayed = store.get_result(first).await.unwrap().unwrap();
    assert_eq!((replayed.status, replayed.attempts, replayed.completed), (JobStatus::Pending, 0, None));
    assert_eq!(store.depth().await.unwrap(), QueueDepth { pending: 1, leased: 1, dead: 0 });
    assert!(store.lease_next(now, LEASE).await.unwrap().is_none(), "the replay waits behind the run now in line");
    store.complete(completion(&next, Outcome::Succeeded { writes: None })).await.unwrap();
    let (again, result) = store.lease_next(now, LEASE).await.unwrap().unwrap();
    assert_eq!((again.run, result.attempts), (first, 1));
    let err = store.replay(second).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("refused: run {second} is not dead-lettered; only dead-lettered runs can be replayed")
    );
    assert!(matches!(store.replay(RunId(9_999)).await.unwrap_err(), MaintenanceError::Refused { .. }));
}

/// A success commits the attempt's writes with its result, as `job-hook` changes that queue
/// nothing; a failure writes none of them.
pub async fn a_success_commits_its_writes_and_a_failure_drops_them<S: Storage>(store: &S) {
    hooked(store).await;
    let receipt = save(store, &[device("1", "A"), device("2", "A")]).await;
    let claimed = lease_all(store, OffsetDateTime::now_utc()).await;
    assert_eq!(claimed.len(), 2);
    let context = ChangeContext::new(ChangeContextKind::JobHook, Some("alice".into()), HOOK_JOB);
    let writes = |id: &str| {
        let mut changes = ChangeSet::default();
        changes.save(&device(id, "fixed"), Some(&device(id, "A")));
        Some((context.clone(), changes))
    };
    let (ok, failed) = (&claimed[0].0, &claimed[1].0);
    let written = store.complete(completion(ok, Outcome::Succeeded { writes: writes("1") })).await.unwrap();
    assert_eq!((written.changes.len(), written.runs.len()), (1, 0), "job-hook changes queue nothing");
    let change = store.get_change(written.changes[0]).await.unwrap().unwrap();
    assert_eq!((change.change_context, change.change_context_detail.as_str()), (ChangeContextKind::JobHook, HOOK_JOB));
    let failure = jobhooks_model::ports::Completion { outcome: Outcome::Failed, ..completion(failed, Outcome::Failed) };
    assert_eq!(store.complete(failure).await.unwrap(), Default::default());
    let fixed: Vec<_> = store
        .list_objects(&ct("dcim.device"))
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.field("serial") == Some(&json!("fixed")))
        .collect();
    assert_eq!(fixed.len(), 1);
    assert_eq!(receipt.runs.len(), 2);
}

/// Results are listed newest first, filtered by job, status and change, and limited.
pub async fn results_are_listed_newest_first_and_filtered<S: Storage>(store: &S) {
    hooked(store).await;
    let hooked_runs = save(store, &[device("1", "A")]).await;
    let pressed = press(store, "2").await;
    let all: Vec<RunId> = store.list_results(&ResultFilter::default()).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(all, [pressed, hooked_runs.runs[0]]);
    let filter = ResultFilter::default().job(BUTTON_JOB);
    assert_eq!(store.list_results(&filter).await.unwrap()[0].id, pressed);
    let filter = ResultFilter::default().change(hooked_runs.changes[0]);
    assert_eq!(store.list_results(&filter).await.unwrap()[0].id, hooked_runs.runs[0]);
    let claimed = lease_all(store, OffsetDateTime::now_utc()).await;
    let filter = ResultFilter::default().status(JobStatus::Started);
    assert_eq!(store.list_results(&filter).await.unwrap().len(), 2);
    store.complete(completion(&claimed[0].0, Outcome::Succeeded { writes: None })).await.unwrap();
    let filter = ResultFilter::default().status(JobStatus::Success);
    assert_eq!(store.list_results(&filter).await.unwrap().len(), 1);
    let filter = ResultFilter::default().limit(1);
    assert_eq!(store.list_results(&filter).await.unwrap().len(), 1);
    // A count agrees with the whole list of its filter, whatever the limit.
    let filters = [
        ResultFilter::default(),
        ResultFilter::default().limit(1),
        ResultFilter::default().job(BUTTON_JOB),
        ResultFilter::default().change(hooked_runs.changes[0]),
        ResultFilter::default().status(JobStatus::Started),
        ResultFilter::default().status(JobStatus::Success),
        ResultFilter::default().status(JobStatus::Pending),
        ResultFilter::default().status(JobStatus::Success).status(JobStatus::Started),
        ResultFilter::default().job(BUTTON_JOB).job(HOOK_JOB).status(JobStatus::Success),
        ResultFilter::default().id(pressed).id(RunId(999_999)),
        ResultFilter::default().id(pressed).change(hooked_runs.changes[0]),
        ResultFilter::default().change(hooked_runs.changes[0]).change(jobhooks_model::ChangeId(999_999)),
    ];
    // Every filter lists exactly what it admits, newest first.
    let everything = store.list_results(&ResultFilter::default()).await.unwrap();
    for filter in &filters {
        let admitted: Vec<RunId> = everything.iter().filter(|r| filter.admits(r)).map(|r| r.id).collect();
        let listed: Vec<RunId> = store.list_results(&filter.unpaged()).await.unwrap().iter().map(|r| r.id).collect();
        assert_eq!(listed, admitted, "{filter:?}");
    }
    // A user filter lists that user's runs only; an offset skips the first of what a filter admits,
    // and a count ignores it.
    let pressed_by = store.get_result(pressed).await.unwrap().unwrap().user.expect("a press has its user");
    let by_user = ResultFilter::default().user(pressed_by.clone());
    let listed = store.list_results(&by_user).await.unwrap();
    assert!(listed.iter().all(|result| result.user.as_ref() == Some(&pressed_by)) && listed[0].id == pressed);
    let nobody = ResultFilter::default().user("nobody");
    assert!(store.list_results(&nobody).await.unwrap().is_empty());
    assert_eq!(store.count_results(&nobody).await.unwrap(), 0);
    let filters: Vec<ResultFilter> = filters.into_iter().chain([by_user, nobody]).collect();
    for filter in filters {
        let whole = store.list_results(&filter.unpaged().offset(filter.offset)).await.unwrap();
        assert_eq!(store.count_results(&filter).await.unwrap(), whole.len() as u64, "{filter:?}");
        let whole: Vec<RunId> = whole.iter().map(|result| result.id).collect();
        for offset in 0..=whole.len() + 1 {
            let skipped = filter.unpaged().offset(offset).limit(1);
            let page: Vec<RunId> = store.list_results(&skipped).await.unwrap().iter().map(|r| r.id).collect();
            let expected: Vec<RunId> = whole.iter().skip(offset).take(1).copied().collect();
            assert_eq!(page, expected, "{skipped:?}");
            assert_eq!(store.count_results(&skipped).await.unwrap(), whole.len() as u64, "{skipped:?}");
        }
    }
    assert_eq!(store.get_result(RunId(9_999)).await.unwrap(), None);
}

/// Pruning removes ended results past `results_for` and changes past `changes_for`, never a
/// pending, running, retrying or dead-lettered run, never an object's latest change, never a
/// change whose runs are kept.
pub async fn retention_prunes_only_what_it_may<S: Storage>(store: &S) {
    hooked(store).await;
    let old = save(store, &[device("1", "A"), device("2", "A"), device("3", "A")]).await;
    assert_eq!(store.count_changes().await.unwrap(), 3);
    save(store, &[device("1", "B")]).await;
    assert_eq!(store.count_changes().await.unwrap(), 4, "a count after a commit takes it in");
    let now = OffsetDateTime::now_utc();
    let mut claimed = lease_all(store, now).await;
    claimed.sort_by_key(|(lease, _)| lease.run);
    store.complete(completion(&claimed[0].0, Outcome::Succeeded { writes: None })).await.unwrap();
    store.complete(completion(&claimed[1].0, Outcome::DeadLettered)).await.unwrap();
    let later = now + Duration::from_secs(7_200);
    let keep_forever = store.prune(&Retention::default(), later).await.unwrap();
    assert_eq!((keep_forever.results, keep_forever.changes), (0, 0));
    let hour = Some(Duration::from_secs(3_600));
    let report = store.prune(&Retention { results_for: hour, changes_for: hour }, later).await.unwrap();
    assert_eq!(report.results, 1, "only the ended result");
    assert_eq!(store.get_result(old.runs[0]).await.unwrap(), None);
    assert_eq!(store.get_result(old.runs[1]).await.unwrap().unwrap().status, JobStatus::DeadLettered);
    assert!(store.get_result(old.runs[2]).await.unwrap().is_some(), "a leased run is kept");
    assert_eq!(report.changes, 1, "only device 1's create: its run's result is gone and it is not the latest");
    assert_eq!(store.count_changes().await.unwrap(), 3, "a count after a prune takes it in");
    save(store, &[device("4", "A")]).await;
    assert_eq!(store.count_changes().await.unwrap(), 4);
    assert_eq!(store.get_change(old.changes[0]).await.unwrap(), None);
    assert!(store.get_change(old.changes[1]).await.unwrap().is_some());
    assert_eq!(store.get_object(&reference("1")).await.unwrap(), Some(device("1", "B")));
    assert_eq!(store.latest_changes(100).await.unwrap().len(), 4, "the count is the log's");
    let again = store.prune(&Retention { results_for: hour, changes_for: hour }, later).await.unwrap();
    assert_eq!((again.results, again.changes), (0, 0));
}

/// Commits that queue runs, completions and releases raise the work generation and wake waiters.
pub async fn work_is_signalled<S: Storage>(store: &S) {
    hooked(store).await;
    let seen = store.work_generation();
    save(store, &[device("1", "A")]).await;
    assert!(store.work_generation() > seen, "a commit that queues runs signals");
    let seen = store.work_generation();
    let waited =
        tokio::time::timeout(Duration::from_secs(10), store.wait_for_work(seen - 1, Duration::from_secs(60))).await;
    assert!(waited.is_ok(), "a waiter that has not seen the latest work returns at once");
    let (lease, _) = store.lease_next(OffsetDateTime::now_utc(), LEASE).await.unwrap().unwrap();
    let seen = store.work_generation();
    store.complete(completion(&lease, Outcome::Succeeded { writes: None })).await.unwrap();
    assert!(store.work_generation() > seen, "a completion signals");
}

#[derive(Debug, Clone)]
enum QueueOp {
    Press { object: u8 },
    Lease,
    Complete { pick: prop::sample::Index, outcome: u8 },
    Expire,
    Replay { pick: prop::sample::Index },
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    prop_oneof![
        3 => (0u8..3).prop_map(|object| QueueOp::Press { object }),
        3 => Just(QueueOp::Lease),
        3 => (any::<prop::sample::Index>(), 0u8..4).prop_map(|(pick, outcome)| QueueOp::Complete { pick, outcome }),
        1 => Just(QueueOp::Expire),
        1 => any::<prop::sample::Index>().prop_map(|pick| QueueOp::Replay { pick }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Pending,
    Leased,
    Retrying,
    Dead,
    Done,
}

/// The queue as a proptest against a model: random presses, leases, completions (every
/// outcome), lapses and replays; after each step every run's status and the queue's depth match
/// the model, and a lease claims exactly the model's oldest claimable runs, one per object line.
pub fn queue_follows_its_model<S, G, F, Fut>(fresh: F)
where
    S: Storage,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (S, G)>,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(ops in prop::collection::vec(queue_op(), 1..40))| {
        runtime.block_on(async {
            let (store, _guard) = fresh().await;
            ready(&store).await;
            save(&store, &[device("0", "A"), device("1", "A"), device("2", "A")]).await;
            let mut clock = OffsetDateTime::now_utc();
            // Every run in the order it joined its object's line (a replay joins anew).
            let mut model: Vec<(RunId, u8, Expected)> = Vec::new();
            let mut leases = BTreeMap::new();
            for op in ops {
                match op {
                    QueueOp::Press { object } => {
                        let run = press(&store, &object.to_string()).await;
                        model.push((run, object, Expected::Pending));
                    }
                    QueueOp::Lease => {
                        // Claimable: per object, the first unfinished run, unless it is claimed
                        // (retries fall due at once on this test's clock).
                        let mut heads = BTreeMap::new();
                        for &(run, object, state) in &model {
                            if matches!(state, Expected::Pending | Expected::Leased | Expected::Retrying) {
                                heads.entry(object).or_insert((run, state));
                            }
                        }
                        let mut expected: Vec<RunId> =
                            heads.values().filter(|(_, state)| *state != Expected::Leased).map(|(run, _)| *run).collect();
                        expected.sort();
                        let claimed = store.lease_batch(clock, LEASE, 100).await.unwrap();
                        prop_assert_eq!(runs(&claimed), expected);
                        for (lease, _) in claimed {
                            set(&mut model, lease.run, Expected::Leased);
                            leases.insert(lease.run, lease);
                        }
                    }
                    QueueOp::Complete { pick, outcome } => {
                        if leases.is_empty() { continue; }
                        let held: Vec<RunId> = leases.keys().copied().collect();
                        let run = held[pick.index(held.len())];
                        let lease = leases.remove(&run).unwrap();
                        let (outcome, next) = match outcome {
                            0 => (Outcome::Succeeded { writes: None }, Expected::Done),
                            1 => (Outcome::Failed, Expected::Done),
                            2 => (Outcome::RetryAt(clock), Expected::Retrying),
                            _ => (Outcome::DeadLettered, Expected::Dead),
                        };
                        store.complete(completion(&lease, outcome)).await.unwrap();
                        set(&mut model, run, next);
                    }
                    QueueOp::Expire => {
                        clock += LEASE + Duration::from_secs(1);
                        let released = store.release_expired(clock).await.unwrap();
                        prop_assert_eq!(released, leases.len());
                        for run in std::mem::take(&mut leases).into_keys() {
                            set(&mut model, run, Expected::Pending);
                        }
                    }
                    QueueOp::Replay { pick } => {
                        let dead: Vec<usize> =
                            (0..model.len()).filter(|&i| model[i].2 == Expected::Dead).collect();
                        if dead.is_empty() { continue; }
                        let (run, object, _) = model.remove(dead[pick.index(dead.len())]);
                        store.replay(run).await.unwrap();
                        model.push((run, object, Expected::Pending));
                    }
                }
                let mut depth = QueueDepth::default();
                for &(run, _, state) in &model {
                    let status = store.get_result(run).await.unwrap().map(|r| r.status);
                    let wanted = match state {
                        Expected::Pending => JobStatus::Pending,
                        Expected::Leased => JobStatus::Started,
                        Expected::Retrying => JobStatus::Retrying,
                        Expected::Dead => JobStatus::DeadLettered,
                        Expected::Done => {
                            prop_assert!(matches!(status, Some(JobStatus::Success | JobStatus::Failure)), "run {}", run);
                            continue;
                        }
                    };
                    prop_assert_eq!(status, Some(wanted), "run {}", run);
                    match state {
                        Expected::Pending | Expected::Retrying => depth.pending += 1,
                        Expected::Leased => depth.leased += 1,
                        _ => depth.dead += 1,
                    }
                }
                prop_assert_eq!(store.depth().await.unwrap(), depth);
            }
            Ok(())
        })?;
    });
}

fn set(model: &mut [(RunId, u8, Expected)], run: RunId, state: Expected) {
    if let Some(entry) = model.iter_mut().find(|(other, _, _)| *other == run) {
        entry.2 = state;
    }
}

/// A hook's conditions and changed fields are kept with it and decide, when a change commits,
/// whether it queues a run; a save that changes nothing records no change and queues nothing.
pub async fn hook_conditions_decide_at_commit_and_no_op_saves_record_nothing<S: Storage>(store: &S) {
    use jobhooks_model::Condition;
    ready(store).await;
    let active = Condition::from_json(&json!({"or": [
        {"attr": "postchange.serial", "value": "ACTIVE"},
        {"attr": "prechange.serial", "op": "regex", "value": "OLD-\\d+"}
    ]}))
    .unwrap();
    let conditional = hook("conditional", &["dcim.device"], &[Action::Create, Action::Update]).when(active.clone());
    let stored = store.create_hook(conditional).await.unwrap();
    assert_eq!(stored.conditions.as_ref(), Some(&active), "conditions are stored with the hook");
    let reread = store.get_hook("conditional").await.unwrap().unwrap();
    assert_eq!(reread.conditions, Some(active));

    let runs_of = |receipt: &jobhooks_model::ports::CommitReceipt| receipt.runs.len();
    // Created with serial A: the condition is false.
    assert_eq!(runs_of(&save(store, &[device("1", "A")]).await), 0);
    // Updated to ACTIVE: the condition holds.
    assert_eq!(runs_of(&save(store, &[device("1", "ACTIVE")]).await), 1);
    // Saved again with the same data: no change, no run.
    let again = save(store, &[device("1", "ACTIVE")]).await;
    assert!(again.changes.is_empty() && again.runs.is_empty(), "{again:?}");
    assert_eq!(store.changes_for_object(&reference("1"), 10).await.unwrap().len(), 2);
    // Updated from OLD-7: the prechange matches the regex.
    save(store, &[device("2", "OLD-7")]).await;
    assert_eq!(runs_of(&save(store, &[device("2", "NEW")]).await), 1);

    // No conditions, and updates only of the serial.
    let patch =
        JobHookPatch { conditions: Some(None), changed_fields: Some(vec!["serial".into()]), ..Default::default() };
    let updated = store.update_hook("conditional", patch).await.unwrap();
    assert_eq!((updated.conditions, updated.changed_fields.as_slice()), (None, &["serial".to_owned()][..]));
    assert_eq!(runs_of(&save(store, &[device("3", "A")]).await), 1, "creates are not narrowed by fields");
    let renamed = Object::new(reference("3"), "dev-3", json!({"name": "renamed", "serial": "A"})).unwrap();
    assert_eq!(runs_of(&save(store, &[renamed]).await), 0, "the serial did not change");
    assert_eq!(runs_of(&save(store, &[device("3", "B")]).await), 1, "the serial changed");
}

/// A webhook hook is kept whole (its secret too) and its runs keep the hook they send for: read
/// back from the queue and from the results, and through a claim.
pub async fn webhook_hooks_and_their_runs_keep_their_hook<S: Storage>(store: &S) {
    use jobhooks_model::{HttpMethod, WEBHOOK_JOB, Webhook};
    let linked = [spec(HOOK_JOB, JobKind::JobHookReceiver), spec(WEBHOOK_JOB, JobKind::JobHookReceiver)];
    store.sync_jobs(&linked, SyncMode::Full).await.expect("the jobs sync");
    let webhook = Webhook::new("https://cmdb.example/{{ model }}")
        .method(HttpMethod::Patch)
        .header("X-Source", "jobhooks")
        .body("{{ data.name }}")
        .secret("s3cret")
        .without_tls_verification();
    let hook = JobHook::webhook("cmdb", vec![ct("dcim.device")], webhook).on([Action::Create]);
    let stored = store.create_hook(hook.clone()).await.expect("the webhook is valid: its job starts enabled");
    assert_eq!(stored.webhook, hook.webhook);
    assert_eq!(store.get_hook("cmdb").await.unwrap().unwrap().webhook, hook.webhook, "read back whole");

    let receipt = save(store, &[device("1", "A")]).await;
    assert_eq!(receipt.runs.len(), 1);
    let queued = store.get_result(receipt.runs[0]).await.unwrap().unwrap();
    assert_eq!(queued.job, WEBHOOK_JOB);
    assert_eq!(queued.inputs, JobInputs::Hook { object_change: receipt.changes[0], hook: Some(stored.id) });
    let claimed = lease_all(store, OffsetDateTime::now_utc()).await;
    let (_, claimed) = claimed.iter().find(|(_, run)| run.id == receipt.runs[0]).expect("the run is claimed");
    assert_eq!(claimed.inputs, queued.inputs, "a claim reads the hook too");
}

/// The change log is filtered by the store: what `find_changes` lists is the newest-first page of
/// what the filter admits, and `count_changes_where` counts all of them, for filters on the whole
/// log, on one object, on one request and on fields no index holds.
pub async fn changes_are_found_by_every_filter<S: Storage>(store: &S) {
    use jobhooks_model::ChangeFilter;
    hooked(store).await;
    save(store, &[device("1", "A"), device("2", "A")]).await;
    let bob = ChangeContext::new(ChangeContextKind::Job, Some("bob".into()), "nightly");
    let mut changes = ChangeSet::default();
    changes.save(&device("1", "B"), Some(&device("1", "A")));
    store.commit(&bob, changes, ObjectWrites::Apply).await.unwrap();
    delete(store, "2").await;
    save(store, &[device("3", "A")]).await;
    let far = OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    let mut log = store.changes_between(OffsetDateTime::UNIX_EPOCH, far, usize::MAX).await.unwrap();
    log.reverse();
    let filters = [
        ChangeFilter::default(),
        edited(|filter: &mut ChangeFilter| {
            filter.content_types = vec![ct("dcim.device")];
            filter.object_ids = vec!["1".into()];
        }),
        edited(|filter: &mut ChangeFilter| filter.actions = vec![Action::Update, Action::Delete]),
        edited(|filter: &mut ChangeFilter| filter.users = vec!["bob".into()]),
        edited(|filter: &mut ChangeFilter| filter.user_names = vec!["alice".into()]),
        edited(|filter: &mut ChangeFilter| filter.request_ids = vec![bob.request_id]),
        edited(|filter: &mut ChangeFilter| {
            filter.change_contexts = vec![ChangeContextKind::Job];
            filter.change_context_details = vec!["nightly".into()];
        }),
        edited(|filter: &mut ChangeFilter| filter.search = vec!["DEV-".into(), "3".into()]),
        edited(|filter: &mut ChangeFilter| filter.object_reprs = vec!["dev-2".into()]),
        edited(|filter: &mut ChangeFilter| filter.object_ids = vec!["2".into(), "3".into()]),
        edited(|filter: &mut ChangeFilter| filter.ids = vec![log[0].id, log[4].id]),
        edited(|filter: &mut ChangeFilter| filter.content_types = vec![ct("dcim.rack")]),
    ];
    let expected_counts = [5, 2, 2, 1, 4, 1, 1, 1, 2, 3, 2, 0];
    for (filter, expected) in filters.iter().zip(expected_counts) {
        let admitted: Vec<_> = log.iter().filter(|change| filter.admits(change)).cloned().collect();
        assert_eq!(admitted.len(), expected, "{filter:?}");
        assert_eq!(store.count_changes_where(filter).await.unwrap(), expected as u64, "{filter:?}");
        for offset in 0..=expected + 1 {
            let page = store.find_changes(filter, offset, 2).await.unwrap();
            let wanted: Vec<_> = admitted.iter().skip(offset).take(2).cloned().collect();
            assert_eq!(page, wanted, "{filter:?} at {offset}");
        }
    }
}

/// Objects, changes and results can be walked a page at a time in their order (objects by the
/// bytes of their ids, changes and results by id), the pages together listing what the whole
/// listings do; an export holds what was committed before it started, and leaves a change
/// committed while it runs, and that change's runs, to the next export.
pub async fn walks_page_by_page_through_every_record<S: Storage>(store: &S) {
    use jobhooks_model::transfer::{Exporter, Record};
    hooked(store).await;
    let ids = ["9", "10", "a", "a!", "b", "é", "Z"];
    for id in ids {
        save(store, &[device(id, "A")]).await;
    }
    let rack = Object::new(ObjectRef::new(ct("dcim.rack"), "r1").unwrap(), "r1", json!({})).unwrap();
    let mut changes = ChangeSet::default();
    changes.save(&rack, None);
    store.commit(&web("alice"), changes, ObjectWrites::Apply).await.unwrap();
    delete(store, "b").await;
    let now = OffsetDateTime::now_utc();
    // Some runs end, one is leased, the rest wait: every state is walked.
    let claimed = lease_all(store, now).await;
    for (lease, _) in claimed.iter().skip(1) {
        store.complete(completion(lease, Outcome::Succeeded { writes: None })).await.unwrap();
    }
    let pressed = press(store, "a").await;

    let mut walked = Vec::new();
    let mut after = jobhooks_model::ChangeId(0);
    loop {
        let page = store.changes_after(after, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.id;
        walked.extend(page);
    }
    let far = now + Duration::from_secs(86_400);
    assert_eq!(walked, store.changes_between(OffsetDateTime::UNIX_EPOCH, far, usize::MAX).await.unwrap());
    assert_eq!(walked.len(), ids.len() + 2);

    for content_type in [ct("dcim.device"), ct("dcim.rack")] {
        let mut walked: Vec<Object> = Vec::new();
        loop {
            let after = walked.last().map(|object| object.reference().id().to_owned());
            let page = store.objects_after(&content_type, after.as_deref(), 2).await.unwrap();
            assert!(page.len() <= 2);
            if page.is_empty() {
                break;
            }
            walked.extend(page);
        }
        assert_eq!(walked, store.list_objects(&content_type).await.unwrap(), "{content_type}");
        let walked_ids: Vec<&str> = walked.iter().map(|object| object.reference().id()).collect();
        let mut by_bytes = walked_ids.clone();
        by_bytes.sort_unstable();
        assert_eq!(walked_ids, by_bytes, "objects by the bytes of their ids");
    }
    assert_eq!(store.list_objects(&ct("dcim.device")).await.unwrap().len(), ids.len() - 1);

    let mut walked: Vec<JobResult> = Vec::new();
    loop {
        let after = walked.last().map_or(RunId(0), |result| result.id);
        let page = store.results_after(after, 2).await.unwrap();
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        walked.extend(page);
    }
    let mut newest_first = store.list_results(&ResultFilter::default()).await.unwrap();
    newest_first.reverse();
    assert_eq!(walked, newest_first);
    assert_eq!(walked.last().map(|result| result.id), Some(pressed));

    // An export leaves out what is committed after it starts.
    let mut exporter = Exporter::new(store, now).await.unwrap();
    let header = exporter.next_records().await.unwrap().unwrap();
    assert!(matches!(header.as_slice(), [Record::Header(_)]));
    let late = save(store, &[device("late", "A")]).await;
    let mut exported = Vec::new();
    while let Some(records) = exporter.next_records().await.unwrap() {
        exported.extend(records);
    }
    let exported_changes: Vec<_> = exported
        .iter()
        .filter_map(|record| if let Record::Change(change) = record { Some(change.id) } else { None })
        .collect();
    assert_eq!(exported_changes, walked_change_ids(store, late.changes[0]).await);
    let exported_runs: Vec<RunId> = exported
        .iter()
        .filter_map(|record| if let Record::Result(result) = record { Some(result.id) } else { None })
        .collect();
    assert_eq!(exported_runs, walked.iter().map(|result| result.id).collect::<Vec<_>>());
    assert!(late.runs.iter().all(|run| !exported_runs.contains(run)));
}

/// The ids of the changes before `before`.
async fn walked_change_ids<S: Storage>(store: &S, before: jobhooks_model::ChangeId) -> Vec<jobhooks_model::ChangeId> {
    let all = store.changes_after(jobhooks_model::ChangeId(0), usize::MAX).await.unwrap();
    all.iter().map(|change| change.id).filter(|id| *id < before).collect()
}

/// An export of a store, restored into a new store of the same kind, reads back the same (runs
/// that had not ended are pending again), and the new store goes on from it: new changes and runs
/// are numbered after the export's, the restored runs are claimed in their lines' order, and the
/// store refuses a second import.
pub async fn a_snapshot_restores_into_a_new_store_as_it_was<S: Storage + jobhooks_model::ports::Restore>(
    source: &S,
    target: &S,
) {
    use jobhooks_model::transfer::{export, restored_status};
    hooked(source).await;
    source.put_user(jobhooks_model::User::new("alice").unwrap()).await.unwrap();
    let token = jobhooks_model::ApiToken::issue("alice", OffsetDateTime::now_utc(), None, "laptop").token;
    source.add_token(token).await.unwrap();
    let button = jobhooks_model::JobButton::new("b", vec![ct("dcim.device")], "Go", BUTTON_JOB);
    source.create_button(button).await.unwrap();
    save(source, &[device("1", "A"), device("2", "A")]).await;
    save(source, &[device("1", "B")]).await;
    delete(source, "2").await;
    let now = OffsetDateTime::now_utc();
    // The creates' hook runs succeed; device 1's update run is claimed at export time; a press on
    // device 2 is dead-lettered, and a second press on it is pending.
    let claimed = lease_all(source, now).await;
    assert_eq!(claimed.len(), 2, "the head of each device's line");
    for (lease, _) in &claimed {
        source.complete(completion(lease, Outcome::Succeeded { writes: None })).await.unwrap();
    }
    let dead = press(source, "2").await;
    let pending = press(source, "2").await;
    let claimed = lease_all(source, now).await;
    assert_eq!(claimed.len(), 2, "device 1's update run and the first press");
    let (dead_lease, _) = claimed.iter().find(|(lease, _)| lease.run == dead).unwrap();
    source.complete(completion(dead_lease, Outcome::DeadLettered)).await.unwrap();
    let snapshot = export(source, now).await.unwrap();
    assert_eq!((snapshot.changes.len(), snapshot.results.len(), snapshot.objects.len()), (4, 5, 1));

    let report = target.restore(&snapshot).await.unwrap();
    assert_eq!((report.changes, report.results, report.queued), (4, 5, 2));
    let mut expected = snapshot.clone();
    for result in &mut expected.results {
        result.status = restored_status(result.status);
    }
    let restored = export(target, now).await.unwrap();
    assert_eq!(restored, expected);
    assert_eq!(target.depth().await.unwrap(), QueueDepth { pending: 2, leased: 0, dead: 1 });

    // The restored store goes on: ids after the export's, runs claimed in their lines.
    let next = save(target, &[device("3", "A")]).await;
    assert!(next.changes[0] > snapshot.changes.last().unwrap().id);
    assert!(next.runs[0] > snapshot.results.last().unwrap().id);
    let claimable = runs(&lease_all(target, now).await);
    let unfinished: Vec<RunId> = expected.results.iter().filter(|r| !r.status.is_final()).map(|r| r.id).collect();
    assert!(unfinished.iter().all(|run| claimable.contains(run)), "{claimable:?} {unfinished:?}");
    assert!(claimable.contains(&pending));
    assert!(matches!(target.restore(&snapshot).await.unwrap_err(), jobhooks_model::ports::RestoreError::NotNew { .. }));
}

/// Runs keep moving along their lines while changes of the same objects are committed and runs
/// are completed at the same time: every run completes, none waits behind a finished run, and
/// each object's runs complete in the order of its changes. (Concurrent in one task: a store
/// that serves requests in parallel, as PostgreSQL does, interleaves them.)
pub async fn lines_keep_moving_under_concurrent_commits_and_completions<S: Storage>(store: &S) {
    const OBJECTS: usize = 16;
    const ROUNDS: usize = 10;
    hooked(store).await;
    let total = OBJECTS * ROUNDS;
    let object_of: std::sync::Mutex<BTreeMap<jobhooks_model::ChangeId, usize>> = Default::default();
    // Completions are recorded under the lock they are made under: a run's successor can be
    // claimed the moment the run completes, so a record made after the lock is released could
    // land after the successor's and show an order the store never allowed.
    let completed: tokio::sync::Mutex<Vec<(usize, jobhooks_model::ChangeId)>> = Default::default();
    let committers = (0..OBJECTS).map(|object| {
        let object_of = &object_of;
        async move {
            for round in 0..ROUNDS {
                let receipt = save(store, &[device(&object.to_string(), &round.to_string())]).await;
                let mut object_of = object_of.lock().unwrap();
                object_of.extend(receipt.changes.iter().map(|&change| (change, object)));
            }
        }
    });
    let workers = (0..4).map(|_| {
        let (object_of, completed) = (&object_of, &completed);
        async move {
            while completed.lock().await.len() < total {
                let seen = store.work_generation();
                let claimed = store.lease_batch(OffsetDateTime::now_utc(), LEASE, 4).await.expect("leasing works");
                if claimed.is_empty() {
                    store.wait_for_work(seen, Duration::from_millis(20)).await;
                    continue;
                }
                let batch = claimed.iter().map(|(lease, _)| completion(lease, Outcome::Succeeded { writes: None }));
                let mut completed = completed.lock().await;
                let outcomes = store.complete_batch(batch.collect()).await.expect("the batch is recorded");
                assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
                let object_of = object_of.lock().unwrap();
                for (_, result) in &claimed {
                    let change = result.change_id().expect("a hook run");
                    completed.push((object_of.get(&change).copied().unwrap_or(usize::MAX), change));
                }
            }
        }
    });
    let everything = async {
        tokio::join!(join_all(committers), join_all(workers));
    };
    if tokio::time::timeout(Duration::from_secs(120), everything).await.is_err() {
        let depth = store.depth().await.unwrap();
        panic!("the lines stalled: {} of {total} runs completed; {depth:?}", completed.lock().await.len());
    }
    let completed = completed.into_inner();
    assert_eq!(completed.len(), total, "every run completes once");
    for object in 0..OBJECTS {
        let order: Vec<_> = completed.iter().filter(|(of, _)| *of == object).map(|(_, change)| *change).collect();
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "object {object}'s runs in order: {order:?}");
        assert_eq!(order.len(), ROUNDS);
    }
    assert_eq!(store.depth().await.unwrap(), QueueDepth::default());
}

/// Awaits every future of `futures`, concurrently in this task.
async fn join_all<F: std::future::Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|context| {
        pending.retain_mut(|future| future.as_mut().poll(context).is_pending());
        if pending.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
}
