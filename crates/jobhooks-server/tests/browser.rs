//! The web pages in a real browser: Debian's Chromium, driven over WebDriver by chromedriver,
//! against a server on 127.0.0.1 with a fresh store seeded as `jobhooks serve --demo` seeds one,
//! and a dispatcher running the seed receivers. Each scenario saves screenshots under
//! `target/ui/`.
//!
//! Chromium and chromedriver come from Debian (`apt-get install chromium chromium-driver`);
//! `cargo xtask ci` installs them when they are missing. `JOBHOOKS_CHROMEDRIVER` names another
//! chromedriver.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::Storage;
use jobhooks_model::{
    ContentType, JobButton, JobButtonReceiver, JobContext, JobError, Object, PasswordCost, async_trait,
};
use jobhooks_register::{JobClass, JobMeta, Registry, register_job_button_receiver};
use jobhooks_server::{AppState, UiConfig, router};
use tokio::io::{AsyncBufReadExt, BufReader};

type Outcome = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Fails the scenario (without panicking, so that the browser is closed) unless `$held`.
macro_rules! ensure {
    ($held:expr, $($message:tt)+) => {
        if !$held {
            return Err(format!($($message)+).into());
        }
    };
}

/// Runs one scenario, naming it in its error.
async fn scenario(name: &str, outcome: impl std::future::Future<Output = Outcome>) -> Outcome {
    outcome.await.map_err(|error| format!("{name}: {error}").into())
}

/// How long a page may take to show what a scenario waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A button receiver that waits for the test to let it finish, so that a result page is seen
/// while its run is pending.
#[derive(Debug, Default)]
struct Gated;

static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[async_trait]
impl JobButtonReceiver for Gated {
    async fn receive_job_button(&self, ctx: &mut JobContext, obj: Object) -> Result<(), JobError> {
        ctx.log_info_about(&obj, "Waiting for the gate.");
        GATE.acquire().await.map(|permit| permit.forget()).map_err(|_| JobError::from("the gate closed"))?;
        ctx.log_info_about(&obj, "Through the gate.");
        Ok(())
    }
}

register_job_button_receiver!(Gated, JobMeta::new().name("Gated"));

/// A server on `store`, seeded, with its dispatcher.
struct App<S: Storage + 'static> {
    base: String,
    store: Arc<S>,
    logins: HashMap<String, String>,
    dispatcher: Option<Dispatcher<S>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<S: Storage + 'static> App<S> {
    async fn start(store: Arc<S>) -> Self {
        jobhooks_examples::link();
        let registry = Registry::from_linked().unwrap();
        let dispatcher = Dispatcher::start(store.clone(), registry, DispatcherConfig::default()).await.unwrap();
        let logins = jobhooks_examples::demo::seed(&store, PasswordCost::Cheapest).await.unwrap();
        store.set_job_enabled(Gated::CLASS_PATH, true).await.unwrap();
        let locations = vec![ContentType::new("dcim.location").unwrap()];
        let mut gated = JobButton::new("Gated", locations, "Wait on {{ obj }}", Gated::CLASS_PATH);
        gated.confirmation = false;
        store.create_button(gated).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let ui = UiConfig::default().password_cost(PasswordCost::Cheapest).refused_login_delay(Duration::ZERO);
        let state = AppState::new(store.clone()).with_dispatcher(dispatcher.monitor()).with_ui(ui);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(jobhooks_server::serve(listener, router(state), async {
            let _ = stopped.await;
        }));
        let logins = logins.into_iter().map(|login| (login.username, login.password)).collect();
        App { base, store, logins, dispatcher: Some(dispatcher), stop: Some(stop) }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.shutdown(Duration::from_secs(5)).await;
        }
    }
}

/// Chromium through chromedriver; [`Browser::close`] ends both.
struct Browser {
    client: Client,
    driver: tokio::process::Child,
}

impl Browser {
    async fn open() -> Self {
        let program = std::env::var("JOBHOOKS_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let mut driver = tokio::process::Command::new(&program)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {program}: {error}. Install Debian's chromium and chromium-driver \
                     (apt-get install chromium chromium-driver; `cargo xtask ci` does)"
                )
            });
        // chromedriver says where it listens once it does: the signal to connect.
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("chromedriver says on which port it listens");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": std::env::var("JOBHOOKS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session on Chromium");
        Browser { client, driver }
    }

    /// Ends the browser session, then chromedriver (killing chromedriver alone leaves Chromium).
    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// Where screenshots go: `target/ui/`.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) -> Outcome {
    let png = client.screenshot().await?;
    std::fs::write(screenshots().join(format!("{name}.png")), png)?;
    Ok(())
}

async fn text_of(client: &Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await?.text().await
}

/// Logs `username` in from a fresh cookie jar, landing on `next`.
async fn log_in<S: Storage + 'static>(client: &Client, app: &App<S>, username: &str, next: &str) -> Outcome {
    client.goto(&format!("{}/login/", app.base)).await?;
    client.delete_all_cookies().await?;
    let next: String = url_encode(next);
    client.goto(&format!("{}/login/?next={next}", app.base)).await?;
    client.find(Locator::Id("username")).await?.send_keys(username).await?;
    client.find(Locator::Id("password")).await?.send_keys(&app.logins[username]).await?;
    client.find(Locator::Id("login-submit")).await?.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Id("logout")).await?;
    Ok(())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

const HQ: &str = "/objects/dcim.location/hq/";

/// bob opens HQ, sees both buttons, presses Complex, confirms, follows the message's link, and
/// sees the run fail for want of a permission.
async fn bob_presses_complex_and_sees_it_fail<S: Storage + 'static>(
    client: &Client,
    app: &App<S>,
    tag: &str,
) -> Outcome {
    log_in(client, app, "bob", HQ).await?;
    ensure!(text_of(client, "[data-button=Simple]").await? == "Run simple on HQ", "bob sees Run simple on HQ");
    let complex = client.find(Locator::Css("[data-button=Complex]")).await?;
    ensure!(complex.text().await? == "Run complex on HQ", "bob sees the Complex button");
    client.set_window_size(1280, 900).await?;
    screenshot(client, &format!("{tag}object-page-laptop")).await?;
    client.set_window_size(390, 844).await?;
    screenshot(client, &format!("{tag}object-page-phone")).await?;
    client.set_window_size(1280, 900).await?;
    complex.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Css("#confirm-dialog[open]")).await?;
    let prompt = text_of(client, "#confirm-text").await?;
    ensure!(
        prompt == "Run Job 'jobhooks_examples::ExampleComplexJobButtonReceiver' with object 'HQ'?",
        "the confirmation asks Nautobot's question, not: {prompt}"
    );
    screenshot(client, &format!("{tag}confirm-dialog")).await?;
    client.find(Locator::Id("confirm-ok")).await?.click().await?;
    let flash = text_of(client, "#flash").await?;
    ensure!(flash.contains("Job enqueued.") && flash.contains("Click here for the results."), "the message: {flash}");
    client.find(Locator::Id("flash-link")).await?.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Css(".result-body [data-status=FAILURE]")).await?;
    let log = text_of(client, "#log").await?;
    ensure!(log.contains("User 'bob' does not have permission to add a Location."), "the log says why: {log}");
    screenshot(client, &format!("{tag}result-failure")).await?;
    Ok(())
}

/// alice presses Complex on HQ and sees it succeed.
async fn alice_presses_complex_and_sees_it_succeed<S: Storage + 'static>(client: &Client, app: &App<S>) -> Outcome {
    log_in(client, app, "alice", HQ).await?;
    client.find(Locator::Css("[data-button=Complex]")).await?.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Css("#confirm-dialog[open]")).await?;
    client.find(Locator::Id("confirm-ok")).await?.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Id("flash-link")).await?.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Css(".result-body [data-status=SUCCESS]")).await?;
    let log = text_of(client, "#log").await?;
    ensure!(log.contains("Job completed"), "the log ends with Job completed: {log}");
    screenshot(client, "result-success").await?;
    Ok(())
}

/// A result page opened while its run waits turns to SUCCESS by itself once the run ends: the
/// page is not reloaded (a mark set in the page survives).
async fn a_running_result_updates_by_itself<S: Storage + 'static>(client: &Client, app: &App<S>) -> Outcome {
    log_in(client, app, "alice", HQ).await?;
    client.find(Locator::Css("[data-button=Gated]")).await?.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Id("flash-link")).await?.click().await?;
    let status = client.wait().at_most(PATIENCE).for_element(Locator::Css(".result-body [data-status]")).await?;
    let shown = status.attr("data-status").await?.unwrap_or_default();
    ensure!(["PENDING", "STARTED"].contains(&shown.as_str()), "the run waits at the gate, shown {shown}");
    client.execute("window.jobhooksMark = 'not reloaded';", vec![]).await?;
    screenshot(client, "result-running").await?;
    GATE.add_permits(1);
    client.wait().at_most(PATIENCE).for_element(Locator::Css(".result-body [data-status=SUCCESS]")).await?;
    let mark = client.execute("return window.jobhooksMark;", vec![]).await?;
    ensure!(mark == serde_json::json!("not reloaded"), "the page updated without a reload, mark {mark}");
    ensure!(text_of(client, "#log").await?.contains("Through the gate."), "the new log lines are shown");
    Ok(())
}

/// eve may not run jobs: her buttons are disabled, with the reason on hover.
async fn eve_sees_the_buttons_disabled_with_the_reason<S: Storage + 'static>(client: &Client, app: &App<S>) -> Outcome {
    log_in(client, app, "eve", HQ).await?;
    for name in ["Simple", "Complex"] {
        let button = client.find(Locator::Css(&format!("button[data-button={name}]"))).await?;
        ensure!(button.attr("disabled").await?.is_some(), "{name} is disabled for eve");
        let title = button.attr("title").await?.unwrap_or_default();
        ensure!(title == "This user does not have permission to run jobs.", "{name}'s reason: {title}");
    }
    screenshot(client, "object-page-eve").await?;
    Ok(())
}

/// A button whose text does not render shows disabled, marked, with the error as its title; text
/// and group names are escaped.
async fn broken_and_hostile_buttons_are_shown_safely<S: Storage + 'static>(client: &Client, app: &App<S>) -> Outcome {
    let locations = vec![ContentType::new("dcim.location").unwrap()];
    let broken = JobButton::new("Broken", locations.clone(), "{{ obj.name | no_such_filter }}", Gated::CLASS_PATH);
    app.store.create_button(broken).await?;
    let mut hostile = JobButton::new(
        "Hostile",
        locations,
        "<script>window.jobhooksOwned = 1</script>{{ obj }}",
        jobhooks_examples::ExampleSimpleJobButtonReceiver::CLASS_PATH,
    );
    hostile.group_name = Some("<script>window.jobhooksOwned = 2</script>Ops".into());
    app.store.create_button(hostile).await?;
    log_in(client, app, "alice", HQ).await?;
    let button = client.find(Locator::Css("button[data-button=Broken]")).await?;
    ensure!(button.attr("disabled").await?.is_some(), "the broken button is disabled");
    let title = button.attr("title").await?.unwrap_or_default();
    ensure!(title.contains("no_such_filter"), "its title is the render error: {title}");
    ensure!(button.text().await?.contains('⚠'), "it carries an alert mark");
    let group = client.find(Locator::Css("summary[data-group]")).await?;
    ensure!(group.text().await?.contains("<script>window.jobhooksOwned = 2</script>Ops"), "the group name is text");
    group.click().await?;
    let hostile = text_of(client, "[data-button=Hostile]").await?;
    ensure!(hostile == "<script>window.jobhooksOwned = 1</script>HQ", "the button text is text: {hostile}");
    let owned = client.execute("return window.jobhooksOwned === undefined;", vec![]).await?;
    ensure!(owned == serde_json::json!(true), "no script from a button ran");
    screenshot(client, "object-page-broken-and-escaped").await?;
    app.store.delete_button("Broken").await?;
    app.store.delete_button("Hostile").await?;
    Ok(())
}

/// alice adds a hook that conflicts with the seeded one: the message shows beside the field, and
/// what she typed is kept.
async fn a_conflicting_hook_is_refused_beside_its_field<S: Storage + 'static>(
    client: &Client,
    app: &App<S>,
) -> Outcome {
    log_in(client, app, "alice", "/hooks/add/").await?;
    client.find(Locator::Id("name")).await?.send_keys("Validate again").await?;
    client.find(Locator::Id("content_types")).await?.send_keys("dcim.device").await?;
    let job = jobhooks_examples::ExampleJobHookReceiver::CLASS_PATH;
    client.find(Locator::Id("job")).await?.select_by_value(job).await?;
    client.find(Locator::Id("save")).await?.click().await?;
    let error = text_of(client, "#type_update-errors").await?;
    ensure!(
        error.contains(&format!("A job hook already exists for update on dcim.device to job {job}")),
        "the conflict is shown beside the update box: {error}"
    );
    let kept = client.find(Locator::Id("name")).await?.prop("value").await?.unwrap_or_default();
    ensure!(kept == "Validate again", "the name typed is kept: {kept}");
    screenshot(client, "hook-form-conflict").await?;
    ensure!(app.store.get_hook("Validate again").await?.is_none(), "nothing was written");
    Ok(())
}

/// A form posted with a wrong CSRF token is refused, and nothing is written.
async fn a_form_without_its_token_is_refused<S: Storage + 'static>(client: &Client, app: &App<S>) -> Outcome {
    log_in(client, app, "alice", "/hooks/add/").await?;
    client.find(Locator::Id("name")).await?.send_keys("Forged").await?;
    client.find(Locator::Id("content_types")).await?.send_keys("dcim.rack").await?;
    client.execute("document.querySelector('form.edit input[name=csrf_token]').value = 'forged';", vec![]).await?;
    client.find(Locator::Id("save")).await?.click().await?;
    let refusal = text_of(client, "#error-message").await?;
    ensure!(refusal.starts_with("CSRF verification failed."), "the refusal: {refusal}");
    ensure!(app.store.get_hook("Forged").await?.is_none(), "nothing was written");
    Ok(())
}

/// Logging out ends the session: the old cookie no longer opens a page.
async fn logging_out_ends_the_session<S: Storage + 'static>(client: &Client, app: &App<S>) -> Outcome {
    log_in(client, app, "alice", "/objects/").await?;
    let cookie = client.get_named_cookie("jobhooks_session").await?;
    client.find(Locator::Id("logout")).await?.click().await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Id("login-submit")).await?;
    client.add_cookie(cookie).await?;
    client.goto(&format!("{}/objects/", app.base)).await?;
    client.wait().at_most(PATIENCE).for_element(Locator::Id("login-submit")).await?;
    let url = client.current_url().await?;
    ensure!(url.path() == "/login/", "the old cookie leads to the login page, not {url}");
    Ok(())
}

/// Runs `scenarios` in one browser, closing it whatever happens, then fails with the first error.
async fn in_browser<F>(scenarios: F)
where
    F: AsyncFnOnce(&Client) -> Outcome,
{
    let browser = Browser::open().await;
    let outcome = scenarios(&browser.client).await;
    if outcome.is_err() {
        let _ = screenshot(&browser.client, "failed").await;
    }
    browser.close().await;
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_a_browser_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(Arc::new(jobhooks_store::Store::open(dir.path().join("db")).unwrap())).await;
    in_browser(async |client| {
        scenario("bob_presses_complex_and_sees_it_fail", bob_presses_complex_and_sees_it_fail(client, &app, ""))
            .await?;
        scenario("alice_presses_complex_and_sees_it_succeed", alice_presses_complex_and_sees_it_succeed(client, &app))
            .await?;
        scenario("a_running_result_updates_by_itself", a_running_result_updates_by_itself(client, &app)).await?;
        scenario(
            "eve_sees_the_buttons_disabled_with_the_reason",
            eve_sees_the_buttons_disabled_with_the_reason(client, &app),
        )
        .await?;
        scenario(
            "broken_and_hostile_buttons_are_shown_safely",
            broken_and_hostile_buttons_are_shown_safely(client, &app),
        )
        .await?;
        scenario(
            "a_conflicting_hook_is_refused_beside_its_field",
            a_conflicting_hook_is_refused_beside_its_field(client, &app),
        )
        .await?;
        scenario("a_form_without_its_token_is_refused", a_form_without_its_token_is_refused(client, &app)).await?;
        scenario("logging_out_ends_the_session", logging_out_ends_the_session(client, &app)).await
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_is_pressed_in_a_browser_on_postgres() {
    let url = jobhooks_postgres::testing::TestServer::shared().fresh_database().await;
    let app = App::start(Arc::new(jobhooks_postgres::PgStore::connect(&url).await.unwrap())).await;
    in_browser(async |client| bob_presses_complex_and_sees_it_fail(client, &app, "postgres-").await).await;
    app.stop().await;
}
