//! The demo: the seed scenarios of Nautobot's Job Hooks and Job Button Receivers, end to end, on a
//! fresh store, explained on one screen. Exits 0 only if every scenario behaved as expected.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jobhooks_dispatch::{Dispatcher, DispatcherConfig};
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectReader, QueueReader, ResultFilter};
use jobhooks_model::{
    Action, ChangeContext, ChangeContextKind, ContentType, JobButton, JobHook, JobResult, JobStatus, Object, ObjectRef,
    Permission, RunId, User, json,
};
use jobhooks_register::Registry;
use jobhooks_store::Store;

use crate::{Failure, Outcome};

const SERIAL_HOOK: &str = "jobhooks_examples::ExampleJobHookReceiver";
const SIMPLE_BUTTON: &str = "jobhooks_examples::ExampleSimpleJobButtonReceiver";
const COMPLEX_BUTTON: &str = "jobhooks_examples::ExampleComplexJobButtonReceiver";
const STEPS: usize = 6;

fn step(n: usize, what: &str) {
    println!("[{n}/{STEPS}] {what}");
}

fn reference(content_type: &str, id: &str) -> ObjectRef {
    ObjectRef::new(ContentType::new(content_type).expect("a valid content type"), id).expect("a valid id")
}

/// What the demo checks, and whether it held.
struct Checks(Vec<(String, bool)>);

impl Checks {
    fn check(&mut self, what: impl Into<String>, held: bool) {
        self.0.push((what.into(), held));
    }
}

fn show_result(label: &str, result: &JobResult) {
    println!("  {label}: run {} {} as {}", result.id, result.status, result.user.as_deref().unwrap_or("-"));
    for entry in &result.logs {
        println!("      {:<8} {}", entry.level.as_str(), entry.message);
    }
}

pub(crate) async fn run(keep_db: Option<&Path>) -> Outcome {
    let temp = tempfile::tempdir().map_err(|e| Failure::failed(format!("cannot create a temporary directory: {e}")))?;
    let path = keep_db.unwrap_or(temp.path());
    if keep_db.is_some_and(|p| p.exists()) {
        return Err(Failure::bad_input(format!("{} exists: the demo needs a fresh store", path.display())));
    }
    let store = Arc::new(Store::open(path)?);
    let registry = Registry::from_linked().map_err(|e| Failure::failed(e.to_string()))?;
    for job in [SERIAL_HOOK, SIMPLE_BUTTON, COMPLEX_BUTTON] {
        if registry.get(job).is_none() {
            return Err(Failure::failed(format!(
                "the demo needs the seed example receivers linked in; {job} is missing"
            )));
        }
    }
    let mut checks = Checks(Vec::new());

    step(1, "Starting the dispatcher and enabling the seed example jobs (new jobs start disabled)");
    let dispatcher = Dispatcher::start(store.clone(), registry, DispatcherConfig::default())
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    for job in [SERIAL_HOOK, SIMPLE_BUTTON, COMPLEX_BUTTON] {
        store.set_job_enabled(job, true).await?;
        println!("  enabled {job}");
    }

    step(2, "Adding users: alice (may run jobs, may add locations), bob (may run jobs), eve (no permissions)");
    let alice = User::new("alice")?
        .with_permission(Permission::new("extras.run_job"))
        .with_permission(Permission::new("dcim.add_location"));
    let bob = User::new("bob")?.with_permission(Permission::new("extras.run_job"));
    let eve = User::new("eve")?;
    for user in [&alice, &bob, &eve] {
        store.put_user(user.clone()).await?;
    }

    step(3, "Creating a job hook on device updates and two job buttons");
    let devices = vec![ContentType::new("dcim.device")?];
    store.create_hook(JobHook::new("Validate serials", devices, SERIAL_HOOK).on([Action::Update])).await?;
    let locations = vec![ContentType::new("dcim.location")?];
    store.create_button(JobButton::new("Simple", locations, "Run simple on {{ obj }}", SIMPLE_BUTTON)).await?;
    let anywhere = ["dcim.location", "dcim.device", "dcim.rack"].map(|t| ContentType::new(t).expect("valid")).to_vec();
    store.create_button(JobButton::new("Complex", anywhere, "Run complex on {{ obj }}", COMPLEX_BUTTON)).await?;
    println!("  hook \"Validate serials\": dcim.device, on update -> {SERIAL_HOOK}");
    println!("  button \"Simple\": dcim.location -> {SIMPLE_BUTTON}");
    println!("  button \"Complex\": dcim.location, dcim.device, dcim.rack -> {COMPLEX_BUTTON}");

    step(4, "Changing objects as alice: create a location, a rack and a device, then change the device's serial");
    let hq = Object::new(reference("dcim.location", "hq"), "HQ", json!({"name": "HQ"}))?;
    let rack = Object::new(reference("dcim.rack", "r1"), "R1", json!({"name": "R1"}))?;
    let device = |serial: &str| {
        let data = json!({"name": "edge-1", "serial": serial});
        Object::new(reference("dcim.device", "edge-1"), "edge-1", data).expect("the device's data is a JSON object")
    };
    let web = || ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
    let mut session = store.session(web());
    for object in [hq.clone(), rack.clone(), device("A1")] {
        session.save(object).await?;
    }
    session.commit().await?;
    let mut session = store.session(web());
    session.save(device("B2")).await?;
    let receipt = session.commit().await?;
    checks.check("the serial change queued exactly one hook run", receipt.runs.len() == 1);

    step(5, "Pressing buttons");
    let shown = dispatcher.buttons_for(&hq, &bob).await?;
    for button in &shown {
        println!("  on HQ, bob sees \"{}\"{}", button.text, if button.disabled { " (disabled)" } else { "" });
    }
    let mut presses: Vec<(&str, RunId, JobStatus)> = Vec::new();
    for (label, user, button, object, expected) in [
        ("bob presses Simple on HQ", &bob, "Simple", &hq, JobStatus::Success),
        ("alice presses Complex on HQ", &alice, "Complex", &hq, JobStatus::Success),
        ("bob presses Complex on HQ (may not add locations)", &bob, "Complex", &hq, JobStatus::Failure),
        ("alice presses Complex on R1 (unsupported type)", &alice, "Complex", &rack, JobStatus::Failure),
    ] {
        let run = dispatcher.press(user, button, object.reference()).await?;
        presses.push((label, run, expected));
    }
    let refused = dispatcher.press(&eve, "Simple", hq.reference()).await;
    let refusal = refused.as_ref().err().map(ToString::to_string).unwrap_or_default();
    println!("  eve presses Simple on HQ: refused: {refusal}");
    checks.check(
        "eve's press is refused for lack of permission",
        refusal == "This user does not have permission to run jobs.",
    );

    step(6, "Running everything queued");
    dispatcher.drain().await?;

    println!("\nChanges (newest first):");
    let far = jobhooks_model::OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    let mut changes = store.changes_between(jobhooks_model::OffsetDateTime::UNIX_EPOCH, far, usize::MAX).await?;
    changes.reverse();
    for change in &changes {
        println!("  {:>3}  {}  [{}]", change.id, change, change.change_context);
    }

    println!("\nJob hook runs:");
    let hook_runs = store.list_results(&ResultFilter::default().job(SERIAL_HOOK)).await?;
    for result in &hook_runs {
        show_result("Validate serials", result);
    }
    let serial = store.get_object(device("").reference()).await?.map(|d| d.data()["serial"].clone());
    let revert = changes.iter().find(|c| c.change_context == ChangeContextKind::JobHook);
    checks.check("exactly one hook run happened in total (the revert triggered none)", hook_runs.len() == 1);
    checks.check("the hook run succeeded", hook_runs.iter().all(|r| r.status == JobStatus::Success));
    checks.check("the invalid serial B2 was reverted to A1", serial == Some(json!("A1")));
    checks.check("the revert is recorded as a job-hook change", revert.is_some_and(|c| c.action == Action::Update));

    println!("\nJob button runs:");
    for (label, run, expected) in presses {
        let result = store.get_result(run).await?.ok_or_else(|| Failure::failed(format!("run {run} has no result")))?;
        show_result(label, &result);
        checks.check(format!("{label}: {expected}"), result.status == expected);
    }
    dispatcher.shutdown(Duration::from_secs(5)).await;

    println!("\nChecks:");
    let mut all_held = true;
    for (what, held) in &checks.0 {
        println!("  [{}] {what}", if *held { "ok" } else { "FAILED" });
        all_held &= held;
    }
    if all_held {
        println!(
            "\nAll {} checks held. Store: {}",
            checks.0.len(),
            if keep_db.is_some() { path.display().to_string() } else { "temporary, removed".into() }
        );
        Ok(())
    } else {
        Err(Failure::failed("the demo did not behave as expected (see the checks above)"))
    }
}
