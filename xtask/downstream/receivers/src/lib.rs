//! An application's receivers, in a crate of their own.

use jobhooks_model::prelude::*;
use jobhooks_register::{JobMeta, job_class, register_job_hook_receiver};

/// Keeps this crate's registrations in the final binary: call it before `Registry::from_linked()`.
pub fn link() {}

/// Logs which fields of a device changed.
#[derive(Default)]
pub struct LogDiff;

#[async_trait]
impl JobHookReceiver for LogDiff {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _action: Action,
        _changed_object: Option<Object>,
    ) -> Result<(), JobError> {
        let snapshots: Snapshots<'_> = change.get_snapshots();
        let fields: Vec<String> = match &snapshots.differences.added {
            Some(Value::Object(added)) => added.keys().cloned().collect(),
            _ => Vec::new(),
        };
        ctx.log_info(format!("changed: {}", fields.join(", ")));
        Ok(())
    }
}

register_job_hook_receiver!(LogDiff, JobMeta::new().name("Log differences"));

/// Posts to a chat channel; registered as an instance, so it holds its settings.
pub struct Notify {
    /// Where it posts.
    pub channel: String,
}

job_class!(Notify);

#[async_trait]
impl JobHookReceiver for Notify {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        _action: Action,
        _changed_object: Option<Object>,
    ) -> Result<(), JobError> {
        ctx.log_info(format!("would post `{change}` to {}", self.channel));
        Ok(())
    }
}
