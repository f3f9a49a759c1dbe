//! A receiver's log entries are mirrored as `tracing` events inside a span that carries the job,
//! the run and the change.

use std::io::Write;
use std::sync::{Arc, Mutex};

use jobhooks_dispatch::DispatcherConfig;
use jobhooks_model::ports::Catalog;
use jobhooks_model::{
    Action, ContentType, JobContext, JobError, JobHook, JobHookReceiver, Object, ObjectChange, async_trait, json,
};
use jobhooks_register::register_job_hook_receiver;
use jobhooks_tests::{Harness, class_path, object};

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

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_entries_become_tracing_events_in_a_run_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

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

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line =
        output.lines().find(|l| l.contains("the fan is loud")).unwrap_or_else(|| panic!("no event in:\n{output}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("job={job}")), "{line}");
    assert!(line.contains(&format!("run={}", receipt.runs[0])), "{line}");
    assert!(line.contains(&format!("change=Some(ChangeId({}))", receipt.changes[0])), "{line}");
    assert!(line.contains("grouping=\"main\""), "{line}");
}
