//! The web pages over real HTTP, below the browser: logins and what a refused one reveals, `next`,
//! cookies, CSRF and `Origin`, sessions that end (log out, idle, a new password) and survive a
//! restart, permission pages, a result that is waited for, and `/api/` staying token-only.

use std::sync::Arc;
use std::time::Duration;

use jobhooks_model::ports::{Catalog, Completion, JobQueue, Logins, Outcome};
use jobhooks_model::{
    JobInputs, JobKind, JobSpec, OffsetDateTime, PasswordCost, PasswordHash, Permission, SyncMode, User,
};
use jobhooks_server::{AppState, UiConfig, router};
use jobhooks_store::Store;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};

const HOOK_JOB: &str = "app::jobs::Audit";
const PASSWORD: &str = "correct horse battery";

struct Site {
    base: String,
    store: Arc<Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Site {
    async fn start(store: Arc<Store>, ui: UiConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(AppState::new(store.clone()).with_ui(ui));
        let serving = tokio::spawn(jobhooks_server::serve(listener, app, async {
            let _ = stopped.await;
        }));
        Site { base, store, stop: Some(stop), serving: Some(serving) }
    }

    /// Stops the server and waits until it has let go of the store.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.serving.take().unwrap().await.unwrap().unwrap();
    }

    /// A browser-like client: keeps cookies, follows no redirect (the tests look at them).
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The CSRF token in the page at `path`.
    async fn token(&self, client: &reqwest::Client, path: &str) -> String {
        let page = client.get(self.url(path)).send().await.unwrap().text().await.unwrap();
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).unwrap_or_else(|| panic!("{path} has a form: {page}")) + marker.len();
        page[start..start + page[start..].find('"').unwrap()].to_owned()
    }

    async fn log_in(&self, client: &reqwest::Client, username: &str, password: &str, next: &str) -> reqwest::Response {
        let token = self.token(client, "/login/").await;
        let form = [("csrf_token", token.as_str()), ("username", username), ("password", password), ("next", next)];
        client.post(self.url("/login/")).header("Origin", &self.base).form(&form).send().await.unwrap()
    }
}

async fn store(dir: &std::path::Path) -> Arc<Store> {
    let store = Arc::new(Store::open(dir.join("db")).unwrap());
    let spec = JobSpec {
        class_path: HOOK_JOB.into(),
        name: HOOK_JOB.into(),
        description: String::new(),
        kind: JobKind::JobHookReceiver,
        hidden: false,
        former_class_paths: vec![],
    };
    store.sync_jobs(&[spec], SyncMode::Full).await.unwrap();
    store.set_job_enabled(HOOK_JOB, true).await.unwrap();
    let alice = ["extras.view_jobhook", "extras.add_jobhook", "extras.view_jobresult"]
        .into_iter()
        .fold(User::new("alice").unwrap(), |user, perm| user.with_permission(Permission::new(perm)));
    store.put_user(alice).await.unwrap();
    store.put_user(User::new("eve").unwrap()).await.unwrap();
    store.put_user(User::new("nopassword").unwrap()).await.unwrap();
    for user in ["alice", "eve"] {
        let hash = PasswordHash::new(PASSWORD, PasswordCost::Cheapest).unwrap();
        store.set_password(user, Some(hash)).await.unwrap();
    }
    store
}

fn quick() -> UiConfig {
    UiConfig::default().password_cost(PasswordCost::Cheapest).refused_login_delay(Duration::ZERO)
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("jobhooks_session=") && !value.starts_with("jobhooks_session=;"))
        .map(str::to_owned)
}

#[tokio::test]
async fn a_refused_login_says_the_same_whoever_was_named_and_sets_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(store(dir.path()).await, quick()).await;
    let mut pages = Vec::new();
    for (username, password) in [("alice", "wrong password"), ("nobody", PASSWORD), ("nopassword", PASSWORD)] {
        let client = site.client();
        let answer = site.log_in(&client, username, password, "/").await;
        assert_eq!(answer.status(), StatusCode::OK, "{username}: the form again");
        assert_eq!(session_cookie(&answer), None, "{username}: no session");
        let page = answer.text().await.unwrap();
        assert!(page.contains("Please enter a correct username and password."), "{username}: {page}");
        // Each client has its own CSRF token; the rest must not differ.
        let page: Vec<&str> = page.lines().filter(|line| !line.contains("csrf_token")).collect();
        pages.push(page.join("\n").replace(username, "NAME"));
    }
    assert_eq!(pages[0], pages[1], "an unknown user reads as a wrong password");
    assert_eq!(pages[0], pages[2], "a user without a password too");
    site.stop().await;
}

#[tokio::test]
async fn a_login_goes_to_a_local_next_only_with_a_cookie_that_scripts_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(store(dir.path()).await, quick()).await;
    let client = site.client();
    let answer = client.get(site.url("/hooks/?x=1")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/login/?next=%2Fhooks%2F%3Fx%3D1", "no session: log in first");

    let answer = site.log_in(&client, "alice", PASSWORD, "/hooks/").await;
    assert_eq!((answer.status(), &answer.headers()[LOCATION]), (StatusCode::SEE_OTHER, &"/hooks/".parse().unwrap()));
    let cookie = session_cookie(&answer).expect("a session cookie");
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(client.get(site.url("/hooks/")).send().await.unwrap().status(), StatusCode::OK);
    for elsewhere in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let answer = site.log_in(&site.client(), "alice", PASSWORD, elsewhere).await;
        assert_eq!(answer.headers()[LOCATION], "/", "next={elsewhere} is not followed");
    }
    site.stop().await;

    let secure = UiConfig::for_external_url(Some("https://jobhooks.example")).password_cost(PasswordCost::Cheapest);
    let site = Site::start(store(tempfile::tempdir().unwrap().path()).await, secure).await;
    let answer = site.log_in(&site.client(), "alice", PASSWORD, "/").await;
    assert!(session_cookie(&answer).unwrap().ends_with("; Secure"), "an https site's cookie is Secure");
    site.stop().await;
}

#[tokio::test]
async fn forms_from_another_site_or_without_their_token_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(store(dir.path()).await, quick()).await;
    let client = site.client();
    site.log_in(&client, "alice", PASSWORD, "/").await;
    let token = site.token(&client, "/hooks/add/").await;
    let hook = |token: &str| {
        [
            ("csrf_token", token.to_owned()),
            ("name", "audit".to_owned()),
            ("content_types", "dcim.device".to_owned()),
            ("job", HOOK_JOB.to_owned()),
            ("type_create", "on".to_owned()),
            ("enabled", "on".to_owned()),
        ]
    };
    let foreign = client.post(site.url("/hooks/add/")).header("Origin", "http://evil.example").form(&hook(&token));
    let answer = foreign.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.unwrap().contains("CSRF verification failed."));
    for forged in ["", "0000", &token[..token.len() - 1]] {
        let answer = client.post(site.url("/hooks/add/")).form(&hook(forged)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "token {forged:?}");
    }
    assert_eq!(site.store.list_hooks().await.unwrap(), [], "nothing was written");
    let answer = client.post(site.url("/hooks/add/")).header("Origin", &site.base).form(&hook(&token)).send().await;
    assert_eq!(answer.unwrap().headers()[LOCATION], "/hooks/audit/", "the real form is taken");
    assert!(site.store.get_hook("audit").await.unwrap().is_some());

    let login = [("csrf_token", "made-up"), ("username", "alice"), ("password", PASSWORD), ("next", "/")];
    let answer = site.client().post(site.url("/login/")).form(&login).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN, "the login form has its token too");
    site.stop().await;
}

#[tokio::test]
async fn a_page_the_user_may_not_see_says_why_and_the_api_takes_no_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(store(dir.path()).await, quick()).await;
    let client = site.client();
    site.log_in(&client, "eve", PASSWORD, "/").await;
    let answer = client.get(site.url("/hooks/")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.unwrap().contains("extras.view_jobhook is required"));
    let api = client.get(site.url("/api/extras/job-hooks/")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "/api/ stays token-only");
    site.stop().await;
}

#[tokio::test]
async fn sessions_end_on_log_out_when_idle_and_with_a_new_password_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(store(dir.path()).await, quick()).await;
    let client = site.client();
    site.log_in(&client, "alice", PASSWORD, "/").await;
    assert_eq!(client.get(site.url("/hooks/")).send().await.unwrap().status(), StatusCode::OK);
    let store = site.store.clone();
    site.stop().await;
    drop(store);

    // The session is in the store: a new process honours it.
    let site = Site::start(Arc::new(Store::open(dir.path().join("db")).unwrap()), quick()).await;
    assert_eq!(client.get(site.url("/hooks/")).send().await.unwrap().status(), StatusCode::OK, "after a restart");
    let token = site.token(&client, "/hooks/").await;
    let out = client.post(site.url("/logout/")).form(&[("csrf_token", &token)]).send().await.unwrap();
    assert_eq!(out.headers()[LOCATION], "/login/");
    assert_eq!(site.store.list_logins(Some("alice")).await.unwrap(), [], "logging out ends the stored session");

    site.log_in(&client, "alice", PASSWORD, "/").await;
    let hash = PasswordHash::new("a new password", PasswordCost::Cheapest).unwrap();
    site.store.set_password("alice", Some(hash)).await.unwrap();
    assert_eq!(client.get(site.url("/hooks/")).send().await.unwrap().status(), StatusCode::SEE_OTHER, "new password");
    site.stop().await;

    let idle = quick().session_idle(Duration::ZERO);
    let site = Site::start(Arc::new(Store::open(dir.path().join("db")).unwrap()), idle).await;
    site.log_in(&client, "alice", "a new password", "/").await;
    assert_eq!(client.get(site.url("/hooks/")).send().await.unwrap().status(), StatusCode::SEE_OTHER, "idle too long");
    site.stop().await;
}

#[tokio::test]
async fn a_result_page_asked_to_wait_answers_when_its_run_moves() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let site = Site::start(store.clone(), quick()).await;
    let client = site.client();
    site.log_in(&client, "alice", PASSWORD, "/").await;
    let run = store.enqueue(
        HOOK_JOB,
        Some("alice".into()),
        JobInputs::Hook { object_change: jobhooks_model::ChangeId(1), hook: None },
    );
    let run = run.await.unwrap();
    let fragment = site.url(&format!("/results/{}/?fragment=true&wait=20&seen=PENDING%3A0", run.0));
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.get(fragment).send().await.unwrap().text().await.unwrap() }
    });
    let (lease, _) = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(60), 1).await.unwrap().remove(0);
    store.complete(Completion { lease, outcome: Outcome::Succeeded { writes: None }, logs: Vec::new() }).await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(15), waiting).await.expect("answered at once").unwrap();
    assert!(body.contains("data-status=\"SUCCESS\"") && body.contains("data-final=\"true\""), "{body}");
    assert!(!body.contains("<html"), "a fragment, not a page");
    site.stop().await;
}

/// Posts `fields` (with the page's CSRF token and this site's `Origin`) from the page at `from`.
async fn post_form(
    site: &Site,
    client: &reqwest::Client,
    from: &str,
    to: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = site.token(client, from).await;
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    client.post(site.url(to)).header("Origin", &site.base).form(&form).send().await.unwrap()
}

/// Every page family answers, and its forms do what they say: a superuser's tour of home,
/// objects, the change log, jobs (disable, enable), hooks (edit, then delete after the
/// confirmation page), buttons (add, edit, delete), results (a dead letter replayed) and the
/// account page (a token's key shown once, then revoked; every user listed).
#[tokio::test]
async fn every_page_family_answers_and_its_forms_write() {
    use jobhooks_model::ports::{ChangeStore, QueueReader};
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    store.put_user(User::superuser("root").unwrap()).await.unwrap();
    store.set_password("root", Some(PasswordHash::new(PASSWORD, PasswordCost::Cheapest).unwrap())).await.unwrap();
    let button_job = JobSpec {
        class_path: "app::jobs::Press".into(),
        name: "Press".into(),
        description: String::new(),
        kind: JobKind::JobButtonReceiver,
        hidden: true,
        former_class_paths: vec![],
    };
    store.sync_jobs(&[button_job], SyncMode::Additive).await.unwrap();
    store.set_job_enabled("app::jobs::Press", true).await.unwrap();
    let hook =
        jobhooks_model::JobHook::new("audit", vec![jobhooks_model::ContentType::new("dcim.device").unwrap()], HOOK_JOB)
            .on([jobhooks_model::Action::Update]);
    store.create_hook(hook).await.unwrap();
    let device = jobhooks_model::Object::new(
        jobhooks_model::ObjectRef::new(jobhooks_model::ContentType::new("dcim.device").unwrap(), "sw1").unwrap(),
        "sw1",
        jobhooks_model::json!({"name": "sw1", "serial": "A1"}),
    )
    .unwrap();
    let mut changes = jobhooks_model::ChangeSet::default();
    changes.save(&device, None);
    let web = jobhooks_model::ChangeContext::new(jobhooks_model::ChangeContextKind::Web, Some("root".into()), "");
    store.commit(&web, changes, jobhooks_model::ports::ObjectWrites::Apply).await.unwrap();
    let site = Site::start(store.clone(), quick()).await;
    let client = site.client();
    site.log_in(&client, "root", PASSWORD, "/").await;

    let page = |path: &'static str| {
        let client = client.clone();
        let url = site.url(path);
        async move {
            let answer = client.get(url).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            answer.text().await.unwrap()
        }
    };
    assert!(page("/").await.contains("dcim.device"), "home lists the object types");
    assert!(page("/objects/").await.contains("dcim.device"));
    assert!(page("/objects/dcim.device/").await.contains("sw1"));
    let object = page("/objects/dcim.device/sw1/").await;
    assert!(object.contains("serial") && object.contains("added"), "the data and its change, field by field");
    assert!(page("/changes/?changed_object_type=dcim.device&user=root").await.contains("#1"));
    assert!(page("/changes/1/").await.contains("&quot;serial&quot;: &quot;A1&quot;"), "the snapshot");

    // Jobs: hidden ones on request, disabled and enabled again.
    assert!(!page("/jobs/").await.contains("app::jobs::Press"), "hidden jobs are hidden");
    assert!(page("/jobs/?hidden=true").await.contains("app::jobs::Press"));
    post_form(&site, &client, "/jobs/?hidden=true", "/jobs/app%3A%3Ajobs%3A%3APress/enabled/", &[("enabled", "false")])
        .await;
    assert!(!store.get_job("app::jobs::Press").await.unwrap().unwrap().enabled);
    post_form(&site, &client, "/jobs/?hidden=true", "/jobs/app%3A%3Ajobs%3A%3APress/enabled/", &[("enabled", "true")])
        .await;
    assert!(store.get_job("app::jobs::Press").await.unwrap().unwrap().enabled);

    // A hook edited (renamed, another event), then deleted after its confirmation page.
    assert!(page("/hooks/audit/edit/").await.contains("value=\"audit\""), "the form holds the hook");
    let edit = [
        ("name", "audit2"),
        ("content_types", "dcim.device"),
        ("job", HOOK_JOB),
        ("type_delete", "on"),
        ("enabled", "on"),
    ];
    let saved = post_form(&site, &client, "/hooks/audit/edit/", "/hooks/audit/edit/", &edit).await;
    assert_eq!(saved.headers()[LOCATION], "/hooks/audit2/");
    let renamed = store.get_hook("audit2").await.unwrap().unwrap();
    assert!(renamed.type_delete && !renamed.type_update && store.get_hook("audit").await.unwrap().is_none());
    assert!(page("/hooks/audit2/delete/").await.contains("Are you sure you want to delete job hook audit2?"));
    post_form(&site, &client, "/hooks/audit2/delete/", "/hooks/audit2/delete/", &[]).await;
    assert_eq!(store.list_hooks().await.unwrap(), []);

    // A button added, edited, and deleted; a weight that is not a number is refused beside it.
    let button = [
        ("name", "go"),
        ("content_types", "dcim.device"),
        ("text", "Go {{ obj }}"),
        ("job", "app::jobs::Press"),
        ("weight", "x"),
        ("button_class", "primary"),
        ("enabled", "on"),
    ];
    let refused = post_form(&site, &client, "/buttons/add/", "/buttons/add/", &button).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("Enter a whole number."));
    let mut button = button.to_vec();
    button[4] = ("weight", "10");
    let created = post_form(&site, &client, "/buttons/add/", "/buttons/add/", &button).await;
    assert_eq!(created.headers()[LOCATION], "/buttons/go/");
    assert!(page("/objects/dcim.device/sw1/").await.contains("Go sw1"), "the new button is on the object");
    button[2] = ("text", "Go now");
    post_form(&site, &client, "/buttons/go/edit/", "/buttons/go/edit/", &button).await;
    assert_eq!(store.get_button("go").await.unwrap().unwrap().text, "Go now");
    post_form(&site, &client, "/buttons/go/delete/", "/buttons/go/delete/", &[]).await;
    assert_eq!(store.list_buttons().await.unwrap(), []);

    // A dead-lettered run, replayed from its page by its own user.
    let run = store.enqueue(
        HOOK_JOB,
        Some("root".into()),
        JobInputs::Hook { object_change: jobhooks_model::ChangeId(1), hook: None },
    );
    let run = run.await.unwrap();
    let (lease, _) = store.lease_batch(OffsetDateTime::now_utc(), Duration::from_secs(60), 10).await.unwrap().remove(0);
    store.complete(Completion { lease, outcome: Outcome::DeadLettered, logs: Vec::new() }).await.unwrap();
    let path = format!("/results/{}/", run.0);
    let listed = client.get(site.url("/results/?status=DEAD_LETTERED")).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains(&format!("#{}", run.0)), "the results list filters by status");
    let replayed = post_form(&site, &client, &path, &format!("{path}replay/"), &[]).await;
    assert_eq!(replayed.headers()[LOCATION], path.as_str());
    assert_eq!(store.get_result(run).await.unwrap().unwrap().status, jobhooks_model::JobStatus::Pending);

    // A token's key is shown once; revoked, it is gone. A superuser sees every user.
    let made =
        post_form(&site, &client, "/account/", "/account/tokens/", &[("description", "laptop"), ("read_only", "on")])
            .await;
    let made = made.text().await.unwrap();
    let key = made.split("<code class=\"key\">").nth(1).and_then(|rest| rest.split('<').next()).unwrap().to_owned();
    let id = jobhooks_model::ApiToken::id_of_key(&key).unwrap().to_owned();
    let token = store.get_token(&id).await.unwrap().unwrap();
    assert!(!token.write_enabled && token.description == "laptop");
    let account = page("/account/").await;
    assert!(!account.contains(&key) && account.contains(&id), "the key is not shown again");
    assert!(account.contains("nopassword") && account.contains("No (no password)"), "every user, and who can log in");
    post_form(&site, &client, "/account/", &format!("/account/tokens/{id}/delete/"), &[]).await;
    assert!(store.get_token(&id).await.unwrap().is_none());
    site.stop().await;
}

/// The hook form sends a webhook in place of a job: it takes the permission to add webhooks,
/// keeps the secret when the field is left empty on an edit, and never shows it.
#[tokio::test]
async fn a_webhook_is_added_from_the_hook_form_with_its_own_permission() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let webhook_job = JobSpec {
        class_path: jobhooks_model::WEBHOOK_JOB.into(),
        name: "Webhook".into(),
        description: String::new(),
        kind: JobKind::JobHookReceiver,
        hidden: true,
        former_class_paths: vec![],
    };
    store.sync_jobs(&[webhook_job], SyncMode::Additive).await.unwrap();
    let site = Site::start(store.clone(), quick()).await;
    let client = site.client();
    site.log_in(&client, "alice", PASSWORD, "/").await;
    let fields = [
        ("name", "cmdb"),
        ("content_types", "dcim.device"),
        ("job", ""),
        ("payload_url", "https://cmdb.example/in/{{ model }}"),
        ("http_method", "PUT"),
        ("additional_headers", "X-Source: jobhooks\r\nX-User: {{ username }}"),
        ("secret", "s3cret"),
        ("ssl_verification", "on"),
        ("type_update", "on"),
        ("enabled", "on"),
    ];
    let answer = post_form(&site, &client, "/hooks/add/", "/hooks/add/", &fields).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(answer.text().await.unwrap().contains("extras.add_webhook is required"));
    assert_eq!(site.store.list_hooks().await.unwrap(), [], "nothing was written");

    let alice =
        site.store.get_user("alice").await.unwrap().unwrap().with_permission(Permission::new("extras.add_webhook"));
    let alice = alice.with_permission(Permission::new("extras.change_jobhook"));
    site.store.put_user(alice).await.unwrap();
    let answer = post_form(&site, &client, "/hooks/add/", "/hooks/add/", &fields).await;
    assert_eq!(answer.headers()[LOCATION], "/hooks/cmdb/");
    let hook = site.store.get_hook("cmdb").await.unwrap().unwrap();
    let webhook = hook.webhook.as_ref().unwrap();
    assert_eq!((hook.job.as_str(), webhook.http_method.as_str()), (jobhooks_model::WEBHOOK_JOB, "PUT"));
    assert_eq!(
        (webhook.secret.as_str(), webhook.additional_headers.as_str()),
        ("s3cret", "X-Source: jobhooks\nX-User: {{ username }}")
    );
    let shown = client.get(site.url("/hooks/cmdb/")).send().await.unwrap().text().await.unwrap();
    assert!(
        shown.contains("cmdb.example&#x2f;in&#x2f;{{ model }}")
            && shown.contains("signed")
            && !shown.contains("s3cret"),
        "{shown}"
    );
    let form = client.get(site.url("/hooks/cmdb/edit/")).send().await.unwrap().text().await.unwrap();
    assert!(!form.contains("s3cret"), "the edit form never shows the secret");

    // An edit that leaves the secret empty keeps it and, the webhook unchanged, needs no webhook
    // permission beyond the hook's.
    let edited: Vec<(&str, &str)> =
        fields.iter().map(|&(name, value)| if name == "secret" { (name, "") } else { (name, value) }).collect();
    let answer = post_form(&site, &client, "/hooks/cmdb/edit/", "/hooks/cmdb/edit/", &edited).await;
    assert_eq!(answer.headers()[LOCATION], "/hooks/cmdb/");
    assert_eq!(site.store.get_hook("cmdb").await.unwrap().unwrap().webhook.unwrap().secret, "s3cret");
    site.stop().await;
}
