//! `jobhooks hooks`: job hooks, and the events they fire on.

use crate::backend::Backend;
use crate::{Failure, Outcome, content_types, joined};
use clap::{Args, Subcommand};
use jobhooks_model::{Action, Condition, JobHook, JobHookPatch};

#[derive(Args)]
pub(crate) struct HookFields {
    /// A content type (`app_label.model`) that triggers the hook; repeat for several.
    #[arg(long = "content-type")]
    content_types: Vec<String>,
    /// The job hook receiver's class path.
    #[arg(long)]
    job: Option<String>,
    /// An event it fires on; repeat for several.
    #[arg(long = "on", value_enum, ignore_case = true)]
    events: Vec<EventArg>,
    /// Enable or disable it.
    #[arg(long)]
    enabled: Option<bool>,
    /// Run only for changes this condition admits: NetBox's event-rule JSON, e.g.
    /// '{"attr": "postchange.status", "value": "active"}' (`null` removes the conditions).
    #[arg(long, value_name = "JSON")]
    conditions: Option<String>,
    /// For an update, run only when this field changed; repeat for several.
    #[arg(long = "changed-field", value_name = "NAME")]
    changed_fields: Vec<String>,
    /// On `update`: run for any update again (remove the changed fields).
    #[arg(long, conflicts_with = "changed_fields")]
    any_field: bool,
}

impl HookFields {
    /// `--conditions`, read: `None` when not given, `Some(None)` for `null`.
    fn conditions(&self) -> Result<Option<Option<Condition>>, Failure> {
        let Some(text) = &self.conditions else { return Ok(None) };
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| Failure::bad_input(format!("--conditions: not JSON: {error}")))?;
        if json.is_null() {
            return Ok(Some(None));
        }
        Condition::from_json(&json)
            .map(|condition| Some(Some(condition)))
            .map_err(|error| Failure::bad_input(format!("--conditions: {error}")))
    }

    /// `--changed-field` and `--any-field`: `None` when neither is given.
    fn changed_fields(&self) -> Option<Vec<String>> {
        if self.any_field {
            return Some(Vec::new());
        }
        (!self.changed_fields.is_empty()).then(|| self.changed_fields.clone())
    }
}

#[derive(Subcommand)]
pub(crate) enum HooksCommand {
    /// List hooks.
    List,
    /// Show one hook.
    Show {
        /// The hook's name.
        name: String,
    },
    /// Add a hook.
    Add {
        /// The hook's name.
        name: String,
        #[command(flatten)]
        fields: HookFields,
    },
    /// Update a hook: options given replace the stored values (events given replace all events).
    Update {
        /// The hook's name.
        name: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        fields: HookFields,
    },
    /// Delete a hook.
    Delete {
        /// The hook's name.
        name: String,
    },
}

/// A hook's event, as `--on` takes it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum EventArg {
    Create,
    Update,
    Delete,
}

impl From<EventArg> for Action {
    fn from(event: EventArg) -> Self {
        match event {
            EventArg::Create => Action::Create,
            EventArg::Update => Action::Update,
            EventArg::Delete => Action::Delete,
        }
    }
}

pub(crate) fn actions(events: &[EventArg]) -> Vec<Action> {
    events.iter().copied().map(Action::from).collect()
}

pub(crate) fn events(hook: &JobHook) -> String {
    hook.events().map(Action::as_str).collect::<Vec<_>>().join(",")
}

pub(crate) fn hook_text(h: &JobHook) -> String {
    let mut text = format!(
        "{}  [{}]  on {}  -> {}  ({})",
        h.name,
        joined(&h.content_types),
        events(h),
        h.job,
        if h.enabled { "enabled" } else { "disabled" }
    );
    if !h.changed_fields.is_empty() {
        text.push_str(&format!("  updates of {}", h.changed_fields.join(",")));
    }
    if let Some(conditions) = &h.conditions {
        text.push_str(&format!("  when {}", conditions.to_json()));
    }
    text
}

pub(crate) async fn hooks(s: &impl Backend, command: HooksCommand) -> Outcome {
    match command {
        HooksCommand::List => {
            let hooks = s.list_hooks().await?;
            s.print(&hooks, |hooks| hooks.iter().map(hook_text).collect::<Vec<_>>().join("\n"));
        }
        HooksCommand::Show { name } => {
            let hook = s.get_hook(&name).await?;
            s.print(&hook, hook_text);
        }
        HooksCommand::Add { name, fields } => {
            let job = fields.job.clone().ok_or_else(|| Failure::bad_input("--job is required"))?;
            let mut hook = JobHook::new(name, content_types(&fields.content_types)?, job).on(actions(&fields.events));
            hook.enabled = fields.enabled.unwrap_or(true);
            hook.conditions = fields.conditions()?.flatten();
            hook.changed_fields = fields.changed_fields().unwrap_or_default();
            let hook = s.create_hook(hook).await?;
            s.print(&hook, |h| format!("added {}", hook_text(h)));
        }
        HooksCommand::Update { name, rename, fields } => {
            let events = (!fields.events.is_empty()).then(|| actions(&fields.events));
            let has = |a: Action| events.as_ref().map(|e| e.contains(&a));
            let patch = JobHookPatch {
                name: rename,
                content_types: (!fields.content_types.is_empty())
                    .then(|| content_types(&fields.content_types))
                    .transpose()?,
                job: fields.job.clone(),
                enabled: fields.enabled,
                type_create: has(Action::Create),
                type_update: has(Action::Update),
                type_delete: has(Action::Delete),
                conditions: fields.conditions()?,
                changed_fields: fields.changed_fields(),
            };
            let hook = s.update_hook(&name, patch).await?;
            s.print(&hook, |h| format!("updated {}", hook_text(h)));
        }
        HooksCommand::Delete { name } => {
            let hook = s.delete_hook(&name).await?;
            s.print(&hook, |h| format!("deleted {}", h.name));
        }
    }
    Ok(())
}
