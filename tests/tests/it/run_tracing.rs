//! A receiver's log entries are mirrored as `tracing` events inside a span that carries the job,
//! the run and the change.

use jobhooks_dispatch::DispatcherConfig;
use jobhooks_model::ports::Catalog;
use jobhooks_model::{
    Action, ContentType, JobContext, JobError, JobHook, JobHookReceiver, Object, ObjectChange, async_trait, json,
};
use jobhooks_register::register_job_hook_receiver;
use jobhooks_tests::{CapturedLogs, Harness, class_path, object};

#[derive(Default)]
struct Chatty;

#[async_trait]
impl JobHookReceiver for Chatty {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        ctx.log_warning("the fan is loud");
        Ok(())
    }
}

register_job_hook_receiver!(Chatty);

#[tokio::test]
async fn log_entries_become_tracing_events_in_a_run_span() {
    let captured = CapturedLogs::default();
    // Scoped to this test's thread: the test runtime runs the dispatcher's tasks on it too.
    let _subscriber = tracing::subscriber::set_default(captured.subscriber());

    let h = Harness::start(DispatcherConfig::default()).await;
    let job = class_path(module_path!(), "Chatty");
    h.store
        .create_hook(
            JobHook::new("chatty", vec![ContentType::new("dcim.fan").unwrap()], job.as_str()).on([Action::Create]),
        )
        .await
        .unwrap();
    let receipt = h.save("alice", &[object("dcim.fan", "1", "fan", json!({}))]).await;
    h.results_of(&job).await;

    let output = captured.text();
    let line =
        output.lines().find(|l| l.contains("the fan is loud")).unwrap_or_else(|| panic!("no event in:\n{output}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("job={job}")), "{line}");
    assert!(line.contains(&format!("run={}", receipt.runs[0])), "{line}");
    assert!(line.contains(&format!("change={}", receipt.changes[0])), "the change's id as a number: {line}");
    assert!(line.contains("grouping=\"main\""), "{line}");
}
