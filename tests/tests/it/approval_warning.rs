//! `approval_required` on a job hook receiver is accepted, ignored, and warned about once when the
//! registry is built; on a button receiver it is not warned about.

use jobhooks_model::{
    Action, JobButtonReceiver, JobContext, JobError, JobHookReceiver, Object, ObjectChange, async_trait,
};
use jobhooks_register::{JobMeta, Registry, register_job_button_receiver, register_job_hook_receiver};
use jobhooks_tests::CapturedLogs;

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

#[test]
fn approval_required_on_a_hook_receiver_is_warned_about_once() {
    let captured = CapturedLogs::default();
    let registry = tracing::subscriber::with_default(captured.subscriber(), Registry::from_linked).unwrap();

    let output = captured.text();
    let warnings: Vec<_> = output.lines().filter(|l| l.contains("approval_required")).collect();
    assert_eq!(warnings.len(), 1, "{output}");
    assert!(warnings[0].contains("WARN"), "{output}");
    let hook = format!("{}::NeedsApproval", module_path!());
    assert!(warnings[0].contains(&hook), "{output}");
    assert!(registry.get(&hook).unwrap().approval_required());
}
