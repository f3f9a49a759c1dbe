//! The seed scenarios of Nautobot's Job Hooks and Job Button Receivers documents, end to end with
//! the example receivers, a real store and a real dispatcher; and the reference run of
//! SEMANTICS.md section 6, log for log.

use jobhooks_dispatch::{DispatcherConfig, PressError};
use jobhooks_model::ports::{Catalog, ChangeStore, ObjectReader, QueueReader};
use jobhooks_model::{
    Action, ChangeContextKind, ContentType, JobButton, JobButtonReceiver, JobContext, JobError, JobHook,
    JobHookReceiver, JobStatus, Object, ObjectChange, User, async_trait, json,
};
use jobhooks_register::{register_job_button_receiver, register_job_hook_receiver};
use jobhooks_tests::{Harness, class_path, log_lines, object, runner};

const SERIAL_HOOK: &str = "jobhooks_examples::ExampleJobHookReceiver";
const SIMPLE_BUTTON: &str = "jobhooks_examples::ExampleSimpleJobButtonReceiver";
const COMPLEX_BUTTON: &str = "jobhooks_examples::ExampleComplexJobButtonReceiver";

fn ct(name: &str) -> ContentType {
    ContentType::new(name).unwrap()
}

fn device(serial: &str) -> Object {
    object("dcim.device", "d1", "edge-1", json!({"name": "edge-1", "serial": serial}))
}

fn location() -> Object {
    object("dcim.location", "l1", "HQ", json!({"name": "HQ"}))
}

#[tokio::test]
async fn an_invalid_serial_is_reverted_without_recursion() {
    let h = Harness::start(DispatcherConfig::default()).await;
    h.save("alice", &[device("A1")]).await;
    h.store
        .create_hook(JobHook::new("serials", vec![ct("dcim.device")], SERIAL_HOOK).on([Action::Update]))
        .await
        .unwrap();
    h.save("alice", &[device("B2")]).await;

    let results = h.results_of(SERIAL_HOOK).await;
    assert_eq!(results.len(), 1, "exactly one hook run: the revert triggers none");
    let run = &results[0];
    assert_eq!(run.status, JobStatus::Success, "{:#?}", run.logs);
    assert_eq!(
        log_lines(run),
        [
            "info Running job",
            r#"info DIFF: {"added":{"serial":"B2"},"removed":{"serial":"A1"}}"#,
            "info edge-1 serial has been changed from A1 to B2",
            "info edge-1 serial B2 was not valid. Reverted to A1",
            "success Serial validation completed for edge-1",
            "success Job completed",
        ]
    );
    assert_eq!(h.store.get_object(device("").reference()).await.unwrap().unwrap().data()["serial"], "A1");
    let history = h.store.changes_for_object(device("").reference(), 10).await.unwrap();
    let revert = &history[0];
    assert_eq!(revert.change_context, ChangeContextKind::JobHook);
    assert_eq!(revert.change_context_detail, SERIAL_HOOK);
    assert_eq!(revert.user_name, "alice", "the revert is made as the run's user");
    assert_eq!(revert.get_snapshots().differences.added, Some(json!({"serial": "A1"})));
}

/// Defect found in acceptance testing: the update's run used to get the change's own copy of the
/// data when the object was gone, so the example receiver "reverted" the serial by saving it, and
/// the deleted device came back.
#[tokio::test]
async fn a_device_deleted_before_its_update_runs_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(jobhooks_store::Store::open(dir.path()).unwrap());
    jobhooks_examples::link();
    jobhooks_register::Registry::from_linked()
        .unwrap()
        .sync_into(&*store, jobhooks_model::SyncMode::Full)
        .await
        .unwrap();
    store.set_job_enabled(SERIAL_HOOK, true).await.unwrap();
    store
        .create_hook(JobHook::new("serials", vec![ct("dcim.device")], SERIAL_HOOK).on([Action::Update]))
        .await
        .unwrap();
    let web = || jobhooks_model::ChangeContext::new(ChangeContextKind::Web, Some("alice".into()), "");
    for serial in ["A1", "B2"] {
        let mut session = store.session(web());
        session.save(device(serial)).await.unwrap();
        session.commit().await.unwrap();
    }
    let mut session = store.session(web());
    session.delete(device("").reference()).await.unwrap();
    session.commit().await.unwrap();

    // Only now does a dispatcher run the update's hook.
    let h = Harness::start_on(dir, store, DispatcherConfig::default()).await;
    let results = h.results_of(SERIAL_HOOK).await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, JobStatus::Success, "{:#?}", results[0].logs);
    assert_eq!(
        log_lines(&results[0]),
        [
            "info Running job",
            r#"info DIFF: {"added":{"serial":"B2"},"removed":{"serial":"A1"}}"#,
            "success Job completed"
        ],
        "the receiver is called with no object, so it has nothing to revert"
    );
    assert_eq!(h.store.get_object(device("").reference()).await.unwrap(), None, "the device stays deleted");
    let history = h.store.changes_for_object(device("").reference(), 10).await.unwrap();
    assert_eq!(history.len(), 3, "no job-hook change re-created it: {history:#?}");
}

/// Logs what it was called with, as the reference run of SEMANTICS.md section 6 does.
#[derive(Default)]
struct ReferenceReceiver;

#[async_trait]
impl JobHookReceiver for ReferenceReceiver {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        action: jobhooks_model::Action,
        changed_object: Option<Object>,
    ) -> Result<(), JobError> {
        ctx.log_info(format!("change: {change}"));
        ctx.log_info(format!("action: {action}"));
        let user = ctx.user().username.clone();
        ctx.log_info(format!("jobresult.user: {user}"));
        ctx.log_info(changed_object.map_or_else(|| "None".to_owned(), |o| o.repr().to_owned()));
        Ok(())
    }
}

register_job_hook_receiver!(ReferenceReceiver);

#[tokio::test]
async fn the_reference_run_logs_exactly_as_specified() {
    let h = Harness::start(DispatcherConfig::default()).await;
    let job = class_path(module_path!(), "ReferenceReceiver");
    h.store
        .create_hook(JobHook::new("ref", vec![ct("dcim.location")], job.as_str()).on([Action::Create, Action::Delete]))
        .await
        .unwrap();
    h.save("U", &[location()]).await;
    // The create's run sees the location as it is when the run starts: let it run before the
    // delete, or it would see none.
    h.dispatcher.drain().await.unwrap();
    h.delete("U", location().reference()).await;

    let results = h.results_of(&job).await;
    assert_eq!(results.len(), 2);
    assert_eq!(
        log_lines(&results[0]),
        [
            "info Running job",
            "info change: dcim.location HQ created by U",
            "info action: create",
            "info jobresult.user: U",
            "info HQ",
            "success Job completed",
        ]
    );
    assert_eq!(results[0].logs[0].grouping, "initialization");
    assert_eq!(results[0].logs[1].grouping, "main");
    assert_eq!(results[0].logs[5].grouping, "post_run");
    assert_eq!(results[0].user.as_deref(), Some("U"));
    // A delete reaches the receiver with no object.
    assert_eq!(log_lines(&results[1])[2..5], ["info action: delete", "info jobresult.user: U", "info None"]);
}

async fn press_and_finish(h: &Harness, user: &User, button: &str, target: &Object) -> jobhooks_model::JobResult {
    let run = h.dispatcher.press(user, button, target.reference()).await.unwrap();
    h.dispatcher.drain().await.unwrap();
    h.store.get_result(run).await.unwrap().unwrap()
}

#[tokio::test]
async fn the_simple_button_runs_as_the_pressing_user() {
    let h = Harness::start(DispatcherConfig::default()).await;
    h.save("alice", &[location()]).await;
    h.store
        .create_button(JobButton::new("simple", vec![ct("dcim.location")], "Run on {{ obj }}", SIMPLE_BUTTON))
        .await
        .unwrap();
    let bob = runner("bob", &[]);
    h.add_user(&bob).await;

    let buttons = h.dispatcher.buttons_for(&location(), &bob).await.unwrap();
    assert_eq!(buttons.len(), 1);
    assert_eq!(buttons[0].text, "Run on HQ");
    assert!(!buttons[0].disabled);
    assert_eq!(
        buttons[0].confirmation_prompt.as_deref(),
        Some(format!("Run Job '{SIMPLE_BUTTON}' with object 'HQ'?").as_str())
    );

    let result = press_and_finish(&h, &bob, "simple", &location()).await;
    assert_eq!(result.status, JobStatus::Success);
    assert_eq!(result.user.as_deref(), Some("bob"));
    assert_eq!(log_lines(&result), ["info Running job", "info Running Job Button Receiver.", "success Job completed"]);
    assert_eq!(result.logs[1].object.as_ref().map(|o| o.repr.as_str()), Some("HQ"));
    assert_eq!(
        serde_json::to_value(&result.inputs).unwrap(),
        json!({"object_pk": "l1", "object_model_name": "dcim.location"})
    );
}

#[tokio::test]
async fn the_complex_button_checks_the_users_permission_per_type() {
    let h = Harness::start(DispatcherConfig::default()).await;
    let rack = object("dcim.rack", "r1", "R1", json!({}));
    h.save("alice", &[location(), rack.clone()]).await;
    let types = vec![ct("dcim.location"), ct("dcim.device"), ct("dcim.rack")];
    h.store.create_button(JobButton::new("complex", types, "Go", COMPLEX_BUTTON)).await.unwrap();

    let allowed = runner("carol", &["dcim.add_location"]);
    h.add_user(&allowed).await;
    let result = press_and_finish(&h, &allowed, "complex", &location()).await;
    assert_eq!(result.status, JobStatus::Success);
    assert_eq!(log_lines(&result)[1], "info Running Location Job Button Receiver.");

    let refused = runner("dave", &[]);
    h.add_user(&refused).await;
    let result = press_and_finish(&h, &refused, "complex", &location()).await;
    assert_eq!(result.status, JobStatus::Failure);
    assert_eq!(
        log_lines(&result)[1..],
        [
            "error User 'dave' does not have permission to add a Location.",
            "error User does not have permission to add a Location."
        ]
    );

    let result = press_and_finish(&h, &allowed, "complex", &rack).await;
    assert_eq!(result.status, JobStatus::Failure);
    assert_eq!(
        log_lines(&result)[1..],
        ["error Unable to run Job Button for type dcim.rack.", "error Job button called on unsupported object type."]
    );
}

#[tokio::test]
async fn presses_are_refused_in_order_with_nautobots_messages() {
    let h = Harness::start(DispatcherConfig::default()).await;
    h.save("alice", &[location()]).await;
    let mut button = JobButton::new("simple", vec![ct("dcim.location")], "Go", SIMPLE_BUTTON);
    button.enabled = false;
    h.store.create_button(button).await.unwrap();

    let nobody = User::new("eve").unwrap();
    h.store.set_job_enabled(SIMPLE_BUTTON, false).await.unwrap();
    let err = h.dispatcher.press(&nobody, "simple", location().reference()).await.unwrap_err();
    assert_eq!(err.to_string(), "Unable to run or schedule job: Job is not enabled to be run.");
    h.store.set_job_enabled(SIMPLE_BUTTON, true).await.unwrap();
    let err = h.dispatcher.press(&nobody, "simple", location().reference()).await.unwrap_err();
    assert_eq!(err.to_string(), "This user does not have permission to run jobs.");
    let limited = User::new("fay").unwrap().with_permission(jobhooks_model::Permission::run_jobs([COMPLEX_BUTTON]));
    assert!(matches!(
        h.dispatcher.press(&limited, "simple", location().reference()).await,
        Err(PressError::PermissionDenied)
    ));
    let superuser = User::superuser("root").unwrap();
    let err = h.dispatcher.press(&superuser, "simple", location().reference()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Job button simple is disabled: it is not shown, so it cannot be pressed; enable it first"
    );
    let enable = jobhooks_model::JobButtonPatch { enabled: Some(true), ..Default::default() };
    h.store.update_button("simple", enable).await.unwrap();
    assert!(h.dispatcher.press(&superuser, "simple", location().reference()).await.is_ok());

    // A job that is no longer linked: its record stays, not installed.
    h.store.sync_jobs(&[], jobhooks_model::SyncMode::Full).await.unwrap();
    let err = h.dispatcher.press(&superuser, "simple", location().reference()).await.unwrap_err();
    assert_eq!(err.to_string(), "Unable to run or schedule job: Job is not presently installed.");
}

#[tokio::test]
async fn buttons_are_ordered_rendered_and_disabled_as_specified() {
    let h = Harness::start(DispatcherConfig::default()).await;
    let mut buttons = vec![
        JobButton::new("b-grouped", vec![ct("dcim.location")], "G", SIMPLE_BUTTON),
        JobButton::new("a-heavy", vec![ct("dcim.location")], "{{ obj.name }}!", SIMPLE_BUTTON),
        JobButton::new(
            "c-light",
            vec![ct("dcim.location")],
            "{% if perms.dcim.add_location %}Add{% endif %}",
            SIMPLE_BUTTON,
        ),
        JobButton::new("d-broken", vec![ct("dcim.location")], "{{ obj.name | nope }}", SIMPLE_BUTTON),
        JobButton::new("e-elsewhere", vec![ct("dcim.device")], "X", SIMPLE_BUTTON),
    ];
    buttons[0].group_name = Some("Group".into());
    buttons[0].weight = 1;
    buttons[1].weight = 200;
    buttons[2].weight = 50;
    buttons[3].confirmation = false;
    for button in buttons {
        h.store.create_button(button).await.unwrap();
    }
    let with_perm = runner("gus", &["dcim.add_location"]);
    let shown = h.dispatcher.buttons_for(&location(), &with_perm).await.unwrap();
    let names: Vec<_> = shown.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["c-light", "d-broken", "a-heavy", "b-grouped"], "ungrouped by weight, then groups");
    assert_eq!(shown[2].text, "HQ!");
    assert!(shown[1].disabled && shown[1].error.as_deref().is_some_and(|e| e.contains("nope")));
    assert_eq!(shown[1].confirmation_prompt, None);

    let without = User::new("hal").unwrap();
    let shown = h.dispatcher.buttons_for(&location(), &without).await.unwrap();
    assert!(shown.iter().all(|b| b.disabled), "without extras.run_job every button is disabled");
    assert!(!shown.iter().any(|b| b.name == "c-light"), "an empty text hides the button");
}

/// Renames the object it is pressed on.
#[derive(Default)]
struct RenameOnPress;

#[async_trait]
impl JobButtonReceiver for RenameOnPress {
    async fn receive_job_button(&self, ctx: &mut JobContext, mut obj: Object) -> Result<(), JobError> {
        obj.set_field("name", json!("Renamed"));
        obj.set_repr("Renamed");
        ctx.save(obj).await?;
        Ok(())
    }
}

register_job_button_receiver!(RenameOnPress);

#[tokio::test]
async fn a_change_made_by_a_button_receiver_triggers_hooks() {
    let h = Harness::start(DispatcherConfig::default()).await;
    let rename = class_path(module_path!(), "RenameOnPress");
    let reference = class_path(module_path!(), "ReferenceReceiver");
    h.save("alice", &[location()]).await;
    h.store
        .create_button(JobButton::new("rename", vec![ct("dcim.location")], "Rename", rename.as_str()))
        .await
        .unwrap();
    h.store
        .create_hook(JobHook::new("watch", vec![ct("dcim.location")], reference.as_str()).on([Action::Update]))
        .await
        .unwrap();

    let result = press_and_finish(&h, &runner("ivy", &[]), "rename", &location()).await;
    assert_eq!(result.status, JobStatus::Success);
    let hook_runs = h.results_of(&reference).await;
    assert_eq!(hook_runs.len(), 1);
    assert_eq!(log_lines(&hook_runs[0])[1], "info change: dcim.location Renamed updated by ivy");
    let change = h.store.get_change(hook_runs[0].change_id().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (change.change_context, change.change_context_detail.as_str()),
        (ChangeContextKind::Job, rename.as_str())
    );
}
