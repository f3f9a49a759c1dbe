//! The API over real HTTP on 127.0.0.1, on a sled store in a temporary directory: tokens, each
//! permission's 403, the catalog's validation messages, pagination, runs on objects and their
//! refusals, results and their filters, and bodies that are not what an endpoint takes.

use std::sync::Arc;
use std::time::Duration;

use jobhooks_model::ports::{Catalog, ChangeStore, ObjectWrites};
use jobhooks_model::{
    ApiToken, ChangeContext, ChangeContextKind, ChangeSet, ContentType, JobKind, JobSpec, Object, ObjectRef,
    OffsetDateTime, PendingChange, Permission, RecordKind, SyncMode, User, derived_id, json,
};
use jobhooks_server::{AppState, router, serve};
use jobhooks_store::Store;
use reqwest::StatusCode;
use serde_json::Value;

#[path = "api/conditions.rs"]
mod conditions;
#[path = "api/ingest.rs"]
mod ingest;
#[path = "api/nautobot.rs"]
mod nautobot;
#[path = "api/webhooks.rs"]
mod webhooks;

const AUDIT: &str = "app::jobs::Audit";
const TOUCH: &str = "app::jobs::Touch";

/// A server on a fresh store, and the keys of its users: `root` (superuser), `alice` (may view and
/// add hooks, view jobs, results, changes, devices and buttons, change devices, run `TOUCH`), `bob`
/// (no permission). The store holds device 1 (`sw1`) and a hook on device updates.
struct Server {
    base: String,
    client: reqwest::Client,
    store: Arc<Store>,
    root: String,
    alice: String,
    bob: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(jobhooks_server::HttpLimits::default()).await
    }

    async fn start_with(limits: jobhooks_server::HttpLimits) -> Self {
        Self::start_configured(limits, |state| state).await
    }

    /// A server whose state `configure` completes (the bridge from Nautobot, say).
    async fn start_configured(
        limits: jobhooks_server::HttpLimits,
        configure: impl FnOnce(AppState<Store>) -> AppState<Store>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
        let jobs = [
            (AUDIT, JobKind::JobHookReceiver),
            (TOUCH, JobKind::JobButtonReceiver),
            (jobhooks_model::WEBHOOK_JOB, JobKind::JobHookReceiver),
        ]
        .map(|(path, kind)| JobSpec {
            class_path: path.into(),
            name: path.into(),
            description: String::new(),
            kind,
            hidden: false,
            former_class_paths: vec![],
        });
        store.sync_jobs(&jobs, SyncMode::Full).await.unwrap();
        store.set_job_enabled(AUDIT, true).await.unwrap();
        store.set_job_enabled(TOUCH, true).await.unwrap();
        let alice = User::new("alice")
            .unwrap()
            .with_permission(Permission::new("extras.view_jobhook"))
            .with_permission(Permission::new("extras.add_jobhook"))
            .with_permission(Permission::new("extras.view_job"))
            .with_permission(Permission::new("extras.view_jobresult"))
            .with_permission(Permission::new("extras.view_objectchange"))
            .with_permission(Permission::new("extras.view_jobbutton"))
            .with_permission(Permission::new("dcim.view_device"))
            .with_permission(Permission::new("dcim.change_device"))
            .with_permission(Permission::run_jobs([TOUCH]));
        for user in [User::superuser("root").unwrap(), alice, User::new("bob").unwrap()] {
            store.put_user(user).await.unwrap();
        }
        let mut keys = Vec::new();
        for user in ["root", "alice", "bob"] {
            let issued = ApiToken::issue(user, OffsetDateTime::now_utc(), None, "tests");
            store.add_token(issued.token).await.unwrap();
            keys.push(issued.key);
        }
        let mut changes = ChangeSet::default();
        let device = Object::new(
            ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap(),
            "sw1",
            json!({"name": "sw1"}),
        )
        .unwrap();
        changes.record(PendingChange::new(jobhooks_model::Action::Create, &device));
        let context = ChangeContext::new(ChangeContextKind::Web, Some("root".into()), "");
        store.commit(&context, changes, ObjectWrites::Apply).await.unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let app = router(configure(AppState::new(store.clone()).with_limits(limits.clone())));
        let serving = tokio::spawn(async move {
            jobhooks_server::serve_with(listener, app, &limits, async {
                let _ = stopped.await;
            })
            .await
        });
        let [root, alice, bob] = keys.try_into().unwrap();
        Server {
            base,
            client: reqwest::Client::new(),
            store,
            root,
            alice,
            bob,
            _dir: dir,
            stop: Some(stop),
            serving: Some(serving),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Token {key}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        assert!(status.as_u16() < 500, "{path}: {status} {body}");
        (status, body)
    }

    /// The absolute address of `path`, as records link to each other.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(key), Some(body)).await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let serving = self.serving.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), serving).await.unwrap().unwrap().unwrap();
    }
}

/// The path of alice, as Nautobot's users are addressed.
fn alice_path() -> String {
    format!("/api/users/users/{}/", derived_id(RecordKind::User, "alice"))
}

fn hook(name: &str) -> Value {
    json!({"name": name, "content_types": ["dcim.device"], "job": AUDIT, "type_create": true})
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_with_401() {
    let server = Server::start().await;
    let (status, body) = server.call(reqwest::Method::GET, "/api/extras/job-hooks/", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "Authentication credentials were not provided.");
    for key in ["nonsense", "jh_0123456789abcdef_00", &server.alice.replace("jh_", "jh_x")] {
        let (status, body) = server.get("/api/extras/job-hooks/", key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key}");
        assert!(body["detail"].as_str().unwrap().starts_with("Invalid token"), "{body}");
        assert!(!body.to_string().contains(key), "the key is not repeated");
    }
    // A revoked token and an expired one stop working.
    let id = ApiToken::id_of_key(&server.bob).unwrap().to_owned();
    server.store.delete_token(&id).await.unwrap();
    assert_eq!(server.get("/api/status/", &server.bob).await.0, StatusCode::UNAUTHORIZED);
    let past = OffsetDateTime::now_utc() - Duration::from_secs(3_600);
    let expired = ApiToken::issue("alice", past - Duration::from_secs(60), Some(past), "");
    server.store.add_token(expired.token).await.unwrap();
    let (status, body) = server.get("/api/status/", &expired.key).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "Invalid token: the token has expired.")
    );
    assert_eq!(server.get("/api/status/", &server.alice).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn hooks_are_created_listed_paged_changed_and_deleted_with_nautobots_messages() {
    let server = Server::start().await;
    let path = "/api/extras/job-hooks/";
    let (status, created) = server.post(path, &server.alice, hook("first")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["job"]["object_type"], "extras.job");
    assert_eq!(created["job"]["id"], derived_id(RecordKind::Job, AUDIT).to_string());
    let (status, errors) = server.post(path, &server.alice, hook("second")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        errors["type_create"],
        json!(["A job hook already exists for create on dcim.device to job app::jobs::Audit"])
    );
    let update_hook = json!({"name": "second", "content_types": ["dcim.device"], "job": AUDIT, "type_update": true});
    assert_eq!(server.post(path, &server.alice, update_hook).await.0, StatusCode::CREATED);
    let delete_hook = json!({"name": "third", "content_types": ["dcim.device"], "job": AUDIT, "type_delete": true});
    assert_eq!(server.post(path, &server.root, delete_hook).await.0, StatusCode::CREATED);

    let (_, page) = server.get("/api/extras/job-hooks/?limit=2", &server.alice).await;
    assert_eq!(page["count"], 3);
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    // Absolute, as Django REST framework's links are.
    assert_eq!(page["next"], format!("{}/api/extras/job-hooks/?limit=2&offset=2", server.base));
    assert_eq!(page["previous"], Value::Null);
    let next = page["next"].as_str().unwrap().strip_prefix(&server.base).unwrap().to_owned();
    let (_, last) = server.get(&next, &server.alice).await;
    assert_eq!(last["results"][0]["name"], "third");
    assert_eq!(last["previous"], format!("{}/api/extras/job-hooks/?limit=2", server.base));

    // Changing and deleting need their own permissions.
    let (status, body) = server
        .call(
            reqwest::Method::PATCH,
            "/api/extras/job-hooks/first/",
            Some(&server.alice),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["detail"], "You do not have permission to perform this action: extras.change_jobhook is required.");
    let (status, patched) = server
        .call(
            reqwest::Method::PATCH,
            "/api/extras/job-hooks/first/",
            Some(&server.root),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!((status, &patched["enabled"]), (StatusCode::OK, &json!(false)));
    let renamed = json!({"name": "renamed", "content_types": ["dcim.device"], "job": AUDIT, "type_create": true});
    let (status, put) =
        server.call(reqwest::Method::PUT, "/api/extras/job-hooks/first/", Some(&server.root), Some(renamed)).await;
    assert_eq!((status, &put["name"], &put["enabled"]), (StatusCode::OK, &json!("renamed"), &json!(true)));
    assert_eq!(server.get("/api/extras/job-hooks/first/", &server.alice).await.0, StatusCode::NOT_FOUND);
    let (status, _) =
        server.call(reqwest::Method::DELETE, "/api/extras/job-hooks/renamed/", Some(&server.root), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/api/extras/job-hooks/renamed/", &server.alice).await;
    assert_eq!((status, &body["detail"]), (StatusCode::NOT_FOUND, &json!("job hook `renamed` does not exist")));
    assert_eq!(server.get(path, &server.bob).await.0, StatusCode::FORBIDDEN);
    server.stop().await;
}

/// Each rule of the catalog and of the other bodies reaches the client as a 400 with its message
/// under its field, exactly as the model words it.
#[tokio::test]
async fn every_validation_message_reaches_the_client_under_its_field() {
    let server = Server::start().await;
    assert_eq!(server.post("/api/extras/job-hooks/", &server.root, hook("first")).await.0, StatusCode::CREATED);
    let button = |fields: Value| {
        let mut body = json!({"name": "b", "content_types": ["dcim.device"], "text": "Go", "job": TOUCH});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        body
    };
    let with = |name: &str, fields: Value| {
        let mut body = hook(name);
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        body
    };
    let cases = [
        (
            "/api/extras/job-hooks/",
            with("x", json!({"type_create": false})),
            "non_field_errors",
            "You must select at least one type: create, update, and/or delete.".to_owned(),
        ),
        (
            "/api/extras/job-hooks/",
            with("first", json!({"type_create": false, "type_update": true})),
            "name",
            "A job hook named first already exists".to_owned(),
        ),
        (
            "/api/extras/job-hooks/",
            with("x", json!({"content_types": []})),
            "content_types",
            "at least one content type is required".to_owned(),
        ),
        (
            "/api/extras/job-hooks/",
            with(" ", json!({"type_update": true, "type_create": false})),
            "name",
            "invalid name ` `: it must not be empty".to_owned(),
        ),
        (
            "/api/extras/job-hooks/",
            with("x", json!({"job": "app::Nope"})),
            "job",
            "Job app::Nope does not exist: register it and start the dispatcher once, or check the class path"
                .to_owned(),
        ),
        (
            "/api/extras/job-hooks/",
            with("x", json!({"job": TOUCH})),
            "job",
            format!("Job {TOUCH} is a job button receiver, not a job hook receiver"),
        ),
        (
            "/api/extras/job-hooks/",
            with("x", json!({"type_delete": true})),
            "type_create",
            format!("A job hook already exists for create on dcim.device to job {AUDIT}"),
        ),
        (
            "/api/extras/job-buttons/",
            button(json!({"text": "x".repeat(501)})),
            "text",
            "button text is 501 characters long; at most 500 are allowed".to_owned(),
        ),
        (
            "/api/extras/job-buttons/",
            button(json!({"group_name": "   "})),
            "group_name",
            "invalid group_name `   `: it must not be empty".to_owned(),
        ),
        (
            "/api/extras/job-buttons/",
            button(json!({"job": AUDIT})),
            "job",
            format!("Job {AUDIT} is a job hook receiver, not a job button receiver"),
        ),
        ("/api/users/", json!({"username": ""}), "username", "invalid username ``: it must not be empty".to_owned()),
        ("/api/backup/", json!({"path": ""}), "path", "This field may not be blank.".to_owned()),
    ];
    for (path, body, field, message) in cases {
        let (status, errors) = server.post(path, &server.root, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {errors}");
        assert_eq!(errors[field], json!([message]), "{path} {body}: {errors}");
    }

    // An enabled hook whose job is not installed and enabled.
    server.store.set_job_enabled(AUDIT, false).await.unwrap();
    let (status, errors) =
        server.post("/api/extras/job-hooks/", &server.root, with("x", json!({"type_update": true}))).await;
    assert_eq!(
        (status, &errors["enabled"]),
        (StatusCode::BAD_REQUEST, &json!(["The selected Job is not installed and enabled"]))
    );

    // The filters of the lists.
    let (status, errors) = server.get("/api/extras/object-changes/?changed_object_type=Devices", &server.root).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors["changed_object_type"][0].as_str().unwrap().contains("invalid content type `Devices`"), "{errors}");
    server.stop().await;
}

#[tokio::test]
async fn bodies_that_are_not_the_endpoints_json_are_4xx_with_json_errors() {
    let server = Server::start().await;
    let path = "/api/extras/job-hooks/";
    let bad_type = json!({"name": "x", "content_types": ["Not A Type"], "job": AUDIT, "type_create": true});
    let (status, body) = server.post(path, &server.root, bad_type).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("invalid content type `Not A Type`"), "{body}");
    let (status, body) = server.post(path, &server.root, json!({"name": "x", "unknown": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let not_an_object = json!({"data": [1, 2, 3]});
    let (status, body) =
        server.call(reqwest::Method::PUT, "/api/objects/dcim.device/9/", Some(&server.root), Some(not_an_object)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("data: invalid type: sequence, expected a map"), "{body}");
    let raw = server
        .client
        .post(format!("{}{path}", server.base))
        .header("Authorization", format!("Token {}", server.root))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert!(raw.json::<Value>().await.unwrap()["detail"].is_string());
    let huge = json!({"name": "x".repeat(jobhooks_server::BODY_LIMIT), "content_types": ["dcim.device"], "job": AUDIT});
    let (status, body) = server.post(path, &server.root, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["detail"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn runs_on_objects_are_refused_for_each_reason_then_queued() {
    let server = Server::start().await;
    let on_device = json!({"object_pk": "1", "object_model_name": "dcim.device"});
    let run = |job: &str| format!("/api/extras/jobs/{job}/run/");
    let refusals = [
        (
            run("app::jobs::Missing"),
            &server.root,
            StatusCode::FORBIDDEN,
            "Unable to run or schedule job: Job is not presently installed.",
        ),
        (run(AUDIT), &server.root, StatusCode::BAD_REQUEST, "Job app::jobs::Audit is not a job button receiver"),
        (run(TOUCH), &server.bob, StatusCode::FORBIDDEN, "This user does not have permission to run jobs."),
    ];
    for (path, key, expected, message) in refusals {
        let (status, body) = server.post(&path, key, on_device.clone()).await;
        assert_eq!((status, body["detail"].as_str().unwrap()), (expected, message), "{path}");
    }
    let (status, body) =
        server.post(&run(TOUCH), &server.alice, json!({"object_pk": "404", "object_model_name": "dcim.device"})).await;
    assert_eq!((status, body["detail"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "dcim.device 404 does not exist"));
    let (status, body) =
        server.post(&run(TOUCH), &server.alice, json!({"object_pk": "1", "object_model_name": "Bad"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = server.post(&run(TOUCH), &server.alice, on_device.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let result = &body["job_result"];
    assert_eq!(
        (&result["status"]["value"], &result["user"]["url"], &result["task_name"]),
        (&json!("PENDING"), &json!(server.url(&alice_path())), &json!(TOUCH))
    );
    let id = result["id"].as_u64().unwrap();

    let (_, pending) = server.get("/api/extras/job-results/?status=pending", &server.alice).await;
    assert_eq!(pending["count"], 1);
    let (_, none) = server.get(&format!("/api/extras/job-results/?job={AUDIT}"), &server.alice).await;
    assert_eq!(none["count"], 0);
    let (status, errors) = server.get("/api/extras/job-results/?status=done", &server.alice).await;
    assert_eq!(
        (status, &errors["status"][0]),
        (StatusCode::BAD_REQUEST, &json!("Select a valid choice. done is not one of the available choices."))
    );
    let (status, shown) = server.get(&format!("/api/extras/job-results/{id}/"), &server.alice).await;
    assert_eq!((status, &shown["id"]), (StatusCode::OK, &json!(id)));
    // Without a dispatcher the run does not end: a wait answers with it pending when it is over.
    let (status, waited) = server.get(&format!("/api/extras/job-results/{id}/?wait=1"), &server.alice).await;
    assert_eq!((status, &waited["status"]["value"]), (StatusCode::OK, &json!("PENDING")));
    let (status, _) = server.get(&format!("/api/extras/job-results/{id}/?wait=soon"), &server.alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.post(&format!("/api/extras/job-results/{id}/replay/"), &server.alice, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "only dead letters are replayed: {body}");

    // Disabling the job through the API refuses the next run.
    let patch = Some(json!({"enabled": false}));
    let (status, job) =
        server.call(reqwest::Method::PATCH, &format!("/api/extras/jobs/{TOUCH}/"), Some(&server.root), patch).await;
    assert_eq!((status, &job["enabled"]), (StatusCode::OK, &json!(false)));
    let (status, body) = server.post(&run(TOUCH), &server.alice, on_device).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (StatusCode::FORBIDDEN, "Unable to run or schedule job: Job is not enabled to be run.")
    );
    let (_, jobs) = server.get("/api/extras/jobs/", &server.alice).await;
    assert_eq!(jobs["count"], 3, "the two receivers and the built-in webhook job");
    server.stop().await;
}

/// What a full sync disabled comes back with one call once the job is linked again; it takes the
/// permission to change jobs.
#[tokio::test]
async fn one_call_restores_what_a_full_sync_disabled() {
    let server = Server::start().await;
    let touch_only = [JobSpec {
        class_path: TOUCH.into(),
        name: TOUCH.into(),
        description: String::new(),
        kind: JobKind::JobButtonReceiver,
        hidden: false,
        former_class_paths: vec![],
    }];
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    let hook = jobhooks_model::JobHook::new("audit", devices, AUDIT).on([jobhooks_model::Action::Update]);
    server.store.create_hook(hook).await.unwrap();
    let report = server.store.sync_jobs(&touch_only, SyncMode::Full).await.unwrap();
    assert_eq!(report.uninstalled, [AUDIT, jobhooks_model::WEBHOOK_JOB]);
    let audit = server.store.list_jobs().await.unwrap().into_iter().find(|job| job.class_path == AUDIT).unwrap();
    let relinked = JobSpec {
        class_path: AUDIT.into(),
        name: AUDIT.into(),
        description: String::new(),
        kind: audit.kind,
        hidden: false,
        former_class_paths: vec![],
    };
    server.store.sync_jobs(&[relinked], SyncMode::Additive).await.unwrap();
    let (status, _) = server.post("/api/extras/jobs/restore/", &server.alice, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "alice may not change jobs");
    let (status, report) = server.post("/api/extras/jobs/restore/", &server.root, json!({"jobs": [AUDIT]})).await;
    assert_eq!((status, &report["restored"]), (StatusCode::OK, &json!([AUDIT])));
    assert_eq!((&report["enabled_hooks"], report_hooks(&server).await), (&json!(["audit"]), vec!["audit".to_owned()]));
    assert!(server.store.get_job(AUDIT).await.unwrap().unwrap().is_runnable());
    let (status, body) = server.post("/api/extras/jobs/restore/", &server.root, json!({"job": AUDIT})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown fields are refused: {body}");
    server.stop().await;
}

/// The names of the enabled hooks.
async fn report_hooks(server: &Server) -> Vec<String> {
    server.store.list_hooks().await.unwrap().into_iter().filter(|hook| hook.enabled).map(|hook| hook.name).collect()
}

/// Results and the change log are read only as far as a page reaches, and still count the whole
/// list.
#[tokio::test]
async fn results_and_changes_paginate_with_the_whole_count() {
    let server = Server::start().await;
    let on_device = json!({"object_pk": "1", "object_model_name": "dcim.device"});
    for _ in 0..5 {
        let (status, _) =
            server.post(&format!("/api/extras/jobs/{TOUCH}/run/"), &server.alice, on_device.clone()).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, first) = server.get("/api/extras/job-results/?limit=2", &server.alice).await;
    assert_eq!((first["count"].as_u64(), first["results"].as_array().unwrap().len()), (Some(5), 2));
    let newest = first["results"][0]["id"].as_u64().unwrap();
    let (_, last) = server.get("/api/extras/job-results/?limit=2&offset=4", &server.alice).await;
    assert_eq!((last["count"].as_u64(), last["results"].as_array().unwrap().len()), (Some(5), 1));
    assert_eq!(last["results"][0]["id"].as_u64(), Some(newest - 4), "newest first");
    assert_eq!(last["next"], Value::Null);
    let (_, filtered) =
        server.get(&format!("/api/extras/job-results/?job={TOUCH}&limit=1&offset=1"), &server.alice).await;
    assert_eq!((filtered["count"].as_u64(), filtered["results"][0]["id"].as_u64()), (Some(5), Some(newest - 1)));

    for name in ["a", "b", "c"] {
        let body = json!({"data": {"name": name}});
        let path = format!("/api/objects/dcim.device/{name}/");
        assert_eq!(server.call(reqwest::Method::PUT, &path, Some(&server.root), Some(body)).await.0, StatusCode::OK);
    }
    let (_, changes) = server.get("/api/extras/object-changes/?limit=2&offset=1", &server.alice).await;
    assert_eq!(changes["count"], 4, "the fixture's device and three more");
    let ids: Vec<&str> =
        changes["results"].as_array().unwrap().iter().map(|c| c["changed_object_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(changes["next"], format!("{}/api/extras/object-changes/?limit=2&offset=3", server.base));
    server.stop().await;
}

#[tokio::test]
async fn only_superusers_list_users() {
    let server = Server::start().await;
    let (status, body) = server.get("/api/users/", &server.alice).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (StatusCode::FORBIDDEN, "You do not have permission to perform this action: only superusers may.")
    );
    let (status, users) = server.get("/api/users/", &server.root).await;
    assert_eq!((status, &users["count"]), (StatusCode::OK, &json!(3)));
    assert!(!users.to_string().contains("jh_"), "no token in the users list");
    server.stop().await;
}

/// The OpenAPI document describes the routes as they are: each path answers exactly the methods
/// the document gives it (axum's 405 lists a path's methods), and every schema it refers to is in
/// it.
#[tokio::test]
async fn the_openapi_document_describes_every_route_as_it_is() {
    let server = Server::start().await;
    let response = server.client.get(format!("{}/api/docs/openapi.json", server.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the document needs no token");
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."), "{}", document["openapi"]);
    assert_eq!(document["components"]["securitySchemes"]["token"]["name"], "Authorization");

    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let mut documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| ["get", "post", "put", "patch", "delete"].contains(&key.as_str()))
            .map(|method| method.to_uppercase())
            .collect();
        operations += documented.len();
        let concrete = path
            .replace("{name}", "x")
            .replace("{class_path}", "app::jobs::X")
            .replace("{content_type}", "dcim.device")
            .replace("{id}", "1");
        let response =
            server.client.request(reqwest::Method::TRACE, format!("{}{concrete}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path} is a route");
        let mut allowed: Vec<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|method| method.trim().to_owned())
            .filter(|method| method != "HEAD")
            .collect();
        allowed.sort();
        documented.sort();
        assert_eq!(allowed, documented, "{path}: the router's methods and the document's");
    }
    assert!(operations >= 35, "{operations} operations");
    for open in ["/health", "/ready", "/metrics", "/api/docs/openapi.json"] {
        assert_eq!(paths[open]["get"]["security"], json!([{}]), "{open} is described, and needs no token");
    }

    let schemas = document["components"]["schemas"].as_object().unwrap();
    for name in [
        "JobHookView",
        "JobButtonView",
        "JobResultView",
        "JobLogView",
        "ObjectChangeView",
        "ValidationErrors",
        "RenderedButton",
    ] {
        assert!(schemas.contains_key(name), "{name} is described");
    }
    let text = document.to_string();
    assert!(!text.contains("```"), "no Rust example leaks into the document");
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "the document refers to {name}, which it does not describe");
    }
    server.stop().await;
}

#[tokio::test]
async fn backups_exports_and_prunes_are_for_superusers() {
    let server = Server::start().await;
    let target = server._dir.path().join("copy").display().to_string();
    let (status, _) = server.post("/api/backup/", &server.alice, json!({"path": target})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.get("/api/export/", &server.alice).await.0, StatusCode::FORBIDDEN);
    assert_eq!(server.post("/api/prune/", &server.alice, json!({"changes_days": 0})).await.0, StatusCode::FORBIDDEN);
    let (status, errors) = server.post("/api/prune/", &server.root, json!({})).await;
    assert_eq!(
        (status, &errors["non_field_errors"]),
        (StatusCode::BAD_REQUEST, &json!(["Give results_days, changes_days or both."]))
    );
    let (status, pruned) = server.post("/api/prune/", &server.root, json!({"results_days": 0})).await;
    assert_eq!((status, &pruned["results"]), (StatusCode::OK, &json!(0)));
    let export = server
        .client
        .get(format!("{}/api/export/", server.base))
        .header("Authorization", format!("Token {}", server.root))
        .send()
        .await
        .unwrap();
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let lines = export.text().await.unwrap();
    assert!(lines.lines().next().unwrap().contains("\"record\":\"header\""), "{lines}");
    assert!(lines.contains("\"record\":\"change\""), "the fixture's device is exported: {lines}");
    let (status, body) = server.post("/api/backup/", &server.root, json!({"path": target})).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (
            StatusCode::CONFLICT,
            "this store is not backed up through jobhooks: back PostgreSQL up with its own tools (pg_dump)"
        )
    );
    server.stop().await;

    // With the store's backup: a target that holds something is refused by field.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
    store.put_user(User::superuser("root").unwrap()).await.unwrap();
    let issued = ApiToken::issue("root", OffsetDateTime::now_utc(), None, "tests");
    store.add_token(issued.token).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store.clone()).with_backup(store).with_backup_dir(dir.path());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(listener, router(state), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let backup = |path: String| {
        client
            .post(format!("{base}/api/backup/"))
            .header("Authorization", format!("Token {}", issued.key))
            .json(&json!({"path": path}))
            .send()
    };
    let response = backup(dir.path().join("db").display().to_string()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let errors: Value = response.json().await.unwrap();
    assert!(errors["path"][0].as_str().unwrap().contains("it is the store itself"), "{errors}");
    let elsewhere = tempfile::tempdir().unwrap();
    for outside in [
        elsewhere.path().join("copy").display().to_string(),
        dir.path().join("..").join("copy").display().to_string(),
        "relative".to_owned(),
    ] {
        let response = backup(outside.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{outside}");
    }
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing was written outside");
    let response = backup(dir.path().join("copy").display().to_string()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.json::<Value>().await.unwrap()["records"].as_u64().unwrap() > 0);
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn superusers_add_users_and_everyone_manages_their_own_tokens() {
    let server = Server::start().await;
    let carol = json!({"username": "carol", "permissions": [{"name": "extras.view_job"}]});
    let (status, body) = server.post("/api/users/", &server.alice, carol.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, created) = server.post("/api/users/", &server.root, carol).await;
    assert_eq!((status, &created["permissions"][0]["name"]), (StatusCode::CREATED, &json!("extras.view_job")));
    let (status, errors) = server.post("/api/users/", &server.root, json!({"username": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors["username"][0].as_str().unwrap().contains("must not be empty"), "{errors}");

    // Alice issues a token for herself, sees only hers, and may not issue one for bob.
    let (status, issued) = server.post("/api/users/tokens/", &server.alice, json!({"description": "laptop"})).await;
    assert_eq!((status, &issued["user"]), (StatusCode::CREATED, &json!("alice")));
    let key = issued["key"].as_str().unwrap().to_owned();
    assert_eq!(server.get("/api/status/", &key).await.1["user"], "alice", "the new key works");
    let (_, listed) = server.get("/api/users/tokens/", &server.alice).await;
    assert_eq!(listed["count"], 2, "the test's key and the new one: {listed}");
    assert!(!listed.to_string().contains(&key[20..]) && !listed.to_string().contains("hash"), "{listed}");
    let (status, body) = server.post("/api/users/tokens/", &server.alice, json!({"user": "bob"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(server.get("/api/users/tokens/?user=bob", &server.alice).await.0, StatusCode::FORBIDDEN);
    // Not even a superuser makes a token for someone else, as in Nautobot: it revokes instead.
    let (status, body) = server.post("/api/users/tokens/", &server.root, json!({"user": "alice"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("a token is made by its own user"), "{body}");
    let (_, every) = server.get("/api/users/tokens/", &server.root).await;
    assert_eq!(every["count"], 4, "a superuser sees every token: the three of the test and alice's");

    // Revoked, the key stops working; bob may not revoke alice's.
    let path = format!("/api/users/tokens/{}/", issued["id"].as_str().unwrap());
    assert_eq!(server.call(reqwest::Method::DELETE, &path, Some(&server.bob), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(server.get(&path, &server.alice).await.1["description"], "laptop");
    assert_eq!(server.call(reqwest::Method::DELETE, &path, Some(&server.alice), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/api/status/", &key).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = server.get(&path, &server.alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn object_writes_through_the_api_record_changes_that_trigger_hooks() {
    let server = Server::start().await;
    let on_update = json!({"name": "updates", "content_types": ["dcim.device"], "job": AUDIT, "type_update": true});
    assert_eq!(server.post("/api/extras/job-hooks/", &server.root, on_update).await.0, StatusCode::CREATED);
    let path = "/api/objects/dcim.device/1/";
    let (status, shown) = server.get(path, &server.alice).await;
    assert_eq!((status, &shown["data"]["name"]), (StatusCode::OK, &json!("sw1")));

    // PATCH merges data keys and keeps the repr; the change and its hook run are recorded.
    let patch = Some(json!({"data": {"serial": "A1"}}));
    let (status, written) = server.call(reqwest::Method::PATCH, path, Some(&server.alice), patch).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(written["object"]["data"], json!({"name": "sw1", "serial": "A1"}));
    let change = written["change"].as_u64().expect("the change's id");
    let (_, runs) = server.get(&format!("/api/extras/job-results/?object_change={change}"), &server.alice).await;
    assert_eq!((runs["count"].clone(), runs["results"][0]["task_name"].clone()), (json!(1), json!(AUDIT)));
    let (status, recorded) = server.get(&format!("/api/extras/object-changes/{change}/"), &server.alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&recorded["action"]["value"], &recorded["user_name"], &recorded["change_context"]["value"]),
        (&json!("update"), &json!("alice"), &json!("web"))
    );
    assert_eq!(recorded["snapshots"]["differences"]["added"], json!({"serial": "A1"}));

    // PUT replaces; creating needs dcim.add_device, deleting dcim.delete_device.
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            "/api/objects/dcim.device/2/",
            Some(&server.alice),
            Some(json!({"data": {"name": "sw2"}})),
        )
        .await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (StatusCode::FORBIDDEN, "You do not have permission to perform this action: dcim.add_device is required.")
    );
    let (status, created) = server
        .call(
            reqwest::Method::PUT,
            "/api/objects/dcim.device/2/",
            Some(&server.root),
            Some(json!({"repr": "sw2", "data": {"name": "sw2"}})),
        )
        .await;
    assert_eq!((status, &created["object"]["repr"]), (StatusCode::OK, &json!("sw2")));
    let (status, _) =
        server.call(reqwest::Method::DELETE, "/api/objects/dcim.device/2/", Some(&server.alice), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, deleted) =
        server.call(reqwest::Method::DELETE, "/api/objects/dcim.device/2/", Some(&server.root), None).await;
    assert_eq!((status, &deleted["object"]), (StatusCode::OK, &Value::Null));
    assert_eq!(server.get("/api/objects/dcim.device/2/", &server.root).await.0, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(reqwest::Method::PATCH, "/api/objects/dcim.device/404/", Some(&server.alice), Some(json!({"data": {}})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.get("/api/objects/Bad/1/", &server.alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The change log, filtered, newest first.
    let (_, device_two) = server
        .get("/api/extras/object-changes/?changed_object_type=dcim.device&changed_object_id=2", &server.alice)
        .await;
    let actions: Vec<&Value> =
        device_two["results"].as_array().unwrap().iter().map(|change| &change["action"]["value"]).collect();
    assert_eq!(actions, [&json!("delete"), &json!("create")]);
    let (_, all) = server.get("/api/extras/object-changes/?limit=1", &server.alice).await;
    assert_eq!((all["count"].clone(), all["results"][0]["action"]["value"].clone()), (json!(4), json!("delete")));
    let request = recorded["request_id"].as_str().unwrap();
    let (_, by_request) = server.get(&format!("/api/extras/object-changes/?request_id={request}"), &server.alice).await;
    assert_eq!(by_request["count"], 1);
    let (status, body) = server.get("/api/extras/object-changes/?request_id=nope", &server.alice).await;
    assert_eq!((status, &body["request_id"]), (StatusCode::BAD_REQUEST, &json!(["Enter a valid UUID."])), "{body}");
    assert_eq!(server.get("/api/extras/object-changes/", &server.bob).await.0, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn buttons_are_managed_and_shown_on_objects_as_the_caller_sees_them() {
    let server = Server::start().await;
    let button =
        json!({"name": "touch", "content_types": ["dcim.device"], "text": "Touch {{ obj.name }}", "job": TOUCH});
    let (status, created) = server.post("/api/extras/job-buttons/", &server.root, button.clone()).await;
    assert_eq!((status, &created["weight"]), (StatusCode::CREATED, &json!(100)));
    let (status, errors) = server.post("/api/extras/job-buttons/", &server.root, button).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors["name"][0].as_str().unwrap().contains("already exists"), "{errors}");
    assert_eq!(server.post("/api/extras/job-buttons/", &server.alice, json!({})).await.0, StatusCode::FORBIDDEN);
    let (_, listed) = server.get("/api/extras/job-buttons/", &server.alice).await;
    assert_eq!(listed["count"], 1);

    let (status, shown) = server.get("/api/objects/dcim.device/1/buttons/", &server.alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&shown[0]["text"], &shown[0]["disabled"]), (&json!("Touch sw1"), &json!(false)));
    assert_eq!(shown[0]["confirmation_prompt"], format!("Run Job '{TOUCH}' with object 'sw1'?"));
    let patch = Some(json!({"button_class": "danger"}));
    let (status, patched) =
        server.call(reqwest::Method::PATCH, "/api/extras/job-buttons/touch/", Some(&server.root), patch).await;
    assert_eq!((status, &patched["button_class"]), (StatusCode::OK, &json!("danger")));

    // A press runs the button's job as the caller, refused when the button is not offered on the
    // object's type, then for the run endpoint's reasons.
    let press = "/api/extras/job-buttons/touch/press/";
    let (status, body) =
        server.post(press, &server.alice, json!({"object_pk": "1", "object_model_name": "dcim.device"})).await;
    assert_eq!(
        (status, &body["job_result"]["user"]["url"]),
        (StatusCode::CREATED, &json!(server.url(&alice_path()))),
        "{body}"
    );
    let on_rack = json!({"object_pk": "1", "object_model_name": "dcim.rack"});
    let (status, body) = server.post(press, &server.alice, on_rack).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "Job button touch is not available on dcim.rack objects")
    );
    let (status, body) =
        server.post(press, &server.bob, json!({"object_pk": "1", "object_model_name": "dcim.device"})).await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (StatusCode::FORBIDDEN, "This user does not have permission to run jobs.")
    );
    let missing = json!({"object_pk": "1", "object_model_name": "dcim.device"});
    let (status, body) = server.post("/api/extras/job-buttons/nope/press/", &server.alice, missing).await;
    assert_eq!((status, body["detail"].as_str().unwrap()), (StatusCode::NOT_FOUND, "job button `nope` does not exist"));

    let (status, _) =
        server.call(reqwest::Method::DELETE, "/api/extras/job-buttons/touch/", Some(&server.root), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, none) = server.get("/api/objects/dcim.device/1/buttons/", &server.alice).await;
    assert_eq!(none, json!([]));
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_token() {
    let server = Server::start().await;
    let health = server.client.get(format!("{}/health", server.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = server.client.get(format!("{}/ready", server.base)).send().await.unwrap();
    assert_eq!((ready.status(), ready.json::<Value>().await.unwrap()), (StatusCode::OK, json!({"ready": true})));
    server.get("/api/extras/job-hooks/", &server.alice).await;
    server.get("/api/extras/job-hooks/missing/", &server.alice).await;
    server.get("/api/extras/job-hooks/", &server.bob).await;
    let metrics = server.client.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    for line in [
        "# TYPE jobhooks_queue_runs gauge",
        "jobhooks_queue_runs{state=\"pending\"} 0",
        "jobhooks_http_requests_total{route=\"/api/extras/job-hooks/\",status=\"200\"} 1",
        "jobhooks_http_requests_total{route=\"/api/extras/job-hooks/\",status=\"403\"} 1",
        "jobhooks_http_requests_total{route=\"/api/extras/job-hooks/{key}/\",status=\"404\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains("jh_"), "no key in the metrics");
    server.stop().await;
}

/// A hook receiver that does nothing.
struct Quiet;

#[jobhooks_model::async_trait]
impl jobhooks_model::JobHookReceiver for Quiet {
    async fn receive_job_hook(
        &self,
        _: &mut jobhooks_model::JobContext,
        _: &jobhooks_model::ObjectChange,
        _: jobhooks_model::Action,
        _: Option<Object>,
    ) -> Result<(), jobhooks_model::JobError> {
        Ok(())
    }
}

jobhooks_register::job_class!(Quiet);

#[tokio::test]
async fn readiness_and_per_job_metrics_follow_the_dispatcher_beside_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
    let registry =
        jobhooks_register::Registry::default().with_hook_receiver(Quiet, jobhooks_register::JobMeta::new()).unwrap();
    let job = registry.jobs().next().unwrap().class_path();
    let config = jobhooks_dispatch::DispatcherConfig::default().job_sync(SyncMode::Additive);
    let dispatcher = jobhooks_dispatch::Dispatcher::start(store.clone(), registry, config).await.unwrap();
    store.set_job_enabled(&job, true).await.unwrap();
    let devices = vec![ContentType::new("dcim.device").unwrap()];
    let hook = jobhooks_model::JobHook::new("quiet", devices, job.as_str()).on([jobhooks_model::Action::Create]);
    store.create_hook(hook).await.unwrap();
    let mut changes = ChangeSet::default();
    let device = ObjectRef::new(ContentType::new("dcim.device").unwrap(), "1").unwrap();
    changes.save(&Object::new(device, "sw1", json!({})).unwrap(), None);
    let context = ChangeContext::new(ChangeContextKind::Web, Some("root".into()), "");
    store.commit(&context, changes, ObjectWrites::Apply).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), dispatcher.drain()).await.unwrap().unwrap();
    let state = AppState::new(store).with_dispatcher(dispatcher.monitor());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(listener, router(state), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{base}/ready")).send().await.unwrap().status(), StatusCode::OK);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|line| line == "jobhooks_dispatcher_running 1"), "{metrics}");
    assert!(metrics.lines().any(|line| line == "jobhooks_runs_total{outcome=\"success\"} 1"), "{metrics}");
    let expected = [
        format!("jobhooks_job_runs_total{{job=\"{job}\",outcome=\"success\"}} 1"),
        format!("jobhooks_job_runs_total{{job=\"{job}\",outcome=\"dead_letter\"}} 0"),
        format!("jobhooks_run_duration_seconds_bucket{{job=\"{job}\",le=\"+Inf\"}} 1"),
        format!("jobhooks_run_duration_seconds_count{{job=\"{job}\"}} 1"),
        format!("jobhooks_run_start_latency_seconds_count{{job=\"{job}\"}} 1"),
        "# TYPE jobhooks_run_start_latency_seconds histogram".to_owned(),
    ];
    for line in expected {
        assert!(metrics.lines().any(|shown| shown == line), "{line} in {metrics}");
    }

    dispatcher.shutdown(Duration::from_secs(5)).await;
    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json::<Value>().await.unwrap()["reason"], "the dispatcher stopped");
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

/// A connection that sends part of a request's head and then nothing more.
async fn half_sent(address: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\n").await.unwrap();
    stream
}

/// Reads `stream` until the server closes it; false if it is still open when `within` is over.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A thousand half-sent requests leave the server to everyone else; with a small cap on
/// connections, the header timeout closes them and frees their places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_does_not_stop_others_from_being_served() {
    // Both ends of 1,000 connections live in this process.
    let allowed = rlimit::increase_nofile_limit(4096).unwrap();
    assert!(allowed >= 2100, "the process may open only {allowed} files");
    let server = Server::start().await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        slow.push(half_sent(&address).await);
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let answer = client.get(format!("{}/health", server.base)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "served beside 1,000 half-sent requests");
    drop(slow);
    server.stop().await;

    let limits = jobhooks_server::HttpLimits::default().max_connections(20).header_read_timeout(Duration::from_secs(1));
    let server = Server::start_with(limits).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..60 {
        slow.push(half_sent(&address).await);
    }
    // Its place is taken: it waits in the backlog until the header timeouts free places.
    let answer = client.get(format!("{}/health", server.base)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "served once the slow ones were closed");
    assert!(closed_within(&mut slow[0], Duration::from_secs(10)).await, "a half-sent request is closed");
    server.stop().await;
}

/// A kept-alive connection that sends nothing more is closed after the header timeout.
#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = jobhooks_server::HttpLimits::default().header_read_timeout(Duration::from_secs(1));
    let server = Server::start_with(limits).await;
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: idle\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"}") {
        let mut buffer = [0u8; 1024];
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the connection closed before the answer");
        answer.extend_from_slice(&buffer[..read]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "kept alive after one answer");
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await, "the idle connection is closed");
    server.stop().await;
}

/// At most `max_waiters` requests wait for runs at once; the next is answered 429, and a request
/// that does not wait is served as usual. A request longer than the timeout is answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_capped_and_requests_time_out() {
    let limits = jobhooks_server::HttpLimits::default().max_waiters(1).request_timeout(Duration::from_secs(2));
    let server = Server::start_with(limits).await;
    let (status, run) = server
        .post(
            &format!("/api/extras/jobs/{TOUCH}/run/"),
            &server.root,
            json!({"object_pk": "1", "object_model_name": "dcim.device"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = run["job_result"]["id"].as_u64().unwrap();
    let waiting = {
        let (client, url, key) = (
            server.client.clone(),
            format!("{}/api/extras/job-results/{id}/?wait=60", server.base),
            server.root.clone(),
        );
        tokio::spawn(async move { client.get(url).header("Authorization", format!("Token {key}")).send().await })
    };
    // The first waiter is counted before anyone else asks.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let text =
                server.client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
            if text.contains("jobhooks_api_waiting_requests 1") {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first request waits");
    let (status, body) = server.get(&format!("/api/extras/job-results/{id}/?wait=5"), &server.root).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("1 requests wait for runs already"), "{body}");
    let (status, _) = server.get(&format!("/api/extras/job-results/{id}/"), &server.root).await;
    assert_eq!(status, StatusCode::OK, "a request that does not wait is served");
    let timed_out = waiting.await.unwrap().unwrap();
    assert_eq!(timed_out.status(), StatusCode::SERVICE_UNAVAILABLE, "the 60 s wait outlived the 2 s request timeout");
    let body: Value = timed_out.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("took longer than 2 s"), "{body}");
    server.stop().await;
}

/// Dead-letters run `id` of `store`, as a dispatcher would after its last attempt.
async fn dead_letter(store: &Store, id: u64) {
    use jobhooks_model::ports::{Completion, JobQueue, Outcome};
    let leased = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(60), 100).await.unwrap();
    let (lease, _) = leased.into_iter().find(|(lease, _)| lease.run.0 == id).expect("the run is claimable");
    let logs = vec![jobhooks_model::LogEntry {
        time: OffsetDateTime::now_utc(),
        level: jobhooks_model::LogLevel::Error,
        grouping: "post_run".into(),
        message: "the receiver failed".into(),
        object: None,
    }];
    store.complete(Completion { lease, outcome: Outcome::DeadLettered, logs }).await.unwrap();
}

/// A run is replayed by its own user or a superuser, with the job's `extras.run_job`; the answer's
/// log is shown only to a caller who may view results.
#[tokio::test]
async fn a_run_is_replayed_by_its_own_user_or_a_superuser() {
    let server = Server::start().await;
    let carol = User::new("carol").unwrap().with_permission(Permission::run_jobs([TOUCH]));
    server.store.put_user(carol).await.unwrap();
    let issued = ApiToken::issue("carol", OffsetDateTime::now_utc(), None, "tests");
    server.store.add_token(issued.token).await.unwrap();
    let on_device = json!({"object_pk": "1", "object_model_name": "dcim.device"});
    let (status, run) = server.post(&format!("/api/extras/jobs/{TOUCH}/run/"), &issued.key, on_device).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = run["job_result"]["id"].as_u64().unwrap();
    dead_letter(&server.store, id).await;

    let replay = format!("/api/extras/job-results/{id}/replay/");
    for (who, key) in [("alice, who may run the job", &server.alice), ("bob", &server.bob)] {
        let (status, body) = server.post(&replay, key, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(body["detail"], format!("Only the user who ran run {id}, or a superuser, may replay it."));
    }
    let (status, replayed) = server.post(&replay, &issued.key, json!({})).await;
    assert_eq!((status, &replayed["status"]["value"]), (StatusCode::OK, &json!("PENDING")), "{replayed}");
    assert!(replayed.get("logs").is_none(), "a result's log is listed apart, to those who may view results");

    dead_letter(&server.store, id).await;
    let (status, replayed) = server.post(&replay, &server.root, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    let (status, logs) = server.get(&format!("/api/extras/job-logs/?job_result={id}"), &server.root).await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs["count"].as_u64().unwrap() > 0, "a superuser sees the log: {logs}");
    let (status, _) = server.get(&format!("/api/extras/job-logs/?job_result={id}"), &issued.key).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "carol may not view results, nor their logs");
    server.stop().await;
}

/// `/metrics` is open by default (Prometheus scrapes without a token) and asks for a valid token
/// when the server is configured so.
#[tokio::test]
async fn metrics_may_need_a_token() {
    let server = Server::start().await;
    let open = server.client.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    server.stop().await;

    let server = Server::start_with(jobhooks_server::HttpLimits::default().metrics_need_a_token(true)).await;
    let refused = server.client.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let wrong = server.client.get(format!("{}/metrics", server.base)).header("Authorization", "Token jh_nope_nope");
    assert_eq!(wrong.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let allowed =
        server.client.get(format!("{}/metrics", server.base)).header("Authorization", format!("Token {}", server.bob));
    let answer = allowed.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "any valid token");
    assert!(answer.text().await.unwrap().contains("jobhooks_queue_runs"));
    server.stop().await;
}

#[tokio::test]
async fn read_only_tokens_only_read_and_no_token_makes_one_that_can_do_more() {
    let server = Server::start().await;
    let (status, issued) =
        server.post("/api/users/tokens/", &server.alice, json!({"write_enabled": false, "description": "ro"})).await;
    assert_eq!((status, &issued["write_enabled"]), (StatusCode::CREATED, &json!(false)));
    let read_only = issued["key"].as_str().unwrap().to_owned();
    assert_eq!(server.get("/api/extras/job-hooks/", &read_only).await.0, StatusCode::OK, "it reads");
    for (method, path, body) in [
        (reqwest::Method::POST, "/api/extras/job-hooks/", Some(hook("ro"))),
        (reqwest::Method::PATCH, "/api/extras/job-hooks/first/", Some(json!({"enabled": false}))),
        (reqwest::Method::DELETE, "/api/users/tokens/0000000000000000/", None),
        (reqwest::Method::POST, "/api/users/tokens/", Some(json!({}))),
    ] {
        let (status, refused) = server.call(method.clone(), path, Some(&read_only), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {refused}");
        assert!(refused["detail"].as_str().unwrap().contains("this token is read-only"), "{refused}");
    }
    assert!(server.store.get_hook("ro").await.unwrap().is_none(), "nothing was written");

    // A token that expires makes only tokens that expire no later.
    let soon = OffsetDateTime::now_utc() + Duration::from_secs(3_600);
    let mut expiring = ApiToken::issue("alice", OffsetDateTime::now_utc(), Some(soon), "");
    expiring.token.write_enabled = true;
    server.store.add_token(expiring.token).await.unwrap();
    let later = (soon + Duration::from_secs(60)).format(&time::format_description::well_known::Rfc3339).unwrap();
    for body in [json!({}), json!({"expires": later})] {
        let (status, errors) = server.post("/api/users/tokens/", &expiring.key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{errors}");
        assert!(errors["expires"][0].as_str().unwrap().contains("cannot outlive the token that makes it"), "{errors}");
    }
    let earlier = (soon - Duration::from_secs(60)).format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(
        server.post("/api/users/tokens/", &expiring.key, json!({"expires": earlier})).await.0,
        StatusCode::CREATED
    );
    server.stop().await;
}

#[tokio::test]
async fn a_password_provisions_a_token_as_in_nautobot() {
    let server = Server::start().await;
    let path = "/api/users/alice/password/";
    let (status, set) = server
        .call(reqwest::Method::PUT, path, Some(&server.root), Some(json!({"password": "alice's password"})))
        .await;
    assert_eq!((status, &set["has_password"]), (StatusCode::OK, &json!(true)));
    let (status, _) =
        server.call(reqwest::Method::PUT, path, Some(&server.bob), Some(json!({"password": "bob's try at it"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bob may not set alice's password");
    let provision = |user: &str, password: &str| {
        server
            .client
            .post(format!("{}/api/users/tokens/provision/", server.base))
            .basic_auth(user, Some(password))
            .json(&json!({"description": "provisioned"}))
            .send()
    };
    let answer = provision("alice", "alice's password").await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let token: Value = answer.json().await.unwrap();
    let key = token["key"].as_str().unwrap();
    assert_eq!(server.get("/api/status/", key).await.1["user"], "alice", "the provisioned key works");
    for (user, password) in [("alice", "wrong password"), ("nobody", "alice's password"), ("bob", "any password")] {
        let answer = provision(user, password).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{user}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["detail"], "Invalid username/password.");
    }
    server.stop().await;
}

#[tokio::test]
async fn answers_and_refusals_are_shaped_as_django_rest_frameworks() {
    let server = Server::start().await;
    let (status, errors) =
        server.post("/api/extras/job-hooks/", &server.root, json!({"content_types": ["dcim.device"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors["name"], json!(["This field is required."]), "{errors}");
    let answer = server
        .client
        .get(format!("{}/api/extras/job-hooks/", server.base))
        .header("Authorization", format!("token {}", server.root))
        .header("Accept", "application/json; version=2.4")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "the keyword in any case, a versioned Accept");
    assert_eq!(answer.headers()["api-version"], "2.4");
    let (status, body) = server.get("/api/extras/no-such-thing/", &server.root).await;
    assert_eq!((status, &body["detail"]), (StatusCode::NOT_FOUND, &json!("Not found.")));
    let (status, body) = server.call(reqwest::Method::PUT, "/api/extras/job-hooks/", Some(&server.root), None).await;
    assert_eq!((status, &body["detail"]), (StatusCode::METHOD_NOT_ALLOWED, &json!("Method \"PUT\" not allowed.")));
    server.stop().await;
}
