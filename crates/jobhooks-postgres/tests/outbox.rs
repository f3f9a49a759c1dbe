//! The outbox in the application's own transaction: changes recorded with `PgStore::commit_in`
//! commit or roll back with the application's writes, their hook runs included.

use jobhooks_model::ports::{ChangeStore, ObjectWrites, QueueReader, ResultFilter};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ChangeSet, ContentType, Object, ObjectRef, PendingChange, json,
};
use jobhooks_postgres::PgStore;
use jobhooks_postgres::testing::TestServer;
use tokio_postgres::NoTls;

const JOB: &str = "app::jobs::Audit";

/// A fresh database at schema `version`: the first `version` migrations applied and recorded, as
/// a store of that version left it. Answers its URL and a connection to it.
async fn database_at_schema(version: usize) -> (String, tokio_postgres::Client) {
    let url = TestServer::shared().fresh_database().await;
    let (app, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    for migration in &jobhooks_postgres::MIGRATIONS[..version] {
        app.batch_execute(migration).await.unwrap();
    }
    let record = format!(
        "CREATE TABLE jobhooks_schema (version integer NOT NULL); INSERT INTO jobhooks_schema VALUES ({version});"
    );
    app.batch_execute(&record).await.unwrap();
    (url, app)
}

fn device(id: &str) -> Object {
    let reference = ObjectRef::new(ContentType::new("dcim.device").unwrap(), id).unwrap();
    Object::new(reference, id, json!({"name": id})).unwrap()
}

/// The job `JOB`, installed and enabled, with a hook on device creations.
async fn install_hook(store: &PgStore) {
    jobhooks_postgres::testing::install_device_hook(store, "audit", JOB, [Action::Create]).await;
}

#[tokio::test]
async fn changes_recorded_in_the_applications_transaction_commit_and_roll_back_with_it() {
    let url = TestServer::shared().fresh_database().await;
    let store = PgStore::connect(&url).await.unwrap();
    install_hook(&store).await;

    // The application's own connection and table.
    let (mut app, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    app.batch_execute("CREATE TABLE devices (id text PRIMARY KEY, name text NOT NULL)").await.unwrap();
    let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
    let record = |id: &str| {
        let mut changes = ChangeSet::default();
        changes.record(PendingChange::new(Action::Create, &device(id)));
        changes
    };

    // Rolled back: neither the application's row nor the change nor its run exists.
    let transaction = app.transaction().await.unwrap();
    transaction.execute("INSERT INTO devices VALUES ('d1', 'd1')", &[]).await.unwrap();
    let receipt = store.commit_in(&transaction, &context, record("d1"), ObjectWrites::RecordOnly).await.unwrap();
    assert_eq!(receipt.runs.len(), 1, "the hook matched inside the transaction");
    transaction.rollback().await.unwrap();
    assert_eq!(app.query("SELECT 1 FROM devices", &[]).await.unwrap().len(), 0);
    assert_eq!(store.get_change(receipt.changes[0]).await.unwrap(), None);
    assert!(store.list_results(&ResultFilter::default()).await.unwrap().is_empty());

    // Committed: all three are there together.
    let transaction = app.transaction().await.unwrap();
    transaction.execute("INSERT INTO devices VALUES ('d2', 'd2')", &[]).await.unwrap();
    let receipt = store.commit_in(&transaction, &context, record("d2"), ObjectWrites::RecordOnly).await.unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(app.query("SELECT 1 FROM devices", &[]).await.unwrap().len(), 1);
    let change = store.get_change(receipt.changes[0]).await.unwrap().expect("the change committed");
    assert_eq!(change.changed_object_id, "d2");
    let results = store.list_results(&ResultFilter::default()).await.unwrap();
    assert_eq!(results.iter().map(|r| r.id).collect::<Vec<_>>(), receipt.runs);
    // Record-only: the store's own repository was left alone.
    assert_eq!(store.list_objects(&ContentType::new("dcim.device").unwrap()).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_second_connect_finds_the_schema_migrated_and_a_newer_schema_is_refused() {
    let url = TestServer::shared().fresh_database().await;
    let (first, second) = tokio::join!(PgStore::connect(&url), PgStore::connect(&url));
    first.unwrap();
    second.unwrap();
    let (app, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let version: i32 = app.query_one("SELECT version FROM jobhooks_schema", &[]).await.unwrap().get(0);
    assert_eq!(version as usize, PgStore::schema_version());
    app.execute("UPDATE jobhooks_schema SET version = version + 1", &[]).await.unwrap();
    let refused = PgStore::connect(&url).await.err().expect("a newer schema is refused");
    assert!(refused.to_string().contains("upgrade jobhooks"), "{refused}");
}

/// Migration 6: the queue's table is vacuumed after a fixed number of dead rows, however large it
/// grows, so that claims step over a bounded number of entries finished runs left in its indexes.
#[tokio::test]
async fn the_queue_is_vacuumed_after_a_fixed_number_of_dead_rows() {
    let url = TestServer::shared().fresh_database().await;
    PgStore::connect(&url).await.unwrap();
    let (app, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let options: Vec<String> =
        app.query_one("SELECT reloptions FROM pg_class WHERE relname = 'jobhooks_runs'", &[]).await.unwrap().get(0);
    assert_eq!(options, ["autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=10000"]);
}

/// Migration 3 marks the heads of the object lines of a queue written by schema 2: the runs behind
/// an unfinished run wait for it, as they did.
#[tokio::test]
async fn a_queue_of_schema_2_keeps_its_object_order_after_migrating() {
    use jobhooks_model::ports::{Completion, JobQueue, Outcome};
    let (url, app) = database_at_schema(2).await;
    app.batch_execute(
        "INSERT INTO jobhooks_runs (id, job, object_pk, object_model_name, status, attempts, leases, created, logs,
             line, place)
         VALUES (1, 'app::jobs::Audit', 'a', 'dcim.device', 'SUCCESS', 1, 1, now(), '[]', 'dcim.device/a', 1),
                (2, 'app::jobs::Audit', 'a', 'dcim.device', 'PENDING', 0, 0, now(), '[]', 'dcim.device/a', 2),
                (3, 'app::jobs::Audit', 'a', 'dcim.device', 'PENDING', 0, 0, now(), '[]', 'dcim.device/a', 3),
                (4, 'app::jobs::Audit', 'b', 'dcim.device', 'PENDING', 0, 0, now(), '[]', NULL, 4);
         SELECT setval('jobhooks_run_ids', 4); SELECT setval('jobhooks_line_places', 4);",
    )
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let now = jobhooks_model::OffsetDateTime::now_utc();
    let lease = std::time::Duration::from_secs(60);
    let claimed = store.lease_batch(now, lease, 10).await.unwrap();
    let ids: Vec<u64> = claimed.iter().map(|(lease, _)| lease.run.0).collect();
    assert_eq!(ids, [2, 4], "the head of the line and the run without a line, not the run behind the head");
    let (head, _) = claimed.into_iter().next().unwrap();
    let completion = Completion { lease: head, outcome: Outcome::Succeeded { writes: None }, logs: Vec::new() };
    store.complete(completion).await.unwrap();
    let next = store.lease_batch(now, lease, 10).await.unwrap();
    assert_eq!(next.iter().map(|(lease, _)| lease.run.0).collect::<Vec<_>>(), [3]);
}

/// Migration 7 adds the job records' suspension: a catalog of schema 6 reads back with nothing to
/// restore, and a job recorded under the name `std::any::type_name` gave an instance is renamed
/// with its hook; a full sync then remembers what it disabled, and a restore gives it back.
#[tokio::test]
async fn a_catalog_of_schema_6_migrates_renames_and_restores() {
    use jobhooks_model::ports::Catalog;
    use jobhooks_model::{JobKind, JobSpec, SyncMode};
    let (url, app) = database_at_schema(6).await;
    app.batch_execute(
        "INSERT INTO jobhooks_jobs (class_path, name, description, kind, installed, enabled, hidden)
         VALUES ('app::main::Notify', 'Notify', '', 'job_hook_receiver', true, true, true);
         INSERT INTO jobhooks_hooks (name, content_types, job, enabled, type_create, type_update, type_delete)
         VALUES ('notify', '{dcim.device}', 'app::main::Notify', true, false, true, false);",
    )
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let (version,): (i32,) = {
        let row = app.query_one("SELECT version FROM jobhooks_schema", &[]).await.unwrap();
        (row.get(0),)
    };
    assert_eq!(version as usize, PgStore::schema_version());
    let stored = store.get_job("app::main::Notify").await.unwrap().unwrap();
    assert!(stored.is_runnable() && stored.suspended.is_none());
    let notify = JobSpec {
        class_path: "app::Notify".into(),
        name: "Notify".into(),
        description: String::new(),
        kind: JobKind::JobHookReceiver,
        hidden: true,
        former_class_paths: vec!["app::main::Notify".into()],
    };
    let report = store.sync_jobs(std::slice::from_ref(&notify), SyncMode::Full).await.unwrap();
    assert_eq!(report.renamed, [("app::main::Notify".to_owned(), "app::Notify".to_owned())]);
    assert_eq!(store.list_jobs().await.unwrap().len(), 1);
    assert_eq!(store.get_hook("notify").await.unwrap().unwrap().job, "app::Notify");

    store.sync_jobs(&[], SyncMode::Full).await.unwrap();
    assert!(!store.get_hook("notify").await.unwrap().unwrap().enabled);
    store.sync_jobs(&[notify], SyncMode::Full).await.unwrap();
    let report = store.restore_jobs(&[]).await.unwrap();
    assert_eq!((report.restored.len(), report.enabled_hooks.as_slice()), (1, ["notify".to_owned()].as_slice()));
    assert!(store.get_job("app::Notify").await.unwrap().unwrap().is_runnable());
    assert!(store.get_hook("notify").await.unwrap().unwrap().enabled);
}

/// A commit through one store wakes the workers of another (another process, as far as the
/// database can tell) by `NOTIFY`: its work generation grows without any local commit.
#[tokio::test]
async fn a_commit_wakes_the_workers_of_another_store() {
    use jobhooks_model::ports::JobQueue;
    let url = TestServer::shared().fresh_database().await;
    let committer = PgStore::connect(&url).await.unwrap();
    let sleeper = PgStore::connect(&url).await.unwrap();
    install_hook(&committer).await;
    // The listener's first connection wakes the workers once; wait for that, then take the mark.
    sleeper.wait_for_work(0, std::time::Duration::from_secs(30)).await;
    let seen = sleeper.work_generation();
    let waiting = sleeper.wait_for_work(seen, std::time::Duration::from_secs(30));
    let commit = async {
        let mut changes = ChangeSet::default();
        changes.record(PendingChange::new(Action::Create, &device("woken")));
        let context = ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
        committer.commit(&context, changes, ObjectWrites::Apply).await.unwrap()
    };
    let (_, receipt) = tokio::join!(waiting, commit);
    assert_eq!(receipt.runs.len(), 1);
    assert!(sleeper.work_generation() > seen, "the other store's workers were woken by the commit");
}

/// A database of schema 7 (before passwords and sessions) migrates to the current schema with its
/// users kept: they have no password until one is set, then log in, and a user's sessions go
/// with their password.
#[tokio::test]
async fn users_of_schema_7_migrate_and_gain_passwords_and_sessions() {
    use jobhooks_model::ports::{Catalog, Logins};
    use jobhooks_model::{LoginSession, OffsetDateTime, PasswordCost, PasswordHash};
    let (url, app) = database_at_schema(7).await;
    app.batch_execute("INSERT INTO jobhooks_users (username, is_superuser, permissions) VALUES ('alice', true, '[]');")
        .await
        .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    assert!(store.get_user("alice").await.unwrap().unwrap().is_superuser);
    assert_eq!(store.get_password("alice").await.unwrap(), None, "a migrated user has no password yet");
    store.set_password("alice", Some(PasswordHash::new("long enough", PasswordCost::Cheapest).unwrap())).await.unwrap();
    assert!(store.get_password("alice").await.unwrap().unwrap().verify("long enough"));
    let opened = LoginSession::open("alice", OffsetDateTime::now_utc(), "test");
    store.add_login(opened.session.clone()).await.unwrap();
    assert_eq!(store.get_login(&opened.session.id).await.unwrap(), Some(opened.session));
}

/// A database of schema 8 (before read-only tokens) migrates with its tokens able to write, as
/// every token could before.
#[tokio::test]
async fn tokens_of_schema_8_migrate_able_to_write() {
    use jobhooks_model::ports::Catalog;
    let (url, app) = database_at_schema(8).await;
    app.batch_execute(
        "INSERT INTO jobhooks_users (username, is_superuser, permissions) VALUES ('alice', false, '[]');
         INSERT INTO jobhooks_tokens (id, username, key_hash, created, expires, description)
         VALUES ('0123456789abcdef', 'alice', repeat('a', 64), now(), NULL, 'old');",
    )
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let token = store.get_token("0123456789abcdef").await.unwrap().unwrap();
    assert!(token.write_enabled, "an older token may write");
    assert_eq!(token.description, "old");
}

/// A database of schema 9 (before ids) migrates with each job, hook and button given the id the
/// model derives from its name, the one the sled store reads for its older records, and no times;
/// the next write keeps the id and stamps the times.
#[tokio::test]
async fn catalog_of_schema_9_migrates_with_derived_ids() {
    use jobhooks_model::ports::Catalog;
    use jobhooks_model::{JobHookPatch, RecordKind, derived_id};
    let (url, app) = database_at_schema(9).await;
    app.batch_execute(
        "INSERT INTO jobhooks_jobs (class_path, name, description, kind, installed, enabled, hidden)
         VALUES ('app::Audit', 'Audit', '', 'job_hook_receiver', true, true, true),
                ('app::Press', 'Press', '', 'job_button_receiver', true, true, true);
         INSERT INTO jobhooks_hooks (name, content_types, job, enabled, type_create, type_update, type_delete)
         VALUES ('audit', '{dcim.device}', 'app::Audit', true, true, false, false),
                ('ünïcode hook', '{dcim.rack}', 'app::Audit', true, true, false, false);
         INSERT INTO jobhooks_buttons
             (name, content_types, text, job, weight, group_name, button_class, confirmation, enabled)
         VALUES ('press', '{dcim.device}', 'Press', 'app::Press', 100, NULL, 'default', true, true);",
    )
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let job = store.get_job("app::Audit").await.unwrap().unwrap();
    assert_eq!((job.id, job.created), (derived_id(RecordKind::Job, "app::Audit"), None));
    for name in ["audit", "ünïcode hook"] {
        let hook = store.get_hook(name).await.unwrap().unwrap();
        assert_eq!((hook.id, hook.last_updated), (derived_id(RecordKind::JobHook, name), None), "{name}");
    }
    let button = store.get_button("press").await.unwrap().unwrap();
    assert_eq!(button.id, derived_id(RecordKind::JobButton, "press"));
    let patch = JobHookPatch { name: Some("audited".into()), ..Default::default() };
    let renamed = store.update_hook("audit", patch).await.unwrap();
    assert_eq!(renamed.id, derived_id(RecordKind::JobHook, "audit"), "a rename keeps the id");
    assert!(renamed.created.is_some() && renamed.last_updated.is_some());
    assert_eq!(store.get_hook("audited").await.unwrap(), Some(renamed));
}

/// A schema-10 database gains the index an export walks objects by (migration 11), and its objects
/// are walked in the bytes' order of their ids through it.
#[tokio::test]
async fn objects_of_schema_10_are_walked_in_byte_order_after_migrating() {
    use jobhooks_model::ports::ChangeStore;
    let (url, app) = database_at_schema(10).await;
    app.batch_execute(
        "INSERT INTO jobhooks_objects (content_type, object_id, repr, data)
         SELECT 'dcim.device', id, id, '{}' FROM unnest(ARRAY['b', 'a', 'B', 'é', '10', '9']) AS id;",
    )
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let indexed = app
        .query_one("SELECT count(*) FROM pg_indexes WHERE indexname = 'jobhooks_objects_by_id_bytes'", &[])
        .await
        .unwrap();
    assert_eq!(indexed.get::<_, i64>(0), 1);
    let device = jobhooks_model::ContentType::new("dcim.device").unwrap();
    let mut walked = Vec::new();
    loop {
        let after: Option<String> = walked.last().cloned();
        let page = store.objects_after(&device, after.as_deref(), 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        walked.extend(page.iter().map(|object| object.reference().id().to_owned()));
    }
    assert_eq!(walked, ["10", "9", "B", "a", "b", "é"]);
}

/// A schema-11 database's hooks gain conditions (none) and changed fields (none) with migration
/// 12, and keep everything else; conditions written afterwards read back.
#[tokio::test]
async fn hooks_of_schema_11_gain_empty_conditions_and_take_new_ones() {
    use jobhooks_model::ports::Catalog;
    use jobhooks_model::{Condition, JobHookPatch};
    let (url, app) = database_at_schema(11).await;
    app.batch_execute(
        "INSERT INTO jobhooks_jobs (class_path, name, description, kind, installed, enabled, hidden, id)
         VALUES ('app::Audit', 'Audit', '', 'job_hook_receiver', true, true, true, gen_random_uuid());
         INSERT INTO jobhooks_hooks (name, content_types, job, enabled, type_create, type_update, type_delete, id)
         VALUES ('audit', '{dcim.device}', 'app::Audit', true, true, true, false, gen_random_uuid());",
    )
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let hook = store.get_hook("audit").await.unwrap().unwrap();
    assert_eq!((hook.conditions, hook.changed_fields.len(), hook.type_update), (None, 0, true));
    let condition = Condition::from_json(&serde_json::json!({"attr": "postchange.status", "value": "active"})).unwrap();
    let patch = JobHookPatch {
        conditions: Some(Some(condition.clone())),
        changed_fields: Some(vec!["status".into()]),
        ..Default::default()
    };
    store.update_hook("audit", patch).await.unwrap();
    let hook = store.get_hook("audit").await.unwrap().unwrap();
    assert_eq!((hook.conditions, hook.changed_fields), (Some(condition), vec!["status".to_owned()]));
}

/// A schema-12 database's hooks and runs gain no webhook and no hook with migration 13, and keep
/// everything else; a webhook written afterwards, and its run's hook, read back.
#[tokio::test]
async fn hooks_and_runs_of_schema_12_gain_no_webhook_and_take_new_ones() {
    use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites, QueueReader};
    use jobhooks_model::{
        Action, ChangeContext, ChangeSet, JobHook, JobInputs, Object, ObjectRef, PendingChange, Webhook,
    };
    let (url, app) = database_at_schema(12).await;
    app.batch_execute(&format!(
        "INSERT INTO jobhooks_jobs (class_path, name, description, kind, installed, enabled, hidden, id)
         VALUES ('app::Audit', 'Audit', '', 'job_hook_receiver', true, true, true, gen_random_uuid()),
                ('{webhook}', 'Webhook', '', 'job_hook_receiver', true, true, true, gen_random_uuid());
         INSERT INTO jobhooks_hooks (name, content_types, job, enabled, type_create, type_update, type_delete, id)
         VALUES ('audit', '{{dcim.device}}', 'app::Audit', true, true, true, false, gen_random_uuid());",
        webhook = jobhooks_model::WEBHOOK_JOB,
    ))
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    assert_eq!(store.get_hook("audit").await.unwrap().unwrap().webhook, None);
    let types = vec![jobhooks_model::ContentType::new("dcim.device").unwrap()];
    let webhook = Webhook::new("https://cmdb.example/in").secret("s3cret");
    let hook = JobHook::webhook("cmdb", types, webhook.clone()).on([Action::Create]);
    let hook = store.create_hook(hook).await.unwrap();
    assert_eq!(store.get_hook("cmdb").await.unwrap().unwrap().webhook, Some(webhook));

    let device = Object::new(
        ObjectRef::new(jobhooks_model::ContentType::new("dcim.device").unwrap(), "1").unwrap(),
        "sw1",
        serde_json::json!({}),
    )
    .unwrap();
    let mut changes = ChangeSet::default();
    changes.record(PendingChange::new(Action::Create, &device));
    let receipt = store.commit(&ChangeContext::web("alice"), changes, ObjectWrites::Apply).await.unwrap();
    let mut hooks: Vec<Option<uuid::Uuid>> = Vec::new();
    for run in &receipt.runs {
        match store.get_result(*run).await.unwrap().unwrap().inputs {
            JobInputs::Hook { hook, .. } => hooks.push(hook),
            other => panic!("{other:?}"),
        }
    }
    hooks.sort();
    assert_eq!(hooks, [None, Some(hook.id)], "the audit hook's run has none, the webhook's its hook");
}

/// Migration 14 drops the unfinished-runs index and narrows the claim index to unclaimed heads: a
/// queue of schema 13 counts the same depth afterwards, and one claim still takes the pending
/// head, the retry that is due and the claim that lapsed, and not the run behind the head.
#[tokio::test]
async fn a_queue_of_schema_13_counts_and_claims_the_same_after_migrating() {
    use jobhooks_model::ports::{JobQueue, QueueReader};
    let (url, app) = database_at_schema(13).await;
    app.batch_execute(
        "INSERT INTO jobhooks_runs (id, job, object_pk, object_model_name, status, attempts, leases, deadline, due,
             created, logs, line, place, head)
         VALUES (1, 'app::jobs::Audit', 'a', 'dcim.device', 'SUCCESS', 1, 1, NULL, NULL, now(), '[]', 'dcim.device/a', 1, true),
                (2, 'app::jobs::Audit', 'a', 'dcim.device', 'PENDING', 0, 0, NULL, NULL, now(), '[]', 'dcim.device/a', 2, true),
                (3, 'app::jobs::Audit', 'a', 'dcim.device', 'PENDING', 0, 0, NULL, NULL, now(), '[]', 'dcim.device/a', 3, false),
                (4, 'app::jobs::Audit', 'b', 'dcim.device', 'STARTED', 1, 1, now() - interval '1 hour', NULL, now(), '[]', 'dcim.device/b', 4, true),
                (5, 'app::jobs::Audit', 'c', 'dcim.device', 'RETRYING', 1, 1, NULL, now() - interval '1 minute', now(), '[]', NULL, 5, true),
                (6, 'app::jobs::Audit', 'd', 'dcim.device', 'DEAD_LETTERED', 3, 3, NULL, NULL, now(), '[]', NULL, 6, true),
                (7, 'app::jobs::Audit', 'e', 'dcim.device', 'STARTED', 1, 1, now() + interval '1 hour', NULL, now(), '[]', 'dcim.device/e', 7, true);
         SELECT setval('jobhooks_run_ids', 7); SELECT setval('jobhooks_line_places', 7);",
    )
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let indexes: Vec<String> = app
        .query("SELECT indexname FROM pg_indexes WHERE tablename = 'jobhooks_runs' ORDER BY indexname", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(!indexes.iter().any(|name| name == "jobhooks_runs_unfinished"), "{indexes:?}");
    let claimable: String = app
        .query_one("SELECT indexdef FROM pg_indexes WHERE indexname = 'jobhooks_runs_claimable'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(claimable.contains("'PENDING'") && !claimable.contains("'STARTED'"), "{claimable}");

    let depth = store.depth().await.unwrap();
    assert_eq!((depth.pending, depth.leased, depth.dead), (3, 2, 1), "{depth:?}");
    let now = jobhooks_model::OffsetDateTime::now_utc();
    let claimed = store.lease_batch(now, std::time::Duration::from_secs(60), 10).await.unwrap();
    let mut ids: Vec<u64> = claimed.iter().map(|(lease, _)| lease.run.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, [2, 4, 5], "the pending head, the lapsed claim and the due retry; not the run behind");
}
