//! `approval_required` on a job hook receiver is accepted, ignored, and warned about once when the
//! registry is built; on a button receiver it is not warned about.

use std::io::Write;
use std::sync::{Arc, Mutex};

use jobhooks_model::{
    Action, JobButtonReceiver, JobContext, JobError, JobHookReceiver, Object, ObjectChange, async_trait,
};
use jobhooks_register::{JobMeta, Registry, register_job_button_receiver, register_job_hook_receiver};

#[derive(Default)]
struct NeedsApproval;

#[async_trait]
impl JobHookReceiver for NeedsApproval {
    async fn receive_job_hook(
        &self,
        _: &mut JobContext,
        _: &ObjectChange,
        _: Action,
        _: Option<Object>,
    ) -> Result<(), JobError> {
        Ok(())
    }
}

register_job_hook_receiver!(NeedsApproval, JobMeta::new().approval_required(true));

#[derive(Default)]
struct ButtonNeedsApproval;

#[async_trait]
impl JobButtonReceiver for ButtonNeedsApproval {
    async fn receive_job_button(&self, _: &mut JobContext, _: Object) -> Result<(), JobError> {
        Ok(())
    }
}

register_job_button_receiver!(ButtonNeedsApproval, JobMeta::new().approval_required(true));

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

#[test]
fn approval_required_on_a_hook_receiver_is_warned_about_once() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let registry = tracing::subscriber::with_default(subscriber, Registry::from_linked).unwrap();

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<_> = output.lines().filter(|l| l.contains("approval_required")).collect();
    assert_eq!(warnings.len(), 1, "{output}");
    assert!(warnings[0].contains("WARN"), "{output}");
    assert!(warnings[0].contains("approval_warning::NeedsApproval"), "{output}");
    assert!(registry.get("approval_warning::NeedsApproval").unwrap().approval_required());
}
