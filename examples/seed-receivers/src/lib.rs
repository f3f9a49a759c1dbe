//! The seed examples of Nautobot's Job Hooks (v1.4) and Job Button Receivers documents, ported to
//! jobhooks receivers and registered at link time:
//!
//! - [`ExampleJobHookReceiver`]: logs the diff of every create or update and reverts an invalid
//!   serial (the revert is a `job-hook` change, so it triggers no further hook);
//! - [`ExampleSimpleJobButtonReceiver`]: logs that it ran, about the object it was pressed on;
//! - [`ExampleComplexJobButtonReceiver`]: branches on the object's type (location or device) and
//!   checks that the pressing user may add one.
//!
//! A binary or test that wants these registrations must call [`link`] (see the linking pitfall in
//! `jobhooks-register`).
//!
//! Invariant: depends on the model and the registration crate only, as an application's receiver
//! crate would.

pub mod demo;

use jobhooks_model::{
    Action, JobButtonReceiver, JobContext, JobError, JobHookReceiver, Object, ObjectChange, Value, async_trait,
};
use jobhooks_register::{JobMeta, register_job_button_receiver, register_job_hook_receiver};

/// Keeps this crate, and so its registrations, in the final binary. Call it once from `main` or
/// from each test binary that needs these receivers.
pub fn link() {}

/// Validates serial changes and reverts invalid ones (the v1.4 Job Hooks example).
#[derive(Debug, Default)]
pub struct ExampleJobHookReceiver;

impl ExampleJobHookReceiver {
    /// The business rule for serials: the example accepts none, as in the seed document.
    pub fn validate_serial(&self, _serial: &Value) -> bool {
        false
    }
}

#[async_trait]
impl JobHookReceiver for ExampleJobHookReceiver {
    async fn receive_job_hook(
        &self,
        ctx: &mut JobContext,
        change: &ObjectChange,
        action: Action,
        changed_object: Option<Object>,
    ) -> Result<(), JobError> {
        if action == Action::Delete {
            return Ok(());
        }
        let snapshots = change.get_snapshots();
        let differences = &snapshots.differences;
        ctx.log_info(format!("DIFF: {}", serde_json::to_string(differences)?));

        let new_serial = differences.added.as_ref().and_then(|added| added.get("serial"));
        // A create has no `removed`: there is no earlier serial to compare with or revert to.
        let old_serial = differences.removed.as_ref().and_then(|removed| removed.get("serial"));
        if let (Some(new_serial), Some(old_serial), Some(mut object)) = (new_serial, old_serial, changed_object) {
            let (old, new) = (show(old_serial), show(new_serial));
            ctx.log_info(format!("{object} serial has been changed from {old} to {new}"));
            if !self.validate_serial(new_serial) {
                object.set_field("serial", old_serial.clone());
                ctx.save(object.clone()).await?;
                ctx.log_info(format!("{object} serial {new} was not valid. Reverted to {old}"));
            }
            ctx.log_success(format!("Serial validation completed for {object}"));
        }
        Ok(())
    }
}

/// A value as Python's `str()` shows it: strings without quotes, everything else as JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

register_job_hook_receiver!(ExampleJobHookReceiver, JobMeta::new().name("Example Job Hook Receiver"));

/// Logs that it ran, about the object it was pressed on.
#[derive(Debug, Default)]
pub struct ExampleSimpleJobButtonReceiver;

#[async_trait]
impl JobButtonReceiver for ExampleSimpleJobButtonReceiver {
    async fn receive_job_button(&self, ctx: &mut JobContext, obj: Object) -> Result<(), JobError> {
        ctx.log_info_about(&obj, "Running Job Button Receiver.");
        Ok(())
    }
}

register_job_button_receiver!(
    ExampleSimpleJobButtonReceiver,
    JobMeta::new().name("Example Simple Job Button Receiver")
);

/// Runs a location job or a device job depending on the object's type, if the pressing user may
/// add one.
#[derive(Debug, Default)]
pub struct ExampleComplexJobButtonReceiver;

impl ExampleComplexJobButtonReceiver {
    fn run_location_job(&self, ctx: &mut JobContext, obj: &Object) {
        ctx.log_info_about(obj, "Running Location Job Button Receiver.");
    }

    fn run_device_job(&self, ctx: &mut JobContext, obj: &Object) {
        ctx.log_info_about(obj, "Running Device Job Button Receiver.");
    }

    /// Refuses unless the user has `permission`, logging why.
    fn require(ctx: &mut JobContext, obj: &Object, permission: &str, what: &str) -> Result<(), JobError> {
        if ctx.user().has_perm(permission) {
            return Ok(());
        }
        let user = ctx.user().username.clone();
        ctx.log_error_about(obj, format!("User '{user}' does not have permission to add a {what}."));
        Err(format!("User does not have permission to add a {what}.").into())
    }
}

#[async_trait]
impl JobButtonReceiver for ExampleComplexJobButtonReceiver {
    async fn receive_job_button(&self, ctx: &mut JobContext, obj: Object) -> Result<(), JobError> {
        match obj.content_type().as_str() {
            "dcim.location" => {
                Self::require(ctx, &obj, "dcim.add_location", "Location")?;
                self.run_location_job(ctx, &obj);
            }
            "dcim.device" => {
                Self::require(ctx, &obj, "dcim.add_device", "Device")?;
                self.run_device_job(ctx, &obj);
            }
            other => {
                ctx.log_error_about(&obj, format!("Unable to run Job Button for type {other}."));
                return Err("Job button called on unsupported object type.".into());
            }
        }
        Ok(())
    }
}

register_job_button_receiver!(
    ExampleComplexJobButtonReceiver,
    JobMeta::new().name("Example Complex Job Button Receiver")
);
